namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// The support of a distribution: the set its values lie in.
[<RequireQualifiedAccess>]
type Constraint =
    /// All reals (element-wise).
    | Real
    /// Real vectors (event dimension 1), the support of multivariate normals.
    | RealVector
    /// (0, ∞).
    | Positive
    /// (lo, ∞).
    | GreaterThan of lo: float
    /// (lo, hi).
    | Interval of lo: float * hi: float
    /// (low, ∞) element-wise, with a tensor bound that broadcasts against the value (it may be another
    /// site's value: re-derived at each evaluation).
    | LowerBound of low: Tensor
    /// (−∞, high) element-wise, with a tensor bound as LowerBound's.
    | UpperBound of high: Tensor
    /// (low, high) element-wise, with tensor bounds that broadcast against the value (a Uniform with
    /// batched bounds, or bounds that are other sites' values: re-derived at each evaluation).
    | Between of low: Tensor * high: Tensor
    /// (0, 1).
    | UnitInterval
    /// Non-negative vectors summing to one (last axis).
    | Simplex
    /// Strictly increasing vectors (last axis).
    | OrderedVector
    /// Strictly increasing vectors of positive numbers (last axis).
    | PositiveOrderedVector
    /// Vectors of Euclidean length one (last axis).
    | UnitVector
    /// Lower-triangular matrices with a positive diagonal.
    | LowerCholesky
    /// Cholesky factors of correlation matrices.
    | CorrCholesky
    /// Symmetric positive-definite matrices.
    | PositiveDefinite
    /// 0, 1, 2, ...
    | NonNegativeInteger
    /// lo, lo+1, ..., hi.
    | IntegerInterval of lo: int * hi: int
    /// 0 or 1.
    | Boolean

    /// How many trailing axes one value of the constraint spans.
    member c.EventDims =
        match c with
        | RealVector | Simplex | OrderedVector | PositiveOrderedVector | UnitVector -> 1
        | LowerCholesky | CorrCholesky | PositiveDefinite -> 2
        | Real | Positive | GreaterThan _ | Interval _ | LowerBound _ | UpperBound _ | Between _ | UnitInterval
        | NonNegativeInteger | IntegerInterval _ | Boolean -> 0

    /// True for the integer-valued supports of discrete distributions.
    member c.IsDiscrete =
        match c with
        | NonNegativeInteger | IntegerInterval _ | Boolean -> true
        | Real | RealVector | Positive | GreaterThan _ | Interval _ | LowerBound _ | UpperBound _ | Between _
        | UnitInterval | Simplex | OrderedVector | PositiveOrderedVector | UnitVector | LowerCholesky | CorrCholesky
        | PositiveDefinite -> false

    /// True when the set depends on tensors (element-wise bounds that may be other sites' values), so
    /// it must be re-derived from the site's distribution at each evaluation.
    member c.IsDependent =
        match c with
        | Between _ | LowerBound _ | UpperBound _ -> true
        | Real | RealVector | Positive | GreaterThan _ | Interval _ | UnitInterval | Simplex | OrderedVector
        | PositiveOrderedVector | UnitVector | LowerCholesky | CorrCholesky | PositiveDefinite | NonNegativeInteger
        | IntegerInterval _ | Boolean -> false

