/// AEVB: neural-network modules, families (inverse-CDF, composed, REINFORCE), the engine and its errors.
module FunctionalBayes.Tests.AevbTests

open System
open System.IO
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors

let private s (v: float) = Tensor.scalar v

/// The message of the ArgumentException that f raises (fails the test when it raises none).
let private argError (f: unit -> unit) : string =
    try
        f ()
        failtest "expected an ArgumentException"
    with :? ArgumentException as e -> e.Message

let private meanSe (xs: float[]) =
    let m = Array.average xs
    let sd = sqrt (xs |> Array.averageBy (fun v -> (v - m) ** 2.0))
    m, sd / sqrt (float xs.Length)

// ---- KL: analytic (registry) against Monte Carlo through each family's own sampler and density ----

/// KL(q ‖ p) per draw: log q(z) − log p(z) from n draws of the family; analytic from the registry.
let private klAgrees (family: Family) (ps: Map<string, Tensor>) (prior: Distribution) (seed: uint64) =
    let exact = Kl.analytic (family.ToDistribution.Value ps) prior |> Tensor.sum |> Tensor.toScalar
    let n = 40_000
    let z = family.Sample (Rng.key seed) [| n |] ps |> Tensor.detach
    let d = family.LogProb ps z - Dist.logProb prior z
    let perDraw = (if d.Rank > 1 then Tensor.sumAxes (Array.init (d.Rank - 1) (fun i -> i + 1)) false d else d) |> Tensor.toArray
    let m, se = meanSe perDraw
    Expect.isLessThan (abs (m - exact)) (5.0 * se + 1e-12)
        (sprintf "KL(%s ‖ %s): analytic %g, Monte Carlo %g ± %g" family.Name (Dist.name prior) exact m se)

let private ps (kvs: (string * float[]) list) = kvs |> List.map (fun (k, v) -> k, Tensor.ofArray v) |> Map.ofList

let klTests =
    testList "KL analytic vs Monte Carlo" [
        testCase "Normal ‖ unit Normal" <| fun () ->
            klAgrees Family.normal (ps [ "loc", [| 0.5; -1.0 |]; "scale", [| 0.7; 1.6 |] ]) (Normal (s 0.0, s 1.0)) 1UL
        testCase "Normal ‖ Normal" <| fun () ->
            klAgrees Family.normal (ps [ "loc", [| 0.2 |]; "scale", [| 0.5 |] ]) (Normal (s 1.0, s 2.0)) 2UL
        testCase "Laplace ‖ Laplace" <| fun () ->
            klAgrees Family.laplace (ps [ "loc", [| 0.3 |]; "scale", [| 0.8 |] ]) (Laplace (s -0.4, s 1.5)) 3UL
        testCase "LogNormal (composed) ‖ LogNormal" <| fun () ->
            klAgrees Family.logNormal (ps [ "loc", [| 0.1 |]; "scale", [| 0.4 |] ]) (LogNormal (s 0.5, s 0.9)) 4UL
        testCase "Exponential (inverse CDF) ‖ Exponential" <| fun () ->
            klAgrees Family.exponential (ps [ "rate", [| 2.0; 0.5 |] ]) (Exponential (s 1.0)) 5UL
        testCase "Bernoulli ‖ Bernoulli" <| fun () ->
            klAgrees Family.bernoulli (ps [ "logits", [| 0.3; -2.0 |] ]) (BernoulliLogits (s 0.5)) 6UL
        testCase "Categorical (one-hot) ‖ Categorical" <| fun () ->
            let q = Map [ "logits", Tensor.create [| 1; 3 |] [| 0.1; 1.0; -0.5 |] ]
            let exact = Kl.analytic (CategoricalLogits q.["logits"]) (CategoricalLogits (Tensor.ofArray [| 0.0; 0.0; 0.0 |])) |> Tensor.sum |> Tensor.toScalar
            let z = Family.categorical.Sample (Rng.key 7UL) [| 40_000 |] q
            let lq = Tensor.sumAxes [| 1; 2 |] false (Family.categorical.LogProb q z) |> Tensor.toArray
            let m, se = meanSe (lq |> Array.map (fun v -> v + log 3.0))
            Expect.isLessThan (abs (m - exact)) (5.0 * se) (sprintf "analytic %g vs MC %g ± %g" exact m se)
        testCase "the engine's analytic KL equals its Monte Carlo KL (prior given as a log-density)" <| fun () ->
            let enc = Nn.ofFunctions (fun _ -> Map.empty, Map.empty) (fun _ st x _ ->
                        let b = x.Shape.[0]
                        Map [ "loc", Tensor.full [| b; 2 |] 0.4; "scale", Tensor.full [| b; 2 |] 0.6 ], st)
            let dec = Nn.ofFunctions (fun _ -> Map.empty, Map.empty) (fun _ st z _ ->
                        Map [ "loc", Tensor.zeros [| z.Shape.[0]; 1 |]; "scale", Tensor.ones [| z.Shape.[0]; 1 |] ], st)
            let unit = AevbPrior.LogDensity ("unit normal", (fun z -> -0.5 * z * z - 0.5 * log (2.0 * Math.PI)), None)
            let make prior n = Aevb.create 2 1 enc dec prior Family.normal Family.normal (Optimizer.AdamDefault 1e-3) n 1.0
            let x = Tensor.zeros [| 3; 1 |]
            let ea = make AevbPrior.UnitNormal 1
            let em = make unit 20_000
            let st = Aevb.init ea (Rng.key 1UL)
            Expect.isTrue (Aevb.klIsAnalytic ea st x) "unit normal prior with a Normal family is analytic"
            Expect.isFalse (Aevb.klIsAnalytic em st x) "a log-density prior is Monte Carlo"
            let ka = (Aevb.lossAt ea (Rng.key 2UL) st x).Kl
            let kms = Array.init 10 (fun i -> (Aevb.lossAt em (Rng.key (uint64 (10 + i))) st x).Kl)
            let m, se = meanSe kms
            Expect.isLessThan (abs (m - ka)) (5.0 * se) (sprintf "analytic %g vs MC %g ± %g" ka m se)
    ]

