using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FunctionalBayes.OnnxRuntime.Tests;

/// <summary>Issue 28: a categorical input given by its levels, mapped by the exporter's level metadata.</summary>
public sealed class LevelsTests
{
    /// <summary>out = a + b (int64), with the levels s0, s1, s2 listed for the input a.</summary>
    private static byte[] StoreModel()
    {
        var model = ModelProto.Parser.ParseFrom(TestModels.AddTwo(DataType.Int64));
        model.MetadataProps.Add(new StringStringEntryProto { Key = OnnxPredictor.LevelsKeyPrefix + "a", Value = "[\"s0\",\"s1\",\"s2\"]" });
        return model.ToByteArray();
    }

    [Fact]
    public void Levels_become_the_ids_the_model_was_fitted_with()
    {
        using var predictor = OnnxPredictor.Load(StoreModel());
        Assert.Equal(["s0", "s1", "s2"], predictor.GetLevels("a"));
        Assert.Null(predictor.GetLevels("b"));
        var a = predictor.FromLevels("a", ["s2", "s0", "s1", "s2"]);
        Assert.Equal(OnnxElementType.Int64, a.ElementType);
        Assert.Equal([2L, 0L, 1L, 2L], a.GetData<long>());
        var output = predictor.Run(new Dictionary<string, OnnxArray> { ["a"] = a, ["b"] = OnnxArray.FromInt64([10, 20, 30, 40], 4) });
        Assert.Equal([12L, 20L, 31L, 42L], output["out"].GetData<long>());
    }

    [Fact]
    public void An_unseen_level_is_named_with_its_input_and_row()
    {
        using var predictor = OnnxPredictor.Load(StoreModel());
        var e = Assert.Throws<InvalidModelInputException>(() => predictor.FromLevels("a", ["s1", "s9"]));
        Assert.Equal("a", e.InputName);
        Assert.Contains("'s9'", e.Message);
        Assert.Contains("row 1", e.Message);
        Assert.Contains("s0, s1, s2", e.Message);
        Assert.Contains("missing level", Assert.Throws<InvalidModelInputException>(() => predictor.FromLevels("a", [null])).Message);
        // an input without levels, and no such input
        Assert.Contains("not categorical", Assert.Throws<InvalidModelInputException>(() => predictor.FromLevels("b", ["s0"])).Message);
        Assert.Contains("no input 'c'", Assert.Throws<InvalidModelInputException>(() => predictor.FromLevels("c", ["s0"])).Message);
    }
}
