/// The metric adapters: nutpie's Fisher estimators (diagonal and low rank) checked against exact
/// Gaussian answers, the O(d·k) low-rank algebra against dense products, nuts-rs's warmup schedule, and
/// every adapter against the shared posteriordb reference means.
module FunctionalBayes.Tests.MetricAdapterTests

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.PosteriorDb
open FunctionalBayes.Tests.NutsPosteriorTests

/// U(x) = ½ xᵀPx (a zero-mean Gaussian with precision P); allocates nothing.
type private Gaussian(precision: float[,]) =
    let d = Array2D.length1 precision
    interface IGradientEvaluator with
        member _.Dim = d
        member _.Evaluate(x: ReadOnlySpan<float>, g: Span<float>) =
            let mutable u = 0.0
            for i in 0 .. d - 1 do
                let mutable s = 0.0
                for j in 0 .. d - 1 do s <- s + precision.[i, j] * x.[j]
                g.[i] <- s
                u <- u + 0.5 * x.[i] * s
            u

let private matVec (a: float[,]) (x: float[]) = Array.init (Array2D.length1 a) (fun i -> Array.init x.Length (fun j -> a.[i, j] * x.[j]) |> Array.sum)

/// Gauss-Jordan inverse (test-side reference, small matrices).
let private inverse (a: float[,]) =
    let n = Array2D.length1 a
    let m = Array2D.init n (2 * n) (fun i j -> if j < n then a.[i, j] elif j - n = i then 1.0 else 0.0)
    for c in 0 .. n - 1 do
        let p = seq { c .. n - 1 } |> Seq.maxBy (fun r -> abs m.[r, c])
        for j in 0 .. 2 * n - 1 do
            let t = m.[c, j]
            m.[c, j] <- m.[p, j]
            m.[p, j] <- t
        let piv = m.[c, c]
        for j in 0 .. 2 * n - 1 do m.[c, j] <- m.[c, j] / piv
        for r in 0 .. n - 1 do
            if r <> c then
                let f = m.[r, c]
                for j in 0 .. 2 * n - 1 do m.[r, j] <- m.[r, j] - f * m.[c, j]
    Array2D.init n n (fun i j -> m.[i, j + n])

/// Draws x = m + L ξ from N(m, Σ) (L the Cholesky factor) with exact gradients g = −Σ⁻¹(x − m).
let private gaussianDraws (seed: uint64) (mean: float[]) (sigma: float[,]) (n: int) =
    let d = mean.Length
    let l = (Metric.cholesky sigma).Value
    let prec = inverse sigma
    let xi = Tensor.toArray (Rng.normal (Rng.key seed) [| n; d |])
    let xs = Array.init n (fun i -> Array.init d (fun a -> mean.[a] + (Array.init (a + 1) (fun b -> l.[a, b] * xi.[i * d + b]) |> Array.sum)))
    let gs = xs |> Array.map (fun x -> matVec prec (Array.map2 (-) x mean) |> Array.map (fun v -> -v))
    xs, gs

let private maxAbsDiff (a: float[,]) (b: float[,]) =
    Seq.max (seq { for i in 0 .. Array2D.length1 a - 1 do for j in 0 .. Array2D.length2 a - 1 -> abs (a.[i, j] - b.[i, j]) })

/// A random orthonormal set of k vectors in d dimensions (Gram-Schmidt on Gaussian vectors), laid end to end.
let private orthonormal (seed: uint64) (d: int) (k: int) =
    let raw = Tensor.toArray (Rng.normal (Rng.key seed) [| k; d |])
    let vs = Array.init k (fun j -> raw.[j * d .. j * d + d - 1])
    for j in 0 .. k - 1 do
        for i in 0 .. j - 1 do
            let c = Array.map2 (*) vs.[j] vs.[i] |> Array.sum
            vs.[j] <- Array.map2 (fun a b -> a - c * b) vs.[j] vs.[i]
        let n = sqrt (vs.[j] |> Array.sumBy (fun v -> v * v))
        vs.[j] <- vs.[j] |> Array.map (fun v -> v / n)
    vs

/// A·v = λ·v for every pair to 10·n·eps·‖A‖_F, VᵀV = I to 10·n·eps, and the invariants trace = Σλ and
/// ‖A‖_F² = Σλ²; returns the eigenvalues (ascending).
let private checkEigen (n: int) (a: float[]) =
    let values, vectors = SmallLinalg.eigh n a
    Expect.equal values.Length n "n values"
    Expect.isTrue (values |> Array.pairwise |> Array.forall (fun (x, y) -> x <= y)) "ascending"
    let eps = Math.BitIncrement 1.0 - 1.0
    let frob = sqrt (a |> Array.sumBy (fun v -> v * v))
    let tol = 10.0 * float n * eps
    for k in 0 .. n - 1 do
        let v = vectors.[k * n .. k * n + n - 1]
        let res = sqrt (Array.init n (fun i -> (Array.init n (fun j -> a.[i * n + j] * v.[j]) |> Array.sum) - values.[k] * v.[i]) |> Array.sumBy (fun x -> x * x))
        Expect.isLessThanOrEqual res (tol * max frob Double.Epsilon) (sprintf "‖A v − λ v‖ of pair %d" k)
        for j in k .. n - 1 do
            let g = Array.init n (fun i -> v.[i] * vectors.[j * n + i]) |> Array.sum
            Expect.isLessThanOrEqual (abs (g - (if j = k then 1.0 else 0.0))) tol (sprintf "(VᵀV)[%d, %d]" k j)
    let trace = Array.init n (fun i -> a.[i * n + i]) |> Array.sum
    Expect.floatClose { absolute = tol * frob; relative = 0.0 } (Array.sum values) trace "trace = Σλ"
    Expect.floatClose { absolute = tol * frob * frob; relative = 0.0 } (values |> Array.sumBy (fun l -> l * l)) (frob * frob) "‖A‖_F² = Σλ²"
    values

/// Q diag(λ) Qᵀ (flat) with Q a random orthogonal matrix from a fixed seed.
let private withSpectrum (seed: uint64) (lambda: float[]) =
    let n = lambda.Length
    let q = orthonormal seed n n
    Array.init (n * n) (fun e ->
        let i, j = e / n, e % n
        Array.init n (fun k -> q.[k].[i] * lambda.[k] * q.[k].[j]) |> Array.sum)

let private randomSymmetric (seed: uint64) (n: int) =
    let r = Tensor.toArray (Rng.normal (Rng.key seed) [| n; n |])
    Array.init (n * n) (fun e -> 0.5 * (r.[e] + r.[(e % n) * n + e / n]))

