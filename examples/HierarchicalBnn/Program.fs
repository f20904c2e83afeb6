/// HierarchicalBnn: BlackJAX's "Hierarchical Bayesian Neural Networks" notebook. 18 rotated two-moons
/// tasks of 50 training points each; separate Bayesian MLPs (2 → 5 → 5 → 1, tanh, Normal(0, 1) on every
/// weight and bias, one fit per task) against one hierarchical MLP (the two hidden layers per task,
/// non-centered around shared means, a shared output layer). Prints train and test accuracy over
/// several seeds, draws the decision surfaces, exports the hierarchical posterior predictive (every
/// kept draw in one graph) to ONNX and checks ONNX Runtime against the in-process predictive mean.
/// Writes hbnn-separate.png, hbnn-hierarchical.png, hbnn-hierarchical-ensemble.onnx and the posterior
/// report of the hierarchical fit, hbnn-report.html, into --out; ends with one JSON line of the figures
/// (accuracies, wall and CPU seconds, µs per potential gradient, gradients and leapfrogs, min bulk ESS over every
/// scalar and over the shared layers' means, the low-rank metric's rank).
/// Options: --seeds N (5), --first-seed N (0: seeds N0 .. N0+N−1), --out DIR (.), --warmup N (1000), --draws N (500), --hierarchical-only (no
/// separate fits, pictures or ONNX: for timing the hierarchical fit), --centered (the hierarchical
/// layers centered: the same model, another geometry for NUTS), --metric stan|dense|fisher-diagonal|fisher-lowrank
/// (how the hierarchical fit's warmup estimates the metric; default stan), --chains N (1: the hierarchical fit's
/// chains, run in parallel, sharing the --draws kept draws).
///
/// The pictures need a font: on Debian/Ubuntu `apt-get install fonts-dejavu-core`.
module HierarchicalBnn.Program

open System
open System.Diagnostics
open System.Globalization
open System.IO
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

type private Options =
    { Out: string; Seeds: int; FirstSeed: int; Warmup: int; Draws: int; HierOnly: bool; Parameterization: Parameterization
      Metric: MetricAdaptation; Chains: int }

let private parse (argv: string[]) =
    let rec go i o =
        if i >= argv.Length then o
        else
            match argv.[i] with
            | "--out" when i + 1 < argv.Length -> go (i + 2) { o with Out = argv.[i + 1] }
            | "--seeds" when i + 1 < argv.Length -> go (i + 2) { o with Seeds = int argv.[i + 1] }
            | "--first-seed" when i + 1 < argv.Length -> go (i + 2) { o with FirstSeed = int argv.[i + 1] }
            | "--warmup" when i + 1 < argv.Length -> go (i + 2) { o with Warmup = int argv.[i + 1] }
            | "--draws" when i + 1 < argv.Length -> go (i + 2) { o with Draws = int argv.[i + 1] }
            | "--hierarchical-only" -> go (i + 1) { o with HierOnly = true }
            | "--centered" -> go (i + 1) { o with Parameterization = Parameterization.Centered }
            | "--chains" when i + 1 < argv.Length -> go (i + 2) { o with Chains = int argv.[i + 1] }
            | "--metric" when i + 1 < argv.Length ->
                let m =
                    match argv.[i + 1] with
                    | "stan" -> MetricAdaptation.Stan
                    | "dense" -> MetricAdaptation.Dense
                    | "fisher-diagonal" -> MetricAdaptation.FisherDiagonal
                    | "fisher-lowrank" -> MetricAdaptation.FisherLowRank LowRankSettings.Default
                    | other -> failwithf "unknown --metric %s (use stan, dense, fisher-diagonal or fisher-lowrank)" other
                go (i + 2) { o with Metric = m }
            | a -> failwithf "unknown argument %s (use --seeds N, --first-seed N, --out DIR, --warmup N, --draws N, --hierarchical-only, --centered, --metric M, --chains N)" a
    let o = go 0 { Out = "."; Seeds = 5; FirstSeed = 0; Warmup = 1000; Draws = 500; HierOnly = false; Parameterization = Parameterization.NonCentered
                   Metric = MetricAdaptation.Stan; Chains = 1 }
    if o.FirstSeed < 0 then failwith "--first-seed must be at least 0"
    if o.Seeds < 1 || o.Warmup < 1 || o.Draws < 1 || o.Chains < 1 then failwith "--seeds, --warmup, --draws and --chains must be at least 1"
    if o.Draws % o.Chains <> 0 then failwithf "--draws %d must be a multiple of --chains %d (the chains share the kept draws)" o.Draws o.Chains
    o

