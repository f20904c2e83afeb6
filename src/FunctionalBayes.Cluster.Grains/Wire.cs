namespace FunctionalBayes.Cluster;

/// <summary>
/// One fit of a job, as it travels to a silo: plain names, since functions and data do not travel.
/// The silo's model registry resolves <see cref="Model"/> and <see cref="Data"/>.
/// </summary>
/// <param name="Id">The fit's id, unique in its job; it names the posterior file ("{Id}.posterior.json").</param>
/// <param name="Model">The name of a model in the silos' registry.</param>
/// <param name="Data">Where the data come from: a data set in the registry ("name" or "name:argument"), or "file:PATH" (a tensor file written by Fit.saveParams).</param>
/// <param name="Options">Overrides of the model's registered settings, "key=value;key=value" (NUTS: chains, warmup, samples, thin; SVI: steps, lr, particles, batch), or empty.</param>
/// <param name="Seed">The fit's seed; with the rest, it fixes every number of the result.</param>
[GenerateSerializer, Immutable, Alias("FunctionalBayes.Cluster.FitSpec")]
public sealed record FitSpec(
    [property: Id(0)] string Id,
    [property: Id(1)] string Model,
    [property: Id(2)] string Data,
    [property: Id(3)] string Options,
    [property: Id(4)] ulong Seed);

/// <summary>Where a fit stands.</summary>
public enum FitState
{
    /// <summary>Not started (on this activation: a fresh activation after its silo died reports this).</summary>
    Pending = 0,
    /// <summary>Running on a silo.</summary>
    Running = 1,
    /// <summary>Its posterior file is written.</summary>
    Done = 2,
    /// <summary>It raised an error (the message says which); it is not re-run.</summary>
    Failed = 3,
    /// <summary>Cancelled; a checkpoint, where the run has one, lets a later job resume it.</summary>
    Cancelled = 4,
}

/// <summary>A fit's progress as a silo reports it.</summary>
/// <param name="FitId">The fit.</param>
/// <param name="State">Where it stands.</param>
/// <param name="Step">Steps done (MCMC: iterations of all chains, warmup included).</param>
/// <param name="TotalSteps">Steps in all (0 before the run reports).</param>
/// <param name="Silo">The silo running it (empty while pending).</param>
/// <param name="Message">The error of a failed fit, or a note ("resumed from step 120", "result already written").</param>
[GenerateSerializer, Immutable, Alias("FunctionalBayes.Cluster.FitStatus")]
public sealed record FitStatus(
    [property: Id(0)] string FitId,
    [property: Id(1)] FitState State,
    [property: Id(2)] int Step,
    [property: Id(3)] int TotalSteps,
    [property: Id(4)] string Silo,
    [property: Id(5)] string Message);

/// <summary>
/// Runs fits on a silo: FunctionalBayes.Cluster's registry-backed runner, registered in the silo's services.
/// </summary>
public interface IFitRunner
{
    /// <summary>
    /// Runs the fit to its end and writes its posterior file under <paramref name="folder"/> once (a result
    /// already there is kept and the fit not run); resumes from the fit's checkpoint in the folder when there is one.
    /// Returns a note for the status ("" when there is nothing to say).
    /// </summary>
    /// <param name="fit">The fit.</param>
    /// <param name="folder">The shared folder of the job (results and checkpoints).</param>
    /// <param name="onProgress">Called with (steps done, steps in all) as the run goes.</param>
    /// <param name="cancellation">Stops the run after its current step (a checkpoint is written first).</param>
    string Run(FitSpec fit, string folder, Action<int, int> onProgress, CancellationToken cancellation);
}