/// The eigenvalues against their closed form to 10·n·eps·‖A‖_F (‖A‖_F² = Σλ²).
let private expectValues (actual: float[]) (expected: float[]) =
    let tol = 10.0 * float expected.Length * (Math.BitIncrement 1.0 - 1.0) * sqrt (expected |> Array.sumBy (fun l -> l * l))
    Array.iteri2 (fun k a e -> Expect.floatClose { absolute = tol; relative = 0.0 } a e (sprintf "λ[%d]" k)) actual (Array.sort expected)

[<Tests>]
let eigenTests =
    testList "SmallLinalg.eigh" [
        testCase "n = 1" <| fun () ->
            let values, vectors = SmallLinalg.eigh 1 [| -3.5 |]
            Expect.equal values [| -3.5 |] "λ"
            Expect.equal (abs vectors.[0]) 1.0 "v"
        testCase "n = 2 against the closed form (a+c)/2 ± sqrt(((a−c)/2)² + b²)" <| fun () ->
            let a, b, c = 2.0, -0.7, -1.25
            let values = checkEigen 2 [| a; b; b; c |]
            let h = sqrt (((a - c) / 2.0) ** 2.0 + b * b)
            expectValues values [| (a + c) / 2.0 - h; (a + c) / 2.0 + h |]
        testCase "entries of 1e200: the closed form, where squaring them overflows" <| fun () ->
            // off-diagonal entries whose squares overflow made the shift NaN and the iteration never ended
            let values, vectors = SmallLinalg.eigh 2 [| 3e200; 1e200; 1e200; -2e200 |]
            // [3, 1; 1, −2]: λ = 0.5 ± sqrt(2.5² + 1)
            let h = sqrt (2.5 ** 2.0 + 1.0)
            Expect.floatClose { absolute = 1e-14; relative = 1e-14 } (values.[0] / 1e200) (0.5 - h) "λ₀ / 1e200"
            Expect.floatClose { absolute = 1e-14; relative = 1e-14 } (values.[1] / 1e200) (0.5 + h) "λ₁ / 1e200"
            // A v = λ v for the larger one, in units of 1e200
            let v0, v1 = vectors.[2], vectors.[3]
            Expect.floatClose { absolute = 1e-13; relative = 0.0 } (3.0 * v0 + 1.0 * v1) ((0.5 + h) * v0) "(A v)₀"
            Expect.floatClose { absolute = 1e-13; relative = 0.0 } (1.0 * v0 - 2.0 * v1) ((0.5 + h) * v1) "(A v)₁"
            let big = Array.init 25 (fun e -> if e / 5 = e % 5 then float (e / 5) * 1e180 else 1e182 / float (1 + e / 5 + e % 5))
            let valuesBig, _ = SmallLinalg.eigh 5 big
            Expect.all valuesBig Double.IsFinite "finite eigenvalues at 1e182"
            // the trace is the eigenvalues' sum
            Expect.floatClose { absolute = 0.0; relative = 1e-12 } (Array.sum valuesBig) (1e180 * (0.0 + 1.0 + 2.0 + 3.0 + 4.0)) "Σλ = trace"
        testCase "a power of 2 scales the eigenvalues exactly and leaves the eigenvectors' bits" <| fun () ->
            let m = randomSymmetric 33UL 20
            let values, vectors = SmallLinalg.eigh 20 m
            for k in [ -600; -7; 9; 700 ] do
                let v2, w2 = SmallLinalg.eigh 20 (m |> Array.map (fun x -> Math.ScaleB(x, k)))
                Expect.equal v2 (values |> Array.map (fun x -> Math.ScaleB(x, k))) (sprintf "2^%d: eigenvalues" k)
                Expect.equal w2 vectors (sprintf "2^%d: eigenvectors" k)
        testCase "a diagonal matrix: its diagonal, sorted, exactly" <| fun () ->
            let dg = [| 3.0; -1.0; 2.0; 0.0; 5.0; 2.0 |]
            let n = dg.Length
            let values = checkEigen n (Array.init (n * n) (fun e -> if e / n = e % n then dg.[e / n] else 0.0))
            Expect.equal values (Array.sort dg) "λ"
        testCase "the zero matrix and the identity" <| fun () ->
            Expect.equal (checkEigen 5 (Array.zeroCreate 25)) (Array.zeroCreate 5) "zero"
            Expect.equal (checkEigen 4 (Array.init 16 (fun e -> if e / 4 = e % 4 then 1.0 else 0.0))) (Array.create 4 1.0) "identity"
        testCase "repeated eigenvalues (n = 12: −1, 2 ×5, 5 ×6) in a random basis" <| fun () ->
            let lambda = Array.concat [ [| -1.0 |]; Array.create 5 2.0; Array.create 6 5.0 ]
            let values = checkEigen lambda.Length (withSpectrum 31UL lambda)
            expectValues values lambda
        testCase "rank-deficient: rank 1 (u uᵀ, n = 30) and rank 4 of 40 in a random basis" <| fun () ->
            let u = Tensor.toArray (Rng.normal (Rng.key 32UL) [| 30 |])
            let values = checkEigen 30 (Array.init 900 (fun e -> u.[e / 30] * u.[e % 30]))
            let uu = u |> Array.sumBy (fun x -> x * x)
            expectValues values (Array.append (Array.zeroCreate 29) [| uu |])
            let lambda = Array.append (Array.zeroCreate 36) [| 1.0; 4.0; 9.0; -16.0 |]
            expectValues (checkEigen 40 (withSpectrum 33UL lambda)) lambda
        testCase "tridiagonal Toeplitz (n = 50): λ_k = a + 2b cos(kπ/(n+1))" <| fun () ->
            let n, a, b = 50, 2.0, -1.0
            let m = Array.init (n * n) (fun e -> let i, j = e / n, e % n in if i = j then a elif abs (i - j) = 1 then b else 0.0)
            let values = checkEigen n m
            expectValues values (Array.init n (fun k -> a + 2.0 * b * cos (float (k + 1) * Math.PI / float (n + 1))))
        testCase "tridiagonal Toeplitz (n = 300) in a random basis: λ_k = a + 2b cos(kπ/(n+1))" <| fun () ->
            let n, a, b = 300, 0.5, 1.5
            let lambda = Array.init n (fun k -> a + 2.0 * b * cos (float (k + 1) * Math.PI / float (n + 1)))
            let values = checkEigen n (withSpectrum 34UL lambda)
            expectValues values lambda
        testCase "random symmetric matrices (n = 50 and 300, fixed seeds)" <| fun () ->
            checkEigen 50 (randomSymmetric 35UL 50) |> ignore
            checkEigen 300 (randomSymmetric 36UL 300) |> ignore
        testCase "the input is left alone and a second call gives the same bits" <| fun () ->
            let m = randomSymmetric 37UL 40
            let saved = Array.copy m
            let v1, w1 = SmallLinalg.eigh 40 m
            Expect.equal m saved "input unchanged"
            let v2, w2 = SmallLinalg.eigh 40 m
            Expect.equal v1 v2 "values"
            Expect.equal w1 w2 "vectors"
        testCase "a non-finite entry or a wrong size is refused, naming it" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> SmallLinalg.eigh 2 [| 1.0; nan; nan; 1.0 |] |> ignore) "NaN"
            Expect.throwsT<ArgumentException> (fun () -> SmallLinalg.eigh 2 [| 1.0; 0.0; 0.0 |] |> ignore) "3 entries for 2×2"
        testCase "SPD geometric mean of random 40×40 matrices solves Σ C_H Σ = C_Z" <| fun () ->
            let n = 40
            let spd seed =
                let r = Tensor.toArray (Rng.normal (Rng.key seed) [| n; n |])
                Array2D.init n n (fun i j -> (Array.init n (fun k -> r.[i * n + k] * r.[j * n + k]) |> Array.sum) / float n + (if i = j then 0.1 else 0.0))
            let cz = spd 38UL
            let ch = spd 39UL
            let s = SmallLinalg.spdMean cz ch
            let scale = Seq.max (seq { for i in 0 .. n - 1 do for j in 0 .. n - 1 -> abs cz.[i, j] })
            Expect.isLessThan (maxAbsDiff (SmallLinalg.mul (SmallLinalg.mul s ch) s) cz) (1e-10 * scale) "Σ C_H Σ = C_Z"
            Expect.isLessThan (maxAbsDiff s (Array2D.init n n (fun i j -> s.[j, i]))) 1e-12 "Σ symmetric"
            let ev, _ = SmallLinalg.symmetricEigen s
            Expect.isGreaterThan ev.[0] 0.0 "Σ positive definite"
    ]

