/// The HTML report's content: the summary table equals the summary function, the sections and caps are there,
/// bad input is refused with a clear message.
module FunctionalBayes.Reporting.Tests.ReportTests

open System
open System.Globalization
open System.Text.RegularExpressions
open Expecto
open FunctionalBayes
open FunctionalBayes.Reporting
open FunctionalBayes.Tensors
open FunctionalBayes.Reporting.Tests.SampleInput

/// The summary table's rows as (name, [(column, data-value, shown text)]), read back from the HTML.
let tableRows (html: string) =
    let table = Regex.Match(html, "<table id=\"summary-table\">.*?</table>", RegexOptions.Singleline).Value
    [ for row in Regex.Matches(table, "<tr><td class=\"name\">(.*?)</td>(.*?)</tr>", RegexOptions.Singleline) ->
        let name = Net.WebUtility.HtmlDecode row.Groups.[1].Value
        let cells =
            [ for c in Regex.Matches(row.Groups.[2].Value, "<td data-col=\"(.*?)\" data-value=\"(.*?)\"[^>]*>(.*?)</td>") ->
                Net.WebUtility.HtmlDecode c.Groups.[1].Value, Double.Parse(c.Groups.[2].Value, CultureInfo.InvariantCulture),
                Net.WebUtility.HtmlDecode c.Groups.[3].Value ]
        name, cells ]

