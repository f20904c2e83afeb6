namespace FunctionalBayes.Fluent

open System
open System.Collections.Generic
open System.Runtime.InteropServices
open FunctionalBayes
open FunctionalBayes.Tensors

/// The layer builders' argument checks.
module internal LayerArg =
    let x (name: string) (x: NdArray) : Tensor = (Arg.get name x).Value
    let prior (name: string) (p: Prior) : Distribution = (Arg.get name p).Value
    let family (name: string) (c: CoefficientFamily) : ScaleFamily = (Arg.get name c).Value

    /// A scalar prior, or ArgumentException naming the layer.
    let scalar (layer: string) (d: Distribution) =
        if (Dist.batchShape d).Length > 0 || (Dist.eventShape d).Length > 0 then
            invalidArg "prior" $"{layer}: the coefficient prior must be a scalar distribution, got {Dist.name d} with batch shape {Convert.Format(Dist.batchShape d)} and event shape {Convert.Format(Dist.eventShape d)}."
        d

    /// A layer's output as a facade model, after the name check.
    let apply (name: string) (call: unit -> Model<Tensor>) =
        Bayes.CheckName(name, "name")
        Bayes.Wrap(call ())

/// <summary>The shared settings of layers with a sampled scale and a coefficient family.</summary>
/// <typeparam name="TSelf">The concrete builder.</typeparam>
[<AbstractClass; AllowNullLiteral>]
type ScaledLayerBuilder<'TSelf when 'TSelf :> ScaledLayerBuilder<'TSelf>> internal (scalePrior: Distribution, coefficients: ScaleFamily, make: Distribution -> ScaleFamily -> 'TSelf) =
    /// <summary>The prior of the scale (on positive values).</summary>
    member _.ScalePrior = Prior.Wrap scalePrior

    /// <summary>The coefficients' family.</summary>
    member _.Coefficients = CoefficientFamily.Wrap coefficients

    /// <summary>A builder with another scale prior, which must be on positive values.</summary>
    /// <param name="scalePrior">The prior, for example <c>Prior.HalfCauchy(1)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values; the message names the layer.</exception>
    member _.WithScalePrior(scalePrior: Prior) : 'TSelf = make (LayerArg.prior "scalePrior" scalePrior) coefficients

    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family, for example <c>CoefficientFamily.Laplace()</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    /// <exception cref="ArgumentException">The family is invalid; the message names the layer.</exception>
    member _.WithCoefficients(family: CoefficientFamily) : 'TSelf = make scalePrior (LayerArg.family "family" family)

/// <summary>BLayers' AdaptiveLayer: scale (u) ~ scale prior; β (d, u) ~ coef(scale); out = activation(x·β).</summary>
[<Sealed; AllowNullLiteral>]
type AdaptiveLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<AdaptiveLayerBuilder>(s, c, fun s c -> AdaptiveLayerBuilder(s, c))
    let layer = AdaptiveLayer.Create(s, c)

    /// <summary>Calls the layer on x (n, d) (a vector is one column): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name (part of its site names).</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>BLayers' FixedPriorLayer: β (d, u) ~ a fixed prior; out = activation(x·β).</summary>
[<Sealed; AllowNullLiteral>]
type FixedPriorLayerBuilder internal (coef: Distribution) =
    let layer: FixedPriorLayer = { Coef = coef }

    /// <summary>The coefficients' prior.</summary>
    member _.Prior = Prior.Wrap layer.Coef

    /// <summary>A builder with another coefficient prior (a scalar distribution, for example <c>Prior.Laplace(0, 2)</c>).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar.</exception>
    member _.WithPrior(prior: Prior) = FixedPriorLayerBuilder(LayerArg.scalar "FixedPriorLayer" (LayerArg.prior "prior" prior))

    /// <summary>Calls the layer on x (n, d) (a vector is one column): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>BLayers' InterceptLayer: β (1, u) ~ a fixed prior; out = activation(β), which broadcasts over rows.</summary>
