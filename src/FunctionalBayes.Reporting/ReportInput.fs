namespace FunctionalBayes.Reporting

open System
open FunctionalBayes
open FunctionalBayes.Tensors

/// NUTS statistics of every post-warmup draw, indexed [chain][draw] (CmdStan's `lp__` … `energy__`).
type SamplerStats =
    { /// Log density of the draw (`lp__`).
      Lp: float[][]
      /// Stan's accept statistic (`accept_stat__`).
      AcceptStat: float[][]
      /// Step size (`stepsize__`).
      StepSize: float[][]
      /// Tree depth (`treedepth__`).
      TreeDepth: int[][]
      /// Leapfrog steps (`n_leapfrog__`).
      NLeapfrog: int[][]
      /// Divergent transition (`divergent__`).
      Divergent: bool[][]
      /// Hamiltonian energy (`energy__`).
      Energy: float[][] }

/// One observed site with its posterior predictive draws.
type PredictiveCheck =
    { /// The observed site's name.
      Site: string
      /// The observed values, flattened row-major.
      Observed: float[]
      /// Replicated data sets, [draw][observation], each the length of Observed.
      Replicated: float[][] }

/// Limits that keep a report of a large posterior usable; what is left out is said on the page.
type ReportOptions =
    { /// At most this many scalars get trace, rank and density panels (the first ones, in site order).
      MaxScalarPanels: int
      /// Trace plots show at most this many draws per chain (evenly thinned).
      MaxTracePoints: int
      /// Scalars for the pair plot; empty: the first (up to) four.
      PairScalars: string list
      /// The pair plot shows at most this many draws (evenly thinned; divergent draws are all kept).
      MaxPairPoints: int
      /// Posterior predictive checks overlay at most this many replicated data sets.
      MaxReplicates: int
      /// A forest plot shows at most this many elements of a vector site.
      MaxForestElements: int
      /// At most this many vector sites get a forest plot.
      MaxForestSites: int
      /// The summary table lists at most this many scalars.
      MaxTableRows: int }

    /// 24 scalar panels, 1000 trace points per chain, 1500 pair points, 50 replicates, 60 forest rows,
    /// 12 forest plots, 2000 table rows.
    static member Default =
        { MaxScalarPanels = 24; MaxTracePoints = 1000; PairScalars = []; MaxPairPoints = 1500; MaxReplicates = 50
          MaxForestElements = 60; MaxForestSites = 12; MaxTableRows = 2000 }

/// Everything a posterior report is drawn from (draws-based or guide-based posteriors both map to it).
type ReportInput =
    { /// The page title.
      Title: string
      /// Posterior draws per site, each shaped [chains; draws; ...site shape].
      Draws: Map<string, Tensor>
      /// NUTS statistics, when the draws come from NUTS.
      Stats: SamplerStats option
      /// The sampler's maximum tree depth (for tree-depth hits).
      MaxTreeDepth: int
      /// The sampler's target acceptance statistic.
      TargetAccept: float
      /// The SVI loss (negative ELBO) per step, when the posterior comes from SVI.
      SviLoss: float[] option
      /// Posterior predictive checks, one per observed site.
      Checks: PredictiveCheck list
      /// The model description as a table: a header row, then one row per site (`ModelInfo.describeRows`).
      Description: string[][] option }

/// Building and checking report inputs.
[<RequireQualifiedAccess>]
module ReportInput =

    /// An input with draws only (no sampler statistics, loss, checks or description).
    let ofDraws (title: string) (draws: Map<string, Tensor>) : ReportInput =
        { Title = title; Draws = draws; Stats = None; MaxTreeDepth = 10; TargetAccept = 0.8; SviLoss = None
          Checks = []; Description = None }

    /// Checks shapes before any drawing: every site [chains; draws; ...] with the same chains and draws,
    /// statistics [chains][draws] matching them, replicated data sets as long as the observed data.
    /// Returns (chains, draws).
    let validate (input: ReportInput) : int * int =
        if input.Draws.IsEmpty && input.SviLoss.IsNone then
            invalidArg "input" "Report: the input has no draws and no SVI loss; there is nothing to report."
        let shapes = input.Draws |> Map.toList |> List.map (fun (k, t) -> k, t.Shape)
        for (k, s) in shapes do
            if s.Length < 2 then
                invalidArg "input"
                    (sprintf "Report: site '%s' has draws of shape %s; expected [chains; draws; ...site shape]." k (Shape.format s))
        let chains, n =
            match shapes with
            | (_, s) :: _ -> s.[0], s.[1]
            | [] -> 0, 0
        for (k, s) in shapes do
            if s.[0] <> chains || s.[1] <> n then
                invalidArg "input"
                    (sprintf "Report: site '%s' has %d chains × %d draws but the first site has %d × %d; all sites need the same."
                        k s.[0] s.[1] chains n)
        match input.Stats with
        | Some st ->
            let check (name: string) (lens: int[]) =
                if lens.Length <> chains || lens |> Array.exists (fun l -> l <> n) then
                    invalidArg "input"
                        (sprintf "Report: sampler statistic %s has %d chains of lengths %s; the draws have %d chains × %d draws."
                            name lens.Length (Shape.format lens) chains n)
            check "lp__" (st.Lp |> Array.map Array.length)
            check "accept_stat__" (st.AcceptStat |> Array.map Array.length)
            check "stepsize__" (st.StepSize |> Array.map Array.length)
            check "treedepth__" (st.TreeDepth |> Array.map Array.length)
            check "n_leapfrog__" (st.NLeapfrog |> Array.map Array.length)
            check "divergent__" (st.Divergent |> Array.map Array.length)
            check "energy__" (st.Energy |> Array.map Array.length)
        | None -> ()
        for c in input.Checks do
            if c.Observed.Length = 0 then
                invalidArg "input" (sprintf "Report: observed site '%s' has no observations." c.Site)
            c.Replicated
            |> Array.iteri (fun i r ->
                if r.Length <> c.Observed.Length then
                    invalidArg "input"
                        (sprintf "Report: replicated data set %d of site '%s' has %d values; the observed data have %d."
                            i c.Site r.Length c.Observed.Length))
        chains, n
