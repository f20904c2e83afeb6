module FunctionalBayes.Tensors.Tests.SmallGemmTests

open System
open Expecto
open FunctionalBayes.Tensors

/// C (+)= op(A) op(B) by the textbook triple loop, element by element.
let private naive tA tB m n k (a: float[]) aOff lda (b: float[]) bOff ldb (c: float[]) cOff ldc accumulate =
    for i in 0 .. m - 1 do
        for j in 0 .. n - 1 do
            let mutable s = 0.0
            for p in 0 .. k - 1 do
                let av = if tA then a.[aOff + p * lda + i] else a.[aOff + i * lda + p]
                let bv = if tB then b.[bOff + j * ldb + p] else b.[bOff + p * ldb + j]
                s <- s + av * bv
            c.[cOff + i * ldc + j] <- (if accumulate then c.[cOff + i * ldc + j] + s else s)

/// One case: operands with padded leading dimensions and offsets; `tight` puts op(B) at the very end of b
/// (its rows cannot be read 8 wide in place: the copying path).
let private run (rng: Random) tA tB m n k accumulate (tight: bool) =
    let rnd len = Array.init len (fun _ -> rng.NextDouble() * 2.0 - 1.0)
    let ar, ac = if tA then k, m else m, k
    let br, bc = if tB then n, k else k, n
    let lda, ldb, ldc = ac + 1, (if tight then bc else bc + 2), n + 3
    let aOff, bOff, cOff = 2, 1, 3
    let a = rnd (aOff + ar * lda)
    let b = rnd (bOff + (br - 1) * ldb + bc)
    let c0 = Array.append (rnd (cOff + m * ldc)) [| nan |]
    let expected = Array.copy c0
    naive tA tB m n k a aOff lda b bOff ldb expected cOff ldc accumulate
    let viaGemm = Array.copy c0
    Gemm.gemmF64 tA tB m n k a aOff lda b bOff ldb viaGemm cOff ldc accumulate
    let actual = Array.copy c0
    CompiledKernels.smallGemm tA tB m n k a aOff lda b bOff ldb actual cOff ldc accumulate
    let what = sprintf "tA=%b tB=%b m=%d n=%d k=%d accumulate=%b tight=%b" tA tB m n k accumulate tight
    for e in 0 .. c0.Length - 1 do
        let inC = e >= cOff && e < cOff + m * ldc && (e - cOff) % ldc < n
        if inC then
            let tol = 1e-14 * float (k + 1)
            Expect.floatClose { absolute = tol; relative = tol } actual.[e] expected.[e] (sprintf "%s: element %d against the triple loop" what e)
            Expect.floatClose { absolute = tol; relative = tol } actual.[e] viaGemm.[e] (sprintf "%s: element %d against Gemm.gemmF64" what e)
        else
            Expect.isTrue (BitConverter.DoubleToInt64Bits actual.[e] = BitConverter.DoubleToInt64Bits c0.[e]) (sprintf "%s: element %d outside C was written" what e)

[<Tests>]
let tests =
    testList "SmallGemm" [
        testCase "matches the triple loop and Gemm.gemmF64 for every transpose, odd shapes, both paths" (fun () ->
            let rng = Random(12)
            for tA in [ false; true ] do
                for tB in [ false; true ] do
                    for m in [ 1; 3; 50 ] do
                        for n in [ 4; 5; 6; 7; 8 ] do
                            for k in [ 1; 2; 3; 5; 37 ] do
                                for accumulate in [ false; true ] do
                                    for tight in [ false; true ] do
                                        if CompiledKernels.smallGemmApplies m n k then run rng tA tB m n k accumulate tight)
        testCase "the same bits on every call" (fun () ->
            let rng = Random(5)
            let a = Array.init 250 (fun _ -> rng.NextDouble())
            let b = Array.init 40 (fun _ -> rng.NextDouble())
            let c1 = Array.zeroCreate 250
            let c2 = Array.zeroCreate 250
            CompiledKernels.smallGemm false false 50 5 5 a 0 5 b 0 5 c1 0 5 false
            CompiledKernels.smallGemm false false 50 5 5 a 0 5 b 0 5 c2 0 5 false
            Expect.sequenceEqual (Array.map BitConverter.DoubleToInt64Bits c2) (Array.map BitConverter.DoubleToInt64Bits c1) "bits")
        testCase "sizes outside its range and operands out of range are refused before any work" (fun () ->
            let a = Array.zeroCreate<float> 100
            let c = Array.create<float> 100 7.0
            Expect.throwsT<ArgumentException> (fun () -> CompiledKernels.smallGemm false false 4 3 2 a 0 2 a 0 3 c 0 3 false) "n = 3"
            Expect.throwsT<ArgumentException> (fun () -> CompiledKernels.smallGemm false false 4 9 2 a 0 2 a 0 9 c 0 9 false) "n = 9"
            Expect.throwsT<ArgumentException> (fun () -> CompiledKernels.smallGemm false false 4 5 200 a 0 200 a 0 5 c 0 5 false) "k = 200"
            Expect.throwsT<ArgumentException> (fun () -> CompiledKernels.smallGemm false false 30 5 5 a 0 5 a 0 5 c 0 5 false) "C past the end"
            Expect.throwsT<ArgumentException> (fun () -> CompiledKernels.smallGemm false false 4 5 5 a 90 5 a 0 5 c 0 5 false) "A past the end"
            Expect.isTrue (c |> Array.forall (fun v -> v = 7.0)) "C untouched")
    ]
