/// Issue 23, "no silent wrong answer": each test here failed on 7781da1 (the finding it is named after) and
/// passes now. Files bound to their model, inputs checked before any work, diagnostics at R's `posterior`
/// conventions on the edges (fixtures from fixtures/diagnostics_edges.R).
module FunctionalBayes.Tests.SafetyTests

open System
open System.IO
open System.Text.Json
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors

let private s (v: float) = Tensor.scalar v
let private n = 40

/// floor_beta + county effects (when `groups` > 0) + Gaussian noise, on data with 5 counties.
let private hier (groups: int) (d: Map<string, Tensor>) : Model<Tensor> = model {
    let! b = Model.sample "floor_beta" (Normal (s 0.0, s 1.0))
    let! mu =
        if groups > 0 then model {
            let! re = Layers.randomEffects "county" d.["county"] groups
            return b + Tensor.reshape [| d.["county"].Size |] re }
        else model { return b + Tensor.zerosLike d.["county"] }
    return! Links.gaussian "y" mu (d.TryFind "y") }

let private data =
    Map [ "county", Tensor.ofArray (Array.init n (fun i -> float (i % 5)))
          "y", Rng.normal (Rng.key 4UL) [| n |] ]

let private viOpts = { FitOptions.Default with Run.Steps = Some 30; Seed = 1UL }
let private nutsOpts = { McmcOptions.Default with Chains = 1; Warmup = 30; Samples = 10; Seed = 1UL }

let private temp () = Path.Combine(Path.GetTempPath(), sprintf "fb-safety-%d.json" (Random.Shared.Next()))

let private throwsWith<'E when 'E :> exn> (parts: string list) (f: unit -> unit) (what: string) =
    let e = Assert.ThrowsAny<'E>(Action f)
    for p in parts do
        Expect.stringContains e.Message p (sprintf "%s: the message names %s (got: %s)" what p e.Message)
    e

let private withFile (f: string -> unit) =
    let path = temp ()
    try f path finally File.Delete path