let tasks = 18
let widths = [| 5; 5; 1 |]

/// One MLP for one task: Normal(0, 1) on every weight and bias. x (n, 2) → logits (n, 1).
let separateNet (x: Tensor) = BayesianMlp.Default.Call("net", x, widths, Activations.tanh)

/// The notebook's HNN: layers 0 and 1 per task (no bias; non-centered as the notebook, or centered: the
/// same model, another geometry for the sampler), the output layer shared.
/// x (tasks, n, 2) or (n, 2) shared by every task → logits (tasks, n, 1).
let hierarchicalNet (par: Parameterization) (x: Tensor) =
    { HierarchicalMlp.Default with Hierarchical = { HierarchicalDenseLayer.Default with Parameterization = par } }.Call("net", x, tasks, widths, [| 0; 1 |], Activations.tanh)

/// Bernoulli(logits = net(x)) observations y.
let classifier (net: Tensor -> Model<Tensor>) (data: Map<string, Tensor>) = model {
    let! logits = net data.["x"]
    return! Model.observe "y" (BernoulliLogits (Tensor.squeeze -1 logits)) (data.TryFind "y")
}

/// What a fit reports besides its draws.
type FitStats =
    { /// Chains of the fit (their kept draws together).
      Chains: int
      Seconds: float
      /// CPU seconds the process used during the fit (this fit's own when nothing else runs in the process).
      CpuSeconds: float
      /// Sampling leapfrogs (the kept draws' trees).
      Leapfrogs: int64
      /// Gradient evaluations of the whole fit (warmup and sampling, initialisation included).
      Gradients: int64
      /// Wall seconds inside those evaluations (the rest of `Seconds` is NUTS itself and the bookkeeping).
      GradientSeconds: float
      MinBulkEss: float
      /// The smallest bulk ESS over the shared layers' means (the `_mu` sites).
      MinMeanEss: float
      /// Directions of chain 1's low-rank metric (0 for a diagonal or dense metric).
      MetricRank: int
      Sampler: string
      StepSize: float
      MeanTreeDepth: float
      /// The adapted inverse mass: smallest and largest diagonal entries.
      InvMassRange: float * float
      Divergences: int
      /// The scalars with the smallest bulk ESS: name, ESS, split R̂.
      Worst: (string * float * float)[] }

/// THE ONE PLACE THAT CHOOSES THE INFERENCE: NUTS with window adaptation as BlackJAX runs it (one chain,
/// `warmup` adaptation iterations, initial step 1 without Stan's step-size heuristic, target 0.8, depth 10),
/// keeping `draws` draws. Posterior draws stacked on a first axis by site name.
let fitDrawsWith (metric: MetricAdaptation) (chains: int) (seed: uint64) (warmup: int) (draws: int) (modelFn: Map<string, Tensor> -> Model<Tensor>) (data: Map<string, Tensor>) : Map<string, Tensor> * FitStats * Posterior<Tensor> =
    let opts =
        { McmcOptions.Default with
            Chains = chains; Warmup = warmup; Samples = draws / chains; Seed = seed; FindInitialStepSize = false; Parallel = chains > 1
            Adaptation = metric }
    let count = ref 0L
    let ticks = ref 0L
    let counting (p: Potential) = GradientSource.instrumented count ticks (Compilation.auto p)
    let proc = Process.GetCurrentProcess()
    let cpu0 = proc.TotalProcessorTime
    let posterior = Fit.mcmcWithSource RunContext.Quiet opts counting modelFn data
    let r = Posterior.samplesPart "fitDraws" posterior
    proc.Refresh()
    let cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds
    let st = r.Flat.Stats.[0]
    let summary = Mcmc.summary r
    let ess = summary |> Array.map _.EssBulk |> Array.min
    let meanEss = summary |> Array.filter (fun s -> s.Name.Contains "_mu") |> Array.map _.EssBulk |> Array.fold min infinity
    let rank = match st.Metric with LowRankMetric (_, _, lam) -> lam.Length | DiagonalMetric _ | DenseMetric _ -> 0
    let im = let d = Metric.inverseMassDiagonal st.Metric in Array.min d, Array.max d
    Mcmc.merged r,
    { Chains = chains
      Seconds = r.Seconds; CpuSeconds = cpu; Leapfrogs = r.Flat.Stats |> Array.sumBy (fun c -> c.NumLeapfrog |> Array.sumBy int64); Gradients = count.Value; GradientSeconds = float ticks.Value / float Stopwatch.Frequency; MinBulkEss = ess; MinMeanEss = meanEss; MetricRank = rank; Sampler = "nuts/" + r.GradientKind.Text
      StepSize = st.AdaptedStepSize; MeanTreeDepth = st.TreeDepth |> Array.averageBy float; InvMassRange = im
      Worst = summary |> Array.sortBy _.EssBulk |> Array.truncate 4 |> Array.map (fun s -> s.Name, s.EssBulk, s.RHat)
      Divergences = r.Flat.Stats |> Array.sumBy (fun c -> c.WarmupDivergences + (c.Divergent |> Array.sumBy (fun b -> if b then 1 else 0))) },
    posterior