[<Sealed; AllowNullLiteral>]
type InterceptLayerBuilder internal (coef: Distribution) =
    let layer: InterceptLayer = { Coef = coef }

    /// <summary>The intercept's prior.</summary>
    member _.Prior = Prior.Wrap layer.Coef

    /// <summary>A builder with another prior for the intercept (a scalar distribution).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar.</exception>
    member _.WithPrior(prior: Prior) = InterceptLayerBuilder(LayerArg.scalar "InterceptLayer" (LayerArg.prior "prior" prior))

    /// <summary>The intercept: output (1, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentException">units is less than 1.</exception>
    member _.Apply(name: string, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, units, ?activation = Convert.Activation activation))

/// <summary>BLayers' FMLayer (factorization machine): scale (u); θ (d, l, u) ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type FMLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<FMLayerBuilder>(s, c, fun s c -> FMLayerBuilder(s, c))
    let layer = FMLayer.Create(s, c)

    /// <summary>Calls the layer on x (n, d) with factors of rank <paramref name="lowRankDim"/>: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="lowRankDim">The factors' rank.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">A shape or a count is invalid.</exception>
    member _.Apply(name: string, x: NdArray, lowRankDim: int, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, lowRankDim, units, ?activation = Convert.Activation activation))

/// <summary>A third-order factorization machine: scale (u); θ (d, l, u) ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type FM3LayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<FM3LayerBuilder>(s, c, fun s c -> FM3LayerBuilder(s, c))
    let layer = FM3Layer.Create(s, c)

    /// <summary>Calls the layer on x (n, d) with factors of rank <paramref name="lowRankDim"/>: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="lowRankDim">The factors' rank.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">A shape or a count is invalid.</exception>
    member _.Apply(name: string, x: NdArray, lowRankDim: int, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, lowRankDim, units, ?activation = Convert.Activation activation))

/// <summary>A low-rank interaction of two designs: θ₁ (d1, l, u), θ₂ (d2, l, u) ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type LowRankInteractionLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<LowRankInteractionLayerBuilder>(s, c, fun s c -> LowRankInteractionLayerBuilder(s, c))
    let layer = LowRankInteractionLayer.Create(s, c)

    /// <summary>Calls the layer on x (n, d1) and z (n, d2): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows).</param>
    /// <param name="lowRankDim">The interaction's rank.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ (the message names both shapes), or a count is invalid.</exception>
    member _.Apply(name: string, x: NdArray, z: NdArray, lowRankDim: int, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () ->
            layer.Call(name, LayerArg.x "x" x, LayerArg.x "z" z, lowRankDim, units, ?activation = Convert.Activation activation))

/// <summary>Explicit pairwise interactions with their own coefficients: β (D, u) ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type InteractionLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<InteractionLayerBuilder>(s, c, fun s c -> InteractionLayerBuilder(s, c))
    let layer = InteractionLayer.Create(s, c)

    /// <summary>
    /// Calls the layer on the products x_i z_j, or, with no z, on x_i x_j for i &lt; j: output (n, <paramref name="units"/>).
    /// </summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows), or null for the pairs within x.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ, or x has fewer than 2 columns with no z.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional>] z: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () ->
            layer.Call(name, LayerArg.x "x" x, ?z = Convert.Option z, units = units, ?activation = Convert.Activation activation))

/// <summary>A full bilinear form: W (d1, d2, u) ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type BilinearLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<BilinearLayerBuilder>(s, c, fun s c -> BilinearLayerBuilder(s, c))
    let layer = BilinearLayer.Create(s, c)

    /// <summary>Calls the layer on x (n, d1) and z (n, d2): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows).</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ (the message names both shapes).</exception>
    member _.Apply(name: string, x: NdArray, z: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, LayerArg.x "z" z, units, ?activation = Convert.Activation activation))

/// <summary>A low-rank bilinear form W = A·Bᵀ: A (d1, l, u), B (d2, l, u) ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type LowRankBilinearLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<LowRankBilinearLayerBuilder>(s, c, fun s c -> LowRankBilinearLayerBuilder(s, c))
    let layer = LowRankBilinearLayer.Create(s, c)

    /// <summary>Calls the layer on x (n, d1) and z (n, d2): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows).</param>
    /// <param name="lowRankDim">The rank of W.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ, or a count is invalid.</exception>
    member _.Apply(name: string, x: NdArray, z: NdArray, lowRankDim: int, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () ->
            layer.Call(name, LayerArg.x "x" x, LayerArg.x "z" z, lowRankDim, units, ?activation = Convert.Activation activation))

