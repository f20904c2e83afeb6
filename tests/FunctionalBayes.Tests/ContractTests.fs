/// Typed contracts and the one way to rerun a model: Traced and Draws, guide roles, the gradient kind's
/// tag, typed sampler warnings.
module FunctionalBayes.Tests.ContractTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors

let private s (v: float) = Tensor.scalar v

/// z ~ N(0, 1), x ~ N(z, 1): x follows whatever z is fixed to.
let private chain = model {
    let! z = Model.sample "z" (Normal (s 0.0, s 1.0))
    return! Model.sample "x" (Normal (z, s 1.0)) }

let private valueOf (name: string) (tr: Trace) = Tensor.toScalar (tr.Value name)

let private normalMean (d: Map<string, Tensor>) = model {
    let! mu = Model.sample "mu" (Normal (s 0.0, s 10.0))
    return! Model.observe "y" (Independent (Normal (Tensor.zerosLike d.["y"] + mu, Tensor.onesLike d.["y"]), 1)) (Some d.["y"]) }

let private data = Map [ "y", Tensor.ofArray [| 0.3; 1.9; 1.1; 0.4; 1.6 |] ]

/// 2 chains of 10 draws: too few for the ESS threshold (100 per chain), so the ESS warnings are certain.
let private short = lazy (Fit.mcmcIn RunContext.Quiet { McmcOptions.Default with Chains = 2; Warmup = 60; Samples = 10; Seed = 7UL } normalMean data)

