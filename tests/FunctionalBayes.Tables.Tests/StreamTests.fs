module FunctionalBayes.Tables.Tests.StreamTests

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tables
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tables.Tests.TableTests

/// 2,000 rows of y = 0.8 x1 − 1.3 x2 + 0.5 + 0.6 ε with a row id, in 8 row groups of 250.
let private regression =
    lazy (
        let n, per = 2000, 250
        let x = Tensor.toArray (Rng.normal (Rng.key 41UL) [| n; 2 |])
        let e = Tensor.toArray (Rng.normal (Rng.key 42UL) [| n |])
        let y = Array.init n (fun i -> 0.8 * x.[2 * i] - 1.3 * x.[2 * i + 1] + 0.5 + 0.6 * e.[i])
        let p = TableTests.tempFile "regression.parquet"
        let fs = [| "id"; "x1"; "x2"; "y" |] |> Array.map (fun c -> Parquet.Schema.DataField<float>(c))
        task {
            use f = IO.File.Create p
            use! w = Parquet.ParquetWriter.CreateAsync(Parquet.Schema.ParquetSchema(fs |> Array.map (fun f -> f :> Parquet.Schema.Field)), f)
            for g in 0 .. n / per - 1 do
                use rg = w.CreateRowGroup()
                let cols = [| (fun i -> float i); (fun i -> x.[2 * i]); (fun i -> x.[2 * i + 1]); (fun i -> y.[i]) |]
                for c in 0 .. 3 do
                    do! rg.WriteAsync(fs.[c], ReadOnlyMemory<float>(Array.init per (fun r -> cols.[c] (g * per + r))))
        } |> fun t -> t.GetAwaiter().GetResult()
        p)

let private schema = { TableSchema.Of [ Column.float64 "id"; Column.float64 "x1"; Column.float64 "x2"; Column.float64 "y" ] with Matrices = [ "x", [ "x1"; "x2" ] ] }

let private batchesOf (t: StreamedTable) (seed: uint64) (batch: int) (count: int) =
    t.Batches.Batches (Rng.key seed) { SviRunOptions.Default with BatchSize = Some batch } |> Seq.truncate count |> Seq.toArray

let ``each epoch gives every row once, in batches shuffled from the seed across row groups`` () =
    let t = Table.stream schema { StreamOptions.Default with BufferRows = 300 } (TableSource.Parquet regression.Value)
    Assert.Equal(2000, t.Rows)
    Assert.Equal(2000, t.Batches.Rows)
    // 2000 rows in batches of 300: 7 per epoch, the last one of 200
    let bs = batchesOf t 7UL 300 14
    Assert.Equal<int[]>([| 300; 300; 300; 300; 300; 300; 200 |], bs.[.. 6] |> Array.map (fun b -> b.["id"].Shape.[0]))
    for epoch in 0 .. 1 do
        let ids = bs.[7 * epoch .. 7 * epoch + 6] |> Array.collect (fun b -> Tensor.toArray b.["id"]) |> Array.map int
        Assert.Equal<int[]>([| 0 .. 1999 |], Array.sort ids)
        // shuffled: the first batch draws from more than the first row group, and not in file order
        let first = ids.[.. 299]
        Assert.True(first |> Array.exists (fun i -> i >= 250), "rows from later row groups in the first batch")
        Assert.True(first <> Array.sort first, "not in file order")
    // the rows keep their columns together: y matches id's row in the file
    let all = Table.read schema (TableSource.Parquet regression.Value)
    let y = Tensor.toArray all.Data.["y"]
    for b in bs do
        Array.iter2 (fun (i: float) v -> Assert.Equal(y.[int i], v)) (Tensor.toArray b.["id"]) (Tensor.toArray b.["y"])
    Assert.Equal<int[]>([| 300; 2 |], bs.[0].["x"].Shape)
    // two epochs differ; the same seed gives the same batches, another seed others
    Assert.NotEqual<float[]>(Tensor.toArray bs.[0].["id"], Tensor.toArray bs.[7].["id"])
    let again = batchesOf t 7UL 300 14
    Array.iter2 (fun (a: Map<string, Tensor>) (b: Map<string, Tensor>) -> Assert.Equal<float[]>(Tensor.toArray a.["id"], Tensor.toArray b.["id"])) bs again
    Assert.NotEqual<float[]>(Tensor.toArray bs.[0].["id"], Tensor.toArray (batchesOf t 8UL 300 1).[0].["id"])

