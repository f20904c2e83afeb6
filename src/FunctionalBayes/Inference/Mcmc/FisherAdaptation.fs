namespace FunctionalBayes

open System
open System.Numerics
open FunctionalBayes.Tensors

/// Settings of nutpie's low-rank metric: the ridge γ of the projected covariances and the eigenvalue
/// cut-off c (directions with λ > c or λ < 1/c are kept).
type LowRankSettings =
    { Gamma: float
      Cutoff: float }

    /// nuts-rs's defaults: γ = 1e-5, c = 2.
    static member Default = { Gamma = 1e-5; Cutoff = 2.0 }

/// How warmup estimates the metric.
[<RequireQualifiedAccess>]
type MetricAdaptation =
    /// Stan's: a diagonal metric from the windowed sample variance with Stan's shrinkage, Stan's schedule.
    | Stan
    /// Stan's schedule with a dense metric from the windowed sample covariance.
    | Dense
    /// nutpie's: σ² = sqrt(Var(x)/Var(∇log p)) per coordinate (minimises the sample Fisher divergence),
    /// nuts-rs's schedule.
    | FisherDiagonal
    /// nutpie's: the Fisher diagonal, then a low-rank correction from the draws' and gradients' spans,
    /// nuts-rs's schedule.
    | FisherLowRank of LowRankSettings

    /// The name written in files and messages.
    member a.Text =
        match a with
        | Stan -> "stan"
        | Dense -> "dense"
        | FisherDiagonal -> "fisherDiagonal"
        | FisherLowRank s -> sprintf "fisherLowRank(gamma %g, cutoff %g)" s.Gamma s.Cutoff

