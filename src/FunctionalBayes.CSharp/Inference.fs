namespace rec FunctionalBayes.Fluent

open System
open System.Collections
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Threading
open System.Threading.Tasks
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.Tensors

/// The runs' shared pieces: one snapshot of the data, one progress rule, one run context, one folder rule.
module internal Runs =
    /// The data as the core reads them (copied now: later changes to the data set are not seen).
    let snapshot (data: DataSet) : Map<string, Tensor> = (Arg.get "data" data).ToMap()

    /// A progress interval of at least 1, or ArgumentOutOfRangeException naming the setting.
    let progressEvery (owner: string) (n: int) =
        if n < 1 then raise (ArgumentOutOfRangeException("ProgressEvery", n, $"{owner}: ProgressEvery must be at least 1, got {n}."))
        n

    /// The core's run context of one call: cancellation, progress and messages.
    let context (ct: CancellationToken) (onProgress: (RunProgress -> unit) option) (every: int) (log: string -> unit) =
        { RunContext.Default with Cancellation = ct; OnProgress = onProgress; ProgressEvery = every; Log = log }

    /// A progress callback that reports to an IProgress (None for null).
    let report (progress: IProgress<'P>) (make: RunProgress -> 'P) : (RunProgress -> unit) option =
        if isNull progress then None else Some(fun p -> progress.Report(make p))

    /// CPU-bound work on the thread pool, cancelled with the token.
    let onPool (ct: CancellationToken) (f: unit -> 'T) : Task<'T> = Task.Run<'T>(Func<'T>(f), ct)

    /// Creates the folder of a file about to be written (as SaveReport does), so that writing into a new
    /// folder is not a DirectoryNotFoundException.
    let createFolderOf (path: string) =
        let folder = Path.GetDirectoryName(Path.GetFullPath path)
        if not (String.IsNullOrEmpty folder) then Directory.CreateDirectory folder |> ignore

    // the core's messages name its own settings and fields; a C# user knows the facade's
    let inFacadeTerms (message: string) =
        message
            .Replace("(LastFiniteState)", "(LastFiniteParameters)", StringComparison.Ordinal)
            .Replace("gradient clipping (ClipNorm)", "gradient clipping (WithGradientClipping)", StringComparison.Ordinal)

// ---- sampler warnings ---------------------------------------------------------------------------

/// <summary>What a sampler warning is about (Stan's diagnostics after sampling).</summary>
type SamplerWarningKind =
    /// <summary>Divergent transitions after warmup.</summary>
    | Divergences = 0
    /// <summary>Transitions that hit the maximum tree depth.</summary>
    | TreeDepth = 1
    /// <summary>Chains whose energy Bayesian fraction of missing information (E-BFMI) is below 0.3.</summary>
    | LowEbfmi = 2
    /// <summary>Scalars whose R-hat is above 1.01: the chains have not mixed.</summary>
    | HighRHat = 3
    /// <summary>Scalars whose bulk effective sample size is below 100 per chain.</summary>
    | LowBulkEss = 4
    /// <summary>Scalars whose tail effective sample size is below 100 per chain.</summary>
    | LowTailEss = 5

/// <summary>A Stan-style warning after sampling: its kind and Stan's text (which <see cref="ToString"/> returns).</summary>
[<Sealed; AllowNullLiteral>]
type SamplerWarning private (kind: SamplerWarningKind, text: string) =
    /// <summary>What the warning is about.</summary>
    member _.Kind = kind
    /// <summary>Stan's wording of the warning, naming the scalars or chains concerned.</summary>
    member _.Text = text

    /// <summary>The warning's text.</summary>
    override _.ToString() = text

    // value equality, as the C# record had: the same kind and text
    /// <inheritdoc />
    override this.Equals(o: obj) =
        match o with
        | :? SamplerWarning as w -> (this :> IEquatable<SamplerWarning>).Equals w
        | _ -> false

    /// <inheritdoc />
    override _.GetHashCode() = HashCode.Combine(kind, text)

    interface IEquatable<SamplerWarning> with
        member _.Equals(w: SamplerWarning) = not (isNull w) && w.Kind = kind && w.Text = text

    /// <summary>True when both are null, or have the same kind and text.</summary>
    /// <param name="left">A warning.</param>
    /// <param name="right">A warning.</param>
    static member op_Equality(left: SamplerWarning, right: SamplerWarning) =
        if isNull left then isNull right else left.Equals(right :> obj)

    /// <summary>The negation of <c>==</c>.</summary>
    /// <param name="left">A warning.</param>
    /// <param name="right">A warning.</param>
    static member op_Inequality(left: SamplerWarning, right: SamplerWarning) = not (SamplerWarning.op_Equality(left, right))

    static member internal Of(w: DiagnosticWarning) =
        let kind =
            match w with
            | DiagnosticWarning.Divergences _ -> SamplerWarningKind.Divergences
            | DiagnosticWarning.TreeDepth _ -> SamplerWarningKind.TreeDepth
            | DiagnosticWarning.LowEbfmi _ -> SamplerWarningKind.LowEbfmi
            | DiagnosticWarning.HighRHat _ -> SamplerWarningKind.HighRHat
            | DiagnosticWarning.LowEssBulk _ -> SamplerWarningKind.LowBulkEss
            | DiagnosticWarning.LowEssTail _ -> SamplerWarningKind.LowTailEss
        SamplerWarning(kind, w.Text)

// ---- NUTS -----------------------------------------------------------------------------------------

/// <summary>The phase of an MCMC iteration.</summary>
type SamplingPhase =
    /// <summary>Adaptation: not kept.</summary>
    | Warmup = 0
    /// <summary>Sampling: kept (after thinning).</summary>
    | Sampling = 1

/// <summary>How NUTS's warmup estimates the metric (the mass matrix).</summary>
type NutsMetric =
    /// <summary>Stan's: a diagonal metric from the windowed variance of warmup draws (the default).</summary>
    | Stan = 0
    /// <summary>Stan's windows with a dense metric from the draws' covariance.</summary>
    | Dense = 1
    /// <summary>nutpie's: a diagonal metric from the draws and their gradients (minimises the Fisher divergence).</summary>
    | FisherDiagonal = 2
    /// <summary>nutpie's: the Fisher diagonal plus a low-rank correction for correlated directions.</summary>
    | FisherLowRank = 3

/// <summary>Progress of one chain of a <see cref="NutsSampler"/> run.</summary>
[<Sealed; AllowNullLiteral>]
type SamplingProgress internal (p: RunProgress) =
    /// <summary>The chain (0-based).</summary>
    member _.Chain = p.Chain
    /// <summary>Iterations done in this chain, warmup included.</summary>
    member _.Iteration = p.Step
    /// <summary>The chain's iterations in all (warmup + samples × thin).</summary>
    member _.TotalIterations = p.TotalSteps
    /// <summary>Warmup or sampling.</summary>
    member _.Phase = if p.Phase.IsWarmup then SamplingPhase.Warmup else SamplingPhase.Sampling
    /// <summary>The current step size.</summary>
    member _.StepSize = p.StepSize
    /// <summary>Divergent transitions of this chain so far, warmup included (warmup divergences are expected while the step
    /// size adapts; <see cref="FittedModel.Divergences"/> counts those after warmup only).</summary>
    member _.Divergences = p.Divergences
    /// <summary>Time since the chain started.</summary>
    member _.Elapsed = p.Elapsed
    /// <summary>Estimated time to the chain's end.</summary>
    member _.Eta = p.Eta

    /// <inheritdoc />
    override this.ToString() =
        $"""chain {p.Chain}: {p.Step}/{p.TotalSteps} ({this.Phase}), step size {p.StepSize.ToString("G3")}, {p.Divergences} divergences"""