// ---- reparameterization gradients vs finite differences with common random numbers ----

/// d/dθ of the mean of f over N draws (one key): autodiff through the sampler vs central differences
/// of the same estimate (common random numbers), for every parameter; and, where given, the exact
/// gradient of E f within Monte Carlo error.
let private reparamCheck (family: Family) (ps0: Map<string, float>) (f: Tensor -> Tensor) =
    let key = Rng.key 99UL
    let n = 4000
    let est (ps: Map<string, Tensor>) = Tensor.mean (f (family.Sample key [| n |] ps))
    let tensors = ps0 |> Map.map (fun _ v -> Tensor.ofArray [| v |])
    let g = Autodiff.gradMap est tensors
    for KeyValue (k, v) in ps0 do
        let h = 1e-5 * max 1.0 (abs v)
        let at d = est (tensors |> Map.add k (Tensor.ofArray [| v + d |])) |> Tensor.toScalar
        let fd = (at h - at -h) / (2.0 * h)
        let ad = Tensor.toScalar (Tensor.sum g.[k])
        Expect.isLessThan (abs (ad - fd)) (1e-5 * max 1.0 (abs fd)) (sprintf "%s: d/d%s autodiff %g vs finite difference %g" family.Name k ad fd)
    g

let reparamTests =
    testList "reparameterization gradients" [
        testCase "Exponential (inverse CDF): d/drate E[z²] = −4/rate³" <| fun () ->
            let g = reparamCheck Family.exponential (Map [ "rate", 1.5 ]) (fun z -> z * z)
            // exact: E z² = 2/rate²; the pathwise estimate is unbiased
            let key = Rng.key 99UL
            let exact = -4.0 / (1.5 ** 3.0)
            // the per-draw gradient is −2z²/rate; its sd gives the tolerance
            let z = Family.exponential.Sample key [| 4000 |] (Map [ "rate", Tensor.ofArray [| 1.5 |] ]) |> Tensor.toArray
            let m, se = meanSe (z |> Array.map (fun v -> -2.0 * v * v / 1.5))
            Expect.floatClose { absolute = 1e-9; relative = 1e-9 } (Tensor.toScalar g.["rate"]) m "pathwise = mean per-draw gradient"
            Expect.isLessThan (abs (m - exact)) (5.0 * se) (sprintf "pathwise %g vs exact %g ± %g" m exact se)
        testCase "Gumbel (inverse CDF)" <| fun () ->
            reparamCheck Family.gumbel (Map [ "loc", 0.3; "scale", 0.8 ]) (fun z -> Tensor.tanh z) |> ignore
        testCase "Weibull (inverse CDF), also in the concentration" <| fun () ->
            reparamCheck Family.weibull (Map [ "scale", 1.2; "concentration", 1.7 ]) (fun z -> z * z) |> ignore
        testCase "Kumaraswamy (inverse CDF)" <| fun () ->
            reparamCheck Family.kumaraswamy (Map [ "a", 2.0; "b", 3.0 ]) (fun z -> (z - 0.3) * (z - 0.3)) |> ignore
        testCase "Cauchy (inverse CDF)" <| fun () ->
            reparamCheck Family.cauchy (Map [ "loc", 0.5; "scale", 2.0 ]) (fun z -> Tensor.tanh z) |> ignore
        testCase "LogNormal = exp(Normal) (composed): d/dloc E[z] = E[z]" <| fun () ->
            let g = reparamCheck Family.logNormal (Map [ "loc", 0.2; "scale", 0.5 ]) id
            let exact = exp (0.2 + 0.125)
            Expect.isLessThan (abs (Tensor.toScalar g.["loc"] - exact)) (0.05 * exact) "d/dloc E[exp(x)] ≈ exp(μ + σ²/2)"
        testCase "LogitNormal = sigmoid(Normal) (composed)" <| fun () ->
            reparamCheck Family.logitNormal (Map [ "loc", -0.4; "scale", 1.3 ]) (fun z -> z * z) |> ignore
        testCase "composed log-density integrates to one (LogitNormal on a grid)" <| fun () ->
            let grid = Tensor.linspace 1e-6 (1.0 - 1e-6) 200_001
            let lp = Family.logitNormal.LogProb (Map [ "loc", s -0.4; "scale", s 1.3 ]) grid |> Tensor.toArray
            let h = (1.0 - 2e-6) / 200_000.0
            let total = lp |> Array.sumBy exp |> fun v -> v * h
            Expect.floatClose { absolute = 1e-4; relative = 0.0 } total 1.0 "∫ q = 1"
        testCase "estimators are selected from the distribution" <| fun () ->
            let probe = Map [ "loc", s 0.0; "scale", s 1.0; "logits", s 0.0 ]
            Expect.equal (Family.normal.Estimator probe) GradientEstimator.LocationScale "Normal"
            Expect.equal (Family.gumbel.Estimator probe) GradientEstimator.InverseCdf "Gumbel"
            Expect.equal (Family.logNormal.Estimator probe) GradientEstimator.Composed "LogNormal"
            Expect.equal (Family.bernoulli.Estimator probe) GradientEstimator.Reinforce "Bernoulli"
            let ofNormal = Family.ofDistribution "N" [ "loc"; "scale" ] (fun p -> Normal (p.["loc"], p.["scale"]))
            let ofGamma = Family.ofDistribution "G" [ "loc"; "scale" ] (fun p -> Gamma (p.["scale"], p.["scale"]))
            Expect.equal (ofNormal.Estimator probe) GradientEstimator.Pathwise "library Normal has rsample"
            Expect.equal (ofGamma.Estimator probe) GradientEstimator.Reinforce "library Gamma has none"
    ]