/// <summary>An embedding table: θ (c, m) ~ coef(scale), looked up by ids.</summary>
[<Sealed; AllowNullLiteral>]
type EmbeddingLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<EmbeddingLayerBuilder>(s, c, fun s c -> EmbeddingLayerBuilder(s, c))
    let layer = EmbeddingLayer.Create(s, c)

    /// <summary>Looks up the embeddings of integer ids in 0..numCategories−1: output (n, <paramref name="embeddingDim"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <param name="embeddingDim">The embedding's size.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer, or a count is invalid.</exception>
    member _.Apply(name: string, ids: NdArray, numCategories: int, embeddingDim: int) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "ids" ids, numCategories, embeddingDim))

/// <summary>Random effects: θ (c, 1) ~ coef(scale), one per category.</summary>
[<Sealed; AllowNullLiteral>]
type RandomEffectsLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<RandomEffectsLayerBuilder>(s, c, fun s c -> RandomEffectsLayerBuilder(s, c))
    let layer = RandomEffectsLayer.Create(s, c)

    /// <summary>Looks up the effects of integer ids in 0..numCategories−1: output (n, 1).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer.</exception>
    member _.Apply(name: string, ids: NdArray, numCategories: int) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "ids" ids, numCategories))

/// <summary>Gaussian random walks over ordered categories: increments θ (c, m) ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type RandomWalkLayerBuilder internal (s: Distribution, c: ScaleFamily) =
    inherit ScaledLayerBuilder<RandomWalkLayerBuilder>(s, c, fun s c -> RandomWalkLayerBuilder(s, c))
    let layer = RandomWalkLayer.Create(s, c)

    /// <summary>Looks up the walk positions of integer ids in 0..numCategories−1: output (n, <paramref name="embeddingDim"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <param name="embeddingDim">How many walks.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer, or a count is invalid.</exception>
    member _.Apply(name: string, ids: NdArray, numCategories: int, [<Optional; DefaultParameterValue(1)>] embeddingDim: int) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "ids" ids, numCategories, embeddingDim))

/// <summary>Random slopes: scale (d, u) ~ scale prior; β (c, d, u) ~ Normal(0, scale) per group.</summary>
[<Sealed; AllowNullLiteral>]
type RandomSlopesLayerBuilder internal (layer: RandomSlopesLayer) =
    /// <summary>The prior of the slopes' scale.</summary>
    member _.ScalePrior = Prior.Wrap layer.ScalePrior

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    member _.WithScalePrior(scalePrior: Prior) = RandomSlopesLayerBuilder(RandomSlopesLayer.Create(LayerArg.prior "scalePrior" scalePrior))

    /// <summary>Calls the layer on x (n, d) and group ids in 0..numCategories−1: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="groups">One group id per row.</param>
    /// <param name="numCategories">The number of groups.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The ids are invalid or their number differs from x's rows.</exception>
    member _.Apply(name: string, x: NdArray, groups: NdArray, numCategories: int, [<Optional; DefaultParameterValue(1)>] units: int,
                   [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () ->
            layer.Call(name, LayerArg.x "x" x, LayerArg.x "groups" groups, numCategories, units, ?activation = Convert.Activation activation))

/// <summary>A stationary AR(1) process: ρ = 2·Beta(a, a) − 1, σ ~ scale prior.</summary>
[<Sealed; AllowNullLiteral>]
type AR1LayerBuilder internal (layer: AR1Layer) =
    static let make (s: Distribution) (a: float) (nc: bool) = AR1LayerBuilder(AR1Layer.Create(s, rhoConcentration = a, noncentered = nc))

    /// <summary>The prior of the innovations' scale σ.</summary>
    member _.ScalePrior = Prior.Wrap layer.ScalePrior
    /// <summary>The concentration a of ρ's Beta(a, a) prior.</summary>
    member _.RhoConcentration: float = layer.RhoConcentration
    /// <summary>Whether the states are sampled noncentered.</summary>
    member _.Noncentered: bool = layer.Noncentered

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    member _.WithScalePrior(scalePrior: Prior) = make (LayerArg.prior "scalePrior" scalePrior) layer.RhoConcentration layer.Noncentered
    /// <summary>A builder with another concentration of ρ's prior.</summary>
    /// <param name="concentration">Positive and finite.</param>
    /// <exception cref="ArgumentException">The concentration is not positive and finite.</exception>
    member _.WithRhoConcentration(concentration: float) = make layer.ScalePrior concentration layer.Noncentered
    /// <summary>A builder that samples the states noncentered (better for weakly informed states).</summary>
    /// <param name="noncentered">True for noncentered.</param>
    member _.WithNoncentered([<Optional; DefaultParameterValue(true)>] noncentered: bool) = make layer.ScalePrior layer.RhoConcentration noncentered

    /// <summary>Looks up the states of time slots in 0..numCategories−1: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Time slot ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of slots.</param>
    /// <param name="units">Independent processes.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range, or a count is invalid.</exception>
    member _.Apply(name: string, ids: NdArray, numCategories: int, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "ids" ids, numCategories, units, ?activation = Convert.Activation activation))

