/// Wishart and inverse-Wishart (issue 26): log densities against MathNet.Numerics and closed forms written
/// here (1×1: a gamma and an inverse gamma; 2×2: determinant and inverse by hand), −∞ off the support
/// (also for symmetric matrices that are not positive definite), gradients, draws against the moments,
/// NUTS on a latent covariance, and the compiled program against the tape.
module FunctionalBayes.Tests.WishartTests

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil
open FunctionalBayes.PosteriorDb

type private RefWishart = MathNet.Numerics.Distributions.Wishart
type private RefInverseWishart = MathNet.Numerics.Distributions.InverseWishart
type private SF = MathNet.Numerics.SpecialFunctions

let private s (v: float) = Tensor.scalar v
let private mat (n: int) (v: float[]) = Tensor.create [| n; n |] v
let private scalarOf (x: Tensor) = Tensor.toScalar x
let private dense (n: int) (v: float[]) = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfRowMajor(n, n, v)
let private chol (n: int) (v: float[]) = Tensor.cholesky (mat n v)

/// log Γ₂(a) = ½ log π + log Γ(a) + log Γ(a − ½).
let private lmvgamma2 (a: float) = 0.5 * log Math.PI + SF.GammaLn a + SF.GammaLn (a - 0.5)

/// Gamma(α, rate r) and InverseGamma(α, scale β) log densities, written out (MathNet's lose precision at
/// the extremes here).
let private gammaLn (a: float) (r: float) (x: float) = a * log r - SF.GammaLn a + (a - 1.0) * log x - r * x
let private inverseGammaLn (a: float) (b: float) (x: float) = a * log b - SF.GammaLn a - (a + 1.0) * log x - b / x

/// The 2×2 Wishart log density from its definition, with det and inverse written out.
let private wishart2 (nu: float) (sv: float[]) (xv: float[]) =
    let detS = sv.[0] * sv.[3] - sv.[1] * sv.[2]
    let detX = xv.[0] * xv.[3] - xv.[1] * xv.[2]
    // tr(S⁻¹X) with S⁻¹ = [d −b; −c a] / det
    let tr = (sv.[3] * xv.[0] - sv.[1] * xv.[2] - sv.[2] * xv.[1] + sv.[0] * xv.[3]) / detS
    0.5 * (nu - 3.0) * log detX - 0.5 * tr - nu * log 2.0 - 0.5 * nu * log detS - lmvgamma2 (0.5 * nu)

/// The 2×2 inverse-Wishart log density from its definition.
let private inverseWishart2 (nu: float) (pv: float[]) (xv: float[]) =
    let detP = pv.[0] * pv.[3] - pv.[1] * pv.[2]
    let detX = xv.[0] * xv.[3] - xv.[1] * xv.[2]
    let tr = (pv.[0] * xv.[3] - pv.[1] * xv.[2] - pv.[2] * xv.[1] + pv.[3] * xv.[0]) / detX
    0.5 * nu * log detP - nu * log 2.0 - lmvgamma2 (0.5 * nu) - 0.5 * (nu + 3.0) * log detX - 0.5 * tr

let private expectArgumentError (f: unit -> unit) (fragments: string list) =
    let msg =
        try f (); failtest "expected an ArgumentException"
        with :? ArgumentException as ex -> ex.Message
    for fragment in fragments do
        Expect.stringContains msg fragment (sprintf "the message names %s" fragment)

let private sigma3 = [| 2.0; 0.6; -0.3; 0.6; 1.5; 0.4; -0.3; 0.4; 1.0 |]
let private x3 = [| 3.1; -0.4; 0.8; -0.4; 2.2; 0.5; 0.8; 0.5; 1.9 |]

