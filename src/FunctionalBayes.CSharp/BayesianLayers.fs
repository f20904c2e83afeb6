namespace FunctionalBayes.Fluent

open System
open System.Runtime.InteropServices
open FunctionalBayes
open FunctionalBayes.Tensors

/// <summary>How a hierarchical layer writes its per-group weights.</summary>
type WeightParameterization =
    /// <summary>w_g = μ + σ·ε_g with ε_g ~ Normal(0, 1) (the default; samples well when groups have little data).</summary>
    | NonCentered = 0
    /// <summary>w_g ~ Normal(μ, σ) (better when every group has much data).</summary>
    | Centered = 1

/// The usual activations as C# functions, made once.
module internal ActivationFunctions =
    let private ofCore (f: Tensor -> Tensor) = Func<NdArray, NdArray>(fun x -> NdArray.Wrap(f (Arg.get "x" x).Value))
    let identity = ofCore Activations.identity
    let tanh = ofCore Activations.tanh
    let relu = ofCore Activations.relu
    let sigmoid = ofCore Activations.sigmoid
    let softplus = ofCore Activations.softplus

/// <summary>The usual activations of neural-network layers, as functions of arrays.</summary>
[<AbstractClass; Sealed>]
type Activation =
    /// <summary>The identity.</summary>
    static member Identity = ActivationFunctions.identity
    /// <summary>tanh.</summary>
    static member Tanh = ActivationFunctions.tanh
    /// <summary>max(x, 0).</summary>
    static member Relu = ActivationFunctions.relu
    /// <summary>1 / (1 + exp(−x)).</summary>
    static member Sigmoid = ActivationFunctions.sigmoid
    /// <summary>log(1 + exp(x)).</summary>
    static member Softplus = ActivationFunctions.softplus

/// <summary>A Bayesian dense layer: w (d, units) ~ a weight prior, b (units) ~ a bias prior (optional); out = activation(x·w + b).</summary>
[<Sealed; AllowNullLiteral>]
type BayesianDenseBuilder internal (layer: BayesianDenseLayer) =
    member internal _.Layer = layer

    /// <summary>The weights' prior.</summary>
    member _.WeightPrior = Prior.Wrap layer.WeightPrior

    /// <summary>The biases' prior, or null for a layer without bias.</summary>
    member _.BiasPrior: Prior =
        match layer.BiasPrior with
        | Some b -> Prior.Wrap b
        | None -> null

    /// <summary>A builder with other priors (continuous scalar distributions).</summary>
    /// <param name="weightPrior">The weights' prior.</param>
    /// <param name="biasPrior">The biases' prior; null for a layer without bias.</param>
    /// <exception cref="ArgumentNullException"><paramref name="weightPrior"/> is null.</exception>
    /// <exception cref="ArgumentException">A prior is discrete or not scalar; the message names the layer.</exception>
    member _.WithPriors(weightPrior: Prior, biasPrior: Prior) =
        BayesianDenseBuilder(BayesianDenseLayer.Create(LayerArg.prior "weightPrior" weightPrior, Arg.opt biasPrior |> Option.map (fun p -> p.Value)))

    /// <summary>Calls the layer on x (…, n, d) (a vector is one column): output (…, n, units).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="units">Output units.</param>
    /// <param name="activation">Applied to the output; null for the identity.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is a scalar or units is less than 1.</exception>
    member _.Apply(name: string, x: NdArray, units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, units, ?activation = Convert.Activation activation))

