namespace FunctionalBayes

open FunctionalBayes.Tensors

/// Named data tensors whose first axis is the row (observation) axis.
[<RequireQualifiedAccess>]
module Data =

    /// The common row count; raises naming the tensors whose lengths differ.
    let rows (data: Map<string, Tensor>) : int =
        if data.IsEmpty then invalidArg "data" "Data.rows: the data is empty; pass at least one tensor with a row axis."
        let lens = data |> Map.toArray |> Array.map (fun (k, t) ->
            if t.Rank < 1 then invalidArg "data" (sprintf "Data: '%s' is a scalar; data tensors need a row axis (bind constants in the model function instead)." k)
            k, t.Shape.[0])
        let _, n0 = lens.[0]
        match lens |> Array.tryFind (fun (_, n) -> n <> n0) with
        | Some (k, n) -> invalidArg "data" (sprintf "Inconsistent data lengths: '%s' has %d rows but '%s' has %d." (fst lens.[0]) n0 k n)
        | None -> n0

    /// The rows at the given int32 indices.
    let take (idx: Tensor) (data: Map<string, Tensor>) = data |> Map.map (fun _ t -> Tensor.indexSelect 0 idx t)

    /// Rows start .. start+count-1.
    let slice (start: int) (count: int) (data: Map<string, Tensor>) = data |> Map.map (fun _ t -> Tensor.narrow 0 start count t)

    /// Steps per epoch for a batch size: ceil(N / B).
    let stepsPerEpoch (n: int) (batchSize: int) =
        if batchSize < 1 then invalidArg "batchSize" (sprintf "batch size must be at least 1, got %d." batchSize)
        (n + batchSize - 1) / batchSize
