namespace FunctionalBayes.Reporting

open System
open FunctionalBayes

/// One drawn layer of a panel: the neutral description that both the HTML (plotly.js) and the static
/// (ScottPlot) renderers draw, so the two show the same charts.
[<RequireQualifiedAccess>]
type Series =
    /// A polyline.
    | Line of name: string * xs: float[] * ys: float[] * color: string * width: float
    /// Point markers.
    | Points of name: string * xs: float[] * ys: float[] * color: string * size: float
    /// Vertical bars centred at xs with the given width.
    | Bars of name: string * xs: float[] * heights: float[] * width: float * color: string
    /// Line segments (x0, y0, x1, y1), e.g. intervals.
    | Segments of name: string * segments: (float * float * float * float)[] * color: string * width: float

/// One plotting area.
type Panel =
    { /// The panel's title.
      Title: string
      /// The x axis label.
      XLabel: string
      /// The y axis label.
      YLabel: string
      /// Log-scale y axis.
      LogY: bool
      /// Category labels for the y axis ticks (y = 0, 1, …), for forest plots; empty for numeric axes.
      YTicks: string[]
      /// The layers, drawn in order.
      Series: Series list }

/// A chart: panels on a grid, with a title and an optional note (thinning, caps).
type Chart =
    { /// A stable identifier, also the element id in the HTML page and the PNG file name.
      Id: string
      /// The chart's title.
      Title: string
      /// Grid columns (rows follow from the panel count).
      Columns: int
      /// The panels, row-major.
      Panels: Panel list
      /// A sentence under the chart, e.g. what was thinned.
      Note: string option }

/// Numerical helpers of the charts (kernel densities, ranks, thinning, moving averages).
module internal ChartMath =

    let palette = [| "#1f77b4"; "#ff7f0e"; "#2ca02c"; "#d62728"; "#9467bd"; "#8c564b"; "#e377c2"; "#7f7f7f"; "#bcbd22"; "#17becf" |]

    let color (i: int) = palette.[i % palette.Length]

    /// Every k-th index so that at most maxPoints remain.
    let thinIndices (n: int) (maxPoints: int) =
        if n <= maxPoints then Array.init n id
        else
            let step = int (ceil (float n / float maxPoints))
            [| 0 .. step .. n - 1 |]

    let quantile (p: float) (xs: float[]) = Diagnostics.quantile p xs

    /// Gaussian kernel density on a grid of `points`, Silverman's bandwidth (at most 2000 draws used).
    let kde (points: int) (xs: float[]) : float[] * float[] =
        let xs = if xs.Length > 2000 then thinIndices xs.Length 2000 |> Array.map (fun i -> xs.[i]) else xs
        let n = float xs.Length
        let m = Array.average xs
        let sd = sqrt (xs |> Array.averageBy (fun v -> (v - m) * (v - m)))
        let iqr = quantile 0.75 xs - quantile 0.25 xs
        let spread = if iqr > 0.0 then min sd (iqr / 1.34) else sd
        let h = if spread > 0.0 then 0.9 * spread * Math.Pow(n, -0.2) else 1e-3 * (abs m + 1.0)
        let lo = Array.min xs - 3.0 * h
        let hi = Array.max xs + 3.0 * h
        let grid = Array.init points (fun i -> lo + (hi - lo) * float i / float (points - 1))
        let norm = 1.0 / (n * h * sqrt (2.0 * Math.PI))
        let dens =
            grid
            |> Array.map (fun g ->
                let mutable s = 0.0
                for v in xs do
                    let z = (g - v) / h
                    s <- s + exp (-0.5 * z * z)
                s * norm)
        grid, dens

    /// Histogram counts of xs over `bins` equal bins on [lo, hi]: (centres, counts).
    let histogram (bins: int) (lo: float) (hi: float) (xs: float[]) =
        let width = if hi > lo then (hi - lo) / float bins else 1.0
        let counts = Array.zeroCreate bins
        for v in xs do
            let b = int ((v - lo) / width) |> max 0 |> min (bins - 1)
            counts.[b] <- counts.[b] + 1.0
        Array.init bins (fun b -> lo + (float b + 0.5) * width), counts, width

    /// Trailing moving average with the given window.
    let movingAverage (window: int) (xs: float[]) =
        let out = Array.zeroCreate xs.Length
        let mutable s = 0.0
        for i in 0 .. xs.Length - 1 do
            s <- s + xs.[i]
            if i >= window then s <- s - xs.[i - window]
            out.[i] <- s / float (min (i + 1) window)
        out

    /// Ranks (1-based, ties averaged) of all values.
    let ranks (xs: float[]) =
        let order = Array.init xs.Length id
        Array.Sort(Array.copy xs, order)
        let r = Array.zeroCreate xs.Length
        let mutable i = 0
        while i < xs.Length do
            let mutable j = i
            while j + 1 < xs.Length && xs.[order.[j + 1]] = xs.[order.[i]] do
                j <- j + 1
            for k in i .. j do
                r.[order.[k]] <- float (i + j) / 2.0 + 1.0
            i <- j + 1
        r

