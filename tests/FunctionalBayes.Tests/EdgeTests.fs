/// Correctness at the edges (issue 15): supports (element-wise and dependent Uniform bounds, values
/// outside discrete supports), boundary values (0·log 0), stable formulas (log-space ordered logistic
/// and beta link, large-concentration negative binomial, zero-inflation, CorrCholesky), the StudentT
/// guide's degrees of freedom, predictive sds (Welford), the Laplace Hessian at the fitted params, the
/// batched ELBO's scaling, and bad data named as such before any work starts.
/// Reference values are closed forms or MathNet.Numerics, written independently of the library.
module FunctionalBayes.Tests.EdgeTests

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

type private RefNormal = MathNet.Numerics.Distributions.Normal
type private RefPoisson = MathNet.Numerics.Distributions.Poisson
type private RefNegBin = MathNet.Numerics.Distributions.NegativeBinomial
type private SF = MathNet.Numerics.SpecialFunctions

let private s (v: float) = Tensor.scalar v
let private t (v: float[]) = Tensor.ofArray v
let private scalarOf (x: Tensor) = Tensor.toScalar x

let private throwsWith (parts: string list) (f: unit -> unit) =
    let ex = Expect.throwsC f id
    for p in parts do
        Expect.stringContains ex.Message p (sprintf "the message names %s" p)

let private logSigmoid (x: float) = if x >= 0.0 then -Math.Log(1.0 + Math.Exp(-x)) else x - Math.Log(1.0 + Math.Exp x)

// ---- 1. supports whose bounds are tensors or other sites ----------------------------------------

let private batchedUniform (_: Map<string, Tensor>) = model {
    return! Model.sample "x" (Uniform (t [| 0.0; 10.0 |], t [| 1.0; 11.0 |]))
}

/// s ~ Exponential(1), x ~ Uniform(0, s): x's support follows s.
let private dependentUniform (_: Map<string, Tensor>) = model {
    let! sv = Model.sample "s" (Exponential (s 1.0))
    return! Model.sample "x" (Uniform (s 0.0, sv))
}

/// The energy of dependentUniform at unconstrained (us, ux), in closed form:
/// −[log p(s) + log p(x | s) + log|ds/dus| + log|dx/dux|] = s − us − log σ(ux) − log σ(−ux).
let private dependentEnergy (us: float) (ux: float) = exp us - us - logSigmoid ux - logSigmoid (-ux)

let private supportTests =
    testList "supports" [
        testCase "batched Uniform bounds are element-wise: finite energy at unconstrained zeros" <| fun () ->
            let pot = LogDensity.potential (Rng.key 1UL) (batchedUniform Map.empty)
            let u = [| Tensor.zeros [| 2 |] |]
            // x = lo + (hi − lo)/2 in each element: log p = 0, log|J| = 2·(log 1 + 2 log ½)
            close 1e-12 (4.0 * log 2.0) (scalarOf (pot.Energy u)) "energy"
            Expect.sequenceEqual (Tensor.toArray (pot.Constrain u).["x"]) [| 0.5; 10.5 |] "each element in its own interval"
            let back = pot.Unconstrain (Map [ "x", t [| 0.25; 10.75 |] ])
            close 1e-12 (log (0.25 / 0.75)) (Tensor.toArray back.[0]).[0] "inverse, element 0"
            close 1e-12 (log (0.75 / 0.25)) (Tensor.toArray back.[0]).[1] "inverse, element 1"

        testCase "a Uniform bound that is another site is re-derived at each evaluation (value and gradient)" <| fun () ->
            let pot = LogDensity.potential (Rng.key 2UL) (dependentUniform Map.empty)
            Expect.equal (pot.Latents |> Array.map (fun l -> l.Name)) [| "s"; "x" |] "latents in model order"
            for us, ux in [ 1.0, 0.3; -1.0, 0.0; 0.5, -2.0 ] do
                let e = pot.Energy [| s us; s ux |] |> scalarOf
                close 1e-12 (dependentEnergy us ux) e (sprintf "energy at (%g, %g)" us ux)
                let g = Autodiff.grad (fun u -> pot.Energy [| u; s ux |]) (s us) |> scalarOf
                close 1e-9 (exp us - 1.0) g (sprintf "dU/dus at (%g, %g)" us ux)
                let x = (pot.Constrain [| s us; s ux |]).["x"] |> scalarOf
                close 1e-12 (exp us / (1.0 + exp (-ux))) x "x = s·σ(ux)"

        testCase "autoguides draw a dependent-support site inside its current bounds" <| fun () ->
            for kind in [ AutoGuideKind.AutoNormal; AutoGuideKind.AutoDiagonalNormal; AutoGuideKind.AutoDelta ] do
                let g = Guide.auto kind (InitUniform 2.0) (Rng.key 3UL) (dependentUniform Map.empty)
                for i in 0 .. 49 do
                    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key (uint64 (100 + i))) g.Program))
                    let sv = tr.Value "s" |> scalarOf
                    let x = tr.Value "x" |> scalarOf
                    Expect.isTrue (x > 0.0 && x < sv) (sprintf "%A draw %d: x = %g must lie in (0, s = %g)" kind i x sv)
                // the ELBO is finite for every draw
                let c = { Model = dependentUniform; Guide = g; Optimizer = Optimizer.AdamDefault 0.01; Elbo = Elbo.Trace 20; ClipNorm = None }
                let st = Svi.init c (Rng.key 4UL) Map.empty
                let l = Svi.lossAt c st (Rng.key 5UL) 1 Map.empty |> scalarOf
                Expect.isTrue (Double.IsFinite l) (sprintf "%A: loss %g" kind l)
    ]

