/// Issue 28 item 1: a categorical column's vocabulary travels with the posterior (fit, file, prediction, ONNX).
module FunctionalBayes.Tables.Tests.VocabularyTests

open System
open System.IO
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tables
open FunctionalBayes.Onnx
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tables.Tests.TableTests

/// 300 rows: y = effect(region) + 0.5 x + 0.3 ε, regions written in the order north, south, east (their
/// vocabulary is ordinal: east = 0, north = 1, south = 2).
let private training =
    lazy (
        let regions = [| "north"; "south"; "east" |]
        let effect = Map [ "north", 1.0; "south", -1.0; "east", 0.0 ]
        let x = Tensor.toArray (Rng.normal (Rng.key 51UL) [| 300 |])
        let e = Tensor.toArray (Rng.normal (Rng.key 52UL) [| 300 |])
        let rows =
            [ for i in 0 .. 299 ->
                let r = regions.[i % 3]
                sprintf "%d,%s,%s,%s" i r (x.[i].ToString("R", Globalization.CultureInfo.InvariantCulture))
                    ((effect.[r] + 0.5 * x.[i] + 0.3 * e.[i]).ToString("R", Globalization.CultureInfo.InvariantCulture)) ]
        writeText "regions.csv" ("id,region,x,y\n" + String.Join("\n", rows) + "\n"))

let private schema = TableSchema.Of [ Column.categorical "region"; Column.float64 "x"; Column.float64 "y" ]
let private noY = TableSchema.Of [ Column.categorical "region"; Column.float64 "x" ]

let private regional (d: Map<string, Tensor>) = model {
    let! slope = Layers.adaptive "x" (Tensor.reshape [| -1; 1 |] d.["x"])
    let! re = Layers.randomEffects "region" d.["region"] 3
    return! Links.gaussian "y" (Tensor.reshape [| -1 |] slope + Tensor.reshape [| -1 |] re) (d.TryFind "y") }

let private opts = { FitOptions.Default with Run.Steps = Some 300; Run.BatchSize = Some 100; LearningRate = 0.05; Seed = 2UL }

let ``the vocabulary travels with the posterior: fit, file, prediction by level, unseen levels refused by name`` () =
    let table = Table.read schema (TableSource.Csv training.Value)
    let levels = [| "east"; "north"; "south" |]
    // in memory and streamed, the fit keeps the table's vocabulary
    let fit = Fit.viSource opts regional (Table.toSource table)
    Assert.Equal<string[]>(levels, (Table.vocabularies fit).["region"].Levels)
    let streamed = Fit.viSource opts regional (Table.stream schema StreamOptions.Default (TableSource.Csv training.Value)).Batches
    Assert.Equal<string[]>(levels, (Table.vocabularies streamed).["region"].Levels)
    // the file holds it, and a loaded posterior has it back
    let path = tempFile "regions-posterior.json"
    Fit.save path fit
    Assert.Contains("\"levels\":[\"east\",\"north\",\"south\"]", File.ReadAllText path)
    let loaded = Fit.load path regional table.Data None
    Assert.Equal<string[]>(levels, (Table.vocabularies loaded).["region"].Levels)
    // new rows with only some levels, in another order: read with the fit's ids, not ids of their own
    let fresh = writeText "regions-new.csv" "id,region,x\n7,south,0.5\n8,east,-1\n9,south,2\n"
    let read = Table.readFor loaded noY (TableSource.Csv fresh)
    Assert.Equal<int[]>([| 2; 0; 2 |], Tensor.toInts read.Data.["region"])
    // streamed predictions are the in-memory predictions on those rows (the first chunk's key is the key folded with 0)
    let out = tempFile "regions-pred.csv"
    Assert.Equal(3, Table.predictPosteriorTo noY [ "id" ] loaded (Rng.key 8UL) 40 (TableSource.Csv fresh) out)
    let back = Table.read (TableSchema.Of [ Column.float64 "id"; Column.float64 "y_mean" ]) (TableSource.Csv out)
    let inMemory = Posterior.predict loaded (Rng.foldIn (Rng.key 8UL) 0) 40 false read.Data
    Assert.Equal<float[]>(Tensor.toArray inMemory.["y"].Mean, Tensor.toArray back.Data.["y_mean"])
    Assert.Equal<float[]>([| 7.0; 8.0; 9.0 |], Tensor.toArray back.Data.["id"])
    // south (-1) is below east (0) at the same x: the levels were matched by name
    let at0 = Posterior.predict loaded (Rng.key 9UL) 400 false (Map [ "region", Tensor.ofInts [| 0; 1; 2 |]; "x", Tensor.zeros [| 3 |] ])
    let m = Tensor.toArray at0.["y"].Mean
    Assert.True(m.[2] < m.[0] - 0.5 && m.[0] < m.[1] - 0.5, sprintf "east %g, north %g, south %g" m.[0] m.[1] m.[2])
    // a level the fit never saw: the file, column, row and level are named, by both readers
    let unseen = writeText "regions-unseen.csv" "id,region,x\n1,north,0\n2,west,1\n"
    for f in [ (fun () -> Table.readFor loaded noY (TableSource.Csv unseen) |> ignore)
               (fun () -> Table.predictPosteriorTo noY [ "id" ] loaded (Rng.key 8UL) 10 (TableSource.Csv unseen) (tempFile "unseen-pred.csv") |> ignore) ] do
        let e = Assert.Throws<TableReadException>(f)
        Assert.Contains(unseen, e.Message)
        Assert.Contains("'region'", e.Message)
        Assert.Contains("'west'", e.Message)
        Assert.Equal(2L, e.Row)
    // unless the schema maps unseen levels to a known one
    let mapped = Table.readFor loaded { noY with Unseen = UnseenLevelPolicy.AsLevel "east" } (TableSource.Csv unseen)
    Assert.Equal<int[]>([| 1; 0 |], Tensor.toInts mapped.Data.["region"])
    // a posterior fitted on bare tensors has no vocabulary: reading by level is refused, naming the column
    let bare = Fit.vi opts regional table.Data
    let e = Assert.Throws<ArgumentException>(fun () -> Table.readFor bare noY (TableSource.Csv fresh) |> ignore)
    Assert.Contains("no vocabulary for the categorical column 'region'", e.Message)

let ``the exported ONNX model lists each categorical input's levels in its metadata`` () =
    let table = Table.read schema (TableSource.Csv training.Value)
    let fit = Fit.viSource { opts with Run.Steps = Some 20 } regional (Table.toSource table)
    let example = table.Data |> Map.remove "y" |> Data.slice 0 4
    let onnx = Export.posterior ExportOptions.Default fit (Rng.key 1UL) 20 example
    let meta = onnx.MetadataProps |> Seq.map (fun p -> p.Key, p.Value) |> Map.ofSeq
    Assert.Equal("[\"east\",\"north\",\"south\"]", meta.[Export.LevelsKeyPrefix + "region"])
    Assert.False(meta.ContainsKey(Export.LevelsKeyPrefix + "x"), "a numeric input has no levels")

[<Tests>]
let tests =
    testList "VocabularyTests" [
        testCase "the vocabulary travels with the posterior: fit, file, prediction by level, unseen levels refused by name" ``the vocabulary travels with the posterior: fit, file, prediction by level, unseen levels refused by name``
        testCase "the exported ONNX model lists each categorical input's levels in its metadata" ``the exported ONNX model lists each categorical input's levels in its metadata``
    ]
