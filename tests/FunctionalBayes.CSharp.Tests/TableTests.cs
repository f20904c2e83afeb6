using System.Data.Common;
using System.Globalization;
using FunctionalBayes.Fluent;
using FunctionalBayes.Tables;
using Microsoft.Data.Sqlite;

namespace FunctionalBayes.CSharp.Tests;

public class TableTests
{
    private static string TempFile(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "fb-cs-tables-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    private static BayesModel<NdArray> Line(DataSet data) =>
        from b in Layer.Intercept().Apply("b")
        from lin in Layer.Adaptive().Apply("x", data["x"])
        from y in Link.Gaussian("y", b + lin, data.GetOrNull("y"))
        select y;

    /// <summary>1,000 rows of y = 2 x1 − x2 + 1 + 0.5 ε with a store column, as CSV.</summary>
    private static string WriteCsv()
    {
        var path = TempFile("line.csv");
        var rng = new Random(5);
        using var w = new StreamWriter(path);
        w.WriteLine("x1,x2,store,y");
        for (var i = 0; i < 1000; i++)
        {
            double x1 = rng.NextDouble() * 4 - 2, x2 = rng.NextDouble() * 4 - 2;
            var e = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{x1},{x2},s{i % 3},{2 * x1 - x2 + 1 + 0.5 * e}"));
        }
        return path;
    }

    private static TableColumns Columns() =>
        new TableColumns().Double("x1").Double("x2").Categorical("store").Double("y").Matrix("x", "x1", "x2");

    [Fact]
    public void FromCsvReadsColumnsWithTheirVocabulary()
    {
        var data = DataSet.FromCsv(WriteCsv(), Columns());
        Assert.Equal(1000, data.Rows);
        Assert.Equal(new[] { 1000, 2 }, data["x"].Shape);
        Assert.Equal(new[] { "s0", "s1", "s2" }, data.Vocabularies["store"]);
        Assert.Equal(new[] { 0, 1, 2, 0 }, data["store"].ToIntArray().Take(4));
        var e = Assert.Throws<TableReadException>(() => DataSet.FromCsv(WriteCsv(), new TableColumns().Categorical("store", new[] { "s0", "s1" })));
        Assert.Equal(3, e.Row);
        Assert.Contains("'s2'", e.Message);
    }

    /// <summary>Issue 28: the vocabulary of a categorical column stays with the fit, its file and its ONNX export.</summary>
    [Fact]
    public void TheVocabularyTravelsWithTheFittedModel()
    {
        var data = DataSet.FromCsv(WriteCsv(), Columns());
        var fitter = new SviFitter(StoreLine, data).ForSteps(30).WithSeed(1);
        var fitted = fitter.Fit();
        Assert.Equal(new[] { "s0", "s1", "s2" }, fitted.Vocabularies["store"]);
        var path = TempFile("store-posterior.json");
        fitted.Save(path);
        var loaded = fitter.Load(path);
        Assert.Equal(new[] { "s0", "s1", "s2" }, loaded.Vocabularies["store"]);
        // rows for prediction read with the fit's vocabulary: s2 is id 2 whatever the file's order; an unseen level is named
        var fresh = TempFile("store-new.csv");
        File.WriteAllText(fresh, "x1,x2,store\n0,0,s2\n1,1,s0\n2,2,s9\n");
        var columns = new TableColumns().Double("x1").Double("x2").Categorical("store", loaded.Vocabularies["store"]).Matrix("x", "x1", "x2");
        var e = Assert.Throws<TableReadException>(() => DataSet.FromCsv(fresh, columns));
        Assert.Equal(3, e.Row);
        Assert.Contains("'s9'", e.Message);
        var known = DataSet.FromCsv(fresh, columns.UnseenAs("s1"));
        Assert.Equal(new[] { 2, 0, 1 }, known["store"].ToIntArray());
        // the exported model lists the levels of its categorical input
        var bytes = fitted.ExportOnnx(new DataSet().Add("x", known["x"]).Add("store", known["store"]));
        var meta = global::Onnx.ModelProto.Parser.ParseFrom(bytes).MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("[\"s0\",\"s1\",\"s2\"]", meta["functionalbayes.levels.store"]);
    }

    private static BayesModel<NdArray> StoreLine(DataSet data) =>
        from b in Layer.Intercept().Apply("b")
        from lin in Layer.Adaptive().Apply("x", data["x"])
        from re in Layer.RandomEffects().Apply("store", data["store"], numCategories: 3)
        from y in Link.Gaussian("y", (b + lin).Flatten() + re.Flatten(), data.GetOrNull("y"))
        select y;

    [Fact]
    public void FromDataReaderReadsASqlQuery()
    {
        var db = TempFile("cs.db");
        if (File.Exists(db)) File.Delete(db);
        using var c = new SqliteConnection($"Data Source={db};Pooling=False");
        c.Open();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "CREATE TABLE t (k INTEGER, g TEXT); INSERT INTO t VALUES (4, 'b'), (5, 'a');";
            cmd.ExecuteNonQuery();
        }
        using var q = c.CreateCommand();
        q.CommandText = "SELECT k, g FROM t ORDER BY k";
        var data = DataSet.FromDataReader(q.ExecuteReader(), new TableColumns().Integer("k").Categorical("g"), "t query");
        Assert.Equal(new[] { 4, 5 }, data["k"].ToIntArray());
        Assert.Equal(new[] { 1, 0 }, data["g"].ToIntArray());
        Assert.Equal(new[] { "a", "b" }, data.Vocabularies["g"]);
    }

