/// The categorical layers (embedding, random effects, random walk, random slopes, AR(1), fixed effects):
/// lookups with substituted parameters against brute-force loops, shapes, site names, id and prior
/// checks, the AR(1) density and covariance, and prior moments.
module FunctionalBayes.Tests.LayerCategoricalTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private runWith (values: (string * Tensor) list) (m: Model<Tensor>) =
    Model.run (Handlers.trace (Handlers.seed (Rng.key 21UL) (Handlers.substitute (Map values) m)))

let private names (tr: Trace) = tr.Sites |> Array.map (fun s -> s.Name)
let private shapeOf (tr: Trace) name = (tr.Value name).Shape
let private at2 (a: float[]) (d2: int) i j = a.[i * d2 + j]

/// Ids as floats (integral values), the usual data form.
let private ids (a: int[]) = Tensor.ofArray (Array.map float a)
let private idArr = [| 2; 0; 4; 2; 1; 3; 3; 0 |]

let ``Embedding looks up rows of theta`` () =
    let c, m = 5, 3
    let theta = randomTensor 1 [| c; m |] -1.0 1.0
    let ta = Tensor.toArray theta
    let expected = [| for i in idArr do for k in 0 .. m - 1 -> at2 ta m i k |]
    let givens = [ "EmbeddingLayer_e_scale", Tensor.scalar 0.7; "EmbeddingLayer_e_theta", theta ]
    // float ids (n,), int32 ids (n,), and a column (n, 1)
    for x in [ ids idArr; Tensor.ofInts idArr; Tensor.reshape [| idArr.Length; 1 |] (ids idArr) ] do
        let out, tr = runWith givens (EmbeddingLayer.Default.Call("e", x, c, m))
        Assert.Equal<int[]>([| idArr.Length; m |], out.Shape)
        assertClose 1e-12 expected (Tensor.toArray out)
        Assert.Equal<string[]>([| "EmbeddingLayer_e_scale"; "EmbeddingLayer_e_theta" |], names tr)
        Assert.Equal<int[]>([||], shapeOf tr "EmbeddingLayer_e_scale")
        Assert.Equal<int[]>([| c; m |], shapeOf tr "EmbeddingLayer_e_theta")

let ``RandomEffects looks up one effect per category`` () =
    let c = 5
    let theta = randomTensor 2 [| c; 1 |] -1.0 1.0
    let ta = Tensor.toArray theta
    let out, tr = runWith [ "RandomEffectsLayer_r_scale", Tensor.scalar 1.3; "RandomEffectsLayer_r_theta", theta ] (RandomEffectsLayer.Default.Call("r", ids idArr, c))
    Assert.Equal<int[]>([| idArr.Length; 1 |], out.Shape)
    assertClose 1e-12 (idArr |> Array.map (fun i -> ta.[i])) (Tensor.toArray out)
    Assert.Equal<string[]>([| "RandomEffectsLayer_r_scale"; "RandomEffectsLayer_r_theta" |], names tr)
    Assert.Equal<int[]>([||], shapeOf tr "RandomEffectsLayer_r_scale")
    Assert.Equal<int[]>([| c; 1 |], shapeOf tr "RandomEffectsLayer_r_theta")

let ``RandomWalk looks up the cumulative sum of the increments`` () =
    let c, m = 5, 2
    let theta = randomTensor 3 [| c; m |] -1.0 1.0
    let ta = Tensor.toArray theta
    let pos i k =
        let mutable acc = 0.0
        for t in 0 .. i do
            acc <- acc + at2 ta m t k
        acc
    let out, tr = runWith [ "RandomWalkLayer_w_scale", Tensor.scalar 0.4; "RandomWalkLayer_w_theta", theta ] (RandomWalkLayer.Default.Call("w", ids idArr, c, m))
    Assert.Equal<int[]>([| idArr.Length; m |], out.Shape)
    assertClose 1e-12 [| for i in idArr do for k in 0 .. m - 1 -> pos i k |] (Tensor.toArray out)
    Assert.Equal<string[]>([| "RandomWalkLayer_w_scale"; "RandomWalkLayer_w_theta" |], names tr)
    Assert.Equal<int[]>([| c; m |], shapeOf tr "RandomWalkLayer_w_theta")

