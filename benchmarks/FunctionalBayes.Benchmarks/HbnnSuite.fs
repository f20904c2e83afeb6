/// The hbnn suite: µs per value and gradient of the hierarchical BNN potential of BlackJAX's notebook
/// (18 tasks × 50 two-moons points, 2-5-5-1 tanh, the two hidden layers non-centered per task, the
/// output layer shared; 673 dimensions), compiled and on the tape, in process CPU time; and (hbnn-nuts) NUTS's
/// cost per leapfrog on it with a diagonal, a rank-270 low-rank and a dense metric.
module FunctionalBayes.Benchmarks.HbnnSuite

open System
open System.Diagnostics
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Benchmarks.Measure

let private tasks = 18
let private widths = [| 5; 5; 1 |]

let private classifier (data: Map<string, Tensor>) = model {
    let! logits = HierarchicalMlp.Default.Call("net", data.["x"], tasks, widths, [| 0; 1 |], Activations.tanh)
    return! Model.observe "y" (BernoulliLogits (Tensor.squeeze -1 logits)) (data.TryFind "y")
}

/// The notebook's potential on a fixed data set (seed 0).
let potential () =
    let data = Datasets.multiTaskMoons (Rng.key 0UL) tasks 100 50 0.3
    LogDensity.potential (Rng.key 1UL) (classifier (Map [ "x", data.XTrain; "y", data.YTrain ]))

/// Median over 7 batches of `reps` evaluations of the process CPU time per evaluation, in µs.
let cpuMicros (source: GradientSource) (reps: int) =
    let ev = source.Create()
    let q = Array.init ev.Dim (fun i -> 0.1 * float (i % 7) - 0.3)
    let g = Array.zeroCreate ev.Dim
    let warm = Stopwatch.StartNew()
    while warm.Elapsed.TotalSeconds < 1.0 do ev.Evaluate(ReadOnlySpan q, Span g) |> ignore
    let proc = Process.GetCurrentProcess()
    let batches =
        Array.init 7 (fun _ ->
            proc.Refresh()
            let cpu0 = proc.TotalProcessorTime
            for _ in 1 .. reps do ev.Evaluate(ReadOnlySpan q, Span g) |> ignore
            proc.Refresh()
            (proc.TotalProcessorTime - cpu0).TotalMilliseconds * 1000.0 / float reps)
    Array.sortInPlace batches
    batches.[batches.Length / 2], batches.[0]

/// HBNN_PROFILE=1: µs per gradient's worth of the nine small products (18 tasks each), GEMM vs smallGemm.
let profile () =
    let r = Random(3)
    let buf = Array.init 100_000 (fun _ -> r.NextDouble() - 0.5)
    let shapes =
        // tA, tB, m, n, k, lda, ldb : forward, dA, dB of layers 1 (k=2), 2 (k=5), 3 (n=1)
        [ "l1_fwd", false, false, 50, 5, 2, 2, 5
          "l1_dB", true, false, 2, 5, 50, 2, 5
          "l2_fwd", false, false, 50, 5, 5, 5, 5
          "l2_dA", false, true, 50, 5, 5, 5, 5
          "l2_dB", true, false, 5, 5, 50, 5, 5
          "l3_fwd", false, false, 50, 1, 5, 5, 1
          "l3_dA", false, true, 50, 5, 1, 1, 1
          "l3_dB", true, false, 5, 1, 50, 5, 1 ]
    for (name, tA, tB, m, n, k, lda, ldb) in shapes do
        let go small () =
            for q in 0 .. 17 do
                if small && CompiledKernels.smallGemmApplies m n k then CompiledKernels.smallGemm tA tB m n k buf (q * 300) lda buf (20_000 + q * 300) ldb buf (50_000 + q * 300) n true
                else Gemm.gemmF64Threads 1 tA tB m n k buf (q * 300) lda buf (20_000 + q * 300) ldb buf (50_000 + q * 300) n true
        let g = secondsPerCall 0.2 5 (go false)
        let s = secondsPerCall 0.2 5 (go true)
        report (sprintf "hbnn_%s_gemm" name) (g * 1e6) "us" None
        report (sprintf "hbnn_%s_small" name) (s * 1e6) "us" None

