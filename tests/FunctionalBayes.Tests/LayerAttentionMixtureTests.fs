/// AttentionLayer and MixtureLayer: forward passes with fixed weights against loops, prior densities,
/// site names and shapes, settings checks.
module FunctionalBayes.Tests.LayerAttentionMixtureTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private runWith (values: (string * Tensor) list) (seed: uint64) (m: Model<Tensor>) =
    Model.run (Handlers.trace (Handlers.seed (Rng.key seed) (Handlers.substitute (Map values) m)))

let private shapeOf (tr: Trace) (name: string) = (tr.Value name).Shape

/// Every sample site has finite log densities, one per element of its batch shape.
let private checkDensities (tr: Trace) =
    for s in tr.Sites |> Array.filter (fun s -> s.Kind = SampleSite) do
        let lp = Site.logDensity s
        Assert.True(Shape.equal (Dist.batchShape s.Dist.Value) lp.Shape, sprintf "%s: log density shape %A" s.Name lp.Shape)
        Assert.True(Tensor.toArray lp |> Array.forall Double.IsFinite, s.Name)

// ---- attention --------------------------------------------------------------------------------

/// The attention forward pass by loops over float arrays (row-major weights).
let private attentionLoop (n: int) (d: int) (m: int) (hk: int) (u: int) (x: float[]) (wEmb: float[]) (wBias: float[])
                          (wQ: float[]) (wK: float[]) (wV: float[]) (wOut: float[]) =
    let h = m * hk
    let out = Array.zeroCreate (n * u)
    for i in 0 .. n - 1 do
        let hs = Array2D.init d h (fun a c -> x.[i * d + a] * wEmb.[a * h + c] + wBias.[a * h + c])
        let proj (w: float[]) = Array3D.init d m hk (fun a hd kk -> Seq.sum (seq { for c in 0 .. h - 1 -> hs.[a, c] * w.[(hd * h + c) * hk + kk] }))
        let q, k, v = proj wQ, proj wK, proj wV
        let pooled = Array.zeroCreate h
        for hd in 0 .. m - 1 do
            for a in 0 .. d - 1 do
                let scores = Array.init d (fun b -> Seq.sum (seq { for kk in 0 .. hk - 1 -> q.[a, hd, kk] * k.[b, hd, kk] }) / sqrt (float hk))
                let mx = Array.max scores
                let e = scores |> Array.map (fun s -> exp (s - mx))
                let z = Array.sum e
                for kk in 0 .. hk - 1 do
                    let o = Seq.sum (seq { for b in 0 .. d - 1 -> e.[b] / z * v.[b, hd, kk] })
                    pooled.[hd * hk + kk] <- pooled.[hd * hk + kk] + o / float d
        for uu in 0 .. u - 1 do
            out.[i * u + uu] <- Seq.sum (seq { for c in 0 .. h - 1 -> pooled.[c] * wOut.[c * u + uu] })
    out

let ``attention with fixed weights matches the loop implementation`` () =
    for (m, hk, u) in [ (2, 3, 2); (1, 4, 1) ] do
        let n, d = 3, 4
        let h = m * hk
        let x = randomTensor 1 [| n; d |] -1.5 1.5
        let wEmb = randomTensor 2 [| d; h |] -1.0 1.0
        let wBias = randomTensor 3 [| d; h |] -1.0 1.0
        let wQ = randomTensor 4 [| m; h; hk |] -1.0 1.0
        let wK = randomTensor 5 [| m; h; hk |] -1.0 1.0
        let wV = randomTensor 6 [| m; h; hk |] -1.0 1.0
        let wOut = randomTensor 7 [| h; u |] -1.0 1.0
        let layer = AttentionLayer.Create(headDim = hk, numHeads = m)
        let out, _ =
            layer.Call("a", x, units = u)
            |> runWith [ "AttentionLayer_a_W_emb", wEmb; "AttentionLayer_a_W_bias", wBias; "AttentionLayer_a_W_Q", wQ
                         "AttentionLayer_a_W_K", wK; "AttentionLayer_a_W_V", wV; "AttentionLayer_a_W_out", wOut ] 1UL
        let a = Tensor.toArray
        let expected = attentionLoop n d m hk u (a x) (a wEmb) (a wBias) (a wQ) (a wK) (a wV) (a wOut)
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-6 expected (Tensor.toArray out)

