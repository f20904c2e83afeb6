/// Timing and the one-JSON-line-per-figure output format.
module FunctionalBayes.Benchmarks.Measure

open System
open System.Diagnostics
open System.Globalization

/// Seconds per call of f in each batch, sorted: warm up, then time batches sized to about `batchSeconds` each.
let batchTimes (batchSeconds: float) (batches: int) (f: unit -> unit) =
    for _ in 1 .. 3 do f ()
    let sw = Stopwatch.StartNew()
    let mutable calls = 0
    while sw.Elapsed.TotalSeconds < 0.2 || calls < 3 do
        f ()
        calls <- calls + 1
    let perCall = sw.Elapsed.TotalSeconds / float calls
    let n = max 1 (int (batchSeconds / perCall))
    let times =
        Array.init batches (fun _ ->
            let sw = Stopwatch.StartNew()
            for _ in 1 .. n do f ()
            sw.Elapsed.TotalSeconds / float n)
    Array.sortInPlace times
    times

[<Struct; Runtime.InteropServices.StructLayout(Runtime.InteropServices.LayoutKind.Sequential)>]
type private Timespec =
    val mutable Sec: int64
    val mutable Nsec: int64

[<Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")>]
extern int private clockGettime(int clock, Timespec& ts)

/// This thread's CPU seconds (Linux CLOCK_THREAD_CPUTIME_ID; the wall clock elsewhere): on a shared machine
/// it leaves out the time other processes held the core, which the wall clock counts.
let threadCpuSeconds () =
    if OperatingSystem.IsLinux() then
        let mutable ts = Timespec()
        clockGettime(3, &ts) |> ignore
        float ts.Sec + 1e-9 * float ts.Nsec
    else float (Stopwatch.GetTimestamp()) / float Stopwatch.Frequency

/// batchTimes in this thread's CPU seconds per call, sorted.
let cpuBatchTimes (batchSeconds: float) (batches: int) (f: unit -> unit) =
    for _ in 1 .. 3 do f ()
    let t0 = threadCpuSeconds ()
    let mutable calls = 0
    // long enough for the runtime's background tier-up of the BCL's vector math (slow under load)
    while threadCpuSeconds () - t0 < 0.4 || calls < 3 do
        f ()
        calls <- calls + 1
    let n = max 1 (int (batchSeconds / ((threadCpuSeconds () - t0) / float calls)))
    let times =
        Array.init batches (fun _ ->
            let t = threadCpuSeconds ()
            for _ in 1 .. n do f ()
            (threadCpuSeconds () - t) / float n)
    Array.sortInPlace times
    times

/// Median seconds per call of f over batches.
let secondsPerCall (batchSeconds: float) (batches: int) (f: unit -> unit) =
    let times = batchTimes batchSeconds batches f
    times.[times.Length / 2]

let private num (v: float) = v.ToString("G6", CultureInfo.InvariantCulture)

/// Prints {"name":..,"value":..,"unit":..} and, given a baseline measured on this machine, its ratio.
let report (name: string) (value: float) (unit: string) (baseline: (float * string) option) =
    match baseline with
    | None -> printfn """{"name":"%s","value":%s,"unit":"%s"}""" name (num value) unit
    | Some (b, source) ->
        printfn """{"name":"%s","value":%s,"unit":"%s","baseline":%s,"baseline_source":"%s","ratio":%s}"""
            name (num value) unit (num b) source (num (value / b))

/// Prints {"name":..,"text":..}: a fact about the run (the instruction set, the library compared with).
let reportText (name: string) (text: string) =
    printfn """{"name":"%s","text":"%s"}""" name (text.Replace("\\", "\\\\").Replace("\"", "\\\""))

/// Prints which instruction set the kernels run on in this process.
let reportIsa (suite: string) =
    reportText (suite + "_isa") (FunctionalBayes.Tensors.Gemm.instructionSet ())
