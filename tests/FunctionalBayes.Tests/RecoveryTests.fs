/// Recovery: autoguides against a known Gaussian posterior, and BLayers' own recovery thresholds
/// (linear RMSE < 0.15 and |σ − σ̂| < 0.03; FM, low-rank, interaction, embedding, random walk, FM3),
/// on small simulated data with fixed seeds.
module FunctionalBayes.Tests.RecoveryTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors

let private s (v: float) = Tensor.scalar v
let private rmse (a: float[]) (b: float[]) = sqrt (Array.average (Array.map2 (fun x y -> (x - y) ** 2.0) a b))

// ---- a conjugate model: β ~ N(0, I), y ~ N(Xβ, 0.5²) --------------------------------------------

let private n, k, noise = 30, 2, 0.5
let private xData =
    // correlated columns, so the posterior has a correlation a diagonal guide cannot represent
    let z = Rng.normal (Rng.key 31UL) [| n; k |] |> Tensor.toArray
    Tensor.create [| n; k |] (Array.init (n * k) (fun i -> if i % 2 = 0 then z.[i] else 0.8 * z.[i - 1] + 0.6 * z.[i]))
let private betaTrue = Tensor.ofArray [| 1.0; -0.5 |]
let private yData = Tensor.matmul xData betaTrue + noise * Rng.normal (Rng.key 32UL) [| n |]
let private conj (d: Map<string, Tensor>) = model {
    let! beta = Model.sample "beta" (Dist.toEvent 1 (Normal (Tensor.zeros [| k |], Tensor.ones [| k |])))
    return! Model.observe "y" (Normal (Tensor.matmul d.["x"] beta, s noise)) (d.TryFind "y")
}
let private conjData = Map [ "x", xData; "y", yData ]
/// Exact posterior: precision Λ = I + XᵀX/σ², mean Λ⁻¹ Xᵀy/σ².
let private exactMean, exactCov =
    let x = Tensor.toArray2D xData
    let y = Tensor.toArray yData
    let lam = Array2D.init k k (fun i j -> (if i = j then 1.0 else 0.0) + (Seq.sum (seq { for r in 0 .. n - 1 -> x.[r, i] * x.[r, j] })) / (noise * noise))
    let det = lam.[0, 0] * lam.[1, 1] - lam.[0, 1] * lam.[1, 0]
    let cov = array2D [ [ lam.[1, 1] / det; -lam.[0, 1] / det ]; [ -lam.[1, 0] / det; lam.[0, 0] / det ] ]
    let xty = Array.init k (fun j -> Seq.sum (seq { for r in 0 .. n - 1 -> x.[r, j] * y.[r] }) / (noise * noise))
    Array.init k (fun i -> cov.[i, 0] * xty.[0] + cov.[i, 1] * xty.[1]), cov
let private lambdaDiag i = (let d = exactCov.[0, 0] * exactCov.[1, 1] - exactCov.[0, 1] ** 2.0 in (if i = 0 then exactCov.[1, 1] else exactCov.[0, 0]) / d)

let private fitConj (kind: AutoGuideKind) (particles: int) =
    Fit.vi { FitOptions.Default with AutoGuide = kind; Run.Steps = Some 2000; LearningRate = 0.05; Particles = particles; Seed = 5UL } conj conjData

let private posteriorMoments (f: Posterior<Tensor>) (draws: int) =
    let b = (Posterior.draws f (Rng.key 6UL) draws).["beta"] |> Tensor.toArray2D
    let m = Array.init k (fun j -> Seq.average (seq { for r in 0 .. draws - 1 -> b.[r, j] }))
    let c = Array2D.init k k (fun i j -> Seq.average (seq { for r in 0 .. draws - 1 -> (b.[r, i] - m.[i]) * (b.[r, j] - m.[j]) }))
    m, c

/// With D draws, a mean is within 5·sd/√D of the guide's mean; the optimization adds a small error.
let private checkMean (name: string) (got: float[]) =
    for j in 0 .. k - 1 do
        let sd = sqrt exactCov.[j, j]
        Assert.True(abs (got.[j] - exactMean.[j]) < 0.15 * sd, sprintf "%s mean %d: %g vs %g (sd %g)" name j got.[j] exactMean.[j] sd)