[<Tests>]
let tests =
    testList "Contracts" [
        testCase "Traced.run and Traced.atValues are the seed-trace-run they replace" <| fun () ->
            let key = Rng.key 3UL
            let _, a = Traced.run key chain
            let _, b = Model.run (Handlers.trace (Handlers.seed key chain))
            Expect.equal (valueOf "x" a, valueOf "z" a) (valueOf "x" b, valueOf "z" b) "run"
            let _, c = Traced.atValues key (Map [ "z", s 5.0 ]) chain
            let _, d = Model.run (Handlers.trace (Handlers.seed key (Handlers.substitute (Map [ "z", s 5.0 ]) chain)))
            Expect.equal (valueOf "z" c) 5.0 "the fixed site keeps its value"
            Expect.equal (valueOf "x" c) (valueOf "x" d) "the open site draws from the key"
            // without a key, an open site is an error naming it
            let ex = Expect.throwsC (fun () -> Traced.atValuesWith id (Map [ "z", s 5.0 ]) chain |> ignore) id
            Expect.stringContains ex.Message "'x'" "the open site is named"

        testCase "Draws.rerunAt runs draw i with Rng.foldIn key i; mergeChains keeps chain order" <| fun () ->
            let key = Rng.key 9UL
            let perChain = Map [ "z", Tensor.create [| 2; 3 |] [| 0.0; 10.0; 20.0; 30.0; 40.0; 50.0 |] ]
            let merged = Draws.mergeChains perChain
            Expect.sequenceEqual (Tensor.toArray merged.["z"]) [| 0.0; 10.0; 20.0; 30.0; 40.0; 50.0 |] "chain after chain"
            Expect.equal merged.["z"].Shape [| 6 |] "[chains·draws]"
            for i in 0 .. 5 do
                let tr = Draws.rerunAt key chain merged i
                Expect.equal (valueOf "z" tr) (10.0 * float i) "draw i's value"
                let _, expected = Traced.atValues (Rng.foldIn key i) (Map [ "z", s (10.0 * float i) ]) chain
                Expect.equal (valueOf "x" tr) (valueOf "x" expected) "run i's key"

        testCase "Draws.evenlySpaced picks exactly n draws, evenly, the first included; all when n ≥ total" <| fun () ->
            for total, n in [ 100, 40; 1000, 100; 7, 3; 400, 200 ] do
                let idx = Draws.evenlySpaced total n
                Expect.equal idx.Length n (sprintf "%d of %d" n total)
                Expect.equal idx.[0] 0 "the first draw"
                Expect.isTrue (idx |> Array.pairwise |> Array.forall (fun (a, b) -> b - a = total / n || b - a = (total + n - 1) / n)) "even gaps"
                Expect.isLessThan idx.[n - 1] total "inside"
            Expect.sequenceEqual (Draws.evenlySpaced 1000 100) (Array.init 100 (fun i -> 10 * i)) "every 10th of 1000"
            Expect.sequenceEqual (Draws.evenlySpaced 5 10) [| 0 .. 4 |] "all of them"

        testCase "an autoguide marks its sites by role; posterior draws leave auxiliaries out by role, not by name" <| fun () ->
            let g = Guide.auto AutoGuideKind.AutoDiagonalNormal (InitUniform 2.0) (Rng.key 1UL) (normalMean data)
            let _, tr = Traced.run (Rng.key 2UL) g.Program
            let roleOf name = (tr.Item name).Role
            Expect.equal (roleOf "_auto_latent") GuideRole.Auxiliary "the flat draw is auxiliary"
            Expect.equal (roleOf "auto_loc") GuideRole.FlatLocation "the flat location"
            Expect.equal (roleOf "auto_scale") GuideRole.Ordinary "another param"
            Expect.equal (roleOf "mu") GuideRole.Ordinary "the latent"
            // a user guide: what is left out of the draws is what it marks, whatever the names
            let userGuide (mark: Model<Tensor> -> Model<Tensor>) = Guide.ofModel "user" (model {
                let! raw = mark (Model.sample "_auto_raw" (Normal (s 1.0, s 0.1)))
                do! Model.sample "mu" (Delta (raw * 2.0, s 0.0, 0)) |> Model.map ignore })
            let keys (g: Guide) = Posterior.draws (Posterior.ofGuide normalMean data g Map.empty) (Rng.key 3UL) 4 |> Map.keys |> List.ofSeq
            Expect.equal (keys (userGuide (Handlers.role GuideRole.Auxiliary))) [ "mu" ] "marked auxiliary: left out"
            Expect.equal (keys (userGuide id)) [ "_auto_raw"; "mu" ] "not marked: a draw, whatever its name"

        testCase "the gradient kind is a tag in the file; texts of older files still load" <| fun () ->
            for k in [ GradientKind.Tape; GradientKind.TapeFallback "a branch"; GradientKind.Compiled 412; GradientKind.Custom "hand-coded" ] do
                Expect.equal (GradientKind.ofJson (GradientKind.toJson k)) (Ok k) (sprintf "%A round-trips" k)
            let old (text: string) = GradientKind.ofJson (JsonValue.Create text |> nonNull)
            Expect.equal (old "tape") (Ok GradientKind.Tape) "tape"
            Expect.equal (old "compiled (412 instructions)") (Ok (GradientKind.Compiled 412)) "compiled"
            Expect.equal (old "tape (not compiled: the graph branches)") (Ok (GradientKind.TapeFallback "the graph branches")) "fallback"
            Expect.equal (old "hand-coded Gaussian") (Ok (GradientKind.Custom "hand-coded Gaussian")) "custom"
            match GradientKind.ofJson (JsonNode.Parse """{"tag":"gpu"}""" |> nonNull) with
            | Error why -> Expect.stringContains why "'gpu'" "an unknown tag is named"
            | Ok k -> failtestf "an unknown tag loaded as %A" k
            match GradientKind.ofJson (JsonNode.Parse """{"tag":"compiled","instructions":1.5}""" |> nonNull) with
            | Error why -> Expect.stringContains why "1.5" "a count that is no count is named"
            | Ok k -> failtestf "1.5 instructions loaded as %A" k
            // a posterior file written before the tag (the kind as its text) loads with the typed kind
            let p = short.Force()
            let kind = (Posterior.samplesPart "test" p).GradientKind
            let path = Path.Combine(Path.GetTempPath(), sprintf "fb-contracts-%s.json" (Guid.NewGuid().ToString "N"))
            try
                Fit.save path p
                let root = JsonNode.Parse(File.ReadAllText path) |> nonNull
                Expect.equal ((nonNull root.["gradientKind"]).ToJsonString()) ((GradientKind.toJson kind).ToJsonString()) "saved as a tag"
                Expect.equal (Posterior.samplesPart "test" (Fit.load path normalMean data None)).GradientKind kind "loaded as saved"
                root.["gradientKind"] <- JsonValue.Create "compiled (7 instructions)"
                File.WriteAllText(path, root.ToJsonString())
                let q = Fit.load path normalMean data None
                Expect.equal (Posterior.samplesPart "test" q).GradientKind (GradientKind.Compiled 7) "the old text, typed"
            finally File.Delete path

        testCase "sampler warnings are typed values with Stan's text" <| fun () ->
            let ws = Posterior.warnings (short.Force())
            let bulk = ws |> List.tryPick (function DiagnosticWarning.LowEssBulk (threshold, names) -> Some (threshold, names) | _ -> None)
            match bulk with
            | Some (threshold, names) ->
                Expect.equal threshold 200.0 "100 per chain"
                Expect.equal names [| "mu" |] "the scalar named"
            | None -> failtestf "20 draws must warn of a low bulk ESS; got %A" ws
            for w in ws do
                Expect.equal w.Text (Diagnostics.warningText w) "the text is Stan's"
            Expect.isTrue (ws |> List.exists (fun w -> w.Text.StartsWith "Bulk Effective Samples Size (ESS) is too low (below 200 for mu)")) "the wording"
    ]