let ``RandomSlopes sums x times the group's slopes`` () =
    let c, d = 5, 3
    let n = idArr.Length
    for u in [ 1; 3 ] do
        let x = randomTensor 4 [| n; d |] -1.0 1.0
        let beta = randomTensor 5 [| c; d; u |] -1.0 1.0
        let xa, ba = Tensor.toArray x, Tensor.toArray beta
        let expected =
            [| for r in 0 .. n - 1 do
                 for k in 0 .. u - 1 ->
                     let mutable acc = 0.0
                     for j in 0 .. d - 1 do
                         acc <- acc + at2 xa d r j * ba.[(idArr.[r] * d + j) * u + k]
                     acc |]
        let out, tr =
            runWith [ "RandomSlopesLayer_s_scale", randomTensor 6 [| d; u |] 0.5 1.5; "RandomSlopesLayer_s_beta", beta ]
                (RandomSlopesLayer.Default.Call("s", x, ids idArr, c, units = u))
        Assert.Equal<int[]>([| n; u |], out.Shape)
        assertClose 1e-12 expected (Tensor.toArray out)
        Assert.Equal<string[]>([| "RandomSlopesLayer_s_scale"; "RandomSlopesLayer_s_beta" |], names tr)
        Assert.Equal<int[]>([| d; u |], shapeOf tr "RandomSlopesLayer_s_scale")
        Assert.Equal<int[]>([| c; d; u |], shapeOf tr "RandomSlopesLayer_s_beta")
    // a vector x is one slope
    let out = Model.run (Handlers.seed (Rng.key 1UL) (RandomSlopesLayer.Default.Call("s", Tensor.ones [| n |], ids idArr, c, units = 2)))
    Assert.Equal<int[]>([| n; 2 |], out.Shape)

let ``FixedEffects looks up theta with a fixed prior and no scale`` () =
    let c = 5
    let theta = randomTensor 7 [| c; 1 |] -1.0 1.0
    let ta = Tensor.toArray theta
    let out, tr = runWith [ "FixedEffectsLayer_f_theta", theta ] (FixedEffectsLayer.Default.Call("f", ids idArr, c))
    Assert.Equal<int[]>([| idArr.Length; 1 |], out.Shape)
    assertClose 1e-12 (idArr |> Array.map (fun i -> ta.[i])) (Tensor.toArray out)
    Assert.Equal<string[]>([| "FixedEffectsLayer_f_theta" |], names tr)
    // the prior is Normal(0, 1) expanded to (c, 1)
    match tr.["FixedEffectsLayer_f_theta"].Dist.Value with
    | Expand (Normal (loc, sc), shape) ->
        Assert.Equal(0.0, Tensor.toScalar loc)
        Assert.Equal(1.0, Tensor.toScalar sc)
        Assert.Equal<int[]>([| c; 1 |], shape)
    | other -> failwithf "expected Normal(0, 1) expanded, got %s" (Dist.name other)

let private rhoRaw = [| 0.8; 0.3; 0.55 |]
let private sigma = [| 0.7; 1.2; 0.4 |]

let ``AR1 noncentered follows the recursion`` () =
    let c, u = 6, 3
    let z = randomTensor 8 [| c; u |] -2.0 2.0
    let za = Tensor.toArray z
    let rho = rhoRaw |> Array.map (fun r -> 2.0 * r - 1.0)
    let states = Array2D.zeroCreate c u
    for k in 0 .. u - 1 do
        states.[0, k] <- sigma.[k] / sqrt (1.0 - rho.[k] * rho.[k]) * at2 za u 0 k
        for t in 1 .. c - 1 do
            states.[t, k] <- rho.[k] * states.[t - 1, k] + sigma.[k] * at2 za u t k
    let x = [| 5; 0; 2; 2; 4; 1; 3 |]
    let layer = { AR1Layer.Default with Noncentered = true }
    let p = "AR1Layer_a_"
    let out, tr =
        runWith [ p + "rho_raw", Tensor.ofArray rhoRaw; p + "scale", Tensor.ofArray sigma; p + "z", z ] (layer.Call("a", ids x, c, units = u))
    Assert.Equal<int[]>([| x.Length; u |], out.Shape)
    assertClose 1e-10 [| for i in x do for k in 0 .. u - 1 -> states.[i, k] |] (Tensor.toArray out)
    Assert.Equal<string[]>([| p + "rho_raw"; p + "rho"; p + "scale"; p + "z" |], names tr)
    Assert.Equal(DeterministicSite, tr.[p + "rho"].Kind)
    assertClose 1e-12 rho (Tensor.toArray (tr.Value(p + "rho")))
    Assert.Equal<int[]>([| c; u |], shapeOf tr (p + "z"))
    Assert.Equal<int[]>([| u |], shapeOf tr (p + "rho_raw"))

