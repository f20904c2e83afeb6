/// The model computation expression, effect handlers, log joint and unconstrained potential.
module FunctionalBayes.Tests.ModelTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private s (v: float) = Tensor.scalar v
let private lp d v = Dist.logProb d v |> Tensor.sum |> Tensor.toScalar

/// z ~ Normal(0, 1); y ~ Normal(z, 0.5) observed.
let private simple (y: Tensor option) = model {
    let! z = Model.sample "z" (Normal (s 0.0, s 1.0))
    return! Model.observe "y" (Normal (z, s 0.5)) y
}

let ``a model is a value: nothing happens until it runs`` () =
    let m = simple None
    // running without a key names the site that needs one
    let ex = Assert.Throws<InvalidOperationException>(fun () -> Model.run m |> ignore)
    Assert.Contains("'z'", ex.Message)
    Assert.Contains("Handlers.seed", ex.Message)
    // the same key gives the same draws, on every run
    let a = Model.run (Handlers.seed (Rng.key 1UL) m) |> Tensor.toScalar
    let b = Model.run (Handlers.seed (Rng.key 1UL) m) |> Tensor.toScalar
    Assert.Equal(a, b)

let ``trace records sites in order, with values and kinds`` () =
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 2UL) (simple (Some (Tensor.ofArray [| 0.3; 0.1 |])))))
    Assert.Equal<string[]>([| "z"; "y" |], tr.Sites |> Array.map (fun s -> s.Name))
    Assert.True(Site.isLatent tr.["z"])
    Assert.True(tr.["y"].IsObserved)
    Assert.Equal<float[]>([| 0.3; 0.1 |], Tensor.toArray (tr.Value "y"))

let ``log joint equals the hand-written sum`` () =
    let y = Tensor.ofArray [| 0.3; -0.1 |]
    let lj = LogDensity.logJoint (Map [ "z", s 0.2 ]) (simple (Some y)) |> Tensor.toScalar
    let expected = lp (Normal (s 0.0, s 1.0)) (s 0.2) + lp (Normal (s 0.2, s 0.5)) y
    Assert.Equal(expected, lj, 12)

let ``substitute keeps a site latent, condition makes it observed`` () =
    let m = simple None
    let _, t1 = Model.run (Handlers.trace (Handlers.seed (Rng.key 3UL) (Handlers.substitute (Map [ "z", s 1.5 ]) m)))
    Assert.Equal(1.5, Tensor.toScalar (t1.Value "z"))
    Assert.False(t1.["z"].IsObserved)
    let _, t2 = Model.run (Handlers.trace (Handlers.seed (Rng.key 3UL) (Handlers.condition (Map [ "z", s 1.5 ]) m)))
    Assert.Equal(1.5, Tensor.toScalar (t2.Value "z"))
    Assert.True(t2.["z"].IsObserved)
    Assert.Equal(1, Trace.latents t2 |> Array.length) // only y, which was sampled

let ``unknown names given to substitute or condition are refused, listing the sites`` () =
    let m = Handlers.seed (Rng.key 4UL) (simple None)
    let ex = Assert.Throws<ArgumentException>(fun () -> Model.run (Handlers.substitute (Map [ "w", s 1.0 ]) m) |> ignore)
    Assert.Contains("'w'", ex.Message)
    Assert.Contains("z", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Model.run (Handlers.condition (Map [ "q", s 1.0 ]) m) |> ignore)
    Assert.Contains("'q'", ex.Message)

let ``duplicate site names are refused`` () =
    let m = model {
        let! a = Model.sample "a" (Normal (s 0.0, s 1.0))
        let! b = Model.sample "a" (Normal (a, s 1.0))
        return b
    }
    let ex = Assert.Throws<InvalidOperationException>(fun () -> Model.run (Handlers.trace (Handlers.seed (Rng.key 5UL) m)) |> ignore)
    Assert.Contains("'a'", ex.Message)
    Assert.Contains("twice", ex.Message)

let ``block hides sites from an outer trace`` () =
    // as in NumPyro, a blocked site skips every outer handler, so seed goes inside block
    let m = Handlers.block (fun n -> n = "z") (Handlers.seed (Rng.key 6UL) (simple None))
    let _, tr = Model.run (Handlers.trace m)
    Assert.Equal<string[]>([| "y" |], tr.Sites |> Array.map (fun s -> s.Name))