/// A smooth invertible map from unconstrained real vectors onto a constraint's set, as used to run
/// gradient-based inference on unconstrained space.
[<RequireQualifiedAccess>]
type Bijector =
    | Identity
    /// y = exp x.
    | Exp
    /// y = lo + exp x.
    | ExpPlus of lo: float
    /// y = low + exp x, element-wise with a tensor bound that broadcasts against x.
    | ExpAbove of low: Tensor
    /// y = high − exp x, element-wise with a tensor bound that broadcasts against x.
    | ExpBelow of high: Tensor
    /// y = lo + (hi - lo) σ(x).
    | Sigmoid of lo: float * hi: float
    /// y = low + (high - low) σ(x), element-wise with tensor bounds that broadcast against x.
    | SigmoidBetween of low: Tensor * high: Tensor
    /// R^(K-1) onto the K-simplex (stick-breaking, with the offset that maps 0 to the uniform vector).
    | StickBreaking
    /// y₀ = x₀, yᵢ = yᵢ₋₁ + exp xᵢ.
    | Ordered
    /// yᵢ = Σ_{j≤i} exp xⱼ (Stan's positive_ordered).
    | PositiveOrdered
    /// y = x / ‖x‖ with log |det J| taken as −‖x‖²/2 (Stan's unit_vector: the radius gets a standard
    /// normal density, so the map is not a bijection but the target on the sphere is right).
    | UnitVector
    /// R^(n(n+1)/2) onto lower-triangular n×n matrices with positive diagonal: the strictly lower
    /// entries first (row-major), then the log of the diagonal.
    | LowerCholesky
    /// R^(n(n-1)/2) onto Cholesky factors of correlation matrices (tanh to partial correlations).
    | CorrCholesky
    /// R^(n(n+1)/2) onto positive-definite matrices: L Lᵀ with L from LowerCholesky.
    | PositiveDefinite

