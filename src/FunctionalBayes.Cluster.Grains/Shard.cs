namespace FunctionalBayes.Cluster;

/// <summary>One step of data-parallel SVI as a shard sees it: the parameters and key of the step; the shard's rows stay on its silo.</summary>
/// <param name="Model">The SVI model in the silos' registry.</param>
/// <param name="Data">The shard's rows (a registry data set or "file:PATH"), read once per silo and kept.</param>
/// <param name="Options">Overrides of the model's registered settings.</param>
/// <param name="Seed">The fit's seed.</param>
/// <param name="Parameters">The unconstrained parameters, flattened in the state's order.</param>
/// <param name="KeyK0">The step's key, first word.</param>
/// <param name="KeyK1">The step's key, second word.</param>
/// <param name="Shard">The shard's index (0 also carries the prior and guide terms of the ELBO; with the step's key it picks the shard's minibatch).</param>
/// <param name="BatchSize">Rows of the shard's minibatch this step (its likelihood scaled by shard rows / batch rows), or 0 for every row.</param>
[GenerateSerializer, Immutable, Alias("FunctionalBayes.Cluster.ShardRequest")]
public sealed record ShardRequest(
    [property: Id(0)] string Model,
    [property: Id(1)] string Data,
    [property: Id(2)] string Options,
    [property: Id(3)] ulong Seed,
    [property: Id(4)] double[] Parameters,
    [property: Id(5)] uint KeyK0,
    [property: Id(6)] uint KeyK1,
    [property: Id(7)] int Shard,
    [property: Id(8)] int BatchSize);

/// <summary>A shard's part of the loss and its gradient, flattened as the parameters are.</summary>
/// <param name="Loss">The shard's part of the loss.</param>
/// <param name="Gradient">Its gradient.</param>
[GenerateSerializer, Immutable, Alias("FunctionalBayes.Cluster.ShardGradient")]
public sealed record ShardGradient(
    [property: Id(0)] double Loss,
    [property: Id(1)] double[] Gradient);

/// <summary>Computes shards' gradients on a silo: FunctionalBayes.Cluster's runner, registered in the silo's services.</summary>
public interface IShardRunner
{
    /// <summary>The shard's part of the ELBO loss and its gradient at the request's parameters.</summary>
    /// <param name="request">The step.</param>
    ShardGradient Gradient(ShardRequest request);
}
