namespace FunctionalBayes

open System
open System.Collections.Generic
open FunctionalBayes.Tensors

/// Effect handlers: functions from a model to a model that change how its sites are interpreted
/// (NumPyro's seed, trace, substitute, condition, scale, mask, block, replay, reparam). The handler
/// closest to the model sees each site first. No handler keeps state between runs, so a handled
/// model can run on many threads at once.
[<RequireQualifiedAccess>]
module Handlers =

    /// Wraps the model's interpreter with a function of (site, next).
    let private handle (f: Site -> (Site -> Site) -> Site) (Model m: Model<'T>) : Model<'T> =
        Model(fun outer ->
            m { new Interpreter() with
                    member _.Root = outer.Root
                    member _.Process s = f s outer.Process })

    /// A handler from a function of (site, next): next passes the site on to the handlers outside
    /// this one (and finally the default interpreter) and returns it completed.
    let custom (f: Site -> (Site -> Site) -> Site) (m: Model<'T>) : Model<'T> = handle f m

    let private needsKey (s: Site) =
        s.Key.IsNone && s.Value.IsNone && (s.Kind = SampleSite || s.Kind = ParamSite || s.Kind = PlateSite)

    /// Gives every site that needs randomness its own key, split from `key` in site order.
    let seed (key: RngKey) (Model m: Model<'T>) : Model<'T> =
        Model(fun outer ->
            let k = ref key
            m { new Interpreter() with
                    member _.Root = outer.Root
                    member _.Process s =
                        if needsKey s then
                            let next, sub = Rng.split k.Value
                            k.Value <- next
                            outer.Process { s with Key = Some sub }
                        else outer.Process s })

    /// Records every completed site; the model then returns its value with the trace.
    /// Site names must be unique (plates may repeat).
    let trace (Model m: Model<'T>) : Model<'T * Trace> =
        Model(fun outer ->
            let sites = ResizeArray<Site>()
            let names = HashSet<string>()
            let r =
                m { new Interpreter() with
                        member _.Root = outer.Root
                        member _.Process s =
                            let done' = outer.Process s
                            if s.Kind <> PlateSite && not (names.Add s.Name) then
                                invalidOp (sprintf "Site name '%s' is used twice in the model; site names must be unique (a layer reused under the same name?)." s.Name)
                            sites.Add done'
                            done' }
            r, { Sites = sites.ToArray() })

    /// Raises for names given to a handler that no site of the run used.
    let private checkUsed (handler: string) (given: seq<string>) (used: HashSet<string>) (seen: HashSet<string>) =
        let unknown = given |> Seq.filter (used.Contains >> not) |> Seq.toArray
        if unknown.Length > 0 then
            invalidArg "values" (sprintf "%s: no site named %s in the model; its sites are: %s." handler
                                    (String.Join(", ", unknown |> Array.map (sprintf "'%s'"))) (String.Join(", ", seen)))

    /// Gives sites values by name: `applies` says which site kinds take one, `set` fills it in. Names
    /// that no site of the run used are refused.
    let private byName (handler: string) (values: Map<string, Tensor>) (applies: Site -> bool) (set: Site -> Tensor -> Site) (Model m: Model<'T>) : Model<'T> =
        Model(fun outer ->
            let used = HashSet<string>()
            let seen = HashSet<string>()
            let r =
                m { new Interpreter() with
                        member _.Root = outer.Root
                        member _.Process s =
                            if s.Kind <> PlateSite then seen.Add s.Name |> ignore
                            match values.TryFind s.Name with
                            | Some v when applies s ->
                                used.Add s.Name |> ignore
                                outer.Process (set s v)
                            | _ -> outer.Process s }
            checkUsed handler (values |> Map.keys) used seen
            r)

    /// Gives values to sample and param sites by name (the site stays latent, unlike condition).
    let substitute (values: Map<string, Tensor>) (m: Model<'T>) : Model<'T> =
        byName "substitute" values (fun s -> s.Kind = SampleSite || s.Kind = ParamSite) (fun s v -> { s with Value = Some v }) m

    /// Observes sample sites at the given values: they become observed data.
    let condition (values: Map<string, Tensor>) (m: Model<'T>) : Model<'T> =
        byName "condition" values (fun s -> s.Kind = SampleSite) (fun s v -> { s with Value = Some v; IsObserved = true }) m

    /// Multiplies every sample and factor site's log density by c (for example N/B for minibatches).
    let scale (c: Tensor) (m: Model<'T>) : Model<'T> =
        handle (fun s next ->
            match s.Kind with
            | SampleSite | FactorSite -> next { s with Scale = Some (match s.Scale with Some c0 -> c0 * c | None -> c) }
            | _ -> next s) m

    /// Zeroes the log density of sample sites where the bool mask is false.
    let mask (mask: Tensor) (m: Model<'T>) : Model<'T> =
        if mask.Dtype <> Bool then invalidArg "mask" (sprintf "Handlers.mask: the mask must be bool, got %O." mask.Dtype)
        handle (fun s next ->
            match s.Kind with
            | SampleSite | FactorSite ->
                let combined = match s.Mask with Some m0 -> Tensor.where m0 mask m0 | None -> mask
                next { s with Mask = Some combined }
            | _ -> next s) m

    /// Gives every site of the model the guide role `role` (Site.Role): how a guide marks its auxiliary
    /// draws and its flat location.
    let role (role: GuideRole) (m: Model<'T>) : Model<'T> = handle (fun s next -> next { s with Role = role }) m

    /// Hides the sites for which `hide` is true from every handler outside this one; they go straight
    /// to the default interpreter, so a handler they need (seed, substitute) must sit inside block.
    let block (hide: string -> bool) (Model m: Model<'T>) : Model<'T> =
        Model(fun outer ->
            m { new Interpreter() with
                    member _.Root = outer.Root
                    member _.Process s = if hide s.Name then outer.Root.Process s else outer.Process s })

    /// Hides every site.
    let blockAll (m: Model<'T>) : Model<'T> = block (fun _ -> true) m

    /// Gives latent sample sites the values they had in a trace (as a model is replayed against a guide).
    let replay (t: Trace) (m: Model<'T>) : Model<'T> =
        let values = t.Sites |> Array.filter (fun s -> s.Kind = SampleSite && s.Value.IsSome) |> Array.map (fun s -> s.Name, s.Value.Value) |> dict
        handle (fun s next ->
            if s.Kind = SampleSite && not s.IsObserved then
                match values.TryGetValue s.Name with
                | true, v -> next { s with Value = Some v }
                | _ -> next s
            else next s) m

    /// Strips Independent and Expand wrappers, returning the base and a function that puts them back.
    let rec private unwrap (d: Distribution) : Distribution * (Distribution -> Distribution) =
        match d with
        | Independent (b, n) ->
            let inner, rewrap = unwrap b
            inner, (fun x -> Independent (rewrap x, n))
        | Expand (b, s) ->
            let inner, rewrap = unwrap b
            inner, (fun x -> Expand (rewrap x, s))
        | Normal _ | HalfNormal _ | Cauchy _ | HalfCauchy _ | StudentT _ | Laplace _ | Logistic _ | LogNormal _
        | Exponential _ | Gamma _ | InverseGamma _ | Beta _ | Uniform _ | BernoulliLogits _ | BernoulliProbs _
        | BinomialLogits _ | BinomialProbs _ | CategoricalLogits _ | CategoricalProbs _ | Poisson _ | NegativeBinomial _
        | ZeroInflatedPoisson _ | ZeroInflatedNegativeBinomial _ | OrderedLogistic _ | Dirichlet _ | MultivariateNormal _
        | LowRankMultivariateNormal _ | Delta _ | Mixture _ | Masked _ | ImproperUniform _ | Restricted _ | Truncated _
        | PoissonLog _ | NegativeBinomialLog _ | LkjCholesky _ | Wishart _ | InverseWishart _ | Glm _ | CategoricalLogitGlm _ -> d, id

    /// Non-centers latent location-scale sites (BLayers' autoreparam with its later fixes): a site
    /// x ~ Normal(μ, σ) (also Cauchy, Laplace, StudentT, under Independent or Expand) becomes
    /// x_decentered ~ Normal(cμ, σᶜ) with x = μ + σ¹⁻ᶜ (x_decentered − cμ) recorded as a deterministic
    /// site; centered = 0 is fully non-centered. LogNormal sites become x_base ~ Normal(μ, σ), x = exp.
    /// Sites named *_decentered or *_base are left alone, as are sites for which `only` is false.
    let reparamWith (centered: float) (only: string -> bool) (m: Model<'T>) : Model<'T> =
        if centered < 0.0 || centered > 1.0 then
            invalidArg "centered" (sprintf "Handlers.reparam: centered must be in [0, 1], got %g." centered)
        handle (fun s next ->
            let candidate =
                s.Kind = SampleSite && not s.IsObserved && s.Value.IsNone && only s.Name
                && not (s.Name.EndsWith "_decentered" || s.Name.EndsWith "_base")
            if not candidate then next s
            else
                let baseDist, rewrap = unwrap s.Dist.Value
                let decenter (make: Tensor -> Tensor -> Distribution) (loc: Tensor) (sc: Tensor) =
                    let d = make (loc * centered) (Tensor.pow sc (Tensor.scalar centered |> Tensor.cast sc.Dtype))
                    let z = (next { s with Name = s.Name + "_decentered"; Dist = Some (rewrap d) }).Value.Value
                    loc + Tensor.pow sc (Tensor.scalar (1.0 - centered) |> Tensor.cast sc.Dtype) * (z - centered * loc)
                let x =
                    match baseDist with
                    | Normal (loc, sc) -> Some (decenter (fun l s -> Normal (l, s)) loc sc)
                    | Cauchy (loc, sc) -> Some (decenter (fun l s -> Cauchy (l, s)) loc sc)
                    | Laplace (loc, sc) -> Some (decenter (fun l s -> Laplace (l, s)) loc sc)
                    | StudentT (df, loc, sc) -> Some (decenter (fun l s -> StudentT (df, l, s)) loc sc)
                    | LogNormal (loc, sc) ->
                        let z = (next { s with Name = s.Name + "_base"; Dist = Some (rewrap (Normal (loc, sc))) }).Value.Value
                        Some (Tensor.exp z)
                    | HalfNormal _ | HalfCauchy _ | Logistic _ | Exponential _ | Gamma _ | InverseGamma _ | Beta _ | Uniform _
                    | BernoulliLogits _ | BernoulliProbs _ | BinomialLogits _ | BinomialProbs _ | CategoricalLogits _
                    | CategoricalProbs _ | Poisson _ | NegativeBinomial _ | ZeroInflatedPoisson _ | ZeroInflatedNegativeBinomial _
                    | OrderedLogistic _ | Dirichlet _ | MultivariateNormal _ | LowRankMultivariateNormal _ | Delta _ | Mixture _
                    | Independent _ | Expand _ | Masked _ | ImproperUniform _ | Restricted _ | Truncated _ | PoissonLog _
                    | NegativeBinomialLog _ | LkjCholesky _ | Wishart _ | InverseWishart _ | Glm _ | CategoricalLogitGlm _ -> None
                match x with
                | Some v -> next { s with Kind = DeterministicSite; Dist = None; Value = Some v }
                | None -> next s) m

    /// Fully non-centers every latent location-scale site.
    let reparam (m: Model<'T>) : Model<'T> = reparamWith 0.0 (fun _ -> true) m
