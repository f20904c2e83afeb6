/// The benchmark suites: gemm, elementwise, grad, svi, onnx.
module FunctionalBayes.Benchmarks.Suites

#nowarn "9" // NativePtr: logisticParts calls the GEMV kernels on pinned arrays of the right sizes

open System
open System.Numerics.Tensors
open FunctionalBayes.Tensors
open FunctionalBayes.Benchmarks.Measure

let private randomArray (seed: int) (n: int) =
    let r = Random(seed)
    Array.init n (fun _ -> r.NextDouble() * 2.0 - 1.0)

/// The fastest seconds per call of f over `batches` batches of about `seconds` / `batches` each.
let private fastest (seconds: float) (batches: int) (f: unit -> unit) =
    f ()
    let sw = Diagnostics.Stopwatch.StartNew()
    let mutable calls = 0
    while sw.Elapsed.TotalSeconds < seconds / 4.0 || calls < 1 do
        f ()
        calls <- calls + 1
    let reps = max 1 (int (seconds / float batches / (sw.Elapsed.TotalSeconds / float calls)))
    Array.init batches (fun _ ->
        let sw = Diagnostics.Stopwatch.StartNew()
        for _ in 1 .. reps do f ()
        sw.Elapsed.TotalSeconds / float reps)
    |> Array.min

/// One product of the gemm suite: its name, op(A)[m×k] · B[k×n] (n = 1: a vector), A stored transposed or not.
type private GemmShape = { Name: string; M: int; N: int; K: int; TransA: bool; Seconds: float; Batches: int; Rounds: int }

/// GFLOP/s of matrix products on the GEMM kernels (1 and 2 threads), square 256–4096 and the library's skinny
/// shapes (X·β and Xᵀ·r of the n = 5000, d = 20 regression; X·W and Xᵀ·G with 20 columns), float64 and float32,
/// each against the BLAS that NumPy loads with the same thread count, measured in alternating rounds.
let gemm () =
    reportIsa "gemm"
    let square n = { Name = sprintf "%d" n; M = n; N = n; K = n; TransA = false
                     Seconds = (if n >= 2048 then 0.1 else 0.6); Batches = (if n >= 2048 then 1 else 3); Rounds = (if n >= 2048 then 2 else 3) }
    let skinny name m n k t = { Name = name; M = m; N = n; K = k; TransA = t; Seconds = 0.5; Batches = 3; Rounds = 3 }
    let shapes =
        [ for n in [ 256; 512; 1024; 2048; 4096 ] -> square n ] @
        [ skinny "matvec_5000x20" 5000 1 20 false
          skinny "matvecT_20x5000" 20 1 5000 true
          skinny "5000x20x20" 5000 20 20 false
          skinny "20x20x5000T" 20 20 5000 true ]
    // GEMM_SHAPES=1024,matvec_5000x20 runs only those shapes (a quick look); unset, all of them (GEMM_THREADS=1 and
    // GEMM_TYPES=f64 narrow the run likewise)
    let shapes =
        match Environment.GetEnvironmentVariable "GEMM_SHAPES" with
        | null | "" -> shapes
        | names -> let wanted = names.Split(',') in shapes |> List.filter (fun sh -> Array.contains sh.Name wanted)
    let only (var: string) (all: 'T list) (parse: string -> 'T) =
        match Environment.GetEnvironmentVariable var with
        | null | "" -> all
        | names -> let wanted = names.Split(',') |> Array.map parse in all |> List.filter (fun v -> Array.contains v wanted)
    let threadCounts = only "GEMM_THREADS" ([ 1; 2 ] |> List.filter (fun t -> t <= Environment.ProcessorCount)) int
    for threads in threadCounts do
        let session = OpenBlas.Session.Start threads
        match session with
        | Ok s -> reportText (sprintf "gemm_blas_%dt" threads) (s.Blas + sprintf ", %d thread(s)" threads)
        | Error why -> reportText (sprintf "gemm_blas_%dt" threads) (sprintf "no comparison: %s" why)
        try
            for dt in only "GEMM_TYPES" [ "f64"; "f32" ] id do
                for sh in shapes do
                    let r = Random(1)
                    let ours =
                        let aLen, bLen = sh.M * sh.K, sh.K * sh.N
                        let lda = if sh.TransA then sh.M else sh.K
                        if dt = "f64" then
                            let a = Array.init aLen (fun _ -> r.NextDouble())
                            let b = Array.init bLen (fun _ -> r.NextDouble())
                            let c = Array.zeroCreate<float> (sh.M * sh.N)
                            fun () -> Gemm.gemmF64Threads threads sh.TransA false sh.M sh.N sh.K a 0 lda b 0 sh.N c 0 sh.N false
                        else
                            let a = Array.init aLen (fun _ -> float32 (r.NextDouble()))
                            let b = Array.init bLen (fun _ -> float32 (r.NextDouble()))
                            let c = Array.zeroCreate<float32> (sh.M * sh.N)
                            fun () -> Gemm.gemmF32Threads threads sh.TransA false sh.M sh.N sh.K a 0 lda b 0 sh.N c 0 sh.N false
                    let mutable best = infinity
                    let mutable theirs = infinity
                    for _ in 1 .. sh.Rounds do
                        best <- min best (fastest sh.Seconds sh.Batches ours)
                        match session with
                        | Ok s -> theirs <- min theirs (s.Seconds(dt, sh.M, sh.N, sh.K, sh.TransA, sh.Seconds, sh.Batches))
                        | Error _ -> ()
                    let gflops (sec: float) = 2.0 * float sh.M * float sh.N * float sh.K / sec / 1e9
                    let baseline =
                        match session with
                        | Ok _ -> Some (gflops theirs, sprintf "NumPy's BLAS, %d thread(s), same run" threads)
                        | Error _ -> None
                    report (sprintf "gemm_%s_%s_%dt" dt sh.Name threads) (gflops best) "GFLOP/s" baseline
        finally
            match session with
            | Ok s -> (s :> IDisposable).Dispose()
            | Error _ -> ()

