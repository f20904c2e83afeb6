using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using FunctionalBayes.Cluster;
using FunctionalBayes.Fluent;
using Microsoft.Extensions.Hosting;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The models and data of the cluster tests, registered as a C# user does.</summary>
internal static class ClusterTestModels
{
    public static readonly DataSet Schools = new DataSet()
        .Add("y", NdArray.FromArray([28.0, 8, -3, 7, -1, 1, 18, 12]))
        .Add("sigma", NdArray.FromArray([15.0, 10, 16, 11, 9, 11, 10, 18]));

    /// <summary>Eight schools, non-centred.</summary>
    public static BayesModel<NdArray> SchoolsModel(DataSet d) =>
        from mu in Bayes.Sample("mu", Prior.Normal(0.0, 5.0))
        from tau in Bayes.Sample("tau", Prior.HalfCauchy(5.0))
        from eta in Bayes.Sample("eta", Prior.Normal(NdArray.Zeros(8), NdArray.Ones(8)).ToEvent(1))
        from y in Bayes.Observe("y", Prior.Normal(mu + tau * eta, d["sigma"]).ToEvent(1), d.GetOrNull("y"))
        select y;

    public static NutsSampler Nuts() =>
        new NutsSampler(SchoolsModel, Schools).WithChains(2).WithWarmup(150).WithSamples(100).WithTargetAcceptance(0.9);

    public static SviFitter Svi(DataSet data) =>
        new SviFitter(TestData.LinearModel, data).ForSteps(200).WithLearningRate(0.05);

    /// <summary>A guide of one's own for eight schools: a normal per latent (log-normal for tau), locations learned.</summary>
    public static readonly BayesModel<NdArray> SchoolsGuide =
        from muLoc in Bayes.Param("mu_loc", 0.0)
        from mu in Bayes.Sample("mu", Prior.Normal(muLoc, 1.0))
        from tauLoc in Bayes.Param("tau_loc", 0.0)
        from tau in Bayes.Sample("tau", Prior.LogNormal(tauLoc, 0.5))
        from etaLoc in Bayes.Param("eta_loc", NdArray.Zeros(8))
        from eta in Bayes.Sample("eta", Prior.Normal(etaLoc, NdArray.Ones(8)).ToEvent(1))
        select eta;

    public static SviFitter GuidedSvi() =>
        new SviFitter(SchoolsModel, Schools).WithGuide(SchoolsGuide, "schools guide").ForSteps(60).WithLearningRate(0.05);

    public static readonly ClusterRegistry Registry = new ClusterRegistry()
        .AddNuts("schools", SchoolsModel, Nuts())
        .AddSvi("schools-guide", SchoolsModel, GuidedSvi())
        .AddSvi("linear", TestData.LinearModel, Svi(TestData.Linear(40)))
        .AddDataSet("schools", _ => Schools)
        .AddDataSet("linear", seed => TestData.Linear(40, ulong.Parse(seed)));
}

/// <summary>Two silos on free loopback ports in this process and a client connected to both.</summary>
public sealed class LocalClusterFixture : IAsyncLifetime
{
    private readonly List<IHost> silos = new();

    public ClusterConnection Connection { get; private set; } = null!;

    private static int[] FreePorts(int n)
    {
        var listeners = Enumerable.Range(0, n).Select(_ => { var l = new TcpListener(IPAddress.Loopback, 0); l.Start(); return l; }).ToArray();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners) l.Stop();
        return ports;
    }

    public async Task InitializeAsync()
    {
        var p = FreePorts(4);
        silos.Add(await ClusterHosting.StartLocalSiloAsync(ClusterTestModels.Registry, p[0], p[2], p[0]).WaitAsync(TimeSpan.FromSeconds(60)));
        silos.Add(await ClusterHosting.StartLocalSiloAsync(ClusterTestModels.Registry, p[1], p[3], p[0]).WaitAsync(TimeSpan.FromSeconds(60)));
        Connection = await ClusterConnection.ConnectLocalAsync(p[2], p[3]).WaitAsync(TimeSpan.FromSeconds(60));
    }

    public async Task DisposeAsync()
    {
        await Connection.DisposeAsync();
        foreach (var s in Enumerable.Reverse(silos))
        {
            await s.StopAsync(TimeSpan.FromSeconds(10));
            s.Dispose();
        }
    }
}