[<Tests>]
let fileTests =
    testList "issue 23: posterior files are bound to their model" [
        testCase "finding 1: an SVI file loads into no other model; the first difference is named" <| fun () ->
            let p = Fit.vi viOpts (hier 5) data
            withFile (fun path ->
                Fit.save path p
                // the same model loads (and gives the same draws)
                let q = Fit.load path (hier 5) data None
                Expect.sequenceEqual (Tensor.toArray (Posterior.draws q (Rng.key 2UL) 5).["floor_beta"]) (Tensor.toArray (Posterior.draws p (Rng.key 2UL) 5).["floor_beta"]) "same draws"
                // without the random effects, floor_beta used to take county_theta[0]'s place
                throwsWith<InvalidDataException> [ path; "RandomEffectsLayer_county_scale" ] (fun () -> Fit.load path (hier 0) data None |> ignore) "no random effects" |> ignore
                // 7 groups used to fail deep inside slice
                throwsWith<InvalidDataException> [ "site 'RandomEffectsLayer_county_theta' has shape [7, 1] in the model and [5, 1] in the file" ]
                    (fun () -> Fit.load path (hier 7) data None |> ignore) "7 groups" |> ignore)

        testCase "finding 1: a file refuses data of another shape or dtype" <| fun () ->
            let p = Fit.vi viOpts (hier 5) data
            withFile (fun path ->
                Fit.save path p
                Fit.load path (hier 5) data None |> ignore
                let wide = data |> Map.add "county" (Tensor.reshape [| n; 1 |] data.["county"])
                throwsWith<InvalidDataException> [ "data key 'county' has shape [40, 1] in the data given and [40] in the file" ]
                    (fun () -> Fit.load path (hier 5) wide None |> ignore) "another data shape" |> ignore)

        testCase "every save path records the observed sites and data keys: SVI, NUTS and re-saved files refuse another observed site or data key" <| fun () ->
            // the same latents with a second observed site, and reading the groups from another key
            let extraObs (d: Map<string, Tensor>) : Model<Tensor> = model {
                let! y = hier 5 d
                let! _ = Model.observe "y_twice" (Normal (Tensor.zerosLike d.["county"], s 1.0)) (d.TryFind "y")
                return y }
            let renamedKey (d: Map<string, Tensor>) = hier 5 (d |> Map.add "county" d.["group"])
            let byGroup = data |> Map.add "group" data.["county"] |> Map.remove "county"
            let vi = Fit.vi viOpts (hier 5) data
            let nuts = Fit.mcmcIn RunContext.Quiet nutsOpts (hier 5) data
            for what, p in [ "SVI", vi; "NUTS", nuts ] do
                withFile (fun path ->
                    Fit.save path p
                    // a loaded posterior keeps the signature it was saved with
                    let again = Fit.load path (hier 5) data None
                    Fit.save path again
                    let text = File.ReadAllText path
                    Expect.stringContains text "\"observed\"" (what + ": the file records the observed sites")
                    Expect.stringContains text "\"key\":\"county\"" (what + ": the file records the data keys")
                    throwsWith<InvalidDataException> [ path; "the model has the observed site 'y_twice' (shape [40]) but the file has none of that name" ]
                        (fun () -> Fit.load path extraObs data None |> ignore) (what + ": another observed site") |> ignore
                    throwsWith<InvalidDataException> [ path; "the data key 'county'"; "the data given have none" ]
                        (fun () -> Fit.load path renamedKey byGroup None |> ignore) (what + ": renamed data key") |> ignore)

        testCase "finding 2: a NUTS posterior of a 5-group model does not load into a 7-group model" <| fun () ->
            let p = Fit.mcmcIn RunContext.Quiet nutsOpts (hier 5) data
            withFile (fun path ->
                Fit.save path p
                Fit.load path (hier 5) data None |> ignore
                throwsWith<InvalidDataException> [ path; "site 'RandomEffectsLayer_county_theta' has shape [7, 1] in the model and [5, 1] in the file" ]
                    (fun () -> Fit.load path (hier 7) data None |> ignore) "7 groups" |> ignore)

        testCase "finding 3: truncated, empty and non-JSON posterior files are InvalidDataException naming the file" <| fun () ->
            let p = Fit.vi viOpts (hier 5) data
            withFile (fun path ->
                Fit.save path p
                let text = File.ReadAllText path
                for broken in [ text.Substring(0, text.Length / 2); ""; "not json"; "{\"format\": 3}" ] do
                    File.WriteAllText(path, broken)
                    throwsWith<InvalidDataException> [ path ] (fun () -> Fit.load path (hier 5) data None |> ignore) (sprintf "%A" (broken.Substring(0, min 20 broken.Length))) |> ignore
                    throwsWith<InvalidDataException> [ path ] (fun () -> Fit.loadParams path |> ignore) "params" |> ignore)

        testCase "finding 3: a VAE file does not load into an engine with another hidden size" <| fun () ->
            let vae (hidden: int) =
                let enc = Nn.mlp { MlpSpec.Create(6, [ hidden ], [ Nn.head "loc" 2 Activations.identity; Nn.head "scale" 2 Activations.halfExp ]) with Dtype = Float64 }
                let dec = Nn.mlp { MlpSpec.Create(2, [ hidden ], [ Nn.head "logits" 6 Activations.identity ]) with Dtype = Float64 }
                Aevb.create 2 6 enc dec AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 1 1.0
            let st = Aevb.init (vae 8) (Rng.key 1UL)
            withFile (fun path ->
                Aevb.save path (vae 8) None st
                Aevb.load (vae 8) path |> ignore
                throwsWith<InvalidDataException> [ path; "in the engine and"; "in the file" ] (fun () -> Aevb.load (vae 16) path |> ignore) "hidden 16" |> ignore
                File.WriteAllText(path, "")
                throwsWith<InvalidDataException> [ path; "empty" ] (fun () -> Aevb.load (vae 8) path |> ignore) "empty" |> ignore)

        testCase "an AEVB file records its families, sizes, dtype and run options, and refuses another engine naming the difference" <| fun () ->
            let vae (latent: int) (dtype: Dtype) (variational: Family) =
                let enc = Nn.mlp { MlpSpec.Create(6, [ 8 ], [ Nn.head "loc" latent Activations.identity; Nn.head "scale" latent Activations.halfExp ]) with Dtype = dtype }
                let dec = Nn.mlp { MlpSpec.Create(latent, [ 8 ], [ Nn.head "logits" 6 Activations.identity ]) with Dtype = dtype }
                Aevb.create latent 6 enc dec AevbPrior.UnitNormal Family.bernoulli variational (Optimizer.AdamDefault 1e-2) 1 1.0
            let e = vae 2 Float64 Family.normal
            let x = Tensor.cast Float64 (Tensor.gtScalar (Rng.uniform (Rng.key 2UL) [| 16; 6 |]) 0.5)
            let opts = { AevbRunOptions.Create(2, 8) with EarlyStopping = Some { Window = 5; RelTol = 0.1; Patience = 2 } }
            let r = Aevb.run e (Rng.key 3UL) x opts
            withFile (fun path ->
                Aevb.save path e (Some opts) r.State
                Expect.equal (Aevb.savedOptions path) (Some opts) "the run options round-trip as an equal record"
                Expect.equal (Aevb.reconstruct e (Aevb.load e path) x |> Tensor.toArray) (Aevb.reconstruct e r.State x |> Tensor.toArray) "same networks"
                // Laplace has Normal's heads and shapes: only the family's name tells them apart
                throwsWith<InvalidDataException> [ path; "the encoder's (variational) family is 'Laplace' in the engine and 'Normal' in the file" ]
                    (fun () -> Aevb.load (vae 2 Float64 Family.laplace) path |> ignore) "another family" |> ignore
                throwsWith<InvalidDataException> [ path; "the latent size is 3 in the engine and 2 in the file" ]
                    (fun () -> Aevb.load (vae 3 Float64 Family.normal) path |> ignore) "another latent size" |> ignore
                throwsWith<InvalidDataException> [ path; "dtype is float32 in the engine and float64 in the file" ]
                    (fun () -> Aevb.load (vae 2 Float32 Family.normal) path |> ignore) "another dtype" |> ignore
                Aevb.save path e None (Aevb.init e (Rng.key 1UL))
                Expect.isNone (Aevb.savedOptions path) "untrained networks have no run options")
    ]

