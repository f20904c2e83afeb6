using DataType = Onnx.TensorProto.Types.DataType;

namespace FunctionalBayes.OnnxRuntime.Tests;

public sealed class BindingTests
{
    private static readonly Lazy<byte[]> Float64Model = new(() => TestModels.Tanh(DataType.Double, softmax: true));

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public void A_binding_gives_the_reference_and_follows_new_inputs_written_in_place(int batch)
    {
        using var predictor = OnnxPredictor.Load(Float64Model.Value);
        var x = TestModels.Inputs(batch, seed: 5);
        using var binding = predictor.Bind("x", OnnxArray.FromFloat64(x, batch, 5));
        Assert.Equal(["p", "s", "y"], binding.Outputs.Keys.Order(StringComparer.Ordinal));
        var y = binding.Outputs["y"].GetData<double>();
        Assert.Equal([batch, 3L], binding.Outputs["y"].Shape);
        TestModels.AssertClose(TestModels.TanhReference(x, batch), y, 1e-12);

        // new values written into the bound input array, then Run: the same output arrays hold the new results
        var next = TestModels.Inputs(batch, seed: 6);
        next.CopyTo(binding.Inputs["x"].GetData<double>(), 0);
        binding.Run();
        Assert.Same(y, binding.Outputs["y"].GetData<double>());
        TestModels.AssertClose(TestModels.TanhReference(next, batch), y, 1e-12);
        TestModels.AssertClose(TestModels.SoftmaxRows(TestModels.TanhReference(next, batch), batch), binding.Outputs["p"].GetData<double>(), 1e-12);
        TestModels.AssertClose(Enumerable.Repeat(1.0, batch).ToArray(), binding.Outputs["s"].GetData<double>(), 1e-12);
    }

    [Fact]
    public void A_binding_runs_without_allocating()
    {
        using var predictor = OnnxPredictor.Load(Float64Model.Value);
        using var binding = predictor.Bind("x", OnnxArray.FromFloat64(TestModels.Inputs(16), 16, 5));
        for (var i = 0; i < 100; i++)
        {
            binding.Run();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 2_000; i++)
        {
            binding.Run();
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 2_000, $"2000 bound runs allocated {allocated} bytes");
    }

    [Fact]
    public void Bind_validates_its_inputs_like_Run()
    {
        using var predictor = OnnxPredictor.Load(Float64Model.Value);
        var e = Assert.Throws<InvalidModelInputException>(() => predictor.Bind("x", OnnxArray.FromFloat64(new double[8], 2, 4)));
        Assert.Contains("Input 'x' has shape [2, 4] but the model expects shape [N, 5]: dimension 1 must be 5", e.Message);
        var e2 = Assert.Throws<InvalidModelInputException>(() => predictor.Bind("z", OnnxArray.FromFloat64(new double[5], 1, 5)));
        Assert.Contains("no input named 'z'", e2.Message);
    }

    [Fact]
    public void Eight_threads_with_a_binding_each_give_stable_correct_results()
    {
        using var predictor = OnnxPredictor.Load(Float64Model.Value);
        const int batch = 33;
        var xs = Enumerable.Range(0, 8).Select(t => TestModels.Inputs(batch, seed: 200 + t)).ToArray();
        using var start = new Barrier(8);
        var failures = new int[8];
        var farFromReference = new int[8];
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            using var binding = predictor.Bind("x", OnnxArray.FromFloat64((double[])xs[t].Clone(), batch, 5));
            var y = binding.Outputs["y"].GetData<double>();
            binding.Run();
            // the first bound run, alone on this thread (ONNX Runtime's vector kernels may round the last bit
            // differently in its own output buffers, so Run's result is compared with a tolerance instead)
            var first = (double[])y.Clone();
            var reference = TestModels.TanhReference(xs[t], batch);
            start.SignalAndWait();
            for (var i = 0; i < 300; i++)
            {
                Array.Clear(y);
                binding.Run();
                if (!y.AsSpan().SequenceEqual(first))
                {
                    failures[t]++;
                }

                if (y.Zip(reference).Any(p => Math.Abs(p.First - p.Second) > 1e-12))
                {
                    farFromReference[t]++;
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromMinutes(2))));
        Assert.All(failures, f => Assert.Equal(0, f));
        Assert.All(farFromReference, f => Assert.Equal(0, f));
    }

    [Fact]
    public void A_binding_outlives_its_disposed_predictor_only_to_say_so()
    {
        var predictor = OnnxPredictor.Load(Float64Model.Value);
        var binding = predictor.Bind("x", OnnxArray.FromFloat64(new double[5], 1, 5));
        predictor.Dispose();
        Assert.Throws<ObjectDisposedException>(binding.Run);
        Assert.Throws<ObjectDisposedException>(() => predictor.Bind("x", OnnxArray.FromFloat64(new double[5], 1, 5)));
        binding.Dispose();
        binding.Dispose();
        Assert.Throws<ObjectDisposedException>(binding.Run);
    }

    [Fact]
    public void Disposing_while_other_threads_run_ends_their_runs_cleanly()
    {
        var predictor = OnnxPredictor.Load(Float64Model.Value);
        var x = TestModels.Inputs(64);
        var expected = predictor.Run("x", x, [64, 5], out _);
        var wrong = 0;
        var unexpected = new List<Exception>();
        var runs = new int[4];
        using var started = new CountdownEvent(4);
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            started.Signal();
            try
            {
                while (true)
                {
                    var y = predictor.Run("x", x, [64, 5], out _);
                    if (!y.AsSpan().SequenceEqual(expected))
                    {
                        Interlocked.Increment(ref wrong);
                    }

                    runs[t]++;
                }
            }
            catch (ObjectDisposedException)
            {
            }
            catch (Exception e)
            {
                lock (unexpected)
                {
                    unexpected.Add(e);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        started.Wait();
        while (runs.Sum() < 200)
        {
            Thread.Sleep(1);
        }

        predictor.Dispose();
        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromMinutes(1))));
        Assert.Empty(unexpected);
        Assert.Equal(0, wrong);
        Assert.Throws<ObjectDisposedException>(() => predictor.Run("x", x, [64, 5], out _));
    }
}
