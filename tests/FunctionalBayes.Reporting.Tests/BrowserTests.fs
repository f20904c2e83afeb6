/// The HTML report in a real browser: Debian's headless Chromium through Selenium WebDriver and chromedriver.
/// The page loads with no script error, every chart container holds a rendered plot, the screenshot is not blank,
/// and the table shows the summary's numbers. Skipped, with a message saying how to install it, only where no
/// Chromium exists (CI installs it with .ci/install-deps).
module FunctionalBayes.Reporting.Tests.BrowserTests

open System
open System.IO
open System.Threading
open Expecto
open OpenQA.Selenium
open OpenQA.Selenium.Chrome
open SkiaSharp
open FunctionalBayes
open FunctionalBayes.Reporting
open FunctionalBayes.Reporting.Tests.SampleInput
open FunctionalBayes.Reporting.Tests.PicturesTests

let private firstExisting (paths: string list) = paths |> List.tryFind File.Exists

let chromium = firstExisting [ "/usr/bin/chromium"; "/usr/bin/chromium-browser" ]

let chromedriver = firstExisting [ "/usr/bin/chromedriver"; "/usr/lib/chromium/chromedriver" ]

let private withBrowser (f: ChromeDriver -> unit) =
    match chromium, chromedriver with
    | Some browser, Some driver ->
        let profile = Path.Combine(Path.GetTempPath(), "fb-chromium-" + Guid.NewGuid().ToString("N"))
        let service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName driver, Path.GetFileName driver)
        service.SuppressInitialDiagnosticInformation <- true
        let opts = ChromeOptions(BinaryLocation = browser)
        opts.AddArguments(
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
            "--user-data-dir=" + profile)
        try
            use drv = new ChromeDriver(service, opts, TimeSpan.FromSeconds 180.0)
            f drv
        finally
            if Directory.Exists profile then (try Directory.Delete(profile, true) with _ -> ())
    | _ ->
        let msg = "SKIPPED: no Chromium/chromedriver at /usr/bin (Debian packages chromium and chromium-driver; run .ci/install-deps)."
        eprintfn "%s" msg
        skiptest msg

let private script (drv: ChromeDriver) (js: string) = drv.ExecuteScript js

[<Tests>]
let tests =
    testSequenced <| testList "Browser" [

        testCase "the report renders in headless Chromium: no script error, every chart drawn, not blank, table numbers" <| fun () ->
            withBrowser (fun drv ->
                let dir = artifacts ()
                let path = Path.Combine(dir, "report.html")
                Report.saveInput path input
                drv.Navigate().GoToUrl(Uri(path).AbsoluteUri)
                // wait until every chart container holds Plotly's SVG (or a WebGL canvas)
                let countDrawn () =
                    script drv "return Array.from(document.querySelectorAll('.fb-chart')).filter(d => d.querySelector('svg.main-svg, canvas')).length;"
                    |> Convert.ToInt32
                let total = script drv "return document.querySelectorAll('.fb-chart').length;" |> Convert.ToInt32
                let sw = Diagnostics.Stopwatch.StartNew()
                while countDrawn () < total && sw.Elapsed < TimeSpan.FromSeconds 90.0 do
                    Thread.Sleep 250
                let expectedCharts = (Report.charts ReportOptions.Default input).Length
                Expect.equal total expectedCharts "one container per chart"
                Expect.equal (countDrawn ()) total "every chart container has a rendered plot"
                let errors = script drv "return window.__reportErrors.join(' | ');" |> string
                Expect.equal errors "" "no script error"
                let shot = Path.Combine(dir, "report-top.png")
                (drv :> ITakesScreenshot).GetScreenshot().SaveAsFile shot
                use bmp = SKBitmap.Decode shot
                Expect.isGreaterThan (variance (luminance bmp)) 100.0 "the screenshot is not blank"
                // the table as the browser shows it equals the summary function
                let sums = Diagnostics.summarizeSites input.Draws
                let shown =
                    script drv "return Array.from(document.querySelectorAll('#summary-table td[data-col=\"mean\"]')).map(td => td.getAttribute('data-value')).join(';');"
                    |> string
                let expected = String.Join(";", sums |> Array.map (fun s -> s.Mean.ToString("R", Globalization.CultureInfo.InvariantCulture)))
                Expect.equal shown expected "table means in the browser"
                // screenshots further down the page, to look at
                for id in [ "chart-trace"; "chart-pairs"; "chart-energy"; "chart-ppc-clicked" ] do
                    script drv (sprintf "document.getElementById('%s').scrollIntoView();" id) |> ignore
                    Thread.Sleep 300
                    (drv :> ITakesScreenshot).GetScreenshot().SaveAsFile(Path.Combine(dir, sprintf "report-%s.png" id))
                printfn "report screenshots in %s" dir)
    ]