/// <summary>Jobs from C#: submit, watch, cancel, collect on an in-process cluster of two silos.</summary>
public class ClusterTests(LocalClusterFixture cluster) : IClassFixture<LocalClusterFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    private static string TempFolder(string name) =>
        Path.Combine(Path.GetTempPath(), $"fb-csharp-cluster-{name}-{Guid.NewGuid():N}");

    /// <summary>An IProgress that records on the reporting thread (Progress&lt;T&gt; would post).</summary>
    private sealed class Statuses(Action<FitStatus>? onReport = null) : IProgress<FitStatus>
    {
        public ConcurrentQueue<FitStatus> Seen { get; } = new();

        public void Report(FitStatus value)
        {
            Seen.Enqueue(value);
            onReport?.Invoke(value);
        }
    }

    [Fact]
    public async Task AJobOfNutsAndSviFitsGivesTheNumbersOfTheSameFitsRunSerially()
    {
        FitSpec[] fits =
        [
            new("nuts1", "schools", "schools", "", 11),
            new("nuts2", "schools", "schools", "samples=50", 12),
            new("svi1", "linear", "linear:5", "", 21),
            new("svi2", "linear", "linear:6", "steps=100", 22),
        ];
        var progress = new Statuses();
        var job = cluster.Connection.Submit(fits, new ClusterJobOptions(TempFolder("serial")).WithPollInterval(TimeSpan.FromMilliseconds(50)), progress);
        var results = await job.CollectAsync().WaitAsync(Bound);

        Assert.Equal(fits.Select(f => f.Id), results.Select(r => r.FitId));
        Assert.All(results, r => Assert.True(r.IsDone, r.ToString()));
        Assert.All(results, r => Assert.Null(r.Error));
        Assert.True(job.IsCompleted);
        Assert.All(job.Snapshot(), s => Assert.Equal(FitState.Done, s.State));
        Assert.All(fits, f => Assert.Contains(progress.Seen, s => s.FitId == f.Id && s.State == FitState.Done));

        // The same fits run here with the facade alone, each loaded back with the facade's loading API.
        var schools = ClusterTestModels.Registry.LoadData("schools");
        var nuts = new[] { ClusterTestModels.Nuts().WithSeed(11).Sample(), ClusterTestModels.Nuts().WithSamples(50).WithSeed(12).Sample() };
        for (var i = 0; i < 2; i++)
        {
            var loaded = FittedModel.Load(results[i].Path, ClusterTestModels.SchoolsModel, schools);
            Assert.True(loaded.IsSampled);
            foreach (var site in new[] { "mu", "tau", "eta" })
                Assert.Equal(nuts[i].Posterior()[site].ToArray(), loaded.Posterior()[site].ToArray());
        }
        var svi = new[] { (Seed: 21UL, Data: "linear:5", Steps: 200), (Seed: 22UL, Data: "linear:6", Steps: 100) };
        for (var i = 0; i < 2; i++)
        {
            var fitter = ClusterTestModels.Svi(ClusterTestModels.Registry.LoadData(svi[i].Data)).ForSteps(svi[i].Steps).WithSeed(svi[i].Seed);
            var serial = fitter.Fit();
            var loaded = fitter.Load(results[2 + i].Path);
            Assert.Equal(serial.Losses, loaded.Losses);
            Assert.Equal(serial.Parameters.Keys, loaded.Parameters.Keys);
            foreach (var kv in serial.Parameters) Assert.Equal(kv.Value.ToArray(), loaded.Parameters[kv.Key].ToArray());
        }
    }

    [Fact]
    public async Task AnSviModelRegisteredWithAGuideOfItsOwnFitsWithThatGuide()
    {
        var results = await cluster.Connection.RunAsync([new FitSpec("guided", "schools-guide", "schools", "", 5)], new ClusterJobOptions(TempFolder("guide"))).WaitAsync(Bound);
        Assert.True(results[0].IsDone, results[0].ToString());
        var fitter = ClusterTestModels.GuidedSvi().WithSeed(5);
        var loaded = fitter.Load(results[0].Path);
        Assert.Equal("schools guide", loaded.GuideName);
        Assert.Equal(["eta_loc", "mu_loc", "tau_loc"], loaded.Parameters.Keys.OrderBy(k => k, StringComparer.Ordinal));
        var serial = fitter.Fit();
        Assert.Equal(serial.Losses, loaded.Losses);
        foreach (var kv in serial.Parameters) Assert.Equal(kv.Value.ToArray(), loaded.Parameters[kv.Key].ToArray());
    }

    [Fact]
    public async Task CancellingTheTokenStopsTheJobWithItsFitsCancelled()
    {
        using var cts = new CancellationTokenSource();
        // A long fit, cancelled once a poll sees it running.
        var progress = new Statuses(s => { if (s.State == FitState.Running && s.Step > 0) cts.Cancel(); });
        var options = new ClusterJobOptions(TempFolder("cancel")).WithPollInterval(TimeSpan.FromMilliseconds(50));
        var job = cluster.Connection.Submit([new FitSpec("long", "schools", "schools", "warmup=100000;samples=100000", 1)], options, progress, cts.Token);
        var results = await job.CollectAsync().WaitAsync(Bound);
        Assert.True(cts.IsCancellationRequested, "the fit was seen running");
        Assert.Equal(FitState.Cancelled, Assert.Single(results).State);
        Assert.False(File.Exists(results[0].Path), "no result is written for a cancelled fit");

        // RunAsync: the same, as an OperationCanceledException.
        using var cts2 = new CancellationTokenSource();
        var progress2 = new Statuses(s => { if (s.State == FitState.Running && s.Step > 0) cts2.Cancel(); });
        var run = cluster.Connection.RunAsync([new FitSpec("long", "schools", "schools", "warmup=100000;samples=100000", 2)], options, progress2, cts2.Token);
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Bound));
        Assert.Equal(cts2.Token, e.CancellationToken);
    }

    [Fact]
    public async Task AnUnknownModelOrDataSetFailsTheFitWithAMessageNamingIt()
    {
        FitSpec[] fits = [new("bad-model", "no-such-model", "schools", "", 1), new("bad-data", "schools", "no-such-data", "", 1)];
        var results = await cluster.Connection.RunAsync(fits, new ClusterJobOptions(TempFolder("unknown"))).WaitAsync(Bound);
        Assert.All(results, r => Assert.Equal(FitState.Failed, r.State));
        Assert.Contains("'no-such-model'", results[0].Error);
        Assert.Contains("models: linear, schools", results[0].Error); // the registered models are listed
        Assert.Contains("'no-such-data'", results[1].Error);
    }
}