/// GB/s (bytes read + written) of element-wise ops over 10^6 float64 elements through Tensor; then the span
/// kernels (Simd) side by side with TensorPrimitives in the same process, float64 at lengths 16 to 10^6 and
/// float32 for add, exp and sum, in alternating rounds (best of each): `ratio` > 1 is Simd faster.
/// ELEMENTWISE_LENGTHS=16,1000 limits the lengths; ELEMENTWISE_CASES=add,mul the ops.
let elementwise () =
    reportIsa "elementwise"
    let n = 1_000_000
    let x = Tensor.ofArray (randomArray 3 n)
    let y = Tensor.ofArray (randomArray 4 n)
    let gbps bytes s = float bytes / s / 1e9
    let s = secondsPerCall 0.5 5 (fun () -> Tensor.exp x |> ignore)
    report "elementwise_exp_1e6" (gbps (16 * n) s) "GB/s" None
    let s = secondsPerCall 0.5 5 (fun () -> Tensor.tanh x |> ignore)
    report "elementwise_tanh_1e6" (gbps (16 * n) s) "GB/s" None
    let s = secondsPerCall 0.5 5 (fun () -> (x + y) |> ignore)
    report "elementwise_add_1e6" (gbps (24 * n) s) "GB/s" None
    // ELEMENTWISE_STREAM_BYTES=n: Simd's streaming-store threshold for this run (to measure where it pays)
    match Environment.GetEnvironmentVariable "ELEMENTWISE_STREAM_BYTES" with
    | null | "" -> ()
    | v -> SimdStreaming.minBytes <- int v
    let lengths =
        match Environment.GetEnvironmentVariable "ELEMENTWISE_LENGTHS" with
        | null | "" -> [ 16; 100; 1000; 10_000; 100_000; 1_000_000 ]
        | names -> names.Split(',') |> Seq.map int |> List.ofSeq
    let label (len: int) = if len >= 10_000 then sprintf "1e%d" (int (round (log10 (float len)))) else string len
    for len in lengths do
        let a, b, c = randomArray 5 len, randomArray 6 len, randomArray 7 len
        let pos = a |> Array.map (fun v -> abs v + 0.5)
        let d = Array.zeroCreate<float> len
        let a32, b32 = Array.map float32 a, Array.map float32 b
        let d32 = Array.zeroCreate<float32> len
        let sink = [| 0.0 |] // the reductions' results, kept so that no call is dead code
        // (name, bytes per element, Simd, TensorPrimitives)
        let cases : (string * int * (unit -> unit) * (unit -> unit)) list =
            [ "add", 24, (fun () -> Simd.Add(ReadOnlySpan a, ReadOnlySpan b, Span d)),
                         (fun () -> TensorPrimitives.Add(ReadOnlySpan a, ReadOnlySpan b, Span d))
              "mul", 24, (fun () -> Simd.Multiply(ReadOnlySpan a, ReadOnlySpan b, Span d)),
                         (fun () -> TensorPrimitives.Multiply(ReadOnlySpan a, ReadOnlySpan b, Span d))
              "fma", 32, (fun () -> Simd.MultiplyAdd(ReadOnlySpan a, ReadOnlySpan b, ReadOnlySpan c, Span d)),
                         (fun () -> TensorPrimitives.MultiplyAdd(ReadOnlySpan a, ReadOnlySpan b, ReadOnlySpan c, Span d))
              "axpy", 24, (fun () -> Simd.MultiplyAdd(ReadOnlySpan a, 0.5, ReadOnlySpan d, Span d)),
                          (fun () -> TensorPrimitives.MultiplyAdd(ReadOnlySpan a, 0.5, ReadOnlySpan d, Span d))
              "exp", 16, (fun () -> Simd.Exp(ReadOnlySpan a, Span d)),
                         (fun () -> TensorPrimitives.Exp(ReadOnlySpan a, Span d))
              "tanh", 16, (fun () -> Simd.Tanh(ReadOnlySpan a, Span d)),
                          (fun () -> TensorPrimitives.Tanh(ReadOnlySpan a, Span d))
              "log", 16, (fun () -> Simd.Log(ReadOnlySpan pos, Span d)),
                         (fun () -> TensorPrimitives.Log(ReadOnlySpan pos, Span d))
              "sum", 8, (fun () -> sink.[0] <- sink.[0] + Simd.Sum(ReadOnlySpan a)),
                        (fun () -> sink.[0] <- sink.[0] + TensorPrimitives.Sum(ReadOnlySpan a))
              "dot", 16, (fun () -> sink.[0] <- sink.[0] + Simd.Dot(ReadOnlySpan a, ReadOnlySpan b)),
                         (fun () -> sink.[0] <- sink.[0] + TensorPrimitives.Dot(ReadOnlySpan a, ReadOnlySpan b))
              "add_f32", 12, (fun () -> Simd.Add(ReadOnlySpan a32, ReadOnlySpan b32, Span d32)),
                             (fun () -> TensorPrimitives.Add(ReadOnlySpan a32, ReadOnlySpan b32, Span d32))
              "exp_f32", 8, (fun () -> Simd.Exp(ReadOnlySpan a32, Span d32)),
                            (fun () -> TensorPrimitives.Exp(ReadOnlySpan a32, Span d32))
              "sum_f32", 4, (fun () -> sink.[0] <- sink.[0] + float (Simd.Sum(ReadOnlySpan a32))),
                            (fun () -> sink.[0] <- sink.[0] + float (TensorPrimitives.Sum(ReadOnlySpan a32))) ]
        let cases =
            match Environment.GetEnvironmentVariable "ELEMENTWISE_CASES" with
            | null | "" -> cases
            | names -> let wanted = names.Split(',') in cases |> List.filter (fun (name, _, _, _) -> Array.contains name wanted)
        for (name, bytes, ours, theirs) in cases do
            let mutable best = infinity
            let mutable bestTp = infinity
            for _ in 1 .. 2 do
                best <- min best (fastest 0.1 3 ours)
                bestTp <- min bestTp (fastest 0.1 3 theirs)
            report (sprintf "elementwise_simd_%s_%s" name (label len)) (gbps (bytes * len) best) "GB/s"
                (Some (gbps (bytes * len) bestTp, "TensorPrimitives, same run"))
        if Double.IsNaN sink.[0] then printfn "(sink %g)" sink.[0]

