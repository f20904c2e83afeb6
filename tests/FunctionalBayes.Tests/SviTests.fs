/// SVI: the ELBOs (the minibatch ELBO's unbiasedness), batching, optimizers and schedules, the fold's
/// stopping rules, and save/load.
module FunctionalBayes.Tests.SviTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

type private RefNormal = MathNet.Numerics.Distributions.Normal

let private s (v: float) = Tensor.scalar v

/// β ~ N(0, 1), y ~ N(xβ, 0.7) with x and y as data (BLayers parity idea 5).
let private regression (d: Map<string, Tensor>) = model {
    let! beta = Model.sample "beta" (Normal (s 0.0, s 1.0))
    return! Model.observe "y" (Normal (d.["x"] * beta, s 0.7)) (d.TryFind "y")
}
let private data = Map [ "x", Tensor.ofArray [| -2.0; -0.5; 1.0; 3.0 |]; "y", Tensor.ofArray [| 1.0; 2.0; -1.0; 0.5 |] ]

/// A point guide: beta = b (a param), log q = 0.
let private pointGuide (b0: float) =
    Guide.ofModel "point" (model {
        let! b = Model.param "b" (s b0) Constraint.Real
        do! Model.sample "beta" (Delta (b, s 0.0, 0)) |> Model.map ignore
    })

let private cfg (elbo: Elbo) (guide: Guide) =
    { Model = regression; Guide = guide; Optimizer = Optimizer.AdamDefault 0.0; Elbo = elbo; ClipNorm = None }

/// Index subsets of size k of 0..n-1.
let rec private subsets (n: int) (k: int) (start: int) : int list list =
    if k = 0 then [ [] ]
    else [ for i in start .. n - 1 do for rest in subsets n (k - 1) (i + 1) -> i :: rest ]

let ``the batched ELBO averaged over every minibatch equals the full objective, and so does its gradient`` () =
    let exact b =
        -(RefNormal.PDFLn(0.0, 1.0, b) + Array.sum (Array.map2 (fun x y -> RefNormal.PDFLn(b * x, 0.7, y)) [| -2.0; -0.5; 1.0; 3.0 |] [| 1.0; 2.0; -1.0; 0.5 |]))
    let c = cfg (Elbo.Batched 1) (pointGuide 0.3)
    let st = Svi.init c (Rng.key 1UL) data
    for bsize in [ 1; 2; 4 ] do
        let batches = subsets 4 bsize 0 |> List.map (fun idx -> Data.take (Tensor.ofInts (Array.ofList idx)) data)
        let avgLoss = batches |> List.averageBy (fun b -> Svi.lossAt c st (Rng.key 2UL) 4 b |> Tensor.toScalar)
        Assert.Equal(exact 0.3, avgLoss, 10)
        // gradient in b: the average of minibatch gradients equals the full gradient
        let gradOf (batch: Map<string, Tensor>) =
            Autodiff.grad (fun b -> Svi.lossAt c { st with Unconstrained = [| b |] } (Rng.key 2UL) 4 batch) (s 0.3) |> Tensor.toScalar
        let avgGrad = batches |> List.averageBy gradOf
        let h = 1e-6
        Assert.Equal((exact (0.3 + h) - exact (0.3 - h)) / (2.0 * h), avgGrad, 5)

let ``with one row and batch size one, the batched ELBO is the trace ELBO`` () =
    let one = Data.slice 0 1 data
    let guide = Guide.auto AutoGuideKind.AutoNormal (InitUniform 2.0) (Rng.key 3UL) (regression one)
    let ct = { cfg (Elbo.Trace 1) guide with Model = regression }
    let st = Svi.init ct (Rng.key 4UL) one
    let lt = Svi.lossAt ct st (Rng.key 5UL) 1 one |> Tensor.toScalar
    let lb = Svi.lossAt { ct with Elbo = Elbo.Batched 1 } st (Rng.key 5UL) 1 one |> Tensor.toScalar
    Assert.Equal(lt, lb, 12)

let ``batch schedule: steps per epoch and totals`` () =
    Assert.Equal(2, Data.stepsPerEpoch 2 1)
    Assert.Equal((20, 2), Svi.schedule (SviRunOptions.ForEpochs(10, 1)) 2)
    Assert.Equal((7, 3), Svi.schedule { SviRunOptions.ForSteps 7 with BatchSize = Some 2 } 5)
    let ex = Assert.Throws<ArgumentException>(fun () -> Svi.schedule { SviRunOptions.ForSteps 7 with Epochs = Some 2 } 5 |> ignore)
    Assert.Contains("not both", ex.Message)