/// <summary>A multilayer perceptron of Bayesian dense layers with the same priors; layer i is named <c>{name}{i}</c>.</summary>
[<Sealed; AllowNullLiteral>]
type BayesianMlpBuilder internal (layer: BayesianDenseLayer) =
    /// <summary>The priors of every layer.</summary>
    member _.Layer = BayesianDenseBuilder(layer)

    /// <summary>A builder whose layers have the priors of <paramref name="layer"/>.</summary>
    /// <param name="layer">A dense-layer builder, for example <c>BayesianNet.Dense().WithPriors(Prior.Normal(0, 2), null)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    member _.WithLayer(layer: BayesianDenseBuilder) = BayesianMlpBuilder((Arg.get "layer" layer).Layer)

    /// <summary>Calls the network on x (…, n, d): output (…, n, widths[^1]).</summary>
    /// <param name="name">The network's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="widths">Every layer's units, the output layer last (BlackJAX's notebook: [5, 5, 1]).</param>
    /// <param name="activation">The hidden layers' activation; null for tanh.</param>
    /// <param name="outputActivation">The output layer's activation; null for the identity (logits).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/>, <paramref name="x"/> or <paramref name="widths"/> is null.</exception>
    /// <exception cref="ArgumentException">widths is empty or holds a width below 1.</exception>
    member _.Apply(name: string, x: NdArray, widths: int[], [<Optional>] activation: Func<NdArray, NdArray>, [<Optional>] outputActivation: Func<NdArray, NdArray>) =
        let mlp: BayesianMlp = { Layer = layer }
        LayerArg.apply name (fun () ->
            mlp.Call(name, LayerArg.x "x" x, Array.copy (Arg.get "widths" widths), ?activation = Convert.Activation activation,
                     ?outputActivation = Convert.Activation outputActivation))

/// <summary>
/// A hierarchical dense layer over groups: μ (d, units) ~ a mean prior, σ ~ a scale prior (one per layer, sampled on
/// the log scale), per-group weights w_g = μ + σ·ε_g (non-centered) or w_g ~ Normal(μ, σ) (centered); optionally a
/// pooled bias. Output (G, n, units).
/// </summary>
[<Sealed; AllowNullLiteral>]
type HierarchicalDenseBuilder internal (layer: HierarchicalDenseLayer) =
    member internal _.Layer = layer

    /// <summary>The prior of the shared means μ.</summary>
    member _.MeanPrior = Prior.Wrap layer.MeanPrior
    /// <summary>The prior of the layer's scale σ.</summary>
    member _.ScalePrior = Prior.Wrap layer.ScalePrior
    /// <summary>How the per-group weights are written.</summary>
    member _.Parameterization =
        match layer.Parameterization with
        | Parameterization.Centered -> WeightParameterization.Centered
        | Parameterization.NonCentered -> WeightParameterization.NonCentered
    /// <summary>Whether the layer has a pooled bias.</summary>
    member _.HasBias: bool = layer.Bias

    /// <summary>A builder with other priors.</summary>
    /// <param name="meanPrior">The prior of every mean (a continuous scalar distribution).</param>
    /// <param name="scalePrior">The prior of the scale (a scalar distribution on positive values).</param>
    /// <exception cref="ArgumentNullException">A prior is null.</exception>
    /// <exception cref="ArgumentException">A prior is invalid; the message names the layer.</exception>
    member _.WithPriors(meanPrior: Prior, scalePrior: Prior) =
        HierarchicalDenseBuilder(
            HierarchicalDenseLayer.Create(LayerArg.prior "meanPrior" meanPrior, LayerArg.prior "scalePrior" scalePrior, layer.Parameterization, layer.Bias))

    /// <summary>A builder with another parameterization of the per-group weights.</summary>
    /// <param name="parameterization">Non-centered or centered.</param>
    member _.WithParameterization(parameterization: WeightParameterization) =
        let p =
            match parameterization with
            | WeightParameterization.NonCentered -> Parameterization.NonCentered
            | WeightParameterization.Centered -> Parameterization.Centered
            | other -> raise (ArgumentOutOfRangeException("parameterization", other, "Unknown parameterization."))
        HierarchicalDenseBuilder(HierarchicalDenseLayer.Create(layer.MeanPrior, layer.ScalePrior, p, layer.Bias))

    /// <summary>A builder with or without a pooled bias.</summary>
    /// <param name="bias">Whether the layer has a bias.</param>
    member _.WithBias([<Optional; DefaultParameterValue(true)>] bias: bool) =
        HierarchicalDenseBuilder(HierarchicalDenseLayer.Create(layer.MeanPrior, layer.ScalePrior, layer.Parameterization, bias))

    /// <summary>Calls the layer for <paramref name="groups"/> groups on x: (n, d) shared by every group or (G, n, d). Output (G, n, units).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="groups">The number of groups G.</param>
    /// <param name="units">Output units.</param>
    /// <param name="activation">Applied to the output; null for the identity.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">groups or units is less than 1, or x's group axis does not have G entries.</exception>
    member _.Apply(name: string, x: NdArray, groups: int, units: int, [<Optional>] activation: Func<NdArray, NdArray>) =
        LayerArg.apply name (fun () -> layer.Call(name, LayerArg.x "x" x, groups, units, ?activation = Convert.Activation activation))

