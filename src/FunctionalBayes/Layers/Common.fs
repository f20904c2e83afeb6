namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Shared pieces of the layers: site names, data shapes, prior checks.
[<RequireQualifiedAccess>]
module internal LayerCommon =

    /// BLayers' site names: {Layer}_{name}_{suffix}.
    let site (layer: string) (name: string) (suffix: string) = sprintf "%s_%s_%s" layer name suffix

    /// A 1-D x is one column: (n,) -> (n, 1); 2-D stays; anything else is refused.
    let asMatrix (layer: string) (what: string) (x: Tensor) =
        match x.Rank with
        | 1 -> Tensor.reshape [| x.Size; 1 |] x
        | 2 -> x
        | _ -> invalidArg what (sprintf "%s: %s must be a vector or a matrix (n, d), got shape %s." layer what (Shape.format x.Shape))

    /// Integer category ids as an int32 vector (n,), from (n,) or (n, 1), checked against the count.
    let asIndices (layer: string) (what: string) (numCategories: int) (x: Tensor) =
        if not (x.Rank = 1 || (x.Rank = 2 && x.Shape.[1] = 1)) then
            invalidArg what (sprintf "%s: %s must be a vector (n,) or a column (n, 1) of category ids, got shape %s." layer what (Shape.format x.Shape))
        let ids = Tensor.reshape [| x.Size |] x
        // a check only (a compiled program checks its indices again at bind)
        let v = Tensor.valuesForCheck ids
        match v |> Array.tryFindIndex (fun a -> a <> Math.Floor a) with
        | Some row ->
            raise (Check.categoryIdError (sprintf "%s: row %d of %s is %g; category ids must be integers in 0..%d." layer row what v.[row] (numCategories - 1)) row v.[row] x)
        | None -> ()
        match v |> Array.tryFindIndex (fun a -> a < 0.0 || a >= float numCategories) with
        | Some row ->
            raise (Check.categoryIdError (sprintf "%s: row %d of %s is category id %d, outside 0..%d (%d categories)." layer row what (int v.[row]) (numCategories - 1) numCategories) row v.[row] x)
        | None -> if ids.Dtype = Int32 then ids else Tensor.cast Int32 ids

    let positiveInt (layer: string) (what: string) (v: int) =
        if v < 1 then invalidArg what (sprintf "%s: %s must be at least 1, got %d." layer what v)

    /// Checks a scale prior: a distribution on positive values.
    let checkScalePrior (layer: string) (d: Distribution) =
        match Dist.support d with
        | Constraint.Positive | Constraint.GreaterThan _ -> ()
        | c -> invalidArg "scalePrior" (sprintf "%s: the scale prior must be on positive values, got %s with support %A." layer (Dist.name d) c)

    /// The scale prior expanded to a shape.
    let expandTo (shape: int[]) (d: Distribution) =
        let bs = Dist.batchShape d
        if Shape.equal bs shape then d else Dist.expand shape d
