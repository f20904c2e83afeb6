using Microsoft.FSharp.Core;
using FunctionalBayes.Tensors;
using FConstraint = FunctionalBayes.Constraint;
using FSiteKind = FunctionalBayes.SiteKind;
using FTensor = FunctionalBayes.Tensors.Tensor;
using FTrace = FunctionalBayes.Trace;

namespace FunctionalBayes.Fluent;

/// <summary>
/// A probabilistic program that returns a <typeparamref name="T"/>: a value that does nothing until it
/// is run (to draw from the prior, to trace, or to fit). Build models from <see cref="Bayes"/>,
/// <see cref="Layer"/> and <see cref="Link"/>, and compose them with C# query syntax:
/// <code>
/// var model = from mu in Layer.Adaptive().Apply("x", x)
///             from b in Layer.Intercept().Apply("b")
///             from y in Link.Gaussian("y", mu + b, yObs)
///             select y;
/// </code>
/// </summary>
/// <typeparam name="T">What the program returns (usually an <see cref="NdArray"/>).</typeparam>
public sealed class BayesModel<T>
{
    internal BayesModel(Model<T> value) => Value = value;

    internal Model<T> Value { get; }

    /// <summary>Maps the result with a function (C# query syntax: <c>select</c>).</summary>
    /// <typeparam name="TResult">The new result type.</typeparam>
    /// <param name="selector">The function.</param>
    /// <exception cref="ArgumentNullException"><paramref name="selector"/> is null.</exception>
    public BayesModel<TResult> Select<TResult>(Func<T, TResult> selector)
    {
        ArgumentNullException.ThrowIfNull(selector);
        return new(Model.map(FuncConvert.FromFunc(selector), Value));
    }

    /// <summary>Runs this model, then the model that <paramref name="selector"/> builds from its result.</summary>
    /// <typeparam name="TResult">The result type of the second model.</typeparam>
    /// <param name="selector">Builds the second model from this model's result.</param>
    /// <exception cref="ArgumentNullException"><paramref name="selector"/> is null.</exception>
    public BayesModel<TResult> SelectMany<TResult>(Func<T, BayesModel<TResult>> selector)
    {
        ArgumentNullException.ThrowIfNull(selector);
        return new(Model.bind(FuncConvert.FromFunc<T, Model<TResult>>(t => Bayes.Check(selector(t), nameof(selector)).Value), Value));
    }

    /// <summary>
    /// Runs this model, then the model that <paramref name="selector"/> builds from its result, and
    /// combines both results (C# query syntax: a second <c>from</c>).
    /// </summary>
    /// <typeparam name="TNext">The result type of the second model.</typeparam>
    /// <typeparam name="TResult">The combined result type.</typeparam>
    /// <param name="selector">Builds the second model from this model's result.</param>
    /// <param name="resultSelector">Combines the two results.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public BayesModel<TResult> SelectMany<TNext, TResult>(Func<T, BayesModel<TNext>> selector, Func<T, TNext, TResult> resultSelector)
    {
        ArgumentNullException.ThrowIfNull(selector);
        ArgumentNullException.ThrowIfNull(resultSelector);
        return new(Model.bind(
            FuncConvert.FromFunc<T, Model<TResult>>(t =>
                Model.map(FuncConvert.FromFunc<TNext, TResult>(u => resultSelector(t, u)), Bayes.Check(selector(t), nameof(selector)).Value)),
            Value));
    }

    /// <summary>Runs this model and then <paramref name="next"/>, returning the latter's result.</summary>
    /// <typeparam name="TNext">The result type of <paramref name="next"/>.</typeparam>
    /// <param name="next">The model to run second.</param>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is null.</exception>
    public BayesModel<TNext> Then<TNext>(BayesModel<TNext> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return SelectMany(_ => next);
    }

    /// <summary>
    /// The same model with the given sites fixed to values (NumPyro's substitute): sample and param sites
    /// of these names take the values instead of drawing them; they are not treated as observed.
    /// </summary>
    /// <param name="values">Values by site name.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> or a value is null.</exception>
    public BayesModel<T> Substitute(IReadOnlyDictionary<string, NdArray> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(Handlers.substitute(Convert.ToMap(Bayes.NoNulls(values, nameof(values))), Value));
    }

