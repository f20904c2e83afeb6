namespace FunctionalBayes

open FunctionalBayes.Tensors

/// Running a model for its trace: under a key, or again at given site values (a posterior draw, a point).
/// Every "run it, read the trace" in the library goes through here.
[<RequireQualifiedAccess>]
module Traced =

    /// Runs the model with each site that needs randomness drawing from `key` (Handlers.seed);
    /// returns the model's value and its trace.
    let run (key: RngKey) (m: Model<'T>) : 'T * Trace = Model.run (Handlers.trace (Handlers.seed key m))

    /// Runs the model as `run` does, except that latent sites whose distribution cannot be sampled
    /// (improper or unnormalized priors: Dist.canSample) get a feasible value (Dist.feasible): for finding a
    /// model's sites, shapes and supports, never for prior draws. A model that raises at the prior draw
    /// (a GP covariance that is not numerically positive definite there) is probed again with every
    /// latent site at its feasible point; if that raises too, the first exception is raised.
    let probe (key: RngKey) (m: Model<'T>) : 'T * Trace =
        let attempt (allFeasible: bool) =
            let feasible =
                Handlers.custom (fun s next ->
                    match s.Kind, s.Dist with
                    | SampleSite, Some d when not s.IsObserved && s.Value.IsNone && (allFeasible || not (Dist.canSample d)) ->
                        next { s with Value = Some (Dist.feasible d) }
                    | _ -> next s) m
            run key feasible
        try attempt false
        with
        | :? System.OperationCanceledException -> reraise ()
        | first ->
            try attempt true
            with _ -> System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw(); reraise ()


    /// Runs the model with its sample and param sites fixed to `values` by name (Handlers.substitute);
    /// `complete` wraps the substituted model and gives the sites left open their values (Handlers.seed
    /// for fresh draws, `id` when every site must have one, a handler of one's own). Returns the value
    /// and the trace.
    let atValuesWith (complete: Model<'T> -> Model<'T>) (values: Map<string, Tensor>) (m: Model<'T>) : 'T * Trace =
        Model.run (Handlers.trace (complete (Handlers.substitute values m)))

    /// Runs the model with its sites fixed to `values` by name, the sites left open drawing from `key`:
    /// a model rerun on one posterior draw.
    let atValues (key: RngKey) (values: Map<string, Tensor>) (m: Model<'T>) : 'T * Trace =
        atValuesWith (Handlers.seed key) values m

/// Posterior draws by site name, stacked on a first axis ([draws; ...site shape]) or per chain
/// ([chains; draws; ...site shape]).
[<RequireQualifiedAccess>]
module Draws =

    /// Draw `i` of draws stacked on the first axis: one value per site.
    let at (i: int) (draws: Map<string, Tensor>) : Map<string, Tensor> = draws |> Map.map (fun _ d -> Tensor.select 0 i d)

    /// The chains merged: [chains; draws; ...] becomes [chains·draws; ...], chain after chain.
    let mergeChains (draws: Map<string, Tensor>) : Map<string, Tensor> =
        draws |> Map.map (fun _ t -> Tensor.reshape (Array.append [| t.Shape.[0] * t.Shape.[1] |] t.Shape.[2..]) t)

    /// `n` indices spread evenly over `total` draws, ⌊i·total/n⌋ for i in 0 .. n−1 (so exactly n of them,
    /// the first draw included); all `total` when n ≥ total.
    let evenlySpaced (total: int) (n: int) : int[] =
        if n >= total then Array.init total id else Array.init n (fun i -> int (int64 i * int64 total / int64 n))

    /// The model rerun on draw `i` of draws stacked on the first axis: its sites fixed to the draw's
    /// values, the sites left open drawing from Rng.foldIn key i. Returns the run's trace.
    let rerunAt (key: RngKey) (m: Model<'T>) (draws: Map<string, Tensor>) (i: int) : Trace =
        Traced.atValues (Rng.foldIn key i) (at i draws) m |> snd