/// Eight schools, non-centered (Stan's eight_schools_noncentered), on unconstrained space.
let private eightSchools () =
    let y = Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
    let sigma = Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]
    let logSigma = Tensor.log sigma
    let halfLog2Pi = 0.5 * log (2.0 * Math.PI)
    fun (ps: Tensor[]) ->
        let mu, logTau, eta = ps.[0], ps.[1], ps.[2]
        let tau = Tensor.exp logTau
        // mu ~ Normal(0, 5); tau ~ HalfCauchy(5) with the log-Jacobian of exp; eta ~ Normal(0, 1)
        let lpMu = -0.5 * Tensor.square (mu / 5.0) - (log 5.0 + halfLog2Pi)
        let lpTau = log (2.0 / (Math.PI * 5.0)) - Tensor.log1p (Tensor.square (tau / 5.0)) + logTau
        let lpEta = Tensor.sum (-0.5 * Tensor.square eta) - 8.0 * halfLog2Pi
        let theta = mu + tau * eta
        let z = (y - theta) / sigma
        let lpY = Tensor.sum (-0.5 * Tensor.square z - logSigma) - 8.0 * halfLog2Pi
        lpMu + lpTau + lpEta + lpY

/// The logistic-regression data of the grad and nuts suites: x (5000, 20) uniform in (−1, 1), y from fixed
/// coefficients, from a fixed seed.
let logisticData () : Tensor * Tensor =
    let n, d = 5000, 20
    let r = Random(5)
    let x = Tensor.create [| n; d |] (Array.init (n * d) (fun _ -> r.NextDouble() * 2.0 - 1.0))
    let beta = Array.init d (fun j -> if j % 3 = 0 then 0.5 else -0.25)
    let eta = Tensor.matmul x (Tensor.ofArray beta) |> Tensor.toArray
    let y = Tensor.ofArray (eta |> Array.map (fun e -> if r.NextDouble() < 1.0 / (1.0 + exp -e) then 1.0 else 0.0))
    x, y

/// Bayesian logistic regression with a standard normal prior: n = 5000, d = 20.
let private logisticRegression () =
    let x, y = logisticData ()
    fun (b: Tensor) ->
        let logits = Tensor.matmul x b
        Tensor.sum (y * logits - Tensor.softplus logits) - 0.5 * Tensor.sum (Tensor.square b)

/// Eight schools (non-centered) as a user writes it, with its data as arguments.
let private eightSchoolsModel (y: Tensor) (sigma: Tensor) = FunctionalBayes.ModelBuilderInstance.model {
    let! mu = FunctionalBayes.Model.sample "mu" (FunctionalBayes.Dist.normal (Tensor.scalar 0.0) (Tensor.scalar 5.0))
    let! tau = FunctionalBayes.Model.sample "tau" (FunctionalBayes.Dist.halfCauchy (Tensor.scalar 5.0))
    let! eta = FunctionalBayes.Model.sample "theta_tilde" (FunctionalBayes.Dist.normal (Tensor.zeros [| 8 |]) (Tensor.ones [| 8 |]))
    return! FunctionalBayes.Model.observe "y" (FunctionalBayes.Dist.normal (mu + tau * eta) sigma) (Some y)
}

/// Bayesian logistic regression with a standard normal prior, as a user writes it.
let logisticModel (x: Tensor) (y: Tensor) = FunctionalBayes.ModelBuilderInstance.model {
    let! beta = FunctionalBayes.Model.sample "beta" (FunctionalBayes.Dist.normal (Tensor.zeros [| x.Shape.[1] |]) (Tensor.ones [| x.Shape.[1] |]))
    return! FunctionalBayes.Model.observe "y" (FunctionalBayes.BernoulliLogits (Tensor.matmul x beta)) (Some y)
}