/// <summary>
/// Samples a model's posterior given data with NUTS and Stan's windowed adaptation, configured fluently. Each
/// <c>With…</c> method returns a new sampler; <see cref="Sample"/> or <see cref="SampleAsync"/> runs it.
/// <code>
/// FittedModel posterior = new NutsSampler(Model, data)
///     .WithChains(4)
///     .WithWarmup(1000)
///     .WithSamples(1000)
///     .WithTargetAcceptance(0.9)
///     .WithSeed(1)
///     .Sample(progress, cancellationToken);
/// Console.WriteLine(posterior.Summary()[0].RHat[0]);
/// </code>
/// The defaults are the F# core's <c>McmcOptions.Default</c> (Stan's): 4 chains of 1000 warmup and 1000 kept
/// iterations run in parallel, target acceptance 0.8, maximum tree depth 10, a diagonal metric, Stan's initial
/// step-size search, and starts uniform in (−2, 2) on unconstrained space. Chain k's draws depend only on the seed
/// and k, so parallel and serial runs give the same numbers. Every setting is checked by the core's
/// <c>Mcmc.validate</c> when it is made (an <see cref="ArgumentOutOfRangeException"/> naming it).
/// </summary>
[<Sealed; AllowNullLiteral>]
type NutsSampler private (model: Map<string, Tensor> -> Model<obj>, data: Map<string, Tensor>, o: McmcOptions, progressEvery: int, log: Action<string>) =
    // a library writes nothing to the console unless asked (WithLog)
    let write: string -> unit = if isNull log then ignore else log.Invoke

    /// <summary>A sampler for a model function of the data, at Stan's defaults.</summary>
    /// <param name="model">Builds the model from the data; rows are on the first axis.</param>
    /// <param name="data">The data (copied now: later changes to it are not seen); may be empty for a model without data.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    new(model: Func<DataSet, BayesModel<NdArray>>, data: DataSet) =
        NutsSampler(Convert.ModelFunction(model, "model"), Runs.snapshot data, McmcOptions.Default, 100, null)

    /// <summary>A sampler for a model function whose result is of any type (for example from a LINQ query).</summary>
    /// <typeparam name="T">The model's result type.</typeparam>
    /// <param name="model">Builds the model from the data.</param>
    /// <param name="data">The data (copied now).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    static member Create<'T>(model: Func<DataSet, BayesModel<'T>>, data: DataSet) =
        NutsSampler(Convert.ModelFunction(model, "model"), Runs.snapshot data, McmcOptions.Default, 100, null)

    // the cluster satellite registers a model with this sampler's settings (the core's record, not a copy)
    member internal _.Options = o

    // every setting is the core's record field, copied with `with` and checked by the core's rules
    member private _.With(options: McmcOptions) =
        Mcmc.validate options
        NutsSampler(model, data, options, progressEvery, log)

    /// <summary>A sampler with another number of chains (default 4).</summary>
    /// <param name="chains">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    member this.WithChains(chains: int) = this.With { o with Chains = chains }
    /// <summary>A sampler with another number of warmup (adaptation) iterations per chain (default 1000; not kept).</summary>
    /// <param name="warmup">Non-negative; below 20 the metric is not adapted (Stan's rule).</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is negative.</exception>
    member this.WithWarmup(warmup: int) = this.With { o with Warmup = warmup }
    /// <summary>A sampler with another number of kept draws per chain (default 1000).</summary>
    /// <param name="samples">At least 1.</param>
    /// <param name="thin">Keep every <paramref name="thin"/>-th iteration (samples × thin iterations are run).</param>
    /// <exception cref="ArgumentOutOfRangeException">A number is less than 1.</exception>
    member this.WithSamples(samples: int, [<Optional; DefaultParameterValue(1)>] thin: int) = this.With { o with Samples = samples; Thin = thin }
    /// <summary>A sampler with another seed (starting points and every transition derive from it).</summary>
    /// <param name="seed">The seed.</param>
    member this.WithSeed(seed: uint64) = this.With { o with McmcOptions.Seed = seed }
    /// <summary>A sampler with another target acceptance statistic for the step-size adaptation (Stan's adapt_delta,
    /// default 0.8; raise it to 0.9–0.99 when there are divergences).</summary>
    /// <param name="targetAccept">In (0, 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside (0, 1).</exception>
    member this.WithTargetAcceptance(targetAccept: float) = this.With { o with TargetAccept = targetAccept }
    /// <summary>A sampler with another maximum tree depth (default 10: at most 1023 leapfrog steps per draw).</summary>
    /// <param name="depth">In 1..30.</param>
    /// <exception cref="ArgumentOutOfRangeException">The depth is outside 1..30.</exception>
    member this.WithMaxTreeDepth(depth: int) = this.With { o with MaxTreeDepth = depth }
    /// <summary>A sampler that adapts a dense metric (the full covariance; default: diagonal).</summary>
    /// <param name="dense">True for dense, false for diagonal.</param>
    member this.WithDenseMetric([<Optional; DefaultParameterValue(true)>] dense: bool) =
        this.With { o with Adaptation = (if dense then MetricAdaptation.Dense else MetricAdaptation.Stan) }
    /// <summary>A sampler whose warmup estimates the metric the given way (default <see cref="NutsMetric.Stan"/>).</summary>
    /// <param name="metric">Stan's diagonal, dense, or nutpie's Fisher diagonal or low rank (with nutpie's defaults).</param>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a <see cref="NutsMetric"/>.</exception>
    member this.WithMetric(metric: NutsMetric) =
        let adaptation =
            match metric with
            | NutsMetric.Stan -> MetricAdaptation.Stan
            | NutsMetric.Dense -> MetricAdaptation.Dense
            | NutsMetric.FisherDiagonal -> MetricAdaptation.FisherDiagonal
            | NutsMetric.FisherLowRank -> MetricAdaptation.FisherLowRank LowRankSettings.Default
            | other -> raise (ArgumentOutOfRangeException("metric", other, "NutsSampler: unknown metric; use a NutsMetric value."))
        this.With { o with Adaptation = adaptation }
    /// <summary>A sampler that starts its step size at <paramref name="stepSize"/>, optionally without Stan's initial
    /// step-size search (BlackJAX starts from 1.0 without it).</summary>
    /// <param name="stepSize">Finite and positive.</param>
    /// <param name="search">Run Stan's step-size heuristic from it (default true).</param>
    /// <exception cref="ArgumentOutOfRangeException">The step size is not finite and positive.</exception>
    member this.WithInitialStepSize(stepSize: float, [<Optional; DefaultParameterValue(true)>] search: bool) =
        this.With { o with InitialStepSize = stepSize; FindInitialStepSize = search }
    /// <summary>A sampler whose chains start uniformly in (−radius, radius) on unconstrained space (default 2).</summary>
    /// <param name="radius">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The radius is not positive.</exception>
    member this.WithInitRadius(radius: float) = this.With { o with McmcOptions.Init = InitStrategy.InitUniform radius }
    /// <summary>A sampler that runs its chains in parallel (default) or one after another; the draws are the same.</summary>
    /// <param name="parallel">True to use the thread pool.</param>
    member this.WithParallelChains([<Optional; DefaultParameterValue(true)>] ``parallel``: bool) = this.With { o with Parallel = ``parallel`` }
    /// <summary>A sampler that computes gradients on the autodiff tape instead of the compiled program (the default
    /// compiles the potential when the model's graph is static); both give the same numbers.</summary>
    /// <param name="tape">True for the tape, false for the default.</param>
    member this.WithTapeGradients([<Optional; DefaultParameterValue(true)>] tape: bool) =
        this.With { o with Gradient = (if tape then McmcGradient.Tape else McmcOptions.Default.Gradient) }
    /// <summary>A sampler that reports progress every <paramref name="iterations"/> iterations per chain (default 100).</summary>
    /// <param name="iterations">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    member _.WithProgressEvery(iterations: int) = NutsSampler(model, data, o, Runs.progressEvery "NutsSampler" iterations, log)
    /// <summary>A sampler that writes its messages (the gradient cost estimate, Stan's warnings) to <paramref name="log"/>
    /// (default: nothing is written; the warnings are also in <see cref="FittedModel.Warnings"/>).</summary>
    /// <param name="log">Receives each message, for example <c>Console.WriteLine</c>; null for none.</param>
    member _.WithLog(log: Action<string>) = NutsSampler(model, data, o, progressEvery, log)

    /// <summary>Runs the sampler (chains in parallel unless <see cref="WithParallelChains"/> says otherwise).</summary>
    /// <param name="progress">Receives per-chain reports every <see cref="WithProgressEvery"/> iterations, from the
    /// chains' threads; null for none.</param>
    /// <param name="cancellationToken">Stops every chain within one iteration.</param>
    /// <returns>The sampled posterior: draws, sampler statistics, <see cref="FittedModel.Summary"/> with R-hat and ESS,
    /// and <see cref="FittedModel.Warnings"/>.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled (nothing half-written is returned).</exception>
    /// <exception cref="ArgumentException">The model rejects the data, a data array holds a NaN or infinity, an
    /// observation is outside its site's support, a latent site is discrete, or no finite starting point was found
    /// (the message names the site).</exception>
    member _.Sample([<Optional>] progress: IProgress<SamplingProgress>, [<Optional>] cancellationToken: CancellationToken) : FittedModel =
        cancellationToken.ThrowIfCancellationRequested()
        let context = Runs.context cancellationToken (Runs.report progress SamplingProgress) progressEvery write
        let sw = Stopwatch.StartNew()
        let posterior = Fit.mcmcIn context o model data
        FittedModel(posterior, sw.Elapsed)

    /// <summary>Runs <see cref="Sample"/> on the thread pool: CPU-bound work (the chains run in parallel on pool threads),
    /// offered so that a UI or a server thread is not blocked; it does no I/O to await.</summary>
    /// <param name="progress">Receives per-chain reports; null for none.</param>
    /// <param name="cancellationToken">Stops every chain within one iteration; the task is then cancelled.</param>
    /// <returns>A task of the sampled posterior.</returns>
    member this.SampleAsync([<Optional>] progress: IProgress<SamplingProgress>, [<Optional>] cancellationToken: CancellationToken) =
        Runs.onPool cancellationToken (fun () -> this.Sample(progress, cancellationToken))

    /// <summary>A sampled posterior saved by <see cref="FittedModel.Save"/>, for this sampler's model and data.</summary>
    /// <param name="path">The posterior file.</param>
    /// <returns>The posterior with its draws and sampler statistics.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a posterior of this model.</exception>
    member _.Load(path: string) = FittedModel(Fit.load (Arg.get "path" path) model data None, TimeSpan.Zero)

