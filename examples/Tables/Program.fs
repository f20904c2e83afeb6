/// Fitting tables where they are kept (not run in CI; see README.md beside this file):
///   dotnet run -c Release --project examples/Tables -- big [rows] [inMemoryRows] [steps] [batch]
///     writes a rows × 20-column Parquet file (a simulated BLayers model: 18 numeric features, a categorical
///     column of 1,000 levels and y), fits it streamed, then fits the first inMemoryRows rows held in memory,
///     and prints steps/s and peak RSS of each (the streamed fit runs first, so its peak RSS is its own).
///   dotnet run -c Release --project examples/Tables -- pull [rows] [batch] [count]
///     the batch source alone: Parquet reading, decoding and count batches pulled without a fit.
///   dotnet run -c Release --project examples/Tables -- drain [rows] [batch] [epochs]
///     the batch stream drained without a fit (after an untimed epoch): rows/s and CPU-ms per 1M rows, with and
///     without read-ahead.
///   dotnet run -c Release --project examples/Tables -- sql
///     writes a small SQLite database file and fits a model to a SQL query on it.
module FunctionalBayes.Examples.Tables

open System
open System.Diagnostics
open System.IO
open Parquet
open Parquet.Schema
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tables

let features = 18
let levels = 1000
let levelName (i: int) = sprintf "L%04d" i
let featureNames = [ for j in 1 .. features -> sprintf "x%d" j ]

/// y = x·β + u[g] + 0.5 + ε, ε ~ N(0, 0.7²), β_j = (−1)^j / j, u_k ~ N(0, 0.5²).
let writeTable (path: string) (rows: int) (rowGroup: int) =
    let beta = Array.init features (fun j -> (if j % 2 = 0 then 1.0 else -1.0) / float (j + 1))
    let u = Tensor.toArray (Rng.normal (Rng.key 2UL) [| levels |]) |> Array.map ((*) 0.5)
    let fx = featureNames |> List.map (fun n -> DataField<float>(n)) |> List.toArray
    let fg = DataField<string>("g")
    let fy = DataField<float>("y")
    let schema = ParquetSchema(Array.concat [ fx |> Array.map (fun f -> f :> Field); [| fg :> Field; fy :> Field |] ])
    task {
        use fs = File.Create path
        use! w = ParquetWriter.CreateAsync(schema, fs)
        let mutable start = 0
        let mutable g = 0
        while start < rows do
            let n = min rowGroup (rows - start)
            let k = Rng.foldIn (Rng.key 1UL) g
            let x = Tensor.toArray (Rng.normal k [| features; n |])
            let e = Tensor.toArray (Rng.normal (Rng.foldIn k 1) [| n |])
            let ids = Tensor.toArray (Rng.uniform (Rng.foldIn k 2) [| n |]) |> Array.map (fun v -> min (levels - 1) (int (v * float levels)))
            let y = Array.init n (fun r ->
                let mutable s = 0.5 + u.[ids.[r]] + 0.7 * e.[r]
                for j in 0 .. features - 1 do s <- s + beta.[j] * x.[j * n + r]
                s)
            use rg = w.CreateRowGroup()
            for j in 0 .. features - 1 do
                do! rg.WriteAsync(fx.[j], ReadOnlyMemory<float>(x, j * n, n))
            do! rg.WriteAsync(fg, ids |> Array.map levelName :> Collections.Generic.IReadOnlyCollection<string>)
            do! rg.WriteAsync(fy, ReadOnlyMemory<float>(y))
            start <- start + n
            g <- g + 1
    } |> fun t -> t.GetAwaiter().GetResult()

let schema =
    { TableSchema.Of ([ for n in featureNames -> Column.float64 n ] @ [ Column.categorical "g"; Column.float64 "y" ]) with
        Matrices = [ "x", featureNames ] }

let blayers (d: Map<string, Tensor>) = model {
    let! mu = Layers.adaptive "x" d.["x"]
    let! re = Layers.randomEffects "g" d.["g"] levels
    let! b = Layers.intercept "b"
    return! Links.gaussian "y" (mu + re + b) (d.TryFind "y")
}

let peakRssMb () = float (Process.GetCurrentProcess().PeakWorkingSet64) / 1048576.0

let report (name: string) (steps: int) (seconds: float) (extra: string) =
    printfn "%-34s %6d steps in %7.1f s = %7.1f steps/s  peak RSS %7.0f MB  %s" name steps seconds (float steps / seconds) (peakRssMb ()) extra