/// The same logistic regression with its likelihood as one fused op (Dist.bernoulliLogitGlm, no intercept).
let logisticGlmModel (x: Tensor) (y: Tensor) = FunctionalBayes.ModelBuilderInstance.model {
    let! beta = FunctionalBayes.Model.sample "beta" (FunctionalBayes.Dist.normal (Tensor.zeros [| x.Shape.[1] |]) (Tensor.ones [| x.Shape.[1] |]))
    return! FunctionalBayes.Model.observe "y" (FunctionalBayes.Dist.bernoulliLogitGlm x (Tensor.scalar 0.0) beta) (Some y)
}

/// The multinomial-logistic data of the grad suite: x (5000, 20) uniform in (−1, 1), labels 0 .. 4 drawn
/// from softmax(x·β + α) with fixed coefficients, from a fixed seed.
let categoricalData () : Tensor * Tensor =
    let n, d, c = 5000, 20, 5
    let r = Random(6)
    let x = Tensor.create [| n; d |] (Array.init (n * d) (fun _ -> r.NextDouble() * 2.0 - 1.0))
    let beta = Tensor.create [| d; c |] (Array.init (d * c) (fun i -> 0.3 * float (i % 7 - 3) / 3.0))
    let eta = Tensor.toArray (Tensor.matmul x beta)
    let y =
        Array.init n (fun i ->
            let w = Array.init c (fun k -> exp eta.[i * c + k])
            let u = r.NextDouble() * Array.sum w
            let mutable k = 0
            let mutable acc = w.[0]
            while acc < u && k < c - 1 do
                k <- k + 1
                acc <- acc + w.[k]
            k)
    x, Tensor.ofInts y

/// Multinomial logistic regression (α [C], β [d, C], standard normal priors) with its likelihood
/// unfused: Categorical(logits = x·β + α) per row.
let categoricalModel (x: Tensor) (y: Tensor) = FunctionalBayes.ModelBuilderInstance.model {
    let d, c = x.Shape.[1], 5
    let! alpha = FunctionalBayes.Model.sample "alpha" (FunctionalBayes.Dist.normal (Tensor.zeros [| c |]) (Tensor.ones [| c |]))
    let! beta = FunctionalBayes.Model.sample "beta" (FunctionalBayes.Dist.normal (Tensor.zeros [| d; c |]) (Tensor.ones [| d; c |]))
    return! FunctionalBayes.Model.observe "y" (FunctionalBayes.Dist.toEvent 1 (FunctionalBayes.Dist.categoricalLogits (Tensor.matmul x beta + alpha))) (Some y)
}

/// The same model with its likelihood as one fused op (Dist.categoricalLogitGlm).
let categoricalGlmModel (x: Tensor) (y: Tensor) = FunctionalBayes.ModelBuilderInstance.model {
    let d, c = x.Shape.[1], 5
    let! alpha = FunctionalBayes.Model.sample "alpha" (FunctionalBayes.Dist.normal (Tensor.zeros [| c |]) (Tensor.ones [| c |]))
    let! beta = FunctionalBayes.Model.sample "beta" (FunctionalBayes.Dist.normal (Tensor.zeros [| d; c |]) (Tensor.ones [| d; c |]))
    return! FunctionalBayes.Model.observe "y" (FunctionalBayes.Dist.categoricalLogitGlm x alpha beta) (Some y)
}

/// Bytes allocated on this thread per call of f, over `calls` calls after as many calls to warm up
/// (the first round pays for the JIT tiering of this loop).
let private allocatedPerCall (calls: int) (f: unit -> unit) =
    let round () =
        let before = GC.GetAllocatedBytesForCurrentThread()
        for _ in 1 .. calls do
            f ()
        GC.GetAllocatedBytesForCurrentThread() - before
    round () |> ignore
    float (round ()) / float calls

/// The model-level figures: the tape through LogDensity.potential (before) and the compiled program
/// (after), in µs per value and gradient, the compile time and the bytes allocated per call.
let private compiledFigures (name: string) (build: Tensor[] -> FunctionalBayes.Potential) (data: Tensor[]) (point: Tensor[]) =
    let p = build data
    let q = FunctionalBayes.FlatPosition.join p point
    let g = Array.zeroCreate<float> q.Length
    let tape = (FunctionalBayes.GradientSource.tape p).Create()
    let t = batchTimes 0.3 11 (fun () -> tape.Evaluate(ReadOnlySpan q, Span g) |> ignore)
    report (sprintf "grad_%s_model_tape" name) (t.[t.Length / 2] * 1e6) "us" None
    report (sprintf "grad_%s_model_tape_min" name) (t.[0] * 1e6) "us" None
    // the first compile pays for JIT-compiling the tracer and compiler themselves; one compile of a few
    // milliseconds is at the mercy of a GC or a tier-up, so the figure is the median of 21 after it
    FunctionalBayes.Compilation.compileWithData build data point |> ignore
    let compiles = Array.init 21 (fun _ -> FunctionalBayes.Compilation.compileWithData build data point)
    match compiles.[0] with
    | FunctionalBayes.FellBack (why, _) -> eprintfn "%s: not compiled: %s" name why
    | FunctionalBayes.Compiled cp ->
        let ms =
            compiles
            |> Array.choose (function
                | FunctionalBayes.Compiled c -> Some c.CompileMilliseconds
                | FunctionalBayes.FellBack _ -> None)
            |> Array.sort
        report (sprintf "compile_%s_ms" name) ms.[ms.Length / 2] "ms" None
        report (sprintf "compile_%s_ms_min" name) ms.[0] "ms" None
        // which ops run in fused loops (issue 22)
        eprintfn "%s: %d ops in fused loops" name (cp.Listing.Split('\n') |> Array.filter (fun l -> l.Contains "(fused loop") |> Array.length)
        let e = cp.Source.Create()
        let t = batchTimes 0.3 11 (fun () -> e.Evaluate(ReadOnlySpan q, Span g) |> ignore)
        report (sprintf "grad_%s_model_compiled" name) (t.[t.Length / 2] * 1e6) "us" None
        report (sprintf "grad_%s_model_compiled_min" name) (t.[0] * 1e6) "us" None
        let bytes = allocatedPerCall 10_000 (fun () -> e.Evaluate(ReadOnlySpan q, Span g) |> ignore)
        report (sprintf "grad_%s_model_compiled_bytes_per_call" name) bytes "B" None

