using FunctionalBayes.Tensors;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// A fitted model: the model, its fitted guide and parameters, and the loss history. Predict, summarize,
/// draw from the posterior, and save; load with <see cref="Load"/> (or <see cref="SviFitter.Load"/>).
/// </summary>
public sealed partial class FittedModel
{
    internal FittedModel(Fitted<object?> core, bool stoppedEarly, TimeSpan fitTime)
    {
        Core = core;
        StoppedEarly = stoppedEarly;
        FitTime = fitTime;
        Parameters = Convert.FromMap(core.Params);
    }

    /// <summary>The core's fitted record (model function, guide, parameters), for other parts of this facade.</summary>
    internal Fitted<object?> Core { get; }

    /// <summary>
    /// The core's fitted record with a model that returns the F# tensor, for core APIs that need a
    /// <c>Fitted&lt;Tensor&gt;</c> (for example an ONNX export added in another file of this partial class).
    /// Throws when the model's result is not an <see cref="NdArray"/>.
    /// </summary>
    internal Fitted<FTensor?> AsTensorFitted()
    {
        var f = Core.Model;
        var model = Microsoft.FSharp.Core.FuncConvert.FromFunc<Microsoft.FSharp.Collections.FSharpMap<string, FTensor?>, Model<FTensor?>>(data =>
            FunctionalBayes.Model.map(Microsoft.FSharp.Core.FuncConvert.FromFunc<object?, FTensor?>(o =>
                o is NdArray a ? a.Value : throw new InvalidOperationException($"The model returns {o?.GetType().Name ?? "null"}, not an NdArray.")),
                f.Invoke(data)));
        return new Fitted<FTensor?>(model, Core.Guide, Core.Params, Core.Losses);
    }

    /// <summary>The fitted parameters (guide and model params) on their constrained sets, by name.</summary>
    public IReadOnlyDictionary<string, NdArray> Parameters { get; }

    /// <summary>The loss (negative ELBO) of every step; empty for a loaded model.</summary>
    public IReadOnlyList<double> Losses => Core.Losses;

    /// <summary>The guide's name, for example "AutoDiagonalNormal".</summary>
    public string GuideName => Core.Guide.Name;

    /// <summary>True when early stopping ended the fit before its last step.</summary>
    public bool StoppedEarly { get; }

    /// <summary>How long the fit ran (zero for a loaded model).</summary>
    public TimeSpan FitTime { get; }

    /// <summary>
    /// The posterior predictive on new data: for every site the model samples and the guide does not cover, the
    /// mean and standard deviation over <paramref name="samples"/> draws. Observed sites are predicted too: when
    /// the data still hold the observations (the training data, say), their values are ignored and the site is
    /// drawn, so <c>Predict(trainingData)["y"]</c> is the posterior predictive at the training rows.
    /// </summary>
    /// <param name="newData">The data to predict for.</param>
    /// <param name="samples">Posterior draws (at least 1).</param>
    /// <param name="seed">The seed of the draws.</param>
    /// <param name="keepSamples">Keep every draw in <see cref="SitePrediction.Samples"/>.</param>
    /// <returns>The predictions by site name.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="newData"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 1, the model rejects the data, or a
    /// data array holds a NaN or infinity (the message names the key, row and column).</exception>
    public IReadOnlyDictionary<string, SitePrediction> Predict(DataSet newData, int samples = 100, ulong seed = 1, bool keepSamples = false)
    {
        ArgumentNullException.ThrowIfNull(newData);
        var ps = FunctionalBayes.Fit.predict(Core, Rng.key(seed), samples, keepSamples, newData.ToMap());
        var d = new SortedDictionary<string, SitePrediction>(StringComparer.Ordinal);
        foreach (var kv in ps) d[kv.Key] = new SitePrediction(kv.Key, kv.Value);
        return d;
    }

