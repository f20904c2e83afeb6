namespace FunctionalBayes.Reporting

open FunctionalBayes
open FunctionalBayes.Tensors

/// The report input of a posterior, whichever inference made it.
[<RequireQualifiedAccess>]
module FromPosterior =

    /// The sampler statistics of an MCMC run, per chain (CmdStan's `__` columns).
    let stats (r: McmcResult) : SamplerStats option =
        let st = r.Flat.Stats
        if st.Length = 0 then None
        else
            Some { Lp = st |> Array.map (fun s -> s.Lp); AcceptStat = st |> Array.map (fun s -> s.AcceptStat)
                   StepSize = st |> Array.map (fun s -> s.StepSize); TreeDepth = st |> Array.map (fun s -> s.TreeDepth)
                   NLeapfrog = st |> Array.map (fun s -> s.NumLeapfrog); Divergent = st |> Array.map (fun s -> s.Divergent)
                   Energy = st |> Array.map (fun s -> s.Energy) }

    /// The report input of a posterior of the model on `data`: the draws per chain (a guide's `guideDraws`
    /// draws as one chain; a sampler's chains with its deterministic sites and NUTS statistics), the SVI
    /// loss history, the model's description, and posterior predictive checks on `data` (from at most 100
    /// of the draws).
    let input (title: string) (key: RngKey) (guideDraws: int) (p: Posterior<'T>) (data: Map<string, Tensor>) : ReportInput =
        let kd, km = Rng.split key
        if guideDraws < 4 then invalidArg "guideDraws" (sprintf "Report: needs at least 4 guide draws for the summary, got %d." guideDraws)
        let latents = Posterior.chains p kd guideDraws false
        let m = p.Model data
        let input =
            match p.Source with
            | PosteriorSource.Guide g -> { ReportInput.ofDraws title latents with SviLoss = Some g.Losses }
            | PosteriorSource.Samples r ->
                { ReportInput.ofDraws title (Map.fold (fun acc k v -> Map.add k v acc) latents r.Deterministic) with
                    Stats = stats r; MaxTreeDepth = r.MaxTreeDepth; TargetAccept = r.TargetAccept }
        { input with
            Description = Some (ModelInfo.describeRows km m)
            Checks = Checks.ofDraws km 100 m latents }
