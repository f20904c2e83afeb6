namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// MixtureLayer: coefficients from a mixture of fixed priors. logits (K) ~ Normal(0, weightScale) as one event
/// (absent when the weights are fixed); beta (d, u) ~ Σ_k softmax(logits)_k · component_k;
/// out = activation(x·beta), (n, u).
type MixtureLayer =
    { /// The fixed component priors (scalar distributions), expanded to (d, u).
      Components: Distribution list
      /// The scale of the logits' Normal prior.
      WeightScale: float
      /// Fixed mixture weights (summing to 1) instead of learned logits.
      Weights: float[] option }

    /// BLayers' defaults: components Normal(0, 1) and Laplace(0, 1), weight scale 1, learned weights.
    static member Default =
        { Components = [ Normal (Tensor.scalar 0.0, Tensor.scalar 1.0); Laplace (Tensor.scalar 0.0, Tensor.scalar 1.0) ]
          WeightScale = 1.0
          Weights = None }

    /// Checks the settings (scalar components, weightScale > 0, fixed weights non-negative, one per component,
    /// summing to 1); raises with the layer's name.
    static member Create(?components: Distribution list, ?weightScale: float, ?weights: float[]) =
        let d = MixtureLayer.Default
        let l = { Components = defaultArg components d.Components; WeightScale = defaultArg weightScale d.WeightScale; Weights = weights }
        if l.Components.IsEmpty then invalidArg "components" "MixtureLayer: needs at least one component."
        for c in l.Components do
            if (Dist.batchShape c).Length > 0 || (Dist.eventShape c).Length > 0 then
                invalidArg "components" (sprintf "MixtureLayer: each component must be a scalar distribution, got %s with batch shape %s and event shape %s."
                                             (Dist.name c) (Shape.format (Dist.batchShape c)) (Shape.format (Dist.eventShape c)))
        if not (l.WeightScale > 0.0) || Double.IsInfinity l.WeightScale then
            invalidArg "weightScale" (sprintf "MixtureLayer: weightScale must be positive and finite, got %g." l.WeightScale)
        match l.Weights with
        | None -> ()
        | Some w ->
            if w.Length <> l.Components.Length then
                invalidArg "weights" (sprintf "MixtureLayer: %d weights for %d components." w.Length l.Components.Length)
            if w |> Array.exists (fun v -> not (v >= 0.0) || Double.IsInfinity v) then
                invalidArg "weights" (sprintf "MixtureLayer: weights must be non-negative and finite, got %A." w)
            if abs (Array.sum w - 1.0) > 1e-6 then
                invalidArg "weights" (sprintf "MixtureLayer: weights must sum to 1, got %g (%A)." (Array.sum w) w)
        l

    /// Calls the layer on data x (n, d) (a vector is one column): output (n, units).
    member l.Call(name: string, x: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "MixtureLayer" "units" units
        let x = LayerCommon.asMatrix "MixtureLayer" "x" x
        let shape = [| x.Shape.[1]; units |]
        let k = l.Components.Length
        let site = LayerCommon.site "MixtureLayer" name
        let components = l.Components |> List.map (Dist.expand shape)
        model {
            let! logits =
                match l.Weights with
                | Some w -> Model.ret (Tensor.log (Tensor.ofArray w))
                | None ->
                    Model.sample (site "logits")
                        (Dist.toEvent 1 (Dist.expand [| k |] (Normal (Tensor.scalar 0.0, Tensor.scalar l.WeightScale))))
            let! beta = Model.sample (site "beta") (Mixture (logits, components))
            return act (Tensor.matmul x beta)
        }