// ---- REINFORCE: unbiased against the exact gradient of a tiny discrete-latent model ----

let private tinyEngine (prior: AevbPrior) (nSamples: int) =
    let enc = Nn.ofFunctions (fun _ -> Map [ "a", s 0.4 ], Map.empty) (fun p st x _ ->
                Map [ "logits", p.["a"] * Tensor.ones [| x.Shape.[0]; 1 |] ], st)
    let dec = Nn.ofFunctions (fun _ -> Map [ "w", s 1.5; "c", s -0.2 ], Map.empty) (fun p st z _ ->
                Map [ "loc", z * p.["w"] + p.["c"]; "scale", Tensor.onesLike z ], st)
    Aevb.create 1 1 enc dec prior Family.normal Family.bernoulli (Optimizer.AdamDefault 1e-3) nSamples 1.0

/// The exact loss Σ_z q(z) (−log N(x; wz + c, 1)) + KL(q ‖ Bernoulli(0.5)) summed over rows, by enumeration.
let private exactLoss (x: float[]) (a: Tensor) (w: Tensor) (c: Tensor) =
    let q1 = Tensor.sigmoid a
    let nll (z: float) = x |> Array.map (fun xi -> 0.5 * Tensor.square (xi - (w * z + c)) + 0.5 * log (2.0 * Math.PI)) |> Array.reduce (+)
    let kl = q1 * Tensor.log (2.0 * q1) + (1.0 - q1) * Tensor.log (2.0 * (1.0 - q1))
    q1 * nll 1.0 + (1.0 - q1) * nll 0.0 + float x.Length * kl

let private reinforceUnbiased (prior: AevbPrior) =
    let x = [| 0.7; 1.9 |]
    let xt = Tensor.create [| 2; 1 |] x
    let e = tinyEngine prior 200
    let st = { Aevb.init e (Rng.key 1UL) with Baseline = 1.3 }   // any baseline keeps it unbiased
    let g = Autodiff.gradN (fun ts -> exactLoss x ts.[0] ts.[1] ts.[2]) [| s 0.4; s 1.5; s -0.2 |] |> Array.map Tensor.toScalar
    let reps = Array.init 40 (fun i -> Aevb.gradient e (Rng.key (uint64 (100 + i))) st xt)
    let comps =
        [| "a", (fun (ge: Map<string, Tensor>, _: Map<string, Tensor>) -> Tensor.toScalar ge.["a"]), g.[0]
           "w", (fun (_, gd: Map<string, Tensor>) -> Tensor.toScalar gd.["w"]), g.[1]
           "c", (fun (_, gd: Map<string, Tensor>) -> Tensor.toScalar gd.["c"]), g.[2] |]
    for name, pick, exact in comps do
        let m, se = meanSe (reps |> Array.map pick)
        Expect.isLessThan (abs (m - exact)) (5.0 * se + 1e-9) (sprintf "d/d%s: REINFORCE %g ± %g vs exact %g" name m se exact)

