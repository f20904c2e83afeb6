namespace FunctionalBayes

open System
open System.Text
open FunctionalBayes.Tensors

/// Utilities over whole models: prior draws and a printable description.
[<RequireQualifiedAccess>]
module ModelInfo =

    /// n draws from the prior (and prior predictive, for observe sites without data), stacked on a
    /// new first axis, by site name. Deterministic sites are included.
    let samplePrior (key: RngKey) (n: int) (m: Model<'T>) : Map<string, Tensor> =
        if n < 1 then invalidArg "n" (sprintf "samplePrior: needs at least one draw, got %d." n)
        let traces = Array.init n (fun i -> Traced.run (Rng.foldIn key i) m |> snd)
        traces.[0].Sites
        |> Array.filter (fun s -> (s.Kind = SampleSite || s.Kind = DeterministicSite) && not s.IsObserved)
        |> Array.map (fun s -> s.Name, traces |> Array.map (fun t -> t.Value s.Name) |> Tensor.stack 0)
        |> Map.ofArray

    /// The model's sites as a table: a header row (site, kind, distribution, batch, event, value, plates),
    /// then one row per site, from one prior run with `key`.
    let describeRows (key: RngKey) (m: Model<'T>) : string[][] =
        let _, tr = Traced.run key m
        let rows =
            tr.Sites |> Array.map (fun s ->
                let kind =
                    match s.Kind with
                    | SampleSite -> if s.IsObserved then "observed" else "latent"
                    | ParamSite -> "param"
                    | DeterministicSite -> "deterministic"
                    | FactorSite -> "factor"
                    | PlateSite -> "plate"
                let dist, batch, event =
                    match s.Dist with
                    | Some d -> Dist.name d, Shape.format (Dist.batchShape d), Shape.format (Dist.eventShape d)
                    | None -> "", "", ""
                let value =
                    match s.Kind, s.Value with
                    | PlateSite, _ -> let size, sub = s.PlateSize in if sub = size then sprintf "size %d" size else sprintf "size %d, subsample %d" size sub
                    | _, Some v -> Shape.format v.Shape
                    | _, None -> ""
                let plates = s.Plates |> List.map (fun p -> p.Name) |> String.concat ", "
                [| s.Name; kind; dist; batch; event; value; plates |])
        Array.append [| [| "site"; "kind"; "distribution"; "batch"; "event"; "value"; "plates" |] |] rows

    /// A table of the model's sites (kind, distribution, batch and event shapes, value shape, plates)
    /// from one prior run with `key`, for users to read.
    let describe (key: RngKey) (m: Model<'T>) : string =
        let all = describeRows key m
        let widths = Array.init all.[0].Length (fun j -> all |> Array.map (fun r -> r.[j].Length) |> Array.max)
        let sb = StringBuilder()
        for r in all do
            sb.AppendLine(String.Join("  ", r |> Array.mapi (fun j c -> c.PadRight widths.[j])).TrimEnd()) |> ignore
        sb.ToString()
