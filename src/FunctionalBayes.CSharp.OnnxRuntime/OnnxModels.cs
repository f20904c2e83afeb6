using FunctionalBayes.OnnxRuntime;

namespace FunctionalBayes.Fluent;

/// <summary>Loads exported models for serving with ONNX Runtime (package FunctionalBayes.CSharp.OnnxRuntime).</summary>
public static class OnnxModels
{
    /// <summary>Loads an ONNX file into an ONNX Runtime predictor (dispose it when done).</summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="options">Threads, optimization level, CUDA.</param>
    /// <returns>The predictor.</returns>
    public static OnnxPredictor Load(string path, PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return OnnxPredictor.Load(path, options);
    }
}

/// <summary>Runs exported models on the facade's own data types: a <see cref="DataSet"/> in, <see cref="NdArray"/>s out.</summary>
public static class OnnxPredictorExtensions
{
    /// <summary>The array as ONNX Runtime input of the element type <paramref name="elementType"/> (its shape as
    /// <c>long[]</c>): float32, float64, int32 or int64.</summary>
    /// <param name="array">The array.</param>
    /// <param name="elementType">The element type the model's input declares (<see cref="TensorInfo.ElementType"/>).</param>
    /// <returns>The ONNX array (a copy).</returns>
    /// <exception cref="ArgumentException">The element type is none of those four.</exception>
    public static OnnxArray ToOnnxArray(this NdArray array, OnnxElementType elementType)
    {
        ArgumentNullException.ThrowIfNull(array);
        var shape = array.Shape.Select(d => (long)d).ToArray();
        return elementType switch
        {
            OnnxElementType.Float32 => OnnxArray.FromFloat32(array.ToArray().Select(v => (float)v).ToArray(), shape),
            OnnxElementType.Float64 => OnnxArray.FromFloat64(array.ToArray(), shape),
            OnnxElementType.Int32 => OnnxArray.FromInt32(array.ToIntArray(), shape),
            OnnxElementType.Int64 => OnnxArray.FromInt64(array.ToIntArray().Select(v => (long)v).ToArray(), shape),
            _ => throw new ArgumentException($"An NdArray converts to float32, float64, int32 or int64 ONNX inputs, not {elementType}.", nameof(elementType)),
        };
    }

    /// <summary>Runs the model on the data: each model input is read from the data set's array of the same name and
    /// converted to the element type the model declares (float or integer ids alike); each output comes back as an
    /// <see cref="NdArray"/> of float64 values, by output name (an exported posterior-mean predictor names them
    /// <c>"{site}_mean"</c>, see <see cref="FittedModel.PredictPosteriorMean"/>).</summary>
    /// <param name="predictor">The loaded model.</param>
    /// <param name="data">The inputs (other keys, such as observations, are ignored).</param>
    /// <returns>The outputs by name.</returns>
    /// <exception cref="ArgumentException">The data has no array for one of the model's inputs (the message names it).</exception>
    public static IReadOnlyDictionary<string, NdArray> Run(this OnnxPredictor predictor, DataSet data)
    {
        ArgumentNullException.ThrowIfNull(predictor);
        ArgumentNullException.ThrowIfNull(data);
        var inputs = new Dictionary<string, OnnxArray>(StringComparer.Ordinal);
        foreach (var input in predictor.Inputs)
        {
            var array = data.GetOrNull(input.Name)
                ?? throw new ArgumentException($"The model's input '{input.Name}' is not in the data (it has {string.Join(", ", data.Keys)}).", nameof(data));
            inputs[input.Name] = array.ToOnnxArray(input.ElementType);
        }
        var result = new Dictionary<string, NdArray>(StringComparer.Ordinal);
        foreach (var (name, output) in predictor.Run(inputs))
            result[name] = NdArray.Create(output.GetShape().Select(d => checked((int)d)).ToArray(), ToDoubles(output));
        return result;
    }

    private static double[] ToDoubles(OnnxArray a) => a.ElementType switch
    {
        OnnxElementType.Float32 => a.GetData<float>().Select(v => (double)v).ToArray(),
        OnnxElementType.Float64 => a.GetData<double>(),
        OnnxElementType.Int32 => a.GetData<int>().Select(v => (double)v).ToArray(),
        OnnxElementType.Int64 => a.GetData<long>().Select(v => (double)v).ToArray(),
        _ => throw new NotSupportedException($"An output of element type {a.ElementType} does not convert to an NdArray."),
    };
}
