namespace rec FunctionalBayes.Fluent

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Threading
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.Tensors

/// <summary>The distribution of the latent variable given the data (the variational family).</summary>
type LatentFamily =
    /// <summary>Normal(loc, scale), location-scale reparameterization.</summary>
    | Normal = 0
    /// <summary>Laplace(loc, scale).</summary>
    | Laplace = 1
    /// <summary>Logistic(loc, scale).</summary>
    | Logistic = 2
    /// <summary>Cauchy(loc, scale), inverse-CDF reparameterization.</summary>
    | Cauchy = 3
    /// <summary>Gumbel(loc, scale), inverse-CDF reparameterization.</summary>
    | Gumbel = 4
    /// <summary>LogNormal = exp(Normal(loc, scale)), a composed family.</summary>
    | LogNormal = 5
    /// <summary>Bernoulli(logits), trained with REINFORCE.</summary>
    | Bernoulli = 6

/// <summary>The distribution of the data given the latent variable (the observation family).</summary>
type ObservationFamily =
    /// <summary>Bernoulli(logits), for binary or [0, 1] data.</summary>
    | Bernoulli = 0
    /// <summary>Normal(loc, scale).</summary>
    | Normal = 1
    /// <summary>Laplace(loc, scale).</summary>
    | Laplace = 2
    /// <summary>Logistic(loc, scale).</summary>
    | Logistic = 3
    /// <summary>Student's t with a learned df (parameters df, loc, scale).</summary>
    | StudentT = 4

/// <summary>A training progress report.</summary>
[<Sealed; AllowNullLiteral>]
type AevbTrainingProgress(step: int, totalSteps: int, epoch: int, loss: float, elapsed: TimeSpan) =
    /// <summary>Steps done.</summary>
    member _.Step = step
    /// <summary>Steps planned.</summary>
    member _.TotalSteps = totalSteps
    /// <summary>The current epoch (0-based).</summary>
    member _.Epoch = epoch
    /// <summary>The last step's loss (nll + klScale·kl, summed over the batch).</summary>
    member _.Loss = loss
    /// <summary>Time since the start.</summary>
    member _.Elapsed = elapsed

    /// <summary>The five values, as a C# positional record deconstructs.</summary>
    member this.Deconstruct([<Out>] step: byref<int>, [<Out>] totalSteps: byref<int>, [<Out>] epoch: byref<int>, [<Out>] loss: byref<float>,
                            [<Out>] elapsed: byref<TimeSpan>) =
        step <- this.Step
        totalSteps <- this.TotalSteps
        epoch <- this.Epoch
        loss <- this.Loss
        elapsed <- this.Elapsed

    // value equality, as the C# record had
    /// <inheritdoc />
    override this.Equals(o: obj) =
        match o with
        | :? AevbTrainingProgress as p -> (this :> IEquatable<AevbTrainingProgress>).Equals p
        | _ -> false

    /// <inheritdoc />
    override _.GetHashCode() = HashCode.Combine(step, totalSteps, epoch, loss, elapsed)

    interface IEquatable<AevbTrainingProgress> with
        member _.Equals(p: AevbTrainingProgress) =
            not (isNull p) && p.Step = step && p.TotalSteps = totalSteps && p.Epoch = epoch && p.Loss.Equals loss && p.Elapsed = elapsed

    /// <summary>True when both are null, or all five values are equal.</summary>
    /// <param name="left">A report.</param>
    /// <param name="right">A report.</param>
    static member op_Equality(left: AevbTrainingProgress, right: AevbTrainingProgress) =
        if isNull left then isNull right else left.Equals(right :> obj)

    /// <summary>The negation of <c>==</c>.</summary>
    /// <param name="left">A report.</param>
    /// <param name="right">A report.</param>
    static member op_Inequality(left: AevbTrainingProgress, right: AevbTrainingProgress) = not (AevbTrainingProgress.op_Equality(left, right))

    /// <inheritdoc />
    override _.ToString() = $"AevbTrainingProgress {{ Step = {step}, TotalSteps = {totalSteps}, Epoch = {epoch}, Loss = {loss}, Elapsed = {elapsed} }}"

