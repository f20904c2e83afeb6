/// HorseshoeLayer, SpikeAndSlabLayer and HorseshoeInteractionLayer: forward passes with substituted
/// parameters against loops, the effective horseshoe scale, site names and shapes, settings checks, prior moments.
module FunctionalBayes.Tests.LayerSparseTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// Runs a layer with some sites substituted; returns its output and trace.
let private runWith (values: (string * Tensor) list) (seed: uint64) (m: Model<Tensor>) =
    Model.run (Handlers.trace (Handlers.seed (Rng.key seed) (Handlers.substitute (Map values) m)))

/// x (n, d) · b (d, u) by loops.
let private matmulLoop (n: int) (d: int) (u: int) (x: float[]) (b: float[]) =
    Array.init (n * u) (fun idx ->
        let i, k = idx / u, idx % u
        Seq.sum (seq { for j in 0 .. d - 1 -> x.[i * d + j] * b.[j * u + k] }))

/// The standard deviation of a site's distribution, element-wise.
let private siteSd (tr: Trace) (name: string) = tr.[name].Dist.Value |> Dist.variance |> Tensor.sqrt |> Tensor.toArray

let private shapeOf (tr: Trace) (name: string) = (tr.Value name).Shape

/// Every sample site has one finite log density per element of its value (no stray broadcasting).
let private checkDensities (tr: Trace) =
    for s in tr.Sites |> Array.filter (fun s -> s.Kind = SampleSite) do
        let lp = Site.logDensity s
        Assert.True(Shape.equal s.Value.Value.Shape lp.Shape, sprintf "%s: log density shape %A for value shape %A" s.Name lp.Shape s.Value.Value.Shape)
        Assert.True(Tensor.toArray lp |> Array.forall Double.IsFinite, s.Name)

let ``horseshoe without a slab: beta's prior scale is tau times lambda and out = x·beta`` () =
    let n, d, u = 5, 3, 2
    let x = randomTensor 1 [| n; d |] -2.0 2.0
    let tau = Tensor.ofArray [| 0.3; 1.7 |]
    let lam = randomTensor 2 [| d; u |] 0.1 3.0
    let beta = randomTensor 3 [| d; u |] -1.0 1.0
    let out, tr =
        HorseshoeLayer.Default.Call("h", x, units = u)
        |> runWith [ "HorseshoeLayer_h_tau", tau; "HorseshoeLayer_h_scale", lam; "HorseshoeLayer_h_beta", beta ] 1UL
    let t = Tensor.toArray tau
    let l = Tensor.toArray lam
    let expected = Array.init (d * u) (fun idx -> t.[idx % u] * l.[idx])
    assertClose 1e-6 expected (siteSd tr "HorseshoeLayer_h_beta")
    assertClose 1e-6 (matmulLoop n d u (Tensor.toArray x) (Tensor.toArray beta)) (Tensor.toArray out)
    Assert.Equal<int[]>([| n; u |], out.Shape)

let ``horseshoe with a slab: beta's prior scale is the regularized scale`` () =
    let n, d, u = 4, 3, 2
    let x = randomTensor 4 [| n; d |] -2.0 2.0
    let tau = Tensor.ofArray [| 0.5; 2.0 |]
    let lam = randomTensor 5 [| d; u |] 0.1 5.0
    let c2 = 1.3
    let layer = HorseshoeLayer.Create(slabScale = 2.0)
    let _, tr =
        layer.Call("h", x, units = u)
        |> runWith [ "HorseshoeLayer_h_tau", tau; "HorseshoeLayer_h_scale", lam; "HorseshoeLayer_h_c2", Tensor.scalar c2 ] 2UL
    let t = Tensor.toArray tau
    let l = Tensor.toArray lam
    let expected =
        Array.init (d * u) (fun idx ->
            let tk, lk = t.[idx % u], l.[idx]
            tk * sqrt (c2 * lk * lk / (c2 + tk * tk * lk * lk)))
    assertClose 1e-6 expected (siteSd tr "HorseshoeLayer_h_beta")
    // c2 ~ InverseGamma(df/2, df/2·slab²) with df 4, slab 2
    match tr.["HorseshoeLayer_h_c2"].Dist.Value with
    | InverseGamma (a, b) ->
        Assert.Equal(2.0, Tensor.toScalar a, 12)
        Assert.Equal(8.0, Tensor.toScalar b, 12)
    | other -> failwithf "c2's prior is %s" (Dist.name other)
    // tau ~ HalfCauchy(tau0)
    let _, tr2 = HorseshoeLayer.Create(tau0 = 0.25).Call("g", x) |> runWith [] 3UL
    match tr2.["HorseshoeLayer_g_tau"].Dist.Value with
    | Expand (HalfCauchy s, _) | HalfCauchy s -> Assert.Equal(0.25, Tensor.toScalar s, 12)
    | other -> failwithf "tau's prior is %s" (Dist.name other)