// ---- SVI ------------------------------------------------------------------------------------------

/// <summary>BLayers' learning-rate schedules for <see cref="SviFitter.WithLearningRate"/>, sized to the whole run.</summary>
type LearningRateSchedule =
    /// <summary>Cosine decay from the learning rate to zero over the run (BLayers' default).</summary>
    | Cosine = 0
    /// <summary>One cycle: warm up to the learning rate over 10 % of the run, then cosine down (div factor 25).</summary>
    | WarmupCosine = 1
    /// <summary>The same learning rate at every step.</summary>
    | Constant = 2

/// <summary>The variational families a fit can use (NumPyro's autoguides).</summary>
type GuideKind =
    /// <summary>Per site: a Normal on unconstrained space, mapped onto the site's support.</summary>
    | AutoNormal = 0
    /// <summary>All latents flattened into one vector with a diagonal Normal (BLayers' default).</summary>
    | AutoDiagonalNormal = 1
    /// <summary>All latents flattened into one vector with a full-covariance Normal.</summary>
    | AutoMultivariateNormal = 2
    /// <summary>A low-rank-plus-diagonal Normal (rank √D unless given).</summary>
    | AutoLowRankMultivariateNormal = 3
    /// <summary>A point estimate per site (MAP).</summary>
    | AutoDelta = 4
    /// <summary>MAP on unconstrained space, then a Normal from the inverse Hessian (Laplace approximation).</summary>
    | AutoLaplaceApproximation = 5
    // the names without NumPyro's "Auto" prefix, which users guess first: the same values
    /// <summary>The same as <see cref="AutoNormal"/>.</summary>
    | Normal = 0
    /// <summary>The same as <see cref="AutoDiagonalNormal"/>.</summary>
    | DiagonalNormal = 1
    /// <summary>The same as <see cref="AutoMultivariateNormal"/>.</summary>
    | MultivariateNormal = 2
    /// <summary>The same as <see cref="AutoLowRankMultivariateNormal"/>.</summary>
    | LowRankMultivariateNormal = 3
    /// <summary>The same as <see cref="AutoDelta"/>.</summary>
    | Delta = 4
    /// <summary>The same as <see cref="AutoLaplaceApproximation"/>.</summary>
    | LaplaceApproximation = 5

/// <summary>A learning rate as a function of the step, for the optimizers of <see cref="SviOptimizer"/>.</summary>
[<Sealed; AllowNullLiteral>]
type LearningRate private (value: Schedule) =
    static let positive (name: string) (v: float) =
        if v > 0.0 && not (Double.IsInfinity v) then v
        else raise (ArgumentOutOfRangeException(name, v, $"LearningRate: {name} must be positive and finite."))
    static let positiveSteps (name: string) (n: int) = if n > 0 then n else raise (ArgumentOutOfRangeException name)

    member internal _.Value = value

    /// <summary>The same rate at every step.</summary>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentOutOfRangeException">The rate is not positive and finite.</exception>
    static member Constant(rate: float) = LearningRate(Schedule.Constant(positive "rate" rate))

    /// <summary>A constant rate from a number.</summary>
    /// <param name="rate">The rate (positive).</param>
    static member op_Implicit(rate: float) : LearningRate = LearningRate.Constant rate

    /// <summary>rate · (α + (1 − α)·½(1 + cos(π·min(t, T)/T))): optax's cosine decay.</summary>
    /// <param name="rate">The initial rate.</param>
    /// <param name="steps">T, the decay's length in steps.</param>
    /// <param name="alpha">The final fraction of the rate.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    static member CosineDecay(rate: float, steps: int, [<Optional; DefaultParameterValue(0.0)>] alpha: float) =
        LearningRate(Schedule.CosineDecay(positive "rate" rate, positiveSteps "steps" steps, alpha))

    /// <summary>
    /// One cycle (optax's cosine_onecycle_schedule): from peak/divFactor up to peak over pctStart·steps by a
    /// cosine, then down to peak/(divFactor·finalDivFactor).
    /// </summary>
    /// <param name="peak">The peak rate.</param>
    /// <param name="steps">The run's length in steps.</param>
    /// <param name="pctStart">The warm-up's share of the run.</param>
    /// <param name="divFactor">peak / initial rate.</param>
    /// <param name="finalDivFactor">initial rate / final rate.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    static member WarmupCosine(peak: float, steps: int, [<Optional; DefaultParameterValue(0.1)>] pctStart: float,
                               [<Optional; DefaultParameterValue(25.0)>] divFactor: float, [<Optional; DefaultParameterValue(1e4)>] finalDivFactor: float) =
        LearningRate(Schedule.WarmupCosine(positive "peak" peak, positiveSteps "steps" steps, pctStart, divFactor, finalDivFactor))

    /// <summary>rate · decay^(t / transitionSteps).</summary>
    /// <param name="rate">The initial rate.</param>
    /// <param name="decay">The factor per transition.</param>
    /// <param name="transitionSteps">Steps per transition.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    static member ExponentialDecay(rate: float, decay: float, transitionSteps: int) =
        LearningRate(Schedule.ExponentialDecay(positive "rate" rate, positive "decay" decay, positiveSteps "transitionSteps" transitionSteps))

    /// <summary>The rate at a step (0-based).</summary>
    /// <param name="step">The step.</param>
    member _.At(step: int) : float = value.At step