// ---- 2. values outside a discrete support -------------------------------------------------------

let private outOfSupportTests =
    testList "out-of-support values" [
        testCase "discrete families give −∞ outside their support and the right value inside" <| fun () ->
            let cases : (string * Distribution * float[] * float[]) list =
                [ "categorical logits", CategoricalLogits (t [| 0.0; 1.0; 2.0 |]), [| 3.0; -1.0; 1.5 |], [| 1.0 |]
                  "categorical probs", CategoricalProbs (t [| 0.2; 0.3; 0.5 |]), [| 3.0; -1.0; 0.5 |], [| 2.0 |]
                  "Bernoulli logits", BernoulliLogits (s 0.3), [| 2.0; 0.5; -1.0 |], [| 1.0 |]
                  "Bernoulli probs", BernoulliProbs (s 0.3), [| 2.0; 0.5; -1.0 |], [| 0.0 |]
                  "Poisson", Poisson (s 2.0), [| -1.0; 1.5 |], [| 3.0 |]
                  "negative binomial", NegativeBinomial (s 2.0, s 3.0), [| -1.0; 0.5 |], [| 2.0 |]
                  "zero-inflated Poisson", ZeroInflatedPoisson (s 0.2, s 2.0), [| -1.0; 0.5 |], [| 0.0 |]
                  "ordered logistic", OrderedLogistic (s 0.0, t [| -1.0; 1.0 |]), [| 3.0; -1.0; 0.5 |], [| 2.0 |]
                  "binomial", BinomialProbs (s 4.0, s 0.3), [| 5.0; -1.0; 2.5 |], [| 4.0 |] ]
            for name, d, bad, good in cases do
                for v in bad do
                    let lp = Dist.logProb d (s v) |> scalarOf
                    Expect.equal lp Double.NegativeInfinity (sprintf "%s at %g" name v)
                for v in good do
                    let lp = Dist.logProb d (s v) |> scalarOf
                    Expect.isTrue (Double.IsFinite lp && lp < 0.0) (sprintf "%s at %g: %g" name v lp)
            // the binomial's bound is element-wise: 3 is fine for n = 4, not for n = 2
            let lp = Dist.logProb (BinomialProbs (t [| 4.0; 2.0 |], s 0.5)) (t [| 3.0; 3.0 |]) |> Tensor.toArray
            close 1e-12 (log (4.0 / 16.0)) lp.[0] "Binomial(4, ½) at 3"
            Expect.equal lp.[1] Double.NegativeInfinity "Binomial(2, ½) at 3"

        testCase "Bernoulli logits: log σ(±l) by closed form, and a finite gradient at out-of-support or NaN x even for infinite logits" <| fun () ->
            let l = t [| -40.0; -2.0; 0.0; 3.5; 40.0 |]
            let la = Tensor.toArray l
            let logSigmoid z = if z < 0.0 then z - log (1.0 + exp z) else -(log (1.0 + exp -z))
            for x in [ 0.0; 1.0 ] do
                let lp = Dist.logProb (BernoulliLogits l) (Tensor.full [| 5 |] x) |> Tensor.toArray
                for i in 0 .. 4 do
                    close 1e-12 (logSigmoid (if x = 1.0 then la.[i] else -la.[i])) lp.[i] (sprintf "x = %g, l = %g" x la.[i])
            let li = t [| Double.PositiveInfinity; Double.NegativeInfinity; 1.0 |]
            let _, g = Autodiff.valueAndGrad (fun l -> Tensor.sum (Dist.logProb (BernoulliLogits l) (t [| 0.5; nan; 2.0 |]))) li
            Expect.isTrue (Tensor.toArray g |> Array.forall (fun v -> v = 0.0)) (sprintf "gradient %A" (Tensor.toArray g))

        testCase "the categorical link refuses labels outside 0..K−1 and says when they look 1-based" <| fun () ->
            let logits = Tensor.zeros [| 3; 3 |]
            let run y = Model.run (Handlers.seed (Rng.key 1UL) (Links.categorical "y" logits (Some (t y)))) |> ignore
            throwsWith [ "'y'"; "row 2"; "3"; "0..2"; "1-based" ] (fun () -> run [| 1.0; 2.0; 3.0 |])
            throwsWith [ "row 0"; "-1" ] (fun () -> run [| -1.0; 0.0; 1.0 |])
            run [| 0.0; 2.0; 1.0 |]
    ]

