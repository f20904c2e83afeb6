/// Every op the exporter writes, exported in float32 and float64 and run in ONNX Runtime's CPU provider
/// against the in-process predictor: each needs a CPU kernel for the exported element type (float64 Softplus
/// and Erf have none, so the exporter writes them out from other ops).
module FunctionalBayes.Onnx.Tests.OpTests

open System
open System.Collections.Generic
open Expecto
open Google.Protobuf
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

/// x: (n, 4) spread over [−7, 7] (every branch of the float64 erf: |x| ≤ 0.46875, ≤ 4, > 4), plus a few
/// exact zeros and halves for Sign, Relu, the comparisons and Where.
let private xOf (n: int) =
    let u = Tensor.toArray (Rng.uniform (Rng.key 31UL) [| n; 4 |])
    let special = [| 0.0; 0.5; -0.5; 0.46875; -4.0; 4.0; 27.0; -27.0 |]
    Tensor.create [| n; 4 |] (u |> Array.mapi (fun i v -> if i % 13 = 5 then special.[(i / 13) % special.Length] else 14.0 * v - 7.0))

let private weights = Tensor.create [| 4; 3 |] (Array.init 12 (fun i -> Math.Sin(0.7 * float i + 0.1)))

/// True when the op's float64 export is refused (its ONNX form is float32 only).
let private float32Only (u: UnaryOp) =
    match Ops.onnxUnary u with
    | OnnxForm.ByPrecision (OnnxForm.Unsupported _, _) -> true
    | _ -> false

/// True when the case of this name is a unary op with a float32-only ONNX form.
let private isFloat32Only (name: string) = Ops.allUnary |> Array.exists (fun u -> float32Only u && string u = name)

/// The unary op on its domain (positive arguments for a positive domain).
let private onDomain (u: UnaryOp) : Tensor -> Tensor =
    match (Ops.unary u).Decl.Domain with
    | Domain.Real -> Tensor.un u
    | Domain.Positive -> fun x -> Tensor.un u (Tensor.abs x + 0.5)

/// The op cases: a name and the predictor's mean as a function of x (rows first, as a link wants).
let private cases : (string * (Tensor -> Tensor)) list =
    let pos (x: Tensor) = Tensor.abs x + 0.5
    let rowsOf (x: Tensor) = x.Shape.[0]
    [ // every unary op of the op table that has an ONNX form, on its domain
      for u in Ops.allUnary do
        match Ops.onnxUnary u with
        | OnnxForm.Unsupported _ -> ()
        | _ -> yield string u, onDomain u
      yield "Add, Sub, Mul, Div", fun x -> (x + 1.5) * (x - 0.25) / pos x
      yield "Pow", fun x -> Tensor.powScalar (pos x) 1.7
      yield "Maximum, Minimum", fun x -> Tensor.maximum x (x * 0.5) + Tensor.minimum x (Tensor.full [| 4 |] 0.3)
      yield "Less, LessOrEqual, Where", fun x -> Tensor.where (Tensor.lt x (x * 0.5)) x (Tensor.where (Tensor.leScalar x 0.5) (x * 2.0) (x * 3.0))
      yield "Greater, GreaterOrEqual, Where", fun x -> Tensor.where (Tensor.gtScalar x 0.0) x (Tensor.where (Tensor.ge x (x * 0.5)) (x * 2.0) (x * 3.0))
      yield "Equal, Not(Equal), Cast", fun x -> Tensor.toFloat64 (Tensor.eqScalar x 0.5) + 2.0 * Tensor.toFloat64 (Tensor.ne x (Tensor.zerosLike x))
      yield "ReduceSum", Tensor.sumAxes [| 1 |] false
      yield "ReduceMax (keepdims)", fun x -> Tensor.maxAxes [| 1 |] true x - x
      yield "mean, logsumexp, softmax", fun x -> Tensor.meanAxes [| 1 |] true x + Tensor.logsumexpAxes [| 1 |] true x + Tensor.softmax 1 x
      yield "MatMul", fun x -> Tensor.matmul x weights
      yield "MatMul with transposes", fun x -> Tensor.matmulT false true x (Tensor.transpose weights) + Tensor.transpose (Tensor.matmulT true false weights (Tensor.transpose x))
      yield "Transpose", fun x -> Tensor.transpose (Tensor.transpose x * 2.0)
      yield "Reshape", fun x -> Tensor.sumAxes [| 2 |] false (Tensor.reshape [| rowsOf x; 2; 2 |] x)
      yield "Expand", fun x -> Tensor.sumAxes [| 2 |] false (Tensor.broadcastTo [| rowsOf x; 4; 3 |] (Tensor.unsqueeze -1 x))
      yield "Concat", fun x -> Tensor.concat 1 [ x; Tensor.tanh x ]
      yield "Slice", Tensor.narrow 1 1 2
      yield "Gather", Tensor.indexSelect 1 (Tensor.ofInts [| 3; 0; 2 |])
      yield "CumSum", Tensor.cumsum 1
      yield "Clip", fun x -> Tensor.clamp -0.5 0.5 x + Tensor.clamp Double.NegativeInfinity 0.3 x + Tensor.clamp -0.2 Double.PositiveInfinity x
      yield "StopGradient", fun x -> Tensor.stopGradient x * 2.0 ]