let private densityTests =
    testList "log density" [
        testCase "3×3 Wishart and inverse-Wishart against MathNet at ordinary parameters" <| fun () ->
            for nu in [ 2.5; 3.0; 7.0; 40.0 ] do
                let l = chol 3 sigma3
                let w = Dist.logProb (Dist.wishart (s nu) l) (mat 3 x3) |> scalarOf
                close 1e-11 (log (RefWishart(nu, dense 3 sigma3).Density(dense 3 x3))) w (sprintf "Wishart ν = %g" nu)
                let iw = Dist.logProb (Dist.inverseWishart (s nu) l) (mat 3 x3) |> scalarOf
                close 1e-11 (log (RefInverseWishart(nu, dense 3 sigma3).Density(dense 3 x3))) iw (sprintf "inverse-Wishart ν = %g" nu)
        testCase "1×1: Wishart(ν, σ²) is Gamma(ν/2, rate 1/(2σ²)), inverse-Wishart(ν, ψ) is InverseGamma(ν/2, ψ/2), at extreme scales" <| fun () ->
            for nu in [ 0.01; 1.0; 3.7; 1e4 ] do
                for sc in [ 1e-8; 1.0; 1e8 ] do
                    for x in [ 1e-10; 0.3; 2e9 ] do
                        let l = mat 1 [| sqrt sc |]
                        let w = Dist.logProb (Dist.wishart (s nu) l) (mat 1 [| x |]) |> scalarOf
                        close 1e-10 (gammaLn (0.5 * nu) (0.5 / sc) x) w (sprintf "Wishart ν = %g, σ² = %g, x = %g" nu sc x)
                        let iw = Dist.logProb (Dist.inverseWishart (s nu) l) (mat 1 [| x |]) |> scalarOf
                        close 1e-10 (inverseGammaLn (0.5 * nu) (0.5 * sc) x) iw (sprintf "inverse-Wishart ν = %g, ψ = %g, x = %g" nu sc x)
        testCase "2×2 against the definition, incl. near-singular values and large scales" <| fun () ->
            let cases =
                [ [| 1.0; 0.3; 0.3; 2.0 |], [| 0.5; 0.1; 0.1; 0.7 |]
                  [| 1e6; 0.0; 0.0; 1e-6 |], [| 2e5; 1e-3; 1e-3; 3e-6 |]
                  [| 1.0; 0.999; 0.999; 1.0 |], [| 1.0; 0.9999; 0.9999; 1.0 |] ]
            for sv, xv in cases do
                for nu in [ 1.5; 4.0; 300.0 ] do
                    let l = chol 2 sv
                    close 1e-9 (wishart2 nu sv xv) (Dist.logProb (Dist.wishart (s nu) l) (mat 2 xv) |> scalarOf) (sprintf "Wishart ν = %g, S = %A, X = %A" nu sv xv)
                    close 1e-9 (inverseWishart2 nu sv xv) (Dist.logProb (Dist.inverseWishart (s nu) l) (mat 2 xv) |> scalarOf) (sprintf "inverse-Wishart ν = %g, Ψ = %A, X = %A" nu sv xv)
        testCase "batches: df and scale broadcast against a batch of values" <| fun () ->
            let l = Tensor.stack 0 [ chol 2 [| 1.0; 0.3; 0.3; 2.0 |]; chol 2 [| 0.5; 0.0; 0.0; 0.5 |] ]
            let nus = Tensor.ofArray [| 3.0; 5.5 |]
            let xs = Tensor.create [| 3; 2; 2; 2 |] (Array.init 24 (fun i -> match i % 4 with 0 -> 1.0 + 0.1 * float i | 3 -> 2.0 | _ -> 0.1))
            let d = Dist.wishart nus l
            Expect.equal (Dist.batchShape d) [| 2 |] "batch shape"
            Expect.equal (Dist.eventShape d) [| 2; 2 |] "event shape"
            let lp = Dist.logProb d xs
            Expect.equal lp.Shape [| 3; 2 |] "one log density per value"
            let xv = Tensor.toArray xs
            let lv = Tensor.toArray lp
            for i in 0 .. 2 do
                for b in 0 .. 1 do
                    let sv = if b = 0 then [| 1.0; 0.3; 0.3; 2.0 |] else [| 0.5; 0.0; 0.0; 0.5 |]
                    let nu = if b = 0 then 3.0 else 5.5
                    close 1e-11 (wishart2 nu sv xv.[(i * 2 + b) * 4 .. (i * 2 + b) * 4 + 3]) lv.[i * 2 + b] (sprintf "value %d, batch %d" i b)
        testCase "off the support: −∞, not an exception or NaN (asymmetric, indefinite, singular, negative)" <| fun () ->
            let l = chol 2 [| 1.0; 0.3; 0.3; 2.0 |]
            for xv in [ [| 1.0; 0.5; 0.2; 1.0 |]; [| 1.0; 2.0; 2.0; 1.0 |]; [| 1.0; 1.0; 1.0; 1.0 |]; [| -1.0; 0.0; 0.0; 2.0 |]; [| 0.0; 0.0; 0.0; 0.0 |] ] do
                for d in [ Dist.wishart (s 4.0) l; Dist.inverseWishart (s 4.0) l ] do
                    let lp = Dist.logProb d (mat 2 xv) |> scalarOf
                    Expect.equal lp Double.NegativeInfinity (sprintf "%s at %A" (Dist.name d) xv)
            // in a batch, the matrices on the support keep their values
            let xs = Tensor.create [| 2; 2; 2 |] [| 1.0; 2.0; 2.0; 1.0; 1.0; 0.3; 0.3; 2.0 |]
            let lp = Dist.logProb (Dist.wishart (s 4.0) l) xs |> Tensor.toArray
            Expect.equal lp.[0] Double.NegativeInfinity "the indefinite one"
            close 1e-12 (wishart2 4.0 [| 1.0; 0.3; 0.3; 2.0 |] [| 1.0; 0.3; 0.3; 2.0 |]) lp.[1] "the positive-definite one"
        testCase "gradients in the value, df and the scale factor match finite differences" <| fun () ->
            // X = B Bᵀ + I and L = tril(M) with a positive diagonal, from free parameters
            let xOf (b: Tensor) = Tensor.matmul b (Tensor.transpose b) + Tensor.eye 3
            let lOf (m: Tensor) = Tensor.tril m - Tensor.diagEmbed (Tensor.diagonal m) + Tensor.diagEmbed (Tensor.exp (Tensor.diagonal m))
            let b0 = mat 3 [| 0.3; -0.2; 0.5; 0.1; 0.8; -0.4; 0.6; 0.2; 0.3 |]
            let m0 = mat 3 [| 0.2; 0.0; 0.0; 0.4; -0.1; 0.0; -0.3; 0.2; 0.1 |]
            gradCheck (fun p -> Dist.logProb (Wishart (p.[1], lOf p.[2])) (xOf p.[0])) [| b0; s 5.0; m0 |]
            gradCheck (fun p -> Dist.logProb (InverseWishart (p.[1], lOf p.[2])) (xOf p.[0])) [| b0; s 5.0; m0 |]
    ]