let ``attention sites, shapes and the prior scales of the weights`` () =
    let n, d = 20, 4
    let x = randomTensor 8 [| n; d |] -1.0 1.0
    let names suffixes = suffixes |> Array.map (sprintf "AttentionLayer_t_%s")
    for (hk, m) in [ (8, 1); (3, 2) ] do
        for units in [ 1; 3 ] do
            let h = hk * m
            let out, tr = AttentionLayer.Default.Call("t", x, units = units, headDim = hk, numHeads = m) |> runWith [] 2UL
            Assert.Equal<string[]>(names [| "scale_emb"; "W_emb"; "W_bias"; "scale_qkv"; "W_Q"; "W_K"; "W_V"; "scale_out"; "W_out" |],
                                   tr.Sites |> Array.map (fun s -> s.Name))
            Assert.Equal<int[]>([| h |], shapeOf tr "AttentionLayer_t_scale_emb")
            Assert.Equal<int[]>([| d; h |], shapeOf tr "AttentionLayer_t_W_emb")
            Assert.Equal<int[]>([| d; h |], shapeOf tr "AttentionLayer_t_W_bias")
            Assert.Equal<int[]>([| m; hk |], shapeOf tr "AttentionLayer_t_scale_qkv")
            for w in [ "W_Q"; "W_K"; "W_V" ] do
                Assert.Equal<int[]>([| m; h; hk |], shapeOf tr ("AttentionLayer_t_" + w))
            Assert.Equal<int[]>([| units |], shapeOf tr "AttentionLayer_t_scale_out")
            Assert.Equal<int[]>([| h; units |], shapeOf tr "AttentionLayer_t_W_out")
            Assert.Equal<int[]>([| n; units |], out.Shape)
            checkDensities tr
    // W_Q's scale is scale_qkv[:, None, :]; W_emb's is scale_emb
    let m, hk = 2, 3
    let sq = randomTensor 9 [| m; hk |] 0.5 2.0
    let se = randomTensor 10 [| m * hk |] 0.5 2.0
    let _, tr = AttentionLayer.Create(headDim = hk, numHeads = m).Call("s", x) |> runWith [ "AttentionLayer_s_scale_qkv", sq; "AttentionLayer_s_scale_emb", se ] 3UL
    let sd name = tr.[name].Dist.Value |> Dist.variance |> Tensor.sqrt |> Tensor.toArray
    let sqa = Tensor.toArray sq
    assertClose 1e-12 (Array.init (m * m * hk * hk) (fun idx -> let hd, kk = idx / (m * hk * hk), idx % hk in sqa.[hd * hk + kk])) (sd "AttentionLayer_s_W_Q")
    let sea = Tensor.toArray se
    assertClose 1e-12 (Array.init (d * m * hk) (fun idx -> sea.[idx % (m * hk)])) (sd "AttentionLayer_s_W_emb")

let ``attention settings are checked, naming the layer`` () =
    let bad (f: unit -> unit) =
        let ex = Assert.ThrowsAny<ArgumentException>(fun () -> f ())
        Assert.Contains("AttentionLayer", ex.Message)
    bad (fun () -> AttentionLayer.Create(numHeads = 0) |> ignore)
    bad (fun () -> AttentionLayer.Create(headDim = 0) |> ignore)
    bad (fun () -> AttentionLayer.Create(scalePrior = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)) |> ignore)
    bad (fun () -> AttentionLayer.Default.Call("a", Tensor.ones [| 2; 2 |], numHeads = 0) |> ignore)
    bad (fun () -> AttentionLayer.Default.Call("a", Tensor.ones [| 2; 2 |], units = 0) |> ignore)
    Assert.Equal(8, AttentionLayer.Default.HeadDim)
    Assert.Equal(1, AttentionLayer.Default.NumHeads)

// ---- mixture ----------------------------------------------------------------------------------

let private logNormal01 (b: float) = -0.5 * b * b - 0.5 * log (2.0 * Math.PI)
let private logLaplace01 (b: float) = -abs b - log 2.0

let ``mixture layer: out = x·beta, and beta's prior density is the weighted mixture`` () =
    let n, d, u = 5, 3, 2
    let x = randomTensor 11 [| n; d |] -2.0 2.0
    let logits = Tensor.ofArray [| 0.3; -0.4 |]
    let beta = randomTensor 12 [| d; u |] -2.0 2.0
    let out, tr =
        MixtureLayer.Default.Call("m", x, units = u)
        |> runWith [ "MixtureLayer_m_logits", logits; "MixtureLayer_m_beta", beta ] 1UL
    let xa, ba = Tensor.toArray x, Tensor.toArray beta
    let expected = Array.init (n * u) (fun idx -> let i, c = idx / u, idx % u in Seq.sum (seq { for j in 0 .. d - 1 -> xa.[i * d + j] * ba.[j * u + c] }))
    assertClose 1e-6 expected (Tensor.toArray out)
    Assert.Equal<string[]>([| "MixtureLayer_m_logits"; "MixtureLayer_m_beta" |], tr.Sites |> Array.map (fun s -> s.Name))
    // w = softmax(logits)
    let e1, e2 = exp 0.3, exp -0.4
    let w1, w2 = e1 / (e1 + e2), e2 / (e1 + e2)
    let lpBeta = Site.logDensity tr.["MixtureLayer_m_beta"]
    Assert.Equal<int[]>([| d; u |], lpBeta.Shape)
    let expectedLp = ba |> Array.map (fun b -> log (w1 * exp (logNormal01 b) + w2 * exp (logLaplace01 b)))
    assertClose 1e-10 expectedLp (Tensor.toArray lpBeta)
    // the logits are one event: a scalar log density, the sum of Normal(0, 1) terms
    let lpLogits = Site.logDensity tr.["MixtureLayer_m_logits"]
    Assert.Equal<int[]>([||], lpLogits.Shape)
    Assert.Equal(logNormal01 0.3 + logNormal01 -0.4, Tensor.toScalar lpLogits, 10)

