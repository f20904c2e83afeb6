using System.Diagnostics;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FunctionalBayes.Tensors;
using FTensor = FunctionalBayes.Tensors.Tensor;
using FGuide = FunctionalBayes.Guide;
using CoreModelFn = Microsoft.FSharp.Core.FSharpFunc<Microsoft.FSharp.Collections.FSharpMap<string, FunctionalBayes.Tensors.Tensor?>, FunctionalBayes.Model<object?>>;

namespace FunctionalBayes.Fluent;

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
/// 0.01 with cosine decay, one particle, seed 0, and <c>FitOptions.DefaultSteps</c> steps (1000) when neither
/// <see cref="ForSteps"/> nor <see cref="ForEpochs"/> is called.
/// </summary>
/// <remarks>
/// Cancellation is checked after every SVI step (the core's progress callback runs at every step; reports
/// are forwarded to <see cref="IProgress{T}"/> every <see cref="WithProgressEvery"/> steps and at the last
/// one), so a cancelled token stops a fit within one step with <see cref="OperationCanceledException"/>.
/// The run itself is the core's <c>Svi.run</c> with the same keys as the F# <c>Fit.vi</c>, so a C# fit and
/// an F# fit with the same settings and seed give the same numbers.
/// </remarks>
public sealed class SviFitter
{
    private sealed record Settings(
        GuideKind Guide,
        int? GuideRank,
        FGuide? CustomGuide,
        double LearningRate,
        LearningRateSchedule Schedule,
        SviOptimizer? Optimizer,
        int? Steps,
        int? Epochs,
        int? BatchSize,
        int Particles,
        ulong Seed,
        double InitRadius,
        double? ClipNorm,
        EarlyStopping? EarlyStopping,
        int ProgressEvery);

    private readonly CoreModelFn model;
    private readonly FSharpMap<string, FTensor?> data;
    private readonly int rows;
    private readonly Settings s;

    private SviFitter(CoreModelFn model, FSharpMap<string, FTensor?> data, int rows, Settings s)
    {
        this.model = model;
        this.data = data;
        this.rows = rows;
        this.s = s;
    }

    /// <summary>A fitter for a model function of the data, at BLayers' defaults.</summary>
    /// <param name="model">Builds the model from (a batch of) the data; rows are on the first axis.</param>
    /// <param name="data">The training data (copied now: later changes to it are not seen).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data set is empty.</exception>
    public SviFitter(Func<DataSet, BayesModel<NdArray>> model, DataSet data)
        : this(Core(model, nameof(model)), Snapshot(data), data?.Rows ?? 0, Defaults) { }

    /// <summary>A fitter for a model function whose result is of any type (for example from a LINQ query).</summary>
    /// <typeparam name="T">The model's result type.</typeparam>
    /// <param name="model">Builds the model from (a batch of) the data.</param>
    /// <param name="data">The training data (copied now).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data set is empty.</exception>
    public static SviFitter Create<T>(Func<DataSet, BayesModel<T>> model, DataSet data) =>
        new(Core(model, nameof(model)), Snapshot(data), data.Rows, Defaults);

    /// <summary>The defaults, read from the core's <c>FitOptions.Default</c> (one source of truth).</summary>
    private static readonly Settings Defaults = FromCore(FitOptions.Default);

