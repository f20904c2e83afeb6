using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FunctionalBayes.Tables;

namespace FunctionalBayes.Fluent;

/// <summary>
/// Which columns of a table to read and how, for <see cref="DataSet.FromCsv"/> and the other table readers:
/// <code>var columns = new TableColumns().Double("x1").Double("x2").Categorical("region").Double("y").Matrix("x", "x1", "x2");</code>
/// Each column becomes an array under its name, except those a <see cref="Matrix"/> stacks into one
/// rows-by-k array. Missing values (null, empty, NaN) are errors unless <see cref="DropMissing"/> or
/// <see cref="FillMissing"/> says otherwise.
/// </summary>
public sealed class TableColumns
{
    private readonly List<Column> columns = new();
    private readonly List<(string Name, string[] Columns)> matrices = new();
    private MissingPolicy missing = MissingPolicy.Fail;
    private UnseenLevelPolicy unseen = UnseenLevelPolicy.Fail;

    private TableColumns Add(string name, ColumnKind kind)
    {
        Bayes.CheckName(name);
        columns.Add(new Column(name, kind));
        return this;
    }

    /// <summary>A float64 column (any numeric column, or numbers as text).</summary>
    /// <param name="name">The column's name in the table and the array's name.</param>
    public TableColumns Double(string name) => Add(name, ColumnKind.Float64);

    /// <summary>A float32 column.</summary>
    /// <param name="name">The column's name.</param>
    public TableColumns Single(string name) => Add(name, ColumnKind.Float32);

    /// <summary>An int32 column (integral values only).</summary>
    /// <param name="name">The column's name.</param>
    public TableColumns Integer(string name) => Add(name, ColumnKind.Int32);

    /// <summary>A categorical column read as ids 0..K-1; the levels, in ordinal order, are the vocabulary
    /// (see <see cref="DataSet.Vocabularies"/>).</summary>
    /// <param name="name">The column's name.</param>
    public TableColumns Categorical(string name) => Add(name, ColumnKind.NewCategorical(null));

    /// <summary>A categorical column with given levels (the fit's vocabulary, to read rows for prediction):
    /// a level outside them is an error naming it, unless <see cref="UnseenAs"/> maps it.</summary>
    /// <param name="name">The column's name.</param>
    /// <param name="levels">The levels in id order.</param>
    public TableColumns Categorical(string name, IEnumerable<string> levels) =>
        Add(name, ColumnKind.NewCategorical(FSharpOption<Vocabulary>.Some(new Vocabulary(levels ?? throw new ArgumentNullException(nameof(levels))))));

    /// <summary>Stacks numeric columns (all double or all single) into one rows-by-k array.</summary>
    /// <param name="name">The array's name.</param>
    /// <param name="columnNames">The columns, in order; each must be listed.</param>
    public TableColumns Matrix(string name, params string[] columnNames)
    {
        Bayes.CheckName(name);
        matrices.Add((name, columnNames ?? throw new ArgumentNullException(nameof(columnNames))));
        return this;
    }

    /// <summary>Leaves out rows with a missing value.</summary>
    public TableColumns DropMissing() { missing = MissingPolicy.DropRow; return this; }

    /// <summary>Fills missing numeric values with a value (a missing level is still an error).</summary>
    /// <param name="value">The value.</param>
    public TableColumns FillMissing(double value) { missing = MissingPolicy.NewFill(value); return this; }

    /// <summary>Reads levels outside a given vocabulary as this level of it.</summary>
    /// <param name="level">A level of every given vocabulary.</param>
    public TableColumns UnseenAs(string level) { unseen = UnseenLevelPolicy.NewAsLevel(level ?? throw new ArgumentNullException(nameof(level))); return this; }

    internal TableSchema ToSchema() =>
        new(ListModule.OfSeq(columns),
            ListModule.OfSeq(matrices.Select(m => Tuple.Create(m.Name, ListModule.OfSeq(m.Columns)))),
            missing, unseen);
}

/// <summary>
/// A table streamed in shuffled minibatches, for fitting tables larger than memory: pass it to
/// <see cref="SviFitter.FromStream"/> with a batch size. Each epoch
/// reads the table again; the order of its parts (Parquet row groups) and of the rows in a bounded shuffle
/// buffer come from the fit's seed. Create it with <see cref="DataSet.StreamParquet"/>,
/// <see cref="DataSet.StreamCsv"/> or <see cref="DataSet.StreamQuery"/>.
/// </summary>
public sealed class StreamedDataSet
{
    internal StreamedDataSet(StreamedTable table) { Table = table; }

    internal StreamedTable Table { get; }

    /// <summary>The rows of the table (counted in a first pass, or read from a Parquet footer).</summary>
    public int Rows => Table.Rows;

    /// <summary>The levels of each categorical column, in id order.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Vocabularies => DataSet.Levels(Table.Vocabularies);

    /// <inheritdoc />
    public override string ToString() => $"StreamedDataSet({Rows} rows of {Table.Source})";
}
