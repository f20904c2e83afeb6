namespace FunctionalBayes.Tables

open System
open System.Buffers.Binary
open System.IO
open System.Runtime.InteropServices
open Microsoft.Win32.SafeHandles
open Parquet.Meta
open Parquet.Schema

/// How the page reader decodes a column: its Parquet physical type and the values a Raw holds.
[<RequireQualifiedAccess>]
type internal PageKind =
    | Double
    | Float
    | Int32
    | Int64
    | Text

/// The fields of a Parquet page header that reading a flat column needs.
[<Struct; NoEquality; NoComparison>]
type internal PageHeaderInfo =
    { PageType: int
      Uncompressed: int
      Compressed: int
      Values: int
      Encoding: int
      DefEncoding: int
      Nulls: int
      DefBytes: int
      RepBytes: int
      IsCompressed: bool }

/// Reads the Thrift compact protocol (the encoding of Parquet page headers) from a byte range; reading past
/// its end raises.
[<Sealed>]
type internal CompactReader(buf: byte[], start: int, limit: int) =
    let mutable pos = start
    let past () : 'a = raise (InvalidDataException "a page header runs past its column chunk")
    member _.Pos = pos
    member _.Byte() : int =
        if pos >= limit then past ()
        let b = buf.[pos]
        pos <- pos + 1
        int b
    member r.Var() : uint64 =
        let mutable v = 0UL
        let mutable shift = 0
        let mutable go = true
        while go do
            if shift > 63 then raise (InvalidDataException "a varint in a page header is too long")
            let b = r.Byte()
            v <- v ||| (uint64 (b &&& 0x7F) <<< shift)
            shift <- shift + 7
            go <- b &&& 0x80 <> 0
        v
    /// A zigzag-encoded integer (i16, i32 and i64 fields).
    member r.Int() : int64 = let v = r.Var() in int64 (v >>> 1) ^^^ -(int64 (v &&& 1UL))
    member private _.Advance(n: int64) =
        if n < 0L || int64 pos + n > int64 limit then past ()
        pos <- pos + int n
    /// Skips a value of compact type t; `inList` marks elements of a list, set or map, where a bool is a byte.
    member r.Skip(t: int, inList: bool) =
        match t with
        | 1 | 2 -> if inList then r.Byte() |> ignore
        | 3 -> r.Byte() |> ignore
        | 4 | 5 | 6 -> r.Var() |> ignore
        | 7 -> r.Advance 8L
        | 8 -> r.Advance(int64 (r.Var()))
        | 9 | 10 ->
            let h = r.Byte()
            let size = if h >>> 4 = 15 then int64 (r.Var()) else int64 (h >>> 4)
            for _ in 1L .. size do r.Skip(h &&& 0x0F, true)
        | 11 ->
            let size = int64 (r.Var())
            if size > 0L then
                let kv = r.Byte()
                for _ in 1L .. size do
                    r.Skip(kv >>> 4, true)
                    r.Skip(kv &&& 0x0F, true)
        | 12 -> r.Struct(fun _ t -> r.Skip(t, false))
        | _ -> raise (InvalidDataException(sprintf "unknown Thrift type %d in a page header" t))
    /// Reads a struct's fields until its stop byte: `field id type` must read or skip each value.
    member r.Struct(field: int -> int -> unit) =
        let mutable last = 0
        let mutable go = true
        while go do
            let h = r.Byte()
            if h = 0 then go <- false
            else
                let t = h &&& 0x0F
                let id = if h >>> 4 = 0 then int (r.Int()) else last + (h >>> 4)
                last <- id
                field id t