    /// <summary>
    /// The same model with the given sample sites observed at values (NumPyro's condition): they add their
    /// log density and are no longer latent.
    /// </summary>
    /// <param name="values">Observations by site name.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> or a value is null.</exception>
    public BayesModel<T> Condition(IReadOnlyDictionary<string, NdArray> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(Handlers.condition(Convert.ToMap(Bayes.NoNulls(values, nameof(values))), Value));
    }

    /// <summary>Runs the model once from the prior with a seed and records every site.</summary>
    /// <param name="seed">The seed of the random draws.</param>
    public ModelTrace<T> Trace(ulong seed = 0)
    {
        var run = Traced.run(Rng.key(seed), Value);
        return new ModelTrace<T>(run.Item1, run.Item2);
    }

    /// <summary>
    /// Draws from the prior (and the prior predictive, for observed sites given no data): every latent and
    /// deterministic site's draws stacked on a new first axis, by site name.
    /// </summary>
    /// <param name="draws">How many draws (at least 1).</param>
    /// <param name="seed">The seed of the random draws.</param>
    /// <exception cref="ArgumentException"><paramref name="draws"/> is less than 1.</exception>
    public IReadOnlyDictionary<string, NdArray> SamplePrior(int draws, ulong seed = 0) =>
        Convert.FromMap(ModelInfo.samplePrior(Rng.key(seed), draws, Value));

    /// <summary>A printable table of the model's sites (kind, distribution, shapes, plates) from one prior run.</summary>
    /// <param name="seed">The seed of the prior run.</param>
    public string Describe(ulong seed = 0) => ModelInfo.describe(Rng.key(seed), Value);

    /// <inheritdoc />
    public override string ToString() => $"BayesModel<{typeof(T).Name}>";
}

/// <summary>The primitives models are built from, and the entry points of composition.</summary>
public static class Bayes
{
    internal static BayesModel<TM> Check<TM>(BayesModel<TM>? m, string what) =>
        m ?? throw new InvalidOperationException($"The function passed as '{what}' returned a null model.");

    internal static IReadOnlyDictionary<string, NdArray> NoNulls(IReadOnlyDictionary<string, NdArray> values, string param)
    {
        foreach (var kv in values)
            if (kv.Value is null) throw new ArgumentNullException(param, $"The value of '{kv.Key}' is null.");
        return values;
    }

    internal static void CheckName(string? name, string param = "name")
    {
        ArgumentNullException.ThrowIfNull(name, param);
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A site needs a non-empty name.", param);
    }

    internal static BayesModel<NdArray> Wrap(Model<FTensor?> m) =>
        new(Model.map(FuncConvert.FromFunc<FTensor?, NdArray>(NdArray.Wrap), m));

    /// <summary>A model that returns <paramref name="value"/> and has no sites.</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="value">The value.</param>
    public static BayesModel<T> Return<T>(T value) => new(Model.ret(value));

