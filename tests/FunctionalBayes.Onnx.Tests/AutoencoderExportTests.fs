/// ONNX export of a trained autoencoder's encoder and decoder, run in ONNX Runtime and compared with the
/// in-process networks (Aevb.encodeParams, Aevb.decode, and the family's mean written out by hand) at
/// batch sizes 1, 7 and 300, in float32 and float64; and the exports that must be refused.
module FunctionalBayes.Onnx.Tests.AutoencoderExportTests

open System
open System.Collections.Generic
open Expecto
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

let private dataDim = 8
let private latentDim = 2

/// Binary rows: two prototypes (first half on, or second half on) with 10 % of the pixels flipped.
let private binaryData (n: int) =
    let flips = Rng.uniform (Rng.key 5UL) [| n; dataDim |] |> Tensor.toArray
    Array.init (n * dataDim) (fun k ->
        let i, j = k / dataDim, k % dataDim
        let on = (i % 2 = 0) = (j < dataDim / 2)
        if (flips.[k] < 0.1) <> on then 1.0 else 0.0)
    |> Tensor.create [| n; dataDim |]

/// An engine trained for 20 steps (so the weights, and BatchNorm's running statistics, are not the initial ones).
let private trained (enc: NnModule) (dec: NnModule) (observation: Family) =
    let e = Aevb.create latentDim dataDim enc dec AevbPrior.UnitNormal observation Family.normal (Optimizer.AdamDefault 1e-2) 1 1.0
    let data = binaryData 64
    let st = (Aevb.init e (Rng.key 1UL), [ 0 .. 19 ]) ||> List.fold (fun st i -> fst (Aevb.step e (Rng.key (uint64 (100 + i))) st data))
    e, st

let private mlpPair (observation: Family) (dtype: Dtype) =
    trained (Aevb.mlpFor Family.normal dataDim [ 16; 12 ] latentDim dtype) (Aevb.mlpFor observation latentDim [ 16 ] dataDim dtype) observation

/// Runs an exported network in ONNX Runtime on one input; the outputs by name as (values, shape).
let private runOnnx (m: Onnx.ModelProto) (float64: bool) (input: string) (x: Tensor) : Map<string, float[] * int[]> =
    // float64 at the Basic level: ORT's Extended/All fusions reassociate arithmetic (see ExportTests)
    let level = if float64 then GraphOptimizationLevel.Basic else GraphOptimizationLevel.All
    use p = OnnxPredictor.Load(Export.toBytes m, PredictorOptions(GraphOptimizationLevel = level))
    let shape = x.Shape |> Array.map int64
    let dict = Dictionary<string, OnnxArray>()
    dict.[input] <- (if float64 then OnnxArray.FromFloat64(Tensor.toArray x, shape) else OnnxArray.FromFloat32(Tensor.toArrayF32 x, shape))
    p.Run(dict)
    |> Seq.map (fun kv ->
        let v = kv.Value
        let data = if float64 then v.GetData<float>() else v.GetData<float32>() |> Array.map float
        kv.Key, (data, v.GetShape() |> Array.map int))
    |> Map.ofSeq

/// float32: a few ulps through a dozen layers; float64: rounding only (no reassociation at the Basic level).
let private tolerance (float64: bool) = if float64 then 1e-10 else 1e-5

/// Compares an ORT output with the in-process tensor elementwise (relative to 1 + |expected|); returns the max abs difference.
let private agree (what: string) (float64: bool) (got: float[] * int[]) (expected: Tensor) =
    let values, shape = got
    Expect.equal shape expected.Shape (sprintf "%s: shape" what)
    let e = Tensor.toArray expected
    let tol = tolerance float64
    let mutable maxDiff = 0.0
    for i in 0 .. e.Length - 1 do
        let bothNaN = Double.IsNaN e.[i] && Double.IsNaN values.[i]
        let d = if bothNaN then 0.0 else abs (values.[i] - e.[i])
        if not (bothNaN || d <= tol * (1.0 + abs e.[i])) then
            failtestf "%s (%s): element %d is %.17g in ONNX Runtime and %.17g in process" what (if float64 then "float64" else "float32") i values.[i] e.[i]
        maxDiff <- max maxDiff d
    maxDiff

