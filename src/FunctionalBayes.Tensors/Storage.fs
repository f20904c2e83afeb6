namespace FunctionalBayes.Tensors

open System

/// The cases of unions without fields (each case a singleton), read once by reflection where a table
/// over every case is built: the op table, op names, the tags of settings in files.
[<RequireQualifiedAccess>]
module internal UnionCases =
    /// Every case of 'U, a union whose cases have no fields, in declaration order.
    let nullary<'U> () : 'U[] =
        Microsoft.FSharp.Reflection.FSharpType.GetUnionCases(typeof<'U>)
        |> Array.map (fun c -> Microsoft.FSharp.Reflection.FSharpValue.MakeUnion(c, [||]) :?> 'U)

    /// A case's tag (its index in declaration order) as a delegate over the compiled `Tag` getter, which F#
    /// hides inside the defining assembly: a table indexed by it is read without hashing.
    let tagReader<'U> () : Func<'U, int> =
        match typeof<'U>.GetProperty("Tag") with
        | null -> invalidOp (sprintf "UnionCases.tagReader: %s has no Tag property." typeof<'U>.Name)
        | p ->
            match p.GetMethod with
            | null -> invalidOp (sprintf "UnionCases.tagReader: %s's Tag has no getter." typeof<'U>.Name)
            | get -> get.CreateDelegate<Func<'U, int>>()

/// Memory owned by a non-CPU backend (for example a CUDA device). The CPU backend never sees one.
[<AbstractClass>]
type DeviceBuffer() =
    /// The backend that owns and executes on this buffer.
    abstract Backend: IBackend
    abstract Dtype: Dtype
    abstract Length: int
    /// A host copy of the data, for printing, conversion and tests.
    abstract ToHost: unit -> Storage

/// Flat, row-major element storage.
and Storage =
    | F64 of float[]
    | F32 of float32[]
    | I32 of int[]
    | B of bool[]
    | Device of DeviceBuffer

    member s.Dtype =
        match s with
        | F64 _ -> Float64
        | F32 _ -> Float32
        | I32 _ -> Dtype.Int32
        | B _ -> Bool
        | Device d -> d.Dtype

/// A shaped, contiguous, immutable block of values without autodiff information.
and [<Sealed; AllowNullLiteral>] RawTensor(shape: int[], storage: Storage) =
    member _.Shape = shape
    member _.Storage = storage
    member _.Dtype = storage.Dtype
    member _.Size = Shape.size shape
    member _.Rank = shape.Length

/// Executes primitive ops on raw tensors. The CPU backend is built in; a device backend plugs in by
/// returning raw tensors whose storage is a DeviceBuffer that names it.
and IBackend =
    abstract Name: string
    /// Runs one primitive op. Shapes and dtypes are already validated; outShape is the result's shape.
    abstract Execute: op: Op * inputs: RawTensor[] * outShape: int[] * outDtype: Dtype -> RawTensor

/// The closed set of primitive ops. Each is data: which op and its attributes; inputs are given apart.
/// Composite functions (softmax, logsumexp, log-sigmoid, ...) are built from these.
and UnaryOp =
    | Neg | Exp | Log | Log1p | Expm1 | Sqrt | Abs | Sign | Tanh | Sigmoid | Softplus | Relu
    | Lgamma | Digamma | Trigamma | Erf | Erfc | NormalCdf | Sin | Cos | Atan

/// Unary op names: each case name in camel case (Neg: "neg", NormalCdf: "normalCdf"), so a new op needs no
/// entry; read once by reflection, since a union's ToString formats through reflection on every call.
and [<AbstractClass; Sealed>] internal UnaryNames private () =
    static let names =
        let t = Collections.Generic.Dictionary<UnaryOp, string>(HashIdentity.Reference)
        // cases without fields are singletons, so a case is found by reference
        for u in UnionCases.nullary<UnaryOp> () do
            let name = Microsoft.FSharp.Reflection.FSharpValue.GetUnionFields(u, typeof<UnaryOp>) |> fst |> fun c -> c.Name
            t.[u] <- string (Char.ToLowerInvariant name.[0]) + name.Substring 1
        t
    static member Of(u: UnaryOp) = names.[u]

and BinaryOp =
    | Add | Sub | Mul | Div | Pow | Maximum | Minimum
    /// log F(x) of the standard Student-t with y degrees of freedom.
    | StudentTLogCdf
    /// log P(y, x), the log CDF of gamma(shape y, rate 1) at x.
    | GammaLogP
    /// log Q(y, x) = log(1 − P(y, x)), the log survival function of gamma(shape y, rate 1) at x.
    | GammaLogQ

and CompareOp =
    | Lt | Le | Gt | Ge | Eq | Ne

and ReduceOp =
    | Sum | Max

/// The response family of a fused GLM log likelihood (Tensor.glmLogLikelihood), with its canonical link.
and [<RequireQualifiedAccess>] GlmFamily =
    /// y ∈ {0, 1}, P(y = 1) = σ(η) (Stan's bernoulli_logit_glm).
    | BernoulliLogit
    /// y ∈ {0, 1, 2, ...}, rate e^η (Stan's poisson_log_glm, without its −log y! term).
    | PoissonLog

and Op =
    /// Element-wise function of one tensor.
    | Unary of UnaryOp
    /// Element-wise function of two tensors with NumPy broadcasting.
    | Binary of BinaryOp
    /// Element-wise comparison with broadcasting; gives a Bool mask; not differentiable.
    | Compare of CompareOp
    /// Reduction over the given axes (normalized, sorted).
    | Reduce of ReduceOp * axes: int[] * keepDim: bool
    /// Batched matrix product of two tensors of rank >= 2, optionally transposing the last two axes of either.
    | MatMul of transA: bool * transB: bool
    /// Axis permutation.
    | Permute of perm: int[]
    /// Same elements, new shape.
    | Reshape of shape: int[]
    /// Broadcast to a larger shape.
    | BroadcastTo of shape: int[]
    /// Concatenation of several tensors along an axis.
    | Concat of axis: int
    /// A box: per axis, a start and a length.
    | Slice of starts: int[] * lengths: int[]
    /// Zero padding: the adjoint of Slice. Puts the input at `starts` inside a zero tensor of `shape`.
    | Pad of starts: int[] * shape: int[]
    /// Selects along an axis by an Int32 index tensor (any shape): embedding lookup.
    | Gather of axis: int
    /// Adds updates into a zero tensor whose size along `axis` is `size`, at an Int32 index tensor: Gather's adjoint.
    | ScatterAdd of axis: int * size: int
    /// Cumulative sum along an axis, from the end when reverse.
    | Cumsum of axis: int * reverse: bool
    /// where(mask, a, b) with broadcasting.
    | Where
    /// Clamp to [lo, hi] (either may be infinite).
    | Clamp of lo: float * hi: float
    /// Conversion to another dtype.
    | Cast of Dtype
    /// The identity whose vector-Jacobian product is zero (JAX's stop_gradient): recorded in graphs,
    /// unlike Tensor.detach, which returns a constant.
    | StopGradient
    /// Lower Cholesky factor of a batch of symmetric positive-definite matrices (reads the lower triangle).
    | Cholesky
    /// Solves op(A) X = B for a batch of triangular A (lower or upper; op transposes when `transpose`).
    | TriangularSolve of lower: bool * transpose: bool
    /// A bool mask over the batch of square matrices: whether each factors by Cholesky (its lower triangle
    /// read as a symmetric matrix is positive definite). Not differentiable; never raises.
    | PositiveDefinite
    /// Σᵢ log p(yᵢ | ηᵢ), η = x·β + α, over the rows of x [n, d] in one pass (inputs x, α ([] or [n]),
    /// β [d], y [n] and a bool support mask [n]; a row whose mask is unset gives −∞). See Tensor.glmLogLikelihood.
    | GlmLogLikelihood of GlmFamily
    /// Σᵢ (ηᵢ[yᵢ] − logsumexp ηᵢ), η = x·β + α, the categorical-logit GLM over the rows of x [n, d] in one
    /// pass (inputs x, α [C], β [d, C], y [n] (class ids as x's dtype) and a bool support mask [n]; a row
    /// whose mask is unset gives −∞). See Tensor.categoricalGlmLogLikelihood.
    | CategoricalGlmLogLikelihood

    /// The op's name for messages and graph export.
    member op.Name =
        match op with
        | Unary u -> UnaryNames.Of u
        | Binary b ->
            match b with
            | Add -> "add" | Sub -> "sub" | Mul -> "mul" | Div -> "div" | Pow -> "pow"
            | Maximum -> "maximum" | Minimum -> "minimum"
            | StudentTLogCdf -> "studentTLogCdf" | GammaLogP -> "gammaLogP" | GammaLogQ -> "gammaLogQ"
        | Compare c ->
            match c with
            | Lt -> "lt" | Le -> "le" | Gt -> "gt" | Ge -> "ge" | Eq -> "eq" | Ne -> "ne"
        | Reduce (Sum, _, _) -> "sum"
        | Reduce (Max, _, _) -> "max"
        | MatMul _ -> "matmul"
        | Permute _ -> "permute"
        | Reshape _ -> "reshape"
        | BroadcastTo _ -> "broadcastTo"
        | Concat _ -> "concat"
        | Slice _ -> "slice"
        | Pad _ -> "pad"
        | Gather _ -> "gather"
        | ScatterAdd _ -> "scatterAdd"
        | Cumsum _ -> "cumsum"
        | Where -> "where"
        | Clamp _ -> "clamp"
        | Cast _ -> "cast"
        | StopGradient -> "stopGradient"
        | Cholesky -> "cholesky"
        | TriangularSolve _ -> "triangularSolve"
        | PositiveDefinite -> "positiveDefinite"
        | GlmLogLikelihood _ -> "glmLogLikelihood"
        | CategoricalGlmLogLikelihood -> "categoricalGlmLogLikelihood"
