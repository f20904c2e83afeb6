namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// B-splines (BLayers' splines module): clamped knot vectors and the Cox–de Boor basis. The basis is
/// data: it is computed on float arrays and is not differentiated with respect to x.
[<RequireQualifiedAccess>]
module Splines =

    let private checkFinite (fn: string) (what: string) (v: float[]) =
        match v |> Array.tryFindIndex (fun a -> Double.IsNaN a || Double.IsInfinity a) with
        | Some i -> invalidArg what (sprintf "%s: %s must be finite, got %g at element %d." fn what v.[i] i)
        | None -> ()

    /// The q-quantile of sorted data with linear interpolation (NumPy's default).
    let private quantile (sorted: float[]) (q: float) =
        let pos = q * float (sorted.Length - 1)
        let lo = int (floor pos)
        let hi = min (lo + 1) (sorted.Length - 1)
        let g = pos - float lo
        sorted.[lo] + g * (sorted.[hi] - sorted.[lo])

    /// A clamped knot vector: [min]×(degree+1) ++ the quantiles of x at linspace(0, 1, numKnots+2)[1:-1]
    /// ++ [max]×(degree+1); length numKnots + 2(degree+1).
    let makeKnots (x: float[]) (numKnots: int) (degree: int) : float[] =
        if x.Length = 0 then invalidArg "x" "Splines.makeKnots: x is empty."
        checkFinite "Splines.makeKnots" "x" x
        if numKnots < 0 then invalidArg "numKnots" (sprintf "Splines.makeKnots: numKnots must be >= 0, got %d." numKnots)
        if degree < 0 then invalidArg "degree" (sprintf "Splines.makeKnots: degree must be >= 0, got %d." degree)
        let sorted = Array.sort x
        let lo = sorted.[0]
        let hi = sorted.[sorted.Length - 1]
        let inner = Array.init numKnots (fun i -> quantile sorted (float (i + 1) / float (numKnots + 1)))
        Array.concat [ Array.create (degree + 1) lo; inner; Array.create (degree + 1) hi ]

    /// Checks a knot vector for a degree: finite, non-decreasing, at least degree + 2 knots.
    let internal checkKnots (fn: string) (knots: float[]) (degree: int) =
        if degree < 0 then invalidArg "degree" (sprintf "%s: degree must be >= 0, got %d." fn degree)
        checkFinite fn "knots" knots
        if knots.Length < degree + 2 then
            invalidArg "knots" (sprintf "%s: %d knots give no basis function of degree %d (need at least %d)." fn knots.Length degree (degree + 2))
        for i in 1 .. knots.Length - 1 do
            if knots.[i] < knots.[i - 1] then
                invalidArg "knots" (sprintf "%s: knots must be non-decreasing, got %g after %g (index %d)." fn knots.[i] knots.[i - 1] i)

    /// The basis at one point (no checks): len(knots) - degree - 1 values.
    let internal basisRow (knots: float[]) (degree: int) (v: float) : float[] =
        let m = knots.Length
        let nb = m - degree - 1
        if v = knots.[m - 1] then Array.init nb (fun i -> if i = nb - 1 then 1.0 else 0.0)
        else
            let mutable b = Array.init (m - 1) (fun i -> if knots.[i] <= v && v < knots.[i + 1] then 1.0 else 0.0)
            for k in 1 .. degree do
                let prev = b
                b <- Array.init (m - 1 - k) (fun i ->
                    let den1 = knots.[i + k] - knots.[i]
                    let den2 = knots.[i + k + 1] - knots.[i + 1]
                    let left = if den1 = 0.0 then 0.0 else (v - knots.[i]) / den1 * prev.[i]
                    let right = if den2 = 0.0 then 0.0 else (knots.[i + k + 1] - v) / den2 * prev.[i + 1]
                    left + right)
            b

    /// The B-spline basis by Cox–de Boor: x (n,) (or (n, 1)) -> (n, len(knots) - degree - 1). Degree 0 uses
    /// half-open intervals [t_i, t_{i+1}); a zero denominator gives 0; x equal to the last knot is one-hot
    /// on the last basis function; x outside the knots gives a zero row.
    let basis (x: Tensor) (knots: float[]) (degree: int) : Tensor =
        if not (x.Rank = 1 || (x.Rank = 2 && x.Shape.[1] = 1)) then
            invalidArg "x" (sprintf "Splines.basis: x must be a vector (n,) or a column (n, 1), got shape %s." (Shape.format x.Shape))
        checkKnots "Splines.basis" knots degree
        let xs = Tensor.toArray x
        checkFinite "Splines.basis" "x" xs
        let nb = knots.Length - degree - 1
        let data = xs |> Array.collect (basisRow knots degree)
        let b = Tensor.create [| xs.Length; nb |] data
        if x.Dtype.IsFloat then Tensor.cast x.Dtype b else b

    /// The minimum-norm right inverse of the second-difference matrix D ((k-2) × k): R = Dᵀ(DDᵀ)⁻¹, (k, k-2).
    let secondDifferenceRightInverse (k: int) : Tensor =
        if k < 3 then invalidArg "k" (sprintf "Splines.secondDifferenceRightInverse: needs k >= 3, got %d." k)
        let r = k - 2
        let d = Tensor.create [| r; k |] (Array.init (r * k) (fun idx ->
                    let i, j = idx / k, idx % k
                    if j = i || j = i + 2 then 1.0 elif j = i + 1 then -2.0 else 0.0))
        let l = Tensor.cholesky (Tensor.matmul d (Tensor.transpose d))
        let lInv = Tensor.triangularSolve true false l (Tensor.eye r)
        let ddtInv = Tensor.triangularSolve true true l lInv
        Tensor.matmul (Tensor.transpose d) ddtInv

    /// P-spline coefficients from second differences δ (k-2, u) and a linear trend (u):
    /// β = R·δ + linspace(-1, 1, k)·trend, (k, u), so that D·β = δ.
    let psplineCoefficients (differences: Tensor) (trend: Tensor) : Tensor =
        if differences.Rank <> 2 || trend.Rank <> 1 || trend.Shape.[0] <> differences.Shape.[1] then
            invalidArg "differences" (sprintf "Splines.psplineCoefficients: needs differences (k-2, u) and trend (u), got %s and %s."
                                          (Shape.format differences.Shape) (Shape.format trend.Shape))
        let k = differences.Shape.[0] + 2
        let r = secondDifferenceRightInverse k
        Tensor.matmul r differences + Tensor.unsqueeze 1 (Tensor.linspace (-1.0) 1.0 k) * Tensor.unsqueeze 0 trend

