namespace FunctionalBayes.Cluster;

/// <summary>
/// A grain that runs one attempt of one fit (its key names the job, the fit and the attempt), or holds one
/// shard of a data-parallel SVI fit (its key names the fit and the shard).
/// </summary>
[Alias("FunctionalBayes.Cluster.IFitGrain")]
public interface IFitGrain : IGrainWithStringKey
{
    /// <summary>Starts the fit (once: a second call returns the status of the first) and returns its status.</summary>
    /// <param name="fit">The fit.</param>
    /// <param name="folder">The shared folder of the job.</param>
    [Alias("Start")]
    Task<FitStatus> Start(FitSpec fit, string folder);

    /// <summary>The fit's status; Pending when this activation never started it.</summary>
    [Alias("Status")]
    Task<FitStatus> Status();

    /// <summary>Asks the running fit to stop after its current step.</summary>
    [Alias("Cancel")]
    Task Cancel();

    /// <summary>A shard's part of the loss and gradient for one step of data-parallel SVI.</summary>
    /// <param name="request">The step.</param>
    [Alias("ShardGradient")]
    Task<ShardGradient> ShardGradient(ShardRequest request);
}

/// <summary>
/// Runs its fit on the thread pool (a fit is long and CPU-bound; the grain stays responsive to Status calls)
/// through the silo's <see cref="IFitRunner"/>.
/// </summary>
public sealed class FitGrain(IFitRunner runner, IShardRunner shards) : Grain, IFitGrain
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly object _gate = new();
    private FitSpec? _fit;
    private FitState _state = FitState.Pending;
    private int _step;
    private int _total;
    private string _message = "";

    /// <inheritdoc />
    public Task<FitStatus> Start(FitSpec fit, string folder)
    {
        lock (_gate)
        {
            if (_fit is null)
            {
                _fit = fit;
                _state = FitState.Running;
                // Idle collection must not take a running fit's activation away.
                DelayDeactivation(TimeSpan.FromDays(1));
                _ = Task.Run(() => Work(fit, folder));
            }
        }
        return Status();
    }

    private void Work(FitSpec fit, string folder)
    {
        try
        {
            var note = runner.Run(fit, folder, (step, total) => { lock (_gate) { _step = step; _total = total; } }, _cancel.Token);
            lock (_gate) { _state = FitState.Done; _message = note; }
        }
        catch (OperationCanceledException e)
        {
            lock (_gate) { _state = FitState.Cancelled; _message = e.Message; }
        }
        catch (Exception e)
        {
            lock (_gate) { _state = FitState.Failed; _message = e.GetType().Name + ": " + e.Message; }
        }
    }

    /// <inheritdoc />
    public Task<FitStatus> Status()
    {
        lock (_gate)
        {
            var id = _fit?.Id ?? "";
            var silo = _fit is null ? "" : RuntimeIdentity;
            return Task.FromResult(new FitStatus(id, _state, _step, _total, silo, _message));
        }
    }

    /// <inheritdoc />
    public Task<ShardGradient> ShardGradient(ShardRequest request) => Task.Run(() => shards.Gradient(request));

    /// <inheritdoc />
    public Task Cancel()
    {
        _cancel.Cancel();
        return Task.CompletedTask;
    }
}