/// fitDrawsWith Stan's adaptation and one chain (the separate fits, and the hierarchical fit by default).
let fitDraws (seed: uint64) (warmup: int) (draws: int) (modelFn: Map<string, Tensor> -> Model<Tensor>) (data: Map<string, Tensor>) =
    fitDrawsWith MetricAdaptation.Stan 1 seed warmup draws modelFn data

/// THE ONE PLACE THAT WRITES THE POSTERIOR REPORT of a fit (draws, NUTS statistics, the model's description,
/// posterior predictive checks) as one self-contained HTML file.
let writeReport (path: string) (posterior: Posterior<Tensor>) (data: Map<string, Tensor>) =
    FunctionalBayes.Reporting.Report.save path posterior data

/// µs per potential gradient of a gradient source at a point: the median over 5 batches of `reps`
/// evaluations of the process's CPU time per evaluation (the machine is shared: wall time would count
/// other processes' turns) and the wall time per evaluation.
let gradientMicros (source: GradientSource) (reps: int) =
    let ev = source.Create()
    let q = Array.init ev.Dim (fun i -> 0.1 * float (i % 7) - 0.3)
    let g = Array.zeroCreate ev.Dim
    let warm = Stopwatch.StartNew()
    while warm.Elapsed.TotalSeconds < 1.0 do ev.Evaluate(ReadOnlySpan q, Span g) |> ignore
    let proc = Process.GetCurrentProcess()
    let batches =
        Array.init 5 (fun _ ->
            proc.Refresh()
            let cpu0 = proc.TotalProcessorTime
            let sw = Stopwatch.StartNew()
            for _ in 1 .. reps do ev.Evaluate(ReadOnlySpan q, Span g) |> ignore
            let wall = sw.Elapsed.TotalMilliseconds * 1000.0 / float reps
            proc.Refresh()
            (proc.TotalProcessorTime - cpu0).TotalMilliseconds * 1000.0 / float reps, wall)
    let median (a: float[]) = (Array.sort a).[2]
    median (Array.map fst batches), median (Array.map snd batches)

/// Per-draw probabilities: the network run once with every draw (stacked on a leading axis), σ(logits)
/// with the last axis dropped: (S, n) for a separate net, (S, tasks, n) for the hierarchical one.
let drawProbs (net: Tensor -> Model<Tensor>) (activationRank: int) (draws: Map<string, Tensor>) (x: Tensor) =
    Model.run (Handlers.substitute (Ensemble.alignDraws activationRank draws) (net x)) |> Tensor.sigmoid |> Tensor.squeeze -1

/// The notebook's prediction: one Bernoulli draw per posterior draw, their mean over draws, > 0.5.
let notebookPredict (key: RngKey) (probs: Tensor) =
    let u = Rng.uniform key probs.Shape
    Tensor.lt u probs |> Tensor.cast Float64 |> Tensor.meanAxes [| 0 |] false |> fun m -> Tensor.gtScalar m 0.5 |> Tensor.cast Float64