/// PSplineLayer: a penalized B-spline of one covariate. scale (u) ~ scalePrior; differences (K-2, u) ~ Normal(0, scale);
/// trend (u) ~ Normal(0, trendScale); β = R·δ + linspace(-1, 1, K)·trend (R the minimum-norm right inverse of the
/// second-difference matrix); f = (B(clip x) - B(reference))·β, (n, u). K = len(knots) - degree - 1.
type PSplineLayer =
    { /// The prior of the differences' scale (on positive values).
      ScalePrior: Distribution
      /// The scale of the linear trend's Normal prior.
      TrendScale: float
      /// The B-spline degree (3: cubic).
      Degree: int }

    /// BLayers' defaults: scale ~ HalfNormal(1), trend scale 1, cubic splines.
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); TrendScale = 1.0; Degree = 3 }

    /// Checks the settings (a positive scale prior, trendScale > 0, degree ≥ 0); raises with the layer's name.
    static member Create(?scalePrior: Distribution, ?trendScale: float, ?degree: int) =
        let d = PSplineLayer.Default
        let l = { ScalePrior = defaultArg scalePrior d.ScalePrior; TrendScale = defaultArg trendScale d.TrendScale; Degree = defaultArg degree d.Degree }
        LayerCommon.checkScalePrior "PSplineLayer" l.ScalePrior
        if not (l.TrendScale > 0.0) || Double.IsInfinity l.TrendScale then
            invalidArg "trendScale" (sprintf "PSplineLayer: trendScale must be positive and finite, got %g." l.TrendScale)
        if l.Degree < 0 then invalidArg "degree" (sprintf "PSplineLayer: degree must be >= 0, got %d." l.Degree)
        l

    /// Calls the layer on one covariate x (n,) or (n, 1) with a clamped knot vector (Splines.makeKnots):
    /// output (n, units), zero at the reference (default: the midpoint of the knot range), constant beyond the knots.
    member l.Call(name: string, x: Tensor, knots: float[], ?units: int, ?reference: float) : Model<Tensor> =
        let units = defaultArg units 1
        LayerCommon.positiveInt "PSplineLayer" "units" units
        if not (x.Rank = 1 || (x.Rank = 2 && x.Shape.[1] = 1)) then
            invalidArg "x" (sprintf "PSplineLayer: x must be a vector (n,) or a column (n, 1), got shape %s." (Shape.format x.Shape))
        Splines.checkKnots "PSplineLayer" knots l.Degree
        let k = knots.Length - l.Degree - 1
        if k < 3 then
            invalidArg "knots" (sprintf "PSplineLayer: %d knots of degree %d give %d basis functions; second differences need at least 3." knots.Length l.Degree k)
        let lo = knots.[0]
        let hi = knots.[knots.Length - 1]
        if not (hi > lo) then invalidArg "knots" (sprintf "PSplineLayer: the knot range is empty (%g to %g)." lo hi)
        let reference = defaultArg reference (0.5 * (lo + hi))
        if not (reference >= lo && reference <= hi) then
            invalidArg "reference" (sprintf "PSplineLayer: reference %g is outside the knot range [%g, %g]." reference lo hi)
        let xs = Tensor.toArray x |> Array.map (fun v -> if Double.IsNaN v then v else min hi (max lo v))
        let b = Splines.basis (Tensor.ofArray xs) knots l.Degree
        let bRef = Splines.basis (Tensor.ofArray [| reference |]) knots l.Degree
        let design = b - bRef
        let r = Splines.secondDifferenceRightInverse k
        let trendDir = Tensor.unsqueeze 1 (Tensor.linspace (-1.0) 1.0 k)
        let site = LayerCommon.site "PSplineLayer" name
        model {
            let! scale = Model.sample (site "scale") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let! delta = Model.sample (site "differences") (Dist.expand [| k - 2; units |] (Normal (Tensor.scalar 0.0, scale)))
            let! trend = Model.sample (site "trend") (Dist.expand [| units |] (Normal (Tensor.scalar 0.0, Tensor.scalar l.TrendScale)))
            let beta = Tensor.matmul r delta + trendDir * Tensor.unsqueeze 0 trend
            return Tensor.matmul design beta
        }

