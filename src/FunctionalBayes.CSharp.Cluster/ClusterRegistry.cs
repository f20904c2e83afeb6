using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FunctionalBayes.Cluster;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// The models and data sets a cluster's silos run, by name: a job names them, since functions and data do not travel
/// to silos. Build one in the assembly that holds your models and give the same one to every silo
/// (<see cref="ClusterHosting"/>). Each <c>Add…</c> method returns a new registry.
/// <code>
/// var registry = new ClusterRegistry()
///     .AddNuts("schools", Schools, new NutsSampler(Schools, new DataSet()).WithChains(4).WithTargetAcceptance(0.9))
///     .AddSvi("regression", Regression, new SviFitter(Regression, sample).ForSteps(2000).WithLearningRate(0.05))
///     .AddDataSet("segment", id => LoadSegment(id));   // a fit's Data "segment:17" calls LoadSegment("17")
/// </code>
/// A fit's settings are the registered sampler's or fitter's (the core's records, their defaults and their checks);
/// the fit's seed replaces theirs and its <see cref="FitSpec.Options"/> text ("steps=500;lr=0.02") overrides some.
/// </summary>
public sealed class ClusterRegistry
{
    private ClusterRegistry(ModelRegistry core) => Core = core;

    /// <summary>No models, no data sets.</summary>
    public ClusterRegistry() : this(ModelRegistryModule.empty) { }

    internal ModelRegistry Core { get; }

    /// <summary>The names of the registered models.</summary>
    public IReadOnlyList<string> ModelNames => Core.ModelNames;

    /// <summary>The names of the registered data sets.</summary>
    public IReadOnlyList<string> DataSetNames => Core.DataSetNames;

    /// <summary>
    /// A model fitted by NUTS with the settings of <paramref name="settings"/> (chains, warmup, samples, target
    /// acceptance, metric, ...; its own model and data are not used). Its posterior file loads with
    /// <see cref="NutsSampler.Load"/> or <see cref="FittedModel.Load(string, Func{DataSet, BayesModel{NdArray}}, DataSet)"/>.
    /// Chains checkpoint into the job's folder and resume from there when a silo dies.
    /// </summary>
    /// <typeparam name="T">The model's result type.</typeparam>
    /// <param name="name">The name fits use (unique in the registry).</param>
    /// <param name="model">Builds the model from the data.</param>
    /// <param name="settings">A configured sampler; null for the defaults (Stan's).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="model"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty or registered already.</exception>
    public ClusterRegistry AddNuts<T>(string name, Func<DataSet, BayesModel<T>> model, NutsSampler? settings = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        var options = settings?.Options ?? McmcOptions.Default;
        return new(ModelRegistryModule.mcmc(name, Convert.ModelFunction(model, nameof(model)), options, Core));
    }

    /// <summary>
    /// A model fitted by SVI with the settings of <paramref name="settings"/> (guide, learning rate and schedule,
    /// steps, batch size, particles, ...; its own model and data are not used), and its guide of your own when it has
    /// one (<see cref="SviFitter.WithGuide{T}"/>). Its posterior file loads with <see cref="SviFitter.Load"/>. The run
    /// checkpoints into the job's folder and resumes from there when a silo dies.
    /// </summary>
    /// <typeparam name="T">The model's result type.</typeparam>
    /// <param name="name">The name fits use (unique in the registry).</param>
    /// <param name="model">Builds the model from (a batch of) the data.</param>
    /// <param name="settings">A configured fitter; null for the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="model"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty or registered already.</exception>
    public ClusterRegistry AddSvi<T>(string name, Func<DataSet, BayesModel<T>> model, SviFitter? settings = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        var fn = Convert.ModelFunction(model, nameof(model));
        var options = settings?.Options ?? FitOptions.Default;
        return settings?.UserGuide is { } guide
            ? new(ModelRegistryModule.viWithGuide(name, fn, guide, options, Core))
            : new(ModelRegistryModule.vi(name, fn, options, Core));
    }

    /// <summary>
    /// A data set by name: a fit whose data source is <c>"name:argument"</c> gets <c>load(argument)</c> (<c>""</c> for
    /// <c>"name"</c>). It must give the same data for the same argument on every silo (read a file, or simulate from a seed).
    /// A data source <c>"file:PATH"</c> needs no registration: it reads a tensor file on a path every silo sees.
    /// </summary>
    /// <param name="name">The name (no ':'; not "file").</param>
    /// <param name="load">Gives the data of an argument.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is empty, has a ':', is "file", or is registered already.</exception>
    public ClusterRegistry AddDataSet(string name, Func<string, DataSet> load)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(load);
        var fn = FuncConvert.FromFunc<string, FSharpMap<string, FTensor?>>(arg =>
            (load(arg) ?? throw new InvalidOperationException($"ClusterRegistry: the data set '{name}' gave null for the argument \"{arg}\".")).ToMap());
        return new(ModelRegistryModule.data(name, fn, Core));
    }

    /// <summary>The data a fit's data source names, as a silo reads them: to load its result
    /// (<see cref="FittedModel.Load(string, Func{DataSet, BayesModel{NdArray}}, DataSet)"/> needs the data) or to run it serially.</summary>
    /// <param name="source">A registered data set (<c>"name"</c> or <c>"name:argument"</c>) or <c>"file:PATH"</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> is null.</exception>
    /// <exception cref="ArgumentException">No such data set is registered (the message lists them).</exception>
    public DataSet LoadData(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return DataSet.FromMap(ModelRegistryModule.resolveData(Core, source));
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"ClusterRegistry(models: {string.Join(", ", ModelNames)}; data sets: {string.Join(", ", DataSetNames)})";
}