// ---- 3. 0·log 0 ----------------------------------------------------------------------------------

let private zeroLogZeroTests =
    testList "0·log 0" [
        testCase "a categorical with a −∞ logit scores the other labels" <| fun () ->
            let d = CategoricalLogits (t [| Double.NegativeInfinity; 0.0; 0.0 |])
            close 1e-15 (log 0.5) (Dist.logProb d (s 1.0) |> scalarOf) "label 1"
            Expect.equal (Dist.logProb d (s 0.0) |> scalarOf) Double.NegativeInfinity "label 0"
            close 1e-15 (log 2.0) (Dist.entropy d |> scalarOf) "entropy"
            let g = Autodiff.grad (fun l -> Dist.logProb (CategoricalLogits l) (s 1.0)) (t [| Double.NegativeInfinity; 0.0; 0.0 |]) |> Tensor.toArray
            Expect.isTrue (g |> Array.forall Double.IsFinite) (sprintf "finite gradient, got %A" g)

        testCase "entropies at probabilities 0 and 1" <| fun () ->
            for p in [ 0.0; 1.0 ] do
                close 1e-15 0.0 (Dist.entropy (BernoulliProbs (s p)) |> scalarOf) (sprintf "Bernoulli(%g)" p)
            for l in [ Double.NegativeInfinity; Double.PositiveInfinity ] do
                close 1e-15 0.0 (Dist.entropy (BernoulliLogits (s l)) |> scalarOf) (sprintf "Bernoulli(logits %g)" l)
            close 1e-15 (log 2.0) (Dist.entropy (CategoricalProbs (t [| 0.0; 0.5; 0.5 |])) |> scalarOf) "categorical with a zero"

        testCase "KL divergences with a zero probability" <| fun () ->
            // KL(Bernoulli(0) ‖ Bernoulli(0.3)) = log(1/0.7)
            close 1e-14 (-(log 0.7)) (Kl.analytic (BernoulliProbs (s 0.0)) (BernoulliProbs (s 0.3)) |> scalarOf) "Bernoulli p = 0"
            close 1e-14 (-(log 0.3)) (Kl.analytic (BernoulliProbs (s 1.0)) (BernoulliProbs (s 0.3)) |> scalarOf) "Bernoulli p = 1"
            // KL([0, ½, ½] ‖ uniform on 3) = log(3/2)
            let third = 1.0 / 3.0
            close 1e-14 (log 1.5) (Kl.analytic (CategoricalProbs (t [| 0.0; 0.5; 0.5 |])) (CategoricalProbs (t [| third; third; third |])) |> scalarOf) "categorical"

        testCase "a Dirichlet with α = 1 at a boundary point" <| fun () ->
            // log Γ(6) − log Γ(1) − log Γ(2) − log Γ(3) + 0·log 0 + 1·log 0.4 + 2·log 0.6
            let expected = SF.GammaLn 6.0 - SF.GammaLn 1.0 - SF.GammaLn 2.0 - SF.GammaLn 3.0 + log 0.4 + 2.0 * log 0.6
            close 1e-13 expected (Dist.logProb (Dirichlet (t [| 1.0; 2.0; 3.0 |])) (t [| 0.0; 0.4; 0.6 |]) |> scalarOf) "log p"
            Expect.equal (Dist.logProb (Dirichlet (t [| 1.0; 2.0; 3.0 |])) (t [| 0.1; 0.4; 0.6 |]) |> scalarOf) Double.NegativeInfinity "off the simplex"
    ]