/// A network of the trainer: the built-in MLP's hidden sizes, or functions of your own.
[<NoEquality; NoComparison>]
type internal AevbNetwork =
    | Mlp of hidden: int[]
    | Functions of initialParameters: IReadOnlyDictionary<string, NdArray> *
                   apply: Func<IReadOnlyDictionary<string, NdArray>, NdArray, IReadOnlyDictionary<string, NdArray>>

/// The trainer's settings, copied with `with` by each builder method.
[<NoEquality; NoComparison>]
type internal AevbSettings =
    { DataDim: int
      LatentDim: int
      Encoder: AevbNetwork
      Decoder: AevbNetwork
      Latent: LatentFamily
      Observation: ObservationFamily
      LearningRate: float
      /// The core's run options (epochs and batch size), checked by the core's rule.
      Run: AevbRunOptions
      Samples: int
      KlScale: float
      Seed: uint64
      ProgressEvery: int
      SinglePrecision: bool }

/// The trainer's defaults and the checks of its sizes: one place.
module internal AevbDefaults =
    /// One hidden layer of 400 units each way, Normal latent, Bernoulli observations, Adam 1e-3, 10 epochs of
    /// batch 128, one latent draw per step, float32 networks.
    let settings (dataDim: int) (latentDim: int) : AevbSettings =
        if dataDim < 1 then raise (ArgumentOutOfRangeException("dataDim", dataDim, "AevbTrainer: dataDim must be at least 1."))
        if latentDim < 1 then raise (ArgumentOutOfRangeException("latentDim", latentDim, "AevbTrainer: latentDim must be at least 1."))
        { DataDim = dataDim; LatentDim = latentDim; Encoder = Mlp [| 400 |]; Decoder = Mlp [| 400 |]
          Latent = LatentFamily.Normal; Observation = ObservationFamily.Bernoulli; LearningRate = 1e-3
          Run = AevbRunOptions.Create(10, 128); Samples = 1; KlScale = 1.0; Seed = 0UL; ProgressEvery = 100; SinglePrecision = true }

