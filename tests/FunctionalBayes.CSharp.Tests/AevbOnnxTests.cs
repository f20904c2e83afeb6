using FunctionalBayes.Fluent;
using FunctionalBayes.OnnxRuntime;
using Xunit;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>A trained autoencoder's encoder and decoder exported to ONNX files, run with the ONNX Runtime
/// predictor, against Encode and Decode in process.</summary>
public class AevbOnnxTests
{

    /// <summary>float32 through a few layers: a few ulps, relative to 1 + |expected|.</summary>
    private const double Tolerance = 1e-5;

    private static void AssertClose(double[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= Tolerance * (1 + Math.Abs(expected[i])),
                $"{what}, element {i}: ONNX Runtime {actual[i]}, in process {expected[i]}");
    }

    private static (float[] Values, long[] Shape) RunOne(OnnxPredictor p, string input, NdArray x, string output)
    {
        var shape = x.Shape.Select(d => (long)d).ToArray();
        var outputs = p.Run(new Dictionary<string, OnnxArray> { [input] = OnnxArray.FromFloat32(x.ToArray().Select(v => (float)v).ToArray(), shape) });
        return (outputs[output].GetData<float>(), outputs[output].GetShape());
    }

    /// <summary>Exports both networks to files and compares ONNX Runtime with Encode and Decode at several batch sizes.</summary>
    private static void ExportedFilesAgree(TrainedAutoencoder vae)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"vae-onnx-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var encoderPath = Path.Combine(dir, "encoder.onnx");
            var decoderPath = Path.Combine(dir, "decoder.onnx");
            vae.ExportOnnx(encoderPath, decoderPath);
            using var encoder = OnnxModels.Load(encoderPath);
            using var decoder = OnnxModels.Load(decoderPath);
            Assert.Equal("x", encoder.Inputs[0].Name);
            Assert.Equal(["loc", "scale"], encoder.Outputs.Select(o => o.Name).OrderBy(n => n).ToArray());
            Assert.Equal("z", decoder.Inputs[0].Name);
            Assert.Equal("mean", decoder.Outputs[0].Name);
            foreach (var n in new[] { 1, 9, 200 })
            {
                var x = TestData.BinaryData(n);
                var (loc, locShape) = RunOne(encoder, "x", x, "loc");
                Assert.Equal(new long[] { n, 2 }, locShape);
                // Encode is the mean of q(z | x): the loc of the Normal latent
                AssertClose(vae.Encode(x).ToArray(), loc, $"encoder loc, batch {n}");
                var z = NdArray.RandomNormal((ulong)n, n, 2);
                var (mean, meanShape) = RunOne(decoder, "z", z, "mean");
                Assert.Equal(new long[] { n, 6 }, meanShape);
                AssertClose(vae.Decode(z).ToArray(), mean, $"decoder mean, batch {n}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ExportedMlpNetworksAgreeWithEncodeAndDecode()
    {
        var vae = new AevbTrainer(dataDim: 6, latentDim: 2).WithEncoderMlp(16).WithDecoderMlp(16)
            .WithLearningRate(0.01).ForEpochs(5, batchSize: 50).WithSeed(1).Train(TestData.BinaryData(200));
        ExportedFilesAgree(vae);
    }

    [Fact]
    public void ExportedFunctionNetworksAgreeWithEncodeAndDecode()
    {
        var encoderParams = new Dictionary<string, NdArray> { ["w"] = NdArray.RandomNormal(1, 6, 2), ["s"] = NdArray.Zeros(2) };
        var decoderParams = new Dictionary<string, NdArray> { ["v"] = NdArray.RandomNormal(2, 2, 6), ["c"] = NdArray.Zeros(6) };
        var vae = new AevbTrainer(6, 2)
            .WithEncoder(encoderParams, (p, x) => new Dictionary<string, NdArray> { ["loc"] = x.MatMul(p["w"]).Tanh(), ["scale"] = (p["s"] + x.MatMul(p["w"]) * 0.1).Exp() })
            .WithDecoder(decoderParams, (p, z) => new Dictionary<string, NdArray> { ["logits"] = z.MatMul(p["v"]) + p["c"] })
            .WithLearningRate(0.05).ForEpochs(3, 50).Train(TestData.BinaryData(100));
        ExportedFilesAgree(vae);
    }

    [Fact]
    public void ExportArgumentsAreChecked()
    {
        var vae = new AevbTrainer(6, 2).WithEncoderMlp(4).WithDecoderMlp(4).ForEpochs(1, 50).Train(TestData.BinaryData(50));
        Assert.Throws<ArgumentNullException>(() => vae.ExportEncoderOnnx((string)null!));
        Assert.Throws<ArgumentNullException>(() => vae.ExportDecoderOnnx((string)null!));
        Assert.Throws<ArgumentNullException>(() => vae.ExportOnnx("encoder.onnx", null!));
        Assert.NotEmpty(vae.ExportEncoderOnnx(new OnnxExportSettings { Float64 = true }));
    }
}
