module FunctionalBayes.Tensors.Tests.GemmTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors

// ---------------------------------------------------------------------------------------------
// Reference + helpers
// ---------------------------------------------------------------------------------------------

/// Stored (rows, cols) of an operand given its op-shape and transpose flag.
let stored (trans: bool) (r: int) (c: int) = if trans then (c, r) else (r, c)

type Case<'T> =
    { TransA: bool; TransB: bool; M: int; N: int; K: int
      A: 'T[]; AOff: int; Lda: int; B: 'T[]; BOff: int; Ldb: int
      C: 'T[]; COff: int; Ldc: int }

let makeCase (rng: Random) (conv: float -> 'T) transA transB m n k (padded: bool) : Case<'T> =
    let pad () = if padded then rng.Next(0, 4) else 0
    let (ar, ac) = stored transA m k
    let (br, bc) = stored transB k n
    let lda = ac + pad ()
    let ldb = bc + pad ()
    let ldc = n + pad ()
    let aOff, bOff, cOff = pad (), pad (), pad ()
    let rnd len = Array.init len (fun _ -> conv (rng.NextDouble() * 2.0 - 1.0))
    { TransA = transA; TransB = transB; M = m; N = n; K = k
      A = rnd (aOff + max 0 (ar * lda)); AOff = aOff; Lda = max lda 1
      B = rnd (bOff + max 0 (br * ldb)); BOff = bOff; Ldb = max ldb 1
      C = rnd (cOff + max 0 (m * ldc) + (if padded then 3 else 0)); COff = cOff; Ldc = max ldc 1 }

let aAt (cs: Case<'T>) (toF: 'T -> float) i p =
    toF (if cs.TransA then cs.A.[cs.AOff + p * cs.Lda + i] else cs.A.[cs.AOff + i * cs.Lda + p])
let bAt (cs: Case<'T>) (toF: 'T -> float) p j =
    toF (if cs.TransB then cs.B.[cs.BOff + j * cs.Ldb + p] else cs.B.[cs.BOff + p * cs.Ldb + j])

/// Checks `result` (C after the call) against a naive triple loop computed in float64, and that
/// elements of C outside the m×n window are untouched.
let verify (cs: Case<'T>) (toF: 'T -> float) (relTol: float) (accumulate: bool) (result: 'T[]) =
    let inWindow = Array.zeroCreate<bool> cs.C.Length
    for i in 0 .. cs.M - 1 do
        for j in 0 .. cs.N - 1 do
            let idx = cs.COff + i * cs.Ldc + j
            inWindow.[idx] <- true
            let mutable s = 0.0
            let mutable scale = 0.0
            for p in 0 .. cs.K - 1 do
                let t = aAt cs toF i p * bAt cs toF p j
                s <- s + t
                scale <- scale + abs t
            let c0 = toF cs.C.[idx]
            let expected = if accumulate then s + c0 else s
            let scale = scale + (if accumulate then abs c0 else 0.0)
            let got = toF result.[idx]
            let err = abs (got - expected)
            if not (err <= relTol * (scale + 1e-30)) then
                failwithf "Mismatch tA=%b tB=%b m=%d n=%d k=%d acc=%b at (%d,%d): got %.17g expected %.17g (scale %g)"
                    cs.TransA cs.TransB cs.M cs.N cs.K accumulate i j got expected scale
    for idx in 0 .. cs.C.Length - 1 do
        if not inWindow.[idx] && toF result.[idx] <> toF cs.C.[idx] then
            failwithf "Element %d outside C window modified (tA=%b tB=%b m=%d n=%d k=%d)" idx cs.TransA cs.TransB cs.M cs.N cs.K

let runF64 threads (cs: Case<float>) acc =
    let c = Array.copy cs.C
    Gemm.gemmF64Threads threads cs.TransA cs.TransB cs.M cs.N cs.K cs.A cs.AOff cs.Lda cs.B cs.BOff cs.Ldb c cs.COff cs.Ldc acc
    c

let runF32 threads (cs: Case<float32>) acc =
    let c = Array.copy cs.C
    Gemm.gemmF32Threads threads cs.TransA cs.TransB cs.M cs.N cs.K cs.A cs.AOff cs.Lda cs.B cs.BOff cs.Ldb c cs.COff cs.Ldc acc
    c

let checkF64 rng tA tB m n k padded =
    let cs = makeCase rng id tA tB m n k padded
    for acc in [ false; true ] do
        verify cs id 1e-13 acc (runF64 Environment.ProcessorCount cs acc)
        // also via the public entry point
        let c = Array.copy cs.C
        Gemm.gemmF64 tA tB m n k cs.A cs.AOff cs.Lda cs.B cs.BOff cs.Ldb c cs.COff cs.Ldc acc
        verify cs id 1e-13 acc c

let checkF32 rng tA tB m n k padded =
    let cs = makeCase rng float32 tA tB m n k padded
    for acc in [ false; true ] do
        verify cs float 1e-5 acc (runF32 Environment.ProcessorCount cs acc)
        let c = Array.copy cs.C
        Gemm.gemmF32 tA tB m n k cs.A cs.AOff cs.Lda cs.B cs.BOff cs.Ldb c cs.COff cs.Ldc acc
        verify cs float 1e-5 acc c

let transCombos = [ (false, false); (true, false); (false, true); (true, true) ]

let smallDims = [ 0; 1; 2; 3; 4; 5; 7; 8; 9; 15; 16; 17; 23; 24; 25; 31; 33; 47; 48; 49 ]

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

let shapeData () : objnull[] seq =
    seq {
        for (ta, tb) in transCombos do
            yield [| box ta; box tb |]
    }

let ``f64 small exhaustive-ish shapes`` (tA: bool) (tB: bool) =
    let rng = Random(1)
    for m in [ 0; 1; 2; 5; 8; 9; 17; 25 ] do
        for n in [ 0; 1; 2; 3; 8; 23; 24; 25; 49 ] do
            for k in [ 0; 1; 3; 4; 7; 8; 9; 20 ] do
                checkF64 rng tA tB m n k (rng.Next(2) = 0)

let ``f32 small exhaustive-ish shapes`` (tA: bool) (tB: bool) =
    let rng = Random(2)
    for m in [ 0; 1; 2; 5; 8; 9; 17; 33 ] do
        for n in [ 0; 1; 2; 3; 8; 16; 47; 48; 49; 97 ] do
            for k in [ 0; 1; 3; 4; 7; 8; 9; 16; 17; 20 ] do
                checkF32 rng tA tB m n k (rng.Next(2) = 0)

let ``f64 random shapes`` (tA: bool) (tB: bool) =
    let rng = Random(3)
    for _ in 1 .. 25 do
        let pick () = smallDims.[rng.Next smallDims.Length] + (if rng.Next(3) = 0 then rng.Next(0, 70) else 0)
        checkF64 rng tA tB (pick ()) (pick ()) (pick ()) true

let ``f32 random shapes`` (tA: bool) (tB: bool) =
    let rng = Random(4)
    for _ in 1 .. 25 do
        let pick () = smallDims.[rng.Next smallDims.Length] + (if rng.Next(3) = 0 then rng.Next(0, 70) else 0)
        checkF32 rng tA tB (pick ()) (pick ()) (pick ()) true

/// Shapes crossing the MC/KC/NC block boundaries and the parallel threshold.
let bigShapes = [ (257, 257, 257); (1000, 3, 517); (3, 1000, 517); (130, 500, 600); (97, 481, 259); (5000, 1, 20); (1, 5000, 20); (20, 1, 5000); (1, 1, 777); (600, 250, 1); (40, 1100, 300) ]

let bigData () : objnull[] seq =
    seq {
        for (ta, tb) in transCombos do
            for (m, n, k) in bigShapes do
                yield [| box ta; box tb; box m; box n; box k |]
    }

let ``f64 block-crossing shapes`` (tA: bool) (tB: bool) (m: int) (n: int) (k: int) =
    checkF64 (Random(m * 31 + n * 7 + k)) tA tB m n k true

let ``f32 block-crossing shapes`` (tA: bool) (tB: bool) (m: int) (n: int) (k: int) =
    checkF32 (Random(m * 31 + n * 7 + k + 1)) tA tB m n k true

let ``k = 0 zeroes C when not accumulating and leaves it when accumulating`` () =
    let c = Array.create 20 7.0
    Gemm.gemmF64 false false 3 4 0 [||] 0 0 [||] 0 4 c 2 5 false
    for i in 0 .. 2 do
        for j in 0 .. 3 do Assert.Equal(0.0, c.[2 + i * 5 + j])
    Assert.Equal(7.0, c.[0]); Assert.Equal(7.0, c.[6]); Assert.Equal(7.0, c.[19])
    let c2 = Array.create 12 7.0f
    Gemm.gemmF32 true true 3 4 0 [||] 0 3 [||] 0 0 c2 0 4 true
    Assert.True(c2 |> Array.forall ((=) 7.0f))
    Gemm.gemmF32 true true 3 4 0 [||] 0 3 [||] 0 0 c2 0 4 false
    Assert.True(c2 |> Array.forall ((=) 0.0f))

let ``NaN in C is overwritten when accumulate = false`` () =
    for (m, n, k) in [ (5, 1, 20); (1, 30, 5); (17, 29, 13); (200, 200, 200) ] do
        let rng = Random(5)
        let a = Array.init (m * k) (fun _ -> rng.NextDouble())
        let b = Array.init (k * n) (fun _ -> rng.NextDouble())
        let c = Array.create (m * n) nan
        Gemm.gemmF64 false false m n k a 0 k b 0 n c 0 n false
        Assert.True(c |> Array.forall (fun v -> not (Double.IsNaN v)))
        let cf = Array.create (m * n) nanf
        Gemm.gemmF32 false false m n k (Array.map float32 a) 0 k (Array.map float32 b) 0 n cf 0 n false
        Assert.True(cf |> Array.forall (fun v -> not (Single.IsNaN v)))

let ``invalid arguments are rejected`` () =
    let a = Array.zeroCreate<float> 8   // too small for 3x3
    let c = Array.zeroCreate<float> 10
    Assert.ThrowsAny<ArgumentException>(fun () -> Gemm.gemmF64 false false 3 3 3 a 0 3 a 0 3 c 0 3 false) |> ignore
    Assert.ThrowsAny<ArgumentException>(fun () -> Gemm.gemmF64 false false -1 3 3 a 0 3 a 0 3 c 0 3 false) |> ignore
    Assert.ThrowsAny<ArgumentException>(fun () -> Gemm.gemmF64 false false 2 2 2 a 7 2 a 0 2 c 0 2 false) |> ignore

// ---------------------------------------------------------------------------------------------
// Determinism: bit-identical results for any thread count
// ---------------------------------------------------------------------------------------------

// (64, 1100, 300): two NC blocks of columns on one thread, the thread split elsewhere on more
let detShapes = [ (300, 517, 300); (517, 300, 611); (64, 1000, 700); (1000, 64, 700); (129, 131, 1500); (64, 1100, 300) ]

let detData () : objnull[] seq =
    seq {
        for (ta, tb) in transCombos do
            for (m, n, k) in detShapes do
                yield [| box ta; box tb; box m; box n; box k |]
    }

let ``results are bitwise identical for 1, 2, 3 and 4 threads`` (tA: bool) (tB: bool) (m: int) (n: int) (k: int) =
    Assert.True(int64 m * int64 n * int64 k >= Gemm.parallelThreshold, "shape must be above the parallel threshold")
    let rng = Random(m + n + k)
    let cs = makeCase rng id tA tB m n k true
    let csf = makeCase rng float32 tA tB m n k true
    for acc in [ false; true ] do
        let r1 = runF64 1 cs acc
        verify cs id 1e-13 acc r1
        for t in [ 2; 3; 4 ] do
            let rt = runF64 t cs acc
            for idx in 0 .. r1.Length - 1 do
                if BitConverter.DoubleToInt64Bits r1.[idx] <> BitConverter.DoubleToInt64Bits rt.[idx] then
                    failwithf "f64 threads=%d differs at %d: %.17g vs %.17g" t idx r1.[idx] rt.[idx]
        let f1 = runF32 1 csf acc
        verify csf float 1e-5 acc f1
        for t in [ 2; 3; 4 ] do
            let ft = runF32 t csf acc
            for idx in 0 .. f1.Length - 1 do
                if BitConverter.SingleToInt32Bits f1.[idx] <> BitConverter.SingleToInt32Bits ft.[idx] then
                    failwithf "f32 threads=%d differs at %d: %.9g vs %.9g" t idx f1.[idx] ft.[idx]

let ``concurrent callers do not interfere`` () =
    let rng = Random(9)
    let cases = Array.init 8 (fun i -> makeCase rng id (i % 2 = 0) (i % 3 = 0) (100 + i * 13) (120 + i) (90 + i * 7) true)
    let expected = cases |> Array.map (fun cs -> runF64 1 cs false)
    let results =
        cases
        |> Array.Parallel.map (fun cs -> Array.init 5 (fun _ -> runF64 2 cs false))
    for i in 0 .. cases.Length - 1 do
        for r in results.[i] do
            Assert.True((r = expected.[i]), sprintf "case %d" i)

let ``shapes that take the packing and GEMV variants are correct`` () =
    // CI runs these tests again with DOTNET_EnableAVX512=0, which sends the same shapes down the portable paths.
    let rng = Random(11)
    for (ta, tb) in transCombos do
        for (m, n, k) in [ (5000, 1, 20); (20, 1, 333); (1, 77, 20); (57, 61, 300); (3, 40, 17); (130, 97, 260) ] do
            checkF64 rng ta tb m n k true
            checkF32 rng ta tb m n k true

// ---------------------------------------------------------------------------------------------
// The narrow path (n <= 24, op(B) = B, AVX2+FMA): A unpacked, tiles of 4 rows x 2 or 3 vectors
// ---------------------------------------------------------------------------------------------

/// Every column-panel split (n = 5 .. 24 covers 1 to 6 vectors of either width), every row remainder (m mod 4),
/// k = 1, KC-block edges (256, 257) and both A layouts; op(B) = Bᵀ (the packed path) alongside.
let narrowShapes =
    [ (5000, 20, 20); (20, 20, 5000); (5, 5, 1); (7, 8, 3); (6, 9, 1); (9, 12, 257); (10, 13, 256); (11, 16, 20)
      (13, 17, 7); (33, 21, 300); (14, 23, 513); (17, 24, 40); (101, 7, 65); (8, 20, 1) ]

let ``narrow shapes are correct`` () =
    let rng = Random(12)
    for (ta, tb) in transCombos do
        for (m, n, k) in narrowShapes do
            checkF64 rng ta tb m n k true
            checkF32 rng ta tb m n k true

/// The narrow path runs the packed path's per-element FMA chains: the same bits as the packed path.
let ``narrow shapes give the packed path's bits`` () =
    let rng = Random(13)
    for ta in [ false; true ] do
        for (m, n, k) in narrowShapes do
            for acc in [ false; true ] do
                let cs = makeCase rng id ta false m n k true
                let got = runF64 1 cs acc
                let packed = Array.copy cs.C
                Gemm.runBlocked64 1 ta false m n k cs.A cs.AOff cs.Lda cs.B cs.BOff cs.Ldb packed cs.COff cs.Ldc acc
                for idx in 0 .. got.Length - 1 do
                    if BitConverter.DoubleToInt64Bits got.[idx] <> BitConverter.DoubleToInt64Bits packed.[idx] then
                        failwithf "f64 tA=%b m=%d n=%d k=%d acc=%b differs at %d: %.17g vs %.17g" ta m n k acc idx got.[idx] packed.[idx]
                let csf = makeCase rng float32 ta false m n k true
                let gotf = runF32 1 csf acc
                let packedf = Array.copy csf.C
                Gemm.runBlocked32 1 ta false m n k csf.A csf.AOff csf.Lda csf.B csf.BOff csf.Ldb packedf csf.COff csf.Ldc acc
                for idx in 0 .. gotf.Length - 1 do
                    if BitConverter.SingleToInt32Bits gotf.[idx] <> BitConverter.SingleToInt32Bits packedf.[idx] then
                        failwithf "f32 tA=%b m=%d n=%d k=%d acc=%b differs at %d: %.9g vs %.9g" ta m n k acc idx gotf.[idx] packedf.[idx]

/// A NaN in A(i, p) makes row i of C NaN and nothing else (a remainder tile computes its missing rows from its
/// first row and must not store them); a NaN in B(p, j) makes column j NaN (padding lanes stay out); C's NaNs
/// are overwritten when not accumulating.
let ``narrow path: NaN in A or B reaches only its row or column`` () =
    for ta in [ false; true ] do
        for (m, n, k) in [ (7, 20, 5); (13, 9, 300); (6, 24, 1) ] do
            let rng = Random(m + n + k)
            let lda = if ta then m else k
            let aAt i p = if ta then p * lda + i else i * lda + p
            let a = Array.init (m * k) (fun _ -> rng.NextDouble())
            let b = Array.init (k * n) (fun _ -> rng.NextDouble())
            let nanRow = 4
            let nanCol = n - 1
            let aN = Array.copy a
            aN.[aAt nanRow (k - 1)] <- nan
            let bN = Array.copy b
            bN.[(k / 2) * n + nanCol] <- nan
            let check (name: string) (c: float[]) (isNaNAt: int -> int -> bool) =
                for i in 0 .. m - 1 do
                    for j in 0 .. n - 1 do
                        let v = c.[i * n + j]
                        if Double.IsNaN v <> isNaNAt i j then failwithf "%s tA=%b %dx%dx%d: (%d,%d) = %g" name ta m n k i j v
            let c = Array.create (m * n) nan
            Gemm.gemmF64 ta false m n k aN 0 lda b 0 n c 0 n false
            check "f64 A" c (fun i _ -> i = nanRow)
            Gemm.gemmF64 ta false m n k a 0 lda bN 0 n c 0 n false
            check "f64 B" c (fun _ j -> j = nanCol)
            let cf = Array.create (m * n) nanf
            Gemm.gemmF32 ta false m n k (Array.map float32 aN) 0 lda (Array.map float32 b) 0 n cf 0 n false
            check "f32 A" (Array.map float cf) (fun i _ -> i = nanRow)
            Gemm.gemmF32 ta false m n k (Array.map float32 a) 0 lda (Array.map float32 bN) 0 n cf 0 n false
            check "f32 B" (Array.map float cf) (fun _ j -> j = nanCol)

let narrowDetData () : objnull[] seq =
    seq {
        for ta in [ false; true ] do
            for (m, n, k) in [ (5000, 20, 20); (20, 20, 5000); (1001, 13, 300); (2003, 24, 257) ] do
                yield [| box ta; box false; box m; box n; box k |]
    }

[<Tests>]
let tests =
    testList "GemmTests" [
        yield! [ for args in shapeData () -> testCase (sprintf "f64 small exhaustive-ish shapes %A" args) (fun () -> ``f64 small exhaustive-ish shapes`` (unbox args.[0]) (unbox args.[1])) ]
        yield! [ for args in shapeData () -> testCase (sprintf "f32 small exhaustive-ish shapes %A" args) (fun () -> ``f32 small exhaustive-ish shapes`` (unbox args.[0]) (unbox args.[1])) ]
        yield! [ for args in shapeData () -> testCase (sprintf "f64 random shapes %A" args) (fun () -> ``f64 random shapes`` (unbox args.[0]) (unbox args.[1])) ]
        yield! [ for args in shapeData () -> testCase (sprintf "f32 random shapes %A" args) (fun () -> ``f32 random shapes`` (unbox args.[0]) (unbox args.[1])) ]
        yield! [ for args in bigData () -> testCase (sprintf "f64 block-crossing shapes %A" args) (fun () -> ``f64 block-crossing shapes`` (unbox args.[0]) (unbox args.[1]) (unbox args.[2]) (unbox args.[3]) (unbox args.[4])) ]
        yield! [ for args in bigData () -> testCase (sprintf "f32 block-crossing shapes %A" args) (fun () -> ``f32 block-crossing shapes`` (unbox args.[0]) (unbox args.[1]) (unbox args.[2]) (unbox args.[3]) (unbox args.[4])) ]
        testCase "k = 0 zeroes C when not accumulating and leaves it when accumulating" ``k = 0 zeroes C when not accumulating and leaves it when accumulating``
        testCase "NaN in C is overwritten when accumulate = false" ``NaN in C is overwritten when accumulate = false``
        testCase "invalid arguments are rejected" ``invalid arguments are rejected``
        yield! [ for args in detData () -> testCase (sprintf "results are bitwise identical for 1, 2, 3 and 4 threads %A" args) (fun () -> ``results are bitwise identical for 1, 2, 3 and 4 threads`` (unbox args.[0]) (unbox args.[1]) (unbox args.[2]) (unbox args.[3]) (unbox args.[4])) ]
        testCase "concurrent callers do not interfere" ``concurrent callers do not interfere``
        testCase "shapes that take the packing and GEMV variants are correct" ``shapes that take the packing and GEMV variants are correct``
        testCase "narrow shapes are correct" ``narrow shapes are correct``
        testCase "narrow shapes give the packed path's bits" ``narrow shapes give the packed path's bits``
        testCase "narrow path: NaN in A or B reaches only its row or column" ``narrow path: NaN in A or B reaches only its row or column``
        yield! [ for args in narrowDetData () -> testCase (sprintf "narrow: results are bitwise identical for 1, 2, 3 and 4 threads %A" args) (fun () -> ``results are bitwise identical for 1, 2, 3 and 4 threads`` (unbox args.[0]) (unbox args.[1]) (unbox args.[2]) (unbox args.[3]) (unbox args.[4])) ]
    ]
