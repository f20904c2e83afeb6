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
    public void A_missing_native_library_says_where_it_looked_and_how_to_fix_it()
    {
        var path = Path.Combine(Path.GetTempPath(), "nowhere", "libonnxruntime.so.1");
        var e = Assert.Throws<OnnxRuntimeNotFoundException>(() => OnnxPredictor.Load(Model.Value, new PredictorOptions { LibraryPath = path }));
        Assert.Equal(path, e.LibraryPath);
        Assert.Contains(path, e.Message);
        Assert.Contains("FUNCTIONALBAYES_ORT_LIBRARY", e.Message);
        Assert.Contains("npm", e.Message);
        Assert.IsAssignableFrom<DllNotFoundException>(e);
    }

    [Fact]
    public void A_file_that_is_not_a_library_gives_the_not_found_error()
    {
        var path = TestModels.WriteTemp([1, 2, 3]);
        try
        {
            var e = Assert.Throws<OnnxRuntimeNotFoundException>(() => OnnxPredictor.Load(Model.Value, new PredictorOptions { LibraryPath = path }));
            Assert.Contains("could not be loaded", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void UseCuda_on_the_npm_build_says_the_cuda_provider_is_missing()
    {
        var e = Assert.Throws<ExecutionProviderUnavailableException>(() => OnnxPredictor.Load(Model.Value, new PredictorOptions { UseCuda = true }));
        Assert.Equal("CUDAExecutionProvider", e.ProviderName);
        Assert.Contains("The CUDA execution provider is missing from this ONNX Runtime build", e.Message);
        Assert.Contains("onnxruntime-node", e.Message);
    }

    [Fact]
    public void Negative_thread_counts_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => OnnxPredictor.Load(Model.Value, new PredictorOptions { IntraOpThreads = -1 }));
    }
}