/// Small dense linear algebra for the low-rank estimator (internal). The working forms take flat row-major
/// arrays (entry (i, j) of an n×n matrix at [i·n + j]) and work on contiguous rows with vectorised
/// primitives; the float[,] forms are for tests and small callers. Everything is single-threaded, so the
/// results do not depend on the thread count.
[<RequireQualifiedAccess>]
module internal SmallLinalg =

    let private dot (a: float[]) (ia: int) (b: float[]) (ib: int) (len: int) =
        Simd.Dot(ReadOnlySpan(a, ia, len), ReadOnlySpan(b, ib, len))

    /// dest[id, id + len) += alpha · x[ix, ix + len).
    let private axpy (alpha: float) (x: float[]) (ix: int) (dest: float[]) (id: int) (len: int) =
        if len > 0 then
            Simd.MultiplyAdd(ReadOnlySpan(x, ix, len), alpha, ReadOnlySpan(dest, id, len), Span(dest, id, len))

    /// Rows i and j (length n) of y become c·row i + s·row j and c·row j − s·row i.
    let private rotateRows (y: float[]) (n: int) (i: int) (j: int) (c: float) (s: float) =
        let oi = i * n
        let oj = j * n
        let width = Vector<float>.Count
        let vc = Vector<float>(c)
        let vs = Vector<float>(s)
        let mutable t = 0
        while t + width <= n do
            let a = Vector<float>(y, oi + t)
            let b = Vector<float>(y, oj + t)
            (vc * a + vs * b).CopyTo(y, oi + t)
            (vc * b - vs * a).CopyTo(y, oj + t)
            t <- t + width
        while t < n do
            let a = y.[oi + t]
            let b = y.[oj + t]
            y.[oi + t] <- c * a + s * b
            y.[oj + t] <- c * b - s * a
            t <- t + 1

    let private flat (a: float[,]) =
        let n = Array2D.length1 a
        let m = Array2D.length2 a
        Array.init (n * m) (fun t -> a.[t / m, t % m])

    /// Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric n×n matrix given flat and
    /// row-major (the whole matrix is read): eigenvector k at [k·n, (k+1)·n). Householder reduction to
    /// tridiagonal form T = Qᵀ A Q with the reflections accumulated, then implicit QR steps with Wilkinson's
    /// shift on T, each Givens rotation applied to two rows of Qᵀ (Golub and Van Loan, §8.3): about 9n³
    /// flops.
    let eigh (n: int) (matrix: float[]) : float[] * float[] =
        if n < 0 || matrix.Length <> n * n then
            invalidArg "matrix" (sprintf "SmallLinalg.eigh: a %d×%d matrix needs %d entries, got %d." n n (n * n) matrix.Length)
        match matrix |> Array.tryFindIndex (fun v -> not (Double.IsFinite v)) with
        | Some i -> invalidArg "matrix" (sprintf "SmallLinalg.eigh: entry (%d, %d) is %g; every entry must be finite." (i / n) (i % n) matrix.[i])
        | None -> ()
        // Work on A / 2^k with the largest entry in [1, 2), as LAPACK scales: squares in the shift and the
        // rotations cannot overflow (entries of 1e160 made the iteration NaN), and a power of 2 scales every
        // operation exactly, so the eigenvectors and the rescaled eigenvalues are the unscaled run's bits.
        let largest = if matrix.Length = 0 then 0.0 else matrix |> Array.maxBy abs |> abs
        let k = if largest > 0.0 then Math.ILogB largest else 0
        let a = matrix |> Array.map (fun v -> Math.ScaleB(v, -k))
        let diag = Array.zeroCreate<float> n
        // off.[i] couples i and i + 1
        let off = Array.zeroCreate<float> (max 0 (n - 1))
        let beta = Array.zeroCreate<float> n
        let w = Array.zeroCreate<float> n
        // 1. Step k reflects rows and columns k+1.. (H = I − β v vᵀ, v = x − α e₁, β = 2/vᵀv) so that row k
        // ends at its first off-diagonal entry α; v is kept in row k's tail for step 2.
        for k in 0 .. n - 3 do
            let m = n - k - 1
            let vo = k * n + k + 1
            diag.[k] <- a.[k * n + k]
            let norm = sqrt (dot a vo a vo m)
            if norm > 0.0 then
                let x0 = a.[vo]
                // α of the sign opposite to x₀: no cancellation in v₀ = x₀ − α
                let alpha = if x0 >= 0.0 then -norm else norm
                a.[vo] <- x0 - alpha
                let b = 1.0 / (norm * (norm + abs x0))
                beta.[k] <- b
                off.[k] <- alpha
                // trailing block B ← H B H: p = β B v, w = p − (β vᵀp / 2) v, B ← B − v wᵀ − w vᵀ
                for i in 0 .. m - 1 do w.[i] <- b * dot a ((k + 1 + i) * n + k + 1) a vo m
                axpy (-0.5 * b * dot a vo w 0 m) a vo w 0 m
                for i in 0 .. m - 1 do
                    let ro = (k + 1 + i) * n + k + 1
                    axpy (-a.[vo + i]) w 0 a ro m
                    axpy (-w.[i]) a vo a ro m
        if n >= 2 then
            diag.[n - 2] <- a.[(n - 2) * n + n - 2]
            off.[n - 2] <- a.[(n - 1) * n + n - 2]
        if n >= 1 then diag.[n - 1] <- a.[n * n - 1]
        // 2. y = Qᵀ = H_{n−3} ⋯ H₀, as y ← y H_k from k = n − 3 down: rows ≤ k of y are still unit rows
        // with zeros past column k then, so only rows k+1.. change
        let y = Array.zeroCreate<float> (n * n)
        for i in 0 .. n - 1 do y.[i * n + i] <- 1.0
        for k in n - 3 .. -1 .. 0 do
            let b = beta.[k]
            if b <> 0.0 then
                let m = n - k - 1
                let vo = k * n + k + 1
                for i in k + 1 .. n - 1 do
                    let ro = i * n + k + 1
                    axpy (-b * dot y ro a vo m) a vo y ro m
        // 3. implicit QR steps with Wilkinson's shift on the lowest unreduced block [p, q] of T; a rotation G
        // in the plane (k, k+1) makes T ← Gᵀ T G (chasing the bulge at (k+2, k) down) and y ← Gᵀ y. An
        // off-diagonal entry at or below eps·‖T‖∞ is set to 0 (absolute accuracy eps·‖A‖, as the reduction).
        let mutable tnorm = 0.0
        for i in 0 .. n - 1 do
            let row = abs diag.[i] + (if i > 0 then abs off.[i - 1] else 0.0) + (if i < n - 1 then abs off.[i] else 0.0)
            tnorm <- max tnorm row
        let tol = (Math.BitIncrement 1.0 - 1.0) * tnorm
        let mutable q = n - 1
        let mutable steps = 0
        while q > 0 do
            for i in 0 .. q - 1 do
                if abs off.[i] <= tol then off.[i] <- 0.0
            while q > 0 && off.[q - 1] = 0.0 do q <- q - 1
            if q > 0 then
                let mutable p = q - 1
                while p > 0 && off.[p - 1] <> 0.0 do p <- p - 1
                steps <- steps + 1
                if steps > 30 * n then
                    invalidOp (sprintf "SmallLinalg.eigh: the QR iteration did not converge in %d steps (n = %d)." (30 * n) n)
                // the eigenvalue of T's trailing 2×2 block of [p, q] closer to T[q, q]
                let dd = 0.5 * (diag.[q - 1] - diag.[q])
                let bq = off.[q - 1]
                let mu = diag.[q] - bq * bq / (dd + (if dd >= 0.0 then 1.0 else -1.0) * Double.Hypot(dd, bq))
                let mutable x = diag.[p] - mu
                let mutable z = off.[p]
                for k in p .. q - 1 do
                    let r = Double.Hypot(x, z)
                    let c = if r = 0.0 then 1.0 else x / r
                    let s = if r = 0.0 then 0.0 else z / r
                    if k > p then off.[k - 1] <- r
                    let a0 = diag.[k]
                    let b0 = off.[k]
                    let c0 = diag.[k + 1]
                    let cs = c * s
                    diag.[k] <- c * c * a0 + 2.0 * cs * b0 + s * s * c0
                    diag.[k + 1] <- s * s * a0 - 2.0 * cs * b0 + c * c * c0
                    off.[k] <- cs * (c0 - a0) + (c * c - s * s) * b0
                    if k < q - 1 then
                        z <- s * off.[k + 1]
                        off.[k + 1] <- c * off.[k + 1]
                        x <- off.[k]
                    rotateRows y n k (k + 1) c s
        let order = Array.init n id |> Array.sortWith (fun i j -> match compare diag.[i] diag.[j] with 0 -> compare i j | c -> c)
        let vectors = Array.zeroCreate<float> (n * n)
        order |> Array.iteri (fun k i -> Array.blit y (i * n) vectors (k * n) n)
        order |> Array.map (fun i -> Math.ScaleB(diag.[i], k)), vectors

    /// Eigenvalues (ascending) and eigenvectors of a symmetric matrix: (values, V) with A = V diag(values) Vᵀ,
    /// column j of V (V.[i, j]) the j-th eigenvector.
    let symmetricEigen (a: float[,]) : float[] * float[,] =
        let n = Array2D.length1 a
        if Array2D.length2 a <> n then invalidArg "a" (sprintf "SmallLinalg.symmetricEigen: the matrix must be square, got %d×%d." n (Array2D.length2 a))
        let values, vectors = eigh n (flat a)
        values, Array2D.init n n (fun i j -> vectors.[j * n + i])

    let mul (a: float[,]) (b: float[,]) : float[,] =
        let n = Array2D.length1 a
        let m = Array2D.length2 b
        let inner = Array2D.length2 a
        Array2D.init n m (fun i j ->
            let mutable s = 0.0
            for k in 0 .. inner - 1 do s <- s + a.[i, k] * b.[k, j]
            s)

    /// The lower Cholesky factor L (flat, row-major) of a symmetric positive definite n×n matrix, A = L Lᵀ.
    let cholesky (n: int) (a: float[]) : float[] =
        let l = Array.zeroCreate<float> (n * n)
        for j in 0 .. n - 1 do
            let s = a.[j * n + j] - dot l (j * n) l (j * n) j
            if not (s > 0.0 && Double.IsFinite s) then
                invalidOp (sprintf "SmallLinalg.cholesky: the %d×%d matrix is not positive definite (pivot %d is %g)." n n j s)
            let ljj = sqrt s
            l.[j * n + j] <- ljj
            for i in j + 1 .. n - 1 do
                l.[i * n + j] <- (a.[i * n + j] - dot l (i * n) l (j * n) j) / ljj
        l

    /// The SPD geometric mean Σ of cz and ch (flat n×n, both SPD): the solution of Σ ch Σ = cz. With
    /// ch = L Lᵀ, Σ = L⁻ᵀ (Lᵀ cz L)^{1/2} L⁻¹ (the mean commutes with congruences), which needs one
    /// eigen-decomposition where ch^{-1/2} (ch^{1/2} cz ch^{1/2})^{1/2} ch^{-1/2} needs two.
    let spdMeanFlat (n: int) (cz: float[]) (ch: float[]) : float[] =
        let l = cholesky n ch
        // t = cz L: row k of L is zero past column k
        let t = Array.zeroCreate<float> (n * n)
        for i in 0 .. n - 1 do
            for k in 0 .. n - 1 do axpy cz.[i * n + k] l (k * n) t (i * n) (k + 1)
        // m = Lᵀ t, upper triangle (row i is the sum over k ≥ i of L[k, i] · row k of t), then mirrored
        let m = Array.zeroCreate<float> (n * n)
        for i in 0 .. n - 1 do
            for k in i .. n - 1 do axpy l.[k * n + i] t (k * n + i) m (i * n + i) (n - i)
        for i in 0 .. n - 1 do
            for j in 0 .. i - 1 do m.[i * n + j] <- m.[j * n + i]
        let mu, w = eigh n m
        // (Lᵀ cz L)^{1/2} = Σ_k b_k b_kᵀ with b_k = μ_k^{1/4} w_k (rounding can leave μ_k just below 0), so
        // Σ = Σ_k y_kᵀ y_k with y_k L = b_kᵀ, solved in place from the last entry down
        for k in 0 .. n - 1 do
            let o = k * n
            let f = sqrt (sqrt (max mu.[k] 0.0))
            for j in 0 .. n - 1 do w.[o + j] <- w.[o + j] * f
            for i in n - 1 .. -1 .. 0 do
                let yi = w.[o + i] / l.[i * n + i]
                w.[o + i] <- yi
                axpy (-yi) l (i * n) w o i
        // yt's row i holds entry i of every y_k
        let yt = Array.init (n * n) (fun e -> w.[(e % n) * n + e / n])
        let sigma = Array.zeroCreate<float> (n * n)
        for i in 0 .. n - 1 do
            for j in i .. n - 1 do
                let v = dot yt (i * n) yt (j * n) n
                sigma.[i * n + j] <- v
                sigma.[j * n + i] <- v
        sigma

    /// spdMeanFlat on float[,] matrices.
    let spdMean (cz: float[,]) (ch: float[,]) : float[,] =
        let n = Array2D.length1 cz
        let s = spdMeanFlat n (flat cz) (flat ch)
        Array2D.init n n (fun i j -> s.[i * n + j])

    /// An orthonormal basis of the span of the columns (vectors of length d), by Gram-Schmidt with column
    /// pivoting (largest remaining norm first) and re-orthogonalisation; columns whose remaining norm falls
    /// below 1e-10 of the largest column's norm are dropped.
    let orthonormalBasis (d: int) (columns: float[][]) : float[][] =
        let work = columns |> Array.map Array.copy
        let norm2 (x: float[]) = dot x 0 x 0 d
        let largest = if work.Length = 0 then 0.0 else work |> Array.map norm2 |> Array.max
        let tol = 1e-20 * largest
        let basis = ResizeArray<float[]>()
        let remaining = Array.create work.Length true
        let mutable left = work.Length
        let project (q: float[]) (x: float[]) = axpy (-(dot q 0 x 0 d)) q 0 x 0 d
        let mutable fin = largest = 0.0
        while not fin && basis.Count < d && left > 0 do
            // the first of the largest remaining columns
            let mutable best = -1
            let mutable bestNorm = Double.NegativeInfinity
            for j in 0 .. work.Length - 1 do
                if remaining.[j] then
                    let v = norm2 work.[j]
                    if v > bestNorm then
                        best <- j
                        bestNorm <- v
            if bestNorm <= tol then fin <- true
            else
                remaining.[best] <- false
                left <- left - 1
                let q = work.[best]
                for b in basis do project b q
                let n = sqrt (norm2 q)
                if n * n <= tol then fin <- true
                else
                    Simd.Divide(ReadOnlySpan q, n, Span q)
                    basis.Add q
                    for j in 0 .. work.Length - 1 do
                        if remaining.[j] then project q work.[j]
        basis.ToArray()

