/// The interaction layers (FM, FM3, low-rank, explicit, bilinear): forward passes with substituted
/// parameters against brute-force loops, shapes, site names, errors and gradients.
module FunctionalBayes.Tests.LayerInteractionsTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// Runs a layer's model with some sites given, returning its output and trace.
let private runWith (values: (string * Tensor) list) (m: Model<Tensor>) =
    Model.run (Handlers.trace (Handlers.seed (Rng.key 11UL) (Handlers.substitute (Map values) m)))

let private positive (seed: int) (shape: int[]) = randomTensor seed shape 0.5 1.5

/// Element [i, j, k] of a row-major (d1, d2, d3) array.
let private at3 (a: float[]) (d2: int) (d3: int) i j k = a.[(i * d2 + j) * d3 + k]
let private at2 (a: float[]) (d2: int) i j = a.[i * d2 + j]

let private shapeOf (tr: Trace) name = (tr.Value name).Shape

let ``FM equals the sum over pairs of factor inner products`` () =
    let n, d, l = 6, 5, 3
    for u in [ 1; 3 ] do
        let x = randomTensor 1 [| n; d |] -1.0 1.0
        let theta = randomTensor 2 [| d; l; u |] -1.0 1.0
        let out, tr =
            runWith [ "FMLayer_fm_scale", positive 3 [| u |]; "FMLayer_fm_theta", theta ] (FMLayer.Default.Call("fm", x, l, units = u))
        let xa, ta = Tensor.toArray x, Tensor.toArray theta
        let expected =
            [| for r in 0 .. n - 1 do
                 for k in 0 .. u - 1 ->
                     let mutable acc = 0.0
                     for i in 0 .. d - 1 do
                         for j in i + 1 .. d - 1 do
                             let mutable dot = 0.0
                             for f in 0 .. l - 1 do
                                 dot <- dot + at3 ta l u i f k * at3 ta l u j f k
                             acc <- acc + dot * at2 xa d r i * at2 xa d r j
                     acc |]
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-6 expected (Tensor.toArray out)
        Assert.Equal<int[]>([| u |], shapeOf tr "FMLayer_fm_scale")
        Assert.Equal<int[]>([| d; l; u |], shapeOf tr "FMLayer_fm_theta")
        Assert.Equal<string[]>([| "FMLayer_fm_scale"; "FMLayer_fm_theta" |], tr.Sites |> Array.map (fun s -> s.Name))

let ``FM3 equals the sum over triples`` () =
    let n, d, l = 5, 5, 2
    for u in [ 1; 3 ] do
        let x = randomTensor 4 [| n; d |] -1.5 1.5
        let theta = randomTensor 5 [| d; l; u |] -1.0 1.0
        let out, tr =
            runWith [ "FM3Layer_f_scale", positive 6 [| u |]; "FM3Layer_f_theta", theta ] (FM3Layer.Default.Call("f", x, l, units = u))
        let xa, ta = Tensor.toArray x, Tensor.toArray theta
        let expected =
            [| for r in 0 .. n - 1 do
                 for k in 0 .. u - 1 ->
                     let mutable acc = 0.0
                     for i in 0 .. d - 1 do
                         for j in i + 1 .. d - 1 do
                             for m in j + 1 .. d - 1 do
                                 let mutable w = 0.0
                                 for f in 0 .. l - 1 do
                                     w <- w + at3 ta l u i f k * at3 ta l u j f k * at3 ta l u m f k
                                 acc <- acc + w * at2 xa d r i * at2 xa d r j * at2 xa d r m
                     acc |]
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-6 expected (Tensor.toArray out)
        Assert.Equal<string[]>([| "FM3Layer_f_scale"; "FM3Layer_f_theta" |], tr.Sites |> Array.map (fun s -> s.Name))
        Assert.Equal<int[]>([| d; l; u |], shapeOf tr "FM3Layer_f_theta")

