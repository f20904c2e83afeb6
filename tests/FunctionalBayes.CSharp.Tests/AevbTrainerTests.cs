using FunctionalBayes.Fluent;
using Xunit;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The C# VAE trainer: training, shapes, progress and cancellation, custom networks, key errors, save/load.</summary>
public class AevbTrainerTests
{

    private static AevbTrainer Small() =>
        new AevbTrainer(dataDim: 6, latentDim: 2).WithEncoderMlp(16).WithDecoderMlp(16)
            .WithLearningRate(0.01).ForEpochs(30, batchSize: 50).WithSeed(1);

    [Fact]
    public void TrainsAndUsesTheModel()
    {
        var data = TestData.BinaryData(200);
        var vae = Small().Train(data);
        Assert.True(vae.Losses.Count == 30 * 4);
        Assert.True(vae.Losses.Skip(vae.Losses.Count - 8).Average() < 0.7 * vae.Losses.Take(8).Average(), "the loss decreases");
        Assert.Equal([200, 2], vae.Encode(data).Shape);
        Assert.Equal([3, 200, 2], vae.EncodeSamples(data, 3).Shape);
        Assert.Equal([5, 6], vae.Decode(NdArray.Zeros(5, 2)).Shape);
        Assert.Equal([7, 6], vae.Generate(7).Shape);
        // the two prototypes are reconstructed: pixel means near 1 for "on" rows and near 0 for "off" rows
        var rec = vae.Reconstruct(data).ToMatrix();
        Assert.True(Enumerable.Range(0, 6).Average(j => rec[0, j]) > 0.8);
        Assert.True(Enumerable.Range(0, 6).Average(j => rec[1, j]) < 0.2);
        var elbo1 = vae.Elbo(data);
        var elbo20 = vae.Elbo(data, importanceSamples: 20);
        Assert.True(elbo20 >= elbo1, $"IWAE {elbo20} >= ELBO {elbo1}");
    }

    [Fact]
    public void ReportsProgressAndCancels()
    {
        var data = TestData.BinaryData(100);
        using var cts = new CancellationTokenSource();
        var reports = new List<AevbTrainingProgress>();
        var progress = new SyncProgress<AevbTrainingProgress>(p => { reports.Add(p); if (reports.Count == 2) cts.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => Small().WithProgressEvery(1).Train(data, progress, cts.Token));
        Assert.Equal(2, reports.Count);
        Assert.Equal(60, reports[0].TotalSteps);
    }

    [Fact]
    public void CustomNetworksAsFunctions()
    {
        var data = TestData.BinaryData(100);
        var encoderParams = new Dictionary<string, NdArray> { ["w"] = NdArray.Zeros(6, 2), ["s"] = NdArray.Zeros(2) };
        var decoderParams = new Dictionary<string, NdArray> { ["v"] = NdArray.Zeros(2, 6), ["c"] = NdArray.Zeros(6) };
        var vae = new AevbTrainer(6, 2)
            .WithEncoder(encoderParams, (p, x) => new Dictionary<string, NdArray> { ["loc"] = x.MatMul(p["w"]), ["scale"] = (p["s"] + (x.MatMul(p["w"]) * 0.0)).Exp() })
            .WithDecoder(decoderParams, (p, z) => new Dictionary<string, NdArray> { ["logits"] = z.MatMul(p["v"]) + p["c"] })
            .WithLearningRate(0.05).ForEpochs(20, 50).Train(data);
        Assert.True(vae.Losses[^1] < vae.Losses[0], "the custom networks train");
    }

    [Fact]
    public void KeyMismatchNamesExpectedAndGivenKeys()
    {
        var p = new Dictionary<string, NdArray> { ["w"] = NdArray.Zeros(6, 2) };
        var trainer = new AevbTrainer(6, 2).WithEncoder(p, (q, x) => new Dictionary<string, NdArray> { ["mu"] = x.MatMul(q["w"]), ["sigma"] = x.MatMul(q["w"]).Exp() });
        var ex = Assert.ThrowsAny<ArgumentException>(() => trainer.Train(TestData.BinaryData(10)));
        foreach (var word in new[] { "mu", "sigma", "loc", "scale" }) Assert.Contains(word, ex.Message);
    }

    [Fact]
    public void SavesAndLoads()
    {
        var data = TestData.BinaryData(100);
        var trainer = Small().ForEpochs(3, 50);
        var vae = trainer.Train(data);
        var path = Path.Combine(Path.GetTempPath(), $"vae-{Guid.NewGuid():N}.json");
        vae.Save(path);
        var loaded = trainer.Load(path);
        File.Delete(path);
        Assert.Equal(vae.Reconstruct(data).ToArray(), loaded.Reconstruct(data).ToArray());
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