let ``horseshoe sites and shapes, units 1 and 3, with and without a slab`` () =
    let x = randomTensor 6 [| 30; 4 |] -1.0 1.0
    for units in [ 1; 3 ] do
        let out, tr = HorseshoeLayer.Default.Call("a", x, units = units) |> runWith [] 4UL
        Assert.Equal<string[]>([| "HorseshoeLayer_a_tau"; "HorseshoeLayer_a_scale"; "HorseshoeLayer_a_beta" |], tr.Sites |> Array.map (fun s -> s.Name))
        Assert.Equal<int[]>([| units |], shapeOf tr "HorseshoeLayer_a_tau")
        Assert.Equal<int[]>([| 4; units |], shapeOf tr "HorseshoeLayer_a_scale")
        Assert.Equal<int[]>([| 4; units |], shapeOf tr "HorseshoeLayer_a_beta")
        Assert.Equal<int[]>([| 30; units |], out.Shape)
        checkDensities tr
        let out2, tr2 = HorseshoeLayer.Create(slabScale = 2.0).Call("b", x, units = units) |> runWith [] 5UL
        Assert.Equal<string[]>([| "HorseshoeLayer_b_tau"; "HorseshoeLayer_b_scale"; "HorseshoeLayer_b_c2"; "HorseshoeLayer_b_beta" |], tr2.Sites |> Array.map (fun s -> s.Name))
        Assert.Equal<int[]>([||], shapeOf tr2 "HorseshoeLayer_b_c2")
        Assert.Equal<int[]>([| 30; units |], out2.Shape)
        checkDensities tr2
    // a vector is one column
    let outV, trV = HorseshoeLayer.Default.Call("v", Tensor.ofArray [| 1.0; 2.0 |]) |> runWith [] 6UL
    Assert.Equal<int[]>([| 2; 1 |], outV.Shape)
    Assert.Equal<int[]>([| 1; 1 |], shapeOf trV "HorseshoeLayer_v_beta")

let ``horseshoe settings are checked at Create, naming the layer`` () =
    let bad (f: unit -> unit) =
        let ex = Assert.ThrowsAny<ArgumentException>(fun () -> f ())
        Assert.Contains("HorseshoeLayer", ex.Message)
    bad (fun () -> HorseshoeLayer.Create(slabScale = -1.0) |> ignore)
    bad (fun () -> HorseshoeLayer.Create(slabDf = 0.0) |> ignore)
    bad (fun () -> HorseshoeLayer.Create(tau0 = -0.5) |> ignore)
    bad (fun () -> HorseshoeLayer.Create(coef = ScaleFamily.StudentT (-1.0, 0.0)) |> ignore)
    bad (fun () -> HorseshoeLayer.Default.Call("x", Tensor.ones [| 2; 2 |], units = 0) |> ignore)
    bad (fun () -> HorseshoeLayer.Default.Call("x", Tensor.ones [| 2; 2; 2 |]) |> ignore)
    let ex = Assert.ThrowsAny<ArgumentException>(fun () -> HorseshoeInteractionLayer.Create(slabScale = 0.0) |> ignore)
    Assert.Contains("HorseshoeInteractionLayer", ex.Message)
    Assert.Equal(Some 2.0, HorseshoeLayer.Create(slabScale = 2.0).SlabScale)
    Assert.Equal(HorseshoeLayer.Default.Tau0, HorseshoeLayer.Create().Tau0)

