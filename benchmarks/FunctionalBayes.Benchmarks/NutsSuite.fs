/// The nuts suite: NUTS with Stan's adaptation on eight schools (non-centered) and a logistic regression
/// (n = 5000, d = 20), both written with model { } and sampled through LogDensity.potential; then every
/// metric adapter on the shared posteriordb posteriors, per gradient and per second, beside rstan.
module FunctionalBayes.Benchmarks.NutsSuite

open System
open System.Diagnostics
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Benchmarks.Measure
open FunctionalBayes.PosteriorDb

/// Eight schools, non-centered, as a user writes it (also the firstcall suite's first model).
let eightSchools = model {
    let y = Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
    let sigma = Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (HalfCauchy (Tensor.scalar 5.0))
    let! eta = Model.sample "theta_trans" (Independent (Normal (Tensor.zeros [| 8 |], Tensor.ones [| 8 |]), 1))
    return! Model.observe "y" (Independent (Normal (mu + tau * eta, sigma), 1)) (Some y)
}

let private logistic =
    let x, y = Suites.logisticData ()
    Suites.logisticModel x y

let private bench (name: string) (m: Model<Tensor>) =
    let p = LogDensity.potential (Rng.key 1UL) m
    let q = Array.init (FlatPosition.dim p) (fun i -> 0.1 * float (i % 5) - 0.2)
    let g = Array.zeroCreate q.Length
    // µs per value and gradient on the tape and compiled (what Mcmc.run uses by default when the graph is static)
    for kind, source in [ "tape", GradientSource.tape p; "compiled", Compilation.auto p ] do
        let ev = source.Create()
        let t = batchTimes 0.3 11 (fun () -> ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g)) |> ignore)
        report (sprintf "nuts_%s_grad_%s" name kind) (t.[t.Length / 2] * 1e6) "us" None
    let sw = Stopwatch.StartNew()
    let r = Mcmc.runIn RunContext.Quiet { McmcOptions.Default with Seed = 1UL } m
    let wall = sw.Elapsed.TotalSeconds
    let leapfrogs = r.Flat.Stats |> Array.sumBy (fun s -> s.NumLeapfrog |> Array.sum)
    let samplingSeconds = r.Flat.Stats |> Array.sumBy (fun s -> s.SamplingSeconds)
    report (sprintf "nuts_%s_leapfrogs_per_s" name) (float leapfrogs / samplingSeconds) "1/s" None
    report (sprintf "nuts_%s_wall_4x(1000+1000)" name) wall "s" None
    let minEss = Mcmc.summary r |> Array.map (fun s -> s.EssBulk) |> Array.min
    report (sprintf "nuts_%s_min_ess_bulk_per_s" name) (minEss / wall) "1/s" None
    report (sprintf "nuts_%s_divergences" name) (r.Flat.Stats |> Array.sumBy (fun s -> s.Divergent |> Array.filter id |> Array.length) |> float) "count" None
    r, wall

/// The metric adapters compared in the posteriordb section.
let private adapters =
    [ MetricAdaptation.Stan; MetricAdaptation.FisherDiagonal; MetricAdaptation.FisherLowRank LowRankSettings.Default ]

let private adapterTag (a: MetricAdaptation) =
    match a with
    | MetricAdaptation.Stan -> "stan_adapter"
    | MetricAdaptation.Dense -> "dense"
    | MetricAdaptation.FisherDiagonal -> "fisher_diag"
    | MetricAdaptation.FisherLowRank _ -> "fisher_lowrank"

/// The model's gradient source (compiled when static) counting every evaluation, warmup and searches included.
let private counting (count: int64 ref) (p: Potential) = GradientSource.instrumented count (ref 0L) (Compilation.auto p)

