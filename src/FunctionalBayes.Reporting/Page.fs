namespace FunctionalBayes.Reporting

open System
open System.Globalization
open System.Text
open FunctionalBayes

/// The HTML page: one self-contained file (plotly.js inline, no network).
module internal Page =

    let enc (s: string) = Net.WebUtility.HtmlEncode s

    let private inv = CultureInfo.InvariantCulture

    /// The displayed text of a number in the summary table.
    let display (column: string) (v: float) =
        if Double.IsNaN v then "—"
        else
            match column with
            | "ess_bulk" | "ess_tail" -> v.ToString("0", inv)
            | "r_hat" -> v.ToString("0.000", inv)
            | _ -> v.ToString("G4", inv)

    /// The summary table's columns and how each is read from a summary.
    let columns : (string * (ScalarSummary -> float)) list =
        [ "mean", (fun s -> s.Mean); "sd", (fun s -> s.Sd); "mcse_mean", (fun s -> s.McseMean); "mcse_sd", (fun s -> s.McseSd)
          "5%", (fun s -> s.Q5); "50%", (fun s -> s.Q50); "95%", (fun s -> s.Q95)
          "ess_bulk", (fun s -> s.EssBulk); "ess_tail", (fun s -> s.EssTail); "r_hat", (fun s -> s.RHat) ]

    let private css = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #1d2433; background: #ffffff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #d0d7e2; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e3e8ef; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.bad { background: #f8c9c4; font-weight: bold; } td.warn { background: #fde7b0; }
.note { color: #555; font-size: 13px; font-style: italic; }
.warning { color: #8a1c0f; } .ok { color: #1d6b2f; }
.fb-chart { width: 100%; min-height: 200px; }
pre { background: #f4f6fa; padding: 8px; }
"""

    /// The summary table: full-precision values in data-value, bad R̂ and low ESS highlighted.
    let summaryTable (chains: int) (maxRows: int) (sums: ScalarSummary[]) =
        let sb = StringBuilder()
        sb.Append("<table id=\"summary-table\"><thead><tr><th>parameter</th>") |> ignore
        for (c, _) in columns do sb.AppendFormat("<th>{0}</th>", enc c) |> ignore
        sb.Append("</tr></thead><tbody>") |> ignore
        let essMin = Diagnostics.EssPerChainThreshold * float chains
        for s in sums |> Array.truncate maxRows do
            sb.AppendFormat("<tr><td class=\"name\">{0}</td>", enc s.Name) |> ignore
            for (c, get) in columns do
                let v = get s
                let cls =
                    match c with
                    | "r_hat" when v > Diagnostics.RHatThreshold -> " class=\"bad\""
                    | "ess_bulk" | "ess_tail" when v < essMin -> " class=\"warn\""
                    | _ -> ""
                sb.AppendFormat("<td data-col=\"{0}\" data-value=\"{1}\"{2}>{3}</td>", enc c, v.ToString("R", inv), cls, display c v) |> ignore
            sb.Append("</tr>") |> ignore
        sb.Append("</tbody></table>") |> ignore
        if sums.Length > maxRows then
            sb.AppendFormat("<p class=\"note\">The first {0} of {1} scalars are listed.</p>", maxRows, sums.Length) |> ignore
        sb.ToString()

    let textTable (id: string) (rows: string[][]) =
        let sb = StringBuilder()
        sb.AppendFormat("<table id=\"{0}\">", id) |> ignore
        rows |> Array.iteri (fun i r ->
            let tag = if i = 0 then "th" else "td"
            sb.Append("<tr>") |> ignore
            for c in r do sb.AppendFormat("<{0} style=\"text-align:left\">{1}</{0}>", tag, enc c) |> ignore
            sb.Append("</tr>") |> ignore)
        sb.Append("</table>").ToString()

    /// A chart's container, its note, and the script that draws it.
    let chart (c: Chart) =
        let id = "chart-" + c.Id
        let fig = PlotlyJson.figure c
        let note = match c.Note with Some n -> sprintf "<p class=\"note\">%s</p>" (enc n) | None -> ""
        sprintf "<h3>%s</h3><div class=\"fb-chart\" id=\"%s\"></div>%s\n<script>(function(){var f=%s;Plotly.newPlot(%s,f.data,f.layout,{responsive:true,displaylogo:false});})();</script>\n"
            (enc c.Title) (enc id) note fig (Text.Json.JsonSerializer.Serialize id)

    /// The whole page from its sections (each (heading, html)).
    let document (title: string) (sections: (string * string) list) =
        let sb = StringBuilder()
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">") |> ignore
        sb.AppendFormat("<title>{0}</title>", enc title) |> ignore
        sb.Append("<script>window.__reportErrors=[];window.addEventListener('error',function(e){window.__reportErrors.push(String(e.message));});</script>") |> ignore
        sb.AppendFormat("<style>{0}</style>", css) |> ignore
        sb.Append("<script>").Append(PlotlyJson.plotlyJs.Value).Append("</script>") |> ignore
        sb.AppendFormat("</head><body><h1>{0}</h1>\n", enc title) |> ignore
        for (h, body) in sections do
            sb.AppendFormat("<section><h2>{0}</h2>\n{1}</section>\n", enc h, body) |> ignore
        sb.Append("</body></html>\n").ToString()
