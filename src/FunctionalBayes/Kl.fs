namespace FunctionalBayes

open FunctionalBayes.Tensors

/// KL divergences KL(p ‖ q): analytic where a closed form is registered, Monte Carlo otherwise.
[<RequireQualifiedAccess>]
module Kl =

    let private lbeta (a: Tensor) (b: Tensor) = Tensor.lgamma a + Tensor.lgamma b - Tensor.lgamma (a + b)
    let private sumLast (t: Tensor) = Tensor.sumAxes [| -1 |] false t

    let private normalNormal (m1: Tensor) (s1: Tensor) (m2: Tensor) (s2: Tensor) =
        let r = s1 / s2
        let d = (m1 - m2) / s2
        0.5 * (r * r + d * d - 1.0) - Tensor.log r

    /// p·log(p/q) + (1−p)·log((1−p)/(1−q)) with 0·log 0 = 0 (p ∈ {0, 1}, ±∞ logits), and 1 − p as σ(−l).
    let private bernoulliLogits (l1: Tensor) (l2: Tensor) =
        Dist.xlogy (Tensor.sigmoid l1) (Tensor.logSigmoid l1 - Tensor.logSigmoid l2)
        + Dist.xlogy (Tensor.sigmoid (-l1)) (Tensor.logSigmoid (-l1) - Tensor.logSigmoid (-l2))

    let private logitsOf (probs: Tensor) = Tensor.log probs - Tensor.log1p (-probs)

    /// The analytic KL(p ‖ q) when registered for the pair, per batch element.
    let rec tryAnalytic (p: Distribution) (q: Distribution) : Tensor option =
        match p, q with
        | Normal (m1, s1), Normal (m2, s2) -> Some (normalNormal m1 s1 m2 s2)
        | LogNormal (m1, s1), LogNormal (m2, s2) -> Some (normalNormal m1 s1 m2 s2)
        | MultivariateNormal (m1, l1), MultivariateNormal (m2, l2) ->
            // ½[tr(Σ₂⁻¹Σ₁) + (μ₂-μ₁)ᵀΣ₂⁻¹(μ₂-μ₁) - n] + log|L₂| - log|L₁|
            let n = l1.Shape.[l1.Rank - 1]
            let m = Tensor.triangularSolve true false l2 l1
            let z = Tensor.triangularSolve true false l2 (Tensor.unsqueeze -1 (m2 - m1))
            let logDet (l: Tensor) = sumLast (Tensor.log (Tensor.diagonal l))
            Some (0.5 * (Tensor.sumAxes [| -2; -1 |] false (m * m) + Tensor.sumAxes [| -2; -1 |] false (z * z) - float n)
                  + logDet l2 - logDet l1)
        | Gamma (a1, b1), Gamma (a2, b2) ->
            Some ((a1 - a2) * Tensor.digamma a1 - Tensor.lgamma a1 + Tensor.lgamma a2
                  + a2 * (Tensor.log b1 - Tensor.log b2) + a1 * (b2 - b1) / b1)
        | Beta (a1, b1), Beta (a2, b2) ->
            Some (lbeta a2 b2 - lbeta a1 b1 + (a1 - a2) * Tensor.digamma a1 + (b1 - b2) * Tensor.digamma b1
                  + (a2 - a1 + b2 - b1) * Tensor.digamma (a1 + b1))
        | Exponential r1, Exponential r2 -> Some (Tensor.log r1 - Tensor.log r2 + r2 / r1 - 1.0)
        | Laplace (m1, s1), Laplace (m2, s2) ->
            let d = Tensor.abs (m1 - m2)
            Some (Tensor.log s2 - Tensor.log s1 + d / s2 + s1 / s2 * Tensor.exp (-(d / s1)) - 1.0)
        | BernoulliLogits l1, BernoulliLogits l2 -> Some (bernoulliLogits l1 l2)
        | BernoulliProbs p1, _ -> tryAnalytic (BernoulliLogits (logitsOf p1)) q
        | _, BernoulliProbs p2 -> tryAnalytic p (BernoulliLogits (logitsOf p2))
        | CategoricalLogits l1, CategoricalLogits l2 ->
            let lp = Tensor.logSoftmax -1 l1
            Some (sumLast (Dist.xlogy (Tensor.exp lp) (lp - Tensor.logSoftmax -1 l2)))
        | CategoricalProbs p1, _ -> tryAnalytic (CategoricalLogits (Tensor.log p1)) q
        | _, CategoricalProbs p2 -> tryAnalytic p (CategoricalLogits (Tensor.log p2))
        | Dirichlet a, Dirichlet b ->
            let a0 = sumLast a
            Some (Tensor.lgamma a0 - sumLast (Tensor.lgamma a) - Tensor.lgamma (sumLast b) + sumLast (Tensor.lgamma b)
                  + sumLast ((a - b) * (Tensor.digamma a - Tensor.digamma (Tensor.unsqueeze -1 a0))))
        | Independent (p1, n1), Independent (q1, n2) when n1 = n2 ->
            tryAnalytic p1 q1 |> Option.map (Tensor.sumAxes (Array.init n1 (fun i -> -(i + 1))) false)
        | Expand (p1, s), _ -> tryAnalytic p1 q |> Option.map (Tensor.broadcastTo s)
        | _, Expand (q1, s) -> tryAnalytic p q1 |> Option.map (Tensor.broadcastTo s)
        | _ -> None

    /// True when KL(p ‖ q) has a registered closed form.
    let isAnalytic p q = (tryAnalytic p q).IsSome

    /// A Monte Carlo estimate of KL(p ‖ q) from n draws of p: mean of log p(x) − log q(x).
    /// Reparameterized (and so differentiable in p's parameters) when p has rsample.
    let monteCarlo (key: RngKey) (n: int) (p: Distribution) (q: Distribution) : Tensor =
        if n < 1 then invalidArg "n" (sprintf "Kl.monteCarlo: needs at least one draw, got %d." n)
        let x = if Dist.hasRsample p then Dist.rsample key [| n |] p else Dist.sample key [| n |] p
        Tensor.meanAxes [| 0 |] false (Dist.logProb p x - Dist.logProb q x)

    /// The analytic KL(p ‖ q); raises, naming the pair, when none is registered.
    let analytic (p: Distribution) (q: Distribution) : Tensor =
        match tryAnalytic p q with
        | Some k -> k
        | None ->
            invalidArg "q" (sprintf "Kl.analytic: no closed form for KL(%s ‖ %s); use Kl.divergence with a key for a Monte Carlo estimate." (Dist.name p) (Dist.name q))

    /// KL(p ‖ q): analytic when registered, else a Monte Carlo estimate from n draws.
    let divergence (key: RngKey) (n: int) (p: Distribution) (q: Distribution) : Tensor =
        match tryAnalytic p q with
        | Some k -> k
        | None -> monteCarlo key n p q