let ``horseshoe prior moment: with tau and lambda fixed, beta's sd is the effective scale`` () =
    let tau = Tensor.ofArray [| 0.7 |]
    let lam = Tensor.create [| 2; 1 |] [| 0.5; 2.0 |]
    let c2 = 1.5
    let draws = 4000
    let check (layer: HorseshoeLayer) (values: (string * Tensor) list) (scales: float[]) =
        let m = layer.Call("p", Tensor.ones [| 1; 2 |]) |> Handlers.substitute (Map values) |> Handlers.trace
        let sq = Array.zeroCreate 2
        for i in 0 .. draws - 1 do
            let _, tr = Model.run (Handlers.seed (Rng.key (uint64 (1000 + i))) m)
            let b = Tensor.toArray (tr.Value "HorseshoeLayer_p_beta")
            for j in 0 .. 1 do sq.[j] <- sq.[j] + b.[j] * b.[j]
        for j in 0 .. 1 do
            // E[β²] = s², sd(β²) = √2·s²
            let s2 = scales.[j] * scales.[j]
            let se = sqrt 2.0 * s2 / sqrt (float draws)
            let m2 = sq.[j] / float draws
            Assert.True(abs (m2 - s2) < 5.0 * se, sprintf "element %d: E[beta^2] = %g, expected %g (se %g)" j m2 s2 se)
    check HorseshoeLayer.Default [ "HorseshoeLayer_p_tau", tau; "HorseshoeLayer_p_scale", lam ] [| 0.35; 1.4 |]
    let slab l = 0.7 * sqrt (c2 * l * l / (c2 + 0.49 * l * l))
    check (HorseshoeLayer.Create(slabScale = 1.0))
        [ "HorseshoeLayer_p_tau", tau; "HorseshoeLayer_p_scale", lam; "HorseshoeLayer_p_c2", Tensor.scalar c2 ]
        [| slab 0.5; slab 2.0 |]

let ``spike and slab: out = x·(z ⊙ beta), sites and shapes`` () =
    let n, d, u = 6, 3, 2
    let x = randomTensor 7 [| n; d |] -2.0 2.0
    let z = randomTensor 8 [| d; u |] 0.01 0.99
    let beta = randomTensor 9 [| d; u |] -2.0 2.0
    let out, tr =
        SpikeAndSlabLayer.Default.Call("s", x, units = u)
        |> runWith [ "SpikeAndSlabLayer_s_z", z; "SpikeAndSlabLayer_s_beta", beta ] 7UL
    let gated = Array.map2 (*) (Tensor.toArray z) (Tensor.toArray beta)
    assertClose 1e-6 (matmulLoop n d u (Tensor.toArray x) gated) (Tensor.toArray out)
    Assert.Equal<string[]>([| "SpikeAndSlabLayer_s_z"; "SpikeAndSlabLayer_s_beta" |], tr.Sites |> Array.map (fun s -> s.Name))
    for units in [ 1; 3 ] do
        let out, tr = SpikeAndSlabLayer.Default.Call("t", x, units = units) |> runWith [] 8UL
        Assert.Equal<int[]>([| n; units |], out.Shape)
        Assert.Equal<int[]>([| d; units |], shapeOf tr "SpikeAndSlabLayer_t_z")
        Assert.Equal<int[]>([| d; units |], shapeOf tr "SpikeAndSlabLayer_t_beta")
        Assert.True(Tensor.toArray (tr.Value "SpikeAndSlabLayer_t_z") |> Array.forall (fun v -> v > 0.0 && v < 1.0))
        checkDensities tr
    // the gate's prior is Beta(alpha, beta)
    match tr.["SpikeAndSlabLayer_s_z"].Dist.Value with
    | Expand (Beta (a, b), _) ->
        Assert.Equal(0.5, Tensor.toScalar a)
        Assert.Equal(0.5, Tensor.toScalar b)
    | other -> failwithf "z's prior is %s" (Dist.name other)
    let ex = Assert.ThrowsAny<ArgumentException>(fun () -> SpikeAndSlabLayer.Create(alpha = 0.0) |> ignore)
    Assert.Contains("SpikeAndSlabLayer", ex.Message)
    let ex = Assert.ThrowsAny<ArgumentException>(fun () -> SpikeAndSlabLayer.Create(coef = Normal (Tensor.zeros [| 2 |], Tensor.scalar 1.0)) |> ignore)
    Assert.Contains("SpikeAndSlabLayer", ex.Message)

