/// One posterior for SVI and MCMC: summary, predict, deterministic sites, save/load, and the options'
/// validation in one place.
module FunctionalBayes.Tests.PosteriorTests

open System
open System.IO
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors

let private s (v: float) = Tensor.scalar v

/// y_i ~ N(mu, 1) with mu ~ N(0, 10) and a deterministic "shifted" = mu + 1: the posterior of mu is
/// N(m, v) with v = 1/(1/100 + n), m = v·Σy.
let private normalMean (d: Map<string, Tensor>) = model {
    let! mu = Model.sample "mu" (Normal (s 0.0, s 10.0))
    let! _ = Model.deterministic "shifted" (mu + 1.0)
    return! Model.observe "y" (Independent (Normal (Tensor.zerosLike d.["y"] + mu, Tensor.onesLike d.["y"]), 1)) (Some d.["y"])
}

let private ys = [| 0.3; 1.9; 1.1; 0.4; 1.6; 0.8; 1.2; 2.2; 0.1; 1.4 |]
let private data = Map [ "y", Tensor.ofArray ys ]
let private postVar = 1.0 / (1.0 / 100.0 + float ys.Length)
let private postMean = postVar * Array.sum ys

let private nutsOpts = { McmcOptions.Default with Chains = 2; Warmup = 300; Samples = 400; Seed = 11UL }
let private sampled = lazy (Fit.mcmcIn RunContext.Quiet nutsOpts normalMean data)
let private fitted = lazy (Fit.vi { FitOptions.Default with Run.Steps = Some 600; LearningRate = 0.05; Seed = 3UL } normalMean data)

let private temp () = Path.Combine(Path.GetTempPath(), sprintf "fb-posterior-%s.json" (Guid.NewGuid().ToString "N"))

let private row (name: string) (rows: ScalarSummary[]) = rows |> Array.find (fun r -> r.Name = name)

