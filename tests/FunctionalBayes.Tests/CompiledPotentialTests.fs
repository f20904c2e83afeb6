/// The compiled potential against the tape: value and gradient for every layer and link, eight
/// schools, the posteriordb models and a small BNN; fallback for graphs that are not static;
/// rebinding new data; determinism and independent evaluators.
module FunctionalBayes.Tests.CompiledPotentialTests

open System
open System.IO
open System.Text.Json
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.PosteriorDb

// ---- helpers -------------------------------------------------------------------------------

/// Agreement to 1e-12 relative (float64). The value is compared relative to its magnitude; each
/// gradient component relative to the gradient's largest component (a component that is a sum of
/// cancelling terms carries rounding of the size of its terms, not of itself).
let private tol = 1e-12

/// One value and gradient from a fresh evaluator of the source.
let evaluate (s: GradientSource) (q: float[]) =
    let e = s.Create()
    let g = Array.zeroCreate q.Length
    let v = e.Evaluate(ReadOnlySpan q, Span g)
    v, g

/// Value and gradient (v1, g1) against (v2, g2) by the rule above, to `within` instead of `tol`.
let private expectSame (within: float) (what: string) (v1: float, g1: float[]) (v2: float, g2: float[]) =
    if not (Double.IsFinite v2) then failtestf "%s: the tape's value is %g at the test point; choose another point." what v2
    if abs (v1 - v2) > within * max 1.0 (abs v2) then
        failtestf "%s: compiled value %.17g, tape %.17g (difference %g)." what v1 v2 (v1 - v2)
    let scale = max 1.0 (g2 |> Array.map abs |> Array.max)
    for i in 0 .. g2.Length - 1 do
        if abs (g1.[i] - g2.[i]) > within * scale then
            failtestf "%s: gradient component %d: compiled %.17g, tape %.17g (largest component %g)." what i g1.[i] g2.[i] scale

let private expectAgreeWithin (within: float) (what: string) (compiled: GradientSource) (tape: GradientSource) (q: float[]) =
    expectSame within what (evaluate compiled q) (evaluate tape q)

let private expectAgree (what: string) (compiled: GradientSource) (tape: GradientSource) (q: float[]) =
    expectAgreeWithin tol what compiled tape q

/// Random unconstrained points in (-r, r), fixed seed.
let private points (seed: int) (count: int) (dim: int) (r: float) =
    let rng = Random(seed)
    Array.init count (fun _ -> Array.init dim (fun _ -> (rng.NextDouble() * 2.0 - 1.0) * r))

/// Compiles the model built on `data`, expects it compiled, and compares with the tape at three points
/// (to `within`).
let private checkModelWithin (within: float) (name: string) (build: Tensor[] -> Potential) (data: Tensor[]) =
    let p = build data
    let dim = FlatPosition.dim p
    let qs = points (name.GetHashCode() &&& 0xffff) 3 dim 1.5
    let at0 = FlatPosition.split p (ReadOnlySpan qs.[0])
    match Compilation.compileWithData build data at0 with
    | FellBack (why, _) -> failtestf "%s: expected a compiled program, fell back: %s" name why
    | Compiled cp ->
        Expect.equal cp.Source.Dim dim (name + ": dimension")
        for q in qs do
            expectAgreeWithin within name cp.Source (GradientSource.tape p) q
        cp

let private checkModel (name: string) (build: Tensor[] -> Potential) (data: Tensor[]) = checkModelWithin tol name build data

/// f raises an ArgumentException whose message contains every fragment.
let private expectArgumentError (f: unit -> unit) (fragments: string list) =
    let msg =
        try f (); failtest "expected an ArgumentException"
        with :? ArgumentException as ex -> ex.Message
    for fr in fragments do
        Expect.stringContains msg fr "the message says what is wrong"

let private rng (seed: int) = Random(seed)
let private normalArray (r: Random) (n: int) =
    Array.init n (fun _ -> sqrt (-2.0 * log (1.0 - r.NextDouble())) * cos (2.0 * Math.PI * r.NextDouble()))
