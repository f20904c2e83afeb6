namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// What a site of a model is.
type SiteKind =
    /// A random variable: latent, or observed when it has data.
    | SampleSite
    /// A learnable parameter with a constraint (a guide's variational parameter, for example).
    | ParamSite
    /// A named function of other values, recorded for users to read.
    | DeterministicSite
    /// An extra term added to the log density.
    | FactorSite
    /// The indices of a plate (a conditionally independent batch).
    | PlateSite

/// What a site is to a guide (Site.Role): a guide marks the sites that are its own business, so that
/// what reads a guide's trace finds them by role, not by name.
[<RequireQualifiedAccess>]
type GuideRole =
    /// An ordinary site: the model's, or a guide's that stands for the model's site of the same name.
    | Ordinary
    /// A draw the guide makes on the way to its latents (a flat or unconstrained vector): no site of the
    /// model has it, and posterior draws leave it out (NumPyro's is_auxiliary).
    | Auxiliary
    /// The guide's location on unconstrained space as one flat vector: the MAP point an
    /// AutoLaplaceApproximation guide is trained to, where the Laplace approximation is centred.
    | FlatLocation

/// A plate a site sits in: its full size and the size of the subsample actually used.
type PlateFrame = { Name: string; Size: int; SubsampleSize: int }

/// One site of a model run, as handlers see and complete it. A handler returns a changed copy.
[<NoEquality; NoComparison>]
type Site =
    { Name: string
      Kind: SiteKind
      /// The distribution of a sample site.
      Dist: Distribution option
      /// The value: given (observed, substituted, replayed) or drawn by the interpreter.
      Value: Tensor option
      IsObserved: bool
      /// The key the interpreter draws with (given by the seed handler).
      Key: RngKey option
      /// Multiplies the site's log density (plates with subsampling, the scale handler).
      Scale: Tensor option
      /// Where false, the site's log density is zero.
      Mask: Tensor option
      /// A param site's constraint.
      Constraint: Constraint
      /// A param site's initial value, from a key.
      Init: (RngKey -> Tensor) option
      /// A plate site's size and subsample size.
      PlateSize: int * int
      /// The plates the site sits in, innermost first.
      Plates: PlateFrame list
      /// What the site is to a guide (Handlers.role sets it).
      Role: GuideRole }

/// Interprets sites: a chain of handlers ending at the default interpreter, which draws values.
[<AbstractClass>]
type Interpreter() =
    /// Completes a site (gives it a value) and returns it.
    abstract Process: Site -> Site
    /// The default interpreter at the end of the chain (sites hidden by block go straight to it).
    abstract Root: Interpreter

/// A probabilistic program: a value that does nothing until an interpreter runs it.
/// Build one with the model { } computation expression and the functions of the Model module.
[<NoEquality; NoComparison>]
type Model<'T> = internal Model of (Interpreter -> 'T)

/// The default interpreter: gives each site without a value one, drawn with the site's key.
type internal DefaultInterpreter() =
    inherit Interpreter()
    static member val Instance = DefaultInterpreter()
    override this.Root = this :> Interpreter
    override _.Process(s: Site) =
        match s.Value with
        | Some _ -> s
        | None ->
            let noKey () =
                invalidOp (sprintf "Site '%s' has no value and no random key. Run the model under Handlers.seed, or give the site a value with Handlers.substitute or Handlers.condition." s.Name)
            match s.Kind with
            | SampleSite ->
                match s.Key, s.Dist with
                | Some k, Some d ->
                    let v = if Dist.hasRsample d then Dist.rsample k [||] d else Dist.sample k [||] d
                    { s with Value = Some v }
                | None, _ -> noKey ()
                | _, None -> invalidOp (sprintf "Sample site '%s' has no distribution." s.Name)
            | ParamSite ->
                match s.Init, s.Key with
                | Some init, Some k -> { s with Value = Some (init k) }
                | Some _, None -> noKey ()
                | None, _ -> invalidOp (sprintf "Param site '%s' has neither a value nor an initializer." s.Name)
            | PlateSite ->
                let size, sub = s.PlateSize
                if sub >= size then { s with Value = Some (Tensor.ofInts (Array.init size id)) }
                else
                    match s.Key with
                    | Some k -> { s with Value = Some (Rng.permutation k size |> Tensor.narrow 0 0 sub) }
                    | None -> noKey ()
            | DeterministicSite | FactorSite ->
                invalidOp (sprintf "Site '%s' (%A) has no value." s.Name s.Kind)

