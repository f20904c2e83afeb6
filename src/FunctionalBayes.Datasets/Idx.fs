namespace FunctionalBayes

open System
open System.IO
open System.IO.Compression
open FunctionalBayes.Tensors

/// Readers of IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
[<RequireQualifiedAccess>]
module Idx =

    /// The shape and the unsigned-byte values of an IDX file (type 0x08). A ".gz" file is decompressed.
    let readBytes (path: string) : int[] * byte[] =
        if not (File.Exists path) then
            raise (FileNotFoundException(sprintf "Idx.read: no file at %s." path, path))
        use file = File.OpenRead path
        use s: Stream =
            if path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) then new GZipStream(file, CompressionMode.Decompress) :> Stream
            else file :> Stream
        use ms = new MemoryStream()
        s.CopyTo ms
        let a = ms.ToArray()
        if a.Length < 4 || a.[0] <> 0uy || a.[1] <> 0uy then
            raise (InvalidDataException(sprintf "Idx.read: %s is not an IDX file (bad magic number)." path))
        if a.[2] <> 0x08uy then
            raise (InvalidDataException(sprintf "Idx.read: %s holds type 0x%02x; only unsigned bytes (0x08) are supported." path a.[2]))
        let rank = int a.[3]
        if a.Length < 4 + 4 * rank then raise (InvalidDataException(sprintf "Idx.read: %s is truncated in its header." path))
        let dims = Array.init rank (fun i -> (int a.[4 + 4 * i] <<< 24) ||| (int a.[5 + 4 * i] <<< 16) ||| (int a.[6 + 4 * i] <<< 8) ||| int a.[7 + 4 * i])
        let off = 4 + 4 * rank
        let n = Shape.size dims
        if a.Length - off <> n then
            raise (InvalidDataException(sprintf "Idx.read: %s declares shape %s (%d values) but holds %d." path (Shape.format dims) n (a.Length - off)))
        dims, a.[off ..]

    /// Images as a float32 tensor (N, rows·cols) scaled to [0, 1].
    let readImages (path: string) : Tensor =
        let dims, data = readBytes path
        if dims.Length < 2 then raise (InvalidDataException(sprintf "Idx.readImages: %s has shape %s; expected (N, rows, cols)." path (Shape.format dims)))
        let n = dims.[0]
        let d = data.Length / max 1 n
        Tensor.ofRaw (RawTensor([| n; d |], F32 (data |> Array.map (fun b -> float32 b / 255.0f))))

    /// Labels as an int32 tensor (N).
    let readLabels (path: string) : Tensor =
        let dims, data = readBytes path
        if dims.Length <> 1 then raise (InvalidDataException(sprintf "Idx.readLabels: %s has shape %s; expected (N)." path (Shape.format dims)))
        Tensor.ofInts (data |> Array.map int)