let private matrix (r: Random) (n: int) (d: int) = Tensor.create [| n; d |] (normalArray r (n * d))
let private key = Rng.key 11UL
let private potentialOf (m: Model<'T>) = LogDensity.potential key m

// ---- data for layers and links -------------------------------------------------------------

let private n = 12
let private x = matrix (rng 1) n 3
let private z = matrix (rng 2) n 2
let private ids = Tensor.ofInts (Array.init n (fun i -> (i * 7) % 4))
let private yReal = Tensor.ofArray (normalArray (rng 3) n)

/// Each layer with a Gaussian link on real y; data tensors are inputs [x; z; ids; y].
let private layerCases : (string * (Tensor[] -> Model<Tensor>)) list =
    let g (mu: Tensor) (d: Tensor[]) = Links.gaussian "y" mu (Some d.[3])
    [ "adaptive", fun d -> model { let! mu = Layers.adaptive "x" d.[0] in return! g mu d }
      "fixedPrior", fun d -> model { let! mu = Layers.fixedPrior "x" d.[0] in return! g mu d }
      "intercept", fun d -> model { let! b = Layers.intercept "b" in return! g (b + Tensor.zeros [| n; 1 |]) d }
      "fm", fun d -> model { let! mu = Layers.fm "fm" d.[0] 2 in return! g mu d }
      "fm3", fun d -> model { let! mu = Layers.fm3 "fm3" d.[0] 2 in return! g mu d }
      "lowRankInteraction", fun d -> model { let! mu = Layers.lowRankInteraction "lri" d.[0] d.[1] 2 in return! g mu d }
      "interaction", fun d -> model { let! mu = Layers.interaction "int" d.[0] d.[1] in return! g mu d }
      "bilinear", fun d -> model { let! mu = Layers.bilinear "bil" d.[0] d.[1] in return! g mu d }
      "lowRankBilinear", fun d -> model { let! mu = Layers.lowRankBilinear "lrb" d.[0] d.[1] 2 in return! g mu d }
      "embedding", fun d -> model { let! e = Layers.embedding "emb" d.[2] 4 2 in return! g (Tensor.sumAxes [| 1 |] true e) d }
      "randomEffects", fun d -> model { let! mu = Layers.randomEffects "re" d.[2] 4 in return! g mu d }
      "randomWalk", fun d -> model { let! e = Layers.randomWalk "rw" d.[2] 4 1 in return! g e d }
      "randomSlopes", fun d -> model { let! mu = Layers.randomSlopes "rs" (Tensor.narrow 1 0 1 d.[0]) d.[2] 4 in return! g mu d }
      "ar1", fun d -> model { let! mu = Layers.ar1 "ar" d.[2] 4 in return! g mu d }
      "fixedEffects", fun d -> model { let! mu = Layers.fixedEffects "fe" d.[2] 4 in return! g mu d }
      "horseshoe", fun d -> model { let! mu = Layers.horseshoe "hs" d.[0] in return! g mu d }
      "spikeAndSlab", fun d -> model { let! mu = Layers.spikeAndSlab "ss" d.[0] in return! g mu d }
      "horseshoeInteraction", fun d -> model { let! mu = Layers.horseshoeInteraction "hsi" d.[0] in return! g mu d }
      "pspline", fun d -> model { let! mu = Layers.pspline "ps" (Tensor.narrow 1 0 1 d.[0]) [| -3.0; -2.0; -1.0; 0.0; 1.0; 2.0; 3.0 |] in return! g mu d }
      "hsgp", fun d -> model { let! mu = Layers.hsgp "gp" (Tensor.narrow 1 0 1 d.[0]) 4.0 6 in return! g mu d }
      "attention", fun d -> model { let! mu = Layers.attention "att" d.[0] in return! g mu d }
      "mixture", fun d -> model { let! mu = Layers.mixture "mix" d.[0] in return! g mu d } ]

/// Each link on an adaptive predictor, with y in the link's support.
let private linkCases : (string * Tensor * (string -> Tensor -> Tensor option -> Model<Tensor>)) list =
    let r = rng 4
    let u () = r.NextDouble()
    let counts = Tensor.ofArray (Array.init n (fun i -> float ((i * 5) % 4)))
    [ "gaussian", yReal, Links.gaussian
      "lognormal", Tensor.ofArray (Array.init n (fun _ -> 0.2 + 2.0 * u ())), Links.lognormal
      "studentT", yReal, Links.studentT
      "logit", Tensor.ofArray (Array.init n (fun i -> float (i % 2))), Links.logit
      "poisson", counts, Links.poisson
      // the negative binomial's mean is ŷ itself (identity link): a positive predictor
      "negativeBinomial", counts, (fun name mu y -> Links.negativeBinomial name (Tensor.softplus mu) y)
      "ordinal", Tensor.ofArray (Array.init n (fun i -> float (i % 3))), Links.ordinal 3
      "zeroInflatedPoisson", counts, Links.zeroInflatedPoisson
      "zeroInflatedNegativeBinomial", counts, Links.zeroInflatedNegativeBinomial
      "beta", Tensor.ofArray (Array.init n (fun _ -> 0.05 + 0.9 * u ())), Links.beta
      "gamma", Tensor.ofArray (Array.init n (fun _ -> 0.2 + 2.0 * u ())), Links.gamma
      "exponential", Tensor.ofArray (Array.init n (fun _ -> 0.2 + 2.0 * u ())), Links.exponential ]

// ---- models written as a user writes them --------------------------------------------------

let private eightSchools (y: Tensor) (sigma: Tensor) = model {
    let! thetaTrans = Model.sample "theta_trans" (Dist.normal (Tensor.zeros [| 8 |]) (Tensor.ones [| 8 |]))
    let! mu = Model.sample "mu" (Dist.normal (Tensor.scalar 0.0) (Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (Dist.halfCauchy (Tensor.scalar 5.0))
    return! Model.observe "y" (Dist.normal (thetaTrans * tau + mu) sigma) (Some y)
}

/// low_dim_gauss_mix as posteriordb writes it: an ordered location pair, two scales and a weight, on data y.
let private normalMixture (y: Tensor) = model {
    let! mu = Model.sample "mu" (Dist.restrict Constraint.OrderedVector (Normal (Tensor.zeros [| 2 |], Tensor.full [| 2 |] 2.0)))
    let! sigma = Model.sample "sigma" (Dist.restrict Constraint.Positive (Normal (Tensor.zeros [| 2 |], Tensor.full [| 2 |] 2.0)))
    let! theta = Model.sample "theta" (Beta (Tensor.scalar 5.0, Tensor.scalar 5.0))
    let comp i = Normal (Tensor.select 0 i mu, Tensor.select 0 i sigma)
    let mix = Mixture (Tensor.stack 0 [ Tensor.log theta; Tensor.log1p (-theta) ], [ comp 0; comp 1 ])
    return! Model.observe "y" (Independent (Dist.expand [| y.Shape.[0] |] mix, 1)) (Some y)
}

let private schoolsY = Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
let private schoolsSigma = Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]

/// A 2-5-5-1 tanh network with Normal(0, 1) priors on every weight and bias, y ~ Normal(out, 0.5).
let private bnn (x: Tensor) (y: Tensor) = model {
    let layer (name: string) (nIn: int) (nOut: int) = model {
        let! w = Model.sample (name + "_w") (Dist.normal (Tensor.zeros [| nIn; nOut |]) (Tensor.ones [| nIn; nOut |]))
        let! b = Model.sample (name + "_b") (Dist.normal (Tensor.zeros [| nOut |]) (Tensor.ones [| nOut |]))
        return w, b
    }
    let! w1, b1 = layer "l1" 2 5
    let! w2, b2 = layer "l2" 5 5
    let! w3, b3 = layer "l3" 5 1
    let h = x |> Dense.forward Activations.tanh w1 (Some b1) |> Dense.forward Activations.tanh w2 (Some b2)
    let out = Dense.forward Activations.identity w3 (Some b3) h
    return! Model.observe "y" (Dist.normal (Tensor.reshape [| -1 |] out) (Tensor.scalar 0.5)) (Some y)
}

// ---- posteriordb ---------------------------------------------------------------------------

/// ../shared/posteriordb relative to the checkout (searched upwards from the test binaries).
let private posteriordbDir =
    let rec up (d: DirectoryInfo | null) =
        match d with
        | null -> None
        | d ->
            let c = Path.Combine(d.FullName, "shared", "posteriordb")
            let c2 = Path.Combine(d.FullName, "..", "shared", "posteriordb")
            if Directory.Exists c then Some c
            elif Directory.Exists c2 then Some (Path.GetFullPath c2)
            else up d.Parent
    match up (DirectoryInfo AppContext.BaseDirectory) with
    | Some d -> Some d
    | None -> up (DirectoryInfo Environment.CurrentDirectory)

let private posteriordbData (name: string) =
    match posteriordbDir with
    | None -> failtestf "posteriordb: ../shared/posteriordb not found above %s." AppContext.BaseDirectory
    | Some dir ->
        use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, name + ".json")))
        let data = doc.RootElement.GetProperty("data").Clone()
        let vec (k: string) = data.GetProperty(k).EnumerateArray() |> Seq.map (fun e -> e.GetDouble()) |> Seq.toArray
        let mat (k: string) =
            let rows = data.GetProperty(k).EnumerateArray() |> Seq.map (fun r -> r.EnumerateArray() |> Seq.map (fun e -> e.GetDouble()) |> Seq.toArray) |> Seq.toArray
            Tensor.create [| rows.Length; rows.[0].Length |] (Array.concat rows)
        let int (k: string) = data.GetProperty(k).GetInt32()
        vec, mat, int

