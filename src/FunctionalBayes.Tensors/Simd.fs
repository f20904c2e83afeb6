namespace FunctionalBayes.Tensors

#nowarn "9"    // NativePtr: the reductions' zero-padded last block (256 bytes on the stack); the streaming stores' pinned destination
#nowarn "3535" // static abstract interface members: the operator structs the loop drivers are specialised on

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop

/// An element-wise operation of one operand in each vector width and for one element. Every lane must give the
/// element's own result, so that where an element falls (which width, the tail) changes no bit.
type internal IUnaryOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    static abstract Scalar: 'T -> 'T
    static abstract V128: Vector128<'T> -> Vector128<'T>
    static abstract V256: Vector256<'T> -> Vector256<'T>
    static abstract V512: Vector512<'T> -> Vector512<'T>

/// An element-wise operation of two operands (see IUnaryOp).
type internal IBinaryOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    static abstract Scalar: 'T * 'T -> 'T
    static abstract V128: Vector128<'T> * Vector128<'T> -> Vector128<'T>
    static abstract V256: Vector256<'T> * Vector256<'T> -> Vector256<'T>
    static abstract V512: Vector512<'T> * Vector512<'T> -> Vector512<'T>

/// An element-wise operation of three operands (see IUnaryOp).
type internal ITernaryOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    static abstract Scalar: 'T * 'T * 'T -> 'T
    static abstract V128: Vector128<'T> * Vector128<'T> * Vector128<'T> -> Vector128<'T>
    static abstract V256: Vector256<'T> * Vector256<'T> * Vector256<'T> -> Vector256<'T>
    static abstract V512: Vector512<'T> * Vector512<'T> * Vector512<'T> -> Vector512<'T>

/// a + b.
[<Struct>]
type internal AddOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T) = a + b
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>) = Vector128.Add(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>) = Vector256.Add(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>) = Vector512.Add(a, b)

/// a − b.
[<Struct>]
type internal SubtractOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T) = a - b
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>) = Vector128.Subtract(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>) = Vector256.Subtract(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>) = Vector512.Subtract(a, b)

/// a · b.
[<Struct>]
type internal MultiplyOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T) = a * b
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>) = Vector128.Multiply(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>) = Vector256.Multiply(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>) = Vector512.Multiply(a, b)

/// a / b.
[<Struct>]
type internal DivideOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T) = a / b
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>) = Vector128.Divide(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>) = Vector256.Divide(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>) = Vector512.Divide(a, b)

/// max(a, b) as Math.Max (NaN propagates, −0 < +0; the vector Max has these semantics since .NET 9).
[<Struct>]
type internal MaxOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T) = 'T.Max(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>) = Vector128.Max(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>) = Vector256.Max(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>) = Vector512.Max(a, b)

/// min(a, b) as Math.Min.
[<Struct>]
type internal MinOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T) = 'T.Min(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>) = Vector128.Min(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>) = Vector256.Min(a, b)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>) = Vector512.Min(a, b)

/// b op a: a span-scalar driver serves scalar-span forms (s − y, s / y) with the operands swapped back.
[<Struct>]
type internal Swapped<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> IBinaryOp<'T>> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T) = 'Op.Scalar(b, a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>) = 'Op.V128(b, a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>) = 'Op.V256(b, a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>) = 'Op.V512(b, a)

/// The first operand (a sum is a dot product's driver with the terms x, not x·y).
[<Struct>]
type internal FirstOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IBinaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, _b: 'T) = a
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, _b: Vector128<'T>) = a
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, _b: Vector256<'T>) = a
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, _b: Vector512<'T>) = a

/// a · b + c with two roundings (TensorPrimitives.MultiplyAdd's results; a fused form would differ in the last
/// bit between processors with and without FMA).
[<Struct>]
type internal MultiplyAddOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface ITernaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T, b: 'T, c: 'T) = (let p: 'T = a * b in p + c)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>, b: Vector128<'T>, c: Vector128<'T>) = Vector128.Add(Vector128.Multiply(a, b), c)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>, b: Vector256<'T>, c: Vector256<'T>) = Vector256.Add(Vector256.Multiply(a, b), c)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>, b: Vector512<'T>, c: Vector512<'T>) = Vector512.Add(Vector512.Multiply(a, b), c)

/// −a.
[<Struct>]
type internal NegateOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IUnaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T) = -a
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>) = Vector128.Negate(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>) = Vector256.Negate(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>) = Vector512.Negate(a)

/// |a|.
[<Struct>]
type internal AbsOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IUnaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T) = 'T.Abs(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>) = Vector128.Abs(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>) = Vector256.Abs(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>) = Vector512.Abs(a)