[<Tests>]
let estimatorTests =
    testList "MetricAdapter.estimators" [
        testCase "Fisher diagonal: two draws of an independent Gaussian give its variances exactly" <| fun () ->
            let mean = [| 1.0; -2.0; 30.0 |]
            let var = [| 0.25; 4.0; 1e4 |]
            let sigma = Array2D.init 3 3 (fun i j -> if i = j then var.[i] else 0.0)
            let xs, gs = gaussianDraws 1UL mean sigma 2
            let v = FisherEstimate.diagonal xs gs (Array.create 3 1.0)
            for j in 0 .. 2 do Expect.floatClose { absolute = 0.0; relative = 1e-12 } v.[j] var.[j] (sprintf "σ²[%d]" j)
        testCase "Fisher diagonal of a correlated Gaussian: sqrt(Ĉov(x)ⱼⱼ / Ĉov(g)ⱼⱼ) with Ĉov(g) = Σ⁻¹ Ĉov(x) Σ⁻¹" <| fun () ->
            let sigma = array2D [ [ 2.0; 0.9; 0.0 ]; [ 0.9; 1.0; 0.3 ]; [ 0.0; 0.3; 0.5 ] ]
            let xs, gs = gaussianDraws 2UL [| 0.0; 0.0; 0.0 |] sigma 50
            let n = float xs.Length
            let xbar = Array.init 3 (fun j -> (xs |> Array.sumBy (fun x -> x.[j])) / n)
            let c = Array2D.init 3 3 (fun a b -> xs |> Array.sumBy (fun x -> (x.[a] - xbar.[a]) * (x.[b] - xbar.[b])))
            let p = inverse sigma
            let pcp = SmallLinalg.mul (SmallLinalg.mul p c) p
            let v = FisherEstimate.diagonal xs gs (Array.create 3 1.0)
            for j in 0 .. 2 do
                Expect.floatClose { absolute = 0.0; relative = 1e-10 } v.[j] (sqrt (c.[j, j] / pcp.[j, j])) (sprintf "σ²[%d]" j)
                // between the conditional and the marginal variance
                Expect.isTrue (v.[j] > 1.0 / p.[j, j] * 0.8 && v.[j] < sigma.[j, j] * 1.2) (sprintf "σ²[%d] = %g is between 1/Pⱼⱼ and Σⱼⱼ" j v.[j])
        testCase "Fisher diagonal is affine-invariant: rescaling a coordinate by 1e6 leaves the others" <| fun () ->
            let sigma = array2D [ [ 2.0; 0.9; 0.0 ]; [ 0.9; 1.0; 0.3 ]; [ 0.0; 0.3; 0.5 ] ]
            let xs, gs = gaussianDraws 3UL [| 0.0; 0.0; 0.0 |] sigma 40
            let v = FisherEstimate.diagonal xs gs (Array.create 3 1.0)
            let xs' = xs |> Array.map (fun x -> [| x.[0] * 1e6; x.[1]; x.[2] |])
            let gs' = gs |> Array.map (fun g -> [| g.[0] / 1e6; g.[1]; g.[2] |])
            let v' = FisherEstimate.diagonal xs' gs' (Array.create 3 1.0)
            Expect.floatClose { absolute = 0.0; relative = 1e-12 } v'.[1] v.[1] "coordinate 1 unchanged"
            Expect.floatClose { absolute = 0.0; relative = 1e-12 } v'.[2] v.[2] "coordinate 2 unchanged"
            Expect.floatClose { absolute = 0.0; relative = 1e-10 } v'.[0] (v.[0] * 1e12) "coordinate 0 scaled by 1e12"
        testCase "the initial metric is 1/|g₀| (clamped; a zero or NaN gradient gives 1)" <| fun () ->
            match FisherEstimate.initial [| 2.0; -0.5; 0.0; nan; 1e30 |] with
            | DiagonalMetric v -> Expect.equal v [| 0.5; 2.0; 1.0; 1.0; 1e-20 |] "σ² = 1/|g₀|"
            | DenseMetric _ | LowRankMetric _ -> failtest "diagonal expected"
        testCase "SPD geometric mean: diag(1,4,8) and diag(1,1,0.5) give diag(1,2,4)" <| fun () ->
            let cz = array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.0; 4.0; 0.0 ]; [ 0.0; 0.0; 8.0 ] ]
            let ch = array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.0; 1.0; 0.0 ]; [ 0.0; 0.0; 0.5 ] ]
            let expected = array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.0; 2.0; 0.0 ]; [ 0.0; 0.0; 4.0 ] ]
            Expect.isLessThan (maxAbsDiff (SmallLinalg.spdMean cz ch) expected) 1e-12 "Σ"
        testCase "SPD geometric mean of full matrices solves Σ C_H Σ = C_Z" <| fun () ->
            let cz = array2D [ [ 3.0; 1.0; 0.2 ]; [ 1.0; 2.0; 0.5 ]; [ 0.2; 0.5; 1.0 ] ]
            let ch = array2D [ [ 1.0; -0.3; 0.0 ]; [ -0.3; 2.0; 0.4 ]; [ 0.0; 0.4; 0.7 ] ]
            let s = SmallLinalg.spdMean cz ch
            Expect.isLessThan (maxAbsDiff (SmallLinalg.mul (SmallLinalg.mul s ch) s) cz) 1e-12 "Σ C_H Σ = C_Z"
        testCase "low rank on a standard normal (g = −x) keeps no direction" <| fun () ->
            let xs = Array.init 20 (fun i -> Tensor.toArray (Rng.normal (Rng.foldIn (Rng.key 4UL) i) [| 3 |]))
            let gs = xs |> Array.map (Array.map (fun v -> -v))
            match FisherEstimate.lowRank { Gamma = 1e-4; Cutoff = 2.0 } xs gs (Array.create 3 1.0) with
            | DiagonalMetric v -> for j in 0 .. 2 do Expect.floatClose { absolute = 0.0; relative = 1e-12 } v.[j] 1.0 "σ² = 1"
            | DenseMetric _ | LowRankMetric _ -> failtest "a diagonal metric (k = 0) expected"
        testCase "far in the tails (gradients of 1e40, σ² at its floor) low rank stays at the floor, not below it" <| fun () ->
            // a chain descending from an explosive initial point: positions move by 1e-3, gradients fall from 1e43;
            // the clamped σ² left the remaining scale to λ ≈ 1e-25 and froze the chain (arma11, issue 27)
            let d = 4
            let xs = Array.init 10 (fun i -> Array.init d (fun j -> -1.2 + 1e-3 * float (i * (j + 1)) + 1e-4 * float ((i * 7 + j * 3) % 5)))
            let gs = Array.init 10 (fun i -> Array.init d (fun j -> -1e43 * 0.3 ** float i * (1.0 + 0.1 * float j) + 1e40 * float ((i + j) % 3)))
            let m = FisherEstimate.lowRank LowRankSettings.Default xs gs (Array.create d 1.0)
            let values, _ = SmallLinalg.symmetricEigen (Metric.inverseMassMatrix m)
            Expect.isGreaterThanOrEqual (Array.min values) (FisherEstimate.MinVariance * (1.0 - 1e-9)) "every variance of M⁻¹ at or above the floor"
        testCase "3000 random windows over 60 orders of magnitude: a valid metric every time, never an exception" <| fun () ->
            // without the fallback to the diagonal, 198 of these raised (Cholesky lost the ridge to rounding at
            // gradients of 1e21; the projected covariances overflowed from 1e140)
            let r = Random 5
            for trial in 1 .. 3000 do
                let d = 2 + r.Next 6
                let n = 3 + r.Next 20
                let sx = 10.0 ** float (r.Next(-30, 30))
                let sg = 10.0 ** float (r.Next(-10, 300))
                let rank = 1 + r.Next d
                let dirs = Array.init rank (fun _ -> Array.init d (fun _ -> r.NextDouble() - 0.5))
                let xs = Array.init n (fun _ -> Array.init d (fun _ -> sx * (r.NextDouble() - 0.5)))
                let gs = Array.init n (fun _ ->
                    let c = Array.init rank (fun _ -> sg * (r.NextDouble() - 0.5))
                    Array.init d (fun j -> Array.sum (Array.init rank (fun k -> c.[k] * dirs.[k].[j]))))
                let m = FisherEstimate.lowRank LowRankSettings.Default xs gs (Array.create d 1.0)
                let ok (v: float) = Double.IsFinite v && v > 0.0
                let fail what = failtestf "trial %d (d %d, n %d, x ~ %g, g ~ %g): %s" trial d n sx sg what
                match m with
                | DiagonalMetric v -> if not (Array.forall ok v) then fail (sprintf "diagonal %A" v)
                | LowRankMetric (scale, vectors, values) ->
                    if not (Array.forall ok scale && Array.forall ok values && Array.forall Double.IsFinite vectors) then
                        fail (sprintf "scale %A, values %A" scale values)
                    // the variance floor holds along the low-rank directions too
                    let floor = (scale |> Array.map (fun s -> s * s) |> Array.min) * Array.min values
                    if floor < FisherEstimate.MinVariance * (1.0 - 1e-9) then fail (sprintf "smallest variance %g" floor)
                | DenseMetric _ -> fail "a dense metric"
        testCase "low rank recovers Σ = I + 0.5·11ᵀ (d = 10) from 30 draws with every direction kept" <| fun () ->
            let d = 10
            let sigma = Array2D.init d d (fun i j -> (if i = j then 1.0 else 0.0) + 0.5)
            let xs, gs = gaussianDraws 5UL (Array.init d float) sigma 30
            let m = FisherEstimate.lowRank { Gamma = 1e-10; Cutoff = 1.00001 } xs gs (Array.create d 1.0)
            // the ridge γ/n and the directions with λ in (1/c, c) are the only departures from Σ
            Expect.isLessThan (maxAbsDiff (Metric.inverseMassMatrix m) sigma) 1e-4 "D(I + U(Λ−I)Uᵀ)D = Σ"
        testCase "low rank finds a planted correlated direction from fewer draws than dimensions (d = 40, n = 20)" <| fun () ->
            let d = 40
            let u = (orthonormal 6UL d 1).[0]
            let scale = Array.init d (fun i -> 0.1 * float (i + 1))
            // Σ = S (I + 99 uuᵀ) S: one direction 100× wider than the rest in the scaled coordinates
            let sigma = Array2D.init d d (fun i j -> scale.[i] * ((if i = j then 1.0 else 0.0) + 99.0 * u.[i] * u.[j]) * scale.[j])
            let xs, gs = gaussianDraws 7UL (Array.zeroCreate d) sigma 20
            match FisherEstimate.lowRank LowRankSettings.Default xs gs (Array.create d 1.0) with
            | LowRankMetric (sc, vecs, lam) ->
                let top = Array.IndexOf(lam, Array.max lam)
                let v = vecs.[top * d .. top * d + d - 1]
                // the planted direction in the estimate's whitened coordinates: D⁻¹ S u, normalised
                let w = Array.init d (fun i -> scale.[i] * u.[i] / sc.[i])
                let wn = sqrt (w |> Array.sumBy (fun x -> x * x))
                let cosine = abs (Array.map2 (fun a b -> a * b / wn) v w |> Array.sum)
                Expect.isGreaterThan cosine 0.99 "the top eigenvector is the planted direction"
                Expect.isGreaterThan lam.[top] 10.0 "its eigenvalue is large"
            | DiagonalMetric _ | DenseMetric _ -> failtest "a low-rank metric expected"
    ]