let reinforceTests =
    testList "REINFORCE" [
        testCase "unbiased with an analytic KL (Bernoulli prior)" <| fun () ->
            reinforceUnbiased (AevbPrior.OfDistribution (BernoulliLogits (s 0.0)))
        testCase "unbiased with a Monte Carlo KL (prior as a log-density)" <| fun () ->
            reinforceUnbiased (AevbPrior.LogDensity ("Bernoulli(0.5)", (fun z -> Tensor.zerosLike z - log 2.0), None))
        testCase "the baseline tracks the learning signal" <| fun () ->
            let e = tinyEngine (AevbPrior.OfDistribution (BernoulliLogits (s 0.0))) 10
            let x = Tensor.create [| 2; 1 |] [| 0.7; 1.9 |]
            let st0 = Aevb.init e (Rng.key 1UL)
            Expect.isTrue (Double.IsNaN st0.Baseline) "no baseline before the first step"
            let st1, info = Aevb.step e (Rng.key 2UL) st0 x
            Expect.isTrue (Double.IsFinite st1.Baseline) "a baseline after the first step"
            // the per-datum cost averages to the nll per datum
            Expect.isLessThan (abs (st1.Baseline - info.Nll / 2.0)) 1e-9 "first baseline = mean cost per datum"
    ]

// ---- a linear-Gaussian VAE recovers the probabilistic-PCA subspace ----

let private orthonormalColumns (a: float[,]) =
    let d = Array2D.length1 a
    let k = Array2D.length2 a
    let q = Array2D.zeroCreate d k
    for j in 0 .. k - 1 do
        let v = Array.init d (fun i -> a.[i, j])
        for p in 0 .. j - 1 do
            let dot = Array.init d (fun i -> v.[i] * q.[i, p]) |> Array.sum
            for i in 0 .. d - 1 do v.[i] <- v.[i] - dot * q.[i, p]
        let nrm = sqrt (Array.sumBy (fun x -> x * x) v)
        for i in 0 .. d - 1 do q.[i, j] <- v.[i] / nrm
    q

let ppcaTests =
    testList "linear-Gaussian VAE" [
        testCase "recovers the PPCA subspace" <| fun () ->
            let d, l, n = 5, 2, 600
            let wTrue = Tensor.create [| l; d |] [| 2.0; 1.0; 0.0; -1.0; 0.5;   0.0; 1.5; -2.0; 1.0; 0.0 |]
            let z = Rng.normal (Rng.key 3UL) [| n; l |]
            let x = Tensor.matmul z wTrue + 0.1 * Rng.normal (Rng.key 4UL) [| n; d |]
            let spec heads input = { MlpSpec.Create(input, [], heads) with Dtype = Float64; Init = WeightInit.GlorotNormal }
            let enc = Nn.mlp (spec [ Nn.head "loc" l Activations.identity; Nn.head "scale" l Activations.softplus ] d)
            let dec = Nn.mlp (spec [ Nn.head "loc" d Activations.identity; Nn.head "scale" d Activations.softplus ] l)
            let e = Aevb.create l d enc dec AevbPrior.UnitNormal Family.normal Family.normal (Optimizer.AdamDefault 0.03) 1 1.0
            let r = Aevb.run e (Rng.key 5UL) x (AevbRunOptions.Create(150, 100))
            let wDec = r.State.DecParams.["head.loc.w"] |> Tensor.toArray2D   // (l, d)
            let qTrue = orthonormalColumns (Tensor.toArray2D (Tensor.transpose wTrue))
            let qDec = orthonormalColumns (Array2D.init d l (fun i j -> wDec.[j, i]))
            // singular values of Q_trueᵀ Q_dec are the cosines of the principal angles
            let m = Array2D.init l l (fun i j -> Seq.sum (seq { for k in 0 .. d - 1 -> qTrue.[k, i] * qDec.[k, j] }))
            let a, b, c, dd = m.[0, 0], m.[0, 1], m.[1, 0], m.[1, 1]
            let t = a * a + b * b + c * c + dd * dd
            let det = a * dd - b * c
            let smallest = sqrt ((t - sqrt (max 0.0 (t * t - 4.0 * det * det))) / 2.0)
            Expect.isGreaterThan smallest 0.99 (sprintf "cosine of the largest principal angle %g" smallest)
    ]

// ---- engine: shapes, key mismatch, save/load, networks ----

let private smallVae (prior: AevbPrior) =
    let enc = Nn.mlp { MlpSpec.Create(6, [ 8 ], [ Nn.head "loc" 2 Activations.identity; Nn.head "scale" 2 Activations.halfExp ]) with Dtype = Float64 }
    let dec = Nn.mlp { MlpSpec.Create(2, [ 8 ], [ Nn.head "logits" 6 Activations.identity ]) with Dtype = Float64 }
    Aevb.create 2 6 enc dec prior Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 3 1.0

