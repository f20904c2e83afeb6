namespace FunctionalBayes.Reporting

open FunctionalBayes
open FunctionalBayes.Tensors

/// Posterior predictive checks from a model and its posterior draws.
[<RequireQualifiedAccess>]
module Checks =

    /// For (at most) `maxDraws` posterior draws, evenly spread over draws [chains; draws; ...], the model is run with
    /// the latent values substituted and every observed site is replicated by sampling its distribution: one
    /// PredictiveCheck per observed site, its observed values against the replicated data sets.
    let ofDraws (key: RngKey) (maxDraws: int) (model: Model<'T>) (draws: Map<string, Tensor>) : PredictiveCheck list =
        if maxDraws < 1 then invalidArg "maxDraws" (sprintf "Checks.ofDraws: needs at least one draw, got %d." maxDraws)
        if draws.IsEmpty then invalidArg "draws" "Checks.ofDraws: no posterior draws."
        let shape0 = (Seq.head draws).Value.Shape
        if shape0.Length < 2 then
            invalidArg "draws" (sprintf "Checks.ofDraws: draws of shape %s; expected [chains; draws; ...site shape]." (Shape.format shape0))
        let chains, n = shape0.[0], shape0.[1]
        let total = chains * n
        let step = max 1 ((total + maxDraws - 1) / maxDraws)
        let picks = [| 0 .. step .. total - 1 |]
        let runs =
            picks
            |> Array.mapi (fun j flat ->
                let c, i = flat / n, flat % n
                let values = draws |> Map.map (fun _ d -> d |> Tensor.select 0 c |> Tensor.select 0 i)
                let k = Rng.foldIn key j
                let km, ks = Rng.split k
                let _, tr = Model.run (Handlers.trace (Handlers.seed km (Handlers.substitute values model)))
                Trace.observed tr
                |> Array.mapi (fun si s ->
                    let rep =
                        match s.Dist with
                        | Some d -> Dist.sample (Rng.foldIn ks si) [||] d |> Tensor.toArray
                        | None -> [||]
                    s.Name, (s.Value |> Option.map Tensor.toArray |> Option.defaultValue [||]), rep))
        if runs.Length = 0 then []
        else
            runs.[0]
            |> Array.mapi (fun si (name, observed, _) ->
                { Site = name; Observed = observed; Replicated = runs |> Array.map (fun r -> let _, _, rep = r.[si] in rep) })
            |> List.ofArray

    /// The input with the model's description table and its posterior predictive checks (from at most
    /// `maxDraws` draws) added.
    let addModel (key: RngKey) (maxDraws: int) (model: Model<'T>) (input: ReportInput) : ReportInput =
        { input with
            Description = Some (ModelInfo.describeRows key model)
            Checks = ofDraws key maxDraws model input.Draws }
