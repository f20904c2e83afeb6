namespace rec FunctionalBayes.Fluent

open System
open System.Collections
open System.Collections.Generic
open System.Data.Common
open System.Runtime.InteropServices
open FunctionalBayes
open FunctionalBayes.Tables
open FunctionalBayes.Tensors

/// Conversions between the facade's types and the core's (the satellites' C# calls some of them).
[<RequireQualifiedAccess>]
module internal Convert =
    /// An array as an F# option (None for null).
    let Option (a: NdArray) : Tensor option = if isNull a then None else Some a.Value

    /// Named arrays as the core's map.
    let ToMap (items: seq<KeyValuePair<string, NdArray>>) : Map<string, Tensor> =
        items |> Seq.map (fun kv -> kv.Key, kv.Value.Value) |> Map.ofSeq

    /// The core's map as named arrays in ordinal name order.
    let FromMap (map: Map<string, Tensor>) : IReadOnlyDictionary<string, NdArray> =
        let d = SortedDictionary<string, NdArray>(StringComparer.Ordinal)
        for kv in map do d[kv.Key] <- NdArray.Wrap kv.Value
        d :> IReadOnlyDictionary<string, NdArray>

    /// An activation as an F# option (None when there is none).
    let Activation (f: Func<NdArray, NdArray>) : (Tensor -> Tensor) option =
        if isNull f then None
        else
            Some(fun t ->
                let r = f.Invoke(NdArray.Wrap t)
                if isNull r then invalidOp "The activation function returned null."
                r.Value)

    /// A facade model function as the core's model function of the data (the result boxed).
    let ModelFunction<'T> (model: Func<DataSet, BayesModel<'T>>, name: string) : Map<string, Tensor> -> Model<obj> =
        Arg.notNull name model
        fun map ->
            let m = model.Invoke(DataSet.FromMap map)
            if isNull m then invalidOp "The model function returned null."
            Model.map box m.Value

    /// Levels by column as C# reads them.
    let Levels (vocabularies: Map<string, Vocabulary>) : IReadOnlyDictionary<string, IReadOnlyList<string>> =
        let d = Dictionary<string, IReadOnlyList<string>>()
        for kv in vocabularies do d[kv.Key] <- Array.AsReadOnly kv.Value.Levels :> IReadOnlyList<string>
        d :> IReadOnlyDictionary<_, _>

    /// A shape as text: [2, 3].
    let Format (shape: int[]) = "[" + String.Join(", ", Array.map string shape) + "]"