/// <summary>
/// Trains a variational autoencoder (Auto-Encoding Variational Bayes) with fluent settings: networks from
/// the built-in MLP builder or from functions, latent and observation families, a unit-Normal prior, Adam.
/// Each <c>With…</c> method returns a new trainer.
/// </summary>
/// <example><code>
/// var vae = new AevbTrainer(dataDim: 784, latentDim: 20)
///     .WithEncoderMlp(400).WithDecoderMlp(400)
///     .WithObservation(ObservationFamily.Bernoulli)
///     .ForEpochs(10, batchSize: 128)
///     .Train(images, progress, cancellationToken);
/// var z = vae.Encode(images);
/// </code></example>
[<Sealed; AllowNullLiteral>]
type AevbTrainer private (s: AevbSettings) =
    static let checkedHidden (hidden: int[]) =
        for h in Arg.get "hidden" hidden do
            if h < 1 then raise (ArgumentOutOfRangeException("hidden", h, "AevbTrainer: hidden layers need at least one unit."))
        Array.copy hidden

    static let latentOf (f: LatentFamily) =
        match f with
        | LatentFamily.Normal -> Family.normal
        | LatentFamily.Laplace -> Family.laplace
        | LatentFamily.Logistic -> Family.logistic
        | LatentFamily.Cauchy -> Family.cauchy
        | LatentFamily.Gumbel -> Family.gumbel
        | LatentFamily.LogNormal -> Family.logNormal
        | LatentFamily.Bernoulli -> Family.bernoulli
        | other -> raise (ArgumentOutOfRangeException("f", other, "Unknown latent family."))

    static let observationOf (f: ObservationFamily) =
        match f with
        | ObservationFamily.Bernoulli -> Family.bernoulli
        | ObservationFamily.Normal -> Family.normal
        | ObservationFamily.Laplace -> Family.laplace
        | ObservationFamily.Logistic -> Family.logistic
        | ObservationFamily.StudentT -> Family.studentT
        | other -> raise (ArgumentOutOfRangeException("f", other, "Unknown observation family."))

    static let functions (initialParameters: IReadOnlyDictionary<string, NdArray>) apply =
        Functions(Arg.get "initialParameters" initialParameters, Arg.get "apply" apply)

    /// <summary>A trainer for data rows of <paramref name="dataDim"/> values and a latent of <paramref name="latentDim"/>.
    /// Defaults: one hidden layer of 400 units each way, Normal latent, Bernoulli observations, Adam 1e-3,
    /// 10 epochs of batch 128, one latent draw per step, float32 networks.</summary>
    new(dataDim: int, latentDim: int) = AevbTrainer(AevbDefaults.settings dataDim latentDim)

    /// <summary>The encoder: a ReLU MLP with these hidden sizes and one head per latent-family parameter.</summary>
    member _.WithEncoderMlp([<ParamArray>] hidden: int[]) = AevbTrainer({ s with Encoder = Mlp(checkedHidden hidden) })

    /// <summary>The decoder: a ReLU MLP with these hidden sizes and one head per observation-family parameter.</summary>
    member _.WithDecoderMlp([<ParamArray>] hidden: int[]) = AevbTrainer({ s with Decoder = Mlp(checkedHidden hidden) })

    /// <summary>The encoder as a function of its parameters and a batch (B, dataDim), returning the latent
    /// family's parameters by name (for Normal: "loc" and "scale", each (B, latentDim)).</summary>
    member _.WithEncoder(initialParameters: IReadOnlyDictionary<string, NdArray>,
                         apply: Func<IReadOnlyDictionary<string, NdArray>, NdArray, IReadOnlyDictionary<string, NdArray>>) =
        AevbTrainer({ s with Encoder = functions initialParameters apply })

    /// <summary>The decoder as a function of its parameters and latent rows (N, latentDim), returning the
    /// observation family's parameters by name (for Bernoulli: "logits", (N, dataDim)).</summary>
    member _.WithDecoder(initialParameters: IReadOnlyDictionary<string, NdArray>,
                         apply: Func<IReadOnlyDictionary<string, NdArray>, NdArray, IReadOnlyDictionary<string, NdArray>>) =
        AevbTrainer({ s with Decoder = functions initialParameters apply })

    /// <summary>The latent (variational) family.</summary>
    member _.WithLatent(family: LatentFamily) = AevbTrainer({ s with Latent = family })

    /// <summary>The observation family.</summary>
    member _.WithObservation(family: ObservationFamily) = AevbTrainer({ s with Observation = family })

    /// <summary>Adam's learning rate.</summary>
    member _.WithLearningRate(learningRate: float) =
        if not (learningRate > 0.0) then
            raise (ArgumentOutOfRangeException("learningRate", learningRate, "AevbTrainer: the learning rate must be positive."))
        AevbTrainer({ s with LearningRate = learningRate })

    /// <summary>Epochs of shuffled minibatches.</summary>
    member _.ForEpochs(epochs: int, [<Optional; DefaultParameterValue(128)>] batchSize: int) =
        let run = { s.Run with Epochs = epochs; BatchSize = batchSize }
        AevbRunOptions.Validate run
        AevbTrainer({ s with Run = run })

    /// <summary>Latent draws per datum and step, and the weight of the KL term (loss = nll + klScale·kl).</summary>
    member _.WithSamples(samples: int, [<Optional; DefaultParameterValue(1.0)>] klScale: float) =
        AevbTrainer({ s with Samples = samples; KlScale = klScale })

    /// <summary>The seed of initialization, shuffling and draws.</summary>
    member _.WithSeed(seed: uint64) = AevbTrainer({ s with Seed = seed })

    /// <summary>Progress is reported every this many steps (and at the last).</summary>
    member _.WithProgressEvery(steps: int) = AevbTrainer({ s with ProgressEvery = max 1 steps })

    /// <summary>float64 built-in networks instead of float32.</summary>
    member _.WithDoublePrecision() = AevbTrainer({ s with SinglePrecision = false })

    member private _.Module(n: AevbNetwork, family: Family, input: int, output: int) : NnModule =
        match n with
        | Functions(init, apply) ->
            let p0 = Convert.ToMap init
            Nn.ofFunctions (fun _ -> p0, Map.empty) (fun p st x _ -> Convert.ToMap(apply.Invoke(Convert.FromMap p, NdArray.Wrap x)), st)
        | Mlp hidden ->
            let dtype = if s.SinglePrecision then Dtype.Float32 else Dtype.Float64
            Aevb.mlpFor family input (List.ofArray hidden) output dtype

    member internal this.Engine() : AevbEngine =
        Aevb.create s.LatentDim s.DataDim
            (this.Module(s.Encoder, latentOf s.Latent, s.DataDim, s.LatentDim))
            (this.Module(s.Decoder, observationOf s.Observation, s.LatentDim, s.DataDim))
            AevbPrior.UnitNormal (observationOf s.Observation) (latentOf s.Latent)
            (Optimizer.AdamDefault s.LearningRate) s.Samples s.KlScale

    member private this.Run(rows: int, progress: IProgress<AevbTrainingProgress>, cancellationToken: CancellationToken,
                            train: RunContext -> AevbEngine -> RngKey -> AevbRunOptions -> AevbResult) =
        cancellationToken.ThrowIfCancellationRequested()
        let engine = this.Engine()
        let key = Rng.key s.Seed
        let onProgress = Runs.report progress (fun p -> AevbTrainingProgress(p.Step, p.TotalSteps, p.Epoch, p.Loss, p.Elapsed))
        let options = s.Run
        let context = Runs.context cancellationToken onProgress s.ProgressEvery ignore
        let sw = Stopwatch.StartNew()
        try
            // the core raises OperationCanceledException after the current step when the token is cancelled
            let result = train context engine key options
            TrainedAutoencoder(engine, result.State, Aevb.lossesPerRow rows options result.Losses, sw.Elapsed, Some options)
        with :? AevbDivergedException as e ->
            // one exception family for the facade's fits (SviFitter throws it too)
            let last = e.LastFiniteState
            let parameters = Dictionary<string, NdArray>()
            for kv in Convert.FromMap last.EncParams do parameters["encoder." + kv.Key] <- kv.Value
            for kv in Convert.FromMap last.DecParams do parameters["decoder." + kv.Key] <- kv.Value
            raise (FitDivergedException(e.Message, e, parameters))

    /// <summary>Trains on the rows of <paramref name="data"/> (N, dataDim).</summary>
    /// <param name="data">The training rows.</param>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>The trained autoencoder.</returns>
    /// <exception cref="ArgumentException">The networks' outputs do not name the families' parameters, or
    /// the data has the wrong shape (the message names the expected and the given keys or shapes).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="FitDivergedException">The loss stopped being finite (try a smaller learning rate).</exception>
    member this.Train(data: NdArray, [<Optional>] progress: IProgress<AevbTrainingProgress>, [<Optional>] cancellationToken: CancellationToken) =
        Arg.notNull "data" data
        let rows = if data.Rank > 0 then data.Shape[0] else 0
        this.Run(rows, progress, cancellationToken, fun context engine key options -> Aevb.trainIn context ignore engine key data.Value options)

    /// <summary>
    /// Trains on a table streamed in minibatches (larger than memory): the rows of its matrix
    /// <paramref name="column"/> (rows × dataDim, stacked by <see cref="TableColumns.Matrix"/>), shuffled within the
    /// stream's buffer and across row groups from the seed, so that training is deterministic given the seed.
    /// </summary>
    /// <param name="data">The streamed table (<see cref="DataSet.StreamParquet"/>, <see cref="DataSet.StreamCsv"/>, ...).</param>
    /// <param name="column">The matrix column of the data rows.</param>
    /// <param name="progress">Receives reports every <see cref="WithProgressEvery"/> steps; null for none.</param>
    /// <param name="cancellationToken">Stops training within one step.</param>
    /// <returns>The trained autoencoder.</returns>
    /// <exception cref="ArgumentException">The table has no such column, or it does not have dataDim values per row.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="FitDivergedException">The loss stopped being finite (try a smaller learning rate).</exception>
    member this.Train(data: StreamedDataSet, [<Optional; DefaultParameterValue("x")>] column: string, [<Optional>] progress: IProgress<AevbTrainingProgress>,
                      [<Optional>] cancellationToken: CancellationToken) =
        Arg.notNull "data" data
        Arg.notNull "column" column
        this.Run(data.Rows, progress, cancellationToken, fun context engine key options ->
            Aevb.trainSourceIn context ignore engine key data.Table.Batches column options)

    /// <summary>Runs <see cref="Train(NdArray, IProgress{AevbTrainingProgress}, CancellationToken)"/> on the thread pool: CPU-bound work, offered so that a UI or a server thread is
    /// not blocked; it does no I/O to await.</summary>
    member this.TrainAsync(data: NdArray, [<Optional>] progress: IProgress<AevbTrainingProgress>, [<Optional>] cancellationToken: CancellationToken) =
        Runs.onPool cancellationToken (fun () -> this.Train(data, progress, cancellationToken))

    /// <summary>Loads an autoencoder saved by <see cref="TrainedAutoencoder.Save"/> for this trainer's settings.</summary>
    member this.Load(path: string) =
        let engine = this.Engine()
        let state = Aevb.load engine path
        TrainedAutoencoder(engine, state, [||], TimeSpan.Zero, Aevb.savedOptions path)

