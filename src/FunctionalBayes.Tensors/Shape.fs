namespace FunctionalBayes.Tensors

open System

/// Element types a tensor can hold. Float64 is the default for values; Int32 holds indices; Bool holds masks.
type Dtype =
    | Float64
    | Float32
    | Int32
    | Bool

    /// True for Float64 and Float32, the dtypes that carry gradients.
    member d.IsFloat =
        match d with
        | Float64 | Float32 -> true
        | _ -> false

    override d.ToString() =
        match d with
        | Float64 -> "float64"
        | Float32 -> "float32"
        | Int32 -> "int32"
        | Bool -> "bool"

/// Shape helpers. Shapes are row-major int arrays that are never mutated after creation.
[<RequireQualifiedAccess>]
module Shape =

    /// "[2, 3]" for error messages.
    let format (s: int[]) = "[" + String.Join(", ", s) + "]"

    /// Number of elements.
    let size (s: int[]) =
        let mutable n = 1
        for d in s do
            n <- n * d
        n

    let internal stridesOf (s: int[]) =
        let st = Array.zeroCreate s.Length
        let mutable acc = 1
        for i in s.Length - 1 .. -1 .. 0 do
            st.[i] <- acc
            acc <- acc * s.[i]
        st

    let equal (a: int[]) (b: int[]) =
        a.Length = b.Length
        && (let mutable ok = true
            for i in 0 .. a.Length - 1 do
                if a.[i] <> b.[i] then ok <- false
            ok)

    /// NumPy broadcasting of two shapes; the error names the operation and both shapes.
    let broadcast (op: string) (a: int[]) (b: int[]) =
        if equal a b then a
        else
            let n = max a.Length b.Length
            let r = Array.zeroCreate n
            for i in 0 .. n - 1 do
                let da = if i < n - a.Length then 1 else a.[i - (n - a.Length)]
                let db = if i < n - b.Length then 1 else b.[i - (n - b.Length)]
                r.[i] <-
                    if da = db then da
                    elif da = 1 then db
                    elif db = 1 then da
                    else
                        invalidArg "shape"
                            (sprintf "%s: shapes %s and %s cannot be broadcast together (dimension %d: %d vs %d)."
                                op (format a) (format b) i da db)
            r

    /// Normalizes a possibly negative axis against a rank, with an error naming the op.
    let internal axis (op: string) (rank: int) (ax: int) =
        let a = if ax < 0 then ax + rank else ax
        if a < 0 || a >= rank then
            invalidArg "axis" (sprintf "%s: axis %d is out of range for a tensor of rank %d." op ax rank)
        a

    let internal axes (op: string) (rank: int) (axs: int[]) =
        let r = axs |> Array.map (axis op rank) |> Array.sort
        for i in 1 .. r.Length - 1 do
            if r.[i] = r.[i - 1] then
                invalidArg "axes" (sprintf "%s: axis %d is given twice." op r.[i])
        r

    /// The shape after reducing the given (normalized, sorted) axes.
    let internal reduced (s: int[]) (axs: int[]) (keepDim: bool) =
        if keepDim then s |> Array.mapi (fun i d -> if Array.contains i axs then 1 else d)
        else s |> Array.indexed |> Array.filter (fun (i, _) -> not (Array.contains i axs)) |> Array.map snd