let private normal (loc: float) (scale: float) (shape: int[]) = Dist.normal (Tensor.full shape loc) (Tensor.full shape scale)

let private posteriordbCases : (string * (unit -> (Tensor[] -> Potential) * Tensor[])) list =
    let arK () =
        let vec, _, int = posteriordbData "arK-arK"
        let y = vec "y"
        let k = int "K"
        let t = int "T"
        // lags.[t - K, k] = y[t - k - 1] for t = K .. T-1
        let lags = Tensor.create [| t - k; k |] (Array.init ((t - k) * k) (fun i -> y.[(i / k + k) - (i % k) - 1]))
        let target = Tensor.ofArray y.[k ..]
        let m (d: Tensor[]) = model {
            let! alpha = Model.sample "alpha" (normal 0.0 10.0 [||])
            let! beta = Model.sample "beta" (normal 0.0 10.0 [| k |])
            let! sigma = Model.sample "sigma" (Dist.halfCauchy (Tensor.scalar 2.5))
            return! Model.observe "y" (Dist.normal (Tensor.matmul d.[0] beta + alpha) sigma) (Some d.[1])
        }
        (fun d -> potentialOf (m d)), [| lags; target |]
    let earnings () =
        let vec, _, _ = posteriordbData "earnings-logearn_height"
        // Stan's flat priors, written as very wide proper ones (the likelihood dominates)
        let m (d: Tensor[]) = model {
            let! beta = Model.sample "beta" (normal 0.0 1000.0 [| 2 |])
            let! sigma = Model.sample "sigma" (Dist.halfNormal (Tensor.scalar 1000.0))
            let logEarn = Tensor.log d.[0]
            return! Model.observe "log_earn" (Dist.normal (Tensor.select 0 0 beta + Tensor.select 0 1 beta * d.[1]) sigma) (Some logEarn)
        }
        (fun d -> potentialOf (m d)), [| Tensor.ofArray (vec "earn"); Tensor.ofArray (vec "height") |]
    let kidiq () =
        let vec, _, _ = posteriordbData "kidiq-kidscore_momiq"
        let m (d: Tensor[]) = model {
            let! beta = Model.sample "beta" (normal 0.0 1000.0 [| 2 |])
            let! sigma = Model.sample "sigma" (Dist.halfCauchy (Tensor.scalar 2.5))
            return! Model.observe "kid_score" (Dist.normal (Tensor.select 0 0 beta + Tensor.select 0 1 beta * d.[1]) sigma) (Some d.[0])
        }
        (fun d -> potentialOf (m d)), [| Tensor.ofArray (vec "kid_score"); Tensor.ofArray (vec "mom_iq") |]
    let blr () =
        let vec, mat, int = posteriordbData "sblrc-blr"
        let m (d: Tensor[]) = model {
            let! beta = Model.sample "beta" (normal 0.0 10.0 [| int "D" |])
            let! sigma = Model.sample "sigma" (Dist.halfNormal (Tensor.scalar 10.0))
            return! Model.observe "y" (Dist.normal (Tensor.matmul d.[0] beta) sigma) (Some d.[1])
        }
        (fun d -> potentialOf (m d)), [| mat "X"; Tensor.ofArray (vec "y") |]
    let schools () =
        let vec, _, _ = posteriordbData "eight_schools-eight_schools_noncentered"
        (fun (d: Tensor[]) -> potentialOf (eightSchools d.[0] d.[1])), [| Tensor.ofArray (vec "y"); Tensor.ofArray (vec "sigma") |]
    [ "arK", arK; "earnings", earnings; "kidiq", kidiq; "sblrc-blr", blr; "eight_schools_noncentered", schools ]

// ---- every primitive op, unrolled (small) and as a buffer kernel (large) ----------------------