    private static Settings FromCore(FitOptions o) => new(
        o.AutoGuide switch
        {
            var k when k.IsAutoNormal => GuideKind.AutoNormal,
            var k when k.IsAutoDiagonalNormal => GuideKind.AutoDiagonalNormal,
            var k when k.IsAutoMultivariateNormal => GuideKind.AutoMultivariateNormal,
            var k when k.IsAutoLowRankMultivariateNormal => GuideKind.AutoLowRankMultivariateNormal,
            var k when k.IsAutoDelta => GuideKind.AutoDelta,
            _ => GuideKind.AutoLaplaceApproximation,
        },
        null, null, o.LearningRate,
        o.Schedule.IsCosine ? LearningRateSchedule.Cosine : o.Schedule.IsWarmupCosine ? LearningRateSchedule.WarmupCosine : LearningRateSchedule.Constant,
        null,
        o.Steps is { } st ? st.Value : (int?)null,
        o.Epochs is { } ep ? ep.Value : (int?)null,
        o.BatchSize is { } b ? b.Value : (int?)null,
        o.Particles, o.Seed,
        o.Init is InitStrategy.InitUniform u ? u.radius : throw new InvalidOperationException("FitOptions.Default starts uniformly; the facade expects that."),
        o.ClipNorm is { } c ? c.Value : (double?)null,
        o.EarlyStopping?.Value,
        o.ProgressEvery);

    private static CoreModelFn Core<T>(Func<DataSet, BayesModel<T>>? model, string name)
    {
        ArgumentNullException.ThrowIfNull(model, name);
        return FuncConvert.FromFunc<FSharpMap<string, FTensor?>, Model<object?>>(map =>
        {
            var m = model(DataSet.FromMap(map)) ?? throw new InvalidOperationException("The model function returned null.");
            return FunctionalBayes.Model.map(FuncConvert.FromFunc<T, object?>(v => v), m.Value);
        });
    }

    private static FSharpMap<string, FTensor?> Snapshot(DataSet? data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("SviFitter: the data set is empty; add at least one array with a row axis.", nameof(data));
        return data.ToMap();
    }

    private SviFitter With(Settings settings) => new(model, data, rows, settings);

    // ---- configuration ----------------------------------------------------------------------

