/// Splines (knots and the Cox–de Boor basis), PSplineLayer and HSGPLayer.
module FunctionalBayes.Tests.LayerSmoothTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private runWith (values: (string * Tensor) list) (seed: uint64) (m: Model<Tensor>) =
    Model.run (Handlers.trace (Handlers.seed (Rng.key seed) (Handlers.substitute (Map values) m)))

let private linspace (lo: float) (hi: float) (n: int) = Array.init n (fun i -> lo + (hi - lo) * float i / float (n - 1))

let private rows (t: Tensor) = let a = Tensor.toArray2D t in Array.init (Array2D.length1 a) (fun i -> a.[i, *])

let private shapeOf (tr: Trace) (name: string) = (tr.Value name).Shape

/// Every sample site has one finite log density per element of its value.
let private checkDensities (tr: Trace) =
    for s in tr.Sites |> Array.filter (fun s -> s.Kind = SampleSite) do
        let lp = Site.logDensity s
        Assert.True(Shape.equal s.Value.Value.Shape lp.Shape, sprintf "%s: log density shape %A for value shape %A" s.Name lp.Shape s.Value.Value.Shape)
        Assert.True(Tensor.toArray lp |> Array.forall Double.IsFinite, s.Name)

// ---- knots ------------------------------------------------------------------------------------

let ``knot vectors: lengths, clamped repeats and boundary values`` () =
    let x = linspace 2.0 5.0 50
    let k = Splines.makeKnots x 5 3
    Assert.Equal(13, k.Length)
    assertClose 1e-12 [| 2.0; 2.0; 2.0; 2.0; 2.5; 3.0; 3.5; 4.0; 4.5; 5.0; 5.0; 5.0; 5.0 |] k
    Assert.Equal<float[]>([| 2.0; 2.0; 2.0; 2.0; 5.0; 5.0; 5.0; 5.0 |], Splines.makeKnots x 0 3)
    Assert.Equal(12, (Splines.makeKnots x 4 3).Length)
    Assert.Equal(2.0, k.[0])
    Assert.Equal(5.0, k.[k.Length - 1])
    // NumPy's linear-interpolation quantiles, from unsorted data
    assertClose 1e-12 [| 1.0; 2.0 + 1.0 / 3.0; 3.0 + 2.0 / 3.0; 10.0 |] (Splines.makeKnots [| 10.0; 1.0; 4.0; 2.0; 3.0 |] 2 0)
    Assert.ThrowsAny<ArgumentException>(fun () -> Splines.makeKnots [||] 3 3 |> ignore) |> ignore
    Assert.ThrowsAny<ArgumentException>(fun () -> Splines.makeKnots x -1 3 |> ignore) |> ignore

// ---- basis ------------------------------------------------------------------------------------

let ``cubic basis: shape, partition of unity inside and at both boundaries, non-negative`` () =
    let knots = Splines.makeKnots (linspace 2.0 5.0 50) 5 3
    let xs = Array.append (randomArray 1 40 2.0 5.0) [| 2.0; 5.0; 2.5; 4.5 |]
    let b = Splines.basis (Tensor.ofArray xs) knots 3
    Assert.Equal<int[]>([| xs.Length; 9 |], b.Shape)
    for r in rows b do
        Assert.True(abs (Array.sum r - 1.0) < 1e-10, sprintf "row sums to %.17g" (Array.sum r))
        Assert.True(r |> Array.forall (fun v -> v >= 0.0))
    // exactly at the boundaries: one-hot on the first and the last function
    let ends = Splines.basis (Tensor.ofArray [| 2.0; 5.0 |]) knots 3 |> rows
    Assert.Equal<float[]>(Array.init 9 (fun i -> if i = 0 then 1.0 else 0.0), ends.[0])
    Assert.Equal<float[]>(Array.init 9 (fun i -> if i = 8 then 1.0 else 0.0), ends.[1])
    // a column (n, 1) is accepted too
    Assert.Equal<int[]>([| 3; 9 |], (Splines.basis (Tensor.ones [| 3; 1 |] * 3.0) knots 3).Shape)

