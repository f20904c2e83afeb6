/// OpenBLAS (or whichever BLAS NumPy loads) measured side by side: a NumPy process per thread count that
/// times matrix products on request, so that its rounds alternate with ours under the same machine load.
module FunctionalBayes.Benchmarks.OpenBlas

open System
open System.Diagnostics
open System.Globalization
open System.IO

/// The helper: prints which BLAS library the process mapped (and OpenBLAS's kernel name when it is
/// OpenBLAS), then answers "f64|f32 m n k transA seconds batches" with the fastest seconds per call of `batches` batches.
let private script = """
import sys, time, ctypes
import numpy as np
libs = sorted({l.split()[-1] for l in open('/proc/self/maps').read().splitlines()
               if '/' in l and any(w in l.split()[-1].lower() for w in ('blas', 'mkl', 'blis', 'atlas'))})
core = ''
for l in libs:
    if 'openblas' in l.lower():
        try:
            lib = ctypes.CDLL(l)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            core = ' kernel=' + lib.openblas_get_corename().decode() + ' config=' + lib.openblas_get_config().decode()
        except Exception:
            pass
print('BLAS ' + (' '.join(libs) if libs else 'none found') + core, flush=True)
rng = np.random.default_rng(1)
for line in sys.stdin:
    dt, m, n, k, ta, secs, batches = line.split()
    m, n, k, secs = int(m), int(n), int(k), float(secs)
    t = np.float64 if dt == 'f64' else np.float32
    a = rng.random((k, m)).astype(t).T if ta == '1' else rng.random((m, k)).astype(t)
    b = rng.random((k, n)).astype(t) if n > 1 else rng.random(k).astype(t)
    c = np.empty((m, n) if n > 1 else m, dtype=t)
    np.matmul(a, b, out=c)
    t0 = time.perf_counter(); calls = 0
    while time.perf_counter() - t0 < secs / 4 or calls < 1:
        np.matmul(a, b, out=c); calls += 1
    per = (time.perf_counter() - t0) / calls
    reps = max(1, int(secs / int(batches) / per))
    best = float('inf')
    for _ in range(int(batches)):
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - t0) / reps)
    print(best, flush=True)
"""

/// A running NumPy helper pinned to `threads` BLAS threads.
type Session private (p: Process, blas: string) =
    /// The BLAS library the helper loaded, as it reported it.
    member _.Blas = blas
    /// The fastest seconds per call of op(A)[m×k] · B[k×n] (n = 1: a vector) over a few batches.
    member _.Seconds(dtype: string, m: int, n: int, k: int, transA: bool, seconds: float, batches: int) =
        p.StandardInput.WriteLine(sprintf "%s %d %d %d %d %s %d" dtype m n k (if transA then 1 else 0) (seconds.ToString(CultureInfo.InvariantCulture)) batches)
        p.StandardInput.Flush()
        match p.StandardOutput.ReadLine() with
        | null -> failwith "the NumPy helper stopped answering"
        | line -> Double.Parse(line, CultureInfo.InvariantCulture)
    interface IDisposable with
        member _.Dispose() =
            try
                p.StandardInput.Close()
                if not (p.WaitForExit 5000) then p.Kill()
            finally
                p.Dispose()
    /// The Pythons tried, in order: $FB_PYTHON when set, then python3 on PATH (often a pyenv shim without NumPy),
    /// then /usr/bin/python3; the first whose NumPy imports is used.
    static member private Candidates() =
        [ match Environment.GetEnvironmentVariable "FB_PYTHON" with
          | null | "" -> ()
          | p -> yield p
          yield "python3"
          yield "/usr/bin/python3" ]

    /// Starts the helper under the first candidate Python that imports NumPy (Blas then names that Python),
    /// or Error with each candidate's reason.
    static member Start(threads: int) : Result<Session, string> =
        let tryOne (python: string) : Result<Session, string> =
            let psi = ProcessStartInfo(python, [| "-c"; script |])
            psi.RedirectStandardInput <- true
            psi.RedirectStandardOutput <- true
            psi.RedirectStandardError <- true
            psi.UseShellExecute <- false
            for v in [ "OPENBLAS_NUM_THREADS"; "OMP_NUM_THREADS"; "MKL_NUM_THREADS"; "BLIS_NUM_THREADS" ] do
                psi.Environment.[v] <- string threads
            match (try Process.Start psi with _ -> null) with
            | null -> Error (sprintf "%s: could not start" python)
            | p ->
                match p.StandardOutput.ReadLine() with
                | null ->
                    let err = p.StandardError.ReadToEnd()
                    p.WaitForExit()
                    p.Dispose()
                    let last = err.Trim().Split('\n') |> Array.last
                    Error (sprintf "%s: NumPy did not start (%s)" python last)
                | first -> Ok (new Session(p, first.Substring 5 + sprintf " (NumPy under %s)" python))
        let rec go (tried: string list) (candidates: string list) =
            match candidates with
            | [] -> Error (String.Join("; ", List.rev tried))
            | python :: rest ->
                match tryOne python with
                | Ok s -> Ok s
                | Error why -> go (why :: tried) rest
        go [] (Session.Candidates())