    /// <summary>A fitter with another autoguide.</summary>
    /// <param name="kind">The variational family.</param>
    /// <param name="rank">The rank of <see cref="GuideKind.AutoLowRankMultivariateNormal"/> (null for √D); must be null for other kinds.</param>
    /// <exception cref="ArgumentException">A rank is given for another kind, or is less than 1.</exception>
    public SviFitter WithGuide(GuideKind kind, int? rank = null)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown guide kind.");
        if (rank is { } r && (kind != GuideKind.AutoLowRankMultivariateNormal || r < 1))
            throw new ArgumentException(kind != GuideKind.AutoLowRankMultivariateNormal
                ? $"SviFitter.WithGuide: a rank applies only to AutoLowRankMultivariateNormal, not {kind}."
                : $"SviFitter.WithGuide: the rank must be at least 1, got {r}.", nameof(rank));
        return With(s with { Guide = kind, GuideRank = rank, CustomGuide = null });
    }

    /// <summary>
    /// A fitter with a guide of your own: a model with <see cref="Bayes.Param"/> sites and a sample site for
    /// every latent site of the model, named alike.
    /// </summary>
    /// <typeparam name="T">The guide's result type (ignored).</typeparam>
    /// <param name="guide">The guide program.</param>
    /// <param name="name">A name for messages.</param>
    /// <exception cref="ArgumentNullException"><paramref name="guide"/> is null.</exception>
    public SviFitter WithGuide<T>(BayesModel<T> guide, string name = "user guide")
    {
        ArgumentNullException.ThrowIfNull(guide);
        ArgumentNullException.ThrowIfNull(name);
        var program = FunctionalBayes.Model.map(FuncConvert.FromFunc<T, Unit>(_ => null!), guide.Value);
        return With(s with { CustomGuide = GuideModule.ofModel(name, program) });
    }

    /// <summary>A fitter with another learning rate for Adam, and optionally another schedule.</summary>
    /// <param name="learningRate">The (peak) learning rate, positive.</param>
    /// <param name="schedule">The schedule; null keeps the current one (cosine decay by default).</param>
    /// <exception cref="ArgumentOutOfRangeException">The rate is not positive and finite.</exception>
    public SviFitter WithLearningRate(double learningRate, LearningRateSchedule? schedule = null)
    {
        if (!(learningRate > 0.0) || double.IsInfinity(learningRate))
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "SviFitter: the learning rate must be positive and finite.");
        return With(s with { LearningRate = learningRate, Schedule = schedule ?? s.Schedule });
    }

    /// <summary>A fitter with another learning-rate schedule for Adam.</summary>
    /// <param name="schedule">The schedule.</param>
    public SviFitter WithSchedule(LearningRateSchedule schedule) =>
        Enum.IsDefined(schedule) ? With(s with { Schedule = schedule }) : throw new ArgumentOutOfRangeException(nameof(schedule));

    /// <summary>A fitter with an optimizer of your own (it overrides the learning rate and schedule).</summary>
    /// <param name="optimizer">The optimizer, for example <c>SviOptimizer.Adam(LearningRate.WarmupCosine(0.05, 3000))</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="optimizer"/> is null.</exception>
    public SviFitter WithOptimizer(SviOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        return With(s with { Optimizer = optimizer });
    }

    /// <summary>A fitter that runs a number of steps (each on a batch when a batch size is set, else on all rows).</summary>
    /// <param name="steps">At least 1.</param>
    /// <param name="batchSize">Rows per step, or null for all rows.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is less than 1.</exception>
    /// <exception cref="InvalidOperationException">Epochs are already set: a fit runs for steps or for epochs, not both.</exception>
    public SviFitter ForSteps(int steps, int? batchSize = null)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "SviFitter: steps must be at least 1.");
        if (s.Epochs is { } e)
            throw new InvalidOperationException($"SviFitter: epochs are already set ({e}); a fit runs for either steps or epochs, not both.");
        CheckBatch(batchSize);
        return With(s with { Steps = steps, BatchSize = batchSize ?? s.BatchSize });
    }

    /// <summary>A fitter that runs a number of passes over the data in batches (shuffled every epoch).</summary>
    /// <param name="epochs">At least 1.</param>
    /// <param name="batchSize">Rows per step (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is less than 1.</exception>
    /// <exception cref="InvalidOperationException">Steps are already set: a fit runs for steps or for epochs, not both.</exception>
    public SviFitter ForEpochs(int epochs, int batchSize)
    {
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "SviFitter: epochs must be at least 1.");
        if (s.Steps is { } st)
            throw new InvalidOperationException($"SviFitter: steps are already set ({st}); a fit runs for either steps or epochs, not both.");
        CheckBatch(batchSize);
        return With(s with { Epochs = epochs, BatchSize = batchSize });
    }

    private static void CheckBatch(int? batchSize)
    {
        if (batchSize is { } b && b < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), b, "SviFitter: the batch size must be at least 1.");
    }

    /// <summary>A fitter with a batch size (the minibatch ELBO is used when one is set).</summary>
    /// <param name="batchSize">Rows per step (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The batch size is less than 1.</exception>
    public SviFitter WithBatchSize(int batchSize)
    {
        CheckBatch(batchSize);
        return With(s with { BatchSize = batchSize });
    }

    /// <summary>A fitter with another seed (guide initialization, ELBO draws and shuffling all derive from it).</summary>
    /// <param name="seed">The seed.</param>
    public SviFitter WithSeed(ulong seed) => With(s with { Seed = seed });

    /// <summary>A fitter that averages the ELBO over several particles per step.</summary>
    /// <param name="particles">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public SviFitter WithParticles(int particles) =>
        particles >= 1 ? With(s with { Particles = particles }) : throw new ArgumentOutOfRangeException(nameof(particles), particles, "SviFitter: particles must be at least 1.");

    /// <summary>A fitter that clips gradients to a global norm before each update.</summary>
    /// <param name="maxNorm">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The norm is not positive.</exception>
    public SviFitter WithGradientClipping(double maxNorm) =>
        maxNorm > 0.0 ? With(s with { ClipNorm = maxNorm }) : throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "SviFitter: the clip norm must be positive.");

    /// <summary>A fitter whose guide starts uniformly in (−radius, radius) on unconstrained space (default 2).</summary>
    /// <param name="radius">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The radius is not positive.</exception>
    public SviFitter WithInitRadius(double radius) =>
        radius > 0.0 ? With(s with { InitRadius = radius }) : throw new ArgumentOutOfRangeException(nameof(radius), radius, "SviFitter: the init radius must be positive.");

    /// <summary>
    /// A fitter that stops when the loss plateaus: the median of the last <paramref name="window"/> losses improved
    /// on the window before by less than <paramref name="relativeTolerance"/>, <paramref name="patience"/> windows in a row.
    /// </summary>
    /// <param name="window">Steps per window (at least 1).</param>
    /// <param name="relativeTolerance">The relative improvement that counts.</param>
    /// <param name="patience">Windows without improvement before stopping (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is less than 1.</exception>
    public SviFitter WithEarlyStopping(int window = 100, double relativeTolerance = 1e-3, int patience = 2)
    {
        if (window < 1) throw new ArgumentOutOfRangeException(nameof(window));
        if (patience < 1) throw new ArgumentOutOfRangeException(nameof(patience));
        return With(s with { EarlyStopping = new EarlyStopping(window, relativeTolerance, patience) });
    }

    /// <summary>A fitter that reports progress every <paramref name="steps"/> steps (default 100; the last step is always reported).</summary>
    /// <param name="steps">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public SviFitter WithProgressEvery(int steps) =>
        steps >= 1 ? With(s with { ProgressEvery = steps }) : throw new ArgumentOutOfRangeException(nameof(steps), steps, "SviFitter: progress must be reported every 1 or more steps.");

    /// <summary>The total number of steps the fit will run (before any early stop); without
    /// <see cref="ForSteps"/> or <see cref="ForEpochs"/>, the core's default (<c>FitOptions.DefaultSteps</c>).</summary>
    public int TotalSteps => FunctionalBayes.Fit.totalSteps(Options(null), rows);

    // ---- running ----------------------------------------------------------------------------

    /// <summary>The core's options for these settings (the core fills in what is left unset).</summary>
    private FitOptions Options(FSharpOption<FSharpFunc<SviProgress, Unit>>? onProgress) => new(
        AutoKind(),
        s.CustomGuide is null ? null : FSharpOption<FGuide>.Some(s.CustomGuide),
        s.LearningRate,
        s.Schedule switch
        {
            LearningRateSchedule.Cosine => LrSchedule.Cosine,
            LearningRateSchedule.WarmupCosine => LrSchedule.WarmupCosine,
            _ => LrSchedule.Constant,
        },
        s.Optimizer is null ? null : FSharpOption<Optimizer>.Some(s.Optimizer.Value),
        Convert.Option(s.Steps),
        Convert.Option(s.Epochs),
        Convert.Option(s.BatchSize),
        s.Particles,
        s.Seed,
        InitStrategy.NewInitUniform(s.InitRadius),
        Convert.Option(s.ClipNorm),
        s.EarlyStopping is null ? null : FSharpOption<EarlyStopping>.Some(s.EarlyStopping),
        onProgress,
        1);

    private AutoGuideKind AutoKind() => s.Guide switch
    {
        GuideKind.AutoNormal => AutoGuideKind.AutoNormal,
        GuideKind.AutoDiagonalNormal => AutoGuideKind.AutoDiagonalNormal,
        GuideKind.AutoMultivariateNormal => AutoGuideKind.AutoMultivariateNormal,
        GuideKind.AutoLowRankMultivariateNormal => AutoGuideKind.NewAutoLowRankMultivariateNormal(Convert.Option(s.GuideRank)),
        GuideKind.AutoDelta => AutoGuideKind.AutoDelta,
        _ => AutoGuideKind.AutoLaplaceApproximation,
    };

    /// <summary>The keys Fit.vi uses: one for the guide, one for the run.</summary>
    private (RngKey Guide, RngKey Run) Keys()
    {
        var k = Rng.split(Rng.key(s.Seed));
        return (k.Item1, k.Item2);
    }

    private FGuide BuildGuide(RngKey kGuide) =>
        s.CustomGuide ?? GuideModule.auto(AutoKind(), InitStrategy.NewInitUniform(s.InitRadius), kGuide, model.Invoke(data));

    private FGuide Finish(FGuide guide, RngKey kGuide, FSharpMap<string, FTensor?> ps) =>
        s.CustomGuide is null ? FunctionalBayes.Fit.finishGuide(model, data, kGuide, guide, ps) : guide;

    /// <summary>Runs the fit on this thread.</summary>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops the fit within one step.</param>
    /// <returns>The fitted model.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="FitDivergedException">The loss or a gradient stopped being finite.</exception>
    /// <exception cref="ArgumentException">The model rejects the data (for example mismatched shapes), or the
    /// data are bad: a NaN or infinity in a data array, or an observation outside its site's support (a count
    /// of −1, a label ≥ K); the message names the data key or site, the row (and column) and the value.</exception>
    public FittedModel Fit(IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var every = s.ProgressEvery;
        void OnStep(SviProgress p)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (progress is not null && (p.Step % every == 0 || p.Step == p.TotalSteps))
                progress.Report(new FitProgress(p.Step, p.TotalSteps, p.Loss, p.Elapsed, p.Eta));
        }
        // the core checks the settings (not both steps and epochs, a positive learning rate) and the data
        var options = Options(FSharpOption<FSharpFunc<SviProgress, Unit>>.Some(FuncConvert.FromAction<SviProgress>(OnStep)));
        Tuple<Fitted<object?>, SviResult> result;
        var sw = Stopwatch.StartNew();
        try
        {
            result = FunctionalBayes.Fit.viRun(options, model, data);
        }
        catch (SviDivergedException e)
        {
            throw new FitDivergedException(e.Message, e, Convert.FromMap(e.LastFiniteState.Params));
        }
        return new FittedModel(result.Item1, result.Item2.StoppedEarly, sw.Elapsed);
    }

    /// <summary>Runs the fit on the thread pool.</summary>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops the fit within one step; the task is then cancelled.</param>
    /// <returns>A task of the fitted model.</returns>
    public Task<FittedModel> FitAsync(IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Fit(progress, cancellationToken), cancellationToken);

    /// <summary>
    /// A fitted model from parameters saved by <see cref="FittedModel.Save"/>, without fitting: the guide is
    /// built as this fitter would build it (same model, data, guide kind and seed), then given the parameters.
    /// </summary>
    /// <param name="path">The parameter file.</param>
    /// <returns>The fitted model (with no loss history).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a parameter file, or its parameters do not match the guide.</exception>
    public FittedModel Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"SviFitter.Load: no parameter file at {path}.", path);
        var ps = FunctionalBayes.Fit.loadParams(path);
        var (kGuide, _) = Keys();
        var guide = BuildGuide(kGuide);
        // the guide's parameter sites must all be in the file
        var proto = FunctionalBayes.Model.run(Handlers.trace(Handlers.seed(kGuide, guide.Program))).Item2;
        var missing = TraceModule.parameters(proto).Select(p => p.Name).Where(n => !ps.ContainsKey(n)).ToArray();
        if (missing.Length > 0)
            throw new InvalidDataException(
                $"SviFitter.Load: {path} has no values for the guide's parameters {string.Join(", ", missing)}; it was saved from a fit with another model or guide (the file has {string.Join(", ", ps.Keys)}).");
        var fitted = new Fitted<object?>(model, Finish(guide, kGuide, ps), ps, Array.Empty<double>());
        return new FittedModel(fitted, false, TimeSpan.Zero);
    }
}