    [Fact]
    public void AStreamedCsvFitAgreesWithTheInMemoryFit()
    {
        var path = WriteCsv();
        var stream = DataSet.StreamCsv(path, Columns(), bufferRows: 256);
        Assert.Equal(1000, stream.Rows);
        FittedModel Fit(SviFitter f) => f.WithLearningRate(0.05, LearningRateSchedule.WarmupCosine).ForEpochs(30, batchSize: 100).WithSeed(1).Fit();
        var streamed = Fit(SviFitter.FromStream(Line, stream));
        var inMemory = Fit(new SviFitter(Line, DataSet.FromCsv(path, Columns())));
        IReadOnlyList<double> Beta(FittedModel m) => m.Summary(samples: 500, seed: 2).Single(s => s.Name == "AdaptiveLayer_x_beta").Mean;
        // posterior sd of each coefficient ≈ 0.5 / sqrt(1000 · 4/3) ≈ 0.014; both fits within 0.06 (4 sds) of each other and of the truth
        foreach (var (a, b, t) in Beta(streamed).Zip(Beta(inMemory), new[] { 2.0, -1.0 }))
        {
            Assert.True(Math.Abs(a - b) < 0.06, $"streamed {a}, in memory {b}");
            Assert.True(Math.Abs(a - t) < 0.06, $"streamed {a}, truth {t}");
        }
    }
    /// <summary>600 rows of 6 binary pixels: two prototypes with 10% of the pixels flipped, as CSV.</summary>
    private static string WritePixels()
    {
        var path = TempFile("pixels.csv");
        var rng = new Random(8);
        int[][] prototypes = [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]];
        using var w = new StreamWriter(path);
        w.WriteLine("p0,p1,p2,p3,p4,p5");
        for (var i = 0; i < 600; i++)
            w.WriteLine(string.Join(",", prototypes[i % 2].Select(v => rng.NextDouble() < 0.1 ? 1 - v : v)));
        return path;
    }

    /// <summary>Issue 25/28: AEVB trains from a streamed table in C# too: deterministic from the seed, it learns, and
    /// a missing column is named.</summary>
    [Fact]
    public void AnAutoencoderTrainsOnAStreamedTable()
    {
        var names = Enumerable.Range(0, 6).Select(i => "p" + i).ToArray();
        var columns = new TableColumns();
        foreach (var n in names) columns.Double(n);
        columns.Matrix("x", names);
        var path = WritePixels();
        var trainer = new AevbTrainer(dataDim: 6, latentDim: 2).WithEncoderMlp(8).WithDecoderMlp(8)
            .WithLearningRate(2e-2).ForEpochs(30, batchSize: 50).WithSeed(3).WithDoublePrecision();
        var a = trainer.Train(DataSet.StreamCsv(path, columns, bufferRows: 128));
        var b = trainer.Train(DataSet.StreamCsv(path, columns, bufferRows: 128));
        Assert.Equal(30 * 12, a.Losses.Count);
        Assert.Equal(a.Losses, b.Losses);
        // the per-row loss falls: the last epoch's mean below the first's (6 Bernoulli pixels: ln 2 each at start, ~4.2 nats)
        double Epoch(int e) => a.Losses.Skip(12 * e).Take(12).Average();
        Assert.True(Epoch(29) < Epoch(0) - 0.5, $"first epoch {Epoch(0)}, last {Epoch(29)}");
        // the two prototypes are told apart: their reconstructions differ where the prototypes do
        var recon = a.Reconstruct(NdArray.FromMatrix(new double[,] { { 1, 1, 1, 0, 0, 0 }, { 0, 0, 0, 1, 1, 1 } })).ToArray();
        Assert.True(recon[0] > recon[3] && recon[9] > recon[6], string.Join(", ", recon));
        var e = Assert.Throws<ArgumentException>(() => trainer.Train(DataSet.StreamCsv(path, columns, bufferRows: 128), column: "pixels"));
        Assert.Contains("'pixels'", e.Message);
    }
}