let private constructorTests =
    testList "checked constructors" [
        testCase "df must exceed p − 1, the scale must be a Cholesky factor or positive definite" <| fun () ->
            let l = chol 3 sigma3
            expectArgumentError (fun () -> Dist.wishart (s 2.0) l |> ignore) [ "Wishart"; "df"; "p − 1 = 2"; "got 2" ]
            expectArgumentError (fun () -> Dist.inverseWishart (s Double.NaN) l |> ignore) [ "InverseWishart"; "df" ]
            expectArgumentError (fun () -> Dist.wishart (s 5.0) (mat 3 sigma3) |> ignore) [ "Wishart"; "scaleTril"; "lower triangular" ]
            expectArgumentError (fun () -> Dist.wishart (s 5.0) (Tensor.ones [| 2; 3 |]) |> ignore) [ "scaleTril"; "square"; "[2, 3]" ]
            expectArgumentError (fun () -> Dist.wishartCov (s 5.0) (mat 2 [| 1.0; 2.0; 2.0; 1.0 |]) |> ignore) [ "Wishart"; "scale"; "not positive definite" ]
            expectArgumentError (fun () -> Dist.inverseWishartCov (s 5.0) (mat 2 [| 1.0; 2.0; 2.0; 1.0 |]) |> ignore) [ "InverseWishart"; "scale"; "not positive definite" ]
            expectArgumentError (fun () -> Dist.wishart (Tensor.ofArray [| 4.0; 5.0; 6.0 |]) (Tensor.stack 0 [ l; l ]) |> ignore) [ "df"; "[3]"; "[2, 3, 3]" ]
        testCase "wishartCov and inverseWishartCov take the scale's Cholesky factor" <| fun () ->
            let x = mat 3 x3
            close 1e-12 (Dist.logProb (Dist.wishart (s 6.0) (chol 3 sigma3)) x |> scalarOf) (Dist.logProb (Dist.wishartCov (s 6.0) (mat 3 sigma3)) x |> scalarOf) "Wishart"
            close 1e-12 (Dist.logProb (Dist.inverseWishart (s 6.0) (chol 3 sigma3)) x |> scalarOf) (Dist.logProb (Dist.inverseWishartCov (s 6.0) (mat 3 sigma3)) x |> scalarOf) "inverse-Wishart"
    ]