/// <summary>A trained variational autoencoder: encode, decode, reconstruct, generate, and the ELBO on held-out data.</summary>
[<Sealed; AllowNullLiteral>]
type TrainedAutoencoder internal (engine: AevbEngine, state: AevbState, losses: float[], elapsed: TimeSpan, options: AevbRunOptions option) =
    static let arg (x: NdArray) : Tensor = (Arg.get "x" x).Value
    static let settingsOrDefault (s: OnnxExportSettings) = if isNull s then OnnxExportSettings() else s

    /// <summary>The loss (negative ELBO) of every training step per row of its batch: the scale of <see cref="Elbo"/>
    /// (the last epoch's losses are about <c>-Elbo(trainingData)</c>).</summary>
    member _.Losses: IReadOnlyList<float> = Arg.readOnly losses
    /// <summary>How long training took.</summary>
    member _.TrainingTime = elapsed
    /// <summary>The latent dimension.</summary>
    member _.LatentDim: int = engine.LatentDim
    /// <summary>The data dimension.</summary>
    member _.DataDim: int = engine.DataDim

    /// <summary>The mean of q(z | x) per row: (B, latentDim).</summary>
    member _.Encode(x: NdArray) = NdArray.Wrap(Aevb.encodeMean engine state (arg x))
    /// <summary>Draws z ~ q(z | x): (n, B, latentDim).</summary>
    member _.EncodeSamples(x: NdArray, n: int, [<Optional; DefaultParameterValue(0UL)>] seed: uint64) =
        NdArray.Wrap(Aevb.encode engine (Rng.key seed) state (arg x) n)
    /// <summary>The observation mean E[x | z] for latent rows (…, latentDim).</summary>
    member _.Decode(z: NdArray) = NdArray.Wrap(Aevb.decode engine state (arg z))
    /// <summary>Decode(Encode(x)).</summary>
    member _.Reconstruct(x: NdArray) = NdArray.Wrap(Aevb.reconstruct engine state (arg x))
    /// <summary>n new rows: z from the prior, then the observation mean (<paramref name="mean"/>) or a draw.</summary>
    member _.Generate(n: int, [<Optional; DefaultParameterValue(0UL)>] seed: uint64, [<Optional; DefaultParameterValue(true)>] mean: bool) =
        NdArray.Wrap(Aevb.generate engine (Rng.key seed) state n mean)
    /// <summary>The ELBO per row of held-out x; with importanceSamples &gt; 1 the importance-weighted bound.</summary>
    member _.Elbo(x: NdArray, [<Optional; DefaultParameterValue(1)>] importanceSamples: int, [<Optional; DefaultParameterValue(0UL)>] seed: uint64) : float =
        Aevb.elbo engine (Rng.key seed) state (arg x) importanceSamples 1000

    /// <summary>Writes the networks' parameters and states as JSON with the engine's sizes, families and dtype and
    /// the training settings (load with <see cref="AevbTrainer.Load"/>, which refuses another engine).</summary>
    member _.Save(path: string) =
        Arg.notNull "path" path
        Runs.createFolderOf path
        Aevb.save path engine options state

    // ---- ONNX -------------------------------------------------------------------------------

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
    member _.ExportEncoderOnnx([<Optional>] settings: OnnxExportSettings) : byte[] =
        Export.toBytes (AutoencoderExport.encoder ((settingsOrDefault settings).ToExportOptions()) engine state)

    /// <summary>Writes the encoder to an ONNX file (see <see cref="ExportEncoderOnnx(OnnxExportSettings?)"/>).</summary>
    /// <param name="path">The .onnx file to write.</param>
    /// <param name="settings">IR version, opset and float64.</param>
    member this.ExportEncoderOnnx(path: string, [<Optional>] settings: OnnxExportSettings) : unit =
        Arg.notNull "path" path
        Runs.createFolderOf path
        File.WriteAllBytes(path, this.ExportEncoderOnnx(settings))

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
    member _.ExportDecoderOnnx([<Optional>] settings: OnnxExportSettings) : byte[] =
        Export.toBytes (AutoencoderExport.decoder ((settingsOrDefault settings).ToExportOptions()) engine state)

    /// <summary>Writes the decoder to an ONNX file (see <see cref="ExportDecoderOnnx(OnnxExportSettings?)"/>).</summary>
    /// <param name="path">The .onnx file to write.</param>
    /// <param name="settings">IR version, opset and float64.</param>
    member this.ExportDecoderOnnx(path: string, [<Optional>] settings: OnnxExportSettings) : unit =
        Arg.notNull "path" path
        Runs.createFolderOf path
        File.WriteAllBytes(path, this.ExportDecoderOnnx(settings))

    /// <summary>Writes both networks to ONNX files: the encoder (input "x", outputs named by the latent
    /// family's parameters) and the decoder (input "z", output "mean"). Load them with
    /// <c>OnnxModels.Load</c> (package FunctionalBayes.CSharp.OnnxRuntime).</summary>
    /// <param name="encoderPath">The encoder's .onnx file.</param>
    /// <param name="decoderPath">The decoder's .onnx file.</param>
    /// <param name="settings">IR version, opset and float64.</param>
    member this.ExportOnnx(encoderPath: string, decoderPath: string, [<Optional>] settings: OnnxExportSettings) =
        Arg.notNull "encoderPath" encoderPath
        Arg.notNull "decoderPath" decoderPath
        // both are built before either file is written, so a refused decoder leaves no half export behind
        let encoder = this.ExportEncoderOnnx(settings)
        let decoder = this.ExportDecoderOnnx(settings)
        Runs.createFolderOf encoderPath
        Runs.createFolderOf decoderPath
        File.WriteAllBytes(encoderPath, encoder)
        File.WriteAllBytes(decoderPath, decoder)
