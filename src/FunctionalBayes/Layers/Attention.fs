namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// AttentionLayer: Bayesian self-attention over the d features of each row (BLayers 0.3.0). With
/// h = headDim·numHeads, m = numHeads, k = headDim: scale_emb (h); W_emb, W_bias (d, h) ~ coef(scale_emb);
/// scale_qkv (m, k); W_Q, W_K, W_V (m, h, k) ~ coef(scale_qkv[:, None, :]); scale_out (u); W_out (h, u) ~ coef(scale_out).
/// H = x[:, :, None]·W_emb + W_bias (n, d, h); Q, K, V = einsum(ndh, mhk -> ndmk); A = softmax_q(einsum(ndmk, nqmk -> nmdq)/√k);
/// O = einsum(nmdq, nqmk -> ndmk) reshaped head-major to (n, d, h); out = activation(mean_d(O)·W_out), (n, u).
type AttentionLayer =
    { /// The prior of every scale site (on positive values).
      ScalePrior: Distribution
      /// The family of every weight, at its scale.
      Coef: ScaleFamily
      /// The size k of each head.
      HeadDim: int
      /// The number of heads m.
      NumHeads: int }

    /// BLayers' defaults: scales ~ HalfNormal(1), weights ~ Normal(0, scale), head_dim 8, one head.
    static member Default =
        { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0; HeadDim = 8; NumHeads = 1 }

    /// Checks the settings (a positive scale prior, a valid coefficient family, headDim and numHeads ≥ 1);
    /// raises with the layer's name.
    static member Create(?scalePrior: Distribution, ?coef: ScaleFamily, ?headDim: int, ?numHeads: int) =
        let d = AttentionLayer.Default
        let l =
            { ScalePrior = defaultArg scalePrior d.ScalePrior; Coef = defaultArg coef d.Coef
              HeadDim = defaultArg headDim d.HeadDim; NumHeads = defaultArg numHeads d.NumHeads }
        LayerCommon.checkScalePrior "AttentionLayer" l.ScalePrior
        l.Coef.Validate "AttentionLayer"
        LayerCommon.positiveInt "AttentionLayer" "headDim" l.HeadDim
        LayerCommon.positiveInt "AttentionLayer" "numHeads" l.NumHeads
        l

    /// Calls the layer on data x (n, d) (a vector is one column): output (n, units). headDim and numHeads
    /// override the layer's settings for this call (BLayers takes them at the call).
    member l.Call(name: string, x: Tensor, ?units: int, ?activation: Activation, ?headDim: int, ?numHeads: int) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        let hk = defaultArg headDim l.HeadDim
        let m = defaultArg numHeads l.NumHeads
        LayerCommon.positiveInt "AttentionLayer" "units" units
        LayerCommon.positiveInt "AttentionLayer" "headDim" hk
        LayerCommon.positiveInt "AttentionLayer" "numHeads" m
        let x = LayerCommon.asMatrix "AttentionLayer" "x" x
        let n = x.Shape.[0]
        let d = x.Shape.[1]
        let h = hk * m
        let site = LayerCommon.site "AttentionLayer" name
        let coef (shape: int[]) (scale: Tensor) = LayerCommon.expandTo shape (l.Coef.WithScaleUnchecked scale)
        // einsum ndh,mhk->ndmk, then heads first: (n, m, d, k).
        let project (hs: Tensor) (w: Tensor) =
            let w2 = w |> Tensor.permute [| 1; 0; 2 |] |> Tensor.reshape [| h; m * hk |]
            Tensor.matmul (Tensor.reshape [| n * d; h |] hs) w2
            |> Tensor.reshape [| n; d; m; hk |]
            |> Tensor.permute [| 0; 2; 1; 3 |]
        model {
            let! scaleEmb = Model.sample (site "scale_emb") (LayerCommon.expandTo [| h |] l.ScalePrior)
            let! wEmb = Model.sample (site "W_emb") (coef [| d; h |] scaleEmb)
            let! wBias = Model.sample (site "W_bias") (coef [| d; h |] scaleEmb)
            let! scaleQkv = Model.sample (site "scale_qkv") (LayerCommon.expandTo [| m; hk |] l.ScalePrior)
            let qkvScale = Tensor.unsqueeze 1 scaleQkv
            let! wQ = Model.sample (site "W_Q") (coef [| m; h; hk |] qkvScale)
            let! wK = Model.sample (site "W_K") (coef [| m; h; hk |] qkvScale)
            let! wV = Model.sample (site "W_V") (coef [| m; h; hk |] qkvScale)
            let! scaleOut = Model.sample (site "scale_out") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let! wOut = Model.sample (site "W_out") (coef [| h; units |] scaleOut)
            let hs = Tensor.unsqueeze 2 x * wEmb + wBias
            let q = project hs wQ
            let k = project hs wK
            let v = project hs wV
            let scores = Tensor.matmul q (Tensor.transpose k) / Math.Sqrt(float hk)
            let attn = Tensor.softmax -1 scores
            let o =
                Tensor.matmul attn v
                |> Tensor.permute [| 0; 2; 1; 3 |]
                |> Tensor.reshape [| n; d; h |]
            return act (Tensor.matmul (Tensor.meanAxes [| 1 |] false o) wOut)
        }
