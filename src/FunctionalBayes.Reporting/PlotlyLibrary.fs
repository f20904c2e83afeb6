/// plotly.js, taken from Plotly.NET's offline (PlotlyJSReference.Full) HTML output.
module internal FunctionalBayes.Reporting.PlotlyLibrary

open System
open Plotly.NET

/// The plotly.js library text that Plotly.NET embeds with PlotlyJSReference.Full.
let text : Lazy<string> =
    lazy
        (let html =
            Chart.Point(x = [ 0.0 ], y = [ 0.0 ])
            |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.Full))
            |> GenericChart.toEmbeddedHTML
         let openTag = html.IndexOf("<script", StringComparison.Ordinal)
         let start = if openTag < 0 then -1 else html.IndexOf('>', openTag) + 1
         let stop = if start <= 0 then -1 else html.IndexOf("</script>", start, StringComparison.Ordinal)
         let js = if start > 0 && stop > start then html.Substring(start, stop - start) else ""
         if not (js.Contains "plotly.js") then
             failwith "Report: Plotly.NET did not embed plotly.js (PlotlyJSReference.Full); check the Plotly.NET package."
         js)