/// nutpie's metric estimators from draws x and their gradients g = ∇log p(x) (pure; internal).
[<RequireQualifiedAccess>]
module internal FisherEstimate =

    /// The clamp nuts-rs puts on σ².
    let [<Literal>] MinVariance = 1e-20
    let [<Literal>] MaxVariance = 1e20

    /// The metric nuts-rs starts from: σ² = 1/|g₀| (clamped; a non-finite value becomes 1).
    let initial (g0: float[]) : Metric =
        g0 |> Array.map (fun g ->
            let v = 1.0 / abs g
            if Double.IsFinite v then min MaxVariance (max MinVariance v) else 1.0)
        |> Metric.diagonal

    /// Per coordinate, σ² = sqrt(Var(x)/Var(g)) clamped to [1e-20, 1e20]; a coordinate whose ratio is
    /// not finite or 0 keeps `previous`.
    let diagonal (xs: float[][]) (gs: float[][]) (previous: float[]) : float[] =
        let n = xs.Length
        let d = previous.Length
        Array.init d (fun j ->
            let mutable mx = 0.0
            let mutable mg = 0.0
            for i in 0 .. n - 1 do
                mx <- mx + xs.[i].[j]
                mg <- mg + gs.[i].[j]
            mx <- mx / float n
            mg <- mg / float n
            let mutable vx = 0.0
            let mutable vg = 0.0
            for i in 0 .. n - 1 do
                let a = xs.[i].[j] - mx
                let b = gs.[i].[j] - mg
                vx <- vx + a * a
                vg <- vg + b * b
            let s = sqrt (vx / vg)
            if Double.IsFinite s && s > 0.0 then min MaxVariance (max MinVariance s) else previous.[j])

    /// nutpie's low-rank metric: the Fisher diagonal D = diag(σ), then, in the whitened coordinates
    /// z = x/σ and h = g·σ (centred), the geometric mean of the regularised projected covariances on the
    /// joint span of z and h, keeping the eigen-directions with λ > c or λ < 1/c. A diagonal metric when
    /// none is kept.
    let lowRank (s: LowRankSettings) (xs: float[][]) (gs: float[][]) (previous: float[]) : Metric =
        let n = xs.Length
        let d = previous.Length
        let var = diagonal xs gs previous
        let sigma = var |> Array.map sqrt
        let centred (rows: float[][]) (f: int -> float -> float) =
            let mean = Array.init d (fun j -> (rows |> Array.sumBy (fun r -> f j r.[j])) / float n)
            rows |> Array.map (fun r -> Array.init d (fun j -> f j r.[j] - mean.[j]))
        let z = centred xs (fun j v -> v / sigma.[j])
        let h = centred gs (fun j v -> v * sigma.[j])
        let correction () =
            let q = SmallLinalg.orthonormalBasis d (Array.append z h)
            let r = q.Length
            if r = 0 then Metric.diagonal var
            else
                // the regularised projected covariance P Pᵀ/γ + I with P = Qᵀ·cols (r × n), flat r × r
                let cov (cols: float[][]) =
                    let p = Array.zeroCreate<float> (r * n)
                    for a in 0 .. r - 1 do
                        for i in 0 .. n - 1 do p.[a * n + i] <- Simd.Dot(ReadOnlySpan q.[a], ReadOnlySpan cols.[i])
                    let c = Array.zeroCreate<float> (r * r)
                    for a in 0 .. r - 1 do
                        for b in a .. r - 1 do
                            let v = Simd.Dot(ReadOnlySpan(p, a * n, n), ReadOnlySpan(p, b * n, n)) / s.Gamma
                            c.[a * r + b] <- v
                            c.[b * r + a] <- v
                        c.[a * r + a] <- c.[a * r + a] + 1.0
                    c
                let sigmaR = SmallLinalg.spdMeanFlat r (cov z) (cov h)
                let lam, w = SmallLinalg.eigh r sigmaR
                // The diagonal's clamp bounds the variance along the low-rank directions too: far out in the tails
                // (gradients of 1e40 at an initial point) σ² sits at its floor and the rest of the scale would land in
                // λ (1e-25), freezing the chain where the clamped diagonal alone keeps it moving.
                let lo = MinVariance / Array.min var
                let hi = MaxVariance / Array.max var
                let lam = lam |> Array.map (fun l -> if Double.IsFinite l && l > 0.0 then min hi (max lo l) else l)
                // rounding can leave an eigenvalue of an ill-conditioned Σ_r at or below 0: such a direction is
                // not estimated (the diagonal stays there)
                let kept = [| for k in 0 .. r - 1 do if Double.IsFinite lam.[k] && lam.[k] > 0.0 && (lam.[k] > s.Cutoff || lam.[k] < 1.0 / s.Cutoff) then yield k |]
                if kept.Length = 0 then Metric.diagonal var
                else
                    let vectors = Array.zeroCreate<float> (kept.Length * d)
                    for out in 0 .. kept.Length - 1 do
                        let k = kept.[out]
                        let o = out * d
                        for a in 0 .. r - 1 do
                            Simd.MultiplyAdd(ReadOnlySpan q.[a], w.[k * r + a], ReadOnlySpan(vectors, o, d), Span(vectors, o, d))
                        // re-normalise against rounding in Q·W
                        let nrm = Simd.Norm(ReadOnlySpan(vectors, o, d))
                        Simd.Divide(ReadOnlySpan(vectors, o, d), nrm, Span(vectors, o, d))
                    Metric.lowRank sigma vectors (kept |> Array.map (fun k -> lam.[k]))
        // Far out in the tails (gradients of 1e60 and more) the projected covariances lose their ridge to rounding
        // or overflow; the diagonal estimate is what is left then, not a failed run.
        try correction () with :? InvalidOperationException | :? ArgumentException -> Metric.diagonal var

