/// The posterior predictive of a hierarchical Bayesian MLP as one ONNX model (every draw's weights in
/// one graph, the mean probability over draws per group), run by ONNX Runtime, against the in-process
/// mean over draws computed one draw at a time.
module FunctionalBayes.Onnx.Tests.EnsembleTests

open Expecto
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

let private groups = 3
let private net (x: Tensor) = HierarchicalMlp.Default.Call("net", x, groups, [| 4; 3; 1 |], [| 0; 1 |])

/// x (B, 2) → p (B, groups): the mean over the stacked draws of σ(logits).
let private ensemble (data: Map<string, Tensor>) = model {
    let! logits = net data.["x"]
    let p = logits |> Tensor.sigmoid |> Tensor.meanAxes [| 0 |] false |> Tensor.squeeze -1 |> Tensor.permute [| 1; 0 |]
    return! Model.observe "p" (BernoulliProbs p) None
}

[<Tests>]
let tests =
    testList "EnsembleTests" [
        testCase "ONNX Runtime matches the in-process mean over draws" <| fun () ->
            let s = 6
            let x0 = Rng.uniform (Rng.key 2UL) [| 2; 2 |]
            // draws from the prior, stacked on a first axis (any draws will do for the comparison)
            let draws = Array.init s (fun i -> Model.run (Handlers.trace (Handlers.seed (Rng.key (uint64 (50 + i))) (net x0))) |> snd |> Trace.values)
            let stacked = draws.[0] |> Map.map (fun k _ -> draws |> Array.map (fun d -> d.[k]) |> Tensor.stack 0)
            let onnx = Export.toModel ExportOptions.Default ensemble (Ensemble.alignDraws 3 stacked) (Map [ "x", x0 ]) |> Export.toBytes
            use predictor = OnnxPredictor.Load onnx
            for b in [ 1; 7; 300 ] do
                let x = Rng.uniform (Rng.key (uint64 b)) [| b; 2 |] * 6.0 - 3.0
                let mutable shape = [||]
                let ort = predictor.Run("x", Tensor.toArrayF32 x, [| int64 b; 2L |], &shape)
                Expect.equal shape [| int64 b; int64 groups |] "output (batch, groups)"
                let perDraw = draws |> Array.map (fun d -> Model.run (Handlers.substitute d (net x)) |> Tensor.sigmoid |> Tensor.squeeze -1)
                let mean = (Array.reduce (+) perDraw) / float s |> Tensor.permute [| 1; 0 |] |> Tensor.toArray
                Array.iteri2 (fun i (o: float32) e ->
                    if abs (float o - e) > 2e-6 then failtestf "batch %d, element %d: ONNX %g, in-process %g" b i o e) ort mean
    ]
