/// Bayesian neural networks (issue 12): the two-moons generator, the hierarchical dense layer's log
/// density against a hand-written formula, the layers' forward passes against loops, many draws in one
/// run (Ensemble.alignDraws) against one run per draw, and a small hierarchical NUTS fit that beats separate NUTS fits.
module FunctionalBayes.Tests.BayesianNetTests

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors

let private close (tol: float) (what: string) (expected: float[]) (actual: float[]) =
    Expect.equal actual.Length expected.Length (sprintf "%s: length" what)
    for i in 0 .. expected.Length - 1 do
        if not (abs (expected.[i] - actual.[i]) <= tol * (1.0 + abs expected.[i])) then
            failtestf "%s: element %d is %.17g, expected %.17g (tolerance %g)" what i actual.[i] expected.[i] tol

let private uniform (seed: uint64) (shape: int[]) = Rng.uniform (Rng.key seed) shape * 2.0 - 1.0
let private runWith (values: (string * Tensor) list) (m: Model<Tensor>) = Model.run (Handlers.trace (Handlers.substitute (Map values) m))
let private logStdNormal (z: float) = -0.5 * z * z - 0.5 * log (2.0 * Math.PI)

let private moons =
    testList "two moons" [
        testCase "multi-task data has the notebook's shapes, balanced classes, standardized and rotated columns" <| fun () ->
            let d = Datasets.multiTaskMoons (Rng.key 31UL) 18 100 50 0.3
            Expect.equal d.XTrain.Shape [| 18; 50; 2 |] "XTrain"
            Expect.equal d.YTrain.Shape [| 18; 50 |] "YTrain"
            Expect.equal d.XTest.Shape [| 18; 50; 2 |] "XTest"
            Expect.equal d.YTest.Shape [| 18; 50 |] "YTest"
            Expect.equal d.Degrees.Length 18 "one angle per task"
            let xtr, xte = Tensor.toArray d.XTrain, Tensor.toArray d.XTest
            let ytr, yte = Tensor.toArray d.YTrain, Tensor.toArray d.YTest
            for t in 0 .. 17 do
                let ys = Array.append ytr.[t * 50 .. t * 50 + 49] yte.[t * 50 .. t * 50 + 49]
                Expect.isTrue (ys |> Array.forall (fun y -> y = 0.0 || y = 1.0)) "labels are 0/1"
                // make_moons puts n/2 points on each moon
                Expect.equal (ys |> Array.sumBy id) 50.0 (sprintf "task %d has 50 points of class 1" t)
                // each training half is a shuffle: neither class is absent
                let trOnes = ytr.[t * 50 .. t * 50 + 49] |> Array.sumBy id
                Expect.isTrue (trOnes >= 10.0 && trOnes <= 40.0) (sprintf "task %d: %g of 50 training points in class 1" t trOnes)
                // z-scored columns have mean 0 and Σx² = n per column; a rotation keeps the mean at 0 and Σ|x|² = 2n
                let pts = Array.append xtr.[t * 100 .. t * 100 + 99] xte.[t * 100 .. t * 100 + 99]
                let mx = Array.init 100 (fun i -> pts.[2 * i]) |> Array.average
                let my = Array.init 100 (fun i -> pts.[2 * i + 1]) |> Array.average
                Expect.isLessThan (abs mx + abs my) 1e-12 (sprintf "task %d is centred" t)
                Expect.floatClose Accuracy.high (pts |> Array.sumBy (fun v -> v * v)) 200.0 (sprintf "task %d: Σ|x|² = 2n" t)
            // angles are Normal(0, 1)·90: 18 draws within ±4 sd and not all of one sign
            Expect.isTrue (d.Degrees |> Array.forall (fun a -> abs a < 360.0)) "angles within 4 sd"
            Expect.isTrue (d.Degrees |> Array.exists (fun a -> a > 0.0) && d.Degrees |> Array.exists (fun a -> a < 0.0)) "angles of both signs"
            // the same key gives the same data, another key other data
            let again = Datasets.multiTaskMoons (Rng.key 31UL) 18 100 50 0.3
            Expect.equal (Tensor.toArray again.XTrain) xtr "deterministic"
            let other = Datasets.multiTaskMoons (Rng.key 32UL) 18 100 50 0.3
            Expect.notEqual (Tensor.toArray other.XTrain) xtr "another key, other data"

        testCase "makeMoons without noise lies on the two half circles" <| fun () ->
            let x, y = Datasets.makeMoons (Rng.key 3UL) 101 0.0
            Expect.equal x.Shape [| 101; 2 |] "x"
            let xs, ys = Tensor.toArray x, Tensor.toArray y
            Expect.equal (ys |> Array.sumBy id) 51.0 "the inner moon gets the odd point"
            for i in 0 .. 100 do
                let a, b = xs.[2 * i], xs.[2 * i + 1]
                if ys.[i] = 0.0 then
                    Expect.floatClose Accuracy.high (a * a + b * b) 1.0 "outer moon: unit circle"
                    Expect.isGreaterThanOrEqual b -1e-12 "outer moon: upper half"
                else
                    Expect.floatClose Accuracy.high ((a - 1.0) ** 2.0 + (b - 0.5) ** 2.0) 1.0 "inner moon: circle around (1, 0.5)"
                    Expect.isLessThanOrEqual b (0.5 + 1e-12) "inner moon: lower half"

        testCase "grid follows NumPy's mgrid order" <| fun () ->
            let g = Datasets.grid -3.0 3.0 100 |> Tensor.toArray
            Expect.equal g.Length 20000 "10 000 points"
            close 1e-15 "first points" [| -3.0; -3.0; -3.0; -3.0 + 6.0 / 99.0 |] g.[0..3]
            close 1e-15 "point 100" [| -3.0 + 6.0 / 99.0; -3.0 |] g.[200..201]
            close 1e-15 "last point" [| 3.0; 3.0 |] g.[19998..19999]

        testCase "bad arguments are refused" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Datasets.multiTaskMoons (Rng.key 1UL) 3 10 10 0.3 |> ignore) "nTrain = perTask"
            Expect.throwsT<ArgumentException> (fun () -> Datasets.makeMoons (Rng.key 1UL) 10 -0.1 |> ignore) "negative noise"
    ]