/// Microseconds per value-and-gradient.
let grad () =
    reportIsa "grad"
    let f = eightSchools ()
    let ps = [| Tensor.scalar 1.0; Tensor.scalar 0.5; Tensor.ofArray (randomArray 6 8) |]
    // the median and, robust to other load on a shared machine, the fastest batch
    let t = batchTimes 0.3 11 (fun () -> Autodiff.valueAndGradN f ps |> ignore)
    report "grad_eight_schools" (t.[t.Length / 2] * 1e6) "us" None
    report "grad_eight_schools_min" (t.[0] * 1e6) "us" None
    let g = logisticRegression ()
    let b = Tensor.ofArray (randomArray 7 20)
    let t = batchTimes 0.3 11 (fun () -> Autodiff.valueAndGrad g b |> ignore)
    report "grad_logistic_n5000_d20" (t.[t.Length / 2] * 1e6) "us" None
    report "grad_logistic_n5000_d20_min" (t.[0] * 1e6) "us" None
    let y = Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
    let sigma = Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]
    compiledFigures "eight_schools" (fun d -> FunctionalBayes.LogDensity.potential (Rng.key 1UL) (eightSchoolsModel d.[0] d.[1]))
        [| y; sigma |] [| Tensor.scalar 1.0; Tensor.scalar 0.5; Tensor.ofArray (randomArray 6 8) |]
    let x, yl = logisticData ()
    compiledFigures "logistic_n5000_d20" (fun dt -> FunctionalBayes.LogDensity.potential (Rng.key 1UL) (logisticModel dt.[0] dt.[1]))
        [| x; yl |] [| Tensor.ofArray (randomArray 7 20) |]
    // the same model, data and point with the fused GLM likelihood (issue 24)
    compiledFigures "logistic_glm_n5000_d20" (fun dt -> FunctionalBayes.LogDensity.potential (Rng.key 1UL) (logisticGlmModel dt.[0] dt.[1]))
        [| x; yl |] [| Tensor.ofArray (randomArray 7 20) |]
    // multinomial logistic regression, C = 5: unfused Categorical rows, then the fused categorical GLM (issue 26)
    let xc, yc = categoricalData ()
    let catPoint () = [| Tensor.ofArray (randomArray 8 5); Tensor.create [| 20; 5 |] (randomArray 9 100) |]
    compiledFigures "categorical_n5000_d20_c5" (fun dt -> FunctionalBayes.LogDensity.potential (Rng.key 1UL) (categoricalModel dt.[0] dt.[1]))
        [| xc; yc |] (catPoint ())
    compiledFigures "categorical_glm_n5000_d20_c5" (fun dt -> FunctionalBayes.LogDensity.potential (Rng.key 1UL) (categoricalGlmModel dt.[0] dt.[1]))
        [| xc; yc |] (catPoint ())