/// <summary>
/// Named data arrays whose first axis is the row (observation) axis: what a model function reads and what
/// fitting batches. Add entries fluently or with an initializer:
/// <code>var data = new DataSet().Add("x", x).Add("y", y);
/// var same = new DataSet { ["x"] = x, ["y"] = y };      // or new DataSet { { "x", x }, { "y", y } }</code>
/// Every entry must have the same number of rows; <see cref="Add(string, NdArray)"/> checks this.
/// </summary>
[<Sealed; AllowNullLiteral>]
type DataSet() =
    let order = ResizeArray<string>()
    let items = Dictionary<string, NdArray>(StringComparer.Ordinal)
    let mutable vocabularies: IReadOnlyDictionary<string, IReadOnlyList<string>> =
        Dictionary<string, IReadOnlyList<string>>() :> IReadOnlyDictionary<_, _>

    member private _.AddUnchecked(name: string, value: NdArray) =
        order.Add name
        items[name] <- value

    static member internal FromMap(map: Map<string, Tensor>) =
        let d = DataSet()
        for kv in map do d.AddUnchecked(kv.Key, NdArray.Wrap kv.Value)
        d

    member internal this.ToMap() : Map<string, Tensor> = Convert.ToMap(this :> seq<KeyValuePair<string, NdArray>>)

    /// <summary>The levels of each categorical column read from a table, in id order (level i has id i); empty
    /// for data sets built in memory. Keep them with the fit: rows read for prediction must use the same ids
    /// (<see cref="TableColumns.Categorical(string, IEnumerable{string})"/>).</summary>
    member _.Vocabularies = vocabularies

    static member private FromTable(columns: TableColumns, source: unit -> TableSource) =
        Arg.notNull "columns" columns
        let t = Table.read (columns.ToSchema()) (source ())
        let d = DataSet.FromMap t.Data
        d.SetVocabularies(Convert.Levels t.Vocabularies)
        d

    member private _.SetVocabularies(v) = vocabularies <- v

    /// <summary>Reads columns of a CSV file (a header row; the delimiter is detected; empty fields are missing).</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <exception cref="TableReadException">A column is missing, a value has the wrong type, a value is missing
    /// (unless the columns drop or fill it), a level is unseen, or the file is truncated; the message names the
    /// file, column and row.</exception>
    static member FromCsv(path: string, columns: TableColumns) = DataSet.FromTable(columns, fun () -> TableSource.Csv path)

    /// <summary>Reads columns of a Parquet file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    static member FromParquet(path: string, columns: TableColumns) = DataSet.FromTable(columns, fun () -> TableSource.Parquet path)

    /// <summary>Reads columns from an open data reader of any ADO.NET database (the result of a SQL query).</summary>
    /// <param name="reader">The reader; it is read to the end and disposed.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names the query in error messages.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    static member FromDataReader(reader: DbDataReader, columns: TableColumns, [<Optional; DefaultParameterValue("data reader")>] name: string) =
        DataSet.FromTable(columns, fun () -> TableSource.Reader(name, reader))

    /// <summary>Reads columns of Arrow record batches.</summary>
    /// <param name="batches">The batches, in row order.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names them in error messages.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    static member FromArrow(batches: IEnumerable<Apache.Arrow.RecordBatch>, columns: TableColumns, [<Optional; DefaultParameterValue("record batches")>] name: string) =
        DataSet.FromTable(columns, fun () -> TableSource.Arrow(name, Arg.get "batches" batches))

    /// <summary>Reads columns of a DataFrame.</summary>
    /// <param name="frame">The frame.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names it in error messages.</param>
    /// <exception cref="TableReadException">See <see cref="FromCsv"/>.</exception>
    static member FromDataFrame(frame: Microsoft.Data.Analysis.DataFrame, columns: TableColumns, [<Optional; DefaultParameterValue("data frame")>] name: string) =
        DataSet.FromTable(columns, fun () -> TableSource.DataFrame(name, frame))

    static member private Stream(source: TableSource, columns: TableColumns, bufferRows: int) =
        Arg.notNull "columns" columns
        StreamedDataSet(Table.stream (columns.ToSchema()) (StreamOptions.Default.WithBufferRows bufferRows) source)

    /// <summary>Streams a Parquet file in shuffled minibatches (see <see cref="StreamedDataSet"/>).</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="bufferRows">Rows in the shuffle buffer (memory is bounded by it and one row group).</param>
    static member StreamParquet(path: string, columns: TableColumns, [<Optional; DefaultParameterValue(65536)>] bufferRows: int) =
        DataSet.Stream(TableSource.Parquet path, columns, bufferRows)

    /// <summary>Streams a CSV file in shuffled minibatches; a first pass counts its rows.</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="bufferRows">Rows in the shuffle buffer.</param>
    static member StreamCsv(path: string, columns: TableColumns, [<Optional; DefaultParameterValue(65536)>] bufferRows: int) =
        DataSet.Stream(TableSource.Csv path, columns, bufferRows)

    /// <summary>Streams a query on any ADO.NET database in shuffled minibatches: <paramref name="openReader"/>
    /// opens a connection and runs the query each time the table is read (a first pass, then every epoch).</summary>
    /// <param name="openReader">Runs the query; the reader is disposed after each pass (open it with
    /// <c>CommandBehavior.CloseConnection</c> to close the connection with it).</param>
    /// <param name="columns">Which columns and how.</param>
    /// <param name="name">Names the query in error messages.</param>
    /// <param name="bufferRows">Rows in the shuffle buffer.</param>
    static member StreamQuery(openReader: Func<DbDataReader>, columns: TableColumns, [<Optional; DefaultParameterValue("query")>] name: string,
                              [<Optional; DefaultParameterValue(65536)>] bufferRows: int) =
        DataSet.Stream(TableSource.Query(name, openReader), columns, bufferRows)

    /// <summary>Adds an array under a name and returns this data set (for chaining).</summary>
    /// <param name="name">The name the model reads it by.</param>
    /// <param name="value">An array with a row axis first, or a scalar.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">
    /// The name is empty or already present, or its number of rows differs from the entries already added
    /// (the message names both shapes); a scalar (a constant of every row) is allowed.
    /// </exception>
    member this.Add(name: string, value: NdArray) : DataSet =
        Bayes.CheckName(name, "name")
        Arg.notNull "value" value
        if items.ContainsKey name then invalidArg "name" $"DataSet: '{name}' is already present."
        // the core's one row rule (scalars are constants of every row)
        FunctionalBayes.Data.rows (this.ToMap().Add(name, value.Value)) |> ignore
        this.AddUnchecked(name, value)
        this

    /// <summary>Adds a vector (one value per row) and returns this data set.</summary>
    /// <param name="name">The name.</param>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">See <see cref="Add(string, NdArray)"/>.</exception>
    member this.Add(name: string, values: float[]) = this.Add(name, NdArray.FromArray(Arg.get "values" values))

    /// <summary>Adds a matrix (rows by columns) and returns this data set.</summary>
    /// <param name="name">The name.</param>
    /// <param name="values">The matrix.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">See <see cref="Add(string, NdArray)"/>.</exception>
    member this.Add(name: string, values: float[,]) = this.Add(name, NdArray.FromMatrix(Arg.get "values" values))

    /// <summary>Adds integer ids (one per row, for example categories) and returns this data set.</summary>
    /// <param name="name">The name.</param>
    /// <param name="values">The ids.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">See <see cref="Add(string, NdArray)"/>.</exception>
    member this.Add(name: string, values: int[]) = this.Add(name, NdArray.FromArray(Arg.get "values" values))

    /// <summary>A new data set with the same entries except <paramref name="name"/> (for example the observations, to predict).</summary>
    /// <param name="name">The entry to leave out.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    member _.Without(name: string) =
        Arg.notNull "name" name
        let d = DataSet()
        for k in order do
            if k <> name then d.AddUnchecked(k, items[k])
        d

    /// <summary>The number of rows (0 when empty).</summary>
    member this.Rows = if order.Count = 0 then 0 else FunctionalBayes.Data.rows (this.ToMap())

    /// <summary>The entry of this name, or null when there is none (for example the observations when predicting).</summary>
    /// <param name="name">The name.</param>
    member _.GetOrNull(name: string) : NdArray =
        match name with
        | null -> null
        | n ->
            match items.TryGetValue n with
            | true, v -> v
            | _ -> null

    /// <summary>The entry of this name; in an object initializer, adds it (<c>new DataSet { ["x"] = x, ["y"] = y }</c>,
    /// checked as <see cref="Add(string, NdArray)"/>).</summary>
    /// <param name="key">The name.</param>
    /// <exception cref="KeyNotFoundException">There is no such entry; the message lists the entries.</exception>
    member this.Item
        with get (key: string) : NdArray =
            match items.TryGetValue(Arg.get "key" key) with
            | true, v -> v
            | _ -> raise (KeyNotFoundException $"""DataSet has no entry '{key}'; it has: {String.Join(", ", order)}.""")
        and set (key: string) (value: NdArray) = this.Add(key, value) |> ignore

    /// <summary>The names, in the order they were added.</summary>
    member _.Keys: IEnumerable<string> = order :> IEnumerable<string>

    /// <summary>The arrays, in the order they were added.</summary>
    member _.Values: IEnumerable<NdArray> = order |> Seq.map (fun k -> items[k])

    /// <summary>The number of entries.</summary>
    member _.Count = order.Count

    /// <summary>True when an entry of this name exists.</summary>
    /// <param name="key">The name.</param>
    member _.ContainsKey(key: string) = not (isNull key) && items.ContainsKey key

    /// <summary>Gets the entry of this name when it exists.</summary>
    /// <param name="key">The name.</param>
    /// <param name="value">The entry, or null.</param>
    member _.TryGetValue(key: string, [<Out>] value: byref<NdArray>) : bool = items.TryGetValue(key, &value)

    /// <summary>The entries, in the order they were added.</summary>
    member _.GetEnumerator() : IEnumerator<KeyValuePair<string, NdArray>> =
        (order |> Seq.map (fun k -> KeyValuePair(k, items[k]))).GetEnumerator()

    interface IReadOnlyDictionary<string, NdArray> with
        member this.Item with get (key: string) = this[key]
        member this.Keys = this.Keys
        member this.Values = this.Values
        member this.ContainsKey(key) = this.ContainsKey key
        member this.TryGetValue(key: string, value: byref<NdArray>) = this.TryGetValue(key, &value)

    interface IReadOnlyCollection<KeyValuePair<string, NdArray>> with
        member this.Count = this.Count

    interface IEnumerable<KeyValuePair<string, NdArray>> with
        member this.GetEnumerator() = this.GetEnumerator()

    interface IEnumerable with
        member this.GetEnumerator() = this.GetEnumerator() :> IEnumerator

    /// <inheritdoc />
    override this.ToString() =
        let entries = order |> Seq.map (fun k -> k + " " + Convert.Format (items[k].Shape))
        $"""DataSet({this.Rows} rows: {String.Join(", ", entries)})"""