/// The rows (ids) of the batches of epoch `epoch` as the stream's documented rule gives them, written out row by
/// row: the row groups of 250 in an order shuffled from the epoch's seed, the first `cap` rows into a buffer,
/// then each row taking the place of a slot drawn from the same seed whose row leaves, and the buffer emptied in
/// a permutation from it at the end; without shuffling, file order.
let private referenceEpoch (seed: uint64) (epoch: int) (cap: int) (b: int) (shuffle: bool) : int[][] =
    let rnd = Random(int (Rng.uniformAt (Rng.foldIn (Rng.key seed) epoch) 0 * 2147483646.0))
    let order = [| 0 .. 7 |]
    if shuffle then rnd.Shuffle order
    let out = ResizeArray<int>()
    let buffer = ResizeArray<int>()
    for g in order do
        for r in g * 250 .. g * 250 + 249 do
            if not shuffle then out.Add r
            elif buffer.Count < cap then buffer.Add r
            else
                let j = rnd.Next cap
                out.Add buffer.[j]
                buffer.[j] <- r
    let rest = Array.init buffer.Count id
    rnd.Shuffle rest
    for j in rest do out.Add buffer.[j]
    out.ToArray() |> Array.chunkBySize b

let ``the batches follow the buffer rule row for row, whatever the read-ahead, and each epoch is the table once`` () =
    let all = Table.read schema (TableSource.Parquet regression.Value)
    let y, x = Tensor.toArray all.Data.["y"], Tensor.toArray all.Data.["x"]
    for cap, b, shuffle in [ 300, 300, true; 1, 64, true; 5000, 128, true; 777, 1, true; 300, 333, false ] do
        let perEpoch = (2000 + b - 1) / b
        let got =
            [ for prefetch in [ 0; 1; 3 ] ->
                let t = Table.stream schema { StreamOptions.Default with BufferRows = cap; Prefetch = prefetch } (TableSource.Parquet regression.Value)
                t.Batches.Batches (Rng.key 11UL) { SviRunOptions.Default with BatchSize = Some b; Shuffle = shuffle } |> Seq.truncate (2 * perEpoch) |> Seq.toArray ]
        for bs in got do
            for epoch in 0 .. 1 do
                let expected = referenceEpoch 11UL epoch cap b shuffle
                let ids = bs.[epoch * perEpoch .. epoch * perEpoch + perEpoch - 1] |> Array.map (fun m -> Tensor.toArray m.["id"] |> Array.map int)
                Assert.Equal<int[][]>(expected, ids)
                Assert.Equal<int[]>([| 0 .. 1999 |], Array.sort (Array.concat ids))
            // every column of a row travels with its id
            for m in bs do
                let ids = Tensor.toArray m.["id"] |> Array.map int
                Assert.Equal<float[]>(ids |> Array.map (fun i -> y.[i]), Tensor.toArray m.["y"])
                Assert.Equal<float[]>(ids |> Array.collect (fun i -> [| x.[2 * i]; x.[2 * i + 1] |]), Tensor.toArray m.["x"])
        // read-ahead changes nothing
        for bs in got.Tail do
            Array.iter2 (fun (a: Map<string, Tensor>) (c: Map<string, Tensor>) -> Assert.Equal<float[]>(Tensor.toArray a.["x"], Tensor.toArray c.["x"])) got.Head bs

let private line (d: Map<string, Tensor>) = model {
    let! mu = Layers.adaptive "x" d.["x"]
    let! b = Layers.intercept "b"
    return! Links.gaussian "y" (mu + b) (d.TryFind "y")
}

