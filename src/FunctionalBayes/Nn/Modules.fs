namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// How a dense layer's weights are drawn (biases start at zero). fan_in and fan_out are the layer's
/// input and output sizes.
[<RequireQualifiedAccess>]
type WeightInit =
    /// U(−a, a), a = √(6 / (fan_in + fan_out)) (Glorot and Bengio).
    | GlorotUniform
    /// N(0, 2 / (fan_in + fan_out)).
    | GlorotNormal
    /// N(0, 1 / fan_in) (LeCun; Flax's default kernel initializer).
    | LeCunNormal
    /// U(−a, a), a = √(3 / fan_in).
    | LeCunUniform
    /// N(0, 2 / fan_in) (He, for ReLU networks).
    | HeNormal
    /// U(−a, a), a = √(6 / fan_in).
    | HeUniform
    /// U(−a, a), a = 1 / √fan_in: variance 1 / (3·fan_in), PyTorch's nn.Linear default (Kaiming-uniform
    /// with a = √5). The VAE benchmark uses it to train the same model as its PyTorch baseline.
    | FanInUniform

/// A layer of a network: a tensor in, a tensor out, with named parameters and state (for example
/// BatchNorm's running statistics). Pure: `Apply` returns the new state instead of changing one.
[<NoEquality; NoComparison>]
type NnLayer =
    { /// Initial parameters and state from a key.
      InitLayer: RngKey -> Map<string, Tensor> * Map<string, Tensor>
      /// params → state → input → train → (output, new state).
      ApplyLayer: Map<string, Tensor> -> Map<string, Tensor> -> Tensor -> bool -> Tensor * Map<string, Tensor> }

/// A network with named outputs: aevb's encoder/decoder contract. `Init` gives parameters and state;
/// `Apply params state input train` gives the outputs by name and the new state (updated only in train
/// mode). Any pair of functions of these shapes plugs in (Nn.ofFunctions).
[<NoEquality; NoComparison>]
type NnModule =
    { Init: RngKey -> Map<string, Tensor> * Map<string, Tensor>
      Apply: Map<string, Tensor> -> Map<string, Tensor> -> Tensor -> bool -> Map<string, Tensor> * Map<string, Tensor> }

/// One output head of an MLP: a dense layer from the last hidden layer, then a transform
/// (identity, softplus, exp(x/2) for a scale from a log-variance, ...).
[<NoEquality; NoComparison>]
type MlpHead = { Name: string; Dim: int; Transform: Activation }

/// An MLP: Dense → (BatchNorm) → activation → (Dropout) per hidden layer, then one Dense head per output.
[<NoEquality; NoComparison>]
type MlpSpec =
    { Input: int
      Hidden: int list
      Activation: Activation
      Init: WeightInit
      /// BatchNorm after the dense part of these hidden layers (0-based).
      BatchNormAt: int list
      /// Dropout rate after each hidden layer's activation (0 for none).
      Dropout: float
      Heads: MlpHead list
      /// The parameters' dtype (Float32 is the fast choice for large networks).
      Dtype: Dtype }

    /// ReLU hidden layers, He-normal weights, no BatchNorm or Dropout, float32.
    static member Create(input: int, hidden: int list, heads: MlpHead list) =
        { Input = input; Hidden = hidden; Activation = Activations.relu; Init = WeightInit.HeNormal
          BatchNormAt = []; Dropout = 0.0; Heads = heads; Dtype = Float32 }