/// <summary>An optimizer for SVI: how parameters move given their gradients.</summary>
[<Sealed; AllowNullLiteral>]
type SviOptimizer private (value: Optimizer) =
    static let r (lr: LearningRate) = (Arg.get "learningRate" lr).Value

    member internal _.Value = value

    /// <summary>Adam (Kingma and Ba).</summary>
    /// <param name="learningRate">The learning rate (a number or a <see cref="LearningRate"/> schedule).</param>
    /// <param name="beta1">The first moment's decay.</param>
    /// <param name="beta2">The second moment's decay.</param>
    /// <param name="epsilon">Added to the denominator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    static member Adam(learningRate: LearningRate, [<Optional; DefaultParameterValue(0.9)>] beta1: float,
                       [<Optional; DefaultParameterValue(0.999)>] beta2: float, [<Optional; DefaultParameterValue(1e-8)>] epsilon: float) =
        SviOptimizer(Optimizer.Adam(r learningRate, beta1, beta2, epsilon))

    /// <summary>Adam with decoupled weight decay (Loshchilov and Hutter).</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="weightDecay">The decay per step, relative to the rate.</param>
    /// <param name="beta1">The first moment's decay.</param>
    /// <param name="beta2">The second moment's decay.</param>
    /// <param name="epsilon">Added to the denominator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    static member AdamW(learningRate: LearningRate, [<Optional; DefaultParameterValue(1e-4)>] weightDecay: float,
                        [<Optional; DefaultParameterValue(0.9)>] beta1: float, [<Optional; DefaultParameterValue(0.999)>] beta2: float,
                        [<Optional; DefaultParameterValue(1e-8)>] epsilon: float) =
        SviOptimizer(Optimizer.AdamW(r learningRate, beta1, beta2, epsilon, weightDecay))

    /// <summary>Pyro's ClippedAdam: gradients clipped element-wise, the rate decayed by <paramref name="rateDecay"/> per step.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="clipNorm">The element-wise clip.</param>
    /// <param name="rateDecay">The rate's factor per step.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    static member ClippedAdam(learningRate: LearningRate, [<Optional; DefaultParameterValue(10.0)>] clipNorm: float,
                              [<Optional; DefaultParameterValue(1.0)>] rateDecay: float) =
        SviOptimizer(Optimizer.ClippedAdam(r learningRate, 0.9, 0.999, 1e-8, clipNorm, rateDecay))

    /// <summary>Stochastic gradient descent with heavy-ball momentum.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="momentum">The momentum (0 for plain SGD).</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    static member Sgd(learningRate: LearningRate, [<Optional; DefaultParameterValue(0.0)>] momentum: float) =
        SviOptimizer(Optimizer.Sgd(r learningRate, momentum))

    /// <summary>Adagrad.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="epsilon">Added to the denominator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    static member Adagrad(learningRate: LearningRate, [<Optional; DefaultParameterValue(1e-8)>] epsilon: float) =
        SviOptimizer(Optimizer.Adagrad(r learningRate, epsilon))

    /// <summary>RMSProp: v = ρ·v + (1−ρ)·g², step = rate·g/(√v + ε).</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="decay">ρ.</param>
    /// <param name="epsilon">ε.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    static member RmsProp(learningRate: LearningRate, [<Optional; DefaultParameterValue(0.9)>] decay: float,
                          [<Optional; DefaultParameterValue(1e-8)>] epsilon: float) =
        SviOptimizer(Optimizer.RmsProp(r learningRate, decay, epsilon))

    /// <inheritdoc />
    override _.ToString() = value.ToString()

/// <summary>The progress of a fit, reported through <see cref="IProgress{T}"/>.</summary>
[<Sealed; AllowNullLiteral>]
type FitProgress internal (step: int, totalSteps: int, loss: float, elapsed: TimeSpan, eta: TimeSpan) =
    /// <summary>Steps done (1-based).</summary>
    member _.Step = step
    /// <summary>Steps in the whole run.</summary>
    member _.TotalSteps = totalSteps
    /// <summary>The loss (negative ELBO) of the last step.</summary>
    member _.Loss = loss
    /// <summary>Time since the run started.</summary>
    member _.Elapsed = elapsed
    /// <summary>The estimated time left.</summary>
    member _.Eta = eta

    /// <inheritdoc />
    override _.ToString() =
        $"""step {step}/{totalSteps}, loss {loss.ToString("G6")}, elapsed {elapsed.TotalSeconds.ToString("F1")}s, eta {eta.TotalSeconds.ToString("F1")}s"""

/// <summary>Thrown when a fit's loss or a gradient stops being finite: by <see cref="SviFitter"/> and by
/// <see cref="AevbTrainer"/> (whose parameters are named "encoder.{name}" and "decoder.{name}").</summary>
[<Sealed; AllowNullLiteral>]
type FitDivergedException internal (message: string, inner: exn, lastFinite: IReadOnlyDictionary<string, NdArray>) =
    inherit Exception(Runs.inFacadeTerms message, inner)

    /// <summary>The parameters after the last step whose loss was finite.</summary>
    member _.LastFiniteParameters = lastFinite

