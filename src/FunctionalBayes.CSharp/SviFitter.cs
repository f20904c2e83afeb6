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
public sealed class SviFitter
{
    private readonly CoreModelFn model;
    private readonly FSharpMap<string, FTensor?> data;
    private readonly int rows;
    // the core's options record is the one source of the settings, their defaults and their rules
    private readonly FitOptions o;
    // a guide of your own, or null for the options' autoguide: an argument of the core's fit, not a setting
    private readonly FGuide? guide;
    // how often progress is reported: the run context's, not a setting of the fit
    private readonly int progressEvery;

    // a streamed table's batches (then data is its sample), or null for data in memory
    private readonly BatchSource? source;

    private SviFitter(CoreModelFn model, FSharpMap<string, FTensor?> data, int rows, FitOptions options, BatchSource? source = null, int progressEvery = 100, FGuide? guide = null)
    {
        this.model = model;
        this.data = data;
        this.rows = rows;
        o = options;
        this.progressEvery = progressEvery;
        this.source = source;
        this.guide = guide;
    }

    /// <summary>A fitter for a table streamed in minibatches (larger than memory): set a batch size with
    /// <see cref="ForEpochs"/>, <see cref="ForSteps"/> or <see cref="WithBatchSize"/>. The model sees batches
    /// as data sets; the ELBO scales each by the table's rows over the batch's.</summary>
    /// <param name="model">Builds the model from a batch.</param>
    /// <param name="data">The streamed table (<see cref="DataSet.StreamParquet"/> and others).</param>
    /// <returns>The fitter, at BLayers' defaults.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static SviFitter FromStream(Func<DataSet, BayesModel<NdArray>> model, StreamedDataSet data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new(Convert.ModelFunction(model, nameof(model)), data.Table.Batches.Sample, data.Rows, FitOptions.Default, data.Table.Batches);
    }

    /// <summary>A fitter for a model function of the data, at BLayers' defaults.</summary>
    /// <param name="model">Builds the model from (a batch of) the data; rows are on the first axis.</param>
    /// <param name="data">The training data (copied now: later changes to it are not seen).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data set is empty.</exception>
    public SviFitter(Func<DataSet, BayesModel<NdArray>> model, DataSet data)
        : this(Convert.ModelFunction(model, nameof(model)), Snapshot(data), data?.Rows ?? 0, FitOptions.Default, WithVocabularies(data)) { }

    // data read from a table keep their vocabularies with the fit: the in-memory rows as a source that carries them
    private static BatchSource? WithVocabularies(DataSet? data) =>
        data is null || data.Vocabularies.Count == 0 ? null
            : BatchSourceModule.withLevels(
                MapModule.OfSeq(data.Vocabularies.Select(kv => Tuple.Create(kv.Key, kv.Value.ToArray()))),
                BatchSourceModule.ofData(Snapshot(data)));

    /// <summary>A fitter for a model function whose result is of any type (for example from a LINQ query).</summary>
    /// <typeparam name="T">The model's result type.</typeparam>
    /// <param name="model">Builds the model from (a batch of) the data.</param>
    /// <param name="data">The training data (copied now).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data set is empty.</exception>
    public static SviFitter Create<T>(Func<DataSet, BayesModel<T>> model, DataSet data) =>
        new(Convert.ModelFunction(model, nameof(model)), Snapshot(data), data.Rows, FitOptions.Default);

    private static FSharpMap<string, FTensor?> Snapshot(DataSet? data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("SviFitter: the data set is empty; add at least one array with a row axis.", nameof(data));
        return data.ToMap();
    }

    // the cluster satellite registers a model with this fitter's settings and guide (the core's values, not copies)
    internal FitOptions Options => o;
    internal FGuide? UserGuide => guide;

    /// <summary>A fitter with these options, checked by the core (its exceptions name the setting).</summary>
    private SviFitter With(FitOptions options) => With(options, guide);

    /// <summary>A fitter with these options and this guide (null: the options' autoguide).</summary>
    private SviFitter With(FitOptions options, FGuide? userGuide)
    {
        FunctionalBayes.Fit.validate(options);
        return new(model, data, rows, options, source, progressEvery, userGuide);
    }

    // the settings are changed by the core's copies ({ o with ... }, OptionsCopy), never a positional constructor

    // ---- configuration ----------------------------------------------------------------------

    /// <summary>A fitter with another autoguide (it replaces a guide of your own set before).</summary>
    /// <param name="kind">The variational family.</param>
    /// <param name="rank">The rank of <see cref="GuideKind.AutoLowRankMultivariateNormal"/> (null for √D); must be null for other kinds.</param>
    /// <exception cref="ArgumentException">A rank is given for another kind, or is less than 1.</exception>
    public SviFitter WithGuide(GuideKind kind, int? rank = null)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown guide kind.");
        if (rank is not null && kind != GuideKind.AutoLowRankMultivariateNormal)
            throw new ArgumentException($"SviFitter.WithGuide: a rank applies only to AutoLowRankMultivariateNormal, not {kind}.", nameof(rank));
        var core = kind switch
        {
            GuideKind.AutoNormal => AutoGuideKind.AutoNormal,
            GuideKind.AutoDiagonalNormal => AutoGuideKind.AutoDiagonalNormal,
            GuideKind.AutoMultivariateNormal => AutoGuideKind.AutoMultivariateNormal,
            GuideKind.AutoLowRankMultivariateNormal => AutoGuideKind.NewAutoLowRankMultivariateNormal(Convert.Option(rank)),
            GuideKind.AutoDelta => AutoGuideKind.AutoDelta,
            _ => AutoGuideKind.AutoLaplaceApproximation,
        };
        return With(o.WithAutoGuide(core), null);
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
        return With(o, GuideModule.ofModel(name, program));
    }

    /// <summary>A fitter with another learning rate for Adam, and optionally another schedule.</summary>
    /// <param name="learningRate">The (peak) learning rate, positive.</param>
    /// <param name="schedule">The schedule; null keeps the current one (cosine decay by default).</param>
    /// <exception cref="ArgumentOutOfRangeException">The rate is not positive and finite.</exception>
    public SviFitter WithLearningRate(double learningRate, LearningRateSchedule? schedule = null) =>
        With(schedule is { } sc ? o.WithLearningRate(learningRate).WithSchedule(CoreSchedule(sc)) : o.WithLearningRate(learningRate));

    private static LrSchedule CoreSchedule(LearningRateSchedule schedule) => schedule switch
    {
        LearningRateSchedule.Cosine => LrSchedule.Cosine,
        LearningRateSchedule.WarmupCosine => LrSchedule.WarmupCosine,
        LearningRateSchedule.Constant => LrSchedule.Constant,
        _ => throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "Unknown learning-rate schedule."),
    };

    /// <summary>A fitter with another learning-rate schedule for Adam.</summary>
    /// <param name="schedule">The schedule.</param>
    public SviFitter WithSchedule(LearningRateSchedule schedule) => With(o.WithSchedule(CoreSchedule(schedule)));

    /// <summary>A fitter with an optimizer of your own (it overrides the learning rate and schedule).</summary>
    /// <param name="optimizer">The optimizer, for example <c>SviOptimizer.Adam(LearningRate.WarmupCosine(0.05, 3000))</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="optimizer"/> is null.</exception>
    public SviFitter WithOptimizer(SviOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        return With(o.WithOptimizer(optimizer.Value));
    }

    /// <summary>A fitter that runs a number of steps (each on a batch when a batch size is set, else on all rows);
    /// it replaces a number of epochs set before.</summary>
    /// <param name="steps">At least 1.</param>
    /// <param name="batchSize">Rows per step, or null to keep the current setting (all rows by default).</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is less than 1.</exception>
    public SviFitter ForSteps(int steps, int? batchSize = null) =>
        With(batchSize is { } b ? o.WithSteps(steps).WithBatchSize(b) : o.WithSteps(steps));

    /// <summary>A fitter that runs a number of passes over the data in batches (shuffled every epoch); it replaces
    /// a number of steps set before.</summary>
    /// <param name="epochs">At least 1.</param>
    /// <param name="batchSize">Rows per step (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is less than 1.</exception>
    public SviFitter ForEpochs(int epochs, int batchSize) =>
        With(o.WithEpochs(epochs, batchSize));

    /// <summary>A fitter with a batch size (the minibatch ELBO is used when one is set).</summary>
    /// <param name="batchSize">Rows per step (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The batch size is less than 1.</exception>
    public SviFitter WithBatchSize(int batchSize) =>
        With(o.WithBatchSize(batchSize));

    /// <summary>A fitter with another seed (guide initialization, ELBO draws and shuffling all derive from it).</summary>
    /// <param name="seed">The seed.</param>
    public SviFitter WithSeed(ulong seed) => With(o.WithSeed(seed));

    /// <summary>A fitter that averages the ELBO over several particles per step.</summary>
    /// <param name="particles">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public SviFitter WithParticles(int particles) => With(o.WithParticles(particles));

    /// <summary>A fitter that clips gradients to a global norm before each update.</summary>
    /// <param name="maxNorm">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The norm is not positive.</exception>
    public SviFitter WithGradientClipping(double maxNorm) => With(o.WithClipNorm(maxNorm));

    /// <summary>A fitter whose guide starts uniformly in (−radius, radius) on unconstrained space (default 2).</summary>
    /// <param name="radius">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The radius is not positive.</exception>
    public SviFitter WithInitRadius(double radius) => With(o.WithInit(InitStrategy.NewInitUniform(radius)));

    /// <summary>
    /// A fitter that stops when the loss plateaus: the median of the last <paramref name="window"/> losses improved
    /// on the window before by less than <paramref name="relativeTolerance"/>, <paramref name="patience"/> windows in a row.
    /// </summary>
    /// <param name="window">Steps per window (at least 1).</param>
    /// <param name="relativeTolerance">The relative improvement that counts (finite, non-negative).</param>
    /// <param name="patience">Windows without improvement before stopping (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is less than 1, or the tolerance is negative or not finite.</exception>
    public SviFitter WithEarlyStopping(int window = 100, double relativeTolerance = 1e-3, int patience = 2) =>
        With(o.WithEarlyStopping(window, relativeTolerance, patience));

    /// <summary>A fitter that reports progress every <paramref name="steps"/> steps (default 100; the last step is always reported).</summary>
    /// <param name="steps">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public SviFitter WithProgressEvery(int steps)
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException("ProgressEvery", steps, $"SviFitter: ProgressEvery must be at least 1, got {steps}.");
        return new(model, data, rows, o, source, steps, guide);
    }

    /// <summary>The total number of steps the fit will run (before any early stop); without
    /// <see cref="ForSteps"/> or <see cref="ForEpochs"/>, the core's default (<c>SviRunOptions.DefaultSteps</c>).</summary>
    public int TotalSteps => FunctionalBayes.Fit.totalSteps(o, rows);

    // ---- running ----------------------------------------------------------------------------

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
        var onProgress = progress is null
            ? null
            : FSharpOption<FSharpFunc<RunProgress, Unit>>.Some(FuncConvert.FromAction<RunProgress>(
                p => progress.Report(new FitProgress(p.Step, p.TotalSteps, p.Loss, p.Elapsed, p.Eta))));
        // the core checks the token before every step
        var context = RunContext.Default.WithCall(cancellationToken, onProgress, progressEvery, FuncConvert.FromAction<string>(_ => { }));
        Tuple<Posterior<object?>, SviResult> result;
        var sw = Stopwatch.StartNew();
        try
        {
            result = (guide, source) switch
            {
                (null, null) => FunctionalBayes.Fit.viRunIn(context, o, model, data),
                (null, { } s) => FunctionalBayes.Fit.viSourceRunIn(context, o, model, s),
                ({ } g, var s) => FunctionalBayes.Fit.viWithGuideIn(context, g, o, model, s ?? BatchSourceModule.ofData(data)),
            };
        }
        catch (SviDivergedException e)
        {
            throw new FitDivergedException(e.Message, e, Convert.FromMap(e.LastFiniteState.Params));
        }
        return new FittedModel(result.Item1, sw.Elapsed);
    }

    /// <summary>Runs <see cref="Fit"/> on the thread pool: CPU-bound work that occupies a pool thread, offered so that a UI
    /// or a server thread is not blocked; it does no I/O to await.</summary>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops the fit within one step; the task is then cancelled.</param>
    /// <returns>A task of the fitted model.</returns>
    public Task<FittedModel> FitAsync(IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Fit(progress, cancellationToken), cancellationToken);

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
    public FittedModel Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var core = guide is null
            ? FunctionalBayes.Fit.load(path, model, data, FSharpOption<FitOptions>.Some(o))
            : FunctionalBayes.Fit.loadWithGuide(guide, path, model, data);
        return new FittedModel(core, TimeSpan.Zero);
    }
}
