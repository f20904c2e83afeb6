namespace FunctionalBayes

open FunctionalBayes.Tensors

/// Named data tensors whose first axis is the row (observation) axis.
[<RequireQualifiedAccess>]
module Data =

    /// The common row count: the one rule of SVI, MCMC and the C# DataSet. Every tensor with a row axis has
    /// the same number of rows; a scalar is a constant of every row and has none (data of scalars only has
    /// one row). Raises naming the two tensors whose rows differ, with their shapes.
    let rows (data: Map<string, Tensor>) : int =
        if data.IsEmpty then invalidArg "data" "Data.rows: the data is empty; pass at least one tensor with a row axis."
        let arrays = data |> Map.toArray |> Array.filter (fun (_, t) -> t.Rank >= 1)
        if arrays.Length = 0 then 1
        else
            let k0, t0 = arrays.[0]
            match arrays |> Array.tryFind (fun (_, t) -> t.Shape.[0] <> t0.Shape.[0]) with
            | Some (k, t) ->
                invalidArg "data" (sprintf "Inconsistent data lengths: '%s' has shape %s (%d rows) but '%s' has shape %s (%d rows); every array needs the same number of rows."
                                       k0 (Shape.format t0.Shape) t0.Shape.[0] k (Shape.format t.Shape) t.Shape.[0])
            | None -> t0.Shape.[0]

    /// The rows at the given int32 indices (scalars are kept as they are).
    let take (idx: Tensor) (data: Map<string, Tensor>) = data |> Map.map (fun _ t -> if t.Rank = 0 then t else Tensor.indexSelect 0 idx t)

    /// Rows start .. start+count-1 (scalars are kept as they are).
    let slice (start: int) (count: int) (data: Map<string, Tensor>) = data |> Map.map (fun _ t -> if t.Rank = 0 then t else Tensor.narrow 0 start count t)

    /// Steps per epoch for a batch size: ceil(N / B).
    let stepsPerEpoch (n: int) (batchSize: int) =
        if batchSize < 1 then invalidArg "batchSize" (sprintf "batch size must be at least 1, got %d." batchSize)
        (n + batchSize - 1) / batchSize
