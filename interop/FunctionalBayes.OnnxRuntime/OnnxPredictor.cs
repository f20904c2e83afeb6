using System.Collections.ObjectModel;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ort = Microsoft.ML.OnnxRuntime;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// An ONNX model loaded into an ONNX Runtime inference session (official managed API), on the CPU or on CUDA.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Run(IReadOnlyDictionary{string, OnnxArray})"/> may be called from many threads at once: ONNX Runtime
/// sessions support concurrent runs, and each call pins its own inputs, releases its own native values and copies
/// the outputs to new arrays. For the fastest repeated calls (no allocation), use <see cref="Bind(IReadOnlyDictionary{string, OnnxArray})"/>.
/// </para>
/// <para>
/// <see cref="Dispose"/> releases the native session once every run in progress has returned and every
/// <see cref="OnnxBinding"/> made from this predictor has been disposed; calls made after it throw
/// <see cref="ObjectDisposedException"/>.
/// </para>
/// <para>The native library comes from the application's ONNX Runtime package (see interop/README.md).</para>
/// </remarks>
public sealed partial class OnnxPredictor : IDisposable
{
    private const string CudaProvider = "CUDAExecutionProvider";

    private readonly Ort.InferenceSession session;
    private readonly Ort.RunOptions runOptions;
    private readonly Dictionary<string, int> inputIndex;
    private readonly TensorInfo[] inputs;
    private readonly TensorInfo[] outputs;
    private readonly string[] outputNames;
    private readonly string[][] singleInputName;
    private readonly string[] firstOutputName;
    private readonly InputRule?[] inputRules;
    private int references = 1;
    private int disposed;

    private OnnxPredictor(Ort.InferenceSession session, string? modelPath, bool usesCuda)
    {
        this.session = session;
        ModelPath = modelPath;
        UsesCuda = usesCuda;
        inputs = session.InputNames.Select(name => ReadTensorInfo(name, session.InputMetadata[name])).ToArray();
        outputs = session.OutputNames.Select(name => ReadTensorInfo(name, session.OutputMetadata[name])).ToArray();
        outputNames = outputs.Select(o => o.Name).ToArray();
        singleInputName = inputs.Select(i => new[] { i.Name }).ToArray();
        firstOutputName = outputNames.Take(1).ToArray();
        inputIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < inputs.Length; i++)
        {
            inputIndex[inputs[i].Name] = i;
        }

