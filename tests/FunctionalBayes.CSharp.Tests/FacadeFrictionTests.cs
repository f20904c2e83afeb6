using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>What a new C# user hit (issue 25), one test each: one Load, one output naming, data sets straight into
/// ONNX Runtime, site and element names, a printable summary, messages in the facade's terms, folders created,
/// VAE losses per row, guessable names and initializers.</summary>
public class FacadeFrictionTests
{
    private static string NewFolder() => Path.Combine(Path.GetTempPath(), $"fb-friction-{Guid.NewGuid():N}", "a", "b");

    [Fact]
    public void OneLoadReadsAGuideOrADrawsFileIntoNewFoldersToo()
    {
        var data = TestData.Linear(60);
        var folder = NewFolder();
        try
        {
            var svi = new SviFitter(TestData.LinearModel, data).ForSteps(50).WithSeed(3).Fit();
            var nuts = new NutsSampler(TestData.LinearModel, data).WithChains(1).WithWarmup(60).WithSamples(40).WithSeed(3).Sample();
            // Save creates the folder (it did not: DirectoryNotFoundException)
            svi.Save(Path.Combine(folder, "svi.json"));
            nuts.Save(Path.Combine(folder, "nuts.json"));

            var svi2 = FittedModel.Load(Path.Combine(folder, "svi.json"), TestData.LinearModel, data);
            var nuts2 = FittedModel.Load(Path.Combine(folder, "nuts.json"), TestData.LinearModel, data);
            Assert.False(svi2.IsSampled);
            Assert.True(nuts2.IsSampled);
            Assert.Equal(svi.Parameters.Keys, svi2.Parameters.Keys);
            foreach (var (k, v) in svi.Parameters) Assert.Equal(v.ToArray(), svi2.Parameters[k].ToArray());
            Assert.Equal(nuts.Posterior()["AdaptiveLayer_x_beta"].ToArray(), nuts2.Posterior()["AdaptiveLayer_x_beta"].ToArray());
            // a file of another model is refused, naming what differs
            var other = Assert.Throws<InvalidDataException>(() => FittedModel.Load(Path.Combine(folder, "nuts.json"),
                d => from mu in Layer.Adaptive().Apply("z", d["x"]) from y in Link.Gaussian("y", mu, d.GetOrNull("y")) select y, data));
            Assert.Contains("AdaptiveLayer_", other.Message);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(folder))!, recursive: true);
        }
    }

    private static DataSet TwoInputs(int n, bool withY)
    {
        var keys = RandomKey.FromSeed(11UL).Split(2);
        var x = keys[0].Normal(n, 2);
        var ids = NdArray.FromArray(Enumerable.Range(0, n).Select(i => i % 4).ToArray());
        var d = new DataSet { ["x"] = x, ["ids"] = ids };
        if (withY) d.Add("y", NdArray.FromArray(Enumerable.Range(0, n).Select(i => (i + i / 7) % 3).ToArray()));
        return d;
    }

    private static BayesModel<NdArray> Classes(DataSet d) =>
        from lin in Layer.Adaptive().Apply("x", d["x"], units: 3)
        from county in Layer.RandomEffects().Apply("county", d["ids"], numCategories: 4)
        from y in Link.Categorical("y", lin + county, d.GetOrNull("y"))
        select y;

    [Fact]
    public void PosteriorMeanAndOnnxShareNamesAndMeaningAndADataSetRunsTheExportedModel()
    {
        var fitted = new SviFitter(Classes, TwoInputs(120, withY: true)).ForSteps(100).WithSeed(2).Fit();
        var rows = TwoInputs(9, withY: false);
        var folder = NewFolder();
        var path = Path.Combine(folder, "classes.onnx");
        try
        {
            fitted.ExportOnnx(path, rows);   // creates the folder
            var inProcess = fitted.PredictPosteriorMean(rows);
            using var predictor = OnnxModels.Load(path);
            Assert.Equal(predictor.Outputs.Select(o => o.Name), inProcess.Keys);
            Assert.Equal(["y_mean"], inProcess.Keys);

            // a float input and an int input, from the data set in one call
            var fromOnnx = predictor.Run(rows);
            var p = inProcess["y_mean"];
            Assert.Equal([9, 3], p.Shape);
            Assert.Equal(p.Shape, fromOnnx["y_mean"].Shape);
            var a = p.ToArray();
            var b = fromOnnx["y_mean"].ToArray();
            for (var i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 1e-5, $"element {i}: {a[i]} vs {b[i]}");
            // class probabilities, not a mean class id: each row sums to 1
            var m = p.ToMatrix();
            for (var r = 0; r < 9; r++) Assert.Equal(1.0, m[r, 0] + m[r, 1] + m[r, 2], 6);

            // the long[] shape of an ONNX input, from an NdArray
            Assert.Equal(new long[] { 9, 2 }, rows["x"].ToOnnxArray(FunctionalBayes.OnnxRuntime.OnnxElementType.Float32).GetShape());
            var missing = Assert.Throws<ArgumentException>(() => predictor.Run(new DataSet { ["x"] = rows["x"] }));
            Assert.Contains("'ids'", missing.Message);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(folder))!, recursive: true);
        }
    }

    [Fact]
    public void SummaryPrintsTheCoreTableWithTheWarningsElementNames()
    {
        var data = TestData.Linear(60);
        var fitted = new SviFitter(d => from mu in Layer.Adaptive().Apply("x", d["x"], units: 2)
                                        from y in Link.Gaussian("y", mu.Sum(1), d.GetOrNull("y"))
                                        select y, data).ForSteps(30).Fit();
        var summary = fitted.Summary(samples: 50);
        var beta = summary["AdaptiveLayer_x_beta"];
        Assert.Equal([1, 2], beta.Shape);
        // one index per axis, as the F# summary and the sampler's warnings name elements
        Assert.Equal("AdaptiveLayer_x_beta[0,1]", beta.Label(1));
        var text = summary.ToString();
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("parameter", lines[0]);
        Assert.Contains("r_hat", lines[0]);
        Assert.Equal(1 + summary.Sum(s => s.Mean.Count), lines.Length);
        Assert.Contains(lines, l => l.StartsWith("AdaptiveLayer_x_beta[0,1] "));
        var written = new StringWriter();
        summary.Print(written);
        Assert.Equal(text, written.ToString());
        Assert.Contains("AdaptiveLayer_x_beta[0,1] ", beta.ToString());
        Assert.Throws<KeyNotFoundException>(() => summary["nope"]);
        // the summary's collections are read-only views: a caller cannot change the numbers under another
        Assert.Throws<NotSupportedException>(() => ((IList<double>)beta.Mean)[0] = 1.0);
        Assert.Throws<NotSupportedException>(() => ((IList<int>)beta.Shape)[0] = 3);
    }

    [Fact]
    public void MessagesUseTheFacadesNames()
    {
        Assert.StartsWith("NdArray(", NdArray.FromArray([1.0, 2.0]).ToString());
        // category ids are "ids", not the core's "x"
        var e = Assert.ThrowsAny<ArgumentException>(() => Layer.RandomEffects().Apply("county", NdArray.Zeros(3, 2), numCategories: 4).Trace());
        Assert.Equal("ids", e.ParamName);
        Assert.DoesNotContain(" x ", e.Message);
        // a diverging fit names the facade's setting and property
        var data = TestData.Linear(40);
        var div = Assert.Throws<FitDivergedException>(() =>
            new SviFitter(TestData.LinearModel, data).WithLearningRate(1e30, LearningRateSchedule.Constant).ForSteps(50).Fit());
        Assert.DoesNotContain("ClipNorm", div.Message);
        Assert.DoesNotContain("LastFiniteState", div.Message);
    }

    [Fact]
    public void VaeLossesArePerRowAsTheElboAndItsDivergenceIsTheFacadesException()
    {
        var data = TestData.BinaryData(200);
        var vae = new AevbTrainer(dataDim: 6, latentDim: 2).WithEncoderMlp(16).WithDecoderMlp(16)
            .WithLearningRate(0.01).ForEpochs(20, batchSize: 64).WithSeed(1).Train(data);
        // 200 rows in batches of 64: the fourth batch of each epoch has 8 rows, and its loss is per row like the others
        var lastEpoch = vae.Losses.Skip(vae.Losses.Count - 4).ToArray();
        var negElbo = -vae.Elbo(data, seed: 5);
        Assert.All(lastEpoch, l => Assert.InRange(l, 0.5 * negElbo, 1.5 * negElbo));
        Assert.Throws<FitDivergedException>(() => new AevbTrainer(dataDim: 6, latentDim: 2).WithLearningRate(1e30)
            .ForEpochs(5, batchSize: 50).Train(data));
    }

    [Fact]
    public void GuessableNamesAndInitializers()
    {
        Assert.Equal(GuideKind.AutoMultivariateNormal, GuideKind.MultivariateNormal);
        Assert.Equal(GuideKind.AutoNormal, GuideKind.Normal);
        var x = NdArray.Zeros(4, 2);
        var y = NdArray.Zeros(4);
        var a = new DataSet { ["x"] = x, ["y"] = y };
        var b = new DataSet { { "x", x }, { "y", y } };
        Assert.Equal(["x", "y"], a.Keys);
        Assert.Equal(["x", "y"], b.Keys);
        Assert.Equal(4, a.Rows);
        Assert.Throws<ArgumentException>(() => new DataSet { ["x"] = x, ["y"] = NdArray.Zeros(5) });
        // the alias selects the same guide
        var data = TestData.Linear(30);
        var f = new SviFitter(TestData.LinearModel, data).WithGuide(GuideKind.MultivariateNormal).ForSteps(5).Fit();
        Assert.Equal("AutoMultivariateNormal", f.GuideName);
    }
}
