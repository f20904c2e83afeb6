/// The firstcall suite: is a fresh process's first fit as fast per gradient as its repeat? Each sample is a new
/// process (this program started with `firstcall-child MODEL`), which runs the default NUTS fit (4 chains of
/// 1000 + 1000) twice and reports the µs per gradient inside each fit's evaluators; and an SVI fit (2,000
/// minibatch steps, the whole step loop timed) twice, µs per step.
module FunctionalBayes.Benchmarks.FirstCallSuite

open System
open System.Diagnostics
open System.Globalization
open System.Threading
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Benchmarks.Measure

/// GARCH(1,1) returns (T = 100) simulated from a fixed seed with μ = 0.1, α₀ = 0.2, α₁ = 0.3, β₁ = 0.5.
let private garchData =
    let r = Random(11)
    let normal () = sqrt (-2.0 * log (1.0 - r.NextDouble())) * cos (2.0 * Math.PI * r.NextDouble())
    let t = 100
    let y = Array.zeroCreate t
    let mutable s2 = 1.0
    for i in 0 .. t - 1 do
        y.[i] <- 0.1 + sqrt s2 * normal ()
        s2 <- 0.2 + 0.3 * (y.[i] - 0.1) ** 2.0 + 0.5 * s2
    y

/// posteriordb's garch11: σ²ₜ = α₀ + α₁ (yₜ₋₁ − μ)² + β₁ σ²ₜ₋₁ (σ₁ = 1), yₜ ~ Normal(μ, σₜ), with β₁ < 1 − α₁ as
/// β₁ = (1 − α₁) u; weak proper priors.
let private garch = model {
    let y = garchData
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 10.0))
    let! alpha0 = Model.sample "alpha0" (HalfNormal (Tensor.scalar 10.0))
    let! alpha1 = Model.sample "alpha1" (Uniform (Tensor.scalar 0.0, Tensor.scalar 1.0))
    let! u = Model.sample "u" (Uniform (Tensor.scalar 0.0, Tensor.scalar 1.0))
    let beta1 = (1.0 - alpha1) * u
    let sigma2 = Array.zeroCreate y.Length
    sigma2.[0] <- Tensor.scalar 1.0
    for t in 1 .. y.Length - 1 do
        sigma2.[t] <- alpha0 + alpha1 * Tensor.square (y.[t - 1] - mu) + beta1 * sigma2.[t - 1]
    let sigma = Tensor.sqrt (Tensor.stack 0 sigma2)
    return! Model.observe "y" (Independent (Normal (mu + Tensor.zeros [| y.Length |], sigma), 1)) (Some (Tensor.ofArray y))
}

let private models = [ "eight_schools", NutsSuite.eightSchools; "garch11", garch ]

/// A BLayers-like Gaussian regression held in memory: 200,000 rows of 18 features and a categorical column of
/// 1,000 levels, y = x·β + u[g] + 0.5 + ε (the Tables example's model, smaller).
let private sviRows = 200_000
let private sviData =
    lazy
        let k = Rng.key 7UL
        let x = Rng.normal k [| sviRows; 18 |]
        let ids = Tensor.toArray (Rng.uniform (Rng.foldIn k 1) [| sviRows |]) |> Array.map (fun v -> min 999 (int (v * 1000.0)))
        let beta = Tensor.ofArray (Array.init 18 (fun j -> (if j % 2 = 0 then 1.0 else -1.0) / float (j + 1)))
        let u = Rng.normal (Rng.foldIn k 2) [| 1000 |] * 0.5
        let y = Tensor.matmul x (Tensor.reshape [| 18; 1 |] beta) |> Tensor.reshape [| sviRows |]
        let y = y + Tensor.indexSelect 0 (Tensor.ofInts ids) u + 0.5 + Rng.normal (Rng.foldIn k 3) [| sviRows |] * 0.7
        Map.ofList [ "x", x; "g", Tensor.ofInts ids; "y", y ]

let private blayers (d: Map<string, Tensor>) = model {
    let! mu = Layers.adaptive "x" d.["x"]
    let! re = Layers.randomEffects "g" d.["g"] 1000
    let! b = Layers.intercept "b"
    return! Links.gaussian "y" (mu + re + b) (d.TryFind "y")
}