[<Tests>]
let algebraTests =
    let d, k = 12, 3
    let scale = Array.init d (fun i -> 0.5 + 0.1 * float i)
    let vectors = Array.concat (orthonormal 8UL d k)
    let values = [| 50.0; 0.02; 3.0 |]
    let metric = Metric.lowRank scale vectors values
    let dense = Metric.inverseMassMatrix metric
    testList "MetricAdapter.lowRankAlgebra" [
        testCase "the O(d·k) velocity M⁻¹p equals the dense product to 1e-12" <| fun () ->
            let dyn = Dynamics(Gaussian(Array2D.init d d (fun i j -> if i = j then 1.0 else 0.0)), Metric = metric)
            let p = Tensor.toArray (Rng.normal (Rng.key 9UL) [| d |])
            let v = Array.zeroCreate d
            dyn.Velocity(p, v)
            let expected = matVec dense p
            for i in 0 .. d - 1 do Expect.floatClose { absolute = 1e-12; relative = 1e-12 } v.[i] expected.[i] (sprintf "v[%d]" i)
            // a momentum draw sets V = M⁻¹P, and H = U + ½ pᵀM⁻¹p
            let z = PhasePoint(d)
            dyn.SampleMomentum(Rng.key 9UL, z)
            let expectedV = matVec dense z.P
            for i in 0 .. d - 1 do Expect.floatClose { absolute = 1e-12; relative = 1e-12 } z.V.[i] expectedV.[i] (sprintf "V[%d]" i)
            let pmp = Array.map2 (*) z.P expectedV |> Array.sum
            Expect.floatClose { absolute = 1e-12; relative = 1e-12 } (dyn.H z) (0.5 * pmp) "H = U + ½ pᵀM⁻¹p (U = 0)"
            Expect.floatClose { absolute = 1e-12; relative = 1e-12 } (Metric.inverseMassDiagonal metric).[4] dense.[4, 4] "the diagonal"
        testCase "momentum draws have covariance M = (M⁻¹)⁻¹ (1e5 draws)" <| fun () ->
            let dyn = Dynamics(Gaussian(Array2D.init d d (fun i j -> if i = j then 1.0 else 0.0)), Metric = metric)
            let n = 100000
            let mass = inverse dense
            let acc = Array2D.zeroCreate d d
            let z = PhasePoint(d)
            let p = z.P
            for i in 0 .. n - 1 do
                dyn.SampleMomentum(Rng.foldIn (Rng.key 10UL) i, z)
                for a in 0 .. d - 1 do
                    for b in 0 .. d - 1 do acc.[a, b] <- acc.[a, b] + p.[a] * p.[b]
            // each entry's MC sd is sqrt((M_aa M_bb + M_ab²)/n); 5 sd
            for a in 0 .. d - 1 do
                for b in 0 .. d - 1 do
                    let sd = sqrt ((mass.[a, a] * mass.[b, b] + mass.[a, b] ** 2.0) / float n)
                    Expect.isLessThan (abs (acc.[a, b] / float n - mass.[a, b])) (5.0 * sd) (sprintf "Cov(p)[%d,%d]" a b)
        testCase "a leapfrog with a low-rank metric allocates nothing" <| fun () ->
            let dyn = Dynamics(Gaussian(Array2D.init d d (fun i j -> if i = j then 2.0 else 0.1)), Metric = metric)
            let z = PhasePoint(d)
            z.Q.[0] <- 1.0
            dyn.Evaluate z
            dyn.SampleMomentum(Rng.key 11UL, z)
            for _ in 1 .. 10 do dyn.Leapfrog(z, 0.01)
            let before = GC.GetAllocatedBytesForCurrentThread()
            for _ in 1 .. 1000 do
                dyn.Leapfrog(z, 0.01)
                dyn.H z |> ignore
            Expect.equal (GC.GetAllocatedBytesForCurrentThread() - before) 0L "bytes allocated by 1000 leapfrogs"
        for name, m in [ "low-rank", metric; "dense", Metric.dense dense; "diagonal", Metric.diagonal (Metric.inverseMassDiagonal metric) ] do
          testCase (sprintf "NUTS transitions with a %s metric allocate nothing per leapfrog" name) <| fun () ->
            let k = Nuts.kernel (Gaussian(Array2D.init d d (fun i j -> if i = j then 2.0 else 0.1))) (NutsParameters.Create(0.02, m))
            let mutable s = k.Init (Array.create d 0.3)
            for i in 0 .. 4 do s <- fst (k.Step (Rng.foldIn (Rng.key 14UL) i) s)
            let before = GC.GetAllocatedBytesForCurrentThread()
            let mutable leapfrogs = 0
            for i in 5 .. 24 do
                let s', info = k.Step (Rng.foldIn (Rng.key 14UL) i) s
                s <- s'
                leapfrogs <- leapfrogs + info.NumLeapfrog
            let bytes = GC.GetAllocatedBytesForCurrentThread() - before
            Expect.isGreaterThan leapfrogs 1000 "deep trees"
            // an object is at least 24 bytes: what a transition allocates (its new state) is spread thin
            Expect.isLessThan bytes (int64 (8 * leapfrogs)) "bytes allocated, fewer than 8 per leapfrog"
        // the carried velocity (V ← V − ε/2·M⁻¹∇U) against a test-side leapfrog that multiplies by the dense M⁻¹
        // on every step: equal up to rounding, which a stable linear trajectory of 200 steps keeps near 1e-14
        for name, m in [ "low-rank", metric; "dense", Metric.dense (Array2D.init d d (fun i j -> (if i = j then 3.0 else 0.0) + 0.4 * cos (float (i + j)))); "diagonal", Metric.diagonal scale ] do
          testCase (sprintf "200 leapfrogs with a %s metric agree with the direct M⁻¹p computation to 1e-12" name) <| fun () ->
            let precision = Array2D.init d d (fun i j -> if i = j then 2.0 else 0.1)
            let dyn = Dynamics(Gaussian precision, Metric = m)
            Expect.equal dyn.CarriesVelocity (name <> "diagonal") "the velocity is carried for dense and low-rank metrics only"
            let minv = Metric.inverseMassMatrix m
            let z = PhasePoint(d)
            let q0 = Array.init d (fun i -> sin (float i + 0.5))
            dyn.Load({ Position = q0; PotentialEnergy = 0.5 * (Array.map2 (*) q0 (matVec precision q0) |> Array.sum); Gradient = matVec precision q0 }, z)
            dyn.SampleMomentum(Rng.key 12UL, z)
            let q, p = Array.copy q0, Array.copy z.P
            let eps, steps = 0.03, 200
            for _ in 1 .. steps do
                dyn.Leapfrog(z, eps)
                let g = matVec precision q
                for i in 0 .. d - 1 do p.[i] <- p.[i] - 0.5 * eps * g.[i]
                let v = matVec minv p
                for i in 0 .. d - 1 do q.[i] <- q.[i] + eps * v.[i]
                let g = matVec precision q
                for i in 0 .. d - 1 do p.[i] <- p.[i] - 0.5 * eps * g.[i]
            let close (a: float[]) (b: float[]) what =
                let scale = b |> Array.map abs |> Array.max
                Expect.isLessThan (Array.map2 (fun x y -> abs (x - y)) a b |> Array.max) (1e-12 * scale) what
            close z.Q q "the position after 200 leapfrogs"
            close z.P p "the momentum after 200 leapfrogs"
            close z.V (matVec minv z.P) "the carried velocity is M⁻¹P"
            let h = 0.5 * (Array.map2 (*) q (matVec precision q) |> Array.sum) + 0.5 * (Array.map2 (*) p (matVec minv p) |> Array.sum)
            Expect.floatClose { absolute = 0.0; relative = 1e-12 } (dyn.H z) h "H after 200 leapfrogs"
        testCase "a low-rank metric's dense M⁻¹ is exactly symmetric, so Metric.dense takes it (d = 60, k = 25)" <| fun () ->
            let d, k = 60, 25
            let m = Metric.lowRank (Array.init d (fun i -> 0.05 + 0.01 * float i)) (Array.concat (orthonormal 15UL d k)) (Array.init k (fun j -> exp (0.3 * float j - 3.0)))
            let a = Metric.inverseMassMatrix m
            for i in 0 .. d - 1 do
                for j in 0 .. i - 1 do Expect.equal a.[i, j] a.[j, i] (sprintf "M⁻¹[%d,%d] = M⁻¹[%d,%d]" i j j i)
            Expect.equal (Metric.dim (Metric.dense a)) d "Metric.dense accepts it"
        testCase "Metric.lowRank refuses bad input, naming it" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Metric.lowRank [| 1.0; -1.0 |] [||] [||] |> ignore) "negative scale"
            Expect.throwsT<ArgumentException> (fun () -> Metric.lowRank [| 1.0; 1.0 |] [| 1.0 |] [| 2.0 |] |> ignore) "wrong vector length"
            Expect.throwsT<ArgumentException> (fun () -> Metric.lowRank [| 1.0; 1.0 |] [| 1.0; 0.0 |] [| 0.0 |] |> ignore) "zero value"
    ]

