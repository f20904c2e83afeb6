using System.Diagnostics;
using FunctionalBayes.Tensors;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FFamily = FunctionalBayes.Family;
using Families = FunctionalBayes.FamilyModule;
using FTensor = FunctionalBayes.Tensors.Tensor;
using FParams = Microsoft.FSharp.Collections.FSharpMap<string, FunctionalBayes.Tensors.Tensor?>;

namespace FunctionalBayes.Fluent;

/// <summary>The distribution of the latent variable given the data (the variational family).</summary>
public enum LatentFamily
{
    /// <summary>Normal(loc, scale), location-scale reparameterization.</summary>
    Normal,
    /// <summary>Laplace(loc, scale).</summary>
    Laplace,
    /// <summary>Logistic(loc, scale).</summary>
    Logistic,
    /// <summary>Cauchy(loc, scale), inverse-CDF reparameterization.</summary>
    Cauchy,
    /// <summary>Gumbel(loc, scale), inverse-CDF reparameterization.</summary>
    Gumbel,
    /// <summary>LogNormal = exp(Normal(loc, scale)), a composed family.</summary>
    LogNormal,
    /// <summary>Bernoulli(logits), trained with REINFORCE.</summary>
    Bernoulli,
}

/// <summary>The distribution of the data given the latent variable (the observation family).</summary>
public enum ObservationFamily
{
    /// <summary>Bernoulli(logits), for binary or [0, 1] data.</summary>
    Bernoulli,
    /// <summary>Normal(loc, scale).</summary>
    Normal,
    /// <summary>Laplace(loc, scale).</summary>
    Laplace,
    /// <summary>Logistic(loc, scale).</summary>
    Logistic,
    /// <summary>Student's t with a learned df (parameters df, loc, scale).</summary>
    StudentT,
}

/// <summary>A training progress report.</summary>
/// <param name="Step">Steps done.</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Epoch">The current epoch (0-based).</param>
/// <param name="Loss">The last step's loss (nll + klScale·kl, summed over the batch).</param>
/// <param name="Elapsed">Time since the start.</param>
public sealed record AevbTrainingProgress(int Step, int TotalSteps, int Epoch, double Loss, TimeSpan Elapsed);

/// <summary>
/// Trains a variational autoencoder (Auto-Encoding Variational Bayes) with fluent settings: networks from
/// the built-in MLP builder or from functions, latent and observation families, a unit-Normal prior, Adam.
/// Each <c>With…</c> method returns a new trainer.
/// </summary>
/// <example><code>
/// var vae = new AevbTrainer(dataDim: 784, latentDim: 20)
///     .WithEncoderMlp(400).WithDecoderMlp(400)
///     .WithObservation(ObservationFamily.Bernoulli)
///     .ForEpochs(10, batchSize: 128)
///     .Train(images, progress, cancellationToken);
/// var z = vae.Encode(images);
/// </code></example>
public sealed class AevbTrainer
{
    private sealed record Network(int[]? Hidden, IReadOnlyDictionary<string, NdArray>? InitialParameters,
        Func<IReadOnlyDictionary<string, NdArray>, NdArray, IReadOnlyDictionary<string, NdArray>>? Apply);

    private sealed record Settings(int DataDim, int LatentDim, Network Encoder, Network Decoder, LatentFamily Latent,
        ObservationFamily Observation, double LearningRate, int Epochs, int BatchSize, int Samples, double KlScale,
        ulong Seed, int ProgressEvery, bool SinglePrecision);

    private readonly Settings s;

    private AevbTrainer(Settings s) => this.s = s;

    /// <summary>A trainer for data rows of <paramref name="dataDim"/> values and a latent of <paramref name="latentDim"/>.
    /// Defaults: one hidden layer of 400 units each way, Normal latent, Bernoulli observations, Adam 1e-3,
    /// 10 epochs of batch 128, one latent draw per step, float32 networks.</summary>
    public AevbTrainer(int dataDim, int latentDim)
        : this(new Settings(dataDim, latentDim, new Network([400], null, null), new Network([400], null, null),
            LatentFamily.Normal, ObservationFamily.Bernoulli, 1e-3, 10, 128, 1, 1.0, 0, 100, true))
    {
        if (dataDim < 1) throw new ArgumentOutOfRangeException(nameof(dataDim), dataDim, "AevbTrainer: dataDim must be at least 1.");
        if (latentDim < 1) throw new ArgumentOutOfRangeException(nameof(latentDim), latentDim, "AevbTrainer: latentDim must be at least 1.");
    }