/// µs per SVI step of one fit (2,000 steps, minibatch 1,024) on the in-memory rows.
let private sviMicros () =
    let opts = { FitOptions.Default with Run.Steps = Some 2000; Run.BatchSize = Some 1024; LearningRate = 0.01; Seed = 1UL }
    let data = sviData.Force()
    let sw = Stopwatch.StartNew()
    let _, r = Fit.viRun opts blayers data
    sw.Elapsed.TotalSeconds * 1e6 / float r.Losses.Length

/// An evaluator that counts its calls and the time spent inside them (shared by all chains).
type private Counting(inner: IGradientEvaluator, calls: int64 ref, ticks: int64 ref) =
    interface IGradientEvaluator with
        member _.Dim = inner.Dim
        member _.Evaluate(q, g) =
            let t0 = Stopwatch.GetTimestamp()
            let u = inner.Evaluate(q, g)
            Interlocked.Add(&ticks.contents, Stopwatch.GetTimestamp() - t0) |> ignore
            Interlocked.Increment(&calls.contents) |> ignore
            u

/// µs per gradient inside one default NUTS fit.
let private fitMicros (m: Model<Tensor>) =
    let calls = ref 0L
    let ticks = ref 0L
    let counting (p: Potential) =
        let s = Compilation.auto p
        { s with Create = fun () -> Counting(s.Create(), calls, ticks) :> IGradientEvaluator }
    Mcmc.runWithSource RunContext.Quiet { McmcOptions.Default with Seed = 1UL } counting m |> ignore
    float ticks.Value / float Stopwatch.Frequency * 1e6 / float calls.Value

/// In a fresh process: the first fit, then the same fit again; prints "first repeat" in µs per gradient.
let child (name: string) =
    let fit =
        if name = "svi_blayers" then sviData.Force() |> ignore; sviMicros
        else let m = models |> List.find (fun (n, _) -> n = name) |> snd in fun () -> fitMicros m
    let first = fit ()
    let repeat = fit ()
    printfn "%s %s" (first.ToString("R", CultureInfo.InvariantCulture)) (repeat.ToString("R", CultureInfo.InvariantCulture))

/// Over `samples` fresh processes per model: the median first-fit and repeat-fit µs per gradient and their ratio.
let run () =
    reportIsa "firstcall"
    let samples = 5
    let self = match Environment.ProcessPath with null -> "dotnet" | p -> p
    let dll = Reflection.Assembly.GetEntryAssembly() |> Option.ofObj |> Option.map (fun a -> a.Location) |> Option.defaultValue ""
    for name in (models |> List.map fst) @ [ "svi_blayers" ] do
        let unit = if name = "svi_blayers" then "us_per_step" else "us_per_grad"
        let pairs =
            Array.init samples (fun _ ->
                let psi = ProcessStartInfo(self, (if dll.EndsWith ".dll" then [| dll; "firstcall-child"; name |] else [| "firstcall-child"; name |]))
                psi.RedirectStandardOutput <- true
                psi.UseShellExecute <- false
                match Process.Start psi with
                | null -> failwith "firstcall: could not start a child process"
                | p ->
                    use p = p
                    let out = p.StandardOutput.ReadToEnd()
                    p.WaitForExit()
                    match out.Trim().Split(' ') with
                    | [| a; b |] -> Double.Parse(a, CultureInfo.InvariantCulture), Double.Parse(b, CultureInfo.InvariantCulture)
                    | _ -> failwithf "firstcall: child %s answered %A (exit %d)" name out p.ExitCode)
        let median (xs: float[]) = let s = Array.sort xs in s.[s.Length / 2]
        let first = median (Array.map fst pairs)
        let repeat = median (Array.map snd pairs)
        report (sprintf "firstcall_%s_first_fit_%s" name unit) first "us" None
        report (sprintf "firstcall_%s_repeat_fit_%s" name unit) repeat "us" None
        report (sprintf "firstcall_%s_first_over_repeat" name) (median (pairs |> Array.map (fun (a, b) -> a / b))) "ratio" None