// ---- 4. tails of the ordered logistic and the beta link -----------------------------------------

let private tailTests =
    testList "tails" [
        testCase "ordered logistic keeps the upper tail and the differences of sigmoids near 1" <| fun () ->
            // top class: 1 − σ(c − η) = σ(η − c)
            for gap in [ 30.0; 37.0; 40.0; 700.0 ] do
                let lp = Dist.logProb (OrderedLogistic (s 0.0, t [| -1.0; gap |])) (s 2.0) |> scalarOf
                close 1e-12 (logSigmoid (-gap)) lp (sprintf "top class at c − η = %g" gap)
            // a middle class between two sigmoids that both round to 1: σ(51) − σ(50) = σ(−50) − σ(−51)
            let a = 1.0 / (1.0 + exp 50.0)
            let b = 1.0 / (1.0 + exp 51.0)
            let lp = Dist.logProb (OrderedLogistic (s -50.0, t [| 0.0; 1.0 |])) (s 1.0) |> scalarOf
            close 1e-12 (log (a - b)) lp "middle class"
            // and the lower tail
            close 1e-12 (logSigmoid -45.0) (Dist.logProb (OrderedLogistic (s 45.0, t [| 0.0; 1.0 |])) (s 0.0) |> scalarOf) "bottom class"

        testCase "the beta link keeps its upper tail" <| fun () ->
            let yHat = t [| 40.0; -40.0; 0.3 |]
            let y = t [| 0.5; 0.25; 0.7 |]
            let phi = 2.0
            let m = Handlers.substitute (Map [ "y_phi", s phi ]) (Links.beta "y" yHat (Some y))
            let lp = Model.run (Handlers.trace m) |> snd |> fun tr -> Site.logDensity (tr.Item "y") |> Tensor.sum |> scalarOf
            let expected =
                Array.map2 (fun (yh: float) (yv: float) ->
                    let a = phi / (1.0 + exp (-yh))
                    let b = phi / (1.0 + exp yh)
                    (a - 1.0) * log yv + (b - 1.0) * log (1.0 - yv) - (SF.GammaLn a + SF.GammaLn b - SF.GammaLn (a + b)))
                    [| 40.0; -40.0; 0.3 |] [| 0.5; 0.25; 0.7 |]
                |> Array.sum
            close 1e-10 expected lp "beta link log density"
    ]

// ---- 5. the StudentT guide's degrees of freedom ---------------------------------------------------

let private studentTTests =
    testList "StudentT df" [
        testCase "a StudentT guide's degrees of freedom get an unbiased gradient" <| fun () ->
            // model z ~ N(0, 1), guide z ~ StudentT(ν, 0, 1) with ν a param: ELBO(ν) = −½ log 2π − ½ ν/(ν−2) + H_T(ν)
            let prior (_: Map<string, Tensor>) = model { return! Model.sample "z" (Normal (s 0.0, s 1.0)) }
            let guide = Guide.ofModel "studentT" (model {
                let! nu = Model.param "nu" (s 8.0) Constraint.Positive
                do! Model.sample "z" (StudentT (nu, s 0.0, s 1.0)) |> Model.map ignore
            })
            let elbo (nu: float) =
                let h = (nu + 1.0) / 2.0 * (SF.DiGamma ((nu + 1.0) / 2.0) - SF.DiGamma (nu / 2.0)) + 0.5 * log nu + SF.BetaLn (nu / 2.0, 0.5)
                -0.5 * log (2.0 * Math.PI) - 0.5 * nu / (nu - 2.0) + h
            let hstep = 1e-5
            // the loss is −ELBO in u = log ν: d loss/du = −ν · dELBO/dν
            let exact = -8.0 * (elbo (8.0 + hstep) - elbo (8.0 - hstep)) / (2.0 * hstep)
            let c = { Model = prior; Guide = guide; Optimizer = Optimizer.AdamDefault 0.0; Elbo = Elbo.Trace 2000; ClipNorm = None }
            let st = Svi.init c (Rng.key 31UL) Map.empty
            let grads =
                Array.init 8 (fun b ->
                    Autodiff.grad (fun u -> Svi.lossAt c { st with Unconstrained = [| u |] } (Rng.key (uint64 (300 + b))) 1 Map.empty) st.Unconstrained.[0]
                    |> scalarOf)
            let m = Array.average grads
            let se = sqrt ((grads |> Array.averageBy (fun g -> (g - m) ** 2.0)) / float (grads.Length - 1))
            Expect.isTrue (abs (m - exact) < 5.0 * se + 1e-3) (sprintf "gradient %g ± %g vs exact %g" m se exact)
            // without the score term the expected gradient is zero: the estimate is clearly not
            Expect.isTrue (abs m > 5.0 * se) (sprintf "gradient %g ± %g is distinguishable from 0" m se)
    ]

