/// Static pictures: ScottPlot writes non-blank PNGs with text drawn in a real font.
module FunctionalBayes.Reporting.Tests.PicturesTests

open System
open System.IO
open Expecto
open SkiaSharp
open FunctionalBayes.Reporting
open FunctionalBayes.Reporting.Tests.SampleInput

/// Luminance (0–255) of every pixel.
let luminance (bmp: SKBitmap) =
    bmp.Pixels |> Array.map (fun c -> 0.299 * float c.Red + 0.587 * float c.Green + 0.114 * float c.Blue)

let variance (xs: float[]) =
    let m = Array.average xs
    xs |> Array.averageBy (fun v -> (v - m) * (v - m))

/// Dark pixels (luminance < 110) in a rectangle.
let darkPixels (bmp: SKBitmap) (x0: int) (y0: int) (x1: int) (y1: int) =
    let px = bmp.Pixels
    let mutable n = 0
    for y in y0 .. y1 - 1 do
        for x in x0 .. x1 - 1 do
            let c = px.[y * bmp.Width + x]
            if 0.299 * float c.Red + 0.587 * float c.Green + 0.114 * float c.Blue < 110.0 then n <- n + 1
    n

[<Tests>]
let tests =
    testList "Pictures" [

        testCase "a font is installed for PNG text" <| fun () ->
            match Pictures.font () with
            | Ok family -> Expect.isNotEmpty family "font family"
            | Error e -> failtest e

        testCase "a chart's PNG is not blank and its panel titles are drawn as text" <| fun () ->
            let chart = Report.charts ReportOptions.Default input |> List.find (fun c -> c.Id = "density")
            use bmp = SKBitmap.Decode(Pictures.png chart)
            Expect.equal bmp.Width (3 * Pictures.PanelWidth) "three columns"
            Expect.isGreaterThan (variance (luminance bmp)) 200.0 "pixel variance of a drawn chart (a blank image has 0)"
            // text is drawn: a longer title (same font, same layout) darkens more pixels in the title strip
            let retitle (t: string) = { chart with Panels = chart.Panels |> List.map (fun p -> { p with Title = t + p.Title }) }
            use longer = SKBitmap.Decode(Pictures.png (retitle "Posterior density of "))
            let short = darkPixels bmp 0 0 Pictures.PanelWidth 30
            let long = darkPixels longer 0 0 Pictures.PanelWidth 30
            Expect.isGreaterThan short 10 (sprintf "the title 'mu' is drawn (%d dark pixels)" short)
            Expect.isGreaterThan long (short + 100) (sprintf "a longer title draws more glyphs (%d vs %d dark pixels)" long short)

        testCase "save writes one non-blank PNG per chart" <| fun () ->
            let dir = Path.Combine(artifacts (), "pictures")
            let opts = { ReportOptions.Default with MaxScalarPanels = 4; PairScalars = [ "mu"; "tau" ] }
            let paths = Pictures.saveWith opts dir input
            Expect.equal paths.Length (Report.charts opts input).Length "one file per chart"
            for p in paths do
                use bmp = SKBitmap.Decode p
                Expect.isGreaterThan (variance (luminance bmp)) 100.0 (sprintf "%s is not blank" p)
    ]
