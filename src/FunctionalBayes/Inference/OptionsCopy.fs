namespace FunctionalBayes

open System.Runtime.CompilerServices

/// Copies of the options records with settings changed, as extension methods for the C# facade (FsCheck.Fluent's
/// style): each is F#'s `{ o with … }`, so no other language builds these records through their positional
/// constructors, where reordering two fields of one type would swap values and still compile. The copies are not
/// validated here: the facade's builders call Mcmc.validate / Fit.validate, the one place of the rules.
[<AbstractClass; Sealed; Extension>]
type OptionsCopy =
    // ---- McmcOptions ----
    [<Extension>] static member WithChains(o: McmcOptions, chains: int) = { o with Chains = chains }
    [<Extension>] static member WithWarmup(o: McmcOptions, warmup: int) = { o with Warmup = warmup }
    [<Extension>] static member WithSamples(o: McmcOptions, samples: int, thin: int) = { o with Samples = samples; Thin = thin }
    [<Extension>] static member WithSeed(o: McmcOptions, seed: uint64) = { o with McmcOptions.Seed = seed }
    [<Extension>] static member WithTargetAccept(o: McmcOptions, targetAccept: float) = { o with TargetAccept = targetAccept }
    [<Extension>] static member WithMaxTreeDepth(o: McmcOptions, depth: int) = { o with MaxTreeDepth = depth }
    [<Extension>] static member WithAdaptation(o: McmcOptions, adaptation: MetricAdaptation) = { o with Adaptation = adaptation }
    [<Extension>]
    static member WithInitialStepSize(o: McmcOptions, stepSize: float, search: bool) =
        { o with InitialStepSize = stepSize; FindInitialStepSize = search }
    [<Extension>] static member WithInit(o: McmcOptions, init: InitStrategy) = { o with McmcOptions.Init = init }
    [<Extension>] static member WithParallel(o: McmcOptions, inParallel: bool) = { o with Parallel = inParallel }
    [<Extension>] static member WithGradient(o: McmcOptions, gradient: McmcGradient) = { o with Gradient = gradient }

    // ---- FitOptions ----
    [<Extension>] static member WithAutoGuide(o: FitOptions, kind: AutoGuideKind) = { o with AutoGuide = kind }
    [<Extension>] static member WithLearningRate(o: FitOptions, learningRate: float) = { o with LearningRate = learningRate }
    [<Extension>] static member WithSchedule(o: FitOptions, schedule: LrSchedule) = { o with Schedule = schedule }
    [<Extension>] static member WithOptimizer(o: FitOptions, optimizer: Optimizer) = { o with Optimizer = Some optimizer }
    [<Extension>] static member WithParticles(o: FitOptions, particles: int) = { o with Particles = particles }
    [<Extension>] static member WithSeed(o: FitOptions, seed: uint64) = { o with FitOptions.Seed = seed }
    [<Extension>] static member WithInit(o: FitOptions, init: InitStrategy) = { o with FitOptions.Init = init }
    [<Extension>] static member WithClipNorm(o: FitOptions, maxNorm: float) = { o with ClipNorm = Some maxNorm }
    /// A number of steps replaces a number of epochs set before; the batch size is kept.
    [<Extension>]
    static member WithSteps(o: FitOptions, steps: int) = { o with Run = { o.Run with Steps = Some steps; Epochs = None } }
    /// A number of epochs replaces a number of steps set before.
    [<Extension>]
    static member WithEpochs(o: FitOptions, epochs: int, batchSize: int) =
        { o with Run = { o.Run with Steps = None; Epochs = Some epochs; BatchSize = Some batchSize } }
    [<Extension>]
    static member WithBatchSize(o: FitOptions, batchSize: int) = { o with Run = { o.Run with BatchSize = Some batchSize } }
    [<Extension>]
    static member WithEarlyStopping(o: FitOptions, window: int, relTol: float, patience: int) =
        { o with Run = { o.Run with EarlyStopping = Some { Window = window; RelTol = relTol; Patience = patience } } }

    // ---- RunContext ----
    /// The run context of a C# call: its token, progress callback and cadence; messages go nowhere (a library
    /// writes nothing unless asked).
    [<Extension>]
    static member WithCall(c: RunContext, cancellation: System.Threading.CancellationToken, onProgress: (RunProgress -> unit) option,
                           progressEvery: int, log: string -> unit) =
        { c with Cancellation = cancellation; OnProgress = onProgress; ProgressEvery = progressEvery; Log = log }
