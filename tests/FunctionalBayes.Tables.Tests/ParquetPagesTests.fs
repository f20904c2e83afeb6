module FunctionalBayes.Tables.Tests.ParquetPagesTests

// null is data here (Parquet nulls), as in the library (its Nullable is off)
#nowarn "3261"

open System
open System.Collections.Generic
open System.IO
open Expecto
open Parquet
open Parquet.Schema
open FunctionalBayes.Tables
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tables.Tests.TableTests

let private groups = [| 1000; 1; 2500 |]

/// Level k of the text column g: null, empty or a non-ASCII word; five values, so the writer makes a dictionary.
let private level (k: int) = match k % 5 with 0 -> null | 1 -> "" | j -> sprintf "niveau-%d-é" j

/// Every column kind the page reader takes, in row groups of 1,000, 1 and 2,500 rows: doubles (NaN and ∞
/// among them), nullable doubles (every 7th null), float32, int32, int64, int16 and byte, a dictionary-encoded
/// text column with nulls and empty strings, and a text column of distinct values.
let private writeKinds (name: string) (codec: CompressionMethod) =
    let p = tempFile name
    let fx = DataField<float>("x")
    let fxn = DataField<Nullable<float>>("xn")
    let ff = DataField<float32>("f")
    let fi = DataField<int>("i")
    let fl = DataField<int64>("l")
    let fs = DataField<int16>("s")
    let fb = DataField<byte>("b")
    let fg = DataField<string>("g")
    let fw = DataField<string>("w")
    let fields : Field[] = [| fx; fxn; ff; fi; fl; fs; fb; fg; fw |]
    task {
        use st = File.Create p
        let options = ParquetOptions(CompressionMethod = codec)
        options.ColumnEncodingHints.["g"] <- EncodingHint.Dictionary
        use! w = ParquetWriter.CreateAsync(ParquetSchema(fields), st, options)
        let mutable start = 0
        for n in groups do
            use rg = w.CreateRowGroup()
            let at f = Array.init n (fun r -> f (start + r))
            do! rg.WriteAsync(fx, ReadOnlyMemory<float>(at (fun k -> if k = 3 then nan elif k = 4 then -infinity else sin (float k) * 1e3)))
            do! rg.WriteAsync(fxn, ReadOnlyMemory<Nullable<float>>(at (fun k -> if k % 7 = 0 then Nullable() else Nullable(float k / 3.0))))
            do! rg.WriteAsync(ff, ReadOnlyMemory<float32>(at (fun k -> float32 k * 0.25f)))
            do! rg.WriteAsync(fi, ReadOnlyMemory<int>(at (fun k -> k * 7919 - 1_000_000)))
            do! rg.WriteAsync(fl, ReadOnlyMemory<int64>(at (fun k -> int64 k * 3_000_000_000L)))
            do! rg.WriteAsync(fs, ReadOnlyMemory<int16>(at (fun k -> int16 (k % 30000 - 15000))))
            do! rg.WriteAsync(fb, ReadOnlyMemory<byte>(at (fun k -> byte (k % 256))))
            do! rg.WriteAsync(fg, at level :> IReadOnlyCollection<string>)
            do! rg.WriteAsync(fw, at (sprintf "w%d") :> IReadOnlyCollection<string>)
            start <- start + n
    } |> fun t -> t.GetAwaiter().GetResult()
    p

let private names = [| "x"; "xn"; "f"; "i"; "l"; "s"; "b"; "g"; "w" |]

/// The same values, bit for bit (NaN payloads included), or the same strings (null and "" told apart).
let private sameRaw (what: string) (expected: Raw) (actual: Raw) =
    match expected, actual with
    | Num e, Num a -> Assert.Equal<int64[]>(e |> Array.map BitConverter.DoubleToInt64Bits, a |> Array.map BitConverter.DoubleToInt64Bits)
    | Txt e, Txt a -> Assert.Equal<string[]>(e, a)
    | _ -> failwithf "%s: numbers on one side, text on the other" what

let ``the page reader reads every column kind as Parquet.Net does, or leaves a codec it does not read to it`` () =
    let wants = names |> Array.map (fun n -> { Name = n; Numeric = n <> "g" && n <> "w" })
    for codec, taken in [ CompressionMethod.None, true; CompressionMethod.Snappy, true; CompressionMethod.Gzip, true; CompressionMethod.Zstd, true; CompressionMethod.Lz4Raw, false; CompressionMethod.Brotli, false ] do
        let p = writeKinds (sprintf "kinds-%A.parquet" codec) codec
        let all = [| 0 .. groups.Length - 1 |]
        let net = (Sources.parquetWith false p).Read wants all |> Seq.toArray
        let fast = (Sources.parquetWith true p).Read wants all |> Seq.toArray
        Assert.Equal(groups.Length, net.Length)
        // the page reader itself, without the fallback to Parquet.Net that Sources has
        let reader = ParquetReader.CreateAsync(p).GetAwaiter().GetResult()
        try
            use handle = File.OpenHandle(p, FileMode.Open, FileAccess.Read, FileShare.Read)
            use pages = new ParquetPages(handle, Recycler())
            let fields = reader.Schema.GetDataFields()
            Assert.Equal<string[]>(names, fields |> Array.map (fun f -> f.Name))
            for g in all do
                let rgm = reader.Metadata.RowGroups.[g]
                Assert.Equal(int64 groups.[g], rgm.NumRows)
                if g = 0 then Assert.True(rgm.Columns.[7].MetaData.Encodings |> Seq.exists (fun e -> e = Meta.Encoding.RLE_DICTIONARY || e = Meta.Encoding.PLAIN_DICTIONARY), "g is dictionary-encoded")
                for j in 0 .. fields.Length - 1 do
                    let what = sprintf "%A, row group %d, column %s" codec g names.[j]
                    match ParquetPages.KindOf(fields.[j], rgm.Columns.[j]) with
                    | Some kind ->
                        Assert.True(taken, what + ": taken")
                        let raw = pages.Read(rgm.Columns.[j], kind, fields.[j].MaxDefinitionLevel, groups.[g])
                        sameRaw what net.[g].Columns.[j] raw
                    | None -> Assert.False(taken, what + ": left to Parquet.Net")
                    sameRaw what net.[g].Columns.[j] fast.[g].Columns.[j]
        finally reader.DisposeAsync().AsTask().Wait()
        // values known from the writer (not from either reader)
        match fast.[0].Columns.[0], fast.[0].Columns.[1], fast.[2].Columns.[7], fast.[2].Columns.[5] with
        | Num x, Num xn, Txt g, Num s ->
            Assert.True(Double.IsNaN x.[3])
            Assert.Equal(-infinity, x.[4])
            Assert.Equal(sin 5.0 * 1e3, x.[5])
            Assert.True(Double.IsNaN xn.[0] && Double.IsNaN xn.[7])
            Assert.Equal(8.0 / 3.0, xn.[8])
            Assert.Equal<string[]>([| level 1001; level 1002; level 1003; level 1004; level 1005 |], g.[0 .. 4])
            Assert.True(isNull g.[4] && g.[0] = "" && g.[1] = "niveau-2-é")
            Assert.Equal(float (2000 % 30000 - 15000), s.[999])
        | _ -> failwith "x, xn and s as numbers, g as text"

[<Tests>]
let tests =
    testList "ParquetPagesTests" [
        testCase "the page reader reads every column kind as Parquet.Net does, or leaves a codec it does not read to it" ``the page reader reads every column kind as Parquet.Net does, or leaves a codec it does not read to it``
    ]
