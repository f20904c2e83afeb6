namespace FunctionalBayes.Tensors

open System

/// Functions over tensors: creation, conversion and every op. All ops are differentiable in their
/// float inputs unless said otherwise; shapes follow NumPy broadcasting.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module Tensor =

    let private raw (shape: int[]) (s: Storage) = Tensor(RawTensor(shape, s), null, null)
    let private exec op (xs: Tensor[]) = Prim.Exec(op, xs)

    let private checkLength (what: string) (shape: int[]) (n: int) =
        if shape |> Array.exists (fun d -> d < 0) then
            invalidArg "shape" (sprintf "%s: shape %s has a negative dimension." what (Shape.format shape))
        if Shape.size shape <> n then
            invalidArg "data" (sprintf "%s: %d values cannot fill shape %s (%d elements)." what n (Shape.format shape) (Shape.size shape))

    // ---- creation -----------------------------------------------------------------------------

    /// A float64 tensor of the given shape from row-major data (copied).
    let create (shape: int[]) (data: float[]) =
        checkLength "Tensor.create" shape data.Length
        raw (Array.copy shape) (F64 (Array.copy data))

    /// A float32 tensor of the given shape from row-major data (copied).
    let createF32 (shape: int[]) (data: float32[]) =
        checkLength "Tensor.createF32" shape data.Length
        raw (Array.copy shape) (F32 (Array.copy data))

    /// An int32 tensor (indices) of the given shape (copied).
    let createI32 (shape: int[]) (data: int[]) =
        checkLength "Tensor.createI32" shape data.Length
        raw (Array.copy shape) (I32 (Array.copy data))

    /// A bool tensor (mask) of the given shape (copied).
    let createBool (shape: int[]) (data: bool[]) =
        checkLength "Tensor.createBool" shape data.Length
        raw (Array.copy shape) (B (Array.copy data))

    /// A rank-0 float64 tensor.
    let scalar (v: float) = raw [||] (F64 [| v |])
    /// A rank-0 float32 tensor.
    let scalarF32 (v: float32) = raw [||] (F32 [| v |])
    /// A 1-D float64 tensor.
    let ofArray (a: float[]) = create [| a.Length |] a
    /// A 1-D float32 tensor.
    let ofArrayF32 (a: float32[]) = createF32 [| a.Length |] a
    /// A 1-D int32 tensor.
    let ofInts (a: int[]) = createI32 [| a.Length |] a
    /// A 1-D bool tensor.
    let ofBools (a: bool[]) = createBool [| a.Length |] a

    /// A 2-D float64 tensor.
    let ofArray2D (a: float[,]) =
        let m = Array2D.length1 a
        let n = Array2D.length2 a
        raw [| m; n |] (F64 (Array.init (m * n) (fun k -> a.[k / n, k % n])))

    /// A 2-D float32 tensor.
    let ofArray2DF32 (a: float32[,]) =
        let m = Array2D.length1 a
        let n = Array2D.length2 a
        raw [| m; n |] (F32 (Array.init (m * n) (fun k -> a.[k / n, k % n])))

    /// A tensor of the given dtype and shape filled with one value.
    let fullOf (dtype: Dtype) (shape: int[]) (v: float) =
        checkLength "Tensor.full" shape (Shape.size shape)
        Prim.Constant(dtype, Array.copy shape, v)

    let full (shape: int[]) (v: float) = fullOf Float64 shape v
    let zeros (shape: int[]) = full shape 0.0
    let ones (shape: int[]) = full shape 1.0
    let zerosLike (t: Tensor) = fullOf t.Dtype t.ShapeRef 0.0
    let onesLike (t: Tensor) = fullOf t.Dtype t.ShapeRef 1.0
    let fullLike (t: Tensor) (v: float) = fullOf t.Dtype t.ShapeRef v

    /// 0, 1, ..., n-1 as float64.
    let arange (n: int) = ofArray (Array.init n float)

    /// n evenly spaced values from lo to hi inclusive.
    let linspace (lo: float) (hi: float) (n: int) =
        if n < 2 then invalidArg "n" (sprintf "Tensor.linspace: needs n >= 2, got %d." n)
        ofArray (Array.init n (fun i -> lo + (hi - lo) * float i / float (n - 1)))

    /// The n×n identity matrix.
    let eye (n: int) = create [| n; n |] (Array.init (n * n) (fun k -> if k / n = k % n then 1.0 else 0.0))

    // ---- conversion ---------------------------------------------------------------------------

    let private hostStorage (t: Tensor) =
        match t.Raw.Storage with
        | Device d -> d.ToHost()
        | s -> s

    let private host (t: Tensor) =
        if t.IsTracked then t.NoteHostRead "a read of its values (Tensor.toArray and the like)"
        hostStorage t

    /// The values as float64, for a check that can only raise (input validation): such a read does
    /// not shape the result, so a trace does not note it (a compiled program skips the check).
    /// Read only: a float64 tensor gives its own storage (checks run on every model evaluation).
    let internal valuesForCheck (t: Tensor) : float[] =
        match hostStorage t with
        | F64 a -> a
        | s -> Cpu.toF64 s

    /// The values as float64, row-major (a copy).
    let toArray (t: Tensor) : float[] =
        match host t with
        | F64 a -> Array.copy a
        | s -> Cpu.toF64 s

    /// The values as float32, row-major.
    let toArrayF32 (t: Tensor) : float32[] =
        match host t with
        | F32 a -> Array.copy a
        | s -> Cpu.toF64 s |> Array.map float32

    /// The values as int32 (int tensors, or floats truncated).
    let toInts (t: Tensor) : int[] =
        match host t with
        | I32 a -> Array.copy a
        | s -> Cpu.toF64 s |> Array.map int

    /// The values as bools (masks, or nonzero).
    let toBools (t: Tensor) : bool[] =
        match host t with
        | B a -> Array.copy a
        | s -> Cpu.toF64 s |> Array.map (fun v -> v <> 0.0)

    /// A rank-2 tensor as a 2-D array.
    let toArray2D (t: Tensor) : float[,] =
        if t.Rank <> 2 then invalidArg "t" (sprintf "Tensor.toArray2D: needs rank 2, got shape %s." (Shape.format t.ShapeRef))
        let a = toArray t
        let n = t.ShapeRef.[1]
        Array2D.init t.ShapeRef.[0] n (fun i j -> a.[i * n + j])

    /// The single value of a one-element tensor.
    let toScalar (t: Tensor) : float =
        if t.Size <> 1 then invalidArg "t" (sprintf "Tensor.toScalar: needs one element, got shape %s." (Shape.format t.ShapeRef))
        (toArray t).[0]

    /// Converts to another dtype (differentiable between float dtypes).
    let cast (dtype: Dtype) (t: Tensor) = if t.Dtype = dtype then t else exec (Cast dtype) [| t |]
    let toFloat64 (t: Tensor) = cast Float64 t
    let toFloat32 (t: Tensor) = cast Float32 t

    /// The same values without any differentiation level (a constant: gradients stop here, and a
    /// recorded graph sees a constant).
    let detach (t: Tensor) = t.Detach()

    /// The identity with a zero derivative: gradients stop here, but a recorded graph keeps the op.
    let stopGradient (t: Tensor) = if t.IsTracked then exec StopGradient [| t |] else t

    // ---- element-wise -------------------------------------------------------------------------

    /// The element-wise op `u` (the op table's tests enumerate every op through it).
    let internal un u (t: Tensor) = exec (Ops.unaryOp u) [| t |]
    let add (a: Tensor) (b: Tensor) = a + b
    let sub (a: Tensor) (b: Tensor) = a - b
    let mul (a: Tensor) (b: Tensor) = a * b
    let div (a: Tensor) (b: Tensor) = a / b
    let pow (a: Tensor) (b: Tensor) = Tensor.Pow(a, b)
    let powScalar (a: Tensor) (p: float) = Tensor.Pow(a, p)
    let neg (t: Tensor) = -t
    let exp t = un Exp t
    let log t = un Log t
    let log1p t = un Log1p t
    let expm1 t = un Expm1 t
    let sqrt t = un Sqrt t
    let abs t = un Abs t
    /// -1, 0 or 1 per element (gradient zero).
    let sign t = un Sign t
    let tanh t = un Tanh t
    let sigmoid t = un Sigmoid t
    /// log(1 + exp x), computed stably.
    let softplus t = un Softplus t
    /// log(sigmoid x) = -softplus(-x).
    let logSigmoid (t: Tensor) = -(softplus (-t))
    let relu t = un Relu t
    let lgamma t = un Lgamma t
    let digamma t = un Digamma t
    let trigamma t = un Trigamma t
    let erf t = un Erf t
    let erfc t = un Erfc t
    /// The standard normal CDF Φ.
    let normalCdf t = un NormalCdf t
    /// Sine (radians).
    let sin t = un Sin t
    /// Cosine (radians).
    let cos t = un Cos t
    /// The arctangent, in (−π/2, π/2).
    let atan t = un Atan t
    let square (t: Tensor) = t * t
    let reciprocal (t: Tensor) = 1.0 / t
    let maximum (a: Tensor) (b: Tensor) = Prim.Binary(Maximum, a, b)
    let minimum (a: Tensor) (b: Tensor) = Prim.Binary(Minimum, a, b)
    /// log F(t) of the standard Student-t with df degrees of freedom (df > 0), accurate in both tails. Its
    /// derivative in df is a fourth-order central difference (~1e−10 relative), in t exact.
    let studentTLogCdf (t: Tensor) (df: Tensor) = Prim.Binary(StudentTLogCdf, t, df)
    /// log P(shape, x): the log CDF of gamma(shape, rate 1) at x (−inf at x ≤ 0). Its derivative in shape is
    /// a fourth-order central difference (~1e−10 relative), in x exact.
    let gammaLogP (x: Tensor) (shape: Tensor) = Prim.Binary(GammaLogP, x, shape)
    /// log Q(shape, x) = log(1 − P(shape, x)): the log survival function of gamma(shape, rate 1) at x.
    let gammaLogQ (x: Tensor) (shape: Tensor) = Prim.Binary(GammaLogQ, x, shape)

    /// Clamps to [lo, hi]; either bound may be infinite. The gradient is zero outside the interval.
    let clamp (lo: float) (hi: float) (t: Tensor) = exec (Clamp (lo, hi)) [| t |]

    // ---- comparisons and selection ------------------------------------------------------------

    let private cmp c (a: Tensor) (b: Tensor) =
        let a, b =
            if a.Dtype = b.Dtype then a, b
            elif a.Dtype.IsFloat && b.Dtype.IsFloat then toFloat64 a, toFloat64 b
            else a, b
        exec (Compare c) [| a; b |]
    let private cmpS c (a: Tensor) (v: float) = exec (Compare c) [| a; Prim.Constant(a.Dtype, [||], v) |]
    /// Element-wise a < b as a bool mask (not differentiable).
    let lt a b = cmp Lt a b
    let le a b = cmp Le a b
    let gt a b = cmp Gt a b
    let ge a b = cmp Ge a b
    let eq a b = cmp Eq a b
    let ne a b = cmp Ne a b
    /// Element-wise a < v as a bool mask.
    let ltScalar a v = cmpS Lt a v
    let leScalar a v = cmpS Le a v
    let gtScalar a v = cmpS Gt a v
    let geScalar a v = cmpS Ge a v
    let eqScalar a v = cmpS Eq a v

    /// Picks from a where the bool mask is true, else from b (with broadcasting).
    let where (mask: Tensor) (a: Tensor) (b: Tensor) =
        let a, b = if a.Dtype <> b.Dtype && a.Dtype.IsFloat && b.Dtype.IsFloat then toFloat64 a, toFloat64 b else a, b
        exec Where [| mask; a; b |]

    // ---- shape --------------------------------------------------------------------------------

    /// Same elements in a new shape; one dimension may be -1 and is then inferred.
    let reshape (shape: int[]) (t: Tensor) =
        let shape =
            match shape |> Array.filter (fun d -> d = -1) |> Array.length with
            | 0 -> shape
            | 1 ->
                let known = shape |> Array.filter (fun d -> d <> -1) |> Shape.size
                if known = 0 || t.Size % known <> 0 then
                    invalidArg "shape" (sprintf "reshape: cannot reshape %s to %s." (Shape.format t.ShapeRef) (Shape.format shape))
                shape |> Array.map (fun d -> if d = -1 then t.Size / known else d)
            | _ -> invalidArg "shape" (sprintf "reshape: at most one -1 is allowed, got %s." (Shape.format shape))
        if Shape.equal shape t.ShapeRef then t else exec (Reshape (Array.copy shape)) [| t |]

    /// All elements as a 1-D tensor.
    let flatten (t: Tensor) = reshape [| t.Size |] t

    /// Permutes the axes.
    let permute (perm: int[]) (t: Tensor) =
        let perm = perm |> Array.map (Shape.axis "permute" t.Rank)
        if perm = Array.init t.Rank id then t else exec (Permute perm) [| t |]

    /// Swaps the last two axes (a 1-D tensor is returned unchanged).
    let transpose (t: Tensor) =
        let r = t.Rank
        if r < 2 then t else permute (Array.init r (fun i -> if i = r - 2 then r - 1 elif i = r - 1 then r - 2 else i)) t

    /// Broadcasts to a larger shape.
    let broadcastTo (shape: int[]) (t: Tensor) =
        if Shape.equal shape t.ShapeRef then t else exec (BroadcastTo (Array.copy shape)) [| t |]

    /// Inserts an axis of length 1.
    let unsqueeze (axis: int) (t: Tensor) =
        let a = Shape.axis "unsqueeze" (t.Rank + 1) axis
        let s = t.ShapeRef
        reshape (Array.concat [ s.[.. a - 1]; [| 1 |]; s.[a ..] ]) t

    /// Removes an axis of length 1.
    let squeeze (axis: int) (t: Tensor) =
        let a = Shape.axis "squeeze" t.Rank axis
        if t.ShapeRef.[a] <> 1 then
            invalidArg "axis" (sprintf "squeeze: axis %d has length %d, not 1 (shape %s)." axis t.ShapeRef.[a] (Shape.format t.ShapeRef))
        reshape (Array.append t.ShapeRef.[.. a - 1] t.ShapeRef.[a + 1 ..]) t

    /// Joins tensors along an existing axis.
    let concat (axis: int) (ts: Tensor seq) =
        let ts = Seq.toArray ts
        if ts.Length = 0 then invalidArg "ts" "concat: needs at least one tensor."
        if ts.Length = 1 then ts.[0]
        else
            let ts = if ts |> Array.exists (fun t -> t.Dtype <> ts.[0].Dtype) && ts |> Array.forall (fun t -> t.Dtype.IsFloat)
                     then ts |> Array.map toFloat64 else ts
            exec (Concat (Shape.axis "concat" ts.[0].Rank axis)) ts

    /// Joins tensors of one shape along a new axis.
    let stack (axis: int) (ts: Tensor seq) =
        let ts = Seq.toArray ts
        if ts.Length = 0 then invalidArg "ts" "stack: needs at least one tensor."
        concat axis (ts |> Array.map (unsqueeze axis))

    /// A box of the tensor: per axis a start and a length.
    let slice (starts: int[]) (lengths: int[]) (t: Tensor) = exec (Slice (Array.copy starts, Array.copy lengths)) [| t |]

    /// Elements start .. start+length-1 along one axis.
    let narrow (axis: int) (start: int) (length: int) (t: Tensor) =
        let a = Shape.axis "narrow" t.Rank axis
        let starts = Array.zeroCreate t.Rank
        starts.[a] <- start
        let lengths = t.ShapeRef |> Array.mapi (fun i d -> if i = a then length else d)
        slice starts lengths t

    /// Element i along an axis, dropping that axis.
    let select (axis: int) (i: int) (t: Tensor) =
        let a = Shape.axis "select" t.Rank axis
        narrow a i 1 t |> squeeze a

    /// Selects along an axis by an int32 index tensor of any shape; the result's shape puts the index's
    /// shape in place of that axis. Index 0 of a [vocab, dim] table gives an embedding lookup.
    let indexSelect (axis: int) (indices: Tensor) (t: Tensor) =
        exec (Gather (Shape.axis "indexSelect" t.Rank axis)) [| t; indices |]

    /// Embedding lookup: rows of a table by int32 indices.
    let embedding (table: Tensor) (indices: Tensor) = indexSelect 0 indices table

    /// Adds updates into zeros whose length along `axis` is `size`, at int32 indices (the adjoint of indexSelect).
    let scatterAdd (axis: int) (size: int) (indices: Tensor) (updates: Tensor) =
        exec (ScatterAdd (Shape.axis "scatterAdd" updates.Rank axis, size)) [| updates; indices |]

    /// Cumulative sum along an axis.
    let cumsum (axis: int) (t: Tensor) = exec (Cumsum (Shape.axis "cumsum" t.Rank axis, false)) [| t |]

    // ---- reductions ---------------------------------------------------------------------------

    let private reduceOp r name (axes: int[]) (keepDim: bool) (t: Tensor) =
        let axes = Shape.axes name t.Rank axes
        if axes.Length = 0 then t else exec (Reduce (r, axes, keepDim)) [| t |]

    /// Sum over the given axes.
    let sumAxes (axes: int[]) (keepDim: bool) (t: Tensor) = reduceOp Sum "sum" axes keepDim t
    /// Sum of all elements (rank 0).
    let sum (t: Tensor) = sumAxes (Array.init t.Rank id) false t
    /// Max over the given axes (the gradient is shared among ties).
    let maxAxes (axes: int[]) (keepDim: bool) (t: Tensor) = reduceOp Max "max" axes keepDim t
    let max (t: Tensor) = maxAxes (Array.init t.Rank id) false t
    let minAxes (axes: int[]) (keepDim: bool) (t: Tensor) = -(maxAxes axes keepDim (-t))
    let min (t: Tensor) = -(max (-t))

    /// Mean over the given axes.
    let meanAxes (axes: int[]) (keepDim: bool) (t: Tensor) =
        let axes = Shape.axes "mean" t.Rank axes
        let count = axes |> Array.fold (fun acc a -> acc * t.ShapeRef.[a]) 1
        sumAxes axes keepDim t / float count
    let mean (t: Tensor) = meanAxes (Array.init t.Rank id) false t

    /// A log-sum-exp's shift from the terms' max: no gradient (the value does not depend on it), and finite
    /// where every term is −∞ (the dtype's lowest value: a float32 clamp rounds its bounds), so that the
    /// shifted terms are −∞ there, not NaN.
    let private logsumexpShift (top: Tensor) =
        let lo = if top.Dtype = Float32 then float Single.MinValue else -Double.MaxValue
        clamp lo Double.PositiveInfinity (stopGradient top)

    /// log Σ exp over the given axes, computed stably.
    let logsumexpAxes (axes: int[]) (keepDim: bool) (t: Tensor) =
        let m = logsumexpShift (maxAxes axes true t)
        let s = log (sumAxes axes true (exp (t - m))) + m
        if keepDim then s else reshape (Shape.reduced t.ShapeRef (Shape.axes "logsumexp" t.Rank axes) false) s
    let logsumexp (t: Tensor) = logsumexpAxes (Array.init t.Rank id) false t

    /// log Σₖ exp tₖ element-wise over several tensors (broadcast together), computed stably: shifted by
    /// their element-wise max; −∞ where every term is −∞. A few element-wise passes and no stacked axis:
    /// for a handful of terms, much cheaper than stacking them and reducing a short last axis.
    let logsumexpOf (ts: Tensor seq) =
        match Seq.toList ts with
        | [] -> invalidArg "ts" "logsumexpOf: needs at least one tensor."
        | [ t ] -> t
        | ts ->
            let m = logsumexpShift (List.reduce maximum ts)
            log (ts |> List.map (fun t -> exp (t - m)) |> List.reduce (+)) + m

    /// Softmax along an axis.
    let softmax (axis: int) (t: Tensor) =
        let m = maxAxes [| axis |] true t |> stopGradient
        let e = exp (t - m)
        e / sumAxes [| axis |] true e

    /// log-softmax along an axis.
    let logSoftmax (axis: int) (t: Tensor) = t - logsumexpAxes [| axis |] true t

    // ---- linear algebra -----------------------------------------------------------------------

    /// Matrix product with NumPy's rules: batch axes broadcast; a 1-D operand is a row (left) or a
    /// column (right) vector whose axis is removed from the result.
    let matmul (a: Tensor) (b: Tensor) =
        if a.Rank = 0 || b.Rank = 0 then
            invalidArg "a" (sprintf "matmul: operands must have rank >= 1, got shapes %s and %s." (Shape.format a.ShapeRef) (Shape.format b.ShapeRef))
        let a2 = if a.Rank = 1 then reshape [| 1; a.Size |] a else a
        let b2 = if b.Rank = 1 then reshape [| b.Size; 1 |] b else b
        let a2, b2 = if a2.Dtype <> b2.Dtype && a2.Dtype.IsFloat && b2.Dtype.IsFloat then toFloat64 a2, toFloat64 b2 else a2, b2
        let c = exec (MatMul (false, false)) [| a2; b2 |]
        let c = if b.Rank = 1 then squeeze -1 c else c
        if a.Rank = 1 then squeeze (if b.Rank = 1 then -1 else -2) c else c

    /// Matrix product of rank >= 2 operands, transposing the last two axes of either first,
    /// without materializing the transpose.
    let matmulT (transA: bool) (transB: bool) (a: Tensor) (b: Tensor) = exec (MatMul (transA, transB)) [| a; b |]

    /// Dot product of two 1-D tensors.
    let dot (a: Tensor) (b: Tensor) = sum (a * b)

    /// Lower Cholesky factor of a batch of symmetric positive-definite matrices (reads the lower triangle).
    let cholesky (a: Tensor) = exec Cholesky [| a |]

    /// Whether each matrix of a batch ([..., n, n]) is positive definite, its lower triangle read as a
    /// symmetric matrix (the test Cholesky passes): a bool mask of the batch shape, recorded in graphs
    /// (recomputed when a compiled program is rebound), never raising and not differentiable.
    let positiveDefinite (a: Tensor) = exec PositiveDefinite [| a |]

    /// Solves op(A) X = B for triangular A ([..., n, n]) and B ([..., n, k]); op(A) = Aᵀ when transpose.
    /// A 1-D B is treated as one column.
    let triangularSolve (lower: bool) (transpose: bool) (a: Tensor) (b: Tensor) =
        let b2 = if b.Rank = 1 then reshape [| b.Size; 1 |] b else b
        let batch = Shape.broadcast "triangularSolve" a.ShapeRef.[.. a.Rank - 3] b2.ShapeRef.[.. b2.Rank - 3]
        let a' = broadcastTo (Array.append batch a.ShapeRef.[a.Rank - 2 ..]) a
        let b' = broadcastTo (Array.append batch b2.ShapeRef.[b2.Rank - 2 ..]) b2
        let x = exec (TriangularSolve (lower, transpose)) [| a'; b' |]
        if b.Rank = 1 then reshape [| b.Size |] x else x

    /// The log likelihood of a GLM with the family's canonical link, summed over the rows, as one fused op
    /// (Stan's bernoulli_logit_glm and poisson_log_glm): Σᵢ log p(yᵢ | ηᵢ), η = x·β + α, with x [n, d], α a
    /// scalar or [n], β [d], y [n] and `inside` a bool [n] (whether yᵢ is in the support; a row outside
    /// gives −∞). Bernoulli: −softplus((1 − 2y)·η); Poisson: y·η − e^η, without the −log y! term (data only).
    /// Value and gradient take one pass over x. The distributions Dist.bernoulliLogitGlm and
    /// Dist.poissonLogGlm build the mask and add that term.
    let glmLogLikelihood (family: GlmFamily) (x: Tensor) (alpha: Tensor) (beta: Tensor) (y: Tensor) (inside: Tensor) =
        exec (GlmLogLikelihood family) [| x; alpha; beta; y; inside |]

    /// The log likelihood of a categorical-logit GLM (Stan's categorical_logit_glm), summed over the rows, as
    /// one fused op: Σᵢ (ηᵢ[yᵢ] − logsumexp ηᵢ), η = x·β + α, with x [n, d], α [C] (one intercept per class),
    /// β [d, C], y [n] the class ids 0 .. C − 1 (as x's dtype) and `inside` a bool [n] (whether yᵢ is in the
    /// support; a row outside gives −∞, and its y is not read). Value and gradient take one pass over x. The
    /// distribution Dist.categoricalLogitGlm builds the mask.
    let categoricalGlmLogLikelihood (x: Tensor) (alpha: Tensor) (beta: Tensor) (y: Tensor) (inside: Tensor) =
        exec CategoricalGlmLogLikelihood [| x; alpha; beta; y; inside |]

    /// The diagonal of the last two axes: [..., n, n] -> [..., n].
    let diagonal (a: Tensor) =
        let n = a.ShapeRef.[a.Rank - 1]
        let flat = reshape (Array.append a.ShapeRef.[.. a.Rank - 3] [| n * n |]) a
        indexSelect -1 (ofInts (Array.init n (fun i -> i * (n + 1)))) flat

    /// A batch of diagonal matrices from [..., n]: [..., n, n].
    let diagEmbed (v: Tensor) = unsqueeze -1 v * eye v.ShapeRef.[v.Rank - 1] |> cast v.Dtype

    /// The lower triangle (with the diagonal) of the last two axes; the rest set to zero.
    let tril (a: Tensor) =
        let n = a.ShapeRef.[a.Rank - 1]
        a * (create [| n; n |] (Array.init (n * n) (fun k -> if k / n >= k % n then 1.0 else 0.0)) |> cast a.Dtype)

    /// A constant tensor over a raw tensor, for backends that create their own storage.
    let ofRaw (r: RawTensor) = Tensor(r, null, null)
