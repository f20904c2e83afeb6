namespace FunctionalBayes

open System
open System.IO
open FunctionalBayes.Tensors

[<RequireQualifiedAccess>]
module Fit =

    /// Checks the settings (the one place their rules live; SviRunOptions.Validate for the loop):
    /// raises ArgumentOutOfRangeException naming the setting and the fix.
    let validate (opts: FitOptions) =
        let bad (name: string) (value: obj) (msg: string) = raise (ArgumentOutOfRangeException(name, value, "Fit.vi: " + msg))
        if not (opts.LearningRate > 0.0 && Double.IsFinite opts.LearningRate) then
            bad "LearningRate" opts.LearningRate (sprintf "the learning rate must be positive and finite, got %g." opts.LearningRate)
        if opts.Particles < 1 then bad "Particles" opts.Particles (sprintf "particles must be at least 1, got %d." opts.Particles)
        match opts.ClipNorm with
        | Some c when not (c > 0.0) -> bad "ClipNorm" c (sprintf "the clip norm must be positive, got %g." c)
        | _ -> ()
        InitStrategy.Validate(opts.Init, "Fit.vi")
        match opts.AutoGuide with
        | AutoGuideKind.AutoLowRankMultivariateNormal (Some r) when r < 1 -> bad "AutoGuide" r (sprintf "the rank of AutoLowRankMultivariateNormal must be at least 1, got %d." r)
        | _ -> ()
        SviRunOptions.Validate opts.Run

    /// The total number of steps a fit with these options runs on `rows` rows (before any early stop).
    let totalSteps (opts: FitOptions) (rows: int) : int = validate opts; fst (Svi.schedule opts.Run rows)

    /// The model with the fitted values of its own param sites (Model.param in the model, not the
    /// guide) substituted: what a Laplace approximation or a potential at the fit must use.
    let private atFittedParams (key: RngKey) (ps: Map<string, Tensor>) (m: Model<'T>) : Model<'T> =
        let _, proto = Traced.probe key m
        let mp = Trace.parameters proto |> Array.choose (fun s -> ps.TryFind s.Name |> Option.map (fun v -> s.Name, v)) |> Map.ofArray
        if mp.IsEmpty then m else Handlers.substitute mp m

    /// The guide a fit ends with: for an AutoLaplaceApproximation guide, the Laplace approximation at
    /// the fitted MAP point ("auto_loc"), with the Hessian of the potential at the fitted values of the
    /// model's params; any other guide as it is. `kGuide` is the key the guide was built with.
    let finishGuide (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (kGuide: RngKey) (guide: Guide) (ps: Map<string, Tensor>) : Guide =
        match guide.Origin with
        | GuideOrigin.Auto AutoGuideKind.AutoLaplaceApproximation ->
            match ps.TryFind "auto_loc" with
            | Some loc -> Guide.laplace (atFittedParams kGuide ps (modelFn data)) kGuide guide.Latents loc
            | None -> invalidArg "ps" "Fit: the parameters have no 'auto_loc'; they do not belong to an AutoLaplaceApproximation guide."
        | GuideOrigin.Auto _ | GuideOrigin.User | GuideOrigin.Laplace -> guide

    /// The guide a fit starts from (the user's, else the options' autoguide), and the keys of the guide and the run.
    let private startGuide (user: Guide option) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) =
        let kGuide, kRun = Rng.split (Rng.key opts.Seed)
        let guide =
            match user with
            | Some g -> g
            | None -> Guide.auto opts.AutoGuide opts.Init kGuide (modelFn data)
        guide, kGuide, kRun

    let private viFrom (ctx: RunContext) (resumeFrom: string option) (user: Guide option) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (source: BatchSource) : Posterior<'T> * SviResult =
        validate opts
        let data = source.Sample
        let streamed = not data.IsEmpty && Data.rows data < source.Rows
        if streamed then
            if opts.Run.BatchSize.IsNone then
                invalidArg "opts" (sprintf "Fit.vi: the data are streamed (%d rows, not held in memory); set Run.BatchSize to fit in minibatches." source.Rows)
            if opts.AutoGuide = AutoGuideKind.AutoLaplaceApproximation && user.IsNone then
                invalidArg "opts" "Fit.vi: AutoLaplaceApproximation needs every row at once for its Hessian; load the rows in memory, or choose another autoguide for streamed data."
        Check.someRows "Fit.vi" data
        Check.namingDataKeys data (fun () -> Check.observedData (modelFn data) data)
        let total, _ = Svi.schedule opts.Run source.Rows
        let guide, kGuide, kRun = startGuide user opts modelFn data
        let schedule =
            match opts.Schedule with
            | LrSchedule.Cosine -> Schedule.CosineDecay (opts.LearningRate, total, 0.0)
            | LrSchedule.WarmupCosine -> Schedule.OneCycle(opts.LearningRate, total)
            | LrSchedule.Constant -> Schedule.Constant opts.LearningRate
        let cfg =
            { Model = modelFn
              Guide = guide
              Optimizer = defaultArg opts.Optimizer (Optimizer.AdamWith schedule)
              Elbo = (match opts.Run.BatchSize with Some _ -> Elbo.Batched opts.Particles | None -> Elbo.Trace opts.Particles)
              ClipNorm = opts.ClipNorm }
        let r =
            match resumeFrom with
            | None -> Svi.runSourceIn ctx true cfg kRun source opts.Run
            | Some path -> Svi.resumeSource ctx true cfg kRun source opts.Run path
        let ps = r.Params
        let guide = finishGuide modelFn data kGuide guide ps
        { Model = modelFn; Source = PosteriorSource.Guide { Guide = guide; Params = ps; Losses = r.Losses; StoppedEarly = r.StoppedEarly; Options = Some opts }
          Signature = ModelSignature.ofModel (modelFn data) data |> ModelSignature.withLevels source.Levels }, r

    /// A fit on data in memory: the options and the row rule checked first.
    let private viData (ctx: RunContext) (resumeFrom: string option) (user: Guide option) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) =
        validate opts
        Data.rows data |> ignore
        viFrom ctx resumeFrom user opts modelFn (BatchSource.ofData data)

    /// viRun under a run context: progress, cancellation (OperationCanceledException after the current
    /// step) and checkpoints.
    let viRunIn (ctx: RunContext) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> * SviResult =
        viData ctx None None opts modelFn data

    /// Continues the fit (same options, model and data) that wrote the checkpoint at `path`; the result
    /// has the same bits as the uninterrupted fit's.
    let viResume (ctx: RunContext) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (path: string) : Posterior<'T> * SviResult =
        viData ctx (Some path) None opts modelFn data

    /// Fits a model to data by SVI, and returns the run's result too (losses, whether it stopped early,
    /// how the gradients were computed). The options are checked first (Fit.validate), then the data
    /// (Check.observedData): non-finite values and observations outside their sites' supports are
    /// refused, naming the key or site, the row and the value.
    let viRun (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> * SviResult =
        viRunIn RunContext.Quiet opts modelFn data

    /// Fits a model by SVI on the batches of a source (a table streamed from a file or a database, say)
    /// under a run context, and returns the run's result too. A streamed source (its Sample fewer rows
    /// than its Rows) needs Run.BatchSize; its rows are checked by the source as it reads them, its Sample
    /// here as Fit.vi checks data.
    let viSourceRunIn (ctx: RunContext) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (source: BatchSource) : Posterior<'T> * SviResult =
        viFrom ctx None None opts modelFn source

    /// viSourceRunIn without progress, cancellation or checkpoints.
    let viSourceRun (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (source: BatchSource) : Posterior<'T> * SviResult =
        viSourceRunIn RunContext.Quiet opts modelFn source

    /// Fits a model by SVI on the batches of a source: data streamed from a table larger than memory, say.
    let viSource (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (source: BatchSource) : Posterior<'T> =
        fst (viSourceRun opts modelFn source)

    /// Fits a model to data by SVI. The model is a function of the named data (rows on the first axis);
    /// data given to predict later may leave out the observations.
    let vi (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        fst (viRun opts modelFn data)

    // ---- a guide of your own: an argument, not a setting (FitOptions stay plain data) --------------

    /// Fit.viSourceRunIn with a guide of your own in place of the options' autoguide (their AutoGuide is not
    /// used): under a run context, on the batches of a source (data in memory: BatchSource.ofData), with the
    /// run's result. The posterior's Options are these options; save it and read it back with Fit.loadWithGuide.
    let viWithGuideIn (ctx: RunContext) (guide: Guide) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (source: BatchSource) : Posterior<'T> * SviResult =
        viFrom ctx None (Some guide) opts modelFn source

    /// Continues the fit with a guide of your own (same guide, options, model and data) that wrote the
    /// checkpoint at `path`; the result has the same bits as the uninterrupted fit's.
    let viResumeWithGuide (ctx: RunContext) (guide: Guide) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (path: string) : Posterior<'T> * SviResult =
        viData ctx (Some path) (Some guide) opts modelFn data

    /// Fits a model to data by SVI with a guide of your own (a Guide.ofModel program with a sample site for
    /// every latent site of the model), as Fit.vi does with an autoguide.
    let viWithGuide (guide: Guide) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        fst (viData RunContext.Quiet None (Some guide) opts modelFn data)

    /// Samples the posterior of a model given data by NUTS with Stan's adaptation (Mcmc.run): draws per
    /// latent site with shape [chains; draws; ...site shape], the deterministic sites at every draw and
    /// the sampler's statistics per chain. The data are checked first, as for Fit.vi.
    let private mcmcFrom (ctx: RunContext) (resumeFrom: string option) (opts: McmcOptions) (source: Potential -> GradientSource) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        Mcmc.validate opts
        if not data.IsEmpty then Data.rows data |> ignore
        Check.someRows "Fit.mcmc" data
        let m = Check.namingDataKeys data (fun () -> let m = modelFn data in Check.observedData m data; m)
        let r =
            match resumeFrom with
            | None -> Mcmc.runWithSource ctx opts source m
            | Some path -> Mcmc.resume ctx opts m path
        Posterior.ofMcmc modelFn data r

    /// Fit.mcmc under a run context: progress per chain, messages, cancellation, a checkpoint per chain.
    let mcmcIn (ctx: RunContext) (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        mcmcFrom ctx None opts (Mcmc.gradientSource opts.Gradient) modelFn data

    /// Fit.mcmcIn with a gradient source of your own (an instrumented evaluator, say) in place of opts.Gradient.
    let mcmcWithSource (ctx: RunContext) (opts: McmcOptions) (source: Potential -> GradientSource) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        mcmcFrom ctx None opts source modelFn data

    /// Continues the sampling (same options, model and data) whose chains wrote checkpoints at `path`.
    let mcmcResume (ctx: RunContext) (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (path: string) : Posterior<'T> =
        mcmcFrom ctx (Some path) opts (Mcmc.gradientSource opts.Gradient) modelFn data

    /// Fit.mcmcIn with RunContext.Default (messages to the console).
    let mcmc (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        mcmcIn RunContext.Default opts modelFn data

    /// The guide posterior of withParams, with the user's guide or the options' autoguide; `what` starts the
    /// message when the parameters are not the guide's.
    let private paramsFor (what: string) (user: Guide option) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (ps: Map<string, Tensor>) : Posterior<'T> =
        validate opts
        let guide, kGuide, _ = startGuide user opts modelFn data
        let _, proto = Traced.run kGuide guide.Program
        match Trace.parameters proto |> Array.map (fun s -> s.Name) |> Array.filter (fun name -> not (ps.ContainsKey name)) with
        | [||] -> ()
        | missing ->
            raise (IO.InvalidDataException(sprintf "%s: no values for the guide's parameters %s; they come from a fit with another model or guide (given: %s)." what (String.Join(", ", missing)) (String.Join(", ", ps.Keys))))
        { Model = modelFn; Source = PosteriorSource.Guide { Guide = finishGuide modelFn data kGuide guide ps; Params = ps; Losses = [||]; StoppedEarly = false; Options = Some opts }
          Signature = ModelSignature.ofModel (modelFn data) data }

    /// A guide posterior with the given parameters, without fitting: the autoguide is built as Fit.vi builds it
    /// for these options (same model, data, guide and seed), then checked against the parameters and finished.
    let withParams (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (ps: Map<string, Tensor>) : Posterior<'T> =
        paramsFor "Fit.withParams" None opts modelFn data ps

    // ---- files (the format is PosteriorFile's) ------------------------------------------------

    /// Writes parameters as JSON; doubles round-trip exactly (PosteriorFile.saveParams).
    let saveParams (path: string) (ps: Map<string, Tensor>) = PosteriorFile.saveParams path ps

    /// Reads parameters written by saveParams; a malformed file is an InvalidDataException naming it.
    let loadParams (path: string) : Map<string, Tensor> = PosteriorFile.loadParams path

    /// Writes a posterior as JSON (doubles round-trip exactly) with its model signature (p.Signature: the
    /// latent and observed sites with kind, shape, support, dtype and the guide's layout of the flat vector,
    /// the data keys with shapes, dtypes and any vocabularies, from the data it was fitted to): a guide's
    /// parameters, kind, options and loss history, or a sampler's draws, deterministic sites, unconstrained
    /// positions and statistics per chain. Read it back with Fit.load.
    let save (path: string) (p: Posterior<'T>) = PosteriorFile.save path p

    /// Reads a posterior file for the model on its data, a guide posterior with the user's guide or the
    /// autoguide the file names (checked against the autoguide of `opts` when given).
    let private loadFrom (who: string) (path: string) (user: Guide option) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (opts: FitOptions option) : Posterior<'T> =
        let signature, contents = PosteriorFile.read path
        let m = modelFn data
        let inModel = ModelSignature.ofModel m data
        PosteriorFile.check path inModel signature
        let inModel = ModelSignature.withLevels (ModelSignature.levels signature) inModel
        match contents with
        | PosteriorFile.Contents.Guide (name, rank, ps, losses, stoppedEarly, saved) ->
            let opts =
                match user, name with
                | Some _, _ -> FitOptions.Default
                | None, "user" ->
                    invalidArg "path" (sprintf "%s: %s holds the parameters of a user guide; load it with Fit.loadWithGuide and that guide (C#: SviFitter.WithGuide(guide).Load)." who path)
                | None, name ->
                    let kind =
                        match PosteriorFile.autoKindOf name rank with
                        | Some k -> k
                        | None -> PosteriorFile.bad path (sprintf "unknown autoguide '%s'" name)
                    match opts with
                    | Some o when fst (PosteriorFile.autoKindName o.AutoGuide) <> name ->
                        PosteriorFile.bad path (sprintf "it holds an %s posterior, but the fit's guide is %s" name (fst (PosteriorFile.autoKindName o.AutoGuide)))
                    | _ -> ()
                    { FitOptions.Default with AutoGuide = kind }
            let p = paramsFor (sprintf "%s: %s" who path) user opts modelFn data ps
            let g = Posterior.guidePart who p
            { p with
                Source = PosteriorSource.Guide { g with Losses = losses; StoppedEarly = stoppedEarly; Options = saved }
                Signature = inModel }
        | PosteriorFile.Contents.Samples result ->
            let pot = LogDensity.potential (Rng.key 0UL) m
            let names = pot.Latents |> Array.map (fun l -> l.Name) |> Set.ofArray
            if names <> (result.Draws |> Map.keys |> Set.ofSeq) then
                PosteriorFile.bad path (sprintf "its draws are of %s but the model's latent sites are %s" (String.Join(", ", Map.keys result.Draws)) (String.Join(", ", names)))
            for l in pot.Latents do
                let d = result.Draws.[l.Name]
                if d.Rank < 2 || d.Shape.[2..] <> l.Shape then
                    PosteriorFile.bad path (sprintf "the draws of site '%s' have shape %s; the model's site has shape %s (draws need [chains; draws; %s])" l.Name (Shape.format d.Shape) (Shape.format l.Shape) (String.Join("; ", l.Shape)))
            { Model = modelFn; Source = PosteriorSource.Samples { result with Sites = pot.Latents }; Signature = inModel }

    /// Reads a posterior written by Fit.save, for the model `modelFn` on `data` (the data it was fitted to:
    /// guides and latent sites are rebuilt from them). The file's model signature is checked first: a
    /// latent or observed site, a slice of the guide's flat vector or a data key that differs is refused,
    /// naming the first difference ("site 'theta' has shape [7] in the model and [5] in the file"). A guide
    /// posterior is rebuilt from the autoguide kind the file names; with `opts`, the fit's settings are
    /// checked against the file (their autoguide kind must be the file's). The posterior's Options are the
    /// ones saved in the file. Raises InvalidDataException, naming the file, when it is malformed, truncated
    /// or empty, not a posterior, or does not belong to this model and guide; ArgumentException, naming the
    /// file, when it holds a user guide's parameters (read it with Fit.loadWithGuide).
    let load (path: string) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (opts: FitOptions option) : Posterior<'T> =
        loadFrom "Fit.load" path None modelFn data opts

    /// Fit.load for a posterior fitted with a guide of your own (Fit.viWithGuide): the guide is used as it is
    /// and given the saved parameters (an InvalidDataException, naming the file, when they are not its own).
    let loadWithGuide (guide: Guide) (path: string) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        loadFrom "Fit.loadWithGuide" path (Some guide) modelFn data None