/// Hilbert-space Gaussian-process approximation helpers (BLayers' HSGP pieces).
[<RequireQualifiedAccess>]
module HSGP =

    /// The boundary L = c·max|x| (BLayers' hsgp_L; c = 1.5 there by default).
    let boundary (x: float[]) (c: float) : float =
        if x.Length = 0 then invalidArg "x" "HSGP.boundary: x is empty."
        if not (c > 0.0) then invalidArg "c" (sprintf "HSGP.boundary: c must be positive, got %g." c)
        c * (x |> Array.map abs |> Array.max)

    /// √λ_j = jπ/(2L), j = 1..m.
    let sqrtEigenvalues (L: float) (m: int) : float[] = Array.init m (fun j -> float (j + 1) * Math.PI / (2.0 * L))

    /// The basis φ_j(x) = sqrt(1/L)·sin(√λ_j (x + L)), x (n,) -> (n, m); data, not differentiated.
    let basis (x: float[]) (L: float) (m: int) : Tensor =
        let s = sqrtEigenvalues L m
        let c = sqrt (1.0 / L)
        Tensor.create [| x.Length; m |] (Array.init (x.Length * m) (fun idx -> c * sin (s.[idx % m] * (x.[idx / m] + L))))

    /// The squared-exponential spectral density at √λ_j: S_j = α²·sqrt(2π)·ℓ·exp(-½(ℓ√λ_j)²), (m,).
    let spectralDensity (alpha: Tensor) (lengthscale: Tensor) (L: float) (m: int) : Tensor =
        let s = Tensor.ofArray (sqrtEigenvalues L m)
        let ls = lengthscale * s
        alpha * alpha * sqrt (2.0 * Math.PI) * lengthscale * Tensor.exp (-0.5 * ls * ls)

    /// sqrt(S_j), computed without the square root of an underflowing density: α·(2π)^¼·sqrt(ℓ)·exp(-¼(ℓ√λ_j)²).
    let internal sqrtSpectralDensity (alpha: Tensor) (lengthscale: Tensor) (L: float) (m: int) : Tensor =
        let s = Tensor.ofArray (sqrtEigenvalues L m)
        let ls = lengthscale * s
        Tensor.abs alpha * Math.Pow(2.0 * Math.PI, 0.25) * Tensor.sqrt lengthscale * Tensor.exp (-0.25 * ls * ls)

