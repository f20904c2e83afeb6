namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Which evidence lower bound to maximize.
[<RequireQualifiedAccess>]
type Elbo =
    /// E_q[log p(x, z) − log q(z)] by Monte Carlo with this many particles.
    | Trace of particles: int
    /// As Trace, but −KL(q ‖ p) is analytic for latent sites whose pair has a registered closed form
    /// (valid for mean-field guides whose sites do not depend on each other).
    | MeanField of particles: int
    /// The minibatch ELBO that needs no plates (BLayers' Batched_Trace_ELBO, with its fixes):
    /// (N / B)·Σ log p(y_batch | z) − [log q(z) − log p(z)], with B the real size of the batch. An
    /// unbiased estimate of the full-data ELBO; scale and mask handlers are respected; models with
    /// plates are refused. Factor sites (Model.factor) count as prior terms: once per step, NOT scaled
    /// by N/B (unlike BLayers, where NumPyro's factor is an observed site). A factor that sums over the
    /// batch's rows is a likelihood term: scale it with Handlers.scale or observe a distribution instead.
    | Batched of particles: int

    member e.Particles =
        match e with
        | Trace n | MeanField n | Batched n -> n

/// What one ELBO evaluation needs besides the parameter values.
[<NoEquality; NoComparison>]
type ElboContext<'T> =
    { Model: Model<'T>
      Guide: Guide
      /// Rows in the full data (for the batched ELBO).
      NumObs: int
      /// Rows in this batch.
      BatchRows: int }

[<RequireQualifiedAccess>]
module ElboEstimate =

    let private sumDensities (sites: Site[]) =
        sites |> Array.fold (fun acc s -> acc + Tensor.sum (Site.logDensity s)) (Tensor.scalar 0.0)

    let private isDensity (s: Site) = s.Kind = SampleSite || s.Kind = FactorSite

    /// The guide's and the model's traces for one particle.
    let traces (key: RngKey) (guideParams: Map<string, Tensor>) (modelParams: Map<string, Tensor>) (ctx: ElboContext<'T>) =
        let kg, km = Rng.split key
        let _, gt = Traced.atValues kg guideParams ctx.Guide.Program
        let _, mt = Traced.run km (Handlers.replay gt (Handlers.substitute modelParams ctx.Model))
        gt, mt

    let private checkCovered (gt: Trace) (mt: Trace) =
        let covered = gt.Sites |> Array.filter (fun s -> s.Kind = SampleSite) |> Array.map (fun s -> s.Name) |> Set.ofArray
        match Trace.latents mt |> Array.tryFind (fun s -> not (covered.Contains s.Name)) with
        | Some s -> invalidOp (sprintf "ELBO: the model's latent site '%s' has no site in the guide; a guide must sample every latent site of the model." s.Name)
        | None -> ()

    /// Guide sites whose draws carry no pathwise gradient (no reparameterization, or only a partial one
    /// as StudentT's degrees of freedom): their score-function term Σ log q̃ · stopGradient(ELBO), with
    /// log q̃ the density of the non-reparameterized part (Dist.scoreLogProb), added as
    /// (log q̃ − stopGradient(log q̃))·stopGradient(ELBO) so the value is unchanged and the gradient is
    /// unbiased (the REINFORCE estimator).
    let private withScoreTerms (guideSites: Site[]) (value: Tensor) =
        let scored =
            guideSites |> Array.choose (fun s ->
                match s.Dist, s.Value with
                | Some d, Some v ->
                    Dist.scoreLogProb d v |> Option.map (fun lp ->
                        let lp = match s.Mask with Some m -> Tensor.where m lp (Tensor.zerosLike lp) | None -> lp
                        Tensor.sum (match s.Scale with Some c -> lp * c | None -> lp))
                | _ -> None)
        if scored.Length = 0 then value
        else
            let lq = Array.reduce (+) scored
            value + (lq - Tensor.stopGradient lq) * Tensor.stopGradient value

    /// The ELBO of one particle (to maximize).
    let particle (elbo: Elbo) (key: RngKey) (guideParams: Map<string, Tensor>) (modelParams: Map<string, Tensor>) (ctx: ElboContext<'T>) : Tensor =
        let gt, mt = traces key guideParams modelParams ctx
        checkCovered gt mt
        let guideSites = gt.Sites |> Array.filter (fun s -> s.Kind = SampleSite)
        withScoreTerms guideSites <|
        match elbo with
        | Elbo.Trace _ -> sumDensities (mt.Sites |> Array.filter isDensity) - sumDensities guideSites
        | Elbo.MeanField _ ->
            let guideByName = guideSites |> Array.map (fun s -> s.Name, s) |> dict
            let analytic =
                Trace.latents mt |> Array.choose (fun p ->
                    match guideByName.TryGetValue p.Name with
                    | true, q when p.Mask.IsNone ->
                        Kl.tryAnalytic q.Dist.Value p.Dist.Value
                        |> Option.map (fun kl -> p.Name, (match p.Scale with Some c -> kl * c | None -> kl))
                    | _ -> None)
            let handled = analytic |> Array.map fst |> Set.ofArray
            let klSum = analytic |> Array.fold (fun acc (_, kl) -> acc + Tensor.sum kl) (Tensor.scalar 0.0)
            sumDensities (mt.Sites |> Array.filter (fun s -> isDensity s && not (handled.Contains s.Name)))
            - sumDensities (guideSites |> Array.filter (fun s -> not (handled.Contains s.Name)))
            - klSum
        | Elbo.Batched _ ->
            match mt.Sites |> Array.tryFind (fun s -> s.Kind = PlateSite || not s.Plates.IsEmpty) with
            | Some s ->
                let plate = if s.Kind = PlateSite then s.Name else s.Plates.Head.Name
                invalidOp (sprintf "Batched ELBO: the model has the plate '%s'; the batched ELBO scales the likelihood itself and does not mix with plates. Remove the plate, or use Elbo.Trace with plate subsampling." plate)
            | None -> ()
            if ctx.BatchRows < 1 then invalidOp "Batched ELBO: the batch has no rows."
            let llh = sumDensities (Trace.observed mt)
            let prior = sumDensities (mt.Sites |> Array.filter (fun s -> Site.isLatent s || s.Kind = FactorSite))
            float ctx.NumObs / float ctx.BatchRows * llh + prior - sumDensities guideSites

    /// The loss: minus the ELBO averaged over the particles (keys folded from `key`).
    let loss (elbo: Elbo) (key: RngKey) (guideParams: Map<string, Tensor>) (modelParams: Map<string, Tensor>) (ctx: ElboContext<'T>) : Tensor =
        let n = elbo.Particles
        if n < 1 then invalidArg "elbo" (sprintf "ELBO: needs at least one particle, got %d." n)
        let total = Seq.init n (fun j -> particle elbo (Rng.foldIn key j) guideParams modelParams ctx) |> Seq.reduce (+)
        -(total / float n)