let ``short and oversized batches: every loss is the exact full objective at lr 0`` () =
    // 5 identical rows: each batch's (N/B)·likelihood is the full one whatever the batch's real size
    let rows = Map [ "x", Tensor.full [| 5 |] 1.5; "y", Tensor.full [| 5 |] 0.4 ]
    let exact = -(RefNormal.PDFLn(0.0, 1.0, 0.3) + 5.0 * RefNormal.PDFLn(0.45, 0.7, 0.4))
    for b in [ 2; 8 ] do
        let r = Svi.run (cfg (Elbo.Batched 1) (pointGuide 0.3)) (Rng.key 6UL) rows (SviRunOptions.ForEpochs(2, b))
        Assert.All(r.Losses, fun l -> Assert.Equal(exact, l, 10))

let ``the batched ELBO refuses models with plates`` () =
    let plated (d: Map<string, Tensor>) = model {
        let! beta = Model.sample "beta" (Normal (s 0.0, s 1.0))
        return! Model.plate "rows" 4 None (fun _ -> Model.observe "y" (Normal (d.["x"] * beta, s 0.7)) (d.TryFind "y"))
    }
    let c = { cfg (Elbo.Batched 1) (pointGuide 0.3) with Model = plated }
    let ex = Assert.Throws<InvalidOperationException>(fun () -> Svi.run c (Rng.key 7UL) data (SviRunOptions.ForSteps 1) |> ignore)
    Assert.Contains("plate 'rows'", ex.Message)

let ``a non-finite loss stops with a clear error that keeps the last finite state`` () =
    // a huge learning rate on a positive parameter overflows exp
    let guide = Guide.ofModel "scale" (model {
        let! sc = Model.param "sc" (s 1.0) Constraint.Positive
        do! Model.sample "beta" (Normal (s 0.0, sc)) |> Model.map ignore
    })
    let c = { cfg (Elbo.Trace 1) guide with Optimizer = Optimizer.Sgd (Schedule.Constant 1e6, 0.0) }
    let ex = Assert.Throws<SviDivergedException>(fun () -> Svi.run c (Rng.key 8UL) data (SviRunOptions.ForSteps 50) |> ignore)
    Assert.Contains("not finite", ex.Message)
    Assert.All(ex.LastFiniteState.Unconstrained |> Array.collect Tensor.toArray, fun v -> Assert.True(Double.IsFinite v))

let ``early stopping on a plateau`` () =
    let c = { cfg (Elbo.Trace 1) (pointGuide 0.3) with Optimizer = Optimizer.AdamDefault 0.05 }
    let opts = { SviRunOptions.ForSteps 5000 with EarlyStopping = Some { Window = 50; RelTol = 1e-6; Patience = 2 } }
    let r = Svi.run c (Rng.key 9UL) data opts
    Assert.True(r.StoppedEarly)
    Assert.True(r.Losses.Length < 5000)
    // and the point it stopped at is the MAP: b = Σxy/0.49 / (1 + Σx²/0.49)
    let x = [| -2.0; -0.5; 1.0; 3.0 |]
    let y = [| 1.0; 2.0; -1.0; 0.5 |]
    let map = (Array.sum (Array.map2 (*) x y) / 0.49) / (1.0 + Array.sumBy (fun v -> v * v) x / 0.49)
    Assert.Equal(map, Tensor.toScalar r.Params.["b"], 3)

let ``progress reports every few steps with an ETA`` () =
    let reports = ResizeArray<RunProgress>()
    let ctx = { RunContext.Quiet with OnProgress = Some reports.Add; ProgressEvery = 10 }
    Svi.runIn ctx true (cfg (Elbo.Trace 1) (pointGuide 0.3)) (Rng.key 10UL) data (SviRunOptions.ForSteps 30) |> ignore
    Assert.Equal<int[]>([| 10; 20; 30 |], reports |> Seq.map (fun p -> p.Step) |> Seq.toArray)
    Assert.All(reports, fun p -> Assert.Equal(30, p.TotalSteps))