let ``with no interior knots the cubic basis is the four Bernstein polynomials`` () =
    let knots = Splines.makeKnots [| -1.0; 0.0; 3.0 |] 0 3
    let xs = Array.append (randomArray 2 20 -1.0 3.0) [| -1.0; 3.0 |]
    let b = Splines.basis (Tensor.ofArray xs) knots 3
    Assert.Equal<int[]>([| xs.Length; 4 |], b.Shape)
    let binom = [| 1.0; 3.0; 3.0; 1.0 |]
    let expected =
        xs |> Array.collect (fun x ->
            let t = (x + 1.0) / 4.0
            Array.init 4 (fun i -> binom.[i] * Math.Pow(t, float i) * Math.Pow(1.0 - t, float (3 - i))))
    assertClose 1e-12 expected (Tensor.toArray b)

let ``degree 0 gives half-open indicator columns, degree 1 gives hats`` () =
    let knots0 = Splines.makeKnots (linspace 2.0 5.0 50) 5 0
    Assert.Equal<float[]>([| 2.0; 2.5; 3.0; 3.5; 4.0; 4.5; 5.0 |], knots0 |> Array.map (fun v -> Math.Round(v, 12)))
    let xs = Array.append (randomArray 3 30 2.0 5.0) [| 2.0; 2.5; 3.0; 5.0 |]
    let b0 = Splines.basis (Tensor.ofArray xs) knots0 0
    Assert.Equal<int[]>([| xs.Length; 6 |], b0.Shape)
    for r in rows b0 do
        Assert.True(r |> Array.forall (fun v -> v = 0.0 || v = 1.0))
        Assert.Equal(1.0, Array.sum r)
    // half-open: 2.5 belongs to [2.5, 3.0), the second interval; the last knot to the last interval
    let edge = Splines.basis (Tensor.ofArray [| 2.5; 5.0 |]) knots0 0 |> rows
    Assert.Equal<float[]>([| 0.0; 1.0; 0.0; 0.0; 0.0; 0.0 |], edge.[0])
    Assert.Equal<float[]>([| 0.0; 0.0; 0.0; 0.0; 0.0; 1.0 |], edge.[1])
    // degree 1 on [0, 0, 1, 2, 2]: hats at 0, 1, 2
    let b1 = Splines.basis (Tensor.ofArray [| 0.0; 0.5; 1.0; 1.5; 2.0 |]) [| 0.0; 0.0; 1.0; 2.0; 2.0 |] 1
    assertClose 1e-12 [| 1.0; 0.0; 0.0;  0.5; 0.5; 0.0;  0.0; 1.0; 0.0;  0.0; 0.5; 0.5;  0.0; 0.0; 1.0 |] (Tensor.toArray b1)
    let knots1 = Splines.makeKnots (linspace 2.0 5.0 50) 4 1
    for r in rows (Splines.basis (Tensor.ofArray xs) knots1 1) do
        Assert.True(abs (Array.sum r - 1.0) < 1e-10)
        Assert.True(r |> Array.forall (fun v -> v >= 0.0))

let ``bad knots are refused`` () =
    let x = Tensor.ofArray [| 0.5 |]
    Assert.ThrowsAny<ArgumentException>(fun () -> Splines.basis x [| 0.0; 1.0; 0.5; 2.0; 3.0 |] 1 |> ignore) |> ignore
    Assert.ThrowsAny<ArgumentException>(fun () -> Splines.basis x [| 0.0; 1.0 |] 1 |> ignore) |> ignore
    Assert.ThrowsAny<ArgumentException>(fun () -> Splines.basis (Tensor.ones [| 2; 2 |]) [| 0.0; 1.0 |] 0 |> ignore) |> ignore

// ---- P-splines --------------------------------------------------------------------------------

/// The second-difference matrix D ((k-2) × k) applied to β (k, u) by loops.
let private secondDiff (k: int) (u: int) (beta: float[]) =
    Array.init ((k - 2) * u) (fun idx ->
        let i, c = idx / u, idx % u
        beta.[i * u + c] - 2.0 * beta.[(i + 1) * u + c] + beta.[(i + 2) * u + c])