let ``mixture layer with fixed weights and custom components`` () =
    let x = randomTensor 13 [| 4; 2 |] -1.0 1.0
    let beta = randomTensor 14 [| 2; 1 |] -2.0 2.0
    let layer = MixtureLayer.Create(weights = [| 0.2; 0.8 |])
    let _, tr = layer.Call("f", x) |> runWith [ "MixtureLayer_f_beta", beta ] 2UL
    Assert.Equal<string[]>([| "MixtureLayer_f_beta" |], tr.Sites |> Array.map (fun s -> s.Name))
    let expectedLp = Tensor.toArray beta |> Array.map (fun b -> log (0.2 * exp (logNormal01 b) + 0.8 * exp (logLaplace01 b)))
    assertClose 1e-10 expectedLp (Tensor.toArray (Site.logDensity tr.["MixtureLayer_f_beta"]))
    let comps = [ Normal (Tensor.scalar 0.0, Tensor.scalar 0.1); Normal (Tensor.scalar 0.0, Tensor.scalar 1.0); Dist.studentT (Tensor.scalar 3.0) (Tensor.scalar 0.0) (Tensor.scalar 1.0) ]
    for units in [ 1; 3 ] do
        let out, tr = MixtureLayer.Create(components = comps, weightScale = 2.0).Call("c", x, units = units) |> runWith [] 3UL
        Assert.Equal<int[]>([| 3 |], shapeOf tr "MixtureLayer_c_logits")
        Assert.Equal<int[]>([| 2; units |], shapeOf tr "MixtureLayer_c_beta")
        Assert.Equal<int[]>([| 4; units |], out.Shape)
        checkDensities tr

let ``mixture settings are checked at Create, naming the layer`` () =
    let bad (f: unit -> unit) =
        let ex = Assert.ThrowsAny<ArgumentException>(fun () -> f ())
        Assert.Contains("MixtureLayer", ex.Message)
    bad (fun () -> MixtureLayer.Create(weights = [| 0.5; 0.4 |]) |> ignore)
    bad (fun () -> MixtureLayer.Create(weights = [| 1.0 |]) |> ignore)
    bad (fun () -> MixtureLayer.Create(weights = [| 1.5; -0.5 |]) |> ignore)
    bad (fun () -> MixtureLayer.Create(weightScale = 0.0) |> ignore)
    bad (fun () -> MixtureLayer.Create(components = []) |> ignore)
    bad (fun () -> MixtureLayer.Create(components = [ Normal (Tensor.zeros [| 2 |], Tensor.scalar 1.0) ]) |> ignore)
    bad (fun () -> MixtureLayer.Default.Call("z", Tensor.ones [| 2; 2 |], units = 0) |> ignore)

let ``attention output is differentiable in the weights (reverse mode vs finite differences)`` () =
    let m, hk, n, d = 2, 2, 3, 3
    let h = m * hk
    let x = randomTensor 15 [| n; d |] -1.0 1.0
    let layer = AttentionLayer.Create(headDim = hk, numHeads = m)
    let f (ws: Tensor[]) =
        layer.Call("g", x, units = 2)
        |> runWith [ "AttentionLayer_g_W_emb", ws.[0]; "AttentionLayer_g_W_Q", ws.[1]; "AttentionLayer_g_W_K", ws.[2]; "AttentionLayer_g_W_V", ws.[3] ] 4UL
        |> fst
    gradCheck f [| randomTensor 16 [| d; h |] -1.0 1.0; randomTensor 17 [| m; h; hk |] -1.0 1.0
                   randomTensor 18 [| m; h; hk |] -1.0 1.0; randomTensor 19 [| m; h; hk |] -1.0 1.0 |]

[<Tests>]
let tests =
    testList "LayerAttentionMixtureTests" [
        testCase "attention with fixed weights matches the loop implementation" ``attention with fixed weights matches the loop implementation``
        testCase "attention sites, shapes and the prior scales of the weights" ``attention sites, shapes and the prior scales of the weights``
        testCase "attention settings are checked, naming the layer" ``attention settings are checked, naming the layer``
        testCase "mixture layer: out = x·beta, and beta's prior density is the weighted mixture" ``mixture layer: out = x·beta, and beta's prior density is the weighted mixture``
        testCase "mixture layer with fixed weights and custom components" ``mixture layer with fixed weights and custom components``
        testCase "mixture settings are checked at Create, naming the layer" ``mixture settings are checked at Create, naming the layer``
        testCase "attention output is differentiable in the weights (reverse mode vs finite differences)" ``attention output is differentiable in the weights (reverse mode vs finite differences)``
    ]