/// <summary>Fixed effects: θ (c, 1) ~ a fixed prior, one per category.</summary>
[<Sealed; AllowNullLiteral>]
type FixedEffectsLayerBuilder internal (layer: FixedEffectsLayer) =
    /// <summary>The effects' prior.</summary>
    member _.Prior = Prior.Wrap layer.Coef

    /// <summary>A builder with another prior (scalar events).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior does not have scalar events.</exception>
    member _.WithPrior(prior: Prior) = FixedEffectsLayerBuilder(FixedEffectsLayer.Create(LayerArg.prior "prior" prior))

    /// <summary>Looks up the effects of integer ids in 0..numCategories−1: output (n, 1).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer.</exception>
    member _.Apply(name: string, ids: NdArray, numCategories: int) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "ids" ids, numCategories))

/// <summary>Horseshoe regression: τ ~ HalfCauchy(τ₀), λ ~ HalfCauchy(1), β ~ coef(τλ) (regularized with a slab when a slab scale is set).</summary>
[<Sealed; AllowNullLiteral>]
type HorseshoeLayerBuilder internal (layer: HorseshoeLayer) =
    static let make (slab: float option) (df: float) (tau0: float) (coef: ScaleFamily) =
        HorseshoeLayerBuilder(HorseshoeLayer.Create(?slabScale = slab, slabDf = df, tau0 = tau0, coef = coef))

    /// <summary>The slab scale of the regularized horseshoe, or null for the plain horseshoe.</summary>
    member _.SlabScale: Nullable<float> = Option.toNullable layer.SlabScale
    /// <summary>The slab's degrees of freedom.</summary>
    member _.SlabDf: float = layer.SlabDf
    /// <summary>The scale τ₀ of the global shrinkage's HalfCauchy prior.</summary>
    member _.Tau0: float = layer.Tau0

    /// <summary>A regularized horseshoe with a Student-t slab.</summary>
    /// <param name="slabScale">The slab's scale (positive), or null for the plain horseshoe.</param>
    /// <param name="slabDf">The slab's degrees of freedom (positive).</param>
    /// <exception cref="ArgumentException">A value is not positive and finite.</exception>
    member _.WithSlab(slabScale: Nullable<float>, [<Optional; DefaultParameterValue(4.0)>] slabDf: float) =
        make (Arg.optv slabScale) slabDf layer.Tau0 layer.Coef
    /// <summary>A builder with another global scale τ₀.</summary>
    /// <param name="tau0">Positive and finite.</param>
    /// <exception cref="ArgumentException">τ₀ is not positive and finite.</exception>
    member _.WithTau0(tau0: float) = make layer.SlabScale layer.SlabDf tau0 layer.Coef
    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    member _.WithCoefficients(family: CoefficientFamily) = make layer.SlabScale layer.SlabDf layer.Tau0 (LayerArg.family "family" family)

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>Spike and slab: a gate z ~ Beta(α, β) times β ~ a fixed prior.</summary>
[<Sealed; AllowNullLiteral>]
type SpikeAndSlabLayerBuilder internal (layer: SpikeAndSlabLayer) =
    /// <summary>The gate's first Beta parameter.</summary>
    member _.Alpha: float = layer.Alpha
    /// <summary>The gate's second Beta parameter.</summary>
    member _.Beta: float = layer.Beta
    /// <summary>The slab's prior.</summary>
    member _.Prior = Prior.Wrap layer.Coef

    /// <summary>A builder with another Beta prior of the gate.</summary>
    /// <param name="alpha">Positive and finite.</param>
    /// <param name="beta">Positive and finite.</param>
    /// <exception cref="ArgumentException">A value is not positive and finite.</exception>
    member _.WithGate(alpha: float, beta: float) = SpikeAndSlabLayerBuilder(SpikeAndSlabLayer.Create(alpha, beta, layer.Coef))
    /// <summary>A builder with another slab prior (a scalar distribution).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar.</exception>
    member _.WithPrior(prior: Prior) = SpikeAndSlabLayerBuilder(SpikeAndSlabLayer.Create(layer.Alpha, layer.Beta, LayerArg.prior "prior" prior))

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>A horseshoe over the pairwise products x_i x_j, i &lt; j.</summary>
[<Sealed; AllowNullLiteral>]
type HorseshoeInteractionLayerBuilder internal (layer: HorseshoeInteractionLayer) =
    static let make (slab: float option) (df: float) (tau0: float) (coef: ScaleFamily) =
        HorseshoeInteractionLayerBuilder(HorseshoeInteractionLayer.Create(?slabScale = slab, slabDf = df, tau0 = tau0, coef = coef))

    /// <summary>The slab scale of the regularized horseshoe, or null for the plain horseshoe.</summary>
    member _.SlabScale: Nullable<float> = Option.toNullable layer.SlabScale
    /// <summary>The slab's degrees of freedom.</summary>
    member _.SlabDf: float = layer.SlabDf
    /// <summary>The scale τ₀ of the global shrinkage's HalfCauchy prior.</summary>
    member _.Tau0: float = layer.Tau0

    /// <summary>A regularized horseshoe with a Student-t slab.</summary>
    /// <param name="slabScale">The slab's scale (positive), or null for the plain horseshoe.</param>
    /// <param name="slabDf">The slab's degrees of freedom (positive).</param>
    /// <exception cref="ArgumentException">A value is not positive and finite.</exception>
    member _.WithSlab(slabScale: Nullable<float>, [<Optional; DefaultParameterValue(4.0)>] slabDf: float) =
        make (Arg.optv slabScale) slabDf layer.Tau0 layer.Coef
    /// <summary>A builder with another global scale τ₀.</summary>
    /// <param name="tau0">Positive and finite.</param>
    /// <exception cref="ArgumentException">τ₀ is not positive and finite.</exception>
    member _.WithTau0(tau0: float) = make layer.SlabScale layer.SlabDf tau0 layer.Coef
    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    member _.WithCoefficients(family: CoefficientFamily) = make layer.SlabScale layer.SlabDf layer.Tau0 (LayerArg.family "family" family)

    /// <summary>Calls the layer on x (n, d), d ≥ 2: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x has fewer than 2 columns, or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>A penalized B-spline: second differences ~ Normal(0, scale), a linear trend ~ Normal(0, trend scale).</summary>