[<Tests>]
let tests =
    testList "Report" [

        testCase "the summary table's numbers equal Diagnostics.summarizeSites, shown and stored exactly" <| fun () ->
            let html = Report.html input
            let rows = tableRows html
            let sums = Diagnostics.summarizeSites input.Draws
            Expect.equal (rows |> List.map fst) (sums |> Array.map (fun s -> s.Name) |> List.ofArray) "one row per scalar, in order"
            for (s, (_, cells)) in Seq.zip sums rows do
                let expected =
                    [ "mean", s.Mean; "sd", s.Sd; "mcse_mean", s.McseMean; "mcse_sd", s.McseSd; "5%", s.Q5; "50%", s.Q50
                      "95%", s.Q95; "ess_bulk", s.EssBulk; "ess_tail", s.EssTail; "r_hat", s.RHat ]
                Expect.equal (cells |> List.map (fun (c, _, _) -> c)) (expected |> List.map fst) "columns"
                for ((c, v, shown), (_, e)) in List.zip cells expected do
                    Expect.equal v e (sprintf "%s of %s (full precision)" c s.Name)
                    let text =
                        match c with
                        | "ess_bulk" | "ess_tail" -> e.ToString("0", CultureInfo.InvariantCulture)
                        | "r_hat" -> e.ToString("0.000", CultureInfo.InvariantCulture)
                        | _ -> e.ToString("G4", CultureInfo.InvariantCulture)
                    Expect.equal shown text (sprintf "%s of %s as shown" c s.Name)

        testCase "bad values are highlighted: R̂ above 1.01 red, ESS below 100 per chain amber" <| fun () ->
            // chain 0 of mu shifted far away: R̂ ≫ 1.01
            let t = input.Draws.["mu"] |> Tensor.toArray
            let shifted = t |> Array.mapi (fun i v -> if i < draws then v + 50.0 else v)
            let bad = { input with Draws = input.Draws.Add("mu", Tensor.create [| chains; draws |] shifted) }
            let html = Report.html bad
            let muRow = Regex.Match(html, "<tr><td class=\"name\">mu</td>.*?</tr>", RegexOptions.Singleline).Value
            Expect.stringContains muRow "data-col=\"r_hat\"" "R̂ cell"
            Expect.isTrue (Regex.IsMatch(muRow, "data-col=\"r_hat\" data-value=\"[^\"]*\" class=\"bad\"")) "R̂ flagged red"
            Expect.isTrue (Regex.IsMatch(muRow, "data-col=\"ess_bulk\" data-value=\"[^\"]*\" class=\"warn\"")) "ESS flagged amber"
            Expect.stringContains html "The largest R-hat is" "the warning is on the page"
            Expect.stringContains html "divergent transitions after warmup" "the divergences are reported"

        testCase "every section is on the page, plotly.js is inline and nothing is loaded from the network" <| fun () ->
            let html = Report.html input
            for id in [ "chart-trace"; "chart-rank"; "chart-density"; "chart-forest-theta"; "chart-pairs"; "chart-energy"
                        "chart-sampler"; "chart-loss"; "chart-ppc-y"; "chart-ppc-clicked"; "summary-table"; "model-table" ] do
                Expect.stringContains html (sprintf "id=\"%s\"" id) id
            Expect.stringContains html "plotly.js v" "plotly.js embedded"
            Expect.isFalse (Regex.IsMatch(html, "<script[^>]+src=")) "no external script"
            Expect.isFalse (Regex.IsMatch(html, "<link[^>]+href=\"http")) "no external style sheet"

        testCase "large posteriors are capped and the page says so" <| fun () ->
            let opts = { ReportOptions.Default with MaxScalarPanels = 3; MaxTracePoints = 50; MaxPairPoints = 100; MaxForestElements = 5; MaxTableRows = 4 }
            let charts = Report.charts opts input
            let trace = charts |> List.find (fun c -> c.Id = "trace")
            Expect.equal trace.Panels.Length 3 "three trace panels"
            Expect.stringContains trace.Note.Value "first 3 of 10 scalars" "panel cap said"
            Expect.stringContains trace.Note.Value "Every 4-th draw" "thinning said"
            let forest = charts |> List.find (fun c -> c.Id = "forest-theta")
            Expect.stringContains forest.Note.Value "first 5 of 8 elements" "forest cap said"
            let pairs = charts |> List.find (fun c -> c.Id = "pairs")
            Expect.stringContains pairs.Note.Value "divergent draws are kept" "pair thinning said"
            let html = Report.htmlWith opts input
            Expect.stringContains html "The first 4 of 10 scalars are listed." "table cap said"

        testCase "Checks.ofDraws replicates every observed site from the draws; addModel adds the description" <| fun () ->
            let y = Tensor.ofArray (Array.init 20 float)
            let m = model {
                let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0))
                return! Model.observe "y" (Independent (Normal (Tensor.zeros [| 20 |] + mu, Tensor.ones [| 20 |]), 1)) (Some y) }
            // every posterior draw of mu is 3: replicated y ~ N(3, 1), so the mean of 40 × 20 values is 3 ± 0.035 (sd);
            // tolerance 0.15 (> 4 sd)
            let draws = Map.ofList [ "mu", Tensor.create [| 2; 50 |] (Array.create 100 3.0) ]
            let checks = Checks.ofDraws (Rng.key 5UL) 40 m draws
            Expect.equal (checks |> List.map (fun c -> c.Site)) [ "y" ] "one check per observed site"
            let c = checks.Head
            Expect.equal c.Observed (Array.init 20 float) "the observed values"
            Expect.equal c.Replicated.Length 40 "40 draws evenly spread over 100"
            Expect.all c.Replicated (fun r -> r.Length = 20) "each replicate as long as the data"
            let meanRep = c.Replicated |> Array.averageBy Array.average
            Expect.floatClose { absolute = 0.15; relative = 0.0 } meanRep 3.0 "replicates follow the substituted draw"
            let withModel = Checks.addModel (Rng.key 6UL) 10 m (ReportInput.ofDraws "normal mean" draws)
            let rows = withModel.Description.Value
            Expect.equal rows.[0].[0] "site" "header"
            Expect.equal (rows.[1..] |> Array.map (fun r -> r.[0], r.[1])) [| "mu", "latent"; "y", "observed" |] "sites and kinds"
            let html = Report.html withModel
            Expect.stringContains html "id=\"chart-ppc-y\"" "the check is on the page"

        testCase "an SVI fit's report: guide draws as one chain, its loss curve, description and predictive check" <| fun () ->
            let modelFn (data: Map<string, Tensor>) = model {
                let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 10.0))
                return! Model.observe "y" (Independent (Normal (Tensor.zeros [| 20 |] + mu, Tensor.ones [| 20 |]), 1)) (Some data.["y"]) }
            let data = Map.ofList [ "y", Tensor.ofArray (Array.init 20 (fun i -> 2.0 + 0.1 * float (i % 5))) ]
            let f = Fit.vi { FitOptions.Default with Run.Steps = Some 300; LearningRate = 0.05; Seed = 4UL } modelFn data
            let r = FromPosterior.input "svi" (Rng.key 9UL) 200 f data
            Expect.equal r.Draws.["mu"].Shape [| 1; 200 |] "guide draws as one chain"
            Expect.equal r.SviLoss (Some (Posterior.losses f)) "the loss history"
            Expect.equal (r.Checks |> List.map (fun c -> c.Site)) [ "y" ] "the observed site is checked"
            let html = Report.html r
            for id in [ "chart-loss"; "chart-density"; "chart-ppc-y"; "model-table"; "summary-table" ] do
                Expect.stringContains html (sprintf "id=\"%s\"" id) id
            Expect.isFalse (html.Contains "id=\"chart-trace\"") "no trace plots for guide draws"

        testCase "an MCMC posterior's report: chains, NUTS statistics, deterministic sites and Report.save" <| fun () ->
            let modelFn (data: Map<string, Tensor>) = model {
                let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 10.0))
                let! _ = Model.deterministic "twice" (mu * 2.0)
                return! Model.observe "y" (Independent (Normal (Tensor.zeros [| 20 |] + mu, Tensor.ones [| 20 |]), 1)) (Some data.["y"]) }
            let data = Map.ofList [ "y", Tensor.ofArray (Array.init 20 (fun i -> 2.0 + 0.1 * float (i % 5))) ]
            let p = Fit.mcmcIn RunContext.Quiet { McmcOptions.Default with Chains = 2; Warmup = 100; Samples = 100; Seed = 5UL } modelFn data
            let r = FromPosterior.input "nuts" (Rng.key 9UL) 1000 p data
            Expect.equal r.Draws.["mu"].Shape [| 2; 100 |] "chains × draws"
            Expect.equal r.Draws.["twice"].Shape [| 2; 100 |] "the deterministic site is reported"
            Expect.isSome r.Stats "NUTS statistics"
            Expect.equal (r.Checks |> List.map (fun c -> c.Site)) [ "y" ] "the observed site is checked"
            let table = Report.summary r |> Array.map (fun s -> s.Name, s.Mean) |> Map.ofArray
            Expect.floatClose Accuracy.high table.["twice"] (2.0 * table.["mu"]) "twice = 2 mu in the table"
            let path = IO.Path.Combine(IO.Path.GetTempPath(), sprintf "fb-report-%s.html" (Guid.NewGuid().ToString "N"))
            try
                Report.save path p data
                let html = IO.File.ReadAllText path
                for id in [ "chart-trace"; "chart-rank"; "chart-energy"; "chart-sampler"; "summary-table" ] do
                    Expect.stringContains html (sprintf "id=\"%s\"" id) id
            finally IO.File.Delete path

        testCase "bad input is refused before drawing, naming the site and shapes" <| fun () ->
            let ragged = { input with Draws = input.Draws.Add("sigma", Tensor.create [| 2; 5 |] (Array.zeroCreate 10)) }
            let ex = Expect.throwsC (fun () -> Report.html ragged |> ignore) id
            Expect.stringContains ex.Message "sigma" "site named"
            Expect.stringContains ex.Message "2 chains × 5 draws" "shapes named"
            let badRep = { input with Checks = [ { Site = "y"; Observed = [| 1.0; 2.0 |]; Replicated = [| [| 1.0 |] |] } ] }
            let ex2 = Expect.throwsC (fun () -> Report.html badRep |> ignore) id
            Expect.stringContains ex2.Message "replicated data set 0 of site 'y' has 1 values" "replicate length"
    ]