/// x (n, d1) M z (n, d2) per row with M = θ1[:, :, u]·θ2[:, :, u]ᵀ.
let private lowRankBrute (xa: float[]) (za: float[]) (t1: float[]) (t2: float[]) n d1 d2 l u =
    [| for r in 0 .. n - 1 do
         for k in 0 .. u - 1 ->
             let mutable acc = 0.0
             for i in 0 .. d1 - 1 do
                 for j in 0 .. d2 - 1 do
                     let mutable m = 0.0
                     for f in 0 .. l - 1 do
                         m <- m + at3 t1 l u i f k * at3 t2 l u j f k
                     acc <- acc + at2 xa d1 r i * m * at2 za d2 r j
             acc |]

let ``LowRankInteraction equals x' theta1 theta2' z`` () =
    let n, d1, d2, l = 7, 4, 3, 2
    for u in [ 1; 3 ] do
        let x = randomTensor 7 [| n; d1 |] -1.0 1.0
        let z = randomTensor 8 [| n; d2 |] -1.0 1.0
        let t1 = randomTensor 9 [| d1; l; u |] -1.0 1.0
        let t2 = randomTensor 10 [| d2; l; u |] -1.0 1.0
        let p = "LowRankInteractionLayer_lr_"
        let out, tr =
            runWith [ p + "scale1", positive 1 [| u |]; p + "theta1", t1; p + "scale2", positive 2 [| u |]; p + "theta2", t2 ]
                (LowRankInteractionLayer.Default.Call("lr", x, z, l, units = u))
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-6 (lowRankBrute (Tensor.toArray x) (Tensor.toArray z) (Tensor.toArray t1) (Tensor.toArray t2) n d1 d2 l u) (Tensor.toArray out)
        Assert.Equal<string[]>([| p + "scale1"; p + "theta1"; p + "scale2"; p + "theta2" |], tr.Sites |> Array.map (fun s -> s.Name))
        Assert.Equal<int[]>([| d1; l; u |], shapeOf tr (p + "theta1"))
        Assert.Equal<int[]>([| d2; l; u |], shapeOf tr (p + "theta2"))

let ``pairwise puts x_i z_j in column i*d2 + j`` () =
    let n, d1, d2 = 3, 3, 4
    let x = randomTensor 12 [| n; d1 |] -1.0 1.0
    let z = randomTensor 13 [| n; d2 |] -1.0 1.0
    let p = Interactions.pairwise x z
    Assert.Equal<int[]>([| n; d1 * d2 |], p.Shape)
    let xa, za, pa = Tensor.toArray x, Tensor.toArray z, Tensor.toArray p
    for r in 0 .. n - 1 do
        for i in 0 .. d1 - 1 do
            for j in 0 .. d2 - 1 do
                Assert.Equal(at2 xa d1 r i * at2 za d2 r j, at2 pa (d1 * d2) r (i * d2 + j))

let ``pairwiseUpper follows the row-major upper triangle`` () =
    let n, d = 3, 5
    let x = randomTensor 14 [| n; d |] -1.0 1.0
    let p = Interactions.pairwiseUpper x
    let cols = d * (d - 1) / 2
    Assert.Equal<int[]>([| n; cols |], p.Shape)
    let xa, pa = Tensor.toArray x, Tensor.toArray p
    for r in 0 .. n - 1 do
        let mutable k = 0
        for i in 0 .. d - 1 do
            for j in i + 1 .. d - 1 do
                Assert.Equal(at2 xa d r i * at2 xa d r j, at2 pa cols r k)
                k <- k + 1
    // a vector is one column, which has no pairs
    Assert.Throws<ArgumentException>(fun () -> Interactions.pairwiseUpper (Tensor.ofArray [| 1.0; 2.0 |]) |> ignore) |> ignore

