using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The QuickStart's data-generating process at a chosen size, and small helpers.</summary>
internal static class TestData
{
    public const double Bias = 0.7, Sigma = 0.5;
    public static readonly double[] Beta1 = [1.5, -2.0, 0.5, 0.0, 1.0];
    public static readonly double[] Beta2 = [0.3, 0.0, -0.4, 0.2, 0.0];

    public static NdArray Theta() =>
        NdArray.Create([5, 3, 1], [0.6, -0.2, 0.1, 0.3, 0.5, -0.4, -0.5, 0.1, 0.2, 0.2, -0.3, 0.4, 0.1, 0.2, -0.6]);

    public static DataSet QuickStart(int n, ulong seed = 20261121UL)
    {
        var keys = RandomKey.FromSeed(seed).Split();
        var x = keys[0].Normal(n, 5);
        var fm = Layer.FM().Apply("fm", x, lowRankDim: 3)
            .Substitute(new Dictionary<string, NdArray> { ["FMLayer_fm_scale"] = NdArray.Ones(1), ["FMLayer_fm_theta"] = Theta() })
            .Trace().Result;
        var mean = Bias + x.MatMul(NdArray.FromArray(Beta1)) + x.Square().MatMul(NdArray.FromArray(Beta2)) + fm.Flatten();
        return new DataSet().Add("x", x).Add("y", mean + Sigma * keys[1].Normal(n));
    }

    public static BayesModel<NdArray> QuickStartModel(DataSet data)
    {
        var x = data["x"];
        return from b in Layer.Intercept().Apply("b")
               from lin in Layer.Adaptive().Apply("x", x)
               from quad in Layer.Adaptive().Apply("x2", x.Square())
               from fm in Layer.FM().Apply("fm", x, lowRankDim: 3)
               from y in Link.Gaussian("y", b + lin + quad + fm, data.GetOrNull("y"))
               select y;
    }

    /// <summary>A small linear regression y = 1 + 2x + noise.</summary>
    public static DataSet Linear(int n = 200, ulong seed = 5)
    {
        var keys = RandomKey.FromSeed(seed).Split();
        var x = keys[0].Normal(n, 1);
        var y = 1.0 + 2.0 * x.Flatten() + 0.3 * keys[1].Normal(n);
        return new DataSet().Add("x", x).Add("y", y);
    }

    /// <summary>Binary rows of 6 pixels: two prototypes (all on, all off) with 5 % flipped pixels.</summary>
    public static NdArray BinaryData(int rows)
    {
        var rng = new Random(3);
        var data = new double[rows * 6];
        for (var i = 0; i < rows; i++)
        {
            var on = i % 2 == 0;
            for (var j = 0; j < 6; j++) data[i * 6 + j] = (rng.NextDouble() < 0.05) ^ on ? 1.0 : 0.0;
        }
        return NdArray.Create([rows, 6], data);
    }

    public static BayesModel<NdArray> LinearModel(DataSet data) =>
        from mu in Layer.Adaptive().Apply("x", data["x"])
        from b in Layer.Intercept().Apply("b")
        from y in Link.Gaussian("y", mu + b, data.GetOrNull("y"))
        select y;
}

/// <summary>An IProgress that records reports on the reporting thread, in order (Progress&lt;T&gt; posts them asynchronously).</summary>
internal sealed class Recorder(Action<FitProgress>? onReport = null) : IProgress<FitProgress>
{
    public List<FitProgress> Reports { get; } = new();

    public void Report(FitProgress value)
    {
        Reports.Add(value);
        onReport?.Invoke(value);
    }
}
