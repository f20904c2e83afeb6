namespace FunctionalBayes.Reporting

open FunctionalBayes
open FunctionalBayes.Tensors

/// Posterior predictive checks from a model and its posterior draws.
[<RequireQualifiedAccess>]
module Checks =

    /// For `maxDraws` posterior draws (all when there are fewer), evenly spread over draws [chains; draws; ...]
    /// (Draws.evenlySpaced), the model is run with the latent values substituted and every observed site is
    /// replicated by sampling its distribution: one PredictiveCheck per observed site, its observed values
    /// against the replicated data sets.
    let ofDraws (key: RngKey) (maxDraws: int) (model: Model<'T>) (draws: Map<string, Tensor>) : PredictiveCheck list =
        if maxDraws < 1 then invalidArg "maxDraws" (sprintf "Checks.ofDraws: needs at least one draw, got %d." maxDraws)
        if draws.IsEmpty then invalidArg "draws" "Checks.ofDraws: no posterior draws."
        let shape0 = (Seq.head draws).Value.Shape
        if shape0.Length < 2 then
            invalidArg "draws" (sprintf "Checks.ofDraws: draws of shape %s; expected [chains; draws; ...site shape]." (Shape.format shape0))
        let merged = Draws.mergeChains draws
        let runs =
            Draws.evenlySpaced (shape0.[0] * shape0.[1]) maxDraws
            |> Array.mapi (fun j flat ->
                let km, ks = Rng.split (Rng.foldIn key j)
                let _, tr = Traced.atValues km (Draws.at flat merged) model
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