// ---- 6 and 7. predictive sds and the Laplace approximation ---------------------------------------

let private fitTests =
    testList "fit" [
        testCase "predictive sds survive a large mean (Welford)" <| fun () ->
            let f : Posterior<Tensor> =
                Posterior.ofGuide (fun _ -> model { return! Model.sample "y" (Normal (s 1e9, s 1.0)) }) Map.empty (Guide.ofModel "none" (Model.ret ())) Map.empty
            let p = Posterior.predict f (Rng.key 61UL) 2000 false Map.empty
            let sd = p.["y"].Std |> scalarOf
            // the sd of 2000 N(·, 1) draws: standard error ≈ 1/√(2·2000) ≈ 0.016
            Expect.isTrue (abs (sd - 1.0) < 0.08) (sprintf "sd %g" sd)
            let mean = p.["y"].Mean |> scalarOf
            Expect.isTrue (abs (mean - 1e9) < 5.0 / sqrt 2000.0) (sprintf "mean %.17g within 5 standard errors of 1e9" mean)

        testCase "the Laplace approximation takes its Hessian at the fitted params" <| fun () ->
            // z ~ N(0, 10), y_i ~ N(z, σ) with σ a model param (init 1): the Hessian in z is 1/100 + n/σ²
            let ys = [| -4.0; -2.5; -1.0; 0.0; 0.5; 2.0; 3.5; 5.0 |]
            let m (d: Map<string, Tensor>) = model {
                let! sigma = Model.param "sigma" (s 1.0) Constraint.Positive
                let! z = Model.sample "z" (Normal (s 0.0, s 10.0))
                return! Model.observe "y" (Normal (z + Tensor.zerosLike d.["y"], sigma)) (Some d.["y"])
            }
            let opts = { FitOptions.Default with AutoGuide = AutoGuideKind.AutoLaplaceApproximation; Run.Steps = Some 800; LearningRate = 0.05; Schedule = LrSchedule.Constant }
            let f = Fit.vi opts m (Map [ "y", t ys ])
            let sigma = (Posterior.parameters f).["sigma"] |> scalarOf
            Expect.isTrue (sigma > 2.0) (sprintf "σ moved from 1 towards the data's spread, got %g" sigma)
            let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 1UL) (Posterior.guidePart "test" f).Guide.Program))
            let scaleTril =
                match (tr.Item "_auto_latent").Dist with
                | Some (MultivariateNormal (_, l)) -> Tensor.toArray l
                | other -> failwithf "expected a multivariate normal, got %A" (other |> Option.map Dist.name)
            close 1e-6 (1.0 / sqrt (0.01 + float ys.Length / (sigma * sigma))) scaleTril.[0] "posterior sd of z"
    ]

// ---- 8. smaller numerical losses -----------------------------------------------------------------