let ``a streamed fit gives the in-memory fit's estimates, and the same numbers for the same seed`` () =
    let opts = { FitOptions.Default with Run.Epochs = Some 40; Run.BatchSize = Some 200; LearningRate = 0.05; Schedule = LrSchedule.WarmupCosine; Seed = 3UL }
    let streamed () =
        let t = Table.stream schema { StreamOptions.Default with BufferRows = 500 } (TableSource.Parquet regression.Value)
        Fit.viSourceRun opts line t.Batches
    let f, r = streamed ()
    let mem = Fit.vi opts line (Table.read schema (TableSource.Parquet regression.Value)).Data
    let means (p: Posterior<Tensor>) = Posterior.mean p (Rng.key 4UL) 500
    let ms, mm = means f, means mem
    let beta (m: Map<string, Tensor>) = Tensor.toArray m.["AdaptiveLayer_x_beta"]
    let sds = Posterior.summaryBySite mem (Rng.key 5UL) 500 |> Array.find (fun s -> s.Name = "AdaptiveLayer_x_beta")
    // the two fits agree within 4 posterior sds (about 0.015 each here: 0.6 / sqrt 2000) and both recover the truth
    Array.iteri2 (fun i a b ->
        let sd = sds.Elements.[i].Sd
        Assert.True(abs (a - b) < 4.0 * sd, sprintf "beta[%d]: streamed %g, in memory %g, sd %g" i a b sd)) (beta ms) (beta mm)
    Array.iter2 (fun a t -> Assert.True(abs (a - t) < 0.1, sprintf "%g vs %g" a t)) (beta ms) [| 0.8; -1.3 |]
    Assert.True(abs (Tensor.toScalar ms.["y_sigma"] - 0.6) < 0.05)
    // deterministic given the seed
    let _, r2 = streamed ()
    Assert.Equal<float[]>(r.Losses, r2.Losses)
    Assert.Equal(40 * 10, r.Losses.Length)

let ``a streamed source needs a batch size and refuses the Laplace guide`` () =
    let t = Table.stream schema StreamOptions.Default (TableSource.Parquet regression.Value)
    let e = Assert.Throws<ArgumentException>(fun () -> Fit.viSource { FitOptions.Default with Run.Steps = Some 3 } line t.Batches |> ignore)
    Assert.Contains("BatchSize", e.Message)
    let e = Assert.Throws<ArgumentException>(fun () -> Fit.viSource { FitOptions.Default with Run.Steps = Some 3; Run.BatchSize = Some 10; AutoGuide = AutoGuideKind.AutoLaplaceApproximation } line t.Batches |> ignore)
    Assert.Contains("Laplace", e.Message)

let ``CSV sources stream too: a first pass counts rows and builds the vocabulary`` () =
    let p = writeText "stream.csv" ("g,v\n" + String.Join("\n", [ for i in 0 .. 99 -> sprintf "%s,%d" (if i % 3 = 0 then "c" else "a") i ]) + "\n")
    let t = Table.stream (TableSchema.Of [ Column.categorical "g"; Column.float64 "v" ]) { StreamOptions.Default with BufferRows = 16 } (TableSource.Csv p)
    Assert.Equal(100, t.Rows)
    Assert.Equal<string[]>([| "a"; "c" |], t.Vocabularies.["g"].Levels)
    let bs = batchesOf t 1UL 32 4
    let vs = bs |> Array.collect (fun b -> Tensor.toArray b.["v"]) |> Array.map int
    Assert.Equal<int[]>([| 0 .. 99 |], Array.sort vs)
    for b in bs do
        Array.iter2 (fun (v: float) g -> Assert.Equal((if int v % 3 = 0 then 1 else 0), g)) (Tensor.toArray b.["v"]) (Tensor.toInts b.["g"])

