namespace FunctionalBayes

open FunctionalBayes.Tensors

/// How a hierarchical layer writes the per-group weights w_g of a layer whose weights are pooled
/// through a shared mean μ and a per-layer scale σ.
[<RequireQualifiedAccess>]
type Parameterization =
    /// w_g = μ + σ·ε_g with ε_g ~ Normal(0, 1): the latent sites are μ, σ and ε. The default; it
    /// samples well when the groups have little data (the funnel between σ and w_g is removed).
    | NonCentered
    /// w_g ~ Normal(μ, σ): the latent sites are μ, σ and w. Better when every group has much data.
    | Centered

/// Checks shared by the Bayesian dense layers.
[<RequireQualifiedAccess>]
module internal BayesianCommon =

    /// A weight prior: one continuous scalar distribution, expanded over the weights.
    let checkWeightPrior (layer: string) (what: string) (d: Distribution) =
        if (Dist.support d).IsDiscrete then
            invalidArg what (sprintf "%s: the %s must be continuous, got %s (support %A)." layer what (Dist.name d) (Dist.support d))
        if not (Shape.equal (Dist.batchShape d) [||]) || not (Shape.equal (Dist.eventShape d) [||]) then
            invalidArg what (sprintf "%s: the %s must be a scalar distribution (it is expanded over the weights), got %s with batch shape %s and event shape %s." layer what (Dist.name d) (Shape.format (Dist.batchShape d)) (Shape.format (Dist.eventShape d)))

    /// The scale prior of a hierarchical layer: a scalar distribution on positive values.
    let checkScalePrior (layer: string) (d: Distribution) =
        LayerCommon.checkScalePrior layer d
        checkWeightPrior layer "scale prior" d

    /// x as (…, n, d): a vector (n,) is one column; a scalar is refused.
    let asInput (layer: string) (x: Tensor) =
        match x.Rank with
        | 0 -> invalidArg "x" (sprintf "%s: x must be a vector (n,) or a matrix (…, n, d), got a scalar." layer)
        | 1 -> Tensor.reshape [| x.Size; 1 |] x
        | _ -> x

    let widths (layer: string) (ws: int[]) =
        if ws.Length = 0 then
            invalidArg "widths" (sprintf "%s: give the width of every layer, the output layer last (for example [| 5; 5; 1 |])." layer)
        ws |> Array.iteri (fun i w -> LayerCommon.positiveInt layer (sprintf "widths[%d]" i) w)

/// BayesianDenseLayer: a dense layer whose weights are sample sites. w (d, units) ~ WeightPrior,
/// b (units,) ~ BiasPrior (when given); out = activation(x·w + b), (…, n, units). Sites
/// `BayesianDenseLayer_{name}_w` and `BayesianDenseLayer_{name}_b`. The forward pass is `Dense.forward`.
type BayesianDenseLayer =
    { /// The prior of every weight (a scalar distribution, expanded to (d, units)).
      WeightPrior: Distribution
      /// The prior of every bias (a scalar distribution), or None for a layer without bias.
      BiasPrior: Distribution option }

    /// Normal(0, 1) on the weights and the biases (the separate networks of BlackJAX's notebook).
    static member Default = { WeightPrior = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0); BiasPrior = Some (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)) }

    /// Checks the priors (continuous scalar distributions); raises naming the layer.
    static member Create(weightPrior: Distribution, biasPrior: Distribution option) =
        BayesianCommon.checkWeightPrior "BayesianDenseLayer" "weight prior" weightPrior
        biasPrior |> Option.iter (BayesianCommon.checkWeightPrior "BayesianDenseLayer" "bias prior")
        { WeightPrior = weightPrior; BiasPrior = biasPrior }

    /// Calls the layer on x (…, n, d) (a vector is one column): output (…, n, units); the activation
    /// defaults to the identity.
    member l.Call(name: string, x: Tensor, units: int, ?activation: Activation) : Model<Tensor> =
        let act = defaultArg activation Activations.identity
        LayerCommon.positiveInt "BayesianDenseLayer" "units" units
        let x = BayesianCommon.asInput "BayesianDenseLayer" x
        let d = x.Shape.[x.Rank - 1]
        model {
            let! w = Model.sample (LayerCommon.site "BayesianDenseLayer" name "w") (Dist.expand [| d; units |] l.WeightPrior)
            match l.BiasPrior with
            | Some bp ->
                let! b = Model.sample (LayerCommon.site "BayesianDenseLayer" name "b") (Dist.expand [| units |] bp)
                return Dense.forward act w (Some b) x
            | None -> return Dense.forward act w None x
        }

