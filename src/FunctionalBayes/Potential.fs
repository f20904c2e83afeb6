namespace FunctionalBayes

open System
open System.Globalization
open System.Text.Json.Nodes
open FunctionalBayes.Tensors

/// A latent site as seen on unconstrained space.
type LatentSite =
    { Name: string
      /// The shape of the site's value.
      Shape: int[]
      Support: Constraint
      Bijector: Bijector
      /// The shape of the unconstrained vector that maps onto the value.
      UnconstrainedShape: int[] }

/// How to choose the starting point of inference, on unconstrained space. Plain data: given values compare
/// by dtype, shape and elements (a Tensor itself compares by reference), so options holding them have
/// structural equality and round-trip through a posterior file.
[<CustomEquality; NoComparison>]
type InitStrategy =
    /// Uniform in (-radius, radius) on unconstrained space (Stan's default, radius 2).
    | InitUniform of radius: float
    /// The element-wise median of prior draws.
    | InitMedian of draws: int
    /// Unconstrained zeros: a feasible point of every support (1 for positive sites, the centre of an interval).
    | InitFeasible
    /// Given constrained values; sites left out start uniform in (-2, 2).
    | InitValues of Map<string, Tensor>

    /// Checks the strategy (the one place its rule lives): raises ArgumentOutOfRangeException("Init") for a
    /// radius that is not positive and finite, or fewer than one median draw; `who` starts the message.
    static member Validate(s: InitStrategy, who: string) =
        match s with
        | InitUniform r when not (r > 0.0 && Double.IsFinite r) ->
            raise (ArgumentOutOfRangeException("Init", r, sprintf "%s: the init radius must be positive and finite, got %g." who r))
        | InitMedian n when n < 1 -> raise (ArgumentOutOfRangeException("Init", n, sprintf "%s: InitMedian needs at least one draw, got %d." who n))
        | InitUniform _ | InitMedian _ | InitFeasible | InitValues _ -> ()

    override s.Equals(other: obj) =
        let sameTensor (a: Tensor) (b: Tensor) = a.Dtype = b.Dtype && a.Shape = b.Shape && Tensor.toArray a = Tensor.toArray b
        match other with
        | :? InitStrategy as o ->
            match s, o with
            | InitUniform a, InitUniform b -> a = b
            | InitMedian a, InitMedian b -> a = b
            | InitFeasible, InitFeasible -> true
            | InitValues a, InitValues b ->
                a.Count = b.Count && a |> Map.forall (fun k t -> match b.TryFind k with Some u -> sameTensor t u | None -> false)
            | (InitUniform _ | InitMedian _ | InitFeasible | InitValues _), _ -> false
        | _ -> false

    override s.GetHashCode() =
        match s with
        | InitUniform r -> hash (0, r)
        | InitMedian n -> hash (1, n)
        | InitFeasible -> 2
        | InitValues vs -> hash (3, [ for KeyValue (k, t) in vs -> k, t.Shape ])

/// The log density of a model on unconstrained space, with what is needed to move between spaces.
[<NoEquality; NoComparison>]
type Potential =
    { /// The latent sites, in model order.
      Latents: LatentSite[]
      /// −(log joint at the constrained values + Σ log |det J|), a function of one unconstrained tensor per latent.
      Energy: Tensor[] -> Tensor
      /// The constrained value of each latent site.
      Constrain: Tensor[] -> Map<string, Tensor>
      /// The unconstrained tensors for given constrained values.
      Unconstrain: Map<string, Tensor> -> Tensor[] }