/// <summary>
/// Fits a model to data by stochastic variational inference, configured fluently. Each <c>With…</c>/<c>For…</c>
/// method returns a new fitter; <see cref="Fit"/> or <see cref="FitAsync"/> runs it.
/// <code>
/// FittedModel fitted = new SviFitter(Model, data)
///     .WithGuide(GuideKind.AutoDiagonalNormal)
///     .WithLearningRate(0.05, LearningRateSchedule.WarmupCosine)
///     .ForEpochs(300, batchSize: 1000)
///     .WithSeed(0)
///     .Fit(progress, cancellationToken);
/// </code>
/// The defaults are the F# core's <c>FitOptions.Default</c> (BLayers' settings): AutoDiagonalNormal, Adam at
/// 0.01 with cosine decay, one particle, seed 0, and <c>SviRunOptions.DefaultSteps</c> steps (1000) when neither
/// <see cref="ForSteps"/> nor <see cref="ForEpochs"/> is called. Every setting is checked by the core's
/// <c>Fit.validate</c> when it is made (an <see cref="ArgumentOutOfRangeException"/> naming it).
/// </summary>
/// <remarks>
/// Cancellation is checked after every SVI step (the core's progress callback runs at every step; reports
/// are forwarded to <see cref="IProgress{T}"/> every <see cref="WithProgressEvery"/> steps and at the last
/// one), so a cancelled token stops a fit within one step with <see cref="OperationCanceledException"/>.
/// The run itself is the core's <c>Svi.run</c> with the same keys as the F# <c>Fit.vi</c>, so a C# fit and
/// an F# fit with the same settings and seed give the same numbers.
/// </remarks>
[<Sealed; AllowNullLiteral>]
type SviFitter private (model: Map<string, Tensor> -> Model<obj>, data: Map<string, Tensor>, rows: int, o: FitOptions,
                        source: BatchSource option, progressEvery: int, guide: Guide option) =

    // data read from a table keep their vocabularies with the fit: the in-memory rows as a source that carries them
    static let withVocabularies (data: DataSet) =
        if data.Vocabularies.Count = 0 then None
        else
            let levels = data.Vocabularies |> Seq.map (fun kv -> kv.Key, Seq.toArray kv.Value) |> Map.ofSeq
            Some(BatchSource.withLevels levels (BatchSource.ofData (Runs.snapshot data)))

    static let nonEmpty (data: DataSet) =
        let snapshot = Runs.snapshot data
        if data.Count = 0 then invalidArg "data" "SviFitter: the data set is empty; add at least one array with a row axis."
        snapshot

    static let coreSchedule (schedule: LearningRateSchedule) =
        match schedule with
        | LearningRateSchedule.Cosine -> LrSchedule.Cosine
        | LearningRateSchedule.WarmupCosine -> LrSchedule.WarmupCosine
        | LearningRateSchedule.Constant -> LrSchedule.Constant
        | other -> raise (ArgumentOutOfRangeException("schedule", other, "Unknown learning-rate schedule."))

    /// <summary>A fitter for a model function of the data, at BLayers' defaults.</summary>
    /// <param name="model">Builds the model from (a batch of) the data; rows are on the first axis.</param>
    /// <param name="data">The training data (copied now: later changes to it are not seen).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data set is empty.</exception>
    new(model: Func<DataSet, BayesModel<NdArray>>, data: DataSet) =
        SviFitter(Convert.ModelFunction(model, "model"), nonEmpty data, data.Rows, FitOptions.Default, withVocabularies data, 100, None)

    /// <summary>A fitter for a table streamed in minibatches (larger than memory): set a batch size with
    /// <see cref="ForEpochs"/>, <see cref="ForSteps"/> or <see cref="WithBatchSize"/>. The model sees batches
    /// as data sets; the ELBO scales each by the table's rows over the batch's.</summary>
    /// <param name="model">Builds the model from a batch.</param>
    /// <param name="data">The streamed table (<see cref="DataSet.StreamParquet"/> and others).</param>
    /// <returns>The fitter, at BLayers' defaults.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    static member FromStream(model: Func<DataSet, BayesModel<NdArray>>, data: StreamedDataSet) =
        Arg.notNull "data" data
        SviFitter(Convert.ModelFunction(model, "model"), data.Table.Batches.Sample, data.Rows, FitOptions.Default, Some data.Table.Batches, 100, None)

    /// <summary>A fitter for a model function whose result is of any type (for example from a LINQ query).</summary>
    /// <typeparam name="T">The model's result type.</typeparam>
    /// <param name="model">Builds the model from (a batch of) the data.</param>
    /// <param name="data">The training data (copied now).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data set is empty.</exception>
    static member Create<'T>(model: Func<DataSet, BayesModel<'T>>, data: DataSet) =
        SviFitter(Convert.ModelFunction(model, "model"), nonEmpty data, data.Rows, FitOptions.Default, None, 100, None)

    // the cluster satellite registers a model with this fitter's settings and guide (the core's values, not copies)
    member internal _.Options = o
    member internal _.UserGuide: Guide = match guide with Some g -> g | None -> Unchecked.defaultof<Guide>

    // every setting is the core's record field, copied with `with` and checked by the core's rules
    member private _.With(options: FitOptions, userGuide: Guide option) =
        Fit.validate options
        SviFitter(model, data, rows, options, source, progressEvery, userGuide)

    member private this.With(options: FitOptions) = this.With(options, guide)

    /// <summary>A fitter with another autoguide (it replaces a guide of your own set before).</summary>
    /// <param name="kind">The variational family.</param>
    /// <param name="rank">The rank of <see cref="GuideKind.AutoLowRankMultivariateNormal"/> (null for √D); must be null for other kinds.</param>
    /// <exception cref="ArgumentException">A rank is given for another kind, or is less than 1.</exception>
    member this.WithGuide(kind: GuideKind, [<Optional>] rank: Nullable<int>) =
        if not (Enum.IsDefined(typeof<GuideKind>, kind)) then raise (ArgumentOutOfRangeException("kind", kind, "Unknown guide kind."))
        if rank.HasValue && kind <> GuideKind.AutoLowRankMultivariateNormal then
            invalidArg "rank" $"SviFitter.WithGuide: a rank applies only to AutoLowRankMultivariateNormal, not {kind}."
        let core =
            match kind with
            | GuideKind.AutoNormal -> AutoGuideKind.AutoNormal
            | GuideKind.AutoDiagonalNormal -> AutoGuideKind.AutoDiagonalNormal
            | GuideKind.AutoMultivariateNormal -> AutoGuideKind.AutoMultivariateNormal
            | GuideKind.AutoLowRankMultivariateNormal -> AutoGuideKind.AutoLowRankMultivariateNormal(Arg.optv rank)
            | GuideKind.AutoDelta -> AutoGuideKind.AutoDelta
            | _ -> AutoGuideKind.AutoLaplaceApproximation
        this.With({ o with AutoGuide = core }, None)

    /// <summary>
    /// A fitter with a guide of your own: a model with <see cref="Bayes.Param"/> sites and a sample site for
    /// every latent site of the model, named alike.
    /// </summary>
    /// <typeparam name="T">The guide's result type (ignored).</typeparam>
    /// <param name="guide">The guide program.</param>
    /// <param name="name">A name for messages.</param>
    /// <exception cref="ArgumentNullException"><paramref name="guide"/> is null.</exception>
    member this.WithGuide<'T>(guide: BayesModel<'T>, [<Optional; DefaultParameterValue("user guide")>] name: string) =
        Arg.notNull "guide" guide
        Arg.notNull "name" name
        this.With(o, Some(FunctionalBayes.Guide.ofModel name (Model.map ignore guide.Value)))

    /// <summary>A fitter with another learning rate for Adam, and optionally another schedule.</summary>
    /// <param name="learningRate">The (peak) learning rate, positive.</param>
    /// <param name="schedule">The schedule; null keeps the current one (cosine decay by default).</param>
    /// <exception cref="ArgumentOutOfRangeException">The rate is not positive and finite.</exception>
    member this.WithLearningRate(learningRate: float, [<Optional>] schedule: Nullable<LearningRateSchedule>) =
        let o' = { o with LearningRate = learningRate }
        this.With(if schedule.HasValue then { o' with Schedule = coreSchedule schedule.Value } else o')

    /// <summary>A fitter with another learning-rate schedule for Adam.</summary>
    /// <param name="schedule">The schedule.</param>
    member this.WithSchedule(schedule: LearningRateSchedule) = this.With { o with Schedule = coreSchedule schedule }

    /// <summary>A fitter with an optimizer of your own (it overrides the learning rate and schedule).</summary>
    /// <param name="optimizer">The optimizer, for example <c>SviOptimizer.Adam(LearningRate.WarmupCosine(0.05, 3000))</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="optimizer"/> is null.</exception>
    member this.WithOptimizer(optimizer: SviOptimizer) = this.With { o with Optimizer = Some((Arg.get "optimizer" optimizer).Value) }

    /// <summary>A fitter that runs a number of steps (each on a batch when a batch size is set, else on all rows);
    /// it replaces a number of epochs set before.</summary>
    /// <param name="steps">At least 1.</param>
    /// <param name="batchSize">Rows per step, or null to keep the current setting (all rows by default).</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is less than 1.</exception>
    member this.ForSteps(steps: int, [<Optional>] batchSize: Nullable<int>) =
        let run = { o.Run with Steps = Some steps; Epochs = None }
        this.With { o with Run = (if batchSize.HasValue then { run with BatchSize = Some batchSize.Value } else run) }

    /// <summary>A fitter that runs a number of passes over the data in batches (shuffled every epoch); it replaces
    /// a number of steps set before.</summary>
    /// <param name="epochs">At least 1.</param>
    /// <param name="batchSize">Rows per step (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is less than 1.</exception>
    member this.ForEpochs(epochs: int, batchSize: int) =
        this.With { o with Run = { o.Run with Steps = None; Epochs = Some epochs; BatchSize = Some batchSize } }

    /// <summary>A fitter with a batch size (the minibatch ELBO is used when one is set).</summary>
    /// <param name="batchSize">Rows per step (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The batch size is less than 1.</exception>
    member this.WithBatchSize(batchSize: int) = this.With { o with Run = { o.Run with BatchSize = Some batchSize } }

    /// <summary>A fitter with another seed (guide initialization, ELBO draws and shuffling all derive from it).</summary>
    /// <param name="seed">The seed.</param>
    member this.WithSeed(seed: uint64) = this.With { o with FitOptions.Seed = seed }

    /// <summary>A fitter that averages the ELBO over several particles per step.</summary>
    /// <param name="particles">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    member this.WithParticles(particles: int) = this.With { o with Particles = particles }

    /// <summary>A fitter that clips gradients to a global norm before each update.</summary>
    /// <param name="maxNorm">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The norm is not positive.</exception>
    member this.WithGradientClipping(maxNorm: float) = this.With { o with ClipNorm = Some maxNorm }

    /// <summary>A fitter whose guide starts uniformly in (−radius, radius) on unconstrained space (default 2).</summary>
    /// <param name="radius">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The radius is not positive.</exception>
    member this.WithInitRadius(radius: float) = this.With { o with FitOptions.Init = InitStrategy.InitUniform radius }

    /// <summary>
    /// A fitter that stops when the loss plateaus: the median of the last <paramref name="window"/> losses improved
    /// on the window before by less than <paramref name="relativeTolerance"/>, <paramref name="patience"/> windows in a row.
    /// </summary>
    /// <param name="window">Steps per window (at least 1).</param>
    /// <param name="relativeTolerance">The relative improvement that counts (finite, non-negative).</param>
    /// <param name="patience">Windows without improvement before stopping (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is less than 1, or the tolerance is negative or not finite.</exception>
    member this.WithEarlyStopping([<Optional; DefaultParameterValue(100)>] window: int, [<Optional; DefaultParameterValue(1e-3)>] relativeTolerance: float,
                                  [<Optional; DefaultParameterValue(2)>] patience: int) =
        this.With { o with Run = { o.Run with EarlyStopping = Some { Window = window; RelTol = relativeTolerance; Patience = patience } } }

    /// <summary>A fitter that reports progress every <paramref name="steps"/> steps (default 100; the last step is always reported).</summary>
    /// <param name="steps">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    member _.WithProgressEvery(steps: int) = SviFitter(model, data, rows, o, source, Runs.progressEvery "SviFitter" steps, guide)

    /// <summary>The total number of steps the fit will run (before any early stop); without
    /// <see cref="ForSteps"/> or <see cref="ForEpochs"/>, the core's default (<c>SviRunOptions.DefaultSteps</c>).</summary>
    member _.TotalSteps: int = Fit.totalSteps o rows

    /// <summary>Runs the fit on this thread.</summary>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops the fit within one step.</param>
    /// <returns>The fitted model.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="FitDivergedException">The loss or a gradient stopped being finite.</exception>
    /// <exception cref="ArgumentException">The model rejects the data (for example mismatched shapes), or the
    /// data are bad: a NaN or infinity in a data array, or an observation outside its site's support (a count
    /// of −1, a label ≥ K); the message names the data key or site, the row (and column) and the value.</exception>
    member _.Fit([<Optional>] progress: IProgress<FitProgress>, [<Optional>] cancellationToken: CancellationToken) : FittedModel =
        cancellationToken.ThrowIfCancellationRequested()
        let onProgress = Runs.report progress (fun p -> FitProgress(p.Step, p.TotalSteps, p.Loss, p.Elapsed, p.Eta))
        // the core checks the token before every step
        let context = Runs.context cancellationToken onProgress progressEvery ignore
        let sw = Stopwatch.StartNew()
        let posterior, _ =
            try
                match guide, source with
                | None, None -> Fit.viRunIn context o model data
                | None, Some s -> Fit.viSourceRunIn context o model s
                | Some g, s -> Fit.viWithGuideIn context g o model (defaultArg s (BatchSource.ofData data))
            with :? SviDivergedException as e ->
                raise (FitDivergedException(e.Message, e, Convert.FromMap e.LastFiniteState.Params))
        FittedModel(posterior, sw.Elapsed)

    /// <summary>Runs <see cref="Fit"/> on the thread pool: CPU-bound work that occupies a pool thread, offered so that a UI
    /// or a server thread is not blocked; it does no I/O to await.</summary>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops the fit within one step; the task is then cancelled.</param>
    /// <returns>A task of the fitted model.</returns>
    member this.FitAsync([<Optional>] progress: IProgress<FitProgress>, [<Optional>] cancellationToken: CancellationToken) =
        Runs.onPool cancellationToken (fun () -> this.Fit(progress, cancellationToken))

    /// <summary>
    /// A fitted model from a posterior saved by <see cref="FittedModel.Save"/>, without fitting: the guide is
    /// rebuilt for this fitter's model and data (its autoguide kind must be the file's; a guide of your own is
    /// used as it is), then given the saved parameters.
    /// </summary>
    /// <param name="path">The posterior file.</param>
    /// <returns>The fitted model (with the saved loss history).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a posterior file, or its parameters do not match the guide.</exception>
    member _.Load(path: string) : FittedModel =
        Arg.notNull "path" path
        let core =
            match guide with
            | None -> Fit.load path model data (Some o)
            | Some g -> Fit.loadWithGuide g path model data
        FittedModel(core, TimeSpan.Zero)

// ---- the fitted model ------------------------------------------------------------------------------

/// <summary>Settings of an ONNX export (defaults: IR 8, opset 17, float32, 1000 posterior draws).</summary>
[<Sealed; AllowNullLiteral>]
type OnnxExportSettings() =
    /// <summary>Write float64 tensors instead of float32.</summary>
    member val Float64 = false with get, set
    /// <summary>The ONNX IR version.</summary>
    member val IrVersion = 8L with get, set
    /// <summary>The ai.onnx operator set version.</summary>
    member val Opset = 17L with get, set
    /// <summary>Guide draws averaged into the posterior means.</summary>
    member val PosteriorDraws = 1000 with get, set
    /// <summary>The seed of those draws.</summary>
    member val Seed = 3UL with get, set

    member internal this.ToExportOptions() = ExportOptions.Default.WithFormat(this.IrVersion, this.Opset, this.Float64)

/// <summary>Predictions for one site: mean and standard deviation over posterior draws, element-wise.</summary>
[<Sealed; AllowNullLiteral>]
type SitePrediction internal (name: string, p: Prediction) =
    /// <summary>The site's name.</summary>
    member _.Name = name
    /// <summary>The shape of one draw (for an observed site usually (n,)).</summary>
    member _.Shape: IReadOnlyList<int> = Arg.readOnly p.Mean.Shape
    /// <summary>The mean over draws, row-major.</summary>
    member _.Mean: IReadOnlyList<float> = Arg.readOnly (Tensor.toArray p.Mean)
    /// <summary>The standard deviation over draws, row-major.</summary>
    member _.Std: IReadOnlyList<float> = Arg.readOnly (Tensor.toArray p.Std)
    /// <summary>Every draw stacked on a first axis when asked for, else null.</summary>
    member _.Samples: NdArray = p.Samples |> Option.map NdArray.Wrap |> Option.toObj

    /// <inheritdoc />
    override _.ToString() = $"""{name} [{String.Join(", ", Array.map string p.Mean.Shape)}]"""

/// <summary>The posterior summary of one site, element by element (row-major): mean, sd, Monte Carlo standard errors,
/// quantiles, effective sample sizes and R-hat (Vehtari et al. 2021).</summary>
[<Sealed; AllowNullLiteral>]
type PosteriorSummary internal (s: SiteSummary) =
    let e = s.Elements
    let col (f: ScalarSummary -> float) : IReadOnlyList<float> = Array.AsReadOnly(Array.map f e) :> IReadOnlyList<float>
    let labels = e |> Array.map (fun x -> x.Name)
    let text = FunctionalBayes.Diagnostics.formatTable e

    /// <summary>The site's name.</summary>
    member _.Name = s.Name
    /// <summary>The site's shape.</summary>
    member _.Shape: IReadOnlyList<int> = Arg.readOnly s.Shape
    /// <summary>Posterior means.</summary>
    member _.Mean = col (fun x -> x.Mean)
    /// <summary>Posterior standard deviations.</summary>
    member _.Sd = col (fun x -> x.Sd)
    /// <summary>Monte Carlo standard errors of the means.</summary>
    member _.McseMean = col (fun x -> x.McseMean)
    /// <summary>Monte Carlo standard errors of the standard deviations.</summary>
    member _.McseSd = col (fun x -> x.McseSd)
    /// <summary>5 % quantiles.</summary>
    member _.Q5 = col (fun x -> x.Q5)
    /// <summary>Medians.</summary>
    member _.Q50 = col (fun x -> x.Q50)
    /// <summary>95 % quantiles.</summary>
    member _.Q95 = col (fun x -> x.Q95)
    /// <summary>Bulk effective sample sizes.</summary>
    member _.EssBulk = col (fun x -> x.EssBulk)
    /// <summary>Tail effective sample sizes.</summary>
    member _.EssTail = col (fun x -> x.EssTail)
    /// <summary>Rank-normalized split R-hat (NaN for a constant quantity).</summary>
    member _.RHat = col (fun x -> x.RHat)

    /// <summary>The label of element <paramref name="index"/> (row-major), as the F# summary and <see cref="FittedModel.Warnings"/>
    /// write it: the name alone for a scalar site, else one index per axis (<c>theta[0]</c>, <c>w[1,2]</c>).</summary>
    /// <param name="index">The flat index.</param>
    member _.Label(index: int) : string = labels[index]

    /// <summary>The site's rows of the summary table (see <see cref="PosteriorSummaryTable"/>).</summary>
    override _.ToString() = text

/// <summary>The posterior summary, site by site (a list of <see cref="PosteriorSummary"/>), printable: <c>ToString()</c>
/// is the F# core's table (<c>Diagnostics.formatTable</c>): one row per scalar with mean, sd, MCSE, 5/50/95 %
/// quantiles, bulk and tail ESS and R-hat.</summary>
[<Sealed; AllowNullLiteral>]
type PosteriorSummaryTable internal (sites: SiteSummary[]) =
    let summaries = sites |> Array.map PosteriorSummary
    let text = FunctionalBayes.Diagnostics.formatTable (sites |> Array.collect (fun s -> s.Elements))

    /// <summary>The site at <paramref name="index"/> (name order).</summary>
    /// <param name="index">The index.</param>
    member _.Item
        with get (index: int) : PosteriorSummary = summaries[index]

    /// <summary>The site named <paramref name="site"/>.</summary>
    /// <param name="site">The site's name, e.g. "AdaptiveLayer_x_beta".</param>
    /// <exception cref="KeyNotFoundException">No such site; the message lists the sites.</exception>
    member _.Item
        with get (site: string) : PosteriorSummary =
            match summaries |> Array.tryFind (fun s -> s.Name = site) with
            | Some s -> s
            | None ->
                let names = String.Join(", ", summaries |> Array.map (fun s -> s.Name))
                raise (KeyNotFoundException $"The summary has no site '{site}'; it has {names}.")

    /// <summary>The number of sites.</summary>
    member _.Count = summaries.Length

    /// <inheritdoc />
    member _.GetEnumerator() : IEnumerator<PosteriorSummary> = (summaries :> IEnumerable<PosteriorSummary>).GetEnumerator()

    /// <summary>Writes the table to <paramref name="writer"/> (the console when null).</summary>
    /// <param name="writer">Where to write.</param>
    member _.Print([<Optional>] writer: TextWriter) = (if isNull writer then Console.Out else writer).Write(text)

    /// <summary>The table, one row per scalar, as the F# core prints it.</summary>
    override _.ToString() = text

    interface IReadOnlyList<PosteriorSummary> with
        member this.Item with get (index: int) = this[index]

    interface IReadOnlyCollection<PosteriorSummary> with
        member this.Count = this.Count

    interface IEnumerable<PosteriorSummary> with
        member this.GetEnumerator() = this.GetEnumerator()

    interface IEnumerable with
        member this.GetEnumerator() = this.GetEnumerator() :> IEnumerator

/// <summary>
/// A fitted model: the model, its fitted guide and parameters, and the loss history. Predict, summarize,
/// draw from the posterior, and save; load any posterior with <see cref="Load(string, Func{DataSet, BayesModel{NdArray}}, DataSet)"/>.
/// </summary>
[<Sealed; AllowNullLiteral>]
type FittedModel internal (core: Posterior<obj>, fitTime: TimeSpan) =
    let guide =
        match core.Source with
        | PosteriorSource.Guide g -> Some g
        | PosteriorSource.Samples _ -> None
    let samples =
        match core.Source with
        | PosteriorSource.Samples r -> Some r
        | PosteriorSource.Guide _ -> None
    let parameters =
        match guide with
        | Some g -> Convert.FromMap g.Params
        | None -> SortedDictionary<string, NdArray>(StringComparer.Ordinal) :> IReadOnlyDictionary<_, _>

    /// The core's posterior (model function and guide or draws), for other parts of this facade.
    member internal _.Core = core

    /// The core's posterior with a model that returns the core's tensor, for core APIs that need a
    /// Posterior of Tensor (the ONNX export); throws when the model's result is not an NdArray.
    member internal _.AsTensorPosterior() : Posterior<Tensor> =
        let model data =
            core.Model data
            |> Model.map (fun o ->
                match o with
                | :? NdArray as a -> a.Value
                | _ ->
                    let t = if isNull o then "null" else o.GetType().Name
                    invalidOp $"The model returns {t}, not an NdArray.")
        { Model = model; Source = core.Source; Signature = core.Signature }

    static member internal CreateFolderOf(path: string) = Runs.createFolderOf path

    /// <summary>The levels of each categorical data key the model was fitted on (read from a table), in id order;
    /// saved with the posterior and loaded back. Read prediction tables with them
    /// (<see cref="TableColumns.Categorical(string, IEnumerable{string})"/>) so ids are the fit's.</summary>
    member _.Vocabularies: IReadOnlyDictionary<string, IReadOnlyList<string>> =
        let d = Dictionary<string, IReadOnlyList<string>>()
        for kv in ModelSignature.levels core.Signature do d[kv.Key] <- Array.AsReadOnly kv.Value :> IReadOnlyList<string>
        d :> IReadOnlyDictionary<_, _>

    /// <summary>How the posterior was made: "SVI (AutoNormal)", "NUTS", ...</summary>
    member _.Method: string = Posterior.methodName core

    /// <summary>True when the posterior is a sampler's draws (NUTS), false for a fitted guide (SVI).</summary>
    member _.IsSampled = samples.IsSome

    /// <summary>The fitted parameters (guide and model params) on their constrained sets, by name; empty for a sampled posterior.</summary>
    member _.Parameters = parameters

    /// <summary>The loss (negative ELBO) of every SVI step; empty for a loaded or sampled posterior.</summary>
    member _.Losses: IReadOnlyList<float> =
        match guide with
        | Some g -> Arg.readOnly g.Losses
        | None -> Array.AsReadOnly(Array.empty<float>) :> IReadOnlyList<float>

    /// <summary>The guide's name, for example "AutoDiagonalNormal"; null for a sampled posterior.</summary>
    member _.GuideName: string =
        match guide with
        | Some g -> g.Guide.Name
        | None -> null

    /// <summary>True when early stopping ended the fit before its last step.</summary>
    member _.StoppedEarly = guide |> Option.exists (fun g -> g.StoppedEarly)

    /// <summary>How long the fit or the sampling ran (zero for a loaded model).</summary>
    member _.FitTime = fitTime

    /// <summary>Chains of a sampled posterior (1 for a fitted guide, whose draws form one chain).</summary>
    member _.Chains: int =
        match samples with
        | Some r -> r.Chains
        | None -> 1

    /// <summary>Divergent transitions after warmup, over all chains (0 for a fitted guide): the kept iterations only, as
    /// Stan's divergence warning counts them. Divergences during warmup, which <see cref="SamplingProgress.Divergences"/>
    /// includes, are expected while the step size and metric adapt, and are not counted here.</summary>
    member _.Divergences: int =
        match samples with
        | Some r -> r.Flat.Stats |> Seq.sumBy (fun s -> s.Divergent |> Seq.filter id |> Seq.length)
        | None -> 0

    /// <summary>Stan's warnings for a sampled posterior (divergences, tree depth, E-BFMI, R-hat, ESS); empty when all is
    /// well and for a fitted guide. Each has its <see cref="SamplerWarning.Kind"/> and Stan's <see cref="SamplerWarning.Text"/>.</summary>
    member _.Warnings: IReadOnlyList<SamplerWarning> =
        Array.AsReadOnly(Posterior.warnings core |> List.map SamplerWarning.Of |> Array.ofList) :> IReadOnlyList<SamplerWarning>

    /// <summary>
    /// The posterior predictive on new data: for every site the model samples and the posterior does not cover, the
    /// mean and standard deviation over <paramref name="samples"/> posterior draws (fresh guide draws, or that many of a
    /// sampler's draws evenly spaced). Observed sites are predicted too: when the data still hold the observations
    /// (the training data, say), their values are ignored and the site is drawn, so <c>Predict(trainingData)["y"]</c>
    /// is the posterior predictive at the training rows. The names are the sites' (<c>"y"</c>); a site's draws are its
    /// values, so for a categorical link <see cref="SitePrediction.Mean"/> is the mean class id: its class
    /// probabilities are <see cref="PredictPosteriorMean"/>'s <c>"y_mean"</c>, as an exported ONNX model gives them.
    /// </summary>
    /// <param name="newData">The data to predict for.</param>
    /// <param name="samples">Posterior draws (at least 1).</param>
    /// <param name="seed">The seed of the draws.</param>
    /// <param name="keepSamples">Keep every draw in <see cref="SitePrediction.Samples"/>.</param>
    /// <returns>The predictions by site name.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="newData"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 1, the model rejects the data, or a
    /// data array holds a NaN or infinity (the message names the key, row and column).</exception>
    member _.Predict(newData: DataSet, [<Optional; DefaultParameterValue(100)>] samples: int, [<Optional; DefaultParameterValue(1UL)>] seed: uint64,
                     [<Optional; DefaultParameterValue(false)>] keepSamples: bool) : IReadOnlyDictionary<string, SitePrediction> =
        Arg.notNull "newData" newData
        let ps = Posterior.predict core (Rng.key seed) samples keepSamples (newData.ToMap())
        let d = SortedDictionary<string, SitePrediction>(StringComparer.Ordinal)
        for kv in ps do d[kv.Key] <- SitePrediction(kv.Key, kv.Value)
        d :> IReadOnlyDictionary<_, _>

    /// <summary>
    /// The posterior summary per site (mean, sd, MCSE, 5/50/95 % quantiles, bulk and tail ESS, R-hat per element):
    /// over a sampler's chains (deterministic sites included), or over <paramref name="samples"/> independent guide
    /// draws taken as one chain.
    /// </summary>
    /// <param name="samples">Guide draws (at least 4; ignored for a sampled posterior).</param>
    /// <param name="seed">The seed of the guide draws.</param>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 4 for a fitted guide.</exception>
    /// <returns>The sites in name order; <c>ToString()</c> (or <see cref="PosteriorSummaryTable.Print"/>) gives the
    /// table the F# core prints, one row per scalar named as in <see cref="Warnings"/> (<c>theta[0,1]</c>).</returns>
    member _.Summary([<Optional; DefaultParameterValue(1000)>] samples: int, [<Optional; DefaultParameterValue(2UL)>] seed: uint64) =
        PosteriorSummaryTable(Posterior.summaryBySite core (Rng.key seed) samples)

    /// <summary>Draws of every latent site stacked on a first axis, by site name: <paramref name="samples"/> fresh guide
    /// draws, or a sampler's kept draws with chains merged.</summary>
    /// <param name="samples">Guide draws (at least 1; ignored for a sampled posterior).</param>
    /// <param name="seed">The seed of the guide draws.</param>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 1.</exception>
    member _.Posterior([<Optional; DefaultParameterValue(1000)>] samples: int, [<Optional; DefaultParameterValue(2UL)>] seed: uint64) =
        Convert.FromMap(Posterior.draws core (Rng.key seed) samples)

    /// <summary>Writes the posterior as JSON (doubles round-trip exactly): a guide's parameters and loss history, or a
    /// sampler's draws and statistics. Read it back with <see cref="Load(string, Func{DataSet, BayesModel{NdArray}}, DataSet)"/>. The file's folder is created.</summary>
    /// <param name="path">The file to write.</param>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    member _.Save(path: string) =
        Arg.notNull "path" path
        Runs.createFolderOf path
        Fit.save path core

    /// <summary>
    /// Loads any posterior saved by <see cref="Save"/>, a fitted guide (SVI) or a sampler's draws (NUTS), whichever
    /// the file holds, for the model and the data it was fitted to. The file's model signature is checked first (a
    /// site or data key that differs is refused, naming it). A guide of your own (<see cref="SviFitter.WithGuide"/>)
    /// is not in the file: load such a posterior with <see cref="Load(string, SviFitter)"/>.
    /// </summary>
    /// <param name="path">The posterior file.</param>
    /// <param name="model">The model function the posterior was fitted with.</param>
    /// <param name="data">The data it was fitted to.</param>
    /// <returns>The posterior (<see cref="IsSampled"/> tells which kind).</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file does not hold a posterior of this model.</exception>
    static member Load(path: string, model: Func<DataSet, BayesModel<NdArray>>, data: DataSet) =
        Arg.notNull "path" path
        Arg.notNull "data" data
        FittedModel(Fit.load path (Convert.ModelFunction(model, "model")) (data.ToMap()) None, TimeSpan.Zero)

    /// <summary>
    /// Loads a posterior saved by <see cref="Save"/> for the model and data that <paramref name="fitter"/> describes
    /// (build the fitter as for the original fit: same model, data and guide).
    /// </summary>
    /// <param name="path">The posterior file.</param>
    /// <param name="fitter">Describes the model and guide.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file does not hold a posterior of this model and guide.</exception>
    static member Load(path: string, fitter: SviFitter) = (Arg.get "fitter" fitter).Load path

    // ---- ONNX -------------------------------------------------------------------------------

    member private _.PosteriorMeans(settings: OnnxExportSettings) =
        if settings.PosteriorDraws < 1 then
            raise (ArgumentOutOfRangeException("settings", settings.PosteriorDraws, "PosteriorDraws must be at least 1."))
        Posterior.mean core (Rng.key settings.Seed) settings.PosteriorDraws

    /// <summary>
    /// The posterior-mean predictions that an exported ONNX model computes, named as its outputs
    /// (<c>"{site}_mean"</c>, e.g. <c>"y_mean"</c>): every latent replaced by its posterior mean, each prediction by
    /// its predictive mean; for a categorical link that is the class probabilities (shape rows × classes), as
    /// <see cref="Predict"/>'s draws are class ids. Leave the observations out of the data.
    /// </summary>
    /// <param name="data">The inputs, rows on the first axis.</param>
    /// <param name="settings">How the posterior means are estimated.</param>
    /// <returns>The predictive mean of each predicted site, by output name ("{site}_mean").</returns>
    member this.PredictPosteriorMean(data: DataSet, [<Optional>] settings: OnnxExportSettings) : IReadOnlyDictionary<string, NdArray> =
        Arg.notNull "data" data
        let means = this.PosteriorMeans(if isNull settings then OnnxExportSettings() else settings)
        let result = Dictionary<string, NdArray>()
        for site, value in Export.predict (this.AsTensorPosterior().Model) means (data.ToMap()) do
            result[Export.outputName site] <- NdArray.Wrap value
        result :> IReadOnlyDictionary<_, _>

    /// <summary>
    /// The posterior-mean predictor as an ONNX model (bytes). Its inputs are named after the data, with a
    /// symbolic batch dimension; its outputs are named "{site}_mean".
    /// </summary>
    /// <param name="example">Example inputs (observations left out), rows on the first axis.</param>
    /// <param name="settings">Export settings.</param>
    /// <returns>The serialized ONNX model.</returns>
    /// <exception cref="OnnxExportException">A layer or op of the model has no ONNX form; the message names it.</exception>
    member this.ExportOnnx(example: DataSet, [<Optional>] settings: OnnxExportSettings) : byte[] =
        Arg.notNull "example" example
        let s = if isNull settings then OnnxExportSettings() else settings
        // each categorical input's levels go into the metadata, as the F# Export.posterior writes them
        Export.toModel (s.ToExportOptions()) (this.AsTensorPosterior().Model) (this.PosteriorMeans s) (example.ToMap())
        |> Export.withLevels (ModelSignature.levels core.Signature)
        |> Export.toBytes

    /// <summary>Writes the posterior-mean predictor to an ONNX file, creating its folder (see <see cref="ExportOnnx(DataSet, OnnxExportSettings?)"/>).</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="example">Example inputs (observations left out), rows on the first axis.</param>
    /// <param name="settings">Export settings.</param>
    member this.ExportOnnx(path: string, example: DataSet, [<Optional>] settings: OnnxExportSettings) : unit =
        Arg.notNull "path" path
        let bytes = this.ExportOnnx(example, settings)
        Runs.createFolderOf path
        File.WriteAllBytes(path, bytes)

    /// <inheritdoc />
    override this.ToString() =
        match guide with
        | None -> $"FittedModel({this.Method}, {this.Chains} chains)"
        | Some g -> $"FittedModel({g.Guide.Name}, {parameters.Count} parameters, {g.Losses.Length} steps)"
