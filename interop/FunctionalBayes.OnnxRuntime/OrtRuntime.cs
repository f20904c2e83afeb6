using System.Text.RegularExpressions;
using Ort = Microsoft.ML.OnnxRuntime;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// The process-wide ONNX Runtime environment and the translation of ONNX Runtime's errors into this
/// library's exceptions.
/// </summary>
internal static partial class OrtRuntime
{
    /// <summary>The CPU and CUDA packages this library is built and tested against.</summary>
    internal const string PackageAdvice =
        "FunctionalBayes.OnnxRuntime references only the managed ONNX Runtime API (Microsoft.ML.OnnxRuntime.Managed); "
        + "the application must reference exactly one native package: Microsoft.ML.OnnxRuntime 1.31.1 (CPU) or "
        + "Microsoft.ML.OnnxRuntime.Gpu.Linux 1.31.0 (CUDA 13 + cuDNN 9, linux-x64). In this repository, import "
        + "interop/OnnxRuntimeNative.props in the application's project file and build with -p:OnnxRuntimeGpu=true for CUDA "
        + "(see interop/README.md).";

    private static readonly Lazy<Ort.OrtEnv> Env = new(CreateEnvironment, LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly Lazy<string[]> Providers = new(() => Environment.GetAvailableProviders());

    /// <summary>
    /// The one ONNX Runtime environment of the process (ONNX Runtime needs exactly one, created before any
    /// session). Loading the native library happens here; a missing one raises <see cref="OnnxRuntimeNotFoundException"/>.
    /// </summary>
    internal static Ort.OrtEnv Environment => Env.Value;

    /// <summary>The execution providers compiled into the application's native ONNX Runtime.</summary>
    internal static IReadOnlyList<string> AvailableProviders => Providers.Value;

    /// <summary>Whether an exception says that the native library (or one of its entry points) could not be loaded.</summary>
    internal static bool IsLoadFailure(Exception e) => e switch
    {
        DllNotFoundException or EntryPointNotFoundException or BadImageFormatException => true,
        TypeInitializationException { InnerException: { } inner } => IsLoadFailure(inner),
        _ => false,
    };

    /// <summary>The error for a native library that could not be loaded, with the fix.</summary>
    internal static OnnxRuntimeNotFoundException NotFound(Exception e) =>
        new($"The native ONNX Runtime library could not be loaded ({Innermost(e).Message}). {PackageAdvice}", e);

    /// <summary>ONNX Runtime's error as this library's exception: its error code and message, after <paramref name="context"/>.</summary>
    internal static OnnxRuntimeException Translate(Ort.OnnxRuntimeException e, string context)
    {
        var (code, text) = Parse(e.Message);
        return new OnnxRuntimeException(code, $"{context}: {text}", e);
    }

    /// <summary>
    /// Splits the managed API's message "[ErrorCode:Name] text" into the code and the text. The managed enum's
    /// names agree with <see cref="OrtErrorCode"/> up to <c>InvalidGraph</c>; its value 11 is the C API's
    /// <c>ORT_EP_FAIL</c>, which it still calls <c>ShapeInferenceNotRegistered</c>.
    /// </summary>
    internal static (OrtErrorCode Code, string Text) Parse(string message)
    {
        var match = ErrorPrefix().Match(message);
        if (!match.Success)
        {
            return (OrtErrorCode.Fail, message);
        }

        var name = match.Groups[1].Value;
        var code = name == "ShapeInferenceNotRegistered" ? OrtErrorCode.ExecutionProviderFail
            : !char.IsDigit(name[0]) && Enum.TryParse<OrtErrorCode>(name, out var parsed) ? parsed
            : OrtErrorCode.Fail;
        return (code, message[match.Length..]);
    }

    private static Ort.OrtEnv CreateEnvironment()
    {
        try
        {
            var env = Ort.OrtEnv.Instance();
            _ = env.GetVersionString();
            return env;
        }
        catch (Exception e) when (IsLoadFailure(e))
        {
            throw NotFound(e);
        }
    }

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;

    [GeneratedRegex(@"^\[ErrorCode:(\w+)\]\s*")]
    private static partial Regex ErrorPrefix();
}