let ``every optimizer minimizes a quadratic`` () =
    let target = Tensor.ofArray [| 1.5; -2.0 |]
    let opts =
        [ Optimizer.Sgd (Schedule.Constant 0.1, 0.9)
          Optimizer.AdamDefault 0.1
          Optimizer.AdamW (Schedule.Constant 0.1, 0.9, 0.999, 1e-8, 1e-4)
          Optimizer.ClippedAdamDefault 0.1
          Optimizer.Adagrad (Schedule.Constant 0.5, 1e-8)
          Optimizer.RmsProp (Schedule.Constant 0.05, 0.9, 1e-8) ]
    for opt in opts do
        let mutable p = [| Tensor.zeros [| 2 |] |]
        let mutable st = Optim.init p
        for _ in 1 .. 500 do
            let g = Autodiff.gradN (fun ps -> Tensor.sum (Tensor.square (ps.[0] - target))) p
            let p', st' = Optim.update opt st p g
            p <- p'
            st <- st'
        assertClose 0.02 (Tensor.toArray target) (Tensor.toArray p.[0])

let ``Adam's first step is lr·sign(g)`` () =
    let p, _ = Optim.update (Optimizer.AdamDefault 0.1) (Optim.init [| s 0.0 |]) [| s 0.0 |] [| s 3.0 |]
    Assert.Equal(-0.1, Tensor.toScalar p.[0], 6)

let ``schedules`` () =
    let cos = Schedule.CosineDecay (0.1, 100, 0.0)
    Assert.Equal(0.1, cos.At 0, 12)
    Assert.Equal(0.05, cos.At 50, 12)
    Assert.Equal(0.0, cos.At 100, 12)
    let oc = Schedule.OneCycle(0.5, 100)
    Assert.Equal(0.5 / 25.0, oc.At 0, 12)
    Assert.Equal(0.5, oc.At 10, 12)
    Assert.True(oc.At 100 < 1e-4)
    Assert.Equal(0.1 * 0.5, (Schedule.ExponentialDecay (0.1, 0.5, 10)).At 10, 12)
    Assert.Equal(0.3, (Schedule.Constant 0.3).At 1000)

let ``gradient clipping by global norm`` () =
    let g = Optim.clipByGlobalNorm 1.0 [| Tensor.ofArray [| 3.0; 4.0 |] |]
    assertClose 1e-15 [| 0.6; 0.8 |] (Tensor.toArray g.[0])

let ``save and load round-trip parameters exactly`` () =
    let ps = Map [ "a", Tensor.ofArray [| Math.PI; -1e-300; 1.0 / 3.0 |]; "b", Tensor.create [| 2; 1 |] [| 0.1; 7e22 |] ]
    let path = IO.Path.GetTempFileName()
    Fit.saveParams path ps
    let back = Fit.loadParams path
    Assert.Equal<string[]>(ps |> Map.keys |> Seq.toArray, back |> Map.keys |> Seq.toArray)
    for KeyValue (k, v) in ps do
        Assert.Equal<int[]>(v.Shape, back.[k].Shape)
        Assert.Equal<float[]>(Tensor.toArray v, Tensor.toArray back.[k])
    IO.File.WriteAllText(path, "{}")
    Assert.Throws<IO.InvalidDataException>(fun () -> Fit.loadParams path |> ignore) |> ignore

/// y ~ N(a + b·x, σ): a fit on simple data, shared by the fit-API tests.
let private line (d: Map<string, Tensor>) = model {
    let! mu = Layers.adaptive "x" d.["x"]
    let! b = Layers.intercept "b"
    return! Links.gaussian "y" (mu + b) (d.TryFind "y")
}
let private lineData =
    let x = Rng.normal (Rng.key 101UL) [| 500 |]
    Map [ "x", x; "y", 2.0 * x + 1.0 + 0.3 * Rng.normal (Rng.key 102UL) [| 500 |] ]
let private lineFit = lazy (Fit.vi { FitOptions.Default with Run.Epochs = Some 600; Run.BatchSize = Some 100; LearningRate = 0.1; Schedule = LrSchedule.WarmupCosine } line lineData)

