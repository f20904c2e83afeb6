module FunctionalBayes.Tables.Tests.TableTests

open System
open System.IO
open Expecto
open Microsoft.Data.Sqlite
open Parquet
open Parquet.Schema
open FunctionalBayes.Tensors
open FunctionalBayes.Tables
open FunctionalBayes.TestAssertions

/// A fresh file path in a folder of this test run.
let tempFile (name: string) =
    let dir = Path.Combine(Path.GetTempPath(), "fb-tables-" + string Environment.ProcessId)
    Directory.CreateDirectory dir |> ignore
    Path.Combine(dir, name)

let writeText (name: string) (text: string) =
    let p = tempFile name
    File.WriteAllText(p, text)
    p

/// Writes a Parquet file with x (double), k (int), g (string) and an optional nullable column, in row groups.
let writeParquet (name: string) (groups: (float[] * int[] * string[]) list) =
    let p = tempFile name
    let fx = DataField<float>("x")
    let fk = DataField<int>("k")
    let fg = DataField<string>("g")
    let schema = ParquetSchema(fx, fk, fg)
    task {
        use fs = File.Create p
        use! w = ParquetWriter.CreateAsync(schema, fs)
        for (x, k, g) in groups do
            use rg = w.CreateRowGroup()
            do! rg.WriteAsync(fx, ReadOnlyMemory<float>(x))
            do! rg.WriteAsync(fk, ReadOnlyMemory<int>(k))
            do! rg.WriteAsync(fg, g :> Collections.Generic.IReadOnlyCollection<string>)
    } |> fun t -> t.GetAwaiter().GetResult()
    p

let schema = TableSchema.Of [ Column.float64 "x"; Column.int32 "k"; Column.categorical "g" ]