/// HBNN_PROFILE=1: µs per call of the element-wise kernels of the program (forward and backward).
let profileElementwise () =
    let r = Random(4)
    let v = Array.init 20_000 (fun _ -> r.NextDouble() - 0.5)
    let a = Array.zeroCreate<float> 20_000
    let time name (k: ProgramKernel) =
        let f = secondsPerCall 0.2 5 (fun () -> k.Forward(v, [||]))
        let b = secondsPerCall 0.2 5 (fun () -> k.Backward(v, a, [||]))
        report (sprintf "hbnn_%s_fwd" name) (f * 1e6) "us" None
        report (sprintf "hbnn_%s_bwd" name) (b * 1e6) "us" None
    time "tanh900" (CompiledKernels.Unary(Tanh, 0, 1000, 900, 2000, 3000, 4000))
    time "softplus900" (CompiledKernels.Unary(Softplus, 0, 1000, 900, 2000, 3000, 4000))
    let map = CompiledKernels.broadcastMap [| 5; 5 |] [| 18; 5; 5 |]
    time "add450_bcast" (CompiledKernels.Binary(Add, 0, map, 1000, [||], 2000, 450, 3000, 4000, 5000))
    time "mul450_scalar" (CompiledKernels.Binary(Mul, 0, CompiledKernels.broadcastMap [| 1 |] [| 18; 5; 5 |], 1000, [||], 2000, 450, 3000, 4000, 5000))
    time "mul900_plain" (CompiledKernels.Binary(Mul, 0, [||], 1000, [||], 2000, 900, 3000, 4000, 5000))

/// A random orthonormal set of k vectors in d dimensions (Gram-Schmidt on Gaussian vectors), laid end to end.
let private orthonormal (seed: int) (d: int) (k: int) =
    let r = Random(seed)
    let vs = Array.zeroCreate<float> (k * d)
    for j in 0 .. k - 1 do
        let o = j * d
        for i in 0 .. d - 1 do vs.[o + i] <- r.NextDouble() - 0.5
        for _ in 1 .. 2 do
            for m in 0 .. j - 1 do
                let c = Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan<float>(vs, m * d, d), ReadOnlySpan<float>(vs, o, d))
                for i in 0 .. d - 1 do vs.[o + i] <- vs.[o + i] - c * vs.[m * d + i]
        let n = sqrt (Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan<float>(vs, o, d), ReadOnlySpan<float>(vs, o, d)))
        for i in 0 .. d - 1 do vs.[o + i] <- vs.[o + i] / n
    vs

/// Process CPU µs per leapfrog of NUTS transitions (gradient and sampler together) on the HBNN potential with
/// a fixed metric: median of 7 batches of at least 2000 leapfrogs, after a warm-up batch.
let nutsMicrosPerLeapfrog (source: GradientSource) (metric: Metric) =
    let ev = source.Create()
    let k = Nuts.kernel ev { NutsParameters.Create(0.002, metric) with MaxTreeDepth = 6 }
    let mutable s = k.Init (Array.init ev.Dim (fun i -> 0.1 * float (i % 7) - 0.3))
    let mutable t = 0
    let batch () =
        let mutable leapfrogs = 0
        while leapfrogs < 2000 do
            let s', info = k.Step (Rng.foldIn (Rng.key 5UL) t) s
            s <- s'
            t <- t + 1
            leapfrogs <- leapfrogs + info.NumLeapfrog
        leapfrogs
    batch () |> ignore
    let proc = Process.GetCurrentProcess()
    let batches =
        Array.init 7 (fun _ ->
            proc.Refresh()
            let cpu0 = proc.TotalProcessorTime
            let n = batch ()
            proc.Refresh()
            (proc.TotalProcessorTime - cpu0).TotalMilliseconds * 1000.0 / float n)
    Array.sortInPlace batches
    batches.[batches.Length / 2]