[<RequireQualifiedAccess>]
module Bijector =

    let private lastDim (t: Tensor) = t.Shape.[t.Rank - 1]
    let private exclusiveCumsum (t: Tensor) = Tensor.cumsum -1 t - t

    /// n for a packed triangle of m entries: m = n(n+1)/2 (withDiagonal) or n(n-1)/2.
    let private sideOf (what: string) (m: int) (withDiagonal: bool) =
        let n =
            if withDiagonal then int (Math.Round((sqrt (8.0 * float m + 1.0) - 1.0) / 2.0))
            else int (Math.Round((sqrt (8.0 * float m + 1.0) + 1.0) / 2.0))
        let m' = if withDiagonal then n * (n + 1) / 2 else n * (n - 1) / 2
        if m' <> m then
            invalidArg "x" (sprintf "%s: a vector of %d entries is not a packed triangle." what m)
        n

    /// Row-major positions (i*n + j) of the strictly lower triangle.
    let private strictLower (n: int) = [| for i in 0 .. n - 1 do for j in 0 .. i - 1 -> i * n + j |]

    /// Fills the strictly lower triangle of [..., n, n] from a packed [..., n(n-1)/2] vector.
    let private fillStrictLower (n: int) (v: Tensor) =
        let pos = strictLower n
        let batch = v.Shape.[.. v.Rank - 2]
        // index n*n positions into [0; v] so that the upper part and diagonal read the zero
        let padded = Tensor.concat -1 [ Tensor.zeros (Array.append batch [| 1 |]) |> Tensor.cast v.Dtype; v ]
        let src = Array.zeroCreate (n * n)
        pos |> Array.iteri (fun k p -> src.[p] <- k + 1)
        Tensor.indexSelect -1 (Tensor.ofInts src) padded |> Tensor.reshape (Array.append batch [| n; n |])

    let private packStrictLower (n: int) (m: Tensor) =
        let batch = m.Shape.[.. m.Rank - 3]
        Tensor.reshape (Array.append batch [| n * n |]) m |> Tensor.indexSelect -1 (Tensor.ofInts (strictLower n))

    let private lowerCholeskyForward (x: Tensor) =
        let m = lastDim x
        let n = sideOf "LowerCholesky" m true
        let off = Tensor.narrow -1 0 (m - n) x
        let logDiag = Tensor.narrow -1 (m - n) n x
        fillStrictLower n off + Tensor.diagEmbed (Tensor.exp logDiag), logDiag

    /// log(1 − tanh² x) = log sech² x = 2(log 2 − |x| − log(1 + e^(−2|x|))): finite for every x, where
    /// log1p(−tanh² x) is −∞ once tanh x rounds to ±1 (|x| ≥ 20).
    let internal logSech2 (x: Tensor) =
        let a = Tensor.abs x
        2.0 * (log 2.0 - a - Tensor.softplus (-2.0 * a))

    let private corrCholeskyParts (x: Tensor) =
        let n = sideOf "CorrCholesky" (lastDim x) false
        let z = fillStrictLower n (Tensor.tanh x)
        // log(1 − z²) per entry, stably from x (zero above the diagonal and on it)
        let log1mz2 = fillStrictLower n (logSech2 x)
        // remaining squared length of each row before column j: Π_{k<j} (1 - z_ik²), in logs
        let logRem = exclusiveCumsum log1mz2
        let diag = Tensor.exp (0.5 * Tensor.diagonal (Tensor.cumsum -1 log1mz2))
        n, z, logRem, diag

    /// Maps unconstrained x onto the constraint's set.
    let forward (b: Bijector) (x: Tensor) : Tensor =
        match b with
        | Bijector.Identity -> x
        | Bijector.Exp -> Tensor.exp x
        | Bijector.ExpPlus lo -> Tensor.exp x + lo
        | Bijector.ExpAbove lo -> lo + Tensor.exp x
        | Bijector.ExpBelow hi -> hi - Tensor.exp x
        | Bijector.Sigmoid (lo, hi) -> lo + (hi - lo) * Tensor.sigmoid x
        | Bijector.SigmoidBetween (lo, hi) -> lo + (hi - lo) * Tensor.sigmoid x
        | Bijector.StickBreaking ->
            let k1 = lastDim x
            let offset = Tensor.ofArray (Array.init k1 (fun i -> log (float (k1 - i)))) |> Tensor.cast x.Dtype
            let z = Tensor.sigmoid (x - offset)
            let logStick = exclusiveCumsum (Tensor.log1p (-z))
            let last = Tensor.exp (Tensor.sumAxes [| -1 |] true (Tensor.log1p (-z)))
            Tensor.concat -1 [ z * Tensor.exp logStick; last ]
        | Bijector.Ordered ->
            let k = lastDim x
            if k = 1 then x
            else
                let first = Tensor.narrow -1 0 1 x
                Tensor.concat -1 [ first; first + Tensor.cumsum -1 (Tensor.exp (Tensor.narrow -1 1 (k - 1) x)) ]
        | Bijector.PositiveOrdered -> Tensor.cumsum -1 (Tensor.exp x)
        | Bijector.UnitVector -> x / Tensor.sqrt (Tensor.sumAxes [| -1 |] true (x * x))
        | Bijector.LowerCholesky -> fst (lowerCholeskyForward x)
        | Bijector.CorrCholesky ->
            let _, z, logRem, diag = corrCholeskyParts x
            z * Tensor.exp (0.5 * logRem) + Tensor.diagEmbed diag
        | Bijector.PositiveDefinite ->
            let l, _ = lowerCholeskyForward x
            Tensor.matmul l (Tensor.transpose l)

    /// Maps a point of the constraint's set back to unconstrained space.
    let inverse (b: Bijector) (y: Tensor) : Tensor =
        match b with
        | Bijector.Identity -> y
        | Bijector.Exp -> Tensor.log y
        | Bijector.ExpPlus lo -> Tensor.log (y - lo)
        | Bijector.ExpAbove lo -> Tensor.log (y - lo)
        | Bijector.ExpBelow hi -> Tensor.log (hi - y)
        | Bijector.Sigmoid (lo, hi) ->
            let u = (y - lo) / (hi - lo)
            Tensor.log u - Tensor.log1p (-u)
        | Bijector.SigmoidBetween (lo, hi) ->
            let u = (y - lo) / (hi - lo)
            Tensor.log u - Tensor.log1p (-u)
        | Bijector.StickBreaking ->
            let k1 = lastDim y - 1
            let head = Tensor.narrow -1 0 k1 y
            let stick = 1.0 - exclusiveCumsum head
            let z = head / stick
            let offset = Tensor.ofArray (Array.init k1 (fun i -> log (float (k1 - i)))) |> Tensor.cast y.Dtype
            Tensor.log z - Tensor.log1p (-z) + offset
        | Bijector.Ordered ->
            let k = lastDim y
            if k = 1 then y
            else
                let d = Tensor.narrow -1 1 (k - 1) y - Tensor.narrow -1 0 (k - 1) y
                Tensor.concat -1 [ Tensor.narrow -1 0 1 y; Tensor.log d ]
        | Bijector.PositiveOrdered ->
            let k = lastDim y
            if k = 1 then Tensor.log y
            else Tensor.log (Tensor.concat -1 [ Tensor.narrow -1 0 1 y; Tensor.narrow -1 1 (k - 1) y - Tensor.narrow -1 0 (k - 1) y ])
        // the point on the sphere itself (radius 1)
        | Bijector.UnitVector -> y
        | Bijector.LowerCholesky ->
            let n = lastDim y
            Tensor.concat -1 [ packStrictLower n y; Tensor.log (Tensor.diagonal y) ]
        | Bijector.CorrCholesky ->
            let n = lastDim y
            let rem = 1.0 - exclusiveCumsum (y * y)
            let z = packStrictLower n (y / Tensor.sqrt (Tensor.clamp 1e-300 infinity rem))
            0.5 * (Tensor.log1p z - Tensor.log1p (-z))
        | Bijector.PositiveDefinite ->
            let l = Tensor.cholesky y
            let n = lastDim l
            Tensor.concat -1 [ packStrictLower n l; Tensor.log (Tensor.diagonal l) ]

    /// log |det ∂forward/∂x| at unconstrained x: element-wise for scalar maps, summed over the
    /// event for vector and matrix maps (then of shape x.Shape without its last axis).
    let logAbsDetJacobian (b: Bijector) (x: Tensor) : Tensor =
        match b with
        | Bijector.Identity -> Tensor.zerosLike x
        | Bijector.Exp | Bijector.ExpPlus _ | Bijector.ExpAbove _ | Bijector.ExpBelow _ -> x
        | Bijector.Sigmoid (lo, hi) -> log (hi - lo) + Tensor.logSigmoid x + Tensor.logSigmoid (-x)
        | Bijector.SigmoidBetween (lo, hi) -> Tensor.log (hi - lo) + Tensor.logSigmoid x + Tensor.logSigmoid (-x)
        | Bijector.StickBreaking ->
            let k1 = lastDim x
            let offset = Tensor.ofArray (Array.init k1 (fun i -> log (float (k1 - i)))) |> Tensor.cast x.Dtype
            let x' = x - offset
            let logOneMinusZ = Tensor.logSigmoid (-x')
            Tensor.sumAxes [| -1 |] false (Tensor.logSigmoid x' + logOneMinusZ + exclusiveCumsum logOneMinusZ)
        | Bijector.Ordered ->
            let k = lastDim x
            if k = 1 then Tensor.sumAxes [| -1 |] false (Tensor.zerosLike x)
            else Tensor.sumAxes [| -1 |] false (Tensor.narrow -1 1 (k - 1) x)
        | Bijector.PositiveOrdered -> Tensor.sumAxes [| -1 |] false x
        | Bijector.UnitVector -> -0.5 * Tensor.sumAxes [| -1 |] false (x * x)
        | Bijector.LowerCholesky -> Tensor.sumAxes [| -1 |] false (snd (lowerCholeskyForward x))
        | Bijector.CorrCholesky ->
            let n, _, logRem, _ = corrCholeskyParts x
            Tensor.sumAxes [| -1 |] false (logSech2 x)
            + Tensor.sumAxes [| -1 |] false (0.5 * packStrictLower n logRem)
        | Bijector.PositiveDefinite ->
            // exp on the diagonal, then L -> L Lᵀ: 2^n Π L_ii^(n-i) (0-based i)
            let _, logDiag = lowerCholeskyForward x
            let n = lastDim logDiag
            let powers = Tensor.ofArray (Array.init n (fun i -> float (n - i) + 1.0)) |> Tensor.cast x.Dtype
            float n * log 2.0 + Tensor.sumAxes [| -1 |] false (powers * logDiag)

    /// The unconstrained shape that maps onto a constrained value of the given shape.
    let unconstrainedShape (b: Bijector) (shape: int[]) : int[] =
        let r = shape.Length
        match b with
        | Bijector.StickBreaking -> Array.append shape.[.. r - 2] [| shape.[r - 1] - 1 |]
        | Bijector.LowerCholesky | Bijector.PositiveDefinite ->
            let n = shape.[r - 1]
            Array.append shape.[.. r - 3] [| n * (n + 1) / 2 |]
        | Bijector.CorrCholesky ->
            let n = shape.[r - 1]
            Array.append shape.[.. r - 3] [| n * (n - 1) / 2 |]
        | Bijector.Identity | Bijector.Exp | Bijector.ExpPlus _ | Bijector.ExpAbove _ | Bijector.ExpBelow _ | Bijector.Sigmoid _
        | Bijector.SigmoidBetween _ | Bijector.Ordered | Bijector.PositiveOrdered | Bijector.UnitVector -> shape

[<RequireQualifiedAccess>]
module Constraint =

    /// The bijector from unconstrained space onto the constraint (as NumPyro's biject_to).
    let bijector (c: Constraint) : Bijector =
        match c with
        | Constraint.Real | Constraint.RealVector -> Bijector.Identity
        | Constraint.Positive -> Bijector.Exp
        | Constraint.GreaterThan lo -> Bijector.ExpPlus lo
        | Constraint.Interval (lo, hi) -> Bijector.Sigmoid (lo, hi)
        | Constraint.LowerBound lo -> Bijector.ExpAbove lo
        | Constraint.UpperBound hi -> Bijector.ExpBelow hi
        | Constraint.Between (lo, hi) -> Bijector.SigmoidBetween (lo, hi)
        | Constraint.UnitInterval -> Bijector.Sigmoid (0.0, 1.0)
        | Constraint.Simplex -> Bijector.StickBreaking
        | Constraint.OrderedVector -> Bijector.Ordered
        | Constraint.PositiveOrderedVector -> Bijector.PositiveOrdered
        | Constraint.UnitVector -> Bijector.UnitVector
        | Constraint.LowerCholesky -> Bijector.LowerCholesky
        | Constraint.CorrCholesky -> Bijector.CorrCholesky
        | Constraint.PositiveDefinite -> Bijector.PositiveDefinite
        | Constraint.NonNegativeInteger | Constraint.IntegerInterval _ | Constraint.Boolean ->
            invalidArg "c" (sprintf "Constraint.bijector: %A is discrete and has no map from unconstrained space; enumerate or marginalize it." c)

    /// Whether each value (each event, for vector and matrix constraints) lies in the set: a bool mask.
    let rec check (c: Constraint) (x: Tensor) : Tensor =
        let all (m: Tensor) (axes: int[]) =
            // a conjunction over axes: the minimum of 0/1 values
            Tensor.minAxes axes false (Tensor.cast Float64 m) |> fun t -> Tensor.gtScalar t 0.5
        let isInt (x: Tensor) = if x.Dtype = Int32 then Tensor.eq x x else Tensor.eq x (Tensor.cast x.Dtype (Tensor.cast Int32 x))
        match c with
        | Constraint.Real -> Tensor.eq x x
        | Constraint.RealVector -> all (Tensor.eq x x) [| -1 |]
        | Constraint.Positive -> Tensor.gtScalar x 0.0
        | Constraint.GreaterThan lo -> Tensor.gtScalar x lo
        | Constraint.Interval (lo, hi) -> Tensor.where (Tensor.gtScalar x lo) (Tensor.ltScalar x hi) (Tensor.gtScalar x lo)
        | Constraint.LowerBound lo -> Tensor.broadcastTo (Shape.broadcast "Constraint.LowerBound" x.Shape lo.Shape) (Tensor.gt x lo)
        | Constraint.UpperBound hi -> Tensor.broadcastTo (Shape.broadcast "Constraint.UpperBound" x.Shape hi.Shape) (Tensor.lt x hi)
        | Constraint.Between (lo, hi) ->
            let above = Tensor.broadcastTo (Shape.broadcast "Constraint.Between" x.Shape (Shape.broadcast "Constraint.Between" lo.Shape hi.Shape)) (Tensor.gt x lo)
            Tensor.where above (Tensor.lt x hi) above
        | Constraint.UnitInterval -> Tensor.where (Tensor.gtScalar x 0.0) (Tensor.ltScalar x 1.0) (Tensor.gtScalar x 0.0)
        | Constraint.Simplex ->
            let nonneg = all (Tensor.geScalar x 0.0) [| -1 |]
            let sums = Tensor.abs (Tensor.sumAxes [| -1 |] false x - 1.0)
            Tensor.where nonneg (Tensor.ltScalar sums 1e-6) nonneg
        | Constraint.OrderedVector ->
            let k = x.Shape.[x.Rank - 1]
            if k < 2 then all (Tensor.eq x x) [| -1 |]
            else all (Tensor.gt (Tensor.narrow -1 1 (k - 1) x) (Tensor.narrow -1 0 (k - 1) x)) [| -1 |]
        | Constraint.PositiveOrderedVector ->
            let positive = all (Tensor.gtScalar (Tensor.narrow -1 0 1 x) 0.0) [| -1 |]
            Tensor.where positive (check Constraint.OrderedVector x) positive
        | Constraint.UnitVector -> Tensor.ltScalar (Tensor.abs (Tensor.sumAxes [| -1 |] false (x * x) - 1.0)) 1e-8
        | Constraint.LowerCholesky | Constraint.CorrCholesky | Constraint.PositiveDefinite ->
            let diagPos = all (Tensor.gtScalar (Tensor.diagonal x) 0.0) [| -1 |]
            let structure =
                match c with
                | Constraint.PositiveDefinite ->
                    // symmetric, and its Cholesky factorization succeeds (a graph op, so exact after a rebind)
                    let symmetric = Tensor.ltScalar (Tensor.maxAxes [| -2; -1 |] false (Tensor.abs (x - Tensor.transpose x))) 1e-8
                    Tensor.where symmetric (Tensor.positiveDefinite x) symmetric
                | Constraint.CorrCholesky ->
                    let upperZero = Tensor.ltScalar (Tensor.maxAxes [| -2; -1 |] false (Tensor.abs (x - Tensor.tril x))) 1e-300
                    let unitRows = Tensor.ltScalar (Tensor.maxAxes [| -1 |] false (Tensor.abs (Tensor.sumAxes [| -1 |] false (x * x) - 1.0))) 1e-6
                    Tensor.where upperZero unitRows upperZero
                | _ -> Tensor.ltScalar (Tensor.maxAxes [| -2; -1 |] false (Tensor.abs (x - Tensor.tril x))) 1e-300
            Tensor.where diagPos structure diagPos
        | Constraint.NonNegativeInteger -> Tensor.where (Tensor.geScalar x 0.0) (isInt x) (Tensor.geScalar x 0.0)
        | Constraint.IntegerInterval (lo, hi) ->
            let inRange = Tensor.where (Tensor.geScalar x (float lo)) (Tensor.leScalar x (float hi)) (Tensor.geScalar x (float lo))
            Tensor.where inRange (isInt x) inRange
        | Constraint.Boolean -> Tensor.where (Tensor.eqScalar x 0.0) (Tensor.eqScalar x 0.0) (Tensor.eqScalar x 1.0)