let expectFails (f: unit -> 'a) : TableReadException =
    try
        f () |> ignore
        failwith "expected a TableReadException"
    with :? TableReadException as e -> e

let ``CSV: numbers, ints and levels to tensors, the vocabulary in ordinal order`` () =
    let p = writeText "ok.csv" "x,k,g,unused\n1.5,3,b,z\n-2,4,a,z\n0.25,5,b,z\n"
    let t = Table.read schema (TableSource.Csv p)
    Assert.Equal(3, t.Rows)
    Assert.Equal<float[]>([| 1.5; -2.0; 0.25 |], Tensor.toArray t.Data.["x"])
    Assert.Equal(Float64, t.Data.["x"].Dtype)
    Assert.Equal<int[]>([| 3; 4; 5 |], Tensor.toInts t.Data.["k"])
    Assert.Equal<string[]>([| "a"; "b" |], t.Vocabularies.["g"].Levels)
    Assert.Equal<int[]>([| 1; 0; 1 |], Tensor.toInts t.Data.["g"])
    Assert.Equal(Int32, t.Data.["g"].Dtype)
    // float32 and a matrix of columns
    let s2 = { TableSchema.Of [ Column.float32 "x"; Column.float32 "k" ] with Matrices = [ "X", [ "x"; "k" ] ] }
    let m = (Table.read s2 (TableSource.Csv p)).Data
    Assert.Equal<string[]>([| "X" |], m |> Map.keys |> Seq.toArray)
    Assert.Equal<int[]>([| 3; 2 |], m.["X"].Shape)
    Assert.Equal(Float32, m.["X"].Dtype)
    Assert.Equal<float[]>([| 1.5; 3.0; -2.0; 4.0; 0.25; 5.0 |], Tensor.toArray m.["X"])

let ``CSV errors name the file, column and row`` () =
    let bad (file: string) (text: string) (s: TableSchema) (column: string) (row: int64) (words: string list) =
        let p = writeText file text
        let e = expectFails (fun () -> Table.read s (TableSource.Csv p))
        Assert.Equal(p, e.Table)
        Assert.Equal(column, e.Column)
        Assert.Equal(row, e.Row)
        Assert.Contains(p, e.Message)
        Assert.Contains(sprintf "'%s'" column, e.Message)
        for w in words do Assert.Contains(w, e.Message)
    bad "nocol.csv" "x,k\n1,2\n" schema "g" 0L [ "no column 'g'"; "x, k" ]
    bad "type.csv" "x,k,g\n1,2,a\nabc,3,b\n" schema "x" 2L [ "row 2"; "'abc' is not a number" ]
    bad "frac.csv" "x,k,g\n1,2.5,a\n" schema "k" 1L [ "2.5 is not an int32" ]
    bad "missing.csv" "x,k,g\n1,2,a\n,3,b\n" schema "x" 2L [ "missing value"; "DropRow" ]
    bad "nan.csv" "x,k,g\n1,2,a\n2,3,b\nNaN,4,c\n" schema "x" 3L [ "missing value" ]
    bad "inf.csv" "x,k,g\n1,2,a\nInfinity,3,b\n" schema "x" 2L [ "not finite" ]
    bad "trunc.csv" "x,k,g\n1,2,a\n3,4" schema "g" 2L [ "2 fields but the header has 3"; "truncated" ]
    let known = TableSchema.Of [ Column.float64 "x"; Column.int32 "k"; Column.categoricalOf "g" (Vocabulary [ "a"; "b" ]) ]
    bad "unseen.csv" "x,k,g\n1,2,a\n1,2,b\n1,2,zz\n" known "g" 3L [ "the level 'zz' is not in the vocabulary" ]

let ``missing values dropped or filled, unseen levels mapped when told`` () =
    let p = writeText "policy.csv" "x,k,g\n1,2,a\n,3,b\n4,5,\n"
    let dropped = Table.read { schema with Missing = MissingPolicy.DropRow } (TableSource.Csv p)
    Assert.Equal(1, dropped.Rows)
    Assert.Equal<float[]>([| 1.0 |], Tensor.toArray dropped.Data.["x"])
    let numeric = TableSchema.Of [ Column.float64 "x"; Column.int32 "k" ]
    let filled = Table.read { numeric with Missing = MissingPolicy.Fill 0.5 } (TableSource.Csv p)
    Assert.Equal<float[]>([| 1.0; 0.5; 4.0 |], Tensor.toArray filled.Data.["x"])
    let e = expectFails (fun () -> Table.read { schema with Missing = MissingPolicy.Fill 0.0 } (TableSource.Csv p))
    Assert.Equal(3L, e.Row)
    Assert.Contains("categorical", e.Message)
    let q = writeText "other.csv" "g\na\nnew\n"
    let s = { TableSchema.Of [ Column.categoricalOf "g" (Vocabulary [ "a"; "other" ]) ] with Unseen = UnseenLevelPolicy.AsLevel "other" }
    Assert.Equal<int[]>([| 0; 1 |], Tensor.toInts (Table.read s (TableSource.Csv q)).Data.["g"])

let ``matrices of columns: rows across several 64-row tiles, dropped rows left out, float64 and float32`` () =
    // 150 rows; row r has a = r, b = 1000 + r, c = -r / 4; rows 5, 64 and 130 miss a value in one column
    let missing = set [ 5; 64; 130 ]
    let cell r c = if missing.Contains r && c = (r % 3) then "" else (match c with 0 -> string r | 1 -> string (1000 + r) | _ -> (float -r / 4.0).ToString("R", Globalization.CultureInfo.InvariantCulture))
    let text = "a,b,c\n" + String.Join("\n", [ for r in 0 .. 149 -> String.Join(",", [ for c in 0 .. 2 -> cell r c ]) ]) + "\n"
    let p = writeText "matrix.csv" text
    let kept = [ for r in 0 .. 149 do if not (missing.Contains r) then r ]
    let expected = [| for r in kept do yield float r; yield float (1000 + r); yield float -r / 4.0 |]
    let s64 = { TableSchema.Of [ Column.float64 "a"; Column.float64 "b"; Column.float64 "c" ] with Matrices = [ "m", [ "a"; "b"; "c" ] ]; Missing = MissingPolicy.DropRow }
    let m = (Table.read s64 (TableSource.Csv p)).Data.["m"]
    Assert.Equal<int[]>([| 147; 3 |], m.Shape)
    Assert.Equal<float[]>(expected, Tensor.toArray m)
    let s32 = { TableSchema.Of [ Column.float32 "a"; Column.float32 "b"; Column.float32 "c" ] with Matrices = [ "m", [ "a"; "b"; "c" ] ]; Missing = MissingPolicy.DropRow }
    let m32 = (Table.read s32 (TableSource.Csv p)).Data.["m"]
    Assert.Equal(Float32, m32.Dtype)
    Assert.Equal<float[]>(expected, Tensor.toArray m32)
    // with no row dropped (missing values filled), every row in order
    let filled = Table.read { s64 with Missing = MissingPolicy.Fill 7.0 } (TableSource.Csv p)
    let all = Tensor.toArray filled.Data.["m"]
    Assert.Equal(450, all.Length)
    for r in 0 .. 149 do
        for c in 0 .. 2 do
            let v = all.[3 * r + c]
            if missing.Contains r && c = r % 3 then Assert.Equal(7.0, v)
            else Assert.Equal(Double.Parse(cell r c, Globalization.CultureInfo.InvariantCulture), v)

let ``Parquet: row groups read in order; a truncated file is an error naming it`` () =
    let p = writeParquet "t.parquet" [ [| 1.0; 2.0 |], [| 7; 8 |], [| "u"; "v" |]; [| 3.0 |], [| 9 |], [| "u" |] ]
    let t = Table.read schema (TableSource.Parquet p)
    Assert.Equal<float[]>([| 1.0; 2.0; 3.0 |], Tensor.toArray t.Data.["x"])
    Assert.Equal<int[]>([| 7; 8; 9 |], Tensor.toInts t.Data.["k"])
    Assert.Equal<int[]>([| 0; 1; 0 |], Tensor.toInts t.Data.["g"])
    let e = expectFails (fun () -> Table.read (TableSchema.Of [ Column.float64 "nope" ]) (TableSource.Parquet p))
    Assert.Contains("no column 'nope'; the columns are: x, k, g", e.Message)
    let bytes = File.ReadAllBytes p
    let cut = tempFile "cut.parquet"
    File.WriteAllBytes(cut, bytes.[.. bytes.Length - 20])
    let e = expectFails (fun () -> Table.read schema (TableSource.Parquet cut))
    Assert.Equal(cut, e.Table)
    Assert.Contains("truncated", e.Message)

let ``SQLite: a query on a database file made here; NULL is a missing value naming its row`` () =
    let db = tempFile "t.db"
    if File.Exists db then File.Delete db
    let cs = sprintf "Data Source=%s;Pooling=False" db
    do
        use c = new SqliteConnection(cs)
        c.Open()
        use cmd = c.CreateCommand()
        cmd.CommandText <- "CREATE TABLE obs (id INTEGER, x REAL, g TEXT); INSERT INTO obs VALUES (1, 0.5, 'north'), (2, -1.25, 'south'), (3, NULL, 'north');"
        cmd.ExecuteNonQuery() |> ignore
    let query (sql: string) =
        TableSource.Query("obs query", fun () ->
            let c = new SqliteConnection(cs)
            c.Open()
            let cmd = c.CreateCommand()
            cmd.CommandText <- sql
            cmd.ExecuteReader(Data.CommandBehavior.CloseConnection) :> Data.Common.DbDataReader)
    let s = TableSchema.Of [ Column.int32 "id"; Column.float64 "x"; Column.categorical "g" ]
    let t = Table.read s (query "SELECT id, x, g FROM obs WHERE x IS NOT NULL ORDER BY id")
    Assert.Equal<int[]>([| 1; 2 |], Tensor.toInts t.Data.["id"])
    Assert.Equal<float[]>([| 0.5; -1.25 |], Tensor.toArray t.Data.["x"])
    Assert.Equal<string[]>([| "north"; "south" |], t.Vocabularies.["g"].Levels)
    let e = expectFails (fun () -> Table.read s (query "SELECT id, x, g FROM obs ORDER BY id"))
    Assert.Equal("obs query", e.Table)
    Assert.Equal("x", e.Column)
    Assert.Equal(3L, e.Row)
    let e = expectFails (fun () -> Table.read (TableSchema.Of [ Column.float64 "g" ]) (query "SELECT g FROM obs"))
    Assert.Contains("'north' is not a number", e.Message)

let ``Arrow record batches and a DataFrame read like files`` () =
    let xs = (Apache.Arrow.DoubleArray.Builder()).AppendRange([| 1.0; 2.0 |]).Build()
    let gs = (Apache.Arrow.StringArray.Builder()).AppendRange([| "p"; "q" |]).Build()
    let sch = Apache.Arrow.Schema.Builder().Field(fun f -> f.Name("x").DataType(Apache.Arrow.Types.DoubleType.Default) |> ignore).Field(fun f -> f.Name("g").DataType(Apache.Arrow.Types.StringType.Default) |> ignore).Build()
    let rb = new Apache.Arrow.RecordBatch(sch, [| xs :> Apache.Arrow.IArrowArray; gs :> Apache.Arrow.IArrowArray |], 2)
    let s = TableSchema.Of [ Column.float64 "x"; Column.categorical "g" ]
    let t = Table.read s (TableSource.Arrow("batches", [ rb; rb ]))
    Assert.Equal<float[]>([| 1.0; 2.0; 1.0; 2.0 |], Tensor.toArray t.Data.["x"])
    Assert.Equal<int[]>([| 0; 1; 0; 1 |], Tensor.toInts t.Data.["g"])
    let df = Microsoft.Data.Analysis.DataFrame(
                [ Microsoft.Data.Analysis.PrimitiveDataFrameColumn<float>("x", [| 3.0; 4.0 |]) :> Microsoft.Data.Analysis.DataFrameColumn
                  Microsoft.Data.Analysis.StringDataFrameColumn("g", [| "q"; "p" |]) ])
    let d = Table.read s (TableSource.DataFrame("frame", df))
    Assert.Equal<float[]>([| 3.0; 4.0 |], Tensor.toArray d.Data.["x"])
    Assert.Equal<int[]>([| 1; 0 |], Tensor.toInts d.Data.["g"])
    let e = expectFails (fun () -> Table.read (TableSchema.Of [ Column.float64 "g" ]) (TableSource.DataFrame("frame", df)))
    Assert.Equal(1L, e.Row)

[<Tests>]
let tests =
    testList "TableTests" [
        testCase "CSV: numbers, ints and levels to tensors, the vocabulary in ordinal order" ``CSV: numbers, ints and levels to tensors, the vocabulary in ordinal order``
        testCase "CSV errors name the file, column and row" ``CSV errors name the file, column and row``
        testCase "missing values dropped or filled, unseen levels mapped when told" ``missing values dropped or filled, unseen levels mapped when told``
        testCase "matrices of columns: rows across several 64-row tiles, dropped rows left out, float64 and float32" ``matrices of columns: rows across several 64-row tiles, dropped rows left out, float64 and float32``
        testCase "Parquet: row groups read in order; a truncated file is an error naming it" ``Parquet: row groups read in order; a truncated file is an error naming it``
        testCase "SQLite: a query on a database file made here; NULL is a missing value naming its row" ``SQLite: a query on a database file made here; NULL is a missing value naming its row``
        testCase "Arrow record batches and a DataFrame read like files" ``Arrow record batches and a DataFrame read like files``
    ]
