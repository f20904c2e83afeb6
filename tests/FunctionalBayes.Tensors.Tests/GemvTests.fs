/// The matrix-vector paths of the GEMM dispatch (m or n ≤ 4): on AVX2+FMA the 256-bit kernels of Gemv.fs, on
/// AVX-512 the masked kernels of Gemm.fs (CI runs the suite again with DOTNET_EnableAVX512F=0 as well).
module FunctionalBayes.Tensors.Tests.GemvTests

#nowarn "9" // NativePtr: the kernels take pointers into pinned arrays sized for each case

open System
open Expecto
open Microsoft.FSharp.NativeInterop
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.GemmTests

/// Sizes around the vector widths (4 float64, 8 float32) and the kernels' blocks (8 rows; 24 / 48 outputs).
let private dims = [ 1; 2; 3; 4; 5; 7; 8; 9; 15; 16; 17; 20; 23; 24; 25; 31; 33; 47; 48; 49; 50; 97 ]

/// Products with one side of at most 4: every transpose, the vector on either side, padded strides and offsets.
let private skinny (check: Random -> bool -> bool -> int -> int -> int -> bool -> unit) (seed: int) =
    let rng = Random(seed)
    for (ta, tb) in transCombos do
        for big in dims do
            for k in dims do
                for small in [ 1; 2; 4 ] do
                    check rng ta tb big small k (rng.Next(2) = 0)
                    check rng ta tb small big k (rng.Next(2) = 0)

/// The operands as a regression uses them: n × d data against a d-vector and its transpose against an n-vector.
let private regressionShapes = [ for n in [ 1; 999; 5000; 5003 ] do for d in [ 1; 3; 20; 21; 50 ] do yield! [ (n, 1, d); (d, 1, n); (1, n, d) ] ]

/// One direct call of the AVX2 kernels: y (yOff, incy) (+)= M·x with M = A (rows × cols, row stride lda) or,
/// trans, Aᵀ with A stored cols × rows; every array position outside A, x and y's window holds NaN (y's: 7).
type private KernelCase =
    { Trans: bool; Rows: int; Cols: int; A: float[]; AOff: int; Lda: int; X: float[]; XOff: int
      Y: float[]; YOff: int; Incy: int }

let private kernelCase (rng: Random) trans rows cols (fill: float) =
    let sr, sc = if trans then cols, rows else rows, cols
    let lda = sc + rng.Next(0, 4)
    let aOff, xOff, yOff = rng.Next(0, 3), rng.Next(0, 3), rng.Next(0, 3)
    let incy = if rng.Next(3) = 0 then 3 else 1
    let a = Array.create (aOff + sr * lda + 5) nan
    for r in 0 .. sr - 1 do
        for c in 0 .. sc - 1 do a.[aOff + r * lda + c] <- rng.NextDouble() * 2.0 - 1.0
    let x = Array.create (xOff + cols + 5) nan
    for p in 0 .. cols - 1 do x.[xOff + p] <- rng.NextDouble() * 2.0 - 1.0
    let y = Array.create (yOff + (rows - 1) * incy + 6) 7.0
    for i in 0 .. rows - 1 do y.[yOff + i * incy] <- fill
    { Trans = trans; Rows = rows; Cols = cols; A = a; AOff = aOff; Lda = lda; X = x; XOff = xOff; Y = y; YOff = yOff; Incy = incy }

let private runKernel64 (c: KernelCase) (acc: bool) =
    let y = Array.copy c.Y
    use pa = fixed c.A
    use px = fixed c.X
    use py = fixed y
    (if c.Trans then Gemv.gemvT64 else Gemv.gemvN64) c.Rows c.Cols (NativePtr.add pa c.AOff) c.Lda (NativePtr.add px c.XOff) (NativePtr.add py c.YOff) c.Incy acc
    y

let private runKernel32 (c: KernelCase) (acc: bool) =
    let a, x, y = Array.map float32 c.A, Array.map float32 c.X, Array.map float32 c.Y
    use pa = fixed a
    use px = fixed x
    use py = fixed y
    (if c.Trans then Gemv.gemvT32 else Gemv.gemvN32) c.Rows c.Cols (NativePtr.add pa c.AOff) c.Lda (NativePtr.add px c.XOff) (NativePtr.add py c.YOff) c.Incy acc
    Array.map float y

/// Checks a kernel's y against a float64 loop over the (rounded) operands: within relTol of Σ|terms|, and y
/// unchanged outside its window.
let private checkKernel (c: KernelCase) (round: float -> float) (relTol: float) (acc: bool) (got: float[]) =
    let window = Collections.Generic.HashSet<int>()
    for i in 0 .. c.Rows - 1 do
        let idx = c.YOff + i * c.Incy
        window.Add idx |> ignore
        let mutable s = 0.0
        let mutable scale = 0.0
        for p in 0 .. c.Cols - 1 do
            let aip = round (if c.Trans then c.A.[c.AOff + p * c.Lda + i] else c.A.[c.AOff + i * c.Lda + p])
            let t = aip * round c.X.[c.XOff + p]
            s <- s + t
            scale <- scale + abs t
        let y0 = if acc then round c.Y.[idx] else 0.0 // not accumulating, y starts NaN
        let expected = s + y0
        if not (abs (got.[idx] - expected) <= relTol * (scale + abs y0 + 1e-30)) then
            failtestf "trans=%b rows=%d cols=%d lda=%d incy=%d acc=%b: y[%d] = %.17g, expected %.17g" c.Trans c.Rows c.Cols c.Lda c.Incy acc i got.[idx] expected
    for idx in 0 .. got.Length - 1 do
        if not (window.Contains idx) && got.[idx] <> 7.0 then failtestf "trans=%b rows=%d cols=%d: y[%d] outside the window was written" c.Trans c.Rows c.Cols idx