/// nuts-rs's warmup schedule for the Fisher adapters: an early phase (the first 30 %) whose estimates
/// switch every 10 draws, a main phase whose windows start at 80 draws and grow by 1.5, and a final
/// step-size-only phase (the last 15 %). Each draw that passes the filter enters a foreground and a
/// background estimate; at a switch the background replaces the foreground (so an estimate uses the
/// last w to 2w draws); the metric comes from the foreground every `UpdateEvery` draws and at switches.
type FisherSchedule =
    { NumWarmup: int
      /// Draws before this are in the early phase.
      EarlyEnd: int
      /// From this draw on only the step size is adapted.
      FinalWindowStart: int
      /// The metric is recomputed every this many draws between switches (diagonal 1, low rank 20).
      UpdateEvery: int }

[<RequireQualifiedAccess>]
module FisherSchedule =

    /// nuts-rs's constants.
    let [<Literal>] EarlyFraction = 0.3
    let [<Literal>] StepSizeFraction = 0.15
    let [<Literal>] EarlySwitch = 10
    let [<Literal>] FirstWindow = 80
    let [<Literal>] WindowGrowth = 1.5
    let [<Literal>] DiagonalUpdateEvery = 1
    let [<Literal>] LowRankUpdateEvery = 20

    /// The schedule for numWarmup draws.
    let build (numWarmup: int) (updateEvery: int) : FisherSchedule =
        if numWarmup < 0 then invalidArg "numWarmup" (sprintf "FisherSchedule: the number of warmup iterations must be non-negative, got %d." numWarmup)
        if updateEvery < 1 then invalidArg "updateEvery" (sprintf "FisherSchedule: updateEvery must be at least 1, got %d." updateEvery)
        { NumWarmup = numWarmup
          EarlyEnd = int (float numWarmup * EarlyFraction)
          FinalWindowStart = int (float numWarmup * (1.0 - StepSizeFraction))
          UpdateEvery = updateEvery }

    /// The next main-phase window after a switch.
    let grow (w: int) = max (w + 1) (int (Math.Round(WindowGrowth * float w)))

    /// Whether a transition's draw enters the estimates (nuts-rs): the chain moved, and a divergent
    /// trajectory's draw only when it is more than 4 leapfrogs from the start.
    let accepts (info: TransitionInfo) =
        info.SampleIndex <> 0 && (not info.Divergent || abs info.SampleIndex > 4)