/// <summary>
/// Which columns of a table to read and how, for <see cref="DataSet.FromCsv"/> and the other table readers:
/// <code>var columns = new TableColumns().Double("x1").Double("x2").Categorical("region").Double("y").Matrix("x", "x1", "x2");</code>
/// Each column becomes an array under its name, except those a <see cref="Matrix"/> stacks into one
/// rows-by-k array. Missing values (null, empty, NaN) are errors unless <see cref="DropMissing"/> or
/// <see cref="FillMissing"/> says otherwise.
/// </summary>
[<Sealed; AllowNullLiteral>]
type TableColumns() =
    let columns = ResizeArray<Column>()
    let matrices = ResizeArray<string * string[]>()
    let mutable missing = MissingPolicy.Fail
    let mutable unseen = UnseenLevelPolicy.Fail

    member private this.Add(name: string, column: string -> Column) =
        Bayes.CheckName(name, "name")
        columns.Add(column name)
        this

    /// <summary>A float64 column (any numeric column, or numbers as text).</summary>
    /// <param name="name">The column's name in the table and the array's name.</param>
    member this.Double(name: string) = this.Add(name, Column.float64)

    /// <summary>A float32 column.</summary>
    /// <param name="name">The column's name.</param>
    member this.Single(name: string) = this.Add(name, Column.float32)

    /// <summary>An int32 column (integral values only).</summary>
    /// <param name="name">The column's name.</param>
    member this.Integer(name: string) = this.Add(name, Column.int32)

    /// <summary>A categorical column read as ids 0..K-1; the levels, in ordinal order, are the vocabulary
    /// (see <see cref="DataSet.Vocabularies"/>).</summary>
    /// <param name="name">The column's name.</param>
    member this.Categorical(name: string) = this.Add(name, Column.categorical)

    /// <summary>A categorical column with given levels (the fit's vocabulary, to read rows for prediction):
    /// a level outside them is an error naming it, unless <see cref="UnseenAs"/> maps it.</summary>
    /// <param name="name">The column's name.</param>
    /// <param name="levels">The levels in id order.</param>
    member this.Categorical(name: string, levels: IEnumerable<string>) =
        let vocabulary = Vocabulary(Arg.get "levels" levels)
        this.Add(name, fun n -> Column.categoricalOf n vocabulary)

    /// <summary>Stacks numeric columns (all double or all single) into one rows-by-k array.</summary>
    /// <param name="name">The array's name.</param>
    /// <param name="columnNames">The columns, in order; each must be listed.</param>
    member this.Matrix(name: string, [<ParamArray>] columnNames: string[]) =
        Bayes.CheckName(name, "name")
        matrices.Add((name, Arg.get "columnNames" columnNames))
        this

    /// <summary>Leaves out rows with a missing value.</summary>
    member this.DropMissing() =
        missing <- MissingPolicy.DropRow
        this

    /// <summary>Fills missing numeric values with a value (a missing level is still an error).</summary>
    /// <param name="value">The value.</param>
    member this.FillMissing(value: float) =
        missing <- MissingPolicy.Fill value
        this

    /// <summary>Reads levels outside a given vocabulary as this level of it.</summary>
    /// <param name="level">A level of every given vocabulary.</param>
    member this.UnseenAs(level: string) =
        unseen <- UnseenLevelPolicy.AsLevel(Arg.get "level" level)
        this

    member internal _.ToSchema() : TableSchema =
        { Columns = List.ofSeq columns
          Matrices = [ for (n, cs) in matrices -> n, List.ofArray cs ]
          Missing = missing
          Unseen = unseen }