    /// <summary>The encoder: a ReLU MLP with these hidden sizes and one head per latent-family parameter.</summary>
    public AevbTrainer WithEncoderMlp(params int[] hidden) => new(s with { Encoder = new Network(Checked(hidden), null, null) });

    /// <summary>The decoder: a ReLU MLP with these hidden sizes and one head per observation-family parameter.</summary>
    public AevbTrainer WithDecoderMlp(params int[] hidden) => new(s with { Decoder = new Network(Checked(hidden), null, null) });

    /// <summary>The encoder as a function of its parameters and a batch (B, dataDim), returning the latent
    /// family's parameters by name (for Normal: "loc" and "scale", each (B, latentDim)).</summary>
    public AevbTrainer WithEncoder(IReadOnlyDictionary<string, NdArray> initialParameters,
        Func<IReadOnlyDictionary<string, NdArray>, NdArray, IReadOnlyDictionary<string, NdArray>> apply) =>
        new(s with { Encoder = new Network(null, initialParameters ?? throw new ArgumentNullException(nameof(initialParameters)), apply ?? throw new ArgumentNullException(nameof(apply))) });

    /// <summary>The decoder as a function of its parameters and latent rows (N, latentDim), returning the
    /// observation family's parameters by name (for Bernoulli: "logits", (N, dataDim)).</summary>
    public AevbTrainer WithDecoder(IReadOnlyDictionary<string, NdArray> initialParameters,
        Func<IReadOnlyDictionary<string, NdArray>, NdArray, IReadOnlyDictionary<string, NdArray>> apply) =>
        new(s with { Decoder = new Network(null, initialParameters ?? throw new ArgumentNullException(nameof(initialParameters)), apply ?? throw new ArgumentNullException(nameof(apply))) });

    /// <summary>The latent (variational) family.</summary>
    public AevbTrainer WithLatent(LatentFamily family) => new(s with { Latent = family });

    /// <summary>The observation family.</summary>
    public AevbTrainer WithObservation(ObservationFamily family) => new(s with { Observation = family });

