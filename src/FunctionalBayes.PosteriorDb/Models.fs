/// The catalogue's models, each written as directly as its Stan program (posteriordb's names).
module FunctionalBayes.PosteriorDb.Models

open FunctionalBayes
open FunctionalBayes.Tensors

let private normalVec (n: int) (scale: float) =
    Independent (Normal (Tensor.zeros [| n |], Tensor.create [| n |] (Array.create n scale)), 1)

// Flat (improper) priors of the shared five's Stan programs are written as Normal(0, 1000) / HalfNormal(1000):
// at the posterior's scale (sd ≤ 6, means ≤ 26) they shift a mean by under 1e-4 sd.

/// eight_schools_noncentered: theta = mu + tau · theta_trans (theta is derived).
let eightSchoolsNoncentered (d: PosteriorData) = model {
    let y = Tensor.ofArray (d.Vector "y")
    let sigma = Tensor.ofArray (d.Vector "sigma")
    let j = y.Shape.[0]
    let! thetaTrans = Model.sample "theta_trans" (Independent (Normal (Tensor.zeros [| j |], Tensor.ones [| j |]), 1))
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (HalfCauchy (Tensor.scalar 5.0))
    let! _ = Model.observe "y" (Independent (Normal (thetaTrans * tau + mu, sigma), 1)) (Some y)
    return ()
}

/// eight_schools_noncentered's theta[j] = mu + tau · theta_trans[j].
let eightSchoolsTheta (s: Map<string, float[][]>) =
    Map.ofSeq (seq {
        for j in 1 .. 8 ->
            let tt = s.[sprintf "theta_trans[%d]" j]
            sprintf "theta[%d]" j, Array.map3 (fun (a: float[]) (m: float[]) (t: float[]) -> Array.map3 (fun a m t -> a * t + m) a m t) tt s.["mu"] s.["tau"] })

/// arK: an AR(K) regression on the K lags.
let arK (d: PosteriorData) = model {
    let k = d.Int "K"
    let y = d.Vector "y"
    let t = y.Length
    // lagged design: row t-K-1 holds y[t-1], ..., y[t-K] for t = K+1 .. T (1-based)
    let lags = Tensor.create [| t - k; k |] [| for s in k .. t - 1 do for l in 1 .. k -> y.[s - l] |]
    let target = Tensor.ofArray y.[k ..]
    let! alpha = Model.sample "alpha" (Normal (Tensor.scalar 0.0, Tensor.scalar 10.0))
    let! beta = Model.sample "beta" (normalVec k 10.0)
    let! sigma = Model.sample "sigma" (HalfCauchy (Tensor.scalar 2.5))
    let! _ = Model.observe "y" (Independent (Normal (alpha + Tensor.matmul lags beta, sigma), 1)) (Some target)
    return ()
}

let private regression2 (x: float[]) (y: float[]) (sigmaPrior: Distribution) = model {
    let x = Tensor.ofArray x
    let! beta = Model.sample "beta" (normalVec 2 1000.0)
    let! sigma = Model.sample "sigma" sigmaPrior
    let mu = Tensor.select 0 0 beta + Tensor.select 0 1 beta * x
    let! _ = Model.observe "y" (Independent (Normal (mu, sigma), 1)) (Some (Tensor.ofArray y))
    return ()
}

/// earnings logearn_height: log earnings on height.
let logearnHeight (d: PosteriorData) =
    regression2 (d.Vector "height") (d.Vector "earn" |> Array.map log) (HalfNormal (Tensor.scalar 1000.0))

/// kidiq kidscore_momiq: kid's score on mother's IQ.
let kidscoreMomiq (d: PosteriorData) =
    regression2 (d.Vector "mom_iq") (d.Vector "kid_score") (HalfCauchy (Tensor.scalar 2.5))

/// sblrc blr: Bayesian linear regression.
let blr (d: PosteriorData) = model {
    let x = d.Matrix "X"
    let y = Tensor.ofArray (d.Vector "y")
    let dim = x.Shape.[1]
    let! beta = Model.sample "beta" (normalVec dim 10.0)
    let! sigma = Model.sample "sigma" (HalfNormal (Tensor.scalar 10.0))
    let! _ = Model.observe "y" (Independent (Normal (Tensor.matmul x beta, sigma), 1)) (Some y)
    return ()
}

// ---- regressions with flat priors (Stan's parameters without a prior are flat) ----------------

let private flat (support: Constraint) (shape: int[]) = Dist.improperUniform support shape

/// Stan's sd: the sample standard deviation (n − 1).
let private sd (v: float[]) =
    let m = Array.average v
    sqrt ((v |> Array.sumBy (fun x -> (x - m) ** 2.0)) / float (v.Length - 1))

