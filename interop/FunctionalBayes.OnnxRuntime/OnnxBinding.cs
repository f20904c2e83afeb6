using System.Collections.ObjectModel;
using Ort = Microsoft.ML.OnnxRuntime;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// A model bound to fixed input and output arrays, made by <see cref="OnnxPredictor.Bind(IReadOnlyDictionary{string, OnnxArray})"/>:
/// the fastest way to run a model many times (ONNX Runtime's <c>IoBinding</c> over pinned arrays; no allocation per run).
/// </summary>
/// <remarks>
/// Write new values into the arrays of <see cref="Inputs"/>, call <see cref="Run"/>, read the arrays of
/// <see cref="Outputs"/>. The shapes are fixed when the binding is made. A binding serves one thread at a time
/// (each run overwrites the same output arrays); make one binding per thread, from the same predictor.
/// Dispose the binding to unpin its arrays and let the predictor release its session.
/// </remarks>
public sealed class OnnxBinding : IDisposable
{
    private readonly OnnxPredictor predictor;
    private readonly Ort.OrtIoBinding binding;
    private readonly Ort.OrtValue[] values;
    private int running;
    private int disposed;

    internal OnnxBinding(OnnxPredictor predictor, KeyValuePair<string, OnnxArray>[] inputs, KeyValuePair<string, OnnxArray>[] outputs)
    {
        this.predictor = predictor;
        var created = new List<Ort.OrtValue>(inputs.Length + outputs.Length);
        Ort.OrtIoBinding? io = null;
        try
        {
            io = predictor.Session.CreateIoBinding();
            foreach (var (name, array) in inputs)
            {
                var value = OnnxPredictor.CreateValue(array);
                created.Add(value);
                io.BindInput(name, value);
            }

            foreach (var (name, array) in outputs)
            {
                var value = OnnxPredictor.CreateValue(array);
                created.Add(value);
                io.BindOutput(name, value);
            }
        }
        catch (Ort.OnnxRuntimeException e)
        {
            Release(io, created);
            throw OrtRuntime.Translate(e, "Binding the model's inputs and outputs");
        }
        catch
        {
            Release(io, created);
            throw;
        }

        binding = io;
        values = created.ToArray();
        Inputs = new ReadOnlyDictionary<string, OnnxArray>(inputs.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
        Outputs = new ReadOnlyDictionary<string, OnnxArray>(outputs.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
    }

    /// <summary>The bound input arrays, by input name: write the next inputs into their data.</summary>
    public IReadOnlyDictionary<string, OnnxArray> Inputs { get; }

    /// <summary>The bound output arrays, by output name (every output of the model): <see cref="Run"/> writes into their data.</summary>
    public IReadOnlyDictionary<string, OnnxArray> Outputs { get; }

    /// <summary>Runs the model on the current contents of the input arrays, writing the output arrays.</summary>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime failed to run the model.</exception>
    /// <exception cref="ObjectDisposedException">The binding or its predictor was disposed.</exception>
    /// <exception cref="InvalidOperationException">The binding is running on another thread.</exception>
    public void Run()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        predictor.ThrowIfDisposed();
        if (Interlocked.Exchange(ref running, 1) != 0)
        {
            throw new InvalidOperationException("This OnnxBinding is running on another thread; make one binding per thread (OnnxPredictor.Bind).");
        }

        try
        {
            predictor.Session.RunWithBinding(predictor.RunOptions, binding);
        }
        catch (Ort.OnnxRuntimeException e)
        {
            throw predictor.Translate(e);
        }
        finally
        {
            Volatile.Write(ref running, 0);
        }
    }

    /// <summary>Unpins the arrays and releases the native binding. Calling it again does nothing.</summary>
    /// <exception cref="InvalidOperationException">A run of this binding is in progress on another thread.</exception>
    public void Dispose()
    {
        if (Volatile.Read(ref disposed) != 0)
        {
            return;
        }

        if (Interlocked.Exchange(ref running, 1) != 0)
        {
            throw new InvalidOperationException("This OnnxBinding cannot be disposed while it runs on another thread.");
        }

        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            Release(binding, values);
            predictor.Release();
        }
    }

    private static void Release(Ort.OrtIoBinding? io, IEnumerable<Ort.OrtValue> values)
    {
        io?.Dispose();
        foreach (var value in values)
        {
            value.Dispose();
        }
    }
}