/// The AVX2 kernels themselves (they run wherever AVX2 and FMA do, AVX-512 machines included).
let private avx2 (name: string) (body: unit -> unit) =
    testCase name (fun () ->
        if Gemv.supported () then body ()
        else Expect.notEqual (Gemm.instructionSet ()) "AVX2+FMA" "the AVX2 kernels run wherever the dispatch reports AVX2+FMA")

[<Tests>]
let tests =
    testList "GemvTests" [
        testCase "float64 skinny products match a naive loop (all transposes, remainders, padding, accumulate)" (fun () ->
            skinny checkF64 21)
        testCase "float32 skinny products match a naive loop (all transposes, remainders, padding, accumulate)" (fun () ->
            skinny checkF32 22)
        testCase "regression shapes (n × d times d, its transpose times n) match a naive loop in float64 and float32" (fun () ->
            let rng = Random(23)
            for (ta, tb) in transCombos do
                for (m, n, k) in regressionShapes do
                    checkF64 rng ta tb m n k true
                    checkF32 rng ta tb m n k true)
        testCase "batched matrix-vector products match one product per batch" (fun () ->
            // a stack of row-major matrices against one vector runs as one tall product; each against its own vector, one by one
            let x = Tensor.create [| 3; 37; 21 |] (Array.init (3 * 37 * 21) (fun i -> sin (float i)))
            let v = Tensor.create [| 21; 1 |] (Array.init 21 (fun i -> cos (float i)))
            let vs = Tensor.create [| 3; 21; 1 |] (Array.init 63 (fun i -> cos (float (2 * i))))
            let manual (a: float[]) (aOff: int) (b: float[]) (bOff: int) =
                Array.init 37 (fun i -> Seq.sum (seq { for p in 0 .. 20 -> a.[aOff + i * 21 + p] * b.[bOff + p] }))
            let xa = Tensor.toArray x
            let one = Tensor.toArray (Tensor.matmul x v)
            let each = Tensor.toArray (Tensor.matmul x vs)
            for bi in 0 .. 2 do
                let e1 = manual xa (bi * 37 * 21) (Tensor.toArray v) 0
                let e2 = manual xa (bi * 37 * 21) (Tensor.toArray vs) (bi * 21)
                for i in 0 .. 36 do
                    Expect.floatClose Accuracy.high one.[bi * 37 + i] e1.[i] (sprintf "shared vector, batch %d row %d" bi i)
                    Expect.floatClose Accuracy.high each.[bi * 37 + i] e2.[i] (sprintf "own vector, batch %d row %d" bi i))
        avx2 "AVX2 kernels match a float64 loop for every shape around the vector widths, with NaN outside the operands" (fun () ->
            let rng = Random(26)
            for trans in [ false; true ] do
                for rows in dims @ [ 130; 1001 ] do
                    for cols in dims @ [ 130; 1001 ] do
                        for acc in [ false; true ] do
                            // not accumulating, y starts NaN: it must be overwritten, never read
                            let c = kernelCase rng trans rows cols (if acc then rng.NextDouble() else nan)
                            checkKernel c id 1e-13 acc (runKernel64 c acc)
                            checkKernel c (float32 >> float) 1e-5 acc (runKernel32 c acc))
        avx2 "AVX2 kernels: a row's value does not depend on the rows around it (same bits from any first row)" (fun () ->
            let rng = Random(27)
            for cols in [ 1; 3; 20; 21; 37 ] do
                let c = kernelCase rng false 37 cols 0.0
                let c = { c with Incy = 1; YOff = 0; Y = Array.zeroCreate 37 }
                let whole, wholeF = runKernel64 c false, runKernel32 c false
                for first in 1 .. 36 do
                    let part = { c with Rows = 37 - first; AOff = c.AOff + first * c.Lda; Y = Array.zeroCreate (37 - first) }
                    let p64, p32 = runKernel64 part false, runKernel32 part false
                    for i in first .. 36 do
                        Expect.equal (BitConverter.DoubleToInt64Bits p64.[i - first]) (BitConverter.DoubleToInt64Bits whole.[i])
                            (sprintf "float64 cols %d row %d from first row %d" cols i first)
                        Expect.equal (BitConverter.DoubleToInt64Bits p32.[i - first]) (BitConverter.DoubleToInt64Bits wholeF.[i])
                            (sprintf "float32 cols %d row %d from first row %d" cols i first))
    ]