let ``full-covariance guides recover the exact posterior mean and covariance`` () =
    for kind in [ AutoGuideKind.AutoMultivariateNormal; AutoGuideKind.AutoLowRankMultivariateNormal (Some 1) ] do
        let m, c = posteriorMoments (fitConj kind 8) 20000
        checkMean (sprintf "%A" kind) m
        for i in 0 .. k - 1 do
            for j in 0 .. k - 1 do
                let scale = sqrt (exactCov.[i, i] * exactCov.[j, j])
                Assert.True(abs (c.[i, j] - exactCov.[i, j]) < 0.15 * scale, sprintf "%A cov %d,%d: %g vs %g" kind i j c.[i, j] exactCov.[i, j])

let ``mean-field guides recover the mean and the mean-field variances 1/Λᵢᵢ`` () =
    for kind in [ AutoGuideKind.AutoNormal; AutoGuideKind.AutoDiagonalNormal ] do
        let m, c = posteriorMoments (fitConj kind 8) 20000
        checkMean (sprintf "%A" kind) m
        for i in 0 .. k - 1 do
            let v = 1.0 / lambdaDiag i
            Assert.True(abs (c.[i, i] / v - 1.0) < 0.15, sprintf "%A var %d: %g vs %g" kind i c.[i, i] v)

let ``the MAP and the Laplace approximation are exact for a Gaussian posterior`` () =
    let delta = fitConj AutoGuideKind.AutoDelta 1
    checkMean "AutoDelta" (Tensor.toArray (Posterior.parameters delta).["beta_auto_loc"])
    let lap = fitConj AutoGuideKind.AutoLaplaceApproximation 1
    let m, c = posteriorMoments lap 20000
    checkMean "AutoLaplaceApproximation" m
    for i in 0 .. k - 1 do
        for j in 0 .. k - 1 do
            let scale = sqrt (exactCov.[i, i] * exactCov.[j, j])
            Assert.True(abs (c.[i, j] - exactCov.[i, j]) < 0.1 * scale, sprintf "Laplace cov %d,%d: %g vs %g" i j c.[i, j] exactCov.[i, j])

let ``the mean-field ELBO with analytic KL fits the same posterior`` () =
    let guide = Guide.auto AutoGuideKind.AutoNormal (InitUniform 2.0) (Rng.key 7UL) (conj conjData)
    let f = Fit.viWithGuide guide { FitOptions.Default with Run.Steps = Some 2000; LearningRate = 0.05; Particles = 4; Seed = 8UL } conj conjData
    let cfg = { Model = conj; Guide = guide; Optimizer = Optimizer.AdamWith (Schedule.CosineDecay (0.05, 2000, 0.0)); Elbo = Elbo.MeanField 4; ClipNorm = None }
    let r = Svi.run cfg (Rng.key 8UL) conjData (SviRunOptions.ForSteps 2000)
    let mf = Tensor.toArray r.Params.["beta_auto_loc"]
    checkMean "MeanField" mf
    checkMean "Trace" (Tensor.toArray (Posterior.parameters f).["beta_auto_loc"])

// ---- BLayers' recovery thresholds --------------------------------------------------------------

/// Fits with the batched ELBO and returns the guide means of the named sites.
let private fitBatched (modelFn: Map<string, Tensor> -> Model<Tensor>) (data: Map<string, Tensor>) (epochs: int) (batch: int) (lr: float) =
    let f = Fit.vi { FitOptions.Default with Run.Epochs = Some epochs; Run.BatchSize = Some batch; LearningRate = lr; Schedule = LrSchedule.WarmupCosine; Seed = 3UL } modelFn data
    let means = Posterior.mean f (Rng.key 4UL) 500
    fun (name: string) -> means.[name]

let ``linear: RMSE(beta) < 0.15 and |sigma - sigma_hat| < 0.03, batched and not`` () =
    let n = 2000
    let x = Rng.normal (Rng.key 41UL) [| n; 2 |]
    let beta = [| 0.8; -1.3 |]
    let y = Tensor.matmul x (Tensor.ofArray beta) + 0.6 * Rng.normal (Rng.key 42UL) [| n |]
    let m (d: Map<string, Tensor>) = model {
        let! mu = Layers.adaptive "x" d.["x"]
        let! b = Layers.intercept "b"
        return! Links.gaussian "y" (mu + b) (d.TryFind "y")
    }
    let data = Map [ "x", x; "y", y ]
    let mean = fitBatched m data 60 200 0.05
    Assert.True(rmse beta (Tensor.toArray (mean "AdaptiveLayer_x_beta")) < 0.15)
    Assert.True(abs (Tensor.toScalar (mean "y_sigma") - 0.6) < 0.03, sprintf "sigma %g" (Tensor.toScalar (mean "y_sigma")))
    let full = Fit.vi { FitOptions.Default with Run.Steps = Some 1500; LearningRate = 0.05; Schedule = LrSchedule.WarmupCosine; Seed = 3UL } m data
    let means = Posterior.mean full (Rng.key 4UL) 500
    let get (name: string) = means.[name]
    Assert.True(rmse beta (Tensor.toArray (get "AdaptiveLayer_x_beta")) < 0.15)
    Assert.True(abs (Tensor.toScalar (get "y_sigma") - 0.6) < 0.03)