    /// <summary>A latent random variable named <paramref name="name"/> with a prior.</summary>
    /// <param name="name">The site's name (unique within the model).</param>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public static BayesModel<NdArray> Sample(string name, Prior prior)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(prior);
        return Wrap(Model.sample(name, prior.Value));
    }

    /// <summary>
    /// A random variable observed as <paramref name="value"/>; when <paramref name="value"/> is null it is
    /// sampled instead (a prediction).
    /// </summary>
    /// <param name="name">The site's name.</param>
    /// <param name="likelihood">Its distribution.</param>
    /// <param name="value">The observation, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="likelihood"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public static BayesModel<NdArray> Observe(string name, Prior likelihood, NdArray? value)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(likelihood);
        return Wrap(Model.observe(name, likelihood.Value, Convert.Option(value)));
    }

    /// <summary>A learnable parameter (fitted by point estimation, not given a posterior).</summary>
    /// <param name="name">The site's name.</param>
    /// <param name="initialValue">The starting value (on the constrained set).</param>
    /// <param name="constraint">The set the value lives on; null means the real numbers.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="initialValue"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public static BayesModel<NdArray> Param(string name, NdArray initialValue, ParamConstraint? constraint = null)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(initialValue);
        return Wrap(Model.param(name, initialValue.Value, (constraint ?? ParamConstraint.Real).Value));
    }

    /// <summary>Records a value under a name (for example a linear predictor) and returns it.</summary>
    /// <param name="name">The site's name.</param>
    /// <param name="value">The value.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public static BayesModel<NdArray> Deterministic(string name, NdArray value)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(value);
        return Wrap(Model.deterministic(name, value.Value));
    }

    /// <summary>Adds a term to the model's log density; returns the term.</summary>
    /// <param name="name">The site's name.</param>
    /// <param name="logFactor">The term (summed over its elements).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    public static BayesModel<NdArray> Factor(string name, NdArray logFactor)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(logFactor);
        return new(Model.map(FuncConvert.FromFunc<Unit, NdArray>(_ => logFactor), Model.factor(name, logFactor.Value)));
    }

    /// <summary>
    /// A plate of <paramref name="size"/> conditionally independent elements. With a subsample size the
    /// body gets that many random indices (index the data with them) and every log density inside is
    /// scaled by size / subsample. Plates work with the full-data ELBO (no batch size in the fit).
    /// </summary>
    /// <typeparam name="T">The body's result type.</typeparam>
    /// <param name="name">The plate's name.</param>
    /// <param name="size">The number of elements (positive).</param>
    /// <param name="body">Builds the body from the plate's int32 indices.</param>
    /// <param name="subsampleSize">The subsample size, or null for all elements.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="body"/> is null.</exception>
    /// <exception cref="ArgumentException">The size or the subsample size is out of range.</exception>
    public static BayesModel<T> Plate<T>(string name, int size, Func<NdArray, BayesModel<T>> body, int? subsampleSize = null)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(body);
        return new(Model.plate(name, size, Convert.Option(subsampleSize),
            FuncConvert.FromFunc<FTensor?, Model<T>>(idx => Check(body(NdArray.Wrap(idx)), nameof(body)).Value)));
    }
}

/// <summary>The set a learnable parameter lives on.</summary>
public sealed class ParamConstraint
{
    private ParamConstraint(FConstraint value) => Value = value;

    internal FConstraint Value { get; }

    /// <summary>All real numbers.</summary>
    public static ParamConstraint Real { get; } = new(FConstraint.Real);
    /// <summary>Positive numbers.</summary>
    public static ParamConstraint Positive { get; } = new(FConstraint.Positive);
    /// <summary>Numbers in (0, 1).</summary>
    public static ParamConstraint UnitInterval { get; } = new(FConstraint.UnitInterval);
    /// <summary>Vectors of non-negative numbers that sum to 1 (last axis).</summary>
    public static ParamConstraint Simplex { get; } = new(FConstraint.Simplex);
    /// <summary>Increasing vectors (last axis).</summary>
    public static ParamConstraint OrderedVector { get; } = new(FConstraint.OrderedVector);
    /// <summary>Lower-triangular matrices with a positive diagonal.</summary>
    public static ParamConstraint LowerCholesky { get; } = new(FConstraint.LowerCholesky);
    /// <summary>Symmetric positive-definite matrices.</summary>
    public static ParamConstraint PositiveDefinite { get; } = new(FConstraint.PositiveDefinite);
    /// <summary>Numbers greater than <paramref name="lowerBound"/>.</summary>
    /// <param name="lowerBound">The bound.</param>
    public static ParamConstraint GreaterThan(double lowerBound) => new(FConstraint.NewGreaterThan(lowerBound));
    /// <summary>Numbers in (<paramref name="lowerBound"/>, <paramref name="upperBound"/>).</summary>
    /// <param name="lowerBound">The lower bound.</param>
    /// <param name="upperBound">The upper bound (greater).</param>
    /// <exception cref="ArgumentException">The bounds are not increasing.</exception>
    public static ParamConstraint Interval(double lowerBound, double upperBound)
    {
        if (!(upperBound > lowerBound))
            throw new ArgumentException($"ParamConstraint.Interval: the upper bound {upperBound} must exceed the lower bound {lowerBound}.", nameof(upperBound));
        return new(FConstraint.NewInterval(lowerBound, upperBound));
    }