/// <summary>
/// A table streamed in shuffled minibatches, for fitting tables larger than memory: pass it to
/// <see cref="SviFitter.FromStream"/> with a batch size. Each epoch
/// reads the table again; the order of its parts (Parquet row groups) and of the rows in a bounded shuffle
/// buffer come from the fit's seed. Create it with <see cref="DataSet.StreamParquet"/>,
/// <see cref="DataSet.StreamCsv"/> or <see cref="DataSet.StreamQuery"/>.
/// </summary>
[<Sealed; AllowNullLiteral>]
type StreamedDataSet internal (table: StreamedTable) =
    member internal _.Table = table

    /// <summary>The rows of the table (counted in a first pass, or read from a Parquet footer).</summary>
    member _.Rows: int = table.Rows

    /// <summary>The levels of each categorical column, in id order.</summary>
    member _.Vocabularies = Convert.Levels table.Vocabularies

    /// <inheritdoc />
    override _.ToString() = $"StreamedDataSet({table.Rows} rows of {table.Source})"

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
[<Sealed; AllowNullLiteral>]
type BayesModel<'T> internal (value: Model<'T>) =
    member internal _.Value = value

    /// <summary>Maps the result with a function (C# query syntax: <c>select</c>).</summary>
    /// <typeparam name="TResult">The new result type.</typeparam>
    /// <param name="selector">The function.</param>
    /// <exception cref="ArgumentNullException"><paramref name="selector"/> is null.</exception>
    member _.Select<'TResult>(selector: Func<'T, 'TResult>) : BayesModel<'TResult> =
        Arg.notNull "selector" selector
        BayesModel<'TResult>(Model.map selector.Invoke value)

    /// <summary>Runs this model, then the model that <paramref name="selector"/> builds from its result.</summary>
    /// <typeparam name="TResult">The result type of the second model.</typeparam>
    /// <param name="selector">Builds the second model from this model's result.</param>
    /// <exception cref="ArgumentNullException"><paramref name="selector"/> is null.</exception>
    member _.SelectMany<'TResult>(selector: Func<'T, BayesModel<'TResult>>) : BayesModel<'TResult> =
        Arg.notNull "selector" selector
        BayesModel<'TResult>(Model.bind (fun t -> (Bayes.Check(selector.Invoke t, "selector")).Value) value)

    /// <summary>
    /// Runs this model, then the model that <paramref name="selector"/> builds from its result, and
    /// combines both results (C# query syntax: a second <c>from</c>).
    /// </summary>
    /// <typeparam name="TNext">The result type of the second model.</typeparam>
    /// <typeparam name="TResult">The combined result type.</typeparam>
    /// <param name="selector">Builds the second model from this model's result.</param>
    /// <param name="resultSelector">Combines the two results.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    member _.SelectMany<'TNext, 'TResult>(selector: Func<'T, BayesModel<'TNext>>, resultSelector: Func<'T, 'TNext, 'TResult>) : BayesModel<'TResult> =
        Arg.notNull "selector" selector
        Arg.notNull "resultSelector" resultSelector
        BayesModel<'TResult>(
            Model.bind
                (fun t -> Model.map (fun u -> resultSelector.Invoke(t, u)) (Bayes.Check(selector.Invoke t, "selector")).Value)
                value)

    /// <summary>Runs this model and then <paramref name="next"/>, returning the latter's result.</summary>
    /// <typeparam name="TNext">The result type of <paramref name="next"/>.</typeparam>
    /// <param name="next">The model to run second.</param>
    /// <exception cref="ArgumentNullException"><paramref name="next"/> is null.</exception>
    member this.Then<'TNext>(next: BayesModel<'TNext>) : BayesModel<'TNext> =
        Arg.notNull "next" next
        this.SelectMany(Func<'T, BayesModel<'TNext>>(fun _ -> next))

    /// <summary>
    /// The same model with the given sites fixed to values (NumPyro's substitute): sample and param sites
    /// of these names take the values instead of drawing them; they are not treated as observed.
    /// </summary>
    /// <param name="values">Values by site name.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> or a value is null.</exception>
    member _.Substitute(values: IReadOnlyDictionary<string, NdArray>) =
        BayesModel<'T>(Handlers.substitute (Convert.ToMap(Bayes.NoNulls(Arg.get "values" values, "values"))) value)

    /// <summary>
    /// The same model with the given sample sites observed at values (NumPyro's condition): they add their
    /// log density and are no longer latent.
    /// </summary>
    /// <param name="values">Observations by site name.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> or a value is null.</exception>
    member _.Condition(values: IReadOnlyDictionary<string, NdArray>) =
        BayesModel<'T>(Handlers.condition (Convert.ToMap(Bayes.NoNulls(Arg.get "values" values, "values"))) value)

    /// <summary>Runs the model once from the prior with a seed and records every site.</summary>
    /// <param name="seed">The seed of the random draws.</param>
    member _.Trace([<Optional; DefaultParameterValue(0UL)>] seed: uint64) =
        let result, trace = Traced.run (Rng.key seed) value
        ModelTrace<'T>(result, trace)

    /// <summary>
    /// Draws from the prior (and the prior predictive, for observed sites given no data): every latent and
    /// deterministic site's draws stacked on a new first axis, by site name.
    /// </summary>
    /// <param name="draws">How many draws (at least 1).</param>
    /// <param name="seed">The seed of the random draws.</param>
    /// <exception cref="ArgumentException"><paramref name="draws"/> is less than 1.</exception>
    member _.SamplePrior(draws: int, [<Optional; DefaultParameterValue(0UL)>] seed: uint64) =
        Convert.FromMap(ModelInfo.samplePrior (Rng.key seed) draws value)

    /// <summary>A printable table of the model's sites (kind, distribution, shapes, plates) from one prior run.</summary>
    /// <param name="seed">The seed of the prior run.</param>
    member _.Describe([<Optional; DefaultParameterValue(0UL)>] seed: uint64) : string = ModelInfo.describe (Rng.key seed) value

    /// <inheritdoc />
    override _.ToString() = $"BayesModel<{typeof<'T>.Name}>"

