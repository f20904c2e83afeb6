namespace FunctionalBayes.Reporting

open FunctionalBayes
open FunctionalBayes.Tensors

/// Report inputs from fitted posteriors (SVI guides today; MCMC runs join through ReportInput's records).
[<RequireQualifiedAccess>]
module ReportOf =

    /// The report input of an SVI fit: `draws` guide draws (as one chain), the loss history, the model's
    /// description and posterior predictive checks on `data` (from at most 100 of the draws).
    let fitted (title: string) (key: RngKey) (draws: int) (f: Fitted<'T>) (data: Map<string, Tensor>) : ReportInput =
        if draws < 4 then invalidArg "draws" (sprintf "ReportOf.fitted: needs at least 4 guide draws for the summary, got %d." draws)
        let kd, km = Rng.split key
        let d = Fit.posterior f kd draws |> Map.map (fun _ t -> Tensor.reshape (Array.append [| 1 |] t.Shape) t)
        let input = { ReportInput.ofDraws title d with SviLoss = Some f.Losses }
        Checks.addModel km 100 (f.Model data) input

    /// The report input of an MCMC run: its draws [chains; draws; ...] and every chain's NUTS statistics.
    /// Add the model's description and predictive checks with `Checks.addModel`.
    let mcmc (title: string) (r: McmcResult) : ReportInput =
        let st = r.Flat.Stats
        let stats =
            { Lp = st |> Array.map (fun s -> s.Lp); AcceptStat = st |> Array.map (fun s -> s.AcceptStat)
              StepSize = st |> Array.map (fun s -> s.StepSize); TreeDepth = st |> Array.map (fun s -> s.TreeDepth)
              NLeapfrog = st |> Array.map (fun s -> s.NumLeapfrog); Divergent = st |> Array.map (fun s -> s.Divergent)
              Energy = st |> Array.map (fun s -> s.Energy) }
        { ReportInput.ofDraws title r.Draws with
            Stats = (if st.Length > 0 then Some stats else None); MaxTreeDepth = r.MaxTreeDepth; TargetAccept = r.TargetAccept }

/// Saving reports of fitted posteriors.
[<RequireQualifiedAccess>]
module FittedReport =

    /// Writes the HTML report of an SVI fit on `data` to `path` (1000 guide draws, seed 3).
    let save (path: string) (f: Fitted<'T>) (data: Map<string, Tensor>) : unit =
        Report.save path (ReportOf.fitted "Posterior report (SVI)" (Rng.key 3UL) 1000 f data)

    /// Writes the HTML report of an MCMC run of `modelFn` on `data` to `path`, with the model's description and
    /// posterior predictive checks (from at most 100 draws, seed 3).
    let saveMcmc (path: string) (title: string) (r: McmcResult) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : unit =
        Report.save path (Checks.addModel (Rng.key 3UL) 100 (modelFn data) (ReportOf.mcmc title r))