/// SVI steps per second: BLayers' "simple" process (N = 10^4, k = 2, batch 1000, AutoDiagonalNormal),
/// an FM model (d = 10, rank 3), a Poisson and a 3-class categorical model, each step a minibatch ELBO
/// gradient and an Adam update; on the tape and compiled, same run.
let svi () =
    let run (name: string) (modelFn: Map<string, Tensor> -> FunctionalBayes.Model<Tensor>) (data: Map<string, Tensor>) =
        let guide = FunctionalBayes.Guide.auto FunctionalBayes.AutoGuideKind.AutoDiagonalNormal (FunctionalBayes.InitUniform 2.0) (Rng.key 1UL) (modelFn data)
        let cfg : FunctionalBayes.SviConfig<Tensor> =
            { Model = modelFn; Guide = guide; Optimizer = FunctionalBayes.Optimizer.AdamDefault 0.01
              Elbo = FunctionalBayes.Elbo.Batched 1; ClipNorm = None }
        let n = FunctionalBayes.Data.rows data
        let batch = FunctionalBayes.Data.slice 0 1000 data
        let mutable st = FunctionalBayes.Svi.init cfg (Rng.key 2UL) data
        let s = secondsPerCall 0.5 5 (fun () -> st <- FunctionalBayes.Svi.step cfg n batch st)
        report name (1.0 / s) "steps/s" None
        match FunctionalBayes.Svi.compileElbo cfg st (Rng.key 3UL) n batch with
        | Ok c ->
            report (name + "_compile_ms") c.CompileMilliseconds "ms" None
            let sc = secondsPerCall 0.5 5 (fun () -> st <- FunctionalBayes.Svi.stepCompiled c cfg batch st)
            report (name + "_compiled") (1.0 / sc) "steps/s" None
        | Error why -> eprintfn "%s: not compiled: %s" name why
    let n = 10_000
    let x = Rng.normal (Rng.key 3UL) [| n; 2 |]
    let y = Tensor.matmul x (Tensor.ofArray [| 0.8; -1.3 |]) + 0.5 * Rng.normal (Rng.key 4UL) [| n |]
    let simple (d: Map<string, Tensor>) = FunctionalBayes.ModelBuilderInstance.model {
        let! mu = FunctionalBayes.Layers.adaptive "x" d.["x"]
        return! FunctionalBayes.Links.gaussian "y" mu (d.TryFind "y")
    }
    run "svi_simple_steps_per_s" simple (Map [ "x", x; "y", y ])
    let xf = Rng.normal (Rng.key 5UL) [| n; 10 |]
    let yf = Tensor.sumAxes [| 1 |] false xf + 0.5 * Rng.normal (Rng.key 6UL) [| n |]
    let fm (d: Map<string, Tensor>) = FunctionalBayes.ModelBuilderInstance.model {
        let! f = FunctionalBayes.Layers.fm "fm" d.["x"] 3
        return! FunctionalBayes.Links.gaussian "y" f (d.TryFind "y")
    }
    run "svi_fm_d10_rank3_steps_per_s" fm (Map [ "x", xf; "y", yf ])
    // discrete likelihoods (BLayers' poisson and categorical links): compiled since issue 22
    let xa = Tensor.toArray x
    let noise = Tensor.toArray (Rng.uniform (Rng.key 7UL) [| n |])
    let counts = Array.init n (fun i -> floor (exp (0.4 * xa.[2 * i] - 0.3 * xa.[2 * i + 1]) * 2.0 * noise.[i]))
    let poisson (d: Map<string, Tensor>) = FunctionalBayes.ModelBuilderInstance.model {
        let! mu = FunctionalBayes.Layers.adaptive "x" d.["x"]
        return! FunctionalBayes.Links.poisson "y" mu (d.TryFind "y")
    }
    run "svi_poisson_steps_per_s" poisson (Map [ "x", x; "y", Tensor.ofArray counts ])
    let labels = Array.init n (fun i -> if noise.[i] < 0.2 then float (i % 3) elif xa.[2 * i] > 0.3 then 0.0 elif xa.[2 * i + 1] > 0.0 then 1.0 else 2.0)
    let categorical (d: Map<string, Tensor>) = FunctionalBayes.ModelBuilderInstance.model {
        let! a = FunctionalBayes.Layers.adaptive "x1" d.["x"]
        let! b = FunctionalBayes.Layers.adaptive "x2" d.["x"]
        // each adaptive layer gives a column (n, 1): the logits are (n, 3)
        return! FunctionalBayes.Links.categorical "y" (Tensor.concat -1 [ a; b; Tensor.zerosLike a ]) (d.TryFind "y")
    }
    run "svi_categorical3_steps_per_s" categorical (Map [ "x", x; "y", Tensor.ofArray labels ])

