using FunctionalBayes.Tensors;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// A fitted model: the model, its fitted guide and parameters, and the loss history. Predict, summarize,
/// draw from the posterior, and save; load any posterior with <see cref="Load(string, Func{DataSet, BayesModel{NdArray}}, DataSet)"/>.
/// </summary>
public sealed partial class FittedModel
{
    internal FittedModel(Posterior<object?> core, TimeSpan fitTime)
    {
        Core = core;
        FitTime = fitTime;
        Guide = core.Source is PosteriorSource.Guide g ? g.Item : null;
        Samples = core.Source is PosteriorSource.Samples r ? r.Item : null;
        Parameters = Guide is null ? new SortedDictionary<string, NdArray>(StringComparer.Ordinal) : Convert.FromMap(Guide.Params);
    }

    /// <summary>The core's posterior (model function and guide or draws), for other parts of this facade.</summary>
    internal Posterior<object?> Core { get; }

    private GuidePosterior? Guide { get; }

    private McmcResult? Samples { get; }

    /// <summary>
    /// The core's posterior with a model that returns the F# tensor, for core APIs that need a
    /// <c>Posterior&lt;Tensor&gt;</c> (for example the ONNX export in another file of this partial class).
    /// Throws when the model's result is not an <see cref="NdArray"/>.
    /// </summary>
    internal Posterior<FTensor?> AsTensorPosterior()
    {
        var f = Core.Model;
        var model = Microsoft.FSharp.Core.FuncConvert.FromFunc<Microsoft.FSharp.Collections.FSharpMap<string, FTensor?>, Model<FTensor?>>(data =>
            FunctionalBayes.Model.map(Microsoft.FSharp.Core.FuncConvert.FromFunc<object?, FTensor?>(o =>
                o is NdArray a ? a.Value : throw new InvalidOperationException($"The model returns {o?.GetType().Name ?? "null"}, not an NdArray.")),
                f.Invoke(data)));
        return new Posterior<FTensor?>(model, Core.Source, Core.Signature);
    }