/// Scalar functions of two parameter tensors a, b (shape [r; 3]) and a data matrix d ([r; 3]), each
/// exercising ops the compiler handles; values kept where every op is smooth.
let private opCases : (string * (Tensor -> Tensor -> Tensor -> Tensor)) list =
    let s = Tensor.sum
    [ "neg exp log sqrt", fun a b _ -> s (-(Tensor.exp a) + Tensor.log (Tensor.exp b + 1.0) + Tensor.sqrt (a * a + 1.0))
      "log1p expm1 abs tanh", fun a b _ -> s (Tensor.log1p (Tensor.exp a) * Tensor.expm1 (b * 0.1) + Tensor.abs a * Tensor.tanh b)
      "sigmoid softplus relu", fun a b _ -> s (Tensor.sigmoid a * Tensor.softplus b + Tensor.relu (a - 0.1))
      "lgamma digamma erf", fun a b _ -> s (Tensor.lgamma (Tensor.exp a + 0.5) + Tensor.digamma (Tensor.exp b + 1.0) + Tensor.erf a + Tensor.erfc b)
      "normalCdf, pow, div, max, min", fun a b _ -> s (Tensor.normalCdf a + Tensor.exp a ** (b * 0.3) + a / (Tensor.exp b) + Tensor.maximum a b * Tensor.minimum a (b * 0.5))
      "broadcast against a row and a scalar", fun a b d -> s ((a * Tensor.sumAxes [| 0 |] true b + d) / 3.0 - Tensor.reshape [| 1; 1 |] (Tensor.sum b))
      "reductions over axes, max, logsumexp", fun a b _ -> s (Tensor.sumAxes [| 1 |] false (a * b)) + s (Tensor.maxAxes [| 0 |] false a) + Tensor.logsumexp b
      "matmul with transposes, batched", fun a b d ->
          s (Tensor.matmulT true false a b) + s (Tensor.matmulT false true a d) + s (Tensor.matmul (Tensor.stack 0 [ a; b ]) (Tensor.transpose d |> Tensor.narrow 1 0 2))
      "scalars and tiled rows broadcast through add, sub, mul, div", fun a b d ->
          let c = Tensor.sum b * 0.1
          let row = Tensor.sumAxes [| 0 |] true b
          s (c * a + a * c - a / Tensor.exp c + (row + a) * d - (a - row) + (Tensor.sum a - b) * 0.5 + (d + c))
      "repeated columns, short and long tiled rows through mul, div, sub, max", fun a b _ ->
          let col = Tensor.sumAxes [| 1 |] true b
          let row = Tensor.sumAxes [| 0 |] true b * 0.1
          // [2, 3·rows / 2] against one of its rows: a tile of 6 (4 rows) or 60 (40 rows)
          let wide = Tensor.reshape [| 2; -1 |] a
          s (a / Tensor.exp col + (a - col) * row + Tensor.maximum a col / (Tensor.exp row + 1.0) + Tensor.exp row / (a * a + 1.0))
          + s (wide * Tensor.narrow 0 1 1 (Tensor.reshape [| 2; -1 |] b) - Tensor.narrow 0 0 1 wide / (Tensor.exp wide))
      "small matmuls with 4 to 8 columns, transposed and batched", fun a b d ->
          let w = Tensor.concat 1 [ b; b * 0.5 ]
          let wd = Tensor.concat 1 [ d; Tensor.exp b ]
          s (Tensor.matmulT true false a w) + s (Tensor.matmul a (Tensor.narrow 0 0 3 w))
          + s (Tensor.matmulT false true w (Tensor.narrow 0 0 4 wd))
          + s (Tensor.tanh (Tensor.matmul (Tensor.stack 0 [ a; b ]) (Tensor.narrow 0 0 3 wd)))
      "permute slice pad concat", fun a b _ ->
          s (Tensor.transpose a * Tensor.transpose b) + s (Tensor.narrow 0 1 2 a) + s (Tensor.concat 1 [ a; Tensor.exp b ] * 0.5)
      "gather and scatter-add by data indices", fun a b _ ->
          let rows = a.Shape.[0]
          let idx = Tensor.ofInts (Array.init 5 (fun i -> (i * 3) % rows))
          s (Tensor.indexSelect 0 idx a * 2.0) + s (Tensor.exp (Tensor.scatterAdd 0 rows idx (Tensor.indexSelect 0 idx b) * 0.1))
      "cumsum, where, compare, clamp", fun a b _ ->
          s (Tensor.cumsum 0 a * b) + s (Tensor.where (Tensor.gt a b) (a * a) (b * 3.0)) + s (Tensor.clamp -0.5 0.5 (a + b))
      "where against a constant: a full constant and a broadcast scalar (the support-check paths)", fun a b d ->
          let full = Tensor.zerosLike d - 2.0
          let scalar = Tensor.scalar -3.0
          s (Tensor.where (Tensor.gt d (Tensor.zerosLike d)) (a * b) full) + s (Tensor.where (Tensor.lt a b) (Tensor.exp a) scalar)
      "an op without a derivative read only under stopGradient (trigamma)", fun a b _ ->
          s (Tensor.stopGradient (Tensor.trigamma (Tensor.exp a + 1.0)) * b + a)
      "stopGradient and cast", fun a b _ -> s (Tensor.stopGradient a * b + Tensor.toFloat64 (Tensor.gt a (Tensor.zerosLike a)) * a) ]

let private checkOp (name: string) (f: Tensor -> Tensor -> Tensor -> Tensor) (rows: int) =
    let r = rng (rows + name.Length)
    let a = matrix r rows 3
    let b = matrix r rows 3
    let d = matrix r rows 3
    let a2 = matrix r rows 3
    let g (xs: Tensor[]) = f xs.[0] xs.[1] xs.[2]
    match Compiler.compile g [| a; b |] [| a2; b |] [| d |] with
    | Error why -> failtestf "%s (%d rows): not compiled: %s" name rows why
    | Ok cg ->
        let e = (cg.Bind [| d |]).CreateEvaluator()
        for pt in [ [| a; b |]; [| a2; matrix r rows 3 |] ] do
            let q = Array.append (Tensor.toArray pt.[0]) (Tensor.toArray pt.[1])
            let grad = Array.zeroCreate q.Length
            let v = e.Evaluate(ReadOnlySpan q, Span grad)
            let tv, tg = Autodiff.valueAndGradN (fun ps -> f ps.[0] ps.[1] d) pt
            let tv = Tensor.toScalar tv
            let tgrad = Array.append (Tensor.toArray tg.[0]) (Tensor.toArray tg.[1])
            if abs (v - tv) > tol * max 1.0 (abs tv) then failtestf "%s (%d rows): value %.17g, tape %.17g." name rows v tv
            let scale = max 1.0 (tgrad |> Array.map abs |> Array.max)
            for i in 0 .. q.Length - 1 do
                if abs (grad.[i] - tgrad.[i]) > tol * scale then
                    failtestf "%s (%d rows): gradient %d: compiled %.17g, tape %.17g." name rows i grad.[i] tgrad.[i]