let ``scale multiplies log densities and mask zeroes them`` () =
    let y = Tensor.ofArray [| 0.3; -0.1 |]
    let values = Map [ "z", s 0.2 ]
    let unscaled = LogDensity.logJoint values (simple (Some y)) |> Tensor.toScalar
    let scaled = LogDensity.logJoint values (Handlers.scale (s 3.0) (simple (Some y))) |> Tensor.toScalar
    Assert.Equal(3.0 * unscaled, scaled, 12)
    let masked = LogDensity.logJoint values (Handlers.mask (Tensor.ofBools [| true; false |]) (simple (Some y))) |> Tensor.toScalar
    let expected = lp (Normal (s 0.0, s 1.0)) (s 0.2) + lp (Normal (s 0.2, s 0.5)) (s 0.3)
    Assert.Equal(expected, masked, 12)

let ``replay gives latent sites the values of a guide trace`` () =
    let guide = model { return! Model.sample "z" (Normal (s 5.0, s 0.01)) }
    let _, gt = Model.run (Handlers.trace (Handlers.seed (Rng.key 7UL) guide))
    let _, mt = Model.run (Handlers.trace (Handlers.seed (Rng.key 8UL) (Handlers.replay gt (simple None))))
    Assert.Equal(Tensor.toScalar (gt.Value "z"), Tensor.toScalar (mt.Value "z"))

let ``plate subsampling scales log densities by size over subsample`` () =
    let data = Tensor.ofArray [| 0.5; -0.2; 1.1; 0.0; 0.7; -0.9; 0.3; 0.2; -0.4; 1.5 |]
    let m = model {
        let! mu = Model.sample "mu" (Normal (s 0.0, s 1.0))
        return! Model.plate "data" 10 (Some 4) (fun idx ->
            Model.observe "obs" (Normal (mu, s 1.0)) (Some (Tensor.indexSelect 0 idx data)))
    }
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 9UL) (Handlers.substitute (Map [ "mu", s 0.1 ]) m)))
    let obs = tr.["obs"]
    Assert.Equal(4, obs.Value.Value.Size)
    Assert.Equal(2.5, Tensor.toScalar obs.Scale.Value)
    Assert.Equal<string list>([ "data" ], obs.Plates |> List.map (fun p -> p.Name))
    let idx = tr.Sites |> Array.find (fun s -> s.Kind = PlateSite) |> fun s -> Tensor.toInts s.Value.Value
    let expected = lp (Normal (s 0.0, s 1.0)) (s 0.1) + 2.5 * (idx |> Array.sumBy (fun i -> lp (Normal (s 0.1, s 1.0)) (Tensor.select 0 i data)))
    Assert.Equal(expected, Trace.logJoint tr |> Tensor.toScalar, 12)
    // without a subsample, the scale is absent
    let _, full = Model.run (Handlers.trace (Handlers.seed (Rng.key 9UL) (Model.plate "p" 3 None (fun _ -> Model.sample "u" (Dist.expand [| 3 |] (Normal (s 0.0, s 1.0)))))))
    Assert.True(full.["u"].Scale.IsNone)

let ``reparam non-centers location-scale sites and keeps the log density`` () =
    let m = model {
        let! tau = Model.sample "tau" (HalfNormal (s 1.0))
        let! theta = Model.sample "theta" (Dist.expand [| 3 |] (Normal (s 0.5, tau)))
        return theta
    }
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 10UL) (Handlers.reparam m)))
    Assert.Equal<string[]>([| "tau"; "theta_decentered"; "theta" |], tr.Sites |> Array.map (fun s -> s.Name))
    Assert.Equal(DeterministicSite, tr.["theta"].Kind)
    let tau = tr.Value "tau"
    let z = tr.Value "theta_decentered"
    assertTensorClose 1e-15 (0.5 + tau * z) (tr.Value "theta")
    // the decentered site is standard normal
    match tr.["theta_decentered"].Dist.Value with
    | Expand (Normal (loc, sc), _) ->
        Assert.Equal(0.0, Tensor.toScalar loc)
        Assert.Equal(1.0, Tensor.toScalar sc)
    | d -> failwithf "unexpected %A" (Dist.name d)

