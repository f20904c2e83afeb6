namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Checks of data before any work starts: fitting (SVI, MCMC), prediction and export call these, so
/// bad data gets an error that names the data key or site, the row (and column), the value and what was
/// expected, instead of a diverged loss later.
[<RequireQualifiedAccess>]
module Check =

    /// "row 3" or "row 3, column 1" (or "row 3, position [1, 2]") for a flat index into a shape.
    let private position (shape: int[]) (flat: int) =
        if shape.Length = 0 then "the scalar"
        else
            let idx = Array.zeroCreate shape.Length
            let mutable r = flat
            for a in shape.Length - 1 .. -1 .. 0 do
                idx.[a] <- r % shape.[a]
                r <- r / shape.[a]
            match shape.Length with
            | 1 -> sprintf "row %d" idx.[0]
            | 2 -> sprintf "row %d, column %d" idx.[0] idx.[1]
            | _ -> sprintf "row %d, position [%s]" idx.[0] (String.Join(", ", idx.[1..]))

    /// What a support means, in words, for messages.
    let describe (c: Constraint) : string =
        match c with
        | Constraint.Real -> "a real number"
        | Constraint.RealVector -> "a vector of real numbers"
        | Constraint.Positive -> "a positive number (> 0)"
        | Constraint.GreaterThan lo -> sprintf "a number greater than %g" lo
        | Constraint.Interval (lo, hi) -> sprintf "a number in (%g, %g)" lo hi
        | Constraint.LowerBound _ -> "a number above the site's lower bound"
        | Constraint.UpperBound _ -> "a number below the site's upper bound"
        | Constraint.Between _ -> "a number between the distribution's low and high bounds"
        | Constraint.UnitInterval -> "a number strictly between 0 and 1"
        | Constraint.Simplex -> "a vector of non-negative numbers that sum to 1"
        | Constraint.OrderedVector -> "a strictly increasing vector"
        | Constraint.PositiveOrderedVector -> "a strictly increasing vector of positive numbers"
        | Constraint.UnitVector -> "a vector of length one"
        | Constraint.LowerCholesky -> "a lower-triangular matrix with a positive diagonal"
        | Constraint.CorrCholesky -> "the Cholesky factor of a correlation matrix"
        | Constraint.PositiveDefinite -> "a symmetric positive-definite matrix"
        | Constraint.NonNegativeInteger -> "a non-negative integer (0, 1, 2, ...)"
        | Constraint.IntegerInterval (lo, hi) -> sprintf "an integer in %d..%d" lo hi
        | Constraint.Boolean -> "0 or 1"

    /// Raises ArgumentException when a data tensor holds NaN or ±∞, naming the key, the row (and
    /// column) and the value. Integer and bool tensors are always finite.
    let finiteData (data: Map<string, Tensor>) : unit =
        for KeyValue (k, t) in data do
            if not (isNull t) && t.Dtype.IsFloat then
                let v = Tensor.toArray t
                match v |> Array.tryFindIndex (fun x -> not (Double.IsFinite x)) with
                | Some i ->
                    invalidArg "data" (sprintf "Data '%s': %s holds %g; data must be finite numbers (drop or impute that row before fitting or predicting)." k (position t.Shape i) v.[i])
                | None -> ()

    /// Raises ArgumentException when an observed site of a completed trace has a value outside its
    /// distribution's support (a count of −1 for a Poisson, a label ≥ K for a categorical, y = 2 for
    /// a Bernoulli, ...), naming the site, the row (and column), the value and the support. Masked-out
    /// values are not checked.
    let observedSites (tr: Trace) : unit =
        for s in tr.Sites do
            match s.Kind, s.Dist, s.Value with
            | SampleSite, Some d, Some v when s.IsObserved ->
                let vals = Tensor.toArray (Tensor.cast Float64 (Tensor.detach v))
                match vals |> Array.tryFindIndex (fun x -> not (Double.IsFinite x)) with
                | Some i ->
                    invalidArg "data" (sprintf "Observed site '%s': %s holds %g; observations must be finite numbers." s.Name (position v.Shape i) vals.[i])
                | None -> ()
                let ok = Dist.inSupport d v
                let ok =
                    match s.Mask with
                    | Some m ->
                        let shape = Shape.broadcast "Check" ok.Shape m.Shape
                        let okB = Tensor.broadcastTo shape ok
                        Tensor.where (Tensor.broadcastTo shape m) okB (Tensor.geScalar (Tensor.zeros shape) 0.0)
                    | None -> ok
                let flags = Tensor.toBools ok
                match flags |> Array.tryFindIndex not with
                | Some i ->
                    // the mask has one entry per value (per event for vector families): map it to the value
                    let ev = (Dist.eventShape d).Length
                    let maskShape = ok.Shape
                    let evSize = if ev = 0 then 1 else Shape.size v.Shape.[v.Rank - ev ..]
                    let valueIndex = if Shape.size maskShape = vals.Length / evSize then i * evSize else i
                    let shown =
                        if evSize = 1 then sprintf "%g" vals.[min valueIndex (vals.Length - 1)]
                        else sprintf "[%s]" (String.Join(", ", vals.[valueIndex .. min (valueIndex + evSize - 1) (vals.Length - 1)] |> Array.map (sprintf "%g")))
                    let where = position maskShape i
                    invalidArg "data" (sprintf "Observed site '%s' (%s): %s has the value %s, outside its support; expected %s." s.Name (Dist.name d) where shown (describe (Dist.support d)))
                | None -> ()
            | _ -> ()

    /// The checks before fitting, predicting or exporting: every data tensor is finite, and the model,
    /// run once on the data (latents drawn from the prior with a fixed key), observes only values
    /// inside their sites' supports. Raises ArgumentException naming the data key or site, the row (and
    /// column), the value and what was expected.
    let observedData (m: Model<'T>) (data: Map<string, Tensor>) : unit =
        finiteData data
        let _, tr = Traced.probe (Rng.key 0UL) m
        observedSites tr

    /// Refuses data with no rows (a fit to them would return the prior and report success), naming the key.
    let someRows (what: string) (data: Map<string, Tensor>) : unit =
        for KeyValue (k, t) in data do
            if t.Rank >= 1 && t.Shape.[0] = 0 then
                invalidArg "data" (sprintf "%s: data key '%s' has 0 rows (shape %s); a fit to no data would only return the prior. Pass at least one row." what k (Shape.format t.Shape))

    /// The key of ArgumentException.Data under which the categorical layers leave (row, value, ids) of a
    /// bad category id, so that a fit can name the data key the ids came from.
    let internal categoryIdKey = "FunctionalBayes.CategoryId"

    /// An ArgumentException for a bad category id, carrying its row, value and the ids tensor.
    let internal categoryIdError (message: string) (row: int) (value: float) (ids: Tensor) : exn =
        let e = ArgumentException(message)
        e.Data.[categoryIdKey] <- box (row, value, ids)
        e :> exn

    /// Runs `f` (building and checking a model on the data); a category id outside its layer's range is
    /// reported with the data key it came from (the key whose values are the layer's ids), its row and value.
    let namingDataKeys (data: Map<string, Tensor>) (f: unit -> 'a) : 'a =
        try f ()
        with :? ArgumentException as e when e.Data.Contains categoryIdKey ->
            let row, _, ids = unbox<int * float * Tensor> e.Data.[categoryIdKey]
            let idValues = Tensor.toArray (Tensor.cast Float64 ids)
            let source =
                data |> Map.tryFindKey (fun _ t -> not (isNull t) && t.Size = idValues.Length && Tensor.toArray (Tensor.cast Float64 t) = idValues)
            match source with
            | Some k -> raise (ArgumentException(sprintf "Data '%s', row %d: %s" k row e.Message, e))
            | None -> reraise ()