    /// <summary>Adam's learning rate.</summary>
    public AevbTrainer WithLearningRate(double learningRate) =>
        learningRate > 0 ? new(s with { LearningRate = learningRate })
                         : throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "AevbTrainer: the learning rate must be positive.");

    /// <summary>Epochs of shuffled minibatches.</summary>
    public AevbTrainer ForEpochs(int epochs, int batchSize = 128)
    {
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "AevbTrainer: epochs must be at least 1.");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "AevbTrainer: batchSize must be at least 1.");
        return new(s with { Epochs = epochs, BatchSize = batchSize });
    }

    /// <summary>Latent draws per datum and step, and the weight of the KL term (loss = nll + klScale·kl).</summary>
    public AevbTrainer WithSamples(int samples, double klScale = 1.0) => new(s with { Samples = samples, KlScale = klScale });

    /// <summary>The seed of initialization, shuffling and draws.</summary>
    public AevbTrainer WithSeed(ulong seed) => new(s with { Seed = seed });

    /// <summary>Progress is reported every this many steps (and at the last).</summary>
    public AevbTrainer WithProgressEvery(int steps) => new(s with { ProgressEvery = Math.Max(1, steps) });

    /// <summary>float64 built-in networks instead of float32.</summary>
    public AevbTrainer WithDoublePrecision() => new(s with { SinglePrecision = false });

    private static int[] Checked(int[] hidden)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        foreach (var h in hidden)
            if (h < 1) throw new ArgumentOutOfRangeException(nameof(hidden), h, "AevbTrainer: hidden layers need at least one unit.");
        return (int[])hidden.Clone();
    }

    private static FFamily LatentOf(LatentFamily f) => f switch
    {
        LatentFamily.Normal => Families.normal,
        LatentFamily.Laplace => Families.laplace,
        LatentFamily.Logistic => Families.logistic,
        LatentFamily.Cauchy => Families.cauchy,
        LatentFamily.Gumbel => Families.gumbel,
        LatentFamily.LogNormal => Families.logNormal,
        LatentFamily.Bernoulli => Families.bernoulli,
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, "Unknown latent family."),
    };

    private static FFamily ObservationOf(ObservationFamily f) => f switch
    {
        ObservationFamily.Bernoulli => Families.bernoulli,
        ObservationFamily.Normal => Families.normal,
        ObservationFamily.Laplace => Families.laplace,
        ObservationFamily.Logistic => Families.logistic,
        ObservationFamily.StudentT => Families.studentT,
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, "Unknown observation family."),
    };

    private NnModule Module(Network n, FFamily family, int input, int output)
    {
        if (n.Apply is { } apply && n.InitialParameters is { } init)
        {
            var p0 = Convert.ToMap(init);
            var empty = MapModule.Empty<string, FTensor?>();
            return Nn.ofFunctions(
                FuncConvert.FromFunc<RngKey, Tuple<FParams, FParams>>(_ => Tuple.Create(p0, empty)),
                FuncConvert.FromFunc<FParams, FParams, FTensor?, bool, Tuple<FParams, FParams>>((p, st, x, _) =>
                    Tuple.Create(Convert.ToMap(apply(Convert.FromMap(p), NdArray.Wrap(x))), st)));
        }
        var dtype = s.SinglePrecision ? Dtype.Float32 : Dtype.Float64;
        return Aevb.mlpFor(family, input, ListModule.OfArray(n.Hidden ?? []), output, dtype);
    }

    internal AevbEngine Engine() =>
        Aevb.create(s.LatentDim, s.DataDim,
            Module(s.Encoder, LatentOf(s.Latent), s.DataDim, s.LatentDim),
            Module(s.Decoder, ObservationOf(s.Observation), s.LatentDim, s.DataDim),
            AevbPrior.UnitNormal, ObservationOf(s.Observation), LatentOf(s.Latent),
            Optimizer.AdamDefault(s.LearningRate), s.Samples, s.KlScale);

    /// <summary>Trains on the rows of <paramref name="data"/> (N, dataDim).</summary>
    /// <param name="data">The training rows.</param>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>The trained autoencoder.</returns>
    /// <exception cref="ArgumentException">The networks' outputs do not name the families' parameters, or
    /// the data has the wrong shape (the message names the expected and the given keys or shapes).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="FitDivergedException">The loss stopped being finite (try a smaller learning rate).</exception>
    public TrainedAutoencoder Train(NdArray data, IProgress<AevbTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var rows = data.Shape.Length > 0 ? data.Shape[0] : 0;
        return Run(rows, progress, cancellationToken,
            (context, engine, key, options) => Aevb.trainIn(context, FuncConvert.FromAction<AevbEpoch>(_ => { }), engine, key, data.Value, options));
    }

    /// <summary>
    /// Trains on a table streamed in minibatches (larger than memory): the rows of its matrix
    /// <paramref name="column"/> (rows × dataDim, stacked by <see cref="TableColumns.Matrix"/>), shuffled within the
    /// stream's buffer and across row groups from the seed, so that training is deterministic given the seed.
    /// </summary>
    /// <param name="data">The streamed table (<see cref="DataSet.StreamParquet"/>, <see cref="DataSet.StreamCsv"/>, ...).</param>
    /// <param name="column">The matrix column of the data rows.</param>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>The trained autoencoder.</returns>
    /// <exception cref="ArgumentException">The table has no such column, or it does not have dataDim values per row.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="FitDivergedException">The loss stopped being finite (try a smaller learning rate).</exception>
    public TrainedAutoencoder Train(StreamedDataSet data, string column = "x", IProgress<AevbTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(column);
        return Run(data.Rows, progress, cancellationToken,
            (context, engine, key, options) => Aevb.trainSourceIn(context, FuncConvert.FromAction<AevbEpoch>(_ => { }), engine, key, data.Table.Batches, column, options));
    }

    private TrainedAutoencoder Run(int rows, IProgress<AevbTrainingProgress>? progress, CancellationToken cancellationToken,
        Func<RunContext, AevbEngine, RngKey, AevbRunOptions, AevbResult> train)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var engine = Engine();
        var key = Rng.key(s.Seed);
        var onProgress = progress is null ? null
            : FSharpOption<FSharpFunc<RunProgress, Unit>>.Some(FuncConvert.FromAction<RunProgress>(
                p => progress.Report(new AevbTrainingProgress(p.Step, p.TotalSteps, p.Epoch, p.Loss, p.Elapsed))));
        var options = AevbRunOptions.Create(s.Epochs, s.BatchSize);
        var context = RunContext.Default.WithCall(cancellationToken, onProgress, s.ProgressEvery, FuncConvert.FromAction<string>(_ => { }));
        var sw = Stopwatch.StartNew();
        try
        {
            // the core raises OperationCanceledException after the current step when the token is cancelled
            var result = train(context, engine, key, options);
            return new TrainedAutoencoder(engine, result.State, Aevb.lossesPerRow(rows, options, result.Losses), sw.Elapsed, options);
        }
        catch (AevbDivergedException e)
        {
            // one exception family for the facade's fits (SviFitter throws it too)
            var last = e.LastFiniteState;
            var parameters = Convert.FromMap(last.EncParams).Select(kv => KeyValuePair.Create("encoder." + kv.Key, kv.Value))
                .Concat(Convert.FromMap(last.DecParams).Select(kv => KeyValuePair.Create("decoder." + kv.Key, kv.Value)))
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            throw new FitDivergedException(e.Message, e, parameters);
        }
    }

    /// <summary>Runs <see cref="Train(NdArray, IProgress{AevbTrainingProgress}, CancellationToken)"/> on the thread pool: CPU-bound work, offered so that a UI or a server thread is
    /// not blocked; it does no I/O to await.</summary>
    public Task<TrainedAutoencoder> TrainAsync(NdArray data, IProgress<AevbTrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Train(data, progress, cancellationToken), cancellationToken);

    /// <summary>Loads an autoencoder saved by <see cref="TrainedAutoencoder.Save"/> for this trainer's settings.</summary>
    public TrainedAutoencoder Load(string path)
    {
        var engine = Engine();
        var state = Aevb.load(engine, path);
        var saved = Aevb.savedOptions(path);
        return new TrainedAutoencoder(engine, state, [], TimeSpan.Zero, saved is null ? null : saved.Value);
    }
}