// ---- Cholesky of a latent ------------------------------------------------------------------

/// A batch of symmetric positive-definite matrices M Mᵀ + n·I from M [..., n, n].
let private spd (m: Tensor) =
    let n = m.Shape.[m.Rank - 1]
    Tensor.matmulT false true m m + float n * Tensor.eye n

/// Σ L ∘ W + Σ log diag L for L = cholesky(M Mᵀ + n·I): every element of L reaches the value (W is full, so
/// the adjoint of L's upper triangle, where L is zero, is not zero either).
let private cholLoss (m: Tensor) (w: Tensor) =
    let l = Tensor.cholesky (spd m)
    Tensor.sum (l * w) + Tensor.sum (Tensor.log (Tensor.diagonal l))

/// cholLoss compiled (M the parameter, W data) against the tape at two points, and the compiled gradient
/// against central differences of the compiled value at up to 12 coordinates.
let private checkCholesky (shape: int[]) (seed: int) =
    let r = rng seed
    let size = Array.fold (*) 1 shape
    let gen () = Tensor.create shape (normalArray r size)
    let m1, m2, m3, w = gen (), gen (), gen (), gen ()
    let what = sprintf "cholesky of shape %s" (Shape.format shape)
    match Compiler.compile (fun xs -> cholLoss xs.[0] xs.[1]) [| m1 |] [| m2 |] [| w |] with
    | Error why -> failtestf "%s: not compiled: %s" what why
    | Ok cg ->
        let e = (cg.Bind [| w |]).CreateEvaluator()
        for m in [ m1; m3 ] do
            let q = Tensor.toArray m
            let g = Array.zeroCreate q.Length
            let v = e.Evaluate(ReadOnlySpan q, Span g)
            let tv, tg = Autodiff.valueAndGradN (fun ps -> cholLoss ps.[0] w) [| m |]
            expectSame tol what (v, g) (Tensor.toScalar tv, Tensor.toArray tg.[0])
            // h = 1e-6: truncation (h² times the third derivative) and rounding (ε·|f|/h) both stay below
            // 1e-7 here, while a wrong adjoint is off by O(1)
            let scale = max 1.0 (g |> Array.map abs |> Array.max)
            let scratch = Array.zeroCreate q.Length
            for i in (if q.Length <= 12 then Array.init q.Length id else Array.init 12 (fun k -> (k * 7919) % q.Length)) do
                let at (h: float) =
                    let moved = Array.copy q
                    moved.[i] <- moved.[i] + h
                    e.Evaluate(ReadOnlySpan moved, Span scratch)
                let fd = (at 1e-6 - at -1e-6) / 2e-6
                if abs (fd - g.[i]) > 1e-6 * scale then
                    failtestf "%s: gradient component %d: compiled %.12g, finite differences %.12g." what i g.[i] fd

/// A latent GP with a Poisson log link as gp_pois_regr writes it (f = L f̃), data [x; counts].
let private gpPoisson (d: Tensor[]) = model {
    let x = d.[0]
    let! rho = Model.sample "rho" (Dist.gamma (Tensor.scalar 25.0) (Tensor.scalar 4.0))
    let! alpha = Model.sample "alpha" (Dist.halfNormal (Tensor.scalar 2.0))
    let! fTilde = Model.sample "f_tilde" (normal 0.0 1.0 [| x.Shape.[0] |])
    let l = Tensor.cholesky (Gp.addDiagonal (Tensor.scalar 1e-6) (Gp.expQuad alpha rho x x))
    return! Model.observe "k" (Dist.poissonLog (Tensor.matmul l fTilde)) (Some d.[1])
}

/// A marginal GP (a kernel of α and ρ plus noise) as gp_regr writes it, data [x; y].
let private gpMarginal (kernel: Tensor -> Tensor -> Tensor -> Tensor -> Tensor) (d: Tensor[]) = model {
    let x = d.[0]
    let! rho = Model.sample "rho" (Dist.gamma (Tensor.scalar 25.0) (Tensor.scalar 4.0))
    let! alpha = Model.sample "alpha" (Dist.halfNormal (Tensor.scalar 2.0))
    let! sigma = Model.sample "sigma" (Dist.halfNormal (Tensor.scalar 1.0))
    let l = Tensor.cholesky (Gp.addDiagonal (sigma * sigma) (kernel alpha rho x x))
    return! Model.observe "y" (MultivariateNormal (Tensor.zeros [| x.Shape.[0] |], l)) (Some d.[1])
}

/// GP data on n inputs in [0, 10]: x, counts (for gpPoisson) and y (for gpMarginal).
let private gpData (seed: int) (n: int) =
    let r = rng seed
    let x = Tensor.ofArray (Array.init n (fun _ -> 10.0 * r.NextDouble()))
    let y = normalArray r n
    x, Tensor.ofArray (y |> Array.map (fun v -> floor (3.0 * abs v))), Tensor.ofArray y

/// The GP programs against the tape. Their covariances are less well conditioned than M Mᵀ + n·I (jitter
/// 1e-6 at 12 inputs on [0, 10]); the tape's adjoint (products on the GEMM kernels) and the compiled one
/// (substitutions) round differently, by up to about κ·ε relative.
let private tolGp = 1e-9

