/// Compiled programs are never silently wrong: a few hundred random small models (every distribution
/// as a likelihood, latents under every common constraint) compiled and compared with the tape on the
/// data they were compiled with, after rebinding to new data, and on several threads at once; masks
/// read from the data (xlogy, one-hots, support checks, a binomial's n) follow rebound data; a branch on
/// a latent's value compiles exactly (the negative binomial's Stirling branch) or falls back naming the read.
module FunctionalBayes.Tests.CompiledDifferentialTests

open System
open System.Threading.Tasks
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors

let private key = Rng.key 5UL
let private potentialOf (m: Model<'T>) = LogDensity.potential key m

let private evaluate = CompiledPotentialTests.evaluate

/// Compiled = tape to 1e-11 (value relative to its size, gradient relative to its largest component, to
/// `gradTol` instead where float32 is involved); where the tape's value is not finite (a value outside the
/// support) the compiled one must be the same.
let private expectAgreeWithin (gradTol: float) (what: string) (compiled: GradientSource) (tape: GradientSource) (q: float[]) =
    let v1, g1 = evaluate compiled q
    let v2, g2 = evaluate tape q
    if not (Double.IsFinite v2) then
        if v1 <> v2 && not (Double.IsNaN v1 && Double.IsNaN v2) then failtestf "%s: compiled value %g, tape %g." what v1 v2
    else
        if abs (v1 - v2) > 1e-11 * max 1.0 (abs v2) then failtestf "%s: compiled value %.17g, tape %.17g." what v1 v2
        let scale = max 1.0 (g2 |> Array.map abs |> Array.max)
        for i in 0 .. q.Length - 1 do
            if abs (g1.[i] - g2.[i]) > gradTol * scale then
                failtestf "%s: gradient component %d: compiled %.17g, tape %.17g." what i g1.[i] g2.[i]

let private expectAgree = expectAgreeWithin 1e-11

let private compiled (what: string) (c: Compilation) =
    match c with
    | Compiled cp -> cp
    | FellBack (why, _) -> failtestf "%s: fell back: %s" what why

// ---- the random models ---------------------------------------------------------------------

/// A latent's prior, by constraint: real, positive, unit interval, an interval, a simplex.
let private latentPriors : (string * (int -> Distribution)) [] =
    [| "normal", (fun k -> Normal (Tensor.zeros [| k |], Tensor.ones [| k |]))
       "halfNormal", (fun k -> HalfNormal (Tensor.ones [| k |]))
       "logNormal", (fun k -> LogNormal (Tensor.zeros [| k |], Tensor.ones [| k |]))
       "exponential", (fun k -> Exponential (Tensor.ones [| k |]))
       "gamma", (fun k -> Gamma (Tensor.full [| k |] 2.0, Tensor.full [| k |] 2.0))
       "beta", (fun k -> Beta (Tensor.full [| k |] 2.0, Tensor.full [| k |] 2.0))
       "uniform", (fun k -> Uniform (Tensor.full [| k |] -2.0, Tensor.full [| k |] 3.0))
       "dirichlet", (fun k -> Dirichlet (Tensor.ones [| k |])) |]

/// A likelihood: the distribution from a linear predictor `lin` (n), a positive value `pos` (n), a
/// probability `prob` (n), logits over 3 classes (n, 3) and a binomial count; and y in its support.
type private Likelihood =
    { Name: string
      Dist: Tensor -> Tensor -> Tensor -> Tensor -> Tensor -> Distribution
      Y: Random -> int -> float[] }

let private likelihoods : Likelihood [] =
    let real (r: Random) n = Array.init n (fun _ -> r.NextDouble() * 4.0 - 2.0)
    let positive (r: Random) n = Array.init n (fun _ -> 0.1 + 3.0 * r.NextDouble())
    let unit (r: Random) n = Array.init n (fun _ -> 0.05 + 0.9 * r.NextDouble())
    // counts with zeros; now and then a large one (the NB's Stirling side is a different branch)
    let counts (r: Random) n = Array.init n (fun _ -> float (if r.NextDouble() < 0.1 then 50 + r.Next 200 else r.Next 4))
    let classes k (r: Random) n = Array.init n (fun _ -> float (r.Next k))
    let upTo (r: Random) n = Array.init n (fun _ -> float (r.Next 6)) // binomial counts <= its n (5 or 6)
    let mk name dist y = { Name = name; Dist = dist; Y = y }
    [| mk "normal" (fun lin pos _ _ _ -> Normal (lin, pos)) real
       mk "studentT" (fun lin pos _ _ _ -> StudentT (pos + 2.0, lin, pos)) real
       mk "cauchy" (fun lin pos _ _ _ -> Cauchy (lin, pos)) real
       mk "laplace" (fun lin pos _ _ _ -> Laplace (lin, pos)) real
       mk "logistic" (fun lin pos _ _ _ -> Logistic (lin, pos)) real
       mk "halfNormal" (fun _ pos _ _ _ -> HalfNormal pos) positive
       mk "halfCauchy" (fun _ pos _ _ _ -> HalfCauchy pos) positive
       mk "logNormal" (fun lin pos _ _ _ -> LogNormal (lin, pos)) positive
       mk "exponential" (fun _ pos _ _ _ -> Exponential pos) positive
       mk "gamma" (fun _ pos prob _ _ -> Gamma (pos + 0.5, prob + 0.2)) positive
       mk "inverseGamma" (fun _ pos prob _ _ -> InverseGamma (pos + 0.5, prob + 0.2)) positive
       mk "beta" (fun _ pos prob _ _ -> Beta (pos + 0.3, prob + 0.3)) unit
       mk "uniform" (fun lin pos _ _ _ -> Uniform (lin - 3.0, pos + 2.0)) real
       mk "bernoulliLogits" (fun lin _ _ _ _ -> BernoulliLogits lin) (classes 2)
       mk "bernoulliProbs" (fun _ _ prob _ _ -> BernoulliProbs prob) (classes 2)
       mk "binomialLogits" (fun lin _ _ _ n -> BinomialLogits (n, lin)) upTo
       mk "binomialProbs" (fun _ _ prob _ n -> BinomialProbs (n, prob)) upTo
       mk "categoricalLogits" (fun _ _ _ logits _ -> CategoricalLogits logits) (classes 3)
       mk "categoricalProbs" (fun _ _ _ logits _ -> CategoricalProbs (Tensor.softmax -1 logits)) (classes 3)
       mk "poisson" (fun _ pos _ _ _ -> Poisson pos) counts
       mk "negativeBinomial" (fun _ pos prob _ _ -> NegativeBinomial (pos, prob * 1e9 + 0.5)) counts
       mk "zeroInflatedPoisson" (fun _ pos prob _ _ -> ZeroInflatedPoisson (prob, pos)) counts
       mk "zeroInflatedNegativeBinomial" (fun _ pos prob _ _ -> ZeroInflatedNegativeBinomial (prob, pos, pos + 1.0)) counts
       mk "orderedLogistic" (fun lin pos _ _ _ -> OrderedLogistic (lin, Tensor.stack -1 [ Tensor.zerosLike pos - 0.5; pos ])) (classes 3) |]

/// How the linear predictor is computed: in float64; in float32 from the float64 latents and data; or with
/// a term picked from c at an index computed from a (an int32 from a latent).
type private Predictor =
    | InFloat64
    | InFloat32
    | IndexFromLatent

/// Model seed: latents a (real, 2), a constrained latent c, the likelihood of y given x (and a count n).
let private randomModel (seed: int) =
    let r = Random(seed)
    let lik = likelihoods.[seed % likelihoods.Length]
    // every likelihood meets each predictor (seed / 24 runs over 0 .. 12)
    let predictor =
        match (seed / likelihoods.Length) % 4 with
        | 1 -> InFloat32
        | 3 -> IndexFromLatent
        | _ -> InFloat64
    let priorName, prior = latentPriors.[r.Next latentPriors.Length]
    let k = 2 + r.Next 2
    let rows = 3 + r.Next 5
    let transform = r.Next 3
    let build (d: Tensor[]) = potentialOf (model {
        let x, nTotal, y = d.[0], d.[1], d.[2]
        let! a = Model.sample "a" (Normal (Tensor.zeros [| 2 |], Tensor.ones [| 2 |]))
        let! c = Model.sample "c" (prior k)
        let a0 = Tensor.narrow 0 0 1 a
        let a1 = Tensor.narrow 0 1 1 a
        let lin =
            match predictor with
            | InFloat64 -> a0 + a1 * x + Tensor.sum c * 0.1
            | InFloat32 ->
                let f32 = Tensor.cast Float32
                Tensor.cast Float64 (f32 a0 + f32 a1 * f32 x + Tensor.sum (f32 c) * 0.1)
            | IndexFromLatent ->
                // an index into c in [0, k) from a0: σ(a0)·k truncated (a count too: its value, no gradient)
                let idx = Tensor.cast Dtype.Int32 (Tensor.clamp 0.0 (float k - 0.5) (Tensor.sigmoid a0 * float k))
                a0 + a1 * x + Tensor.sum (Tensor.indexSelect 0 idx c) * 0.1 + Tensor.cast Float64 idx * 0.05
        let pos =
            match transform with
            | 0 -> Tensor.exp (0.3 * lin)
            | 1 -> Tensor.softplus lin + 0.05
            | _ -> Tensor.sqrt (lin * lin + 0.5)
        let prob = Tensor.sigmoid (lin + Tensor.narrow 0 0 1 c * 0.2)
        let logits = Tensor.stack -1 [ lin; -lin; Tensor.zerosLike lin + Tensor.narrow 0 0 1 c ]
        return! Model.observe "y" (lik.Dist lin pos prob logits nTotal) (Some y) })
    let data (r: Random) =
        [| Tensor.ofArray (Array.init rows (fun _ -> r.NextDouble() * 2.0 - 1.0))
           Tensor.ofArray (Array.init rows (fun _ -> float (5 + r.Next 2)))
           Tensor.ofArray (lik.Y r rows) |]
    sprintf "model %d (%s likelihood, %s latent of %d, %d rows, predictor %A)" seed lik.Name priorName k rows predictor, build, data r, data r, predictor

let private randomPoints (seed: int) (count: int) (dim: int) =
    let r = Random(seed)
    Array.init count (fun _ -> Array.init dim (fun _ -> r.NextDouble() * 2.4 - 1.2))

let ``a few hundred random models: compiled = tape, rebound = tape on new data, threads = one thread`` () =
    for seed in 0 .. 299 do
        let what, build, data1, data2, predictor = randomModel seed
        // float32's add, multiply and short sum round alike in both (float64 then rounded once, or float32
        // kernels), so values agree to 1e-11; the tape rounds the adjoints of float32 values to float32, the
        // program keeps them in float64: 2^-24 ≈ 6e-8 relative a rounding, a few of them: 1e-6
        let expectAgree = expectAgreeWithin (match predictor with
                                             | InFloat32 -> 1e-6
                                             | InFloat64 | IndexFromLatent -> 1e-11)
        let p1 = build data1
        let dim = FlatPosition.dim p1
        let qs = randomPoints seed 3 dim
        let cp = compiled what (Compilation.compileWithData build data1 (FlatPosition.split p1 (ReadOnlySpan qs.[0])))
        for q in qs do
            expectAgree what cp.Source (GradientSource.tape p1) q
        let rebound = cp.Rebind data2
        for q in qs do
            expectAgree (what + ", rebound") rebound (GradientSource.tape (build data2)) q
        if seed % 10 = 0 then
            // evaluators on four threads at once: the single-thread bits
            let single = qs |> Array.map (evaluate rebound)
            let par = Task.WhenAll(Array.init 4 (fun _ -> Task.Run(fun () -> qs |> Array.map (evaluate rebound)))).Result
            for res in par do
                Array.iter2 (fun (v1: float, g1: float[]) (v2, g2) ->
                    if BitConverter.DoubleToInt64Bits v1 <> BitConverter.DoubleToInt64Bits v2 || g1 <> g2 then
                        failtestf "%s: a thread's result differs from one thread's." what) single res

let ``a categorical likelihood rebound to new labels gives the tape's value, not the old labels'`` () =
    let build (d: Tensor[]) = potentialOf (model {
        let! l = Model.sample "l" (Normal (Tensor.zeros [| 3 |], Tensor.ones [| 3 |]))
        return! Model.observe "y" (CategoricalLogits (Tensor.broadcastTo [| 4; 3 |] l)) (Some d.[0]) })
    let y1 = Tensor.ofArray [| 0.0; 1.0; 2.0; 0.0 |]
    let y2 = Tensor.ofArray [| 2.0; 2.0; 1.0; 1.0 |]
    let q = [| 2.0; -1.0; 0.0 |]
    let cp = compiled "categorical" (Compilation.compileWithData build [| y1 |] (FlatPosition.split (build [| y1 |]) (ReadOnlySpan q)))
    let v1, _ = evaluate (cp.Rebind [| y2 |]) q
    let v2, _ = evaluate (GradientSource.tape (build [| y2 |])) q
    let vOld, _ = evaluate (GradientSource.tape (build [| y1 |])) q
    Expect.isGreaterThan (abs (v2 - vOld)) 0.1 "the two label sets give different values"
    Expect.floatClose Accuracy.veryHigh v1 v2 "rebound = tape on the new labels"

let ``a Bernoulli observation outside {0, 1} after rebinding is −∞ as on the tape`` () =
    let build (d: Tensor[]) = potentialOf (model {
        let! l = Model.sample "l" (Normal (Tensor.zeros [| 1 |], Tensor.ones [| 1 |]))
        return! Model.observe "y" (BernoulliLogits (Tensor.broadcastTo [| 3 |] l)) (Some d.[0]) })
    let y1 = Tensor.ofArray [| 0.0; 1.0; 1.0 |]
    let q = [| 0.3 |]
    let cp = compiled "bernoulli" (Compilation.compileWithData build [| y1 |] (FlatPosition.split (build [| y1 |]) (ReadOnlySpan q)))
    let v, _ = evaluate (cp.Rebind [| Tensor.ofArray [| 0.0; 2.0; 1.0 |] |]) q
    Expect.equal v Double.PositiveInfinity "the energy (−log p) of a value outside the support"

let ``the negative binomial's large-φ (Stirling) branch compiles exactly`` () =
    // φ = exp(30·u): about 7e7 at u = 0.6 and 1e13 at u = 1, Stirling's side; 3 at u = 0.04
    let build (d: Tensor[]) = potentialOf (model {
        let! u = Model.sample "u" (Normal (Tensor.zeros [| 1 |], Tensor.ones [| 1 |]))
        let! m = Model.sample "m" (Normal (Tensor.zeros [| 1 |], Tensor.ones [| 1 |]))
        return! Model.observe "y" (NegativeBinomial (Tensor.broadcastTo [| 4 |] (Tensor.exp m), Tensor.broadcastTo [| 4 |] (Tensor.exp (30.0 * u)))) (Some d.[0]) })
    let y = Tensor.ofArray [| 0.0; 3.0; 1.0; 7.0 |]
    let p = build [| y |]
    let cp = compiled "negative binomial" (Compilation.compileWithData build [| y |] (FlatPosition.split p (ReadOnlySpan [| 0.04; 0.2 |])))
    for u in [ 0.04; 0.6; 1.0 ] do
        expectAgree (sprintf "NB at u = %g" u) cp.Source (GradientSource.tape p) [| u; 0.2 |]

let ``a host branch on a latent value falls back, naming the read and where`` () =
    let m = model {
        let! a = Model.sample "a" (Normal (Tensor.zeros [| 1 |], Tensor.ones [| 1 |]))
        // both trace points may take the same side: the read itself is what refuses compilation
        let b = if Tensor.toScalar a > 5.0 then Tensor.exp a else a * a
        do! Model.factor "f" (-(Tensor.sum b)) }
    let p = potentialOf m
    for point in [ 0.5; 0.7 ] do
        match Compilation.compile p [| Tensor.ofArray [| point |] |] with
        | Compiled _ -> failtest "a host branch on a latent must not be compiled"
        | FellBack (why, source) ->
            Expect.stringContains why "on the host" "the reason names the host read"
            Expect.stringContains why "Tensor.toArray" "the reason names the read"
            Expect.stringContains why "CompiledDifferentialTests" "the reason says where"
            Expect.equal source.Kind GradientKind.Tape "the fallback is the tape"

[<Tests>]
let tests =
    testList "compiled differential" [
        testCase "a few hundred random models: compiled = tape, rebound = tape on new data, threads = one thread" ``a few hundred random models: compiled = tape, rebound = tape on new data, threads = one thread``
        testCase "a categorical likelihood rebound to new labels gives the tape's value, not the old labels'" ``a categorical likelihood rebound to new labels gives the tape's value, not the old labels'``
        testCase "a Bernoulli observation outside {0, 1} after rebinding is −∞ as on the tape" ``a Bernoulli observation outside {0, 1} after rebinding is −∞ as on the tape``
        testCase "the negative binomial's large-φ (Stirling) branch compiles exactly" ``the negative binomial's large-φ (Stirling) branch compiles exactly``
        testCase "a host branch on a latent value falls back, naming the read and where" ``a host branch on a latent value falls back, naming the read and where``
    ]