/// Element-wise sample means within 4.5 standard errors of the mean, the standard error from the
/// closed-form variance (Var X_ij of the Wishart: ν(S_ij² + S_ii S_jj)).
let private expectMeans (what: string) (draws: float[][]) (mean: float[]) (var: float[]) =
    let n = float draws.Length
    for e in 0 .. mean.Length - 1 do
        let m = draws |> Array.averageBy (fun d -> d.[e])
        let se = sqrt (var.[e] / n)
        Expect.isLessThan (abs (m - mean.[e])) (4.5 * se) (sprintf "%s: element %d: sample mean %g, expected %g (se %g)" what e m mean.[e] se)

let private samplingTests =
    testList "draws and moments" [
        testCase "Bartlett draws: symmetric positive definite, means within 4.5 standard errors, for both" <| fun () ->
            let sv = [| 1.0; 0.3; 0.3; 2.0 |]
            let n = 4000
            let nu = 9.0
            let p = 2.0
            let dW = Dist.wishart (s nu) (chol 2 sv)
            let dIW = Dist.inverseWishart (s nu) (chol 2 sv)
            for d in [ dW; dIW ] do
                let xs = Dist.sample (Rng.key 11UL) [| n |] d
                Expect.equal xs.Shape [| n; 2; 2 |] "draw shape"
                let lp = Dist.logProb d xs |> Tensor.toArray
                Expect.isTrue (lp |> Array.forall Double.IsFinite) (sprintf "%s: every draw is on the support" (Dist.name d))
                let v = Tensor.toArray xs
                let draws = Array.init n (fun i -> v.[i * 4 .. i * 4 + 3])
                for i in 0 .. n - 1 do
                    Expect.equal draws.[i].[1] draws.[i].[2] "symmetric"
                // the closed-form moments, written here
                let prod i j = sv.[i * 2 + i] * sv.[j * 2 + j]
                let mean, var =
                    match d with
                    | Wishart _ -> sv |> Array.map (fun v -> nu * v), Array.init 4 (fun e -> nu * (sv.[e] * sv.[e] + prod (e / 2) (e % 2)))
                    | _ ->
                        let c = (nu - p) * (nu - p - 1.0) ** 2.0 * (nu - p - 3.0)
                        sv |> Array.map (fun v -> v / (nu - p - 1.0)),
                        Array.init 4 (fun e -> ((nu - p + 1.0) * sv.[e] * sv.[e] + (nu - p - 1.0) * prod (e / 2) (e % 2)) / c)
                assertClose 1e-12 mean (Dist.mean d |> Tensor.toArray)
                assertClose 1e-12 var (Dist.variance d |> Tensor.toArray)
                expectMeans (Dist.name d) draws mean var
        testCase "LKJ draws: every correlation's marginal is 2·Beta(η − 1 + K/2, same) − 1 (Kolmogorov–Smirnov), rows of unit length" <| fun () ->
            let n = 3000
            for k, eta in [ 2, 0.7; 3, 1.0; 4, 2.5 ] do
                let d = Dist.lkjCholesky k (s eta)
                let l = Dist.sample (Rng.key 21UL) [| n |] d
                Expect.equal l.Shape [| n; k; k |] "draw shape"
                Expect.isTrue (Dist.logProb d l |> Tensor.toArray |> Array.forall Double.IsFinite) "every draw is on the support"
                let r = Tensor.matmul l (Tensor.transpose l) |> Tensor.toArray
                let b = eta - 1.0 + float k / 2.0
                for i in 0 .. k - 1 do
                    for j in 0 .. i do
                        let rij = Array.init n (fun m -> r.[m * k * k + i * k + j])
                        if i = j then
                            Expect.isTrue (rij |> Array.forall (fun v -> abs (v - 1.0) < 1e-12)) "unit diagonal"
                        else
                            // the largest gap between the empirical CDF and the Beta marginal's: 1.95/√n is
                            // the 0.1 % critical value
                            let sorted = rij |> Array.map (fun v -> 0.5 * (v + 1.0)) |> Array.sort
                            let dmax =
                                sorted |> Array.mapi (fun m v ->
                                    let f = MathNet.Numerics.Distributions.Beta.CDF(b, b, v)
                                    max (abs (f - float m / float n)) (abs (f - float (m + 1) / float n)))
                                |> Array.max
                            Expect.isLessThan dmax (1.95 / sqrt (float n)) (sprintf "K = %d, η = %g, ρ[%d,%d]: KS distance %g" k eta i j dmax)
        testCase "the same key gives the same draws" <| fun () ->
            let d = Dist.inverseWishart (s 6.0) (chol 3 sigma3)
            let a = Dist.sample (Rng.key 3UL) [| 5 |] d |> Tensor.toArray
            let b = Dist.sample (Rng.key 3UL) [| 5 |] d |> Tensor.toArray
            Expect.sequenceEqual a b "same bits"
    ]

