using Microsoft.Extensions.Hosting;
using Orleans;
using FunctionalBayes.Cluster;

namespace FunctionalBayes.Fluent;

/// <summary>
/// A client of a FunctionalBayes cluster: submits jobs (lists of <see cref="FitSpec"/>: id, model name, data source,
/// option overrides, seed), which the silos run with progress, cancellation and one result file per fit.
/// <code>
/// await using var cluster = await ClusterConnection.ConnectLocalAsync(30000);
/// var fits = Enumerable.Range(0, 20).Select(i => new FitSpec($"fit{i}", "schools", "schools", "", (ulong)i));
/// ClusterFitJob job = cluster.Submit(fits, new ClusterJobOptions("/shared/job1"), progress, cancellationToken);
/// IReadOnlyList&lt;FitStatus&gt; now = job.Snapshot();
/// foreach (var r in await job.CollectAsync())
///     if (r.IsDone) Console.WriteLine(FittedModel.Load(r.Path, Schools, data).Summary());
/// </code>
/// </summary>
public sealed class ClusterConnection : IAsyncDisposable, IDisposable
{
    private readonly IHost? host;

    private ClusterConnection(IClusterClient client, IHost? host)
    {
        Client = client;
        this.host = host;
    }

    /// <summary>A connection through a client you configured (its services need
    /// <see cref="ClusterHosting.AddFunctionalBayesGrainTypes"/>); disposing the connection leaves the client alone.</summary>
    /// <param name="client">The Orleans client.</param>
    /// <exception cref="ArgumentNullException"><paramref name="client"/> is null.</exception>
    public ClusterConnection(IClusterClient client) : this(client ?? throw new ArgumentNullException(nameof(client)), null) { }

    /// <summary>Connects to silos on loopback gateway ports (development clustering, as
    /// <see cref="ClusterHosting.StartLocalSiloAsync(ClusterRegistry, int, bool, TimeSpan?)"/> starts them); dispose to disconnect.</summary>
    /// <param name="gatewayPorts">The silos' gateway ports (at least one).</param>
    /// <returns>The connection.</returns>
    /// <exception cref="ArgumentException">No port is given.</exception>
    public static async Task<ClusterConnection> ConnectLocalAsync(params int[] gatewayPorts)
    {
        ArgumentNullException.ThrowIfNull(gatewayPorts);
        if (gatewayPorts.Length == 0) throw new ArgumentException("ClusterConnection: give at least one gateway port.", nameof(gatewayPorts));
        var host = await ClusterClient.ConnectLocalAsync(gatewayPorts).ConfigureAwait(false);
        return new ClusterConnection(ClusterClient.Of(host), host);
    }

    /// <summary>The Orleans client.</summary>
    public IClusterClient Client { get; }

    /// <summary>
    /// Submits fits to the cluster and returns at once; the job runs until every fit is done, failed or cancelled.
    /// Fits whose result is in the folder already are not run again (a re-submitted job goes on where it stopped).
    /// </summary>
    /// <param name="fits">The fits (ids unique: they name the result files).</param>
    /// <param name="options">The shared folder and how the job runs.</param>
    /// <param name="progress">Hears each fit's status when it changes, from the job's thread; null for none.</param>
    /// <param name="cancellationToken">Cancels the job: running fits stop after their current step (each writes a
    /// checkpoint, so re-submitting the fits resumes them) and the unfinished fits end <see cref="FitState.Cancelled"/>.</param>
    /// <returns>The job.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="fits"/>, a fit or <paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">A fit's id is not a plain file name, or is given twice.</exception>
    public ClusterFitJob Submit(IEnumerable<FitSpec> fits, ClusterJobOptions options, IProgress<FitStatus>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fits);
        ArgumentNullException.ThrowIfNull(options);
        var specs = fits.ToArray();
        for (var i = 0; i < specs.Length; i++)
            if (specs[i] is null) throw new ArgumentNullException(nameof(fits), $"ClusterConnection.Submit: fit {i} is null.");
        var job = ClusterJob.Submit(Client, specs, options.Settings, progress);
        return new ClusterFitJob(job, cancellationToken);
    }

    /// <summary>
    /// Submits fits and waits for their results (<see cref="Submit"/>, then <see cref="ClusterFitJob.CollectAsync"/>).
    /// </summary>
    /// <param name="fits">The fits.</param>
    /// <param name="options">The shared folder and how the job runs.</param>
    /// <param name="progress">Hears each fit's status when it changes; null for none.</param>
    /// <param name="cancellationToken">Cancels the job (as <see cref="Submit"/>).</param>
    /// <returns>One result per fit, in the order given.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled and the job stopped with fits unfinished
    /// (they checkpointed; results already written stay in the folder).</exception>
    public async Task<IReadOnlyList<ClusterFitResult>> RunAsync(IEnumerable<FitSpec> fits, ClusterJobOptions options, IProgress<FitStatus>? progress = null, CancellationToken cancellationToken = default)
    {
        var results = await Submit(fits, options, progress, cancellationToken).CollectAsync().ConfigureAwait(false);
        if (cancellationToken.IsCancellationRequested && results.Any(r => r.State == FitState.Cancelled))
            throw new OperationCanceledException("ClusterConnection.RunAsync: the job was cancelled; its unfinished fits checkpointed.", cancellationToken);
        return results;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (host is null) return;
        await host.StopAsync().ConfigureAwait(false);
        host.Dispose();
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}