[<Tests>]
let inputTests =
    testList "issue 23: inputs are checked before any work" [
        testCase "finding 5: 0-row data are refused by SVI and NUTS, naming the key" <| fun () ->
            let empty = data |> Map.map (fun _ t -> Tensor.narrow 0 0 0 t)
            throwsWith<ArgumentException> [ "0 rows"; "'county'" ] (fun () -> Fit.vi viOpts (hier 5) empty |> ignore) "SVI" |> ignore
            throwsWith<ArgumentException> [ "0 rows"; "'county'" ] (fun () -> Fit.mcmcIn RunContext.Quiet nutsOpts (hier 5) empty |> ignore) "NUTS" |> ignore

        testCase "finding 6: AEVB data that are NaN or outside the observation family's support are refused, naming row, column and value" <| fun () ->
            let enc = Nn.mlp { MlpSpec.Create(3, [ 4 ], [ Nn.head "loc" 2 Activations.identity; Nn.head "scale" 2 Activations.halfExp ]) with Dtype = Float64 }
            let dec = Nn.mlp { MlpSpec.Create(2, [ 4 ], [ Nn.head "logits" 3 Activations.identity ]) with Dtype = Float64 }
            let e = Aevb.create 2 3 enc dec AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 1 1.0
            let x (bad: float) = Tensor.create [| 4; 3 |] (Array.init 12 (fun i -> if i = 7 then bad else float (i % 2)))
            let run (v: float) () = Aevb.run e (Rng.key 1UL) (x v) (AevbRunOptions.Create(2, 2)) |> ignore
            throwsWith<ArgumentException> [ "row 2, column 1"; "NaN" ] (run nan) "NaN" |> ignore
            throwsWith<ArgumentException> [ "row 2, column 1"; "3"; "Bernoulli" ] (run 3.0) "a Bernoulli 3" |> ignore
            // grey levels in [0, 1] are the Bernoulli family's documented data
            run 0.5 ()

        testCase "finding 8: an id outside the random effects' groups names the data key, the row and the value" <| fun () ->
            let ids = Array.init n (fun i -> float (i % 5))
            ids.[3] <- 9.0
            let d = Map [ "county_id", Tensor.ofArray ids; "y", data.["y"] ]
            let m (d: Map<string, Tensor>) = hier 5 (d |> Map.add "county" d.["county_id"])
            let e = throwsWith<ArgumentException> [ "'county_id'"; "row 3"; "9" ] (fun () -> Fit.vi viOpts m d |> ignore) "SVI"
            Expect.isFalse (e.Message.Contains "(Parameter") "no '(Parameter ...)' suffix"
            throwsWith<ArgumentException> [ "'county_id'"; "row 3" ] (fun () -> Fit.mcmcIn RunContext.Quiet nutsOpts m d |> ignore) "NUTS" |> ignore
            ids.[3] <- 1.5
            throwsWith<ArgumentException> [ "'county_id'"; "row 3"; "1.5" ] (fun () -> Fit.vi viOpts m (d |> Map.add "county_id" (Tensor.ofArray ids)) |> ignore) "1.5" |> ignore
    ]