let ``the right inverse: D·R = I, R is orthogonal to the trend, and D·β equals the differences`` () =
    let k = 9
    let r = Splines.secondDifferenceRightInverse k
    Assert.Equal<int[]>([| k; k - 2 |], r.Shape)
    // D applied to each column of R gives the identity
    let dr = secondDiff k (k - 2) (Tensor.toArray r)
    assertClose 1e-10 (Tensor.toArray (Tensor.eye (k - 2))) dr
    // minimum norm: R's columns are orthogonal to D's null space (constants and lines)
    let ra = Tensor.toArray2D r
    for j in 0 .. k - 3 do
        Assert.True(abs (Seq.sum (seq { for i in 0 .. k - 1 -> ra.[i, j] })) < 1e-10)
        Assert.True(abs (Seq.sum (seq { for i in 0 .. k - 1 -> float i * ra.[i, j] })) < 1e-10)
    let delta = randomTensor 4 [| k - 2; 2 |] -1.0 1.0
    let trend = Tensor.ofArray [| 0.7; -1.3 |]
    let beta = Splines.psplineCoefficients delta trend
    assertClose 1e-10 (Tensor.toArray delta) (secondDiff k 2 (Tensor.toArray beta))
    // the trend alone is a line through linspace(-1, 1, k)
    let line = Splines.psplineCoefficients (Tensor.zeros [| k - 2; 2 |]) trend |> Tensor.toArray
    let grid = linspace -1.0 1.0 k
    assertClose 1e-12 (Array.init (k * 2) (fun idx -> grid.[idx / 2] * [| 0.7; -1.3 |].[idx % 2])) line

let ``P-spline layer: f = (B(clip x) - B(ref))·β, zero at the reference, constant beyond the knots`` () =
    let knots = Splines.makeKnots (linspace 0.0 1.0 40) 5 3
    let k = knots.Length - 4
    let u = 2
    let xs = Array.append (randomArray 5 10 0.0 1.0) [| 0.5; -1.0; 0.0; 2.0; 1.0 |]
    let delta = randomTensor 6 [| k - 2; u |] -1.0 1.0
    let trend = Tensor.ofArray [| 0.4; -0.9 |]
    let values = [ "PSplineLayer_p_scale", Tensor.ofArray [| 0.5; 1.5 |]; "PSplineLayer_p_differences", delta; "PSplineLayer_p_trend", trend ]
    let out, tr = PSplineLayer.Default.Call("p", Tensor.ofArray xs, knots, units = u) |> runWith values 1UL
    Assert.Equal<int[]>([| xs.Length; u |], out.Shape)
    let beta = Splines.psplineCoefficients delta trend |> Tensor.toArray
    let clipped = xs |> Array.map (fun v -> min 1.0 (max 0.0 v))
    let b = Splines.basis (Tensor.ofArray clipped) knots 3 |> Tensor.toArray
    let bRef = Splines.basis (Tensor.ofArray [| 0.5 |]) knots 3 |> Tensor.toArray
    let expected =
        Array.init (xs.Length * u) (fun idx ->
            let i, c = idx / u, idx % u
            Seq.sum (seq { for j in 0 .. k - 1 -> (b.[i * k + j] - bRef.[j]) * beta.[j * u + c] }))
    assertClose 1e-6 expected (Tensor.toArray out)
    let o = Tensor.toArray2D out
    let n = xs.Length
    for c in 0 .. u - 1 do
        Assert.Equal(0.0, o.[n - 5, c], 12)              // f(reference) = 0
        Assert.Equal(o.[n - 3, c], o.[n - 4, c], 12)     // f(-1) = f(0)
        Assert.Equal(o.[n - 1, c], o.[n - 2, c], 12)     // f(2) = f(1)
    // the differences' prior scale is the sampled scale
    let sd = tr.["PSplineLayer_p_differences"].Dist.Value |> Dist.variance |> Tensor.sqrt |> Tensor.toArray
    assertClose 1e-12 (Array.init ((k - 2) * u) (fun idx -> [| 0.5; 1.5 |].[idx % u])) sd
    // another reference
    let out2, _ = PSplineLayer.Default.Call("q", Tensor.ofArray [| 0.2 |], knots, reference = 0.2) |> runWith [] 2UL
    Assert.Equal(0.0, Tensor.toScalar out2, 12)

