using System.Collections.ObjectModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// An ONNX model loaded into an ONNX Runtime inference session on the CPU (or CUDA, when available).
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Run(IReadOnlyDictionary{string, OnnxArray})"/> may be called from many threads at once: ONNX Runtime
/// sessions support concurrent runs, and this class keeps no mutable state shared between calls (each call
/// pins its own inputs, creates and releases its own native values and copies the outputs to new arrays).
/// </para>
/// <para>
/// Native resources are released by <see cref="Dispose"/> (or, if it is never called, by the finalizers of
/// the underlying <see cref="SafeHandle"/>s). A run in progress keeps the session alive until it returns.
/// </para>
/// </remarks>
public sealed unsafe partial class OnnxPredictor : IDisposable
{
    private const int OnnxTypeTensor = 1;

    private readonly OrtLibrary library;
    private readonly OrtSessionHandle session;
    private readonly Dictionary<string, int> inputIndex;
    private readonly IntPtr[] inputNamePointers;
    private readonly IntPtr[] outputNamePointers;
    private readonly List<byte[]> pinnedNames = [];
    private readonly TensorInfo[] inputs;
    private readonly TensorInfo[] outputs;
    private volatile bool disposed;

    private OnnxPredictor(OrtLibrary library, OrtSessionHandle session, string? modelPath)
    {
        this.library = library;
        this.session = session;
        ModelPath = modelPath;
        var s = session.DangerousGetHandle();

        nuint inputCount, outputCount;
        library.Check(library.SessionGetInputCount(s, &inputCount), "SessionGetInputCount");
        library.Check(library.SessionGetOutputCount(s, &outputCount), "SessionGetOutputCount");
        inputs = new TensorInfo[(int)inputCount];
        outputs = new TensorInfo[(int)outputCount];
        inputNamePointers = GC.AllocateArray<IntPtr>(inputs.Length, pinned: true);
        outputNamePointers = GC.AllocateArray<IntPtr>(outputs.Length, pinned: true);
        inputIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < inputs.Length; i++)
        {
            IntPtr name;
            library.Check(library.SessionGetInputName(s, (nuint)i, library.DefaultAllocator, &name), "SessionGetInputName");
            var text = library.TakeAllocatedString(name);
            IntPtr typeInfo;
            library.Check(library.SessionGetInputTypeInfo(s, (nuint)i, &typeInfo), "SessionGetInputTypeInfo");
            inputs[i] = ReadTensorInfo(text, new OrtTypeInfoHandle(library, typeInfo));
            inputNamePointers[i] = PinnedUtf8z(text);
            inputIndex[text] = i;
        }

        for (var i = 0; i < outputs.Length; i++)
        {
            IntPtr name;
            library.Check(library.SessionGetOutputName(s, (nuint)i, library.DefaultAllocator, &name), "SessionGetOutputName");
            var text = library.TakeAllocatedString(name);
            IntPtr typeInfo;
            library.Check(library.SessionGetOutputTypeInfo(s, (nuint)i, &typeInfo), "SessionGetOutputTypeInfo");
            outputs[i] = ReadTensorInfo(text, new OrtTypeInfoHandle(library, typeInfo));
            outputNamePointers[i] = PinnedUtf8z(text);
        }

