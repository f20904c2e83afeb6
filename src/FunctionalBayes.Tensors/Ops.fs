namespace FunctionalBayes.Tensors

open System
open System.Collections.Generic
open System.Linq.Expressions
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.InteropServices
open Microsoft.FSharp.Quotations
open Microsoft.FSharp.Reflection
open FSharp.Linq.RuntimeHelpers

/// A span kernel of an element-wise op: dst[i] = f src[i].
type internal SpanMap<'T> = delegate of ReadOnlySpan<'T> * Span<'T> -> unit

/// An element-wise op's adjoint over spans, accumulating: acc[i] = accIn[i] + g[i]·f'(x[i]) (accIn and acc
/// are the same memory); `scratch` is free space of the same length.
type internal SpanAdjoint =
    delegate of x: ReadOnlySpan<float> * out: ReadOnlySpan<float> * g: ReadOnlySpan<float> * accIn: ReadOnlySpan<float> * acc: Span<float> * scratch: Span<float> -> unit

/// An element-wise op's forward that also writes its derivative: out[i] = f x[i], kept[i] = f'(x[i]).
type internal SpanKeep = delegate of x: ReadOnlySpan<float> * out: Span<float> * kept: Span<float> -> unit

/// A vector-Jacobian product written once, as data: an expression in the output's cotangent G, the
/// inputs X and Y, the output Out and the element-wise ops. The tape reads it as tensor ops (so it can
/// be differentiated again), the compiler as expressions of its generated code, the compiled kernels
/// as a scalar function compiled from those expressions.
[<RequireQualifiedAccess>]
type internal Rule =
    | G
    | X
    | Y
    | Out
    | Num of float
    | Plus of Rule * Rule
    | Minus of Rule * Rule
    | Times of Rule * Rule
    | Over of Rule * Rule
    | Negate of Rule
    | Apply of UnaryOp * Rule
    /// A binary op applied (Pow; a special function's rule evaluating the function itself).
    | ApplyBinary of BinaryOp * Rule * Rule
    /// if a (cmp) b then t else e
    | If of CompareOp * Rule * Rule * Rule * Rule
    /// t where the mask of a `where` (its first input) is set, else e: the `where` op itself, applied to
    /// that mask (a rule of `where` only).
    | Select of Rule * Rule

/// Where an op is smooth: the tests draw their random points there.
type internal Domain =
    | Real
    | Positive

/// A composite that the ONNX exporter writes out itself: ONNX Runtime's CPU provider has no float64 kernel
/// for Softplus and Erf, so float64 exports build them from ops it has.
[<RequireQualifiedAccess>]
type internal OnnxComposite =
    | Softplus64
    | Erf64
    | Erfc64

/// An element-wise op as ONNX operators, as data: the exporter derives every op's nodes from it.
[<RequireQualifiedAccess>]
type internal OnnxForm =
    /// The op's k-th input.
    | Input of int
    /// An optional input left out.
    | Omitted
    /// A scalar constant.
    | Const of float
    /// An ONNX operator over its arguments.
    | Node of op: string * args: OnnxForm list
    /// One form for float64 exports, another for float32 ones.
    | ByPrecision of float64: OnnxForm * float32: OnnxForm
    | Composite of OnnxComposite * OnnxForm
    /// The op has no ONNX form (why).
    | Unsupported of string

/// Everything about one element-wise unary op, declared once (see `Ops.declareUnary`).
type internal UnaryDecl =
    { /// The value at one element (the compiler inlines it; kernels call its compiled form).
      Scalar: Expr<float -> float>
      /// The same over spans, float64 and float32 (the tape's and the compiled kernels' forward).
      Span64: SpanMap<float>
      Span32: SpanMap<float32>
      /// g · d out/d x; Error: why there is none.
      Vjp: Result<Rule, string>
      /// A one-pass form of the same adjoint over spans, where the generic one is slow (optional).
      Adjoint: SpanAdjoint voption
      /// A forward (float64) that also writes the derivative f'(x) (bits as the rule's) into `kept`, from what it
      /// computes anyway (softplus: σ(x) from its e^(−|x|)). Optional. The compiled program runs it where it runs
      /// the adjoint, into the scratch, which `Adjoint` then reads as this forward left it; the tape keeps it at
      /// first order and multiplies the cotangent by it.
      KeepForAdjoint: SpanKeep voption
      Domain: Domain
      /// How the ONNX exporter writes it.
      Onnx: OnnxForm }

/// Everything about one broadcasting binary op that is not its span kernel (Cpu.binaryRow, generic
/// over float32 and float64).
type internal BinaryDecl =
    { Scalar: Expr<float -> float -> float>
      /// The adjoints of x and of y (before summing over broadcast axes).
      VjpX: Rule
      VjpY: Rule
      /// Where the op is smooth in x and in y.
      Domain: Domain
      DomainY: Domain
      /// How the ONNX exporter writes it (its operators broadcast like ours).
      Onnx: OnnxForm }

/// A comparison over spans: r[i] = x[i·xStep] (rel) y[i·yStep], each step 1 or 0 (one value, repeated).
type internal SpanCompare<'T> = delegate of x: ReadOnlySpan<'T> * xStep: int * y: ReadOnlySpan<'T> * yStep: int * r: Span<bool> -> unit

/// Everything about one comparison, declared once. A comparison has no derivative; its result is a
/// bool mask (1 or 0 in compiled programs).
type internal CompareDecl =
    { /// The relation at one element (the compiler inlines it; kernels and rules' `If` call its forms).
      Scalar: Expr<float -> float -> bool>
      /// The same over spans, float64 and float32 (the tape's forward).
      Span64: SpanCompare<float>
      Span32: SpanCompare<float32>
      /// How the ONNX exporter writes it.
      Onnx: OnnxForm }

/// `where` over spans with a float mask (0: unset; anything else, NaN too, set): out[i] = x[i] where the
/// mask is set, else y[i] (y: as many elements, or one, repeated).
type internal SpanSelect = delegate of mask: ReadOnlySpan<float> * x: ReadOnlySpan<float> * y: ReadOnlySpan<float> * out: Span<float> -> unit

/// One branch's adjoint of `where` over spans, accumulating: acc[i] += g[i] where the branch was taken
/// (acc keeps its bits elsewhere).
type internal SpanMaskedAdd = delegate of mask: ReadOnlySpan<float> * g: ReadOnlySpan<float> * acc: Span<float> -> unit