/// <summary>The primitives models are built from, and the entry points of composition.</summary>
[<AbstractClass; Sealed>]
type Bayes =
    static member internal Check<'TM>(m: BayesModel<'TM>, what: string) : BayesModel<'TM> =
        if isNull m then invalidOp $"The function passed as '{what}' returned a null model."
        m

    static member internal NoNulls(values: IReadOnlyDictionary<string, NdArray>, param: string) =
        for kv in values do
            if isNull kv.Value then raise (ArgumentNullException(param, $"The value of '{kv.Key}' is null."))
        values

    static member internal CheckName(name: string, param: string) =
        Arg.notNull param name
        if String.IsNullOrWhiteSpace name then invalidArg param "A site needs a non-empty name."

    static member internal Wrap(m: Model<Tensor>) : BayesModel<NdArray> = BayesModel<NdArray>(Model.map NdArray.Wrap m)

    /// <summary>A model that returns <paramref name="value"/> and has no sites.</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="value">The value.</param>
    static member Return<'T>(value: 'T) = BayesModel<'T>(Model.ret value)

    /// <summary>A latent random variable named <paramref name="name"/> with a prior.</summary>
    /// <param name="name">The site's name (unique within the model).</param>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    static member Sample(name: string, prior: Prior) =
        Bayes.CheckName(name, "name")
        Arg.notNull "prior" prior
        Bayes.Wrap(Model.sample name prior.Value)

    /// <summary>
    /// A random variable observed as <paramref name="value"/>; when <paramref name="value"/> is null it is
    /// sampled instead (a prediction).
    /// </summary>
    /// <param name="name">The site's name.</param>
    /// <param name="likelihood">Its distribution.</param>
    /// <param name="value">The observation, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="likelihood"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    static member Observe(name: string, likelihood: Prior, value: NdArray) =
        Bayes.CheckName(name, "name")
        Arg.notNull "likelihood" likelihood
        Bayes.Wrap(Model.observe name likelihood.Value (Convert.Option value))

    /// <summary>A learnable parameter (fitted by point estimation, not given a posterior).</summary>
    /// <param name="name">The site's name.</param>
    /// <param name="initialValue">The starting value (on the constrained set).</param>
    /// <param name="constraint">The set the value lives on; null means the real numbers.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="initialValue"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    static member Param(name: string, initialValue: NdArray, [<Optional>] ``constraint``: ParamConstraint) =
        Bayes.CheckName(name, "name")
        Arg.notNull "initialValue" initialValue
        let c = if isNull ``constraint`` then ParamConstraint.Real else ``constraint``
        Bayes.Wrap(Model.param name initialValue.Value c.Value)

    /// <summary>Records a value under a name (for example a linear predictor) and returns it.</summary>
    /// <param name="name">The site's name.</param>
    /// <param name="value">The value.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    static member Deterministic(name: string, value: NdArray) =
        Bayes.CheckName(name, "name")
        Arg.notNull "value" value
        Bayes.Wrap(Model.deterministic name value.Value)

    /// <summary>Adds a term to the model's log density; returns the term.</summary>
    /// <param name="name">The site's name.</param>
    /// <param name="logFactor">The term (summed over its elements).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    static member Factor(name: string, logFactor: NdArray) =
        Bayes.CheckName(name, "name")
        Arg.notNull "logFactor" logFactor
        BayesModel<NdArray>(Model.map (fun () -> logFactor) (Model.factor name logFactor.Value))

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
    static member Plate<'T>(name: string, size: int, body: Func<NdArray, BayesModel<'T>>, [<Optional>] subsampleSize: Nullable<int>) =
        Bayes.CheckName(name, "name")
        Arg.notNull "body" body
        BayesModel<'T>(
            Model.plate name size (Arg.optv subsampleSize) (fun idx -> (Bayes.Check(body.Invoke(NdArray.Wrap idx), "body")).Value))

