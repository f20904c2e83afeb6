using System.Diagnostics;
using Xunit.Abstractions;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FunctionalBayes.OnnxRuntime.Tests;

[CollectionDefinition(nameof(MemoryCollection), DisableParallelization = true)]
public sealed class MemoryCollection;

[Collection(nameof(MemoryCollection))]
public sealed class MemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void Twenty_thousand_runs_keep_memory_flat()
    {
        using var predictor = OnnxPredictor.Load(TestModels.Tanh(DataType.Float, softmax: true));
        var x = TestModels.Inputs(512).Select(v => (float)v).ToArray(); // ~14 KB of outputs per run: a leak would show as ~280 MB
        var inputs = new Dictionary<string, OnnxArray> { ["x"] = OnnxArray.FromFloat32(x, 512, 5) };
        for (var i = 0; i < 2_000; i++)
        {
            predictor.Run(inputs);
        }

        var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var workingSetBefore = process.WorkingSet64;

        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < 20_000; i++)
        {
            var result = predictor.Run(inputs);
            Assert.Equal(3, result.Count);
        }

        stopwatch.Stop();
        var managedAfter = GC.GetTotalMemory(forceFullCollection: true);
        process.Refresh();
        var workingSetAfter = process.WorkingSet64;
        output.WriteLine($"20 000 runs in {stopwatch.ElapsedMilliseconds} ms; managed {managedBefore / 1024} -> {managedAfter / 1024} KiB; working set {workingSetBefore >> 20} -> {workingSetAfter >> 20} MiB");
        Assert.True(managedAfter - managedBefore < 5 << 20, $"managed heap grew by {(managedAfter - managedBefore) >> 10} KiB");
        Assert.True(workingSetAfter - workingSetBefore < 50 << 20, $"working set grew by {(workingSetAfter - workingSetBefore) >> 20} MiB");
    }

    [Fact]
    public void Twenty_thousand_bound_runs_keep_memory_flat()
    {
        using var predictor = OnnxPredictor.Load(TestModels.Tanh(DataType.Float, softmax: true));
        var x = TestModels.Inputs(512).Select(v => (float)v).ToArray();
        using var binding = predictor.Bind("x", OnnxArray.FromFloat32(x, 512, 5));
        for (var i = 0; i < 2_000; i++)
        {
            binding.Run();
        }

        var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var workingSetBefore = process.WorkingSet64;
        for (var i = 0; i < 20_000; i++)
        {
            binding.Run();
        }

        var managedAfter = GC.GetTotalMemory(forceFullCollection: true);
        process.Refresh();
        var workingSetAfter = process.WorkingSet64;
        output.WriteLine($"bound: managed {managedBefore / 1024} -> {managedAfter / 1024} KiB; working set {workingSetBefore >> 20} -> {workingSetAfter >> 20} MiB");
        Assert.True(managedAfter - managedBefore < 1 << 20, $"managed heap grew by {(managedAfter - managedBefore) >> 10} KiB");
        Assert.True(workingSetAfter - workingSetBefore < 50 << 20, $"working set grew by {(workingSetAfter - workingSetBefore) >> 20} MiB");
    }
}