    /// <inheritdoc />
    public override string ToString() => Value.ToString();
}

/// <summary>What a site of a model is.</summary>
public enum SiteRole
{
    /// <summary>A latent random variable.</summary>
    Latent,
    /// <summary>An observed random variable.</summary>
    Observed,
    /// <summary>A learnable parameter.</summary>
    Param,
    /// <summary>A recorded function of other values.</summary>
    Deterministic,
    /// <summary>An extra term of the log density.</summary>
    Factor,
    /// <summary>A plate's indices.</summary>
    Plate,
}

/// <summary>One site of a traced model run.</summary>
public sealed class TraceSite
{
    internal TraceSite(Site s)
    {
        Name = s.Name;
        Role = s.Kind.Tag switch
        {
            FSiteKind.Tags.SampleSite => s.IsObserved ? SiteRole.Observed : SiteRole.Latent,
            FSiteKind.Tags.ParamSite => SiteRole.Param,
            FSiteKind.Tags.DeterministicSite => SiteRole.Deterministic,
            FSiteKind.Tags.FactorSite => SiteRole.Factor,
            _ => SiteRole.Plate,
        };
        Value = s.Value is { } v ? NdArray.Wrap(TensorModule.detach(v.Value)) : null;
        DistributionName = s.Dist is { } d ? Dist.name(d.Value) : null;
        Plates = s.Plates.Select(p => p.Name).ToArray();
    }

    /// <summary>The site's name.</summary>
    public string Name { get; }
    /// <summary>What the site is.</summary>
    public SiteRole Role { get; }
    /// <summary>The site's value in this run (detached), or null when it has none.</summary>
    public NdArray? Value { get; }
    /// <summary>The distribution's family name for random sites, else null.</summary>
    public string? DistributionName { get; }
    /// <summary>The names of the plates the site sits in, innermost first.</summary>
    public IReadOnlyList<string> Plates { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Role}{(DistributionName is null ? "" : ", " + DistributionName)})";
}

/// <summary>A recorded run of a model: its result and its sites in the order they ran.</summary>
/// <typeparam name="T">The model's result type.</typeparam>
public sealed class ModelTrace<T>
{
    private readonly Dictionary<string, TraceSite> byName;

    internal ModelTrace(T result, FTrace trace)
    {
        Result = result;
        Sites = trace.Sites.Select(s => new TraceSite(s)).ToArray();
        byName = Sites.Where(s => s.Role != SiteRole.Plate).ToDictionary(s => s.Name);
        LogJoint = TensorModule.toScalar(TraceModule.logJoint(trace));
    }

    /// <summary>What the model returned.</summary>
    public T Result { get; }
    /// <summary>Every site, in run order.</summary>
    public IReadOnlyList<TraceSite> Sites { get; }
    /// <summary>The sum of the log densities of every random and factor site.</summary>
    public double LogJoint { get; }
    /// <summary>The names of the latent sites.</summary>
    public IReadOnlyList<string> LatentNames => Sites.Where(s => s.Role == SiteRole.Latent).Select(s => s.Name).ToArray();

    /// <summary>The site with this name.</summary>
    /// <param name="name">The name.</param>
    /// <exception cref="KeyNotFoundException">There is no such site; the message lists the sites.</exception>
    public TraceSite this[string name] =>
        byName.TryGetValue(name ?? throw new ArgumentNullException(nameof(name)), out var s)
            ? s
            : throw new KeyNotFoundException($"No site named '{name}'; the sites are: {string.Join(", ", byName.Keys)}.");

    /// <summary>True when a site of this name exists.</summary>
    /// <param name="name">The name.</param>
    public bool Contains(string name) => name is not null && byName.ContainsKey(name);
}