[<RequireQualifiedAccess>]
module LogDensity =

    /// Runs a model with the given site values and returns its trace; latent sites without a value
    /// raise (name the site) unless a key is given to draw them.
    let traceWith (values: Map<string, Tensor>) (key: RngKey option) (m: Model<'T>) : 'T * Trace =
        match key with
        | Some k -> Traced.atValues k values m
        | None -> Traced.atValuesWith id values m

    /// The log joint density of a model at the given values of its latent (and param) sites.
    let logJoint (values: Map<string, Tensor>) (m: Model<'T>) : Tensor =
        traceWith values None m |> snd |> Trace.logJoint

    /// Runs the model with each latent site given on unconstrained space (by name): its constrained
    /// value is forward(u) through the bijector of the support its distribution has in this run, so
    /// supports whose bounds are batched or are other sites' values (a Uniform(0, s) with s latent) are
    /// re-derived at each evaluation, as NumPyro does. Param sites take `paramValues`; sites that still
    /// need randomness (params left out, plates) draw with `key`. Returns the trace and, per latent
    /// name, log |det J| of its map (summed over the site).
    let constrainedRun (us: Map<string, Tensor>) (paramValues: Map<string, Tensor>) (key: RngKey) (m: Model<'T>) : Trace * Map<string, Tensor> =
        let logDets = Collections.Generic.Dictionary<string, Tensor>()
        let reparam =
            Handlers.custom (fun s next ->
                match s.Kind, us.TryFind s.Name with
                | SampleSite, Some u when not s.IsObserved && s.Value.IsNone ->
                    let b = Constraint.bijector (Dist.support s.Dist.Value)
                    logDets.[s.Name] <- Tensor.sum (Bijector.logAbsDetJacobian b u)
                    next { s with Value = Some (Bijector.forward b u) }
                | _ -> next s) m
        let _, tr = Traced.atValues key paramValues reparam
        tr, logDets |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq

    /// The potential on unconstrained space; the latent sites are found from one prior draw with `key`.
    /// Supports that depend on tensors (Constraint.IsDependent) are re-derived at every evaluation.
    let potential (key: RngKey) (m: Model<'T>) : Potential =
        let _, proto = Traced.probe key m
        let latents =
            Trace.latents proto
            |> Array.map (fun s ->
                let support = Dist.support s.Dist.Value
                if support.IsDiscrete then
                    invalidArg "m" (sprintf "Site '%s' (%s) is discrete: gradient-based inference needs continuous latent sites; marginalize it out or observe it." s.Name (Dist.name s.Dist.Value))
                let b = Constraint.bijector support
                let shape = s.Value.Value.Shape
                { Name = s.Name; Shape = shape; Support = support; Bijector = b; UnconstrainedShape = Bijector.unconstrainedShape b shape })
        let paramValues = Trace.parameters proto |> Array.map (fun s -> s.Name, s.Value.Value) |> Map.ofArray
        let dependent = latents |> Array.exists (fun l -> l.Support.IsDependent)
        let byName (us: Tensor[]) =
            if us.Length <> latents.Length then
                invalidArg "us" (sprintf "Potential: %d unconstrained tensors for %d latent sites (%s)." us.Length latents.Length (String.Join(", ", latents |> Array.map (fun l -> l.Name))))
            Array.fold2 (fun acc (l: LatentSite) (u: Tensor) -> Map.add l.Name u acc) Map.empty latents us
        let constrain (us: Tensor[]) =
            if dependent then
                let tr, _ = constrainedRun (byName us) paramValues key m
                latents |> Array.fold (fun acc l -> Map.add l.Name (tr.Value l.Name) acc) Map.empty
            else
                byName us |> ignore // checks the count
                Array.fold2 (fun acc (l: LatentSite) (u: Tensor) -> Map.add l.Name (Bijector.forward l.Bijector u) acc) Map.empty latents us
        let energy (us: Tensor[]) =
            if dependent then
                let tr, logDets = constrainedRun (byName us) paramValues key m
                -(Trace.logJoint tr + (logDets |> Map.fold (fun acc _ v -> acc + v) (Tensor.scalar 0.0)))
            else
                let values = constrain us
                let values = Map.fold (fun acc k v -> Map.add k v acc) values paramValues
                let lj = logJoint values m
                let logDet = Array.fold2 (fun acc (l: LatentSite) u -> acc + Tensor.sum (Bijector.logAbsDetJacobian l.Bijector u)) (Tensor.scalar 0.0) latents us
                -(lj + logDet)
        let unconstrain (values: Map<string, Tensor>) =
            let missing = latents |> Array.tryFind (fun l -> not (values.ContainsKey l.Name))
            match missing with
            | Some l -> invalidArg "values" (sprintf "Potential.unconstrain: no value for latent site '%s'." l.Name)
            | None -> ()
            if dependent then
                // the supports at these values: run the model at them and read each site's distribution
                let given = latents |> Array.fold (fun acc l -> Map.add l.Name values.[l.Name] acc) paramValues
                let _, tr = Traced.atValues key given m
                latents |> Array.map (fun l -> Bijector.inverse (Constraint.bijector (Dist.support (tr.Item l.Name).Dist.Value)) values.[l.Name])
            else
                latents |> Array.map (fun l -> Bijector.inverse l.Bijector values.[l.Name])
        { Latents = latents; Energy = energy; Constrain = constrain; Unconstrain = unconstrain }

    /// A starting point on unconstrained space for the potential, by the given strategy.
    let init (strategy: InitStrategy) (key: RngKey) (m: Model<'T>) (p: Potential) : Tensor[] =
        let uniform (k: RngKey) (radius: float) (l: LatentSite) = (Rng.uniform k l.UnconstrainedShape * 2.0 - 1.0) * radius
        let keys = Rng.splitN key (p.Latents.Length + 1)
        match strategy with
        | InitUniform r ->
            InitStrategy.Validate(strategy, "InitUniform")
            p.Latents |> Array.mapi (fun i l -> uniform keys.[i] r l)
        | InitFeasible -> p.Latents |> Array.map (fun l -> Tensor.zeros l.UnconstrainedShape)
        | InitMedian n ->
            InitStrategy.Validate(strategy, "InitMedian")
            let draws =
                Array.init n (fun i -> Traced.run (Rng.foldIn keys.[p.Latents.Length] i) m |> snd)
            p.Latents |> Array.map (fun l ->
                let stacked = draws |> Array.map (fun t -> t.Value l.Name) |> Tensor.stack 0 |> Tensor.toArray
                let size = Shape.size l.Shape
                let med =
                    Array.init size (fun j ->
                        let col = Array.init n (fun i -> stacked.[i * size + j]) |> Array.sort
                        if n % 2 = 1 then col.[n / 2] else 0.5 * (col.[n / 2 - 1] + col.[n / 2]))
                l.Name, Tensor.create l.Shape med)
            |> Map.ofArray
            |> p.Unconstrain
        | InitValues values ->
            p.Latents |> Array.mapi (fun i l ->
                match values.TryFind l.Name with
                | Some v ->
                    if not (Shape.equal v.Shape l.Shape) then
                        invalidArg "strategy" (sprintf "InitValues: site '%s' has shape %s but the value given has %s." l.Name (Shape.format l.Shape) (Shape.format v.Shape))
                    Bijector.inverse l.Bijector v
                | None -> uniform keys.[i] 2.0 l)

/// The value and gradient of a potential energy U(q) = −log p(q) at a flat unconstrained position: what
/// MCMC kernels call, thousands of times per draw. An evaluator owns scratch buffers, so it is not
/// thread-safe: each chain or thread makes its own from a `GradientSource`.
type IGradientEvaluator =
    /// The length of the flat position (the sum of the latents' unconstrained sizes, in model order).
    abstract Dim: int
    /// Writes ∇U(position) into `gradient` (length Dim) and returns U(position).
    abstract Evaluate: position: ReadOnlySpan<float> * gradient: Span<float> -> float

/// How a gradient source computes (saved with a sampled posterior as a tag, GradientKind.toJson).
[<RequireQualifiedAccess>]
type GradientKind =
    /// The energy on the autodiff tape.
    | Tape
    /// The tape, because the energy could not be compiled (the reason).
    | TapeFallback of reason: string
    /// A compiled program of this many primitive ops.
    | Compiled of instructions: int
    /// A source of one's own (a hand-written gradient, say), described.
    | Custom of description: string

    /// The description for messages and reports: "tape", "tape (not compiled: …)", "compiled (412 instructions)".
    member k.Text =
        match k with
        | Tape -> "tape"
        | TapeFallback why -> sprintf "tape (not compiled: %s)" why
        | Compiled n -> sprintf "compiled (%d instructions)" n
        | Custom description -> description

[<RequireQualifiedAccess>]
module GradientKind =

    /// The kind as a JSON object: its tag ("tape", "tapeFallback", "compiled", "custom") and its field.
    let toJson (k: GradientKind) : JsonNode =
        let o = JsonObject()
        let tag (t: string) = o.["tag"] <- JsonValue.Create t
        match k with
        | GradientKind.Tape -> tag "tape"
        | GradientKind.TapeFallback why -> tag "tapeFallback"; o.["reason"] <- JsonValue.Create why
        | GradientKind.Compiled n -> tag "compiled"; o.["instructions"] <- JsonValue.Create n
        | GradientKind.Custom d -> tag "custom"; o.["description"] <- JsonValue.Create d
        o

    /// The kind from toJson's object, or from the text files written before the tag (GradientKind.Text:
    /// "tape", "compiled (N instructions)", "tape (not compiled: …)", anything else a custom description);
    /// an error saying what is wrong for an unknown tag or a missing field.
    let ofJson (node: JsonNode) : Result<GradientKind, string> =
        let text (n: JsonNode | null) =
            match n with
            | :? JsonValue as v when v.GetValueKind() = Text.Json.JsonValueKind.String -> Some (string (v.GetValue<string>()))
            | _ -> None
        match node with
        | :? JsonValue ->
            match text node with
            | Some "tape" -> Ok GradientKind.Tape
            | Some t when t.StartsWith "tape (not compiled: " && t.EndsWith ")" -> Ok (GradientKind.TapeFallback (t.Substring(20, t.Length - 21)))
            | Some t ->
                let compiled = Text.RegularExpressions.Regex.Match(t, @"^compiled \((\d+) instructions\)$")
                if compiled.Success then Ok (GradientKind.Compiled (Int32.Parse(compiled.Groups.[1].Value, CultureInfo.InvariantCulture)))
                else Ok (GradientKind.Custom t)
            | None -> Error (sprintf "the gradient kind %s is neither a tag object nor a text" (node.ToJsonString()))
        | _ ->
            let field (name: string) = match text node.[name] with Some s -> Ok s | None -> Error (sprintf "the gradient kind %s has no text '%s'" (node.ToJsonString()) name)
            match field "tag" with
            | Ok "tape" -> Ok GradientKind.Tape
            | Ok "tapeFallback" -> field "reason" |> Result.map GradientKind.TapeFallback
            | Ok "compiled" ->
                match node.["instructions"] with
                | :? JsonValue as v when v.GetValueKind() = Text.Json.JsonValueKind.Number ->
                    // an integral number reads as int; any other is refused (FormatException or InvalidOperationException)
                    let count = try Some (v.GetValue<int>()) with :? FormatException | :? InvalidOperationException -> None
                    match count with
                    | Some n when n >= 0 -> Ok (GradientKind.Compiled n)
                    | _ -> Error (sprintf "the compiled gradient kind's 'instructions' is %s, not a count" (v.ToJsonString()))
                | _ -> Error "the compiled gradient kind has no number 'instructions'"
            | Ok "custom" -> field "description" |> Result.map GradientKind.Custom
            | Ok other -> Error (sprintf "unknown gradient kind '%s' (known: tape, tapeFallback, compiled, custom)" other)
            | Error e -> Error e

/// Makes gradient evaluators; how they compute (tape or compiled program) is its own business.
[<NoEquality; NoComparison>]
type GradientSource =
    { /// The flat dimension.
      Dim: int
      /// How it computes (GradientKind.Text describes it for messages).
      Kind: GradientKind
      /// A new evaluator with its own buffers.
      Create: unit -> IGradientEvaluator }

[<RequireQualifiedAccess>]
module FlatPosition =

    /// The flat length of the potential's latents.
    let dim (p: Potential) = p.Latents |> Array.sumBy (fun l -> Shape.size l.UnconstrainedShape)

    /// Splits a flat position into one unconstrained tensor per latent.
    let split (p: Potential) (q: ReadOnlySpan<float>) : Tensor[] =
        let out = Array.zeroCreate p.Latents.Length
        let mutable off = 0
        for i in 0 .. p.Latents.Length - 1 do
            let l = p.Latents.[i]
            let n = Shape.size l.UnconstrainedShape
            out.[i] <- Tensor.create l.UnconstrainedShape (q.Slice(off, n).ToArray())
            off <- off + n
        out

    /// Concatenates one unconstrained tensor per latent into a flat position.
    let join (p: Potential) (us: Tensor[]) : float[] =
        if us.Length <> p.Latents.Length then
            invalidArg "us" (sprintf "FlatPosition.join: %d tensors for %d latent sites." us.Length p.Latents.Length)
        Array.concat (us |> Array.map (fun u -> Tensor.toArray u))

[<RequireQualifiedAccess>]
module GradientSource =

    /// Evaluators that run the potential's energy on the autodiff tape: they work for every model
    /// (also those whose graph depends on latent values) and allocate per call.
    let tape (p: Potential) : GradientSource =
        let dim = FlatPosition.dim p
        let create () =
            { new IGradientEvaluator with
                member _.Dim = dim
                member _.Evaluate(q, g) =
                    let v, gs = Autodiff.valueAndGradN p.Energy (FlatPosition.split p q)
                    let mutable off = 0
                    for t in gs do
                        let a = Tensor.toArray t
                        a.AsSpan().CopyTo(g.Slice(off, a.Length))
                        off <- off + a.Length
                    Tensor.toScalar v }
        { Dim = dim; Kind = GradientKind.Tape; Create = create }

    /// The source with every evaluation counted in `count` and its Stopwatch ticks added to `ticks`
    /// (thread-safe: chains share them), for reports of gradients per effective draw.
    let instrumented (count: int64 ref) (ticks: int64 ref) (s: GradientSource) : GradientSource =
        { s with
            Create = fun () ->
                let e = s.Create()
                { new IGradientEvaluator with
                    member _.Dim = e.Dim
                    member _.Evaluate(q, g) =
                        Threading.Interlocked.Increment &count.contents |> ignore
                        let t0 = Diagnostics.Stopwatch.GetTimestamp()
                        let r = e.Evaluate(q, g)
                        Threading.Interlocked.Add(&ticks.contents, Diagnostics.Stopwatch.GetTimestamp() - t0) |> ignore
                        r } }