/// ⟨v_i, v_j⟩ for i < j from a (d, l, 1) factor tensor.
let private upperGram (v: Tensor) =
    let d = v.Shape.[0]
    let g = Tensor.matmul (Tensor.reshape [| d; -1 |] v) (Tensor.transpose (Tensor.reshape [| d; -1 |] v)) |> Tensor.toArray
    [| for i in 0 .. d - 2 do for j in i + 1 .. d - 1 -> g.[i * d + j] |]

let ``FM recovers the pairwise weights (RMSE < 0.15)`` () =
    let n, d = 3000, 6
    let x = Rng.normal (Rng.key 51UL) [| n; d |]
    let theta = Rng.normal (Rng.key 52UL) [| d; 3; 1 |] * 0.5
    let m (data: Map<string, Tensor>) = model {
        let! f = Layers.fm "fm" data.["x"] 3
        return! Links.gaussian "y" f (data.TryFind "y")
    }
    let truth, _ = Model.run (Handlers.trace (Handlers.substitute (Map [ "FMLayer_fm_scale", Tensor.ones [| 1 |]; "FMLayer_fm_theta", theta ]) (Layers.fm "fm" x 3)))
    let y = Tensor.flatten truth + 0.3 * Rng.normal (Rng.key 53UL) [| n |]
    let mean = fitBatched m (Map [ "x", x; "y", y ]) 100 500 0.05
    let r = rmse (upperGram theta) (upperGram (mean "FMLayer_fm_theta"))
    Assert.True(r < 0.15, sprintf "FM pair RMSE %g" r)

let ``low-rank interaction recovers theta1 theta2ᵀ (RMSE < 0.15)`` () =
    let n = 3000
    let x = Rng.normal (Rng.key 61UL) [| n; 4 |]
    let z = Rng.normal (Rng.key 62UL) [| n; 5 |]
    let t1 = Rng.normal (Rng.key 63UL) [| 4; 2; 1 |] * 0.6
    let t2 = Rng.normal (Rng.key 64UL) [| 5; 2; 1 |] * 0.6
    let outer (a: Tensor) (b: Tensor) = Tensor.matmul (Tensor.reshape [| a.Shape.[0]; -1 |] a) (Tensor.transpose (Tensor.reshape [| b.Shape.[0]; -1 |] b)) |> Tensor.toArray
    let yTrue = Tensor.sumAxes [| 1 |] false (Tensor.matmul x (Tensor.reshape [| 4; 2 |] t1) * Tensor.matmul z (Tensor.reshape [| 5; 2 |] t2))
    let y = yTrue + 0.3 * Rng.normal (Rng.key 65UL) [| n |]
    let m (data: Map<string, Tensor>) = model {
        let! f = Layers.lowRankInteraction "lr" data.["x"] data.["z"] 2
        return! Links.gaussian "y" f (data.TryFind "y")
    }
    let mean = fitBatched m (Map [ "x", x; "z", z; "y", y ]) 400 500 0.05
    let r = rmse (outer t1 t2) (outer (mean "LowRankInteractionLayer_lr_theta1") (mean "LowRankInteractionLayer_lr_theta2"))
    Assert.True(r < 0.15, sprintf "low-rank RMSE %g" r)

let ``interaction recovers its coefficients (RMSE < 0.15)`` () =
    let n = 2000
    let x = Rng.normal (Rng.key 71UL) [| n; 3 |]
    let z = Rng.normal (Rng.key 72UL) [| n; 3 |]
    let beta = Rng.normal (Rng.key 73UL) [| 9 |] |> Tensor.toArray
    let y = Tensor.matmul (Interactions.pairwise x z) (Tensor.ofArray beta) + 0.3 * Rng.normal (Rng.key 74UL) [| n |]
    let m (data: Map<string, Tensor>) = model {
        let! f = Layers.interaction "ia" data.["x"] data.["z"]
        return! Links.gaussian "y" f (data.TryFind "y")
    }
    let mean = fitBatched m (Map [ "x", x; "z", z; "y", y ]) 60 400 0.05
    let r = rmse beta (Tensor.toArray (mean "InteractionLayer_ia_beta1"))
    Assert.True(r < 0.15, sprintf "interaction RMSE %g" r)

