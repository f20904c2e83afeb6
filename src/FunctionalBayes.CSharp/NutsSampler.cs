using System.Diagnostics;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FunctionalBayes.Tensors;
using FTensor = FunctionalBayes.Tensors.Tensor;
using CoreModelFn = Microsoft.FSharp.Core.FSharpFunc<Microsoft.FSharp.Collections.FSharpMap<string, FunctionalBayes.Tensors.Tensor?>, FunctionalBayes.Model<object?>>;

namespace FunctionalBayes.Fluent;

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
public sealed class NutsSampler
{
    private readonly CoreModelFn model;
    private readonly FSharpMap<string, FTensor?> data;
    // the core's options record is the one source of the settings, their defaults and their rules
    private readonly McmcOptions o;
    // the run's machinery (not settings): how often progress is reported and where messages go
    private readonly int progressEvery;
    private readonly Action<string> log;

    private NutsSampler(CoreModelFn model, FSharpMap<string, FTensor?> data, McmcOptions options, int progressEvery = 100, Action<string>? log = null)
    {
        this.model = model;
        this.data = data;
        o = options;
        this.progressEvery = progressEvery;
        // a library writes nothing to the console unless asked (WithLog)
        this.log = log ?? (_ => { });
    }

    /// <summary>A sampler for a model function of the data, at Stan's defaults.</summary>
    /// <param name="model">Builds the model from the data; rows are on the first axis.</param>
    /// <param name="data">The data (copied now: later changes to it are not seen); may be empty for a model without data.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public NutsSampler(Func<DataSet, BayesModel<NdArray>> model, DataSet data)
        : this(Convert.ModelFunction(model, nameof(model)), Snapshot(data), McmcOptions.Default) { }

    /// <summary>A sampler for a model function whose result is of any type (for example from a LINQ query).</summary>
    /// <typeparam name="T">The model's result type.</typeparam>
    /// <param name="model">Builds the model from the data.</param>
    /// <param name="data">The data (copied now).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static NutsSampler Create<T>(Func<DataSet, BayesModel<T>> model, DataSet data) =>
        new(Convert.ModelFunction(model, nameof(model)), Snapshot(data), McmcOptions.Default);

    private static FSharpMap<string, FTensor?> Snapshot(DataSet? data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return data.ToMap();
    }

    // the cluster satellite registers a model with this sampler's settings (the core's record, not a copy)
    internal McmcOptions Options => o;

    private NutsSampler With(McmcOptions options)
    {
        FunctionalBayes.Mcmc.validate(options);
        return new(model, data, options, progressEvery, log);
    }

    // the core's run context: cancellation, progress and messages
    private RunContext Context(FSharpOption<FSharpFunc<RunProgress, Unit>>? onProgress, CancellationToken cancellationToken) =>
        RunContext.Default.WithCall(cancellationToken, onProgress, progressEvery, FuncConvert.FromAction(log));

    // the settings are changed by the core's copies ({ o with ... }, OptionsCopy), never a positional constructor

    // ---- configuration ----------------------------------------------------------------------

    /// <summary>A sampler with another number of chains (default 4).</summary>
    /// <param name="chains">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public NutsSampler WithChains(int chains) => With(o.WithChains(chains));

    /// <summary>A sampler with another number of warmup (adaptation) iterations per chain (default 1000; not kept).</summary>
    /// <param name="warmup">Non-negative; below 20 the metric is not adapted (Stan's rule).</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is negative.</exception>
    public NutsSampler WithWarmup(int warmup) => With(o.WithWarmup(warmup));

    /// <summary>A sampler with another number of kept draws per chain (default 1000).</summary>
    /// <param name="samples">At least 1.</param>
    /// <param name="thin">Keep every <paramref name="thin"/>-th iteration (samples × thin iterations are run).</param>
    /// <exception cref="ArgumentOutOfRangeException">A number is less than 1.</exception>
    public NutsSampler WithSamples(int samples, int thin = 1) => With(o.WithSamples(samples, thin));

    /// <summary>A sampler with another seed (starting points and every transition derive from it).</summary>
    /// <param name="seed">The seed.</param>
    public NutsSampler WithSeed(ulong seed) => With(o.WithSeed(seed));