/// A kernel that always moves (SampleIndex 1) by a fixed step, for schedule tests.
let private movingKernel (ev: IGradientEvaluator) : TunableKernel =
    { Dim = ev.Dim; Evaluator = ev
      Step = fun eps _ _ s ->
        let q = s.Position |> Array.map (fun v -> v + 0.01)
        let g = Array.zeroCreate ev.Dim
        let u = ev.Evaluate(ReadOnlySpan q, Span g)
        { Position = q; PotentialEnergy = u; Gradient = g },
        { StepSize = eps; TreeDepth = 1; NumLeapfrog = 1; Divergent = false; Energy = u; AcceptStat = 0.8; AcceptStatSymmetric = 0.8; SampleIndex = 1 } }

[<Tests>]
let scheduleTests =
    testList "MetricAdapter.schedule" [
        testCase "tune = 400: switches at 8, 18, …, 118 and 198; step size only from 340; two step-size searches" <| fun () ->
            let ev = Gaussian(array2D [ [ 1.0; 0.0 ]; [ 0.0; 4.0 ] ]) :> IGradientEvaluator
            let kernel = movingKernel ev
            let s = FisherWarmup.settings MetricAdaptation.FisherDiagonal 400 DualAveragingSettings.Default true 1.0
            Expect.equal s.Schedule.EarlyEnd 120 "early phase"
            Expect.equal s.Schedule.FinalWindowStart 340 "final window"
            let mutable st = FisherWarmup.init s kernel (Rng.key 1UL) (Hmc.init ev [| 1.0; 1.0 |])
            let switches = ResizeArray()
            let sizes = ResizeArray()
            for i in 0 .. 399 do
                st <- fst (FisherWarmup.step s kernel (Rng.foldIn (Rng.key 2UL) i) st)
                if st.Background.Count = 0 then switches.Add i
                sizes.Add st.Foreground.Count
            Expect.equal (List.ofSeq switches) ([ 8 .. 10 .. 118 ] @ [ 198 ]) "switch draws"
            // the last estimate holds draws 119 .. 339 and stays frozen in the final window
            Expect.equal sizes.[339] 221 "draws in the last estimate"
            Expect.equal sizes.[399] 221 "frozen after 340"
            Expect.equal st.Searches 2 "one search at the start, one at the first metric change"
            Expect.isFalse st.InitialMetric "the metric changed"
        testCase "the low-rank schedule for tune = 800 switches up to 238, then at 318 and 438" <| fun () ->
            let ev = Gaussian(array2D [ [ 1.0; 0.0 ]; [ 0.0; 4.0 ] ]) :> IGradientEvaluator
            let kernel = movingKernel ev
            let s = FisherWarmup.settings (MetricAdaptation.FisherLowRank LowRankSettings.Default) 800 DualAveragingSettings.Default false 0.5
            let mutable st = FisherWarmup.init s kernel (Rng.key 1UL) (Hmc.init ev [| 1.0; 1.0 |])
            let switches = ResizeArray()
            for i in 0 .. 799 do
                st <- fst (FisherWarmup.step s kernel (Rng.foldIn (Rng.key 2UL) i) st)
                if st.Background.Count = 0 then switches.Add i
            Expect.equal (List.ofSeq switches) ([ 8 .. 10 .. 238 ] @ [ 318; 438 ]) "switch draws"
            // the switch at 438 makes the background (draws 319 .. 438) the foreground, which then grows to 679
            // (the reference note's "439–679" contradicts its own tune = 400 example, 119–339)
            Expect.equal st.Foreground.Count (680 - 319) "the last estimate holds draws 319 .. 679"
            Expect.equal st.Searches 0 "no search when turned off"
        testCase "which draws enter: a moved draw; a divergent one only beyond 4 leapfrogs" <| fun () ->
            let info i div = { StepSize = 0.1; TreeDepth = 3; NumLeapfrog = 7; Divergent = div; Energy = 0.0; AcceptStat = 0.5; AcceptStatSymmetric = 0.5; SampleIndex = i }
            Expect.isFalse (FisherSchedule.accepts (info 0 false)) "did not move"
            Expect.isTrue (FisherSchedule.accepts (info -3 false)) "moved"
            Expect.isFalse (FisherSchedule.accepts (info 4 true)) "divergent, 4 from the start"
            Expect.isTrue (FisherSchedule.accepts (info -5 true)) "divergent, 5 from the start"
        testCase "NUTS reports the selected point's signed index" <| fun () ->
            let ev = Gaussian(array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ])
            let k = Nuts.kernel ev (NutsParameters.Create(0.3, Metric.identity 2))
            let mutable s = k.Init [| 0.5; -0.5 |]
            let mutable zeroMoves = 0
            for i in 0 .. 199 do
                let s', info = k.Step (Rng.foldIn (Rng.key 3UL) i) s
                Expect.isLessThanOrEqual (abs info.SampleIndex) info.NumLeapfrog "within the trajectory"
                if info.SampleIndex = 0 then
                    zeroMoves <- zeroMoves + 1
                    Expect.equal s'.Position s.Position "index 0 is the starting point"
                s <- s'
            Expect.isLessThan zeroMoves 100 "most draws move"
    ]