let private key = Rng.key 0UL

let private modelTests =
    testList "in models" [
        testCase "NUTS on a Wishart prior over a latent 2×2 covariance: E[X] = νΣ within 4 MCSE" <| fun () ->
            let sv = [| 1.0; 0.3; 0.3; 2.0 |]
            let nu = 6.0
            let m = model { let! x = Model.sample "Sigma" (Dist.wishart (s nu) (chol 2 sv)) in return x }
            let fit = Mcmc.runIn RunContext.Quiet { McmcOptions.Default with Chains = 2; Warmup = 400; Samples = 1000; Seed = 5UL } m
            let scalars = PosteriorData.scalars fit.Draws
            for (name, e) in [ "Sigma[1,1]", 0; "Sigma[2,1]", 2; "Sigma[2,2]", 3 ] do
                let sm = Diagnostics.summarize name scalars.[name]
                Expect.isLessThan (abs (sm.Mean - nu * sv.[e])) (4.0 * sm.McseMean) (sprintf "%s: E = %g, expected %g (MCSE %g)" name sm.Mean (nu * sv.[e]) sm.McseMean)
        testCase "an inverse-Wishart likelihood on observed covariances compiles, agrees with the tape and rebinds exactly" <| fun () ->
            // ν and the scale's diagonal are latent; the data are three 2×2 covariance matrices, one of
            // them rebound to an indefinite one: −∞ from both the tape and the rebound program
            let build (data: Tensor[]) =
                LogDensity.potential key (model {
                    let! nu = Model.sample "nu" (Dist.gamma (s 20.0) (s 2.0))
                    let! sd = Model.sample "sd" (Dist.halfNormal (Tensor.ones [| 2 |]))
                    let l = Tensor.diagEmbed sd
                    return! Model.observe "S" (InverseWishart (nu + 1.0, l)) (Some data.[0]) })
            let pd = Tensor.create [| 3; 2; 2 |] [| 1.0; 0.2; 0.2; 0.5; 2.0; -0.3; -0.3; 1.0; 0.7; 0.0; 0.0; 0.9 |]
            let pot = build [| pd |]
            let q0 = [| 0.3; -0.2; 0.1 |]
            match Compilation.compileWithData build [| pd |] (FlatPosition.split pot (ReadOnlySpan q0)) with
            | FellBack (why, _) -> failtestf "expected a compiled program, fell back: %s" why
            | Compiled cp ->
                let eval (src: GradientSource) (q: float[]) =
                    let e = src.Create()
                    let g = Array.zeroCreate q.Length
                    let v = e.Evaluate(ReadOnlySpan q, Span g)
                    v, g
                for q in [ q0; [| -0.5; 0.4; 0.9 |]; [| 1.2; 0.0; -0.7 |] ] do
                    let vc, gc = eval cp.Source q
                    let vt, gt = eval (GradientSource.tape pot) q
                    close 1e-12 vt vc "value"
                    assertClose 1e-10 gt gc
                let other = Tensor.create [| 3; 2; 2 |] [| 1.5; 0.1; 0.1; 0.8; 1.0; 0.0; 0.0; 1.0; 3.0; 1.0; 1.0; 2.0 |]
                let rebound = cp.Rebind [| other |]
                let vr, _ = eval rebound q0
                let vt, _ = eval (GradientSource.tape (build [| other |])) q0
                close 1e-12 vt vr "rebound value"
                let indefinite = Tensor.create [| 3; 2; 2 |] [| 1.5; 0.1; 0.1; 0.8; 1.0; 2.0; 2.0; 1.0; 3.0; 1.0; 1.0; 2.0 |]
                let vi, _ = eval (cp.Rebind [| indefinite |]) q0
                let ti, _ = eval (GradientSource.tape (build [| indefinite |])) q0
                Expect.equal ti Double.PositiveInfinity "the tape: infinite energy for an indefinite observation"
                Expect.equal vi ti "the rebound program: the same"
    ]

[<Tests>]
let wishartTests =
    testList "Wishart" [ densityTests; constructorTests; samplingTests; modelTests ]
