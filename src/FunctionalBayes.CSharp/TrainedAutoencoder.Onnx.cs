using FunctionalBayes.Onnx;

namespace FunctionalBayes.Fluent;

public sealed partial class TrainedAutoencoder
{
    /// <summary>
    /// The encoder as an ONNX model (bytes), in eval mode (BatchNorm uses its running statistics, Dropout is
    /// the identity). Input "x" (batch, <see cref="DataDim"/>) with a symbolic batch dimension; one output
    /// per parameter of the latent family, named by it ("loc" and "scale" for Normal, each (batch,
    /// <see cref="LatentDim"/>)), as the encoder's heads give them after their transforms.
    /// </summary>
    /// <param name="settings">IR version, opset and float64 (<see cref="OnnxExportSettings.PosteriorDraws"/>
    /// and <see cref="OnnxExportSettings.Seed"/> do not apply: the networks are exported as trained).</param>
    /// <returns>The serialized ONNX model.</returns>
    /// <exception cref="OnnxExportException">The encoder uses an op without an ONNX form, or computes on the
    /// host from the data; the message names the op.</exception>
    public byte[] ExportEncoderOnnx(OnnxExportSettings? settings = null) =>
        Export.toBytes(AutoencoderExport.encoder((settings ?? new OnnxExportSettings()).ToExportOptions(), engine, state));

    /// <summary>Writes the encoder to an ONNX file (see <see cref="ExportEncoderOnnx(OnnxExportSettings?)"/>).</summary>
    /// <param name="path">The .onnx file to write.</param>
    /// <param name="settings">IR version, opset and float64.</param>
    public void ExportEncoderOnnx(string path, OnnxExportSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        FittedModel.CreateFolderOf(path);
        File.WriteAllBytes(path, ExportEncoderOnnx(settings));
    }

    /// <summary>
    /// The decoder as an ONNX model (bytes), in eval mode. Input "z" (batch, <see cref="LatentDim"/>) with a
    /// symbolic batch dimension; output "mean" (batch, <see cref="DataDim"/>), the observation family's mean
    /// E[x | z] (sigmoid of the logits for Bernoulli, the loc for Normal, Laplace, Logistic and Student's t, NaN
    /// where Student's t has df ≤ 1),
    /// as <see cref="Decode"/> computes it.
    /// </summary>
    /// <param name="settings">IR version, opset and float64.</param>
    /// <returns>The serialized ONNX model.</returns>
    /// <exception cref="OnnxExportException">The observation family has no finite mean (the message names
    /// it), or the decoder uses an op without an ONNX form (the message names the op).</exception>
    public byte[] ExportDecoderOnnx(OnnxExportSettings? settings = null) =>
        Export.toBytes(AutoencoderExport.decoder((settings ?? new OnnxExportSettings()).ToExportOptions(), engine, state));

    /// <summary>Writes the decoder to an ONNX file (see <see cref="ExportDecoderOnnx(OnnxExportSettings?)"/>).</summary>
    /// <param name="path">The .onnx file to write.</param>
    /// <param name="settings">IR version, opset and float64.</param>
    public void ExportDecoderOnnx(string path, OnnxExportSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        FittedModel.CreateFolderOf(path);
        File.WriteAllBytes(path, ExportDecoderOnnx(settings));
    }

    /// <summary>Writes both networks to ONNX files: the encoder (input "x", outputs named by the latent
    /// family's parameters) and the decoder (input "z", output "mean"). Load them with
    /// <c>OnnxModels.Load</c> (package FunctionalBayes.CSharp.OnnxRuntime).</summary>
    /// <param name="encoderPath">The encoder's .onnx file.</param>
    /// <param name="decoderPath">The decoder's .onnx file.</param>
    /// <param name="settings">IR version, opset and float64.</param>
    public void ExportOnnx(string encoderPath, string decoderPath, OnnxExportSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(encoderPath);
        ArgumentNullException.ThrowIfNull(decoderPath);
        // both are built before either file is written, so a refused decoder leaves no half export behind
        var encoder = ExportEncoderOnnx(settings);
        var decoder = ExportDecoderOnnx(settings);
        FittedModel.CreateFolderOf(encoderPath);
        FittedModel.CreateFolderOf(decoderPath);
        File.WriteAllBytes(encoderPath, encoder);
        File.WriteAllBytes(decoderPath, decoder);
    }
}
