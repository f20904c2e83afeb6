namespace FunctionalBayes.Tables

open System
open System.Collections.Concurrent
open System.Data.Common
open System.IO
open System.Threading
open Microsoft.Data.Analysis
open FunctionalBayes
open FunctionalBayes.Tensors

/// A table where it is kept: a CSV or Parquet file, a database query, Arrow record batches or a DataFrame.
/// Files and queries are re-read on every pass (each streamed epoch reads the table again).
[<Sealed>]
type TableSource internal (chunks: ChunkSource) =
    member internal _.Chunks = chunks
    /// The file or query, as messages name it.
    member _.Name = chunks.Name
    /// A CSV file with a header row (delimiter detected; empty fields are missing).
    static member Csv(path: string) = TableSource(Sources.csv path)
    /// A Parquet file (its row groups are read one at a time).
    static member Parquet(path: string) = TableSource(Sources.parquet path)
    /// A query on any ADO.NET database: `openReader` opens a connection and runs the query each time the
    /// table is read, and the reader is disposed after it (dispose the connection with it, for example
    /// with CommandBehavior.CloseConnection). `name` names the query in messages.
    static member Query(name: string, openReader: Func<DbDataReader>) =
        if isNull openReader then nullArg "openReader"
        TableSource(Sources.query name openReader.Invoke)
    /// An open data reader, read once (it is forward-only: a table read from it cannot be streamed in epochs).
    static member Reader(name: string, reader: DbDataReader) =
        if isNull reader then nullArg "reader"
        let used = ref false
        TableSource(Sources.query name (fun () ->
            if used.Value then invalidOp (sprintf "Table: the data reader '%s' was already read; a forward-only reader is read once (use TableSource.Query to re-run a query)." name)
            used.Value <- true
            reader))
    /// Arrow record batches in memory (each batch is a part that streaming shuffles).
    static member Arrow(name: string, batches: Apache.Arrow.RecordBatch seq) = TableSource(Sources.arrow name (Seq.toArray batches))
    /// A DataFrame in memory.
    static member DataFrame(name: string, frame: DataFrame) =
        if isNull frame then nullArg "frame"
        TableSource(Sources.dataFrame name frame)

/// How a table is streamed for minibatch SVI.
type StreamOptions =
    { /// Rows in the shuffle buffer: memory is bounded by it (and one part, a Parquet row group, being read).
      BufferRows: int
      /// Rows read first to initialise the fit and build its guide.
      SampleRows: int
      /// Parts (row groups, chunks) decoded ahead of the fit on another thread; when positive, the batches are
      /// also made on a thread of their own, up to Streams.batchesAhead ahead of the fit (0: all on the fit's thread).
      Prefetch: int }
    /// A 65,536-row buffer, 1,024 sample rows, two parts read ahead.
    static member Default = { BufferRows = 65536; SampleRows = 1024; Prefetch = 2 }
    /// A copy with another buffer size ({ o with … }, for C#, which would otherwise build the record positionally).
    member o.WithBufferRows(rows: int) = { o with BufferRows = rows }

/// A table streamed in minibatches: the batch source Fit.viSource takes, the rows (N, counted in a first
/// pass or read from the Parquet footer) and the vocabularies (from the first pass, or given).
[<NoEquality; NoComparison>]
type StreamedTable =
    { Batches: BatchSource
      Rows: int
      Vocabularies: Map<string, Vocabulary>
      Source: string }

[<RequireQualifiedAccess>]
module internal Streams =

    let wants (schema: TableSchema) =
        schema.Columns |> List.toArray |> Array.map (fun c -> { Name = c.Name; Numeric = (match c.Kind with ColumnKind.Categorical _ -> false | _ -> true) })

    /// Runs a sequence on another thread, at most `capacity` items ahead; errors surface in the consumer.
    let prefetch (capacity: int) (s: seq<'a>) : seq<'a> =
        if capacity < 1 then s
        else
            seq {
                use q = new BlockingCollection<Choice<'a, exn>>(capacity)
                use cts = new CancellationTokenSource()
                let worker =
                    Tasks.Task.Run(fun () ->
                        try
                            try
                                for x in s do q.Add(Choice1Of2 x, cts.Token)
                            with
                            | :? OperationCanceledException -> ()
                            | ex -> (try q.Add(Choice2Of2 ex) with _ -> ())
                        finally q.CompleteAdding())
                try
                    for item in q.GetConsumingEnumerable() do
                        match item with
                        | Choice1Of2 x -> yield x
                        | Choice2Of2 ex -> Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex).Throw()
                finally
                    cts.Cancel()
                    try worker.Wait() with _ -> ()
            }

    /// A chunk decoded, its arrays then handed back to the source (the block holds copies).
    let decode (src: ChunkSource) (d: Decoder) (c: Chunk) : Block =
        let b = d.Decode c
        src.Recycle c
        b

    /// Batches made ahead of the fit when a stream reads ahead (StreamOptions.Prefetch > 0).
    let batchesAhead = 8

    let seedOf (k: RngKey) = int (Rng.uniformAt k 0 * 2147483646.0)