let ``predictions stream out to Parquet and CSV with the id columns kept`` () =
    let src = TableSource.Parquet regression.Value
    let noY = { schema with Columns = schema.Columns |> List.filter (fun c -> c.Name <> "y") }
    // a known predictor: 2·x1 − x2 per row
    let known (d: Map<string, Tensor>) =
        let x = d.["x"]
        Map [ "z", Tensor.toArray x |> Array.chunkBySize 2 |> Array.map (fun r -> 2.0 * r.[0] - r.[1]) |> Tensor.ofArray ]
    let all = (Table.read schema src).Data
    let x = Tensor.toArray all.["x"]
    for ext in [ "parquet"; "csv" ] do
        let out = TableTests.tempFile ("pred." + ext)
        Assert.Equal(2000, Table.predictTo noY [ "id" ] known src out)
        let back = Table.read (TableSchema.Of [ Column.float64 "id"; Column.float64 "z" ]) ((if ext = "csv" then TableSource.Csv else TableSource.Parquet) out)
        Assert.Equal<float[]>([| 0.0 .. 1999.0 |], Tensor.toArray back.Data.["id"])
        Assert.Equal<float[]>(Array.init 2000 (fun i -> 2.0 * x.[2 * i] - x.[2 * i + 1]), Tensor.toArray back.Data.["z"])
    // a posterior's predictive mean and sd per row
    let fit = Fit.vi { FitOptions.Default with Run.Epochs = Some 40; Run.BatchSize = Some 200; LearningRate = 0.05; Schedule = LrSchedule.WarmupCosine; Seed = 3UL } line all
    let out = TableTests.tempFile "post.parquet"
    Table.predictTo noY [ "id" ] (Table.posteriorPredictor fit (Rng.key 9UL) 50) src out |> ignore
    let back = Table.read (TableSchema.Of [ Column.float64 "y_mean"; Column.float64 "y_sd" ]) (TableSource.Parquet out)
    let ym = Tensor.toArray back.Data.["y_mean"]
    // against the fitted line at the posterior means: each row's mean of 50 predictive draws has standard error
    // sd/√50 (sd as written); 5.5 of them bounds the largest of 2000 rows (the mean line itself is from 4000 draws)
    let pm = Posterior.mean fit (Rng.key 10UL) 4000
    let beta, b = Tensor.toArray pm.["AdaptiveLayer_x_beta"], Tensor.toScalar pm.["InterceptLayer_b_beta"]
    let sd = Tensor.toArray back.Data.["y_sd"]
    let line = Array.init 2000 (fun i -> beta.[0] * x.[2 * i] + beta.[1] * x.[2 * i + 1] + b)
    for i in 0 .. 1999 do
        Assert.True(abs (ym.[i] - line.[i]) < 5.5 * sd.[i] / sqrt 50.0 + 0.02, sprintf "row %d: %g vs %g (sd %g)" i ym.[i] line.[i] sd.[i])
    // the fit recovers sigma = 0.6 (see the test above); an sd from 50 draws has a relative error of about 10 %: 0.3 to 0.9 is over 4 of them for the extremes of 2000 rows
    Assert.All(Tensor.toArray back.Data.["y_sd"], fun sd -> Assert.InRange(sd, 0.3, 0.9))

/// 600 rows of 6 binary pixels (two noisy prototypes) in 3 row groups of 200, as float columns p0..p5.
let private pixels =
    lazy (
        let n, per = 600, 200
        let u = Tensor.toArray (Rng.uniform (Rng.key 61UL) [| n; 6 |])
        let value i c = if (u.[6 * i + c] < 0.1) <> (i % 2 = 0) then 1.0 else 0.0
        let p = TableTests.tempFile "pixels.parquet"
        let fs = Array.init 6 (fun c -> Parquet.Schema.DataField<float>(sprintf "p%d" c))
        task {
            use f = IO.File.Create p
            use! w = Parquet.ParquetWriter.CreateAsync(Parquet.Schema.ParquetSchema(fs |> Array.map (fun f -> f :> Parquet.Schema.Field)), f)
            for g in 0 .. n / per - 1 do
                use rg = w.CreateRowGroup()
                for c in 0 .. 5 do
                    do! rg.WriteAsync(fs.[c], ReadOnlyMemory<float>(Array.init per (fun r -> value (g * per + r) c)))
        } |> fun t -> t.GetAwaiter().GetResult()
        p)