let ``AR1 centered: theta has the AR(1) density and covariance`` () =
    let c, u = 5, 3
    let rho = rhoRaw |> Array.map (fun r -> 2.0 * r - 1.0)
    let theta = randomTensor 9 [| u; c |] -2.0 2.0 // the site is (u, c): time is the event axis
    let tha = Tensor.toArray theta
    let x = [| 4; 0; 2; 1; 3; 3 |]
    let p = "AR1Layer_b_"
    let out, tr =
        runWith [ p + "rho_raw", Tensor.ofArray rhoRaw; p + "scale", Tensor.ofArray sigma; p + "theta", theta ]
            (AR1Layer.Default.Call("b", ids x, c, units = u))
    Assert.Equal<string[]>([| p + "rho_raw"; p + "rho"; p + "scale"; p + "theta" |], names tr)
    Assert.Equal<int[]>([| x.Length; u |], out.Shape)
    assertClose 1e-12 [| for i in x do for k in 0 .. u - 1 -> at2 tha c k i |] (Tensor.toArray out)
    // log density = Σ_t log N(θ_t − ρθ_{t−1} | 0, s_t), s_0 = σ/√(1−ρ²), s_t = σ
    let logN (v: float) (s: float) = -0.5 * (v / s) ** 2.0 - log s - 0.5 * log (2.0 * Math.PI)
    let expected =
        [| for k in 0 .. u - 1 ->
             let s0 = sigma.[k] / sqrt (1.0 - rho.[k] * rho.[k])
             let mutable acc = logN (at2 tha c k 0) s0
             for t in 1 .. c - 1 do
                 acc <- acc + logN (at2 tha c k t - rho.[k] * at2 tha c k (t - 1)) sigma.[k]
             acc |]
    let d = tr.[p + "theta"].Dist.Value
    assertClose 1e-10 expected (Tensor.toArray (Dist.logProb d theta))
    // L·Lᵀ is exactly σ²ρ^|t−s|/(1−ρ²)
    match d with
    | MultivariateNormal (_, l) ->
        let cov = Tensor.matmul l (Tensor.transpose l) |> Tensor.toArray
        let expectedCov =
            [| for k in 0 .. u - 1 do
                 for t in 0 .. c - 1 do
                     for s in 0 .. c - 1 -> sigma.[k] ** 2.0 * rho.[k] ** float (abs (t - s)) / (1.0 - rho.[k] ** 2.0) |]
        assertClose 1e-10 expectedCov cov
    | other -> failwithf "expected a MultivariateNormal, got %s" (Dist.name other)
    // draws of the site have that covariance (5 standard errors)
    let draws = Dist.sample (Rng.key 5UL) [| 6000 |] d |> Tensor.toArray // (6000, u, c)
    let nd = 6000
    for k in 0 .. u - 1 do
        let cv t s = sigma.[k] ** 2.0 * rho.[k] ** float (abs (t - s)) / (1.0 - rho.[k] ** 2.0)
        for t in 0 .. c - 1 do
            for s in t .. c - 1 do
                let est = Array.init nd (fun i -> draws.[(i * u + k) * c + t] * draws.[(i * u + k) * c + s]) |> Array.average
                let se = sqrt ((cv t t * cv s s + cv t s ** 2.0) / float nd)
                if abs (est - cv t s) > 5.0 * se then
                    failwithf "unit %d cov(%d, %d): %g vs %g (5 SE = %g)" k t s est (cv t s) (5.0 * se)