/// <summary>The registry and the job options, without a cluster.</summary>
public class ClusterRegistryTests
{
    [Fact]
    public void TheRegistryNamesItsModelsAndDataSetsAndLoadsData()
    {
        var r = ClusterTestModels.Registry;
        Assert.Equal(["linear", "schools", "schools-guide"], r.ModelNames.OrderBy(n => n, StringComparer.Ordinal));
        Assert.Equal(["linear", "schools"], r.DataSetNames.OrderBy(n => n, StringComparer.Ordinal));
        Assert.Equal(TestData.Linear(40, 7)["x"].ToArray(), r.LoadData("linear:7")["x"].ToArray());
        var e = Assert.Throws<ArgumentException>(() => r.LoadData("nothing:1"));
        Assert.Contains("'nothing'", e.Message);
    }

    [Fact]
    public void BadRegistrationsAreRefusedNamingTheProblem()
    {
        var r = ClusterTestModels.Registry;
        Assert.Contains("'schools'", Assert.Throws<ArgumentException>(() => r.AddNuts("schools", ClusterTestModels.SchoolsModel)).Message);
        Assert.Contains("'file'", Assert.Throws<ArgumentException>(() => r.AddDataSet("file", _ => ClusterTestModels.Schools)).Message);
        Assert.Throws<ArgumentNullException>(() => r.AddSvi<NdArray>("x", null!));
        // A loader that gives null is an error naming the data set, not a null dereference on a silo.
        var nulls = new ClusterRegistry().AddDataSet("empty", _ => null!);
        Assert.Contains("'empty'", Assert.Throws<InvalidOperationException>(() => nulls.LoadData("empty:3")).Message);
    }

    [Fact]
    public void JobOptionsHaveTheCoresDefaultsAndChecks()
    {
        var o = new ClusterJobOptions("folder");
        Assert.Equal((1, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(15), 5), (o.SlotsPerSilo, o.PollInterval, o.CallTimeout, o.MaxAttempts));
        Assert.Equal(3, o.WithSlotsPerSilo(3).SlotsPerSilo);
        Assert.Equal(1, o.SlotsPerSilo);
        Assert.Throws<ArgumentOutOfRangeException>(() => o.WithSlotsPerSilo(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => o.WithPollInterval(TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => o.WithMaxAttempts(0));
        Assert.Throws<ArgumentException>(() => new ClusterJobOptions(" "));
    }
}