/// <summary>What a site of a model is.</summary>
type SiteRole =
    /// <summary>A latent random variable.</summary>
    | Latent = 0
    /// <summary>An observed random variable.</summary>
    | Observed = 1
    /// <summary>A learnable parameter.</summary>
    | Param = 2
    /// <summary>A recorded function of other values.</summary>
    | Deterministic = 3
    /// <summary>An extra term of the log density.</summary>
    | Factor = 4
    /// <summary>A plate's indices.</summary>
    | Plate = 5

/// <summary>One site of a traced model run.</summary>
[<Sealed; AllowNullLiteral>]
type TraceSite internal (s: Site) =
    let role =
        match s.Kind with
        | SampleSite -> if s.IsObserved then SiteRole.Observed else SiteRole.Latent
        | ParamSite -> SiteRole.Param
        | DeterministicSite -> SiteRole.Deterministic
        | FactorSite -> SiteRole.Factor
        | PlateSite -> SiteRole.Plate
    let value = s.Value |> Option.map (fun v -> NdArray.Wrap(Tensor.detach v)) |> Option.toObj
    let distributionName = s.Dist |> Option.map Dist.name |> Option.toObj
    let plates = s.Plates |> List.map (fun p -> p.Name) |> Array.ofList

    /// <summary>The site's name.</summary>
    member _.Name: string = s.Name
    /// <summary>What the site is.</summary>
    member _.Role = role
    /// <summary>The site's value in this run (detached), or null when it has none.</summary>
    member _.Value: NdArray = value
    /// <summary>The distribution's family name for random sites, else null.</summary>
    member _.DistributionName: string = distributionName
    /// <summary>The names of the plates the site sits in, innermost first.</summary>
    member _.Plates: IReadOnlyList<string> = Array.AsReadOnly plates :> IReadOnlyList<string>

    /// <inheritdoc />
    override _.ToString() =
        let d = if isNull distributionName then "" else ", " + distributionName
        $"{s.Name} ({role}{d})"