let private modelOf (f: Tensor -> Tensor) (d: Map<string, Tensor>) = model {
    return! Links.gaussian "y" (f d.["x"]) (d.TryFind "y")
}

/// The posterior point: the link's sigma only (no other latent); it does not enter the mean.
let private points = Map [ "y_sigma", Tensor.scalar 1.0 ]

let private run (bytes: byte[]) (level: GraphOptimizationLevel) (float64: bool) (x: Tensor) =
    use p = OnnxPredictor.Load(bytes, PredictorOptions(GraphOptimizationLevel = level))
    let shape = x.Shape |> Array.map int64
    let input = if float64 then OnnxArray.FromFloat64(Tensor.toArray x, shape) else OnnxArray.FromFloat32(Tensor.toArrayF32 x, shape)
    let out = p.Run(Dictionary(dict [ "x", input ])).["y_mean"]
    let values = if float64 then out.GetData<float>() else out.GetData<float32>() |> Array.map float
    values, out.GetShape() |> Array.map int

/// Exports the case in float32 and float64, runs it in ONNX Runtime at batch 1 and 257, and compares.
let private agree (name: string) (f: Tensor -> Tensor) =
    let m = modelOf f
    let example = Map [ "x", xOf 16 ]
    for float64 in (if isFloat32Only name then [ false ] else [ false; true ]) do
        let dtype = if float64 then "float64" else "float32"
        let bytes = Export.toModel { ExportOptions.Default with Float64 = float64 } m points example |> Export.toBytes
        for n in [ 1; 257 ] do
            let x = xOf n
            // the in-process reference sees the inputs ONNX Runtime sees (float32-rounded in a float32 export)
            let xRef = if float64 then x else Tensor.ofArrayF32 (Tensor.toArrayF32 x) |> Tensor.reshape x.Shape |> Tensor.toFloat64
            let expected = Export.predict m points (Map [ "x", xRef ]) |> Array.exactlyOne |> snd
            // float32 at ONNX Runtime's default level; float64 at Basic (Extended/All fusions reassociate sums,
            // ~1e-15 relative) against 1e-10, and at the default level too, against 1e-9
            let runs =
                if float64 then [ GraphOptimizationLevel.Basic, 1e-10; GraphOptimizationLevel.All, 1e-9 ]
                else [ GraphOptimizationLevel.All, 1e-5 ]
            for level, tol in runs do
                let values, shape = run bytes level float64 x
                Expect.equal shape expected.Shape (sprintf "%s (%s, batch %d): shape" name dtype n)
                let e = Tensor.toArray expected
                for i in 0 .. e.Length - 1 do
                    if not (abs (values.[i] - e.[i]) <= tol * (1.0 + abs e.[i])) then
                        failtestf "%s (%s, %O, batch %d): element %d is %.17g in ONNX Runtime and %.17g in process" name dtype level n i values.[i] e.[i]

let private opTypes (float64: bool) (f: Tensor -> Tensor) =
    let onnx = Export.toModel { ExportOptions.Default with Float64 = float64 } (modelOf f) points (Map [ "x", xOf 8 ])
    onnx.Graph.Node |> Seq.map (fun n -> n.OpType) |> Set.ofSeq

/// A one-node float64 model, written by hand, for an op ONNX Runtime's CPU provider lacks in float64.
let private singleNodeFloat64 (op: string) =
    let valueInfo name =
        let tt = Onnx.TypeProto.Types.Tensor(ElemType = int Onnx.TensorProto.Types.DataType.Double, Shape = Onnx.TensorShapeProto())
        tt.Shape.Dim.Add(Onnx.TensorShapeProto.Types.Dimension(DimParam = "n"))
        Onnx.ValueInfoProto(Name = name, Type = Onnx.TypeProto(TensorType = tt))
    let node = Onnx.NodeProto(OpType = op, Name = op)
    node.Input.Add "x"
    node.Output.Add "y"
    let graph = Onnx.GraphProto(Name = op)
    graph.Node.Add node
    graph.Input.Add(valueInfo "x")
    graph.Output.Add(valueInfo "y")
    let m = Onnx.ModelProto(IrVersion = 8L, Graph = graph)
    m.OpsetImport.Add(Onnx.OperatorSetIdProto(Domain = "", Version = 17L))
    m.ToByteArray()

