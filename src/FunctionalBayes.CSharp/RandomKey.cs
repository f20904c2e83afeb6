using FunctionalBayes.Tensors;

namespace FunctionalBayes.Fluent;

/// <summary>
/// A key for random numbers (JAX-style): split it into independent keys instead of reusing it. The same key
/// gives the same numbers on any machine and with any number of threads, so simulations are reproducible.
/// </summary>
public sealed class RandomKey
{
    private RandomKey(RngKey value) => Value = value;

    internal RngKey Value { get; }

    /// <summary>A key from a seed.</summary>
    /// <param name="seed">The seed.</param>
    public static RandomKey FromSeed(ulong seed) => new(Rng.key(seed));

    /// <summary><paramref name="count"/> independent keys from this one (the first two are the same for any count ≥ 2).</summary>
    /// <param name="count">How many keys (at least 0).</param>
    /// <exception cref="ArgumentException"><paramref name="count"/> is negative.</exception>
    public IReadOnlyList<RandomKey> Split(int count = 2) => Array.AsReadOnly(Rng.splitN(Value, count).Select(k => new RandomKey(k)).ToArray());

    /// <summary>A key derived from this key and an integer (for example a loop index).</summary>
    /// <param name="data">The integer.</param>
    public RandomKey FoldIn(int data) => new(Rng.foldIn(Value, data));

    /// <summary>Standard normal draws (float64).</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    public NdArray Normal(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return NdArray.Wrap(Rng.normal(Value, shape));
    }

    /// <summary>Uniform draws in (0, 1) (float64).</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    public NdArray Uniform(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return NdArray.Wrap(Rng.uniform(Value, shape));
    }

    /// <summary>A random permutation of 0..n−1 (int32).</summary>
    /// <param name="n">The length.</param>
    public NdArray Permutation(int n) => NdArray.Wrap(Rng.permutation(Value, n));
}