let ``AEVB streams from a Parquet file: the same bits as in memory on the same batches, deterministic given the seed`` () =
    let cols = [ for c in 0 .. 5 -> sprintf "p%d" c ]
    let pixelSchema = { TableSchema.Of [ for c in cols -> Column.float64 c ] with Matrices = [ "x", cols ] }
    let engine =
        let enc = Nn.mlp { MlpSpec.Create(6, [ 8 ], [ Nn.head "loc" 2 Activations.identity; Nn.head "scale" 2 Activations.halfExp ]) with Dtype = Float64 }
        let dec = Nn.mlp { MlpSpec.Create(2, [ 8 ], [ Nn.head "logits" 6 Activations.identity ]) with Dtype = Float64 }
        Aevb.create 2 6 enc dec AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 1 1.0
    let stream () = (Table.stream pixelSchema { StreamOptions.Default with BufferRows = 128; SampleRows = 50 } (TableSource.Parquet pixels.Value)).Batches
    let x = (Table.read pixelSchema (TableSource.Parquet pixels.Value)).Data.["x"]
    // in file order, the stream's batches are the in-memory run's: the same bits, step for step
    let inOrder = { AevbRunOptions.Create(3, 64) with Shuffle = false }
    let mem = Aevb.run engine (Rng.key 5UL) x inOrder
    let streamed = Aevb.runSource engine (Rng.key 5UL) (stream ()) "x" inOrder
    Assert.Equal(3 * 10, streamed.Losses.Length)
    Assert.Equal<float[]>(mem.Losses, streamed.Losses)
    Assert.Equal<float[]>(Tensor.toArray (Aevb.reconstruct engine mem.State x), Tensor.toArray (Aevb.reconstruct engine streamed.State x))
    // shuffled across row groups and the buffer from the seed: the same seed gives the same numbers, another seed others
    let shuffled = AevbRunOptions.Create(2, 64)
    let a = Aevb.runSource engine (Rng.key 6UL) (stream ()) "x" shuffled
    let b = Aevb.runSource engine (Rng.key 6UL) (stream ()) "x" shuffled
    Assert.Equal<float[]>(a.Losses, b.Losses)
    Assert.NotEqual<float[]>(a.Losses, (Aevb.runSource engine (Rng.key 7UL) (stream ()) "x" shuffled).Losses)
    // a batch without the column is named
    let e = Assert.Throws<ArgumentException>(fun () -> Aevb.runSource engine (Rng.key 6UL) (stream ()) "pixels" shuffled |> ignore)
    Assert.Contains("'pixels'", e.Message)

[<Tests>]
let tests =
    testList "StreamTests" [
        testCase "predictions stream out to Parquet and CSV with the id columns kept" ``predictions stream out to Parquet and CSV with the id columns kept``
        testCase "each epoch gives every row once, in batches shuffled from the seed across row groups" ``each epoch gives every row once, in batches shuffled from the seed across row groups``
        testCase "the batches follow the buffer rule row for row, whatever the read-ahead, and each epoch is the table once" ``the batches follow the buffer rule row for row, whatever the read-ahead, and each epoch is the table once``
        testCase "a streamed fit gives the in-memory fit's estimates, and the same numbers for the same seed" ``a streamed fit gives the in-memory fit's estimates, and the same numbers for the same seed``
        testCase "a streamed source needs a batch size and refuses the Laplace guide" ``a streamed source needs a batch size and refuses the Laplace guide``
        testCase "CSV sources stream too: a first pass counts rows and builds the vocabulary" ``CSV sources stream too: a first pass counts rows and builds the vocabulary``
        testCase "AEVB streams from a Parquet file: the same bits as in memory on the same batches, deterministic given the seed" ``AEVB streams from a Parquet file: the same bits as in memory on the same batches, deterministic given the seed``
    ]