/// HierarchicalDenseLayer: a dense layer with one weight matrix per group, pooled through a shared
/// mean. μ (d, units) ~ MeanPrior, σ (1,) ~ ScalePrior (one scale per layer, sampled on the log scale
/// through its support's bijector), and per group w_g = μ + σ·ε_g with ε (G, d, units) ~ Normal(0, 1)
/// (non-centered) or w (G, d, units) ~ Normal(μ, σ) (centered). With Bias, b_g (G, 1, units) is pooled
/// the same way around a mean (1, units) with the same σ. out = activation(x·w_g + b_g), (G, n, units).
/// Sites `HierarchicalDenseLayer_{name}_{mu, scale, eps | w, bias_mu, bias_eps | bias}`.
type HierarchicalDenseLayer =
    { /// The prior of every element of the shared mean μ (a scalar distribution).
      MeanPrior: Distribution
      /// The prior of the layer's scale σ (a scalar distribution on positive values).
      ScalePrior: Distribution
      Parameterization: Parameterization
      /// Whether the layer has a (pooled) bias.
      Bias: bool }

    /// BlackJAX's notebook: μ ~ Normal(0, 1), σ ~ HalfNormal(1), non-centered, no bias.
    static member Default =
        { MeanPrior = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0); ScalePrior = HalfNormal (Tensor.scalar 1.0)
          Parameterization = Parameterization.NonCentered; Bias = false }

    /// Checks the priors; raises naming the layer.
    static member Create(meanPrior: Distribution, scalePrior: Distribution, parameterization: Parameterization, bias: bool) =
        BayesianCommon.checkWeightPrior "HierarchicalDenseLayer" "mean prior" meanPrior
        BayesianCommon.checkScalePrior "HierarchicalDenseLayer" scalePrior
        { MeanPrior = meanPrior; ScalePrior = scalePrior; Parameterization = parameterization; Bias = bias }

    /// Calls the layer for `groups` groups on x: (n, d) inputs shared by every group, or (G, n, d) with
    /// one set of rows per group (a vector is one column). Output (G, n, units); the activation
    /// defaults to the identity.
    member l.Call(name: string, x: Tensor, groups: int, units: int, ?activation: Activation) : Model<Tensor> =
        let layer = "HierarchicalDenseLayer"
        let act = defaultArg activation Activations.identity
        LayerCommon.positiveInt layer "groups" groups
        LayerCommon.positiveInt layer "units" units
        let x = BayesianCommon.asInput layer x
        if x.Rank >= 3 && x.Shape.[x.Rank - 3] <> groups then
            invalidArg "x" (sprintf "%s '%s': x of shape %s has %d groups on its third axis from the end, but groups = %d; pass (n, d) shared inputs or (G, n, d) with G = groups." layer name (Shape.format x.Shape) x.Shape.[x.Rank - 3] groups)
        let d = x.Shape.[x.Rank - 1]
        let site = LayerCommon.site layer name
        let stdNormal = Normal (Tensor.fullOf (Dist.dtype l.MeanPrior) [||] 0.0, Tensor.fullOf (Dist.dtype l.MeanPrior) [||] 1.0)
        // per-group values around a mean: μ broadcasts over the group axis (written with broadcasting
        // only, no reshapes, so that draws stacked on leading axes, see Ensemble.alignDraws, broadcast too)
        let pooled (suffix: string) (mu: Tensor) (sigma: Tensor) (shape: int[]) =
            match l.Parameterization with
            | Parameterization.NonCentered ->
                model {
                    let! eps = Model.sample (site (suffix + "eps")) (Dist.expand shape stdNormal)
                    return mu + sigma * eps
                }
            | Parameterization.Centered ->
                // the prior is built unchecked: with stacked draws the value is given and only broadcasts
                Model.sample (site (if suffix = "" then "w" else "bias")) (Expand (Normal (mu, sigma), shape))
        model {
            let! mu = Model.sample (site "mu") (Dist.expand [| d; units |] l.MeanPrior)
            let! sigma = Model.sample (site "scale") (Dist.expand [| 1 |] l.ScalePrior)
            let! w = pooled "" mu sigma [| groups; d; units |]
            if l.Bias then
                let! bmu = Model.sample (site "bias_mu") (Dist.expand [| 1; units |] l.MeanPrior)
                let! b = pooled "bias_" bmu sigma [| groups; 1; units |]
                return Dense.forward act w (Some b) x
            else
                return Dense.forward act w None x
        }