let private standardize (scale: float) (v: float[]) =
    let m, s = Array.average v, sd v
    v |> Array.map (fun x -> (x - m) / (scale * s))

/// y ~ normal(β₁ + Σ βₖ xₖ, σ) with β flat and σ from `sigmaPrior`: the design is the intercept and the
/// columns, in Stan's order.
let private linear (columns: float[] list) (y: float[]) (sigmaPrior: Distribution) = model {
    let n = y.Length
    let k = columns.Length + 1
    let x = Tensor.create [| n; k |] [| for i in 0 .. n - 1 do yield 1.0; for c in columns -> c.[i] |]
    let! beta = Model.sample "beta" (flat Constraint.Real [| k |])
    let! sigma = Model.sample "sigma" sigmaPrior
    let! _ = Model.observe "y" (Independent (Normal (Tensor.matmul x beta, sigma), 1)) (Some (Tensor.ofArray y))
    return ()
}

let private flatSigma = flat Constraint.Positive [||]
/// Stan's `real<lower=0> sigma; sigma ~ cauchy(0, 2.5)`.
let private cauchySigma = Dist.restrict Constraint.Positive (Cauchy (Tensor.scalar 0.0, Tensor.scalar 2.5))

let private mesquiteLogs (d: PosteriorData) =
    let v (name: string) = d.Vector name
    let diam1, diam2, canopy = v "diam1", v "diam2", v "canopy_height"
    let volume = Array.map3 (fun a b c -> log (a * b * c)) diam1 diam2 canopy
    let area = Array.map2 (fun a b -> log (a * b)) diam1 diam2
    let shape = Array.map2 (fun a b -> log (a / b)) diam1 diam2
    volume, area, shape

/// mesquite: weight on the raw measurements.
let mesquite (d: PosteriorData) =
    linear [ d.Vector "diam1"; d.Vector "diam2"; d.Vector "canopy_height"; d.Vector "total_height"; d.Vector "density"; d.Vector "group" ] (d.Vector "weight") flatSigma

/// logmesquite: log weight on the log measurements.
let logmesquite (d: PosteriorData) =
    let l (name: string) = d.Vector name |> Array.map log
    linear [ l "diam1"; l "diam2"; l "canopy_height"; l "total_height"; l "density"; d.Vector "group" ] (l "weight") flatSigma

/// logmesquite_logvolume: log weight on log canopy volume.
let logmesquiteLogvolume (d: PosteriorData) =
    let volume, _, _ = mesquiteLogs d
    linear [ volume ] (d.Vector "weight" |> Array.map log) flatSigma

/// logmesquite_logva: log volume, log area and group.
let logmesquiteLogva (d: PosteriorData) =
    let volume, area, _ = mesquiteLogs d
    linear [ volume; area; d.Vector "group" ] (d.Vector "weight" |> Array.map log) flatSigma

/// logmesquite_logvas: log volume, area, shape, total height, density and group.
let logmesquiteLogvas (d: PosteriorData) =
    let volume, area, shape = mesquiteLogs d
    let l (name: string) = d.Vector name |> Array.map log
    linear [ volume; area; shape; l "total_height"; l "density"; d.Vector "group" ] (l "weight") flatSigma

/// logmesquite_logvash: log volume, area, shape, total height and group.
let logmesquiteLogvash (d: PosteriorData) =
    let volume, area, shape = mesquiteLogs d
    let l (name: string) = d.Vector name |> Array.map log
    linear [ volume; area; shape; l "total_height"; d.Vector "group" ] (l "weight") flatSigma

/// kidiq kidscore_momhs: kid's score on mother's high school (σ ~ half-Cauchy(0, 2.5) as a constrained site).
let kidscoreMomhs (d: PosteriorData) = linear [ d.Vector "mom_hs" ] (d.Vector "kid_score") cauchySigma

/// kidiq kidscore_momhsiq: on high school and IQ.
let kidscoreMomhsiq (d: PosteriorData) = linear [ d.Vector "mom_hs"; d.Vector "mom_iq" ] (d.Vector "kid_score") cauchySigma

/// kidiq kidscore_interaction: high school, IQ and their product.
let kidscoreInteraction (d: PosteriorData) =
    let hs, iq = d.Vector "mom_hs", d.Vector "mom_iq"
    linear [ hs; iq; Array.map2 (*) hs iq ] (d.Vector "kid_score") cauchySigma

/// earnings earn_height.
let earnHeight (d: PosteriorData) = linear [ d.Vector "height" ] (d.Vector "earn") flatSigma

/// earnings log10earn_height.
let log10earnHeight (d: PosteriorData) = linear [ d.Vector "height" ] (d.Vector "earn" |> Array.map log10) flatSigma