/// <summary>A recorded run of a model: its result and its sites in the order they ran.</summary>
/// <typeparam name="T">The model's result type.</typeparam>
[<Sealed; AllowNullLiteral>]
type ModelTrace<'T> internal (result: 'T, trace: FunctionalBayes.Trace) =
    let sites = trace.Sites |> Array.map TraceSite
    let byName =
        let d = Dictionary<string, TraceSite>()
        for s in sites do
            if s.Role <> SiteRole.Plate then d.Add(s.Name, s)
        d
    let logJoint = Tensor.toScalar (Trace.logJoint trace)

    /// <summary>What the model returned.</summary>
    member _.Result = result
    /// <summary>Every site, in run order.</summary>
    member _.Sites: IReadOnlyList<TraceSite> = Array.AsReadOnly sites :> IReadOnlyList<TraceSite>
    /// <summary>The sum of the log densities of every random and factor site.</summary>
    member _.LogJoint: float = logJoint
    /// <summary>The names of the latent sites.</summary>
    member _.LatentNames: IReadOnlyList<string> =
        Array.AsReadOnly(sites |> Array.filter (fun s -> s.Role = SiteRole.Latent) |> Array.map (fun s -> s.Name)) :> IReadOnlyList<string>

    /// <summary>The site with this name.</summary>
    /// <param name="name">The name.</param>
    /// <exception cref="KeyNotFoundException">There is no such site; the message lists the sites.</exception>
    member _.Item
        with get (name: string) : TraceSite =
            match byName.TryGetValue(Arg.get "name" name) with
            | true, s -> s
            | _ -> raise (KeyNotFoundException $"""No site named '{name}'; the sites are: {String.Join(", ", byName.Keys)}.""")

    /// <summary>True when a site of this name exists.</summary>
    /// <param name="name">The name.</param>
    member _.Contains(name: string) = not (isNull name) && byName.ContainsKey name