/// A kernel that always moves by a fixed step and reports the given statistics, divergent on the draws
/// `divergent` picks (counted from its first call), for the step-size tests.
let private statKernel (ev: IGradientEvaluator) (accept: float) (symmetric: float) (divergent: int -> bool) : TunableKernel =
    let calls = ref 0
    { Dim = ev.Dim; Evaluator = ev
      Step = fun eps _ _ s ->
        let i = calls.Value
        calls.Value <- i + 1
        let q = s.Position |> Array.map (fun v -> v + 0.01)
        let g = Array.zeroCreate ev.Dim
        let u = ev.Evaluate(ReadOnlySpan q, Span g)
        { Position = q; PotentialEnergy = u; Gradient = g },
        { StepSize = eps; TreeDepth = 1; NumLeapfrog = 1; Divergent = divergent i; Energy = u; AcceptStat = accept
          AcceptStatSymmetric = symmetric; SampleIndex = 1 } }

[<Tests>]
let stepSizeTests =
    testList "MetricAdapter.stepSize" [
        testCase "the symmetric statistic of one leapfrog is 2/(1 + e^|ΔH|): 1 at no error, 0 at an infinite or NaN energy" <| fun () ->
            Expect.equal (Dyn.symmetricAccept 3.0 3.0) 1.0 "no error"
            let e1 = 2.0 / (1.0 + Math.E)
            Expect.floatClose Accuracy.veryHigh (Dyn.symmetricAccept 0.0 1.0) e1 "energy up by 1"
            Expect.floatClose Accuracy.veryHigh (Dyn.symmetricAccept 1.0 0.0) e1 "energy down by 1: the same"
            Expect.equal (Dyn.symmetricAccept 0.0 Double.PositiveInfinity) 0.0 "infinite energy"
            Expect.equal (Dyn.symmetricAccept 0.0 nan) 0.0 "NaN energy"
            Expect.equal (Dyn.symmetricAccept 0.0 800.0) 0.0 "an error of 800 underflows to 0, not NaN"
        testCase "static HMC with one leapfrog: symmetric = 2a/(1 + a) from Stan's a = e^ΔH when a < 1; divergent gives 0" <| fun () ->
            let ev = Gaussian(array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]) :> IGradientEvaluator
            let k = Hmc.tunable ev 1 NutsParameters.DefaultMaxDeltaH
            let mutable s = Hmc.init ev [| 0.5; -0.5 |]
            let mutable below = 0
            for i in 0 .. 299 do
                let s', info = k.Step 1.8 (Metric.identity 2) (Rng.foldIn (Rng.key 5UL) i) s
                if info.AcceptStat < 1.0 then
                    below <- below + 1
                    let a = info.AcceptStat
                    Expect.floatClose Accuracy.high info.AcceptStatSymmetric (2.0 * a / (1.0 + a)) "2a/(1 + a)"
                else Expect.isTrue (info.AcceptStatSymmetric > 0.0 && info.AcceptStatSymmetric <= 1.0) "in (0, 1] when the energy fell"
                s <- s'
            Expect.isGreaterThan below 30 "enough draws lost energy to check"
            // with a threshold of 1e-12 every step that gains energy diverges
            let tiny = Hmc.tunable ev 1 1e-12
            let infos = Array.init 20 (fun i -> snd (tiny.Step 1.8 (Metric.identity 2) (Rng.foldIn (Rng.key 6UL) i) (Hmc.init ev [| 3.0; -3.0 |])))
            let divergent = infos |> Array.filter (fun info -> info.Divergent)
            Expect.isNonEmpty divergent "some steps diverge"
            for info in divergent do Expect.equal info.AcceptStatSymmetric 0.0 "a divergent step counts 0"
        testCase "Fisher warmup: Stan's statistic while windows switch, the symmetric one from the first late draw (tune = 400: 199)" <| fun () ->
            let ev = Gaussian(array2D [ [ 1.0; 0.0 ]; [ 0.0; 4.0 ] ]) :> IGradientEvaluator
            // Stan's statistic at the target keeps dual averaging's iterate still; the symmetric one below it
            // pulls the step size down at every draw
            let kernel = statKernel ev 0.8 0.3 (fun _ -> false)
            let s = FisherWarmup.settings MetricAdaptation.FisherDiagonal 400 DualAveragingSettings.Default false 0.5
            let mutable st = FisherWarmup.init s kernel (Rng.key 1UL) (Hmc.init ev [| 1.0; 1.0 |])
            let steps = Array.zeroCreate 400
            for i in 0 .. 399 do
                st <- fst (FisherWarmup.step s kernel (Rng.foldIn (Rng.key 2UL) i) st)
                steps.[i] <- st.StepSize
            for i in 10 .. 198 do Expect.equal steps.[i] steps.[9] (sprintf "draw %d: the step size stays put before the late draws" i)
            for i in 199 .. 399 do Expect.isLessThan steps.[i] steps.[i - 1] (sprintf "draw %d: the symmetric statistic lowers it" i)
            Expect.equal st.LateDraws 201 "draws 199 .. 399 are late"
        testCase "Fisher warmup: the late draws' divergent fraction ρ shrinks the step size to exp(x̄)/(1 + 15ρ); none leaves it" <| fun () ->
            let ev = Gaussian(array2D [ [ 1.0; 0.0 ]; [ 0.0; 4.0 ] ]) :> IGradientEvaluator
            let s = FisherWarmup.settings MetricAdaptation.FisherDiagonal 400 DualAveragingSettings.Default false 0.5
            let run (divergent: int -> bool) =
                let kernel = statKernel ev 0.8 0.8 divergent
                let mutable st = FisherWarmup.init s kernel (Rng.key 1UL) (Hmc.init ev [| 1.0; 1.0 |])
                for i in 0 .. 399 do st <- fst (FisherWarmup.step s kernel (Rng.foldIn (Rng.key 2UL) i) st)
                st, FisherWarmup.finish st
            let clean, adaptedClean = run (fun _ -> false)
            Expect.equal adaptedClean.StepSize (exp clean.DualAveraging.XBar) "no divergence: dual averaging's exp(x̄)"
            // divergent every 20th draw from 100 to 180 (before the late draws: not counted) and at 250, 260, …, 390
            let st, adapted = run (fun i -> i >= 100 && i % 10 = 0 && (i < 199 && i % 20 = 0 || i >= 250))
            // the 5 early divergent draws (1 leapfrog from the start) stay out of the estimates, so the last switch
            // and the first late draw come 5 draws later than in the clean run
            Expect.equal clean.LateDraws 201 "clean: draws 199 .. 399 are late"
            Expect.equal st.LateDraws 196 "draws 204 .. 399 are late"
            Expect.equal st.LateDivergences 15 "late divergences"
            Expect.floatClose Accuracy.veryHigh adapted.StepSize (exp st.DualAveraging.XBar / (1.0 + FisherWarmup.DivergenceShrink * 15.0 / 196.0)) "shrunk"
            Expect.isLessThan adapted.StepSize (0.6 * adaptedClean.StepSize) "15 of 201 divergent: well below the clean step"
    ]