let private layers =
    testList "Bayesian layers" [
        testCase "hierarchical layer's log density and potential match the hand-written formula" <| fun () ->
            let g, n, d, u = 3, 4, 2, 2
            let x = uniform 1UL [| n; d |]
            let mu = uniform 2UL [| d; u |]
            let eps = uniform 3UL [| g; d; u |] * 2.0
            let bmu = uniform 4UL [| 1; u |]
            let beps = uniform 5UL [| g; 1; u |]
            let sigma = 0.7
            let layer = { HierarchicalDenseLayer.Default with Bias = true }
            let m = layer.Call("h", x, g, u, Activations.tanh)
            let values =
                Map [ "HierarchicalDenseLayer_h_mu", mu; "HierarchicalDenseLayer_h_scale", Tensor.ofArray [| sigma |]
                      "HierarchicalDenseLayer_h_eps", eps; "HierarchicalDenseLayer_h_bias_mu", bmu; "HierarchicalDenseLayer_h_bias_eps", beps ]
            let lj = LogDensity.logJoint values m |> Tensor.toScalar
            let sumStd (t: Tensor) = Tensor.toArray t |> Array.sumBy logStdNormal
            let halfNormal (s: float) = 0.5 * log (2.0 / Math.PI) - 0.5 * s * s
            let expected = sumStd mu + sumStd eps + sumStd bmu + sumStd beps + halfNormal sigma
            Expect.floatClose Accuracy.veryHigh lj expected "log joint"
            // the potential samples log σ: energy = −(log joint + log σ) (the exp bijector's Jacobian)
            let pot = LogDensity.potential (Rng.key 9UL) m
            let names = pot.Latents |> Array.map (fun l -> l.Name)
            Expect.equal names [| "HierarchicalDenseLayer_h_mu"; "HierarchicalDenseLayer_h_scale"; "HierarchicalDenseLayer_h_eps"; "HierarchicalDenseLayer_h_bias_mu"; "HierarchicalDenseLayer_h_bias_eps" |] "latent sites"
            let energy = pot.Energy (pot.Unconstrain values) |> Tensor.toScalar
            Expect.floatClose Accuracy.veryHigh energy (-(expected + log sigma)) "energy on the log scale"
            // the forward pass: tanh(x·(μ + σ ε_g) + (b_μ + σ b_ε,g)), by loops
            let out, _ = runWith (Map.toList values) m
            Expect.equal out.Shape [| g; n; u |] "output shape"
            let xa, ma, ea, bma, bea = Tensor.toArray x, Tensor.toArray mu, Tensor.toArray eps, Tensor.toArray bmu, Tensor.toArray beps
            let expectedOut =
                [| for gi in 0 .. g - 1 do
                     for i in 0 .. n - 1 do
                       for k in 0 .. u - 1 ->
                         let s = Seq.sum (seq { for j in 0 .. d - 1 -> xa.[i * d + j] * (ma.[j * u + k] + sigma * ea.[(gi * d + j) * u + k]) })
                         tanh (s + bma.[k] + sigma * bea.[gi * u + k]) |]
            close 1e-12 "forward" expectedOut (Tensor.toArray out)

        testCase "centered hierarchical layer's log density is Normal(w; μ, σ)" <| fun () ->
            let g, d, u = 2, 3, 2
            let x = uniform 11UL [| 5; d |]
            let mu = uniform 12UL [| d; u |]
            let w = uniform 13UL [| g; d; u |] * 2.0
            let sigma = 1.3
            let layer = HierarchicalDenseLayer.Create(Normal (Tensor.scalar 0.0, Tensor.scalar 2.0), HalfCauchy (Tensor.scalar 1.0), Parameterization.Centered, false)
            let values = Map [ "HierarchicalDenseLayer_c_mu", mu; "HierarchicalDenseLayer_c_scale", Tensor.ofArray [| sigma |]; "HierarchicalDenseLayer_c_w", w ]
            let lj = LogDensity.logJoint values (layer.Call("c", x, g, u)) |> Tensor.toScalar
            let ma, wa = Tensor.toArray mu, Tensor.toArray w
            let muPart = ma |> Array.sumBy (fun m -> logStdNormal (m / 2.0) - log 2.0)
            let wPart = wa |> Array.mapi (fun i v -> logStdNormal ((v - ma.[i % (d * u)]) / sigma) - log sigma) |> Array.sum
            let halfCauchy = log (2.0 / Math.PI) - log (1.0 + sigma * sigma)
            Expect.floatClose Accuracy.veryHigh lj (muPart + wPart + halfCauchy) "log joint"

        testCase "Bayesian MLP computes tanh layers and a linear output" <| fun () ->
            let x = uniform 21UL [| 7; 2 |]
            let m = BayesianMlp.Default.Call("net", x, [| 3; 1 |])
            let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 4UL) m))
            let v (s: string) = tr.Value s
            let expected = Tensor.matmul (Tensor.tanh (Tensor.matmul x (v "BayesianDenseLayer_net0_w") + v "BayesianDenseLayer_net0_b")) (v "BayesianDenseLayer_net1_w") + v "BayesianDenseLayer_net1_b"
            let out = Model.run (Handlers.substitute (Trace.values tr) m)
            close 1e-13 "forward" (Tensor.toArray expected) (Tensor.toArray out)
            let lj = Trace.logJoint tr |> Tensor.toScalar
            let expectedLj = tr.Sites |> Array.sumBy (fun s -> Tensor.toArray s.Value.Value |> Array.sumBy logStdNormal)
            Expect.floatClose Accuracy.veryHigh lj expectedLj "Normal(0, 1) on every weight and bias"

        testCase "many draws in one run equal one run per draw" <| fun () ->
            let s, g = 4, 3
            let x = uniform 31UL [| 6; 2 |]
            let hier (x: Tensor) = HierarchicalMlp.Default.Call("net", x, g, [| 5; 5; 1 |], [| 0; 1 |])
            let sep (x: Tensor) = BayesianMlp.Default.Call("net", x, [| 5; 5; 1 |])
            for net, rank in [ hier, 3; sep, 2 ] do
                let draws =
                    Array.init s (fun i -> Model.run (Handlers.trace (Handlers.seed (Rng.key (uint64 (100 + i))) (net x))) |> snd |> Trace.values)
                let stacked = draws.[0] |> Map.map (fun k _ -> draws |> Array.map (fun dm -> dm.[k]) |> Tensor.stack 0)
                let all = Model.run (Handlers.substitute (Ensemble.alignDraws rank stacked) (net x))
                let each = draws |> Array.map (fun dm -> Model.run (Handlers.substitute dm (net x))) |> Tensor.stack 0
                Expect.equal all.Shape each.Shape "one leading draw axis"
                close 1e-12 "stacked draws" (Tensor.toArray each) (Tensor.toArray all)

        testCase "invalid settings are refused naming the layer" <| fun () ->
            let x = uniform 41UL [| 4; 2 |]
            let msg (f: unit -> unit) = try f (); "" with :? ArgumentException as e -> e.Message
            Expect.stringContains (msg (fun () -> BayesianDenseLayer.Create(Poisson (Tensor.scalar 1.0), None) |> ignore)) "BayesianDenseLayer" "discrete prior"
            Expect.stringContains (msg (fun () -> HierarchicalDenseLayer.Create(Normal (Tensor.scalar 0.0, Tensor.scalar 1.0), Normal (Tensor.scalar 0.0, Tensor.scalar 1.0), Parameterization.NonCentered, false) |> ignore)) "positive" "scale prior on the reals"
            Expect.stringContains (msg (fun () -> HierarchicalDenseLayer.Default.Call("h", Tensor.zeros [| 2; 4; 2 |], 3, 2) |> ignore)) "groups = 3" "group axis"
            Expect.stringContains (msg (fun () -> HierarchicalMlp.Default.Call("n", x, 2, [| 3; 1 |], [||]) |> ignore)) "at least one" "no hierarchical layer"
            Expect.stringContains (msg (fun () -> BayesianMlp.Default.Call("n", x, [| 3; 0 |]) |> ignore)) "widths[1]" "zero width"
    ]