let accuracy (pred: Tensor) (y: Tensor) =
    Array.map2 (fun a b -> if a = b then 1.0 else 0.0) (Tensor.toArray pred) (Tensor.toArray y) |> Array.average

/// The hierarchical posterior predictive as one model: x (B, 2) → p (B, tasks), the mean over every
/// draw of σ(logits) for each task; `aligned` are the draws from Ensemble.alignDraws 3.
let ensembleModel (par: Parameterization) (data: Map<string, Tensor>) = model {
    let! logits = hierarchicalNet par data.["x"]
    let p = logits |> Tensor.sigmoid |> Tensor.meanAxes [| 0 |] false |> Tensor.squeeze -1 |> Tensor.permute [| 1; 0 |]
    return! Model.observe "p" (BernoulliProbs p) None
}

/// The grid's mean probability per task, (tasks, grid points), in chunks of rows (memory stays bounded).
let hierarchicalGridMean (par: Parameterization) (draws: Map<string, Tensor>) (grid: Tensor) =
    let aligned = Ensemble.alignDraws 3 draws
    let n = grid.Shape.[0]
    let chunk = 250
    [| for s in 0 .. chunk .. n - 1 ->
        let x = Tensor.narrow 0 s (min chunk (n - s)) grid
        Model.run (Handlers.substitute aligned (hierarchicalNet par x)) |> Tensor.sigmoid |> Tensor.meanAxes [| 0 |] false |> Tensor.squeeze -1 |]
    |> Tensor.concat 1

// ---- pictures -------------------------------------------------------------------------------------

/// 18 panels: the grid's mean predicted probability as a heat map, the training points on top.
let drawSurfaces (path: string) (title: string) (gridMeans: float[][]) (data: MultiTaskData) (accs: float[]) =
    let n = 100
    let mp = ScottPlot.Multiplot()
    ScottPlot.IMultiplotExtensions.AddPlots(mp, tasks) |> ignore
    mp.Layout <- ScottPlot.MultiplotLayouts.Grid(3, 6)
    let xs = Tensor.toArray data.XTrain
    let ys = Tensor.toArray data.YTrain
    let nTrain = data.XTrain.Shape.[1]
    let blue = ScottPlot.Color.FromHex "#3B4CC0"
    let red = ScottPlot.Color.FromHex "#B40426"
    for t in 0 .. tasks - 1 do
        let plot: ScottPlot.Plot = ScottPlot.IMultiplotExtensions.GetPlot(mp, t)
        // grid point i·n + j is (v_i, v_j); heat-map row r is the r-th y from the top
        let z = Array2D.init n n (fun r c -> gridMeans.[t].[c * n + (n - 1 - r)])
        let hm = plot.Add.Heatmap z
        hm.Colormap <- ScottPlot.Colormaps.Balance()
        hm.ManualRange <- Nullable(ScottPlot.Range(0.0, 1.0))
        hm.Extent <- Nullable(ScottPlot.CoordinateRect(-3.0, 3.0, -3.0, 3.0))
        for cls, color in [ 0.0, blue; 1.0, red ] do
            let idx = [| 0 .. nTrain - 1 |] |> Array.filter (fun i -> ys.[t * nTrain + i] = cls)
            let px = idx |> Array.map (fun i -> xs.[(t * nTrain + i) * 2])
            let py = idx |> Array.map (fun i -> xs.[(t * nTrain + i) * 2 + 1])
            let sp = plot.Add.ScatterPoints(px, py, Nullable color)
            sp.MarkerSize <- 6.0f
            sp.MarkerLineColor <- ScottPlot.Colors.Black
            sp.MarkerLineWidth <- 1.5f
        plot.Axes.SetLimits(-3.0, 3.0, -3.0, 3.0)
        plot.Title(sprintf "Task %d (test %.0f%%)" (t + 1) (100.0 * accs.[t]))
    ScottPlot.IMultiplotExtensions.GetPlot(mp, 0).Title(sprintf "%s: task 1 (%.0f%%)" title (100.0 * accs.[0])) |> ignore
    ScottPlot.IMultiplotExtensions.SavePng(mp, path, 1800, 960) |> ignore

