using System.Runtime.InteropServices;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>A native ONNX Runtime object, released exactly once through its <c>Release*</c> function.</summary>
internal abstract class OrtHandle : SafeHandle
{
    protected OrtHandle(OrtLibrary library, IntPtr handle)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        Library = library;
        SetHandle(handle);
    }

    /// <summary>The library whose function table releases this handle.</summary>
    protected OrtLibrary Library { get; }

    /// <inheritdoc />
    public override bool IsInvalid => handle == IntPtr.Zero;
}

/// <summary>An <c>OrtEnv*</c>.</summary>
internal sealed unsafe class OrtEnvHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseEnv(handle);
        return true;
    }
}

/// <summary>An <c>OrtSessionOptions*</c>.</summary>
internal sealed unsafe class OrtSessionOptionsHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseSessionOptions(handle);
        return true;
    }
}

/// <summary>An <c>OrtSession*</c>.</summary>
internal sealed unsafe class OrtSessionHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseSession(handle);
        return true;
    }
}

/// <summary>An <c>OrtMemoryInfo*</c>.</summary>
internal sealed unsafe class OrtMemoryInfoHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseMemoryInfo(handle);
        return true;
    }
}

/// <summary>An <c>OrtValue*</c>.</summary>
internal sealed unsafe class OrtValueHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseValue(handle);
        return true;
    }
}

/// <summary>An <c>OrtTypeInfo*</c>.</summary>
internal sealed unsafe class OrtTypeInfoHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseTypeInfo(handle);
        return true;
    }
}

/// <summary>An owned <c>OrtTensorTypeAndShapeInfo*</c> (as returned by <c>GetTensorTypeAndShape</c>).</summary>
internal sealed unsafe class OrtTensorTypeAndShapeInfoHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseTensorTypeAndShapeInfo(handle);
        return true;
    }
}

/// <summary>An <c>OrtModelMetadata*</c>.</summary>
internal sealed unsafe class OrtModelMetadataHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseModelMetadata(handle);
        return true;
    }
}

/// <summary>An <c>OrtCUDAProviderOptionsV2*</c>.</summary>
internal sealed unsafe class OrtCudaProviderOptionsHandle(OrtLibrary library, IntPtr handle) : OrtHandle(library, handle)
{
    protected override bool ReleaseHandle()
    {
        Library.ReleaseCudaProviderOptions(handle);
        return true;
    }
}
