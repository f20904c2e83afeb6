using System.Runtime.InteropServices;
using System.Text;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// One loaded copy of the native ONNX Runtime library: its <c>OrtApi</c> function table and its
/// process-wide <c>OrtEnv</c>.
/// </summary>
/// <remarks>
/// ONNX Runtime requires exactly one <c>OrtEnv</c> per process, created before any session or execution
/// provider (it owns the default logger and the global state). It is therefore created once per loaded
/// library, lazily and under a lock, and kept for the life of the process. The function table is
/// immutable after construction, so an instance is safe to share between threads.
/// </remarks>
internal sealed unsafe class OrtLibrary
{
    /// <summary>The file name of the library that the build copies next to the assembly.</summary>
    public const string LibraryFileName = "libonnxruntime.so.1";

    /// <summary>The environment variable that overrides the library path.</summary>
    public const string LibraryEnvironmentVariable = "FUNCTIONALBAYES_ORT_LIBRARY";

    /// <summary>
    /// The C API version requested from <c>OrtGetApiBase()->GetApi</c>. Every index used here exists from
    /// this version on; newer libraries keep serving older versions (the table only grows at the end).
    /// </summary>
    private const uint OrtApiVersion = 16;

    private const int OrtLoggingLevelError = 3;

    private static readonly object Gate = new();
    private static readonly Dictionary<string, OrtLibrary> Loaded = new(StringComparer.Ordinal);

    // ---- the OrtApi function pointers (index in the table in the comment) ----
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, OrtErrorCode> GetErrorCode;                                   // 1
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr> GetErrorMessage;                                      // 2
    private readonly delegate* unmanaged[Cdecl]<int, byte*, IntPtr*, IntPtr> createEnv;                                 // 3
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, IntPtr, IntPtr*, IntPtr> CreateSession;                // 7
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void*, nuint, IntPtr, IntPtr*, IntPtr> CreateSessionFromArray;// 8
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr*, nuint, IntPtr*, nuint, IntPtr*, IntPtr> Run; // 9
    internal readonly delegate* unmanaged[Cdecl]<IntPtr*, IntPtr> CreateSessionOptions;                                // 10
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr> SetSessionGraphOptimizationLevel;               // 23
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr> SetIntraOpNumThreads;                           // 24
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr> SetInterOpNumThreads;                           // 25
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr> SessionGetInputCount;                        // 30
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr> SessionGetOutputCount;                       // 31
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr*, IntPtr> SessionGetInputTypeInfo;             // 33
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr*, IntPtr> SessionGetOutputTypeInfo;            // 34
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr, IntPtr*, IntPtr> SessionGetInputName;         // 36
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr, IntPtr*, IntPtr> SessionGetOutputName;        // 37
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void*, nuint, long*, nuint, int, IntPtr*, IntPtr> CreateTensorWithDataAsOrtValue; // 49
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void**, IntPtr> GetTensorMutableData;                        // 51
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr> CastTypeInfoToTensorInfo;                   // 55
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int*, IntPtr> GetOnnxTypeFromTypeInfo;                       // 56
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int*, IntPtr> GetTensorElementType;                          // 60
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr> GetDimensionsCount;                          // 61
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, long*, nuint, IntPtr> GetDimensions;                        // 62
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, nuint, IntPtr> GetSymbolicDimensions;              // 63
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr> GetTensorShapeElementCount;                  // 64
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr> GetTensorTypeAndShape;                      // 65
    private readonly delegate* unmanaged[Cdecl]<int, int, IntPtr*, IntPtr> createCpuMemoryInfo;                       // 69
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr> AllocatorFree;                               // 76
    private readonly delegate* unmanaged[Cdecl]<IntPtr*, IntPtr> getAllocatorWithDefaultOptions;                      // 78
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseEnv;                                            // 92
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseStatus;                                         // 93
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseMemoryInfo;                                     // 94
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseSession;                                        // 95
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseValue;                                          // 96
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseTypeInfo;                                       // 98
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseTensorTypeAndShapeInfo;                         // 99
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseSessionOptions;                                 // 100
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr> SessionGetModelMetadata;                    // 111
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr> ModelMetadataGetProducerName;       // 112
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr> ModelMetadataGetGraphName;          // 113
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr> ModelMetadataGetDomain;             // 114
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr> ModelMetadataGetDescription;        // 115
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, byte*, IntPtr*, IntPtr> ModelMetadataLookupCustomMetadataMap; // 116
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, long*, IntPtr> ModelMetadataGetVersion;                      // 117
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseModelMetadata;                                  // 118
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, long*, IntPtr> ModelMetadataGetCustomMetadataMapKeys; // 123
    private readonly delegate* unmanaged[Cdecl]<IntPtr*, int*, IntPtr> getAvailableProviders;                         // 125
    private readonly delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr> releaseAvailableProviders;                       // 126
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr> SessionOptionsAppendExecutionProviderCudaV2; // 204
    internal readonly delegate* unmanaged[Cdecl]<IntPtr*, IntPtr> CreateCudaProviderOptions;                          // 205
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr*, nuint, IntPtr> UpdateCudaProviderOptions;  // 206
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> ReleaseCudaProviderOptions;                            // 208

