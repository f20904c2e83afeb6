/// Streaming a Parquet table into minibatch SVI against the same fit on the rows held in memory (issue 28):
/// the same model, batch size, steps and seed, measured alternately in one process.
module FunctionalBayes.Benchmarks.TablesSuite

open System
open System.Diagnostics
open System.IO
open Parquet
open Parquet.Schema
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tables
open FunctionalBayes.Benchmarks.Measure

let private features = 10
let private levels = 200

/// rows × (features + 2) columns in row groups of 50,000: x1..x10 ~ N(0, 1), a level g of `levels`, and
/// y = Σ x_j / j + u[g] + 0.5 ε.
let private write (path: string) (rows: int) =
    let names = Array.init features (fun j -> sprintf "x%d" (j + 1))
    let fx = names |> Array.map (fun n -> DataField<float>(n))
    let fg, fy = DataField<string>("g"), DataField<float>("y")
    let u = Tensor.toArray (Rng.normal (Rng.key 20UL) [| levels |])
    task {
        use fs = File.Create path
        use! w = ParquetWriter.CreateAsync(ParquetSchema(Array.append (fx |> Array.map (fun f -> f :> Field)) [| fg :> Field; fy :> Field |]), fs)
        for part in 0 .. (rows - 1) / 50_000 do
            let n = min 50_000 (rows - part * 50_000)
            let k = Rng.foldIn (Rng.key 21UL) part
            let x = Tensor.toArray (Rng.normal k [| features; n |])
            let e = Tensor.toArray (Rng.normal (Rng.foldIn k 1) [| n |])
            let g = Tensor.toArray (Rng.uniform (Rng.foldIn k 2) [| n |]) |> Array.map (fun v -> min (levels - 1) (int (v * float levels)))
            let y = Array.init n (fun r -> u.[g.[r]] + 0.5 * e.[r] + Seq.sum (seq { for j in 0 .. features - 1 -> x.[j * n + r] / float (j + 1) }))
            use rg = w.CreateRowGroup()
            for j in 0 .. features - 1 do
                do! rg.WriteAsync(fx.[j], ReadOnlyMemory<float>(x, j * n, n))
            do! rg.WriteAsync(fg, g |> Array.map (sprintf "g%03d") :> Collections.Generic.IReadOnlyCollection<string>)
            do! rg.WriteAsync(fy, ReadOnlyMemory<float>(y))
    } |> fun t -> t.GetAwaiter().GetResult()
    names

/// Streamed and in-memory steps/s of the same fit, their ratio, the batch source's own time per batch, and the
/// batch stream drained alone (rows/s, CPU-ms per 1M rows) without and with read-ahead.
let run () =
    let rows, batch, steps = 500_000, 1024, 300
    let path = Path.Combine(Path.GetTempPath(), sprintf "fb-bench-tables-%d.parquet" rows)
    let names = write path rows
    let schema = { TableSchema.Of ([ for n in names -> Column.float64 n ] @ [ Column.categorical "g"; Column.float64 "y" ]) with Matrices = [ "x", List.ofArray names ] }
    let m (d: Map<string, Tensor>) = model {
        let! mu = Layers.adaptive "x" d.["x"]
        let! re = Layers.randomEffects "g" d.["g"] levels
        let! b = Layers.intercept "b"
        return! Links.gaussian "y" (mu + re + b) (d.TryFind "y")
    }
    let opts = { FitOptions.Default with Run.Steps = Some steps; Run.BatchSize = Some batch; LearningRate = 0.01; Seed = 1UL }
    let streamed = Table.stream schema StreamOptions.Default (TableSource.Parquet path)
    let mem = Table.read schema (TableSource.Parquet path)
    let timed (fit: unit -> Posterior<Tensor> * SviResult) =
        let sw = Stopwatch.StartNew()
        let _, r = fit ()
        float r.Losses.Length / sw.Elapsed.TotalSeconds
    // the batch source alone, from the start of an epoch (its buffer fill included)
    let pull () =
        let sw = Stopwatch.StartNew()
        streamed.Batches.Batches (Rng.key 1UL) { SviRunOptions.Default with BatchSize = Some batch } |> Seq.truncate steps |> Seq.iter ignore
        1000.0 * sw.Elapsed.TotalSeconds / float steps
    // the batch stream alone, drained for a whole epoch without a fit: its throughput and CPU per 1M rows, on
    // the draining thread (Prefetch 0: the CPU one producer thread needs) and with the default read-ahead
    let drain (prefetch: int) =
        let t = Table.stream (schema.WithVocabularies streamed.Vocabularies) { StreamOptions.Default with Prefetch = prefetch } (TableSource.Parquet path)
        let epoch = (rows + batch - 1) / batch
        let go (k: uint64) = t.Batches.Batches (Rng.key k) { SviRunOptions.Default with BatchSize = Some batch } |> Seq.truncate epoch |> Seq.iter ignore
        go 2UL
        // the fits' garbage collected first, not in the timed epoch
        GC.Collect()
        GC.WaitForPendingFinalizers()
        let cpu0 = Process.GetCurrentProcess().TotalProcessorTime
        let sw = Stopwatch.StartNew()
        go 1UL
        let cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds
        float rows / sw.Elapsed.TotalSeconds, cpu * 1e6 / float rows
    pull () |> ignore
    let s, i, p = ResizeArray(), ResizeArray(), ResizeArray()
    for _ in 1 .. 3 do
        s.Add (timed (fun () -> Fit.viSourceRun opts m streamed.Batches))
        i.Add (timed (fun () -> Fit.viRun opts m mem.Data))
        p.Add (pull ())
    let median (xs: ResizeArray<float>) = (Seq.sort xs |> Seq.toArray).[xs.Count / 2]
    report "tables_streamed_steps_per_s" (median s) "steps/s" None
    report "tables_in_memory_steps_per_s" (median i) "steps/s" None
    report "tables_streamed_over_in_memory" (100.0 * median (ResizeArray(Seq.map2 (/) s i))) "%" None
    report "tables_batch_source_ms_per_batch" (median p) "ms" None
    for prefetch in [ 0; StreamOptions.Default.Prefetch ] do
        let d = [| for _ in 1 .. 3 -> drain prefetch |]
        report (sprintf "tables_drain_prefetch%d_rows_per_s" prefetch) (median (ResizeArray(Array.map fst d))) "rows/s" None
        report (sprintf "tables_drain_prefetch%d_cpu_ms_per_1M_rows" prefetch) (median (ResizeArray(Array.map snd d))) "ms" None