// ---- finding 9: diagnostics against R's posterior 1.4 -------------------------------------------

let private fixture = lazy (
    let path = Path.Combine(AppContext.BaseDirectory, "fixtures", "diagnostics_edges.json")
    JsonDocument.Parse(File.ReadAllText path))

let private number (e: JsonElement) = if e.ValueKind = JsonValueKind.Null then nan else e.GetDouble()

/// posterior's value, NA as NaN; relative 1e-12 (the values agree to 1e-14 away from these edges).
let private agrees (what: string) (expected: float) (actual: float) =
    if Double.IsNaN expected then Expect.isTrue (Double.IsNaN actual) (sprintf "%s: posterior gives NA, we give %g" what actual)
    else Expect.isLessThanOrEqual (abs (actual - expected)) (1e-12 * max 1.0 (abs expected)) (sprintf "%s: posterior %.17g, ours %.17g" what expected actual)

[<Tests>]
let diagnosticsEdgeTests =
    testList "issue 23: diagnostics follow posterior's conventions at the edges (finding 9)" [
        for name in [ "short-chains"; "antithetic"; "even-median"; "near-constant" ] do
            testCase name <| fun () ->
                let c = fixture.Force().RootElement.GetProperty("cases").EnumerateArray() |> Seq.find (fun (c: JsonElement) -> c.GetProperty("name").GetString() = name)
                let draws = c.GetProperty("draws").EnumerateArray() |> Seq.map (fun (ch: JsonElement) -> ch.EnumerateArray() |> Seq.map number |> Seq.toArray) |> Seq.toArray
                let flat = Array.concat draws
                agrees "ess_basic" (number (c.GetProperty "ess_basic")) (Diagnostics.essMean draws)
                agrees "ess_bulk" (number (c.GetProperty "ess_bulk")) (Diagnostics.essBulk draws)
                agrees "ess_tail" (number (c.GetProperty "ess_tail")) (Diagnostics.essTail draws)
                agrees "rhat" (number (c.GetProperty "rhat")) (Diagnostics.rhat draws)
                Expect.equal (Diagnostics.quantile 0.5 flat) (number (c.GetProperty "median")) "the median, to the bit"
                agrees "q05" (number (c.GetProperty "q05")) (Diagnostics.quantile 0.05 flat)
                agrees "q95" (number (c.GetProperty "q95")) (Diagnostics.quantile 0.95 flat)
        testCase "E-BFMI of a constant energy is NaN, and no low-E-BFMI warning" <| fun () ->
            let c = fixture.Force().RootElement.GetProperty("ebfmi_constant")
            let energy = c.GetProperty("energy").EnumerateArray() |> Seq.map number |> Seq.toArray
            agrees "ebfmi" (number (c.GetProperty "ebfmi")) (Diagnostics.ebfmi energy)
    ]