let ``InteractionLayer with z and without z`` () =
    let n, d1, d2 = 5, 3, 2
    for u in [ 1; 3 ] do
        let x = randomTensor 15 [| n; d1 |] -1.0 1.0
        let z = randomTensor 16 [| n; d2 |] -1.0 1.0
        let beta = randomTensor 17 [| d1 * d2; u |] -1.0 1.0
        let out, tr =
            runWith [ "InteractionLayer_i_scale1", positive 1 [| u |]; "InteractionLayer_i_beta1", beta ]
                (InteractionLayer.Default.Call("i", x, z, units = u))
        let xa, za, ba = Tensor.toArray x, Tensor.toArray z, Tensor.toArray beta
        let expected =
            [| for r in 0 .. n - 1 do
                 for k in 0 .. u - 1 ->
                     let mutable acc = 0.0
                     for i in 0 .. d1 - 1 do
                         for j in 0 .. d2 - 1 do
                             acc <- acc + at2 xa d1 r i * at2 za d2 r j * at2 ba u (i * d2 + j) k
                     acc |]
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-6 expected (Tensor.toArray out)
        Assert.Equal<string[]>([| "InteractionLayer_i_scale1"; "InteractionLayer_i_beta1" |], tr.Sites |> Array.map (fun s -> s.Name))
        // without z: pairs i < j of x, row-major
        let d = 4
        let x = randomTensor 18 [| n; d |] -1.0 1.0
        let beta = randomTensor 19 [| d * (d - 1) / 2; u |] -1.0 1.0
        let out, tr =
            runWith [ "InteractionLayer_s_scale1", positive 1 [| u |]; "InteractionLayer_s_beta1", beta ]
                (InteractionLayer.Default.Call("s", x, units = u))
        let xa, ba = Tensor.toArray x, Tensor.toArray beta
        let expected =
            [| for r in 0 .. n - 1 do
                 for k in 0 .. u - 1 ->
                     let mutable acc = 0.0
                     let mutable c = 0
                     for i in 0 .. d - 1 do
                         for j in i + 1 .. d - 1 do
                             acc <- acc + at2 xa d r i * at2 xa d r j * at2 ba u c k
                             c <- c + 1
                     acc |]
        assertClose 1e-6 expected (Tensor.toArray out)
        Assert.Equal<int[]>([| 6; u |], shapeOf tr "InteractionLayer_s_beta1")

let ``Bilinear equals the sum over i j of x_i W_ij z_j`` () =
    let n, d1, d2 = 20, 4, 3
    for u in [ 1; 2; 3 ] do
        let x = randomTensor 20 [| n; d1 |] -1.0 1.0
        let z = randomTensor 21 [| n; d2 |] -1.0 1.0
        let w = randomTensor 22 [| d1; d2; u |] -1.0 1.0
        let out, tr =
            runWith [ "BilinearLayer_b_scale", positive 1 [| u |]; "BilinearLayer_b_W", w ] (BilinearLayer.Default.Call("b", x, z, units = u))
        let xa, za, wa = Tensor.toArray x, Tensor.toArray z, Tensor.toArray w
        let expected =
            [| for r in 0 .. n - 1 do
                 for k in 0 .. u - 1 ->
                     let mutable acc = 0.0
                     for i in 0 .. d1 - 1 do
                         for j in 0 .. d2 - 1 do
                             acc <- acc + at2 xa d1 r i * at3 wa d2 u i j k * at2 za d2 r j
                     acc |]
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-6 expected (Tensor.toArray out)
        Assert.Equal<string[]>([| "BilinearLayer_b_scale"; "BilinearLayer_b_W" |], tr.Sites |> Array.map (fun s -> s.Name))
        Assert.Equal<int[]>([| d1; d2; u |], shapeOf tr "BilinearLayer_b_W")

