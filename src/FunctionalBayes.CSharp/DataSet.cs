using System.Collections;
using System.Data.Common;
using Microsoft.FSharp.Collections;
using FunctionalBayes.Tables;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// Named data arrays whose first axis is the row (observation) axis: what a model function reads and what
/// fitting batches. Add entries fluently or with an initializer:
/// <code>var data = new DataSet().Add("x", x).Add("y", y);
/// var same = new DataSet { ["x"] = x, ["y"] = y };      // or new DataSet { { "x", x }, { "y", y } }</code>
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

    private IReadOnlyDictionary<string, IReadOnlyList<string>> vocabularies = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>The levels of each categorical column read from a table, in id order (level i has id i); empty
    /// for data sets built in memory. Keep them with the fit: rows read for prediction must use the same ids
    /// (<see cref="TableColumns.Categorical(string, IEnumerable{string})"/>).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Vocabularies => vocabularies;

    internal static IReadOnlyDictionary<string, IReadOnlyList<string>> Levels(FSharpMap<string, Vocabulary> vocabularies) =>
        vocabularies.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value.Levels);

    private static DataSet FromTable(TableColumns columns, Func<TableSource> source)
    {
        ArgumentNullException.ThrowIfNull(columns);
        var t = Table.read(columns.ToSchema(), source());
        var d = FromMap(t.Data);
        d.vocabularies = Levels(t.Vocabularies);
        return d;
    }

    /// <summary>Reads columns of a CSV file (a header row; the delimiter is detected; empty fields are missing).</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <exception cref="TableReadException">A column is missing, a value has the wrong type, a value is missing
    /// (unless the columns drop or fill it), a level is unseen, or the file is truncated; the message names the
    /// file, column and row.</exception>
    public static DataSet FromCsv(string path, TableColumns columns) => FromTable(columns, () => TableSource.Csv(path));

    /// <summary>Reads columns of a Parquet file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    public static DataSet FromParquet(string path, TableColumns columns) => FromTable(columns, () => TableSource.Parquet(path));

    /// <summary>Reads columns from an open data reader of any ADO.NET database (the result of a SQL query).</summary>
    /// <param name="reader">The reader; it is read to the end and disposed.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names the query in error messages.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    public static DataSet FromDataReader(DbDataReader reader, TableColumns columns, string name = "data reader") =>
        FromTable(columns, () => TableSource.Reader(name, reader));

    /// <summary>Reads columns of Arrow record batches.</summary>
    /// <param name="batches">The batches, in row order.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names them in error messages.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    public static DataSet FromArrow(IEnumerable<Apache.Arrow.RecordBatch> batches, TableColumns columns, string name = "record batches") =>
        FromTable(columns, () => TableSource.Arrow(name, batches ?? throw new ArgumentNullException(nameof(batches))));

    /// <summary>Reads columns of a DataFrame.</summary>
    /// <param name="frame">The frame.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names it in error messages.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    public static DataSet FromDataFrame(Microsoft.Data.Analysis.DataFrame frame, TableColumns columns, string name = "data frame") =>
        FromTable(columns, () => TableSource.DataFrame(name, frame));

    private static StreamedDataSet Stream(TableSource source, TableColumns columns, int bufferRows)
    {
        ArgumentNullException.ThrowIfNull(columns);
        return new StreamedDataSet(Table.stream(columns.ToSchema(), StreamOptions.Default.WithBufferRows(bufferRows), source));
    }

    /// <summary>Streams a Parquet file in shuffled minibatches (see <see cref="StreamedDataSet"/>).</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="bufferRows">Rows in the shuffle buffer (memory is bounded by it and one row group).</param>
    public static StreamedDataSet StreamParquet(string path, TableColumns columns, int bufferRows = 65536) =>
        Stream(TableSource.Parquet(path), columns, bufferRows);

    /// <summary>Streams a CSV file in shuffled minibatches; a first pass counts its rows.</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="bufferRows">Rows in the shuffle buffer.</param>
    public static StreamedDataSet StreamCsv(string path, TableColumns columns, int bufferRows = 65536) =>
        Stream(TableSource.Csv(path), columns, bufferRows);

    /// <summary>Streams a query on any ADO.NET database in shuffled minibatches: <paramref name="openReader"/>
    /// opens a connection and runs the query each time the table is read (a first pass, then every epoch).</summary>
    /// <param name="openReader">Runs the query; the reader is disposed after each pass (open it with
    /// <c>CommandBehavior.CloseConnection</c> to close the connection with it).</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names the query in error messages.</param>
    /// <param name="bufferRows">Rows in the shuffle buffer.</param>
    public static StreamedDataSet StreamQuery(Func<DbDataReader> openReader, TableColumns columns, string name = "query", int bufferRows = 65536) =>
        Stream(TableSource.Query(name, openReader), columns, bufferRows);

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

    /// <summary>The entry of this name; in an object initializer, adds it (<c>new DataSet { ["x"] = x, ["y"] = y }</c>,
    /// checked as <see cref="Add(string, NdArray)"/>).</summary>
    /// <param name="key">The name.</param>
    /// <exception cref="KeyNotFoundException">There is no such entry; the message lists the entries.</exception>
    public NdArray this[string key]
    {
        get => items.TryGetValue(key ?? throw new ArgumentNullException(nameof(key)), out var v)
            ? v
            : throw new KeyNotFoundException($"DataSet has no entry '{key}'; it has: {string.Join(", ", order)}.");
        init => Add(key, value);
    }

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