/// √a (correctly rounded).
[<Struct>]
type internal SqrtOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> =
    interface IUnaryOp<'T> with
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member Scalar(a: 'T) = 'T.Sqrt(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V128(a: Vector128<'T>) = Vector128.Sqrt(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V256(a: Vector256<'T>) = Vector256.Sqrt(a)
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>] static member V512(a: Vector512<'T>) = Vector512.Sqrt(a)

/// exp in float64 by the runtime's vector algorithm; one element in a vector whose other lanes hold 0. Vector512 as
/// two Vector256 halves: Vector512.Exp/Log measured 3x slower than Vector256 on AVX-512 (elementwise suite, .NET 10).
[<Struct>]
type internal ExpF64 =
    interface IUnaryOp<float> with
        static member Scalar(a: float) = Vector128.Exp(Vector128<float>.Zero.WithElement(0, a)).ToScalar()
        static member V128(a: Vector128<float>) = Vector128.Exp(a)
        static member V256(a: Vector256<float>) = Vector256.Exp(a)
        static member V512(a: Vector512<float>) = Vector512.Create(Vector256.Exp(a.GetLower()), Vector256.Exp(a.GetUpper()))

/// exp in float32 for every vector width (ExpF32's lanes), in float32: n = round(x·log2 e), r = x − n·ln 2 with
/// ln 2 in two parts (Cody–Waite; n·0.693359375 is exact), e^r by its Taylor polynomial to r⁷ (|r| ≤ ln2/2: the
/// first term left out is below 6e-9, a tenth of a float32 ulp), times 2^n as two factors so that a subnormal
/// result rounds once. x is clamped to [−104, 89] (e^x rounds to 0 below, overflows above); NaN passes through.
/// Separate multiplies and adds (no FMA), so every width and processor gives the same bits. The runtime's float32
/// exp works in float64, and without dynamic PGO its helpers are not inlined (3x the time in the AEVB step).
[<AbstractClass; Sealed; OptimizeFromFirstCall>]
type internal ExpF32Kernel =
    static member V128(x: Vector128<float32>) : Vector128<float32> =
        let c (v: float32) = Vector128.Create v
        let xc = Vector128.MinNative(Vector128.MaxNative(x, c -104.0f), c 89.0f)
        let n = Vector128.Round(Vector128.Multiply(xc, c 1.44269504f))
        let r = Vector128.Subtract(Vector128.Subtract(xc, Vector128.Multiply(n, c 0.693359375f)), Vector128.Multiply(n, c -2.12194440e-4f))
        let mutable p = c (1.0f / 5040.0f)
        p <- Vector128.Add(Vector128.Multiply(p, r), c (1.0f / 720.0f))
        p <- Vector128.Add(Vector128.Multiply(p, r), c (1.0f / 120.0f))
        p <- Vector128.Add(Vector128.Multiply(p, r), c (1.0f / 24.0f))
        p <- Vector128.Add(Vector128.Multiply(p, r), c (1.0f / 6.0f))
        p <- Vector128.Add(Vector128.Multiply(p, r), c 0.5f)
        p <- Vector128.Add(Vector128.Multiply(p, r), c 1.0f)
        p <- Vector128.Add(Vector128.Multiply(p, r), c 1.0f)
        let ni = Vector128.ConvertToInt32 n
        let n1 = Vector128.ShiftRightArithmetic(ni, 1)
        let pow2 (k: Vector128<int>) = Vector128.ShiftLeft(Vector128.Add(k, Vector128.Create 127), 23).AsSingle()
        let e = Vector128.Multiply(Vector128.Multiply(p, pow2 n1), pow2 (Vector128.Subtract(ni, n1)))
        Vector128.ConditionalSelect(Vector128.Equals(x, x), e, x)

    static member V256(x: Vector256<float32>) : Vector256<float32> =
        let c (v: float32) = Vector256.Create v
        let xc = Vector256.MinNative(Vector256.MaxNative(x, c -104.0f), c 89.0f)
        let n = Vector256.Round(Vector256.Multiply(xc, c 1.44269504f))
        let r = Vector256.Subtract(Vector256.Subtract(xc, Vector256.Multiply(n, c 0.693359375f)), Vector256.Multiply(n, c -2.12194440e-4f))
        let mutable p = c (1.0f / 5040.0f)
        p <- Vector256.Add(Vector256.Multiply(p, r), c (1.0f / 720.0f))
        p <- Vector256.Add(Vector256.Multiply(p, r), c (1.0f / 120.0f))
        p <- Vector256.Add(Vector256.Multiply(p, r), c (1.0f / 24.0f))
        p <- Vector256.Add(Vector256.Multiply(p, r), c (1.0f / 6.0f))
        p <- Vector256.Add(Vector256.Multiply(p, r), c 0.5f)
        p <- Vector256.Add(Vector256.Multiply(p, r), c 1.0f)
        p <- Vector256.Add(Vector256.Multiply(p, r), c 1.0f)
        let ni = Vector256.ConvertToInt32 n
        let n1 = Vector256.ShiftRightArithmetic(ni, 1)
        let pow2 (k: Vector256<int>) = Vector256.ShiftLeft(Vector256.Add(k, Vector256.Create 127), 23).AsSingle()
        let e = Vector256.Multiply(Vector256.Multiply(p, pow2 n1), pow2 (Vector256.Subtract(ni, n1)))
        Vector256.ConditionalSelect(Vector256.Equals(x, x), e, x)

    static member V512(x: Vector512<float32>) : Vector512<float32> =
        let c (v: float32) = Vector512.Create v
        let xc = Vector512.MinNative(Vector512.MaxNative(x, c -104.0f), c 89.0f)
        let n = Vector512.Round(Vector512.Multiply(xc, c 1.44269504f))
        let r = Vector512.Subtract(Vector512.Subtract(xc, Vector512.Multiply(n, c 0.693359375f)), Vector512.Multiply(n, c -2.12194440e-4f))
        let mutable p = c (1.0f / 5040.0f)
        p <- Vector512.Add(Vector512.Multiply(p, r), c (1.0f / 720.0f))
        p <- Vector512.Add(Vector512.Multiply(p, r), c (1.0f / 120.0f))
        p <- Vector512.Add(Vector512.Multiply(p, r), c (1.0f / 24.0f))
        p <- Vector512.Add(Vector512.Multiply(p, r), c (1.0f / 6.0f))
        p <- Vector512.Add(Vector512.Multiply(p, r), c 0.5f)
        p <- Vector512.Add(Vector512.Multiply(p, r), c 1.0f)
        p <- Vector512.Add(Vector512.Multiply(p, r), c 1.0f)
        let ni = Vector512.ConvertToInt32 n
        let n1 = Vector512.ShiftRightArithmetic(ni, 1)
        let pow2 (k: Vector512<int>) = Vector512.ShiftLeft(Vector512.Add(k, Vector512.Create 127), 23).AsSingle()
        let e = Vector512.Multiply(Vector512.Multiply(p, pow2 n1), pow2 (Vector512.Subtract(ni, n1)))
        Vector512.ConditionalSelect(Vector512.Equals(x, x), e, x)

/// exp in float32 (ExpF32Kernel); one element in a vector whose other lanes hold 0.
[<Struct>]
type internal ExpF32 =
    interface IUnaryOp<float32> with
        static member Scalar(a: float32) = (ExpF32Kernel.V128(Vector128<float32>.Zero.WithElement(0, a))).ToScalar()
        static member V128(a: Vector128<float32>) = ExpF32Kernel.V128 a
        static member V256(a: Vector256<float32>) = ExpF32Kernel.V256 a
        static member V512(a: Vector512<float32>) = ExpF32Kernel.V512 a

/// log in float64 by the runtime's vector algorithm; one element in a vector whose other lanes hold 1.
[<Struct>]
type internal LogF64 =
    interface IUnaryOp<float> with
        static member Scalar(a: float) = Vector128.Log(Vector128<float>.One.WithElement(0, a)).ToScalar()
        static member V128(a: Vector128<float>) = Vector128.Log(a)
        static member V256(a: Vector256<float>) = Vector256.Log(a)
        static member V512(a: Vector512<float>) = Vector512.Create(Vector256.Log(a.GetLower()), Vector256.Log(a.GetUpper()))

/// log in float32 (see LogF64).
[<Struct>]
type internal LogF32 =
    interface IUnaryOp<float32> with
        static member Scalar(a: float32) = Vector128.Log(Vector128<float32>.One.WithElement(0, a)).ToScalar()
        static member V128(a: Vector128<float32>) = Vector128.Log(a)
        static member V256(a: Vector256<float32>) = Vector256.Log(a)
        static member V512(a: Vector512<float32>) = Vector512.Create(Vector256.Log(a.GetLower()), Vector256.Log(a.GetUpper()))

/// tanh in float64 for every vector width (TanhF64's lanes): |x| < 0.55 by x + x³·P(x²), P of degree 10 fitted
/// to (tanh x − x)/x³ on [0, 0.55²] (Chebyshev least squares, error 8e-18); above, by 1 − 2/(e^{2|x|} + 1) with
/// the sign of x, 2|x| capped at 40 (tanh is 1 in float64 from 19.06 on; the cap keeps exp in its vector path);
/// NaN and ±0 pass through. Separate multiplies and adds (no FMA), so every processor gives the same bits.
[<AbstractClass; Sealed; OptimizeFromFirstCall>]
type internal TanhKernel =
    static member V128(x: Vector128<float>) : Vector128<float> =
        let t = Vector128.Multiply(x, x)
        let mutable p = Vector128.Create(-2.060276537636634e-05)
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(8.511313685577672e-05))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(-0.0002346347410887237))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(0.0005889360520074057))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(-0.001455661830100716))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(0.003592110378689024))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(-0.008863234397814355))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(0.021869488493666944))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(-0.053968253967434016))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(0.13333333333332714))
        p <- Vector128.Add(Vector128.Multiply(p, t), Vector128.Create(-0.3333333333333333))
        let small = Vector128.Add(x, Vector128.Multiply(Vector128.Multiply(x, t), p))
        let y = Vector128.Abs(x)
        let y2 = Vector128.Add(y, y)
        let cap = Vector128.Create(40.0)
        let e = Vector128.Exp(Vector128.ConditionalSelect(Vector128.LessThan(y2, cap), y2, cap))
        let big = Vector128.Subtract(Vector128<float>.One, Vector128.Divide(Vector128.Create(2.0), Vector128.Add(e, Vector128<float>.One)))
        // the sign bit from x, the rest from big
        let signed = Vector128.ConditionalSelect(Vector128.Create(-0.0), x, big)
        let r = Vector128.ConditionalSelect(Vector128.LessThan(y, Vector128.Create(0.55)), small, signed)
        // x itself for NaN and ±0 (x + x³·P(x²) would turn −0 into +0)
        Vector128.ConditionalSelect(Vector128.AndNot(Vector128.Equals(x, x), Vector128.Equals(x, Vector128<float>.Zero)), r, x)

    static member V256(x: Vector256<float>) : Vector256<float> =
        let t = Vector256.Multiply(x, x)
        let mutable p = Vector256.Create(-2.060276537636634e-05)
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(8.511313685577672e-05))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(-0.0002346347410887237))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(0.0005889360520074057))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(-0.001455661830100716))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(0.003592110378689024))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(-0.008863234397814355))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(0.021869488493666944))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(-0.053968253967434016))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(0.13333333333332714))
        p <- Vector256.Add(Vector256.Multiply(p, t), Vector256.Create(-0.3333333333333333))
        let small = Vector256.Add(x, Vector256.Multiply(Vector256.Multiply(x, t), p))
        let y = Vector256.Abs(x)
        let y2 = Vector256.Add(y, y)
        let cap = Vector256.Create(40.0)
        let e = Vector256.Exp(Vector256.ConditionalSelect(Vector256.LessThan(y2, cap), y2, cap))
        let big = Vector256.Subtract(Vector256<float>.One, Vector256.Divide(Vector256.Create(2.0), Vector256.Add(e, Vector256<float>.One)))
        // the sign bit from x, the rest from big
        let signed = Vector256.ConditionalSelect(Vector256.Create(-0.0), x, big)
        let r = Vector256.ConditionalSelect(Vector256.LessThan(y, Vector256.Create(0.55)), small, signed)
        // x itself for NaN and ±0 (x + x³·P(x²) would turn −0 into +0)
        Vector256.ConditionalSelect(Vector256.AndNot(Vector256.Equals(x, x), Vector256.Equals(x, Vector256<float>.Zero)), r, x)

