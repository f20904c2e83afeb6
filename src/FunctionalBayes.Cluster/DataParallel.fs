namespace FunctionalBayes.Cluster

open System
open System.Threading.Tasks
open Orleans
open Orleans.Runtime
open FunctionalBayes
open FunctionalBayes.Tensors

/// The end of a data-parallel SVI fit.
[<NoEquality; NoComparison>]
type DataParallelResult =
    { /// The last state: parameters (State.Params), optimizer state, key.
      State: SviState
      /// The loss of every step (the sum of the shards' parts).
      Losses: float[] }

/// SVI on data split into shards held by different silos. Each step the coordinator (this process) sends
/// the parameters and the step's key to every shard; each silo returns its shard's part of the batched
/// ELBO's loss and gradient (every row of the shard, or with a batch size a minibatch of its rows drawn from
/// the step's key and the shard's index, its likelihood scaled by shard rows / batch rows; shard 0 adds the
/// prior and guide terms); the parts are summed in shard order, whatever order they arrive in, and one
/// optimizer update is made here. The optimizer state lives in one place and the shards hold none, so no
/// silo's can drift; the same seed gives the same numbers on any cluster. On every row the result equals the
/// one-process fit (DataParallelSvi.serial) to rounding: the sum over rows is split by shard (within 1e-12
/// relative in the tests); with minibatches it equals DataParallelSvi.serialBatched (one process, the same
/// per-shard batches).
[<RequireQualifiedAccess>]
module DataParallelSvi =

    let private hintKey = "PlacementHintKey" // IPlacementDirector.PlacementHintKey

    /// The same fit in one process on all the rows (the shards' rows together): the reference.
    let serial (registry: ModelRegistry) (model: string) (options: string) (seed: uint64) (data: Map<string, Tensor>) : SviState =
        (ModelRegistry.sviParts registry model options seed).Serial data

    /// The coordinator's loop: `gradient k request` computes shard k's part; batch 0 means every row.
    let private loop (gradient: int -> ShardRequest -> Task<ShardGradient>) (p: SviParts) (rows0: Map<string, Tensor>) (model: string) (options: string) (seed: uint64) (batch: int) (shards: string[]) : Task<DataParallelResult> =
        task {
            let advance = p.Advance rows0
            let mutable st = p.Init rows0
            let losses = Array.zeroCreate p.Steps
            for i in 0 .. p.Steps - 1 do
                let stepKey, nextKey = Rng.split st.Key
                let ps = Flat.flatten st.Unconstrained
                let! parts =
                    shards |> Array.mapi (fun k data -> gradient k (ShardRequest(model, data, options, seed, ps, stepKey.K0, stepKey.K1, k, batch)))
                    |> Task.WhenAll
                // The fixed reduction order: shard 0, 1, ... whatever order the answers came in.
                let mutable loss = 0.0
                let grad = Array.zeroCreate ps.Length
                for r in parts do
                    loss <- loss + r.Loss
                    for j in 0 .. grad.Length - 1 do grad.[j] <- grad.[j] + r.Gradient.[j]
                st <- advance st nextKey (loss, Flat.unflatten st.Unconstrained grad)
                losses.[i] <- loss
            return { State = st; Losses = losses }
        }

    let private start (registry: ModelRegistry) (model: string) (options: string) (seed: uint64) (shards: string[]) =
        if shards.Length < 1 then invalidArg "shards" "Data-parallel SVI: give at least one shard."
        ModelRegistry.sviParts registry model options seed

    /// The coordinator's loop over any transport: `gradient k request` computes shard k's part (on a silo,
    /// or in this process). This process reads shard 0's rows once for the shapes of the parameters.
    let runWith (gradient: int -> ShardRequest -> Task<ShardGradient>) (registry: ModelRegistry) (model: string) (options: string) (seed: uint64) (shards: string[]) : Task<DataParallelResult> =
        let p = start registry model options seed shards
        loop gradient p (ModelRegistry.resolveData registry shards.[0]) model options seed 0 shards

    /// DataParallelSvi.runWith with per-shard minibatches of `batchSize` rows each step (at least 1, at most
    /// the smallest shard's rows: shard 0 is checked here, the others at their first step, before any update).
    let runWithBatched (gradient: int -> ShardRequest -> Task<ShardGradient>) (registry: ModelRegistry) (model: string) (options: string) (seed: uint64) (batchSize: int) (shards: string[]) : Task<DataParallelResult> =
        ShardBatch.checkSize batchSize
        let p = start registry model options seed shards
        let rows0 = ModelRegistry.resolveData registry shards.[0]
        ShardBatch.checkShard 0 (Data.rows rows0) batchSize
        loop gradient p rows0 model options seed batchSize shards

    /// The same minibatch fit in one process, the shards' rows given here (shard k: `shards.[k]`): each step
    /// the same per-shard batches, their parts summed in shard order, the reference of runBatched.
    let serialBatched (registry: ModelRegistry) (model: string) (options: string) (seed: uint64) (batchSize: int) (shards: Map<string, Tensor>[]) : SviState =
        ShardBatch.checkSize batchSize
        if shards.Length < 1 then invalidArg "shards" "Data-parallel SVI: give at least one shard."
        shards |> Array.iteri (fun k d -> ShardBatch.checkShard k (Data.rows d) batchSize)
        let p = ModelRegistry.sviParts registry model options seed
        let advance = p.Advance shards.[0]
        let gradients = shards |> Array.map p.Gradient
        let mutable st = p.Init shards.[0]
        for _ in 1 .. p.Steps do
            let stepKey, nextKey = Rng.split st.Key
            let parts = gradients |> Array.mapi (fun k g -> g { Shard = k; BatchSize = Some batchSize } st stepKey)
            let loss = parts |> Array.fold (fun a (l, _) -> a + l) 0.0
            let grad = parts |> Array.map snd |> Array.reduce (Array.map2 (+))
            st <- advance st nextKey (loss, grad)
        st

    let private onSilos (client: IClusterClient) (shards: string[]) =
        task {
            let! hosts = client.GetGrain<IManagementGrain>(0L).GetHosts(true)
            let silos = hosts.Keys |> Seq.sortBy (fun s -> s.ToParsableString()) |> Seq.toArray
            let id = Guid.NewGuid().ToString "N"
            let grains = shards |> Array.mapi (fun k _ -> client.GetGrain<IFitGrain>(sprintf "%s/shard%d" id k), silos.[k % silos.Length])
            return fun (k: int) (r: ShardRequest) ->
                let g, silo = grains.[k]
                RequestContext.Set(hintKey, silo) // where the shard's grain is activated (its first step)
                let t = g.ShardGradient r
                RequestContext.Remove hintKey |> ignore
                t
        }

    /// Fits a model registered for SVI (ModelRegistry.vi) with `options` and `seed`, its rows in `shards`
    /// (data sources of the registry, one per shard; shard k's grain is placed on the k-th silo, round robin,
    /// and keeps its rows). Every step uses every row.
    let run (client: IClusterClient) (registry: ModelRegistry) (model: string) (options: string) (seed: uint64) (shards: string[]) : Task<DataParallelResult> =
        task {
            let! gradient = onSilos client shards
            return! runWith gradient registry model options seed shards
        }

    /// DataParallelSvi.run with per-shard minibatches: each step every shard's silo draws `batchSize` of its
    /// rows from the step's key and the shard's index (ShardBatch), its likelihood scaled by shard rows /
    /// batch rows. Equals DataParallelSvi.serialBatched within 1e-12 relative.
    let runBatched (client: IClusterClient) (registry: ModelRegistry) (model: string) (options: string) (seed: uint64) (batchSize: int) (shards: string[]) : Task<DataParallelResult> =
        task {
            ShardBatch.checkSize batchSize
            let! gradient = onSilos client shards
            return! runWithBatched gradient registry model options seed batchSize shards
        }