/// Reads flat (non-repeated) Parquet columns of plain or dictionary-encoded numbers and UTF-8 text straight
/// from the file's bytes into reused buffers: one read per column chunk, pages decompressed into one buffer,
/// values copied once into the Raw arrays. Anything else (nested or encrypted columns, other encodings,
/// codecs or logical types) is declined (None before reading, an exception while reading), and the caller
/// reads that column with Parquet.Net instead. One instance per reading thread; the columns' arrays come from
/// `pool`.
[<Sealed; AllowNullLiteral>]
type internal ParquetPages(handle: SafeFileHandle, pool: Recycler) =
    let mutable chunk : byte[] = Array.zeroCreate 0
    let mutable page : byte[] = Array.zeroCreate 0
    let mutable levels : int[] = Array.zeroCreate 0
    let mutable indices : int[] = Array.zeroCreate 0
    let zstd = lazy (new ZstdSharp.Decompressor())
    // the file's length, asked of the system once (not per column chunk)
    let fileLength = lazy (RandomAccess.GetLength handle)
    let decline (why: string) : 'a = raise (NotSupportedException why)
    let grow (a: byref<'T[]>) (n: int) = if a.Length < n then a <- Array.zeroCreate (max n (a.Length + a.Length / 2))

    static let header (buf: byte[]) (start: int) (limit: int) : PageHeaderInfo * int =
        let r = CompactReader(buf, start, limit)
        let mutable h = { PageType = -1; Uncompressed = -1; Compressed = -1; Values = -1; Encoding = -1; DefEncoding = 3; Nulls = 0; DefBytes = 0; RepBytes = 0; IsCompressed = true }
        r.Struct(fun id t ->
            match id, t with
            | 1, 5 -> h <- { h with PageType = int (r.Int()) }
            | 2, 5 -> h <- { h with Uncompressed = int (r.Int()) }
            | 3, 5 -> h <- { h with Compressed = int (r.Int()) }
            | 5, 12 ->
                r.Struct(fun id t ->
                    match id, t with
                    | 1, 5 -> h <- { h with Values = int (r.Int()) }
                    | 2, 5 -> h <- { h with Encoding = int (r.Int()) }
                    | 3, 5 -> h <- { h with DefEncoding = int (r.Int()) }
                    | _ -> r.Skip(t, false))
            | 7, 12 ->
                r.Struct(fun id t ->
                    match id, t with
                    | 1, 5 -> h <- { h with Values = int (r.Int()) }
                    | 2, 5 -> h <- { h with Encoding = int (r.Int()) }
                    | _ -> r.Skip(t, false))
            | 8, 12 ->
                r.Struct(fun id t ->
                    match id, t with
                    | 1, 5 -> h <- { h with Values = int (r.Int()) }
                    | 2, 5 -> h <- { h with Nulls = int (r.Int()) }
                    | 4, 5 -> h <- { h with Encoding = int (r.Int()) }
                    | 5, 5 -> h <- { h with DefBytes = int (r.Int()) }
                    | 6, 5 -> h <- { h with RepBytes = int (r.Int()) }
                    | 7, (1 | 2) -> h <- { h with IsCompressed = (t = 1) }
                    | _ -> r.Skip(t, false))
            | _ -> r.Skip(t, false))
        if h.PageType < 0 || h.Compressed < 0 || h.Uncompressed < 0 then raise (InvalidDataException "a page header without its type or sizes")
        h, r.Pos

    /// Decodes `count` values of the RLE/bit-packed hybrid encoding of `width` bits from buf[p..limit) into dst.
    static let hybrid (buf: byte[]) (p0: int) (limit: int) (width: int) (dst: int[]) (count: int) =
        if width < 0 || width > 32 then raise (InvalidDataException "a bit width above 32")
        let mutable p = p0
        let mutable got = 0
        let varint () =
            let mutable v = 0
            let mutable shift = 0
            let mutable go = true
            while go do
                if p >= limit || shift > 28 then raise (InvalidDataException "an RLE run header past its page")
                let b = int buf.[p]
                p <- p + 1
                v <- v ||| ((b &&& 0x7F) <<< shift)
                shift <- shift + 7
                go <- b &&& 0x80 <> 0
            v
        let bytes = (width + 7) / 8
        let mask = if width = 32 then 0xFFFFFFFFUL else (1UL <<< width) - 1UL
        while got < count do
            let h = varint ()
            if h &&& 1 = 0 then
                let run = h >>> 1
                if p + bytes > limit then raise (InvalidDataException "an RLE run past its page")
                let mutable v = 0
                for i in 0 .. bytes - 1 do v <- v ||| (int buf.[p + i] <<< (8 * i))
                p <- p + bytes
                let n = min run (count - got)
                Array.Fill(dst, v, got, n)
                got <- got + n
            else
                let values = (h >>> 1) * 8
                let stop = p + (h >>> 1) * width
                let n = min values (count - got)
                let mutable acc = 0UL
                let mutable bits = 0
                let mutable q = p
                for i in 0 .. n - 1 do
                    while bits < width do
                        if q >= limit then raise (InvalidDataException "a bit-packed run past its page")
                        acc <- acc ||| (uint64 buf.[q] <<< bits)
                        q <- q + 1
                        bits <- bits + 8
                    dst.[got + i] <- int (acc &&& mask)
                    acc <- acc >>> width
                    bits <- bits - width
                got <- got + n
                p <- stop
        p

    /// The page reader's kind for a column, or None when Parquet.Net must read it.
    static member KindOf(f: DataField, cc: ColumnChunk) : PageKind option =
        let md = cc.MetaData
        if not BitConverter.IsLittleEndian || isNull (box md) || not (isNull cc.FilePath) || not (isNull (box cc.CryptoMetadata)) || not (isNull cc.EncryptedColumnMetadata)
           || f.MaxRepetitionLevel <> 0 || f.MaxDefinitionLevel > 1 || md.PathInSchema.Count <> 1 then None
        else
            let codecOk =
                match md.Codec with
                | CompressionCodec.UNCOMPRESSED | CompressionCodec.SNAPPY | CompressionCodec.ZSTD | CompressionCodec.GZIP -> true
                | _ -> false
            let t = f.ClrType
            let kind =
                match md.Type with
                | Type.DOUBLE when t = typeof<float> -> Some PageKind.Double
                | Type.FLOAT when t = typeof<float32> -> Some PageKind.Float
                | Type.INT32 when t = typeof<int> || t = typeof<int16> || t = typeof<byte> -> Some PageKind.Int32
                | Type.INT64 when t = typeof<int64> -> Some PageKind.Int64
                | Type.BYTE_ARRAY when t = typeof<string> || t = typeof<ReadOnlyMemory<char>> || t = typeof<Nullable<ReadOnlyMemory<char>>> -> Some PageKind.Text
                | _ -> None
            if codecOk then kind else None

    /// Reads a column chunk of `rows` rows (max definition level 0 or 1) as numbers (NaN where null) or text.
    member _.Read(cc: ColumnChunk, kind: PageKind, maxDef: int, rows: int) : Raw =
        let md = cc.MetaData
        if md.NumValues <> int64 rows then decline "a column chunk whose values are not its rows"
        let start =
            if md.DictionaryPageOffset.HasValue && md.DictionaryPageOffset.Value > 0L then min md.DictionaryPageOffset.Value md.DataPageOffset
            else md.DataPageOffset
        let length = md.TotalCompressedSize
        if start < 0L || length <= 0L || length > int64 Int32.MaxValue - 64L || start + length > fileLength.Value then
            raise (InvalidDataException "a column chunk outside the file")
        let len = int length
        grow &chunk len
        let mutable got = 0
        while got < len do
            let n = RandomAccess.Read(handle, Span<byte>(chunk, got, len - got), start + int64 got)
            if n <= 0 then raise (EndOfStreamException "the file ends inside a column chunk")
            got <- got + n
        // every row is written below, so a recycled array needs no clearing
        let nums = match kind with PageKind.Text -> null | _ -> pool.Take<float> rows
        let txts = match kind with PageKind.Text -> pool.Take<string> rows | _ -> null
        let mutable dictNums : float[] = null
        let mutable dictTxts : string[] = null
        // plain values: `count` of them from buf[p..limit) into numbers or text at `at`
        let plain (buf: byte[]) (p: int) (limit: int) (nums: float[]) (txts: string[]) (at: int) (count: int) =
            let need w = if int64 count * int64 w > int64 (limit - p) then raise (InvalidDataException "plain values past their page")
            match kind with
            | PageKind.Double ->
                need 8
                MemoryMarshal.Cast<byte, float>(ReadOnlySpan<byte>(buf, p, count * 8)).CopyTo(Span<float>(nums, at, count))
            | PageKind.Float ->
                need 4
                let s = MemoryMarshal.Cast<byte, float32>(ReadOnlySpan<byte>(buf, p, count * 4))
                for i in 0 .. count - 1 do nums.[at + i] <- float s.[i]
            | PageKind.Int32 ->
                need 4
                let s = MemoryMarshal.Cast<byte, int>(ReadOnlySpan<byte>(buf, p, count * 4))
                for i in 0 .. count - 1 do nums.[at + i] <- float s.[i]
            | PageKind.Int64 ->
                need 8
                let s = MemoryMarshal.Cast<byte, int64>(ReadOnlySpan<byte>(buf, p, count * 8))
                for i in 0 .. count - 1 do nums.[at + i] <- float s.[i]
            | PageKind.Text ->
                let mutable q = p
                for i in 0 .. count - 1 do
                    if q + 4 > limit then raise (InvalidDataException "a string past its page")
                    let n = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(buf, q, 4))
                    if n < 0 || n > limit - q - 4 then raise (InvalidDataException "a string past its page")
                    txts.[at + i] <- Text.Encoding.UTF8.GetString(buf, q + 4, n)
                    q <- q + 4 + n
        // dictionary-encoded values: a bit width, then `count` indices
        let fromDictionary (buf: byte[]) (p: int) (limit: int) (at: int) (count: int) =
            if isNull dictNums && isNull dictTxts then raise (InvalidDataException "dictionary indices before a dictionary page")
            if count > 0 then
                if p >= limit then raise (InvalidDataException "dictionary indices past their page")
                grow &indices count
                hybrid buf (p + 1) limit (int buf.[p]) indices count |> ignore
                if isNull txts then
                    let d = dictNums
                    for i in 0 .. count - 1 do nums.[at + i] <- d.[indices.[i]]
                else
                    let d = dictTxts
                    for i in 0 .. count - 1 do txts.[at + i] <- d.[indices.[i]]
        // the page's bytes after its first `prefix` (levels of a v2 page, kept uncompressed), decompressed into `page`
        let body (p: int) (h: PageHeaderInfo) (prefix: int) (compressed: bool) : byte[] * int * int =
            if not compressed || md.Codec = CompressionCodec.UNCOMPRESSED then chunk, p + prefix, p + h.Compressed
            else
                let src = ReadOnlySpan<byte>(chunk, p + prefix, h.Compressed - prefix)
                let n = h.Uncompressed - prefix
                if n < 0 then raise (InvalidDataException "a page smaller than its levels")
                grow &page n
                let dst = Span<byte>(page, 0, n)
                let written =
                    match md.Codec with
                    | CompressionCodec.SNAPPY -> Snappier.Snappy.Decompress(src, dst)
                    | CompressionCodec.ZSTD -> zstd.Value.Unwrap(src, dst)
                    | CompressionCodec.GZIP ->
                        use z = new Compression.GZipStream(new MemoryStream(chunk, p + prefix, h.Compressed - prefix, false), Compression.CompressionMode.Decompress)
                        let mutable w = 0
                        let mutable go = true
                        while go && w < n do
                            let k = z.Read(page, w, n - w)
                            if k = 0 then go <- false else w <- w + k
                        w
                    | c -> decline (sprintf "codec %A" c)
                if written <> n then raise (InvalidDataException "a page decompressed to another size than its header says")
                page, 0, n
        let mutable p = 0
        let mutable at = 0
        while at < rows do
            let h, hEnd = header chunk p len
            if int64 hEnd + int64 h.Compressed > int64 len then raise (InvalidDataException "a page past its column chunk")
            match h.PageType with
            | 2 ->
                // dictionary page: plain values
                if h.Encoding <> 0 && h.Encoding <> 2 then decline "a dictionary page not plain-encoded"
                if h.Values < 0 then raise (InvalidDataException "a dictionary page without its size")
                let buf, b, e = body hEnd h 0 true
                if kind = PageKind.Text then dictTxts <- Array.zeroCreate h.Values else dictNums <- Array.zeroCreate h.Values
                plain buf b e dictNums dictTxts 0 h.Values
            | 0 | 3 ->
                let n = h.Values
                if n < 0 || n > rows - at then raise (InvalidDataException "a data page with more values than its column chunk")
                let v2 = h.PageType = 3
                if v2 && h.RepBytes <> 0 then decline "repetition levels in a flat column"
                let buf, b, e =
                    if v2 then body hEnd h (h.RepBytes + h.DefBytes) h.IsCompressed
                    else body hEnd h 0 true
                // definition levels: in the decompressed v1 page (length-prefixed) or before the v2 page's data
                let mutable vp = b
                let mutable present = n
                if maxDef > 0 then
                    if h.DefEncoding <> 3 then decline "definition levels not RLE-encoded"
                    grow &levels n
                    if v2 then
                        let lp = hEnd + h.RepBytes
                        hybrid chunk lp (lp + h.DefBytes) 1 levels n |> ignore
                    else
                        if b + 4 > e then raise (InvalidDataException "definition levels past their page")
                        let l = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(buf, b, 4))
                        if l < 0 || b + 4 + l > e then raise (InvalidDataException "definition levels past their page")
                        hybrid buf (b + 4) (b + 4 + l) 1 levels n |> ignore
                        vp <- b + 4 + l
                    present <- 0
                    for i in 0 .. n - 1 do if levels.[i] = 1 then present <- present + 1
                match h.Encoding with
                | 0 -> plain buf vp e nums txts at present
                | 2 | 8 -> fromDictionary buf vp e at present
                | enc -> decline (sprintf "encoding %d" enc)
                // spread the present values over the page's rows, from the back (in place), nulls between
                if present < n then
                    let mutable j = present - 1
                    for i in n - 1 .. -1 .. 0 do
                        if levels.[i] = 1 then
                            if isNull txts then nums.[at + i] <- nums.[at + j] else txts.[at + i] <- txts.[at + j]
                            j <- j - 1
                        elif isNull txts then nums.[at + i] <- nan
                        else txts.[at + i] <- null
                at <- at + n
            | 1 -> () // an index page: nothing to read
            | t -> decline (sprintf "page type %d" t)
            p <- hEnd + h.Compressed
        if isNull txts then Num nums else Txt txts

    interface IDisposable with
        member _.Dispose() = if zstd.IsValueCreated then zstd.Value.Dispose()
