using System.Collections;
using Microsoft.FSharp.Collections;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// Named data arrays whose first axis is the row (observation) axis: what a model function reads and what
/// fitting batches. Add entries fluently or with a collection initializer:
/// <code>var data = new DataSet().Add("x", x).Add("y", y);</code>
/// Every entry must have the same number of rows; <see cref="Add(string, NdArray)"/> checks this.
/// </summary>
public sealed class DataSet : IReadOnlyDictionary<string, NdArray>
{
    private readonly List<string> order = new();
    private readonly Dictionary<string, NdArray> items = new(StringComparer.Ordinal);

    /// <summary>An empty data set.</summary>
    public DataSet() { }

    internal static DataSet FromMap(FSharpMap<string, FTensor?> map)
    {
        var d = new DataSet();
        foreach (var kv in map) d.AddUnchecked(kv.Key, NdArray.Wrap(kv.Value));
        return d;
    }

    internal FSharpMap<string, FTensor?> ToMap() => Convert.ToMap(this);

    private void AddUnchecked(string name, NdArray value)
    {
        order.Add(name);
        items[name] = value;
    }

    /// <summary>Adds an array under a name and returns this data set (for chaining).</summary>
    /// <param name="name">The name the model reads it by.</param>
    /// <param name="value">An array with a row axis first, or a scalar.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">
    /// The name is empty or already present, or its number of rows differs from the entries already added
    /// (the message names both shapes); a scalar (a constant of every row) is allowed.
    /// </exception>
    public DataSet Add(string name, NdArray value)
    {
        Bayes.CheckName(name);
        ArgumentNullException.ThrowIfNull(value);
        if (items.ContainsKey(name)) throw new ArgumentException($"DataSet: '{name}' is already present.", nameof(name));
        // the core's one row rule (scalars are constants of every row)
        FunctionalBayes.Data.rows(ToMap().Add(name, value.Value));
        AddUnchecked(name, value);
        return this;
    }

    /// <summary>Adds a vector (one value per row) and returns this data set.</summary>
    /// <param name="name">The name.</param>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">See <see cref="Add(string, NdArray)"/>.</exception>
    public DataSet Add(string name, double[] values) => Add(name, NdArray.FromArray(values ?? throw new ArgumentNullException(nameof(values))));

    /// <summary>Adds a matrix (rows by columns) and returns this data set.</summary>
    /// <param name="name">The name.</param>
    /// <param name="values">The matrix.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">See <see cref="Add(string, NdArray)"/>.</exception>
    public DataSet Add(string name, double[,] values) => Add(name, NdArray.FromMatrix(values ?? throw new ArgumentNullException(nameof(values))));

    /// <summary>Adds integer ids (one per row, for example categories) and returns this data set.</summary>
    /// <param name="name">The name.</param>
    /// <param name="values">The ids.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">See <see cref="Add(string, NdArray)"/>.</exception>
    public DataSet Add(string name, int[] values) => Add(name, NdArray.FromArray(values ?? throw new ArgumentNullException(nameof(values))));

    /// <summary>A new data set with the same entries except <paramref name="name"/> (for example the observations, to predict).</summary>
    /// <param name="name">The entry to leave out.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public DataSet Without(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var d = new DataSet();
        foreach (var k in order)
            if (k != name) d.AddUnchecked(k, items[k]);
        return d;
    }

    /// <summary>The number of rows (0 when empty).</summary>
    public int Rows => order.Count == 0 ? 0 : FunctionalBayes.Data.rows(ToMap());

    /// <summary>The entry of this name, or null when there is none (for example the observations when predicting).</summary>
    /// <param name="name">The name.</param>
    public NdArray? GetOrNull(string name) => name is not null && items.TryGetValue(name, out var v) ? v : null;

    /// <summary>The entry of this name.</summary>
    /// <param name="key">The name.</param>
    /// <exception cref="KeyNotFoundException">There is no such entry; the message lists the entries.</exception>
    public NdArray this[string key] =>
        items.TryGetValue(key ?? throw new ArgumentNullException(nameof(key)), out var v)
            ? v
            : throw new KeyNotFoundException($"DataSet has no entry '{key}'; it has: {string.Join(", ", order)}.");

    /// <summary>The names, in the order they were added.</summary>
    public IEnumerable<string> Keys => order;

    /// <summary>The arrays, in the order they were added.</summary>
    public IEnumerable<NdArray> Values => order.Select(k => items[k]);

    /// <summary>The number of entries.</summary>
    public int Count => order.Count;

    /// <summary>True when an entry of this name exists.</summary>
    /// <param name="key">The name.</param>
    public bool ContainsKey(string key) => key is not null && items.ContainsKey(key);

    /// <summary>Gets the entry of this name when it exists.</summary>
    /// <param name="key">The name.</param>
    /// <param name="value">The entry, or null.</param>
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out NdArray value) =>
        items.TryGetValue(key, out value);

    /// <summary>The entries, in the order they were added.</summary>
    public IEnumerator<KeyValuePair<string, NdArray>> GetEnumerator() =>
        order.Select(k => new KeyValuePair<string, NdArray>(k, items[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    internal static string Format(int[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <inheritdoc />
    public override string ToString() =>
        $"DataSet({Rows} rows: {string.Join(", ", order.Select(k => k + " " + Format(items[k].Shape)))})";
}