[<Tests>]
let tests =
    testList "Posterior" [
        testCase "a sampled posterior's summary has R-hat, ESS and its deterministic sites, and is right" <| fun () ->
            let p = sampled.Force()
            let rows = Posterior.summary p (Rng.key 0UL) 1
            let mu = row "mu" rows
            let shifted = row "shifted" rows
            // the mean is within 4 MCSE of the exact posterior mean; the sd within 15 % (800 draws)
            Expect.isLessThan (abs (mu.Mean - postMean)) (4.0 * mu.McseMean) "mu's mean"
            Expect.isLessThan (abs (mu.Sd / sqrt postVar - 1.0)) 0.15 "mu's sd"
            // 4 split chains of 200 draws: R-hat of a well-mixed chain still spreads by about 0.01-0.02
            Expect.isLessThan mu.RHat 1.05 "R-hat"
            Expect.isGreaterThan mu.EssBulk 200.0 "bulk ESS"
            // the deterministic site is mu + 1 at every draw
            Expect.floatClose Accuracy.high shifted.Mean (mu.Mean + 1.0) "shifted = mu + 1 on average"
            let r = Posterior.samplesPart "test" p
            let d = Tensor.toArray r.Deterministic.["shifted"]
            let m = Tensor.toArray r.Draws.["mu"]
            Expect.equal r.Deterministic.["shifted"].Shape [| 2; 400 |] "[chains; draws]"
            Expect.isTrue (Array.forall2 (fun a b -> abs (a - (b + 1.0)) < 1e-12) d m) "at every draw"
            Expect.equal (Posterior.methodName p) "NUTS" "method"

        testCase "a guide posterior's summary: its draws as one chain, R-hat near 1 and ESS near the number of draws" <| fun () ->
            let p = fitted.Force()
            let mu = row "mu" (Posterior.summary p (Rng.key 1UL) 800)
            Expect.isLessThan (abs (mu.Mean - postMean)) 0.1 "the fitted mean"
            Expect.isLessThan mu.RHat 1.02 "independent draws mix"
            Expect.isGreaterThan mu.EssBulk 550.0 "independent draws: ESS ≈ 800"
            Expect.equal (Posterior.warnings p) [] "no sampler warnings for a guide"
            Expect.equal ((Posterior.chains p (Rng.key 1UL) 800 false).["mu"].Shape) [| 1; 800 |] "one chain"

        testCase "predict from a sampled posterior uses n draws evenly spread; the predictive mean is the posterior's" <| fun () ->
            let p = sampled.Force()
            let newData = Map [ "y", Tensor.zeros [| 3 |] ]
            let pr = Posterior.predict p (Rng.key 5UL) 200 true newData
            Expect.equal pr.["y"].Samples.Value.Shape [| 200; 3 |] "200 draws of 3 rows"
            // the predictive of y is N(mu, 1 + v): the mean of 200 draws is within 4 standard errors of the posterior mean
            let se = sqrt ((1.0 + postVar) / 200.0)
            for v in Tensor.toArray pr.["y"].Mean do
                Expect.isLessThan (abs (v - postMean)) (4.0 * se) "predictive mean"
            Expect.throwsT<ArgumentException> (fun () -> Posterior.predict p (Rng.key 5UL) 0 false newData |> ignore) "n < 1 is refused"

        testCase "a sampled posterior survives save and load exactly" <| fun () ->
            let p = sampled.Force()
            let path = temp ()
            try
                Fit.save path p
                let q = Fit.load path normalMean data None
                let a, b = Posterior.samplesPart "a" p, Posterior.samplesPart "b" q
                Expect.sequenceEqual (Tensor.toArray b.Draws.["mu"]) (Tensor.toArray a.Draws.["mu"]) "draws"
                Expect.sequenceEqual (Tensor.toArray b.Deterministic.["shifted"]) (Tensor.toArray a.Deterministic.["shifted"]) "deterministic"
                for k in 0 .. 1 do
                    Expect.sequenceEqual b.Flat.Positions.[k] a.Flat.Positions.[k] "positions"
                    Expect.sequenceEqual b.Flat.Stats.[k].Energy a.Flat.Stats.[k].Energy "energy"
                    Expect.sequenceEqual b.Flat.Stats.[k].Divergent a.Flat.Stats.[k].Divergent "divergent"
                    Expect.equal b.Flat.Stats.[k].AdaptedStepSize a.Flat.Stats.[k].AdaptedStepSize "step size"
                Expect.equal (Posterior.summary q (Rng.key 0UL) 1) (Posterior.summary p (Rng.key 0UL) 1) "the same summary"
                // another model's latents are refused
                let other (d: Map<string, Tensor>) = model {
                    let! nu = Model.sample "nu" (Normal (s 0.0, s 1.0))
                    return! Model.observe "y" (Independent (Normal (Tensor.zerosLike d.["y"] + nu, Tensor.onesLike d.["y"]), 1)) (Some d.["y"]) }
                Expect.throwsT<InvalidDataException> (fun () -> Fit.load path other data None |> ignore) "another model"
            finally File.Delete path

        testCase "a guide posterior survives save and load: the autoguide is rebuilt from the file" <| fun () ->
            for kind in [ AutoGuideKind.AutoDiagonalNormal; AutoGuideKind.AutoLaplaceApproximation ] do
                let p = Fit.vi { FitOptions.Default with AutoGuide = kind; Run.Steps = Some 300; LearningRate = 0.05; Seed = 3UL } normalMean data
                let path = temp ()
                try
                    Fit.save path p
                    let q = Fit.load path normalMean data None
                    Expect.sequenceEqual (Posterior.losses q) (Posterior.losses p) "losses"
                    let draws (x: Posterior<Tensor>) = Tensor.toArray (Posterior.draws x (Rng.key 4UL) 50).["mu"]
                    Expect.sequenceEqual (draws q) (draws p) (sprintf "%A: the same draws" kind)
                    // the fit's own options must name the same autoguide
                    let wrong = { FitOptions.Default with AutoGuide = AutoGuideKind.AutoNormal }
                    Expect.throwsT<InvalidDataException> (fun () -> Fit.load path normalMean data (Some wrong) |> ignore) "another autoguide kind"
                finally File.Delete path

        testCase "the Laplace step is chosen by the guide's origin, not by its name" <| fun () ->
            let program = model {
                let! loc = Model.param "loc" (s 0.0) Constraint.Real
                do! Model.sample "mu" (Normal (loc, s 0.5)) |> Model.map ignore }
            let g = Guide.ofModel "AutoLaplaceApproximation" program
            // a user guide that happens to carry the name is used as it is (no 'auto_loc' is looked for)
            let p = Fit.viWithGuide g { FitOptions.Default with Run.Steps = Some 50; Seed = 1UL } normalMean data
            Expect.equal (Posterior.guidePart "test" p).Guide.Origin GuideOrigin.User "origin"

        testCase "every SVI setting is checked in one place, with the setting's name" <| fun () ->
            let check (o: FitOptions) (name: string) =
                let ex = Assert.Throws<ArgumentOutOfRangeException>(fun () -> Fit.validate o)
                Expect.equal ex.ParamName name name
            check { FitOptions.Default with LearningRate = nan } "LearningRate"
            check { FitOptions.Default with Particles = 0 } "Particles"
            check { FitOptions.Default with ClipNorm = Some 0.0 } "ClipNorm"
            check { FitOptions.Default with Init = InitUniform -1.0 } "Init"
            check { FitOptions.Default with Run.Steps = Some 0 } "Steps"
            check { FitOptions.Default with Run.BatchSize = Some 0 } "BatchSize"
            // progress is the run context's, checked in its one place
            Expect.equal (Assert.Throws<ArgumentOutOfRangeException>(fun () -> RunContext.Validate { RunContext.Quiet with ProgressEvery = 0 })).ParamName "ProgressEvery" "ProgressEvery"
            check { FitOptions.Default with Run.EarlyStopping = Some { Window = 10; RelTol = -1.0; Patience = 1 } } "EarlyStopping.RelTol"
            check { FitOptions.Default with AutoGuide = AutoGuideKind.AutoLowRankMultivariateNormal (Some 0) } "AutoGuide"
            let both = Assert.Throws<ArgumentException>(fun () -> Fit.validate { FitOptions.Default with Run.Steps = Some 1; Run.Epochs = Some 1 })
            Expect.stringContains both.Message "not both" "steps with epochs"
            // the loop's own runner applies the same rules
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Svi.schedule { SviRunOptions.Default with Epochs = Some 0 } 10 |> ignore) "Svi.schedule"

        testCase "a run of fewer than 4 draws per chain returns its draws; the diagnostics say why they are missing" <| fun () ->
            let notes = ResizeArray<string>()
            let p = Fit.mcmcIn { RunContext.Quiet with Log = notes.Add } { nutsOpts with Samples = 1; Warmup = 20 } normalMean data
            Expect.equal (Posterior.samplesPart "test" p).Draws.["mu"].Shape [| 2; 1 |] "one draw per chain"
            Expect.equal (Posterior.warnings p) [] "no warnings without diagnostics"
            Expect.exists notes (fun n -> n.Contains "too few") "the run says so"
            let ex = Assert.ThrowsAny<ArgumentException>(fun () -> Posterior.summary p (Rng.key 0UL) 1 |> ignore)
            Expect.stringContains ex.Message "at least 4" "the summary names the need"

        testCase "every MCMC setting is checked in one place, with the setting's name" <| fun () ->
            let check (o: McmcOptions) (name: string) =
                let ex = Assert.Throws<ArgumentOutOfRangeException>(fun () -> Mcmc.validate o)
                Expect.equal ex.ParamName name name
            check { McmcOptions.Default with Chains = 0 } "Chains"
            check { McmcOptions.Default with TargetAccept = 1.0 } "TargetAccept"
            check { McmcOptions.Default with Init = InitUniform 0.0 } "Init"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Fit.mcmcIn RunContext.Quiet { nutsOpts with Samples = 0 } normalMean data |> ignore) "Fit.mcmcIn RunContext.Quiet checks first"
    ]
