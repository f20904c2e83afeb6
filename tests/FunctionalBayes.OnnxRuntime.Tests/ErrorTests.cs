using DataType = Onnx.TensorProto.Types.DataType;

namespace FunctionalBayes.OnnxRuntime.Tests;

public sealed class ErrorTests
{
    private static readonly Lazy<byte[]> Model = new(() => TestModels.Tanh(DataType.Float));

    private static Dictionary<string, OnnxArray> X(OnnxArray array) => new() { ["x"] = array };

    [Fact]
    public void A_corrupt_model_file_gives_an_error_naming_the_file_and_the_reason()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fb-corrupt-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [0x08, 0x08, 0x3a, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x02, 0x03, 0x42, 0x42]);
        try
        {
            var e = Assert.Throws<OnnxRuntimeException>(() => OnnxPredictor.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("Cannot load the ONNX model", e.Message);
            Assert.NotEqual(OrtErrorCode.Ok, e.ErrorCode);
            Assert.Matches("(?i)protobuf|parse|load model", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_truncated_model_gives_a_clear_error()
    {
        var bytes = Model.Value;
        var e = Assert.Throws<OnnxRuntimeException>(() => OnnxPredictor.Load(bytes[..(bytes.Length / 2)]));
        Assert.Contains("Cannot load the ONNX model from a", e.Message);
    }

    [Fact]
    public void A_missing_model_file_names_the_path()
    {
        var path = Path.Combine(Path.GetTempPath(), "no-such-model.onnx");
        var e = Assert.Throws<FileNotFoundException>(() => OnnxPredictor.Load(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_wrong_input_name_is_named_with_the_models_inputs()
    {
        using var predictor = OnnxPredictor.Load(Model.Value);
        var e = Assert.Throws<InvalidModelInputException>(() =>
            predictor.Run(new Dictionary<string, OnnxArray> { ["z"] = OnnxArray.FromFloat32(new float[5], 1, 5) }));
        Assert.Equal("z", e.InputName);
        Assert.Contains("no input named 'z'", e.Message);
        Assert.Contains("x: float32[N, 5]", e.Message);
    }

    [Fact]
    public void A_missing_input_is_named()
    {
        using var predictor = OnnxPredictor.Load(TestModels.AddTwo(DataType.Int64));
        var e = Assert.Throws<InvalidModelInputException>(() =>
            predictor.Run(new Dictionary<string, OnnxArray> { ["a"] = OnnxArray.FromInt64([1], 1) }));
        Assert.Contains("Missing model input(s): b: int64[L]", e.Message);
    }

    [Fact]
    public void A_wrong_rank_names_the_input_and_both_shapes()
    {
        using var predictor = OnnxPredictor.Load(Model.Value);
        var e = Assert.Throws<InvalidModelInputException>(() => predictor.Run(X(OnnxArray.FromFloat32(new float[35], 7, 5, 1))));
        Assert.Equal("x", e.InputName);
        Assert.Contains("'x'", e.Message);
        Assert.Contains("[7, 5, 1]", e.Message);
        Assert.Contains("[N, 5]", e.Message);
    }

    [Fact]
    public void A_fixed_dimension_mismatch_names_the_input_and_both_shapes()
    {
        using var predictor = OnnxPredictor.Load(Model.Value);
        var e = Assert.Throws<InvalidModelInputException>(() => predictor.Run(X(OnnxArray.FromFloat32(new float[28], 7, 4))));
        Assert.Contains("Input 'x' has shape [7, 4] but the model expects shape [N, 5]: dimension 1 must be 5", e.Message);
    }

    [Fact]
    public void Inconsistent_symbolic_dimensions_are_reported()
    {
        using var predictor = OnnxPredictor.Load(TestModels.AddTwo(DataType.Int32));
        var e = Assert.Throws<InvalidModelInputException>(() => predictor.Run(new Dictionary<string, OnnxArray>
        {
            ["a"] = OnnxArray.FromInt32([1, 2, 3], 3),
            ["b"] = OnnxArray.FromInt32([1, 2], 2),
        }));
        Assert.Contains("dimensions named L must be equal", e.Message);
    }

    [Fact]
    public void An_element_type_mismatch_is_named()
    {
        using var predictor = OnnxPredictor.Load(Model.Value);
        var e = Assert.Throws<InvalidModelInputException>(() => predictor.Run(X(OnnxArray.FromFloat64(new double[5], 1, 5))));
        Assert.Contains("Input 'x' must be float32 but float64 was given", e.Message);
    }

    [Fact]
    public void Data_whose_length_is_not_the_product_of_the_shape_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => OnnxArray.FromFloat32(new float[10], 3, 5));
        Assert.Contains("10 elements", e.Message);
        Assert.Contains("[3, 5] needs 15", e.Message);

        using var predictor = OnnxPredictor.Load(Model.Value);
        var e2 = Assert.Throws<InvalidModelInputException>(() => predictor.Run("x", new float[10], [3, 5], out _));
        Assert.Contains("Input 'x'", e2.Message);
        Assert.Contains("needs 15", e2.Message);
    }

    [Fact]
    public void A_failure_inside_onnx_runtime_names_the_model_and_gives_its_reason()
    {
        var path = TestModels.WriteTemp(TestModels.ReshapeByThree());
        try
        {
            using var predictor = OnnxPredictor.Load(path);
            var ok = predictor.Run("x", new float[15], [3, 5], out var shape);
            Assert.Equal([5L, 3L], shape);
            Assert.Equal(15, ok.Length);

            var e = Assert.Throws<OnnxRuntimeException>(() => predictor.Run("x", new float[10], [2, 5], out _));
            Assert.Contains($"Running the model '{path}'", e.Message);
            Assert.Contains("Reshape", e.Message);
            Assert.NotEqual(OrtErrorCode.Ok, e.ErrorCode);
            Assert.IsType<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(e.InnerException);

            using var binding = predictor.Bind("x", OnnxArray.FromFloat32(new float[15], 3, 5));
            binding.Run();
            Assert.Equal([5L, 3L], binding.Outputs["y"].Shape);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("[ErrorCode:InvalidArgument] Got invalid dimensions", OrtErrorCode.InvalidArgument, "Got invalid dimensions")]
    [InlineData("[ErrorCode:NoSuchFile] Load model from x.onnx failed", OrtErrorCode.NoSuchFile, "Load model from x.onnx failed")]
    [InlineData("[ErrorCode:InvalidGraph] bad node", OrtErrorCode.InvalidGraph, "bad node")]
    [InlineData("[ErrorCode:ShapeInferenceNotRegistered] EP failed", OrtErrorCode.ExecutionProviderFail, "EP failed")]
    [InlineData("[ErrorCode:14] not found", OrtErrorCode.Fail, "not found")]
    [InlineData("no prefix at all", OrtErrorCode.Fail, "no prefix at all")]
    public void Onnx_runtime_error_codes_are_read_from_its_messages(string message, OrtErrorCode code, string text)
    {
        Assert.Equal((code, text), OrtRuntime.Parse(message));
    }

    [Fact]
    public void A_missing_native_package_is_explained_with_the_fix()
    {
        // The test process has the native library, so the loader's failure is given as it arrives from the managed API.
        var loaderError = new TypeInitializationException(
            "Microsoft.ML.OnnxRuntime.NativeMethods", new DllNotFoundException("Unable to load shared library 'onnxruntime'"));
        Assert.True(OrtRuntime.IsLoadFailure(loaderError));
        Assert.True(OrtRuntime.IsLoadFailure(new EntryPointNotFoundException("OrtGetApiBase")));
        Assert.False(OrtRuntime.IsLoadFailure(new InvalidOperationException("something else")));
        Assert.False(OrtRuntime.IsLoadFailure(new TypeInitializationException("T", new InvalidOperationException("x"))));

        var e = OrtRuntime.NotFound(loaderError);
        Assert.IsAssignableFrom<DllNotFoundException>(e);
        Assert.Same(loaderError, e.InnerException);
        Assert.Contains("Unable to load shared library 'onnxruntime'", e.Message);
        Assert.Contains("Microsoft.ML.OnnxRuntime 1.31.1 (CPU)", e.Message);
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu.Linux 1.31.0", e.Message);
        Assert.Contains("interop/OnnxRuntimeNative.props", e.Message);
    }

    [Fact]
    public void UseCuda_without_cuda_names_the_reason_and_the_cpu_still_works()
    {
        var e = Assert.Throws<ExecutionProviderUnavailableException>(() => OnnxPredictor.Load(Model.Value, new PredictorOptions { UseCuda = true }));
        Assert.Equal("CUDAExecutionProvider", e.ProviderName);
        Assert.NotEqual(OrtErrorCode.Ok, e.ErrorCode);
#if ONNXRUNTIME_GPU
        // the GPU package on a machine without CUDA 13 / cuDNN 9: ONNX Runtime's message names the library it missed
        Assert.Contains("The CUDA execution provider could not be loaded", e.Message);
        Assert.Matches(@"lib[\w]+\.so", e.Message);
        Assert.Contains("CUDA 13 and cuDNN 9", e.Message);
#else
        Assert.Contains("The CUDA execution provider is missing from this application's ONNX Runtime", e.Message);
        Assert.Contains("-p:OnnxRuntimeGpu=true", e.Message);
#endif
        using var cpu = OnnxPredictor.Load(Model.Value);
        Assert.False(cpu.UsesCuda);
        var y = cpu.Run("x", new float[5], [1, 5], out var shape);
        Assert.Equal([1L, 3L], shape);
        Assert.Equal((float)Math.Tanh(TestModels.B[0]), y[0], 6);
    }

    [Fact]
    public void A_negative_cuda_device_is_rejected_before_anything_is_loaded()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => OnnxPredictor.Load(Model.Value, new PredictorOptions { UseCuda = true, CudaDeviceId = -1 }));
        Assert.Contains("CudaDeviceId", e.Message);
    }

    [Fact]
    public void Negative_thread_counts_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => OnnxPredictor.Load(Model.Value, new PredictorOptions { IntraOpThreads = -1 }));
    }
}