    /// <summary>Posterior summaries (mean, sd, 2.5 % and 97.5 % quantiles) of every latent site from guide draws.</summary>
    /// <param name="samples">Posterior draws (at least 1).</param>
    /// <param name="seed">The seed of the draws.</param>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 1.</exception>
    public IReadOnlyList<PosteriorSummary> Summary(int samples = 1000, ulong seed = 2) =>
        FunctionalBayes.Fit.summary(Core, Rng.key(seed), samples).Select(s => new PosteriorSummary(s)).ToArray();

    /// <summary>Draws of every latent site from the fitted guide, stacked on a new first axis, by site name.</summary>
    /// <param name="samples">Draws (at least 1).</param>
    /// <param name="seed">The seed of the draws.</param>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 1.</exception>
    public IReadOnlyDictionary<string, NdArray> Posterior(int samples = 1000, ulong seed = 2) =>
        Convert.FromMap(FunctionalBayes.Fit.posterior(Core, Rng.key(seed), samples));

    /// <summary>Writes the parameters as JSON (doubles round-trip exactly).</summary>
    /// <param name="path">The file to write.</param>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FunctionalBayes.Fit.saveParams(path, Core.Params);
    }

    /// <summary>
    /// Loads parameters saved by <see cref="Save"/> into the model and guide that <paramref name="fitter"/>
    /// describes (build the fitter as for the original fit: same model, data, guide and seed).
    /// </summary>
    /// <param name="path">The parameter file.</param>
    /// <param name="fitter">Describes the model and guide.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file does not hold this guide's parameters.</exception>
    public static FittedModel Load(string path, SviFitter fitter)
    {
        ArgumentNullException.ThrowIfNull(fitter);
        return fitter.Load(path);
    }

    /// <inheritdoc />
    public override string ToString() => $"FittedModel({GuideName}, {Parameters.Count} parameters, {Losses.Count} steps)";
}

/// <summary>Predictions for one site: mean and standard deviation over posterior draws, element-wise.</summary>
public sealed class SitePrediction
{
    internal SitePrediction(string name, Prediction p)
    {
        Name = name;
        Shape = p.Mean!.Shape;
        Mean = TensorModule.toArray(p.Mean);
        Std = TensorModule.toArray(p.Std);
        Samples = p.Samples is { } s ? NdArray.Wrap(s.Value) : null;
    }

    /// <summary>The site's name.</summary>
    public string Name { get; }
    /// <summary>The shape of one draw (for an observed site usually (n,)).</summary>
    public int[] Shape { get; }
    /// <summary>The mean over draws, row-major.</summary>
    public double[] Mean { get; }
    /// <summary>The standard deviation over draws, row-major.</summary>
    public double[] Std { get; }
    /// <summary>Every draw stacked on a first axis when asked for, else null.</summary>
    public NdArray? Samples { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}

/// <summary>The posterior of one site: element-wise mean, sd and the 2.5 % and 97.5 % quantiles.</summary>
public sealed class PosteriorSummary
{
    internal PosteriorSummary(SiteSummary s)
    {
        Name = s.Name;
        Shape = s.Shape;
        Mean = TensorModule.toArray(s.Mean);
        Sd = TensorModule.toArray(s.Sd);
        Q025 = TensorModule.toArray(s.Q025);
        Q975 = TensorModule.toArray(s.Q975);
    }

    /// <summary>The site's name.</summary>
    public string Name { get; }
    /// <summary>The site's shape.</summary>
    public int[] Shape { get; }
    /// <summary>Posterior means, row-major.</summary>
    public double[] Mean { get; }
    /// <summary>Posterior standard deviations, row-major.</summary>
    public double[] Sd { get; }
    /// <summary>2.5 % quantiles, row-major.</summary>
    public double[] Q025 { get; }
    /// <summary>97.5 % quantiles, row-major.</summary>
    public double[] Q975 { get; }

    /// <summary>A label for element <paramref name="index"/>: the name alone for a one-element site, else name[index].</summary>
    /// <param name="index">The flat index.</param>
    public string Label(int index) => Mean.Length == 1 ? Name : $"{Name}[{index}]";

    /// <inheritdoc />
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}