/// Exports both networks and compares them with the in-process ones at batch sizes 1, 7 and 300;
/// `handMean` computes the observation mean from the decoder's parameters independently of the family.
let private roundTrip (name: string) (e: AevbEngine) (st: AevbState) (float64: bool) (handMean: Map<string, Tensor> -> Tensor) =
    let opts = { ExportOptions.Default with Float64 = float64 }
    let enc = AutoencoderExport.encoder opts e st
    let dec = AutoencoderExport.decoder opts e st
    let mutable maxDiff = 0.0
    for n in [ 1; 7; 300 ] do
        let x = Rng.uniform (Rng.key (uint64 (7 * n))) [| n; dataDim |]
        let ort = runOnnx enc float64 "x" x
        let expected = Aevb.encodeParams e st x
        Expect.equal (ort |> Map.keys |> Set.ofSeq) (Set.ofList e.Variational.Params) (sprintf "%s: encoder outputs" name)
        for KeyValue (k, v) in expected do
            maxDiff <- max maxDiff (agree (sprintf "%s encoder '%s', batch %d" name k n) float64 ort.[k] v)
        let z = Rng.normal (Rng.key (uint64 (11 * n))) [| n; latentDim |] * 1.5
        let ort = runOnnx dec float64 "z" z
        let expected = Aevb.decode e st z
        maxDiff <- max maxDiff (agree (sprintf "%s decoder mean, batch %d" name n) float64 ort.["mean"] expected)
        agree (sprintf "%s decoder mean by hand, batch %d" name n) float64 ort.["mean"] (handMean (Aevb.decodeParams e st z)) |> ignore
    maxDiff

/// The exception an export raises (failing the test when it raises none).
let private refused (f: unit -> unit) : OnnxExportException =
    try
        f ()
        failtest "expected an OnnxExportException"
    with :? OnnxExportException as ex -> ex

let private bernoulliMean (ps: Map<string, Tensor>) = 1.0 / (1.0 + Tensor.exp (-ps.["logits"]))