/// Draws and gradients kept for an estimate (oldest first).
[<NoEquality; NoComparison>]
type EstimatorDraws =
    { Positions: float[][]
      Gradients: float[][] }

    static member Empty = { Positions = [||]; Gradients = [||] }
    member e.Count = e.Positions.Length
    member e.Add(x: float[], g: float[]) = { Positions = Array.append e.Positions [| x |]; Gradients = Array.append e.Gradients [| g |] }

/// The state of the Fisher warmup fold.
[<NoEquality; NoComparison>]
type FisherWarmupState =
    { Chain: HmcState
      StepSize: float
      Metric: Metric
      DualAveraging: DualAveragingState
      Foreground: EstimatorDraws
      Background: EstimatorDraws
      /// The current main-phase window (draws in the background before a switch).
      Window: int
      /// The draw at which the metric last changed.
      LastUpdate: int
      /// Still on the metric from the first gradient (its first change restarts the step size).
      InitialMetric: bool
      /// Step-size searches run so far (nuts-rs: one at the start, one at the first metric change).
      Searches: int
      /// Late draws so far (no window switch left: the last window and the final step-size window).
      LateDraws: int
      /// Divergent transitions among the late draws.
      LateDivergences: int
      Iteration: int }

/// Settings of the Fisher warmup.
type FisherWarmupSettings =
    { Schedule: FisherSchedule
      DualAveraging: DualAveragingSettings
      /// None: the diagonal estimator.
      LowRank: LowRankSettings option
      FindStepSize: bool
      InitialStepSize: float }