let ``LowRankBilinear equals x' A B' z with a shared scale`` () =
    let n, d1, d2, l = 20, 4, 5, 2
    for u in [ 1; 3 ] do
        let x = randomTensor 23 [| n; d1 |] -1.0 1.0
        let z = randomTensor 24 [| n; d2 |] -1.0 1.0
        let a = randomTensor 25 [| d1; l; u |] -1.0 1.0
        let b = randomTensor 26 [| d2; l; u |] -1.0 1.0
        let p = "LowRankBilinearLayer_lb_"
        let out, tr =
            runWith [ p + "scale", positive 1 [| u |]; p + "A", a; p + "B", b ] (LowRankBilinearLayer.Default.Call("lb", x, z, l, units = u))
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-6 (lowRankBrute (Tensor.toArray x) (Tensor.toArray z) (Tensor.toArray a) (Tensor.toArray b) n d1 d2 l u) (Tensor.toArray out)
        Assert.Equal<string[]>([| p + "scale"; p + "A"; p + "B" |], tr.Sites |> Array.map (fun s -> s.Name))

let ``sampled shapes: batch 20 gives (20, u), vectors are columns`` () =
    let x = randomTensor 27 [| 20; 4 |] -1.0 1.0
    let z = randomTensor 28 [| 20; 3 |] -1.0 1.0
    let v = randomTensor 29 [| 20 |] -1.0 1.0
    let run (m: Model<Tensor>) = Model.run (Handlers.seed (Rng.key 3UL) m)
    for u in [ 1; 3 ] do
        Assert.Equal<int[]>([| 20; u |], (run (FMLayer.Default.Call("a", x, 2, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (FM3Layer.Default.Call("a", x, 2, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (LowRankInteractionLayer.Default.Call("a", x, z, 2, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (InteractionLayer.Default.Call("a", x, z, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (InteractionLayer.Default.Call("a", x, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (BilinearLayer.Default.Call("a", x, z, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (LowRankBilinearLayer.Default.Call("a", x, z, 2, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (BilinearLayer.Default.Call("a", v, z, units = u))).Shape)
        Assert.Equal<int[]>([| 20; u |], (run (InteractionLayer.Default.Call("a", v, v, units = u))).Shape)
    // the activation is applied
    let raw = run (FMLayer.Default.Call("a", x, 2))
    let act = run (FMLayer.Default.Call("a", x, 2, activation = Tensor.tanh))
    assertClose 1e-12 (Tensor.toArray (Tensor.tanh raw)) (Tensor.toArray act)

let ``bad shapes raise naming the layer`` () =
    let x = randomTensor 30 [| 5; 3 |] -1.0 1.0
    let z = randomTensor 31 [| 4; 2 |] -1.0 1.0
    let cube = randomTensor 32 [| 2; 2; 2 |] -1.0 1.0
    let raises (layer: string) (f: unit -> Model<Tensor>) =
        let ex = Assert.Throws<ArgumentException>(fun () -> f () |> ignore)
        Assert.Contains(layer, ex.Message)
    raises "FMLayer" (fun () -> FMLayer.Default.Call("a", cube, 2))
    raises "FMLayer" (fun () -> FMLayer.Default.Call("a", x, 0))
    raises "FM3Layer" (fun () -> FM3Layer.Default.Call("a", cube, 2))
    raises "FM3Layer" (fun () -> FM3Layer.Default.Call("a", x, 2, units = 0))
    raises "LowRankInteractionLayer" (fun () -> LowRankInteractionLayer.Default.Call("a", x, z, 2))
    raises "InteractionLayer" (fun () -> InteractionLayer.Default.Call("a", x, z))
    raises "InteractionLayer" (fun () -> InteractionLayer.Default.Call("a", Tensor.ofArray [| 1.0; 2.0 |]))
    raises "BilinearLayer" (fun () -> BilinearLayer.Default.Call("a", x, z))
    raises "BilinearLayer" (fun () -> BilinearLayer.Default.Call("a", x, cube))
    raises "LowRankBilinearLayer" (fun () -> LowRankBilinearLayer.Default.Call("a", x, z, 2))
    // the row-count message gives both shapes
    let ex = Assert.Throws<ArgumentException>(fun () -> BilinearLayer.Default.Call("a", x, z) |> ignore)
    Assert.Contains("[5, 3]", ex.Message)
    Assert.Contains("[4, 2]", ex.Message)

let ``invalid prior settings fail at Create naming the layer`` () =
    let onReals = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)
    let hn = HalfNormal (Tensor.scalar 1.0)
    let badT = ScaleFamily.StudentT (-1.0, 0.0)
    let creates : (string * (Distribution -> ScaleFamily -> unit)) list =
        [ "FMLayer", (fun s c -> FMLayer.Create(s, c) |> ignore)
          "FM3Layer", (fun s c -> FM3Layer.Create(s, c) |> ignore)
          "LowRankInteractionLayer", (fun s c -> LowRankInteractionLayer.Create(s, c) |> ignore)
          "InteractionLayer", (fun s c -> InteractionLayer.Create(s, c) |> ignore)
          "BilinearLayer", (fun s c -> BilinearLayer.Create(s, c) |> ignore)
          "LowRankBilinearLayer", (fun s c -> LowRankBilinearLayer.Create(s, c) |> ignore) ]
    for name, create in creates do
        let ex = Assert.Throws<ArgumentException>(fun () -> create onReals (ScaleFamily.Normal 0.0))
        Assert.Contains(name, ex.Message)
        let ex = Assert.Throws<ArgumentException>(fun () -> create hn badT)
        Assert.Contains(name, ex.Message)
        // good settings pass, including another family
        create (HalfCauchy (Tensor.scalar 2.0)) (ScaleFamily.Laplace 0.0)

let ``FM and FM3 gradients match finite differences`` () =
    let n, d, l, u = 4, 4, 2, 2
    let x = randomTensor 33 [| n; d |] -1.0 1.0
    let theta = randomTensor 34 [| d; l; u |] -1.0 1.0
    let scale = positive 35 [| u |]
    let fm (ts: Tensor[]) =
        runWith [ "FMLayer_g_scale", scale; "FMLayer_g_theta", ts.[1] ] (FMLayer.Default.Call("g", ts.[0], l, units = u)) |> fst
    let fm3 (ts: Tensor[]) =
        runWith [ "FM3Layer_g_scale", scale; "FM3Layer_g_theta", ts.[1] ] (FM3Layer.Default.Call("g", ts.[0], l, units = u)) |> fst
    gradCheck fm [| x; theta |]
    gradCheck fm3 [| x; theta |]

[<Tests>]
let tests =
    testList "LayerInteractionsTests" [
        testCase "FM equals the sum over pairs of factor inner products" ``FM equals the sum over pairs of factor inner products``
        testCase "FM3 equals the sum over triples" ``FM3 equals the sum over triples``
        testCase "LowRankInteraction equals x' theta1 theta2' z" ``LowRankInteraction equals x' theta1 theta2' z``
        testCase "pairwise puts x_i z_j in column i*d2 + j" ``pairwise puts x_i z_j in column i*d2 + j``
        testCase "pairwiseUpper follows the row-major upper triangle" ``pairwiseUpper follows the row-major upper triangle``
        testCase "InteractionLayer with z and without z" ``InteractionLayer with z and without z``
        testCase "Bilinear equals the sum over i j of x_i W_ij z_j" ``Bilinear equals the sum over i j of x_i W_ij z_j``
        testCase "LowRankBilinear equals x' A B' z with a shared scale" ``LowRankBilinear equals x' A B' z with a shared scale``
        testCase "sampled shapes: batch 20 gives (20, u), vectors are columns" ``sampled shapes: batch 20 gives (20, u), vectors are columns``
        testCase "bad shapes raise naming the layer" ``bad shapes raise naming the layer``
        testCase "invalid prior settings fail at Create naming the layer" ``invalid prior settings fail at Create naming the layer``
        testCase "FM and FM3 gradients match finite differences" ``FM and FM3 gradients match finite differences``
    ]