    /// <summary>A sampler with another target acceptance statistic for the step-size adaptation (Stan's adapt_delta,
    /// default 0.8; raise it to 0.9–0.99 when there are divergences).</summary>
    /// <param name="targetAccept">In (0, 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside (0, 1).</exception>
    public NutsSampler WithTargetAcceptance(double targetAccept) => With(o.WithTargetAccept(targetAccept));

    /// <summary>A sampler with another maximum tree depth (default 10: at most 1023 leapfrog steps per draw).</summary>
    /// <param name="depth">In 1..30.</param>
    /// <exception cref="ArgumentOutOfRangeException">The depth is outside 1..30.</exception>
    public NutsSampler WithMaxTreeDepth(int depth) => With(o.WithMaxTreeDepth(depth));

    /// <summary>A sampler that adapts a dense metric (the full covariance; default: diagonal).</summary>
    /// <param name="dense">True for dense, false for diagonal.</param>
    public NutsSampler WithDenseMetric(bool dense = true) =>
        With(o.WithAdaptation(dense ? MetricAdaptation.Dense : MetricAdaptation.Stan));

    /// <summary>A sampler whose warmup estimates the metric the given way (default <see cref="NutsMetric.Stan"/>).</summary>
    /// <param name="metric">Stan's diagonal, dense, or nutpie's Fisher diagonal or low rank (with nutpie's defaults).</param>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a <see cref="NutsMetric"/>.</exception>
    public NutsSampler WithMetric(NutsMetric metric) => With(o.WithAdaptation(metric switch
    {
        NutsMetric.Stan => MetricAdaptation.Stan,
        NutsMetric.Dense => MetricAdaptation.Dense,
        NutsMetric.FisherDiagonal => MetricAdaptation.FisherDiagonal,
        NutsMetric.FisherLowRank => MetricAdaptation.NewFisherLowRank(LowRankSettings.Default),
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "NutsSampler: unknown metric; use a NutsMetric value."),
    }));

    /// <summary>A sampler that starts its step size at <paramref name="stepSize"/>, optionally without Stan's initial
    /// step-size search (BlackJAX starts from 1.0 without it).</summary>
    /// <param name="stepSize">Finite and positive.</param>
    /// <param name="search">Run Stan's step-size heuristic from it (default true).</param>
    /// <exception cref="ArgumentOutOfRangeException">The step size is not finite and positive.</exception>
    public NutsSampler WithInitialStepSize(double stepSize, bool search = true) =>
        With(o.WithInitialStepSize(stepSize, search));

    /// <summary>A sampler whose chains start uniformly in (−radius, radius) on unconstrained space (default 2).</summary>
    /// <param name="radius">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The radius is not positive.</exception>
    public NutsSampler WithInitRadius(double radius) => With(o.WithInit(InitStrategy.NewInitUniform(radius)));

    /// <summary>A sampler that runs its chains in parallel (default) or one after another; the draws are the same.</summary>
    /// <param name="parallel">True to use the thread pool.</param>
    public NutsSampler WithParallelChains(bool parallel = true) => With(o.WithParallel(parallel));

    /// <summary>A sampler that computes gradients on the autodiff tape instead of the compiled program (the default
    /// compiles the potential when the model's graph is static); both give the same numbers.</summary>
    /// <param name="tape">True for the tape, false for the default.</param>
    public NutsSampler WithTapeGradients(bool tape = true) =>
        With(o.WithGradient(tape ? McmcGradient.Tape : McmcOptions.Default.Gradient));

    /// <summary>A sampler that reports progress every <paramref name="iterations"/> iterations per chain (default 100).</summary>
    /// <param name="iterations">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public NutsSampler WithProgressEvery(int iterations)
    {
        if (iterations < 1)
            throw new ArgumentOutOfRangeException("ProgressEvery", iterations, $"NutsSampler: ProgressEvery must be at least 1, got {iterations}.");
        return new(model, data, o, iterations, log);
    }

    /// <summary>A sampler that writes its messages (the gradient cost estimate, Stan's warnings) to <paramref name="log"/>
    /// (default: nothing is written; the warnings are also in <see cref="FittedModel.Warnings"/>).</summary>
    /// <param name="log">Receives each message, for example <c>Console.WriteLine</c>; null for none.</param>
    public NutsSampler WithLog(Action<string>? log) => new(model, data, o, progressEvery, log);

    // ---- running ----------------------------------------------------------------------------

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
    public FittedModel Sample(IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var onProgress = progress is null
            ? null
            : FSharpOption<FSharpFunc<RunProgress, Unit>>.Some(
                FuncConvert.FromAction<RunProgress>(p => progress.Report(new SamplingProgress(p))));
        var sw = Stopwatch.StartNew();
        var posterior = FunctionalBayes.Fit.mcmcIn(Context(onProgress, cancellationToken), o, model, data);
        return new FittedModel(posterior, sw.Elapsed);
    }

    /// <summary>Runs <see cref="Sample"/> on the thread pool: CPU-bound work (the chains run in parallel on pool threads),
    /// offered so that a UI or a server thread is not blocked; it does no I/O to await.</summary>
    /// <param name="progress">Receives per-chain reports; null for none.</param>
    /// <param name="cancellationToken">Stops every chain within one iteration; the task is then cancelled.</param>
    /// <returns>A task of the sampled posterior.</returns>
    public Task<FittedModel> SampleAsync(IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Sample(progress, cancellationToken), cancellationToken);

    /// <summary>A sampled posterior saved by <see cref="FittedModel.Save"/>, for this sampler's model and data.</summary>
    /// <param name="path">The posterior file.</param>
    /// <returns>The posterior with its draws and sampler statistics.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a posterior of this model.</exception>
    public FittedModel Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new FittedModel(FunctionalBayes.Fit.load(path, model, data, null), TimeSpan.Zero);
    }
}

