/// The span loops that replace TensorPrimitives in the hot kernels (Simd): element-wise results against the
/// scalar IEEE operation element by element (bit for bit: each is one correctly rounded operation), exp and log
/// against Math.Exp/Math.Log, reductions against a float64 loop, at every length around the vector widths and in
/// place, with NaN, ±0 and ±∞ among the inputs.
module FunctionalBayes.Tensors.Tests.SimdTests

open System
open System.Numerics.Tensors
open Expecto
open FunctionalBayes.Tensors

/// Lengths 0..40 cover an empty span, spans shorter than one vector and every tail after 1-5 vectors of
/// 2, 4, 8 or 16 lanes; the longer ones the four-vector rounds of Vector512 float32 (64 elements) and the
/// reductions' blocks of 32 float64 and 64 float32 with every kind of remainder.
let private lengths = [ 0 .. 40 ] @ [ 63; 64; 65; 100; 127; 128; 129; 191; 255; 256; 257 ]

let private specials = [| nan; 0.0; -0.0; infinity; -infinity; 1.0; -1.0; 1e-310; 5e300 |]

/// Random values in (−4, 4) with a special value every seventh element.
let private data (seed: int) (n: int) =
    let r = Random(seed)
    Array.init n (fun i -> if i % 7 = 3 then specials.[r.Next specials.Length] else r.NextDouble() * 8.0 - 4.0)

type private Bin<'T> = delegate of ReadOnlySpan<'T> * ReadOnlySpan<'T> * Span<'T> -> unit
type private Un<'T> = delegate of ReadOnlySpan<'T> * Span<'T> -> unit

let private sameF64 (a: float) (b: float) = (Double.IsNaN a && Double.IsNaN b) || BitConverter.DoubleToInt64Bits a = BitConverter.DoubleToInt64Bits b
let private sameF32 (a: float32) (b: float32) = (Single.IsNaN a && Single.IsNaN b) || BitConverter.SingleToInt32Bits a = BitConverter.SingleToInt32Bits b

let private expectSame64 (what: string) (actual: float[]) (expected: float[]) =
    for i in 0 .. expected.Length - 1 do
        if not (sameF64 actual.[i] expected.[i]) then failtestf "%s: element %d of %d is %.17g, expected %.17g" what i expected.Length actual.[i] expected.[i]

let private expectSame32 (what: string) (actual: float32[]) (expected: float32[]) =
    for i in 0 .. expected.Length - 1 do
        if not (sameF32 actual.[i] expected.[i]) then failtestf "%s: element %d of %d is %.9g, expected %.9g" what i expected.Length actual.[i] expected.[i]

/// A binary op in float64 and float32, out of place and in place (the destination is x), against `f` per element.
let private binaryCase (name: string) (vec64: Bin<float>) (vec32: Bin<float32>)
                       (f64: float -> float -> float) (f32: float32 -> float32 -> float32) =
    test name {
        for n in lengths do
            let x = data (n + 1) n
            let y = data (n + 101) n
            let expected = Array.map2 f64 x y
            let d = Array.create (n + 1) 7.0
            vec64.Invoke(ReadOnlySpan x, ReadOnlySpan y, Span(d, 0, n))
            expectSame64 (sprintf "%s float64 n=%d" name n) d expected
            Expect.equal d.[n] 7.0 (sprintf "%s float64 n=%d: nothing written past the destination's range" name n)
            let xi = Array.copy x
            vec64.Invoke(ReadOnlySpan xi, ReadOnlySpan y, Span xi)
            expectSame64 (sprintf "%s float64 n=%d in place" name n) xi expected
            let x32 = Array.map float32 x
            let y32 = Array.map float32 y
            let d32 = Array.zeroCreate n
            vec32.Invoke(ReadOnlySpan x32, ReadOnlySpan y32, Span d32)
            expectSame32 (sprintf "%s float32 n=%d" name n) d32 (Array.map2 f32 x32 y32)
    }

/// A unary op in float64 and float32, out of place and in place.
let private unaryCase (name: string) (vec64: Un<float>) (vec32: Un<float32>)
                      (f64: float -> float) (f32: float32 -> float32) =
    test name {
        for n in lengths do
            let x = data (n + 7) n
            let d = Array.zeroCreate n
            vec64.Invoke(ReadOnlySpan x, Span d)
            expectSame64 (sprintf "%s float64 n=%d" name n) d (Array.map f64 x)
            let xi = Array.copy x
            vec64.Invoke(ReadOnlySpan xi, Span xi)
            expectSame64 (sprintf "%s float64 n=%d in place" name n) xi (Array.map f64 x)
            let x32 = Array.map float32 x
            let d32 = Array.zeroCreate n
            vec32.Invoke(ReadOnlySpan x32, Span d32)
            expectSame32 (sprintf "%s float32 n=%d" name n) d32 (Array.map f32 x32)
    }

