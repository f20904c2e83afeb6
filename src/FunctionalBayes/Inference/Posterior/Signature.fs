namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// One site of a model's signature, as a posterior records it.
type SiteSignature =
    { Name: string
      /// "latent" or "observed".
      Kind: string
      Shape: int[]
      /// The support, in words (Check.describe).
      Support: string
      /// The value's dtype ("float64", ...); empty where the writer did not know it.
      Dtype: string
      /// Where a latent's unconstrained values sit in the guide's flat vectors (auto_loc, auto_scale) and
      /// in a sampler's positions: the offset and the length of its slice (−1 and 0 for an observed site).
      Offset: int
      Length: int }

/// One data key of a model's signature: its shape (rows first), dtype and, for a categorical column read
/// from a table, its levels (id i is level i).
type DataSignature =
    { Key: string
      Shape: int[]
      Dtype: string
      /// The vocabulary of a categorical key (None for other keys, and for ids given without one).
      Levels: string[] option }

/// What a posterior was made from: the model's latent and observed sites and the data keys, from the model
/// run on the data it was fitted to. A part is None only in a file whose writer did not record it.
type ModelSignature =
    { Latents: SiteSignature[] option
      Observed: SiteSignature[] option
      Data: DataSignature[] option }

/// Model signatures: made from a model on its data, compared part by part.
[<RequireQualifiedAccess>]
module ModelSignature =

    /// The latent sites with their slices of the flat unconstrained vector, in the potential's order.
    let internal latentSites (latents: LatentSite[]) (dtypeOf: string -> string) : SiteSignature[] =
        let mutable offset = 0
        latents
        |> Array.map (fun l ->
            let len = Shape.size l.UnconstrainedShape
            let s = { Name = l.Name; Kind = "latent"; Shape = l.Shape; Support = Check.describe l.Support; Dtype = dtypeOf l.Name; Offset = offset; Length = len }
            offset <- offset + len
            s)

    /// The signature of a model on data: its latent sites (with their slices of the flat unconstrained
    /// vector and dtypes), its observed sites and the data keys, from one run with a fixed key.
    let ofModel (m: Model<'T>) (data: Map<string, Tensor>) : ModelSignature =
        let key = Rng.key 0UL
        let pot = LogDensity.potential key m
        let _, tr = Traced.probe key m
        let dtypes = tr.Sites |> Array.choose (fun s -> s.Value |> Option.map (fun v -> s.Name, string v.Dtype)) |> Map.ofArray
        let observed =
            Trace.observed tr
            |> Array.map (fun s ->
                let v = s.Value.Value
                { Name = s.Name; Kind = "observed"; Shape = v.Shape; Support = (match s.Dist with Some d -> Check.describe (Dist.support d) | None -> "")
                  Dtype = string v.Dtype; Offset = -1; Length = 0 })
        { Latents = Some (latentSites pot.Latents (fun n -> defaultArg (dtypes.TryFind n) ""))
          Observed = Some observed
          Data = Some (data |> Map.toArray |> Array.map (fun (k, t) -> { Key = k; Shape = t.Shape; Dtype = string t.Dtype; Levels = None })) }

    /// The signature with the levels of categorical data keys (a table's vocabularies, by key); a key the
    /// signature does not have is an error.
    let withLevels (levels: Map<string, string[]>) (sg: ModelSignature) : ModelSignature =
        if levels.IsEmpty then sg
        else
            let data = defaultArg sg.Data [||]
            for KeyValue (k, _) in levels do
                if not (data |> Array.exists (fun d -> d.Key = k)) then
                    invalidArg "levels" (sprintf "ModelSignature.withLevels: '%s' has levels but is not a data key of the fit (keys: %s)." k (String.Join(", ", data |> Array.map (fun d -> d.Key))))
            { sg with Data = Some (data |> Array.map (fun d -> match levels.TryFind d.Key with Some l -> { d with Levels = Some (Array.copy l) } | None -> d)) }

    /// The levels of the categorical data keys, by key.
    let levels (sg: ModelSignature) : Map<string, string[]> =
        defaultArg sg.Data [||] |> Array.choose (fun d -> d.Levels |> Option.map (fun l -> d.Key, l)) |> Map.ofArray

    /// The rows of the data a signature was made on (the first axis of its first non-scalar key).
    let private rowsOf (sg: ModelSignature) : int option =
        sg.Data |> Option.bind (Array.tryPick (fun d -> if d.Shape.Length > 0 then Some d.Shape.[0] else None))

    /// Shapes agree; an observed site whose first axis is its data's rows may have other rows (a streamed
    /// fit's sample, new data for prediction).
    let private sameShape (rows: int option * int option) (m: SiteSignature) (f: SiteSignature) =
        m.Shape = f.Shape
        || (match rows with
            | Some rm, Some rf when m.Kind = "observed" && m.Shape.Length > 0 && m.Shape.Length = f.Shape.Length ->
                m.Shape.[0] = rm && f.Shape.[0] = rf && m.Shape.[1..] = f.Shape.[1..]
            | _ -> false)

    let private siteDifference (rows: int option * int option) (inModel: SiteSignature[]) (inFile: SiteSignature[]) : string option =
        let fromModel = inModel |> Array.map (fun s -> s.Name, s) |> Map.ofArray
        let fromFile = inFile |> Array.map (fun s -> s.Name, s) |> Map.ofArray
        let fileSide =
            inFile
            |> Array.tryPick (fun f ->
                match fromModel.TryFind f.Name with
                | None -> Some (sprintf "the file has the %s site '%s' (shape %s) but the model has none of that name" f.Kind f.Name (Shape.format f.Shape))
                | Some m when m.Kind <> f.Kind -> Some (sprintf "site '%s' is %s in the model and %s in the file" f.Name m.Kind f.Kind)
                | Some m when not (sameShape rows m f) -> Some (sprintf "site '%s' has shape %s in the model and %s in the file" f.Name (Shape.format m.Shape) (Shape.format f.Shape))
                | Some m when m.Support <> f.Support -> Some (sprintf "site '%s' is %s in the model and %s in the file" f.Name m.Support f.Support)
                | Some m when m.Dtype <> f.Dtype && m.Dtype <> "" && f.Dtype <> "" -> Some (sprintf "site '%s' is %s in the model and %s in the file" f.Name m.Dtype f.Dtype)
                | Some m when m.Offset <> f.Offset || m.Length <> f.Length ->
                    Some (sprintf "site '%s' is elements %d..%d of the flat unconstrained vector in the model and %d..%d in the file" f.Name m.Offset (m.Offset + m.Length - 1) f.Offset (f.Offset + f.Length - 1))
                | Some _ -> None)
        match fileSide with
        | Some d -> Some d
        | None ->
            inModel |> Array.tryFind (fun m -> not (fromFile.ContainsKey m.Name))
            |> Option.map (fun m -> sprintf "the model has the %s site '%s' (shape %s) but the file has none of that name" m.Kind m.Name (Shape.format m.Shape))

    let private levelsText (l: string[]) =
        sprintf "%d levels [%s%s]" l.Length (String.Join(", ", Array.truncate 5 l)) (if l.Length > 5 then ", ..." else "")

    let private dataDifference (inModel: DataSignature[]) (inFile: DataSignature[]) : string option =
        let given = inModel |> Array.map (fun d -> d.Key, d) |> Map.ofArray
        inFile
        |> Array.tryPick (fun f ->
            match given.TryFind f.Key with
            | None -> Some (sprintf "the posterior was made with the data key '%s' (shape %s) but the data given have none" f.Key (Shape.format f.Shape))
            // rows may differ (new data for prediction); the other axes and the dtype may not
            | Some g when g.Shape.Length <> f.Shape.Length || g.Shape.[1..] <> f.Shape.[1..] ->
                Some (sprintf "data key '%s' has shape %s in the data given and %s in the file" f.Key (Shape.format g.Shape) (Shape.format f.Shape))
            | Some g when g.Dtype <> f.Dtype -> Some (sprintf "data key '%s' is %s in the data given and %s in the file" f.Key g.Dtype f.Dtype)
            | Some { Levels = Some lg } when (match f.Levels with Some lf -> lf <> lg | None -> false) ->
                Some (sprintf "data key '%s' has %s in the data given and %s in the file" f.Key (levelsText lg) (levelsText f.Levels.Value))
            | Some _ -> None)

    /// The first difference between a model's signature and a file's (None when they agree on every part
    /// the file records), as a sentence: "site 'theta' has shape [7] in the model and [5] in the file".
    let firstDifference (inModel: ModelSignature) (inFile: ModelSignature) : string option =
        let part (f: ModelSignature -> 'a[] option) (diff: 'a[] -> 'a[] -> string option) =
            match f inModel, f inFile with
            | Some m, Some fl -> diff m fl
            | _ -> None
        let rows = rowsOf inModel, rowsOf inFile
        part (fun s -> s.Latents) (siteDifference rows)
        |> Option.orElse (part (fun s -> s.Observed) (siteDifference rows))
        |> Option.orElse (part (fun s -> s.Data) dataDifference)
