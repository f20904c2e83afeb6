/// FunctionalBayes.Testing on the project's own layers and links, and each of its four checks run with
/// Expecto's runner against a deliberately broken model, fit or link, where it must fail.
module FunctionalBayes.Testing.Tests.ModelChecksTests

open System
open Expecto
open Expecto.Impl
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Testing

let private s (v: float) = Tensor.scalar v

/// Runs one Test with Expecto's runner (sequenced, silent printer) and returns the exit code and the run summary.
let private runWithExpecto (t: Test) : int * TestRunSummary =
    let summary = ref None
    let code =
        Tests.runTestsWithCLIArgs
            [ CLIArguments.Sequenced; CLIArguments.No_Spinner; CLIArguments.Colours 0
              CLIArguments.Printer TestPrinters.silent
              CLIArguments.Append_Summary_Handler(SummaryHandler(fun r -> summary.Value <- Some r)) ]
            [||] t
    code, summary.Value.Value

/// The test passes under Expecto's runner.
let private expectPasses (t: Test) =
    let code, r = runWithExpecto t
    let messages = r.failed @ r.errored |> List.map (fun (_, s) -> sprintf "%A" s.result)
    Expect.equal code 0 (sprintf "the check should pass; it reported: %s" (String.Join("\n", messages)))
    Expect.equal r.passed.Length 1 "one test passed"

/// The test fails (an assertion, not an exception) under Expecto's runner, with a message holding each fragment.
let private expectFails (fragments: string list) (t: Test) =
    let code, r = runWithExpecto t
    Expect.notEqual code 0 "the runner's exit code is non-zero"
    Expect.equal r.passed.Length 0 "no test passed"
    Expect.equal r.errored.Length 0 (sprintf "the check fails by assertion, not by an exception: %A" (r.errored |> List.map (fun (_, s) -> s.result)))
    match r.failed with
    | [ _, summary ] ->
        match summary.result with
        | TestResult.Failed msg ->
            for f in fragments do
                Expect.stringContains msg f "the failure message says what is wrong"
        | other -> failtestf "expected a failed result, got %A" other
    | other -> failtestf "expected exactly one failed test, got %d" other.Length

// ---- models ---------------------------------------------------------------------------------------

/// A conjugate model: mu ~ Normal(0, 1), y_i ~ Normal(mu, 1). Posterior: Normal(Σy/(n+1), 1/√(n+1)).
let private normalMean (d: Map<string, Tensor>) = model {
    let! mu = Model.sample "mu" (Normal (s 0.0, s 1.0))
    let n = match d.TryFind "y" with Some y -> y.Shape.[0] | None -> int (Tensor.toScalar d.["n"])
    return! Model.observe "y" (Dist.expand [| n |] (Normal (mu, s 1.0))) (d.TryFind "y")
}
let private nObs = 10
let private yObs = Rng.normal (Rng.key 11UL) [| nObs |] + 0.7
let private exactPosterior (y: Tensor) =
    let n = float y.Shape.[0]
    Tensor.toScalar (Tensor.sum y) / (n + 1.0), 1.0 / sqrt (n + 1.0)

/// Exact posterior draws of the conjugate model, shifted by `bias` posterior sds and scaled by `widen`.
let private exactFitter (bias: float) (widen: float) (draws: int) : Fitter<Tensor> =
    fun _ data key ->
        let m, sd = exactPosterior data.["y"]
        Map [ "mu", Rng.normal key [| draws |] * (sd * widen) + (m + bias * sd) ]