/// <summary>A job running on the cluster: watch it (<see cref="Snapshot"/>, or the progress given to
/// <see cref="ClusterConnection.Submit"/>), <see cref="Cancel"/> it, and <see cref="CollectAsync"/> its results.</summary>
public sealed class ClusterFitJob
{
    private readonly ClusterJob job;
    private readonly Task<IReadOnlyList<ClusterFitResult>> results;

    internal ClusterFitJob(ClusterJob job, CancellationToken cancellationToken)
    {
        this.job = job;
        var registration = cancellationToken.Register(job.Cancel);
        results = Collect(job, registration);
    }

    private static async Task<IReadOnlyList<ClusterFitResult>> Collect(ClusterJob job, CancellationTokenRegistration registration)
    {
        try
        {
            var r = await job.Completion.ConfigureAwait(false);
            return r.Fits.Select(f => new ClusterFitResult(f)).ToArray();
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The job's id (it names the fits' grains).</summary>
    public string Id => job.Id;

    /// <summary>The last status of every fit, in the order given: state, steps done of all (MCMC: every chain's
    /// iterations, warmup included), the silo running it, a note or error.</summary>
    public IReadOnlyList<FitStatus> Snapshot() => job.Snapshot();

    /// <summary>Asks every running fit to stop after its current step (each checkpoints, so re-submitting the fits with
    /// the same folder resumes them); the job then ends with the unfinished fits <see cref="FitState.Cancelled"/>.</summary>
    public void Cancel() => job.Cancel();

    /// <summary>Whether the job has ended.</summary>
    public bool IsCompleted => results.IsCompleted;

    /// <summary>Waits for the job's end: every fit done, failed or cancelled.</summary>
    /// <returns>One result per fit, in the order given.</returns>
    public Task<IReadOnlyList<ClusterFitResult>> CollectAsync() => results;

    /// <inheritdoc />
    public override string ToString() => $"ClusterFitJob({Id})";
}

/// <summary>The end of one fit of a job.</summary>
public sealed class ClusterFitResult
{
    internal ClusterFitResult(FitResult r)
    {
        FitId = r.FitId;
        State = r.State;
        Path = r.Path;
        Attempts = r.Attempts;
        Silo = r.Silo;
        Message = r.Message;
    }

    /// <summary>The fit's id.</summary>
    public string FitId { get; }
    /// <summary>Done, Failed or Cancelled.</summary>
    public FitState State { get; }
    /// <summary>Whether the fit is done (its posterior file is at <see cref="Path"/>).</summary>
    public bool IsDone => State == FitState.Done;
    /// <summary>Its posterior file (written when done): load it with <see cref="NutsSampler.Load"/>,
    /// <see cref="SviFitter.Load"/> or <see cref="FittedModel.Load(string, Func{DataSet, BayesModel{NdArray}}, DataSet)"/>
    /// with the fit's data (<see cref="ClusterRegistry.LoadData"/>).</summary>
    public string Path { get; }
    /// <summary>Attempts it took (more than 1 when a silo running it died).</summary>
    public int Attempts { get; }
    /// <summary>The silo that finished it (empty when none did).</summary>
    public string Silo { get; }
    /// <summary>A note ("resumed from its checkpoints"), or what went wrong.</summary>
    public string Message { get; }
    /// <summary>The error of a failed fit (its exception's type and message, for example an unknown model's name),
    /// null otherwise.</summary>
    public string? Error => State == FitState.Failed ? Message : null;

    /// <inheritdoc />
    public override string ToString() => $"{FitId}: {State}{(Message.Length > 0 ? " (" + Message + ")" : "")}";
}