let ``embedding, random effects and random walk recover category effects (RMSE < 0.15)`` () =
    let n, c = 2000, 10
    let ids = Rng.categorical (Rng.key 81UL) (Tensor.zeros [| n; c |])
    let idsF = Tensor.toFloat64 ids
    let effects = Rng.normal (Rng.key 82UL) [| c |] |> Tensor.toArray
    let y = Tensor.embedding (Tensor.ofArray effects) ids + 0.3 * Rng.normal (Rng.key 83UL) [| n |]
    let data = Map [ "g", idsF; "y", y ]
    let fitWith (layer: Tensor -> Model<Tensor>) (site: string) =
        let m (d: Map<string, Tensor>) = model {
            let! f = layer d.["g"]
            return! Links.gaussian "y" f (d.TryFind "y")
        }
        fitBatched m data 60 400 0.05 site
    let emb = fitWith (fun g -> Layers.embedding "e" g c 1) "EmbeddingLayer_e_theta" |> Tensor.toArray
    Assert.True(rmse effects emb < 0.15, sprintf "embedding RMSE %g" (rmse effects emb))
    let re = fitWith (fun g -> Layers.randomEffects "r" g c) "RandomEffectsLayer_r_theta" |> Tensor.toArray
    Assert.True(rmse effects re < 0.15, sprintf "random effects RMSE %g" (rmse effects re))
    let rw = fitWith (fun g -> Layers.randomWalk "w" g c 1) "RandomWalkLayer_w_theta" |> Tensor.cumsum 0 |> Tensor.toArray
    Assert.True(rmse effects rw < 0.15, sprintf "random walk RMSE %g" (rmse effects rw))

let ``FM3: theta1·theta2·theta3 ≈ 1 (within 0.05)`` () =
    let n = 3000
    let x = Rng.normal (Rng.key 91UL) [| n; 3 |]
    let xs = Tensor.toArray2D x
    let y = Tensor.ofArray (Array.init n (fun i -> xs.[i, 0] * xs.[i, 1] * xs.[i, 2])) + 0.1 * Rng.normal (Rng.key 92UL) [| n |]
    let m (data: Map<string, Tensor>) = model {
        let! f = Layers.fm3 "f3" data.["x"] 1
        return! Links.gaussianWith (LinkScale.Sampled (HalfNormal (s 0.1))) "y" f (data.TryFind "y")
    }
    let theta = fitBatched m (Map [ "x", x; "y", y ]) 100 500 0.05 "FM3Layer_f3_theta" |> Tensor.toArray
    let prod = theta.[0] * theta.[1] * theta.[2]
    Assert.True(abs (prod - 1.0) < 0.05, sprintf "FM3 product %g" prod)

[<Tests>]
let tests =
    testList "RecoveryTests" [
        testCase "full-covariance guides recover the exact posterior mean and covariance" ``full-covariance guides recover the exact posterior mean and covariance``
        testCase "mean-field guides recover the mean and the mean-field variances 1/Λᵢᵢ" ``mean-field guides recover the mean and the mean-field variances 1/Λᵢᵢ``
        testCase "the MAP and the Laplace approximation are exact for a Gaussian posterior" ``the MAP and the Laplace approximation are exact for a Gaussian posterior``
        testCase "the mean-field ELBO with analytic KL fits the same posterior" ``the mean-field ELBO with analytic KL fits the same posterior``
        testCase "linear: RMSE(beta) < 0.15 and |sigma - sigma_hat| < 0.03, batched and not" ``linear: RMSE(beta) < 0.15 and |sigma - sigma_hat| < 0.03, batched and not``
        testCase "FM recovers the pairwise weights (RMSE < 0.15)" ``FM recovers the pairwise weights (RMSE < 0.15)``
        testCase "low-rank interaction recovers theta1 theta2ᵀ (RMSE < 0.15)" ``low-rank interaction recovers theta1 theta2ᵀ (RMSE < 0.15)``
        testCase "interaction recovers its coefficients (RMSE < 0.15)" ``interaction recovers its coefficients (RMSE < 0.15)``
        testCase "embedding, random effects and random walk recover category effects (RMSE < 0.15)" ``embedding, random effects and random walk recover category effects (RMSE < 0.15)``
        testCase "FM3: theta1·theta2·theta3 ≈ 1 (within 0.05)" ``FM3: theta1·theta2·theta3 ≈ 1 (within 0.05)``
    ]