/// The report's charts, built from the input as data (pure functions).
[<RequireQualifiedAccess>]
module Charts =

    open ChartMath

    let private panel title xl yl series =
        { Title = title; XLabel = xl; YLabel = yl; LogY = false; YTicks = [||]; Series = series }

    let private fmt (v: float) = v.ToString("0.###", Globalization.CultureInfo.InvariantCulture)

    /// Trace plots by chain (thinned to opts.MaxTracePoints per chain), one panel per scalar.
    let trace (opts: ReportOptions) (scalars: (string * float[][])[]) : Chart =
        let n = if scalars.Length = 0 then 0 else scalars.[0] |> snd |> Array.head |> Array.length
        let idx = thinIndices n opts.MaxTracePoints
        let panels =
            scalars
            |> Array.map (fun (name, d) ->
                let series =
                    d |> Array.mapi (fun c ch ->
                        Series.Line (sprintf "chain %d" c, idx |> Array.map float, idx |> Array.map (fun i -> ch.[i]), color c, 1.0))
                panel name "iteration" name (List.ofArray series))
            |> List.ofArray
        { Id = "trace"; Title = "Trace plots by chain"; Columns = 2; Panels = panels
          Note = if idx.Length < n then Some (sprintf "Every %d-th draw is shown (%d of %d per chain)." (n / idx.Length) idx.Length n) else None }

    /// Rank plots (Vehtari et al. 2021): the ranks of all draws pooled, histogram per chain; uniform when chains mix.
    let rank (scalars: (string * float[][])[]) : Chart =
        let panels =
            scalars
            |> Array.map (fun (name, d) ->
                let r = ranks (Array.concat d)
                let n = d.[0].Length
                let s = float r.Length
                let bins = 20
                let series =
                    d |> Array.mapi (fun c _ ->
                        let centres, counts, _ = histogram bins 0.5 (s + 0.5) r.[c * n .. c * n + n - 1]
                        Series.Line (sprintf "chain %d" c, centres, counts, color c, 1.5))
                let uniform = float n / float bins
                let all = Array.append series [| Series.Line ("uniform", [| 0.5; s + 0.5 |], [| uniform; uniform |], "#555555", 1.0) |]
                panel name "rank (all chains pooled)" "count" (List.ofArray all))
            |> List.ofArray
        { Id = "rank"; Title = "Rank plots by chain"; Columns = 2; Panels = panels; Note = None }

    /// Posterior densities with the 50 % (thick) and 94 % (thin) central intervals and the median.
    let density (scalars: (string * float[][])[]) : Chart =
        let panels =
            scalars
            |> Array.map (fun (name, d) ->
                let all = Array.concat d
                let xs, ys = kde 200 all
                let top = Array.max ys
                let q p = quantile p all
                let y0 = -0.04 * top
                panel name name "density"
                    [ Series.Line ("density", xs, ys, color 0, 2.0)
                      Series.Segments ("94 % interval", [| q 0.03, y0, q 0.97, y0 |], "#333333", 2.0)
                      Series.Segments ("50 % interval", [| q 0.25, y0, q 0.75, y0 |], "#333333", 6.0)
                      Series.Points ("median", [| q 0.5 |], [| y0 |], "#ffffff", 7.0) ])
            |> List.ofArray
        { Id = "density"; Title = "Posterior densities with 50 % and 94 % central intervals"; Columns = 3
          Panels = panels; Note = None }

    /// Forest plot of a vector site: median, 50 % and 94 % intervals per element.
    let forest (opts: ReportOptions) (site: string) (elements: (string * float[][])[]) : Chart =
        let shown = elements |> Array.truncate opts.MaxForestElements
        let k = shown.Length
        let stats = shown |> Array.map (fun (_, d) -> let a = Array.concat d in [| for p in [ 0.03; 0.25; 0.5; 0.75; 0.97 ] -> quantile p a |])
        let y i = float (k - 1 - i)
        let p =
            { Title = site; XLabel = "value"; YLabel = ""; LogY = false
              YTicks = shown |> Array.map fst |> Array.rev
              Series =
                [ Series.Segments ("94 % interval", stats |> Array.mapi (fun i s -> s.[0], y i, s.[4], y i), color 0, 1.5)
                  Series.Segments ("50 % interval", stats |> Array.mapi (fun i s -> s.[1], y i, s.[3], y i), color 0, 5.0)
                  Series.Points ("median", stats |> Array.map (fun s -> s.[2]), Array.init k y, "#000000", 6.0) ] }
        { Id = "forest-" + site; Title = sprintf "Forest plot of %s" site; Columns = 1; Panels = [ p ]
          Note = if elements.Length > k then Some (sprintf "The first %d of %d elements are shown." k elements.Length) else None }

    /// Pair plot: scatter of every pair of the chosen scalars, histograms on the diagonal, divergent draws in red.
    let pairs (opts: ReportOptions) (scalars: (string * float[][])[]) (divergent: bool[][] option) : Chart =
        let k = scalars.Length
        let flat = scalars |> Array.map (fun (_, d) -> Array.concat d)
        let s = if k = 0 then 0 else flat.[0].Length
        let div = match divergent with Some d -> Array.concat d | None -> Array.zeroCreate s
        let keep = thinIndices s opts.MaxPairPoints |> Array.filter (fun i -> not div.[i])
        let divIdx = Array.init s id |> Array.filter (fun i -> div.[i])
        let panels =
            [ for i in 0 .. k - 1 do
                for j in 0 .. k - 1 do
                    let ni, xi = scalars.[i] |> fst, flat.[i]
                    let nj, xj = scalars.[j] |> fst, flat.[j]
                    if i = j then
                        let c, h, w = histogram 30 (Array.min xi) (Array.max xi) xi
                        panel ni ni "count" [ Series.Bars ("draws", c, h, w, color 0) ]
                    else
                        panel (sprintf "%s vs %s" ni nj) nj ni
                            [ Series.Points ("draws", keep |> Array.map (fun t -> xj.[t]), keep |> Array.map (fun t -> xi.[t]), color 0, 3.0)
                              Series.Points ("divergent", divIdx |> Array.map (fun t -> xj.[t]), divIdx |> Array.map (fun t -> xi.[t]), "#d62728", 5.0) ] ]
        let note =
            [ if keep.Length + divIdx.Length < s then
                  yield sprintf "%d of %d draws are shown (evenly thinned); all %d divergent draws are kept, in red." (keep.Length + divIdx.Length) s divIdx.Length
              else yield sprintf "%d divergent draws are marked in red." divIdx.Length ]
        { Id = "pairs"; Title = "Pair plot (divergent draws in red)"; Columns = max k 1; Panels = panels; Note = Some (String.Join(" ", note)) }

    /// NUTS energy: the marginal energy (E − mean E) and the energy transitions (E_t − E_{t−1}) per chain,
    /// with E-BFMI in the title.
    let energy (stats: SamplerStats) : Chart =
        let panels =
            stats.Energy
            |> Array.mapi (fun c e ->
                let m = Array.average e
                let marginal = e |> Array.map (fun v -> v - m)
                let trans = Array.init (e.Length - 1) (fun i -> e.[i + 1] - e.[i])
                let lo = min (Array.min marginal) (Array.min trans)
                let hi = max (Array.max marginal) (Array.max trans)
                let xm, hm, w = histogram 30 lo hi marginal
                let xt, ht, _ = histogram 30 lo hi trans
                let bfmi = Diagnostics.ebfmi e
                panel (sprintf "chain %d: E-BFMI %s%s" c (fmt bfmi) (if bfmi < Diagnostics.EbfmiThreshold then " (low)" else ""))
                    "energy" "count"
                    [ Series.Bars ("marginal energy", xm, hm, w, color 0)
                      Series.Line ("energy transition", xt, ht, color 1, 2.5) ])
            |> List.ofArray
        { Id = "energy"; Title = "NUTS energy: marginal vs transition (E-BFMI per chain)"; Columns = 2; Panels = panels
          Note = Some "When the transition distribution is much narrower than the marginal energy, E-BFMI is low and the sampler explores the tails slowly (below 0.3 is flagged)." }

    /// Step size and tree depth per chain over the iterations, and the accept statistic.
    let sampler (opts: ReportOptions) (maxTreeDepth: int) (stats: SamplerStats) : Chart =
        let n = stats.StepSize.[0].Length
        let idx = thinIndices n opts.MaxTracePoints
        let lines (get: int -> int -> float) =
            stats.StepSize |> Array.mapi (fun c _ ->
                Series.Line (sprintf "chain %d" c, idx |> Array.map float, idx |> Array.map (fun i -> get c i), color c, 1.0))
            |> List.ofArray
        let hits = stats.TreeDepth |> Array.sumBy (Array.sumBy (fun d -> if d >= maxTreeDepth then 1 else 0))
        { Id = "sampler"; Title = "NUTS step size, tree depth and acceptance per chain"; Columns = 3
          Panels =
            [ panel "step size" "iteration" "step size" (lines (fun c i -> stats.StepSize.[c].[i]))
              panel (sprintf "tree depth (max %d, %d hits)" maxTreeDepth hits) "iteration" "tree depth" (lines (fun c i -> float stats.TreeDepth.[c].[i]))
              panel "accept statistic" "iteration" "accept_stat" (lines (fun c i -> stats.AcceptStat.[c].[i])) ]
          Note = None }

    /// The SVI loss per step (log scale when positive) with its moving average.
    let loss (losses: float[]) : Chart =
        let n = losses.Length
        let idx = thinIndices n 2000
        let window = max 1 (n / 50)
        let ma = movingAverage window losses
        let positive = losses |> Array.forall (fun v -> v > 0.0)
        let p =
            { panel "loss" "step" (if positive then "loss (log scale)" else "loss") [
                Series.Line ("loss", idx |> Array.map float, idx |> Array.map (fun i -> losses.[i]), "#9ecae1", 1.0)
                Series.Line (sprintf "moving average (%d steps)" window, idx |> Array.map float, idx |> Array.map (fun i -> ma.[i]), color 0, 2.5) ]
              with LogY = positive }
        { Id = "loss"; Title = "SVI loss (negative ELBO)"; Columns = 1; Panels = [ p ]
          Note =
            Some ((if positive then "" else "Linear scale: the loss takes non-positive values. ")
                  + (if idx.Length < n then sprintf "Every %d-th step is drawn." (n / idx.Length) else "")) }

    let private isBinary (xs: float[]) = xs |> Array.forall (fun v -> v = 0.0 || v = 1.0)

    let private isCount (xs: float[]) = xs |> Array.forall (fun v -> v = Math.Round v && v >= 0.0) && Array.max xs <= 50.0

    /// Posterior predictive check of one observed site: densities (continuous), bar frequencies (counts), or for
    /// binary outcomes a calibration plot (observed frequency against the predicted probability, in 10 bins).
    let predictive (opts: ReportOptions) (check: PredictiveCheck) : Chart =
        let reps = check.Replicated |> Array.truncate opts.MaxReplicates
        let note = sprintf "%d of %d replicated data sets are drawn." reps.Length check.Replicated.Length
        if isBinary check.Observed && check.Replicated.Length > 0 then
            let nObs = check.Observed.Length
            let prob = Array.init nObs (fun j -> check.Replicated |> Array.averageBy (fun r -> r.[j]))
            let bins = 10
            let pts =
                [| for b in 0 .. bins - 1 do
                    let lo, hi = float b / float bins, float (b + 1) / float bins
                    let members = Array.init nObs id |> Array.filter (fun j -> prob.[j] >= lo && (prob.[j] < hi || (b = bins - 1 && prob.[j] <= hi)))
                    if members.Length > 0 then
                        yield members |> Array.averageBy (fun j -> prob.[j]), members |> Array.averageBy (fun j -> check.Observed.[j]), members.Length |]
            let cal =
                { panel (sprintf "%s: calibration" check.Site) "predicted probability" "observed frequency"
                    [ Series.Line ("perfect calibration", [| 0.0; 1.0 |], [| 0.0; 1.0 |], "#999999", 1.0)
                      Series.Line ("observed", pts |> Array.map (fun (x, _, _) -> x), pts |> Array.map (fun (_, y, _) -> y), color 0, 2.0)
                      Series.Points ("bins", pts |> Array.map (fun (x, _, _) -> x), pts |> Array.map (fun (_, y, _) -> y), color 0, 8.0) ] with YTicks = [||] }
            let meanRep = reps |> Array.map Array.average
            let c, h, w = histogram 20 0.0 1.0 meanRep
            let share =
                panel (sprintf "%s: share of ones" check.Site) "share of ones" "replicated data sets"
                    [ Series.Bars ("replicated", c, h, w, "#9ecae1")
                      Series.Segments ("observed", [| Array.average check.Observed, 0.0, Array.average check.Observed, Array.max h |], "#000000", 3.0) ]
            { Id = "ppc-" + check.Site; Title = sprintf "Posterior predictive check of %s (binary)" check.Site; Columns = 2
              Panels = [ cal; share ]; Note = Some (note + " Calibration bins hold the observations by predicted probability (10 bins).") }
        elif isCount check.Observed then
            let top = max (Array.max check.Observed) (if reps.Length = 0 then 0.0 else reps |> Array.map Array.max |> Array.max) |> int
            let freq (xs: float[]) = Array.init (top + 1) (fun v -> xs |> Array.sumBy (fun x -> if int x = v then 1.0 else 0.0)) |> Array.map (fun c -> c / float xs.Length)
            let xs = Array.init (top + 1) float
            let repLines = reps |> Array.mapi (fun i r -> Series.Points ((if i = 0 then "replicated" else ""), xs, freq r, "#9ecae1", 4.0)) |> List.ofArray
            { Id = "ppc-" + check.Site; Title = sprintf "Posterior predictive check of %s (counts)" check.Site; Columns = 1
              Panels = [ panel check.Site "value" "frequency" (Series.Bars ("observed", xs, freq check.Observed, 0.8, "#cccccc") :: repLines) ]
              Note = Some note }
        else
            let repLines =
                reps |> Array.mapi (fun i r -> let x, y = kde 120 r in Series.Line ((if i = 0 then "replicated" else ""), x, y, "#9ecae1", 1.0)) |> List.ofArray
            let ox, oy = kde 200 check.Observed
            { Id = "ppc-" + check.Site; Title = sprintf "Posterior predictive check of %s" check.Site; Columns = 1
              Panels = [ panel check.Site check.Site "density" (repLines @ [ Series.Line ("observed", ox, oy, "#000000", 2.5) ]) ]
              Note = Some note }