/// where(mask, x, y), declared once. The tape holds the mask as bools, compiled programs as floats (0:
/// unset; anything else, NaN too, set). In its rules X is x, Y is y and `Rule.Select` reads the mask.
type internal WhereDecl =
    { /// The value at one element: mask, x, y -> x where the mask is set, else y.
      Scalar: Expr<float -> float -> float -> float>
      /// The same over spans (the compiled kernel's forward; the tape's is `Ops.whereSpan`).
      Span: SpanSelect
      /// The adjoints of x and of y (before summing over broadcast axes).
      VjpX: Rule
      VjpY: Rule
      /// The same adjoints over spans, in one pass each.
      AdjointX: SpanMaskedAdd
      AdjointY: SpanMaskedAdd
      Onnx: OnnxForm }

/// clamp over spans: out[i] = min(max(x[i], lo), hi).
type internal SpanClamp<'T> = delegate of lo: 'T * hi: 'T * x: ReadOnlySpan<'T> * out: Span<'T> -> unit

/// clamp's adjoint over spans, accumulating: acc[i] += g[i] where x[i] is not outside [lo, hi]
/// (acc keeps its bits elsewhere).
type internal SpanClampAdjoint = delegate of lo: float * hi: float * x: ReadOnlySpan<float> * g: ReadOnlySpan<float> * acc: Span<float> -> unit

/// clamp(x, lo, hi), declared once; lo and hi are the op's attributes.
type internal ClampDecl =
    { /// The value at one element: lo, hi, x -> min(max(x, lo), hi).
      Scalar: Expr<float -> float -> float -> float>
      /// The same over spans, float64 and float32.
      Span64: SpanClamp<float>
      Span32: SpanClamp<float32>
      /// g · d out/d x for given lo and hi.
      Vjp: float -> float -> Rule
      /// The same adjoint over spans, in one pass.
      Adjoint: SpanClampAdjoint
      /// How the ONNX exporter writes it, for given lo and hi.
      Onnx: float -> float -> OnnxForm }

/// A declared op with the forms derived from its declaration (compiled once, on first use).
[<Sealed>]
type internal UnaryInfo(op: UnaryOp, decl: UnaryDecl, lambda: LambdaExpression, vjp: Lazy<Func<float, float, float, float>>, element: Lazy<Func<float, float>>) =
    member _.Op = op
    member _.Decl = decl
    /// The element form as an expression of one parameter.
    member _.Lambda = lambda
    /// (g, x, out) -> g · d out/d x, compiled from the rule (NaN-free callers only: raises without a rule).
    member _.VjpScalar = vjp.Value
    member _.Element = element.Value

[<Sealed>]
type internal BinaryInfo(op: BinaryOp, decl: BinaryDecl, lambda: LambdaExpression,
                         vjpX: Lazy<Func<float, float, float, float, float>>, vjpY: Lazy<Func<float, float, float, float, float>>,
                         element: Lazy<Func<float, float, float>>) =
    member _.Op = op
    member _.Decl = decl
    member _.Lambda = lambda
    /// (g, x, y, out) -> the adjoint of x.
    member _.VjpXScalar = vjpX.Value
    member _.VjpYScalar = vjpY.Value
    member _.Element = element.Value

/// A declaration (of a comparison, where or clamp) with its element form, as an expression and
/// compiled (once, on first use).
[<Sealed>]
type internal Declared<'D, 'E>(decl: 'D, lambda: LambdaExpression, element: Lazy<'E>) =
    member _.Decl = decl
    /// The element form as an expression of its parameters.
    member _.Lambda = lambda
    member _.Element = element.Value

/// A rule of `where` compiled: (g, mask, x, y, out) -> its value.
type internal WhereRuleFunc = Func<float, float, float, float, float, float>