/// Warmup with nutpie's Fisher estimators and nuts-rs's schedule, as a fold over any tunable kernel:
/// the metric starts from the first gradient; the step size is searched at the start and once more at
/// the first metric change, then dual averaging runs over every warmup draw.
[<RequireQualifiedAccess>]
module FisherWarmup =

    /// Settings for an adapter (Stan's and Dense are not Fisher adapters).
    let settings (adaptation: MetricAdaptation) (numWarmup: int) (da: DualAveragingSettings) (findStepSize: bool) (initialStepSize: float) : FisherWarmupSettings =
        let lowRank, every =
            match adaptation with
            | MetricAdaptation.FisherDiagonal -> None, FisherSchedule.DiagonalUpdateEvery
            | MetricAdaptation.FisherLowRank s -> Some s, FisherSchedule.LowRankUpdateEvery
            | MetricAdaptation.Stan | MetricAdaptation.Dense -> invalidArg "adaptation" (sprintf "FisherWarmup: %s is not a Fisher adapter." adaptation.Text)
        { Schedule = FisherSchedule.build numWarmup every; DualAveraging = da; LowRank = lowRank
          FindStepSize = findStepSize; InitialStepSize = initialStepSize }

    /// The statistic dual averaging follows (nuts-rs): Stan's mean accept statistic while windows still
    /// switch, the symmetric one late and in the final window.
    let acceptStat (late: bool) (info: TransitionInfo) =
        if late then info.AcceptStatSymmetric else info.AcceptStat

    /// How strongly the late draws' divergences (from the last window switch to the end of warmup) shrink
    /// the sampling step size: ε / (1 + c·ρ) for a divergent fraction ρ. Dual averaging sees a divergent transition as one zero among its ~100 leapfrogs,
    /// so a 3 % divergence rate moves ε by ~1 %; on gp_pois_regr ~0.7 ε removed nearly all of them at the
    /// same ESS per gradient, which ρ = 3 % gives with c = 15. No divergences: ε unchanged.
    let [<Literal>] DivergenceShrink = 15.0

    let private search (s: FisherWarmupSettings) (kernel: TunableKernel) (metric: Metric) (key: RngKey) (chain: HmcState) (eps: float) =
        if s.FindStepSize then Hmc.findStepSize kernel.Evaluator metric key chain eps else eps

    /// The starting state: the metric from the first gradient (g = −∇U), the starting point in both
    /// estimates, a step-size search.
    let init (s: FisherWarmupSettings) (kernel: TunableKernel) (key: RngKey) (chain: HmcState) : FisherWarmupState =
        DualAveraging.validate s.DualAveraging
        Dyn.checkStepSize "Warmup (InitialStepSize)" s.InitialStepSize
        let g = chain.Gradient |> Array.map (fun v -> -v)
        let metric = FisherEstimate.initial g
        let eps = search s kernel metric key chain s.InitialStepSize
        let first = EstimatorDraws.Empty.Add(chain.Position, g)
        { Chain = chain; StepSize = eps; Metric = metric; DualAveraging = DualAveraging.init eps
          Foreground = first; Background = first; Window = FisherSchedule.FirstWindow; LastUpdate = 0
          InitialMetric = true; Searches = (if s.FindStepSize then 1 else 0); LateDraws = 0; LateDivergences = 0; Iteration = 0 }

    let private estimate (s: FisherWarmupSettings) (e: EstimatorDraws) (current: Metric) : Metric option =
        if e.Count < 3 then None
        else
            let previous = Metric.inverseMassDiagonal current
            match s.LowRank with
            | None -> Some (Metric.diagonal (FisherEstimate.diagonal e.Positions e.Gradients previous))
            | Some lr -> Some (FisherEstimate.lowRank lr e.Positions e.Gradients previous)

    /// One warmup draw: a transition, a dual-averaging update, and before the final window the draw
    /// into the estimates (if it passes the filter), a switch when due, and a metric update when due.
    let step (s: FisherWarmupSettings) (kernel: TunableKernel) (key: RngKey) (st: FisherWarmupState) : FisherWarmupState * TransitionInfo =
        let sch = s.Schedule
        let i = st.Iteration
        if i >= sch.NumWarmup then
            invalidOp (sprintf "FisherWarmup.step: iteration %d is past the schedule's %d iterations." i sch.NumWarmup)
        let kStep, kSearch = Rng.split key
        let chain, info = kernel.Step st.StepSize st.Metric kStep st.Chain
        if i >= sch.FinalWindowStart then
            let da = DualAveraging.update s.DualAveraging (acceptStat true info) st.DualAveraging
            { st with Chain = chain; StepSize = DualAveraging.stepSize da; DualAveraging = da; Iteration = i + 1
                      LateDraws = st.LateDraws + 1; LateDivergences = st.LateDivergences + (if info.Divergent then 1 else 0) }, info
        else
            let isEarly = i < sch.EarlyEnd
            let fg, bg =
                if FisherSchedule.accepts info then
                    let g = chain.Gradient |> Array.map (fun v -> -v)
                    st.Foreground.Add(chain.Position, g), st.Background.Add(chain.Position, g)
                else st.Foreground, st.Background
            let window = if i = sch.EarlyEnd then max FisherSchedule.FirstWindow bg.Count else st.Window
            let switchEvery = if isEarly then FisherSchedule.EarlySwitch else window
            // late: the next window would not end before the final window (nuts-rs looks ahead with the grown
            // window); no switch then, and the step size follows the symmetric statistic as in the final window
            let nextWindow = if isEarly then FisherSchedule.EarlySwitch else FisherSchedule.grow window
            let late = nextWindow + i > sch.FinalWindowStart
            let da = DualAveraging.update s.DualAveraging (acceptStat late info) st.DualAveraging
            let switched = bg.Count >= switchEvery && not late
            let fg, bg = if switched then bg, EstimatorDraws.Empty else fg, bg
            let window = if switched && not isEarly then nextWindow else window
            let updated = if switched || i - st.LastUpdate >= sch.UpdateEvery then estimate s fg st.Metric else None
            let metric, lastUpdate = match updated with Some m -> m, i | None -> st.Metric, st.LastUpdate
            let eps, da, initial, searches =
                match updated with
                | Some _ when st.InitialMetric ->
                    let eps = search s kernel metric kSearch chain (DualAveraging.stepSize da)
                    eps, DualAveraging.init eps, false, st.Searches + (if s.FindStepSize then 1 else 0)
                | Some _ | None -> DualAveraging.stepSize da, da, st.InitialMetric, st.Searches
            { Chain = chain; StepSize = eps; Metric = metric; DualAveraging = da; Foreground = fg; Background = bg
              Window = window; LastUpdate = lastUpdate; InitialMetric = initial; Searches = searches
              LateDraws = st.LateDraws + (if late then 1 else 0)
              LateDivergences = st.LateDivergences + (if late && info.Divergent then 1 else 0); Iteration = i + 1 }, info

    /// The adapted step size exp(x̄), shrunk by the late draws' divergent fraction ρ to
    /// exp(x̄) / (1 + DivergenceShrink·ρ), and the metric.
    let finish (st: FisherWarmupState) : AdaptedParameters =
        let eps = if st.DualAveraging.Counter > 0 then DualAveraging.final st.DualAveraging else st.StepSize
        let rho = if st.LateDraws > 0 then float st.LateDivergences / float st.LateDraws else 0.0
        { StepSize = eps / (1.0 + DivergenceShrink * rho); Metric = st.Metric }