/// |a − b| within `ulps` units in the last place of b (equal infinities and both-NaN agree).
let private withinUlps (ulps: float) (a: float) (b: float) =
    (Double.IsNaN a && Double.IsNaN b) || a = b || abs (a - b) <= ulps * (Math.BitIncrement(abs b) - abs b)

let private withinUlps32 (ulps: float) (a: float32) (b: float32) =
    (Single.IsNaN a && Single.IsNaN b) || a = b || float (abs (a - b)) <= ulps * float (MathF.BitIncrement(abs b) - abs b)

[<Tests>]
let tests =
    testList "SimdTests" [
        binaryCase "Add" (Bin(fun x y d -> Simd.Add(x, y, d))) (Bin(fun x y d -> Simd.Add(x, y, d))) (+) (+)
        binaryCase "Subtract" (Bin(fun x y d -> Simd.Subtract(x, y, d))) (Bin(fun x y d -> Simd.Subtract(x, y, d))) (-) (-)
        binaryCase "Multiply" (Bin(fun x y d -> Simd.Multiply(x, y, d))) (Bin(fun x y d -> Simd.Multiply(x, y, d))) ( * ) ( * )
        binaryCase "Divide" (Bin(fun x y d -> Simd.Divide(x, y, d))) (Bin(fun x y d -> Simd.Divide(x, y, d))) (/) (/)
        // Math.Max/Min: NaN propagates and −0 < +0 (TensorPrimitives' and the op table's scalar form)
        binaryCase "Max" (Bin(fun x y d -> Simd.Max(x, y, d))) (Bin(fun x y d -> Simd.Max(x, y, d))) (fun a b -> Math.Max(a, b)) (fun a b -> MathF.Max(a, b))
        binaryCase "Min" (Bin(fun x y d -> Simd.Min(x, y, d))) (Bin(fun x y d -> Simd.Min(x, y, d))) (fun a b -> Math.Min(a, b)) (fun a b -> MathF.Min(a, b))
        binaryCase "Add scalar" (Bin(fun x _ d -> Simd.Add(x, 0.75, d))) (Bin(fun x _ d -> Simd.Add(x, 0.75f, d))) (fun a _ -> a + 0.75) (fun a _ -> a + 0.75f)
        binaryCase "Subtract scalar" (Bin(fun x _ d -> Simd.Subtract(x, 0.75, d))) (Bin(fun x _ d -> Simd.Subtract(x, 0.75f, d))) (fun a _ -> a - 0.75) (fun a _ -> a - 0.75f)
        binaryCase "scalar Subtract" (Bin(fun _ y d -> Simd.Subtract(1.0, y, d))) (Bin(fun _ y d -> Simd.Subtract(1.0f, y, d))) (fun _ b -> 1.0 - b) (fun _ b -> 1.0f - b)
        binaryCase "Multiply scalar" (Bin(fun x _ d -> Simd.Multiply(x, -1.5, d))) (Bin(fun x _ d -> Simd.Multiply(x, -1.5f, d))) (fun a _ -> a * -1.5) (fun a _ -> a * -1.5f)
        binaryCase "Divide scalar" (Bin(fun x _ d -> Simd.Divide(x, 3.0, d))) (Bin(fun x _ d -> Simd.Divide(x, 3.0f, d))) (fun a _ -> a / 3.0) (fun a _ -> a / 3.0f)
        binaryCase "scalar Divide" (Bin(fun _ y d -> Simd.Divide(3.0, y, d))) (Bin(fun _ y d -> Simd.Divide(3.0f, y, d))) (fun _ b -> 3.0 / b) (fun _ b -> 3.0f / b)
        binaryCase "Max scalar" (Bin(fun x _ d -> Simd.Max(x, 0.0, d))) (Bin(fun x _ d -> Simd.Max(x, 0.0f, d))) (fun a _ -> Math.Max(a, 0.0)) (fun a _ -> MathF.Max(a, 0.0f))
        binaryCase "Min scalar" (Bin(fun x _ d -> Simd.Min(x, 0.5, d))) (Bin(fun x _ d -> Simd.Min(x, 0.5f, d))) (fun a _ -> Math.Min(a, 0.5)) (fun a _ -> MathF.Min(a, 0.5f))
        test "MultiplyAdd (spans and scalar) against x·y + z per element" {
            for n in lengths do
                let x, y, z = data (n + 3) n, data (n + 5) n, data (n + 9) n
                let d = Array.zeroCreate n
                Simd.MultiplyAdd(ReadOnlySpan x, ReadOnlySpan y, ReadOnlySpan z, Span d)
                expectSame64 (sprintf "MultiplyAdd n=%d" n) d (Array.init n (fun i -> x.[i] * y.[i] + z.[i]))
                let zi = Array.copy z
                Simd.MultiplyAdd(ReadOnlySpan x, -0.25, ReadOnlySpan zi, Span zi)
                expectSame64 (sprintf "MultiplyAdd scalar n=%d in place" n) zi (Array.init n (fun i -> x.[i] * -0.25 + z.[i]))
                let x32, z32 = Array.map float32 x, Array.map float32 z
                let d32 = Array.zeroCreate n
                Simd.MultiplyAdd(ReadOnlySpan x32, 2.5f, ReadOnlySpan z32, Span d32)
                expectSame32 (sprintf "MultiplyAdd float32 scalar n=%d" n) d32 (Array.init n (fun i -> x32.[i] * 2.5f + z32.[i]))
        }
        unaryCase "Negate" (Un(fun x d -> Simd.Negate(x, d))) (Un(fun x d -> Simd.Negate(x, d))) (fun a -> -a) (fun a -> -a)
        unaryCase "Abs" (Un(fun x d -> Simd.Abs(x, d))) (Un(fun x d -> Simd.Abs(x, d))) abs abs
        unaryCase "Sqrt" (Un(fun x d -> Simd.Sqrt(x, d))) (Un(fun x d -> Simd.Sqrt(x, d))) sqrt sqrt
        test "Exp and Log against Math.Exp/Math.Log within 2 ulp (float32: of the float64 value rounded)" {
            for n in lengths do
                let x = data (n + 11) n
                let e = Array.zeroCreate n
                Simd.Exp(ReadOnlySpan x, Span e)
                for i in 0 .. n - 1 do
                    Expect.isTrue (withinUlps 2.0 e.[i] (Math.Exp x.[i])) (sprintf "exp(%.17g) = %.17g, Math.Exp %.17g (n=%d)" x.[i] e.[i] (Math.Exp x.[i]) n)
                let l = Array.zeroCreate n
                Simd.Log(ReadOnlySpan x, Span l)
                for i in 0 .. n - 1 do
                    Expect.isTrue (withinUlps 2.0 l.[i] (Math.Log x.[i])) (sprintf "log(%.17g) = %.17g, Math.Log %.17g (n=%d)" x.[i] l.[i] (Math.Log x.[i]) n)
                let x32 = Array.map float32 x
                let e32 = Array.zeroCreate n
                Simd.Exp(ReadOnlySpan x32, Span e32)
                let l32 = Array.zeroCreate n
                Simd.Log(ReadOnlySpan x32, Span l32)
                for i in 0 .. n - 1 do
                    Expect.isTrue (withinUlps32 2.0 e32.[i] (float32 (Math.Exp(float x32.[i])))) (sprintf "float32 exp(%.9g) = %.9g (n=%d)" x32.[i] e32.[i] n)
                    Expect.isTrue (withinUlps32 2.0 l32.[i] (float32 (Math.Log(float x32.[i])))) (sprintf "float32 log(%.9g) = %.9g (n=%d)" x32.[i] l32.[i] n)
        }
        test "Exp and Log at the ends of their ranges, outside the support and in place" {
            let x = [| -infinity; infinity; nan; 709.7; 710.0; -745.0; -746.0; 0.0; -0.0; -1.0; 4.9e-324; 1e-310; Double.MaxValue |]
            let e = Array.copy x
            Simd.Exp(ReadOnlySpan e, Span e)
            let l = Array.copy x
            Simd.Log(ReadOnlySpan l, Span l)
            for i in 0 .. x.Length - 1 do
                Expect.isTrue (withinUlps 2.0 e.[i] (Math.Exp x.[i])) (sprintf "exp(%.17g) = %.17g, Math.Exp %.17g" x.[i] e.[i] (Math.Exp x.[i]))
                Expect.isTrue (withinUlps 2.0 l.[i] (Math.Log x.[i])) (sprintf "log(%.17g) = %.17g, Math.Log %.17g" x.[i] l.[i] (Math.Log x.[i]))
        }
        test "float32 Exp over its whole range, subnormal results, overflow and specials within 2 ulp" {
            // every 1/64 from -104 to 89 (subnormal results below -87.3, overflow above 88.72), then specials
            let sweep = Array.init (193 * 64 + 1) (fun i -> -104.0f + float32 i / 64.0f)
            let x = Array.append sweep [| Single.NegativeInfinity; Single.PositiveInfinity; Single.NaN; 0.0f; -0.0f; 88.7228f; 88.7229f; -103.97f; -103.972f; 1e-30f; -1e-30f; -200.0f; 200.0f |]
            let e = Array.copy x
            Simd.Exp(ReadOnlySpan e, Span e)
            for i in 0 .. x.Length - 1 do
                let expected = float32 (Math.Exp(float x.[i]))
                // in the subnormal range an ulp is the fixed 2^-149, so 2 ulp is judged against that spacing
                let ok = withinUlps32 2.0 e.[i] expected || (abs expected < 1.2e-38f && abs (float e.[i] - float expected) <= 2.0 * 1.4012984643e-45)
                Expect.isTrue ok (sprintf "float32 exp(%.9g) = %.9g, Math.Exp %.9g" x.[i] e.[i] expected)
        }
        test "an element's exp and log do not depend on where it falls (body or short tail)" {
            let r = Random(5)
            let x = Array.init 37 (fun _ -> r.NextDouble() * 8.0 - 4.0)
            let whole = Array.zeroCreate 37
            Simd.Exp(ReadOnlySpan x, Span whole)
            let wholeLog = Array.zeroCreate 37
            Simd.Log(ReadOnlySpan x, Span wholeLog)
            for start in 0 .. 36 do
                let one = Array.zeroCreate 1
                Simd.Exp(ReadOnlySpan(x, start, 1), Span one)
                Expect.isTrue (sameF64 one.[0] whole.[start]) (sprintf "exp of element %d alone and in the span" start)
                Simd.Log(ReadOnlySpan(x, start, 1), Span one)
                Expect.isTrue (sameF64 one.[0] wholeLog.[start]) (sprintf "log of element %d alone and in the span" start)
        }
        test "element-wise results have the bits of TensorPrimitives, which they replace (float64 and float32)" {
            for n in lengths do
                let x, y, z = data (n + 21) n, data (n + 22) n, data (n + 23) n
                let pos = x |> Array.map abs
                let a, b = Array.zeroCreate n, Array.zeroCreate n
                let same what = expectSame64 (sprintf "%s n=%d" what n) a b
                Simd.Add(ReadOnlySpan x, ReadOnlySpan y, Span a); TensorPrimitives.Add(ReadOnlySpan x, ReadOnlySpan y, Span b); same "Add"
                Simd.Subtract(0.5, ReadOnlySpan y, Span a); TensorPrimitives.Subtract(0.5, ReadOnlySpan y, Span b); same "Subtract"
                Simd.Multiply(ReadOnlySpan x, ReadOnlySpan y, Span a); TensorPrimitives.Multiply(ReadOnlySpan x, ReadOnlySpan y, Span b); same "Multiply"
                Simd.Divide(ReadOnlySpan x, ReadOnlySpan y, Span a); TensorPrimitives.Divide(ReadOnlySpan x, ReadOnlySpan y, Span b); same "Divide"
                Simd.MultiplyAdd(ReadOnlySpan x, ReadOnlySpan y, ReadOnlySpan z, Span a); TensorPrimitives.MultiplyAdd(ReadOnlySpan x, ReadOnlySpan y, ReadOnlySpan z, Span b); same "MultiplyAdd"
                Simd.MultiplyAdd(ReadOnlySpan x, 1.25, ReadOnlySpan z, Span a); TensorPrimitives.MultiplyAdd(ReadOnlySpan x, 1.25, ReadOnlySpan z, Span b); same "MultiplyAdd scalar"
                Simd.Max(ReadOnlySpan x, ReadOnlySpan y, Span a); TensorPrimitives.Max(ReadOnlySpan x, ReadOnlySpan y, Span b); same "Max"
                Simd.Min(ReadOnlySpan x, 0.0, Span a); TensorPrimitives.Min(ReadOnlySpan x, 0.0, Span b); same "Min scalar"
                Simd.Negate(ReadOnlySpan x, Span a); TensorPrimitives.Negate(ReadOnlySpan x, Span b); same "Negate"
                Simd.Abs(ReadOnlySpan x, Span a); TensorPrimitives.Abs(ReadOnlySpan x, Span b); same "Abs"
                Simd.Sqrt(ReadOnlySpan pos, Span a); TensorPrimitives.Sqrt(ReadOnlySpan pos, Span b); same "Sqrt"
                // exp and log on whole vectors only: TensorPrimitives takes short spans and some tails element by
                // element (Math.Exp), Simd pads them into a vector; and in range only: a vector holding a value out
                // of the vector algorithm's range takes its scalar path as a whole, and TensorPrimitives groups long
                // spans by the destination's alignment, so an element's neighbours there depend on the address
                let xr = x |> Array.map (fun v -> if Double.IsFinite v && abs v < 700.0 then v else 0.5)
                let pr = pos |> Array.map (fun v -> if Double.IsNormal v then v else 0.5)
                if n % 8 = 0 then
                    Simd.Exp(ReadOnlySpan xr, Span a); TensorPrimitives.Exp(ReadOnlySpan xr, Span b); same "Exp"
                    Simd.Log(ReadOnlySpan pr, Span a); TensorPrimitives.Log(ReadOnlySpan pr, Span b); same "Log"
                let x32, p32 = Array.map float32 xr, Array.map float32 pr
                let a32, b32 = Array.zeroCreate n, Array.zeroCreate n
                let same32 what = expectSame32 (sprintf "%s float32 n=%d" what n) a32 b32
                if n % 8 = 0 then
                    // float32 exp is Simd's own kernel (ExpF32Kernel), checked within 2 ulp above, not TensorPrimitives'
                    Simd.Log(ReadOnlySpan p32, Span a32); TensorPrimitives.Log(ReadOnlySpan p32, Span b32); same32 "Log"
                Simd.Max(ReadOnlySpan x32, 0.0f, Span a32); TensorPrimitives.Max(ReadOnlySpan x32, 0.0f, Span b32); same32 "Max scalar"
        }
        test "Sum, Dot and Norm against a float64 loop (tolerance: n·eps·Σ|terms|)" {
            for n in lengths do
                let r = Random(n)
                let x = Array.init n (fun _ -> r.NextDouble() * 2.0 - 1.0)
                let y = Array.init n (fun _ -> r.NextDouble() * 2.0 - 1.0)
                let tol (terms: float[]) = float (n + 1) * 2.3e-16 * (terms |> Array.sumBy abs)
                let mutable s = 0.0
                for v in x do s <- s + v
                Expect.floatClose { absolute = tol x; relative = 0.0 } (Simd.Sum(ReadOnlySpan x)) s (sprintf "Sum n=%d" n)
                let prods = Array.map2 ( * ) x y
                let mutable dot = 0.0
                for v in prods do dot <- dot + v
                Expect.floatClose { absolute = tol prods; relative = 0.0 } (Simd.Dot(ReadOnlySpan x, ReadOnlySpan y)) dot (sprintf "Dot n=%d" n)
                let sq = Array.map (fun v -> v * v) x
                let mutable ss = 0.0
                for v in sq do ss <- ss + v
                Expect.floatClose { absolute = tol sq + 1e-300; relative = 1e-15 } (Simd.Norm(ReadOnlySpan x)) (sqrt ss) (sprintf "Norm n=%d" n)
                let x32 = Array.map float32 x
                let mutable s32 = 0.0
                for v in x32 do s32 <- s32 + float v
                Expect.floatClose { absolute = float (n + 1) * 1.2e-7 * (x32 |> Array.sumBy (fun v -> abs (float v))); relative = 0.0 }
                    (float (Simd.Sum(ReadOnlySpan x32))) s32 (sprintf "Sum float32 n=%d" n)
        }
        test "Max of a span: the largest element, NaN if any is NaN, +0 over −0; an empty span is an error" {
            for n in 1 .. 40 do
                let r = Random(n + 50)
                let x = Array.init n (fun _ -> r.NextDouble() * 10.0 - 5.0)
                Expect.equal (Simd.Max(ReadOnlySpan x)) (Array.max x) (sprintf "Max n=%d" n)
                Expect.equal (Simd.Max(ReadOnlySpan(Array.map float32 x))) (Array.max (Array.map float32 x)) (sprintf "Max float32 n=%d" n)
                for at in 0 .. n - 1 do
                    let xn = Array.copy x
                    xn.[at] <- nan
                    Expect.isTrue (Double.IsNaN(Simd.Max(ReadOnlySpan xn))) (sprintf "Max n=%d with NaN at %d" n at)
            let zeros = [| -0.0; 0.0; -0.0; -0.0; -0.0; -0.0; -0.0; -0.0; -0.0 |]
            Expect.equal (BitConverter.DoubleToInt64Bits(Simd.Max(ReadOnlySpan zeros))) 0L "Max(−0, +0, …) is +0"
            Expect.throwsT<ArgumentException> (fun () -> Simd.Max(ReadOnlySpan(Array.empty<float>)) |> ignore) "an empty span"
        }
        test "Sum and Dot add in their documented order, bit for bit, whatever the instruction set" {
            // the order written out in scalar code: under one block in sequence; else blocks of 256 bytes padded with +0, each block's four
            // quarters as (q0 + q1) + (q2 + q3) into 64 bytes of lanes, then lane j + lane j + half, halving
            let reference (lanes: int) (zero: 'a) (add: 'a -> 'a -> 'a) (terms: 'a[]) =
                let b = 4 * lanes
                // fewer terms than one block: in sequence from +0
                if terms.Length < b then Array.fold add zero terms else
                let acc = Array.create lanes zero
                for blk in 0 .. (terms.Length + b - 1) / b - 1 do
                    let t k = if blk * b + k < terms.Length then terms.[blk * b + k] else zero
                    for j in 0 .. lanes - 1 do
                        acc.[j] <- add acc.[j] (add (add (t j) (t (j + lanes))) (add (t (j + 2 * lanes)) (t (j + 3 * lanes))))
                let mutable v = acc
                while v.Length > 1 do
                    let h = v.Length / 2
                    v <- Array.init h (fun j -> add v.[j] v.[j + h])
                v.[0]
            for n in lengths @ [ 1000; 4097 ] do
                let r = Random(n + 300)
                let x = Array.init n (fun _ -> r.NextDouble() * 2.0 - 1.0)
                let y = Array.init n (fun _ -> r.NextDouble() * 2.0 - 1.0)
                Expect.isTrue (sameF64 (Simd.Sum(ReadOnlySpan x)) (reference 8 0.0 (+) x)) (sprintf "Sum n=%d" n)
                Expect.isTrue (sameF64 (Simd.Dot(ReadOnlySpan x, ReadOnlySpan y)) (reference 8 0.0 (+) (Array.map2 ( * ) x y))) (sprintf "Dot n=%d" n)
                let x32, y32 = Array.map float32 x, Array.map float32 y
                Expect.isTrue (sameF32 (Simd.Sum(ReadOnlySpan x32)) (reference 16 0.0f (+) x32)) (sprintf "Sum float32 n=%d" n)
                Expect.isTrue (sameF32 (Simd.Dot(ReadOnlySpan x32, ReadOnlySpan y32)) (reference 16 0.0f (+) (Array.map2 ( * ) x32 y32))) (sprintf "Dot float32 n=%d" n)
            // NaN and infinities pass through; the +0 padding changes nothing
            Expect.isTrue (Double.IsNaN(Simd.Sum(ReadOnlySpan [| 1.0; nan; 2.0 |]))) "NaN in a sum"
            Expect.equal (Simd.Sum(ReadOnlySpan [| 1.0; infinity; 2.0 |])) infinity "+inf in a sum"
            Expect.isTrue (Double.IsNaN(Simd.Sum(ReadOnlySpan(Array.append (Array.create 40 1.0) [| infinity; -infinity |])))) "inf - inf"
        }
        test "float32 exp and log of an element do not depend on where it falls" {
            let r = Random(6)
            let x = Array.init 75 (fun _ -> float32 (r.NextDouble() * 8.0 - 4.0))
            let pos = x |> Array.map abs
            let whole = Array.zeroCreate 75
            Simd.Exp(ReadOnlySpan x, Span whole)
            let wholeLog = Array.zeroCreate 75
            Simd.Log(ReadOnlySpan pos, Span wholeLog)
            for start in 0 .. 74 do
                for len in [ 1; 3; 5; 9 ] do
                    if start + len <= 75 then
                        let part = Array.zeroCreate len
                        Simd.Exp(ReadOnlySpan(x, start, len), Span part)
                        Expect.isTrue (sameF32 part.[0] whole.[start]) (sprintf "exp of element %d in a span of %d" start len)
                        Simd.Log(ReadOnlySpan(pos, start, len), Span part)
                        Expect.isTrue (sameF32 part.[0] wholeLog.[start]) (sprintf "log of element %d in a span of %d" start len)
        }
        test "outputs above the streaming threshold: the per-element bits at every alignment, nothing past the range, in place too" {
            // float64 and float32 outputs of SimdStreaming.minBytes + a few elements, starting 0 .. 16 elements into
            // their arrays (every head length before the 64-byte boundary), out of place (streamed) and in place (not)
            let n64 = SimdStreaming.minBytes / 8 + 21
            let n32 = SimdStreaming.minBytes / 4 + 37
            let x, y = data 41 (n64 + 16), data 42 (n64 + 16)
            let x32, y32 = Array.map float32 (data 43 (n32 + 16)), Array.map float32 (data 44 (n32 + 16))
            let cases64 : (string * Bin<float> * (float -> float -> float)) list =
                [ "Add", Bin(fun a b d -> Simd.Add(a, b, d)), (+)
                  "Multiply", Bin(fun a b d -> Simd.Multiply(a, b, d)), ( * )
                  "Divide", Bin(fun a b d -> Simd.Divide(a, b, d)), (/)
                  "Min", Bin(fun a b d -> Simd.Min(a, b, d)), (fun a b -> Math.Min(a, b))
                  "Multiply scalar", Bin(fun a _ d -> Simd.Multiply(a, -1.5, d)), (fun a _ -> a * -1.5)
                  "scalar Subtract", Bin(fun _ b d -> Simd.Subtract(1.0, b, d)), (fun _ b -> 1.0 - b) ]
            for off in 0 .. 16 do
                for (name, f, g) in cases64 do
                    let d = Array.create (n64 + 17) 7.0
                    f.Invoke(ReadOnlySpan(x, off, n64), ReadOnlySpan(y, off, n64), Span(d, off, n64))
                    let expected = Array.init (n64 + 17) (fun i -> if i >= off && i < off + n64 then g x.[i] y.[i] else 7.0)
                    expectSame64 (sprintf "%s float64 n=%d at %d" name n64 off) d expected
                    let xi = Array.copy x
                    f.Invoke(ReadOnlySpan(xi, off, n64), ReadOnlySpan(y, off, n64), Span(xi, off, n64))
                    expectSame64 (sprintf "%s float64 n=%d at %d in place" name n64 off) (Array.sub xi off n64) (Array.sub expected off n64)
                let d32 = Array.create (n32 + 17) 7.0f
                Simd.Add(ReadOnlySpan(x32, off, n32), ReadOnlySpan(y32, off, n32), Span(d32, off, n32))
                expectSame32 (sprintf "Add float32 n=%d at %d" n32 off) d32
                    (Array.init (n32 + 17) (fun i -> if i >= off && i < off + n32 then x32.[i] + y32.[i] else 7.0f))
                Simd.Add(ReadOnlySpan(x32, off, n32), 0.25f, Span(d32, off, n32))
                expectSame32 (sprintf "Add scalar float32 n=%d at %d" n32 off) d32
                    (Array.init (n32 + 17) (fun i -> if i >= off && i < off + n32 then x32.[i] + 0.25f else 7.0f))
        }
        testCase "the loops allocate nothing (operator structs, no closures; Debug builds too)" <| fun () ->
            let x, y, z = data 1 1000, data 2 1000, data 3 1000
            let d = Array.zeroCreate 1000
            let x32 = Array.map float32 x
            let d32 = Array.zeroCreate 1000
            let run () =
                Simd.Add(ReadOnlySpan x, ReadOnlySpan y, Span d)
                Simd.Subtract(2.0, ReadOnlySpan y, Span d)
                Simd.Max(ReadOnlySpan x, 0.0, Span d)
                Simd.MultiplyAdd(ReadOnlySpan x, ReadOnlySpan y, ReadOnlySpan z, Span d)
                Simd.MultiplyAdd(ReadOnlySpan x, 0.5, ReadOnlySpan z, Span d)
                Simd.Sqrt(ReadOnlySpan x, Span d)
                Simd.Exp(ReadOnlySpan x, Span d)
                Simd.Log(ReadOnlySpan x32, Span d32)
                Simd.Sum(ReadOnlySpan x) + Simd.Dot(ReadOnlySpan x, ReadOnlySpan y) + float (Simd.Sum(ReadOnlySpan x32))
            run () |> ignore
            let before = GC.GetAllocatedBytesForCurrentThread()
            let mutable s = 0.0
            for _ in 1 .. 10 do s <- s + run ()
            let after = GC.GetAllocatedBytesForCurrentThread()
            Expect.equal (after - before) 0L (sprintf "bytes allocated by 10 rounds of the loops (result %g)" s)
        test "broadcast of a short trailing pattern or one value per row (chunked span calls) equals the op per element" {
            let ops : (string * (Tensor -> Tensor -> Tensor) * (float -> float -> float) * (float32 -> float32 -> float32)) list =
                [ "add", (+), (+), (+)
                  "sub", (-), (-), (-)
                  "mul", ( * ), ( * ), ( * )
                  "div", (/), (/), (/)
                  "maximum", Tensor.maximum, (fun x y -> Math.Max(x, y)), (fun x y -> MathF.Max(x, y))
                  "minimum", Tensor.minimum, (fun x y -> Math.Min(x, y)), (fun x y -> MathF.Min(x, y)) ]
            // (leading shape, last axis): chunks of whole rows, a last chunk shorter, one row, rows longer than a chunk
            let shapes = [ [| 5000 |], 5; [| 7 |], 3; [| 1 |], 4; [| 300 |], 63; [| 33 |], 2; [| 3 |], 64; [| 4; 9 |], 7; [| 2; 3 |], 300 ]
            for (lead, c) in shapes do
                let rows = Array.fold ( * ) 1 lead
                let outShape = Array.append lead [| c |]
                let full = data (rows + c) (rows * c)
                let pat = data (rows + c + 1) c
                let perRow = data (rows + c + 2) rows
                let patShape = Array.append (Array.create lead.Length 1) [| c |]
                let rowShape = Array.append lead [| 1 |]
                for (name, op, f64, f32) in ops do
                    let check what (pShape: int[]) (p: float[]) (valueOf: int -> float) =
                        let at k = valueOf k
                        let tf, tp = Tensor.create outShape full, Tensor.create pShape p
                        expectSame64 (sprintf "%s %s %A float64, pattern right" name what outShape) (Tensor.toArray (op tf tp)) (Array.init full.Length (fun k -> f64 full.[k] (at k)))
                        expectSame64 (sprintf "%s %s %A float64, pattern left" name what outShape) (Tensor.toArray (op tp tf)) (Array.init full.Length (fun k -> f64 (at k) full.[k]))
                        let tf32, tp32 = Tensor.createF32 outShape (Array.map float32 full), Tensor.createF32 pShape (Array.map float32 p)
                        expectSame32 (sprintf "%s %s %A float32, pattern right" name what outShape) (Tensor.toArrayF32 (op tf32 tp32)) (Array.init full.Length (fun k -> f32 (float32 full.[k]) (float32 (at k))))
                        expectSame32 (sprintf "%s %s %A float32, pattern left" name what outShape) (Tensor.toArrayF32 (op tp32 tf32)) (Array.init full.Length (fun k -> f32 (float32 (at k)) (float32 full.[k])))
                    check "trailing" patShape pat (fun k -> pat.[k % c])
                    check "[c] trailing" [| c |] pat (fun k -> pat.[k % c])
                    check "per row" rowShape perRow (fun k -> perRow.[k / c])
        }
        test "Tanh within 2 ulp of Math.Tanh from subnormals to huge, odd, NaN and ±∞ through, wherever an element falls" {
            let r = Random(9)
            let edges = [| 0.0; -0.0; nan; infinity; -infinity; Double.Epsilon; -Double.Epsilon; 1e-310; 2.2250738585072014e-308
                           1e-300; 1e-8; 0.55; Math.BitDecrement 0.55; Math.BitIncrement 0.55; 0.54; 0.56; 1.0; 19.0; 19.06; 19.1
                           20.0; 40.0; 354.9; 355.0; 710.0; 1e300; Double.MaxValue |]
            let xs =
                [| yield! edges
                   yield! edges |> Array.map (fun v -> -v)
                   // log-uniform magnitudes 1e-6 .. 1e2 of either sign, then uniform in (−1, 1) and around the cut
                   for _ in 1 .. 20000 do
                       let m = Math.Pow(10.0, r.NextDouble() * 8.0 - 6.0)
                       yield (if r.Next 2 = 0 then m else -m)
                   for _ in 1 .. 20000 do yield r.NextDouble() * 2.0 - 1.0
                   for _ in 1 .. 5000 do yield 0.5 + r.NextDouble() * 0.1 |]
            let d = Array.zeroCreate xs.Length
            Simd.Tanh(ReadOnlySpan xs, Span d)
            let neg = Array.zeroCreate xs.Length
            Simd.Tanh(ReadOnlySpan(Array.map (fun v -> -v) xs), Span neg)
            let one = Array.zeroCreate 1
            for i in 0 .. xs.Length - 1 do
                let e = Math.Tanh xs.[i]
                Expect.isTrue (withinUlps 2.0 d.[i] e) (sprintf "tanh(%.17g) = %.17g, Math.Tanh %.17g" xs.[i] d.[i] e)
                Expect.isTrue (sameF64 neg.[i] (-d.[i])) (sprintf "tanh(−x) = −tanh(x) at %.17g" xs.[i])
                if i < 200 then
                    Simd.Tanh(ReadOnlySpan(xs, i, 1), Span one)
                    Expect.isTrue (sameF64 one.[0] d.[i]) (sprintf "tanh of element %d alone and in the span" i)
            Expect.isTrue (sameF64 d.[0] 0.0 && sameF64 d.[1] -0.0) "tanh(±0) = ±0"
            Expect.isTrue (Double.IsNaN d.[2]) "tanh(NaN) is NaN"
            Expect.equal (d.[3], d.[4]) (1.0, -1.0) "tanh(±∞) = ±1"
            Expect.equal d.[5] Double.Epsilon "tanh of the smallest subnormal is itself"
        }
        test "lengths that do not match are an error naming the op, before anything is written" {
            let d = Array.create 3 9.0
            let ex = Expect.throwsC (fun () -> Simd.Add(ReadOnlySpan [| 1.0; 2.0; 3.0 |], ReadOnlySpan [| 1.0; 2.0 |], Span d)) id
            Expect.stringContains ex.Message "Simd.Add" "the message names the op"
            Expect.equal d (Array.create 3 9.0) "nothing written"
            let ex2 = Expect.throwsC (fun () -> Simd.Exp(ReadOnlySpan [| 1.0; 2.0; 3.0 |], Span(d, 0, 2))) id
            Expect.stringContains ex2.Message "destination" "a short destination is named"
        }
    ]
