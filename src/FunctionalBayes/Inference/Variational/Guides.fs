namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// The autoguides (NumPyro's parameterizations, initial scale 0.1).
[<RequireQualifiedAccess>]
type AutoGuideKind =
    /// Per site: Normal(loc, scale) on unconstrained space, mapped onto the site's support.
    | AutoNormal
    /// All latents flattened into one vector with a diagonal Normal.
    | AutoDiagonalNormal
    /// All latents flattened into one vector with a full-covariance Normal (lower-Cholesky scale, 0.1·I at start).
    | AutoMultivariateNormal
    /// A low-rank-plus-diagonal Normal; rank defaults to round(√D).
    | AutoLowRankMultivariateNormal of rank: int option
    /// A point estimate per site (MAP).
    | AutoDelta
    /// MAP on unconstrained space, then a Normal from the inverse Hessian of the potential (Guide.laplace).
    | AutoLaplaceApproximation

/// Where a guide came from.
[<RequireQualifiedAccess>]
type GuideOrigin =
    /// A guide program the user wrote (Guide.ofModel).
    | User
    /// An autoguide of this kind, as Guide.auto builds it.
    | Auto of AutoGuideKind
    /// The Laplace approximation at a fitted MAP point (Guide.laplace), which an AutoLaplaceApproximation fit ends with.
    | Laplace

/// A variational family: a program of param sites and latent sample sites named like the model's.
[<NoEquality; NoComparison>]
type Guide =
    { /// A name for messages and summaries ("AutoNormal", "user guide", ...).
      Name: string
      /// The guide program.
      Program: Model<unit>
      /// The model's latent sites the guide covers (empty for a user guide, which is taken as it is).
      Latents: LatentSite[]
      /// Where the guide came from (what a fit must finish, what a saved posterior can rebuild).
      Origin: GuideOrigin }