let ``horseshoe interaction: the design is x_i·x_j for i < j in row-major order`` () =
    let n, d, u = 5, 4, 2
    let p = d * (d - 1) / 2
    let x = randomTensor 10 [| n; d |] -2.0 2.0
    let beta = randomTensor 11 [| p; u |] -1.0 1.0
    let out, tr =
        HorseshoeInteractionLayer.Default.Call("i", x, units = u)
        |> runWith [ "HorseshoeInteractionLayer_i_beta", beta ] 9UL
    let xa = Tensor.toArray x
    let design =
        Array.init (n * p) (fun idx ->
            let row, col = idx / p, idx % p
            // the col-th pair in the order (0,1), (0,2), (0,3), (1,2), (1,3), (2,3)
            let pairs = [| for i in 0 .. d - 2 do for j in i + 1 .. d - 1 -> i, j |]
            let i, j = pairs.[col]
            xa.[row * d + i] * xa.[row * d + j])
    Assert.Equal<(int * int)[]>([| 0, 1; 0, 2; 0, 3; 1, 2; 1, 3; 2, 3 |], [| for i in 0 .. d - 2 do for j in i + 1 .. d - 1 -> i, j |])
    assertClose 1e-6 (matmulLoop n p u design (Tensor.toArray beta)) (Tensor.toArray out)
    Assert.Equal<string[]>(
        [| "HorseshoeInteractionLayer_i_tau"; "HorseshoeInteractionLayer_i_scale"; "HorseshoeInteractionLayer_i_beta" |],
        tr.Sites |> Array.map (fun s -> s.Name))
    Assert.Equal<int[]>([| p; u |], shapeOf tr "HorseshoeInteractionLayer_i_scale")
    for units in [ 1; 3 ] do
        let o, t = HorseshoeInteractionLayer.Create(slabScale = 1.0).Call("j", x, units = units) |> runWith [] 10UL
        Assert.Equal<int[]>([| n; units |], o.Shape)
        Assert.Equal<int[]>([| p; units |], shapeOf t "HorseshoeInteractionLayer_j_beta")
        Assert.Equal<int[]>([||], shapeOf t "HorseshoeInteractionLayer_j_c2")
        checkDensities t
    let ex = Assert.ThrowsAny<ArgumentException>(fun () -> HorseshoeInteractionLayer.Default.Call("k", Tensor.ones [| 3; 1 |]) |> ignore)
    Assert.Contains("HorseshoeInteractionLayer", ex.Message)
    Assert.Contains(Shape.format [| 3; 1 |], ex.Message)

[<Tests>]
let tests =
    testList "LayerSparseTests" [
        testCase "horseshoe without a slab: beta's prior scale is tau times lambda and out = x·beta" ``horseshoe without a slab: beta's prior scale is tau times lambda and out = x·beta``
        testCase "horseshoe with a slab: beta's prior scale is the regularized scale" ``horseshoe with a slab: beta's prior scale is the regularized scale``
        testCase "horseshoe sites and shapes, units 1 and 3, with and without a slab" ``horseshoe sites and shapes, units 1 and 3, with and without a slab``
        testCase "horseshoe settings are checked at Create, naming the layer" ``horseshoe settings are checked at Create, naming the layer``
        testCase "horseshoe prior moment: with tau and lambda fixed, beta's sd is the effective scale" ``horseshoe prior moment: with tau and lambda fixed, beta's sd is the effective scale``
        testCase "spike and slab: out = x·(z ⊙ beta), sites and shapes" ``spike and slab: out = x·(z ⊙ beta), sites and shapes``
        testCase "horseshoe interaction: the design is x_i·x_j for i < j in row-major order" ``horseshoe interaction: the design is x_i·x_j for i < j in row-major order``
    ]