// ---- main ------------------------------------------------------------------------------------------

let private inv (v: float) = v.ToString("R", CultureInfo.InvariantCulture)

type private SeedResult =
    { SepTrain: float; SepTest: float; HierTrain: float; HierTest: float; SepSeconds: float; HierSeconds: float; Hier: FitStats }

[<EntryPoint>]
let main argv =
    let opts = parse argv
    Directory.CreateDirectory opts.Out |> ignore
    let grid = Datasets.grid -3.0 3.0 100
    let results = ResizeArray<SeedResult>()
    let mutable onnxMaxDiff = nan
    let mutable usPerGradient = nan
    let hierarchicalNet = hierarchicalNet opts.Parameterization
    for seed in opts.FirstSeed .. opts.FirstSeed + opts.Seeds - 1 do
        let key = Rng.key (uint64 (31 + seed))
        let kData, kPred = Rng.split key
        let data = Datasets.multiTaskMoons kData tasks 100 50 0.3
        let kTrain, kTest = Rng.split kPred
        let hierData = Map [ "x", data.XTrain; "y", data.YTrain ]
        if seed = opts.FirstSeed then
            let p = LogDensity.potential (Rng.key 0UL) (classifier hierarchicalNet hierData)
            let compiled = Compilation.auto p
            let cpuUs, wallUs = gradientMicros compiled 2000
            let tapeCpuUs, tapeWallUs = gradientMicros (GradientSource.tape p) 100
            usPerGradient <- cpuUs
            printfn "hierarchical potential: %d unconstrained dimensions; %s: %.1f µs CPU (%.1f µs wall) per gradient; tape: %.1f µs CPU (%.1f µs wall) per gradient"
                compiled.Dim compiled.Kind.Text cpuUs wallUs tapeCpuUs tapeWallUs
        // hierarchical: one fit of all tasks
        let hierDraws, hierStats, hierRun = fitDrawsWith opts.Metric opts.Chains (uint64 (1000 * seed + 999)) opts.Warmup opts.Draws (classifier hierarchicalNet) hierData
        let hierTrain = accuracy (notebookPredict kTrain (drawProbs hierarchicalNet 3 hierDraws data.XTrain)) data.YTrain
        let hierTest = accuracy (notebookPredict kTest (drawProbs hierarchicalNet 3 hierDraws data.XTest)) data.YTest
        printfn "seed %d hierarchical: train %.2f%% test %.2f%% in %.1f s wall, %.1f s CPU (%s); step size %.3g, mean tree depth %.2f, inverse mass %.3g–%.3g, %d divergences; %d gradients in all (%.1f CPU µs each, NUTS included; %.1f s wall inside the gradients, %.1f µs each), %d sampling leapfrogs, min bulk ESS %.0f (shared means %.0f), metric rank %d"
            seed (100.0 * hierTrain) (100.0 * hierTest) hierStats.Seconds hierStats.CpuSeconds hierStats.Sampler hierStats.StepSize hierStats.MeanTreeDepth (fst hierStats.InvMassRange) (snd hierStats.InvMassRange)
            hierStats.Divergences hierStats.Gradients (hierStats.CpuSeconds * 1e6 / float hierStats.Gradients) hierStats.GradientSeconds (hierStats.GradientSeconds * 1e6 / float hierStats.Gradients) hierStats.Leapfrogs hierStats.MinBulkEss hierStats.MinMeanEss hierStats.MetricRank
        printfn "  smallest bulk ESS: %s" (String.Join("; ", hierStats.Worst |> Array.map (fun (n, e, r) -> sprintf "%s %.1f (R̂ %.2f)" n e r)))
        if seed = opts.FirstSeed then
            let reportPath = Path.Combine(opts.Out, "hbnn-report.html")
            writeReport reportPath hierRun hierData
            printfn "wrote %s" (Path.GetFullPath reportPath)
        if opts.HierOnly then
            results.Add { SepTrain = nan; SepTest = nan; HierTrain = hierTrain; HierTest = hierTest; SepSeconds = nan; HierSeconds = hierStats.Seconds; Hier = hierStats }
        else
        // separate: one fit per task, in parallel
        let swSep = Stopwatch.StartNew()
        let sep =
            Array.Parallel.init tasks (fun t ->
                let d = Map [ "x", Tensor.select 0 t data.XTrain; "y", Tensor.select 0 t data.YTrain ]
                let draws, stats, _ = fitDraws (uint64 (1000 * seed + t)) opts.Warmup opts.Draws (classifier separateNet) d
                draws, stats)
        let sepSeconds = swSep.Elapsed.TotalSeconds
        let sepPred (x: Tensor) (k: RngKey) =
            Array.init tasks (fun t -> notebookPredict (Rng.foldIn k t) (drawProbs separateNet 2 (fst sep.[t]) (Tensor.select 0 t x))) |> Tensor.stack 0
        let sepTrain = accuracy (sepPred data.XTrain kTrain) data.YTrain
        let sepTest = accuracy (sepPred data.XTest kTest) data.YTest
        printfn "seed %d separate: train %.2f%% test %.2f%% in %.1f s (18 fits in parallel)" seed (100.0 * sepTrain) (100.0 * sepTest) sepSeconds
        results.Add { SepTrain = sepTrain; SepTest = sepTest; HierTrain = hierTrain; HierTest = hierTest; SepSeconds = sepSeconds; HierSeconds = hierStats.Seconds; Hier = hierStats }
        if seed = opts.FirstSeed then
            // pictures
            let perTaskTest (pred: Tensor) = Array.init tasks (fun t -> accuracy (Tensor.select 0 t pred) (Tensor.select 0 t data.YTest))
            let sepGrid = Array.init tasks (fun t -> drawProbs separateNet 2 (fst sep.[t]) grid |> Tensor.meanAxes [| 0 |] false |> Tensor.toArray)
            let hierGridT = hierarchicalGridMean opts.Parameterization hierDraws grid
            let hierGrid = Array.init tasks (fun t -> Tensor.select 0 t hierGridT |> Tensor.toArray)
            let sepPng = Path.Combine(opts.Out, "hbnn-separate.png")
            let hierPng = Path.Combine(opts.Out, "hbnn-hierarchical.png")
            drawSurfaces sepPng "Separate" sepGrid data (perTaskTest (sepPred data.XTest kTest))
            drawSurfaces hierPng "Hierarchical" hierGrid data (perTaskTest (notebookPredict kTest (drawProbs hierarchicalNet 3 hierDraws data.XTest)))
            printfn "wrote %s and %s" (Path.GetFullPath sepPng) (Path.GetFullPath hierPng)
            // the posterior predictive as one ONNX model, checked against the in-process mean over draws
            let aligned = Ensemble.alignDraws 3 hierDraws
            let xAll = Tensor.reshape [| tasks * 50; 2 |] data.XTest
            let onnx = Export.toModel ExportOptions.Default (ensembleModel opts.Parameterization) aligned (Map [ "x", xAll ])
            let onnxPath = Path.Combine(opts.Out, "hbnn-hierarchical-ensemble.onnx")
            Export.toFile onnxPath onnx
            use predictor = OnnxPredictor.Load onnxPath
            let mutable shape = [||]
            let ort = predictor.Run("x", Tensor.toArrayF32 xAll, [| int64 (tasks * 50); 2L |], &shape)
            // in process, one draw at a time (no stacking): the mean over draws of σ(logits)
            let s = hierDraws |> Seq.head |> fun kv -> kv.Value.Shape.[0]
            let mutable acc = Tensor.zeros [| tasks; tasks * 50 |]
            for i in 0 .. s - 1 do
                let one = hierDraws |> Map.map (fun _ d -> Tensor.select 0 i d)
                acc <- acc + (Model.run (Handlers.substitute one (hierarchicalNet xAll)) |> Tensor.sigmoid |> Tensor.squeeze -1)
            let inProc = Tensor.permute [| 1; 0 |] (acc / float s) |> Tensor.toArray
            onnxMaxDiff <- Array.map2 (fun (a: float32) b -> abs (float a - b)) ort inProc |> Array.max
            printfn "ONNX ensemble (%d draws in one graph, output %A): max |ONNX Runtime − in-process| = %.2e over %d points × %d tasks; wrote %s"
                s shape onnxMaxDiff (tasks * 50) tasks (Path.GetFullPath onnxPath)
            if not (onnxMaxDiff < 1e-5) then failwithf "ONNX Runtime disagrees with the in-process predictive mean: %g" onnxMaxDiff
    let arr f = results |> Seq.map f |> Seq.toArray
    let line (name: string) (v: float[]) =
        printfn "%-24s mean %6.2f%%  range %6.2f%% – %6.2f%%" name (100.0 * Array.average v) (100.0 * Array.min v) (100.0 * Array.max v)
    printfn "over %d seeds (%s, %d warmup, %d draws):" opts.Seeds (results.[0].Hier.Sampler) opts.Warmup opts.Draws
    line "separate train" (arr _.SepTrain)
    line "separate test" (arr _.SepTest)
    line "hierarchical train" (arr _.HierTrain)
    line "hierarchical test" (arr _.HierTest)
    let ahead = results |> Seq.forall (fun r -> r.HierTest > r.SepTest)
    printfn "hierarchical ahead of separate on test for every seed: %b" ahead
    printfn "wall time: separate %.1f s (18 fits in parallel), hierarchical %.1f s (%.1f s CPU) (means per seed)" (Array.average (arr _.SepSeconds)) (Array.average (arr _.HierSeconds)) (Array.average (arr _.Hier.CpuSeconds))
    let mean f = Array.average (arr f)
    let json =
        [ "separate_train_acc", mean _.SepTrain
          "separate_train_acc_min", Array.min (arr _.SepTrain); "separate_train_acc_max", Array.max (arr _.SepTrain)
          "separate_test_acc", mean _.SepTest
          "separate_test_acc_min", Array.min (arr _.SepTest); "separate_test_acc_max", Array.max (arr _.SepTest)
          "hierarchical_train_acc", mean _.HierTrain
          "hierarchical_train_acc_min", Array.min (arr _.HierTrain); "hierarchical_train_acc_max", Array.max (arr _.HierTrain)
          "hierarchical_test_acc", mean _.HierTest
          "hierarchical_test_acc_min", Array.min (arr _.HierTest); "hierarchical_test_acc_max", Array.max (arr _.HierTest)
          "separate_seconds", mean _.SepSeconds; "hierarchical_seconds", mean _.HierSeconds
          "hierarchical_seconds_max", Array.max (arr _.HierSeconds)
          "hierarchical_cpu_seconds", mean _.Hier.CpuSeconds
          "us_per_gradient", usPerGradient
          "hierarchical_gradients", mean (fun r -> float r.Hier.Gradients)
          "hierarchical_gradient_seconds", mean _.Hier.GradientSeconds
          "hierarchical_sampling_leapfrogs", mean (fun r -> float r.Hier.Leapfrogs)
          "min_ess_bulk", Array.min (arr _.Hier.MinBulkEss)
          "min_ess_bulk_per_chain", Array.min (arr (fun r -> r.Hier.MinBulkEss / float r.Hier.Chains))
          "min_ess_bulk_mu_per_chain", Array.min (arr (fun r -> r.Hier.MinMeanEss / float r.Hier.Chains))
          "metric_rank", mean (fun r -> float r.Hier.MetricRank)
          "hierarchical_step_size", mean _.Hier.StepSize
          "onnx_max_abs_diff", onnxMaxDiff ]
        |> List.map (fun (k, v) -> sprintf "\"%s\":%s" k (if Double.IsNaN v then "null" else inv v))
    printfn "{\"example\":\"HierarchicalBnn\",\"metric\":\"%s\",\"chains\":%d,\"seeds\":%d,\"sampler\":\"%s\",\"hierarchical_ahead_every_seed\":%b,%s}" (match opts.Metric with MetricAdaptation.FisherLowRank _ -> "fisher-lowrank" | MetricAdaptation.FisherDiagonal -> "fisher-diagonal" | MetricAdaptation.Dense -> "dense" | MetricAdaptation.Stan -> "stan")
        opts.Chains opts.Seeds results.[0].Hier.Sampler ahead (String.Join(",", json))
    0