let engineTests =
    testList "AEVB engine" [
        testCase "encode, decode, reconstruct and generate shapes" <| fun () ->
            let e = smallVae AevbPrior.UnitNormal
            let st = Aevb.init e (Rng.key 1UL)
            let x = Tensor.cast Float64 (Tensor.gtScalar (Rng.uniform (Rng.key 2UL) [| 5; 6 |]) 0.5)
            let st, info = Aevb.step e (Rng.key 3UL) st x
            Expect.isTrue (Double.IsFinite info.Loss) "finite loss"
            Expect.floatClose Accuracy.high info.Loss (info.Nll + info.Kl) "loss = nll + kl"
            Expect.equal (Aevb.encode e (Rng.key 4UL) st x 7).Shape [| 7; 5; 2 |] "encode (n, B, latent)"
            Expect.equal (Aevb.encodeMean e st x).Shape [| 5; 2 |] "encodeMean"
            Expect.equal (Aevb.decode e st (Tensor.zeros [| 4; 2 |])).Shape [| 4; 6 |] "decode"
            Expect.equal (Aevb.decode e st (Tensor.zeros [| 3; 4; 2 |])).Shape [| 3; 4; 6 |] "decode of (S, B, latent)"
            Expect.equal (Aevb.reconstruct e st x).Shape [| 5; 6 |] "reconstruct"
            let g = Aevb.generate e (Rng.key 5UL) st 9 false
            Expect.equal g.Shape [| 9; 6 |] "generate"
            let vals = Tensor.toArray g |> Array.distinct |> Array.sort
            Expect.isTrue (vals |> Array.forall (fun v -> v = 0.0 || v = 1.0)) "Bernoulli draws are 0/1"
            Expect.isGreaterThan (Tensor.toArray g |> Array.distinct).Length 1 "independent noise per pixel, not one shared value"
            let gm = Aevb.generate e (Rng.key 5UL) st 9 true |> Tensor.toArray
            Expect.isTrue (gm |> Array.forall (fun v -> v > 0.0 && v < 1.0)) "the mean of a Bernoulli decoder is a probability"
        testCase "generate respects a configured prior" <| fun () ->
            let e = smallVae (AevbPrior.OfDistribution (Normal (s 5.0, s 0.01)))
            let st = Aevb.init e (Rng.key 1UL)
            let z = Aevb.samplePrior e (Rng.key 2UL) st 100 |> Tensor.toArray
            Expect.isLessThan (abs (Array.average z - 5.0)) 0.01 "draws from N(5, 0.01²)"
        testCase "encoder key mismatch is raised at init, naming expected and given keys" <| fun () ->
            let enc = Nn.mlp { MlpSpec.Create(6, [ 4 ], [ Nn.head "mu" 2 Activations.identity; Nn.head "sigma" 2 Activations.softplus ]) with Dtype = Float64 }
            let dec = Nn.mlp { MlpSpec.Create(2, [ 4 ], [ Nn.head "logits" 6 Activations.identity ]) with Dtype = Float64 }
            let e = Aevb.create 2 6 enc dec AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 1 1.0
            let msg = argError (fun () -> Aevb.init e (Rng.key 1UL) |> ignore)
            for word in [ "encoder"; "mu"; "sigma"; "loc"; "scale"; "Normal" ] do
                Expect.stringContains msg word "the message names the network, the given and the expected keys"
        testCase "decoder key mismatch is raised at init" <| fun () ->
            let enc = Nn.mlp { MlpSpec.Create(6, [ 4 ], [ Nn.head "loc" 2 Activations.identity; Nn.head "scale" 2 Activations.softplus ]) with Dtype = Float64 }
            let dec = Nn.mlp { MlpSpec.Create(2, [ 4 ], [ Nn.head "probs" 6 Activations.sigmoid ]) with Dtype = Float64 }
            let e = Aevb.create 2 6 enc dec AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 1 1.0
            let msg = argError (fun () -> Aevb.init e (Rng.key 1UL) |> ignore)
            for word in [ "decoder"; "probs"; "logits"; "Bernoulli" ] do Expect.stringContains msg word "named"
        testCase "wrong sizes and settings are refused before any work" <| fun () ->
            let e = smallVae AevbPrior.UnitNormal
            let st = Aevb.init e (Rng.key 1UL)
            Expect.stringContains (argError (fun () -> Aevb.step e (Rng.key 1UL) st (Tensor.zeros [| 4; 5 |]) |> ignore)) "(batch, 6)" "data shape"
            Expect.stringContains (argError (fun () -> Aevb.decode e st (Tensor.zeros [| 4; 3 |]) |> ignore)) "latent dimension 2" "latent shape"
            let enc = Nn.mlp { MlpSpec.Create(6, [ 4 ], [ Nn.head "loc" 3 Activations.identity; Nn.head "scale" 3 Activations.softplus ]) with Dtype = Float64 }
            let e3 = { e with Encoder = enc }
            Expect.stringContains (argError (fun () -> Aevb.init e3 (Rng.key 1UL) |> ignore)) "latentDim = 2" "latent size"
            Expect.stringContains (argError (fun () -> Aevb.create 2 6 e.Encoder e.Decoder AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 0 1.0 |> ignore)) "nSamples" "nSamples"
            Expect.stringContains (argError (fun () -> Aevb.create 2 6 e.Encoder e.Decoder AevbPrior.UnitNormal Family.bernoulli Family.studentT (Optimizer.AdamDefault 1e-2) 1 1.0 |> ignore)) "studentTFixedDf" "StudentT with learned df as a latent"
        testCase "run: loss decreases, same key same result, cancellation stops" <| fun () ->
            let e = smallVae AevbPrior.UnitNormal
            let x = Tensor.cast Float64 (Tensor.gtScalar (Tensor.matmul (Rng.uniform (Rng.key 2UL) [| 200; 1 |]) (Tensor.ones [| 1; 6 |])) 0.5)
            let r1 = Aevb.run e (Rng.key 9UL) x (AevbRunOptions.Create(15, 50))
            let r2 = Aevb.run e (Rng.key 9UL) x (AevbRunOptions.Create(15, 50))
            Expect.equal r1.Losses r2.Losses "deterministic from the key"
            let first = Array.average r1.Losses.[0 .. 3]
            let last = Array.average r1.Losses.[r1.Losses.Length - 4 ..]
            Expect.isLessThan last (0.7 * first) "the loss decreases"
            use cts = new Threading.CancellationTokenSource()
            let mutable calls = 0
            let path = Path.Combine(Path.GetTempPath(), sprintf "aevb-cancel-%d.ckpt" (Random.Shared.Next()))
            let ctx = { RunContext.Quiet with OnProgress = Some (fun _ -> calls <- calls + 1; if calls = 3 then cts.Cancel()); ProgressEvery = 1
                                              Cancellation = cts.Token; Checkpoint = Some (CheckpointPolicy.Every(path, 1000)) }
            Expect.throwsT<OperationCanceledException> (fun () -> Aevb.trainIn ctx ignore e (Rng.key 9UL) x (AevbRunOptions.Create(50, 50)) |> ignore) "cancelled"
            // the checkpoint written on cancelling holds the steps run
            Expect.equal ((nonNull (Checkpoint.read path).["losses"]) |> Checkpoint.readFloats |> Array.length) 3 "stopped after the step that cancelled"
            File.Delete path
        testCase "importance-weighted bound is at least the ELBO and save/load round-trips" <| fun () ->
            let e = smallVae AevbPrior.UnitNormal
            let x = Tensor.cast Float64 (Tensor.gtScalar (Rng.uniform (Rng.key 2UL) [| 64; 6 |]) 0.5)
            let r = Aevb.run e (Rng.key 9UL) x (AevbRunOptions.Create(10, 32))
            let e1 = Aevb.elbo e (Rng.key 3UL) r.State x 1 1000
            let e50 = Aevb.elbo e (Rng.key 3UL) r.State x 50 16
            Expect.isGreaterThan e50 e1 "IWAE(50) ≥ ELBO"
            let path = Path.Combine(Path.GetTempPath(), sprintf "aevb-%d.json" (Random.Shared.Next()))
            Aevb.save path e (Some (AevbRunOptions.Create(10, 32))) r.State
            let st = Aevb.load e path
            File.Delete path
            Expect.equal (Aevb.reconstruct e st x |> Tensor.toArray) (Aevb.reconstruct e r.State x |> Tensor.toArray) "same reconstructions"
        testCase "the run options are saved with the networks and load as an equal record" <| fun () ->
            let e = smallVae AevbPrior.UnitNormal
            let st = Aevb.init e (Rng.key 1UL)
            let d = AevbRunOptions.Create(10, 32)
            let o: AevbRunOptions = { Epochs = 7; BatchSize = 13; Shuffle = false; EarlyStopping = Some { Window = 4; RelTol = 0.1 + 0.2; Patience = 3 } }
            Expect.isTrue (o.Epochs <> d.Epochs && o.BatchSize <> d.BatchSize && o.Shuffle <> d.Shuffle && o.EarlyStopping <> d.EarlyStopping) "every setting changed"
            let path = Path.Combine(Path.GetTempPath(), sprintf "aevb-opts-%d.json" (Random.Shared.Next()))
            try
                for saved in [ Some o; Some d; None ] do
                    Aevb.save path e saved st
                    Expect.equal (Aevb.savedOptions path) saved "an equal record"
            finally File.Delete path
    ]