/// <summary>The phase of an MCMC iteration.</summary>
public enum SamplingPhase
{
    /// <summary>Adaptation: not kept.</summary>
    Warmup,
    /// <summary>Sampling: kept (after thinning).</summary>
    Sampling,
}

/// <summary>Progress of one chain of a <see cref="NutsSampler"/> run.</summary>
public sealed class SamplingProgress
{
    internal SamplingProgress(RunProgress p)
    {
        Chain = p.Chain;
        Iteration = p.Step;
        TotalIterations = p.TotalSteps;
        Phase = p.Phase.IsWarmup ? SamplingPhase.Warmup : SamplingPhase.Sampling;
        StepSize = p.StepSize;
        Divergences = p.Divergences;
        Elapsed = p.Elapsed;
        Eta = p.Eta;
    }

    /// <summary>The chain (0-based).</summary>
    public int Chain { get; }
    /// <summary>Iterations done in this chain, warmup included.</summary>
    public int Iteration { get; }
    /// <summary>The chain's iterations in all (warmup + samples × thin).</summary>
    public int TotalIterations { get; }
    /// <summary>Warmup or sampling.</summary>
    public SamplingPhase Phase { get; }
    /// <summary>The current step size.</summary>
    public double StepSize { get; }
    /// <summary>Divergent transitions of this chain so far, warmup included (warmup divergences are expected while the step
    /// size adapts; <see cref="FittedModel.Divergences"/> counts those after warmup only).</summary>
    public int Divergences { get; }
    /// <summary>Time since the chain started.</summary>
    public TimeSpan Elapsed { get; }
    /// <summary>Estimated time to the chain's end.</summary>
    public TimeSpan Eta { get; }

    /// <inheritdoc />
    public override string ToString() => $"chain {Chain}: {Iteration}/{TotalIterations} ({Phase}), step size {StepSize:G3}, {Divergences} divergences";
}

/// <summary>How NUTS's warmup estimates the metric (the mass matrix).</summary>
public enum NutsMetric
{
    /// <summary>Stan's: a diagonal metric from the windowed variance of warmup draws (the default).</summary>
    Stan,
    /// <summary>Stan's windows with a dense metric from the draws' covariance.</summary>
    Dense,
    /// <summary>nutpie's: a diagonal metric from the draws and their gradients (minimises the Fisher divergence).</summary>
    FisherDiagonal,
    /// <summary>nutpie's: the Fisher diagonal plus a low-rank correction for correlated directions.</summary>
    FisherLowRank,
}