[<Tests>]
let tests =
    testList "OnnxOpTests" [
        for name, f in cases do
            let precisions = if isFloat32Only name then "float32 (its float64 export is refused)" else "float32 and float64"
            testCase (sprintf "%s agrees with the in-process predictor in %s" name precisions) (fun () -> agree name f)

        testCase "an op without an ONNX form is refused at export, naming the op and why" (fun () ->
            let without = Ops.allUnary |> Array.filter (fun u -> match Ops.onnxUnary u with OnnxForm.Unsupported _ -> true | _ -> false)
            Expect.isNonEmpty without "lgamma and the polygammas have no ONNX form"
            for u in without do
                match (try opTypes false (fun x -> Tensor.un u (Tensor.abs x + 0.5)) |> ignore; None with :? OnnxExportException as e -> Some e.Message) with
                | None -> failtestf "%A: exported" u
                | Some message ->
                    Expect.stringContains message (Unary u).Name "names the op"
                    Expect.stringContains message "no ONNX form" "says why")

        testCase "an op with a float32-only ONNX form is refused in a float64 export, naming the op and why" (fun () ->
            let only32 = Ops.allUnary |> Array.filter float32Only
            Expect.contains only32 Atan "atan is float32 only"
            for u in only32 do
                match (try opTypes true (onDomain u) |> ignore; None with :? OnnxExportException as e -> Some e.Message) with
                | None -> failtestf "%A: exported in float64" u
                | Some message ->
                    Expect.stringContains message (Unary u).Name "names the op"
                    Expect.stringContains message "float32" "says why")

        testCase "ONNX Runtime's CPU provider has no float64 Softplus, Erf or Atan kernel (why the exporter writes them out or refuses)" (fun () ->
            for op in [ "Softplus"; "Erf"; "Atan" ] do
                let error =
                    try
                        OnnxPredictor.Load(singleNodeFloat64 op).Dispose()
                        None
                    with :? OnnxRuntimeException as e -> Some e.Message
                Expect.isSome error (sprintf "a float64 %s model loads: the decomposition may be dropped" op)
                Expect.stringContains error.Value "Could not find an implementation" op
                Expect.stringContains error.Value op op)

        testCase "float64 exports write Softplus and Erf out; float32 exports keep the native ops" (fun () ->
            for f in [ Tensor.softplus; Tensor.erf; Tensor.erfc; Tensor.normalCdf ] do
                let f64 = opTypes true f
                Expect.isFalse (f64.Contains "Softplus" || f64.Contains "Erf") (sprintf "float64 ops: %A" f64)
            Expect.contains (opTypes false Tensor.softplus) "Softplus" "float32 softplus"
            Expect.contains (opTypes false Tensor.erf) "Erf" "float32 erf"
            Expect.contains (opTypes false Tensor.normalCdf) "Erf" "float32 normal CDF")

        testCase "float64 layers with softplus and normal-CDF activations run in ONNX Runtime" (fun () ->
            for name, act in [ "softplus", Tensor.softplus; "normal CDF", Tensor.normalCdf ] do
                let m (d: Map<string, Tensor>) = model {
                    let! h = FixedPriorLayer.Default.Call("h", d.["x"], units = 3, activation = act)
                    let! o = Layers.adaptive "o" h
                    return! Links.gaussian "y" o (d.TryFind "y")
                }
                let example = Map [ "x", xOf 16 ]
                let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 5UL) (m example)))
                let pts = Trace.latents tr |> Array.filter (fun s -> s.Name <> "y") |> Array.map (fun s -> s.Name, s.Value.Value) |> Map.ofArray
                let bytes = Export.toModel { ExportOptions.Default with Float64 = true } m pts example |> Export.toBytes
                let x = xOf 64
                let expected = Export.predict m pts (Map [ "x", x ]) |> Array.exactlyOne |> snd |> Tensor.toArray
                let values, _ = run bytes GraphOptimizationLevel.Basic true x
                for i in 0 .. expected.Length - 1 do
                    Expect.floatClose { absolute = 1e-10; relative = 1e-10 } values.[i] expected.[i] (sprintf "%s, row %d" name i))
    ]