let ``AR1 with one slot and sampled values`` () =
    for nc in [ false; true ] do
        let layer = { AR1Layer.Default with Noncentered = nc }
        let out = Model.run (Handlers.seed (Rng.key 4UL) (layer.Call("a", ids [| 0; 0 |], 1, units = 2)))
        Assert.Equal<int[]>([| 2; 2 |], out.Shape)
        let out = Model.run (Handlers.seed (Rng.key 4UL) (layer.Call("a", ids [| 3; 0; 7 |], 8, units = 3, activation = Tensor.tanh)))
        Assert.Equal<int[]>([| 3; 3 |], out.Shape)
        Assert.True(Tensor.toArray out |> Array.forall (fun v -> abs v < 1.0))

let ``a one-row batch of ids works`` () =
    let run (m: Model<Tensor>) = Model.run (Handlers.seed (Rng.key 2UL) m)
    for x in [ Tensor.ofArray [| 3.0 |]; Tensor.create [| 1; 1 |] [| 3.0 |]; Tensor.ofInts [| 3 |] ] do
        Assert.Equal<int[]>([| 1; 2 |], (run (EmbeddingLayer.Default.Call("e", x, 5, 2))).Shape)
        Assert.Equal<int[]>([| 1; 1 |], (run (RandomEffectsLayer.Default.Call("r", x, 5))).Shape)
        Assert.Equal<int[]>([| 1; 2 |], (run (RandomWalkLayer.Default.Call("w", x, 5, 2))).Shape)
        Assert.Equal<int[]>([| 1; 1 |], (run (FixedEffectsLayer.Default.Call("f", x, 5))).Shape)
        Assert.Equal<int[]>([| 1; 2 |], (run (AR1Layer.Default.Call("a", x, 5, units = 2))).Shape)
        Assert.Equal<int[]>([| 1; 2 |], (run (RandomSlopesLayer.Default.Call("s", Tensor.ones [| 1; 3 |], x, 5, units = 2))).Shape)
    // the one row gets its category's value
    let theta = randomTensor 10 [| 5; 2 |] -1.0 1.0
    let out, _ = runWith [ "EmbeddingLayer_e_scale", Tensor.scalar 1.0; "EmbeddingLayer_e_theta", theta ] (EmbeddingLayer.Default.Call("e", Tensor.ofArray [| 3.0 |], 5, 2))
    assertClose 1e-12 (Tensor.toArray (Tensor.select 0 3 theta)) (Tensor.toArray out)

let ``bad ids and shapes raise naming the layer`` () =
    let raises (layer: string) (f: unit -> Model<Tensor>) =
        let ex = Assert.Throws<ArgumentException>(fun () -> f () |> ignore)
        Assert.Contains(layer, ex.Message)
    let calls : (string * (Tensor -> Model<Tensor>)) list =
        [ "EmbeddingLayer", (fun x -> EmbeddingLayer.Default.Call("e", x, 5, 2))
          "RandomEffectsLayer", (fun x -> RandomEffectsLayer.Default.Call("r", x, 5))
          "RandomWalkLayer", (fun x -> RandomWalkLayer.Default.Call("w", x, 5, 2))
          "FixedEffectsLayer", (fun x -> FixedEffectsLayer.Default.Call("f", x, 5))
          "AR1Layer", (fun x -> AR1Layer.Default.Call("a", x, 5))
          "RandomSlopesLayer", (fun x -> RandomSlopesLayer.Default.Call("s", Tensor.ones [| x.Shape.[0]; 2 |], x, 5)) ]
    for layer, call in calls do
        raises layer (fun () -> call (ids [| 0; 5 |])) // out of range
        raises layer (fun () -> call (ids [| -1; 2 |]))
        raises layer (fun () -> call (Tensor.ofArray [| 1.0; 1.5 |])) // not an integer
        raises layer (fun () -> call (Tensor.ofArray [| 1.0; nan |]))
        raises layer (fun () -> call (Tensor.create [| 2; 2 |] [| 0.0; 1.0; 2.0; 3.0 |])) // not a vector or column
    // the out-of-range message names the id and the count
    let ex = Assert.Throws<ArgumentException>(fun () -> EmbeddingLayer.Default.Call("e", ids [| 0; 7 |], 5, 2) |> ignore)
    Assert.Contains("7", ex.Message)
    Assert.Contains("5", ex.Message)
    // groups must have one id per row of x; x of rank 3 is refused
    let ex = Assert.Throws<ArgumentException>(fun () -> RandomSlopesLayer.Default.Call("s", Tensor.ones [| 3; 2 |], ids [| 0; 1 |], 5) |> ignore)
    Assert.Contains("RandomSlopesLayer", ex.Message)
    Assert.Contains("[3, 2]", ex.Message)
    raises "RandomSlopesLayer" (fun () -> RandomSlopesLayer.Default.Call("s", Tensor.ones [| 2; 2; 2 |], ids [| 0; 1 |], 5))
    raises "EmbeddingLayer" (fun () -> EmbeddingLayer.Default.Call("e", ids [| 0 |], 0, 2))
    raises "AR1Layer" (fun () -> AR1Layer.Default.Call("a", ids [| 0 |], 3, units = 0))

