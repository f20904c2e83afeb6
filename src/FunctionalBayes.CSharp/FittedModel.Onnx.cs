global using FSharpMapOfTensors = Microsoft.FSharp.Collections.FSharpMap<string, FunctionalBayes.Tensors.Tensor?>;
using FunctionalBayes.Onnx;
using FunctionalBayes.Tensors;

namespace FunctionalBayes.Fluent;

/// <summary>Settings of an ONNX export (defaults: IR 8, opset 17, float32, 1000 posterior draws).</summary>
public sealed record OnnxExportSettings
{
    /// <summary>Write float64 tensors instead of float32.</summary>
    public bool Float64 { get; init; }

    /// <summary>The ONNX IR version.</summary>
    public long IrVersion { get; init; } = 8;

    /// <summary>The ai.onnx operator set version.</summary>
    public long Opset { get; init; } = 17;

    /// <summary>Guide draws averaged into the posterior means.</summary>
    public int PosteriorDraws { get; init; } = 1000;

    /// <summary>The seed of those draws.</summary>
    public ulong Seed { get; init; } = 3;

    internal ExportOptions ToExportOptions() => ExportOptions.Default.WithFormat(IrVersion, Opset, Float64);
}

public sealed partial class FittedModel
{
    private FSharpMapOfTensors PosteriorMeans(OnnxExportSettings settings)
    {
        if (settings.PosteriorDraws < 1)
            throw new ArgumentOutOfRangeException(nameof(settings), settings.PosteriorDraws, "PosteriorDraws must be at least 1.");
        return FunctionalBayes.Posterior.mean(Core, Rng.key(settings.Seed), settings.PosteriorDraws);
    }

    /// <summary>
    /// The posterior-mean predictions that an exported ONNX model computes, named as its outputs
    /// (<c>"{site}_mean"</c>, e.g. <c>"y_mean"</c>): every latent replaced by its posterior mean, each prediction by
    /// its predictive mean; for a categorical link that is the class probabilities (shape rows × classes), as
    /// <see cref="Predict"/>'s draws are class ids. Leave the observations out of the data.
    /// </summary>
    /// <param name="data">The inputs, rows on the first axis.</param>
    /// <param name="settings">How the posterior means are estimated.</param>
    /// <returns>The predictive mean of each predicted site, by output name ("{site}_mean").</returns>
    public IReadOnlyDictionary<string, NdArray> PredictPosteriorMean(DataSet data, OnnxExportSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        var means = PosteriorMeans(settings ?? new OnnxExportSettings());
        var result = new Dictionary<string, NdArray>();
        foreach (var (site, value) in Export.predict(AsTensorPosterior().Model, means, data.ToMap()))
            result[Export.outputName(site)] = new NdArray(value);
        return result;
    }

    /// <summary>
    /// The posterior-mean predictor as an ONNX model (bytes). Its inputs are named after the data, with a
    /// symbolic batch dimension; its outputs are named "{site}_mean".
    /// </summary>
    /// <param name="example">Example inputs (observations left out), rows on the first axis.</param>
    /// <param name="settings">Export settings.</param>
    /// <returns>The serialized ONNX model.</returns>
    /// <exception cref="OnnxExportException">A layer or op of the model has no ONNX form; the message names it.</exception>
    public byte[] ExportOnnx(DataSet example, OnnxExportSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(example);
        var s = settings ?? new OnnxExportSettings();
        // each categorical input's levels go into the metadata, as the F# Export.posterior writes them
        return Export.toBytes(Export.withLevels(ModelSignatureModule.levels(Core.Signature),
            Export.toModel(s.ToExportOptions(), AsTensorPosterior().Model, PosteriorMeans(s), example.ToMap())));
    }

    /// <summary>Writes the posterior-mean predictor to an ONNX file, creating its folder (see <see cref="ExportOnnx(DataSet, OnnxExportSettings?)"/>).</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="example">Example inputs (observations left out), rows on the first axis.</param>
    /// <param name="settings">Export settings.</param>
    public void ExportOnnx(string path, DataSet example, OnnxExportSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = ExportOnnx(example, settings);
        CreateFolderOf(path);
        File.WriteAllBytes(path, bytes);
    }
}