/// earnings logearn_height_male.
let logearnHeightMale (d: PosteriorData) = linear [ d.Vector "height"; d.Vector "male" ] (d.Vector "earn" |> Array.map log) flatSigma

/// earnings logearn_logheight_male.
let logearnLogheightMale (d: PosteriorData) =
    linear [ d.Vector "height" |> Array.map log; d.Vector "male" ] (d.Vector "earn" |> Array.map log) flatSigma

/// earnings logearn_interaction.
let logearnInteraction (d: PosteriorData) =
    let h, m = d.Vector "height", d.Vector "male"
    linear [ h; m; Array.map2 (*) h m ] (d.Vector "earn" |> Array.map log) flatSigma

/// earnings logearn_interaction_z: height standardized.
let logearnInteractionZ (d: PosteriorData) =
    let z, m = standardize 1.0 (d.Vector "height"), d.Vector "male"
    linear [ z; m; Array.map2 (*) z m ] (d.Vector "earn" |> Array.map log) flatSigma

let private withInteraction (hs: float[]) (iq: float[]) (d: PosteriorData) =
    linear [ hs; iq; Array.map2 (*) hs iq ] (d.Vector "kid_score") flatSigma

/// kidiq_with_mom_work kidscore_interaction_c: centred predictors.
let kidscoreInteractionC (d: PosteriorData) =
    let centre (v: float[]) = let m = Array.average v in v |> Array.map (fun x -> x - m)
    withInteraction (centre (d.Vector "mom_hs")) (centre (d.Vector "mom_iq")) d

/// kidiq_with_mom_work kidscore_interaction_c2: centred on reference points.
let kidscoreInteractionC2 (d: PosteriorData) =
    withInteraction (d.Vector "mom_hs" |> Array.map (fun x -> x - 0.5)) (d.Vector "mom_iq" |> Array.map (fun x -> x - 100.0)) d

/// kidiq_with_mom_work kidscore_interaction_z: standardized by two sds.
let kidscoreInteractionZ (d: PosteriorData) =
    withInteraction (standardize 2.0 (d.Vector "mom_hs")) (standardize 2.0 (d.Vector "mom_iq")) d

/// kidiq_with_mom_work kidscore_mom_work: indicators of the mother's work categories 2, 3, 4.
let kidscoreMomWork (d: PosteriorData) =
    let w = d.Ints "mom_work"
    let ind k = w |> Array.map (fun v -> if v = k then 1.0 else 0.0)
    linear [ ind 2; ind 3; ind 4 ] (d.Vector "kid_score") flatSigma

/// nes: party identification on ideology, race, age group, education, gender and income.
let nes (d: PosteriorData) =
    let age = d.Ints "age_discrete"
    let ind k = age |> Array.map (fun v -> if v = k then 1.0 else 0.0)
    linear [ d.Vector "real_ideo"; d.Vector "race_adj"; ind 2; ind 3; ind 4; d.Vector "educ1"; d.Vector "gender"; d.Vector "income" ]
        (d.Vector "partyid7") flatSigma

/// kilpisjarvi: a linear trend with the data's prior means and sds, σ flat.
let kilpisjarvi (d: PosteriorData) = model {
    let x = Tensor.ofArray (d.Vector "x")
    let! alpha = Model.sample "alpha" (Normal (Tensor.scalar (d.Real "pmualpha"), Tensor.scalar (d.Real "psalpha")))
    let! beta = Model.sample "beta" (Normal (Tensor.scalar (d.Real "pmubeta"), Tensor.scalar (d.Real "psbeta")))
    let! sigma = Model.sample "sigma" flatSigma
    let! _ = Model.observe "y" (Independent (Normal (alpha + beta * x, sigma), 1)) (Some (Tensor.ofArray (d.Vector "y")))
    return ()
}

// ---- time series --------------------------------------------------------------------------

/// arma11: ARMA(1, 1) with err[0] = 0; the errors are a recursion in the parameters.
let arma11 (d: PosteriorData) = model {
    let y = d.Vector "y"
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 10.0))
    let! phi = Model.sample "phi" (Normal (Tensor.scalar 0.0, Tensor.scalar 2.0))
    let! theta = Model.sample "theta" (Normal (Tensor.scalar 0.0, Tensor.scalar 2.0))
    let! sigma = Model.sample "sigma" (Dist.restrict Constraint.Positive (Cauchy (Tensor.scalar 0.0, Tensor.scalar 2.5)))
    let err = Array.zeroCreate<Tensor> y.Length
    err.[0] <- y.[0] - (mu + phi * mu)
    for t in 1 .. y.Length - 1 do
        err.[t] <- y.[t] - (mu + phi * y.[t - 1] + theta * err.[t - 1])
    do! Model.factor "err" (Dist.logProb (Independent (Normal (Tensor.scalar 0.0, sigma) |> Dist.expand [| y.Length |], 1)) (Tensor.stack 0 (List.ofArray err)))
    return ()
}