let ``invalid prior settings fail at Create naming the layer`` () =
    let onReals = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)
    let hn = HalfNormal (Tensor.scalar 1.0)
    let badT = ScaleFamily.StudentT (-1.0, 0.0)
    let creates : (string * (Distribution -> ScaleFamily -> unit)) list =
        [ "EmbeddingLayer", (fun s c -> EmbeddingLayer.Create(s, c) |> ignore)
          "RandomEffectsLayer", (fun s c -> RandomEffectsLayer.Create(s, c) |> ignore)
          "RandomWalkLayer", (fun s c -> RandomWalkLayer.Create(s, c) |> ignore) ]
    for name, create in creates do
        let ex = Assert.Throws<ArgumentException>(fun () -> create onReals (ScaleFamily.Normal 0.0))
        Assert.Contains(name, ex.Message)
        let ex = Assert.Throws<ArgumentException>(fun () -> create hn badT)
        Assert.Contains(name, ex.Message)
        create (Exponential (Tensor.scalar 1.0)) (ScaleFamily.Cauchy 0.0)
    let ex = Assert.Throws<ArgumentException>(fun () -> RandomSlopesLayer.Create onReals |> ignore)
    Assert.Contains("RandomSlopesLayer", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> AR1Layer.Create onReals |> ignore)
    Assert.Contains("AR1Layer", ex.Message)
    for a in [ -1.0; 0.0; nan; infinity ] do
        let ex = Assert.Throws<ArgumentException>(fun () -> AR1Layer.Create(hn, a) |> ignore)
        Assert.Contains("AR1Layer", ex.Message)
    Assert.Equal(0.5, (AR1Layer.Create(hn, 0.5, true)).RhoConcentration)
    let mvn = MultivariateNormal (Tensor.zeros [| 2 |], Tensor.eye 2)
    let ex = Assert.Throws<ArgumentException>(fun () -> FixedEffectsLayer.Create mvn |> ignore)
    Assert.Contains("FixedEffectsLayer", ex.Message)

/// Mean within 5 SE of 0 and variance within 5 SE of 1 for iid N(0, 1) draws.
let private standardNormal (what: string) (v: float[]) =
    let n = float v.Length
    let m = Array.average v
    let var = v |> Array.averageBy (fun a -> a * a)
    if abs m > 5.0 / sqrt n then failwithf "%s: mean %g (5 SE = %g)" what m (5.0 / sqrt n)
    if abs (var - 1.0) > 5.0 * sqrt (2.0 / n) then failwithf "%s: variance %g (5 SE = %g)" what var (5.0 * sqrt (2.0 / n))