        Inputs = new ReadOnlyCollection<TensorInfo>(inputs);
        Outputs = new ReadOnlyCollection<TensorInfo>(outputs);
        Metadata = ReadMetadata(session.ModelMetadata);
        inputRules = ReadInputRules(Metadata, inputs);
        runOptions = new Ort.RunOptions();
    }

    /// <summary>The metadata key under which FunctionalBayes' exporter writes the inputs' valid values (JSON: per
    /// input its dtype, that it is finite, and for category ids integer min..max).</summary>
    public const string ValidInputsKey = "functionalbayes.inputs.valid";

    /// <summary>What one input may hold, from the model's <see cref="ValidInputsKey"/> metadata.</summary>
    private sealed record InputRule(bool Finite, bool Integer, double Min, double Max);

    private static InputRule?[] ReadInputRules(ModelMetadata metadata, TensorInfo[] inputs)
    {
        var rules = new InputRule?[inputs.Length];
        if (!metadata.CustomMetadata.TryGetValue(ValidInputsKey, out var json))
        {
            return rules;
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            for (var i = 0; i < inputs.Length; i++)
            {
                if (!document.RootElement.TryGetProperty(inputs[i].Name, out var entry))
                {
                    continue;
                }

                var finite = entry.TryGetProperty("finite", out var f) && f.ValueKind == JsonValueKind.True;
                var integer = entry.TryGetProperty("integer", out var n) && n.ValueKind == JsonValueKind.True;
                var min = entry.TryGetProperty("min", out var lo) ? lo.GetDouble() : double.NegativeInfinity;
                var max = entry.TryGetProperty("max", out var hi) ? hi.GetDouble() : double.PositiveInfinity;
                rules[i] = new InputRule(finite, integer, min, max);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"The model's '{ValidInputsKey}' metadata is not valid JSON of the exporter's form: {e.Message}", e);
        }

        return rules;
    }

    /// <summary>Refuses what the library refuses: a non-finite value, or a category id that is not an integer in its
    /// range (the exported graph would answer NaN for it).</summary>
    private void CheckValues(string name, int index, Array data, long length, long[] shape)
    {
        if (inputRules[index] is not { } rule)
        {
            return;
        }

        var perRow = shape.Length <= 1 ? 1L : shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        void Refuse(long at, double value, string what) =>
            throw new InvalidModelInputException(
                name,
                $"Input '{name}' holds {value.ToString(System.Globalization.CultureInfo.InvariantCulture)} at row {at / Math.Max(perRow, 1)}"
                + (perRow > 1 ? $", column {at % perRow}" : string.Empty) + $"; {what}.");
        void Check(long at, double v)
        {
            if (rule.Finite && !double.IsFinite(v))
            {
                Refuse(at, v, "the model takes finite numbers only");
            }

            if (rule.Integer && (v != Math.Floor(v) || v < rule.Min || v > rule.Max))
            {
                Refuse(at, v, $"the model takes integer category ids in {rule.Min}..{rule.Max}");
            }
        }

        void All<T>(T[] values)
            where T : System.Numerics.INumberBase<T>
        {
            for (var i = 0L; i < length; i++)
            {
                Check(i, double.CreateTruncating(values[i]));
            }
        }

        switch (data)
        {
            case float[] f:
                All(f);
                break;
            case double[] d:
                All(d);
                break;
            case int[] n:
                All(n);
                break;
            case long[] l:
                All(l);
                break;
        }
    }

    /// <summary>The model's inputs, in the model's order.</summary>
    public IReadOnlyList<TensorInfo> Inputs { get; }

    /// <summary>The model's outputs, in the model's order.</summary>
    public IReadOnlyList<TensorInfo> Outputs { get; }

    /// <summary>The model's metadata (producer, graph name, version, custom key/value pairs).</summary>
    public ModelMetadata Metadata { get; }

    /// <summary>The model file's full path, or <see langword="null"/> when it was loaded from bytes.</summary>
    public string? ModelPath { get; }

    /// <summary>Whether the session runs on the CUDA execution provider (with the CPU provider as fallback).</summary>
    public bool UsesCuda { get; }

    /// <summary>The version of the application's native ONNX Runtime, such as "1.31.1".</summary>
    public string RuntimeVersion => OrtRuntime.Environment.GetVersionString();

    /// <summary>The execution providers compiled into the application's native ONNX Runtime.</summary>
    public IReadOnlyList<string> AvailableProviders => OrtRuntime.AvailableProviders;

    /// <summary>Loads an ONNX model file.</summary>
    /// <param name="modelPath">The path of the <c>.onnx</c> file.</param>
    /// <param name="options">Session options; defaults when <see langword="null"/>.</param>
    /// <returns>The predictor, which owns the native session until disposed.</returns>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime rejected the model (the message names the file and gives ONNX Runtime's reason).</exception>
    /// <exception cref="OnnxRuntimeNotFoundException">The application references no native ONNX Runtime package.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="PredictorOptions.UseCuda"/> is set but CUDA is unavailable.</exception>
    public static OnnxPredictor Load(string modelPath, PredictorOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        var fullPath = Path.GetFullPath(modelPath);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"The ONNX model file '{fullPath}' does not exist.", fullPath);
        }

        return Create(options, so => new Ort.InferenceSession(fullPath, so), $"Cannot load the ONNX model '{fullPath}'", fullPath);
    }

    /// <summary>Loads an ONNX model from its serialized bytes (a <c>ModelProto</c>).</summary>
    /// <param name="model">The model bytes.</param>
    /// <param name="options">Session options; defaults when <see langword="null"/>.</param>
    /// <returns>The predictor, which owns the native session until disposed.</returns>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime rejected the model.</exception>
    /// <exception cref="OnnxRuntimeNotFoundException">The application references no native ONNX Runtime package.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="PredictorOptions.UseCuda"/> is set but CUDA is unavailable.</exception>
    public static OnnxPredictor Load(byte[] model, PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Create(options, so => new Ort.InferenceSession(model, so), $"Cannot load the ONNX model from a {model.Length}-byte array", null);
    }

    /// <summary>Runs the model on named inputs and returns every output.</summary>
    /// <param name="inputs">One array per model input, keyed by input name.</param>
    /// <returns>One array per model output, keyed by output name, in the model's output order.</returns>
    /// <exception cref="InvalidModelInputException">An input is unknown, missing, or has the wrong element type or shape
    /// (checked before ONNX Runtime is called).</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime failed to run the model.</exception>
    /// <exception cref="ObjectDisposedException">The predictor was disposed.</exception>
    public IReadOnlyDictionary<string, OnnxArray> Run(IReadOnlyDictionary<string, OnnxArray> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ThrowIfDisposed();
        var (order, arrays) = Validate(inputs);
        var names = new string[arrays.Length];
        var values = new Ort.OrtValue[arrays.Length];
        AddReference();
        try
        {
            for (var i = 0; i < arrays.Length; i++)
            {
                names[i] = this.inputs[order[i]].Name;
                values[i] = CreateValue(arrays[i]);
            }

            using var results = RunSession(names, values, outputNames);
            var result = new Dictionary<string, OnnxArray>(outputs.Length, StringComparer.Ordinal);
            var k = 0;
            foreach (var value in results)
            {
                result.Add(outputNames[k], CopyOutput(outputNames[k], value));
                k++;
            }

            return new ReadOnlyDictionary<string, OnnxArray>(result);
        }
        finally
        {
            foreach (var value in values)
            {
                value?.Dispose();
            }

            Release();
        }
    }

    /// <summary>
    /// Runs the model on one float32 input and returns its first output, which must be float32.
    /// Other model inputs, if any, must not exist.
    /// </summary>
    /// <param name="inputName">The input's name.</param>
    /// <param name="data">The row-major input data.</param>
    /// <param name="shape">The input's shape.</param>
    /// <param name="outputShape">The first output's shape.</param>
    /// <returns>The first output's row-major data.</returns>
    public float[] Run(string inputName, float[] data, long[] shape, out long[] outputShape) =>
        RunSingle(inputName, data, shape, out outputShape);

    /// <summary>
    /// Runs the model on one float64 input and returns its first output, which must be float64.
    /// Other model inputs, if any, must not exist.
    /// </summary>
    /// <param name="inputName">The input's name.</param>
    /// <param name="data">The row-major input data.</param>
    /// <param name="shape">The input's shape.</param>
    /// <param name="outputShape">The first output's shape.</param>
    /// <returns>The first output's row-major data.</returns>
    public double[] Run(string inputName, double[] data, long[] shape, out long[] outputShape) =>
        RunSingle(inputName, data, shape, out outputShape);

    /// <summary>
    /// Binds the model to these input arrays and to new output arrays, for repeated runs without allocation:
    /// write new values into the input arrays, call <see cref="OnnxBinding.Run"/>, read the output arrays.
    /// The inputs are validated as for <see cref="Run(IReadOnlyDictionary{string, OnnxArray})"/>, and the model is run
    /// once on them to size the outputs (so the outputs hold its results at once).
    /// </summary>
    /// <param name="inputs">One array per model input, keyed by input name; they stay pinned until the binding is disposed.</param>
    /// <returns>The binding; dispose it when done. Use one binding per thread.</returns>
    /// <exception cref="InvalidModelInputException">An input does not fit the model.</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime failed to run the model.</exception>
    /// <exception cref="ObjectDisposedException">The predictor was disposed.</exception>
    public OnnxBinding Bind(IReadOnlyDictionary<string, OnnxArray> inputs)
    {
        var first = Run(inputs);
        var (order, arrays) = Validate(inputs);
        var boundInputs = new KeyValuePair<string, OnnxArray>[arrays.Length];
        for (var i = 0; i < arrays.Length; i++)
        {
            boundInputs[i] = new(this.inputs[order[i]].Name, arrays[i]);
        }

        var boundOutputs = outputNames.Select(name => new KeyValuePair<string, OnnxArray>(name, first[name])).ToArray();
        AddReference();
        try
        {
            return new OnnxBinding(this, boundInputs, boundOutputs);
        }
        catch
        {
            Release();
            throw;
        }
    }

    /// <summary>Binds the model's one input (see <see cref="Bind(IReadOnlyDictionary{string, OnnxArray})"/>).</summary>
    /// <param name="inputName">The input's name.</param>
    /// <param name="input">The input array; it stays pinned until the binding is disposed.</param>
    /// <returns>The binding; dispose it when done. Use one binding per thread.</returns>
    public OnnxBinding Bind(string inputName, OnnxArray input)
    {
        ArgumentNullException.ThrowIfNull(inputName);
        return Bind(new Dictionary<string, OnnxArray>(StringComparer.Ordinal) { [inputName] = input });
    }

    /// <summary>Releases the native session once the runs in progress and the bindings are done. Calling it again does nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            Release();
        }
    }

    internal Ort.InferenceSession Session => session;

    internal Ort.RunOptions RunOptions => runOptions;

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

    /// <summary>Keeps the native session alive (for a run in progress or a binding).</summary>
    internal void AddReference()
    {
        while (true)
        {
            var count = Volatile.Read(ref references);
            ObjectDisposedException.ThrowIf(count == 0, this);
            if (Interlocked.CompareExchange(ref references, count + 1, count) == count)
            {
                return;
            }
        }
    }

    /// <summary>Drops a reference taken by <see cref="AddReference"/> (or the owner's, in <see cref="Dispose"/>); the last one releases the session.</summary>
    internal void Release()
    {
        if (Interlocked.Decrement(ref references) == 0)
        {
            runOptions.Dispose();
            session.Dispose();
        }
    }

    internal OnnxRuntimeException Translate(Ort.OnnxRuntimeException e) =>
        OrtRuntime.Translate(e, "Running the model" + (ModelPath is null ? string.Empty : $" '{ModelPath}'"));

    private Ort.IDisposableReadOnlyCollection<Ort.OrtValue> RunSession(string[] names, Ort.OrtValue[] values, string[] wanted)
    {
        try
        {
            return session.Run(runOptions, names, values, wanted);
        }
        catch (Ort.OnnxRuntimeException e)
        {
            throw Translate(e);
        }
    }

    private T[] RunSingle<T>(string inputName, T[] data, long[] shape, out long[] outputShape)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(inputName);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        ThrowIfDisposed();
        long product = 1;
        foreach (var d in shape)
        {
            product = d < 0 ? -1 : product * d;
        }

        if (product != data.LongLength)
        {
            throw new InvalidModelInputException(
                inputName,
                $"Input '{inputName}': the data has {data.LongLength} elements but the shape {OnnxArray.FormatShape(shape)} "
                + (product < 0 ? "has a negative dimension." : $"needs {product}."));
        }

        if (!FitsFastPath(inputName, OnnxArray.ElementTypeOf<T>(), shape))
        {
            // anything unusual goes through the general path, which explains what is wrong
            var result = Run(new Dictionary<string, OnnxArray> { [inputName] = OnnxArray.Create(data, shape) });
            var first = result[outputs[0].Name];
            if (first.Data is not T[] typed)
            {
                throw new InvalidOperationException(
                    $"The model's first output '{outputs[0].Name}' is {first.ElementType.ToString().ToLowerInvariant()}, not {OnnxArray.ElementTypeOf<T>().ToString().ToLowerInvariant()}; use Run(IReadOnlyDictionary<string, OnnxArray>).");
            }

            outputShape = first.GetShape();
            return typed;
        }

        CheckValues(inputName, 0, data, data.LongLength, shape);
        AddReference();
        try
        {
            using var value = Ort.OrtValue.CreateTensorValueFromMemory(data, shape);
            using var results = RunSession(singleInputName[0], [value], firstOutputName);
            var output = results[0];
            outputShape = output.GetTensorTypeAndShape().Shape;
            return output.GetTensorDataAsSpan<T>().ToArray();
        }
        finally
        {
            Release();
        }
    }

    /// <summary>The model has exactly this one input, of this element type, its first output has it too, and the shape fits.</summary>
    private bool FitsFastPath(string inputName, OnnxElementType type, long[] shape)
    {
        if (inputs.Length != 1 || inputs[0].Name != inputName || inputs[0].ElementType != type || outputs[0].ElementType != type)
        {
            return false;
        }

        var dims = inputs[0].Dimensions;
        if (!inputs[0].HasKnownRank || dims.Count != shape.Length)
        {
            return false;
        }

        for (var i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0 || (dims[i] >= 0 && dims[i] != shape[i]))
            {
                return false;
            }
        }

        return true;
    }

    private (int[] Order, OnnxArray[] Arrays) Validate(IReadOnlyDictionary<string, OnnxArray> given)
    {
        var order = new int[given.Count];
        var arrays = new OnnxArray[given.Count];
        var k = 0;
        Dictionary<string, (long Size, string Input)>? symbols = null;
        foreach (var (name, array) in given)
        {
            if (!inputIndex.TryGetValue(name, out var index))
            {
                throw new InvalidModelInputException(
                    name, $"The model has no input named '{name}'. Its inputs are: {string.Join(", ", inputs.Select(i => i.ToString()))}.");
            }

            var info = inputs[index];
            if (array is null)
            {
                throw new InvalidModelInputException(name, $"Input '{name}' is null; the model expects {info.ElementType.ToString().ToLowerInvariant()}{info.ShapeText}.");
            }

            if (array.ElementType != info.ElementType)
            {
                throw new InvalidModelInputException(
                    name,
                    $"Input '{name}' must be {info.ElementType.ToString().ToLowerInvariant()} but {array.ElementType.ToString().ToLowerInvariant()} was given.");
            }

            var shape = array.ShapeArray;
            if (info.HasKnownRank)
            {
                if (shape.Length != info.Rank)
                {
                    throw new InvalidModelInputException(
                        name,
                        $"Input '{name}' has shape {OnnxArray.FormatShape(shape)} (rank {shape.Length}) but the model expects shape {info.ShapeText} (rank {info.Rank}).");
                }

                for (var d = 0; d < shape.Length; d++)
                {
                    var expected = info.Dimensions[d];
                    if (expected >= 0 && expected != shape[d])
                    {
                        throw new InvalidModelInputException(
                            name,
                            $"Input '{name}' has shape {OnnxArray.FormatShape(shape)} but the model expects shape {info.ShapeText}: dimension {d} must be {expected}.");
                    }

                    if (expected < 0 && info.SymbolicDimensions[d] is { Length: > 0 } symbol)
                    {
                        symbols ??= new Dictionary<string, (long, string)>(StringComparer.Ordinal);
                        if (symbols.TryGetValue(symbol, out var seen) && seen.Size != shape[d])
                        {
                            throw new InvalidModelInputException(
                                name,
                                $"Input '{name}' has shape {OnnxArray.FormatShape(shape)} with {symbol} = {shape[d]}, but input '{seen.Input}' has {symbol} = {seen.Size}; dimensions named {symbol} must be equal.");
                        }

                        symbols[symbol] = (shape[d], name);
                    }
                }
            }

            CheckValues(name, index, array.Data, array.Length, array.ShapeArray);
            order[k] = index;
            arrays[k] = array;
            k++;
        }

        if (given.Count < inputs.Length)
        {
            var missing = inputs.Where(i => !given.ContainsKey(i.Name)).Select(i => i.ToString());
            throw new InvalidModelInputException(
                null, $"Missing model input(s): {string.Join(", ", missing)}. The model's inputs are: {string.Join(", ", inputs.Select(i => i.ToString()))}.");
        }

        return (order, arrays);
    }

    /// <summary>A native tensor over the array's pinned data (not copied); dispose it to unpin.</summary>
    internal static Ort.OrtValue CreateValue(OnnxArray array) => array.Data switch
    {
        float[] f => Ort.OrtValue.CreateTensorValueFromMemory(Ort.OrtMemoryInfo.DefaultInstance, f.AsMemory(0, (int)array.Length), array.ShapeArray),
        double[] d => Ort.OrtValue.CreateTensorValueFromMemory(Ort.OrtMemoryInfo.DefaultInstance, d.AsMemory(0, (int)array.Length), array.ShapeArray),
        int[] i => Ort.OrtValue.CreateTensorValueFromMemory(Ort.OrtMemoryInfo.DefaultInstance, i.AsMemory(0, (int)array.Length), array.ShapeArray),
        long[] l => Ort.OrtValue.CreateTensorValueFromMemory(Ort.OrtMemoryInfo.DefaultInstance, l.AsMemory(0, (int)array.Length), array.ShapeArray),
        _ => throw new NotSupportedException($"Element type {array.ElementType} is not supported."),
    };

    private static OnnxArray CopyOutput(string name, Ort.OrtValue value)
    {
        if (!value.IsTensor)
        {
            throw new NotSupportedException($"Output '{name}' is not a tensor; only float32, float64, int32 and int64 tensor outputs are supported.");
        }

        var info = value.GetTensorTypeAndShape();
        var elementType = ToElementType(info.ElementDataType);
        if (!OnnxArray.IsSupported(elementType))
        {
            throw new NotSupportedException(
                $"Output '{name}' has element type {info.ElementDataType}; only float32, float64, int32 and int64 outputs are supported.");
        }

        Array copy = elementType switch
        {
            OnnxElementType.Float32 => value.GetTensorDataAsSpan<float>().ToArray(),
            OnnxElementType.Float64 => value.GetTensorDataAsSpan<double>().ToArray(),
            OnnxElementType.Int32 => value.GetTensorDataAsSpan<int>().ToArray(),
            _ => value.GetTensorDataAsSpan<long>().ToArray(),
        };
        return OnnxArray.CreateUnchecked(elementType, copy, info.Shape);
    }

    private static OnnxElementType ToElementType(Ort.Tensors.TensorElementType type) =>
        Enum.IsDefined((OnnxElementType)(int)type) ? (OnnxElementType)(int)type : OnnxElementType.Undefined;

    private static TensorInfo ReadTensorInfo(string name, Ort.NodeMetadata metadata)
    {
        if (!metadata.IsTensor)
        {
            return new TensorInfo(name, OnnxElementType.Undefined, null, null);
        }

        var dims = metadata.Dimensions.Select(d => (long)d).ToArray();
        var symbols = metadata.SymbolicDimensions.Select(s => string.IsNullOrEmpty(s) ? null : s).ToArray();
        return new TensorInfo(name, ToElementType(metadata.ElementDataType), dims, symbols);
    }

    private static ModelMetadata ReadMetadata(Ort.ModelMetadata metadata) =>
        new(
            metadata.ProducerName,
            metadata.GraphName,
            metadata.Domain,
            metadata.Description,
            metadata.Version,
            new ReadOnlyDictionary<string, string>(new Dictionary<string, string>(metadata.CustomMetadataMap, StringComparer.Ordinal)));

    private static OnnxPredictor Create(PredictorOptions? options, Func<Ort.SessionOptions, Ort.InferenceSession> open, string context, string? modelPath)
    {
        options ??= new PredictorOptions();
        if (options.IntraOpThreads is < 0 || options.InterOpThreads is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Thread counts must be zero (ONNX Runtime's default) or positive.");
        }

        if (!Enum.IsDefined(options.GraphOptimizationLevel))
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"Unknown graph optimization level {options.GraphOptimizationLevel}.");
        }

        if (options.CudaDeviceId < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"CudaDeviceId must be zero or positive, not {options.CudaDeviceId}.");
        }

        _ = OrtRuntime.Environment; // loads the native library, or explains which package is missing
        using var sessionOptions = new Ort.SessionOptions
        {
            GraphOptimizationLevel = (Ort.GraphOptimizationLevel)(int)options.GraphOptimizationLevel,
        };
        if (options.IntraOpThreads is int intra)
        {
            sessionOptions.IntraOpNumThreads = intra;
        }

        if (options.InterOpThreads is int inter)
        {
            sessionOptions.InterOpNumThreads = inter;
        }

        if (options.UseCuda)
        {
            AppendCuda(sessionOptions, options.CudaDeviceId);
        }

        Ort.InferenceSession session;
        try
        {
            session = open(sessionOptions);
        }
        catch (Ort.OnnxRuntimeException e) when (options.UseCuda && CudaFailure().IsMatch(e.Message))
        {
            throw CudaUnavailable(e, "creating the session on the CUDA execution provider");
        }
        catch (Ort.OnnxRuntimeException e)
        {
            throw OrtRuntime.Translate(e, context);
        }

        try
        {
            return new OnnxPredictor(session, modelPath, options.UseCuda);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static void AppendCuda(Ort.SessionOptions sessionOptions, int deviceId)
    {
        try
        {
            using var cuda = new Ort.OrtCUDAProviderOptions();
            cuda.UpdateOptions(new Dictionary<string, string> { ["device_id"] = deviceId.ToString(CultureInfo.InvariantCulture) });
            sessionOptions.AppendExecutionProvider_CUDA(cuda);
        }
        catch (Ort.OnnxRuntimeException e)
        {
            throw CudaUnavailable(e, "appending the CUDA execution provider");
        }
        catch (EntryPointNotFoundException e)
        {
            throw CudaUnavailable(e, "appending the CUDA execution provider");
        }
    }

    private static ExecutionProviderUnavailableException CudaUnavailable(Exception e, string step)
    {
        var (code, text) = e is Ort.OnnxRuntimeException ? OrtRuntime.Parse(e.Message) : (OrtErrorCode.NotImplemented, e.Message);
        var version = OrtRuntime.Environment.GetVersionString();
        var providers = string.Join(", ", OrtRuntime.AvailableProviders);
        var message = OrtRuntime.AvailableProviders.Contains(CudaProvider)
            ? $"The CUDA execution provider could not be loaded ({step} failed). ONNX Runtime {version} said: {text.Trim()} "
              + "The GPU package (Microsoft.ML.OnnxRuntime.Gpu.Linux) needs CUDA 13 and cuDNN 9 on the library path "
              + "(libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libcufft.so.12, libcudnn.so.9) and an NVIDIA driver; "
              + "without them, load the model with UseCuda = false to run on the CPU."
            : $"The CUDA execution provider is missing from this application's ONNX Runtime {version}, the CPU package "
              + $"(available providers: {providers}); {step} failed: {text.Trim()} Build the application with -p:OnnxRuntimeGpu=true "
              + "to use Microsoft.ML.OnnxRuntime.Gpu.Linux instead (see interop/README.md), or load the model with UseCuda = false.";
        return new ExecutionProviderUnavailableException(CudaProvider, code, message, e);
    }

    [GeneratedRegex("(?i)cuda|cudnn|cublas|cufft|curand|libonnxruntime_providers")]
    private static partial Regex CudaFailure();
}
