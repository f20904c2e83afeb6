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