/// Deterministic neural-network modules as pure init/apply values over parameter maps (so
/// Autodiff.gradMap, the optimizers and save/load work on them unchanged).
[<RequireQualifiedAccess>]
module Nn =

    /// Weights of shape (fanIn, fanOut) drawn by an initialization rule, in the given dtype.
    let initWeights (init: WeightInit) (dtype: Dtype) (key: RngKey) (fanIn: int) (fanOut: int) : Tensor =
        if fanIn < 1 || fanOut < 1 then
            invalidArg "fanIn" (sprintf "Nn.initWeights: sizes must be positive, got fan_in %d and fan_out %d." fanIn fanOut)
        let shape = [| fanIn; fanOut |]
        let fi = float fanIn
        let fo = float fanOut
        let uniform (a: float) = (Rng.uniform key shape * 2.0 - 1.0) * a
        let normal (sd: float) = Rng.normal key shape * sd
        let w =
            match init with
            | WeightInit.GlorotUniform -> uniform (sqrt (6.0 / (fi + fo)))
            | WeightInit.GlorotNormal -> normal (sqrt (2.0 / (fi + fo)))
            | WeightInit.LeCunNormal -> normal (sqrt (1.0 / fi))
            | WeightInit.LeCunUniform -> uniform (sqrt (3.0 / fi))
            | WeightInit.HeNormal -> normal (sqrt (2.0 / fi))
            | WeightInit.HeUniform -> uniform (sqrt (6.0 / fi))
            | WeightInit.FanInUniform -> uniform (1.0 / sqrt fi)
        Tensor.cast dtype w

    let private prefixed (p: string) (m: Map<string, Tensor>) =
        m |> Seq.map (fun (KeyValue (k, v)) -> p + "." + k, v) |> Map.ofSeq

    let private under (p: string) (m: Map<string, Tensor>) =
        let pre = p + "."
        m |> Seq.choose (fun (KeyValue (k, v)) -> if k.StartsWith(pre, StringComparison.Ordinal) then Some (k.Substring pre.Length, v) else None)
        |> Map.ofSeq

    let private need (what: string) (m: Map<string, Tensor>) (k: string) =
        match m.TryFind k with
        | Some t -> t
        | None ->
            invalidArg "params" (sprintf "%s: missing '%s'; given keys [%s]." what k (String.Join(", ", m |> Map.keys)))

    /// A dense layer activation(x · w + b) with parameters "w" (nIn, nOut) and "b" (nOut).
    let dense (init: WeightInit) (dtype: Dtype) (nIn: int) (nOut: int) (activation: Activation) : NnLayer =
        { InitLayer = fun key ->
            Map.ofList [ "w", initWeights init dtype key nIn nOut; "b", Tensor.fullOf dtype [| nOut |] 0.0 ], Map.empty
          ApplyLayer = fun ps st x _ ->
            Dense.forward activation (need "Nn.dense" ps "w") (Some (need "Nn.dense" ps "b")) x, st }

    /// An element-wise activation as a layer (no parameters).
    let activation (f: Activation) : NnLayer =
        { InitLayer = fun _ -> Map.empty, Map.empty
          ApplyLayer = fun _ st x _ -> f x, st }

    /// Batch normalization over every axis but the last (the features): parameters "gamma", "beta";
    /// state "mean", "var" (running statistics). In train mode the batch statistics normalize and the
    /// running ones move by `momentum` toward them; in eval mode the running ones normalize.
    let batchNorm (dtype: Dtype) (dim: int) (momentum: float) (eps: float) : NnLayer =
        if not (momentum > 0.0 && momentum <= 1.0) then
            invalidArg "momentum" (sprintf "Nn.batchNorm: momentum must be in (0, 1], got %g." momentum)
        if not (eps > 0.0) then invalidArg "eps" (sprintf "Nn.batchNorm: eps must be positive, got %g." eps)
        { InitLayer = fun _ ->
            Map.ofList [ "gamma", Tensor.fullOf dtype [| dim |] 1.0; "beta", Tensor.fullOf dtype [| dim |] 0.0 ],
            Map.ofList [ "mean", Tensor.fullOf dtype [| dim |] 0.0; "var", Tensor.fullOf dtype [| dim |] 1.0 ]
          ApplyLayer = fun ps st x train ->
            if x.Rank < 1 || x.Shape.[x.Rank - 1] <> dim then
                invalidArg "x" (sprintf "Nn.batchNorm: the input's last axis must have %d features, got shape %s." dim (Shape.format x.Shape))
            let gamma = need "Nn.batchNorm" ps "gamma"
            let beta = need "Nn.batchNorm" ps "beta"
            if train then
                let axes = Array.init (x.Rank - 1) id
                let m = Tensor.meanAxes axes false x
                let d = x - m
                let v = Tensor.meanAxes axes false (d * d)
                let y = d / Tensor.sqrt (v + eps) * gamma + beta
                let rm = need "Nn.batchNorm (state)" st "mean"
                let rv = need "Nn.batchNorm (state)" st "var"
                let st' =
                    Map.ofList [ "mean", Tensor.detach ((1.0 - momentum) * rm + momentum * Tensor.detach m)
                                 "var", Tensor.detach ((1.0 - momentum) * rv + momentum * Tensor.detach v) ]
                y, st'
            else
                let m = need "Nn.batchNorm (state)" st "mean"
                let v = need "Nn.batchNorm (state)" st "var"
                (x - m) / Tensor.sqrt (v + eps) * gamma + beta, st }

    let private keyTensor (k: RngKey) = Tensor.createI32 [| 2 |] [| int k.K0; int k.K1 |]
    let private keyOf (t: Tensor) =
        let a = Tensor.toInts t
        RngKey(uint32 a.[0], uint32 a.[1])

    /// Inverted dropout: in train mode each element is zeroed with probability `rate` and the rest
    /// scaled by 1/(1 − rate); in eval mode the identity. Key-driven: the state "key" (from the init
    /// key) is split on every train call, so the same initial key gives the same masks.
    let dropout (rate: float) : NnLayer =
        if not (rate >= 0.0 && rate < 1.0) then invalidArg "rate" (sprintf "Nn.dropout: rate must be in [0, 1), got %g." rate)
        { InitLayer = fun key -> Map.empty, Map.ofList [ "key", keyTensor key ]
          ApplyLayer = fun _ st x train ->
            if not train || rate = 0.0 then x, st
            else
                let k, next = Rng.split (keyOf (need "Nn.dropout (state)" st "key"))
                let keep = Tensor.geScalar (Rng.uniform k x.Shape) rate |> Tensor.cast x.Dtype
                x * keep * (1.0 / (1.0 - rate)), Map.ofList [ "key", keyTensor next ] }

    /// Layers applied in order; layer i's parameters and state are named "NAME.key".
    let sequential (layers: (string * NnLayer) list) : NnLayer =
        let names = layers |> List.map fst
        match names |> List.countBy id |> List.tryFind (fun (_, c) -> c > 1) with
        | Some (n, _) -> invalidArg "layers" (sprintf "Nn.sequential: the layer name '%s' is used twice." n)
        | None -> ()
        { InitLayer = fun key ->
            let keys = Rng.splitN key (max 1 layers.Length)
            layers
            |> List.mapi (fun i (n, l) -> let p, s = l.InitLayer keys.[i] in prefixed n p, prefixed n s)
            |> List.fold (fun (ap, ast) (p, s) -> Map.fold (fun m k v -> Map.add k v m) ap p, Map.fold (fun m k v -> Map.add k v m) ast s)
                         (Map.empty, Map.empty)
          ApplyLayer = fun ps st x train ->
            let mutable h = x
            let mutable newState = st
            for n, l in layers do
                let y, s = l.ApplyLayer (under n ps) (under n st) h train
                h <- y
                for KeyValue (k, v) in s do newState <- Map.add (n + "." + k) v newState
            h, newState }

    /// A body layer followed by named heads, each applied to the body's output.
    let withHeads (body: NnLayer) (heads: (string * NnLayer) list) : NnModule =
        { Init = fun key ->
            let kb, kh = Rng.split key
            let pb, sb = body.InitLayer kb
            let hk = Rng.splitN kh (max 1 heads.Length)
            heads |> List.mapi (fun i (n, h) -> n, h.InitLayer hk.[i])
            |> List.fold (fun (ap, ast) (n, (p, s)) ->
                Map.fold (fun m k v -> Map.add ("head." + n + "." + k) v m) ap p,
                Map.fold (fun m k v -> Map.add ("head." + n + "." + k) v m) ast s)
                (prefixed "body" pb, prefixed "body" sb)
          Apply = fun ps st x train ->
            let h, sb = body.ApplyLayer (under "body" ps) (under "body" st) x train
            let mutable newState = st
            for KeyValue (k, v) in sb do newState <- Map.add ("body." + k) v newState
            let outs =
                heads |> List.map (fun (n, l) ->
                    let pre = "head." + n
                    let y, s = l.ApplyLayer (under pre ps) (under pre st) h train
                    for KeyValue (k, v) in s do newState <- Map.add (pre + "." + k) v newState
                    n, y)
                |> Map.ofList
            outs, newState }

    /// An MLP with output heads (aevb's built-in MLP). Parameters are named "body.hidden<i>.w",
    /// "body.bn<i>.gamma", ..., "head.<name>.w"; each head is Dense(last hidden, dim) then its transform.
    let mlp (spec: MlpSpec) : NnModule =
        if spec.Input < 1 then invalidArg "spec" (sprintf "Nn.mlp: Input must be positive, got %d." spec.Input)
        if spec.Heads.IsEmpty then invalidArg "spec" "Nn.mlp: give at least one head (for example { Name = \"loc\"; Dim = 2; Transform = Activations.identity })."
        spec.Hidden |> List.iteri (fun i h -> if h < 1 then invalidArg "spec" (sprintf "Nn.mlp: hidden layer %d has %d units; it needs at least one." i h))
        spec.BatchNormAt |> List.iter (fun i ->
            if i < 0 || i >= spec.Hidden.Length then
                invalidArg "spec" (sprintf "Nn.mlp: BatchNormAt %d is not a hidden layer (there are %d)." i spec.Hidden.Length))
        let sizes = spec.Input :: spec.Hidden
        let layers =
            [ for i, (nIn, nOut) in List.pairwise sizes |> List.indexed do
                  let bn = List.contains i spec.BatchNormAt
                  yield sprintf "hidden%d" i, dense spec.Init spec.Dtype nIn nOut (if bn then Activations.identity else spec.Activation)
                  if bn then
                      yield sprintf "bn%d" i, batchNorm spec.Dtype nOut 0.1 1e-5
                      yield sprintf "act%d" i, activation spec.Activation
                  if spec.Dropout > 0.0 then yield sprintf "dropout%d" i, dropout spec.Dropout ]
        let last = List.last sizes
        let heads = spec.Heads |> List.map (fun h -> h.Name, dense spec.Init spec.Dtype last h.Dim h.Transform)
        withHeads (sequential layers) heads

    /// A module from any init and apply functions of the contract's shapes.
    let ofFunctions (init: RngKey -> Map<string, Tensor> * Map<string, Tensor>)
                    (apply: Map<string, Tensor> -> Map<string, Tensor> -> Tensor -> bool -> Map<string, Tensor> * Map<string, Tensor>) : NnModule =
        { Init = init; Apply = apply }

    /// A head record: a name, a size and a transform.
    let head (name: string) (dim: int) (transform: Activation) : MlpHead = { Name = name; Dim = dim; Transform = transform }

    /// The number of scalar parameters.
    let parameterCount (ps: Map<string, Tensor>) = ps |> Seq.sumBy (fun (KeyValue (_, t)) -> t.Size)