// ---- the tests -----------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "CompiledPotentialTests" [
        testList "primitive ops agree with the tape, unrolled and as kernels" [
            for name, f in opCases do
                // 4 rows: straight-line code; 40 rows (120 elements): buffer kernels
                for rows in [ 4; 40 ] ->
                    testCase (sprintf "%s, %d rows" name rows) (fun () -> checkOp name f rows)
        ]
        testList "Cholesky of a latent agrees with the tape and finite differences" [
            for shape in [ [| 1; 1 |]; [| 2; 2 |]; [| 3; 3 |]; [| 3; 5; 5 |]; [| 2; 2; 4; 4 |]; [| 12; 12 |]; [| 20; 20 |]; [| 2; 30; 30 |] ] ->
                testCase (Shape.format shape) (fun () -> checkCholesky shape (Array.sum shape))
        ]
        testCase "Cholesky of a matrix that is not positive definite raises the tape's exception; the evaluator goes on" (fun () ->
            let f (xs: Tensor[]) = Tensor.sum (Tensor.cholesky xs.[0] * Tensor.ofArray [| 1.0; 2.0 |])
            let at (v: float[]) = Tensor.create [| 2; 2 |] v
            match Compiler.compile f [| at [| 2.0; 0.1; 0.1; 2.0 |] |] [| at [| 3.0; 0.2; 0.2; 1.0 |] |] [||] with
            | Error why -> failtestf "not compiled: %s" why
            | Ok cg ->
                let e = (cg.Bind [||]).CreateEvaluator()
                let g = Array.zeroCreate 4
                // the lower triangle is read: pivot 1 is 1 − 2² < 0
                let bad = [| 1.0; 0.0; 2.0; 1.0 |]
                let message (run: unit -> unit) =
                    try run (); failtest "expected an ArgumentException"
                    with :? ArgumentException as ex -> ex.Message
                let compiled = message (fun () -> e.Evaluate(ReadOnlySpan bad, Span g) |> ignore)
                let tape = message (fun () -> Tensor.cholesky (at bad) |> ignore)
                Expect.equal compiled tape "the compiled program raises the tape's message"
                Expect.stringContains compiled "not positive definite" "the message says why"
                let good = [| 3.0; 0.7; 0.4; 2.0 |]
                let v = e.Evaluate(ReadOnlySpan good, Span g)
                let tv, tg = Autodiff.valueAndGradN f [| at good |]
                expectSame tol "after the exception" (v, g) (Tensor.toScalar tv, Tensor.toArray tg.[0]))
        testList "GP models with a Cholesky of a latent compile and agree with the tape" [
            for name, gp, pick in [ "latent GP, Poisson log link", gpPoisson, (fun (x, c, _) -> [| x; c |])
                                    "marginal GP, Matérn 5/2", gpMarginal Gp.matern52, (fun (x, _, y) -> [| x; y |])
                                    "marginal GP, periodic (period 3)", gpMarginal (fun a r -> Gp.periodic a r (Tensor.scalar 3.0)), (fun (x, _, y) -> [| x; y |]) ] ->
                testCase name (fun () ->
                    let build (d: Tensor[]) = potentialOf (gp d)
                    let cp = checkModelWithin tolGp name build (pick (gpData 51 12))
                    Expect.equal cp.Source.Kind (GradientKind.Compiled cp.Instructions) "the kind says compiled"
                    // rebound to new inputs and observations: the tape's answer on them
                    let data2 = pick (gpData 52 12)
                    let rebound = cp.Rebind data2
                    let dim = cp.Source.Dim
                    for q in points 53 3 dim 1.5 do
                        expectAgreeWithin tolGp (name + ", rebound") rebound (GradientSource.tape (build data2)) q
                    // several threads, each its own evaluator: the single-thread bits
                    let qs = points 54 4 dim 1.0
                    let results =
                        Array.Parallel.init 8 (fun i ->
                            let e = rebound.Create()
                            let g = Array.zeroCreate dim
                            let mutable v = 0.0
                            for _ in 1 .. 50 do
                                v <- e.Evaluate(ReadOnlySpan qs.[i % 4], Span g)
                            v, g)
                    for i in 0 .. 7 do
                        let v, g = evaluate rebound qs.[i % 4]
                        Expect.equal (BitConverter.DoubleToInt64Bits (fst results.[i])) (BitConverter.DoubleToInt64Bits v) "thread value bits"
                        Expect.sequenceEqual (snd results.[i] |> Array.map BitConverter.DoubleToInt64Bits) (g |> Array.map BitConverter.DoubleToInt64Bits) "thread gradient bits")
        ]
        testCase "posteriordb's GP models are compiled for the sampler (no tape fallback) and agree with the tape" (fun () ->
            for p in [ Posteriors.gpRegr; Posteriors.gpPoisRegr ] do
                let pot = potentialOf (p.Model (PosteriorData.load p.Name))
                let source = Compilation.auto pot
                match source.Kind with
                | GradientKind.Compiled _ -> ()
                | k -> failtestf "%s: the sampler's gradient source is %A, not compiled" p.Name k
                for q in points 55 3 (FlatPosition.dim pot) 1.5 do
                    expectAgreeWithin tolGp p.Name source (GradientSource.tape pot) q)
        testList "layers with a Gaussian link agree with the tape" [
            for name, m in layerCases ->
                testCase name (fun () ->
                    let build (d: Tensor[]) = potentialOf (m d)
                    let data = [| x; z; ids; yReal |]
                    if name = "pspline" || name = "hsgp" then
                        // the basis is computed from x on the host: a program taking x as an input would keep the
                        // first x's basis, so it falls back naming the read; with the data fixed it compiles
                        let p = build data
                        let q = (points 5 1 (FlatPosition.dim p) 1.5).[0]
                        let at = FlatPosition.split p (ReadOnlySpan q)
                        match Compilation.compileWithData build data at with
                        | Compiled _ -> failtestf "%s: a basis read from the data on the host must not be rebindable" name
                        | FellBack (why, _) -> Expect.stringContains why "Layer" "the reason names where x was read"
                        match Compilation.compile p at with
                        | FellBack (why, _) -> failtestf "%s: expected a compiled program with fixed data, fell back: %s" name why
                        | Compiled cp -> expectAgree name cp.Source (GradientSource.tape p) q
                    else checkModel name build data |> ignore)
        ]
        testList "links on an adaptive predictor agree with the tape" [
            for name, y, link in linkCases ->
                testCase name (fun () ->
                    let m (d: Tensor[]) = model { let! mu = Layers.adaptive "x" d.[0] in return! link "y" mu (Some d.[1]) }
                    checkModel name (fun d -> potentialOf (m d)) [| x; y |] |> ignore)
        ]
        testCase "categorical link on an embedding predictor agrees with the tape" (fun () ->
            let y = Tensor.ofArray (Array.init n (fun i -> float (i % 3)))
            let m (d: Tensor[]) = model {
                let! w = Model.sample "w" (normal 0.0 1.0 [| 3; 3 |])
                return! Links.categorical "y" (Tensor.matmul d.[0] w) (Some d.[1])
            }
            checkModel "categorical" (fun d -> potentialOf (m d)) [| x; y |] |> ignore)
        testCase "hierarchical BNN (per-task tanh layers, Bernoulli logits) agrees with the tape" (fun () ->
            let tasks = 3
            let r = rng 31
            let xs = Tensor.create [| tasks; 7; 2 |] (normalArray r (tasks * 7 * 2))
            let ys = Tensor.create [| tasks; 7 |] (Array.init (tasks * 7) (fun i -> float ((i * 5) % 3 % 2)))
            let hbnn (d: Tensor[]) = model {
                let! logits = HierarchicalMlp.Default.Call("net", d.[0], tasks, [| 5; 6; 1 |], [| 0; 1 |], Activations.tanh)
                return! Model.observe "y" (BernoulliLogits (Tensor.squeeze -1 logits)) (Some d.[1])
            }
            checkModel "hbnn" (fun d -> potentialOf (hbnn d)) [| xs; ys |] |> ignore)
        testCase "half-Student-t and truncated Student-t and gamma priors (df and shape parameters) agree with the tape" (fun () ->
            // Stan: real<lower=0> sigma; sigma ~ student_t(3, 0, 2.5); nu and the gamma's shape are parameters,
            // so the CDFs' shape derivatives (Ops.shapeDerivative) run compiled too
            let r = rng 41
            let y = Tensor.ofArray (normalArray r 10)
            let m (d: Tensor[]) = model {
                let! nu = Model.sample "nu" (Dist.gamma (Tensor.scalar 2.0) (Tensor.scalar 0.5))
                let! sigma = Model.sample "sigma" (Dist.half (Dist.studentT (Tensor.scalar 3.0) (Tensor.scalar 0.0) (Tensor.scalar 2.5)))
                let! tau = Model.sample "tau" (Dist.truncated (Some (Tensor.scalar 0.0)) (Some (Tensor.scalar 10.0)) (Dist.studentT nu (Tensor.scalar 0.5) (Tensor.scalar 2.0)))
                let! shape = Model.sample "shape" (Dist.halfNormal (Tensor.scalar 3.0))
                let! w = Model.sample "w" (Dist.truncated (Some (Tensor.scalar 0.2)) (Some (Tensor.scalar 4.0)) (Dist.gamma (shape + 0.5) (Tensor.scalar 1.5)))
                let! mu = Model.sample "mu" (Dist.normal (Tensor.scalar 0.0) (Tensor.scalar 1.0))
                return! Model.observe "y" (Dist.normal (mu * w) (sigma + tau)) (Some d.[0])
            }
            checkModel "truncated t and gamma" (fun d -> potentialOf (m d)) [| y |] |> ignore)
        testCase "eight schools (non-centered) agrees with the tape" (fun () ->
            let cp = checkModel "eight schools" (fun d -> potentialOf (eightSchools d.[0] d.[1])) [| schoolsY; schoolsSigma |]
            Expect.equal cp.Source.Kind (GradientKind.Compiled cp.Instructions) "the kind says compiled, with its instructions")
        testList "posteriordb models agree with the tape" [
            for name, load in posteriordbCases ->
                testCase name (fun () ->
                    let build, data = load ()
                    checkModel name build data |> ignore)
        ]
        testCase "a two-normal mixture (element-wise log-sum-exp) agrees with the tape, rebound to new y with far points" (fun () ->
            let build (d: Tensor[]) = potentialOf (normalMixture d.[0])
            let y1 = Tensor.ofArray (normalArray (rng 61) 300 |> Array.mapi (fun i v -> if i % 3 = 0 then v - 2.0 else 1.5 * v + 1.0))
            let cp = checkModel "normal mixture" build [| y1 |]
            let y2 = Tensor.ofArray (normalArray (rng 62) 300 |> Array.mapi (fun i v -> if i = 7 then 1e6 elif i = 8 then -1e6 else 2.0 * v))
            let rebound = cp.Rebind [| y2 |]
            for q in points 63 3 cp.Source.Dim 1.5 do
                expectAgree "rebound normal mixture" rebound (GradientSource.tape (build [| y2 |])) q
            let q = (points 64 1 cp.Source.Dim 1.0).[0]
            Expect.notEqual (fst (evaluate rebound q)) (fst (evaluate cp.Source q)) "new data give a new value")
        testCase "a 2-5-5-1 tanh BNN agrees with the tape" (fun () ->
            let r = rng 9
            let xb = matrix r 20 2
            let yb = Tensor.ofArray (normalArray r 20)
            checkModel "bnn" (fun d -> potentialOf (bnn d.[0] d.[1])) [| xb; yb |] |> ignore)
        testCase "new data of the same shapes: the rebound program gives the tape's answer on them" (fun () ->
            let build (d: Tensor[]) = potentialOf (eightSchools d.[0] d.[1])
            let cp = checkModel "eight schools" build [| schoolsY; schoolsSigma |]
            let y2 = Tensor.ofArray [| 1.0; -2.0; 3.0; 0.5; 9.0; -7.0; 2.0; 4.0 |]
            let s2 = Tensor.ofArray [| 3.0; 4.0; 5.0; 6.0; 7.0; 8.0; 9.0; 10.0 |]
            let rebound = cp.Rebind [| y2; s2 |]
            for q in points 21 3 10 1.5 do
                expectAgree "rebound eight schools" rebound (GradientSource.tape (build [| y2; s2 |])) q
            // and the rebound answer differs from the old data's, so the data really are inputs
            let q = (points 22 1 10 1.0).[0]
            Expect.notEqual (fst (evaluate rebound q)) (fst (evaluate cp.Source q)) "new data give a new value"
            // a shape that differs is refused before any work, naming both shapes
            expectArgumentError (fun () -> cp.Rebind [| Tensor.ofArray [| 1.0 |]; s2 |] |> ignore) [ "shape [1]"; "shape [8]" ])
        testCase "rebinding the logistic-regression data (matmul, gemv kernels) gives the tape's answer" (fun () ->
            let m (d: Tensor[]) = model {
                let! beta = Model.sample "beta" (normal 0.0 1.0 [| 3 |])
                return! Model.observe "y" (BernoulliLogits (Tensor.matmul d.[0] beta)) (Some d.[1])
            }
            let build (d: Tensor[]) = potentialOf (m d)
            let r = rng 10
            let x1 = matrix r 100 3
            let y1 = Tensor.ofArray (Array.init 100 (fun i -> float ((i * 3) % 2)))
            let cp = checkModel "logistic" build [| x1; y1 |]
            let x2 = matrix r 100 3
            let y2 = Tensor.ofArray (Array.init 100 (fun i -> float ((i / 3) % 2)))
            for q in points 23 3 3 1.5 do
                expectAgree "rebound logistic" (cp.Rebind [| x2; y2 |]) (GradientSource.tape (build [| x2; y2 |])) q)
        testCase "a host-side branch on a latent value falls back to the tape and says why" (fun () ->
            let m = model {
                let! a = Model.sample "a" (normal 0.0 1.0 [||])
                // the branch reads the latent's value on the host
                let b = if Tensor.toScalar a > 0.0 then Tensor.exp a else a * a
                do! Model.factor "f" (-b)
            }
            let p = potentialOf m
            let point = [| Tensor.scalar 0.5 |]
            match Compilation.compile p point with
            | Compiled _ -> failtest "a branching graph must not be compiled"
            | FellBack (why, source) ->
                Expect.stringContains why "reads values of its inputs (parameters or data) on the host" "the reason names the cause"
                Expect.equal source.Kind GradientKind.Tape "the fallback is the tape"
                expectAgree "fallback" source (GradientSource.tape p) [| 0.5 |])
        testCase "a constant computed from a latent's value falls back" (fun () ->
            let m = model {
                let! a = Model.sample "a" (normal 0.0 1.0 [| 2 |])
                // same ops at every point, but a constant that depends on a's value
                let c = Tensor.ofArray (Tensor.toArray a |> Array.map (fun v -> v * v))
                do! Model.factor "f" (Tensor.sum (a * c))
            }
            match Compilation.compile (potentialOf m) [| Tensor.ofArray [| 0.3; -0.2 |] |] with
            | Compiled _ -> failtest "a value read back from a latent must not be compiled"
            | FellBack (why, _) -> Expect.stringContains why "constant" "the reason names the changed constant")
        testCase "same input, same bits; evaluators of one source share no state" (fun () ->
            let build (d: Tensor[]) = potentialOf (eightSchools d.[0] d.[1])
            let cp = checkModel "eight schools" build [| schoolsY; schoolsSigma |]
            let qs = points 31 2 10 1.0
            let e1 = cp.Source.Create()
            let e2 = cp.Source.Create()
            let g1 = Array.zeroCreate 10
            let g2 = Array.zeroCreate 10
            let v1 = e1.Evaluate(ReadOnlySpan qs.[0], Span g1)
            // e2 works at another point in between; e1 is not disturbed
            e2.Evaluate(ReadOnlySpan qs.[1], Span g2) |> ignore
            let g1b = Array.zeroCreate 10
            let v1b = e1.Evaluate(ReadOnlySpan qs.[0], Span g1b)
            Expect.equal (BitConverter.DoubleToInt64Bits v1b) (BitConverter.DoubleToInt64Bits v1) "same value bits"
            Expect.sequenceEqual (g1b |> Array.map BitConverter.DoubleToInt64Bits) (g1 |> Array.map BitConverter.DoubleToInt64Bits) "same gradient bits"
            // evaluators on several threads at once give the single-thread answers
            let results =
                Array.Parallel.init 8 (fun i ->
                    let e = cp.Source.Create()
                    let g = Array.zeroCreate 10
                    let mutable v = 0.0
                    for _ in 1 .. 200 do
                        v <- e.Evaluate(ReadOnlySpan qs.[i % 2], Span g)
                    v, g)
            for i in 0 .. 7 do
                let v, g = evaluate cp.Source qs.[i % 2]
                Expect.equal (fst results.[i]) v "thread value"
                Expect.sequenceEqual (snd results.[i]) g "thread gradient")
        testCase "a wrong position length is refused with the expected length" (fun () ->
            let cp = checkModel "eight schools" (fun d -> potentialOf (eightSchools d.[0] d.[1])) [| schoolsY; schoolsSigma |]
            let e = cp.Source.Create()
            expectArgumentError (fun () -> e.Evaluate(ReadOnlySpan(Array.zeroCreate 3), Span(Array.zeroCreate 3)) |> ignore) [ "length 10" ])
    ]