let ``P-spline sites, shapes and settings`` () =
    let knots = Splines.makeKnots (linspace 0.0 1.0 40) 4 3
    let k = knots.Length - 4
    for units in [ 1; 3 ] do
        let out, tr = PSplineLayer.Default.Call("s", Tensor.create [| 6; 1 |] (linspace 0.0 1.0 6), knots, units = units) |> runWith [] 3UL
        Assert.Equal<string[]>([| "PSplineLayer_s_scale"; "PSplineLayer_s_differences"; "PSplineLayer_s_trend" |], tr.Sites |> Array.map (fun s -> s.Name))
        Assert.Equal<int[]>([| units |], shapeOf tr "PSplineLayer_s_scale")
        Assert.Equal<int[]>([| k - 2; units |], shapeOf tr "PSplineLayer_s_differences")
        Assert.Equal<int[]>([| units |], shapeOf tr "PSplineLayer_s_trend")
        Assert.Equal<int[]>([| 6; units |], out.Shape)
        checkDensities tr
    let bad (f: unit -> unit) =
        let ex = Assert.ThrowsAny<ArgumentException>(fun () -> f ())
        Assert.Contains("PSplineLayer", ex.Message)
    bad (fun () -> PSplineLayer.Create(trendScale = 0.0) |> ignore)
    bad (fun () -> PSplineLayer.Create(degree = -1) |> ignore)
    bad (fun () -> PSplineLayer.Create(scalePrior = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)) |> ignore)
    bad (fun () -> PSplineLayer.Default.Call("b", Tensor.ones [| 2 |], [| 0.0; 0.0; 0.0; 0.0; 1.0 |]) |> ignore)
    bad (fun () -> PSplineLayer.Default.Call("b", Tensor.ones [| 2 |], knots, reference = 3.0) |> ignore)
    bad (fun () -> PSplineLayer.Default.Call("b", Tensor.ones [| 2; 2 |], knots) |> ignore)

// ---- HSGP -------------------------------------------------------------------------------------

let ``HSGP boundary is c times max |x|`` () =
    Assert.Equal(4.5, HSGP.boundary [| -3.0; 1.0; 2.0 |] 1.5, 12)
    Assert.Equal(2.0, HSGP.boundary [| 0.5; -1.0 |] 2.0, 12)

let ``HSGP basis, spectral density and layer output against the formulas`` () =
    let xs = [| -2.0; 0.3; 1.7; 2.9 |]
    let L = HSGP.boundary xs 1.5
    let m, u = 6, 2
    let sqrtLam j = float (j + 1) * Math.PI / (2.0 * L)
    let phi = Array.init (xs.Length * m) (fun idx -> sqrt (1.0 / L) * sin (sqrtLam (idx % m) * (xs.[idx / m] + L)))
    assertClose 1e-12 phi (Tensor.toArray (HSGP.basis xs L m))
    let alpha, ell = 0.8, 1.3
    let s = Array.init m (fun j -> alpha * alpha * sqrt (2.0 * Math.PI) * ell * exp (-0.5 * (ell * sqrtLam j) ** 2.0))
    assertClose 1e-12 s (Tensor.toArray (HSGP.spectralDensity (Tensor.scalar alpha) (Tensor.scalar ell) L m))
    let beta = randomTensor 7 [| m; u |] -1.0 1.0
    let out, tr =
        HSGPLayer.Default.Call("g", Tensor.ofArray xs, L, m, units = u)
        |> runWith [ "HSGPLayer_g_lengthscale", Tensor.scalar ell; "HSGPLayer_g_sigma", Tensor.scalar alpha; "HSGPLayer_g_beta", beta ] 4UL
    let b = Tensor.toArray beta
    let expected =
        Array.init (xs.Length * u) (fun idx ->
            let i, c = idx / u, idx % u
            Seq.sum (seq { for j in 0 .. m - 1 -> phi.[i * m + j] * sqrt s.[j] * b.[j * u + c] }))
    assertClose 1e-6 expected (Tensor.toArray out)
    Assert.Equal<string[]>([| "HSGPLayer_g_lengthscale"; "HSGPLayer_g_sigma"; "HSGPLayer_g_beta" |], tr.Sites |> Array.map (fun s -> s.Name))
    match tr.["HSGPLayer_g_lengthscale"].Dist.Value with
    | InverseGamma (a, r) ->
        Assert.Equal(5.0, Tensor.toScalar a)
        Assert.Equal(5.0, Tensor.toScalar r)
    | other -> failwithf "lengthscale's prior is %s" (Dist.name other)