[<Tests>]
let tests =
    testList "AutoencoderExportTests" [
        testCase "MLP VAE, Bernoulli decoder: ONNX Runtime matches encodeParams and sigmoid(logits), float32 and float64" <| fun () ->
            for dtype, float64 in [ Float32, false; Float64, true ] do
                let e, st = mlpPair Family.bernoulli dtype
                let d = roundTrip "Bernoulli" e st float64 bernoulliMean
                printfn "AutoencoderExport Bernoulli %A: max |ORT - in-process| = %.3g" dtype d

        testCase "MLP VAE, Normal, Laplace, Logistic and Student's t decoders: the exported mean is the loc head" <| fun () ->
            // Student's t with a learned df (a softplus head): loc where df > 1, NaN elsewhere
            let tMean (ps: Map<string, Tensor>) =
                let loc = ps.["loc"] + Tensor.zerosLike ps.["df"]
                Array.map2 (fun df l -> if df > 1.0 then l else nan) (Tensor.toArray (ps.["df"] + Tensor.zerosLike loc)) (Tensor.toArray loc)
                |> Tensor.create loc.Shape
            for family, handMean in [ Family.normal, (fun (ps: Map<string, Tensor>) -> ps.["loc"]); Family.laplace, (fun ps -> ps.["loc"])
                                      Family.logistic, (fun ps -> ps.["loc"]); Family.studentT, tMean ] do
                for dtype, float64 in [ Float32, false; Float64, true ] do
                    let e, st = mlpPair family dtype
                    let d = roundTrip family.Name e st float64 handMean
                    printfn "AutoencoderExport %s %A: max |ORT - in-process| = %.3g" family.Name dtype d

        testCase "BatchNorm and Dropout export in eval mode (running statistics, no dropout)" <| fun () ->
            let spec (input: int) (heads: MlpHead list) =
                { MlpSpec.Create(input, [ 16; 12 ], heads) with BatchNormAt = [ 0; 1 ]; Dropout = 0.3 }
            let enc = Nn.mlp (spec dataDim [ Nn.head "loc" latentDim Activations.identity; Nn.head "scale" latentDim Activations.halfExp ])
            let dec = Nn.mlp (spec latentDim [ Nn.head "logits" dataDim Activations.identity ])
            let e, st = trained enc dec Family.bernoulli
            // training moved the running statistics away from their initial 0 and 1
            let runMean = Tensor.toArray st.EncState.["body.bn0.mean"]
            Expect.isTrue (runMean |> Array.exists (fun v -> abs v > 1e-3)) "the running mean moved"
            let d = roundTrip "BatchNorm+Dropout" e st false bernoulliMean
            printfn "AutoencoderExport BatchNorm+Dropout: max |ORT - in-process| = %.3g" d
            // and the export is not the train-mode network (batch statistics, dropout masks)
            let x = Rng.uniform (Rng.key 70UL) [| 50; dataDim |]
            let ort = runOnnx (AutoencoderExport.encoder ExportOptions.Default e st) false "x" x
            let train, _ = e.Encoder.Apply st.EncParams st.EncState x true
            let gap = Array.map2 (fun (a: float) b -> abs (a - b)) (fst ort.["loc"]) (Tensor.toArray train.["loc"]) |> Array.max
            Expect.isGreaterThan gap 1e-3 "the train-mode output differs from the export"

        testCase "the exported graphs have a symbolic batch dimension and named inputs and outputs" <| fun () ->
            let e, st = mlpPair Family.bernoulli Float32
            let enc = AutoencoderExport.encoder ExportOptions.Default e st
            let dec = AutoencoderExport.decoder ExportOptions.Default e st
            let dims (v: Onnx.ValueInfoProto) = v.Type.TensorType.Shape.Dim |> Seq.map (fun d -> if d.DimParam <> "" then d.DimParam else string d.DimValue) |> List.ofSeq
            Expect.equal (enc.Graph.Input |> Seq.map (fun v -> v.Name, dims v) |> List.ofSeq) [ "x", [ "batch"; "8" ] ] "encoder input"
            Expect.equal (enc.Graph.Output |> Seq.map (fun v -> v.Name, dims v) |> List.ofSeq) [ "loc", [ "batch"; "2" ]; "scale", [ "batch"; "2" ] ] "encoder outputs"
            Expect.equal (dec.Graph.Input |> Seq.map (fun v -> v.Name, dims v) |> List.ofSeq) [ "z", [ "batch"; "2" ] ] "decoder input"
            Expect.equal (dec.Graph.Output |> Seq.map (fun v -> v.Name, dims v) |> List.ofSeq) [ "mean", [ "batch"; "8" ] ] "decoder output"
            let meta = dec.MetadataProps |> Seq.map (fun p -> p.Key, p.Value) |> Map.ofSeq
            Expect.equal meta.["functionalbayes.aevb.observation"] "Bernoulli" "metadata: observation family"
            Expect.equal (enc.OpsetImport.[0].Version, enc.IrVersion) (17L, 8L) "opset 17, IR 8"

        testCase "a decoder whose family has no finite mean is refused, naming the family" <| fun () ->
            let e, st = mlpPair Family.cauchy Float64
            let ex = refused (fun () -> AutoencoderExport.decoder ExportOptions.Default e st |> ignore)
            Expect.stringContains ex.Message "Cauchy" "names the family"
            Expect.stringContains ex.Message "no finite mean" "says why"
            // its encoder still exports
            AutoencoderExport.encoder ExportOptions.Default e st |> ignore

        testCase "a user network with an op that has no ONNX form is refused, naming the op" <| fun () ->
            let dense = Aevb.mlpFor Family.normal dataDim [ 8 ] latentDim Float64
            let withLgamma =
                Nn.ofFunctions dense.Init (fun ps s x train ->
                    let outs, s' = dense.Apply ps s x train
                    outs |> Map.add "loc" (Tensor.lgamma (outs.["scale"] + 1.0)), s')
            let e, st = trained withLgamma (Aevb.mlpFor Family.bernoulli latentDim [ 8 ] dataDim Float64) Family.bernoulli
            let ex = refused (fun () -> AutoencoderExport.encoder ExportOptions.Default e st |> ignore)
            Expect.stringContains ex.Message "encoder" "names the network"
            Expect.stringContains ex.Message "lgamma" "names the op"
            // a network that computes on the host from the data has no graph either
            let onHost =
                Nn.ofFunctions dense.Init (fun ps s x train ->
                    let outs, s' = dense.Apply ps s x train
                    outs |> Map.add "loc" (Tensor.create outs.["loc"].Shape (Tensor.toArray outs.["loc"])), s')
            let e, st = trained onHost (Aevb.mlpFor Family.bernoulli latentDim [ 8 ] dataDim Float64) Family.bernoulli
            let ex = refused (fun () -> AutoencoderExport.encoder ExportOptions.Default e st |> ignore)
            Expect.stringContains ex.Message "outside the tensor graph" "says why"
    ]