let ``predict gives one mean and sd per row, from chunks of draws`` () =
    let f = lineFit.Force()
    let newX = Tensor.ofArray [| -1.0; 0.0; 2.0 |]
    let p = Posterior.predict f (Rng.key 103UL) 400 true (Map [ "x", newX ])
    let y = p.["y"]
    Assert.Equal<int[]>([| 3 |], y.Mean.Shape)
    Assert.Equal<int[]>([| 400; 3 |], y.Samples.Value.Shape)
    // the predictive mean is close to 1 + 2x, its sd close to the noise 0.3 (5 standard errors of 400 draws)
    Array.iteri2 (fun i m e -> Assert.True(abs (m - e) < 5.0 * 0.35 / sqrt 400.0 + 0.05, sprintf "row %d mean %g vs %g" i m e)) (Tensor.toArray y.Mean) [| -1.0; 1.0; 5.0 |]
    Assert.All(Tensor.toArray y.Std, fun sd -> Assert.InRange(sd, 0.25, 0.4))
    let ex = Assert.Throws<ArgumentException>(fun () -> Posterior.predict f (Rng.key 1UL) 0 false (Map [ "x", newX ]) |> ignore)
    Assert.Contains("at least one", ex.Message)

let ``summary has mean, sd and quantiles per latent site`` () =
    let sum = Posterior.summaryBySite (lineFit.Force()) (Rng.key 104UL) 500
    let names = sum |> Array.map (fun s -> s.Name)
    Assert.Equal<string[]>([| "AdaptiveLayer_x_beta"; "AdaptiveLayer_x_scale"; "InterceptLayer_b_beta"; "y_sigma" |], names)
    for s in sum do
        Assert.Equal(Shape.size s.Shape, s.Elements.Length)
        for e in s.Elements do
            Assert.True(e.Q5 < e.Q50 && e.Q50 < e.Q95, sprintf "%s: quantiles in order" e.Name)
            // 500 independent guide draws as one chain: ESS near 500 (bulk ESS of iid draws has sd ≈ 30 here) and R̂ near 1
            Assert.InRange(e.EssBulk, 350.0, 700.0)
            Assert.True(e.RHat < 1.02, sprintf "%s: R-hat %g" e.Name e.RHat)
    let beta = sum |> Array.find (fun s -> s.Name = "AdaptiveLayer_x_beta")
    Assert.Equal(2.0, beta.Elements.[0].Mean, 1)

let ``fit's errors`` () =
    let ex = Assert.Throws<ArgumentException>(fun () -> Fit.vi { FitOptions.Default with Run.Steps = Some 10; Run.Epochs = Some 2 } line lineData |> ignore)
    Assert.Contains("not both", ex.Message)
    // with neither Steps nor Epochs a fit runs SviRunOptions.DefaultSteps steps (EdgeTests checks it)
    let bad = Map [ "x", Tensor.zeros [| 5 |]; "y", Tensor.zeros [| 4 |] ]
    let ex = Assert.Throws<ArgumentException>(fun () -> Fit.vi { FitOptions.Default with Run.Steps = Some 1 } line bad |> ignore)
    Assert.Contains("Inconsistent data lengths", ex.Message)
    let ex = Assert.Throws<ArgumentOutOfRangeException>(fun () -> Fit.vi { FitOptions.Default with Run.Steps = Some 1; LearningRate = -1.0 } line lineData |> ignore)
    Assert.Contains("learning rate", ex.Message)

let ``a fit's parameters survive save and load`` () =
    let f = lineFit.Force()
    let path = IO.Path.GetTempFileName()
    Fit.saveParams path (Posterior.parameters f)
    let g = Posterior.ofGuide f.Model lineData (Posterior.guidePart "test" f).Guide (Fit.loadParams path)
    let a = Posterior.predict f (Rng.key 105UL) 50 false (Map [ "x", Tensor.ofArray [| 0.5 |] ])
    let b = Posterior.predict g (Rng.key 105UL) 50 false (Map [ "x", Tensor.ofArray [| 0.5 |] ])
    Assert.Equal<float[]>(Tensor.toArray a.["y"].Mean, Tensor.toArray b.["y"].Mean)

let ``predictions from posterior draws agree with predictions from the guide`` () =
    let f = lineFit.Force()
    let newX = Map [ "x", Tensor.ofArray [| -1.0; 2.0 |] ]
    let draws = Posterior.draws f (Rng.key 106UL) 400
    let fromDraws = Posterior.predictFromDraws line draws (Rng.key 107UL) false newX
    let fromGuide = Posterior.predict f (Rng.key 108UL) 400 false newX
    // two independent 400-draw estimates of the same predictive mean: within 5 standard errors of their difference
    Array.iter2 (fun a b -> Assert.True(abs (a - b) < 5.0 * 0.35 * sqrt (2.0 / 400.0), sprintf "%g vs %g" a b))
        (Tensor.toArray fromDraws.["y"].Mean) (Tensor.toArray fromGuide.["y"].Mean)
    let ex = Assert.Throws<ArgumentException>(fun () -> Posterior.predictFromDraws line (Map [ "a", Tensor.zeros [| 3 |]; "b", Tensor.zeros [| 4 |] ]) (Rng.key 1UL) false newX |> ignore)
    Assert.Contains("'b'", ex.Message)