let private stableFormulaTests =
    testList "stable formulas" [
        testCase "negative binomial with a large concentration" <| fun () ->
            // φ → ∞ is Poisson(μ); at φ = 1e14 the difference is O(μ²/φ)
            for k in [ 0.0; 3.0; 12.0 ] do
                close 1e-10 (RefPoisson.PMFLn(5.0, int k)) (Dist.logProb (NegativeBinomial (s 5.0, s 1e14)) (s k) |> scalarOf) (sprintf "k = %d, φ = 1e14" (int k))
            // exact for integer k: Σ_{j<k} log(φ+j) − log k! − φ·log1p(μ/φ) + k·log(μ/(φ+μ))
            let log1p (x: float) = if abs x < 1e-3 then x - x * x / 2.0 + x ** 3.0 / 3.0 - x ** 4.0 / 4.0 + x ** 5.0 / 5.0 else log (1.0 + x)
            let reference (mu: float) (phi: float) (k: int) =
                let mutable acc = 0.0
                for j in 0 .. k - 1 do acc <- acc + log (phi + float j) - log (float (j + 1))
                acc - phi * log1p (mu / phi) + float k * log (mu / (phi + mu))
            // both sides of the Stirling switch (φ = 100): against the exact sum, and MathNet (r = φ, p = φ/(φ+μ))
            // where its plain lgamma difference is still accurate
            for phi in [ 2.5; 99.0; 101.0; 150.0; 1e6; 1e12 ] do
                for k in [ 0; 1; 7; 40 ] do
                    let lp = Dist.logProb (NegativeBinomial (s 5.0, s phi)) (s (float k)) |> scalarOf
                    close 1e-12 (reference 5.0 phi k) lp (sprintf "k = %d, φ = %g" k phi)
                    if phi < 1000.0 then close 1e-11 (RefNegBin.PMFLn(phi, phi / (phi + 5.0), k)) lp (sprintf "MathNet, k = %d, φ = %g" k phi)

        testCase "zero-inflated zeros in log space" <| fun () ->
            // gate 0: log P(0) = −λ, not log(0 + e^(−800)) = −∞
            close 1e-14 -800.0 (Dist.logProb (ZeroInflatedPoisson (s 0.0, s 800.0)) (s 0.0) |> scalarOf) "ZIP"
            let g = 0.3
            close 1e-14 (log (g + (1.0 - g) * exp -2.0)) (Dist.logProb (ZeroInflatedPoisson (s g, s 2.0)) (s 0.0) |> scalarOf) "ZIP, moderate"
            // ZINB: log P(0 | NB) = −φ log(1 + μ/φ) = −1000·log 1001
            close 1e-14 (-1000.0 * log 1001.0) (Dist.logProb (ZeroInflatedNegativeBinomial (s 0.0, s 1e6, s 1000.0)) (s 0.0) |> scalarOf) "ZINB"

        testCase "the CorrCholesky map stays finite for large inputs" <| fun () ->
            // n = 2: L = [[1, 0], [tanh x, sech x]], log|det J| = log sech² x = −2 log cosh x
            for x in [ 0.7; 25.0; -40.0 ] do
                let logCosh = abs x - log 2.0 + log (1.0 + exp (-2.0 * abs x))
                close 1e-12 (-2.0 * logCosh) (Bijector.logAbsDetJacobian Bijector.CorrCholesky (t [| x |]) |> scalarOf) (sprintf "log|J| at %g" x)
                let l = Bijector.forward Bijector.CorrCholesky (t [| x |]) |> Tensor.toArray
                close 1e-12 (1.0 / cosh x) l.[3] (sprintf "L[1,1] at %g" x)

        testCase "variances without 1 − σ or E[x²] − E[x]² cancellation" <| fun () ->
            // Bernoulli(logits 40): σ(40)σ(−40)
            let e = 1.0 / (1.0 + exp 40.0)
            close 1e-12 (e * (1.0 - e)) (Dist.variance (BernoulliLogits (s 40.0)) |> scalarOf) "Bernoulli variance"
            // a mixture of N(1e8 ± 1, 1) with equal weights: variance 1 + 1 = 2
            let mix = Mixture (t [| 0.0; 0.0 |], [ Normal (s (1e8 - 1.0), s 1.0); Normal (s (1e8 + 1.0), s 1.0) ])
            close 1e-12 2.0 (Dist.variance mix |> scalarOf) "mixture variance"
    ]

// ---- test gaps -----------------------------------------------------------------------------------