/// The sampler's cost per leapfrog beside the gradient's, per metric: diagonal, low rank with k = 270
/// directions (about the rank Fisher low-rank adaptation keeps on this posterior) and dense. Prints
/// hbnn_nuts_<metric>_us_per_leapfrog and, for the last two, the extra over the diagonal metric.
let nuts () =
    let p = potential ()
    let compiled = Compilation.auto p
    let d = FlatPosition.dim p
    let r = Random(11)
    let scale = Array.init d (fun _ -> 0.05 + 0.2 * r.NextDouble())
    let k = 270
    let values = Array.init k (fun _ -> exp (4.0 * r.NextDouble() - 2.0))
    let lowRank = Metric.lowRank scale (orthonormal 12 d k) values
    let metrics =
        [ "diagonal", Metric.diagonal (Array.map (fun v -> v * v) scale)
          "lowrank270", lowRank
          "dense", Metric.dense (Metric.inverseMassMatrix lowRank) ]
    let grad, _ = cpuMicros compiled 2000
    report "hbnn_nuts_grad_us" grad "us" None
    let times = metrics |> List.map (fun (name, m) -> name, nutsMicrosPerLeapfrog compiled m)
    for name, us in times do report (sprintf "hbnn_nuts_%s_us_per_leapfrog" name) us "us" None
    // what the metric costs beyond the diagonal one, in the same sampler loop (the gradient at a fixed point
    // above is not the trajectory's average)
    let diag = snd times.Head
    for name, us in times.Tail do report (sprintf "hbnn_nuts_%s_extra_us_per_leapfrog_vs_diagonal" name) (us - diag) "us" None

/// Prints grad_hbnn_compiled(_min) and grad_hbnn_tape(_min) in µs (process CPU time), and the bytes the
/// compiled gradient allocates per call (grad_hbnn_compiled_alloc).
let run () =
    let p = potential ()
    let compiled = Compilation.auto p
    match compiled.Kind with
    | GradientKind.Compiled _ -> ()
    | GradientKind.Tape | GradientKind.TapeFallback _ | GradientKind.Custom _ -> eprintfn "hbnn: %s" compiled.Kind.Text
    let med, mn = cpuMicros compiled 5000
    report "grad_hbnn_compiled" med "us" None
    report "grad_hbnn_compiled_min" mn "us" None
    let ev = compiled.Create()
    let q = Array.init ev.Dim (fun i -> 0.1 * float (i % 7) - 0.3)
    let g = Array.zeroCreate ev.Dim
    for _ in 1 .. 100 do ev.Evaluate(ReadOnlySpan q, Span g) |> ignore
    let b0 = GC.GetAllocatedBytesForCurrentThread()
    for _ in 1 .. 1000 do ev.Evaluate(ReadOnlySpan q, Span g) |> ignore
    report "grad_hbnn_compiled_alloc" (float (GC.GetAllocatedBytesForCurrentThread() - b0) / 1000.0) "bytes" None
    let med, mn = cpuMicros (GradientSource.tape p) 500
    report "grad_hbnn_tape" med "us" None
    report "grad_hbnn_tape_min" mn "us" None
    if Environment.GetEnvironmentVariable "HBNN_PROFILE" = "1" then
        profile ()
        profileElementwise ()
    if Environment.GetEnvironmentVariable "HBNN_LISTING" = "1" then
        match Compilation.compile p (p.Latents |> Array.mapi (fun i l -> Rng.uniform (Rng.foldIn (Rng.key 0x5EEDUL) i) l.UnconstrainedShape * 3.0 - 1.5)) with
        | Compiled cp -> eprintfn "%s" cp.Listing
        | FellBack (why, _) -> eprintfn "not compiled: %s" why