/// <summary>A trained variational autoencoder: encode, decode, reconstruct, generate, and the ELBO on held-out data.</summary>
public sealed partial class TrainedAutoencoder
{
    private readonly AevbEngine engine;
    private readonly AevbState state;
    // the settings of the run that trained it, saved with the networks (null: untrained or unknown)
    private readonly AevbRunOptions? options;

    internal TrainedAutoencoder(AevbEngine engine, AevbState state, double[] losses, TimeSpan elapsed, AevbRunOptions? options)
    {
        this.engine = engine;
        this.state = state;
        this.options = options;
        Losses = losses;
        TrainingTime = elapsed;
    }

    /// <summary>The loss (negative ELBO) of every training step per row of its batch: the scale of <see cref="Elbo"/>
    /// (the last epoch's losses are about <c>-Elbo(trainingData)</c>).</summary>
    public IReadOnlyList<double> Losses { get; }

    /// <summary>How long training took.</summary>
    public TimeSpan TrainingTime { get; }

    /// <summary>The latent dimension.</summary>
    public int LatentDim => engine.LatentDim;

    /// <summary>The data dimension.</summary>
    public int DataDim => engine.DataDim;

    /// <summary>The mean of q(z | x) per row: (B, latentDim).</summary>
    public NdArray Encode(NdArray x) => NdArray.Wrap(Aevb.encodeMean(engine, state, Arg(x)));

    /// <summary>Draws z ~ q(z | x): (n, B, latentDim).</summary>
    public NdArray EncodeSamples(NdArray x, int n, ulong seed = 0) => NdArray.Wrap(Aevb.encode(engine, Rng.key(seed), state, Arg(x), n));

    /// <summary>The observation mean E[x | z] for latent rows (…, latentDim).</summary>
    public NdArray Decode(NdArray z) => NdArray.Wrap(Aevb.decode(engine, state, Arg(z)));

    /// <summary>Decode(Encode(x)).</summary>
    public NdArray Reconstruct(NdArray x) => NdArray.Wrap(Aevb.reconstruct(engine, state, Arg(x)));

    /// <summary>n new rows: z from the prior, then the observation mean (<paramref name="mean"/>) or a draw.</summary>
    public NdArray Generate(int n, ulong seed = 0, bool mean = true) => NdArray.Wrap(Aevb.generate(engine, Rng.key(seed), state, n, mean));

    /// <summary>The ELBO per row of held-out x; with importanceSamples &gt; 1 the importance-weighted bound.</summary>
    public double Elbo(NdArray x, int importanceSamples = 1, ulong seed = 0) =>
        Aevb.elbo(engine, Rng.key(seed), state, Arg(x), importanceSamples, 1000);

    /// <summary>Writes the networks' parameters and states as JSON with the engine's sizes, families and dtype and
    /// the training settings (load with <see cref="AevbTrainer.Load"/>, which refuses another engine).</summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FittedModel.CreateFolderOf(path);
        Aevb.save(path, engine, options is null ? FSharpOption<AevbRunOptions>.None : FSharpOption<AevbRunOptions>.Some(options), state);
    }

    private static FTensor Arg(NdArray? x) => x?.Value ?? throw new ArgumentNullException(nameof(x));
}
