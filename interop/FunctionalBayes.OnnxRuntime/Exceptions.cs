namespace FunctionalBayes.OnnxRuntime;

/// <summary>The error codes of ONNX Runtime's <c>OrtErrorCode</c>.</summary>
public enum OrtErrorCode
{
    /// <summary>No error.</summary>
    Ok = 0,
    /// <summary>A general failure.</summary>
    Fail = 1,
    /// <summary>An argument was invalid (for example a wrong input dimension).</summary>
    InvalidArgument = 2,
    /// <summary>A file was not found.</summary>
    NoSuchFile = 3,
    /// <summary>No model was loaded.</summary>
    NoModel = 4,
    /// <summary>The execution engine failed.</summary>
    EngineError = 5,
    /// <summary>A runtime exception was raised inside ONNX Runtime.</summary>
    RuntimeException = 6,
    /// <summary>The model bytes are not a valid protobuf message.</summary>
    InvalidProtobuf = 7,
    /// <summary>The model was already loaded.</summary>
    ModelLoaded = 8,
    /// <summary>The feature is not implemented in this build.</summary>
    NotImplemented = 9,
    /// <summary>The model graph is invalid.</summary>
    InvalidGraph = 10,
    /// <summary>An execution provider failed.</summary>
    ExecutionProviderFail = 11,
}

/// <summary>An error reported by ONNX Runtime through an <c>OrtStatus</c>.</summary>
public class OnnxRuntimeException : Exception
{
    /// <summary>Creates the exception from ONNX Runtime's error code and message.</summary>
    /// <param name="errorCode">The ONNX Runtime error code.</param>
    /// <param name="message">The full message.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public OnnxRuntimeException(OrtErrorCode errorCode, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
    }

    /// <summary>The ONNX Runtime error code.</summary>
    public OrtErrorCode ErrorCode { get; }
}

/// <summary>
/// The native ONNX Runtime library could not be loaded: the application references no native ONNX Runtime
/// package (or a package without a build for this platform).
/// </summary>
/// <remarks>
/// FunctionalBayes.OnnxRuntime references only the managed API; the application chooses the native package:
/// <c>Microsoft.ML.OnnxRuntime</c> (CPU) or <c>Microsoft.ML.OnnxRuntime.Gpu.Linux</c> (CUDA). See interop/README.md.
/// </remarks>
public sealed class OnnxRuntimeNotFoundException : DllNotFoundException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The full message, which says how to fix the problem.</param>
    /// <param name="innerException">The loader's error, if any.</param>
    public OnnxRuntimeNotFoundException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A requested execution provider (for example CUDA) is missing from the application's ONNX Runtime package
/// or could not be initialized (for CUDA: a CUDA or cuDNN library is missing; the message names it).
/// </summary>
public sealed class ExecutionProviderUnavailableException : OnnxRuntimeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="providerName">The provider's ONNX Runtime name, such as <c>CUDAExecutionProvider</c>.</param>
    /// <param name="errorCode">The ONNX Runtime error code, or <see cref="OrtErrorCode.NotImplemented"/> when the provider is not compiled in.</param>
    /// <param name="message">The full message.</param>
    /// <param name="innerException">The ONNX Runtime error, if any.</param>
    public ExecutionProviderUnavailableException(string providerName, OrtErrorCode errorCode, string message, Exception? innerException = null)
        : base(errorCode, message, innerException)
    {
        ProviderName = providerName;
    }

    /// <summary>The provider's ONNX Runtime name, such as <c>CUDAExecutionProvider</c>.</summary>
    public string ProviderName { get; }
}

/// <summary>
/// An input given to <see cref="OnnxPredictor.Run(IReadOnlyDictionary{string, OnnxArray})"/> does not fit the model:
/// an unknown or missing name, a wrong element type, rank or dimension, or data whose length is not the
/// product of the shape. It is raised before ONNX Runtime is called.
/// </summary>
public sealed class InvalidModelInputException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="inputName">The offending input's name, or <see langword="null"/> when the problem concerns several inputs.</param>
    /// <param name="message">The full message.</param>
    public InvalidModelInputException(string? inputName, string message)
        : base(message)
    {
        InputName = inputName;
    }

    /// <summary>The offending input's name, or <see langword="null"/> when the problem concerns several inputs.</summary>
    public string? InputName { get; }
}