/// BayesianMlp: a multilayer perceptron of BayesianDenseLayers with the same priors; layer i is
/// `BayesianDenseLayer_{name}{i}_*`. Hidden layers use the activation, the last layer the output activation.
type BayesianMlp =
    { /// The priors of every layer.
      Layer: BayesianDenseLayer }

    /// Normal(0, 1) on every weight and bias.
    static member Default = { Layer = BayesianDenseLayer.Default }

    /// Calls the network on x (…, n, d): widths gives every layer's units, the output layer last
    /// (BlackJAX's notebook: [| 5; 5; 1 |] with tanh). Output (…, n, widths[last]); the activation
    /// defaults to tanh, the output activation to the identity (logits).
    member l.Call(name: string, x: Tensor, widths: int[], ?activation: Activation, ?outputActivation: Activation) : Model<Tensor> =
        BayesianCommon.widths "BayesianMlp" widths
        let act = defaultArg activation Activations.tanh
        let outAct = defaultArg outputActivation Activations.identity
        let last = widths.Length - 1
        let rec go (i: int) (h: Tensor) : Model<Tensor> =
            if i > last then Model.ret h
            else
                model {
                    let! h' = l.Layer.Call(sprintf "%s%d" name i, h, widths.[i], (if i = last then outAct else act))
                    return! go (i + 1) h'
                }
        go 0 x

/// HierarchicalMlp: a multilayer perceptron over groups in which the chosen layers are
/// HierarchicalDenseLayers (per-group weights pooled around a shared mean) and the others are
/// BayesianDenseLayers shared by every group. Layer i is `{Layer}_{name}{i}_*`.
type HierarchicalMlp =
    { /// The priors of the hierarchical layers.
      Hierarchical: HierarchicalDenseLayer
      /// The priors of the shared layers.
      Shared: BayesianDenseLayer }

    /// BlackJAX's notebook: non-centered hierarchical layers without bias, shared layers with Normal(0, 1)
    /// weights and biases.
    static member Default = { Hierarchical = HierarchicalDenseLayer.Default; Shared = BayesianDenseLayer.Default }

    /// Calls the network for `groups` groups on x ((n, d) shared inputs or (G, n, d)): widths gives every
    /// layer's units, the output layer last; hierarchicalLayers lists the indices of the per-group layers
    /// (at least one; the notebook: [| 0; 1 |] of widths [| 5; 5; 1 |]). Output (G, n, widths[last]);
    /// the activation defaults to tanh, the output activation to the identity (logits).
    member l.Call(name: string, x: Tensor, groups: int, widths: int[], hierarchicalLayers: int[], ?activation: Activation, ?outputActivation: Activation) : Model<Tensor> =
        BayesianCommon.widths "HierarchicalMlp" widths
        let last = widths.Length - 1
        if hierarchicalLayers.Length = 0 then
            invalidArg "hierarchicalLayers" "HierarchicalMlp: choose at least one hierarchical layer (a network without one is a BayesianMlp)."
        match hierarchicalLayers |> Array.tryFind (fun i -> i < 0 || i > last) with
        | Some bad -> invalidArg "hierarchicalLayers" (sprintf "HierarchicalMlp: layer index %d is outside 0..%d (%d layers)." bad last widths.Length)
        | None -> ()
        let pooled = Set.ofArray hierarchicalLayers
        let act = defaultArg activation Activations.tanh
        let outAct = defaultArg outputActivation Activations.identity
        let rec go (i: int) (h: Tensor) : Model<Tensor> =
            if i > last then Model.ret h
            else
                let a = if i = last then outAct else act
                let layerName = sprintf "%s%d" name i
                model {
                    let! h' =
                        if pooled.Contains i then l.Hierarchical.Call(layerName, h, groups, widths.[i], a)
                        else l.Shared.Call(layerName, h, widths.[i], a)
                    return! go (i + 1) h'
                }
        go 0 x

/// Runs networks built from the Bayesian dense layers for many posterior draws at once.
[<RequireQualifiedAccess>]
module Ensemble =

    /// Draws stacked on a first axis (S, …) (as a sampler or Posterior.draws gives them), each reshaped to
    /// (S, 1, …, 1, …) so that its value has activationRank + 1 axes. Substituted into a network built
    /// from BayesianDenseLayer, HierarchicalDenseLayer and the MLPs whose activations have activationRank
    /// axes ((n, u): 2; (G, n, u): 3), the network computes every draw in one run, on a new leading axis:
    /// the posterior predictive as one graph (and one ONNX model).
    let alignDraws (activationRank: int) (draws: Map<string, Tensor>) : Map<string, Tensor> =
        if activationRank < 1 then invalidArg "activationRank" (sprintf "Ensemble.alignDraws: the activations' rank must be at least 1, got %d." activationRank)
        draws
        |> Map.map (fun site d ->
            if d.Rank < 1 then invalidArg "draws" (sprintf "Ensemble.alignDraws: site '%s' has no draw axis (a scalar); stack draws on a first axis." site)
            let r = d.Rank - 1
            if r >= activationRank then d
            else Tensor.reshape (Array.concat [ [| d.Shape.[0] |]; Array.create (activationRank - r) 1; d.Shape.[1..] ]) d)