        Inputs = new ReadOnlyCollection<TensorInfo>(inputs);
        Outputs = new ReadOnlyCollection<TensorInfo>(outputs);
        Metadata = ReadMetadata();
    }

    /// <summary>The model's inputs, in the model's order.</summary>
    public IReadOnlyList<TensorInfo> Inputs { get; }

    /// <summary>The model's outputs, in the model's order.</summary>
    public IReadOnlyList<TensorInfo> Outputs { get; }

    /// <summary>The model's metadata (producer, graph name, version, custom key/value pairs).</summary>
    public ModelMetadata Metadata { get; }

    /// <summary>The model file's full path, or <see langword="null"/> when it was loaded from bytes.</summary>
    public string? ModelPath { get; }

    /// <summary>The full path of the native ONNX Runtime library in use.</summary>
    public string LibraryPath => library.LibraryPath;

    /// <summary>The ONNX Runtime version, such as "1.30.0".</summary>
    public string RuntimeVersion => library.Version;

    /// <summary>The execution providers compiled into the loaded ONNX Runtime build.</summary>
    public IReadOnlyList<string> AvailableProviders => library.AvailableProviders;

    /// <summary>Loads an ONNX model file.</summary>
    /// <param name="modelPath">The path of the <c>.onnx</c> file.</param>
    /// <param name="options">Session options; defaults when <see langword="null"/>.</param>
    /// <returns>The predictor, which owns the native session until disposed.</returns>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime rejected the model (the message names the file and gives ONNX Runtime's reason).</exception>
    /// <exception cref="OnnxRuntimeNotFoundException">The native library is missing.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="PredictorOptions.UseCuda"/> is set but CUDA is unavailable.</exception>
    public static OnnxPredictor Load(string modelPath, PredictorOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        var fullPath = Path.GetFullPath(modelPath);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"The ONNX model file '{fullPath}' does not exist.", fullPath);
        }

        options ??= new PredictorOptions();
        var library = OrtLibrary.Get(options.LibraryPath);
        using var sessionOptions = CreateSessionOptions(library, options);
        IntPtr session;
        IntPtr status;
        fixed (byte* path = OrtLibrary.Utf8z(fullPath))
        {
            status = library.CreateSession(library.Env.DangerousGetHandle(), path, sessionOptions.DangerousGetHandle(), &session);
        }

        if (status != IntPtr.Zero)
        {
            throw library.ToException(status, $"Cannot load the ONNX model '{fullPath}'");
        }

        return Create(library, new OrtSessionHandle(library, session), fullPath);
    }

    /// <summary>Loads an ONNX model from its serialized bytes (a <c>ModelProto</c>).</summary>
    /// <param name="model">The model bytes.</param>
    /// <param name="options">Session options; defaults when <see langword="null"/>.</param>
    /// <returns>The predictor, which owns the native session until disposed.</returns>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime rejected the model.</exception>
    /// <exception cref="OnnxRuntimeNotFoundException">The native library is missing.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="PredictorOptions.UseCuda"/> is set but CUDA is unavailable.</exception>
    public static OnnxPredictor Load(byte[] model, PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new PredictorOptions();
        var library = OrtLibrary.Get(options.LibraryPath);
        using var sessionOptions = CreateSessionOptions(library, options);
        IntPtr session;
        IntPtr status;
        fixed (byte* data = model)
        {
            status = library.CreateSessionFromArray(
                library.Env.DangerousGetHandle(), data, (nuint)model.Length, sessionOptions.DangerousGetHandle(), &session);
        }

        if (status != IntPtr.Zero)
        {
            throw library.ToException(status, $"Cannot load the ONNX model from a {model.Length}-byte array");
        }

        return Create(library, new OrtSessionHandle(library, session), null);
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
        ObjectDisposedException.ThrowIf(disposed, this);
        var (order, arrays) = Validate(inputs);
        var count = arrays.Length;

        var added = false;
        var pins = new GCHandle[count];
        var inputValues = new OrtValueHandle?[count];
        var rawInputs = new IntPtr[count];
        var inputNames = new IntPtr[count];
        var rawOutputs = new IntPtr[outputs.Length];
        var outputValues = new OrtValueHandle?[outputs.Length];
        try
        {
            session.DangerousAddRef(ref added);
            var memoryInfo = library.CpuMemoryInfo.DangerousGetHandle();
            for (var i = 0; i < count; i++)
            {
                var array = arrays[i];
                inputNames[i] = inputNamePointers[order[i]];
                pins[i] = GCHandle.Alloc(array.Data, GCHandleType.Pinned);
                var bytes = (nuint)(array.Length * OnnxArray.ElementSize(array.ElementType));
                IntPtr value;
                fixed (long* shape = array.ShapeArray)
                {
                    library.Check(
                        library.CreateTensorWithDataAsOrtValue(
                            memoryInfo, (void*)pins[i].AddrOfPinnedObject(), bytes, shape, (nuint)array.ShapeArray.Length, (int)array.ElementType, &value),
                        $"Creating the tensor for input '{this.inputs[order[i]].Name}'");
                }

                inputValues[i] = new OrtValueHandle(library, value);
                rawInputs[i] = value;
            }

            IntPtr status;
            fixed (IntPtr* names = inputNames, values = rawInputs, outNames = outputNamePointers, outValues = rawOutputs)
            {
                status = library.Run(
                    session.DangerousGetHandle(), IntPtr.Zero, names, values, (nuint)count, outNames, (nuint)outputs.Length, outValues);
            }

            for (var j = 0; j < rawOutputs.Length; j++)
            {
                if (rawOutputs[j] != IntPtr.Zero)
                {
                    outputValues[j] = new OrtValueHandle(library, rawOutputs[j]);
                }
            }

            library.Check(status, "Running the model" + (ModelPath is null ? string.Empty : $" '{ModelPath}'"));
            var result = new Dictionary<string, OnnxArray>(outputs.Length, StringComparer.Ordinal);
            for (var j = 0; j < outputs.Length; j++)
            {
                result.Add(outputs[j].Name, CopyOutput(outputs[j].Name, rawOutputs[j]));
            }

            return new ReadOnlyDictionary<string, OnnxArray>(result);
        }
        finally
        {
            foreach (var value in outputValues)
            {
                value?.Dispose();
            }

            foreach (var value in inputValues)
            {
                value?.Dispose();
            }

            foreach (var pin in pins)
            {
                if (pin.IsAllocated)
                {
                    pin.Free();
                }
            }

            if (added)
            {
                session.DangerousRelease();
            }
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

    /// <summary>Releases the native session. Calling it again does nothing.</summary>
    public void Dispose()
    {
        disposed = true;
        session.Dispose();
    }

    private T[] RunSingle<T>(string inputName, T[] data, long[] shape, out long[] outputShape)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(inputName);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        ObjectDisposedException.ThrowIf(disposed, this);
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

        if (FitsFastPath(inputName, OnnxArray.ElementTypeOf<T>(), shape))
        {
            return RunSingleFast(data, shape, out outputShape);
        }

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

    /// <summary>The model has exactly this one input, of this element type, and the shape fits it.</summary>
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

    /// <summary>One input, validated by <see cref="FitsFastPath"/>: no dictionaries, the buffer fixed for the call.</summary>
    private T[] RunSingleFast<T>(T[] data, long[] shape, out long[] outputShape)
        where T : unmanaged
    {
        var added = false;
        IntPtr input = IntPtr.Zero;
        var rawOutputs = new IntPtr[outputs.Length];
        try
        {
            session.DangerousAddRef(ref added);
            IntPtr status;
            fixed (T* buffer = data)
            fixed (long* dims = shape)
            {
                library.Check(
                    library.CreateTensorWithDataAsOrtValue(
                        library.CpuMemoryInfo.DangerousGetHandle(), buffer, (nuint)(data.Length * sizeof(T)), dims, (nuint)shape.Length,
                        (int)OnnxArray.ElementTypeOf<T>(), &input),
                    $"Creating the tensor for input '{inputs[0].Name}'");
                var inputValue = input;
                fixed (IntPtr* names = inputNamePointers, outNames = outputNamePointers, outValues = rawOutputs)
                {
                    status = library.Run(session.DangerousGetHandle(), IntPtr.Zero, names, &inputValue, 1, outNames, (nuint)outputs.Length, outValues);
                }
            }

            library.Check(status, "Running the model" + (ModelPath is null ? string.Empty : $" '{ModelPath}'"));
            return CopyOutputFast<T>(rawOutputs[0], out outputShape);
        }
        finally
        {
            foreach (var v in rawOutputs)
            {
                if (v != IntPtr.Zero)
                {
                    library.ReleaseValue(v);
                }
            }

            if (input != IntPtr.Zero)
            {
                library.ReleaseValue(input);
            }

            if (added)
            {
                session.DangerousRelease();
            }
        }
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

    private OnnxArray CopyOutput(string name, IntPtr value)
    {
        IntPtr rawInfo;
        library.Check(library.GetTensorTypeAndShape(value, &rawInfo), $"Reading the shape of output '{name}'");
        using var info = new OrtTensorTypeAndShapeInfoHandle(library, rawInfo);
        int type;
        nuint rank, count;
        library.Check(library.GetTensorElementType(rawInfo, &type), "GetTensorElementType");
        library.Check(library.GetDimensionsCount(rawInfo, &rank), "GetDimensionsCount");
        var shape = new long[(int)rank];
        fixed (long* dims = shape)
        {
            library.Check(library.GetDimensions(rawInfo, dims, rank), "GetDimensions");
        }

        library.Check(library.GetTensorShapeElementCount(rawInfo, &count), "GetTensorShapeElementCount");
        var elementType = (OnnxElementType)type;
        if (!OnnxArray.IsSupported(elementType))
        {
            throw new NotSupportedException(
                $"Output '{name}' has element type {elementType}; only float32, float64, int32 and int64 outputs are supported.");
        }

        void* data = null;
        if (count > 0)
        {
            library.Check(library.GetTensorMutableData(value, &data), $"Reading the data of output '{name}'");
        }

        var n = checked((int)count);
        Array copy = elementType switch
        {
            OnnxElementType.Float32 => CopyToArray<float>(data, n),
            OnnxElementType.Float64 => CopyToArray<double>(data, n),
            OnnxElementType.Int32 => CopyToArray<int>(data, n),
            _ => CopyToArray<long>(data, n),
        };
        return OnnxArray.CreateUnchecked(elementType, copy, shape);
    }

    /// <summary>An output whose element type is known (checked by <see cref="FitsFastPath"/>): shape and data only.</summary>
    private T[] CopyOutputFast<T>(IntPtr value, out long[] shape)
        where T : unmanaged
    {
        IntPtr info;
        library.Check(library.GetTensorTypeAndShape(value, &info), $"Reading the shape of output '{outputs[0].Name}'");
        try
        {
            nuint rank;
            library.Check(library.GetDimensionsCount(info, &rank), "GetDimensionsCount");
            shape = new long[(int)rank];
            fixed (long* dims = shape)
            {
                library.Check(library.GetDimensions(info, dims, rank), "GetDimensions");
            }
        }
        finally
        {
            library.ReleaseTensorTypeAndShapeInfo(info);
        }

        long count = 1;
        foreach (var d in shape)
        {
            count *= d;
        }

        void* data = null;
        if (count > 0)
        {
            library.Check(library.GetTensorMutableData(value, &data), $"Reading the data of output '{outputs[0].Name}'");
        }

        return CopyToArray<T>(data, checked((int)count));
    }

    private static T[] CopyToArray<T>(void* data, int count)
        where T : unmanaged
    {
        var array = GC.AllocateUninitializedArray<T>(count);
        new ReadOnlySpan<T>(data, count).CopyTo(array);
        return array;
    }

    private static OnnxPredictor Create(OrtLibrary library, OrtSessionHandle session, string? modelPath)
    {
        try
        {
            return new OnnxPredictor(library, session, modelPath);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static OrtSessionOptionsHandle CreateSessionOptions(OrtLibrary library, PredictorOptions options)
    {
        IntPtr raw;
        library.Check(library.CreateSessionOptions(&raw), "CreateSessionOptions");
        var handle = new OrtSessionOptionsHandle(library, raw);
        try
        {
            if (options.IntraOpThreads is < 0 || options.InterOpThreads is < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(options), "Thread counts must be zero (ONNX Runtime's default) or positive.");
            }

            if (!Enum.IsDefined(options.GraphOptimizationLevel))
            {
                throw new ArgumentOutOfRangeException(nameof(options), $"Unknown graph optimization level {options.GraphOptimizationLevel}.");
            }

            library.Check(library.SetSessionGraphOptimizationLevel(raw, (int)options.GraphOptimizationLevel), "SetSessionGraphOptimizationLevel");
            if (options.IntraOpThreads is int intra)
            {
                library.Check(library.SetIntraOpNumThreads(raw, intra), "SetIntraOpNumThreads");
            }

            if (options.InterOpThreads is int inter)
            {
                library.Check(library.SetInterOpNumThreads(raw, inter), "SetInterOpNumThreads");
            }

            if (options.UseCuda)
            {
                AppendCuda(library, raw, options.CudaDeviceId);
            }

            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void AppendCuda(OrtLibrary library, IntPtr sessionOptions, int deviceId)
    {
        const string provider = "CUDAExecutionProvider";
        var where = $"ONNX Runtime {library.Version} at '{library.LibraryPath}'";
        const string hint = "The npm package onnxruntime-node ships the CPU execution provider only. Set UseCuda = false, "
            + "or point FUNCTIONALBAYES_ORT_LIBRARY (or PredictorOptions.LibraryPath) to a GPU build of ONNX Runtime with its CUDA provider libraries.";
        if (!library.AvailableProviders.Contains(provider))
        {
            throw new ExecutionProviderUnavailableException(
                provider,
                OrtErrorCode.NotImplemented,
                $"The CUDA execution provider is missing from this ONNX Runtime build ({where}): GetAvailableProviders lists only "
                + $"{string.Join(", ", library.AvailableProviders)}. {hint}");
        }

        // The provider bridge is compiled in, so CUDA is listed even when its provider libraries are absent:
        // only creating, configuring and appending the provider tells whether it really works.
        ExecutionProviderUnavailableException Missing(IntPtr status, string step)
        {
            var error = library.ToException(status, step);
            return new ExecutionProviderUnavailableException(
                provider,
                error.ErrorCode,
                $"The CUDA execution provider is missing from this ONNX Runtime build ({where}): GetAvailableProviders lists {provider}, "
                + $"but {step} failed, so its provider libraries (libonnxruntime_providers_cuda.so, libonnxruntime_providers_shared.so) "
                + $"or CUDA itself are not installed. ONNX Runtime said: {error.Message}. {hint}",
                error);
        }

        IntPtr rawCudaOptions;
        var status = library.CreateCudaProviderOptions(&rawCudaOptions);
        if (status != IntPtr.Zero)
        {
            throw Missing(status, "CreateCUDAProviderOptions");
        }

        using var cudaOptions = new OrtCudaProviderOptionsHandle(library, rawCudaOptions);
        fixed (byte* key = "device_id\0"u8, value = OrtLibrary.Utf8z(deviceId.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            var keys = (IntPtr)key;
            var values = (IntPtr)value;
            status = library.UpdateCudaProviderOptions(rawCudaOptions, &keys, &values, 1);
        }

        if (status != IntPtr.Zero)
        {
            throw Missing(status, $"UpdateCUDAProviderOptions (device_id = {deviceId})");
        }

        status = library.SessionOptionsAppendExecutionProviderCudaV2(sessionOptions, rawCudaOptions);
        if (status != IntPtr.Zero)
        {
            throw Missing(status, "SessionOptionsAppendExecutionProvider_CUDA_V2");
        }
    }

    private TensorInfo ReadTensorInfo(string name, OrtTypeInfoHandle typeInfo)
    {
        using (typeInfo)
        {
            var raw = typeInfo.DangerousGetHandle();
            int onnxType;
            library.Check(library.GetOnnxTypeFromTypeInfo(raw, &onnxType), "GetOnnxTypeFromTypeInfo");
            if (onnxType != OnnxTypeTensor)
            {
                return new TensorInfo(name, OnnxElementType.Undefined, null, null);
            }

            IntPtr tensorInfo; // owned by typeInfo; not released separately
            library.Check(library.CastTypeInfoToTensorInfo(raw, &tensorInfo), "CastTypeInfoToTensorInfo");
            int elementType;
            nuint rank;
            library.Check(library.GetTensorElementType(tensorInfo, &elementType), "GetTensorElementType");
            library.Check(library.GetDimensionsCount(tensorInfo, &rank), "GetDimensionsCount");
            var dims = new long[(int)rank];
            var symbolPointers = new IntPtr[(int)rank];
            fixed (long* d = dims)
            fixed (IntPtr* p = symbolPointers)
            {
                library.Check(library.GetDimensions(tensorInfo, d, rank), "GetDimensions");
                library.Check(library.GetSymbolicDimensions(tensorInfo, p, rank), "GetSymbolicDimensions");
            }

            var symbols = new string?[(int)rank];
            for (var i = 0; i < symbols.Length; i++)
            {
                var text = Marshal.PtrToStringUTF8(symbolPointers[i]);
                symbols[i] = string.IsNullOrEmpty(text) ? null : text;
            }

            return new TensorInfo(name, (OnnxElementType)elementType, dims, symbols);
        }
    }

    private ModelMetadata ReadMetadata()
    {
        IntPtr raw;
        library.Check(library.SessionGetModelMetadata(session.DangerousGetHandle(), &raw), "SessionGetModelMetadata");
        using var handle = new OrtModelMetadataHandle(library, raw);
        var allocator = library.DefaultAllocator;

        string Get(delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr> getter, IntPtr metadata, string what)
        {
            IntPtr value;
            library.Check(getter(metadata, allocator, &value), what);
            return library.TakeAllocatedString(value);
        }

        var producer = Get(library.ModelMetadataGetProducerName, raw, "ModelMetadataGetProducerName");
        var graph = Get(library.ModelMetadataGetGraphName, raw, "ModelMetadataGetGraphName");
        var domain = Get(library.ModelMetadataGetDomain, raw, "ModelMetadataGetDomain");
        var description = Get(library.ModelMetadataGetDescription, raw, "ModelMetadataGetDescription");
        long version;
        library.Check(library.ModelMetadataGetVersion(raw, &version), "ModelMetadataGetVersion");

        IntPtr keys;
        long keyCount;
        library.Check(library.ModelMetadataGetCustomMetadataMapKeys(raw, allocator, &keys, &keyCount), "ModelMetadataGetCustomMetadataMapKeys");
        var custom = new Dictionary<string, string>(StringComparer.Ordinal);
        if (keys != IntPtr.Zero)
        {
            var keyNames = new string[keyCount];
            for (var i = 0; i < keyCount; i++)
            {
                keyNames[i] = library.TakeAllocatedString(((IntPtr*)keys)[i]);
            }

            library.Check(library.AllocatorFree(allocator, keys), "AllocatorFree");
            foreach (var key in keyNames)
            {
                IntPtr value;
                fixed (byte* k = OrtLibrary.Utf8z(key))
                {
                    library.Check(library.ModelMetadataLookupCustomMetadataMap(raw, allocator, k, &value), "ModelMetadataLookupCustomMetadataMap");
                }

                custom[key] = library.TakeAllocatedString(value);
            }
        }

        return new ModelMetadata(producer, graph, domain, description, version, new ReadOnlyDictionary<string, string>(custom));
    }

    /// <summary>
    /// Encodes a name as NUL-terminated UTF-8 in an array on the pinned object heap, kept alive by
    /// <see cref="pinnedNames"/>, so that its address stays valid for every run without per-call pinning.
    /// </summary>
    private IntPtr PinnedUtf8z(string text)
    {
        var bytes = OrtLibrary.Utf8z(text);
        var pinned = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        bytes.CopyTo(pinned, 0);
        pinnedNames.Add(pinned);
        return (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
    }
}