/// tanh in float64 (TanhKernel); one element in a vector whose other lanes hold 0.
[<Struct>]
type internal TanhF64 =
    interface IUnaryOp<float> with
        static member Scalar(a: float) = (TanhKernel.V128(Vector128<float>.Zero.WithElement(0, a))).ToScalar()
        static member V128(a: Vector128<float>) = TanhKernel.V128 a
        static member V256(a: Vector256<float>) = TanhKernel.V256 a
        static member V512(a: Vector512<float>) = Vector512.Create(TanhKernel.V256(a.GetLower()), TanhKernel.V256(a.GetUpper()))

/// When Simd's element-wise loops write by non-temporal (streaming) stores.
[<RequireQualifiedAccess>]
module internal SimdStreaming =
    /// Outputs of at least this many bytes that share no memory with an input are written by non-temporal stores:
    /// they skip reading each destination line into the cache before overwriting it and leave the inputs cached.
    /// Below, the three arrays fit the caches and plain stores are faster. Measured on the Zen 4 EPYC (32 MiB L3,
    /// float64 Add, CPU time): 2.4 MB out, plain 90 GB/s and streaming 84; 4 MB, 71 and 82; 8 MB, 39 and 71.
    /// Mutable for the benchmarks only (the bits are the same either way).
    let mutable minBytes = 3 <<< 20

