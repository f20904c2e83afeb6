using System.Collections.ObjectModel;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// The element type of a tensor, with the numeric values of ONNX's <c>TensorProto.DataType</c>
/// (which ONNX Runtime's <c>ONNXTensorElementDataType</c> shares for these members).
/// </summary>
public enum OnnxElementType
{
    /// <summary>Unknown or not a tensor.</summary>
    Undefined = 0,
    /// <summary>32-bit IEEE float (<see cref="float"/>).</summary>
    Float32 = 1,
    /// <summary>Unsigned 8-bit integer.</summary>
    UInt8 = 2,
    /// <summary>Signed 8-bit integer.</summary>
    Int8 = 3,
    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 4,
    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 5,
    /// <summary>Signed 32-bit integer (<see cref="int"/>).</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit integer (<see cref="long"/>).</summary>
    Int64 = 7,
    /// <summary>String.</summary>
    String = 8,
    /// <summary>Boolean (one byte).</summary>
    Bool = 9,
    /// <summary>16-bit IEEE float.</summary>
    Float16 = 10,
    /// <summary>64-bit IEEE float (<see cref="double"/>).</summary>
    Float64 = 11,
    /// <summary>Unsigned 32-bit integer.</summary>
    UInt32 = 12,
    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 13,
}

/// <summary>Graph optimization levels of ONNX Runtime (<c>GraphOptimizationLevel</c>).</summary>
public enum GraphOptimizationLevel
{
    /// <summary>No graph optimizations.</summary>
    DisableAll = 0,
    /// <summary>Basic optimizations (constant folding, redundant node elimination).</summary>
    Basic = 1,
    /// <summary>Basic plus extended optimizations (node fusions).</summary>
    Extended = 2,
    /// <summary>All optimizations, including layout optimizations. ONNX Runtime's default.</summary>
    All = 99,
}

/// <summary>Options for <see cref="OnnxPredictor.Load(string, PredictorOptions?)"/>.</summary>
public sealed record PredictorOptions
{
    /// <summary>
    /// Threads used inside one operator; <see langword="null"/> or 0 lets ONNX Runtime choose
    /// (one per physical core).
    /// </summary>
    public int? IntraOpThreads { get; init; }

    /// <summary>
    /// Threads used to run independent operators in parallel; <see langword="null"/> or 0 lets ONNX Runtime choose.
    /// </summary>
    public int? InterOpThreads { get; init; }

    /// <summary>The graph optimization level; <see cref="GraphOptimizationLevel.All"/> by default.</summary>
    public GraphOptimizationLevel GraphOptimizationLevel { get; init; } = GraphOptimizationLevel.All;

    /// <summary>
    /// Run on the CUDA execution provider (CPU stays as the fallback for operators CUDA lacks). This needs the
    /// application to be built with the GPU native package (<c>-p:OnnxRuntimeGpu=true</c>, see interop/README.md)
    /// and CUDA 13 with cuDNN 9 on the machine; otherwise loading fails with
    /// <see cref="ExecutionProviderUnavailableException"/>, whose message gives ONNX Runtime's reason (for a
    /// missing CUDA library, its file name).
    /// </summary>
    public bool UseCuda { get; init; }

    /// <summary>The CUDA device used when <see cref="UseCuda"/> is set; 0 by default.</summary>
    public int CudaDeviceId { get; init; }
}

/// <summary>The name, element type and shape of a model input or output.</summary>
public sealed class TensorInfo
{
    internal TensorInfo(string name, OnnxElementType elementType, long[]? dimensions, string?[]? symbolicDimensions)
    {
        Name = name;
        ElementType = elementType;
        HasKnownRank = dimensions is not null;
        Dimensions = new ReadOnlyCollection<long>(dimensions ?? []);
        SymbolicDimensions = new ReadOnlyCollection<string?>(symbolicDimensions ?? new string?[Dimensions.Count]);
    }

    /// <summary>The input or output name.</summary>
    public string Name { get; }

    /// <summary>The element type (<see cref="OnnxElementType.Undefined"/> when the value is not a tensor).</summary>
    public OnnxElementType ElementType { get; }

    /// <summary>Whether the model declares the rank (false for a value of unknown shape).</summary>
    public bool HasKnownRank { get; }

    /// <summary>The dimensions; -1 for a symbolic or unknown dimension.</summary>
    public IReadOnlyList<long> Dimensions { get; }

    /// <summary>
    /// The name (ONNX <c>dim_param</c>) of each symbolic dimension, or <see langword="null"/> for a fixed or unnamed one.
    /// </summary>
    public IReadOnlyList<string?> SymbolicDimensions { get; }

    /// <summary>The number of dimensions.</summary>
    public int Rank => Dimensions.Count;

    /// <summary>The shape as text, symbolic dimensions shown by name and unnamed unknown ones as '?', e.g. "[N, 5]".</summary>
    public string ShapeText =>
        HasKnownRank ? "[" + string.Join(", ", Dimensions.Select((d, i) => d >= 0 ? d.ToString() : SymbolicDimensions[i] ?? "?")) + "]" : "[unknown rank]";

    /// <summary>Formats the tensor as "name: float32[N, 5]".</summary>
    public override string ToString() => $"{Name}: {ElementType.ToString().ToLowerInvariant()}{ShapeText}";
}

/// <summary>The metadata stored in an ONNX model (<c>ModelProto</c> fields and <c>metadata_props</c>).</summary>
/// <param name="ProducerName">The producer name.</param>
/// <param name="GraphName">The graph's name.</param>
/// <param name="Domain">The model domain.</param>
/// <param name="Description">The model's doc string.</param>
/// <param name="Version">The model version.</param>
/// <param name="CustomMetadata">The <c>metadata_props</c> key/value pairs.</param>
public sealed record ModelMetadata(
    string ProducerName,
    string GraphName,
    string Domain,
    string Description,
    long Version,
    IReadOnlyDictionary<string, string> CustomMetadata);
