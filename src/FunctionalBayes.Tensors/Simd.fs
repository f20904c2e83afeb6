namespace FunctionalBayes.Tensors

open System
open System.Numerics
open System.Runtime.InteropServices
open System.Runtime.Intrinsics

/// Element-wise and reduction loops over spans, with TensorPrimitives' signatures and element-wise results, for
/// the hot kernels. Why not TensorPrimitives itself: System.Numerics.Tensors ships as IL only (no precompiled
/// code) and [<OptimizeFromFirstCall>] cannot reach another assembly, so its generic loops ran as tier-0 code
/// through much of a process's first fit. These run fully optimised from their first call. Element-wise results
/// have TensorPrimitives' bits (one IEEE operation per element; exp and log: the runtime's vector algorithm,
/// which TensorPrimitives uses too, for every element, the short tail included); sums, dots and norms add in
/// their own order.
/// The destination may be the same memory as an input (in place), not a shifted overlap of it.
[<AbstractClass; Sealed; OptimizeFromFirstCall>]
type internal Simd =

    static member private Check(what: string, n: int, m: int, d: int) =
        if m <> n then invalidArg "y" (sprintf "Simd.%s: the inputs have lengths %d and %d; they must be equal." what n m)
        if d < n then invalidArg "destination" (sprintf "Simd.%s: the destination has length %d, shorter than the input's %d." what d n)

    // ---- binary element-wise (x op y, x op s, s op y) ---------------------------------------------

    /// d = x + y.
    static member Add<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Add", x.Length, y.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Add(xv.[i], yv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] + y.[i]

    /// d = x + s.
    static member Add<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Add", x.Length, x.Length, d.Length)
        let sv = Vector<'T>(s)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Add(xv.[i], sv)
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] + s

    /// d = x − y.
    static member Subtract<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                          (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Subtract", x.Length, y.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Subtract(xv.[i], yv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] - y.[i]

    /// d = x − s.
    static member Subtract<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                          (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Subtract", x.Length, x.Length, d.Length)
        let sv = Vector<'T>(s)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Subtract(xv.[i], sv)
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] - s

    /// d = s − y.
    static member Subtract<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                          (s: 'T, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Subtract", y.Length, y.Length, d.Length)
        let sv = Vector<'T>(s)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. yv.Length - 1 do dv.[i] <- Vector.Subtract(sv, yv.[i])
        for i in yv.Length * Vector<'T>.Count .. y.Length - 1 do d.[i] <- s - y.[i]

    /// d = x · y.
    static member Multiply<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                          (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Multiply", x.Length, y.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Multiply(xv.[i], yv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] * y.[i]

    /// d = x · s.
    static member Multiply<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                          (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Multiply", x.Length, x.Length, d.Length)
        let sv = Vector<'T>(s)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Multiply(xv.[i], sv)
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] * s

    /// d = x / y.
    static member Divide<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                        (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Divide", x.Length, y.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Divide(xv.[i], yv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] / y.[i]

    /// d = x / s.
    static member Divide<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                        (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Divide", x.Length, x.Length, d.Length)
        let sv = Vector<'T>(s)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Divide(xv.[i], sv)
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- x.[i] / s

    /// d = s / y.
    static member Divide<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                        (s: 'T, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Divide", y.Length, y.Length, d.Length)
        let sv = Vector<'T>(s)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. yv.Length - 1 do dv.[i] <- Vector.Divide(sv, yv.[i])
        for i in yv.Length * Vector<'T>.Count .. y.Length - 1 do d.[i] <- s / y.[i]

    /// d = max(x, y) element-wise, as Math.Max (NaN propagates, −0 < +0).
    static member Max<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Max", x.Length, y.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Max(xv.[i], yv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- 'T.Max(x.[i], y.[i])

    /// d = max(x, s) element-wise, as Math.Max.
    static member Max<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Max", x.Length, x.Length, d.Length)
        let sv = Vector<'T>(s)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Max(xv.[i], sv)
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- 'T.Max(x.[i], s)

    /// d = min(x, y) element-wise, as Math.Min (NaN propagates, −0 < +0).
    static member Min<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Min", x.Length, y.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Min(xv.[i], yv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- 'T.Min(x.[i], y.[i])

    /// d = min(x, s) element-wise, as Math.Min.
    static member Min<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Min", x.Length, x.Length, d.Length)
        let sv = Vector<'T>(s)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Min(xv.[i], sv)
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- 'T.Min(x.[i], s)

    /// d = x · y + z (two roundings, as TensorPrimitives.MultiplyAdd).
    static member MultiplyAdd<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                             (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, z: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("MultiplyAdd", x.Length, y.Length, d.Length)
        Simd.Check("MultiplyAdd", x.Length, z.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let zv = MemoryMarshal.Cast<'T, Vector<'T>>(z)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Add(Vector.Multiply(xv.[i], yv.[i]), zv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do
            let p: 'T = x.[i] * y.[i]
            d.[i] <- p + z.[i]

    /// d = x · s + z (two roundings).
    static member MultiplyAdd<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                             (x: ReadOnlySpan<'T>, s: 'T, z: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("MultiplyAdd", x.Length, z.Length, d.Length)
        let sv = Vector<'T>(s)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let zv = MemoryMarshal.Cast<'T, Vector<'T>>(z)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Add(Vector.Multiply(xv.[i], sv), zv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do
            let p: 'T = x.[i] * s
            d.[i] <- p + z.[i]

    // ---- unary element-wise -------------------------------------------------------------------------

    /// d = −x.
    static member Negate<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                        (x: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Negate", x.Length, x.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Negate(xv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- -x.[i]

    /// d = |x|.
    static member Abs<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Abs", x.Length, x.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.Abs(xv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- 'T.Abs(x.[i])

    /// d = √x (correctly rounded).
    static member Sqrt<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                      (x: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Sqrt", x.Length, x.Length, d.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let dv = MemoryMarshal.Cast<'T, Vector<'T>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector.SquareRoot(xv.[i])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do d.[i] <- 'T.Sqrt(x.[i])

    /// d = exp(x), every element by the runtime's vector algorithm (Vector256.Exp); a last part shorter than a
    /// vector is computed in a padded vector, not by Math.Exp, so an element's value does not depend on where
    /// it falls (a vector holding an out-of-range value may take the algorithm's scalar path as a whole).
    static member Exp(x: ReadOnlySpan<float>, d: Span<float>) : unit =
        Simd.Check("Exp", x.Length, x.Length, d.Length)
        let xv = MemoryMarshal.Cast<float, Vector256<float>>(x)
        let dv = MemoryMarshal.Cast<float, Vector256<float>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector256.Exp(xv.[i])
        let done' = xv.Length * Vector256<float>.Count
        if done' < x.Length then
            let mutable t = Vector256<float>.Zero
            for i in done' .. x.Length - 1 do t <- t.WithElement(i - done', x.[i])
            let r = Vector256.Exp t
            for i in done' .. x.Length - 1 do d.[i] <- r.GetElement(i - done')

    /// d = exp(x) in float32 (see the float64 form).
    static member Exp(x: ReadOnlySpan<float32>, d: Span<float32>) : unit =
        Simd.Check("Exp", x.Length, x.Length, d.Length)
        let xv = MemoryMarshal.Cast<float32, Vector256<float32>>(x)
        let dv = MemoryMarshal.Cast<float32, Vector256<float32>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector256.Exp(xv.[i])
        let done' = xv.Length * Vector256<float32>.Count
        if done' < x.Length then
            let mutable t = Vector256<float32>.Zero
            for i in done' .. x.Length - 1 do t <- t.WithElement(i - done', x.[i])
            let r = Vector256.Exp t
            for i in done' .. x.Length - 1 do d.[i] <- r.GetElement(i - done')

    /// d = log(x), every element by the runtime's vector algorithm (see Exp); padding lanes hold 1.
    static member Log(x: ReadOnlySpan<float>, d: Span<float>) : unit =
        Simd.Check("Log", x.Length, x.Length, d.Length)
        let xv = MemoryMarshal.Cast<float, Vector256<float>>(x)
        let dv = MemoryMarshal.Cast<float, Vector256<float>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector256.Log(xv.[i])
        let done' = xv.Length * Vector256<float>.Count
        if done' < x.Length then
            let mutable t = Vector256<float>.One
            for i in done' .. x.Length - 1 do t <- t.WithElement(i - done', x.[i])
            let r = Vector256.Log t
            for i in done' .. x.Length - 1 do d.[i] <- r.GetElement(i - done')

    /// d = log(x) in float32 (see the float64 form).
    static member Log(x: ReadOnlySpan<float32>, d: Span<float32>) : unit =
        Simd.Check("Log", x.Length, x.Length, d.Length)
        let xv = MemoryMarshal.Cast<float32, Vector256<float32>>(x)
        let dv = MemoryMarshal.Cast<float32, Vector256<float32>>(d)
        for i in 0 .. xv.Length - 1 do dv.[i] <- Vector256.Log(xv.[i])
        let done' = xv.Length * Vector256<float32>.Count
        if done' < x.Length then
            let mutable t = Vector256<float32>.One
            for i in done' .. x.Length - 1 do t <- t.WithElement(i - done', x.[i])
            let r = Vector256.Log t
            for i in done' .. x.Length - 1 do d.[i] <- r.GetElement(i - done')

    // ---- reductions -------------------------------------------------------------------------------------

    /// Σ x (0 for an empty span).
    static member Sum<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>) : 'T =
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let mutable acc = Vector<'T>.Zero
        for i in 0 .. xv.Length - 1 do acc <- Vector.Add(acc, xv.[i])
        let mutable s = Vector.Sum acc
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do s <- s + x.[i]
        s

    /// Σ xᵢ·yᵢ.
    static member Dot<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>) : 'T =
        Simd.Check("Dot", x.Length, y.Length, x.Length)
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let yv = MemoryMarshal.Cast<'T, Vector<'T>>(y)
        let mutable acc = Vector<'T>.Zero
        for i in 0 .. xv.Length - 1 do acc <- Vector.Add(acc, Vector.Multiply(xv.[i], yv.[i]))
        let mutable s = Vector.Sum acc
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do
            let p: 'T = x.[i] * y.[i]
            s <- s + p
        s

    /// √(Σ x²).
    static member Norm<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                      (x: ReadOnlySpan<'T>) : 'T =
        'T.Sqrt(Simd.Dot(x, x))

    /// The largest element, as Math.Max folds (NaN if any is NaN); an empty span is an error.
    static member Max<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>) : 'T =
        if x.Length = 0 then invalidArg "x" "Simd.Max: the span is empty; its maximum is undefined."
        let xv = MemoryMarshal.Cast<'T, Vector<'T>>(x)
        let mutable m = x.[0]
        if xv.Length > 0 then
            let mutable acc = xv.[0]
            for i in 1 .. xv.Length - 1 do acc <- Vector.Max(acc, xv.[i])
            for k in 0 .. Vector<'T>.Count - 1 do m <- 'T.Max(m, acc.[k])
        for i in xv.Length * Vector<'T>.Count .. x.Length - 1 do m <- 'T.Max(m, x.[i])
        m
