using FunctionalBayes.Cluster;

namespace FunctionalBayes.Fluent;

/// <summary>
/// How a job runs on the cluster, configured fluently: each <c>With…</c> method returns new options, checked when
/// made. The defaults are the F# core's (<c>JobSettings.Create</c>): one fit per silo at once, polls every 200 ms,
/// calls to a silo time out after 15 s, 5 attempts per fit.
/// </summary>
public sealed class ClusterJobOptions
{
    private ClusterJobOptions(JobSettings settings)
    {
        JobSettings.Validate(settings);
        Settings = settings;
    }

    /// <summary>Options for a job whose results and checkpoints go to <paramref name="folder"/>: a folder every silo
    /// reads and writes (one machine, or a network file system).</summary>
    /// <param name="folder">The shared folder (results/ID.posterior.json, checkpoints/).</param>
    /// <exception cref="ArgumentNullException"><paramref name="folder"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="folder"/> is empty.</exception>
    public ClusterJobOptions(string folder) : this(JobSettings.Create(folder ?? throw new ArgumentNullException(nameof(folder)))) { }

    internal JobSettings Settings { get; }

    /// <summary>The shared folder.</summary>
    public string Folder => Settings.Folder;
    /// <summary>Fits run at once on one silo.</summary>
    public int SlotsPerSilo => Settings.SlotsPerSilo;
    /// <summary>How often the client polls the fits and the silos.</summary>
    public TimeSpan PollInterval => Settings.PollInterval;
    /// <summary>A call to a silo that takes longer is treated as unanswered (the silo may have died).</summary>
    public TimeSpan CallTimeout => Settings.CallTimeout;
    /// <summary>Attempts per fit before the job gives it up (its silo died this many times).</summary>
    public int MaxAttempts => Settings.MaxAttempts;

    /// <summary>Options with <paramref name="slots"/> fits at once per silo (its cores, less what else runs there).</summary>
    /// <param name="slots">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public ClusterJobOptions WithSlotsPerSilo(int slots) => new(Settings.WithSlotsPerSilo(slots));

    /// <summary>Options polling every <paramref name="interval"/>.</summary>
    /// <param name="interval">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The interval is not positive.</exception>
    public ClusterJobOptions WithPollInterval(TimeSpan interval) => new(Settings.WithPollInterval(interval));

    /// <summary>Options whose calls to a silo time out after <paramref name="timeout"/>.</summary>
    /// <param name="timeout">Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is not positive.</exception>
    public ClusterJobOptions WithCallTimeout(TimeSpan timeout) => new(Settings.WithCallTimeout(timeout));

    /// <summary>Options with <paramref name="attempts"/> attempts per fit.</summary>
    /// <param name="attempts">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The number is less than 1.</exception>
    public ClusterJobOptions WithMaxAttempts(int attempts) => new(Settings.WithMaxAttempts(attempts));

    /// <inheritdoc />
    public override string ToString() => $"ClusterJobOptions({Folder}, {SlotsPerSilo} per silo)";
}