    /// <summary>The levels of each categorical data key the model was fitted on (read from a table), in id order;
    /// saved with the posterior and loaded back. Read prediction tables with them
    /// (<see cref="TableColumns.Categorical(string, IEnumerable{string})"/>) so ids are the fit's.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Vocabularies =>
        ModelSignatureModule.levels(Core.Signature).ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value);

    /// <summary>How the posterior was made: "SVI (AutoNormal)", "NUTS", ...</summary>
    public string Method => FunctionalBayes.Posterior.methodName(Core);

    /// <summary>True when the posterior is a sampler's draws (NUTS), false for a fitted guide (SVI).</summary>
    public bool IsSampled => Samples is not null;

    /// <summary>The fitted parameters (guide and model params) on their constrained sets, by name; empty for a sampled posterior.</summary>
    public IReadOnlyDictionary<string, NdArray> Parameters { get; }

    /// <summary>The loss (negative ELBO) of every SVI step; empty for a loaded or sampled posterior.</summary>
    public IReadOnlyList<double> Losses => Guide?.Losses ?? Array.Empty<double>();

    /// <summary>The guide's name, for example "AutoDiagonalNormal"; null for a sampled posterior.</summary>
    public string? GuideName => Guide?.Guide.Name;

    /// <summary>True when early stopping ended the fit before its last step.</summary>
    public bool StoppedEarly => Guide?.StoppedEarly ?? false;

    /// <summary>How long the fit or the sampling ran (zero for a loaded model).</summary>
    public TimeSpan FitTime { get; }

    /// <summary>Chains of a sampled posterior (1 for a fitted guide, whose draws form one chain).</summary>
    public int Chains => Samples?.Chains ?? 1;

    /// <summary>Divergent transitions after warmup, over all chains (0 for a fitted guide): the kept iterations only, as
    /// Stan's divergence warning counts them. Divergences during warmup, which <see cref="SamplingProgress.Divergences"/>
    /// includes, are expected while the step size and metric adapt, and are not counted here.</summary>
    public int Divergences => Samples is null ? 0 : Samples.Flat.Stats.Sum(s => s.Divergent.Count(d => d));

    /// <summary>Stan's warnings for a sampled posterior (divergences, tree depth, E-BFMI, R-hat, ESS); empty when all is
    /// well and for a fitted guide. Each has its <see cref="SamplerWarning.Kind"/> and Stan's <see cref="SamplerWarning.Text"/>.</summary>
    public IReadOnlyList<SamplerWarning> Warnings => FunctionalBayes.Posterior.warnings(Core).Select(SamplerWarning.Of).ToArray();

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
    public IReadOnlyDictionary<string, SitePrediction> Predict(DataSet newData, int samples = 100, ulong seed = 1, bool keepSamples = false)
    {
        ArgumentNullException.ThrowIfNull(newData);
        var ps = FunctionalBayes.Posterior.predict(Core, Rng.key(seed), samples, keepSamples, newData.ToMap());
        var d = new SortedDictionary<string, SitePrediction>(StringComparer.Ordinal);
        foreach (var kv in ps) d[kv.Key] = new SitePrediction(kv.Key, kv.Value);
        return d;
    }

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
    public PosteriorSummaryTable Summary(int samples = 1000, ulong seed = 2) =>
        new(FunctionalBayes.Posterior.summaryBySite(Core, Rng.key(seed), samples));

    /// <summary>Draws of every latent site stacked on a first axis, by site name: <paramref name="samples"/> fresh guide
    /// draws, or a sampler's kept draws with chains merged.</summary>
    /// <param name="samples">Guide draws (at least 1; ignored for a sampled posterior).</param>
    /// <param name="seed">The seed of the guide draws.</param>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 1.</exception>
    public IReadOnlyDictionary<string, NdArray> Posterior(int samples = 1000, ulong seed = 2) =>
        Convert.FromMap(FunctionalBayes.Posterior.draws(Core, Rng.key(seed), samples));

    /// <summary>Writes the posterior as JSON (doubles round-trip exactly): a guide's parameters and loss history, or a
    /// sampler's draws and statistics. Read it back with <see cref="Load(string, Func{DataSet, BayesModel{NdArray}}, DataSet)"/>. The file's folder is created.</summary>
    /// <param name="path">The file to write.</param>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        CreateFolderOf(path);
        FunctionalBayes.Fit.save(path, Core);
    }

    /// <summary>Creates the folder of a file about to be written (as SaveReport does), so that writing into a new
    /// folder is not a <see cref="DirectoryNotFoundException"/>.</summary>
    internal static void CreateFolderOf(string path)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
    }

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
    public static FittedModel Load(string path, Func<DataSet, BayesModel<NdArray>> model, DataSet data)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(data);
        return new FittedModel(FunctionalBayes.Fit.load(path, Convert.ModelFunction(model, nameof(model)), data.ToMap(), null), TimeSpan.Zero);
    }

    /// <summary>
    /// Loads a posterior saved by <see cref="Save"/> for the model and data that <paramref name="fitter"/> describes
    /// (build the fitter as for the original fit: same model, data and guide).
    /// </summary>
    /// <param name="path">The posterior file.</param>
    /// <param name="fitter">Describes the model and guide.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file does not hold a posterior of this model and guide.</exception>
    public static FittedModel Load(string path, SviFitter fitter)
    {
        ArgumentNullException.ThrowIfNull(fitter);
        return fitter.Load(path);
    }

    /// <inheritdoc />
    public override string ToString() =>
        Guide is null ? $"FittedModel({Method}, {Chains} chains)" : $"FittedModel({GuideName}, {Parameters.Count} parameters, {Losses.Count} steps)";
}

/// <summary>Predictions for one site: mean and standard deviation over posterior draws, element-wise.</summary>
public sealed class SitePrediction
{
    internal SitePrediction(string name, Prediction p)
    {
        Name = name;
        Shape = Array.AsReadOnly(p.Mean!.Shape);
        Mean = Array.AsReadOnly(TensorModule.toArray(p.Mean));
        Std = Array.AsReadOnly(TensorModule.toArray(p.Std));
        Samples = p.Samples is { } s ? NdArray.Wrap(s.Value) : null;
    }

    /// <summary>The site's name.</summary>
    public string Name { get; }
    /// <summary>The shape of one draw (for an observed site usually (n,)).</summary>
    public IReadOnlyList<int> Shape { get; }
    /// <summary>The mean over draws, row-major.</summary>
    public IReadOnlyList<double> Mean { get; }
    /// <summary>The standard deviation over draws, row-major.</summary>
    public IReadOnlyList<double> Std { get; }
    /// <summary>Every draw stacked on a first axis when asked for, else null.</summary>
    public NdArray? Samples { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}

/// <summary>The posterior summary, site by site (a list of <see cref="PosteriorSummary"/>), printable: <c>ToString()</c>
/// is the F# core's table (<c>Diagnostics.formatTable</c>): one row per scalar with mean, sd, MCSE, 5/50/95 %
/// quantiles, bulk and tail ESS and R-hat.</summary>
public sealed class PosteriorSummaryTable : IReadOnlyList<PosteriorSummary>
{
    private readonly PosteriorSummary[] sites;
    private readonly string text;