let private regression (d: Map<string, Tensor>) = model {
    let! beta = Model.sample "beta" (Normal (s 0.0, s 1.0))
    do! Model.factor "penalty" (s 2.5)
    return! Model.observe "y" (Normal (d.["x"] * beta, s 0.7)) (d.TryFind "y")
}
let private xs = [| -2.0; -0.5; 1.0; 3.0 |]
let private ys = [| 1.0; 2.0; -1.0; 0.5 |]
let private regData = Map [ "x", t xs; "y", t ys ]

let private gapTests =
    testList "test gaps" [
        testCase "the batched ELBO scales the likelihood by N/B, not the guide term, and counts factors once" <| fun () ->
            let guide = Guide.ofModel "normal" (model {
                let! loc = Model.param "loc" (s 0.3) Constraint.Real
                let! scale = Model.param "scale" (s 0.4) Constraint.Positive
                do! Model.sample "beta" (Normal (loc, scale)) |> Model.map ignore
            })
            let batch = Data.take (Tensor.ofInts [| 1; 3 |]) regData
            let ctx = { Model = regression batch; Guide = guide; NumObs = 4; BatchRows = 2 }
            let gp = Map [ "loc", s 0.3; "scale", s 0.4 ]
            let key = Rng.key 77UL
            let gt, _ = ElboEstimate.traces key gp Map.empty ctx
            let beta = gt.Value "beta" |> scalarOf
            let value = ElboEstimate.particle (Elbo.Batched 1) key gp Map.empty ctx |> scalarOf
            let llh = RefNormal.PDFLn(beta * xs.[1], 0.7, ys.[1]) + RefNormal.PDFLn(beta * xs.[3], 0.7, ys.[3])
            let expected = 4.0 / 2.0 * llh + RefNormal.PDFLn(0.0, 1.0, beta) + 2.5 - RefNormal.PDFLn(0.3, 0.4, beta)
            close 1e-12 expected value "batched ELBO"

        testCase "a constrained latent's Jacobian: SVI on a Gamma posterior gets its mean" <| fun () ->
            // λ ~ Gamma(2, 1), y ~ Poisson(λ) with Σy = 4 over 2 rows: posterior Gamma(6, 3). For a Normal guide
            // on log λ the optimum has E_q[∂ log p/∂ log λ] = 0, i.e. E_q[λ] = 6/3 = 2 exactly; a missing
            // log-det gives 5/3, a doubled one 7/3.
            let m (d: Map<string, Tensor>) = model {
                let! lam = Model.sample "lam" (Gamma (s 2.0, s 1.0))
                return! Model.observe "y" (Poisson (lam + Tensor.zerosLike d.["y"])) (Some d.["y"])
            }
            let opts = { FitOptions.Default with AutoGuide = AutoGuideKind.AutoNormal; Run.Steps = Some 600; LearningRate = 0.05; Particles = 2 }
            let f = Fit.vi opts m (Map [ "y", t [| 1.0; 3.0 |] ])
            let draws = (Posterior.draws f (Rng.key 9UL) 4000).["lam"] |> Tensor.toArray
            let mean = Array.average draws
            let sd = sqrt (draws |> Array.averageBy (fun v -> (v - mean) ** 2.0))
            // Monte Carlo error ≈ sd/√4000 ≈ 0.013; the wrong Jacobians are 1/3 away
            Expect.isTrue (abs (mean - 2.0) < 0.1) (sprintf "E_q[λ] = %g (sd %g)" mean sd)

        testCase "links refuse shapes that only broadcast by accident" <| fun () ->
            let run yHat y = Model.run (Handlers.seed (Rng.key 1UL) (Links.gaussian "y" yHat (Some y))) |> ignore
            throwsWith [ "[3, 3]"; "[3]" ] (fun () -> run (Tensor.zeros [| 3 |]) (Tensor.zeros [| 3; 3 |]))
            throwsWith [ "[1]"; "[3]" ] (fun () -> run (Tensor.zeros [| 3 |]) (Tensor.zeros [| 1 |]))
            // the same shape, a column, and a one-element predictor are fine
            run (Tensor.zeros [| 3 |]) (Tensor.zeros [| 3 |])
            run (Tensor.zeros [| 3; 1 |]) (Tensor.zeros [| 3 |])
            run (Tensor.zeros [||]) (Tensor.zeros [| 3 |])
    ]

// ---- bad data ------------------------------------------------------------------------------------

