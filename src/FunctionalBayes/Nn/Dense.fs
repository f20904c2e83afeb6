namespace FunctionalBayes

open FunctionalBayes.Tensors

/// An element-wise activation of a layer (any function of a tensor; `Activations` names the usual ones).
type Activation = Tensor -> Tensor

/// The usual activations, as values.
[<RequireQualifiedAccess>]
module Activations =
    let identity: Activation = id
    let tanh: Activation = Tensor.tanh
    let relu: Activation = Tensor.relu
    let sigmoid: Activation = Tensor.sigmoid
    let softplus: Activation = Tensor.softplus
    /// exp(x / 2): a standard deviation from a log-variance (aevb's scale head).
    let halfExp: Activation = fun x -> Tensor.exp (x * 0.5)

/// The deterministic forward code of dense networks, shared by the neural-network modules (AEVB's
/// encoders and decoders) and the Bayesian dense layers (whose weights are sample sites).
[<RequireQualifiedAccess>]
module Dense =

    /// x (…, n_in) · w (n_in, n_out) + b (n_out): one dense layer before its activation. Batched weights
    /// (…, n_in, n_out) broadcast against a batched x, as matmul does.
    let affine (w: Tensor) (b: Tensor option) (x: Tensor) : Tensor =
        if w.Rank < 2 then
            invalidArg "w" (sprintf "Dense: the weights must be a matrix (n_in, n_out), got shape %s." (Shape.format w.Shape))
        let nIn = w.Shape.[w.Rank - 2]
        if x.Rank < 1 || x.Shape.[x.Rank - 1] <> nIn then
            invalidArg "x" (sprintf "Dense: the input's last axis must have the weights' %d inputs, got shape %s for weights %s." nIn (Shape.format x.Shape) (Shape.format w.Shape))
        let y = Tensor.matmul x w
        match b with
        | Some b -> y + b
        | None -> y

    /// activation(x · w + b).
    let forward (activation: Activation) (w: Tensor) (b: Tensor option) (x: Tensor) : Tensor = activation (affine w b x)
