using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FunctionalBayes.OnnxRuntime.Tests;

public sealed class PredictorTests
{
    private static readonly Lazy<byte[]> Float32Model = new(() => TestModels.Tanh(DataType.Float));
    private static readonly Lazy<byte[]> Float64Model = new(() => TestModels.Tanh(DataType.Double));

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public void Float32_tanh_layer_matches_the_reference(int batch)
    {
        using var predictor = OnnxPredictor.Load(Float32Model.Value);
        var x = TestModels.Inputs(batch);
        var xf = x.Select(v => (float)v).ToArray();
        var result = predictor.Run(new Dictionary<string, OnnxArray> { ["x"] = OnnxArray.FromFloat32(xf, batch, 5) });

        var y = Assert.Single(result);
        Assert.Equal("y", y.Key);
        Assert.Equal(OnnxElementType.Float32, y.Value.ElementType);
        Assert.Equal([batch, 3L], y.Value.Shape);
        // reference from the float32-rounded inputs, in double
        var expected = TestModels.TanhReference(xf.Select(v => (double)v).ToArray(), batch);
        TestModels.AssertClose(expected, y.Value.GetData<float>().Select(v => (double)v).ToArray(), 1e-5);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public void Float64_tanh_layer_matches_the_reference(int batch)
    {
        using var predictor = OnnxPredictor.Load(Float64Model.Value);
        var x = TestModels.Inputs(batch, seed: batch);
        var y = predictor.Run("x", x, [batch, 5], out var shape);
        Assert.Equal([batch, 3L], shape);
        TestModels.AssertClose(TestModels.TanhReference(x, batch), y, 1e-12);
    }

    [Theory]
    [InlineData(DataType.Float, 1e-5)]
    [InlineData(DataType.Double, 1e-12)]
    public void Softmax_and_ReduceSum_outputs_match_the_reference(DataType type, double tolerance)
    {
        using var predictor = OnnxPredictor.Load(TestModels.Tanh(type, softmax: true));
        foreach (var batch in new[] { 1, 7, 4096 })
        {
            var x = TestModels.Inputs(batch, seed: 3);
            var input = type == DataType.Float
                ? OnnxArray.FromFloat32(x.Select(v => (float)v).ToArray(), batch, 5)
                : OnnxArray.FromFloat64(x, batch, 5);
            var xs = type == DataType.Float ? x.Select(v => (double)(float)v).ToArray() : x;
            var result = predictor.Run(new Dictionary<string, OnnxArray> { ["x"] = input });

            Assert.Equal(["y", "p", "s"], result.Keys);
            var y = TestModels.TanhReference(xs, batch);
            var p = TestModels.SoftmaxRows(y, batch);
            TestModels.AssertClose(y, AsDoubles(result["y"]), tolerance);
            TestModels.AssertClose(p, AsDoubles(result["p"]), tolerance);
            Assert.Equal([(long)batch], result["s"].Shape);
            TestModels.AssertClose(Enumerable.Repeat(1.0, batch).ToArray(), AsDoubles(result["s"]), tolerance);
        }
    }

    [Theory]
    [InlineData(DataType.Int32)]
    [InlineData(DataType.Int64)]
    public void Integer_inputs_and_outputs_round_trip(DataType type)
    {
        using var predictor = OnnxPredictor.Load(TestModels.AddTwo(type));
        var inputs = type == DataType.Int32
            ? new Dictionary<string, OnnxArray> { ["a"] = OnnxArray.FromInt32([1, 2, 3], 3), ["b"] = OnnxArray.FromInt32([10, 20, 30], 3) }
            : new Dictionary<string, OnnxArray> { ["a"] = OnnxArray.Create(new long[] { 1L << 40, 2 }, 2), ["b"] = OnnxArray.Create(new long[] { 5, -7 }, 2) };
        var output = predictor.Run(inputs)["out"];
        if (type == DataType.Int32)
        {
            Assert.Equal([11, 22, 33], output.GetData<int>());
        }
        else
        {
            Assert.Equal([(1L << 40) + 5, -5L], output.GetData<long>());
        }
    }

    [Fact]
    public void Inputs_outputs_and_metadata_are_introspected()
    {
        var path = TestModels.WriteTemp(TestModels.Tanh(DataType.Float, softmax: true));
        try
        {
            using var predictor = OnnxPredictor.Load(path);
            var x = Assert.Single(predictor.Inputs);
            Assert.Equal("x", x.Name);
            Assert.Equal(OnnxElementType.Float32, x.ElementType);
            Assert.Equal([-1L, 5L], x.Dimensions);
            Assert.Equal(["N", null], x.SymbolicDimensions);
            Assert.Equal("[N, 5]", x.ShapeText);
            Assert.Equal("x: float32[N, 5]", x.ToString());

            Assert.Equal(["y", "p", "s"], predictor.Outputs.Select(o => o.Name));
            Assert.Equal([-1L], predictor.Outputs[2].Dimensions);
            Assert.Equal("[N]", predictor.Outputs[2].ShapeText);

            var metadata = predictor.Metadata;
            Assert.Equal("FunctionalBayes.Tests", metadata.ProducerName);
            Assert.Equal("tanh_softmax", metadata.GraphName);
            Assert.Equal("ai.functionalbayes", metadata.Domain);
            Assert.Equal("a test model", metadata.Description);
            Assert.Equal(3, metadata.Version);
            Assert.Equal("normal", metadata.CustomMetadata["likelihood"]);
            Assert.Equal("5", metadata.CustomMetadata["features"]);

            Assert.Equal(Path.GetFullPath(path), predictor.ModelPath);
#if ONNXRUNTIME_GPU
            Assert.Equal("1.31.0", predictor.RuntimeVersion);
            Assert.Contains("CUDAExecutionProvider", predictor.AvailableProviders);
#else
            Assert.Equal("1.31.1", predictor.RuntimeVersion);
#endif
            Assert.Contains("CPUExecutionProvider", predictor.AvailableProviders);
            Assert.False(predictor.UsesCuda);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(GraphOptimizationLevel.DisableAll, 1, 1)]
    [InlineData(GraphOptimizationLevel.Basic, 2, 1)]
    [InlineData(GraphOptimizationLevel.Extended, 0, 2)]
    [InlineData(GraphOptimizationLevel.All, 4, 0)]
    public void Options_for_threads_and_optimization_give_the_same_results(GraphOptimizationLevel level, int intra, int inter)
    {
        var options = new PredictorOptions { GraphOptimizationLevel = level, IntraOpThreads = intra, InterOpThreads = inter };
        using var predictor = OnnxPredictor.Load(Float64Model.Value, options);
        var x = TestModels.Inputs(64);
        TestModels.AssertClose(TestModels.TanhReference(x, 64), predictor.Run("x", x, [64, 5], out _), 1e-12);
    }

    [Fact]
    public void Run_from_eight_threads_at_once_gives_identical_results()
    {
        using var predictor = OnnxPredictor.Load(Float32Model.Value);
        const int batch = 257;
        var xs = Enumerable.Range(0, 8).Select(t => TestModels.Inputs(batch, seed: 100 + t).Select(v => (float)v).ToArray()).ToArray();
        var expected = xs.Select(x => predictor.Run("x", x, [batch, 5], out _)).ToArray();
        using var start = new Barrier(8);
        var failures = new int[8];
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 300; i++)
            {
                var y = predictor.Run("x", xs[t], [batch, 5], out var shape);
                if (!y.AsSpan().SequenceEqual(expected[t]) || shape[0] != batch)
                {
                    failures[t]++;
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromMinutes(2))));
        Assert.All(failures, f => Assert.Equal(0, f));
    }

    [Fact]
    public void Dispose_twice_is_harmless_and_use_after_dispose_throws()
    {
        var predictor = OnnxPredictor.Load(Float32Model.Value);
        predictor.Dispose();
        predictor.Dispose();
        Assert.Throws<ObjectDisposedException>(() => predictor.Run("x", new float[5], [1, 5], out _));
        Assert.Throws<ObjectDisposedException>(() =>
            predictor.Run(new Dictionary<string, OnnxArray> { ["x"] = OnnxArray.FromFloat32(new float[5], 1, 5) }));
    }

    private static double[] AsDoubles(OnnxArray array) =>
        array.Data is float[] f ? f.Select(v => (double)v).ToArray() : array.GetData<double>();
}