let ``a guide site without a reparameterization gets an unbiased score-function gradient`` () =
    // no data: the ELBO is -KL(q ‖ p) with q = Gamma(a, 1), p = Gamma(2, 1); its gradient in a is analytic
    let prior (_: Map<string, Tensor>) = model { return! Model.sample "z" (Gamma (s 2.0, s 1.0)) }
    let guide = Guide.ofModel "gamma" (model {
        let! a = Model.param "a" (s 3.0) Constraint.Positive
        do! Model.sample "z" (Gamma (a, s 1.0)) |> Model.map ignore
    })
    let c = { Model = prior; Guide = guide; Optimizer = Optimizer.AdamDefault 0.0; Elbo = Elbo.Trace 4000; ClipNorm = None }
    let st = Svi.init c (Rng.key 111UL) Map.empty
    let exact = Autodiff.grad (fun a -> Kl.analytic (Gamma (a, s 1.0)) (Gamma (s 2.0, s 1.0))) (s 3.0) |> Tensor.toScalar
    // the loss is in the unconstrained u = log a: d loss/du = a · d KL/da; estimate it from 8 independent batches
    let grads =
        Array.init 8 (fun b ->
            Autodiff.grad (fun u -> Svi.lossAt c { st with Unconstrained = [| u |] } (Rng.key (uint64 (200 + b))) 1 Map.empty) st.Unconstrained.[0]
            |> Tensor.toScalar)
    let m = Array.average grads
    let se = sqrt ((grads |> Array.averageBy (fun g -> (g - m) ** 2.0)) / float (grads.Length - 1))
    Assert.True(abs (m - 3.0 * exact) < 5.0 * se + 1e-3, sprintf "score-function gradient %g ± %g vs exact %g" m se (3.0 * exact))
    // and without the score term the gradient would be zero: the estimate is clearly not
    Assert.True(abs m > 5.0 * se)

[<Tests>]
let tests =
    testList "SviTests" [
        testCase "the batched ELBO averaged over every minibatch equals the full objective, and so does its gradient" ``the batched ELBO averaged over every minibatch equals the full objective, and so does its gradient``
        testCase "with one row and batch size one, the batched ELBO is the trace ELBO" ``with one row and batch size one, the batched ELBO is the trace ELBO``
        testCase "batch schedule: steps per epoch and totals" ``batch schedule: steps per epoch and totals``
        testCase "short and oversized batches: every loss is the exact full objective at lr 0" ``short and oversized batches: every loss is the exact full objective at lr 0``
        testCase "the batched ELBO refuses models with plates" ``the batched ELBO refuses models with plates``
        testCase "a non-finite loss stops with a clear error that keeps the last finite state" ``a non-finite loss stops with a clear error that keeps the last finite state``
        testCase "early stopping on a plateau" ``early stopping on a plateau``
        testCase "progress reports every few steps with an ETA" ``progress reports every few steps with an ETA``
        testCase "every optimizer minimizes a quadratic" ``every optimizer minimizes a quadratic``
        testCase "Adam's first step is lr·sign(g)" ``Adam's first step is lr·sign(g)``
        testCase "schedules" ``schedules``
        testCase "gradient clipping by global norm" ``gradient clipping by global norm``
        testCase "save and load round-trip parameters exactly" ``save and load round-trip parameters exactly``
        testCase "predict gives one mean and sd per row, from chunks of draws" ``predict gives one mean and sd per row, from chunks of draws``
        testCase "summary has mean, sd and quantiles per latent site" ``summary has mean, sd and quantiles per latent site``
        testCase "fit's errors" ``fit's errors``
        testCase "a fit's parameters survive save and load" ``a fit's parameters survive save and load``
        testCase "predictions from posterior draws agree with predictions from the guide" ``predictions from posterior draws agree with predictions from the guide``
        testCase "a guide site without a reparameterization gets an unbiased score-function gradient" ``a guide site without a reparameterization gets an unbiased score-function gradient``
    ]