/// gp_pois_regr (a latent GP under a Poisson likelihood): a Fisher metric makes the bulk better conditioned
/// than Stan's, dual averaging then takes a step that diverges at large α (~3 % of draws: 124 of 4000 with
/// the diagonal, 125 with low rank at seed 1 before the late symmetric statistic and the divergence shrink;
/// Stan's adapter 2, rstan 3). Same seed, same bits: bounds on the counts (the means: MetricAdapter.posteriordb).
[<Tests>]
let gpPoisDivergenceTests =
    testList "MetricAdapter.gp_pois_regr divergences" [
        for a, bound in [ MetricAdaptation.FisherDiagonal, 20; MetricAdaptation.FisherLowRank LowRankSettings.Default, 80 ] ->
            testCase (sprintf "%s: under %d divergent draws of 4000 at seed 1 (124–125 before)" a.Text bound) <| fun _ ->
                let p = Posteriors.gpPoisRegr
                let r = PosteriorData.load p.Name
                let o = { McmcOptions.Default with Seed = 1UL; Adaptation = a; TargetAccept = p.Settings.TargetAccept }
                let fit = Mcmc.runIn RunContext.Quiet o (p.Model r)
                let divergences = fit.Flat.Stats |> Array.sumBy (fun s -> s.Divergent |> Array.filter id |> Array.length)
                printfn "gp_pois_regr %s: %d divergent draws" a.Text divergences
                Expect.isLessThan divergences bound "divergent draws"
    ]