/// Posterior-mean prediction for the QuickStart's model shape (intercept + adaptive(x) + adaptive(x²)
/// + FM rank 3, d = 5, float32): latency at batch 1 (p50, p99) and throughput at batch 4096, in process,
/// through this library's predictor (an OnnxBinding, its fastest path, and the allocating Run), and through a
/// bare ONNX Runtime InferenceSession called the fastest way (OrtValues over pinned arrays bound once with an
/// IoBinding, then RunWithBinding). Both sessions: the same bytes, one intra-op thread, default optimizations.
/// The bare and bound cases are measured in alternating rounds, so load from other processes hits both alike.
let onnx () =
    let d = 5
    let modelFn (data: Map<string, Tensor>) = FunctionalBayes.ModelBuilderInstance.model {
        let x = data.["x"]
        let! b = FunctionalBayes.Layers.intercept "b"
        let! lin = FunctionalBayes.Layers.adaptive "x" x
        let! quad = FunctionalBayes.Layers.adaptive "x2" (Tensor.square x)
        let! fm = FunctionalBayes.Layers.fm "fm" x 3
        return! FunctionalBayes.Links.gaussian "y" (b + lin + quad + fm) (data.TryFind "y")
    }
    let example = Map [ "x", Rng.normal (Rng.key 1UL) [| 16; d |] ]
    let _, tr = FunctionalBayes.Traced.run (Rng.key 2UL) (modelFn example)
    let points = FunctionalBayes.Trace.latents tr |> Array.filter (fun s -> s.Name <> "y") |> Array.map (fun s -> s.Name, s.Value.Value) |> Map.ofArray
    let bytes = FunctionalBayes.Onnx.Export.toModel FunctionalBayes.Onnx.ExportOptions.Default modelFn points example |> FunctionalBayes.Onnx.Export.toBytes
    use predictor = FunctionalBayes.OnnxRuntime.OnnxPredictor.Load(bytes, FunctionalBayes.OnnxRuntime.PredictorOptions(IntraOpThreads = 1))
    use bareOptions = new Microsoft.ML.OnnxRuntime.SessionOptions(IntraOpNumThreads = 1)
    use session = new Microsoft.ML.OnnxRuntime.InferenceSession(bytes, bareOptions)
    use runOptions = new Microsoft.ML.OnnxRuntime.RunOptions()
    let percentile (p: float) (xs: float[]) = let s = Array.sort xs in s.[min (s.Length - 1) (int (p * float s.Length))]
    let latencies (n: int) (f: unit -> unit) =
        for _ in 1 .. 500 do f ()
        Array.init n (fun _ ->
            let t = Diagnostics.Stopwatch.GetTimestamp()
            f ()
            float (Diagnostics.Stopwatch.GetTimestamp() - t) / float Diagnostics.Stopwatch.Frequency * 1e6)
    /// Measures each case in `rounds` alternating rounds and pools the samples per case.
    let alternating (rounds: int) (measure: (unit -> unit) -> float[]) (cases: (string * (unit -> unit)) list) =
        let pooled = cases |> List.map (fun (name, _) -> name, ResizeArray<float>()) |> dict
        for _ in 1 .. rounds do
            for name, f in cases do pooled.[name].AddRange(measure f)
        fun name -> pooled.[name].ToArray()
    for batch in [ 1; 4096 ] do
        let x = Rng.normal (Rng.key 3UL) [| batch; d |]
        let xf = Tensor.toArrayF32 x
        let shape = [| int64 batch; int64 d |]
        let inProcess () = FunctionalBayes.Onnx.Export.predict modelFn points (Map [ "x", x ]) |> ignore
        let viaRun () = predictor.Run("x", xf, shape) |> ignore
        use binding = predictor.Bind("x", FunctionalBayes.OnnxRuntime.OnnxArray.FromFloat32(Array.copy xf, shape))
        let viaBinding () = binding.Run()
        // the bare session, the fastest way: pinned arrays bound once
        let bareIn = Array.copy xf
        let bareOut = Array.zeroCreate<float32> batch
        use inValue = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(bareIn, shape)
        use outValue = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(bareOut, [| int64 batch |])
        use io = session.CreateIoBinding()
        io.BindInput("x", inValue)
        io.BindOutput("y_mean", outValue)
        let bare () = session.RunWithBinding(runOptions, io)
        bare ()
        let bound = binding.Outputs.["y_mean"].GetData<float32>()
        let maxDiff = Array.map2 (fun (a: float32) b -> abs (float a - float b)) bareOut bound |> Array.max
        if maxDiff > 0.0 then failwithf "onnx: the bound predictor and the bare session disagree by %g" maxDiff
        let bareName = "bare InferenceSession, IoBinding over pinned arrays, same graph, same run"
        if batch = 1 then
            let paired = alternating 5 (latencies 4000) [ "bare", bare; "binding", viaBinding ]
            let bareP50 = percentile 0.5 (paired "bare")
            report "onnx_onnxruntime_bare_batch1_p50" bareP50 "us" None
            report "onnx_onnxruntime_bare_batch1_p99" (percentile 0.99 (paired "bare")) "us" None
            report "onnx_onnxruntime_predictor_batch1_p50" (percentile 0.5 (paired "binding")) "us" (Some (bareP50, bareName))
            report "onnx_onnxruntime_predictor_batch1_p99" (percentile 0.99 (paired "binding")) "us" None
            for name, f in [ "onnxruntime_predictor_run", viaRun; "in_process", inProcess ] do
                let l = latencies 20000 f
                report (sprintf "onnx_%s_batch1_p50" name) (percentile 0.5 l) "us" (if name = "in_process" then None else Some (bareP50, bareName))
                report (sprintf "onnx_%s_batch1_p99" name) (percentile 0.99 l) "us" None
        else
            let paired = alternating 3 (batchTimes 0.2 5) [ "bare", bare; "binding", viaBinding ]
            let bareRate = float batch / percentile 0.5 (paired "bare")
            report "onnx_onnxruntime_bare_batch4096_rows_per_s" bareRate "rows/s" None
            report "onnx_onnxruntime_predictor_batch4096_rows_per_s" (float batch / percentile 0.5 (paired "binding")) "rows/s" (Some (bareRate, bareName))
            report "onnx_onnxruntime_predictor_run_batch4096_rows_per_s" (float batch / secondsPerCall 0.5 5 viaRun) "rows/s" (Some (bareRate, bareName))
            report "onnx_in_process_batch4096_rows_per_s" (float batch / secondsPerCall 0.5 5 inProcess) "rows/s" None

