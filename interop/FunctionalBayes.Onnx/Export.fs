namespace FunctionalBayes.Onnx

open System
open System.Collections.Generic
open System.IO
open System.Reflection
open Google.Protobuf
open FunctionalBayes
open FunctionalBayes.Tensors

/// Settings of an ONNX export. The defaults (IR 8, opset 17, float32) load in ONNX Runtime 1.13 and
/// later and pass the onnx 1.12 checker.
type ExportOptions =
    { IrVersion: int64
      Opset: int64
      /// Write float64 tensors instead of float32.
      Float64: bool
      /// The name of the symbolic batch dimension.
      BatchDim: string
      GraphName: string }

    static member Default = { IrVersion = 8L; Opset = 17L; Float64 = false; BatchDim = "batch"; GraphName = "posterior_mean" }

    /// A copy with another format ({ o with … }, for C#, which would otherwise build the record positionally).
    member o.WithFormat(irVersion: int64, opset: int64, float64: bool) = { o with IrVersion = irVersion; Opset = opset; Float64 = float64 }

/// Raised when a model cannot be written as ONNX; the message names the layer or op and says why.
type OnnxExportException(message: string) =
    inherit Exception(message)

/// Exports posterior-mean predictors (every latent replaced by a point estimate, each prediction by
/// its predictive mean) to ONNX.
[<RequireQualifiedAccess>]
module Export =

    /// Layers whose forward pass builds part of its design on the host from the data, so it has no
    /// graph to export: prefix of their site names, and why.
    let private hostComputed =
        [ "PSplineLayer_", "its B-spline basis of x is computed on the host from the data, outside the tensor graph"
          "HSGPLayer_", "its sine basis of x is computed on the host from the data, outside the tensor graph" ]

    /// The predictive mean of an observation distribution: class probabilities for a categorical, the
    /// expected class for an ordered logistic, the mean otherwise.
    let predictiveMean (d: Distribution) : Tensor =
        match d, Dist.classProbs d with
        | (OrderedLogistic _ | Independent (OrderedLogistic _, _)), Some p ->
            let k = p.Shape.[p.Rank - 1]
            Tensor.sumAxes [| -1 |] false (p * Tensor.cast p.Dtype (Tensor.arange k))
        | _, Some p -> p
        | _ -> Dist.mean d

    /// The model run at the points: latents take their point values (substituted inside, so they have them
    /// before the mean handler sees them); each sample site left without a value (an observation to
    /// predict) takes its predictive mean. Returns the trace and the means by site name, in site order.
    let private atPoints (m: Model<'T>) (points: Map<string, Tensor>) : Trace * (string * Tensor)[] =
        let means = ResizeArray<string * Tensor>()
        let withMeans =
            Handlers.custom (fun s next ->
                if s.Kind = SampleSite && s.Value.IsNone then
                    let v = predictiveMean s.Dist.Value
                    means.Add((s.Name, v))
                    next { s with Value = Some v }
                else next s)
        let _, tr = Traced.atValuesWith withMeans points m
        tr, means.ToArray()

    /// Runs the predictor: latents take their point values; each sample site left without a value (an
    /// observation to predict) returns its predictive mean. Returns the means by site name.
    let predict (modelFn: Map<string, Tensor> -> Model<'T>) (points: Map<string, Tensor>) (data: Map<string, Tensor>) : (string * Tensor)[] =
        Check.finiteData data
        let _, means = atPoints (modelFn data) points
        if means.Length = 0 then
            raise (OnnxExportException "Export: the model predicts nothing from this data; leave the observations out of the data given to the exporter.")
        means

    // ---- building the ONNX graph --------------------------------------------------------------

    type private Builder(opts: ExportOptions, batchInput: string) =
        let nodes = ResizeArray<Onnx.NodeProto>()
        let inits = ResizeArray<Onnx.TensorProto>()
        let mutable counter = 0
        let mutable batchSize: string option = None
        member _.Nodes = nodes
        member _.Inits = inits
        member _.Fresh(prefix: string) =
            counter <- counter + 1
            sprintf "%s_%d" prefix counter
        member b.Node(op: string, inputs: string list, attrs: Onnx.AttributeProto list) : string =
            let out = b.Fresh(op.ToLowerInvariant())
            let n = Onnx.NodeProto(OpType = op, Name = out)
            n.Input.AddRange inputs
            n.Output.Add out
            n.Attribute.AddRange attrs
            nodes.Add n
            out
        member b.Initializer(t: Onnx.TensorProto) =
            t.Name <- b.Fresh "const"
            inits.Add t
            t.Name
        member b.Ints(values: int64[]) =
            let t = Onnx.TensorProto(DataType = int Onnx.TensorProto.Types.DataType.Int64)
            t.Dims.Add(int64 values.Length)
            t.Int64Data.AddRange values
            b.Initializer t
        member b.ScalarInt(v: int64) =
            let t = Onnx.TensorProto(DataType = int Onnx.TensorProto.Types.DataType.Int64)
            t.Int64Data.Add v
            b.Initializer t
        member b.ScalarFloat(v: float) =
            let t = Onnx.TensorProto()
            if opts.Float64 then
                t.DataType <- int Onnx.TensorProto.Types.DataType.Double
                t.DoubleData.Add v
            else
                t.DataType <- int Onnx.TensorProto.Types.DataType.Float
                t.FloatData.Add(float32 v)
            b.Initializer t
        /// The batch size as a 1-element int64 tensor, read from the first input's shape (once).
        member b.BatchSize() =
            match batchSize with
            | Some n -> n
            | None ->
                let shape = b.Node("Shape", [ batchInput ], [])
                let n = b.Node("Slice", [ shape; b.Ints [| 0L |]; b.Ints [| 1L |] ], [])
                batchSize <- Some n
                n
        /// A 1-D int64 shape tensor whose dims are k·batch + c, given per dim as (k, c) (k = 0: fixed).
        member b.ShapeTensor(dims: (int * int)[]) =
            if dims |> Array.forall (fun (k, _) -> k = 0) then b.Ints (dims |> Array.map (snd >> int64))
            else
                let part (k: int, c: int) =
                    if k = 0 then b.Ints [| int64 c |]
                    else
                        let kn = if k = 1 then b.BatchSize() else b.Node("Mul", [ b.BatchSize(); b.Ints [| int64 k |] ], [])
                        if c = 0 then kn else b.Node("Add", [ kn; b.Ints [| int64 c |] ], [])
                b.Node("Concat", dims |> Array.map part |> List.ofArray, [ Onnx.AttributeProto(Name = "axis", Type = Onnx.AttributeProto.Types.AttributeType.Int, I = 0L) ])

    let private attrInt (name: string) (v: int64) = Onnx.AttributeProto(Name = name, Type = Onnx.AttributeProto.Types.AttributeType.Int, I = v)
    let private attrInts (name: string) (vs: int64[]) =
        let a = Onnx.AttributeProto(Name = name, Type = Onnx.AttributeProto.Types.AttributeType.Ints)
        a.Ints.AddRange vs
        a

    let private elemType (opts: ExportOptions) (dt: Dtype) =
        match dt with
        | Float64 | Float32 -> if opts.Float64 then Onnx.TensorProto.Types.DataType.Double else Onnx.TensorProto.Types.DataType.Float
        | Int32 -> Onnx.TensorProto.Types.DataType.Int32
        | Bool -> Onnx.TensorProto.Types.DataType.Bool

    let private constantTensor (opts: ExportOptions) (t: Tensor) =
        let p = Onnx.TensorProto(DataType = int (elemType opts t.Dtype))
        p.Dims.AddRange(t.Shape |> Array.map int64)
        match t.Dtype with
        | Float64 | Float32 ->
            if opts.Float64 then p.DoubleData.AddRange(Tensor.toArray t)
            else p.FloatData.AddRange(Tensor.toArrayF32 t)
        | Int32 -> p.Int32Data.AddRange(Tensor.toInts t)
        | Bool -> p.Int32Data.AddRange(Tensor.toBools t |> Array.map (fun b -> if b then 1 else 0))
        p

    let private fail (msg: string) = raise (OnnxExportException msg)

    // ---- float64 forms of ops that ONNX Runtime's CPU provider implements for float32 only -----------
    // Its CPU kernels for Softplus and Erf are registered for float only (a float64 node fails at load with
    // "Could not find an implementation"), so float64 exports write them out from ops that have float64
    // kernels (Abs, Neg, Exp, Log, Add, Sub, Mul, Div, Sign, Relu, LessOrEqual, Greater, Where).

    /// p(x) by Horner's rule; `coeffs` from the highest power down, a leading 1.0 costs no Mul.
    let private horner (b: Builder) (x: string) (coeffs: float list) =
        let mul u v = b.Node("Mul", [ u; v ], [])
        let add u v = b.Node("Add", [ u; v ], [])
        match coeffs with
        | [] -> b.ScalarFloat 0.0
        | first :: rest ->
            let start = if first = 1.0 then x else mul (b.ScalarFloat first) x
            match rest with
            | [] -> start
            | c :: more -> more |> List.fold (fun acc c -> add (mul acc x) (b.ScalarFloat c)) (add start (b.ScalarFloat c))

    /// softplus(x) = relu(x) + log(1 + exp(−|x|)), which never overflows.
    let private softplus64 (b: Builder) (x: string) =
        let tail = b.Node("Log", [ b.Node("Add", [ b.ScalarFloat 1.0; b.Node("Exp", [ b.Node("Neg", [ b.Node("Abs", [ x ], []) ], []) ], []) ], []) ], [])
        b.Node("Add", [ b.Node("Relu", [ x ], []); tail ], [])

    /// W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969; the coefficients of CALERF, as in
    /// FunctionalBayes.Tensors' Special.erf): erf(x)/x for |x| ≤ 0.46875 as a ratio in s = x², and
    /// erfc(y) = exp(−y²)·erfcx(y) for y = |x| above it (a ratio in y up to 4, in z = 1/y² beyond).
    /// Returns (x, the small-|x| value x·R(x²), erfc(|x|) for large |x|, the test |x| ≤ 0.46875).
    let private erfParts (b: Builder) (x: string) =
        let node op ins = b.Node(op, ins, [])
        let c v = b.ScalarFloat v
        let y = node "Abs" [ x ]
        let s = node "Mul" [ x; x ]
        let smallNum = horner b s [ 0.185777706184603153; 3.16112374387056560; 113.864154151050156; 377.485237685302021; 3209.37758913846947 ]
        let smallDen = horner b s [ 1.0; 23.6012909523441209; 244.024637934444173; 1282.61652607737228; 2844.23683343917062 ]
        let small = node "Mul" [ x; node "Div" [ smallNum; smallDen ] ]
        let midNum =
            horner b y [ 2.15311535474403846e-8; 0.564188496988670089; 8.88314979438837594; 66.1191906371416295; 298.635138197400131
                         881.952221241769090; 1712.04761263407058; 2051.07837782607147; 1230.33935479799725 ]
        let midDen =
            horner b y [ 1.0; 15.7449261107098347; 117.693950891312499; 537.181101862009858; 1621.38957456669019; 3290.79923573345963
                         4362.61909014324716; 3439.36767414372164; 1230.33935480374942 ]
        let mid = node "Div" [ midNum; midDen ]
        let ySq = node "Mul" [ y; y ]
        let z = node "Div" [ c 1.0; ySq ]
        let farNum = horner b z [ 0.0163153871373020978; 0.305326634961232344; 0.360344899949804439; 0.125781726111229246; 0.0160837851487422766; 6.58749161529837803e-4 ]
        let farDen = horner b z [ 1.0; 2.56852019228982242; 1.87295284992346047; 0.527905102951428412; 0.0605183413124413191; 0.00233520497626869185 ]
        let far = node "Div" [ node "Sub" [ c 0.56418958354775628695; node "Mul" [ z; node "Div" [ farNum; farDen ] ] ]; y ]
        let erfcx = node "Where" [ node "LessOrEqual" [ y; c 4.0 ]; mid; far ]
        let erfcLarge = node "Mul" [ node "Exp" [ node "Neg" [ ySq ] ]; erfcx ]
        small, erfcLarge, node "LessOrEqual" [ y; c 0.46875 ]

    let private erf64 (b: Builder) (x: string) =
        let small, erfcLarge, isSmall = erfParts b x
        let large = b.Node("Mul", [ b.Node("Sign", [ x ], []); b.Node("Sub", [ b.ScalarFloat 1.0; erfcLarge ], []) ], [])
        b.Node("Where", [ isSmall; small; large ], [])

    /// erfc(x), with full relative accuracy in the right tail.
    let private erfc64 (b: Builder) (x: string) =
        let small, erfcLarge, isSmall = erfParts b x
        let large = b.Node("Where", [ b.Node("Greater", [ x; b.ScalarFloat 0.0 ], []); erfcLarge; b.Node("Sub", [ b.ScalarFloat 2.0; erfcLarge ], []) ], [])
        b.Node("Where", [ isSmall; b.Node("Sub", [ b.ScalarFloat 1.0; small ], []); large ], [])

    /// An element-wise op's ONNX form (declared in the op table) over its inputs `ins`.
    let rec private onnxForm (b: Builder) (opts: ExportOptions) (opName: string) (ins: string[]) (form: OnnxForm) : string =
        let go = onnxForm b opts opName ins
        match form with
        | OnnxForm.Input k -> ins.[k]
        | OnnxForm.Omitted -> ""
        | OnnxForm.Const v -> b.ScalarFloat v
        | OnnxForm.Node (op, args) -> b.Node(op, List.map go args, [])
        | OnnxForm.ByPrecision (f64, f32) -> go (if opts.Float64 then f64 else f32)
        | OnnxForm.Composite (c, arg) ->
            match c with
            | OnnxComposite.Softplus64 -> softplus64 b (go arg)
            | OnnxComposite.Erf64 -> erf64 b (go arg)
            | OnnxComposite.Erfc64 -> erfc64 b (go arg)
        | OnnxForm.Unsupported why -> fail (sprintf "Export: the op %s has no ONNX form (%s)." opName why)

    /// Writes one recorded op; `batchAttr` flags, per shape attribute entry, the entries that differ
    /// between the two traces (the batch dimension).
    let private emit (b: Builder) (opts: ExportOptions) (op: Op) (ins: string[]) (inShapes: int[][]) (affine: (int * int)[]) : string =
        let node name inputs attrs = b.Node(name, inputs, attrs)
        let x = if ins.Length > 0 then ins.[0] else ""
        let lastTwoPerm (rank: int) = Array.init rank (fun i -> if i = rank - 2 then int64 (rank - 1) elif i = rank - 1 then int64 (rank - 2) else int64 i)
        match op with
        | Unary u -> onnxForm b opts op.Name ins (Ops.onnxUnary u)
        | Binary bo -> onnxForm b opts op.Name ins (Ops.binary bo).Decl.Onnx
        | Compare c -> onnxForm b opts op.Name ins (Ops.compare c).Decl.Onnx
        | Where -> onnxForm b opts op.Name ins Ops.where.Decl.Onnx
        | Clamp (lo, hi) -> onnxForm b opts op.Name ins (Ops.clamp.Decl.Onnx lo hi)
        | Reduce (r, axes, keep) ->
            let ax = axes |> Array.map int64
            match r with
            | Sum -> node "ReduceSum" [ x; b.Ints ax ] [ attrInt "keepdims" (if keep then 1L else 0L) ]
            | Max ->
                if opts.Opset >= 18L then node "ReduceMax" [ x; b.Ints ax ] [ attrInt "keepdims" (if keep then 1L else 0L) ]
                else node "ReduceMax" [ x ] [ attrInts "axes" ax; attrInt "keepdims" (if keep then 1L else 0L) ]
        | MatMul (tA, tB) ->
            let a = if tA then node "Transpose" [ ins.[0] ] [ attrInts "perm" (lastTwoPerm inShapes.[0].Length) ] else ins.[0]
            let c = if tB then node "Transpose" [ ins.[1] ] [ attrInts "perm" (lastTwoPerm inShapes.[1].Length) ] else ins.[1]
            node "MatMul" [ a; c ] []
        | Permute perm -> node "Transpose" [ x ] [ attrInts "perm" (perm |> Array.map int64) ]
        | Reshape _ -> node "Reshape" [ x; b.ShapeTensor affine ] []
        | BroadcastTo _ -> node "Expand" [ x; b.ShapeTensor affine ] []
        | Concat axis -> node "Concat" (List.ofArray ins) [ attrInt "axis" (int64 axis) ]
        | Slice (starts, lengths) ->
            // a batch-dependent length is a whole-axis slice of the batch axis
            let rank = starts.Length
            let varies (k, _) = k <> 0
            if Array.exists varies affine.[.. rank - 1] then fail "Export: a slice starts at a batch-dependent offset; this model has no fixed-size ONNX form."
            // a batch-dependent length must be the whole axis
            for i in 0 .. rank - 1 do
                if varies affine.[rank + i] && (starts.[i] <> 0 || lengths.[i] <> inShapes.[0].[i]) then
                    fail "Export: a slice takes a batch-dependent part of an axis; this model has no fixed-size ONNX form."
            let ends = Array.init rank (fun i -> if varies affine.[rank + i] then Int64.MaxValue else int64 (starts.[i] + lengths.[i]))
            node "Slice" [ x; b.Ints (starts |> Array.map int64); b.Ints ends; b.Ints (Array.init rank int64) ] []
        | Pad (starts, shape) ->
            if affine |> Array.exists (fun (k, _) -> k <> 0) then fail "Export: a padding depends on the batch size; this model has no fixed-size ONNX form."
            let inShape = inShapes.[0]
            let before = starts |> Array.map int64
            let after = Array.init shape.Length (fun i -> int64 (shape.[i] - inShape.[i] - starts.[i]))
            node "Pad" [ x; b.Ints (Array.append before after) ] []
        | Gather axis -> node "Gather" [ ins.[0]; ins.[1] ] [ attrInt "axis" (int64 axis) ]
        | Cumsum (axis, rev) -> node "CumSum" [ x; b.ScalarInt (int64 axis) ] [ attrInt "reverse" (if rev then 1L else 0L) ]
        | Cast dt -> node "Cast" [ x ] [ attrInt "to" (int64 (int (elemType opts dt))) ]
        | StopGradient -> node "Identity" [ x ] []
        | ScatterAdd _ -> fail "Export: scatterAdd appears in gradients, not in a predictor's forward pass; it has no export here."
        | PositiveDefinite -> fail "Export: positiveDefinite (a support check of a matrix-valued distribution) has no ONNX form; it is not part of a predictor's forward pass."
        | Cholesky | TriangularSolve _ ->
            fail (sprintf "Export: the op %s (a multivariate-normal layer or guide) has no ONNX form in the default operator set." op.Name)
        | GlmLogLikelihood _ ->
            fail (sprintf "Export: the op %s (the fused log likelihood of Dist.bernoulliLogitGlm / Dist.poissonLogGlm) scores observations and is not part of a predictor; export the model's predictive mean (Dist.mean of the GLM is x·β + α through its link), not its log density." op.Name)
        | CategoricalGlmLogLikelihood ->
            fail (sprintf "Export: the op %s (the fused log likelihood of Dist.categoricalLogitGlm) scores observations and is not part of a predictor; export the model's predictive mean (the class probabilities softmax(x·β + α)), not its log density." op.Name)

    /// Attribute entries of an op that hold sizes (to compare two traces for the batch dimension).
    let private sizeAttrs (op: Op) : int[] =
        match op with
        | Reshape s | BroadcastTo s -> s
        | Slice (st, len) -> Array.append st len
        | Pad (st, s) -> Array.append st s
        | ScatterAdd (_, n) -> [| n |]
        | _ -> [||]

    let private sameKind (a: Op) (b: Op) =
        match a, b with
        | Reshape _, Reshape _ | BroadcastTo _, BroadcastTo _ | Slice _, Slice _ | Pad _, Pad _ | ScatterAdd _, ScatterAdd _ -> true
        | _ -> a = b

    /// Rows 0..n-1 of the example data, cycling when the example has fewer.
    let private rowsOf (n: int) (data: Map<string, Tensor>) =
        let rows = Data.rows data
        let idx = Tensor.ofInts (Array.init n (fun i -> i % rows))
        Data.take idx data

    let private assemblyVersion () =
        let a = typeof<ExportOptions>.Assembly
        match a.GetCustomAttribute<AssemblyInformationalVersionAttribute>() with
        | null -> string (a.GetName().Version)
        | v -> v.InformationalVersion

    /// The metadata key of the inputs' valid values: a JSON object with one entry per input, its dtype, that
    /// it must be finite, and for category ids that they are integers in min..max. The ONNX Runtime predictor
    /// checks inputs against it, as the library checks data.
    [<Literal>]
    let ValidInputsKey = "functionalbayes.inputs.valid"
    let private validInputsKey = ValidInputsKey

    let private validInputsJson (opts: ExportOptions) (names: string[]) (dtypes: Dtype[]) (idRanges: Dictionary<int, int>) =
        let entries =
            names |> Array.mapi (fun i name ->
                let dt = match elemType opts dtypes.[i] with Onnx.TensorProto.Types.DataType.Double -> "float64" | Onnx.TensorProto.Types.DataType.Float -> "float32" | Onnx.TensorProto.Types.DataType.Int32 -> "int32" | _ -> "bool"
                let ids = match idRanges.TryGetValue i with | true, k -> sprintf ", \"integer\": true, \"min\": 0, \"max\": %d" (k - 1) | _ -> ""
                sprintf "%s: {\"dtype\": \"%s\", \"finite\": true%s}" (Text.Json.JsonSerializer.Serialize name) dt ids)
        "{" + String.Join(", ", entries) + "}"

    /// The ONNX model of any tensor function of batch inputs (rows on the first axis): `f` is traced at
    /// the example inputs of 2 rows and of 3 rows, and every size that changes with the batch becomes
    /// the symbolic batch dimension. The graph's inputs are `inputNames` (the first gives the batch
    /// size), its outputs `outputNames`, one per result of f. Shared by every exporter of this assembly.
    let internal ofFunction (opts: ExportOptions) (f: Tensor[] -> Tensor[]) (inputNames: string[]) (at2: Tensor[]) (at3: Tensor[]) (outputNames: string[]) : Onnx.ModelProto =
        let names = inputNames
        let g2 = Graph.trace f at2
        let g3 = Graph.trace f at3
        if g2.Outputs.Length <> outputNames.Length then
            fail (sprintf "Export: the function returns %d values but %d output names were given." g2.Outputs.Length outputNames.Length)
        if g2.Nodes.Length <> g3.Nodes.Length || Array.exists2 (fun (a: GraphOp) (b: GraphOp) -> not (sameKind a.Op b.Op)) g2.Nodes g3.Nodes then
            fail "Export: the model's graph changes with the batch size (data-dependent control flow); it cannot be written as one ONNX graph."
        let builder = Builder(opts, names.[0])
        // a size seen as a2 at batch 2 and a3 at batch 3 is k·batch + c
        let affineOf (a2: int) (a3: int) = let k = a3 - a2 in (k, a2 - 2 * k)
        let valueNames = Array.zeroCreate<string> g2.Nodes.Length
        let mutable consumer = "the output"
        let nameOf (v: GraphValue) (v3: GraphValue) =
            match v, v3 with
            | GraphInput i, _ -> names.[i]
            | GraphNode i, _ -> valueNames.[i]
            | GraphConstant t, GraphConstant t3 ->
                if Shape.equal t.Shape t3.Shape then builder.Initializer(constantTensor opts t)
                else
                    // a constant as large as the batch: fine when it is one value filled (zerosLike, fullLike)
                    let uniform (c: Tensor) = let v = Tensor.toArray c in v.Length = 0 || v |> Array.forall (fun e -> e.Equals v.[0])
                    let v2 = Tensor.toArray t
                    if t.Rank <> t3.Rank || not (uniform t && uniform t3) || (v2.Length > 0 && t3.Size > 0 && not (v2.[0].Equals (Tensor.toArray t3).[0])) then
                        fail (sprintf "Export: a value of shape %s that depends on the data is computed outside the tensor graph (on the host) and feeds %s, so the predictor cannot be exported." (Shape.format t.Shape) consumer)
                    let scalar = builder.Initializer(constantTensor opts (Tensor.reshape [||] (Tensor.narrow 0 0 1 (Tensor.flatten t))))
                    builder.Node("Expand", [ scalar; builder.ShapeTensor(Array.map2 affineOf t.Shape t3.Shape) ], [])
            | GraphConstant _, _ -> fail "Export: the model's graph changes with the batch size; it cannot be written as one ONNX graph."
        let shapeOf (g: Graph) (v: GraphValue) =
            match v with
            | GraphInput i -> g.InputShapes.[i]
            | GraphNode i -> g.Nodes.[i].Shape
            | GraphConstant t -> t.Shape
        let dtypeOf (v: GraphValue) =
            match v with
            | GraphInput j -> g2.InputDtypes.[j]
            | GraphNode j -> g2.Nodes.[j].Dtype
            | GraphConstant t -> t.Dtype
        // the value an index was cast from (ids given as floats), else the index itself
        let castSource (v: GraphValue) =
            match v with
            | GraphNode j -> (match g2.Nodes.[j].Op with Cast Int32 -> g2.Nodes.[j].Inputs.[0], g3.Nodes.[j].Inputs.[0] | _ -> v, v)
            | GraphInput _ | GraphConstant _ -> v, v
        // the graph input a value is a reshaped or cast copy of
        let rec inputOf (v: GraphValue) =
            match v with
            | GraphInput j -> Some j
            | GraphNode j ->
                match g2.Nodes.[j].Op with
                | Cast _ | Reshape _ | StopGradient -> inputOf g2.Nodes.[j].Inputs.[0]
                | _ -> None
            | GraphConstant _ -> None
        // ids per input: the smallest table they index (integer ids in 0..K−1)
        let idRanges = Dictionary<int, int>()
        for i in 0 .. g2.Nodes.Length - 1 do
            let n2 = g2.Nodes.[i]
            let n3 = g3.Nodes.[i]
            consumer <- sprintf "the op %s" n2.Op.Name
            let ins = Array.map2 nameOf n2.Inputs n3.Inputs
            let a2 = sizeAttrs n2.Op
            let a3 = sizeAttrs n3.Op
            let emitOp (ins: string[]) = emit builder opts n2.Op ins (n2.Inputs |> Array.map (shapeOf g2)) (Array.map2 affineOf a2 a3)
            valueNames.[i] <-
                match n2.Op with
                | Gather 0 when n2.Dtype.IsFloat ->
                    // the library refuses an id that is not an integer in 0..K−1; the graph answers NaN for it,
                    // never another group's value (ONNX's Gather takes −1 as the last row, Cast truncates 1.5)
                    let k = (shapeOf g2 n2.Inputs.[0]).[0]
                    let src2, src3 = castSource n2.Inputs.[1]
                    match inputOf src2 with
                    | Some j -> idRanges.[j] <- (match idRanges.TryGetValue j with | true, k0 -> min k0 k | _ -> k)
                    | None -> ()
                    let node op inputs = builder.Node(op, inputs, [])
                    let v = nameOf src2 src3
                    let v = if (dtypeOf src2).IsFloat then v else builder.Node("Cast", [ v ], [ attrInt "to" (int64 (int (elemType opts n2.Dtype))) ])
                    let inRange = node "And" [ node "GreaterOrEqual" [ v; builder.ScalarFloat 0.0 ]; node "Less" [ v; builder.ScalarFloat (float k) ] ]
                    let valid = node "And" [ inRange; node "Equal" [ v; node "Floor" [ v ] ] ]
                    // an invalid id reads row 0 (Gather refuses ids beyond the table) and is then made NaN
                    let zero = builder.Initializer(constantTensor opts (Tensor.reshape [||] (Tensor.ofInts [| 0 |])))
                    let safeIds = node "Where" [ valid; ins.[1]; zero ]
                    let out = emitOp [| ins.[0]; safeIds |]
                    let nanOrZero = node "Where" [ valid; builder.ScalarFloat 0.0; builder.ScalarFloat nan ]
                    let idxRank = (shapeOf g2 n2.Inputs.[1]).Length
                    let extra = n2.Shape.Length - idxRank
                    let mask = if extra = 0 then nanOrZero else node "Unsqueeze" [ nanOrZero; builder.Ints (Array.init extra (fun e -> int64 (idxRank + e))) ]
                    node "Add" [ out; mask ]
                | _ -> emitOp ins
        let valueInfo (name: string) (dt: Dtype) (s2: int[]) (s3: int[]) =
            let tt = Onnx.TypeProto.Types.Tensor(ElemType = int (elemType opts dt), Shape = Onnx.TensorShapeProto())
            for d in 0 .. s2.Length - 1 do
                let dim = Onnx.TensorShapeProto.Types.Dimension()
                if s2.[d] <> s3.[d] then dim.DimParam <- opts.BatchDim else dim.DimValue <- int64 s2.[d]
                tt.Shape.Dim.Add dim
            Onnx.ValueInfoProto(Name = name, Type = Onnx.TypeProto(TensorType = tt))
        consumer <- "the output"
        let outputs =
            g2.Outputs |> Array.mapi (fun i o ->
                let outName = outputNames.[i]
                let src = nameOf o g3.Outputs.[i]
                let idn = Onnx.NodeProto(OpType = "Identity", Name = outName)
                idn.Input.Add src
                idn.Output.Add outName
                builder.Nodes.Add idn
                let dt = match o with GraphNode j -> g2.Nodes.[j].Dtype | GraphInput j -> g2.InputDtypes.[j] | GraphConstant t -> t.Dtype
                valueInfo outName dt (shapeOf g2 o) (shapeOf g3 g3.Outputs.[i]))
        let graph = Onnx.GraphProto(Name = opts.GraphName)
        graph.Node.AddRange builder.Nodes
        graph.Initializer.AddRange builder.Inits
        names |> Array.iteri (fun i k -> graph.Input.Add(valueInfo k g2.InputDtypes.[i] g2.InputShapes.[i] g3.InputShapes.[i]))
        graph.Output.AddRange outputs
        let m = Onnx.ModelProto(IrVersion = opts.IrVersion, ModelVersion = 1L, ProducerName = "FunctionalBayes", ProducerVersion = assemblyVersion (), Graph = graph)
        m.OpsetImport.Add(Onnx.OperatorSetIdProto(Domain = "", Version = opts.Opset))
        m.MetadataProps.Add(Onnx.StringStringEntryProto(Key = validInputsKey, Value = validInputsJson opts names g2.InputDtypes idRanges))
        m

    /// Adds a metadata entry (key, value) to an ONNX model.
    let internal addMetadata (m: Onnx.ModelProto) (key: string) (value: string) =
        m.MetadataProps.Add(Onnx.StringStringEntryProto(Key = key, Value = value))

    /// The name of a predicted site's output in an exported model and in the C# facade's PredictPosteriorMean:
    /// "{site}_mean" (the predictive mean; for a categorical link, the class probabilities).
    let outputName (site: string) : string = site + "_mean"

    /// The ONNX model of a posterior-mean predictor: `points` are the latents' values; `example` holds
    /// every data input (rows on the first axis, observations left out). The graph is traced from the
    /// model's own forward pass at two batch sizes, and every size that changes with the batch
    /// becomes the symbolic batch dimension.
    let toModel (opts: ExportOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (points: Map<string, Tensor>) (example: Map<string, Tensor>) : Onnx.ModelProto =
        if example.IsEmpty then raise (OnnxExportException "Export: give at least one data input.")
        Check.finiteData example
        // sites of layers without a graph
        let proto, _ = atPoints (modelFn (rowsOf 2 example)) points
        for s in proto.Sites do
            for prefix, why in hostComputed do
                if s.Name.StartsWith prefix then
                    let layer = prefix.TrimEnd('_')
                    let name = s.Name.Substring(prefix.Length).Split('_').[0]
                    fail (sprintf "Export: %s '%s' cannot be exported: %s." layer name why)
        let names = example |> Map.toArray |> Array.map fst
        let sample2 = rowsOf 2 example
        let sample3 = rowsOf 3 example
        let f (xs: Tensor[]) =
            let data = Array.zip names xs |> Map.ofArray
            predict modelFn points data |> Array.map snd
        let outNames = predict modelFn points sample2 |> Array.map (fun (n, _) -> outputName n)
        let m = ofFunction opts f names (names |> Array.map (fun k -> sample2.[k])) (names |> Array.map (fun k -> sample3.[k])) outNames
        addMetadata m "functionalbayes.sites" (String.Join(",", points |> Map.keys))
        addMetadata m "functionalbayes.inputs" (String.Join(",", names))
        addMetadata m "functionalbayes.outputs" (String.Join(",", outNames))
        m

    /// The metadata key prefix of a categorical input's levels: "functionalbayes.levels.{input}" holds a
    /// JSON array of the levels in id order (id i is level i), the vocabulary the posterior was fitted with.
    [<Literal>]
    let LevelsKeyPrefix = "functionalbayes.levels."

    /// Adds one metadata entry per categorical input of the model (LevelsKeyPrefix + input name) listing its
    /// levels; vocabularies of keys that are not inputs of the graph are left out.
    let withLevels (levels: Map<string, string[]>) (m: Onnx.ModelProto) : Onnx.ModelProto =
        let inputs = m.Graph.Input |> Seq.map (fun i -> i.Name) |> Set.ofSeq
        for KeyValue (key, ls) in levels do
            if inputs.Contains key then addMetadata m (LevelsKeyPrefix + key) (Text.Json.JsonSerializer.Serialize ls)
        m

    /// The ONNX model's bytes.
    let toBytes (m: Onnx.ModelProto) : byte[] = m.ToByteArray()

    /// Writes the ONNX model to a file.
    let toFile (path: string) (m: Onnx.ModelProto) = File.WriteAllBytes(path, m.ToByteArray())

    /// Exports a posterior's posterior-mean predictor: the latents at their posterior means (from n guide
    /// draws, or all of a sampler's draws; Posterior.mean), with the levels of its categorical inputs in the
    /// metadata (withLevels).
    let posterior (opts: ExportOptions) (p: Posterior<'T>) (key: RngKey) (draws: int) (example: Map<string, Tensor>) : Onnx.ModelProto =
        toModel opts p.Model (Posterior.mean p key draws) example |> withLevels (ModelSignature.levels p.Signature)