/// Posterior draws for the fit test: one NUTS chain (BlackJAX's window adaptation settings, as the
/// example), few warmup iterations and draws, stacked on a first axis.
let private fitDraws (seed: uint64) (m: Map<string, Tensor> -> Model<Tensor>) (data: Map<string, Tensor>) =
    let opts =
        { McmcOptions.Default with
            Chains = 1; Warmup = 200; Samples = 100; Seed = seed; FindInitialStepSize = false; Parallel = false }
    Mcmc.merged (Posterior.samplesPart "fitDraws" (Fit.mcmcIn RunContext.Quiet opts m data))

let private classifier (net: Tensor -> Model<Tensor>) (data: Map<string, Tensor>) = model {
    let! logits = net data.["x"]
    return! Model.observe "y" (BernoulliLogits (Tensor.squeeze -1 logits)) (data.TryFind "y")
}

let private fit =
    testList "fit" [
        testCase "a hierarchical fit beats separate fits on held-out accuracy" <| fun () ->
            // 8 rotated-moons tasks with 15 training points each (85 test points each): too little data
            // for one network per task, enough for networks pooled through shared means
            let tasks = 8
            let data = Datasets.multiTaskMoons (Rng.key 1UL) tasks 100 15 0.3
            let sepNet (x: Tensor) = BayesianMlp.Default.Call("net", x, [| 5; 5; 1 |])
            let hierNet (x: Tensor) = HierarchicalMlp.Default.Call("net", x, tasks, [| 5; 5; 1 |], [| 0; 1 |])
            // per test point: is the posterior predictive mean on the right side of 0.5?
            let correct (p: Tensor) (y: Tensor) = Array.map2 (fun a b -> (a > 0.5) = (b = 1.0)) (Tensor.toArray p) (Tensor.toArray y)
            let meanProb net rank draws x = Model.run (Handlers.substitute (Ensemble.alignDraws rank draws) (net x)) |> Tensor.sigmoid |> Tensor.meanAxes [| 0 |] false
            let separate =
                Array.init tasks (fun t ->
                    let draws = fitDraws (100UL + uint64 t) (classifier sepNet) (Map [ "x", Tensor.select 0 t data.XTrain; "y", Tensor.select 0 t data.YTrain ])
                    correct (meanProb sepNet 2 draws (Tensor.select 0 t data.XTest)) (Tensor.select 0 t data.YTest))
                |> Array.concat
            let draws = fitDraws 199UL (classifier hierNet) (Map [ "x", data.XTrain; "y", data.YTrain ])
            let hierarchical = correct (meanProb hierNet 3 draws data.XTest) data.YTest
            // McNemar on the paired test points: b = only the hierarchical model right, c = only the separate
            // ones right. Equal accuracies would make b − c ≈ 0 with standard deviation √(b + c); ask for
            // more than two of them (the fixed seeds saw b = 56, c = 22: 3.8 of them; other data seeds
            // and task counts tried, 2.1 to 3.0).
            let count f = Array.map2 (fun h s -> if f h s then 1 else 0) hierarchical separate |> Array.sum
            let b = count (fun h s -> h && not s)
            let c = count (fun h s -> s && not h)
            let acc (xs: bool[]) = xs |> Array.averageBy (fun v -> if v then 1.0 else 0.0)
            let msg = sprintf "hierarchical %.3f vs separate %.3f on %d test points (b = %d, c = %d)" (acc hierarchical) (acc separate) hierarchical.Length b c
            Expect.isGreaterThan (float (b - c)) (2.0 * sqrt (float (b + c))) msg
            Expect.isGreaterThan (acc hierarchical) 0.75 ("hierarchical held-out accuracy: " + msg)
    ]

[<Tests>]
let tests = testList "BayesianNetTests" [ moons; layers; fit ]