[<Sealed; AllowNullLiteral>]
type PSplineLayerBuilder internal (layer: PSplineLayer) =
    static let make (s: Distribution) (trend: float) (degree: int) =
        PSplineLayerBuilder(PSplineLayer.Create(s, trend, degree))

    /// <summary>The prior of the differences' scale.</summary>
    member _.ScalePrior = Prior.Wrap layer.ScalePrior
    /// <summary>The trend's prior scale.</summary>
    member _.TrendScale: float = layer.TrendScale
    /// <summary>The spline degree.</summary>
    member _.Degree: int = layer.Degree

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    member _.WithScalePrior(scalePrior: Prior) = make (LayerArg.prior "scalePrior" scalePrior) layer.TrendScale layer.Degree
    /// <summary>A builder with another trend scale.</summary>
    /// <param name="trendScale">Positive and finite.</param>
    /// <exception cref="ArgumentException">The scale is not positive and finite.</exception>
    member _.WithTrendScale(trendScale: float) = make layer.ScalePrior trendScale layer.Degree
    /// <summary>A builder with another spline degree.</summary>
    /// <param name="degree">At least 0.</param>
    /// <exception cref="ArgumentException">The degree is negative.</exception>
    member _.WithDegree(degree: int) = make layer.ScalePrior layer.TrendScale degree

    /// <summary>Calls the layer on a variable x (n,) or (n, 1) with knots (see <see cref="Layer.MakeKnots"/>): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The variable.</param>
    /// <param name="knots">Non-decreasing knots.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="reference">Where the curve is zero; null for the middle of the knot range.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The knots or x are invalid.</exception>
    member _.Apply(name: string, x: NdArray, knots: float[], [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] reference: Nullable<float>) =
        Bayes.CheckName(name, "name")
        Arg.notNull "knots" knots
        Bayes.Wrap(layer.Call(name, LayerArg.x "x" x, knots, units, ?reference = Arg.optv reference))

