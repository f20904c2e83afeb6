namespace FunctionalBayes.Reporting

open System
open System.Globalization
open System.Text

/// Charts as plotly.js figures ({ data, layout } JSON) and the plotly.js library that Plotly.NET embeds.
module internal PlotlyJson =

    /// A JSON value, written by `write`.
    type J =
        | N of float
        | S of string
        | B of bool
        | A of J list
        | Fs of float[]
        | O of (string * J) list

    let rec private write (sb: StringBuilder) (j: J) =
        match j with
        | N v -> sb.Append(if Double.IsFinite v then v.ToString("R", CultureInfo.InvariantCulture) else "null") |> ignore
        | S s -> sb.Append(Text.Json.JsonSerializer.Serialize s) |> ignore
        | B b -> sb.Append(if b then "true" else "false") |> ignore
        | A xs ->
            sb.Append('[') |> ignore
            xs |> List.iteri (fun i x -> (if i > 0 then sb.Append(',') |> ignore); write sb x)
            sb.Append(']') |> ignore
        | Fs xs ->
            sb.Append('[') |> ignore
            xs |> Array.iteri (fun i x -> (if i > 0 then sb.Append(',') |> ignore); write sb (N x))
            sb.Append(']') |> ignore
        | O props ->
            sb.Append('{') |> ignore
            props |> List.iteri (fun i (k, v) ->
                if i > 0 then sb.Append(',') |> ignore
                write sb (S k)
                sb.Append(':') |> ignore
                write sb v)
            sb.Append('}') |> ignore

    /// Pixel height of one row of panels.
    let panelHeight = 270

    let private axisSuffix (i: int) = if i = 0 then "" else string (i + 1)

    /// The figure of a chart as JSON text: { "data": [...], "layout": {...} }.
    let figure (chart: Chart) : string =
        let panels = List.toArray chart.Panels
        let cols = max 1 (min chart.Columns panels.Length)
        let rows = max 1 ((panels.Length + cols - 1) / cols)
        let legendNames = Collections.Generic.HashSet<string>()
        let gapX = 0.08
        let height = rows * panelHeight + 140
        let plotPx = float (height - 40 - 100)
        let gapY = if rows > 1 then 80.0 / plotPx else 0.0
        let perPanel =
            panels
            |> Array.mapi (fun i p ->
                let r, c = i / cols, i % cols
                let w = (1.0 - gapX * float (cols - 1)) / float cols
                let h = (1.0 - gapY * float (rows - 1)) / float rows
                let x0 = float c * (w + gapX)
                let y1 = 1.0 - float r * (h + gapY)
                let y0 = y1 - h
                let sfx = axisSuffix i
                let xa = O [ "domain", Fs [| x0; x0 + w |]; "anchor", S ("y" + sfx); "title", O [ "text", S p.XLabel ]; "automargin", B true ]
                let ya =
                    O [ yield "domain", Fs [| y0; y1 |]
                        yield "anchor", S ("x" + sfx)
                        yield "title", O [ "text", S p.YLabel ]
                        yield "automargin", B true
                        if p.LogY then yield "type", S "log"
                        if p.YTicks.Length > 0 then
                            yield "tickmode", S "array"
                            yield "tickvals", Fs (Array.init p.YTicks.Length float)
                            yield "ticktext", A (p.YTicks |> Array.map S |> List.ofArray) ]
                let annotation =
                    O [ "text", S ("<b>" + Net.WebUtility.HtmlEncode p.Title + "</b>"); "x", N (x0 + w / 2.0); "y", N y1
                        "xref", S "paper"; "yref", S "paper"; "xanchor", S "center"; "yanchor", S "bottom"
                        "showarrow", B false; "font", O [ "size", N 12.0 ] ]
                let traces =
                    p.Series
                    |> List.map (fun s ->
                        let common (name: string) =
                            [ "xaxis", S ("x" + sfx); "yaxis", S ("y" + sfx); "name", S name; "legendgroup", S name
                              "showlegend", B (name <> "" && legendNames.Add name) ]
                        match s with
                        | Series.Line (name, xs, ys, color, width) ->
                            O (common name @ [ "type", S "scatter"; "mode", S "lines"; "x", Fs xs; "y", Fs ys
                                               "line", O [ "color", S color; "width", N width ] ])
                        | Series.Points (name, xs, ys, color, size) ->
                            O (common name @ [ "type", S "scatter"; "mode", S "markers"; "x", Fs xs; "y", Fs ys
                                               "marker", O [ "color", S color; "size", N size; "line", O [ "color", S "#222222"; "width", N 0.5 ] ] ])
                        | Series.Bars (name, xs, hs, width, color) ->
                            O (common name @ [ "type", S "bar"; "x", Fs xs; "y", Fs hs; "width", N width
                                               "marker", O [ "color", S color; "opacity", N 0.75 ] ])
                        | Series.Segments (name, segs, color, width) ->
                            let xs = segs |> Array.collect (fun (a, _, b, _) -> [| a; b; nan |])
                            let ys = segs |> Array.collect (fun (_, a, _, b) -> [| a; b; nan |])
                            O (common name @ [ "type", S "scatter"; "mode", S "lines"; "x", Fs xs; "y", Fs ys
                                               "line", O [ "color", S color; "width", N width ] ]))
                ("xaxis" + sfx, xa), ("yaxis" + sfx, ya), annotation, traces)
        let layout =
            O [ for (xa, ya, _, _) in perPanel do
                    yield xa
                    yield ya
                yield "annotations", A [ for (_, _, a, _) in perPanel -> a ]
                yield "height", N (float height)
                yield "margin", O [ "l", N 60.0; "r", N 20.0; "t", N 40.0; "b", N 100.0 ]
                yield "barmode", S "overlay"
                yield "paper_bgcolor", S "#ffffff"
                yield "plot_bgcolor", S "#f4f6fa"
                yield "legend", O [ "orientation", S "h"; "y", N (-60.0 / plotPx); "yanchor", S "top" ] ]
        let data = A [ for (_, _, _, ts) in perPanel do yield! ts ]
        let sb = StringBuilder()
        write sb (O [ "data", data; "layout", layout ])
        sb.ToString()

    /// plotly.js as Plotly.NET embeds it with PlotlyJSReference.Full (the library text, offline).
    let plotlyJs : Lazy<string> = PlotlyLibrary.text