    internal PosteriorSummaryTable(SiteSummary[] sites)
    {
        this.sites = sites.Select(s => new PosteriorSummary(s)).ToArray();
        text = FunctionalBayes.Diagnostics.formatTable(sites.SelectMany(s => s.Elements).ToArray());
    }

    /// <summary>The site at <paramref name="index"/> (name order).</summary>
    /// <param name="index">The index.</param>
    public PosteriorSummary this[int index] => sites[index];

    /// <summary>The site named <paramref name="site"/>.</summary>
    /// <param name="site">The site's name, e.g. "AdaptiveLayer_x_beta".</param>
    /// <exception cref="KeyNotFoundException">No such site; the message lists the sites.</exception>
    public PosteriorSummary this[string site] =>
        sites.FirstOrDefault(s => s.Name == site)
        ?? throw new KeyNotFoundException($"The summary has no site '{site}'; it has {string.Join(", ", sites.Select(s => s.Name))}.");

    /// <summary>The number of sites.</summary>
    public int Count => sites.Length;

    /// <inheritdoc />
    public IEnumerator<PosteriorSummary> GetEnumerator() => ((IEnumerable<PosteriorSummary>)sites).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Writes the table to <paramref name="writer"/> (the console when null).</summary>
    /// <param name="writer">Where to write.</param>
    public void Print(TextWriter? writer = null) => (writer ?? Console.Out).Write(text);

    /// <summary>The table, one row per scalar, as the F# core prints it.</summary>
    public override string ToString() => text;
}

/// <summary>The posterior summary of one site, element by element (row-major): mean, sd, Monte Carlo standard errors,
/// quantiles, effective sample sizes and R-hat (Vehtari et al. 2021).</summary>
public sealed class PosteriorSummary
{
    internal PosteriorSummary(SiteSummary s)
    {
        Name = s.Name;
        Shape = Array.AsReadOnly(s.Shape);
        var e = s.Elements;
        Mean = Array.AsReadOnly(e.Select(x => x.Mean).ToArray());
        Sd = Array.AsReadOnly(e.Select(x => x.Sd).ToArray());
        McseMean = Array.AsReadOnly(e.Select(x => x.McseMean).ToArray());
        McseSd = Array.AsReadOnly(e.Select(x => x.McseSd).ToArray());
        Q5 = Array.AsReadOnly(e.Select(x => x.Q5).ToArray());
        Q50 = Array.AsReadOnly(e.Select(x => x.Q50).ToArray());
        Q95 = Array.AsReadOnly(e.Select(x => x.Q95).ToArray());
        EssBulk = Array.AsReadOnly(e.Select(x => x.EssBulk).ToArray());
        EssTail = Array.AsReadOnly(e.Select(x => x.EssTail).ToArray());
        RHat = Array.AsReadOnly(e.Select(x => x.RHat).ToArray());
        labels = e.Select(x => x.Name).ToArray();
        text = FunctionalBayes.Diagnostics.formatTable(e);
    }

    private readonly string[] labels;
    private readonly string text;

    /// <summary>The site's name.</summary>
    public string Name { get; }
    /// <summary>The site's shape.</summary>
    public IReadOnlyList<int> Shape { get; }
    /// <summary>Posterior means.</summary>
    public IReadOnlyList<double> Mean { get; }
    /// <summary>Posterior standard deviations.</summary>
    public IReadOnlyList<double> Sd { get; }
    /// <summary>Monte Carlo standard errors of the means.</summary>
    public IReadOnlyList<double> McseMean { get; }
    /// <summary>Monte Carlo standard errors of the standard deviations.</summary>
    public IReadOnlyList<double> McseSd { get; }
    /// <summary>5 % quantiles.</summary>
    public IReadOnlyList<double> Q5 { get; }
    /// <summary>Medians.</summary>
    public IReadOnlyList<double> Q50 { get; }
    /// <summary>95 % quantiles.</summary>
    public IReadOnlyList<double> Q95 { get; }
    /// <summary>Bulk effective sample sizes.</summary>
    public IReadOnlyList<double> EssBulk { get; }
    /// <summary>Tail effective sample sizes.</summary>
    public IReadOnlyList<double> EssTail { get; }
    /// <summary>Rank-normalized split R-hat (NaN for a constant quantity).</summary>
    public IReadOnlyList<double> RHat { get; }

    /// <summary>The label of element <paramref name="index"/> (row-major), as the F# summary and <see cref="FittedModel.Warnings"/>
    /// write it: the name alone for a scalar site, else one index per axis (<c>theta[0]</c>, <c>w[1,2]</c>).</summary>
    /// <param name="index">The flat index.</param>
    public string Label(int index) => labels[index];

    /// <summary>The site's rows of the summary table (see <see cref="PosteriorSummaryTable"/>).</summary>
    public override string ToString() => text;
}