/// garch11: σₜ² = α₀ + α₁ (yₜ₋₁ − μ)² + β₁ σₜ₋₁², with β₁ ∈ (0, 1 − α₁) a bound on another parameter.
let garch11 (d: PosteriorData) = model {
    let y = d.Vector "y"
    let! mu = Model.sample "mu" (flat Constraint.Real [||])
    let! alpha0 = Model.sample "alpha0" (flat Constraint.Positive [||])
    let! alpha1 = Model.sample "alpha1" (flat Constraint.UnitInterval [||])
    let! beta1 = Model.sample "beta1" (flat (Constraint.Between (Tensor.scalar 0.0, 1.0 - alpha1)) [||])
    let sigma = Array.zeroCreate<Tensor> y.Length
    sigma.[0] <- Tensor.scalar (d.Real "sigma1")
    for t in 1 .. y.Length - 1 do
        let e = y.[t - 1] - mu
        sigma.[t] <- Tensor.sqrt (alpha0 + alpha1 * e * e + beta1 * sigma.[t - 1] * sigma.[t - 1])
    let! _ = Model.observe "y" (Independent (Normal (mu, Tensor.stack 0 (List.ofArray sigma)), 1)) (Some (Tensor.ofArray y))
    return ()
}

// ---- Gaussian processes ---------------------------------------------------------------------

/// The hyperparameters both gp_pois_regr programs share: rho ~ gamma(25, 4), alpha ~ normal(0, 2) on alpha > 0.
let private gpHyper = model {
    let! rho = Model.sample "rho" (Gamma (Tensor.scalar 25.0, Tensor.scalar 4.0))
    let! alpha = Model.sample "alpha" (Dist.restrict Constraint.Positive (Normal (Tensor.scalar 0.0, Tensor.scalar 2.0)))
    return rho, alpha
}

/// gp_regr: y ~ multi_normal_cholesky(0, cholesky(K_expquad + σ I)) (σ, not σ², on the diagonal, as the Stan program).
let gpRegr (d: PosteriorData) = model {
    let x = Tensor.ofArray (d.Vector "x")
    let n = x.Shape.[0]
    let! rho, alpha = gpHyper
    let! sigma = Model.sample "sigma" (Dist.restrict Constraint.Positive (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)))
    let l = Tensor.cholesky (Gp.addDiagonal sigma (Gp.expQuad alpha rho x x))
    let! _ = Model.observe "y" (MultivariateNormal (Tensor.zeros [| n |], l)) (Some (Tensor.ofArray (d.Vector "y")))
    return ()
}

/// gp_pois_regr: a latent GP, non-centred (f = L f̃), with counts k ~ poisson_log(f).
let gpPoisRegr (d: PosteriorData) = model {
    let x = Tensor.ofArray (d.Vector "x")
    let n = x.Shape.[0]
    let! rho, alpha = gpHyper
    let! fTilde = Model.sample "f_tilde" (Independent (Normal (Tensor.zeros [| n |], Tensor.ones [| n |]), 1))
    let l = Tensor.cholesky (Gp.addDiagonal (Tensor.scalar 1e-10) (Gp.expQuad alpha rho x x))
    let! f = Model.deterministic "f" (Tensor.matmul l fTilde)
    let! _ = Model.observe "k" (Independent (Dist.poissonLog f, 1)) (Some (Tensor.ofArray (d.Ints "k" |> Array.map float)))
    return ()
}

// ---- mixtures ----------------------------------------------------------------------------------

/// low_dim_gauss_mix: two normals with ordered locations, mixed by θ.
let lowDimGaussMix (d: PosteriorData) = model {
    let y = Tensor.ofArray (d.Vector "y")
    let n = y.Shape.[0]
    let! mu = Model.sample "mu" (Dist.restrict Constraint.OrderedVector (Normal (Tensor.zeros [| 2 |], Tensor.full [| 2 |] 2.0)))
    let! sigma = Model.sample "sigma" (Dist.restrict Constraint.Positive (Normal (Tensor.zeros [| 2 |], Tensor.full [| 2 |] 2.0)))
    let! theta = Model.sample "theta" (Beta (Tensor.scalar 5.0, Tensor.scalar 5.0))
    let comp i = Normal (Tensor.select 0 i mu, Tensor.select 0 i sigma)
    let mix = Mixture (Tensor.stack 0 [ Tensor.log theta; Tensor.log1p (-theta) ], [ comp 0; comp 1 ])
    let! _ = Model.observe "y" (Independent (Dist.expand [| n |] mix, 1)) (Some y)
    return ()
}