/// Element-wise and reduction loops over spans, with TensorPrimitives' signatures and element-wise results, for
/// the hot kernels. Why not TensorPrimitives itself: System.Numerics.Tensors ships as IL only (no precompiled
/// code) and [<OptimizeFromFirstCall>] cannot reach another assembly, so its generic loops ran as tier-0 code
/// through much of a process's first fit. These run fully optimised from their first call, in Vector512 where the
/// processor runs it, else Vector256, else Vector128. Each loop is written once (the drivers Map1..Map3S and
/// Reduce) and specialised by the JIT on an operator struct (no closure, no allocation, in Debug too).
/// Element-wise results have TensorPrimitives' bits (one IEEE operation per element; exp and log: the runtime's
/// vector algorithm, which TensorPrimitives uses too, for every element, the short tail included); sums and
/// dots add in one fixed order (Reduce), the same on every processor.
/// The destination may be the same memory as an input (in place), not a shifted overlap of it.
[<AbstractClass; Sealed; OptimizeFromFirstCall>]
type internal Simd =

    static member private Check(what: string, n: int, m: int, d: int) =
        if m <> n then invalidArg "y" (sprintf "Simd.%s: the inputs have lengths %d and %d; they must be equal." what n m)
        if d < n then invalidArg "destination" (sprintf "Simd.%s: the destination has length %d, shorter than the input's %d." what d n)

    // ---- the loop drivers -------------------------------------------------------------------------------

    /// The streaming prefix of Map2/Map2S: d[0 .. head) by single elements up to the first 64-byte boundary of d,
    /// then whole vectors by aligned non-temporal stores; returns how many elements it wrote (0 where d is not
    /// element-aligned). The caller writes the rest; the lanes give each element's own result, so the bits are
    /// those of the plain loop.
    static member private Stream2<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> IBinaryOp<'T>>
                             (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, ys: bool, s: 'T, d: Span<'T>) : int =
        let n = x.Length
        let size = Unsafe.SizeOf<'T>()
        use pd = fixed (MemoryMarshal.AsBytes(d.Slice(0, n)))
        let addr = NativePtr.toNativeInt pd
        if addr % nativeint size <> 0n then 0
        else
            let head = min n (int ((64n - addr % 64n) % 64n) / size)
            for j in 0 .. head - 1 do
                d.[j] <- 'Op.Scalar(x.[j], (if ys then y.[j] else s))
            let mutable p = NativePtr.add pd (head * size)
            let mutable done' = head
            if Vector512.IsHardwareAccelerated then
                let xv = MemoryMarshal.Cast<'T, Vector512<'T>>(x.Slice(head))
                let yv = if ys then MemoryMarshal.Cast<'T, Vector512<'T>>(y.Slice(head)) else ReadOnlySpan<Vector512<'T>>.Empty
                let sv = Vector512.Create<'T>(s)
                for k in 0 .. xv.Length - 1 do
                    Vector512.StoreAlignedNonTemporal(('Op.V512(xv.[k], (if ys then yv.[k] else sv))).AsByte(), p)
                    p <- NativePtr.add p 64
                done' <- head + xv.Length * Vector512<'T>.Count
            elif Vector256.IsHardwareAccelerated then
                let xv = MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(head))
                let yv = if ys then MemoryMarshal.Cast<'T, Vector256<'T>>(y.Slice(head)) else ReadOnlySpan<Vector256<'T>>.Empty
                let sv = Vector256.Create<'T>(s)
                for k in 0 .. xv.Length - 1 do
                    Vector256.StoreAlignedNonTemporal(('Op.V256(xv.[k], (if ys then yv.[k] else sv))).AsByte(), p)
                    p <- NativePtr.add p 32
                done' <- head + xv.Length * Vector256<'T>.Count
            // streaming stores are weakly ordered: fence them before the caller's later stores or a publish
            if X86.Sse.IsSupported then X86.Sse.StoreFence()
            done'

    /// Whether Map2/Map2S stream d: x's bytes at least SimdStreaming.minBytes, d no memory of x (or y), x86 vectors.
    static member private Streams<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                             (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : bool =
        int64 x.Length * int64 (Unsafe.SizeOf<'T>()) >= int64 SimdStreaming.minBytes
        && Vector256.IsHardwareAccelerated && X86.Sse.IsSupported
        && not (x.Overlaps(Span<'T>.op_Implicit (d.Slice(0, x.Length)) : ReadOnlySpan<'T>))
        && (y.IsEmpty || not (y.Overlaps(Span<'T>.op_Implicit (d.Slice(0, x.Length)) : ReadOnlySpan<'T>)))

    /// d = op(x): the widest vectors the processor runs (four a round), then one step of each narrower width, then single elements.
    static member private Map1<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> IUnaryOp<'T>>
                             (x: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        let n = x.Length
        let mutable i = 0
        if Vector512.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector512<'T>>(x)
            let dv = MemoryMarshal.Cast<'T, Vector512<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V512(xv.[k])
                dv.[k + 1] <- 'Op.V512(xv.[k + 1])
                dv.[k + 2] <- 'Op.V512(xv.[k + 2])
                dv.[k + 3] <- 'Op.V512(xv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V512(xv.[k])
                k <- k + 1
            i <- m * Vector512<'T>.Count
        elif Vector256.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector256<'T>>(x)
            let dv = MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V256(xv.[k])
                dv.[k + 1] <- 'Op.V256(xv.[k + 1])
                dv.[k + 2] <- 'Op.V256(xv.[k + 2])
                dv.[k + 3] <- 'Op.V256(xv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V256(xv.[k])
                k <- k + 1
            i <- m * Vector256<'T>.Count
        elif Vector128.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector128<'T>>(x)
            let dv = MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m do
                dv.[k] <- 'Op.V128(xv.[k])
                k <- k + 1
            i <- m * Vector128<'T>.Count
        if Vector256.IsHardwareAccelerated && n - i >= Vector256<'T>.Count then
            MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(i)).[0] <- 'Op.V256(MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(i)).[0])
            i <- i + Vector256<'T>.Count
        if Vector128.IsHardwareAccelerated && n - i >= Vector128<'T>.Count then
            MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(i)).[0] <- 'Op.V128(MemoryMarshal.Cast<'T, Vector128<'T>>(x.Slice(i)).[0])
            i <- i + Vector128<'T>.Count
        while i < n do
            d.[i] <- 'Op.Scalar(x.[i])
            i <- i + 1

    /// d = op(x, y) (see Map1).
    static member private Map2<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> IBinaryOp<'T>>
                             (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        let n = x.Length
        let mutable i = 0
        if Simd.Streams(x, y, d) then
            i <- Simd.Stream2<'T, 'Op>(x, y, true, 'T.Zero, d)
        if Vector512.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector512<'T>>(x.Slice(i))
            let yv = MemoryMarshal.Cast<'T, Vector512<'T>>(y.Slice(i))
            let dv = MemoryMarshal.Cast<'T, Vector512<'T>>(d.Slice(i, n - i))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V512(xv.[k], yv.[k])
                dv.[k + 1] <- 'Op.V512(xv.[k + 1], yv.[k + 1])
                dv.[k + 2] <- 'Op.V512(xv.[k + 2], yv.[k + 2])
                dv.[k + 3] <- 'Op.V512(xv.[k + 3], yv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V512(xv.[k], yv.[k])
                k <- k + 1
            i <- i + m * Vector512<'T>.Count
        elif Vector256.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(i))
            let yv = MemoryMarshal.Cast<'T, Vector256<'T>>(y.Slice(i))
            let dv = MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(i, n - i))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V256(xv.[k], yv.[k])
                dv.[k + 1] <- 'Op.V256(xv.[k + 1], yv.[k + 1])
                dv.[k + 2] <- 'Op.V256(xv.[k + 2], yv.[k + 2])
                dv.[k + 3] <- 'Op.V256(xv.[k + 3], yv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V256(xv.[k], yv.[k])
                k <- k + 1
            i <- i + m * Vector256<'T>.Count
        elif Vector128.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector128<'T>>(x)
            let yv = MemoryMarshal.Cast<'T, Vector128<'T>>(y)
            let dv = MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m do
                dv.[k] <- 'Op.V128(xv.[k], yv.[k])
                k <- k + 1
            i <- m * Vector128<'T>.Count
        if Vector256.IsHardwareAccelerated && n - i >= Vector256<'T>.Count then
            MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(i)).[0] <- 'Op.V256(MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(i)).[0], MemoryMarshal.Cast<'T, Vector256<'T>>(y.Slice(i)).[0])
            i <- i + Vector256<'T>.Count
        if Vector128.IsHardwareAccelerated && n - i >= Vector128<'T>.Count then
            MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(i)).[0] <- 'Op.V128(MemoryMarshal.Cast<'T, Vector128<'T>>(x.Slice(i)).[0], MemoryMarshal.Cast<'T, Vector128<'T>>(y.Slice(i)).[0])
            i <- i + Vector128<'T>.Count
        while i < n do
            d.[i] <- 'Op.Scalar(x.[i], y.[i])
            i <- i + 1

    /// d = op(x, s) (see Map1).
    static member private Map2S<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> IBinaryOp<'T>>
                             (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        let n = x.Length
        let mutable i = 0
        if Simd.Streams(x, ReadOnlySpan<'T>.Empty, d) then
            i <- Simd.Stream2<'T, 'Op>(x, ReadOnlySpan<'T>.Empty, false, s, d)
        if Vector512.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector512<'T>>(x.Slice(i))
            let sv = Vector512.Create<'T>(s)
            let dv = MemoryMarshal.Cast<'T, Vector512<'T>>(d.Slice(i, n - i))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V512(xv.[k], sv)
                dv.[k + 1] <- 'Op.V512(xv.[k + 1], sv)
                dv.[k + 2] <- 'Op.V512(xv.[k + 2], sv)
                dv.[k + 3] <- 'Op.V512(xv.[k + 3], sv)
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V512(xv.[k], sv)
                k <- k + 1
            i <- i + m * Vector512<'T>.Count
        elif Vector256.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(i))
            let sv = Vector256.Create<'T>(s)
            let dv = MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(i, n - i))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V256(xv.[k], sv)
                dv.[k + 1] <- 'Op.V256(xv.[k + 1], sv)
                dv.[k + 2] <- 'Op.V256(xv.[k + 2], sv)
                dv.[k + 3] <- 'Op.V256(xv.[k + 3], sv)
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V256(xv.[k], sv)
                k <- k + 1
            i <- i + m * Vector256<'T>.Count
        elif Vector128.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector128<'T>>(x)
            let sv = Vector128.Create<'T>(s)
            let dv = MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m do
                dv.[k] <- 'Op.V128(xv.[k], sv)
                k <- k + 1
            i <- m * Vector128<'T>.Count
        if Vector256.IsHardwareAccelerated && n - i >= Vector256<'T>.Count then
            MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(i)).[0] <- 'Op.V256(MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(i)).[0], Vector256.Create<'T>(s))
            i <- i + Vector256<'T>.Count
        if Vector128.IsHardwareAccelerated && n - i >= Vector128<'T>.Count then
            MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(i)).[0] <- 'Op.V128(MemoryMarshal.Cast<'T, Vector128<'T>>(x.Slice(i)).[0], Vector128.Create<'T>(s))
            i <- i + Vector128<'T>.Count
        while i < n do
            d.[i] <- 'Op.Scalar(x.[i], s)
            i <- i + 1

    /// d = op(x, y, z) (see Map1).
    static member private Map3<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> ITernaryOp<'T>>
                             (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, z: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        let n = x.Length
        let mutable i = 0
        if Vector512.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector512<'T>>(x)
            let yv = MemoryMarshal.Cast<'T, Vector512<'T>>(y)
            let zv = MemoryMarshal.Cast<'T, Vector512<'T>>(z)
            let dv = MemoryMarshal.Cast<'T, Vector512<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V512(xv.[k], yv.[k], zv.[k])
                dv.[k + 1] <- 'Op.V512(xv.[k + 1], yv.[k + 1], zv.[k + 1])
                dv.[k + 2] <- 'Op.V512(xv.[k + 2], yv.[k + 2], zv.[k + 2])
                dv.[k + 3] <- 'Op.V512(xv.[k + 3], yv.[k + 3], zv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V512(xv.[k], yv.[k], zv.[k])
                k <- k + 1
            i <- m * Vector512<'T>.Count
        elif Vector256.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector256<'T>>(x)
            let yv = MemoryMarshal.Cast<'T, Vector256<'T>>(y)
            let zv = MemoryMarshal.Cast<'T, Vector256<'T>>(z)
            let dv = MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V256(xv.[k], yv.[k], zv.[k])
                dv.[k + 1] <- 'Op.V256(xv.[k + 1], yv.[k + 1], zv.[k + 1])
                dv.[k + 2] <- 'Op.V256(xv.[k + 2], yv.[k + 2], zv.[k + 2])
                dv.[k + 3] <- 'Op.V256(xv.[k + 3], yv.[k + 3], zv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V256(xv.[k], yv.[k], zv.[k])
                k <- k + 1
            i <- m * Vector256<'T>.Count
        elif Vector128.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector128<'T>>(x)
            let yv = MemoryMarshal.Cast<'T, Vector128<'T>>(y)
            let zv = MemoryMarshal.Cast<'T, Vector128<'T>>(z)
            let dv = MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m do
                dv.[k] <- 'Op.V128(xv.[k], yv.[k], zv.[k])
                k <- k + 1
            i <- m * Vector128<'T>.Count
        if Vector256.IsHardwareAccelerated && n - i >= Vector256<'T>.Count then
            MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(i)).[0] <- 'Op.V256(MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(i)).[0], MemoryMarshal.Cast<'T, Vector256<'T>>(y.Slice(i)).[0], MemoryMarshal.Cast<'T, Vector256<'T>>(z.Slice(i)).[0])
            i <- i + Vector256<'T>.Count
        if Vector128.IsHardwareAccelerated && n - i >= Vector128<'T>.Count then
            MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(i)).[0] <- 'Op.V128(MemoryMarshal.Cast<'T, Vector128<'T>>(x.Slice(i)).[0], MemoryMarshal.Cast<'T, Vector128<'T>>(y.Slice(i)).[0], MemoryMarshal.Cast<'T, Vector128<'T>>(z.Slice(i)).[0])
            i <- i + Vector128<'T>.Count
        while i < n do
            d.[i] <- 'Op.Scalar(x.[i], y.[i], z.[i])
            i <- i + 1

    /// d = op(x, s, z) (see Map1).
    static member private Map3S<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> ITernaryOp<'T>>
                             (x: ReadOnlySpan<'T>, s: 'T, z: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        let n = x.Length
        let mutable i = 0
        if Vector512.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector512<'T>>(x)
            let sv = Vector512.Create<'T>(s)
            let zv = MemoryMarshal.Cast<'T, Vector512<'T>>(z)
            let dv = MemoryMarshal.Cast<'T, Vector512<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V512(xv.[k], sv, zv.[k])
                dv.[k + 1] <- 'Op.V512(xv.[k + 1], sv, zv.[k + 1])
                dv.[k + 2] <- 'Op.V512(xv.[k + 2], sv, zv.[k + 2])
                dv.[k + 3] <- 'Op.V512(xv.[k + 3], sv, zv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V512(xv.[k], sv, zv.[k])
                k <- k + 1
            i <- m * Vector512<'T>.Count
        elif Vector256.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector256<'T>>(x)
            let sv = Vector256.Create<'T>(s)
            let zv = MemoryMarshal.Cast<'T, Vector256<'T>>(z)
            let dv = MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m - 3 do
                dv.[k] <- 'Op.V256(xv.[k], sv, zv.[k])
                dv.[k + 1] <- 'Op.V256(xv.[k + 1], sv, zv.[k + 1])
                dv.[k + 2] <- 'Op.V256(xv.[k + 2], sv, zv.[k + 2])
                dv.[k + 3] <- 'Op.V256(xv.[k + 3], sv, zv.[k + 3])
                k <- k + 4
            while k < m do
                dv.[k] <- 'Op.V256(xv.[k], sv, zv.[k])
                k <- k + 1
            i <- m * Vector256<'T>.Count
        elif Vector128.IsHardwareAccelerated then
            let xv = MemoryMarshal.Cast<'T, Vector128<'T>>(x)
            let sv = Vector128.Create<'T>(s)
            let zv = MemoryMarshal.Cast<'T, Vector128<'T>>(z)
            let dv = MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(0, n))
            let m = xv.Length
            let mutable k = 0
            while k < m do
                dv.[k] <- 'Op.V128(xv.[k], sv, zv.[k])
                k <- k + 1
            i <- m * Vector128<'T>.Count
        if Vector256.IsHardwareAccelerated && n - i >= Vector256<'T>.Count then
            MemoryMarshal.Cast<'T, Vector256<'T>>(d.Slice(i)).[0] <- 'Op.V256(MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(i)).[0], Vector256.Create<'T>(s), MemoryMarshal.Cast<'T, Vector256<'T>>(z.Slice(i)).[0])
            i <- i + Vector256<'T>.Count
        if Vector128.IsHardwareAccelerated && n - i >= Vector128<'T>.Count then
            MemoryMarshal.Cast<'T, Vector128<'T>>(d.Slice(i)).[0] <- 'Op.V128(MemoryMarshal.Cast<'T, Vector128<'T>>(x.Slice(i)).[0], Vector128.Create<'T>(s), MemoryMarshal.Cast<'T, Vector128<'T>>(z.Slice(i)).[0])
            i <- i + Vector128<'T>.Count
        while i < n do
            d.[i] <- 'Op.Scalar(x.[i], s, z.[i])
            i <- i + 1

    // ---- element-wise -----------------------------------------------------------------------------------

    /// d = x + y.
    static member Add<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Add", x.Length, y.Length, d.Length)
        Simd.Map2<'T, AddOp<'T>>(x, y, d)
    /// d = x + s.
    static member Add<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Add", x.Length, x.Length, d.Length)
        Simd.Map2S<'T, AddOp<'T>>(x, s, d)
    /// d = x − y.
    static member Subtract<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Subtract", x.Length, y.Length, d.Length)
        Simd.Map2<'T, SubtractOp<'T>>(x, y, d)
    /// d = x − s.
    static member Subtract<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Subtract", x.Length, x.Length, d.Length)
        Simd.Map2S<'T, SubtractOp<'T>>(x, s, d)
    /// d = s − y.
    static member Subtract<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (s: 'T, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Subtract", y.Length, y.Length, d.Length)
        Simd.Map2S<'T, Swapped<'T, SubtractOp<'T>>>(y, s, d)
    /// d = x · y.
    static member Multiply<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Multiply", x.Length, y.Length, d.Length)
        Simd.Map2<'T, MultiplyOp<'T>>(x, y, d)
    /// d = x · s.
    static member Multiply<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Multiply", x.Length, x.Length, d.Length)
        Simd.Map2S<'T, MultiplyOp<'T>>(x, s, d)
    /// d = x / y.
    static member Divide<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Divide", x.Length, y.Length, d.Length)
        Simd.Map2<'T, DivideOp<'T>>(x, y, d)
    /// d = x / s.
    static member Divide<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Divide", x.Length, x.Length, d.Length)
        Simd.Map2S<'T, DivideOp<'T>>(x, s, d)
    /// d = s / y.
    static member Divide<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (s: 'T, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Divide", y.Length, y.Length, d.Length)
        Simd.Map2S<'T, Swapped<'T, DivideOp<'T>>>(y, s, d)
    /// d = max(x, y) element-wise, as Math.Max (NaN propagates, −0 < +0).
    static member Max<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Max", x.Length, y.Length, d.Length)
        Simd.Map2<'T, MaxOp<'T>>(x, y, d)
    /// d = max(x, s) element-wise, as Math.Max.
    static member Max<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Max", x.Length, x.Length, d.Length)
        Simd.Map2S<'T, MaxOp<'T>>(x, s, d)
    /// d = min(x, y) element-wise, as Math.Min (NaN propagates, −0 < +0).
    static member Min<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Min", x.Length, y.Length, d.Length)
        Simd.Map2<'T, MinOp<'T>>(x, y, d)
    /// d = min(x, s) element-wise, as Math.Min.
    static member Min<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, d: Span<'T>) : unit =
        Simd.Check("Min", x.Length, x.Length, d.Length)
        Simd.Map2S<'T, MinOp<'T>>(x, s, d)
    /// d = x · y + z (two roundings, as TensorPrimitives.MultiplyAdd).
    static member MultiplyAdd<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>, z: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("MultiplyAdd", x.Length, y.Length, d.Length)
        Simd.Check("MultiplyAdd", x.Length, z.Length, d.Length)
        Simd.Map3<'T, MultiplyAddOp<'T>>(x, y, z, d)
    /// d = x · s + z (two roundings).
    static member MultiplyAdd<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, s: 'T, z: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("MultiplyAdd", x.Length, z.Length, d.Length)
        Simd.Map3S<'T, MultiplyAddOp<'T>>(x, s, z, d)
    /// d = −x.
    static member Negate<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Negate", x.Length, x.Length, d.Length)
        Simd.Map1<'T, NegateOp<'T>>(x, d)
    /// d = |x|.
    static member Abs<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Abs", x.Length, x.Length, d.Length)
        Simd.Map1<'T, AbsOp<'T>>(x, d)
    /// d = √x (correctly rounded).
    static member Sqrt<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, d: Span<'T>) : unit =
        Simd.Check("Sqrt", x.Length, x.Length, d.Length)
        Simd.Map1<'T, SqrtOp<'T>>(x, d)

    /// d = exp(x), every element by the runtime's vector algorithm (Vector512/256/128.Exp, the same result in
    /// every width); an element past the last whole vector is computed alone in a vector, not by Math.Exp, so an
    /// element's value does not depend on where it falls (a vector holding an out-of-range value may take the
    /// algorithm's scalar path as a whole).
    static member Exp(x: ReadOnlySpan<float>, d: Span<float>) : unit =
        Simd.Check("Exp", x.Length, x.Length, d.Length)
        Simd.Map1<float, ExpF64>(x, d)

    /// d = exp(x) in float32 (see the float64 form).
    static member Exp(x: ReadOnlySpan<float32>, d: Span<float32>) : unit =
        Simd.Check("Exp", x.Length, x.Length, d.Length)
        Simd.Map1<float32, ExpF32>(x, d)

    /// d = log(x), every element by the runtime's vector algorithm (see Exp).
    static member Log(x: ReadOnlySpan<float>, d: Span<float>) : unit =
        Simd.Check("Log", x.Length, x.Length, d.Length)
        Simd.Map1<float, LogF64>(x, d)

    /// d = log(x) in float32 (see the float64 form).
    static member Log(x: ReadOnlySpan<float32>, d: Span<float32>) : unit =
        Simd.Check("Log", x.Length, x.Length, d.Length)
        Simd.Map1<float32, LogF32>(x, d)

    /// d = tanh(x) in float64 (TanhKernel: within about 2 ulp of Math.Tanh, the same bits on every processor and
    /// wherever an element falls; NaN through, ±1 for ±∞, x itself for subnormal x).
    /// Not yet in the op table: 0.4-0.6x TensorPrimitives.Tanh's speed in the elementwise suite (the op table keeps
    /// TensorPrimitives.Tanh until this is as fast).
    static member Tanh(x: ReadOnlySpan<float>, d: Span<float>) : unit =
        Simd.Check("Tanh", x.Length, x.Length, d.Length)
        Simd.Map1<float, TanhF64>(x, d)

    // ---- reductions -------------------------------------------------------------------------------------

    /// The four lanes (or two) of a Vector256 as their pairwise sum: (h₀ + h₂) + (h₁ + h₃) of h = lower + upper.
    static member private Fold256<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>(v: Vector256<'T>) : 'T =
        let h = Vector128.Add(v.GetLower(), v.GetUpper())
        // a sum of two lanes is one addition, in either order the same
        if Vector128<'T>.Count = 2 then Vector128.Sum h
        else Vector64.Sum(Vector64.Add(h.GetLower(), h.GetUpper()))

    /// Fewer terms than one block, added in sequence from +0: the same on every processor too. NUTS takes dot
    /// products of a few dozen terms per leapfrog, where staging a padded block cost more than the additions.
    static member private ReduceShort<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> IBinaryOp<'T>>
                                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>) : 'T =
        let mutable acc: 'T = Unchecked.defaultof<'T> // +0
        for i in 0 .. x.Length - 1 do
            acc <- 'T.op_Addition(acc, 'Op.Scalar(x.[i], y.[i]))
        acc

    /// Σ op(xᵢ, yᵢ) in one order on every processor and in every vector width: fewer terms than one block in
    /// sequence (ReduceShort); else the terms in blocks of 256 bytes
    /// (32 float64), a block's four 64-byte quarters q₀..q₃ added as (q₀ + q₁) + (q₂ + q₃) into one 64-byte
    /// accumulator, the last partial block padded with +0 (which adds nothing), then the accumulator's lanes
    /// halved pairwise (lane j plus lane j + half) down to one. Several terms per dependent add keep it fast;
    /// the fixed order gives the same bits whatever the instruction set (a Vector512 or two Vector256 or four
    /// Vector128 hold the accumulator).
    static member private Reduce<'T, 'Op when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'Op: struct and 'Op :> IBinaryOp<'T>>
                                (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>) : 'T =
        let b = 256 / Unsafe.SizeOf<'T>()
        if x.Length < b then Simd.ReduceShort<'T, 'Op>(x, y) else
        let full = x.Length / b * b
        let tail = x.Length - full
        let px = Span<'T>(NativePtr.toVoidPtr (NativePtr.stackalloc<byte> 256), b)
        let py = Span<'T>(NativePtr.toVoidPtr (NativePtr.stackalloc<byte> 256), b)
        px.Clear()
        py.Clear()
        x.Slice(full).CopyTo(px)
        y.Slice(full).CopyTo(py)
        let blocks = full / b + (if tail > 0 then 1 else 0)
        if Vector512.IsHardwareAccelerated then
            let xb = MemoryMarshal.Cast<'T, Vector512<'T>>(x.Slice(0, full))
            let yb = MemoryMarshal.Cast<'T, Vector512<'T>>(y.Slice(0, full))
            let xt = MemoryMarshal.Cast<'T, Vector512<'T>>(px)
            let yt = MemoryMarshal.Cast<'T, Vector512<'T>>(py)
            let mutable a0 = Vector512<'T>.Zero
            for j in 0 .. blocks - 1 do
                // a block is four vectors, its quarters
                let xv = if j * 4 < xb.Length then xb.Slice(j * 4, 4) else Span<Vector512<'T>>.op_Implicit xt
                let yv = if j * 4 < yb.Length then yb.Slice(j * 4, 4) else Span<Vector512<'T>>.op_Implicit yt
                a0 <- Vector512.Add(a0, Vector512.Add(Vector512.Add('Op.V512(xv.[0], yv.[0]), 'Op.V512(xv.[1], yv.[1])),
                                        Vector512.Add('Op.V512(xv.[2], yv.[2]), 'Op.V512(xv.[3], yv.[3]))))
            Simd.Fold256(Vector256.Add(a0.GetLower(), a0.GetUpper()))
        elif Vector256.IsHardwareAccelerated then
            let xb = MemoryMarshal.Cast<'T, Vector256<'T>>(x.Slice(0, full))
            let yb = MemoryMarshal.Cast<'T, Vector256<'T>>(y.Slice(0, full))
            let xt = MemoryMarshal.Cast<'T, Vector256<'T>>(px)
            let yt = MemoryMarshal.Cast<'T, Vector256<'T>>(py)
            let mutable a0 = Vector256<'T>.Zero
            let mutable a1 = Vector256<'T>.Zero
            for j in 0 .. blocks - 1 do
                // a block is 8 vectors; quarter q is vectors 2q .. 2q + 1
                let xv = if j * 8 < xb.Length then xb.Slice(j * 8, 8) else Span<Vector256<'T>>.op_Implicit xt
                let yv = if j * 8 < yb.Length then yb.Slice(j * 8, 8) else Span<Vector256<'T>>.op_Implicit yt
                a0 <- Vector256.Add(a0, Vector256.Add(Vector256.Add('Op.V256(xv.[0], yv.[0]), 'Op.V256(xv.[2], yv.[2])),
                                        Vector256.Add('Op.V256(xv.[4], yv.[4]), 'Op.V256(xv.[6], yv.[6]))))
                a1 <- Vector256.Add(a1, Vector256.Add(Vector256.Add('Op.V256(xv.[1], yv.[1]), 'Op.V256(xv.[3], yv.[3])),
                                        Vector256.Add('Op.V256(xv.[5], yv.[5]), 'Op.V256(xv.[7], yv.[7]))))
            Simd.Fold256(Vector256.Add(a0, a1))
        else
            let xb = MemoryMarshal.Cast<'T, Vector128<'T>>(x.Slice(0, full))
            let yb = MemoryMarshal.Cast<'T, Vector128<'T>>(y.Slice(0, full))
            let xt = MemoryMarshal.Cast<'T, Vector128<'T>>(px)
            let yt = MemoryMarshal.Cast<'T, Vector128<'T>>(py)
            let mutable a0 = Vector128<'T>.Zero
            let mutable a1 = Vector128<'T>.Zero
            let mutable a2 = Vector128<'T>.Zero
            let mutable a3 = Vector128<'T>.Zero
            for j in 0 .. blocks - 1 do
                // a block is 16 vectors; quarter q is vectors 4q .. 4q + 3
                let xv = if j * 16 < xb.Length then xb.Slice(j * 16, 16) else Span<Vector128<'T>>.op_Implicit xt
                let yv = if j * 16 < yb.Length then yb.Slice(j * 16, 16) else Span<Vector128<'T>>.op_Implicit yt
                a0 <- Vector128.Add(a0, Vector128.Add(Vector128.Add('Op.V128(xv.[0], yv.[0]), 'Op.V128(xv.[4], yv.[4])),
                                        Vector128.Add('Op.V128(xv.[8], yv.[8]), 'Op.V128(xv.[12], yv.[12]))))
                a1 <- Vector128.Add(a1, Vector128.Add(Vector128.Add('Op.V128(xv.[1], yv.[1]), 'Op.V128(xv.[5], yv.[5])),
                                        Vector128.Add('Op.V128(xv.[9], yv.[9]), 'Op.V128(xv.[13], yv.[13]))))
                a2 <- Vector128.Add(a2, Vector128.Add(Vector128.Add('Op.V128(xv.[2], yv.[2]), 'Op.V128(xv.[6], yv.[6])),
                                        Vector128.Add('Op.V128(xv.[10], yv.[10]), 'Op.V128(xv.[14], yv.[14]))))
                a3 <- Vector128.Add(a3, Vector128.Add(Vector128.Add('Op.V128(xv.[3], yv.[3]), 'Op.V128(xv.[7], yv.[7])),
                                        Vector128.Add('Op.V128(xv.[11], yv.[11]), 'Op.V128(xv.[15], yv.[15]))))
            // lane j plus lane j + half of the 64-byte accumulator: a₀ + a₂ (low half) and a₁ + a₃ (high half)
            Simd.Fold256(Vector256.Create(Vector128.Add(a0, a2), Vector128.Add(a1, a3)))

    /// Σ x (0 for an empty span), in the order of Reduce: the same bits on every processor.
    static member Sum<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>) : 'T =
        Simd.Reduce<'T, FirstOp<'T>>(x, x)

    /// Σ xᵢ·yᵢ (each product rounded, then added in the order of Reduce).
    static member Dot<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
                     (x: ReadOnlySpan<'T>, y: ReadOnlySpan<'T>) : 'T =
        Simd.Check("Dot", x.Length, y.Length, x.Length)
        Simd.Reduce<'T, MultiplyOp<'T>>(x, y)

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