/// The pieces of the logistic-regression gradient (n = 5000, d = 20, issue 24), each the fastest of 11 batches
/// in µs of this thread's CPU time (robust to a loaded machine): X·β and Xᵀr (GEMV), softplus and sigmoid over 5000 values, the hand-written tape gradient with its
/// bytes per call, and the compiled unfused model's listing.
let logisticParts () =
    reportIsa "logisticparts"
    let x, yl = logisticData ()
    let xs = match x.Storage with F64 a -> a | _ -> failwith "float64"
    let b = randomArray 7 20
    let eta = Array.zeroCreate<float> 5000
    let r = randomArray 8 5000
    let gb = Array.zeroCreate<float> 20
    let fastestUs f = (cpuBatchTimes 0.1 11 f).[0] * 1e6
    report "parts_gemvN_5000x20" (fastestUs (fun () -> Gemm.gemmF64 false false 5000 1 20 xs 0 20 b 0 1 eta 0 1 false)) "us" None
    report "parts_gemvT_20x5000" (fastestUs (fun () -> Gemm.gemmF64 true false 20 1 5000 xs 0 20 r 0 1 gb 0 1 false)) "us" None
    // the 256-bit kernels (Gemv) called directly: on an AVX-512 machine, against the masked 512-bit ones above
    let gemv256 (trans: bool) =
        fun () ->
            use px = fixed xs
            use pb = fixed b
            use pr = fixed r
            use pe = fixed eta
            use pg = fixed gb
            if trans then Gemv.gemvT64 20 5000 px 20 pr pg 1 false else Gemv.gemvN64 5000 20 px 20 pb pe 1 false
    report "parts_gemvN_256_5000x20" (fastestUs (gemv256 false)) "us" None
    report "parts_gemvT_256_20x5000" (fastestUs (gemv256 true)) "us" None
    report "parts_softplus_5000" (fastestUs (fun () -> Special.softplusSpan (ReadOnlySpan r) (Span eta))) "us" None
    report "parts_sigmoid_5000" (fastestUs (fun () -> Special.sigmoidSpan (ReadOnlySpan r) (Span eta))) "us" None
    report "parts_exp_5000" (fastestUs (fun () -> TensorPrimitives.Exp(ReadOnlySpan r, Span eta))) "us" None
    report "parts_mul_5000" (fastestUs (fun () -> Simd.Multiply(ReadOnlySpan r, ReadOnlySpan(xs, 0, 5000), Span eta))) "us" None
    let bt = Tensor.ofArray b
    report "parts_matmul_tensor" (fastestUs (fun () -> Tensor.matmul x bt |> ignore)) "us" None
    let g = logisticRegression ()
    report "parts_tape_grad" (fastestUs (fun () -> Autodiff.valueAndGrad g bt |> ignore)) "us" None
    report "parts_tape_grad_bytes_per_call" (allocatedPerCall 2000 (fun () -> Autodiff.valueAndGrad g bt |> ignore)) "B" None
    let compiled (name: string) (model: Tensor -> Tensor -> FunctionalBayes.Model<Tensor>) =
        match FunctionalBayes.Compilation.compileWithData (fun dt -> FunctionalBayes.LogDensity.potential (Rng.key 1UL) (model dt.[0] dt.[1])) [| x; yl |] [| bt |] with
        | FunctionalBayes.Compiled cp ->
            eprintfn "%s:\n%s" name cp.Listing
            let e = cp.Source.Create()
            let gr = Array.zeroCreate<float> 20
            report (sprintf "parts_%s_compiled" name) (fastestUs (fun () -> e.Evaluate(ReadOnlySpan b, Span gr) |> ignore)) "us" None
        | FunctionalBayes.FellBack (why, _) -> eprintfn "%s: not compiled: %s" name why
    compiled "model" logisticModel
    compiled "glm" logisticGlmModel

/// Chains of element-wise ops, compiled (issue 22, fused loops): a normal likelihood on μ = a + x·b and a
/// two-component normal mixture's log density over n = 5000 (in L2) and 100000 values, µs per value and
/// gradient (median and fastest of 11 batches of this thread's CPU time), and each program's listing (stderr).
let fusion () =
    reportIsa "fusion"
    let normal (xs: Tensor[]) =
        let a, b, logSigma, x, y = xs.[0], xs.[1], xs.[2], xs.[3], xs.[4]
        let z = (y - (a + x * b)) / Tensor.exp logSigma
        Tensor.sum (-0.5 * (z * z) - logSigma)
    let mixture (xs: Tensor[]) =
        let m1, m2, ls1, ls2, lw, y = xs.[0], xs.[1], xs.[2], xs.[3], xs.[4], xs.[6]
        let s1, s2 = Tensor.exp ls1, Tensor.exp ls2
        let w = Tensor.sigmoid lw
        let z1 = (y - m1) / s1
        let z2 = (y - m2) / s2
        Tensor.sum (Tensor.log (w / s1 * Tensor.exp (-0.5 * (z1 * z1)) + (1.0 - w) / s2 * Tensor.exp (-0.5 * (z2 * z2))))
    let run (name: string) (n: int) (f: Tensor[] -> Tensor) (p: float[]) (data: Tensor[]) =
        let ps = p |> Array.map Tensor.scalar
        let ps2 = p |> Array.map (fun v -> Tensor.scalar (0.3 - 0.9 * v))
        match Compiler.compile f ps ps2 data with
        | Error why -> eprintfn "%s: not compiled: %s" name why
        | Ok cg ->
            eprintfn "%s, n = %d:\n%s" name n cg.Listing
            let e = cg.Bind(data).CreateEvaluator()
            let g = Array.zeroCreate<float> p.Length
            let t = cpuBatchTimes 0.3 11 (fun () -> e.Evaluate(ReadOnlySpan p, Span g) |> ignore)
            report (sprintf "fusion_%s_n%d_compiled" name n) (t.[t.Length / 2] * 1e6) "us" None
            report (sprintf "fusion_%s_n%d_compiled_min" name n) (t.[0] * 1e6) "us" None
    for n in [ 5000; 100_000 ] do
        let x = Tensor.ofArray (randomArray 11 n)
        let y = Tensor.ofArray (randomArray 12 n |> Array.map (fun v -> 3.0 * v))
        run "normal" n normal [| 0.3; -0.7; 0.1 |] [| x; y |]
        run "mixture" n mixture [| -1.0; 1.0; 0.2; -0.1; 0.3 |] [| x; y |]