/// HSGPLayer: a Gaussian process with a squared-exponential kernel on one covariate, approximated with m
/// Hilbert-space basis functions on [-L, L]. lengthscale ℓ () ~ InverseGamma(5, 5); sigma α () ~ HalfNormal(1);
/// beta (m, u) ~ Normal(0, 1); f = φ(x)·(sqrt(S) ⊙ beta), (n, u).
type HSGPLayer =
    { /// The prior of the lengthscale ℓ (scalar, positive).
      LengthscalePrior: Distribution
      /// The prior of the marginal sd α (scalar, positive).
      SigmaPrior: Distribution }

    /// BLayers' defaults: lengthscale ~ InverseGamma(5, 5), sigma ~ HalfNormal(1).
    static member Default =
        { LengthscalePrior = InverseGamma (Tensor.scalar 5.0, Tensor.scalar 5.0); SigmaPrior = HalfNormal (Tensor.scalar 1.0) }

    /// Checks the priors (scalar, on positive values); raises with the layer's name.
    static member Create(?lengthscalePrior: Distribution, ?sigmaPrior: Distribution) =
        let d = HSGPLayer.Default
        let l = { LengthscalePrior = defaultArg lengthscalePrior d.LengthscalePrior; SigmaPrior = defaultArg sigmaPrior d.SigmaPrior }
        for what, p in [ "lengthscalePrior", l.LengthscalePrior; "sigmaPrior", l.SigmaPrior ] do
            match Dist.support p with
            | Constraint.Positive | Constraint.GreaterThan _ -> ()
            | c -> invalidArg what (sprintf "HSGPLayer: %s must be on positive values, got %s with support %A." what (Dist.name p) c)
            if (Dist.batchShape p).Length > 0 || (Dist.eventShape p).Length > 0 then
                invalidArg what (sprintf "HSGPLayer: %s must be scalar, got %s with batch shape %s." what (Dist.name p) (Shape.format (Dist.batchShape p)))
        l

    /// Calls the layer on one covariate x (n,) or (n, 1) with boundary L > 0 (see HSGP.boundary) and m basis
    /// functions: output (n, units).
    member l.Call(name: string, x: Tensor, L: float, m: int, ?units: int) : Model<Tensor> =
        let units = defaultArg units 1
        LayerCommon.positiveInt "HSGPLayer" "units" units
        LayerCommon.positiveInt "HSGPLayer" "m" m
        if not (x.Rank = 1 || (x.Rank = 2 && x.Shape.[1] = 1)) then
            invalidArg "x" (sprintf "HSGPLayer: x must be a vector (n,) or a column (n, 1), got shape %s." (Shape.format x.Shape))
        if not (L > 0.0) || Double.IsInfinity L then
            invalidArg "L" (sprintf "HSGPLayer: the boundary L must be positive and finite, got %g." L)
        let phi = HSGP.basis (Tensor.toArray x) L m
        let site = LayerCommon.site "HSGPLayer" name
        model {
            let! ell = Model.sample (site "lengthscale") l.LengthscalePrior
            let! alpha = Model.sample (site "sigma") l.SigmaPrior
            let! beta = Model.sample (site "beta") (Dist.expand [| m; units |] (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)))
            let sqrtS = HSGP.sqrtSpectralDensity alpha ell L m
            return Tensor.matmul phi (Tensor.unsqueeze 1 sqrtS * beta)
        }
