namespace FunctionalBayes.Reporting

open System
open System.IO
open FunctionalBayes
open FunctionalBayes.Tensors

/// The posterior report: one self-contained HTML page (plotly.js inline, opens with no network) and the same
/// charts as PNG files.
[<RequireQualifiedAccess>]
module Report =

    /// Every scalar's draws, (name, draws.[chain].[iteration]), in site order.
    let private scalars (input: ReportInput) =
        input.Draws |> Map.toArray |> Array.collect (fun (site, t) -> Diagnostics.siteScalars site t)

    /// The per-scalar summary table's rows (the same numbers the HTML table shows).
    let summary (input: ReportInput) : ScalarSummary[] =
        if input.Draws.IsEmpty then [||] else Diagnostics.summarizeSites input.Draws

    /// The chain health and the Stan-style warnings of an input.
    let warnings (input: ReportInput) (sums: ScalarSummary[]) : DiagnosticWarning list =
        let chains, _ = ReportInput.validate input
        let health =
            match input.Stats with
            | Some st ->
                Array.init chains (fun c ->
                    Diagnostics.chainHealth c input.MaxTreeDepth st.Divergent.[c] st.TreeDepth.[c] st.Energy.[c])
            | None -> [||]
        Diagnostics.warnings
            { Chains = chains; MaxTreeDepth = input.MaxTreeDepth; TargetAccept = input.TargetAccept; Health = health
              Summaries = sums }

    /// The charts of the report, in page order, with the scalars panels capped as the options say.
    let charts (opts: ReportOptions) (input: ReportInput) : Chart list =
        let chains, _ = ReportInput.validate input
        let all = scalars input
        let shown = all |> Array.truncate opts.MaxScalarPanels
        let capNote =
            if all.Length > shown.Length then
                Some (sprintf "Panels show the first %d of %d scalars (ReportOptions.MaxScalarPanels)." shown.Length all.Length)
            else None
        let withCap (c: Chart) =
            match capNote with
            | Some n -> { c with Note = Some (match c.Note with Some m -> m + " " + n | None -> n) }
            | None -> c
        let mcmc = input.Stats.IsSome || chains > 1
        let vectorSites =
            input.Draws |> Map.toList
            |> List.filter (fun (_, t) -> t.Rank > 2 && t.Size / (t.Shape.[0] * t.Shape.[1]) > 1)
            |> List.truncate opts.MaxForestSites
        let pairScalars =
            match opts.PairScalars with
            | [] -> all |> Array.truncate 4
            | names ->
                names |> List.toArray |> Array.map (fun n ->
                    match all |> Array.tryFind (fun (k, _) -> k = n) with
                    | Some s -> s
                    | None ->
                        invalidArg "opts"
                            (sprintf "Report: pair-plot scalar '%s' is not in the draws; names look like %s." n
                                (String.Join(", ", all |> Array.truncate 5 |> Array.map fst))))
        [ if shown.Length > 0 then
              if mcmc then
                  yield withCap (Charts.trace opts shown)
                  yield withCap (Charts.rank shown)
              yield withCap (Charts.density shown)
          for (site, t) in vectorSites do
              yield Charts.forest opts site (Diagnostics.siteScalars site t)
          if pairScalars.Length >= 2 then
              yield Charts.pairs opts pairScalars (input.Stats |> Option.map (fun s -> s.Divergent))
          match input.Stats with
          | Some st ->
              yield Charts.energy st
              yield Charts.sampler opts input.MaxTreeDepth st
          | None -> ()
          match input.SviLoss with
          | Some l when l.Length > 0 -> yield Charts.loss l
          | _ -> ()
          for c in input.Checks do
              yield Charts.predictive opts c ]

    /// The report as one HTML document.
    let htmlWith (opts: ReportOptions) (input: ReportInput) : string =
        let chains, draws = ReportInput.validate input
        let sums = summary input
        let ws = if input.Draws.IsEmpty then [] else warnings input sums
        let chartList = charts opts input
        let section (ids: string list) = chartList |> List.filter (fun c -> ids |> List.exists (fun i -> c.Id = i || c.Id.StartsWith(i + "-")))
        let render cs = cs |> List.map Page.chart |> String.concat ""
        let overview =
            let what =
                if input.Draws.IsEmpty then "No posterior draws."
                else sprintf "%d chain(s) × %d draws, %d scalar(s) in %d site(s)%s." chains draws sums.Length input.Draws.Count
                        (if input.Stats.IsSome then ", NUTS" else "")
            let warn =
                match ws with
                | [] -> "<p class=\"ok\" id=\"no-warnings\">No diagnostic warnings.</p>"
                | _ -> "<ul id=\"warnings\">" + (ws |> List.map (fun w -> "<li class=\"warning\">" + Page.enc (Diagnostics.warningText w) + "</li>") |> String.concat "") + "</ul>"
            sprintf "<p>%s</p>%s" (Page.enc what) warn
        let sections =
            [ yield "Overview", overview
              if sums.Length > 0 then
                  yield "Summary", Page.summaryTable chains opts.MaxTableRows sums
                        + "<p class=\"note\">R̂ above 1.01 is red; bulk or tail ESS below 100 per chain is amber. Quantiles are R's type 7; intervals in the plots are central (equal-tailed).</p>"
              match input.Description with
              | Some rows when rows.Length > 0 -> yield "Model", Page.textTable "model-table" rows
              | _ -> ()
              let mc = section [ "trace"; "rank" ]
              if not mc.IsEmpty then yield "Traces and ranks", render mc
              let dens = section [ "density"; "forest" ]
              if not dens.IsEmpty then yield "Posterior densities and intervals", render dens
              let pr = section [ "pairs" ]
              if not pr.IsEmpty then yield "Pair plot", render pr
              let nuts = section [ "energy"; "sampler" ]
              if not nuts.IsEmpty then yield "NUTS diagnostics", render nuts
              let svi = section [ "loss" ]
              if not svi.IsEmpty then yield "SVI", render svi
              let ppc = section [ "ppc" ]
              if not ppc.IsEmpty then yield "Posterior predictive checks", render ppc ]
        Page.document input.Title sections

    /// The report as one HTML document, with the default limits.
    let html (input: ReportInput) : string = htmlWith ReportOptions.Default input

    /// Writes the report of any report input to `path` (one self-contained HTML file) with the given limits.
    let saveInputWith (opts: ReportOptions) (path: string) (input: ReportInput) : unit =
        let text = htmlWith opts input
        match Path.GetDirectoryName(Path.GetFullPath path) with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore
        File.WriteAllText(path, text)

    /// Writes the report of any report input to `path` with the default limits.
    let saveInput (path: string) (input: ReportInput) : unit = saveInputWith ReportOptions.Default path input

    /// Writes the report of a posterior (SVI or MCMC) of the model on `data` to `path`, with the given
    /// limits: ReportInput.ofPosterior (1000 guide draws as one chain, or the sampler's chains and
    /// statistics; predictive checks from at most 100 draws; seed 3).
    let saveWith (opts: ReportOptions) (path: string) (posterior: Posterior<'T>) (data: Map<string, Tensor>) : unit =
        saveInputWith opts path (FromPosterior.input (Posterior.methodName posterior) (Rng.key 3UL) 1000 posterior data)

    /// Writes the report of a posterior (SVI or MCMC) of the model on `data` to `path`: the summary table,
    /// trace/rank/density/forest/pair plots, NUTS statistics or the SVI loss curve, predictive checks
    /// and the model's description, in one self-contained HTML file.
    let save (path: string) (posterior: Posterior<'T>) (data: Map<string, Tensor>) : unit =
        saveWith ReportOptions.Default path posterior data