let big (rows: int) (memRows: int) (steps: int) (batch: int) =
    let dir = Path.Combine(Path.GetTempPath(), "fb-tables-example")
    Directory.CreateDirectory dir |> ignore
    let bigFile = Path.Combine(dir, sprintf "blayers-%d.parquet" rows)
    let smallFile = Path.Combine(dir, sprintf "blayers-%d.parquet" memRows)
    for (f, n) in [ bigFile, rows; smallFile, memRows ] do
        if not (File.Exists f) then
            let sw = Stopwatch.StartNew()
            writeTable f n 100_000
            printfn "wrote %s (%d rows × 20 columns, %.0f MB) in %.1f s" f n (float (FileInfo(f).Length) / 1048576.0) sw.Elapsed.TotalSeconds
    let opts = { FitOptions.Default with Run.Steps = Some steps; Run.BatchSize = Some batch; LearningRate = 0.01; Seed = 1UL }
    // streamed: a first pass counts rows and builds the vocabulary of g
    let sw = Stopwatch.StartNew()
    let t = Table.stream schema StreamOptions.Default (TableSource.Parquet bigFile)
    printfn "first pass over %d rows (row count, %d levels of g) in %.1f s" t.Rows t.Vocabularies.["g"].Count sw.Elapsed.TotalSeconds
    let fitTimed (name: string) (fit: unit -> Posterior<Tensor> * SviResult) =
        let cpu0 = Process.GetCurrentProcess().TotalProcessorTime
        let sw = Stopwatch.StartNew()
        let p, r = fit ()
        let s = sw.Elapsed.TotalSeconds
        printfn "  (%s: CPU %.1f s in %.1f s; %d threads in the process after it)" name (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds s (Process.GetCurrentProcess().Threads.Count)
        let m = Posterior.mean p (Rng.key 3UL) 200
        report name r.Losses.Length s (sprintf "beta[0..2] = %s  sigma = %.3f" (String.Join(", ", Tensor.toArray m.["AdaptiveLayer_x_beta"] |> Array.truncate 3 |> Array.map (sprintf "%.3f"))) (Tensor.toScalar m.["y_sigma"]))
        float r.Losses.Length / s
    let streamed = fitTimed (sprintf "streamed (%dM rows, Parquet)" (rows / 1_000_000)) (fun () -> Fit.viSourceRun opts blayers t.Batches)
    let sw = Stopwatch.StartNew()
    let mem = Table.read schema (TableSource.Parquet smallFile)
    printfn "read %d rows into memory in %.1f s" mem.Rows sw.Elapsed.TotalSeconds
    let inMemory = fitTimed (sprintf "in memory (%dM rows)" (memRows / 1_000_000)) (fun () -> Fit.viRun opts blayers mem.Data)
    printfn "streamed / in-memory steps/s = %.0f %%  (batch %d, %d steps each)" (100.0 * streamed / inMemory) batch steps

/// The batch source alone (no fit): reads the Parquet columns of every row group with Parquet.Net, reads the
/// whole file into memory (Table.read: Parquet and decoding), then pulls `count` batches from Table.stream with
/// and without read-ahead, and prints the time per batch, the collections and a checksum of the batches
/// (the same checksum = the same rows in the same order).
let pull (rows: int) (batch: int) (count: int) =
    let dir = Path.Combine(Path.GetTempPath(), "fb-tables-example")
    let file = Path.Combine(dir, sprintf "blayers-%d.parquet" rows)
    if not (File.Exists file) then
        Directory.CreateDirectory dir |> ignore
        writeTable file rows 100_000
    let sw = Stopwatch.StartNew()
    let swS, swM = Stopwatch(), Stopwatch()
    task {
        use! r = ParquetReader.CreateAsync(file)
        let fields = r.Schema.GetDataFields()
        for g in 0 .. r.RowGroupCount - 1 do
            use rg = r.OpenRowGroupReader g
            let n = int rg.RowCount
            for f in fields do
                if f.ClrType <> typeof<float> then
                    swS.Start()
                    let a = Array.zeroCreate<string> n
                    do! rg.ReadAsync(f, Memory<string>(a))
                    swS.Stop()
                    swM.Start()
                    let m = Array.zeroCreate<Nullable<ReadOnlyMemory<char>>> n
                    do! rg.ReadAsync<ReadOnlyMemory<char>>(f, Memory<Nullable<ReadOnlyMemory<char>>>(m))
                    swM.Stop()
                    if g = 0 then printfn "row group 0, column %s (%s): %d values, %d string objects" f.Name f.ClrType.Name n (Collections.Generic.HashSet<obj>(Seq.cast<obj> a, Collections.Generic.ReferenceEqualityComparer.Instance)).Count
                else do! rg.ReadAsync<float>(f, Memory<float>(Array.zeroCreate n))
    } |> fun t -> t.GetAwaiter().GetResult()
    printfn "strings %.2f s, as ReadOnlyMemory<char> %.2f s" swS.Elapsed.TotalSeconds swM.Elapsed.TotalSeconds
    printfn "Parquet.Net columns alone: %.1f s (%.2f µs a row)" sw.Elapsed.TotalSeconds (sw.Elapsed.TotalSeconds * 1e6 / float rows)
    let sw = Stopwatch.StartNew()
    let t = Table.stream schema StreamOptions.Default (TableSource.Parquet file)
    printfn "first pass (rows, vocabulary): %.1f s (%.2f µs a row)" sw.Elapsed.TotalSeconds (sw.Elapsed.TotalSeconds * 1e6 / float rows)
    let sw = Stopwatch.StartNew()
    let d = Table.read schema (TableSource.Parquet file)
    printfn "Table.read %d rows: %.1f s (%.2f µs a row)" d.Rows sw.Elapsed.TotalSeconds (sw.Elapsed.TotalSeconds * 1e6 / float rows)
    for prefetch in [ 0; 2 ] do
        let t = Table.stream (schema.WithVocabularies t.Vocabularies) { StreamOptions.Default with Prefetch = prefetch } (TableSource.Parquet file)
        let gcs () = [| for g in 0 .. 2 -> GC.CollectionCount g |]
        let gc0 = gcs ()
        let cpu0 = Process.GetCurrentProcess().TotalProcessorTime
        let sw = Stopwatch.StartNew()
        use e = (t.Batches.Batches (Rng.key 1UL) { SviRunOptions.Default with BatchSize = Some batch }).GetEnumerator()
        let mutable h = 14695981039346656037UL
        let mix (v: uint64) = h <- (h ^^^ v) * 1099511628211UL
        let mutable first = 0.0
        for i in 1 .. count do
            if not (e.MoveNext()) then failwith "the stream ended"
            let b = e.Current
            for v in Tensor.toArray b.["y"] do mix (uint64 (BitConverter.DoubleToInt64Bits v))
            for v in Tensor.toInts b.["g"] do mix (uint64 v)
            mix (uint64 (BitConverter.DoubleToInt64Bits (Tensor.toArray b.["x"] |> Array.sum)))
            if i = 1 then first <- sw.Elapsed.TotalSeconds
        let s = sw.Elapsed.TotalSeconds
        let cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds
        let gc1 = gcs ()
        printfn "prefetch %d: %d batches of %d in %.2f s (first %.2f s, then %.2f ms a batch), CPU %.2f s (%.2f ms a batch); GCs %A; checksum %016x" prefetch count batch s first (1000.0 * (s - first) / float (count - 1)) cpu (1000.0 * cpu / float count) (Array.map2 (-) gc1 gc0) h

/// The batch stream alone, drained without a fit: `epochs` epochs of the file in batches of `batch` rows, on the
/// thread that drains it (Prefetch 0) and with the default read-ahead; prints rows/s and CPU-ms per 1M rows.
let drain (rows: int) (batch: int) (epochs: int) =
    let dir = Path.Combine(Path.GetTempPath(), "fb-tables-example")
    let file = Path.Combine(dir, sprintf "blayers-%d.parquet" rows)
    if not (File.Exists file) then
        Directory.CreateDirectory dir |> ignore
        writeTable file rows 100_000
    let t = Table.stream schema StreamOptions.Default (TableSource.Parquet file)
    let s = schema.WithVocabularies t.Vocabularies
    for prefetch in [ 0; StreamOptions.Default.Prefetch ] do
        let t = Table.stream s { StreamOptions.Default with Prefetch = prefetch } (TableSource.Parquet file)
        let batches = epochs * ((rows + batch - 1) / batch)
        // one epoch first, untimed: JIT and tiering
        t.Batches.Batches (Rng.key 2UL) { SviRunOptions.Default with BatchSize = Some batch } |> Seq.truncate (batches / epochs) |> Seq.iter ignore
        let cpu0 = Process.GetCurrentProcess().TotalProcessorTime
        let gc0 = GC.GetTotalPauseDuration()
        let gen2 = GC.CollectionCount 2
        let sw = Stopwatch.StartNew()
        t.Batches.Batches (Rng.key 1UL) { SviRunOptions.Default with BatchSize = Some batch } |> Seq.truncate batches |> Seq.iter ignore
        let wall = sw.Elapsed.TotalSeconds
        let cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds
        let n = float epochs * float rows
        let pause = (GC.GetTotalPauseDuration() - gc0).TotalMilliseconds
        printfn "drain prefetch %d: %d epochs of %d rows in %.2f s = %.2f M rows/s, CPU %.0f ms per 1M rows (GC pauses %.0f ms per 1M rows, %d gen2)" prefetch epochs rows wall (n / wall / 1e6) (cpu * 1e6 / n) (pause * 1e6 / n) (GC.CollectionCount 2 - gen2)

let sql () =
    let db = Path.Combine(Path.GetTempPath(), "fb-tables-example.db")
    if File.Exists db then File.Delete db
    let cs = sprintf "Data Source=%s;Pooling=False" db
    do
        use c = new Microsoft.Data.Sqlite.SqliteConnection(cs)
        c.Open()
        use tx = c.BeginTransaction()
        use cmd = c.CreateCommand()
        cmd.CommandText <- "CREATE TABLE sales (store TEXT, price REAL, units REAL)"
        cmd.ExecuteNonQuery() |> ignore
        cmd.CommandText <- "INSERT INTO sales VALUES ($s, $p, $u)"
        let ps, pp, pu = cmd.Parameters.Add("$s", Microsoft.Data.Sqlite.SqliteType.Text), cmd.Parameters.Add("$p", Microsoft.Data.Sqlite.SqliteType.Real), cmd.Parameters.Add("$u", Microsoft.Data.Sqlite.SqliteType.Real)
        let noise = Tensor.toArray (Rng.normal (Rng.key 7UL) [| 5000 |])
        for i in 0 .. 4999 do
            let store = i % 5
            let price = 1.0 + float (i % 17) / 4.0
            ps.Value <- sprintf "store-%d" store
            pp.Value <- price
            pu.Value <- 10.0 - 1.5 * price + float store + 0.8 * noise.[i]
            cmd.ExecuteNonQuery() |> ignore
        tx.Commit()
    printfn "wrote %s (5,000 rows)" db
    let query =
        TableSource.Query("units by price and store", fun () ->
            let c = new Microsoft.Data.Sqlite.SqliteConnection(cs)
            c.Open()
            let cmd = c.CreateCommand()
            // centred in SQL: the intercept and slope are then nearly uncorrelated, which SVI needs to converge fast
            cmd.CommandText <- "SELECT store, price - 3.0 AS price, units - 10.0 AS units FROM sales WHERE price < 5"
            cmd.ExecuteReader(Data.CommandBehavior.CloseConnection) :> Data.Common.DbDataReader)
    let s = TableSchema.Of [ Column.categorical "store"; Column.float64 "price"; Column.float64 "units" ]
    let t = Table.stream s { StreamOptions.Default with BufferRows = 1024 } query
    printfn "query: %d rows, stores %O" t.Rows t.Vocabularies.["store"]
    let m (d: Map<string, Tensor>) = model {
        let! slope = Layers.adaptive "price" (Tensor.reshape [| -1; 1 |] d.["price"])
        let! re = Layers.randomEffects "store" d.["store"] 5
        let! b = Layers.intercept "b"
        return! Links.gaussian "units" (slope + re + b) (d.TryFind "units")
    }
    let opts = { FitOptions.Default with Run.Epochs = Some 100; Run.BatchSize = Some 256; LearningRate = 0.05; Schedule = LrSchedule.WarmupCosine }
    let show (name: string) (p: Posterior<Tensor>) =
        let mean = Posterior.mean p (Rng.key 1UL) 500
        printfn "%s: price slope %.3f (true -1.5), noise sd %.3f (true 0.8)" name (Tensor.toArray mean.["AdaptiveLayer_price_beta"]).[0] (Tensor.toScalar mean.["units_sigma"])
    show "streamed from the query" (Fit.viSource opts m t.Batches)
    show "the query's rows in memory" (Fit.vi opts m (Table.read s query).Data)

[<EntryPoint>]
let main argv =
    let arg i d = if argv.Length > i then int argv.[i] else d
    match argv |> Array.tryHead with
    | Some "sql" -> sql ()
    | Some "pull" -> pull (arg 1 2_000_000) (arg 2 1024) (arg 3 400)
    | Some "drain" -> drain (arg 1 1_000_000) (arg 2 1024) (arg 3 2)
    | _ -> big (arg 1 10_000_000) (arg 2 1_000_000) (arg 3 2000) (arg 4 1024)
    0