/// <summary>A Hilbert-space GP approximation: lengthscale and amplitude priors, m basis functions on [−L, L].</summary>
[<Sealed; AllowNullLiteral>]
type HsgpLayerBuilder internal (layer: HSGPLayer) =
    /// <summary>The lengthscale's prior.</summary>
    member _.LengthscalePrior = Prior.Wrap layer.LengthscalePrior
    /// <summary>The amplitude's prior.</summary>
    member _.SigmaPrior = Prior.Wrap layer.SigmaPrior

    /// <summary>A builder with another lengthscale prior (scalar, on positive values).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar or not on positive values.</exception>
    member _.WithLengthscalePrior(prior: Prior) = HsgpLayerBuilder(HSGPLayer.Create(LayerArg.prior "prior" prior, layer.SigmaPrior))
    /// <summary>A builder with another amplitude prior (scalar, on positive values).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar or not on positive values.</exception>
    member _.WithSigmaPrior(prior: Prior) = HsgpLayerBuilder(HSGPLayer.Create(layer.LengthscalePrior, LayerArg.prior "prior" prior))

    /// <summary>Calls the layer on a variable x (n,) or (n, 1): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The variable.</param>
    /// <param name="boundary">L: the basis lives on [−L, L] (see <see cref="Layer.HsgpBoundary"/>).</param>
    /// <param name="basisFunctions">m, the number of basis functions.</param>
    /// <param name="units">Output columns.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    member _.Apply(name: string, x: NdArray, boundary: float, basisFunctions: int, [<Optional; DefaultParameterValue(1)>] units: int) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, boundary, basisFunctions, units))