/// The outputs of one element type: their arrays in a block, the buffer and the batch, and their widths; a row
/// is copied output by output as a span of its width (one element without a span).
[<Sealed>]
type internal Lane<'T>(widths: int[], buffer: 'T[][], batch: 'T[][]) =
    let mutable block : 'T[][] = [||]
    /// Takes the block's arrays (cast once per block, not per row).
    member _.Block(values: System.Array[], index: int[]) = block <- index |> Array.map (fun i -> values.[i] :?> 'T[])
    member private _.Copy(src: 'T[][], r: int, dst: 'T[][], slot: int) =
        for o in 0 .. widths.Length - 1 do
            let w = widths.[o]
            if w = 1 then dst.[o].[slot] <- src.[o].[r]
            else Span<'T>(src.[o], r * w, w).CopyTo(Span<'T>(dst.[o], slot * w, w))
    /// Asks the CPU to start loading a buffer slot's cache lines (a hint; nothing on CPUs without SSE).
    member _.Prefetch(slot: int) =
        if Runtime.Intrinsics.X86.Sse.IsSupported then
            let step = max 1 (64 / Runtime.CompilerServices.Unsafe.SizeOf<'T>())
            for o in 0 .. widths.Length - 1 do
                let w = widths.[o]
                let a = buffer.[o]
                let last = slot * w + w - 1
                let mutable e = slot * w
                while e <= last do
                    Runtime.Intrinsics.X86.Sse.Prefetch0(Runtime.CompilerServices.Unsafe.AsPointer(&a.[e]))
                    e <- e + step
                Runtime.Intrinsics.X86.Sse.Prefetch0(Runtime.CompilerServices.Unsafe.AsPointer(&a.[last]))
    member l.BlockToBuffer(r, slot) = l.Copy(block, r, buffer, slot)
    member l.BlockToBatch(r, slot) = l.Copy(block, r, batch, slot)
    member l.BufferToBatch(j, slot) = l.Copy(buffer, j, batch, slot)
    /// The lane of the outputs of type t, and their indices among the outputs.
    static member Of(outs: Out[], t: OutType, buffer: System.Array[], batch: System.Array[]) : Lane<'T> * int[] =
        let idx = outs |> Array.indexed |> Array.filter (fun (_, o) -> o.Type = t) |> Array.map fst
        Lane<'T>(idx |> Array.map (fun i -> outs.[i].Cols.Length), idx |> Array.map (fun i -> buffer.[i] :?> 'T[]), idx |> Array.map (fun i -> batch.[i] :?> 'T[])), idx

/// One epoch of a streamed table: rows go through a shuffle buffer of `cap` rows into batches of `b` rows.
/// While the buffer fills, rows enter it in order; then each row takes the place of a slot drawn from `rnd`,
/// whose row leaves into the batch; at the end the buffer empties in a permutation drawn from `rnd`. Without
/// shuffling rows go straight into batches. The buffer and the batch are allocated once per epoch; each batch
/// is copied into its tensors, so they are reused.
[<Sealed>]
type internal ShuffleBuffer(outs: Out[], cap: int, b: int, shuffle: bool, rnd: Random) =
    let buffer = if shuffle then outs |> Array.map (fun o -> Plan.newArray o.Type (cap * o.Cols.Length)) else outs |> Array.map (fun o -> Plan.newArray o.Type 0)
    let batch = outs |> Array.map (fun o -> Plan.newArray o.Type (b * o.Cols.Length))
    let f64, i64 = Lane<float>.Of(outs, OutType.F64, buffer, batch)
    let f32, i32 = Lane<float32>.Of(outs, OutType.F32, buffer, batch)
    let ids, iid = Lane<int>.Of(outs, OutType.I32, buffer, batch)
    let mutable filled = 0
    let mutable inBatch = 0
    let mutable emitted = 0L
    let mutable rest : int[] = null
    let mutable restAt = 0
    // once the buffer is full, the slots of a block's remaining rows are drawn in one go (the same draws, in
    // the same order, as one per row: every row of a block is fed), so that a slot's cache lines can be
    // asked for a few rows before its row is copied (random slots of a buffer of megabytes miss the cache)
    let mutable slots : int[] = Array.zeroCreate 0
    let mutable slotsFor : obj = null
    let ahead = 6
    let prefetch j =
        f64.Prefetch j
        f32.Prefetch j
        ids.Prefetch j
    let bufferToBatch j slot =
        f64.BufferToBatch(j, slot)
        f32.BufferToBatch(j, slot)
        ids.BufferToBatch(j, slot)

    /// Rows given out in batches so far.
    member _.Emitted = emitted

    /// Whether a full batch waits to be taken.
    member _.Full = inBatch = b

    /// Feeds the block's rows from `from` until a batch is full or the block ends; returns the next row to feed.
    member _.Feed(block: Block, from: int) : int =
        f64.Block(block.Values, i64)
        f32.Block(block.Values, i32)
        ids.Block(block.Values, iid)
        let mutable r = from
        while r < block.Rows && inBatch < b do
            if not shuffle then
                f64.BlockToBatch(r, inBatch)
                f32.BlockToBatch(r, inBatch)
                ids.BlockToBatch(r, inBatch)
                inBatch <- inBatch + 1
            elif filled < cap then
                f64.BlockToBuffer(r, filled)
                f32.BlockToBuffer(r, filled)
                ids.BlockToBuffer(r, filled)
                filled <- filled + 1
            else
                if not (obj.ReferenceEquals(slotsFor, block)) then
                    if slots.Length < block.Rows then slots <- Array.zeroCreate block.Rows
                    for k in r .. block.Rows - 1 do slots.[k] <- rnd.Next cap
                    slotsFor <- block
                    for k in r .. min (block.Rows - 1) (r + ahead - 1) do prefetch slots.[k]
                let j = slots.[r]
                if r + ahead < block.Rows then prefetch slots.[r + ahead]
                bufferToBatch j inBatch
                f64.BlockToBuffer(r, j)
                f32.BlockToBuffer(r, j)
                ids.BlockToBuffer(r, j)
                inBatch <- inBatch + 1
            r <- r + 1
        r

    /// After the last block: fills the next batch from the buffer's rest (in a permutation drawn once);
    /// false when no rows are left (the last batch may be short).
    member _.Drain() : bool =
        if isNull rest then
            rest <- Array.init filled id
            rnd.Shuffle rest
        while restAt < rest.Length && inBatch < b do
            bufferToBatch rest.[restAt] inBatch
            inBatch <- inBatch + 1
            restAt <- restAt + 1
        inBatch > 0

    /// The waiting batch as tensors (copied out of the reused batch arrays).
    member _.Take() : Map<string, Tensor> =
        let t = Array.map2 (fun (o: Out) v -> o.Name, Plan.tensor o inBatch v) outs batch |> Map.ofArray
        emitted <- emitted + int64 inBatch
        inBatch <- 0
        t

[<RequireQualifiedAccess>]
module Table =

    let private concat (d: Decoder) (blocks: Block[]) : Map<string, Tensor> * int =
        let total = blocks |> Array.sumBy (fun b -> b.Rows)
        let tensors =
            d.Outs |> Array.mapi (fun oi o ->
                let w = o.Cols.Length
                let all = Plan.newArray o.Type (total * w)
                let mutable at = 0
                for b in blocks do
                    Array.Copy(b.Values.[oi], 0, all, at * w, b.Rows * w)
                    at <- at + b.Rows
                match all with
                | :? (int[]) as ids -> d.Remap(o, ids, total)
                | _ -> ()
                o.Name, Plan.tensor o total all)
        Map.ofArray tensors, total

    /// Reads the schema's columns of a table into named tensors (rows on the first axis): numeric columns as
    /// float64/float32, integer ones as int32, categorical ones as int32 ids with their vocabularies. Raises
    /// TableReadException naming the source, column and row for a missing column, a value of the wrong type,
    /// a missing value (unless the schema's policy drops or fills it), an unseen level or a truncated file.
    let read (schema: TableSchema) (source: TableSource) : TableData =
        let src = source.Chunks
        let d = Decoder(schema, src.Name)
        let blocks = src.Read (Streams.wants schema) [| 0 .. src.Parts - 1 |] |> Seq.map (Streams.decode src d) |> Seq.toArray
        let data, rows = concat d blocks
        { Data = data; Vocabularies = d.Vocabularies; Rows = rows; Source = src.Name }

    /// A table streamed in minibatches for Fit.viSource (Run.BatchSize sets the batch rows). Each epoch
    /// reads the table again: the parts (Parquet row groups) in an order shuffled from the run's key and
    /// the epoch, their rows through a shuffle buffer of BufferRows rows (each row leaves from a slot drawn
    /// from the same seed), so a fit is deterministic given its seed and memory is bounded by the buffer.
    /// A first pass counts the rows and builds the vocabularies unless the source knows its rows (a Parquet
    /// footer), the schema gives every vocabulary and drops no rows.
    let stream (schema: TableSchema) (options: StreamOptions) (source: TableSource) : StreamedTable =
        if options.BufferRows < 1 then raise (ArgumentOutOfRangeException("BufferRows", options.BufferRows, "Table.stream: the shuffle buffer needs at least one row."))
        if options.SampleRows < 1 then raise (ArgumentOutOfRangeException("SampleRows", options.SampleRows, "Table.stream: the sample needs at least one row."))
        let src = source.Chunks
        let wants = Streams.wants schema
        let allParts = [| 0 .. src.Parts - 1 |]
        let needsPass =
            src.KnownRows.IsNone || schema.Missing = MissingPolicy.DropRow
            || schema.Columns |> List.exists (fun c -> c.Kind = ColumnKind.Categorical None)
        let rows, schema =
            if needsPass then
                let d = Decoder(schema, src.Name)
                // the source is read and decoded on another thread while this one counts (the decoder is
                // used on that thread only until the sequence ends)
                let n = src.Read wants allParts |> Seq.map (fun c -> (Streams.decode src d c).Rows) |> Streams.prefetch options.Prefetch |> Seq.sumBy int64
                n, schema.WithVocabularies d.Vocabularies
            else src.KnownRows.Value, schema
        if rows > int64 Int32.MaxValue then invalidArg "source" (sprintf "Table.stream: %s has %d rows, more than a fit counts (2^31 - 1)." src.Name rows)
        if rows = 0L then invalidArg "source" (sprintf "Table.stream: %s has no rows to fit." src.Name)
        let n = int rows
        let d = Decoder(schema, src.Name)
        let outs = d.Outs
        let sample =
            let blocks = ResizeArray()
            use e = (src.Read wants allParts).GetEnumerator()
            let mutable got = 0
            while got < options.SampleRows && e.MoveNext() do
                let b = Streams.decode src d e.Current
                blocks.Add b
                got <- got + b.Rows
            let data, _ = concat d (blocks.ToArray())
            let m = min options.SampleRows (Data.rows data)
            Data.slice 0 m data
        let batches (kData: RngKey) (opts: SviRunOptions) : seq<Map<string, Tensor>> =
            let b =
                match opts.BatchSize with
                | Some b -> b
                | None -> invalidArg "opts" (sprintf "Table.stream: %s is streamed; set Run.BatchSize to fit it in minibatches." src.Name)
            let cap = options.BufferRows
            // the batches come out in one order whatever the threads' timing: one thread makes them in sequence
            Streams.prefetch (if options.Prefetch > 0 then Streams.batchesAhead else 0) <| seq {
                // a decoder of this stream's own (the vocabularies are fixed by now), whose blocks' arrays are
                // reused from one row group to the next
                let epochDecoder = Decoder(schema, src.Name, Pool = Recycler())
                let mutable epoch = 0
                while true do
                    let rnd = Random(Streams.seedOf (Rng.foldIn kData epoch))
                    let order = Array.copy allParts
                    if opts.Shuffle then rnd.Shuffle order
                    let sb = ShuffleBuffer(outs, cap, b, opts.Shuffle, rnd)
                    for block in src.Read wants order |> Seq.map (Streams.decode src epochDecoder) |> Streams.prefetch options.Prefetch do
                        let mutable r = 0
                        while r < block.Rows do
                            r <- sb.Feed(block, r)
                            if sb.Full then yield sb.Take()
                        // its rows are copied into the buffer or batches: its arrays serve the next blocks
                        epochDecoder.Recycle block
                    while sb.Drain() do
                        yield sb.Take()
                    let emitted = sb.Emitted
                    if emitted <> rows then
                        raise (TableReadException(sprintf "%s: epoch %d read %d rows, but the table had %d when the stream was opened; it changed during the fit." src.Name epoch emitted rows, src.Name, "", 0L))
                    epoch <- epoch + 1
            }
        { Batches = { Rows = n; Sample = sample; Batches = batches; Levels = d.Vocabularies |> Map.map (fun _ v -> v.Levels) }
          Rows = n; Vocabularies = d.Vocabularies; Source = src.Name }

    /// Rows held in memory as a batch source for Fit.viSource, with their vocabularies: the fitted
    /// posterior keeps them (saved with it, used by readFor and predictPosteriorTo, written into ONNX exports).
    let toSource (table: TableData) : BatchSource =
        BatchSource.ofData table.Data |> BatchSource.withLevels (table.Vocabularies |> Map.map (fun _ v -> v.Levels))

    /// The vocabularies of a posterior's categorical keys (from a fit on a table, or a file of one).
    let vocabularies (posterior: Posterior<'T>) : Map<string, Vocabulary> =
        ModelSignature.levels posterior.Signature |> Map.map (fun _ ls -> Vocabulary ls)

    /// The schema with the posterior's vocabularies for its categorical columns; a categorical column that
    /// would build its own vocabulary from the table read (so its ids would not be the fit's) is refused.
    let private forPosterior (what: string) (posterior: Posterior<'T>) (schema: TableSchema) : TableSchema =
        let vs = vocabularies posterior
        for c in schema.Columns do
            match c.Kind with
            | ColumnKind.Categorical None when not (vs.ContainsKey c.Name) ->
                invalidArg "schema" (sprintf "%s: the posterior has no vocabulary for the categorical column '%s' (it has %s), so its ids would not be the fit's; fit from a table (Table.stream or Table.toSource), or give the column its vocabulary (Column.categoricalOf)." what c.Name (if vs.IsEmpty then "none" else String.Join(", ", vs.Keys)))
            | ColumnKind.Categorical _ | ColumnKind.Float64 | ColumnKind.Float32 | ColumnKind.Int32 -> ()
        schema.WithVocabularies vs

    /// Reads a table for prediction with a posterior: its categorical columns take the fit's vocabularies, so
    /// ids are the fit's and a level the fit never saw is a TableReadException naming the table, column, row
    /// and level (unless the schema's UnseenLevelPolicy maps it to a known level).
    let readFor (posterior: Posterior<'T>) (schema: TableSchema) (source: TableSource) : TableData =
        read (forPosterior "Table.readFor" posterior schema) source

    /// A predictor for Table.predictTo from a posterior: for each site that Posterior.predict gives, its
    /// predictive mean and sd per row as "{site}_mean" and "{site}_sd", from `draws` draws; each chunk of
    /// rows takes its own key (the key folded with the chunk's number), so the output is deterministic.
    let posteriorPredictor (posterior: Posterior<'T>) (key: RngKey) (draws: int) : Map<string, Tensor> -> Map<string, Tensor> =
        let chunk = ref 0
        fun data ->
            let k = Rng.foldIn key chunk.Value
            chunk.Value <- chunk.Value + 1
            Posterior.predict posterior k draws false data
            |> Map.toSeq
            |> Seq.collect (fun (site, p) -> [ site + "_mean", p.Mean; site + "_sd", p.Std ])
            |> Map.ofSeq

    /// Predicts over a table in chunks and writes the predictions, with the id columns as they are in the
    /// source (as text), to `path`: Parquet when it ends in .parquet (one row group per chunk), else CSV.
    /// Only the schema's columns and one chunk are in memory at a time. Of the predictor's outputs, those with
    /// one value per row are written (in name order). Rows dropped by the schema's missing policy are left
    /// out (ids too). Returns the rows written.
    let predictTo (schema: TableSchema) (idColumns: string list) (predict: Map<string, Tensor> -> Map<string, Tensor>) (source: TableSource) (path: string) : int =
        let src = source.Chunks
        let d = Decoder(schema, src.Name)
        let ids = List.toArray idColumns
        let nS = schema.Columns.Length
        let wants = Array.append (Streams.wants schema) (ids |> Array.map (fun n -> { Name = n; Numeric = false }))
        let isParquet = Path.GetExtension(path).Equals(".parquet", StringComparison.OrdinalIgnoreCase)
        let await (t: Threading.Tasks.Task) = t.GetAwaiter().GetResult()
        use stream = File.Create path
        let mutable parquet : Parquet.ParquetWriter = null
        let mutable fields : Parquet.Schema.DataField[] = [||]
        let mutable predNames : string[] = [||]
        let csv = if isParquet then null else new StreamWriter(stream)
        let quote (s: string) = if isNull s then "" elif s.IndexOfAny([| ','; '"'; '\n'; '\r' |]) >= 0 then "\"" + s.Replace("\"", "\"\"") + "\"" else s
        let mutable written = 0
        try
            for chunk in src.Read wants [| 0 .. src.Parts - 1 |] do
                let block = d.Decode chunk
                if block.Rows > 0 then
                    let data = Array.map2 (fun (o: Out) v -> o.Name, Plan.tensor o block.Rows v) d.Outs block.Values |> Map.ofArray
                    let preds = predict data |> Map.filter (fun _ t -> t.Rank = 1 && t.Shape.[0] = block.Rows)
                    if written = 0 && predNames.Length = 0 then
                        predNames <- preds |> Map.keys |> Seq.toArray
                        if predNames.Length = 0 then invalidArg "predict" "Table.predictTo: the predictor gives no output with one value per row."
                        if isParquet then
                            fields <- Array.append (ids |> Array.map (fun n -> Parquet.Schema.DataField<string>(n) :> Parquet.Schema.DataField)) (predNames |> Array.map (fun n -> Parquet.Schema.DataField<float>(n) :> Parquet.Schema.DataField))
                            parquet <- Parquet.ParquetWriter.CreateAsync(Parquet.Schema.ParquetSchema(fields |> Array.map (fun f -> f :> Parquet.Schema.Field)), stream).GetAwaiter().GetResult()
                        else csv.WriteLine(String.Join(",", Array.append ids predNames |> Array.map quote))
                    let idVals = ids |> Array.mapi (fun j _ -> match chunk.Columns.[nS + j] with Txt t -> block.Kept |> Array.map (fun r -> t.[r]) | Num _ -> invalidOp "Table.predictTo: ids are read as text.")
                    let predVals = predNames |> Array.map (fun n ->
                        match preds.TryFind n with
                        | Some t -> Tensor.toArray t
                        | None -> invalidOp (sprintf "Table.predictTo: the predictor gave '%s' for the first chunk but not for the chunk at row %d." n (chunk.Start + 1L)))
                    if isParquet then
                        use rg = parquet.CreateRowGroup()
                        for j in 0 .. ids.Length - 1 do
                            await (rg.WriteAsync(fields.[j], idVals.[j] :> Collections.Generic.IReadOnlyCollection<string>))
                        for j in 0 .. predNames.Length - 1 do
                            await (rg.WriteAsync<float>(fields.[ids.Length + j], ReadOnlyMemory<float>(predVals.[j])))
                    else
                        for r in 0 .. block.Rows - 1 do
                            let cells = Array.append (idVals |> Array.map (fun v -> quote v.[r])) (predVals |> Array.map (fun v -> v.[r].ToString("R", Globalization.CultureInfo.InvariantCulture)))
                            csv.WriteLine(String.Join(",", cells))
                    written <- written + block.Rows
        finally
            if not (isNull parquet) then parquet.DisposeAsync().AsTask().GetAwaiter().GetResult()
            if not (isNull csv) then csv.Dispose()
        written

    /// Table.predictTo with a posterior's predictive means and sds ("{site}_mean", "{site}_sd", from `draws`
    /// draws; posteriorPredictor), reading the table with the fit's vocabularies: a level the fit never saw is
    /// a TableReadException naming the table, column, row and level, unless the schema's UnseenLevelPolicy
    /// maps it to a known level.
    let predictPosteriorTo (schema: TableSchema) (idColumns: string list) (posterior: Posterior<'T>) (key: RngKey) (draws: int) (source: TableSource) (path: string) : int =
        predictTo (forPosterior "Table.predictPosteriorTo" posterior schema) idColumns (posteriorPredictor posterior key draws) source path