let ``prior moments: theta over scale is N(0, 1) and scale is HalfNormal(1)`` () =
    // RandomEffects: 4000 categories in one draw give theta/scale iid N(0, 1)
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 31UL) (RandomEffectsLayer.Default.Call("r", ids [| 0 |], 4000))))
    let sc = tr.Value "RandomEffectsLayer_r_scale" |> Tensor.toScalar
    standardNormal "RandomEffects theta/scale" (tr.Value "RandomEffectsLayer_r_theta" |> Tensor.toArray |> Array.map (fun t -> t / sc))
    // the scale over 4000 seeded runs: E[scale²] = 1, Var(scale²) = 2
    let s2 =
        Array.init 4000 (fun i ->
            let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key (uint64 (1000 + i))) (RandomEffectsLayer.Default.Call("r", ids [| 0 |], 1))))
            (tr.Value "RandomEffectsLayer_r_scale" |> Tensor.toScalar) ** 2.0)
    let m = Array.average s2
    if abs (m - 1.0) > 5.0 * sqrt (2.0 / 4000.0) then failwithf "E[scale²] = %g" m
    // RandomSlopes: beta / scale is iid N(0, 1)
    let c, d, u = 1000, 2, 2
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 32UL) (RandomSlopesLayer.Default.Call("s", Tensor.ones [| 1; d |], ids [| 0 |], c, units = u))))
    let scale = tr.Value "RandomSlopesLayer_s_scale" |> Tensor.toArray
    let beta = tr.Value "RandomSlopesLayer_s_beta" |> Tensor.toArray
    standardNormal "RandomSlopes beta/scale" (beta |> Array.mapi (fun i b -> b / scale.[i % (d * u)]))

let ``AR1 gradients match finite differences (centered density, noncentered output)`` () =
    let c, u = 4, 2
    let p = "AR1Layer_g_"
    let x = ids [| 3; 0; 2; 1 |]
    let raw = Tensor.ofArray [| 0.7; 0.35 |]
    let scale = Tensor.ofArray [| 0.8; 1.3 |]
    let centered (ts: Tensor[]) =
        let _, tr = runWith [ p + "rho_raw", ts.[0]; p + "scale", ts.[1]; p + "theta", ts.[2] ] (AR1Layer.Default.Call("g", x, c, units = u))
        Dist.logProb tr.[p + "theta"].Dist.Value ts.[2]
    gradCheck centered [| raw; scale; randomTensor 40 [| u; c |] -1.0 1.0 |]
    let layer = { AR1Layer.Default with Noncentered = true }
    let noncentered (ts: Tensor[]) =
        runWith [ p + "rho_raw", ts.[0]; p + "scale", ts.[1]; p + "z", ts.[2] ] (layer.Call("g", x, c, units = u)) |> fst
    gradCheck noncentered [| raw; scale; randomTensor 41 [| c; u |] -1.0 1.0 |]

[<Tests>]
let tests =
    testList "LayerCategoricalTests" [
        testCase "Embedding looks up rows of theta" ``Embedding looks up rows of theta``
        testCase "RandomEffects looks up one effect per category" ``RandomEffects looks up one effect per category``
        testCase "RandomWalk looks up the cumulative sum of the increments" ``RandomWalk looks up the cumulative sum of the increments``
        testCase "RandomSlopes sums x times the group's slopes" ``RandomSlopes sums x times the group's slopes``
        testCase "FixedEffects looks up theta with a fixed prior and no scale" ``FixedEffects looks up theta with a fixed prior and no scale``
        testCase "AR1 noncentered follows the recursion" ``AR1 noncentered follows the recursion``
        testCase "AR1 centered: theta has the AR(1) density and covariance" ``AR1 centered: theta has the AR(1) density and covariance``
        testCase "AR1 with one slot and sampled values" ``AR1 with one slot and sampled values``
        testCase "a one-row batch of ids works" ``a one-row batch of ids works``
        testCase "bad ids and shapes raise naming the layer" ``bad ids and shapes raise naming the layer``
        testCase "invalid prior settings fail at Create naming the layer" ``invalid prior settings fail at Create naming the layer``
        testCase "prior moments: theta over scale is N(0, 1) and scale is HalfNormal(1)" ``prior moments: theta over scale is N(0, 1) and scale is HalfNormal(1)``
        testCase "AR1 gradients match finite differences (centered density, noncentered output)" ``AR1 gradients match finite differences (centered density, noncentered output)``
    ]