/// Whether R's rstan can be loaded (Rscript on the PATH with the package installed).
let private rstanPresent () =
    try
        let psi = ProcessStartInfo("Rscript", "-e \"suppressPackageStartupMessages(library(rstan))\"", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
        use p = nonNull (Process.Start psi)
        p.StandardOutput.ReadToEnd() |> ignore
        p.StandardError.ReadToEnd() |> ignore
        p.WaitForExit()
        p.ExitCode = 0
    with _ -> false

/// Runs benchmarks/peers/rstan_nuts.R on a posterior; its JSON lines are printed as they are, and the min
/// bulk ESS per gradient returned.
let private rstan (name: string) (json: string) (chains: int) (warmup: int) (samples: int) =
    let script = IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "peers", "rstan_nuts.R")
    let cache = IO.Path.Combine(IO.Path.GetTempPath(), "functionalbayes-rstan-cache")
    let psi = ProcessStartInfo("Rscript", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for a in [ script; json; string chains; string warmup; string samples; "1"; cache; name ] do psi.ArgumentList.Add a
    use p = nonNull (Process.Start psi)
    let err = p.StandardError.ReadToEndAsync()
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    if p.ExitCode <> 0 then
        reportText (sprintf "nuts_%s_rstan_error" name) (err.Result.Trim().Split('\n') |> Array.last)
        None
    else
        let lines = out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        for l in lines do printfn "%s" l
        lines |> Array.tryPick (fun l ->
            use d = Text.Json.JsonDocument.Parse l
            let r = d.RootElement
            if (string (r.GetProperty("name").GetString())).EndsWith "_min_ess_bulk_per_grad" then Some (r.GetProperty("value").GetDouble()) else None)

/// One posterior with one adapter: min bulk ESS over the latent scalars per gradient evaluation (warmup
/// included) and per second of wall time, gradients, divergences, and max |z| of the reference means
/// ((mean − ref)/MCSE over the posterior's reference parameters).
let private adapterRun (p: Posterior) (r: PosteriorData) (o: McmcOptions) =
    let count = ref 0L
    let sw = Stopwatch.StartNew()
    let fit = Mcmc.runWithSource RunContext.Quiet o (counting count) (p.Model r)
    let wall = sw.Elapsed.TotalSeconds
    let minEss = Mcmc.summary fit |> Array.map (fun s -> s.EssBulk) |> Array.min
    let scalars = PosteriorData.scalars fit.Draws
    let all = Map.fold (fun acc k v -> Map.add k v acc) (Map.fold (fun acc k v -> Map.add k v acc) scalars (PosteriorData.scalars fit.Deterministic)) (p.Derived scalars)
    let maxZ =
        r.Reference |> Map.toSeq |> Seq.choose (fun (name, (mean, _)) ->
            all.TryFind name |> Option.map (fun d -> let s = Diagnostics.summarize name d in abs (s.Mean - mean) / s.McseMean))
        |> Seq.fold max 0.0
    let tag = sprintf "nuts_%s_%s%s" p.Name (adapterTag o.Adaptation) (if o.Seed = 1UL then "" else sprintf "_seed%d" o.Seed)
    let perGrad = minEss / float count.Value
    // chain-seconds of warmup and sampling per gradient: the gradient and the sampler's own work, as rstan's
    // get_elapsed_time over n_leapfrog__ (rstan_nuts.R) counts them
    let chainSeconds = fit.Flat.Stats |> Array.sumBy (fun s -> s.WarmupSeconds + s.SamplingSeconds)
    report (tag + "_us_per_grad_in_sampler") (chainSeconds / float count.Value * 1e6) "us" None
    report (tag + "_min_ess_bulk_per_grad") perGrad "1/grad" None
    report (tag + "_min_ess_bulk_per_s") (minEss / wall) "1/s" None
    report (tag + "_gradients") (float count.Value) "count" None
    report (tag + "_min_ess_bulk") minEss "draws" None
    report (tag + "_max_abs_z_reference_means") maxZ "z" None
    report (tag + "_divergences") (fit.Flat.Stats |> Array.sumBy (fun s -> s.Divergent |> Array.filter id |> Array.length) |> float) "count" None
    report (tag + "_warmup_divergences") (fit.Flat.Stats |> Array.sumBy (fun s -> s.WarmupDivergences) |> float) "count" None
    report (tag + "_mean_adapted_step_size") (fit.Flat.Stats |> Array.averageBy (fun s -> s.AdaptedStepSize)) "eps" None
    report (tag + "_mean_leapfrogs_per_draw") (fit.Flat.Stats |> Array.averageBy (fun s -> s.NumLeapfrog |> Array.averageBy float)) "count" None
    perGrad

/// µs per value and gradient of a posterior's potential, compiled (the sampler's default source; its kind is
/// printed, so a fallback to the tape shows) and on the tape, at one point, same run.
let private gradientTimes (p: Posterior) (r: PosteriorData) =
    let pot = LogDensity.potential (Rng.key 1UL) (p.Model r)
    let q = Array.init (FlatPosition.dim pot) (fun i -> 0.1 * float (i % 5) - 0.2)
    let g = Array.zeroCreate q.Length
    let auto = Compilation.auto pot
    reportText (sprintf "nuts_%s_gradient_kind" p.Name) (sprintf "%A" auto.Kind)
    for kind, source in [ "compiled", auto; "tape", GradientSource.tape pot ] do
        let ev = source.Create()
        let t = batchTimes 0.1 5 (fun () -> ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g)) |> ignore)
        report (sprintf "nuts_%s_grad_%s" p.Name kind) (t.[t.Length / 2] * 1e6) "us" None

/// The posteriordb file holding the posterior's Stan program (stan_code), where one is stored.
let private stanProgramFile (p: Posterior) =
    PosteriorData.searchPath ()
    |> List.map (fun d -> IO.Path.Combine(d, p.Name + ".json"))
    |> List.tryFind (fun f ->
        IO.File.Exists f
        && (use d = Text.Json.JsonDocument.Parse(IO.File.ReadAllText f) in fst (d.RootElement.TryGetProperty "stan_code")))

