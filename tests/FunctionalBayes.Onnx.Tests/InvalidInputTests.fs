/// Issue 23, finding 4: an exported model is as strict as the library. Its metadata carries the inputs' valid
/// values, the ONNX Runtime predictor refuses what the library refuses, and the graph itself answers NaN for
/// an id that is not an integer in 0..K−1 (ONNX's Gather takes −1 as the last row, Cast truncates 1.5).
module FunctionalBayes.Onnx.Tests.InvalidInputTests

open System.Collections.Generic
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

type private Ort = Microsoft.ML.OnnxRuntime.InferenceSession

let private reModel (d: Map<string, Tensor>) = model {
    let! mu = Layers.randomEffects "re" d.["g"] 6
    let! x = Layers.adaptive "x" d.["x"]
    return! Links.gaussian "y" (mu + x) (d.TryFind "y") }

let private example =
    Map [ "g", Tensor.ofArray (Array.init 16 (fun i -> float (i % 6)))
          "x", Rng.normal (Rng.key 3UL) [| 16; 2 |] ]

let private exported = lazy (
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 11UL) (reModel example)))
    let points = Trace.latents tr |> Array.filter (fun s -> not s.IsObserved) |> Array.map (fun s -> s.Name, s.Value.Value) |> Map.ofArray |> Map.remove "y"
    points, Export.toModel ExportOptions.Default reModel points example |> Export.toBytes)

/// The graph run as ONNX Runtime runs it, without the predictor's checks.
let private rawRun (bytes: byte[]) (g: float32[]) (x: float32[]) =
    use session = new Ort(bytes)
    use gv = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(g, [| int64 g.Length |])
    use xv = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(x, [| int64 g.Length; 2L |])
    use ro = new Microsoft.ML.OnnxRuntime.RunOptions()
    use res = session.Run(ro, [| "g"; "x" |], [| gv; xv |], [| "y_mean" |])
    res.[0].GetTensorDataAsSpan<float32>().ToArray()

[<Tests>]
let tests =
    testList "issue 23: exports are as strict as the library (finding 4)" [
        testCase "the graph answers NaN for ids −1, 1.5 and 6, and the right group's value for valid ids" <| fun () ->
            let points, bytes = exported.Force()
            let g = [| 0.0f; -1.0f; 1.5f; 6.0f; 5.0f |]
            let x = Array.init 10 (fun i -> float32 i * 0.1f)
            let out = rawRun bytes g x
            for row in [ 1; 2; 3 ] do
                Expect.isTrue (System.Single.IsNaN out.[row]) (sprintf "id %g gives NaN, got %g" g.[row] out.[row])
            // valid rows agree with the in-process predictor
            let valid = Map [ "g", Tensor.ofArray [| 0.0; 5.0 |]; "x", Tensor.create [| 2; 2 |] [| 0.0; 0.1; 0.8; 0.9 |] |> Tensor.toFloat32 |> Tensor.toFloat64 ]
            let expected = Export.predict reModel points valid |> Array.find (fun (n, _) -> n = "y") |> snd |> Tensor.toArray
            Expect.floatClose Accuracy.medium (float out.[0]) expected.[0] "id 0"
            Expect.floatClose Accuracy.medium (float out.[4]) expected.[1] "id 5"

        testCase "the metadata carries the inputs' valid values, and the predictor refuses what the library refuses" <| fun () ->
            let _, bytes = exported.Force()
            use p = OnnxPredictor.Load(bytes)
            let valid = p.Metadata.CustomMetadata.[OnnxPredictor.ValidInputsKey]
            Expect.stringContains valid "\"g\": {\"dtype\": \"float32\", \"finite\": true, \"integer\": true, \"min\": 0, \"max\": 5}" "g: integer ids 0..5"
            Expect.stringContains valid "\"x\": {\"dtype\": \"float32\", \"finite\": true}" "x: finite"
            let run (g: float32[]) (x: float32[]) =
                p.Run(Dictionary<string, OnnxArray>(dict [ "g", OnnxArray.FromFloat32(g, [| int64 g.Length |]); "x", OnnxArray.FromFloat32(x, [| int64 g.Length; 2L |]) ])) |> ignore
            let x = Array.zeroCreate<float32> 6
            run [| 0.0f; 1.0f; 5.0f |] x
            for bad, text in [ -1.0f, "-1"; 1.5f, "1.5"; 6.0f, "6" ] do
                let e = Assert.Throws<InvalidModelInputException>(fun () -> run [| 0.0f; bad; 2.0f |] x)
                Expect.stringContains e.Message (sprintf "holds %s at row 1" text) "names the value and the row"
                Expect.stringContains e.Message "0..5" "names the range"
            let e = Assert.Throws<InvalidModelInputException>(fun () -> run [| 0.0f; 1.0f; 2.0f |] [| 0.0f; 0.0f; 0.0f; nanf; 0.0f; 0.0f |])
            Expect.stringContains e.Message "row 1, column 1" "a NaN in x is refused, naming row and column"
    ]
