namespace FunctionalBayes.Tables

open System
open System.Collections.Generic
open System.Globalization
open System.Runtime.InteropServices
open FunctionalBayes.Tensors

/// A column of a chunk as a source gives it: numbers (NaN where missing) or text (null where missing).
[<NoEquality; NoComparison>]
type internal Raw =
    | Num of float[]
    | Txt of string[]

/// Consecutive rows of a source: one Raw per requested column; Start is the 0-based row of the first.
[<NoEquality; NoComparison>]
type internal Chunk = { Start: int64; Rows: int; Columns: Raw[] }

[<RequireQualifiedAccess>]
type internal OutType = F64 | F32 | I32

/// One output tensor: its name, its columns (indices into the schema's columns) and element type.
type internal Out = { Name: string; Cols: int[]; Type: OutType }

/// Decoded rows in tensor layout: one row-major array (float[], float32[] or int[]) per output, and the
/// chunk rows kept (for id columns).
[<NoEquality; NoComparison>]
type internal Block = { Rows: int; Values: Array[]; Kept: int[] }

/// Arrays of exact lengths handed back for reuse, between threads: a streamed table's per-row-group arrays
/// (hundreds of kB to tens of MB each) would otherwise be allocated anew for every row group, and the
/// collector would copy the ones in flight from generation to generation. Holds at most 64 arrays.
[<Sealed; AllowNullLiteral>]
type internal Recycler() =
    let held = Collections.Generic.List<Array>()
    /// An array of length n: a held one, or a new one (not zeroed when its elements hold no references:
    /// callers write every element).
    member _.Take<'T>(n: int) : 'T[] =
        let found =
            lock held (fun () ->
                let i = held.FindIndex(fun a -> a.Length = n && (a :? 'T[]))
                if i < 0 then null
                else
                    let a = held.[i]
                    held.RemoveAt i
                    a :?> 'T[])
        if isNull found then GC.AllocateUninitializedArray<'T> n else found
    /// Hands an array back: its holder must not touch it again.
    member _.Give(a: Array) = if not (isNull a) then lock held (fun () -> if held.Count < 64 then held.Add a)

[<RequireQualifiedAccess>]
module internal Plan =

    let fail source column (row: int64) (msg: string) : 'a = raise (TableReadException(sprintf "%s: %s" source msg, source, column, row))

    /// The outputs of a schema; raises on a bad schema (unknown or repeated columns, mixed matrices).
    let outs (s: TableSchema) : Out[] =
        let cols = s.Columns |> List.toArray
        if cols.Length = 0 then invalidArg "schema" "TableSchema: no columns; list the columns to read."
        let index = Dictionary<string, int>(StringComparer.Ordinal)
        cols |> Array.iteri (fun i c ->
            if String.IsNullOrEmpty c.Name then invalidArg "schema" "TableSchema: a column has an empty name."
            if not (index.TryAdd(c.Name, i)) then invalidArg "schema" (sprintf "TableSchema: the column '%s' is listed twice." c.Name))
        let typeOf (c: Column) =
            match c.Kind with
            | ColumnKind.Float64 -> OutType.F64
            | ColumnKind.Float32 -> OutType.F32
            | ColumnKind.Int32 | ColumnKind.Categorical _ -> OutType.I32
        let inMatrix = HashSet<string>(StringComparer.Ordinal)
        let matrices =
            s.Matrices |> List.toArray |> Array.map (fun (name, names) ->
                if List.isEmpty names then invalidArg "schema" (sprintf "TableSchema: the matrix '%s' has no columns." name)
                let idx =
                    names |> List.toArray |> Array.map (fun n ->
                        match index.TryGetValue n with
                        | true, i ->
                            if not (inMatrix.Add n) then invalidArg "schema" (sprintf "TableSchema: the column '%s' is in two matrices." n)
                            i
                        | _ -> invalidArg "schema" (sprintf "TableSchema: the matrix '%s' names '%s', which is not among the columns (%s)." name n (String.Join(", ", cols |> Array.map (fun c -> c.Name)))))
                let types = idx |> Array.map (fun i -> typeOf cols.[i]) |> Array.distinct
                match types with
                | [| OutType.F64 |] | [| OutType.F32 |] -> { Name = name; Cols = idx; Type = types.[0] }
                | _ -> invalidArg "schema" (sprintf "TableSchema: the matrix '%s' mixes column kinds; its columns must be all Float64 or all Float32." name))
        let vectors =
            cols |> Array.mapi (fun i c -> i, c) |> Array.filter (fun (_, c) -> not (inMatrix.Contains c.Name))
            |> Array.map (fun (i, c) -> { Name = c.Name; Cols = [| i |]; Type = typeOf c })
        let all = Array.append vectors matrices
        match all |> Array.countBy (fun o -> o.Name) |> Array.tryFind (fun (_, k) -> k > 1) with
        | Some (n, _) -> invalidArg "schema" (sprintf "TableSchema: the tensor name '%s' is both a column and a matrix." n)
        | None -> all

    let newArray (t: OutType) (n: int) : Array =
        match t with
        | OutType.F64 -> Array.zeroCreate<float> n :> Array
        | OutType.F32 -> Array.zeroCreate<float32> n :> Array
        | OutType.I32 -> Array.zeroCreate<int> n :> Array

    /// An array whose every element the caller writes: from `pool` when there is one.
    let takeArray (pool: Recycler) (t: OutType) (n: int) : Array =
        if isNull pool then newArray t n
        else
            match t with
            | OutType.F64 -> pool.Take<float> n :> Array
            | OutType.F32 -> pool.Take<float32> n :> Array
            | OutType.I32 -> pool.Take<int> n :> Array

    /// The first index below n where x is NaN or infinite, or -1: vectors of x·0, which is 0 only for finite x.
    let firstNonFinite (x: float[]) (n: int) : int =
        let span = ReadOnlySpan<float>(x, 0, n)
        let vs = MemoryMarshal.Cast<float, Numerics.Vector<float>>(span)
        let mutable r = 0
        let mutable v = 0
        while v < vs.Length && Numerics.Vector.EqualsAll(vs.[v] * Numerics.Vector<float>.Zero, Numerics.Vector<float>.Zero) do v <- v + 1
        r <- v * Numerics.Vector<float>.Count
        while r < n && Double.IsFinite x.[r] do r <- r + 1
        if r = n then -1 else r

    /// Columns into a row-major array (a.[k·w + j] = cols.[j].[row k], row k being kept.[k], or k when kept is
    /// null), in tiles of rows whose part of `a` stays in the L1 cache while each column fills its slots.
    let inline interleave (cols: float[][]) (kept: int[]) (m: int) (a: 'T[]) (conv: float -> 'T) =
        let w = cols.Length
        let tile = 64
        let mutable r0 = 0
        while r0 < m do
            let r1 = min m (r0 + tile)
            for j in 0 .. w - 1 do
                let x = cols.[j]
                if isNull kept then for k in r0 .. r1 - 1 do a.[k * w + j] <- conv x.[k]
                else for k in r0 .. r1 - 1 do a.[k * w + j] <- conv x.[kept.[k]]
            r0 <- r1

    /// A tensor of `rows` rows from a row-major array (its first rows·width elements).
    let tensor (o: Out) (rows: int) (values: Array) : Tensor =
        let w = o.Cols.Length
        let shape = if w = 1 then [| rows |] else [| rows; w |]
        let n = rows * w
        match values with
        | :? (float[]) as a -> Tensor.create shape (if a.Length = n then a else Array.sub a 0 n)
        | :? (float32[]) as a -> Tensor.createF32 shape (if a.Length = n then a else Array.sub a 0 n)
        | :? (int[]) as a -> Tensor.createI32 shape (if a.Length = n then a else Array.sub a 0 n)
        | _ -> invalidOp "Plan.tensor: unexpected array type."

/// Turns chunks into blocks for a schema: parses text, applies the missing and unseen-level policies,
/// maps levels to ids. Vocabularies not given grow as levels are met (ids in order of first meeting;
/// Sorted gives the ordinal order and Remap the ids to it).
type internal Decoder(schema: TableSchema, source: string) =
    let cols = schema.Columns |> List.toArray
    let outs = Plan.outs schema
    let growing = cols |> Array.map (fun c -> match c.Kind with ColumnKind.Categorical None -> Dictionary<string, int>(StringComparer.Ordinal) | _ -> null)
    let fixedVocab = cols |> Array.map (fun c -> match c.Kind with ColumnKind.Categorical (Some v) -> v | _ -> null)
    let unseenId =
        cols |> Array.map (fun c ->
            match c.Kind, schema.Unseen with
            | ColumnKind.Categorical (Some v), UnseenLevelPolicy.AsLevel l ->
                let mutable id = 0
                if not (v.TryId(l, &id)) then invalidArg "schema" (sprintf "TableSchema: unseen levels of '%s' map to '%s', which is not in its vocabulary (%O)." c.Name l v)
                id
            | _ -> -1)
    let fail col row msg : 'a = Plan.fail source col row msg

    member _.Outs = outs
    member _.Columns = cols
    /// Where the arrays of blocks come from (null: new arrays); blocks handed back with Recycle.
    member val Pool : Recycler = null with get, set
    /// Hands a block's arrays back to Pool: the block must not be read again.
    member d.Recycle(block: Block) =
        if not (isNull d.Pool) then
            for a in block.Values do d.Pool.Give a
            d.Pool.Give block.Kept

    /// The vocabularies: given ones as they are, grown ones in ordinal order of their levels.
    member _.Vocabularies : Map<string, Vocabulary> =
        cols |> Array.mapi (fun i c ->
            if not (isNull fixedVocab.[i]) then Some (c.Name, fixedVocab.[i])
            elif not (isNull growing.[i]) then Some (c.Name, Vocabulary(growing.[i].Keys |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))))
            else None)
        |> Array.choose id |> Map.ofArray

    /// Maps ids of first meeting to the ordinal-order ids of Vocabularies, in place, for one output.
    member d.Remap(o: Out, values: int[], rows: int) =
        let i = o.Cols.[0]
        if not (isNull growing.[i]) then
            let v = d.Vocabularies.[cols.[i].Name]
            let map = Array.zeroCreate growing.[i].Count
            for KeyValue (l, id) in growing.[i] do
                let mutable s = 0
                v.TryId(l, &s) |> ignore
                map.[id] <- s
            for r in 0 .. rows - 1 do values.[r] <- map.[values.[r]]

    /// Decodes a chunk whose first columns are the schema's (extra columns after them are ignored).
    member d.Decode(chunk: Chunk) : Block =
        let n = chunk.Rows
        let rowOf (r: int) = chunk.Start + int64 r + 1L
        // numbers for numeric columns, text for categorical ones
        let nums = Array.zeroCreate<float[]> cols.Length
        let txts = Array.zeroCreate<string[]> cols.Length
        for i in 0 .. cols.Length - 1 do
            let c = cols.[i]
            match c.Kind, chunk.Columns.[i] with
            | ColumnKind.Categorical _, Txt t -> txts.[i] <- t
            | ColumnKind.Categorical _, Num v -> txts.[i] <- v |> Array.map (fun x -> if Double.IsNaN x then null else x.ToString("R", CultureInfo.InvariantCulture))
            | _, Num v -> nums.[i] <- v
            | _, Txt t ->
                nums.[i] <- t |> Array.mapi (fun r s ->
                    if String.IsNullOrWhiteSpace s then nan
                    else
                        match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
                        | true, x -> x
                        | _ -> fail c.Name (rowOf r) (sprintf "column '%s', row %d: '%s' is not a number, but the schema reads the column as %A. Fix the value, or read the column as Categorical." c.Name (rowOf r) s c.Kind))
        // missing values and their policy, column by column in row order; a tight scan finds a column's first
        // missing or infinite value, and only from there are the rows checked one by one
        let keep = Array.create n true
        let pool = d.Pool
        let mutable dropped = 0
        for i in 0 .. cols.Length - 1 do
            let c = cols.[i]
            let x = nums.[i]
            let first = if isNull x then Array.IndexOf(txts.[i], null) else Plan.firstNonFinite x n
            if first >= 0 then
                for r in first .. n - 1 do
                    if keep.[r] && (if isNull x then isNull txts.[i].[r] else Double.IsNaN x.[r]) then
                        match schema.Missing, x with
                        | MissingPolicy.DropRow, _ -> (keep.[r] <- false; dropped <- dropped + 1)
                        | MissingPolicy.Fill v, null ->
                            ignore v
                            fail c.Name (rowOf r) (sprintf "column '%s', row %d: a missing value in a categorical column; MissingPolicy.Fill fills numeric columns only. Use MissingPolicy.DropRow, or fill the level in the source." c.Name (rowOf r))
                        | MissingPolicy.Fill v, x -> x.[r] <- v
                        | MissingPolicy.Fail, _ ->
                            fail c.Name (rowOf r) (sprintf "column '%s', row %d: a missing value (null, empty or NaN). Fix the source, or set the schema's Missing to MissingPolicy.DropRow or MissingPolicy.Fill." c.Name (rowOf r))
                    if keep.[r] && not (isNull x) && Double.IsInfinity x.[r] then
                        fail c.Name (rowOf r) (sprintf "column '%s', row %d: %g is not finite." c.Name (rowOf r) x.[r])
        let kept =
            if dropped = 0 then
                let k = if isNull pool then Array.zeroCreate n else pool.Take<int> n
                for r in 0 .. n - 1 do k.[r] <- r
                k
            else [| for r in 0 .. n - 1 do if keep.[r] then r |]
        let m = kept.Length
        let values =
            outs |> Array.map (fun o ->
                let w = o.Cols.Length
                let a = Plan.takeArray pool o.Type (m * w)
                match a with
                | :? (float[]) as a when w = 1 && dropped = 0 -> Array.blit nums.[o.Cols.[0]] 0 a 0 m
                | :? (float[]) as a -> Plan.interleave (o.Cols |> Array.map (fun i -> nums.[i])) (if dropped = 0 then null else kept) m a id
                | :? (float32[]) as a -> Plan.interleave (o.Cols |> Array.map (fun i -> nums.[i])) (if dropped = 0 then null else kept) m a float32
                | _ -> ()
                for j in 0 .. w - 1 do
                    let i = o.Cols.[j]
                    let c = cols.[i]
                    match a with
                    | :? (float[]) | :? (float32[]) -> ()
                    | :? (int[]) as a when isNull txts.[i] ->
                        let x = nums.[i]
                        for k in 0 .. m - 1 do
                            let v = x.[kept.[k]]
                            if v <> Math.Round v || v < -2147483648.0 || v > 2147483647.0 then
                                fail c.Name (rowOf kept.[k]) (sprintf "column '%s', row %d: %s is not an int32, but the schema reads the column as Int32. Read it as Float64." c.Name (rowOf kept.[k]) (v.ToString("R", CultureInfo.InvariantCulture)))
                            a.[k] <- int v
                    | :? (int[]) as a ->
                        let t = txts.[i]
                        if isNull fixedVocab.[i] then
                            let g = growing.[i]
                            for k in 0 .. m - 1 do
                                let l = t.[kept.[k]]
                                match g.TryGetValue l with
                                | true, id -> a.[k] <- id
                                | _ -> let id = g.Count in g.[l] <- id; a.[k] <- id
                        else
                            let v = fixedVocab.[i]
                            for k in 0 .. m - 1 do
                                let l = t.[kept.[k]]
                                let mutable id = 0
                                if v.TryId(l, &id) then a.[k] <- id
                                elif unseenId.[i] >= 0 then a.[k] <- unseenId.[i]
                                else
                                    fail c.Name (rowOf kept.[k]) (sprintf "column '%s', row %d: the level '%s' is not in the vocabulary the model was fitted with (%d levels: %O). Map it to a known level (UnseenLevelPolicy.AsLevel) or drop the row." c.Name (rowOf kept.[k]) l v.Count v)
                    | _ -> invalidOp "Decoder: unexpected array type."
                a)
        { Rows = m; Values = values; Kept = kept }