let private median (xs: float[]) =
    let s = Array.sort xs
    if s.Length = 0 then nan elif s.Length % 2 = 1 then s.[s.Length / 2] else 0.5 * (s.[s.Length / 2 - 1] + s.[s.Length / 2])

/// Per catalogue posterior: µs per gradient compiled and on the tape; then per metric adapter (4 chains ×
/// (1000 warmup + 1000 draws), chains in parallel), the min bulk ESS per gradient and per second; Stan's own
/// sampler (rstan) side by side when present; then the median ratios over the posteriors.
let private posteriordbOf (catalogue: Posterior list) =
    let chains, warmup, samples = 4, 1000, 1000
    // NUTSDB_ONLY (posterior names), NUTSDB_ADAPTERS (adapter tags) and NUTSDB_SEEDS narrow a run, comma
    // separated; NUTSDB_RSTAN=0 leaves rstan out. The medians are over the posteriors and seeds run.
    let listed (var: string) =
        match Environment.GetEnvironmentVariable var with
        | null | "" -> None
        | v -> Some (v.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> Set.ofArray)
    let catalogue =
        match listed "NUTSDB_ONLY" with
        | Some names -> catalogue |> List.filter (fun p -> names.Contains p.Name)
        | None -> catalogue
    let adapters =
        match listed "NUTSDB_ADAPTERS" with
        | Some tags -> adapters |> List.filter (fun a -> tags.Contains (adapterTag a))
        | None -> adapters
    let seeds = match listed "NUTSDB_SEEDS" with Some s -> s |> Seq.map uint64 |> List.ofSeq | None -> [ 1UL ]
    let withRstan = Environment.GetEnvironmentVariable "NUTSDB_RSTAN" <> "0" && rstanPresent ()
    if not withRstan then reportText "nuts_rstan" "rstan absent (Rscript with the rstan package not found): no Stan figures"
    else reportText "nuts_rstan" "rstan present: benchmarks/peers/rstan_nuts.R runs Stan's NUTS (diag_e) side by side"
    let rows =
        [ for p in catalogue do
            let r = PosteriorData.load p.Name
            gradientTimes p r
            let stan =
                match withRstan, stanProgramFile p with
                | true, Some json -> rstan p.Name json chains warmup samples
                | true, None -> reportText (sprintf "nuts_%s_rstan" p.Name) "no Stan program stored with this posterior"; None
                | false, _ -> None
            for seed in seeds ->
                let ours =
                    adapters |> List.map (fun a ->
                        let o = { McmcOptions.Default with Chains = chains; Warmup = warmup; Samples = samples; Seed = seed; TargetAccept = p.Settings.TargetAccept; Adaptation = a }
                        a, adapterRun p r o)
                ours, stan ]
    let firstIsStan = adapters |> List.tryHead = Some MetricAdaptation.Stan
    for a in adapters |> List.filter (fun a -> a <> MetricAdaptation.Stan) do
        if firstIsStan then
            let vsAdapter = rows |> List.map (fun (ours, _) -> (ours |> List.find (fun (b, _) -> b = a) |> snd) / (ours |> List.head |> snd)) |> Array.ofList
            report (sprintf "nuts_posteriordb_median_%s_over_stan_adapter_ess_per_grad" (adapterTag a)) (median vsAdapter) "ratio" None
        let vsRstan = rows |> List.choose (fun (ours, stan) -> stan |> Option.map (fun s -> (ours |> List.find (fun (b, _) -> b = a) |> snd) / s)) |> Array.ofList
        if vsRstan.Length > 0 then
            report (sprintf "nuts_posteriordb_median_%s_over_rstan_ess_per_grad" (adapterTag a)) (median vsRstan) "ratio" None
    let stanVsRstan = rows |> List.choose (fun (ours, stan) -> stan |> Option.map (fun s -> (ours |> List.head |> snd) / s)) |> Array.ofList
    if firstIsStan && stanVsRstan.Length > 0 then
        report "nuts_posteriordb_median_stan_adapter_over_rstan_ess_per_grad" (median stanVsRstan) "ratio" None

/// The posteriordb comparison over the whole catalogue (src/FunctionalBayes.PosteriorDb).
let posteriordb () = posteriordbOf Posteriors.all

/// The posteriordb comparison on the posteriors of issue 26's speed goal alone: the Gaussian processes
/// (Cholesky of a latent) and the mixture.
let posteriordbGpMixture () = posteriordbOf [ Posteriors.gpRegr; Posteriors.gpPoisRegr; Posteriors.lowDimGaussMix ]

/// µs per gradient of the model's potential, leapfrogs per second of sampling (per chain-second),
/// wall time of 4 chains × (1000 warmup + 1000 draws), and min bulk ESS over the parameters per second of wall time;
/// then the posteriordb comparison of the metric adapters (and rstan).
let run () =
    reportIsa "nuts"
    bench "eight_schools" eightSchools |> ignore
    bench "logistic_n5000_d20" logistic |> ignore
    posteriordb ()