/// The model { } computation expression.
type ModelBuilder() =
    member _.Return(x: 'T) : Model<'T> = Model(fun _ -> x)
    member _.ReturnFrom(m: Model<'T>) : Model<'T> = m
    member _.Bind(Model m: Model<'T>, f: 'T -> Model<'U>) : Model<'U> =
        Model(fun i ->
            let (Model g) = f (m i)
            g i)
    member _.Zero() : Model<unit> = Model(fun _ -> ())
    member _.Delay(f: unit -> Model<'T>) : Model<'T> =
        Model(fun i ->
            let (Model g) = f ()
            g i)
    member _.Combine(Model a: Model<unit>, Model b: Model<'T>) : Model<'T> = Model(fun i -> a i; b i)
    member _.For(xs: seq<'T>, f: 'T -> Model<unit>) : Model<unit> =
        Model(fun i ->
            for x in xs do
                let (Model g) = f x
                g i)
    member _.While(cond: unit -> bool, Model body: Model<unit>) : Model<unit> =
        Model(fun i ->
            while cond () do
                body i)
    member _.MergeSources(Model a: Model<'T>, Model b: Model<'U>) : Model<'T * 'U> = Model(fun i -> a i, b i)
    member _.BindReturn(Model m: Model<'T>, f: 'T -> 'U) : Model<'U> = Model(fun i -> f (m i))

[<AutoOpen>]
module ModelBuilderInstance =
    /// Builds a Model from sites: let! x = Model.sample "x" d ... return ...
    let model = ModelBuilder()

[<RequireQualifiedAccess>]
module Site =
    /// A fresh site with nothing set.
    let create (name: string) (kind: SiteKind) : Site =
        if String.IsNullOrWhiteSpace name then invalidArg "name" "A site needs a non-empty name."
        { Name = name; Kind = kind; Dist = None; Value = None; IsObserved = false; Key = None; Scale = None
          Mask = None; Constraint = Constraint.Real; Init = None; PlateSize = (0, 0); Plates = []
          Role = GuideRole.Ordinary }

    /// The site's log density: scale · mask · log p(value) (sample sites) or the factor itself.
    let logDensity (s: Site) : Tensor =
        let raw =
            match s.Kind, s.Dist, s.Value with
            | SampleSite, Some d, Some v -> Dist.logProb d v
            | FactorSite, _, Some v -> v
            | _ -> invalidOp (sprintf "Site '%s' has no log density." s.Name)
        let masked =
            match s.Mask with
            | Some m -> Tensor.where m raw (Tensor.zerosLike raw)
            | None -> raw
        match s.Scale with
        | Some c -> masked * c
        | None -> masked

    /// True for a sample site that is not observed: a latent variable.
    let isLatent (s: Site) = s.Kind = SampleSite && not s.IsObserved

/// A completed run of a model: its sites in the order they ran.
[<NoEquality; NoComparison>]
type Trace =
    { Sites: Site[] }

    /// The site with this name; raises, listing the sites, when there is none.
    member t.Item
        with get (name: string) =
            match t.Sites |> Array.tryFind (fun s -> s.Name = name && s.Kind <> PlateSite) with
            | Some s -> s
            | None ->
                let names = t.Sites |> Array.filter (fun s -> s.Kind <> PlateSite) |> Array.map (fun s -> s.Name)
                raise (Collections.Generic.KeyNotFoundException(sprintf "No site named '%s'; the sites are: %s." name (String.Join(", ", names))))

    /// The site's value.
    member t.Value(name: string) = t.[name].Value.Value

[<RequireQualifiedAccess>]
module Trace =
    let tryFind (name: string) (t: Trace) = t.Sites |> Array.tryFind (fun s -> s.Name = name && s.Kind <> PlateSite)
    /// Latent sample sites.
    let latents (t: Trace) = t.Sites |> Array.filter Site.isLatent
    /// Observed sample sites.
    let observed (t: Trace) = t.Sites |> Array.filter (fun s -> s.Kind = SampleSite && s.IsObserved)
    let parameters (t: Trace) = t.Sites |> Array.filter (fun s -> s.Kind = ParamSite)
    /// The sum of every sample and factor site's log density.
    let logJoint (t: Trace) : Tensor =
        t.Sites
        |> Array.filter (fun s -> s.Kind = SampleSite || s.Kind = FactorSite)
        |> Array.fold (fun acc s -> acc + Tensor.sum (Site.logDensity s)) (Tensor.scalar 0.0)
    /// Every site's value by name (plates left out).
    let values (t: Trace) : Map<string, Tensor> =
        t.Sites |> Array.filter (fun s -> s.Kind <> PlateSite && s.Value.IsSome) |> Array.map (fun s -> s.Name, s.Value.Value) |> Map.ofArray

/// The primitives models are built from.
[<RequireQualifiedAccess>]
module Model =

    let private emit (s: Site) : Model<Tensor> = Model(fun i -> (i.Process s).Value.Value)

    /// A latent random variable.
    let sample (name: string) (d: Distribution) : Model<Tensor> =
        emit { Site.create name SampleSite with Dist = Some d }

    /// A random variable observed as y when y is given, sampled (as a prediction) when not.
    let observe (name: string) (d: Distribution) (y: Tensor option) : Model<Tensor> =
        match y with
        | Some v -> emit { Site.create name SampleSite with Dist = Some d; Value = Some v; IsObserved = true }
        | None -> sample name d

    /// A learnable parameter on a constrained set, initialized to `init` unless given a value.
    let param (name: string) (init: Tensor) (c: Constraint) : Model<Tensor> =
        emit { Site.create name ParamSite with Init = Some (fun _ -> init); Constraint = c }

    /// A learnable parameter whose initial value is drawn from a key.
    let paramWith (name: string) (init: RngKey -> Tensor) (c: Constraint) : Model<Tensor> =
        emit { Site.create name ParamSite with Init = Some init; Constraint = c }

    /// Records a value under a name (for example a linear predictor) and returns it.
    let deterministic (name: string) (v: Tensor) : Model<Tensor> =
        emit { Site.create name DeterministicSite with Value = Some v }

    /// Adds a term to the log density.
    let factor (name: string) (logFactor: Tensor) : Model<unit> =
        Model(fun i -> i.Process { Site.create name FactorSite with Value = Some logFactor } |> ignore)

    /// A plate of `size` conditionally independent elements. With a subsample size, the body gets
    /// that many random indices (the data is to be indexed with them) and every log density inside
    /// is scaled by size / subsample so that it estimates the full sum without bias.
    let plate (name: string) (size: int) (subsample: int option) (body: Tensor -> Model<'T>) : Model<'T> =
        if size < 1 then invalidArg "size" (sprintf "plate '%s': size must be positive, got %d." name size)
        let sub = defaultArg subsample size
        if sub < 1 || sub > size then
            invalidArg "subsample" (sprintf "plate '%s': subsample size must be in 1..%d, got %d." name size sub)
        Model(fun outer ->
            let s = outer.Process { Site.create name PlateSite with PlateSize = (size, sub) }
            let idx = s.Value.Value
            let frame = { Name = name; Size = size; SubsampleSize = sub }
            let factor = if sub = size then None else Some (Tensor.scalar (float size / float sub))
            let inner =
                { new Interpreter() with
                    member _.Root = outer.Root
                    member _.Process site =
                        let scale =
                            match factor, site.Scale with
                            | Some f, Some c -> Some (f * c)
                            | Some f, None -> Some f
                            | None, c -> c
                        outer.Process { site with Plates = frame :: site.Plates; Scale = scale } }
            let (Model b) = body idx
            b inner)

    /// A model that returns x.
    let ret (x: 'T) : Model<'T> = Model(fun _ -> x)
    let bind (f: 'T -> Model<'U>) (m: Model<'T>) : Model<'U> = model.Bind(m, f)
    let map (f: 'T -> 'U) (Model m: Model<'T>) : Model<'U> = Model(fun i -> f (m i))

    /// Runs a model with the default interpreter: every site must have a value or a key by then.
    let run (Model m: Model<'T>) : 'T = m DefaultInterpreter.Instance
