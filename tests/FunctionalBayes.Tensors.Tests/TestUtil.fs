module FunctionalBayes.Tensors.Tests.TestUtil

open System
open FsCheck
open FsCheck.FSharp
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors

/// A property and how many cases to check; a suite runs it with Expecto.FsCheck (`propertyCase`).
type PropertyCheck = { MaxTest: int; Property: Property }

let check (maxTest: int) (prop: Property) = { MaxTest = maxTest; Property = prop }

/// Expecto.FsCheck with a fixed replay seed, so every run checks the same cases.
let fsCheckConfig (maxTest: int) =
    { FsCheckConfig.defaultConfig with maxTest = maxTest; replay = Some(20261121UL, 0x9E3779B97F4A7C15UL, None) }

/// An Expecto property test from a test function that returns its property.
let propertyCase (name: string) (f: unit -> PropertyCheck) =
    let p = f ()
    testPropertyWithConfig (fsCheckConfig p.MaxTest) name p.Property

/// Checks a property at once, with the same fixed seed (for a test that checks several properties);
/// a counterexample fails the test with FsCheck's report.
let checkNow (p: PropertyCheck) =
    let config = Config.QuickThrowOnFailure.WithMaxTest(p.MaxTest).WithReplay(Some { Rnd = Rnd(20261121UL, 0x9E3779B97F4A7C15UL); Size = None })
    try Check.One(config, p.Property) with e -> raise (AssertException e.Message)

/// Deterministic test data (tests' own randomness, not the library's RNG).
let randomArray (seed: int) (n: int) (lo: float) (hi: float) =
    let r = Random(seed)
    Array.init n (fun _ -> lo + (hi - lo) * r.NextDouble())

let randomTensor (seed: int) (shape: int[]) (lo: float) (hi: float) =
    Tensor.create shape (randomArray seed (Shape.size shape) lo hi)

/// |expected − actual| ≤ tol·(1 + |expected|), and both infinite alike.
let close (tol: float) (expected: float) (actual: float) (what: string) =
    let ok = expected = actual || abs (expected - actual) <= tol * (1.0 + abs expected)
    Expect.isTrue ok (sprintf "%s: expected %.17g, got %.17g" what expected actual)

let assertClose (tol: float) (expected: float[]) (actual: float[]) =
    Assert.Equal(expected.Length, actual.Length)
    for i in 0 .. expected.Length - 1 do
        let e = expected.[i]
        let a = actual.[i]
        let ok = (Double.IsNaN e && Double.IsNaN a) || e = a || abs (e - a) <= tol * (1.0 + abs e)
        if not ok then
            failwithf "element %d: expected %.17g, got %.17g (tolerance %g relative to 1+|expected|)" i e a tol

/// Relative closeness only: for values near zero, where an absolute tolerance would hide cancellation.
let assertRelClose (tol: float) (expected: float[]) (actual: float[]) =
    Assert.Equal(expected.Length, actual.Length)
    for i in 0 .. expected.Length - 1 do
        let e = expected.[i]
        let a = actual.[i]
        if not (e = a || abs (e - a) <= tol * abs e) then
            failwithf "element %d: expected %.17g, got %.17g (relative tolerance %g)" i e a tol

let assertTensorClose tol (expected: Tensor) (actual: Tensor) =
    Assert.Equal<int[]>(expected.Shape, actual.Shape)
    assertClose tol (Tensor.toArray expected) (Tensor.toArray actual)

/// Checks the reverse-mode gradient of sum(w ⊙ f(xs)) against central finite differences, for
/// random fixed weights w, which tests the whole vector-Jacobian product.
let gradCheck (f: Tensor[] -> Tensor) (xs: Tensor[]) =
    let y0 = f xs
    let w = randomTensor 7 y0.Shape -1.0 1.0 |> Tensor.cast y0.Dtype
    let loss (ts: Tensor[]) = Tensor.sum (f ts * w)
    let analytic = Autodiff.gradN loss xs
    let h = 1e-6
    xs |> Array.iteri (fun k x ->
        let xa = Tensor.toArray x
        let numeric =
            Array.init xa.Length (fun i ->
                let at (d: float) =
                    let a = Array.copy xa
                    a.[i] <- a.[i] + d
                    let xs' = Array.copy xs
                    xs'.[k] <- Tensor.create x.Shape a
                    Tensor.toScalar (loss xs')
                (at h - at -h) / (2.0 * h))
        let got = Tensor.toArray analytic.[k]
        Assert.Equal<int[]>(x.Shape, analytic.[k].Shape)
        for i in 0 .. numeric.Length - 1 do
            let e = numeric.[i]
            let a = got.[i]
            if not (abs (e - a) <= 1e-5 * (1.0 + abs e)) then
                failwithf "input %d element %d: finite differences give %.10g, autodiff %.10g" k i e a)

/// Random small shapes for properties: rank 0 to 3, dims 1 to 4.
let genShape : Gen<int[]> =
    gen {
        let! rank = Gen.choose (0, 3)
        return! Gen.arrayOfLength rank (Gen.choose (1, 4))
    }

/// A shape and a second shape that broadcasts with it (some axes set to 1 or dropped).
let genBroadcastPair : Gen<int[] * int[]> =
    gen {
        let! s = genShape
        let! mask = Gen.arrayOfLength s.Length (Gen.elements [ true; false ])
        let! drop = Gen.choose (0, s.Length)
        let t = Array.map2 (fun d keep -> if keep then d else 1) s mask
        let! swap = Gen.elements [ true; false ]
        let t = t.[drop ..]
        return if swap then (t, s) else (s, t)
    }