let ``potential on unconstrained space adds the log-Jacobian`` () =
    let m = model {
        let! sigma = Model.sample "sigma" (Exponential (s 1.0))
        return! Model.observe "y" (Normal (s 0.0, sigma)) (Some (Tensor.ofArray [| 0.5; -1.0 |]))
    }
    let p = LogDensity.potential (Rng.key 11UL) m
    Assert.Equal<string[]>([| "sigma" |], p.Latents |> Array.map (fun l -> l.Name))
    let u = s 0.3
    let sigma = exp 0.3
    let expected = -(lp (Exponential (s 1.0)) (s sigma) + lp (Normal (s 0.0, s sigma)) (Tensor.ofArray [| 0.5; -1.0 |]) + 0.3)
    Assert.Equal(expected, p.Energy [| u |] |> Tensor.toScalar, 12)
    // and it is differentiable
    let g = Autodiff.grad (fun u -> p.Energy [| u |]) u |> Tensor.toScalar
    let h = 1e-6
    let fd = ((p.Energy [| s (0.3 + h) |] |> Tensor.toScalar) - (p.Energy [| s (0.3 - h) |] |> Tensor.toScalar)) / (2.0 * h)
    Assert.Equal(fd, g, 6)
    assertTensorClose 1e-14 u (p.Unconstrain (p.Constrain [| u |])).[0]

let ``initialization strategies`` () =
    let m = model {
        let! a = Model.sample "a" (Dist.expand [| 2 |] (Normal (s 3.0, s 0.001)))
        let! b = Model.sample "b" (Exponential (s 1.0))
        return a + b
    }
    let p = LogDensity.potential (Rng.key 12UL) m
    let uni = LogDensity.init (InitUniform 2.0) (Rng.key 1UL) m p
    Assert.All(uni |> Array.collect Tensor.toArray, fun v -> Assert.InRange(v, -2.0, 2.0))
    let feas = LogDensity.init InitFeasible (Rng.key 1UL) m p
    Assert.Equal(1.0, (p.Constrain feas).["b"] |> Tensor.toScalar)
    let med = LogDensity.init (InitMedian 15) (Rng.key 1UL) m p
    Assert.All(Tensor.toArray (p.Constrain med).["a"], fun v -> Assert.Equal(3.0, v, 2))
    let given = LogDensity.init (InitValues (Map [ "b", s 0.25 ])) (Rng.key 1UL) m p
    Assert.Equal(0.25, (p.Constrain given).["b"] |> Tensor.toScalar, 14)

let ``discrete latent sites are refused by the potential`` () =
    let m = model { return! Model.sample "k" (Poisson (s 3.0)) }
    let ex = Assert.Throws<ArgumentException>(fun () -> LogDensity.potential (Rng.key 1UL) m |> ignore)
    Assert.Contains("'k'", ex.Message)
    Assert.Contains("discrete", ex.Message)

let ``handled models run on many threads at once`` () =
    let m = Handlers.seed (Rng.key 13UL) (simple None)
    let expected = Model.run m |> Tensor.toScalar
    let results = Array.init 8 (fun _ -> Threading.Tasks.Task.Run(fun () -> Array.init 200 (fun _ -> Model.run m |> Tensor.toScalar)))
    for t in results do
        Assert.All(t.Result, fun v -> Assert.Equal(expected, v))

[<Tests>]
let tests =
    testList "ModelTests" [
        testCase "a model is a value: nothing happens until it runs" ``a model is a value: nothing happens until it runs``
        testCase "trace records sites in order, with values and kinds" ``trace records sites in order, with values and kinds``
        testCase "log joint equals the hand-written sum" ``log joint equals the hand-written sum``
        testCase "substitute keeps a site latent, condition makes it observed" ``substitute keeps a site latent, condition makes it observed``
        testCase "unknown names given to substitute or condition are refused, listing the sites" ``unknown names given to substitute or condition are refused, listing the sites``
        testCase "duplicate site names are refused" ``duplicate site names are refused``
        testCase "block hides sites from an outer trace" ``block hides sites from an outer trace``
        testCase "scale multiplies log densities and mask zeroes them" ``scale multiplies log densities and mask zeroes them``
        testCase "replay gives latent sites the values of a guide trace" ``replay gives latent sites the values of a guide trace``
        testCase "plate subsampling scales log densities by size over subsample" ``plate subsampling scales log densities by size over subsample``
        testCase "reparam non-centers location-scale sites and keeps the log density" ``reparam non-centers location-scale sites and keeps the log density``
        testCase "potential on unconstrained space adds the log-Jacobian" ``potential on unconstrained space adds the log-Jacobian``
        testCase "initialization strategies" ``initialization strategies``
        testCase "discrete latent sites are refused by the potential" ``discrete latent sites are refused by the potential``
        testCase "handled models run on many threads at once" ``handled models run on many threads at once``
    ]
