using System.Runtime.InteropServices;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// The C API call alone, for the benchmark that measures this binding's overhead: inputs are native
/// values made once from pinned buffers, and a run is one OrtApi Run plus releasing its outputs.
/// </summary>
public sealed unsafe partial class OnnxPredictor
{
    /// <summary>A float32 input value over a pinned buffer; dispose the returned handle, then free the pin.</summary>
    internal (IntPtr Value, GCHandle Pin) CreateBareInput(float[] data, long[] shape)
    {
        var pin = GCHandle.Alloc(data, GCHandleType.Pinned);
        IntPtr value;
        fixed (long* s = shape)
        {
            library.Check(
                library.CreateTensorWithDataAsOrtValue(
                    library.CpuMemoryInfo.DangerousGetHandle(), (void*)pin.AddrOfPinnedObject(), (nuint)(data.Length * sizeof(float)),
                    s, (nuint)shape.Length, (int)OnnxElementType.Float32, &value),
                "Creating a bare input");
        }

        return (value, pin);
    }

    /// <summary>Releases a value made by <see cref="CreateBareInput"/>.</summary>
    internal void ReleaseBare(IntPtr value) => library.ReleaseValue(value);

    /// <summary>One run on prepared input values (in the model's input order); the outputs are released.</summary>
    internal void RunBare(IntPtr[] inputValues)
    {
        var outputsRaw = new IntPtr[outputs.Length];
        IntPtr status;
        fixed (IntPtr* names = inputNamePointers, values = inputValues, outNames = outputNamePointers, outValues = outputsRaw)
        {
            status = library.Run(session.DangerousGetHandle(), IntPtr.Zero, names, values, (nuint)inputValues.Length, outNames, (nuint)outputs.Length, outValues);
        }

        foreach (var v in outputsRaw)
        {
            if (v != IntPtr.Zero)
            {
                library.ReleaseValue(v);
            }
        }

        library.Check(status, "Running the model (bare)");
    }
}