/// <summary>A multilayer perceptron over groups: the chosen layers hierarchical, the others shared dense layers.</summary>
[<Sealed; AllowNullLiteral>]
type HierarchicalMlpBuilder internal (mlp: HierarchicalMlp) =
    /// <summary>The priors of the hierarchical layers.</summary>
    member _.Hierarchical = HierarchicalDenseBuilder(mlp.Hierarchical)
    /// <summary>The priors of the shared layers.</summary>
    member _.Shared = BayesianDenseBuilder(mlp.Shared)

    /// <summary>A builder with other hierarchical layers.</summary>
    /// <param name="layer">For example <c>BayesianNet.HierarchicalDense().WithParameterization(WeightParameterization.Centered)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    member _.WithHierarchical(layer: HierarchicalDenseBuilder) =
        HierarchicalMlpBuilder({ mlp with Hierarchical = (Arg.get "layer" layer).Layer })

    /// <summary>A builder with other shared layers.</summary>
    /// <param name="layer">For example <c>BayesianNet.Dense().WithPriors(Prior.Normal(0, 1), null)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    member _.WithShared(layer: BayesianDenseBuilder) = HierarchicalMlpBuilder({ mlp with Shared = (Arg.get "layer" layer).Layer })

    /// <summary>Calls the network for <paramref name="groups"/> groups on x ((n, d) shared or (G, n, d)): output (G, n, widths[^1]).</summary>
    /// <param name="name">The network's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="groups">The number of groups G.</param>
    /// <param name="widths">Every layer's units, the output layer last.</param>
    /// <param name="hierarchicalLayers">The indices of the per-group layers (at least one; the notebook: [0, 1]).</param>
    /// <param name="activation">The hidden layers' activation; null for tanh.</param>
    /// <param name="outputActivation">The output layer's activation; null for the identity (logits).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">widths is empty, a width is below 1, or a layer index is outside the network.</exception>
    member _.Apply(name: string, x: NdArray, groups: int, widths: int[], hierarchicalLayers: int[], [<Optional>] activation: Func<NdArray, NdArray>,
                   [<Optional>] outputActivation: Func<NdArray, NdArray>) =
        Bayes.CheckName(name, "name")
        Arg.notNull "hierarchicalLayers" hierarchicalLayers
        Bayes.Wrap(
            mlp.Call(name, LayerArg.x "x" x, groups, Array.copy (Arg.get "widths" widths), Array.copy hierarchicalLayers,
                     ?activation = Convert.Activation activation, ?outputActivation = Convert.Activation outputActivation))

/// <summary>
/// Bayesian neural-network layers as fluent builders: dense layers whose weights are sample sites, multilayer
/// perceptrons built from them, and their hierarchical forms over groups (per-group weights pooled around shared
/// means). Sites are named <c>{Layer}_{name}_{suffix}</c>, for example <c>BayesianDenseLayer_net0_w</c>.
/// <code>
/// var logits = BayesianNet.HierarchicalMlp().Apply("net", x, groups: 18, widths: [5, 5, 1], hierarchicalLayers: [0, 1]);
/// </code>
/// </summary>
[<AbstractClass; Sealed>]
type BayesianNet =
    /// <summary>A dense layer, w ~ Normal(0, 1) and b ~ Normal(0, 1): output activation(x·w + b).</summary>
    static member Dense() = BayesianDenseBuilder(BayesianDenseLayer.Default)
    /// <summary>A multilayer perceptron of dense layers with Normal(0, 1) weights and biases.</summary>
    static member Mlp() = BayesianMlpBuilder(BayesianDenseLayer.Default)
    /// <summary>A hierarchical dense layer: μ ~ Normal(0, 1), σ ~ HalfNormal(1), w_g = μ + σ·ε_g, no bias.</summary>
    static member HierarchicalDense() = HierarchicalDenseBuilder(HierarchicalDenseLayer.Default)
    /// <summary>A multilayer perceptron over groups whose chosen layers are hierarchical, the others shared.</summary>
    static member HierarchicalMlp() = HierarchicalMlpBuilder(HierarchicalMlp.Default)