/// The op table: each element-wise op's value, span kernels and derivative, declared once. The tape
/// (Prim), the CPU backend, the compiler and the compiled kernels all read these declarations.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal Ops =

    // ---- span kernels that are more than one call --------------------------------------------

    let private signSpan (s: ReadOnlySpan<float>) (d: Span<float>) =
        for i in 0 .. s.Length - 1 do
            let v = s.[i]
            d.[i] <- if Double.IsNaN v then v else float (Math.Sign v)

    let private signSpanF32 (s: ReadOnlySpan<float32>) (d: Span<float32>) =
        for i in 0 .. s.Length - 1 do
            let v = s.[i]
            d.[i] <- if Single.IsNaN v then v else float32 (Math.Sign v)

    /// tanh of a float32 span through the float64 SIMD kernel in blocks of 256 (widened into a pooled
    /// buffer, narrowed once): float32 Tanh is ~10 ulp off near zero; this is correctly rounded nearly always.
    let private tanhF32 (s: ReadOnlySpan<float32>) (d: Span<float32>) =
        let buf = Buffers.ArrayPool<float>.Shared.Rent 256
        let mutable i = 0
        while i < s.Length do
            let len = min 256 (s.Length - i)
            for j in 0 .. len - 1 do
                buf.[j] <- float s.[i + j]
            TensorPrimitives.Tanh(ReadOnlySpan<float>(buf, 0, len), Span<float>(buf, 0, len))
            for j in 0 .. len - 1 do
                d.[i + j] <- float32 buf.[j]
            i <- i + len
        Buffers.ArrayPool<float>.Shared.Return buf

    /// acc += g · (1 − out²), the adjoint of tanh, in one pass.
    let private tanhAdjoint (out: ReadOnlySpan<float>) (g: ReadOnlySpan<float>) (accIn: ReadOnlySpan<float>) (acc: Span<float>) =
        let n = out.Length
        let w = Vector<float>.Count
        let one = Vector<float>.One
        let mutable i = 0
        if Vector.IsHardwareAccelerated then
            let vo = MemoryMarshal.Cast<float, Vector<float>> out
            let vg = MemoryMarshal.Cast<float, Vector<float>> g
            let vi = MemoryMarshal.Cast<float, Vector<float>> accIn
            let va = MemoryMarshal.Cast<float, Vector<float>> acc
            for j in 0 .. vo.Length - 1 do
                let oj = vo.[j]
                va.[j] <- vi.[j] + vg.[j] * (one - oj * oj)
            i <- vo.Length * w
        while i < n do
            acc.[i] <- accIn.[i] + g.[i] * (1.0 - out.[i] * out.[i])
            i <- i + 1

    /// r[i] = f x[i·xs] y[i·ys]: a comparison's span form (steps 1 or 0).
    let inline private compareSpan ([<InlineIfLambda>] f: 'T -> 'T -> bool) (x: ReadOnlySpan<'T>) (xs: int) (y: ReadOnlySpan<'T>) (ys: int) (r: Span<bool>) =
        for i in 0 .. r.Length - 1 do
            r.[i] <- f x.[i * xs] y.[i * ys]

    /// `where`'s span form over a float mask (see SpanSelect): vectors, lanes whose mask is 0 take y.
    let private selectSpan (ms: ReadOnlySpan<float>) (xs: ReadOnlySpan<float>) (ys: ReadOnlySpan<float>) (os: Span<float>) =
        let n = os.Length
        let w = Vector<float>.Count
        let mutable i = 0
        if ys.Length = 1 && n > 1 then
            let yv = ys.[0]
            let yb = Vector<float>(yv)
            while i + w <= n do
                Vector.ConditionalSelect(Vector.Equals(Vector<float>(ms.Slice i), Vector<float>.Zero), yb, Vector<float>(xs.Slice i)).CopyTo(os.Slice i)
                i <- i + w
            while i < n do
                os.[i] <- if ms.[i] <> 0.0 then xs.[i] else yv
                i <- i + 1
        else
            while i + w <= n do
                Vector.ConditionalSelect(Vector.Equals(Vector<float>(ms.Slice i), Vector<float>.Zero), Vector<float>(ys.Slice i), Vector<float>(xs.Slice i)).CopyTo(os.Slice i)
                i <- i + w
            while i < n do
                os.[i] <- if ms.[i] <> 0.0 then xs.[i] else ys.[i]
                i <- i + 1

    /// acc[i] += g[i] where the float mask is set (`whenSet`) or unset; elsewhere acc keeps its bits.
    let private maskedAdd (whenSet: bool) (ms: ReadOnlySpan<float>) (gs: ReadOnlySpan<float>) (acc: Span<float>) =
        let n = acc.Length
        let w = Vector<float>.Count
        let mutable i = 0
        while i + w <= n do
            let old = Vector<float>(Span<float>.op_Implicit (acc.Slice i))
            let unset = Vector.Equals(Vector<float>(ms.Slice i), Vector<float>.Zero)
            let added = old + Vector<float>(gs.Slice i)
            (if whenSet then Vector.ConditionalSelect(unset, old, added) else Vector.ConditionalSelect(unset, added, old)).CopyTo(acc.Slice i)
            i <- i + w
        while i < n do
            if (ms.[i] <> 0.0) = whenSet then acc.[i] <- acc.[i] + gs.[i]
            i <- i + 1

    /// acc[i] += g[i] where x[i] is not outside [lo, hi] (NaN is not outside); elsewhere acc keeps its bits.
    let private clampAdjoint (lo: float) (hi: float) (xs: ReadOnlySpan<float>) (gs: ReadOnlySpan<float>) (acc: Span<float>) =
        let n = acc.Length
        let w = Vector<float>.Count
        let vlo = Vector<float>(lo)
        let vhi = Vector<float>(hi)
        let mutable i = 0
        while i + w <= n do
            let xv = Vector<float>(xs.Slice i)
            let outside = Vector.BitwiseOr(Vector.LessThan(xv, vlo), Vector.GreaterThan(xv, vhi))
            let old = Vector<float>(Span<float>.op_Implicit (acc.Slice i))
            Vector.ConditionalSelect(outside, old, old + Vector<float>(gs.Slice i)).CopyTo(acc.Slice i)
            i <- i + w
        while i < n do
            let xv = xs.[i]
            if not (xv < lo) && not (xv > hi) then acc.[i] <- acc.[i] + gs.[i]
            i <- i + 1

    /// `where` over a bool mask, for any dtype (the tape's form): r[i] = x[i·xs] where m[i], else y[i·ys]
    /// (steps 1 or 0).
    let whereSpan (m: ReadOnlySpan<bool>) (x: ReadOnlySpan<'T>) (xs: int) (y: ReadOnlySpan<'T>) (ys: int) (r: Span<'T>) =
        for i in 0 .. r.Length - 1 do
            r.[i] <- if m.[i] then x.[i * xs] else y.[i * ys]

    // ---- the declarations -----------------------------------------------------------------------

    let private g = Rule.G
    let private x = Rule.X
    let private out = Rule.Out
    let private num v = Rule.Num v
    let private times a b = Rule.Times (a, b)

    /// Each unary op, declared once. A new op is a case of UnaryOp plus one entry here.
    let private declareUnary (u: UnaryOp) : UnaryDecl =
        let plain scalar s64 s32 vjp domain onnx : UnaryDecl =
            { Scalar = scalar; Span64 = s64; Span32 = s32; Vjp = Ok vjp; Adjoint = ValueNone; KeepForAdjoint = ValueNone; Domain = domain; Onnx = onnx }
        let node op args = OnnxForm.Node (op, args)
        let inp = OnnxForm.Input 0
        let c v = OnnxForm.Const v
        let noGamma = OnnxForm.Unsupported "the ONNX operator set has no log-gamma or polygamma"
        match u with
        | Neg ->
            { plain <@ fun v -> -v @> (SpanMap<float>(fun s d -> Simd.Negate(s, d))) (SpanMap<float32>(fun s d -> Simd.Negate(s, d)))
                    (Rule.Negate g) Real (node "Neg" [ inp ]) with
                Adjoint = ValueSome (SpanAdjoint(fun _ _ gr accIn acc _ -> Simd.Subtract(accIn, gr, acc))) }
        | Exp ->
            { plain <@ fun v -> Math.Exp v @> (SpanMap<float>(fun s d -> Simd.Exp(s, d))) (SpanMap<float32>(fun s d -> Simd.Exp(s, d)))
                    (times g out) Real (node "Exp" [ inp ]) with
                Adjoint = ValueSome (SpanAdjoint(fun _ o gr accIn acc _ -> Simd.MultiplyAdd(gr, o, accIn, acc))) }
        | Log ->
            { plain <@ fun v -> Math.Log v @> (SpanMap<float>(fun s d -> Simd.Log(s, d))) (SpanMap<float32>(fun s d -> Simd.Log(s, d)))
                    (Rule.Over (g, x)) Positive (node "Log" [ inp ]) with
                Adjoint = ValueSome (SpanAdjoint(fun xs _ gr accIn acc t ->
                                        Simd.Divide(gr, xs, t)
                                        Simd.Add(accIn, Span<float>.op_Implicit t, acc))) }
        | Log1p ->
            plain <@ fun v -> Special.log1p v @> (SpanMap<float>(fun s d -> Special.log1pSpan s d)) (SpanMap<float32>(fun s d -> Special.log1pSpanF32 s d))
                  (Rule.Over (g, Rule.Plus (x, num 1.0))) Positive (node "Log" [ node "Add" [ inp; c 1.0 ] ])
        | Expm1 ->
            plain <@ fun v -> Special.expm1 v @> (SpanMap<float>(fun s d -> Special.expm1Span s d)) (SpanMap<float32>(fun s d -> Special.expm1SpanF32 s d))
                  (times g (Rule.Plus (out, num 1.0))) Real (node "Sub" [ node "Exp" [ inp ]; c 1.0 ])
        | Sqrt ->
            plain <@ fun v -> Math.Sqrt v @> (SpanMap<float>(fun s d -> Simd.Sqrt(s, d))) (SpanMap<float32>(fun s d -> Simd.Sqrt(s, d)))
                  (Rule.Over (times g (num 0.5), out)) Positive (node "Sqrt" [ inp ])
        | Abs ->
            plain <@ fun v -> Math.Abs v @> (SpanMap<float>(fun s d -> Simd.Abs(s, d))) (SpanMap<float32>(fun s d -> Simd.Abs(s, d)))
                  (times g (Rule.Apply (Sign, x))) Real (node "Abs" [ inp ])
        | Sign ->
            // NaN passes through
            plain <@ fun v -> if Double.IsNaN v then v else float (Math.Sign v) @> (SpanMap<float>(fun s d -> signSpan s d)) (SpanMap<float32>(fun s d -> signSpanF32 s d))
                  (times g (num 0.0)) Real (node "Sign" [ inp ])
        | Tanh ->
            { plain <@ fun v -> Math.Tanh v @> (SpanMap<float>(fun s d -> TensorPrimitives.Tanh(s, d))) (SpanMap<float32>(fun s d -> tanhF32 s d))
                    (times g (Rule.Minus (num 1.0, times out out))) Real (node "Tanh" [ inp ]) with
                Adjoint = ValueSome (SpanAdjoint(fun _ o gr accIn acc _ -> tanhAdjoint o gr accIn acc)) }
        | Sigmoid ->
            { plain <@ fun v -> Special.sigmoid v @> (SpanMap<float>(fun s d -> Special.sigmoidSpan s d)) (SpanMap<float32>(fun s d -> Special.sigmoidSpanF32 s d))
                    (times g (times out (Rule.Minus (num 1.0, out)))) Real (node "Sigmoid" [ inp ]) with
                Adjoint = ValueSome (SpanAdjoint(fun _ o gr accIn acc t ->
                                        Simd.Subtract(1.0, o, t)
                                        Simd.Multiply(o, Span<float>.op_Implicit t, t)
                                        Simd.MultiplyAdd(gr, Span<float>.op_Implicit t, accIn, acc))) }
        | Softplus ->
            { plain <@ fun v -> Special.softplus v @> (SpanMap<float>(fun s d -> Special.softplusSpan s d)) (SpanMap<float32>(fun s d -> Special.softplusSpanF32 s d))
                    (times g (Rule.Apply (Sigmoid, x))) Real (OnnxForm.ByPrecision (OnnxForm.Composite (OnnxComposite.Softplus64, inp), node "Softplus" [ inp ])) with
                // σ(x), kept by the forward in the scratch
                Adjoint = ValueSome (SpanAdjoint(fun _ _ gr accIn acc t -> Simd.MultiplyAdd(gr, Span<float>.op_Implicit t, accIn, acc)))
                KeepForAdjoint = ValueSome (SpanKeep(fun xs o t -> Special.softplusSigmoidSpan xs o t)) }
        | Relu ->
            plain <@ fun v -> Math.Max(v, 0.0) @> (SpanMap<float>(fun s d -> Simd.Max(s, 0.0, d))) (SpanMap<float32>(fun s d -> Simd.Max(s, 0.0f, d)))
                  (Rule.If (Gt, x, num 0.0, g, num 0.0)) Real (node "Relu" [ inp ])
        | Lgamma ->
            plain <@ fun v -> Special.lgamma v @> (SpanMap<float>(fun s d -> Special.lgammaSpan s d)) (SpanMap<float32>(fun s d -> Special.lgammaSpanF32 s d))
                  (times g (Rule.Apply (Digamma, x))) Positive noGamma
        | Digamma ->
            plain <@ fun v -> Special.digamma v @> (SpanMap<float>(fun s d -> Special.digammaSpan s d)) (SpanMap<float32>(fun s d -> Special.digammaSpanF32 s d))
                  (times g (Rule.Apply (Trigamma, x))) Positive noGamma
        | Trigamma ->
            { plain <@ fun v -> Special.trigamma v @> (SpanMap<float>(fun s d -> Special.trigammaSpan s d)) (SpanMap<float32>(fun s d -> Special.trigammaSpanF32 s d))
                    (num 0.0) Positive noGamma with
                Vjp = Error "trigamma: its derivative (tetragamma) is not implemented; differentiate lgamma at most twice." }
        | Erf ->
            plain <@ fun v -> Special.erf v @> (SpanMap<float>(fun s d -> Special.erfSpan s d)) (SpanMap<float32>(fun s d -> Special.erfSpanF32 s d))
                  (times g (times (Rule.Apply (Exp, Rule.Negate (times x x))) (num (2.0 / sqrt Math.PI)))) Real
                  (OnnxForm.ByPrecision (OnnxForm.Composite (OnnxComposite.Erf64, inp), node "Erf" [ inp ]))
        | Erfc ->
            plain <@ fun v -> Special.erfc v @> (SpanMap<float>(fun s d -> Special.erfcSpan s d)) (SpanMap<float32>(fun s d -> Special.erfcSpanF32 s d))
                  (times g (times (Rule.Apply (Exp, Rule.Negate (times x x))) (num (-2.0 / sqrt Math.PI)))) Real
                  (OnnxForm.ByPrecision (OnnxForm.Composite (OnnxComposite.Erfc64, inp), node "Sub" [ c 1.0; node "Erf" [ inp ] ]))
        | NormalCdf ->
            plain <@ fun v -> Special.normalCdf v @> (SpanMap<float>(fun s d -> Special.normalCdfSpan s d)) (SpanMap<float32>(fun s d -> Special.normalCdfSpanF32 s d))
                  (times g (times (Rule.Apply (Exp, times (times x x) (num -0.5))) (num (1.0 / sqrt (2.0 * Math.PI))))) Real
                  // Φ(x) = erfc(−x/√2)/2 in float64, accurate in the left tail
                  (OnnxForm.ByPrecision (node "Mul" [ c 0.5; OnnxForm.Composite (OnnxComposite.Erfc64, node "Mul" [ inp; c (-1.0 / sqrt 2.0) ]) ],
                                         node "Mul" [ c 0.5; node "Add" [ c 1.0; node "Erf" [ node "Mul" [ inp; c (1.0 / sqrt 2.0) ] ] ] ]))
        | Atan ->
            plain <@ fun v -> Math.Atan v @> (SpanMap<float>(fun s d -> TensorPrimitives.Atan(s, d))) (SpanMap<float32>(fun s d -> TensorPrimitives.Atan(s, d)))
                  (Rule.Over (g, Rule.Plus (num 1.0, times x x))) Real
                  (OnnxForm.ByPrecision (OnnxForm.Unsupported "ONNX Runtime's Atan has float32 kernels only; export the model in float32", node "Atan" [ inp ]))

        | Sin ->
            plain <@ fun v -> Math.Sin v @> (SpanMap<float>(fun s d -> TensorPrimitives.Sin(s, d))) (SpanMap<float32>(fun s d -> TensorPrimitives.Sin(s, d)))
                  (times g (Rule.Apply (Cos, x))) Real (node "Sin" [ inp ])
        | Cos ->
            plain <@ fun v -> Math.Cos v @> (SpanMap<float>(fun s d -> TensorPrimitives.Cos(s, d))) (SpanMap<float32>(fun s d -> TensorPrimitives.Cos(s, d)))
                  (Rule.Negate (times g (Rule.Apply (Sin, x)))) Real (node "Cos" [ inp ])

    /// The relative step of `shapeDerivative`: its error is O(step⁶·yᶦ|f⁽⁷⁾|) from truncation (the CDFs are
    /// analytic in the shape; log P(a, x) varies on the scale 1/|log x| in a, so x = 1e−30 is the steep
    /// case: ~1e−11) and O(1e−14/step) relative from the rounding of the values, ~1e−11.
    [<Literal>]
    let private ShapeStep = 1e-3

    /// d op(x, y)/dy by the sixth-order central difference with step h = ShapeStep·y,
    /// (45(f₁ − f₋₁) − 9(f₂ − f₋₂) + (f₃ − f₋₃))/(60h), fₖ = op(x, y + k h): the derivative of an incomplete
    /// beta or gamma in its shape parameter has no closed form. Deterministic and smooth in y, so HMC stays
    /// exact (the leapfrog map stays reversible and volume-preserving; the accept step uses the exact density).
    let private shapeDerivative (b: BinaryOp) =
        let y = Rule.Y
        let h = times (num ShapeStep) y
        let diff (k: float) = Rule.Minus (Rule.ApplyBinary (b, x, Rule.Plus (y, times (num k) h)), Rule.ApplyBinary (b, x, Rule.Minus (y, times (num k) h)))
        let sum = Rule.Plus (Rule.Minus (times (num 45.0) (diff 1.0), times (num 9.0) (diff 2.0)), diff 3.0)
        Rule.Over (sum, times (num 60.0) h)

    /// r where the op's output (a log probability) is finite, else 0: at −inf the CDF is 0 and flat.
    let private finiteOut (r: Rule) = Rule.If (Gt, out, num Double.NegativeInfinity, r, num 0.0)

    /// Each binary op's element value and adjoints, declared once.
    let private declareBinary (b: BinaryOp) : BinaryDecl =
        let y = Rule.Y
        let onnx op = OnnxForm.Node (op, [ OnnxForm.Input 0; OnnxForm.Input 1 ])
        match b with
        | Add -> { Scalar = <@ fun p q -> p + q @>; VjpX = g; VjpY = g; Domain = Real; DomainY = Real; Onnx = onnx "Add" }
        | Sub -> { Scalar = <@ fun p q -> p - q @>; VjpX = g; VjpY = Rule.Negate g; Domain = Real; DomainY = Real; Onnx = onnx "Sub" }
        | Mul -> { Scalar = <@ fun p q -> p * q @>; VjpX = times g y; VjpY = times g x; Domain = Real; DomainY = Real; Onnx = onnx "Mul" }
        | Div -> { Scalar = <@ fun p q -> p / q @>; VjpX = Rule.Over (g, y); VjpY = Rule.Negate (Rule.Over (times g out, y)); Domain = Real; DomainY = Real; Onnx = onnx "Div" }
        | Pow ->
            // y·x^(y−1), and out·log x for x > 0 (the log of a safe x elsewhere, where the adjoint is 0)
            { Scalar = <@ fun p q -> if q = 2.0 then p * p else Math.Pow(p, q) @>
              VjpX = times g (times y (Rule.ApplyBinary (Pow, x, Rule.Minus (y, num 1.0))))
              VjpY = times g (Rule.If (Gt, x, num 0.0, times out (Rule.Apply (Log, Rule.If (Gt, x, num 0.0, x, num 1.0))), num 0.0))
              Domain = Positive
              DomainY = Real
              Onnx = onnx "Pow" }
        | Maximum -> { Scalar = <@ fun p q -> Math.Max(p, q) @>; VjpX = Rule.If (Ge, x, y, g, num 0.0); VjpY = Rule.If (Ge, x, y, num 0.0, g); Domain = Real; DomainY = Real; Onnx = onnx "Max" }
        | Minimum -> { Scalar = <@ fun p q -> Math.Min(p, q) @>; VjpX = Rule.If (Le, x, y, g, num 0.0); VjpY = Rule.If (Le, x, y, num 0.0, g); Domain = Real; DomainY = Real; Onnx = onnx "Min" }
        | StudentTLogCdf ->
            // d/dt log F = f(t)/F(t) = exp(log f − out); log f(t; ν) = lgamma((ν+1)/2) − lgamma(ν/2) − ½log(πν) − (ν+1)/2·log1p(t²/ν)
            let half r = times (num 0.5) r
            let logPdf =
                Rule.Minus (Rule.Minus (Rule.Minus (Rule.Apply (Lgamma, half (Rule.Plus (y, num 1.0))), Rule.Apply (Lgamma, half y)),
                                        half (Rule.Apply (Log, times (num Math.PI) y))),
                            times (half (Rule.Plus (y, num 1.0))) (Rule.Apply (Log1p, Rule.Over (times x x, y))))
            { Scalar = <@ fun p q -> Special.studentTLogCdf p q @>
              VjpX = finiteOut (times g (Rule.Apply (Exp, Rule.Minus (logPdf, out))))
              VjpY = finiteOut (times g (shapeDerivative StudentTLogCdf))
              Domain = Real
              DomainY = Positive
              Onnx = OnnxForm.Unsupported "the ONNX operator set has no incomplete beta function" }
        | GammaLogP | GammaLogQ ->
            // d/dx log P = p(x)/P = exp(log p − out), d/dx log Q = −exp(log p − out), log p(x; a) = (a−1)log x − x − lgamma a;
            // 0 at x ≤ 0, where P = 0 and Q = 1 are constant
            let logPdf = Rule.Minus (Rule.Minus (times (Rule.Minus (y, num 1.0)) (Rule.Apply (Log, x)), x), Rule.Apply (Lgamma, y))
            let slope = Rule.Apply (Exp, Rule.Minus (logPdf, out))
            let positiveX r = Rule.If (Gt, x, num 0.0, r, num 0.0)
            { Scalar = (if b = GammaLogP then <@ fun p q -> Special.gammaLogP p q @> else <@ fun p q -> Special.gammaLogQ p q @>)
              VjpX = positiveX (finiteOut (times g (if b = GammaLogP then slope else Rule.Negate slope)))
              VjpY = finiteOut (times g (shapeDerivative b))
              Domain = Positive
              DomainY = Positive
              Onnx = OnnxForm.Unsupported "the ONNX operator set has no incomplete gamma function" }

    /// Each comparison, declared once.
    let private declareCompare (c: CompareOp) : CompareDecl =
        let onnx op = OnnxForm.Node (op, [ OnnxForm.Input 0; OnnxForm.Input 1 ])
        let decl scalar s64 s32 form : CompareDecl = { Scalar = scalar; Span64 = s64; Span32 = s32; Onnx = form }
        match c with
        | Lt ->
            decl <@ fun p q -> p < q @> (SpanCompare<float>(fun x xs y ys r -> compareSpan (fun p q -> p < q) x xs y ys r))
                 (SpanCompare<float32>(fun x xs y ys r -> compareSpan (fun p q -> p < q) x xs y ys r)) (onnx "Less")
        | Le ->
            decl <@ fun p q -> p <= q @> (SpanCompare<float>(fun x xs y ys r -> compareSpan (fun p q -> p <= q) x xs y ys r))
                 (SpanCompare<float32>(fun x xs y ys r -> compareSpan (fun p q -> p <= q) x xs y ys r)) (onnx "LessOrEqual")
        | Gt ->
            decl <@ fun p q -> p > q @> (SpanCompare<float>(fun x xs y ys r -> compareSpan (fun p q -> p > q) x xs y ys r))
                 (SpanCompare<float32>(fun x xs y ys r -> compareSpan (fun p q -> p > q) x xs y ys r)) (onnx "Greater")
        | Ge ->
            decl <@ fun p q -> p >= q @> (SpanCompare<float>(fun x xs y ys r -> compareSpan (fun p q -> p >= q) x xs y ys r))
                 (SpanCompare<float32>(fun x xs y ys r -> compareSpan (fun p q -> p >= q) x xs y ys r)) (onnx "GreaterOrEqual")
        | Eq ->
            decl <@ fun p q -> p = q @> (SpanCompare<float>(fun x xs y ys r -> compareSpan (fun p q -> p = q) x xs y ys r))
                 (SpanCompare<float32>(fun x xs y ys r -> compareSpan (fun p q -> p = q) x xs y ys r)) (onnx "Equal")
        | Ne ->
            decl <@ fun p q -> p <> q @> (SpanCompare<float>(fun x xs y ys r -> compareSpan (fun p q -> p <> q) x xs y ys r))
                 (SpanCompare<float32>(fun x xs y ys r -> compareSpan (fun p q -> p <> q) x xs y ys r)) (OnnxForm.Node ("Not", [ onnx "Equal" ]))

    let private whereDecl: WhereDecl =
        { Scalar = <@ fun m a b -> if m <> 0.0 then a else b @>
          Span = SpanSelect(fun m a b o -> selectSpan m a b o)
          VjpX = Rule.Select (g, num 0.0)
          VjpY = Rule.Select (num 0.0, g)
          AdjointX = SpanMaskedAdd(fun m gr acc -> maskedAdd true m gr acc)
          AdjointY = SpanMaskedAdd(fun m gr acc -> maskedAdd false m gr acc)
          Onnx = OnnxForm.Node ("Where", [ OnnxForm.Input 0; OnnxForm.Input 1; OnnxForm.Input 2 ]) }

    let private clampDecl: ClampDecl =
        { Scalar = <@ fun lo hi v -> Math.Min(Math.Max(v, lo), hi) @>
          Span64 = SpanClamp<float>(fun lo hi s d ->
                                      Simd.Max(s, lo, d)
                                      Simd.Min(Span<float>.op_Implicit d, hi, d))
          Span32 = SpanClamp<float32>(fun lo hi s d ->
                                        Simd.Max(s, lo, d)
                                        Simd.Min(Span<float32>.op_Implicit d, hi, d))
          // g inside [lo, hi] (its ends included), 0 outside
          Vjp = fun lo hi -> Rule.If (Gt, x, num hi, num 0.0, Rule.If (Lt, x, num lo, num 0.0, g))
          Adjoint = SpanClampAdjoint(fun lo hi xs gr acc -> clampAdjoint lo hi xs gr acc)
          // an infinite bound is an omitted input of Clip
          Onnx = fun lo hi ->
                    let bound v = if Double.IsInfinity v then OnnxForm.Omitted else OnnxForm.Const v
                    OnnxForm.Node ("Clip", [ OnnxForm.Input 0; bound lo; bound hi ]) }

    // ---- derived forms ---------------------------------------------------------------------------

    /// A curried quotation `fun a b ... -> body` as an expression of a delegate of those parameters.
    let private lambdaOf (q: Expr) : LambdaExpression =
        let rec split (e: Expr) (vars: Var list) =
            match e with
            | Patterns.Lambda (v, body) -> split body (v :: vars)
            | body -> List.rev vars, body
        match split q [] with
        | [], _ -> invalidOp "Ops: an element form must be a lambda."
        | vars, body ->
            let ty = Expression.GetFuncType([| for v in vars -> v.Type
                                               yield body.Type |])
            LeafExpressionConverter.QuotationToExpression(Expr.NewDelegate(ty, vars, body)) :?> LambdaExpression

    /// Every unary op.
    let allUnary: UnaryOp[] = UnionCases.nullary<UnaryOp> ()
    /// Every binary op.
    let allBinary: BinaryOp[] = UnionCases.nullary<BinaryOp> ()

    /// Every comparison.
    let allCompare: CompareOp[] = UnionCases.nullary<CompareOp> ()

    /// A table over every case of a union without fields (nullary cases are singletons: lookups compare references).
    let private unaryTag = UnionCases.tagReader<UnaryOp> ()
    let private binaryTag = UnionCases.tagReader<BinaryOp> ()
    let private compareTag = UnionCases.tagReader<CompareOp> ()

    /// A unary op's index in allUnary (its tag), for tables indexed by op.
    let unaryIndex (u: UnaryOp) = unaryTag.Invoke u

    /// A binary op's index in allBinary (its tag), for tables indexed by op.
    let binaryIndex (b: BinaryOp) = binaryTag.Invoke b

    // One Op value per element-wise op: `Unary u` allocates a case object, and the tape applies these on every op.
    let private unaryOps = allUnary |> Array.map Op.Unary
    let private binaryOps = allBinary |> Array.map Op.Binary

    /// `Op.Unary u`, shared (equal to a new one; no allocation per call).
    let unaryOp (u: UnaryOp) = unaryOps.[unaryTag.Invoke u]

    /// `Op.Binary b`, shared (equal to a new one; no allocation per call).
    let binaryOp (b: BinaryOp) = binaryOps.[binaryTag.Invoke b]

    /// A value per case of a fieldless union, in an array indexed by the case's tag: the kernels look ops up
    /// on every call, and an array read costs less than a Dictionary's two interface calls.
    let private tableOf (cases: 'U[]) (f: 'U -> 'V) : 'V[] =
        let tag = UnionCases.tagReader<'U> ()
        cases |> Array.iteri (fun i c -> if tag.Invoke c <> i then invalidOp "Ops.tableOf: cases out of declaration order.")
        Array.map f cases

    let private unaryDecls = tableOf allUnary (fun u -> let d = declareUnary u in d, lambdaOf d.Scalar)
    let private binaryDecls = tableOf allBinary (fun b -> let d = declareBinary b in d, lambdaOf d.Scalar)
    let private compareDecls = tableOf allCompare (fun c -> let d = declareCompare c in d, lambdaOf d.Scalar)
    let private whereLambda = lambdaOf whereDecl.Scalar
    let private clampLambda = lambdaOf clampDecl.Scalar

    /// Replaces parameters by expressions, and decides comparisons of two constants (Pow's `q = 2.0` test,
    /// with q a constant exponent) so that the untaken branch is not compiled.
    type private Substitution(ps: ParameterExpression[], args: Expression[]) =
        inherit ExpressionVisitor()
        override _.VisitParameter(p: ParameterExpression) : Expression =
            match Array.IndexOf(ps, p) with
            | -1 -> p :> Expression
            | i -> args.[i]
        member private this.Sub(e: Expression) : Expression =
            match this.Visit e with
            | null -> e
            | v -> v
        override this.VisitBinary(b: BinaryExpression) : Expression =
            let l, r = this.Sub b.Left, this.Sub b.Right
            match l, r with
            | (:? ConstantExpression as cl), (:? ConstantExpression as cr) when cl.Type = typeof<float> && cr.Type = typeof<float> && isNull b.Method ->
                let x, y = unbox<float> cl.Value, unbox<float> cr.Value
                let decided =
                    match b.NodeType with
                    | ExpressionType.Equal -> ValueSome (x = y)
                    | ExpressionType.NotEqual -> ValueSome (x <> y)
                    | ExpressionType.LessThan -> ValueSome (x < y)
                    | ExpressionType.LessThanOrEqual -> ValueSome (x <= y)
                    | ExpressionType.GreaterThan -> ValueSome (x > y)
                    | ExpressionType.GreaterThanOrEqual -> ValueSome (x >= y)
                    | _ -> ValueNone
                match decided with
                | ValueSome v -> Expression.Constant v :> Expression
                | ValueNone -> b.Update(l, b.Conversion, r) :> Expression
            | _ -> b.Update(l, b.Conversion, r) :> Expression
        override this.VisitConditional(c: ConditionalExpression) : Expression =
            match this.Sub c.Test with
            | :? ConstantExpression as t when t.Type = typeof<bool> -> this.Sub(if unbox<bool> t.Value then c.IfTrue else c.IfFalse)
            | test -> c.Update(test, this.Sub c.IfTrue, this.Sub c.IfFalse) :> Expression

    /// How often each parameter of a lambda occurs in its body.
    type private UseCount(ps: ParameterExpression[], counts: int[]) =
        inherit ExpressionVisitor()
        override _.VisitParameter(p: ParameterExpression) : Expression =
            match Array.IndexOf(ps, p) with
            | -1 -> ()
            | i -> counts.[i] <- counts.[i] + 1
            p :> Expression

    /// An element form ready to be written out: its parameters and how often each is used.
    type private Form = { Params: ParameterExpression[]; Uses: int[]; Lambda: LambdaExpression }

    let private formOf (lam: LambdaExpression) : Form =
        let ps = Seq.toArray lam.Parameters
        let uses = Array.zeroCreate ps.Length
        UseCount(ps, uses).Visit(lam.Body) |> ignore
        { Params = ps; Uses = uses; Lambda = lam }

    /// A form applied to arguments. Its body is written out with the arguments in place where that
    /// evaluates nothing twice (an argument that is a variable or a constant, or a parameter used at most
    /// once): an invocation costs the expression compiler a scope of its own, which was most of compiling
    /// a small model. Otherwise an invocation evaluates each argument once.
    let private apply (f: Form) (args: Expression[]) : Expression =
        let cheap i (a: Expression) =
            match a with
            | :? ParameterExpression | :? ConstantExpression -> true
            | _ -> f.Uses.[i] <= 1
        if Array.forall id (Array.mapi cheap args) then
            match Substitution(f.Params, args).Visit(f.Lambda.Body) with
            | null -> invalidOp "Ops: an element form has no body."
            | body -> body
        else Expression.Invoke(f.Lambda, args)

    let private unaryForms = tableOf allUnary (fun u -> formOf (snd unaryDecls.[unaryTag.Invoke u]))
    let private binaryForms = tableOf allBinary (fun b -> formOf (snd binaryDecls.[binaryTag.Invoke b]))
    let private compareForms = tableOf allCompare (fun c -> formOf (snd compareDecls.[compareTag.Invoke c]))
    let private whereForm = formOf whereLambda
    let private clampForm = formOf clampLambda

    /// The op `u` applied to an expression (its element form, inlined).
    let unaryExpr (u: UnaryOp) (e: Expression) : Expression = apply unaryForms.[unaryTag.Invoke u] [| e |]

    let binaryExpr (b: BinaryOp) (p: Expression) (q: Expression) : Expression = apply binaryForms.[binaryTag.Invoke b] [| p; q |]

    /// A comparison as a bool expression.
    let compareExpr (c: CompareOp) (a: Expression) (b: Expression) : Expression = apply compareForms.[compareTag.Invoke c] [| a; b |]

    /// where(mask, a, b) as an expression (the mask a float: 0 unset).
    let whereExpr (mask: Expression) (a: Expression) (b: Expression) : Expression = apply whereForm [| mask; a; b |]

    /// clamp(x, lo, hi) as an expression.
    let clampExpr (lo: float) (hi: float) (x: Expression) : Expression =
        apply clampForm [| Expression.Constant(lo, typeof<float>); Expression.Constant(hi, typeof<float>); x |]

    /// A rule as an expression of the generated code; `mask`: where's mask (a float), null for other ops.
    let rec private maskedRuleExpr (mask: Expression | null) (r: Rule) (g: Expression) (x: Expression) (y: Expression | null) (out: Expression) : Expression =
        let go r = maskedRuleExpr mask r g x y out
        match r with
        | Rule.G -> g
        | Rule.X -> x
        | Rule.Y ->
            match y with
            | null -> invalidOp "Ops: a unary rule reads Y."
            | y -> y
        | Rule.Out -> out
        | Rule.Num v -> Expression.Constant(v, typeof<float>)
        | Rule.Plus (a, b) -> Expression.Add(go a, go b)
        | Rule.Minus (a, b) -> Expression.Subtract(go a, go b)
        | Rule.Times (a, b) -> Expression.Multiply(go a, go b)
        | Rule.Over (a, b) -> Expression.Divide(go a, go b)
        | Rule.Negate a -> Expression.Negate(go a)
        | Rule.Apply (u, a) -> unaryExpr u (go a)
        | Rule.ApplyBinary (b, p, q) -> binaryExpr b (go p) (go q)
        | Rule.If (c, a, b, t, e) -> Expression.Condition(compareExpr c (go a) (go b), go t, go e)
        | Rule.Select (t, e) ->
            match mask with
            | null -> invalidOp "Ops: a rule of an op other than where reads a mask."
            | m -> whereExpr m (go t) (go e)

    /// A rule as an expression of the generated code (y: null for a unary op).
    let ruleExpr (r: Rule) (g: Expression) (x: Expression) (y: Expression | null) (out: Expression) : Expression =
        maskedRuleExpr null r g x y out

    /// A rule of `where` as an expression of the generated code (mask: a float, 0 unset; x, y: the branches).
    let whereRuleExpr (r: Rule) (g: Expression) (mask: Expression) (x: Expression) (y: Expression) (out: Expression) : Expression =
        maskedRuleExpr mask r g x y out

    let private param (name: string) = Expression.Parameter(typeof<float>, name)

    /// A rule of a one-input op compiled: (g, x, out) -> its value.
    let compileUnaryRule (r: Rule) : Func<float, float, float, float> =
        let pg, px, po = param "g", param "x", param "out"
        Expression.Lambda<Func<float, float, float, float>>(ruleExpr r pg px null po, [| pg; px; po |]).Compile()

    let private unaryInfos =
        tableOf allUnary (fun u ->
            let d, lam = unaryDecls.[unaryTag.Invoke u]
            let vjp =
                lazy (
                    match d.Vjp with
                    | Ok r -> compileUnaryRule r
                    | Error why -> Func<float, float, float, float>(fun _ _ _ -> raise (NotSupportedException why)))
            UnaryInfo(u, d, lam, vjp, lazy (lam.Compile() :?> Func<float, float>)))

    let private binaryInfos =
        tableOf allBinary (fun b ->
            let d, lam = binaryDecls.[binaryTag.Invoke b]
            let compileRule (r: Rule) =
                lazy (
                    let pg, px, py, po = param "g", param "x", param "y", param "out"
                    Expression.Lambda<Func<float, float, float, float, float>>(ruleExpr r pg px py po, [| pg; px; py; po |]).Compile())
            BinaryInfo(b, d, lam, compileRule d.VjpX, compileRule d.VjpY, lazy (lam.Compile() :?> Func<float, float, float>)))

    let private declared (d: 'D) (lam: LambdaExpression) : Declared<'D, 'E> = Declared(d, lam, lazy (unbox<'E> (box (lam.Compile()))))

    let private compareInfos =
        tableOf allCompare (fun c -> let d, lam = compareDecls.[compareTag.Invoke c] in (declared d lam: Declared<CompareDecl, Func<float, float, bool>>))

    /// A rule of `where` compiled: (g, mask, x, y, out) -> its value.
    let compileWhereRule (r: Rule) : WhereRuleFunc =
        let pg, pm, px, py, po = param "g", param "mask", param "x", param "y", param "out"
        Expression.Lambda<WhereRuleFunc>(whereRuleExpr r pg pm px py po, [| pg; pm; px; py; po |]).Compile()

    /// The declaration of a comparison, with its relation compiled: (x, y) -> x (rel) y.
    let compare (c: CompareOp) : Declared<CompareDecl, Func<float, float, bool>> = compareInfos.[compareTag.Invoke c]

    /// where(mask, a, b): its declaration, with its element form compiled: (mask, a, b) -> the value.
    let where: Declared<WhereDecl, Func<float, float, float, float>> = declared whereDecl whereLambda

    /// clamp(x, lo, hi): its declaration, with its element form compiled: (lo, hi, x) -> the value.
    let clamp: Declared<ClampDecl, Func<float, float, float, float>> = declared clampDecl clampLambda

    /// The declaration of a unary op, with its derived forms.
    let unary (u: UnaryOp) : UnaryInfo = unaryInfos.[unaryTag.Invoke u]

    /// The declaration of a binary op, with its derived forms.
    let binary (b: BinaryOp) : BinaryInfo = binaryInfos.[binaryTag.Invoke b]

    /// How the ONNX exporter writes a unary op.
    let onnxUnary (u: UnaryOp) : OnnxForm = (fst unaryDecls.[unaryTag.Invoke u]).Onnx

    // ---- casts, for programs that hold every dtype in float64 ------------------------------------

    /// Whether a cast from `src` to `dst` can change a value held as float64: not to float64, not to the
    /// same dtype, not from bool (0 or 1 in every dtype).
    let castChanges (src: Dtype) (dst: Dtype) =
        match dst with
        | Float64 -> false
        | Float32 | Dtype.Int32 | Bool -> src <> dst && src <> Bool

    /// A value held as float64 cast to `dt` and read back as float64: the conversions Cpu.cast makes
    /// (float32: round to nearest; int32: the CLR's truncating conversion; bool: nonzero is true).
    let castValue (dt: Dtype) (v: float) : float =
        match dt with
        | Float64 -> v
        | Float32 -> float (float32 v)
        | Dtype.Int32 -> float (int v)
        | Bool -> if v <> 0.0 then 1.0 else 0.0

    /// castValue as an expression of the generated code (the same CLR conversions).
    let castExpr (dt: Dtype) (e: Expression) : Expression =
        match dt with
        | Float64 -> e
        | Float32 -> Expression.Convert(Expression.Convert(e, typeof<float32>), typeof<float>) :> Expression
        | Dtype.Int32 -> Expression.Convert(Expression.Convert(e, typeof<int>), typeof<float>) :> Expression
        | Bool -> Expression.Condition(Expression.NotEqual(e, Expression.Constant(0.0)), Expression.Constant(1.0), Expression.Constant(0.0)) :> Expression