/// Mean leapfrogs per kept draw of one chain on a Gaussian with the adapter.
let private leapfrogsPerDraw (adaptation: MetricAdaptation) (precision: float[,]) =
    let d = Array2D.length1 precision
    let source = { Dim = d; Kind = GradientKind.Custom "gaussian"; Create = fun () -> Gaussian(precision) :> IGradientEvaluator }
    let o = { McmcOptions.Default with Chains = 1; Warmup = 600; Samples = 200; Seed = 12UL; Parallel = false; Adaptation = adaptation }
    let r = Mcmc.sampleFlatIn RunContext.Quiet o source [| Array.create d 0.5 |]
    r.Stats.[0].NumLeapfrog |> Array.averageBy float

[<Tests>]
let samplerTests =
    testList "MetricAdapter.sampler" [
        testCase "a correlated Gaussian (d = 30, spikes 1e2 and 1e3): low rank needs at most a third of the diagonal's leapfrogs" <| fun () ->
            let d = 30
            let us = orthonormal 13UL d 2
            let spikes = [| 1e2; 1e3 |]
            let sigma = Array2D.init d d (fun i j -> (if i = j then 1.0 else 0.0) + (Array.init 2 (fun m -> spikes.[m] * us.[m].[i] * us.[m].[j]) |> Array.sum))
            let precision = inverse sigma
            let diag = leapfrogsPerDraw MetricAdaptation.FisherDiagonal precision
            let low = leapfrogsPerDraw (MetricAdaptation.FisherLowRank LowRankSettings.Default) precision
            let stan = leapfrogsPerDraw MetricAdaptation.Stan precision
            printfn "leapfrogs per draw: Stan %.1f, Fisher diagonal %.1f, Fisher low rank %.1f" stan diag low
            Expect.isLessThan low (diag / 3.0) "low rank vs diagonal"
    ]

/// Every adapter against the shared posteriordb references (4 MCSE, as NutsPosteriorTests), at cheap
/// settings: 4 chains of 400 kept draws after 500 warmup; a diagonal metric on the two regressions whose
/// intercept and slope correlate at ρ ≈ −0.99 gets 1000 draws (its bulk ESS is then ~700; R̂'s bound is NutsPosteriorTests.rhatBound).
[<Tests>]
let posteriordbTests =
    let cheap seed adaptation = { McmcOptions.Default with Seed = seed; Warmup = 500; Samples = 400; Adaptation = adaptation }
    let adapters = [ MetricAdaptation.FisherDiagonal; MetricAdaptation.FisherLowRank LowRankSettings.Default ]
    testList "MetricAdapter.posteriordb" [
        for a in adapters do
            for i, p in List.indexed NutsPosteriorTests.shared do
                // a diagonal metric gets more draws on the two correlated regressions
                let o = { cheap (uint64 (21 + i)) a with TargetAccept = p.Settings.TargetAccept }
                let correlated = p.Name = Posteriors.logearnHeight.Name || p.Name = Posteriors.kidscoreMomiq.Name
                let o =
                    match a with
                    | MetricAdaptation.FisherDiagonal | MetricAdaptation.Stan when correlated -> { o with Samples = 1000 }
                    | _ -> o
                testCase (sprintf "%s, %s" p.Name a.Text) <| fun _ -> NutsPosteriorTests.checkWith p o
            // arma11 from Stan's inits: a chain starting at |θ| > 1 meets gradients of 1e43 (the MA recursion
            // explodes); at seed 1 a low-rank chain froze there (bulk ESS 7 of 4000 draws) until λ was clamped
            testCase (sprintf "arma-arma11 from an explosive initial point, %s" a.Text) <| fun _ ->
                NutsPosteriorTests.checkWith Posteriors.arma11 { McmcOptions.Default with Seed = 1UL; Adaptation = a; TargetAccept = Posteriors.arma11.Settings.TargetAccept }
    ]