let private line (d: Map<string, Tensor>) = model {
    let! b = Model.sample "b" (Normal (s 0.0, s 1.0))
    return! Links.gaussian "y" (d.["x"] * b) (d.TryFind "y")
}
let private counts (d: Map<string, Tensor>) = model {
    let! b = Model.sample "b" (Normal (s 0.0, s 1.0))
    return! Links.poisson "y" (d.["x"] * b) (d.TryFind "y")
}
let private quick = { FitOptions.Default with Run.Steps = Some 5 }

let private badDataTests =
    testList "bad data" [
        testCase "a NaN in the data is named before fitting" <| fun () ->
            let data = Map [ "x", t [| 1.0; 2.0; nan; 4.0 |]; "y", t [| 1.0; 2.0; 3.0; 4.0 |] ]
            throwsWith [ "'x'"; "row 2"; "NaN"; "finite" ] (fun () -> Fit.vi quick line data |> ignore)
            let data2 = Map [ "x", Tensor.create [| 2; 3 |] [| 1.0; 2.0; 3.0; 4.0; infinity; 6.0 |]; "y", t [| 1.0; 2.0 |] ]
            throwsWith [ "'x'"; "row 1, column 1"; "Infinity" ] (fun () -> Check.finiteData data2)

        testCase "observations outside their support are named before fitting" <| fun () ->
            let data = Map [ "x", t [| 1.0; 2.0; 3.0 |]; "y", t [| 2.0; -1.0; 0.0 |] ]
            throwsWith [ "'y'"; "Poisson"; "row 1"; "-1"; "non-negative integer" ] (fun () -> Fit.vi quick counts data |> ignore)
            let frac = Map [ "x", t [| 1.0; 2.0; 3.0 |]; "y", t [| 2.0; 1.0; 0.5 |] ]
            throwsWith [ "row 2"; "0.5" ] (fun () -> Fit.vi quick counts frac |> ignore)
            let bern (d: Map<string, Tensor>) = model {
                let! b = Model.sample "b" (Normal (s 0.0, s 1.0))
                return! Links.logit "y" (d.["x"] * b) (d.TryFind "y")
            }
            throwsWith [ "'y'"; "row 0"; "2"; "0 or 1" ] (fun () -> Fit.vi quick bern (Map [ "x", t [| 1.0; 2.0 |]; "y", t [| 2.0; 1.0 |] ]) |> ignore)
            // Check.observedData is what MCMC calls too
            throwsWith [ "'y'"; "row 1" ] (fun () -> Check.observedData (counts data) data)

        testCase "prediction checks its data and predicts an observed site anyway" <| fun () ->
            let train = Map [ "x", t [| 1.0; 2.0; 3.0 |]; "y", t [| 2.0; 4.1; 5.9 |] ]
            let f = Fit.vi { FitOptions.Default with Run.Steps = Some 200; LearningRate = 0.05 } line train
            throwsWith [ "'x'"; "row 0"; "NaN" ] (fun () -> Posterior.predict f (Rng.key 1UL) 10 false (Map [ "x", t [| nan |] ]) |> ignore)
            // with the training data (y still in it), y is predicted: its given values are ignored
            let p = Posterior.predict f (Rng.key 2UL) 200 false train
            let q = Posterior.predict f (Rng.key 2UL) 200 false (Map.remove "y" train)
            Expect.sequenceEqual (Tensor.toArray p.["y"].Mean) (Tensor.toArray q.["y"].Mean) "the same as without y"

        testCase "with neither Steps nor Epochs a fit runs SviRunOptions.DefaultSteps steps" <| fun () ->
            let data = Map [ "x", t [| 1.0; 2.0 |]; "y", t [| 2.0; 4.0 |] ]
            Expect.equal (Fit.totalSteps FitOptions.Default 2) SviRunOptions.DefaultSteps "total steps"
            let f = Fit.vi FitOptions.Default line data
            Expect.equal (Posterior.losses f).Length SviRunOptions.DefaultSteps "losses"
            throwsWith [ "not both" ] (fun () -> Fit.vi { FitOptions.Default with Run.Steps = Some 1; Run.Epochs = Some 1 } line data |> ignore)
    ]

[<Tests>]
let tests =
    testList "Edges" [ supportTests; outOfSupportTests; zeroLogZeroTests; tailTests; studentTTests; fitTests; stableFormulaTests; gapTests; badDataTests ]