let ``HSGP sites, shapes and settings`` () =
    let x = Tensor.create [| 5; 1 |] (linspace -3.0 3.0 5)
    for units in [ 1; 3 ] do
        let out, tr = HSGPLayer.Default.Call("h", x, 4.5, 10, units = units) |> runWith [] 5UL
        Assert.Equal<int[]>([| 5; units |], out.Shape)
        Assert.Equal<int[]>([||], shapeOf tr "HSGPLayer_h_lengthscale")
        Assert.Equal<int[]>([||], shapeOf tr "HSGPLayer_h_sigma")
        Assert.Equal<int[]>([| 10; units |], shapeOf tr "HSGPLayer_h_beta")
        checkDensities tr
    let bad (f: unit -> unit) =
        let ex = Assert.ThrowsAny<ArgumentException>(fun () -> f ())
        Assert.Contains("HSGPLayer", ex.Message)
    bad (fun () -> HSGPLayer.Create(sigmaPrior = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)) |> ignore)
    bad (fun () -> HSGPLayer.Create(lengthscalePrior = Dist.expand [| 2 |] (HalfNormal (Tensor.scalar 1.0))) |> ignore)
    bad (fun () -> HSGPLayer.Default.Call("h", x, 0.0, 10) |> ignore)
    bad (fun () -> HSGPLayer.Default.Call("h", x, 4.5, 0) |> ignore)
    bad (fun () -> HSGPLayer.Default.Call("h", Tensor.ones [| 5; 2 |], 4.5, 3) |> ignore)

let ``HSGP and P-spline outputs are differentiable in their parameters`` () =
    let xs = [| -2.0; 0.3; 1.7 |]
    let hsgp (ps: Tensor[]) =
        HSGPLayer.Default.Call("d", Tensor.ofArray xs, 4.5, 5, units = 2)
        |> runWith [ "HSGPLayer_d_lengthscale", ps.[0]; "HSGPLayer_d_sigma", ps.[1]; "HSGPLayer_d_beta", ps.[2] ] 6UL
        |> fst
    gradCheck hsgp [| Tensor.scalar 1.3; Tensor.scalar 0.8; randomTensor 8 [| 5; 2 |] -1.0 1.0 |]
    let knots = Splines.makeKnots (linspace 0.0 1.0 20) 3 3
    let pspline (ps: Tensor[]) =
        PSplineLayer.Default.Call("e", Tensor.ofArray [| 0.1; 0.4; 0.9 |], knots)
        |> runWith [ "PSplineLayer_e_differences", ps.[0]; "PSplineLayer_e_trend", ps.[1] ] 7UL
        |> fst
    gradCheck pspline [| randomTensor 9 [| knots.Length - 6; 1 |] -1.0 1.0; Tensor.ofArray [| 0.3 |] |]

[<Tests>]
let tests =
    testList "LayerSmoothTests" [
        testCase "knot vectors: lengths, clamped repeats and boundary values" ``knot vectors: lengths, clamped repeats and boundary values``
        testCase "cubic basis: shape, partition of unity inside and at both boundaries, non-negative" ``cubic basis: shape, partition of unity inside and at both boundaries, non-negative``
        testCase "with no interior knots the cubic basis is the four Bernstein polynomials" ``with no interior knots the cubic basis is the four Bernstein polynomials``
        testCase "degree 0 gives half-open indicator columns, degree 1 gives hats" ``degree 0 gives half-open indicator columns, degree 1 gives hats``
        testCase "bad knots are refused" ``bad knots are refused``
        testCase "the right inverse: D·R = I, R is orthogonal to the trend, and D·β equals the differences" ``the right inverse: D·R = I, R is orthogonal to the trend, and D·β equals the differences``
        testCase "P-spline layer: f = (B(clip x) - B(ref))·β, zero at the reference, constant beyond the knots" ``P-spline layer: f = (B(clip x) - B(ref))·β, zero at the reference, constant beyond the knots``
        testCase "P-spline sites, shapes and settings" ``P-spline sites, shapes and settings``
        testCase "HSGP boundary is c times max |x|" ``HSGP boundary is c times max |x|``
        testCase "HSGP basis, spectral density and layer output against the formulas" ``HSGP basis, spectral density and layer output against the formulas``
        testCase "HSGP sites, shapes and settings" ``HSGP sites, shapes and settings``
        testCase "HSGP and P-spline outputs are differentiable in their parameters" ``HSGP and P-spline outputs are differentiable in their parameters``
    ]