/// A regression over two layers with a Gaussian link of known scale.
let private xRows = Rng.normal (Rng.key 21UL) [| 20; 2 |]
let private regression (link: string -> Tensor -> Tensor option -> Model<Tensor>) (d: Map<string, Tensor>) = model {
    let! a = Layers.intercept "c"
    let! b = Layers.fixedPrior "x" d.["x"]
    return! link "y" (a + b) (d.TryFind "y")
}
let private gaussianKnown = Links.gaussianWith (LinkScale.Fixed (s 1.0))
let private simulate (m: Map<string, Tensor> -> Model<'T>) (inputs: Map<string, Tensor>) (seed: uint64) =
    let _, t = Model.run (Handlers.trace (Handlers.seed (Rng.key seed) (m inputs)))
    inputs.Add("y", Tensor.detach (t.Value "y"))

/// A potential whose gradient is wrong: the factor's value counts, its gradient is stopped.
let private stoppedGradient = model {
    let! mu = Model.sample "mu" (Normal (s 0.0, s 1.0))
    let! sigma = Model.sample "sigma" (HalfNormal (s 1.0))
    do! Model.factor "penalty" (-0.5 * Tensor.stopGradient (mu * mu * sigma))
    return mu
}

/// A "count" link that draws from a Normal around exp ŷ: its draws are not counts.
let private brokenCountLink (name: string) (yHat: Tensor) (y: Tensor option) =
    let yh = Tensor.reshape [| yHat.Shape.[0] |] yHat
    Model.observe name (Normal (Tensor.exp yh, s 1.0)) y
/// A link that predicts one value for all rows when the observation is left out.
let private brokenShapeLink (name: string) (yHat: Tensor) (y: Tensor option) =
    let yh = Tensor.reshape [| yHat.Shape.[0] |] yHat
    match y with
    | Some v -> Model.observe name (Normal (yh, s 1.0)) (Some v)
    | None -> Model.sample name (Normal (Tensor.mean yh, s 1.0))

// ---- tests ----------------------------------------------------------------------------------------

[<Tests>]
let gradientTests =
    testList "ModelChecks.gradient" [
        testCase "passes on the conjugate model, a layered regression and a Poisson link" <| fun () ->
            expectPasses (ModelChecks.gradient "normal mean" GradientCheck.Default (normalMean (Map [ "y", yObs ])))
            let data = Map [ "x", xRows; "y", Tensor.ones [| 20 |] ]
            expectPasses (ModelChecks.gradient "adaptive + gaussian" GradientCheck.Default
                            (model { let! b = Layers.adaptive "x" xRows in return! Links.gaussian "y" b (Some data.["y"]) }))
            let counts = Tensor.ofArray (Array.init 20 (fun i -> float (i % 4)))
            expectPasses (ModelChecks.gradient "regression + poisson" GradientCheck.Default (regression Links.poisson (Map [ "x", xRows; "y", counts ])))
        testCase "fails where the gradient is stopped" <| fun () ->
            ModelChecks.gradient "stopped" GradientCheck.Default stoppedGradient
            |> expectFails [ "disagrees with central finite differences"; "mu" ]
    ]

[<Tests>]
let priorPredictiveTests =
    testList "ModelChecks.priorPredictive" [
        testCase "passes for the Gaussian, Poisson, logit and lognormal links over layers" <| fun () ->
            let x = Map [ "x", xRows ]
            let counts = Tensor.ofArray (Array.init 20 (fun i -> float (i % 4)))
            let bits = Tensor.ofArray (Array.init 20 (fun i -> float (i % 2)))
            let positive = Tensor.ofArray (Array.init 20 (fun i -> 0.5 + float i))
            for link, y, promised in
                [ Links.gaussian, Tensor.zeros [| 20; 1 |], Constraint.Real
                  Links.poisson, counts, Constraint.NonNegativeInteger
                  Links.logit, bits, Constraint.Boolean
                  Links.lognormal, positive, Constraint.Positive ] do
                expectPasses (ModelChecks.priorPredictive "link" { PriorPredictiveCheck.Default with Supports = Map [ "y", promised ] } (regression link) (x.Add("y", y)))
                expectPasses (ModelChecks.priorPredictive "link" PriorPredictiveCheck.Default (regression link) (x.Add("y", y)))
        testCase "fails for a count link whose draws are not counts" <| fun () ->
            let counts = Tensor.ofArray (Array.init 20 (fun i -> float (i % 4)))
            ModelChecks.priorPredictive "broken counts" { PriorPredictiveCheck.Default with Supports = Map [ "y", Constraint.NonNegativeInteger ] }
                (regression brokenCountLink) (Map [ "x", xRows; "y", counts ])
            |> expectFails [ "site 'y'"; "outside the support NonNegativeInteger" ]
        testCase "fails for a link whose predictions have the wrong shape" <| fun () ->
            ModelChecks.priorPredictive "broken shape" PriorPredictiveCheck.Default (regression brokenShapeLink) (Map [ "x", xRows; "y", Tensor.zeros [| 20 |] ])
            |> expectFails [ "site 'y': shape []"; "the observation has shape [20]" ]
    ]

[<Tests>]
let calibrationTests =
    let inputs = Map [ "n", s (float nObs) ]
    let opts = { CalibrationCheck.Default with Replications = 40 }
    testList "ModelChecks.calibration" [
        testCase "passes with the exact posterior of the conjugate model" <| fun () ->
            expectPasses (ModelChecks.calibration "exact" opts normalMean inputs [ "y" ] (exactFitter 0.0 1.0 400))
        testCase "fails with a posterior biased by two sds" <| fun () ->
            ModelChecks.calibration "biased" opts normalMean inputs [ "y" ] (exactFitter 2.0 1.0 400)
            |> expectFails [ "intervals hold the truth"; "Binomial(40, 0.95)" ]
        testCase "fails with a posterior three times too narrow" <| fun () ->
            ModelChecks.calibration "overconfident" opts normalMean inputs [ "y" ] (exactFitter 0.0 (1.0 / 3.0) 400)
            |> expectFails [ "intervals hold the truth" ]
        testCase "passes with SVI on a layered regression" <| fun () ->
            let fitter = Fitters.vi { FitOptions.Default with Run.Steps = Some 400; LearningRate = 0.05; Particles = 2 } 200
            expectPasses (ModelChecks.calibration "svi" { CalibrationCheck.Default with Replications = 8 } (regression gaussianKnown) (Map [ "x", xRows ]) [ "y" ] fitter)
    ]

[<Tests>]
let posteriorTests =
    let m, sd = exactPosterior yObs
    let reference = Map [ "mu", { Mean = [| m |]; Sd = [| sd |] } ]
    let draws (bias: float) (widen: float) () = exactFitter bias widen 2000 normalMean (Map [ "y", yObs ]) (Rng.key 5UL)
    testList "ModelChecks.posterior" [
        testCase "passes for exact draws against the closed form" <| fun () ->
            expectPasses (ModelChecks.posterior "exact" 4.0 reference (draws 0.0 1.0))
        testCase "passes for SVI on the conjugate model" <| fun () ->
            let fit () =
                let f = Fit.vi { FitOptions.Default with Run.Steps = Some 1500; LearningRate = 0.05; Particles = 4; Seed = 3UL } normalMean (Map [ "y", yObs ])
                Posterior.draws f (Rng.key 4UL) 1000
            expectPasses (ModelChecks.posterior "svi" 5.0 reference fit)
        testCase "fails for draws biased by half an sd" <| fun () ->
            ModelChecks.posterior "biased" 4.0 reference (draws 0.5 1.0) |> expectFails [ "mu: mean" ]
        testCase "fails for draws 30 % too wide" <| fun () ->
            ModelChecks.posterior "wide" 4.0 reference (draws 0.0 1.3) |> expectFails [ "mu: sd" ]
    ]

[<Tests>]
let binomialTests =
    testList "ModelChecks binomial tails" [
        testCase "match closed forms" <| fun () ->
            // P(X ≤ 0) = (1 − p)^n, P(X ≥ n) = p^n, and the two tails at k overlap in P(X = k)
            let lo, hi = ModelChecks.binomialTails 40 0.95 40
            Expect.floatClose Accuracy.high hi (0.95 ** 40.0) "P(X ≥ n) = pⁿ"
            Expect.floatClose Accuracy.high lo 1.0 "P(X ≤ n) = 1"
            let lo0, _ = ModelChecks.binomialTails 40 0.95 0
            Expect.floatClose Accuracy.high lo0 (0.05 ** 40.0) "P(X ≤ 0) = (1 − p)ⁿ"
            let l, h = ModelChecks.binomialTails 10 0.5 5
            Expect.floatClose Accuracy.high (l + h) (1.0 + 252.0 / 1024.0) "P(X ≤ 5) + P(X ≥ 5) = 1 + C(10,5)/2¹⁰"
    ]
