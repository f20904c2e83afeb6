namespace FunctionalBayes.Reporting

open System
open System.IO
open SkiaSharp

/// The report's charts as static pictures (PNG) drawn with ScottPlot, for papers and terminals.
/// ScottPlot draws text with a system font: on Debian, `fonts-dejavu-core` (`.ci/install-deps` installs it).
[<RequireQualifiedAccess>]
module Pictures =

    /// Pixel size of one panel.
    let PanelWidth, PanelHeight = 520, 340

    /// The font ScottPlot will draw text with, or an error saying how to install one.
    let font () : Result<string, string> =
        let family = ScottPlot.Fonts.Default
        use tf = SKTypeface.FromFamilyName family
        use f = new SKFont(tf, 14.0f)
        let width = if isNull tf then 0.0f else f.MeasureText "R-hat 1.01"
        if isNull tf || width <= 0.0f || tf.GlyphCount < 50 then
            Error (sprintf "No usable font for PNG text (ScottPlot asked for '%s'). Install one, e.g. Debian's fonts-dejavu-core (the project's .ci/install-deps does it)." family)
        else Ok tf.FamilyName

    let private color (hex: string) = ScottPlot.Color.FromHex hex

    let private panelPlot (p: Panel) : ScottPlot.Plot =
        let plt = new ScottPlot.Plot()
        plt.Title(p.Title, Nullable 14.0f)
        plt.XLabel(p.XLabel, Nullable 12.0f)
        plt.YLabel((if p.LogY then "log10 " + p.YLabel else p.YLabel), Nullable 12.0f)
        let ty (y: float) = if p.LogY then Math.Log10 y else y
        let mutable legend = false
        for s in p.Series do
            match s with
            | Series.Line (name, xs, ys, c, w) ->
                let sc = plt.Add.ScatterLine(xs, ys |> Array.map ty, Nullable (color c))
                sc.LineWidth <- float32 w
                if name <> "" then (sc.LegendText <- name; legend <- true)
            | Series.Points (name, xs, ys, c, size) ->
                if xs.Length > 0 then
                    let m = plt.Add.Markers(xs, ys |> Array.map ty, ScottPlot.MarkerShape.FilledCircle, float32 size * 0.8f, Nullable (color c))
                    if name <> "" then (m.LegendText <- name; legend <- true)
            | Series.Bars (name, xs, hs, w, c) ->
                let bars = plt.Add.Bars(xs, hs |> Array.map ty)
                for b in bars.Bars do
                    b.Size <- w
                    b.FillColor <- color c
                    b.LineWidth <- 0.0f
                if name <> "" then (bars.LegendText <- name; legend <- true)
            | Series.Segments (_, segs, c, w) ->
                for (x0, y0, x1, y1) in segs do
                    let l = plt.Add.Line(x0, ty y0, x1, ty y1)
                    l.LineWidth <- float32 w
                    l.LineColor <- color c
        if p.YTicks.Length > 0 then
            let positions = Array.init p.YTicks.Length float
            plt.Axes.Left.TickGenerator <- ScottPlot.TickGenerators.NumericManual(positions, p.YTicks)
        if legend then plt.ShowLegend() |> ignore
        plt

    /// One chart as PNG bytes: its panels drawn by ScottPlot and laid out on the chart's grid.
    let png (chart: Chart) : byte[] =
        match font () with
        | Error e -> invalidOp e
        | Ok _ -> ()
        let panels = List.toArray chart.Panels
        let cols = max 1 (min chart.Columns panels.Length)
        let rows = max 1 ((panels.Length + cols - 1) / cols)
        let info = SKImageInfo(cols * PanelWidth, rows * PanelHeight)
        use surface = SKSurface.Create info
        let canvas = surface.Canvas
        canvas.Clear SKColors.White
        panels |> Array.iteri (fun i p ->
            use plt = panelPlot p
            let bytes = plt.GetImageBytes(PanelWidth, PanelHeight, ScottPlot.ImageFormat.Png)
            use panel = SKImage.FromEncodedData bytes
            canvas.DrawImage(panel, float32 ((i % cols) * PanelWidth), float32 ((i / cols) * PanelHeight), SKSamplingOptions.Default))
        use image = surface.Snapshot()
        use data = image.Encode(SKEncodedImageFormat.Png, 100)
        data.ToArray()

    /// A file name for a chart id (letters, digits, '-', '_' kept).
    let fileName (chart: Chart) =
        let safe = chart.Id |> String.map (fun ch -> if Char.IsLetterOrDigit ch || ch = '-' || ch = '_' then ch else '_')
        safe + ".png"

    /// Writes every chart of the report as a PNG into `directory`; returns the paths.
    let saveWith (opts: ReportOptions) (directory: string) (input: ReportInput) : string list =
        Directory.CreateDirectory directory |> ignore
        Report.charts opts input
        |> List.map (fun c ->
            let path = Path.Combine(directory, fileName c)
            File.WriteAllBytes(path, png c)
            path)

    /// Writes every chart of the report as a PNG into `directory` with the default limits; returns the paths.
    let save (directory: string) (input: ReportInput) : string list = saveWith ReportOptions.Default directory input
