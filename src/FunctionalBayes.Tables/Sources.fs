namespace FunctionalBayes.Tables

open System
open System.Data.Common
open System.Globalization
open Apache.Arrow
open Microsoft.Data.Analysis
open Parquet
open Parquet.Schema

/// A column a reader is asked for: its name and whether the schema reads it as a number (else as text).
type internal Want = { Name: string; Numeric: bool }

/// Where chunks come from: a name for messages, the rows when the source knows them without reading
/// (a Parquet footer), its parts (row groups; 1 for a sequential source) and how to read parts in an order.
/// Each Read opens the source anew, so epochs re-read it.
[<NoEquality; NoComparison>]
type internal ChunkSource =
    { Name: string
      KnownRows: int64 option
      Parts: int
      Read: Want[] -> int[] -> seq<Chunk>
      /// Hands a chunk's arrays back for the source's next chunks, when its reader is done with them (a
      /// Parquet file's; nothing for the others).
      Recycle: Chunk -> unit }

[<RequireQualifiedAccess>]
module internal Sources =

    let chunkRows = 8192

    let private fail source column row msg : 'a = Plan.fail source column row msg

    let private missingColumn source (name: string) (have: string seq) : 'a =
        fail source name 0L (sprintf "no column '%s'; the columns are: %s." name (String.Join(", ", have)))

    /// A value as a number (NaN when missing); raises naming the source, column and row when it is not numeric.
    let boxedNumber source (col: string) (row: int64) (v: obj) : float =
        match v with
        | null -> nan
        | :? DBNull -> nan
        | :? float as d -> d
        | :? float32 as f -> float f
        | :? int as i -> float i
        | :? int64 as i -> float i
        | :? int16 as i -> float i
        | :? byte as i -> float i
        | :? sbyte as i -> float i
        | :? uint32 as i -> float i
        | :? decimal as m -> float m
        | :? bool as b -> if b then 1.0 else 0.0
        | :? string as s ->
            if String.IsNullOrWhiteSpace s then nan
            else
                match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
                | true, x -> x
                | _ -> fail source col row (sprintf "column '%s', row %d: '%s' is not a number. Fix the value, or read the column as Categorical." col row s)
        | v -> fail source col row (sprintf "column '%s', row %d: a %s value is not a number; read the column as Categorical or convert it in the query." col row (v.GetType().Name))

    /// A value as text (null when missing).
    let boxedText (v: obj) : string =
        match v with
        | null -> null
        | :? DBNull -> null
        | :? string as s -> s
        | :? float as d -> if Double.IsNaN d then null else d.ToString("R", CultureInfo.InvariantCulture)
        | :? IFormattable as f -> f.ToString(null, CultureInfo.InvariantCulture)
        | v -> string v

    let private newRaw (w: Want) n = if w.Numeric then Num (Array.create n nan) else Txt (Array.zeroCreate n)

    let private sub (raw: Raw) n =
        match raw with
        | Num a -> Num (if a.Length = n then a else Array.sub a 0 n)
        | Txt a -> Txt (if a.Length = n then a else Array.sub a 0 n)

    /// The rows of an open reader in chunks (read once: a DbDataReader is forward-only). Empty CSV fields are
    /// missing; a CSV line with fewer fields than the header is an error (a truncated line or file).
    let ofReader (name: string) (reader: DbDataReader) (wants: Want[]) : seq<Chunk> =
        seq {
            let names = Array.init reader.FieldCount reader.GetName
            let ords =
                wants |> Array.map (fun w ->
                    match names |> Array.tryFindIndex (fun n -> n = w.Name) with
                    | Some i -> i
                    | None ->
                        match names |> Array.tryFindIndex (fun n -> String.Equals(n, w.Name, StringComparison.OrdinalIgnoreCase)) with
                        | Some i -> i
                        | None -> missingColumn name w.Name names)
            let csv = match reader with :? Sylvan.Data.Csv.CsvDataReader as c -> c | _ -> null
            let mutable start = 0L
            let mutable cols = wants |> Array.map (fun w -> newRaw w chunkRows)
            let mutable n = 0
            let read () =
                try reader.Read()
                with :? TableReadException -> reraise ()
                     | ex -> raise (TableReadException(sprintf "%s: reading row %d failed (a malformed or truncated file?): %s" name (start + int64 n + 1L) ex.Message, name, "", start + int64 n + 1L, ex))
            while read () do
                let row = start + int64 n + 1L
                if not (isNull csv) && csv.RowFieldCount < names.Length then
                    let col = names.[max 0 csv.RowFieldCount]
                    fail name col row (sprintf "row %d has %d fields but the header has %d (no '%s'): a truncated line or file." row csv.RowFieldCount names.Length col)
                for j in 0 .. wants.Length - 1 do
                    let o = ords.[j]
                    match cols.[j] with
                    | Num a ->
                        a.[n] <-
                            if not (isNull csv) then
                                let s = csv.GetString o
                                if s.Length = 0 then nan else boxedNumber name wants.[j].Name row s
                            else boxedNumber name wants.[j].Name row (reader.GetValue o)
                    | Txt a ->
                        a.[n] <-
                            if not (isNull csv) then (let s = csv.GetString o in if s.Length = 0 then null else s)
                            else boxedText (reader.GetValue o)
                n <- n + 1
                if n = chunkRows then
                    yield { Start = start; Rows = n; Columns = cols }
                    start <- start + int64 n
                    n <- 0
                    cols <- wants |> Array.map (fun w -> newRaw w chunkRows)
            if n > 0 then yield { Start = start; Rows = n; Columns = cols |> Array.map (fun c -> sub c n) }
        }

    /// A CSV file (header row; delimiter detected) through Sylvan's reader; each Read opens it anew.
    let csv (path: string) : ChunkSource =
        if not (IO.File.Exists path) then raise (IO.FileNotFoundException(sprintf "Table: no CSV file at %s." path, path))
        { Name = path; KnownRows = None; Parts = 1; Recycle = ignore
          Read = fun wants _ ->
            seq {
                use r = Sylvan.Data.Csv.CsvDataReader.Create(path, Sylvan.Data.Csv.CsvDataReaderOptions(HasHeaders = true))
                yield! ofReader path r wants
            } }

    /// A database query: `openReader` runs it (opening whatever it needs) each time the source is read.
    let query (name: string) (openReader: unit -> DbDataReader) : ChunkSource =
        { Name = name; KnownRows = None; Parts = 1; Recycle = ignore
          Read = fun wants _ ->
            seq {
                use r = openReader ()
                yield! ofReader name r wants
            } }

    let private parquetFail (path: string) (ex: exn) : 'a =
        match ex with
        | :? TableReadException -> raise ex
        | _ -> raise (TableReadException(sprintf "%s: cannot be read as Parquet (truncated, or not a Parquet file): %s" path ex.Message, path, "", 0L, ex))

    let private await (t: Threading.Tasks.Task<'a>) = t.GetAwaiter().GetResult()

    let private readVals<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (rg: ParquetRowGroupReader) (f: DataField) (n: int) (conv: 'T -> float) : float[] =
        if f.IsNullable then
            let a = Array.zeroCreate<Nullable<'T>> n
            (rg.ReadAsync<'T>(f, Memory<Nullable<'T>>(a))).AsTask().GetAwaiter().GetResult()
            a |> Array.map (fun v -> if v.HasValue then conv v.Value else nan)
        else
            let a = Array.zeroCreate<'T> n
            (rg.ReadAsync<'T>(f, Memory<'T>(a))).AsTask().GetAwaiter().GetResult()
            match box a with
            | :? (float[]) as d -> d
            | _ -> a |> Array.map conv

    /// One column of a row group as numbers or text.
    let private readParquetNet (path: string) (rg: ParquetRowGroupReader) (f: DataField) (n: int) : Raw =
        let t = f.ClrType
        let num (read: unit -> float[]) = Num (read ())
        if t = typeof<float> then num (fun () -> readVals<float> rg f n id)
        elif t = typeof<float32> then num (fun () -> readVals<float32> rg f n float)
        elif t = typeof<int> then num (fun () -> readVals<int> rg f n float)
        elif t = typeof<int64> then num (fun () -> readVals<int64> rg f n float)
        elif t = typeof<int16> then num (fun () -> readVals<int16> rg f n float)
        elif t = typeof<byte> then num (fun () -> readVals<byte> rg f n float)
        elif t = typeof<bool> then num (fun () -> readVals<bool> rg f n (fun b -> if b then 1.0 else 0.0))
        elif t = typeof<decimal> then num (fun () -> readVals<decimal> rg f n float)
        elif t = typeof<string> || t = typeof<Nullable<ReadOnlyMemory<char>>> || t = typeof<ReadOnlyMemory<char>> then
            let a = Array.zeroCreate<string> n
            (rg.ReadAsync(f, Memory<string>(a))).AsTask() |> fun t -> t.GetAwaiter().GetResult()
            Txt a
        else fail path f.Name 0L (sprintf "column '%s' has Parquet type %s, which is not read here; numbers, booleans and strings are." f.Name t.Name)

    /// One column of a row group as numbers or text: by the page reader when it takes the column (Parquet.Net's
    /// ReadAsync costs ~30 times the bytes' own reading and decompression), else, or when it declines on
    /// the way (an encoding it does not read), by Parquet.Net, which also reports a corrupt file.
    let private readParquetColumn (path: string) (pages: ParquetPages) (rg: ParquetRowGroupReader) (f: DataField) (w: Want) (n: int) : Raw =
        let fast =
            if isNull pages then None
            else
                match rg.RowGroup.Columns |> Seq.tryFind (fun c -> not (isNull (box c.MetaData)) && c.MetaData.PathInSchema.Count = 1 && c.MetaData.PathInSchema.[0] = f.Name) with
                | Some cc ->
                    match ParquetPages.KindOf(f, cc) with
                    | Some kind -> (try Some (pages.Read(cc, kind, f.MaxDefinitionLevel, n)) with _ -> None)
                    | None -> None
                | None -> None
        let raw = match fast with Some r -> r | None -> readParquetNet path rg f n
        match raw, w.Numeric with
        | Num v, false -> Txt (v |> Array.map (fun x -> boxedText (box x)))
        | r, _ -> r

    /// A Parquet file: its row groups are its parts; the footer gives the rows. `pages`: read the columns it
    /// takes with the page reader (false: all with Parquet.Net, which tests compare it with).
    let parquetWith (pages: bool) (path: string) : ChunkSource =
        if not (IO.File.Exists path) then raise (IO.FileNotFoundException(sprintf "Table: no Parquet file at %s." path, path))
        let rows, groups =
            try
                let r = ParquetReader.CreateAsync(path) |> await
                try
                    let groups = r.RowGroupCount
                    let rows = [ for i in 0 .. groups - 1 -> r.RowGroups.[i].RowCount ] |> List.sum
                    rows, groups
                finally r.DisposeAsync().AsTask().Wait()
            with ex -> parquetFail path ex
        let pool = Recycler()
        { Name = path; KnownRows = Some rows; Parts = groups
          Recycle = fun c -> for col in c.Columns do (match col with Num a -> pool.Give a | Txt a -> pool.Give a)
          Read = fun wants order ->
            seq {
                let reader = try ParquetReader.CreateAsync(path) |> await with ex -> parquetFail path ex
                try
                    let fields = reader.Schema.GetDataFields()
                    let fieldOf (w: Want) =
                        match fields |> Array.tryFind (fun f -> f.Name = w.Name) with
                        | Some f -> f
                        | None -> missingColumn path w.Name (fields |> Array.map (fun f -> f.Name))
                    let fs = wants |> Array.map fieldOf
                    let starts = Array.scan (fun acc i -> acc + reader.RowGroups.[i].RowCount) 0L [| 0 .. groups - 1 |]
                    use handle = if pages then IO.File.OpenHandle(path, IO.FileMode.Open, IO.FileAccess.Read, IO.FileShare.Read) else null
                    use pageReader = if pages then new ParquetPages(handle, pool) else null
                    for g in order do
                        let chunk =
                            try
                                use rg = reader.OpenRowGroupReader g
                                let n = int rg.RowCount
                                { Start = starts.[g]; Rows = n; Columns = Array.map2 (fun f w -> readParquetColumn path pageReader rg f w n) fs wants }
                            with ex -> parquetFail path ex
                        yield chunk
                finally reader.DisposeAsync().AsTask().Wait()
            } }

    /// A Parquet file read by the page reader where it can (parquetWith).
    let parquet (path: string) : ChunkSource = parquetWith true path

    /// Arrow record batches (already in memory): each is a part.
    let arrow (name: string) (batches: RecordBatch[]) : ChunkSource =
        let starts = Array.scan (fun acc (b: RecordBatch) -> acc + int64 b.Length) 0L batches
        let column (b: RecordBatch) (start: int64) (w: Want) : Raw =
            let i = b.Schema.GetFieldIndex w.Name
            if i < 0 then missingColumn name w.Name (b.Schema.FieldsList |> Seq.map (fun f -> f.Name))
            let n = b.Length
            let nums (get: int -> float) (a: IArrowArray) = Num (Array.init n (fun r -> if a.IsNull r then nan else get r))
            let raw =
                match b.Column i with
                | :? DoubleArray as a -> nums (fun r -> a.GetValue(r).Value) a
                | :? FloatArray as a -> nums (fun r -> float (a.GetValue(r).Value)) a
                | :? Int32Array as a -> nums (fun r -> float (a.GetValue(r).Value)) a
                | :? Int64Array as a -> nums (fun r -> float (a.GetValue(r).Value)) a
                | :? Int16Array as a -> nums (fun r -> float (a.GetValue(r).Value)) a
                | :? UInt8Array as a -> nums (fun r -> float (a.GetValue(r).Value)) a
                | :? BooleanArray as a -> nums (fun r -> if a.GetValue(r).Value then 1.0 else 0.0) a
                | :? StringArray as a -> Txt (Array.init n (fun r -> if a.IsNull r then null else a.GetString r))
                | a -> fail name w.Name (start + 1L) (sprintf "column '%s' is an Arrow %s, which is not read here; numbers, booleans and strings are." w.Name (a.Data.DataType.Name))
            match raw, w.Numeric with
            | Num v, false -> Txt (v |> Array.map (fun x -> boxedText (box x)))
            | r, _ -> r
        { Name = name; KnownRows = Some starts.[batches.Length]; Parts = batches.Length; Recycle = ignore
          Read = fun wants order -> seq { for g in order -> { Start = starts.[g]; Rows = batches.[g].Length; Columns = wants |> Array.map (column batches.[g] starts.[g]) } } }

    /// A DataFrame (in memory), in chunks of rows.
    let dataFrame (name: string) (df: DataFrame) : ChunkSource =
        let rows = df.Rows.Count
        let parts = int ((rows + int64 chunkRows - 1L) / int64 chunkRows)
        let column (start: int64) (n: int) (w: Want) : Raw =
            let i = df.Columns.IndexOf w.Name
            if i < 0 then missingColumn name w.Name (df.Columns |> Seq.map (fun c -> c.Name))
            let c = df.Columns.[i]
            if w.Numeric then Num (Array.init n (fun r -> boxedNumber name w.Name (start + int64 r + 1L) c.[start + int64 r]))
            else Txt (Array.init n (fun r -> boxedText c.[start + int64 r]))
        { Name = name; KnownRows = Some rows; Parts = max parts 1; Recycle = ignore
          Read = fun wants order ->
            seq {
                for g in order do
                    let start = int64 g * int64 chunkRows
                    let n = int (min (int64 chunkRows) (rows - start))
                    if n > 0 then yield { Start = start; Rows = n; Columns = wants |> Array.map (column start n) }
            } }