let nnTests =
    testList "Nn modules" [
        testCase "dense = x·w + b through Dense.forward, with named parameters" <| fun () ->
            let layer = Nn.dense WeightInit.GlorotUniform Float64 3 2 Activations.identity
            let p, _ = layer.InitLayer (Rng.key 1UL)
            let x = Tensor.create [| 1; 3 |] [| 1.0; 2.0; 3.0 |]
            let y, _ = layer.ApplyLayer p Map.empty x false
            let w = Tensor.toArray2D p.["w"]
            let expected = Array.init 2 (fun j -> 1.0 * w.[0, j] + 2.0 * w.[1, j] + 3.0 * w.[2, j])
            Array.iter2 (fun a b -> Expect.floatClose Accuracy.veryHigh a b "x·w (b starts at zero)") (Tensor.toArray y) expected
        testCase "initializations have their variances" <| fun () ->
            let check init (expectedVar: float) =
                let w = Nn.initWeights init Float64 (Rng.key 7UL) 400 300 |> Tensor.toArray
                let v = w |> Array.averageBy (fun x -> x * x)
                // relative sd of a sample variance of 120,000 values: √(2/n) (normal) or less (uniform)
                Expect.isLessThan (abs (v / expectedVar - 1.0)) 0.02 (sprintf "%A variance %g vs %g" init v expectedVar)
            check WeightInit.GlorotUniform (2.0 / 700.0)
            check WeightInit.GlorotNormal (2.0 / 700.0)
            check WeightInit.LeCunNormal (1.0 / 400.0)
            check WeightInit.LeCunUniform (1.0 / 400.0)
            check WeightInit.HeNormal (2.0 / 400.0)
            check WeightInit.HeUniform (2.0 / 400.0)
            check WeightInit.FanInUniform (1.0 / (3.0 * 400.0))
        testCase "BatchNorm normalizes with batch statistics and updates its state only in train mode" <| fun () ->
            let bn = Nn.batchNorm Float64 2 0.1 1e-5
            let p, st = bn.InitLayer (Rng.key 1UL)
            let x = Tensor.create [| 4; 2 |] [| 1.0; 10.0; 2.0; 20.0; 3.0; 30.0; 4.0; 40.0 |]
            let y, st' = bn.ApplyLayer p st x true
            let col0 = Tensor.toArray y |> Array.indexed |> Array.filter (fun (i, _) -> i % 2 = 0) |> Array.map snd
            Expect.floatClose Accuracy.high (Array.average col0) 0.0 "mean zero"
            Expect.floatClose { absolute = 1e-4; relative = 1e-4 } (col0 |> Array.averageBy (fun v -> v * v)) 1.0 "variance one"
            Expect.floatClose Accuracy.high (Tensor.toArray st'.["mean"]).[0] 0.25 "running mean moved 10 % toward 2.5"
            let _, st'' = bn.ApplyLayer p st' x false
            Expect.equal (Tensor.toArray st''.["mean"]) (Tensor.toArray st'.["mean"]) "eval leaves the state"
        testCase "Dropout is key-driven, scales kept units, and is the identity in eval mode" <| fun () ->
            let d = Nn.dropout 0.5
            let _, st = d.InitLayer (Rng.key 3UL)
            let x = Tensor.ones [| 1000 |]
            let y1, st1 = d.ApplyLayer Map.empty st x true
            let y2, _ = d.ApplyLayer Map.empty st x true
            Expect.equal (Tensor.toArray y1) (Tensor.toArray y2) "same state, same mask"
            let y3, _ = d.ApplyLayer Map.empty st1 x true
            Expect.notEqual (Tensor.toArray y3) (Tensor.toArray y1) "the state moves the key on"
            Expect.isTrue (Tensor.toArray y1 |> Array.forall (fun v -> v = 0.0 || v = 2.0)) "kept units scaled by 2"
            let kept = Tensor.toArray y1 |> Array.filter (fun v -> v > 0.0) |> Array.length
            Expect.isLessThan (abs (float kept - 500.0)) (5.0 * sqrt 250.0) "about half kept"
            let ye, _ = d.ApplyLayer Map.empty st x false
            Expect.equal (Tensor.toArray ye) (Tensor.toArray x) "identity in eval mode"
        testCase "MLP parameter names and head transforms" <| fun () ->
            let m = Nn.mlp { MlpSpec.Create(3, [ 4; 5 ], [ Nn.head "loc" 2 Activations.identity; Nn.head "scale" 2 Activations.softplus ]) with BatchNormAt = [ 0 ]; Dtype = Float64 }
            let p, st = m.Init (Rng.key 1UL)
            Expect.equal (p |> Map.keys |> Seq.toList |> List.sort)
                [ "body.bn0.beta"; "body.bn0.gamma"; "body.hidden0.b"; "body.hidden0.w"; "body.hidden1.b"; "body.hidden1.w"
                  "head.loc.b"; "head.loc.w"; "head.scale.b"; "head.scale.w" ] "names"
            Expect.equal (st |> Map.keys |> Seq.toList |> List.sort) [ "body.bn0.mean"; "body.bn0.var" ] "state"
            let out, _ = m.Apply p st (Rng.normal (Rng.key 2UL) [| 7; 3 |]) false
            Expect.equal out.["loc"].Shape [| 7; 2 |] "loc shape"
            Expect.isTrue (Tensor.toArray out.["scale"] |> Array.forall (fun v -> v > 0.0)) "softplus head is positive"
            Expect.equal (Nn.parameterCount p) (3 * 4 + 4 + 4 + 4 + 4 * 5 + 5 + 2 * (5 * 2 + 2)) "count"
        testCase "IDX reader (gzip)" <| fun () ->
            let path = Path.Combine(Path.GetTempPath(), sprintf "idx-%d.gz" (Random.Shared.Next()))
            do
                use f = File.Create path
                use gz = new Compression.GZipStream(f, Compression.CompressionLevel.Fastest)
                gz.Write([| 0uy; 0uy; 8uy; 3uy; 0uy; 0uy; 0uy; 2uy; 0uy; 0uy; 0uy; 1uy; 0uy; 0uy; 0uy; 2uy; 0uy; 255uy; 51uy; 102uy |], 0, 20)
            let t = Idx.readImages path
            File.Delete path
            Expect.equal t.Shape [| 2; 2 |] "(N, rows·cols)"
            Expect.equal (Tensor.toArrayF32 t) [| 0.0f; 1.0f; 0.2f; 0.4f |] "scaled to [0, 1]"
    ]

// ---- the fast path: float32 training against the float64 reference ----

let private smallVaeOf (dt: Dtype) =
    let enc = Nn.mlp { MlpSpec.Create(6, [ 8 ], [ Nn.head "loc" 2 Activations.identity; Nn.head "scale" 2 Activations.halfExp ]) with Dtype = dt }
    let dec = Nn.mlp { MlpSpec.Create(2, [ 8 ], [ Nn.head "logits" 6 Activations.identity ]) with Dtype = dt }
    Aevb.create 2 6 enc dec AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 2 1.0

let fastPathTests =
    testList "AEVB float32 fast path" [
        testCase "a float32 step has the float64 step's loss and gradients to float32 tolerance" <| fun () ->
            // Same initial draws (weights are drawn in float64 and cast), same key, same batch: the float32
            // kernels (native element-wise ops, float32 GEMMs) must reproduce the float64 tape.
            let x = Tensor.gtScalar (Rng.uniform (Rng.key 2UL) [| 16; 6 |]) 0.5 |> Tensor.cast Float64
            let run (dt: Dtype) =
                let e = smallVaeOf dt
                let st = Aevb.init e (Rng.key 1UL)
                let _, info = Aevb.step e (Rng.key 3UL) st x
                let gEnc, gDec = Aevb.gradient e (Rng.key 3UL) st x
                info, gEnc, gDec
            let i64, ge64, gd64 = run Float64
            let i32, ge32, gd32 = run Float32
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } i32.Loss i64.Loss "loss"
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } i32.Kl i64.Kl "KL"
            for g64, g32 in [ ge64, ge32; gd64, gd32 ] do
                Expect.equal (g32 |> Map.keys |> List.ofSeq) (g64 |> Map.keys |> List.ofSeq) "same parameters"
                for KeyValue (k, t64) in g64 do
                    let a = Tensor.toArray t64
                    let b = Tensor.toArray g32.[k]
                    Expect.equal g32.[k].Dtype Float32 (sprintf "%s stays float32" k)
                    let scale = a |> Array.map abs |> Array.max |> max 1e-3
                    Array.iteri2 (fun i u v ->
                        if abs (u - v) > 1e-5 * scale then failtestf "%s[%d]: float64 gradient %g, float32 %g" k i u v) a b
        testCase "float32 Adam equals the float64 per-element formula bit for bit" <| fun () ->
            // Adam (Kingma and Ba) per element in float64, moments and parameters stored as float32: the
            // SIMD update must give the same bits (1037 elements: vector blocks and a scalar tail; 100,003:
            // blocks updated in parallel).
          for n in [ 1037; 100_003 ] do
            let r = Random(3)
            let p0 = Array.init n (fun _ -> float32 (r.NextDouble() * 2.0 - 1.0))
            let grads = Array.init 3 (fun _ -> Array.init n (fun _ -> float32 (r.NextDouble() * 4.0 - 2.0)))
            let lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
            let p = Array.copy p0
            let m = Array.zeroCreate<float32> n
            let v = Array.zeroCreate<float32> n
            for t in 1 .. 3 do
                let c1 = 1.0 - Math.Pow(b1, float t)
                let c2 = 1.0 - Math.Pow(b2, float t)
                for k in 0 .. n - 1 do
                    let g = float grads.[t - 1].[k]
                    let mk = b1 * float m.[k] + (1.0 - b1) * g
                    let vk = b2 * float v.[k] + (1.0 - b2) * g * g
                    m.[k] <- float32 mk
                    v.[k] <- float32 vk
                    p.[k] <- float32 (float p.[k] - (mk / c1) / (sqrt (vk / c2) + eps) * lr)
            let mutable ps = [| Tensor.createF32 [| n |] p0 |]
            let mutable st = Optim.init ps
            for t in 1 .. 3 do
                let ps', st' = Optim.update (Optimizer.AdamDefault lr) st ps [| Tensor.createF32 [| n |] grads.[t - 1] |]
                ps <- ps'
                st <- st'
            let bits (a: float32[]) = a |> Array.map BitConverter.SingleToInt32Bits
            Expect.equal (bits (Tensor.toArrayF32 ps.[0])) (bits p) "parameters"
            Expect.equal (bits (Tensor.toArrayF32 st.First.[0])) (bits m) "first moments"
            Expect.equal (bits (Tensor.toArrayF32 st.Second.[0])) (bits v) "second moments"
    ]

[<Tests>]
let tests = testList "AevbTests" [ klTests; reparamTests; reinforceTests; ppcaTests; engineTests; nnTests; fastPathTests ]