/// <summary>Bayesian self-attention over features: embedding, query/key/value and output weights ~ coef(scale).</summary>
[<Sealed; AllowNullLiteral>]
type AttentionLayerBuilder internal (layer: AttentionLayer) =
    static let make (s: Distribution) (c: ScaleFamily) (headDim: int) (numHeads: int) =
        AttentionLayerBuilder(AttentionLayer.Create(s, c, headDim, numHeads))

    /// <summary>The prior of every scale site.</summary>
    member _.ScalePrior = Prior.Wrap layer.ScalePrior
    /// <summary>The size of each head.</summary>
    member _.HeadDim: int = layer.HeadDim
    /// <summary>The number of heads.</summary>
    member _.NumHeads: int = layer.NumHeads

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    member _.WithScalePrior(scalePrior: Prior) = make (LayerArg.prior "scalePrior" scalePrior) layer.Coef layer.HeadDim layer.NumHeads
    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    member _.WithCoefficients(family: CoefficientFamily) = make layer.ScalePrior (LayerArg.family "family" family) layer.HeadDim layer.NumHeads
    /// <summary>A builder with other head settings.</summary>
    /// <param name="headDim">The size of each head (at least 1).</param>
    /// <param name="numHeads">The number of heads (at least 1).</param>
    /// <exception cref="ArgumentException">A count is less than 1.</exception>
    member _.WithHeads(headDim: int, [<Optional; DefaultParameterValue(1)>] numHeads: int) = make layer.ScalePrior layer.Coef headDim numHeads

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>Regression with a mixture prior on the coefficients: β ~ Σ_k w_k p_k, weights learned or fixed.</summary>
[<Sealed; AllowNullLiteral>]
type MixtureLayerBuilder internal (layer: MixtureLayer) =
    static let make (cs: Distribution list) (scale: float) (weights: float[] option) =
        MixtureLayerBuilder(MixtureLayer.Create(cs, scale, ?weights = weights))

    /// <summary>The component priors.</summary>
    member _.Components: IReadOnlyList<Prior> = Array.AsReadOnly(layer.Components |> List.map Prior.Wrap |> Array.ofList) :> IReadOnlyList<Prior>
    /// <summary>The scale of the Normal prior of the mixing logits (when the weights are learned).</summary>
    member _.WeightScale: float = layer.WeightScale
    /// <summary>Fixed mixing weights, or null when they are learned.</summary>
    member _.Weights: IReadOnlyList<float> =
        match layer.Weights with
        | Some w -> Arg.readOnly w
        | None -> null

    /// <summary>A builder with other components (scalar distributions).</summary>
    /// <param name="components">At least one component.</param>
    /// <exception cref="ArgumentNullException"><paramref name="components"/> or a component is null.</exception>
    /// <exception cref="ArgumentException">There are no components, one is not scalar, or fixed weights no longer match.</exception>
    member _.WithComponents([<ParamArray>] components: Prior[]) =
        let cs =
            Arg.get "components" components
            |> Array.mapi (fun i c -> (Arg.getMsg "components" $"MixtureLayer: component {i} is null." c).Value)
        make (List.ofArray cs) layer.WeightScale layer.Weights
    /// <summary>A builder with fixed mixing weights (non-negative, summing to 1, one per component), or learned ones when null.</summary>
    /// <param name="weights">The weights, or null.</param>
    /// <exception cref="ArgumentException">The weights are invalid.</exception>
    member _.WithWeights(weights: float[]) = make layer.Components layer.WeightScale (Arg.opt weights)
    /// <summary>A builder with another scale of the mixing logits' prior.</summary>
    /// <param name="weightScale">Positive and finite.</param>
    /// <exception cref="ArgumentException">The scale is not positive and finite.</exception>
    member _.WithWeightScale(weightScale: float) = make layer.Components weightScale layer.Weights

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, [<Optional; DefaultParameterValue(1)>] units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>
/// BLayers' Bayesian layers as fluent builders. Each factory gives a builder at BLayers' defaults; the
/// <c>With…</c> methods return a new builder with a changed prior (checked at once: an invalid prior throws
/// <see cref="ArgumentException"/> naming the layer), and <c>Apply</c> calls the layer on data, giving a
/// <see cref="BayesModel{T}"/> of its output. Sites are named <c>{Layer}_{name}_{suffix}</c> as in BLayers,
/// for example <c>AdaptiveLayer_x_beta</c>.
/// <code>
/// var mu = Layer.Adaptive().WithCoefficients(CoefficientFamily.Laplace()).Apply("x", x);
/// </code>
/// </summary>
[<AbstractClass; Sealed>]
type Layer =
    /// <summary>x·β with β ~ coef(scale), scale ~ HalfNormal(1): output (n, units).</summary>
    static member Adaptive() = AdaptiveLayerBuilder(AdaptiveLayer.Default.ScalePrior, AdaptiveLayer.Default.Coef)
    /// <summary>x·β with a fixed prior β ~ Normal(0, 1): output (n, units).</summary>
    static member FixedPrior() = FixedPriorLayerBuilder(FixedPriorLayer.Default.Coef)
    /// <summary>An intercept β ~ Normal(0, 1) of shape (1, units), which broadcasts over rows.</summary>
    static member Intercept() = InterceptLayerBuilder(InterceptLayer.Default.Coef)
    /// <summary>A factorization machine: Σ_{i&lt;j} ⟨θ_i, θ_j⟩ x_i x_j, output (n, units).</summary>
    static member FM() = FMLayerBuilder(FMLayer.Default.ScalePrior, FMLayer.Default.Coef)
    /// <summary>A third-order factorization machine: Σ_{i&lt;j&lt;k}, output (n, units).</summary>
    static member FM3() = FM3LayerBuilder(FM3Layer.Default.ScalePrior, FM3Layer.Default.Coef)
    /// <summary>A low-rank interaction xᵀθ₁θ₂ᵀz of two designs, output (n, units).</summary>
    static member LowRankInteraction() = LowRankInteractionLayerBuilder(LowRankInteractionLayer.Default.ScalePrior, LowRankInteractionLayer.Default.Coef)
    /// <summary>All pairwise products x_i z_j (or x_i x_j, i &lt; j) with their own coefficients, output (n, units).</summary>
    static member Interaction() = InteractionLayerBuilder(InteractionLayer.Default.ScalePrior, InteractionLayer.Default.Coef)
    /// <summary>A full bilinear form Σ_ij x_i W_ij z_j, output (n, units).</summary>
    static member Bilinear() = BilinearLayerBuilder(BilinearLayer.Default.ScalePrior, BilinearLayer.Default.Coef)
    /// <summary>A bilinear form with W = A·Bᵀ of low rank, output (n, units).</summary>
    static member LowRankBilinear() = LowRankBilinearLayerBuilder(LowRankBilinearLayer.Default.ScalePrior, LowRankBilinearLayer.Default.Coef)
    /// <summary>An embedding table looked up by integer ids, output (n, embeddingDim).</summary>
    static member Embedding() = EmbeddingLayerBuilder(EmbeddingLayer.Default.ScalePrior, EmbeddingLayer.Default.Coef)
    /// <summary>One partially pooled effect per category, output (n, 1).</summary>
    static member RandomEffects() = RandomEffectsLayerBuilder(RandomEffectsLayer.Default.ScalePrior, RandomEffectsLayer.Default.Coef)
    /// <summary>Gaussian random walks over ordered categories, output (n, embeddingDim).</summary>
    static member RandomWalk() = RandomWalkLayerBuilder(RandomWalkLayer.Default.ScalePrior, RandomWalkLayer.Default.Coef)
    /// <summary>Partially pooled group-specific slopes for x, output (n, units).</summary>
    static member RandomSlopes() = RandomSlopesLayerBuilder(RandomSlopesLayer.Default)
    /// <summary>A stationary AR(1) process over ordered time slots, output (n, units).</summary>
    static member AR1() = AR1LayerBuilder(AR1Layer.Default)
    /// <summary>One coefficient per category with a fixed prior (no pooling), output (n, 1).</summary>
    static member FixedEffects() = FixedEffectsLayerBuilder(FixedEffectsLayer.Default)
    /// <summary>Horseshoe-prior regression (optionally regularized with a slab), output (n, units).</summary>
    static member Horseshoe() = HorseshoeLayerBuilder(HorseshoeLayer.Default)
    /// <summary>Spike-and-slab regression with a continuous Beta gate, output (n, units).</summary>
    static member SpikeAndSlab() = SpikeAndSlabLayerBuilder(SpikeAndSlabLayer.Default)
    /// <summary>A horseshoe over the pairwise products x_i x_j, i &lt; j, output (n, units).</summary>
    static member HorseshoeInteraction() = HorseshoeInteractionLayerBuilder(HorseshoeInteractionLayer.Default)
    /// <summary>A penalized B-spline of one variable, output (n, units).</summary>
    static member PSpline() = PSplineLayerBuilder(PSplineLayer.Default)
    /// <summary>A Hilbert-space Gaussian-process approximation in one variable, output (n, units).</summary>
    static member Hsgp() = HsgpLayerBuilder(HSGPLayer.Default)
    /// <summary>Bayesian self-attention over the features of x, output (n, units).</summary>
    static member Attention() = AttentionLayerBuilder(AttentionLayer.Default)
    /// <summary>Regression with a mixture prior (Normal and Laplace by default) on the coefficients, output (n, units).</summary>
    static member Mixture() = MixtureLayerBuilder(MixtureLayer.Default)

    /// <summary>Spline knots at quantiles of x: degree + 1 copies of each end and <paramref name="numKnots"/> inner knots.</summary>
    /// <param name="x">The variable's values.</param>
    /// <param name="numKnots">Inner knots (at least 0).</param>
    /// <param name="degree">The spline degree.</param>
    /// <exception cref="ArgumentNullException"><paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is empty or not finite, or a count is negative.</exception>
    static member MakeKnots(x: float[], numKnots: int, [<Optional; DefaultParameterValue(3)>] degree: int) : float[] =
        Splines.makeKnots (Arg.get "x" x) numKnots degree

    /// <summary>The HSGP boundary L = c · max |x|.</summary>
    /// <param name="x">The variable's values.</param>
    /// <param name="c">The expansion factor (positive; 1.5 is common).</param>
    /// <exception cref="ArgumentNullException"><paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is empty or c is not positive.</exception>
    static member HsgpBoundary(x: float[], [<Optional; DefaultParameterValue(1.5)>] c: float) : float = HSGP.boundary (Arg.get "x" x) c