    private OrtLibrary(string path, IntPtr module)
    {
        LibraryPath = path;
        var getApiBase = (delegate* unmanaged[Cdecl]<IntPtr>)NativeLibrary.GetExport(module, "OrtGetApiBase");
        var apiBase = (IntPtr*)getApiBase();
        if (apiBase == null)
        {
            throw new OnnxRuntimeException(OrtErrorCode.Fail, $"OrtGetApiBase() returned NULL in '{path}'.");
        }

        var getApi = (delegate* unmanaged[Cdecl]<uint, IntPtr>)apiBase[0];
        var getVersionString = (delegate* unmanaged[Cdecl]<IntPtr>)apiBase[1];
        Version = Marshal.PtrToStringUTF8(getVersionString()) ?? "unknown";
        var api = (IntPtr*)getApi(OrtApiVersion);
        if (api == null)
        {
            throw new OnnxRuntimeException(
                OrtErrorCode.NotImplemented,
                $"The ONNX Runtime library '{path}' (version {Version}) does not provide C API version {OrtApiVersion}; ONNX Runtime 1.{OrtApiVersion} or newer is required.");
        }

        GetErrorCode = (delegate* unmanaged[Cdecl]<IntPtr, OrtErrorCode>)api[1];
        GetErrorMessage = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr>)api[2];
        createEnv = (delegate* unmanaged[Cdecl]<int, byte*, IntPtr*, IntPtr>)api[3];
        CreateSession = (delegate* unmanaged[Cdecl]<IntPtr, byte*, IntPtr, IntPtr*, IntPtr>)api[7];
        CreateSessionFromArray = (delegate* unmanaged[Cdecl]<IntPtr, void*, nuint, IntPtr, IntPtr*, IntPtr>)api[8];
        Run = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr*, nuint, IntPtr*, nuint, IntPtr*, IntPtr>)api[9];
        CreateSessionOptions = (delegate* unmanaged[Cdecl]<IntPtr*, IntPtr>)api[10];
        SetSessionGraphOptimizationLevel = (delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr>)api[23];
        SetIntraOpNumThreads = (delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr>)api[24];
        SetInterOpNumThreads = (delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr>)api[25];
        SessionGetInputCount = (delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr>)api[30];
        SessionGetOutputCount = (delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr>)api[31];
        SessionGetInputTypeInfo = (delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr*, IntPtr>)api[33];
        SessionGetOutputTypeInfo = (delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr*, IntPtr>)api[34];
        SessionGetInputName = (delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr, IntPtr*, IntPtr>)api[36];
        SessionGetOutputName = (delegate* unmanaged[Cdecl]<IntPtr, nuint, IntPtr, IntPtr*, IntPtr>)api[37];
        CreateTensorWithDataAsOrtValue = (delegate* unmanaged[Cdecl]<IntPtr, void*, nuint, long*, nuint, int, IntPtr*, IntPtr>)api[49];
        GetTensorMutableData = (delegate* unmanaged[Cdecl]<IntPtr, void**, IntPtr>)api[51];
        CastTypeInfoToTensorInfo = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr>)api[55];
        GetOnnxTypeFromTypeInfo = (delegate* unmanaged[Cdecl]<IntPtr, int*, IntPtr>)api[56];
        GetTensorElementType = (delegate* unmanaged[Cdecl]<IntPtr, int*, IntPtr>)api[60];
        GetDimensionsCount = (delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr>)api[61];
        GetDimensions = (delegate* unmanaged[Cdecl]<IntPtr, long*, nuint, IntPtr>)api[62];
        GetSymbolicDimensions = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, nuint, IntPtr>)api[63];
        GetTensorShapeElementCount = (delegate* unmanaged[Cdecl]<IntPtr, nuint*, IntPtr>)api[64];
        GetTensorTypeAndShape = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr>)api[65];
        createCpuMemoryInfo = (delegate* unmanaged[Cdecl]<int, int, IntPtr*, IntPtr>)api[69];
        AllocatorFree = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr>)api[76];
        getAllocatorWithDefaultOptions = (delegate* unmanaged[Cdecl]<IntPtr*, IntPtr>)api[78];
        ReleaseEnv = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[92];
        ReleaseStatus = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[93];
        ReleaseMemoryInfo = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[94];
        ReleaseSession = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[95];
        ReleaseValue = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[96];
        ReleaseTypeInfo = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[98];
        ReleaseTensorTypeAndShapeInfo = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[99];
        ReleaseSessionOptions = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[100];
        SessionGetModelMetadata = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr>)api[111];
        ModelMetadataGetProducerName = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr>)api[112];
        ModelMetadataGetGraphName = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr>)api[113];
        ModelMetadataGetDomain = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr>)api[114];
        ModelMetadataGetDescription = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, IntPtr>)api[115];
        ModelMetadataLookupCustomMetadataMap = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, byte*, IntPtr*, IntPtr>)api[116];
        ModelMetadataGetVersion = (delegate* unmanaged[Cdecl]<IntPtr, long*, IntPtr>)api[117];
        ReleaseModelMetadata = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[118];
        ModelMetadataGetCustomMetadataMapKeys = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr*, long*, IntPtr>)api[123];
        getAvailableProviders = (delegate* unmanaged[Cdecl]<IntPtr*, int*, IntPtr>)api[125];
        releaseAvailableProviders = (delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr>)api[126];
        SessionOptionsAppendExecutionProviderCudaV2 = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr>)api[204];
        CreateCudaProviderOptions = (delegate* unmanaged[Cdecl]<IntPtr*, IntPtr>)api[205];
        UpdateCudaProviderOptions = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr*, IntPtr*, nuint, IntPtr>)api[206];
        ReleaseCudaProviderOptions = (delegate* unmanaged[Cdecl]<IntPtr, void>)api[208];

        // The env must exist before any session is created or any execution provider is appended.
        IntPtr env;
        fixed (byte* logId = "FunctionalBayes\0"u8)
        {
            Check(createEnv(OrtLoggingLevelError, logId, &env), "CreateEnv");
        }

        Env = new OrtEnvHandle(this, env);

        IntPtr allocator;
        Check(getAllocatorWithDefaultOptions(&allocator), "GetAllocatorWithDefaultOptions");
        DefaultAllocator = allocator;

        IntPtr memoryInfo;
        Check(createCpuMemoryInfo(1 /* OrtArenaAllocator */, 0 /* OrtMemTypeDefault */, &memoryInfo), "CreateCpuMemoryInfo");
        CpuMemoryInfo = new OrtMemoryInfoHandle(this, memoryInfo);

        AvailableProviders = ReadAvailableProviders();
    }

    /// <summary>The full path the library was loaded from.</summary>
    public string LibraryPath { get; }

    /// <summary>The version string reported by the library, such as "1.30.0".</summary>
    public string Version { get; }

    /// <summary>The process-wide environment. Never released before the process exits.</summary>
    public OrtEnvHandle Env { get; }

    /// <summary>ORT's default CPU allocator, a singleton that must not be released.</summary>
    public IntPtr DefaultAllocator { get; }

    /// <summary>The CPU memory description used for every input tensor. Read-only, shared by all threads.</summary>
    public OrtMemoryInfoHandle CpuMemoryInfo { get; }

    /// <summary>The execution providers compiled into this build, as reported by <c>GetAvailableProviders</c>.</summary>
    public IReadOnlyList<string> AvailableProviders { get; }

    /// <summary>
    /// Resolves the library path (the explicit path, else <c>FUNCTIONALBAYES_ORT_LIBRARY</c>, else
    /// <c>libonnxruntime.so.1</c> next to the application) and returns the library loaded from it,
    /// loading it on first use.
    /// </summary>
    public static OrtLibrary Get(string? explicitPath)
    {
        string source;
        string path;
        if (!string.IsNullOrEmpty(explicitPath))
        {
            (path, source) = (explicitPath, "PredictorOptions.LibraryPath");
        }
        else if (Environment.GetEnvironmentVariable(LibraryEnvironmentVariable) is { Length: > 0 } fromEnv)
        {
            (path, source) = (fromEnv, $"the environment variable {LibraryEnvironmentVariable}");
        }
        else
        {
            (path, source) = (Path.Combine(AppContext.BaseDirectory, LibraryFileName), "the default location next to the application");
        }

        path = Path.GetFullPath(path);
        lock (Gate)
        {
            if (Loaded.TryGetValue(path, out var loaded))
            {
                return loaded;
            }

            if (!File.Exists(path))
            {
                throw new OnnxRuntimeNotFoundException(path, NotFoundMessage(path, source, "the file does not exist"));
            }

            IntPtr module;
            try
            {
                module = NativeLibrary.Load(path);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                throw new OnnxRuntimeNotFoundException(path, NotFoundMessage(path, source, $"it could not be loaded ({e.Message})"), e);
            }

            var library = new OrtLibrary(path, module);
            Loaded.Add(path, library);
            return library;
        }
    }

    private static string NotFoundMessage(string path, string source, string reason) =>
        $"The ONNX Runtime native library was not found at '{path}' (taken from {source}): {reason}. "
        + $"Build the FunctionalBayes.OnnxRuntime project (its build installs the npm package onnxruntime-node with "
        + $"'npm ci --ignore-scripts' in interop/native and copies {LibraryFileName} next to the assembly), "
        + $"or set the environment variable {LibraryEnvironmentVariable} (or PredictorOptions.LibraryPath) "
        + $"to the full path of an ONNX Runtime {LibraryFileName}.";

    /// <summary>Throws <see cref="OnnxRuntimeException"/> for a non-NULL status, after releasing it.</summary>
    /// <param name="status">The returned <c>OrtStatus*</c>.</param>
    /// <param name="context">What was being done, prefixed to the message.</param>
    public void Check(IntPtr status, string context)
    {
        if (status != IntPtr.Zero)
        {
            throw ToException(status, context);
        }
    }

    /// <summary>Converts a non-NULL status to an exception and releases the status.</summary>
    public OnnxRuntimeException ToException(IntPtr status, string context)
    {
        try
        {
            var code = GetErrorCode(status);
            var message = Marshal.PtrToStringUTF8(GetErrorMessage(status)) ?? "(no message)";
            return new OnnxRuntimeException(code, $"{context}: {message} (ONNX Runtime error {(int)code} {code})");
        }
        finally
        {
            ReleaseStatus(status);
        }
    }

    /// <summary>Copies a UTF-8 string allocated by <see cref="DefaultAllocator"/> and frees it.</summary>
    public string TakeAllocatedString(IntPtr value)
    {
        try
        {
            return Marshal.PtrToStringUTF8(value) ?? string.Empty;
        }
        finally
        {
            if (value != IntPtr.Zero)
            {
                Check(AllocatorFree(DefaultAllocator, value), "AllocatorFree");
            }
        }
    }

    /// <summary>Encodes a string as NUL-terminated UTF-8.</summary>
    public static byte[] Utf8z(string value)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }

    private IReadOnlyList<string> ReadAvailableProviders()
    {
        IntPtr names;
        int count;
        Check(getAvailableProviders(&names, &count), "GetAvailableProviders");
        try
        {
            var result = new string[count];
            for (var i = 0; i < count; i++)
            {
                result[i] = Marshal.PtrToStringUTF8(((IntPtr*)names)[i]) ?? string.Empty;
            }

            return result;
        }
        finally
        {
            Check(releaseAvailableProviders(names, count), "ReleaseAvailableProviders");
        }
    }
}