[<RequireQualifiedAccess>]
module Guide =

    /// Any model with param sites and sample sites named like the model's latents is a guide.
    let ofModel (name: string) (program: Model<unit>) : Guide = { Name = name; Program = program; Latents = [||]; Origin = GuideOrigin.User }

    /// A draw of the guide's own (not a site of the model): marked GuideRole.Auxiliary.
    let private auxiliary (name: string) (d: Distribution) : Model<Tensor> = Handlers.role GuideRole.Auxiliary (Model.sample name d)

    /// The flat location parameter on unconstrained space ("auto_loc"), marked GuideRole.FlatLocation.
    let private flatLocation (init: Tensor) : Model<Tensor> =
        Handlers.role GuideRole.FlatLocation (Model.param "auto_loc" init Constraint.Real)

    /// The fitted flat location of a guide: the value in `ps` of the param site the guide marks
    /// GuideRole.FlatLocation (from a run of its program with `key`); None when it has none.
    let flatLocationIn (key: RngKey) (guide: Guide) (ps: Map<string, Tensor>) : Tensor option =
        let _, tr = Traced.run key guide.Program
        Trace.parameters tr |> Array.tryFind (fun s -> s.Role = GuideRole.FlatLocation) |> Option.bind (fun s -> ps.TryFind s.Name)

    /// Emits a latent site whose value is forward(u), with log density −log|det J| so that the guide's
    /// total log density is that of the constrained value.
    let private emitTransformed (l: LatentSite) (u: Tensor) : Model<unit> =
        let value = Bijector.forward l.Bijector u
        let logDet = Tensor.sum (Bijector.logAbsDetJacobian l.Bijector u)
        Model.sample l.Name (Delta (value, -logDet, value.Rank)) |> Model.map ignore

    /// Splits a flat unconstrained vector into the latent sites' unconstrained tensors.
    let unflatten (latents: LatentSite[]) (flat: Tensor) : Tensor[] =
        let mutable off = 0
        latents |> Array.map (fun l ->
            let n = Shape.size l.UnconstrainedShape
            let part = Tensor.narrow 0 off n flat |> Tensor.reshape l.UnconstrainedShape
            off <- off + n
            part)

    /// The flat size of the latents on unconstrained space.
    let flatSize (latents: LatentSite[]) = latents |> Array.sumBy (fun l -> Shape.size l.UnconstrainedShape)

    /// Emits every latent from its unconstrained tensor. When a support depends on other sites
    /// (Constraint.IsDependent: a Uniform(0, s) with s latent, or batched bounds), the map of each site is
    /// re-derived from a run of the model `dynamic` at these values (LogDensity.constrainedRun), so a
    /// bound follows the value of the site it depends on; otherwise the prototype's maps are used.
    let private emitUnconstrained (dynamic: (Map<string, Tensor> -> Trace * Map<string, Tensor>) option) (latents: LatentSite[]) (us: Tensor[]) : Model<unit> =
        match dynamic with
        | Some run ->
            let tr, logDets =
                run (Array.fold2 (fun acc (l: LatentSite) u -> Map.add l.Name u acc) Map.empty latents us)
            let step (l: LatentSite) (rest: Model<unit>) =
                model {
                    let value = tr.Value l.Name
                    do! Model.sample l.Name (Delta (value, -logDets.[l.Name], value.Rank)) |> Model.map ignore
                    return! rest
                }
            Array.foldBack step latents (Model.ret ())
        | None ->
            let step (l: LatentSite) (u: Tensor) (rest: Model<unit>) =
                model {
                    do! emitTransformed l u
                    return! rest
                }
            Array.foldBack2 step latents us (Model.ret ())

    /// The dynamic constrained run for models with dependent supports (None when every support is fixed).
    let private dynamicRun (key: RngKey) (latents: LatentSite[]) (m: Model<'T>) =
        if latents |> Array.exists (fun l -> l.Support.IsDependent) then
            let _, proto = Traced.probe key m
            let paramValues = Trace.parameters proto |> Array.map (fun s -> s.Name, s.Value.Value) |> Map.ofArray
            Some (fun us -> LogDensity.constrainedRun us paramValues key m)
        else None

    let private emitAll (dynamic: (Map<string, Tensor> -> Trace * Map<string, Tensor>) option) (latents: LatentSite[]) (flat: Tensor) : Model<unit> =
        emitUnconstrained dynamic latents (unflatten latents flat)

    /// An autoguide for a model; the latent sites and starting point come from a prototype run with key.
    let auto (kind: AutoGuideKind) (init: InitStrategy) (key: RngKey) (m: Model<'T>) : Guide =
        let kp, ki = Rng.split key
        let pot = LogDensity.potential kp m
        let latents = pot.Latents
        // local latents inside subsampled plates would need per-batch guide parameters
        let _, proto = Traced.probe kp m
        match Trace.latents proto |> Array.tryFind (fun s -> s.Plates |> List.exists (fun p -> p.SubsampleSize < p.Size)) with
        | Some s ->
            invalidArg "m" (sprintf "%A: latent site '%s' sits in the subsampled plate '%s'; autoguides cover global latents only (use a user guide for local latents)." kind s.Name (s.Plates |> List.find (fun p -> p.SubsampleSize < p.Size)).Name)
        | None -> ()
        let start = LogDensity.init init ki m pot
        let flatStart () = if start.Length = 0 then Tensor.zeros [| 0 |] else Tensor.concat 0 (start |> Array.map Tensor.flatten)
        let d = flatSize latents
        let name = sprintf "%A" kind
        let dynamic = dynamicRun kp latents m
        let emitAll = emitAll dynamic
        let program =
            match kind with
            | AutoGuideKind.AutoNormal when dynamic.IsSome ->
                // all unconstrained draws first, then every value through the supports of this run
                let rec draws (ls: (LatentSite * Tensor) list) (acc: Tensor list) : Model<unit> =
                    match ls with
                    | [] -> emitUnconstrained dynamic latents (List.rev acc |> List.toArray)
                    | (l, u0) :: rest ->
                        model {
                            let! loc = Model.param (l.Name + "_auto_loc") u0 Constraint.Real
                            let! scale = Model.param (l.Name + "_auto_scale") (Tensor.fullLike u0 0.1) Constraint.Positive
                            let! u = auxiliary (l.Name + "_auto_unconstrained") (Dist.toEvent u0.Rank (Normal (loc, scale)))
                            return! draws rest (u :: acc)
                        }
                draws (List.ofArray (Array.zip latents start)) []
            | AutoGuideKind.AutoNormal ->
                Array.foldBack2 (fun (l: LatentSite) (u0: Tensor) (rest: Model<unit>) ->
                    model {
                        let! loc = Model.param (l.Name + "_auto_loc") u0 Constraint.Real
                        let! scale = Model.param (l.Name + "_auto_scale") (Tensor.fullLike u0 0.1) Constraint.Positive
                        let q = Dist.toEvent u0.Rank (Normal (loc, scale))
                        if l.Bijector = Bijector.Identity then
                            do! Model.sample l.Name q |> Model.map ignore
                        else
                            let! u = auxiliary (l.Name + "_auto_unconstrained") q
                            do! emitTransformed l u
                        return! rest
                    }) latents start (Model.ret ())
            | AutoGuideKind.AutoDiagonalNormal ->
                model {
                    let! loc = flatLocation (flatStart ())
                    let! scale = Model.param "auto_scale" (Tensor.full [| d |] 0.1) Constraint.Positive
                    let! u = auxiliary "_auto_latent" (Dist.toEvent 1 (Normal (loc, scale)))
                    return! emitAll latents u
                }
            | AutoGuideKind.AutoMultivariateNormal ->
                model {
                    let! loc = flatLocation (flatStart ())
                    let! l = Model.param "auto_scale_tril" (Tensor.eye d * 0.1) Constraint.LowerCholesky
                    let! u = auxiliary "_auto_latent" (MultivariateNormal (loc, l))
                    return! emitAll latents u
                }
            | AutoGuideKind.AutoLowRankMultivariateNormal rank ->
                let r = defaultArg rank (max 1 (int (Math.Round(sqrt (float d)))))
                if r < 1 then invalidArg "kind" (sprintf "AutoLowRankMultivariateNormal: rank must be at least 1, got %d." r)
                model {
                    let! loc = flatLocation (flatStart ())
                    let! w = Model.paramWith "auto_cov_factor" (fun k -> Rng.normal k [| d; r |] * (1.0 / sqrt (float r))) Constraint.Real
                    let! scale = Model.param "auto_scale" (Tensor.full [| d |] (0.1 * sqrt 0.5)) Constraint.Positive
                    let! u = auxiliary "_auto_latent" (LowRankMultivariateNormal (loc, w * Tensor.unsqueeze -1 scale, scale * scale))
                    return! emitAll latents u
                }
            | AutoGuideKind.AutoDelta when dynamic.IsSome ->
                // point estimates kept on unconstrained space, mapped through the supports of this run
                let rec locs (ls: (LatentSite * Tensor) list) (acc: Tensor list) : Model<unit> =
                    match ls with
                    | [] ->
                        let us = List.rev acc |> List.toArray
                        let tr, _ = dynamic.Value (Array.fold2 (fun m (l: LatentSite) u -> Map.add l.Name u m) Map.empty latents us)
                        Array.foldBack (fun (l: LatentSite) (rest: Model<unit>) ->
                            model {
                                let v = tr.Value l.Name
                                do! Model.sample l.Name (Delta (v, Tensor.scalar 0.0, v.Rank)) |> Model.map ignore
                                return! rest
                            }) latents (Model.ret ())
                    | (l, u0) :: rest ->
                        model {
                            let! u = Model.param (l.Name + "_auto_loc_unconstrained") u0 Constraint.Real
                            return! locs rest (u :: acc)
                        }
                locs (List.ofArray (Array.zip latents start)) []
            | AutoGuideKind.AutoDelta ->
                Array.foldBack2 (fun (l: LatentSite) (u0: Tensor) (rest: Model<unit>) ->
                    model {
                        let! v = Model.param (l.Name + "_auto_loc") (Bijector.forward l.Bijector u0) l.Support
                        do! Model.sample l.Name (Delta (v, Tensor.scalar 0.0, v.Rank)) |> Model.map ignore
                        return! rest
                    }) latents start (Model.ret ())
            | AutoGuideKind.AutoLaplaceApproximation ->
                // trained as MAP on unconstrained space; Guide.laplace turns it into a Normal afterwards
                model {
                    let! loc = flatLocation (flatStart ())
                    return! emitAll latents loc
                }
        { Name = name; Program = program; Latents = latents; Origin = GuideOrigin.Auto kind }

    /// The Laplace approximation around a MAP point `loc` (the flat unconstrained vector that an
    /// AutoLaplaceApproximation guide was trained to) for the model `m` (with its fitted param values
    /// substituted: the Hessian is taken at them): a multivariate Normal whose covariance is the inverse
    /// Hessian of the potential of m. A singular Hessian is refused with a clear error.
    let laplace (m: Model<'T>) (key: RngKey) (latents: LatentSite[]) (loc: Tensor) : Guide =
        let pot = LogDensity.potential key m
        let dynamic = dynamicRun key latents m
        let emitAll = emitAll dynamic
        let energy (flat: Tensor) = pot.Energy (unflatten latents flat)
        let h = Autodiff.hessian energy (Tensor.detach loc) |> Tensor.detach
        let d = loc.Size
        // Σ = H⁻¹ and L = chol(Σ): solve H X = I through H's Cholesky
        let lh =
            try Tensor.cholesky ((h + Tensor.transpose h) * 0.5)
            with :? ArgumentException ->
                invalidOp "AutoLaplaceApproximation: the Hessian of the potential at the MAP point is not positive definite (singular or a saddle); the Laplace approximation does not exist there."
        let lhInvT = Tensor.triangularSolve true false lh (Tensor.eye d) |> Tensor.transpose
        let cov = Tensor.matmul lhInvT (Tensor.transpose lhInvT)
        let scaleTril = Tensor.cholesky ((cov + Tensor.transpose cov) * 0.5)
        let program = model {
            let! u = auxiliary "_auto_latent" (MultivariateNormal (Tensor.detach loc, scaleTril))
            return! emitAll latents u
        }
        { Name = "AutoLaplaceApproximation"; Program = program; Latents = latents; Origin = GuideOrigin.Laplace }
