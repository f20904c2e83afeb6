namespace FunctionalBayes.Tensors

open System
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86

/// Scalar special functions and span kernels, accurate to ~1e-14 relative in float64
/// (most functions are within a few ulp; see REPORT.md for the measured errors).
///
/// Conventions
/// * Span kernels are curried, fully-applied module functions:
///   `Special.lgammaSpan src dst`. They must be called with both arguments (byref-like
///   types cannot be captured by a partial application / closure).
///   They write `dst.[i] <- f src.[i]` for `i < src.Length`, require `dst.Length >= src.Length`
///   (ArgumentException otherwise), never allocate, and work in place (src and dst may be the
///   same memory; partial overlap with an offset is not supported).
/// * float32 kernels compute through the float64 scalar functions and round once, except
///   `softplusSpanF32` / `sigmoidSpanF32` which are SIMD float32 kernels (a few float32 ulp).
/// * Poles: lgamma → +inf, digamma → NaN at negative integers (−inf at 0), trigamma → +inf.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal Special =

    // ------------------------------------------------------------------
    // constants
    // ------------------------------------------------------------------

    [<Literal>]
    let private LogPi = 1.1447298858494002      // log(π)
    [<Literal>]
    let private HalfLog2Pi = 0.91893853320467274 // 0.5 log(2π)
    [<Literal>]
    let private OneMinusEuler = 0.42278433509846713 // 1 − γ
    [<Literal>]
    let private InvSqrtPi = 0.56418958354775628695 // 1/√π
    [<Literal>]
    let private InvSqrt2 = 0.70710678118654752440
    [<Literal>]
    let private Sqrt2 = 1.4142135623730950488
    [<Literal>]
    let private Ln2 = 0.69314718055994530942

    // ------------------------------------------------------------------
    // log1p / expm1
    // ------------------------------------------------------------------

    /// log(1+x), accurate to a few ulp for all x (Goldberg's trick for |x| < 0.5:
    /// u = fl(1+x) and log(u)·x/(u−1) cancels the rounding error of 1+x).
    let log1p (x: float) : float =
        if Double.IsNaN x then x
        elif x < 0.5 && x > -0.5 then
            let u = 1.0 + x
            if u = 1.0 then x else Math.Log u * (x / (u - 1.0))
        else Math.Log(1.0 + x) // x ≤ −0.5: 1+x exact (Sterbenz); x ≥ 0.5: rounding costs < 1 ulp

    /// exp(x) − 1, accurate to a few ulp for all x (Kahan's trick: u = exp(x),
    /// (u−1)·x/log(u) cancels the rounding error in u).
    let expm1 (x: float) : float =
        if Double.IsNaN x then x
        elif x > 700.0 then Math.Exp x
        elif x < -40.0 then -1.0
        else
            let u = Math.Exp x
            if u = 1.0 then x
            else
                let um1 = u - 1.0
                if um1 = -1.0 then -1.0 else um1 * (x / Math.Log u)

    // ------------------------------------------------------------------
    // helpers: sin(πx), tan(πx) with exact argument reduction
    // ------------------------------------------------------------------

    /// r = x − round(x) ∈ [−0.5, 0.5], computed exactly.
    let inline private fracNearest (x: float) = x - Math.Round x

    /// |sin(πx)| using exact reduction (periodic in 1 up to sign).
    let private absSinPi (x: float) =
        let r = abs (fracNearest x) // sin(π r) has the same magnitude
        Math.Sin(Math.PI * r)

    // ------------------------------------------------------------------
    // lgamma
    // ------------------------------------------------------------------

    // lgamma(2+z) = (1−γ) z + Σ_{k≥2} (−1)^k (ζ(k)−1)/k z^k, used for |z| ≤ 0.5.
    // Coefficients k = 2..28 (computed with mpmath, 50 digits, rounded to double).
    let private lgC2 =
        [| 0.3224670334241132; -0.0673523010531981; 0.020580808427784546
           -0.007385551028673986; 0.0028905103307415234; -0.001192753911703261
           0.0005096695247430425; -0.00022315475845357939; 9.945751278180853e-05
           -4.492623673813314e-05; 2.050721277567069e-05; -9.439488275268397e-06
           4.374866789907488e-06; -2.039215753801366e-06; 9.55141213040742e-07
           -4.492469198764566e-07; 2.1207184805554665e-07; -1.0043224823968099e-07
           4.7698101693639804e-08; -2.2711094608943164e-08; 1.0838659214896955e-08
           -5.183475041970047e-09; 2.4836745438024785e-09; -1.1921401405860912e-09
           5.731367241678862e-10; -2.7595228851242334e-10; 1.330476437424449e-10 |]

    /// lgamma(2+z) for |z| ≤ 0.5 (z is taken exactly).
    let private lgammaNear2 (z: float) =
        let c = lgC2
        let mutable p = c.[c.Length - 1]
        for i in c.Length - 2 .. -1 .. 0 do
            p <- p * z + c.[i]
        z * (OneMinusEuler + z * p)

    /// The Stirling correction lgamma(x) − [(x−½)log x − x + ½log 2π] = Σ B_{2k}/(2k(2k−1)x^{2k−1}), x ≥ 10.
    let private stirlingCorrection (x: float) =
        if x > 1e10 then 1.0 / (12.0 * x)
        else
            let z = 1.0 / (x * x)
            // B_{2k}/(2k(2k−1)), k = 1..8
            let s =
                0.083333333333333333333
                + z * (-0.0027777777777777777778
                + z * (0.00079365079365079365079
                + z * (-0.00059523809523809523810
                + z * (0.00084175084175084175084
                + z * (-0.0019175269175269175269
                + z * (0.0064102564102564102564
                + z * (-0.029550653594771241830)))))))
            s / x

    /// Stirling series for x ≥ 10: (x−½)log x − x + ½log 2π + Σ B_{2k}/(2k(2k−1)x^{2k−1}).
    let private lgammaStirling (x: float) =
        (x - 0.5) * Math.Log x - x + HalfLog2Pi + stirlingCorrection x

    /// log|Γ(x)| for x > 0 (positive branch).
    let private lgammaPos (x: float) =
        if x < 0.5 then
            // lgamma(x) = lgamma(x+2) − log x − log(1+x)
            lgammaNear2 x - Math.Log x - log1p x
        elif x < 1.5 then
            let z = x - 1.0 // exact
            lgammaNear2 z - log1p z
        elif x <= 2.5 then lgammaNear2 (x - 2.0)
        elif x < 10.0 then
            // shift down to y ∈ [1.5, 2.5): lgamma(x) = lgamma(y) + log(y (y+1) … (x−1))
            let n = int (Math.Floor(x - 1.5))
            let y = x - float n // exact
            let mutable prod = 1.0
            for k in 0 .. n - 1 do
                prod <- prod * (y + float k)
            lgammaNear2 (y - 2.0) + Math.Log prod
        else lgammaStirling x

    /// log|Γ(x)|. Poles (x = 0, −1, −2, …) give +inf. Negative non-integers use the
    /// reflection formula log π − log|sin πx| − lgamma(1−x) (absolute accuracy there; relative
    /// accuracy is lost only near the zeros of lgamma on the negative axis, as with any method).
    let lgamma (x: float) : float =
        if Double.IsNaN x then x
        elif x > 0.0 then
            if Double.IsPositiveInfinity x then x else lgammaPos x
        elif Double.IsNegativeInfinity x then Double.PositiveInfinity
        elif x = Math.Floor x then Double.PositiveInfinity // 0, −1, −2, …
        else
            let s = absSinPi x
            LogPi - Math.Log s - lgammaPos (1.0 - x)

    // ------------------------------------------------------------------
    // digamma / trigamma
    // ------------------------------------------------------------------

    // Positive root of ψ: x0 = x0hi + x0lo (mpmath, 40 digits).
    [<Literal>]
    let private DigammaRootHi = 1.4616321449683622
    [<Literal>]
    let private DigammaRootLo = 9.549995429965697e-17

    // ψ(x0 + d) = Σ_{k≥1} b_k d^k, b_k = (−1)^{k+1} ζ(k+1, x0) (Hurwitz ζ; mpmath).
    let private dgB =
        [| 0.9676722454476212; -0.4427631689835921; 0.258499760955651
           -0.16394270544240652; 0.10782405069126237; -0.07219956125645471
           0.04880428816414311; -0.03316112647484736; 0.022597648232218104
           -0.01542476590494896; 0.010538791616612175; -0.007204534386356869
           0.004926781395729853; -0.003369801655439328; 0.002305126326734928
           -0.0015769367714301972; 0.0010788252019162967; -0.0007380709389960052
           0.000504953265834602; -0.0003454680251063077; 0.00023635601564027053
           -0.00016170622091974803 |]

    /// ψ(x) for x ≥ 10: log x − 1/(2x) − Σ B_{2k}/(2k x^{2k}).
    let private digammaAsym (x: float) =
        let z = 1.0 / (x * x)
        let s =
            z * (0.083333333333333333333
            + z * (-0.0083333333333333333333
            + z * (0.0039682539682539682540
            + z * (-0.0041666666666666666667
            + z * (0.0075757575757575757576
            + z * (-0.021092796092796092796
            + z * (0.083333333333333333333
            + z * (-0.44325980392156862745))))))))
        Math.Log x - 0.5 / x - s

    let private digammaPos (x: float) =
        if x >= 1.25 && x <= 1.70 then
            let d = (x - DigammaRootHi) - DigammaRootLo // x − x0hi exact (Sterbenz)
            let b = dgB
            let mutable p = b.[b.Length - 1]
            for i in b.Length - 2 .. -1 .. 0 do
                p <- p * d + b.[i]
            d * p
        elif x >= 10.0 then digammaAsym x
        else
            // ψ(x) = ψ(x+n) − Σ_{k<n} 1/(x+k), x+n ≥ 10
            let mutable acc = 0.0
            let mutable y = x
            while y < 10.0 do
                acc <- acc + 1.0 / y
                y <- y + 1.0
            digammaAsym y - acc

    /// ψ(x) = d/dx log Γ(x). x > 0 and negative non-integers (reflection
    /// ψ(x) = ψ(1−x) − π/tan(πx)); NaN at negative integers, −inf at ±0.
    let digamma (x: float) : float =
        if Double.IsNaN x then x
        elif x > 0.0 then
            if Double.IsPositiveInfinity x then x else digammaPos x
        elif x = 0.0 then Double.NegativeInfinity
        elif Double.IsNegativeInfinity x || x = Math.Floor x then Double.NaN
        else
            // π cot(πx) with r = x − round(x) ∈ [−½, ½] exact; for |r| > ¼ use
            // cot(πr) = sign(r)·tan(π(½ − |r|)) so that cot(±π/2) is exactly 0.
            let r = fracNearest x
            let ar = abs r
            let cot =
                if ar <= 0.25 then 1.0 / Math.Tan(Math.PI * r)
                else
                    let t = Math.Tan(Math.PI * (0.5 - ar))
                    if r < 0.0 then -t else t
            digammaPos (1.0 - x) - Math.PI * cot

    /// ψ'(x) for x ≥ 10: 1/x + 1/(2x²) + Σ B_{2k}/x^{2k+1}.
    let private trigammaAsym (x: float) =
        let iz = 1.0 / x
        let z = iz * iz
        let s =
            0.16666666666666666667
            + z * (-0.033333333333333333333
            + z * (0.023809523809523809524
            + z * (-0.033333333333333333333
            + z * (0.075757575757575757576
            + z * (-0.25311355311355311355
            + z * (1.1666666666666666667
            + z * (-7.0921568627450980392
            + z * 54.971177944862155388)))))))
        iz + z * (0.5 + s * iz)

    let private trigammaPos (x: float) =
        if x >= 10.0 then trigammaAsym x
        else
            let mutable acc = 0.0
            let mutable y = x
            while y < 10.0 do
                acc <- acc + 1.0 / (y * y)
                y <- y + 1.0
            trigammaAsym y + acc

    /// ψ'(x). x > 0 (all terms positive, a few ulp); negative non-integers via
    /// ψ'(x) = π²/sin²(πx) − ψ'(1−x); +inf at 0, −1, −2, ….
    let trigamma (x: float) : float =
        if Double.IsNaN x then x
        elif x > 0.0 then
            if Double.IsPositiveInfinity x then 0.0 else trigammaPos x
        elif Double.IsNegativeInfinity x then Double.NaN
        elif x = Math.Floor x then Double.PositiveInfinity
        else
            let s = Math.Sin(Math.PI * fracNearest x)
            Math.PI * Math.PI / (s * s) - trigammaPos (1.0 - x)

    // ------------------------------------------------------------------
    // erf / erfc / erfcx  (W. J. Cody's rational Chebyshev approximations,
    // Math. Comp. 1969; coefficients as published in CALERF)
    // ------------------------------------------------------------------

    /// erf(x)/x for |x| ≤ 0.46875, as a rational function of s = x².
    let inline private erfSmallRatio (s: float) =
        let num = (((0.185777706184603153 * s + 3.16112374387056560) * s + 113.864154151050156) * s
                   + 377.485237685302021) * s + 3209.37758913846947
        let den = (((s + 23.6012909523441209) * s + 244.024637934444173) * s
                   + 1282.61652607737228) * s + 2844.23683343917062
        num / den

    /// erfcx(y) = exp(y²) erfc(y) for y ≥ 0.46875.
    let private erfcxLarge (y: float) =
        if y <= 4.0 then
            let num =
                (((((((2.15311535474403846e-8 * y + 0.564188496988670089) * y + 8.88314979438837594) * y
                     + 66.1191906371416295) * y + 298.635138197400131) * y + 881.952221241769090) * y
                   + 1712.04761263407058) * y + 2051.07837782607147) * y + 1230.33935479799725
            let den =
                (((((((y + 15.7449261107098347) * y + 117.693950891312499) * y + 537.181101862009858) * y
                     + 1621.38957456669019) * y + 3290.79923573345963) * y + 4362.61909014324716) * y
                   + 3439.36767414372164) * y + 1230.33935480374942
            num / den
        elif y >= 6.71e7 then InvSqrtPi / y
        else
            let z = 1.0 / (y * y)
            let num = ((((0.0163153871373020978 * z + 0.305326634961232344) * z + 0.360344899949804439) * z
                        + 0.125781726111229246) * z + 0.0160837851487422766) * z + 6.58749161529837803e-4
            let den = ((((z + 2.56852019228982242) * z + 1.87295284992346047) * z
                        + 0.527905102951428412) * z + 0.0605183413124413191) * z + 0.00233520497626869185
            (InvSqrtPi - z * num / den) / y

    /// exp(−x²) with the rounding error of x² compensated (x² = hi + lo exactly via FMA).
    let inline private expNegSq (x: float) =
        let hi = x * x
        let lo = Math.FusedMultiplyAdd(x, x, -hi)
        Math.Exp(-hi) * (1.0 - lo)

    /// erfc(y) for y > 0.46875.
    let inline private erfcLarge (y: float) =
        if y > 27.3 then 0.0 else expNegSq y * erfcxLarge y

    /// Error function.
    let erf (x: float) : float =
        let y = abs x
        if y <= 0.46875 then x * erfSmallRatio (x * x)
        elif Double.IsNaN x then x
        else
            let r = 1.0 - erfcLarge y
            if x < 0.0 then -r else r

    /// Complementary error function 1 − erf(x); full relative accuracy in the right tail
    /// (underflows to 0 past x ≈ 27.2).
    let erfc (x: float) : float =
        let y = abs x
        if y <= 0.46875 then 1.0 - x * erfSmallRatio (x * x)
        elif Double.IsNaN x then x
        elif x > 0.0 then erfcLarge y
        else 2.0 - erfcLarge y

    /// Scaled complementary error function exp(x²)·erfc(x) (x ≥ 0 accurate everywhere;
    /// x < 0 overflows to +inf past x ≈ −26.6).
    let erfcx (x: float) : float =
        if Double.IsNaN x then x
        elif x >= 0.46875 then erfcxLarge x
        elif x > -0.46875 then Math.Exp(x * x) * (1.0 - x * erfSmallRatio (x * x))
        elif x < -26.7 then Double.PositiveInfinity
        else
            // erfc(x) = 2 − erfc(−x) ⇒ erfcx(x) = 2 exp(x²) − erfcx(−x)
            let hi = x * x
            let lo = Math.FusedMultiplyAdd(x, x, -hi)
            2.0 * Math.Exp hi * (1.0 + lo) - erfcxLarge (-x)

    // ------------------------------------------------------------------
    // normal distribution
    // ------------------------------------------------------------------

    /// Φ(x) for x ≤ −0.46875·√2: ½ exp(−x²/2) erfcx(−x/√2), with x²/2 exact via FMA.
    let inline private normalLowerTail (x: float) =
        let hi = x * x
        let lo = Math.FusedMultiplyAdd(x, x, -hi)
        0.5 * (Math.Exp(-0.5 * hi) * (1.0 - 0.5 * lo)) * erfcxLarge (-x * InvSqrt2)

    [<Literal>]
    let private NormalSplit = 0.66291260736238884 // 0.46875·√2

    /// Standard normal CDF Φ(x); relative accuracy in both tails (Φ(−38) ≈ 2.9e−316 subnormal).
    let normalCdf (x: float) : float =
        if Double.IsNaN x then x
        elif x < -NormalSplit then
            if x < -38.5 then 0.0 else normalLowerTail x
        elif x <= NormalSplit then
            let t = x * InvSqrt2
            0.5 + 0.5 * (t * erfSmallRatio (t * t))
        elif x > 9.0 then 1.0 // Φ(−9) ≈ 1.1e−19 < ½ulp(1)
        else 1.0 - normalLowerTail (-x)

    /// log Φ(x); accurate for x → −∞ (uses log Φ(x) = −x²/2 + log(½ erfcx(−x/√2)), so e.g.
    /// x = −40, −1e100 are fine) and for x → +∞ (log1p(−Φ(−x))).
    let normalLogCdf (x: float) : float =
        if Double.IsNaN x then x
        elif x < -1.0 then
            if Double.IsNegativeInfinity x then x
            elif x < -1e154 then Double.NegativeInfinity // x²/2 overflows
            else
                let hi = x * x
                let lo = Math.FusedMultiplyAdd(x, x, -hi)
                -0.5 * hi + (Math.Log(0.5 * erfcxLarge (-x * InvSqrt2)) - 0.5 * lo)
        elif x <= 0.0 then Math.Log(normalCdf x)
        else log1p (-(normalCdf (-x)))

    // Wichura's AS241 (PPND16), Appl. Statist. 37 (1988): relative accuracy ~1e−16.
    // q = p − ½ (exact), tail = min(p, 1−p) (exact); returns Φ⁻¹(p).
    let private as241 (q: float) (tail: float) =
        if abs q <= 0.425 then
            let r = 0.180625 - q * q
            let num =
                (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r
                     + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                   + 133.14166789178437745) * r + 3.3871328727963666080)
            let den =
                (((((((5226.4952788528545610 * r + 28729.085735721942674) * r + 39307.895800092710610) * r
                     + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.18700749205790830) * r
                   + 42.313330701600911252) * r + 1.0)
            q * num / den
        else
            let mutable r = Math.Sqrt(-Math.Log tail)
            let v =
                if r <= 5.0 then
                    r <- r - 1.6
                    let num =
                        (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
                              + 2.41780725177450611770e-1) * r + 1.27045825245236838258) * r
                            + 3.64784832476320460504) * r + 5.76949722146069140550) * r
                          + 4.63033784615654529590) * r + 1.42343711074968357734)
                    let den =
                        (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
                              + 1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r
                            + 6.89767334985100004550e-1) * r + 1.67638483018380384940) * r
                          + 2.05319162663775882187) * r + 1.0)
                    num / den
                else
                    r <- r - 5.0
                    let num =
                        (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                              + 1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r
                            + 2.96560571828504891230e-1) * r + 1.78482653991729133580) * r
                          + 5.46378491116411436990) * r + 6.65790464350110377720)
                    let den =
                        (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
                              + 1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r
                            + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
                          + 5.99832206555887937690e-1) * r + 1.0)
                    num / den
            if q < 0.0 then -v else v

    /// Φ⁻¹(p) for p ∈ [0,1] (±inf at 0/1, NaN outside), Wichura AS241, ~1e−16 relative.
    let normalIcdf (p: float) : float =
        if Double.IsNaN p || p < 0.0 || p > 1.0 then Double.NaN
        elif p = 0.0 then Double.NegativeInfinity
        elif p = 1.0 then Double.PositiveInfinity
        else
            let q = p - 0.5
            as241 q (if q < 0.0 then p else 1.0 - p)

    /// erf⁻¹(x) for x ∈ [−1,1] (±inf at ±1, NaN outside): AS241 evaluated with the exact
    /// q = x/2 and tail = (1−|x|)/2, divided by √2, then one Newton step on erf/erfc.
    let erfinv (x: float) : float =
        if Double.IsNaN x || x < -1.0 || x > 1.0 then Double.NaN
        elif x = 1.0 then Double.PositiveInfinity
        elif x = -1.0 then Double.NegativeInfinity
        elif x = 0.0 then x
        else
            let ax = abs x
            let y0 = as241 (0.5 * ax) (0.5 * (1.0 - ax)) * InvSqrt2
            // Newton refinement: f(y) = erf(y) − ax (or erfc(y) − (1−ax) when ax > 0.5, exact 1−ax)
            let resid =
                if ax <= 0.5 then erf y0 - ax
                else (1.0 - ax) - erfc y0
            let deriv = 1.1283791670955126 * expNegSq y0
            let y = if deriv > 0.0 then y0 - resid / deriv else y0
            if x < 0.0 then -y else y

    // ------------------------------------------------------------------
    // logistic family
    // ------------------------------------------------------------------

    /// log(1 + exp x), stable for all x (≈ exp x for x → −∞ with full relative accuracy).
    let softplus (x: float) : float =
        if x > 0.0 then x + log1p (Math.Exp(-x))
        else log1p (Math.Exp x) // also NaN → NaN

    /// log σ(x) = −softplus(−x).
    let logSigmoid (x: float) : float = -(softplus (-x))

    /// σ(x) = 1/(1+exp(−x)), full relative accuracy in both tails.
    let sigmoid (x: float) : float =
        if x >= 0.0 then 1.0 / (1.0 + Math.Exp(-x))
        else
            let e = Math.Exp x
            e / (1.0 + e)

    // ------------------------------------------------------------------
    // incomplete beta / gamma: Student-t and gamma CDFs in log space
    // ------------------------------------------------------------------

    /// log(1 − eᵃ) for a ≤ 0, accurate on both sides of −log 2 (−inf at 0).
    let log1mexp (a: float) : float =
        if a > -Ln2 then Math.Log(-(expm1 a)) else log1p (-(Math.Exp a))

    /// log(1+μ) − μ, without cancellation for small μ: with w = μ/(2+μ), log(1+μ) = 2 atanh w, so
    /// log(1+μ) − μ = −2w²/(1−w) + 2(w³/3 + w⁵/5 + …).
    let private log1pmx (mu: float) =
        if abs mu > 0.5 then log1p mu - mu
        else
            let w = mu / (2.0 + mu)
            let w2 = w * w
            let mutable term = w * w2
            let mutable s = 0.0
            let mutable k = 3.0
            while abs term > 1e-18 * abs w2 do
                s <- s + term / k
                term <- term * w2
                k <- k + 2.0
            -2.0 * w2 / (1.0 - w) + 2.0 * s

    /// lgamma(a) − lgamma(a+b) for a ≥ 10, b > 0, from the Stirling form: the two large lgamma values
    /// cancel analytically (absolute error a few ulp of the result, not of lgamma a).
    let private lgammaRatioLarge (a: float) (b: float) =
        -(a - 0.5) * log1p (b / a) - b * Math.Log(a + b) + b + stirlingCorrection a - stirlingCorrection (a + b)

    /// log B(a, b), without the cancellation of lgamma(max) − lgamma(a+b) when one argument is large.
    let private logBeta (a: float) (b: float) =
        let big, small = Math.Max(a, b), Math.Min(a, b)
        if big < 10.0 then lgamma a + lgamma b - lgamma (a + b)
        else lgamma small + lgammaRatioLarge big small

    /// Continued fraction of I_x(a, b) (modified Lentz), I_x = xᵃ(1−x)ᵇ/(a B(a,b)) · cf; converges fast
    /// for x < (a+1)/(a+b+2). Even terms m(b−m)x/((a+2m−1)(a+2m)), odd −(a+m)(a+b+m)x/((a+2m)(a+2m+1)).
    let private betaContinuedFraction (a: float) (b: float) (x: float) =
        let tiny = 1e-300
        let inline guard (v: float) = if abs v < tiny then tiny else v
        let mutable d = 1.0 / guard (1.0 - (a + b) * x / (a + 1.0))
        let mutable c = 1.0
        let mutable h = d
        let mutable m = 1
        let mutable fin = false
        let maxIter = 1000 + int (20.0 * Math.Sqrt(Math.Max(a, b)))
        while not fin do
            let fm = float m
            let even = fm * (b - fm) * x / ((a + 2.0 * fm - 1.0) * (a + 2.0 * fm))
            d <- 1.0 / guard (1.0 + even * d)
            c <- guard (1.0 + even / c)
            h <- h * d * c
            let odd = -(a + fm) * (a + b + fm) * x / ((a + 2.0 * fm) * (a + 2.0 * fm + 1.0))
            d <- 1.0 / guard (1.0 + odd * d)
            c <- guard (1.0 + odd / c)
            let delta = d * c
            h <- h * delta
            if abs (delta - 1.0) < 1e-16 then fin <- true
            elif m >= maxIter then
                raise (InvalidOperationException(sprintf "incomplete beta: the continued fraction did not converge at a = %g, b = %g, x = %g." a b x))
            m <- m + 1
        h

    /// log I_x(a, b) and log(1 − I_x(a, b)), with y = 1 − x and the logs of x and y given exactly by the
    /// caller; each from the side where it is small (I_x(a,b) = 1 − I_y(b,a)), so both tails keep their
    /// relative accuracy.
    let private logIncompleteBeta (a: float) (b: float) (x: float) (y: float) (lx: float) (ly: float) : struct (float * float) =
        if x < (a + 1.0) / (a + b + 2.0) then
            let logI = a * lx + b * ly - Math.Log a - logBeta a b + Math.Log(betaContinuedFraction a b x)
            struct (logI, log1mexp logI)
        else
            let logJ = b * ly + a * lx - Math.Log b - logBeta a b + Math.Log(betaContinuedFraction b a y)
            struct (log1mexp logJ, logJ)

    /// a log x − x − lgamma a (x > 0): for a ≥ 10 as a·(log(x/a) − (x−a)/a) + ½log a − ½log 2π − stirling(a),
    /// so that the large terms cancel analytically; near x = a through log1pmx of μ = (x−a)/a (far from
    /// it, 1 + μ would lose the digits of x/a when x ≪ a).
    let private logGammaPrefix (a: float) (x: float) =
        if a < 10.0 then a * Math.Log x - x - lgamma a
        else
            let mu = (x - a) / a
            let body = if abs mu <= 0.5 then a * log1pmx mu else a * Math.Log(x / a) - (x - a)
            body + 0.5 * Math.Log a - HalfLog2Pi - stirlingCorrection a

    /// log P(a, x) and log Q(a, x), the regularized lower and upper incomplete gamma functions, each with
    /// relative accuracy ~1e−14 (P = 0, Q = 1 for x ≤ 0; NaN for a ≤ 0 or NaN arguments). Series for
    /// x < a+1, continued fraction above; for a < 1 and x ≤ 1.5, Q = 1 − xᵃ/Γ(a+1)·(1 + a S) with
    /// S = Σₙ₌₁ (−x)ⁿ/(n!(a+n)), so that Q keeps its accuracy where P is near 1.
    let gammaLogPQ (x: float) (a: float) : struct (float * float) =
        if Double.IsNaN x || Double.IsNaN a || not (a > 0.0) then struct (Double.NaN, Double.NaN)
        elif x <= 0.0 then struct (Double.NegativeInfinity, 0.0)
        elif Double.IsPositiveInfinity x then struct (0.0, Double.NegativeInfinity)
        elif a < 1.0 && x <= 1.5 then
            // lgamma(1+a) = lgamma(2+a) − log(1+a) from a itself: 1 + a would round away a's low bits
            let lgamma1pa = if a <= 0.5 then lgammaNear2 a - log1p a else lgammaNear2 (a - 1.0)
            let u = a * Math.Log x - lgamma1pa
            let mutable s = 0.0
            let mutable term = 1.0
            let mutable n = 1.0
            let mutable fin = false
            while not fin do
                term <- -term * x / n
                let add = term / (a + n)
                s <- s + add
                if abs add <= 1e-17 * abs s then fin <- true
                n <- n + 1.0
            let aS = a * s
            let logP = u + log1p aS
            // Q from P where P is small (log(1 − P) would round to a multiple of ulp(1) otherwise)
            let logQ = if logP < -Ln2 then log1p (-(Math.Exp logP)) else Math.Log(-(expm1 u) - Math.Exp u * aS)
            struct (logP, logQ)
        elif x < a + 1.0 then
            // P = e^{−x} xᵃ/Γ(a+1) · Σₙ xⁿ/((a+1)…(a+n))
            let mutable sum = 1.0
            let mutable term = 1.0
            let mutable n = 1.0
            while term > 1e-17 * sum do
                term <- term * x / (a + n)
                sum <- sum + term
                n <- n + 1.0
            let logP = logGammaPrefix a x - Math.Log a + Math.Log sum
            struct (logP, log1mexp logP)
        else
            // Q = e^{−x} xᵃ/Γ(a) · 1/(x+1−a− 1(1−a)/(x+3−a− 2(2−a)/(x+5−a− …))), modified Lentz
            let tiny = 1e-300
            let inline guard (v: float) = if abs v < tiny then tiny else v
            let mutable bn = x + 1.0 - a
            let mutable c = 1.0 / tiny
            let mutable d = 1.0 / bn
            let mutable h = d
            let mutable i = 1.0
            let mutable fin = false
            let maxIter = 1000.0 + 20.0 * Math.Sqrt a
            while not fin do
                let an = -i * (i - a)
                bn <- bn + 2.0
                d <- 1.0 / guard (an * d + bn)
                c <- guard (bn + an / c)
                let delta = d * c
                h <- h * delta
                if abs (delta - 1.0) < 1e-16 then fin <- true
                elif i >= maxIter then
                    raise (InvalidOperationException(sprintf "incomplete gamma: the continued fraction did not converge at a = %g, x = %g." a x))
                i <- i + 1.0
            let logQ = logGammaPrefix a x + Math.Log h
            struct (log1mexp logQ, logQ)

    /// B₂ₖ/(2k·(2k)!), k = 1..15: log(sinh(s/2)/(s/2)) = Σₖ dₖ s²ᵏ (Bernoulli numbers B₂…B₃₀).
    let private sinhLogCoefficients =
        let bernoulli = [| 1.0 / 6.0; -1.0 / 30.0; 1.0 / 42.0; -1.0 / 30.0; 5.0 / 66.0; -691.0 / 2730.0; 7.0 / 6.0
                           -3617.0 / 510.0; 43867.0 / 798.0; -174611.0 / 330.0; 854513.0 / 138.0; -236364091.0 / 2730.0
                           8553103.0 / 6.0; -23749461029.0 / 870.0; 8615841276005.0 / 14322.0 |]
        let mutable fact = 1.0
        Array.init bernoulli.Length (fun i ->
            let k = i + 1
            fact <- fact * float (2 * k - 1) * float (2 * k)
            bernoulli.[i] / (2.0 * float k * fact))

    /// log I_x(a, b) for large a (≥ 100), b ≤ 1 and z = −log x ≤ 1, where the continued fraction converges
    /// too slowly (x within ~1/√a of a/(a+b)). With s = −log t and T = a + (b−1)/2,
    /// I_x(a,b) = 1/B(a,b) ∫_z^∞ e^{−Ts} s^{b−1} φ(s) ds, φ(s) = (sinh(s/2)/(s/2))^{b−1} = Σₙ pₙ s²ⁿ, so
    /// I_x = 1/B(a,b) Σₙ pₙ Jₙ with Jₙ = T^{−(b+2n)} Γ(b+2n, Tz) (the form of DiDonato and Morris' BGRAT),
    /// Jₙ₊₁ = [(b+2n)(b+2n+1) Jₙ + z^{b+2n} e^{−Tz} (b+2n+1+Tz)]/T², summed relative to J₀ = T^{−b} Γ(b) Q(b, Tz).
    /// Terms fall like (z/2π)²ⁿ; the part of the integral past s = 2π (where the series in s stops
    /// converging) is e^{−T(2π−z)} relative, below 1e−200.
    let private logIncompleteBetaLargeA (a: float) (b: float) (z: float) =
        let t = a + 0.5 * (b - 1.0)
        let u = t * z
        let struct (_, logQ) = gammaLogPQ u b
        let d = sinhLogCoefficients
        let p = Array.zeroCreate (d.Length + 1)
        p.[0] <- 1.0
        let eps0 = Math.Exp(logGammaPrefix b u - logQ)
        let z2 = z * z
        let invT2 = 1.0 / (t * t)
        let mutable sum = 1.0
        let mutable rho = 1.0
        let mutable epsN = eps0
        let mutable n = 0
        let mutable fin = false
        while not fin && n < d.Length do
            let c = b + 2.0 * float n
            rho <- (c * (c + 1.0) * rho + epsN * (c + 1.0 + u)) * invT2
            epsN <- epsN * z2
            // pₙ₊₁ = 1/(n+1) Σₖ k lₖ pₙ₊₁₋ₖ with lₖ = (b−1) dₖ: the exponential of the power series
            let m = n + 1
            let mutable acc = 0.0
            for k in 1 .. m do
                acc <- acc + float k * (b - 1.0) * d.[k - 1] * p.[m - k]
            p.[m] <- acc / float m
            let term = p.[m] * rho
            sum <- sum + term
            if abs term <= 1e-17 * abs sum then fin <- true
            n <- n + 1
        logQ + Math.Log sum - lgammaRatioLarge a b - b * Math.Log t

    /// log F(t) of the standard Student-t with ν degrees of freedom, relative accuracy ~1e−14 in both tails
    /// (|t| up to the largest double, ν from tiny to huge): F(t) = ½ I_{ν/(ν+t²)}(ν/2, ½) for t < 0 and
    /// 1 − F(−t) above. NaN for ν ≤ 0 or NaN arguments.
    let studentTLogCdf (t: float) (nu: float) : float =
        if Double.IsNaN t || Double.IsNaN nu || not (nu > 0.0) then Double.NaN
        elif Double.IsNegativeInfinity t then Double.NegativeInfinity
        elif Double.IsPositiveInfinity t then 0.0
        elif t = 0.0 then -Ln2
        else
            // r² = t²/ν: x = 1/(1+r²), y = r²/(1+r²), their logs without forming 1 − x
            let r = abs t / Math.Sqrt nu
            let struct (x, y, lx, ly) =
                if r < 1e150 then
                    let r2 = r * r
                    struct (1.0 / (1.0 + r2), r2 / (1.0 + r2), -(log1p r2), -(log1p (1.0 / r2)))
                else
                    // log r from the logs: |t|/√ν itself may overflow
                    let lx = -2.0 * (Math.Log(abs t) - 0.5 * Math.Log nu)
                    struct (Math.Exp lx, 1.0, lx, 0.0)
            let a = 0.5 * nu
            // near x = a/(a+½) with a large the continued fraction converges too slowly: the expansion there
            let logI = if a >= 100.0 && -lx <= 1.0 then logIncompleteBetaLargeA a 0.5 (-lx) else (let struct (l, _) = logIncompleteBeta a 0.5 x y lx ly in l)
            let logTail = logI - Ln2 // F(−|t|)
            if t < 0.0 then logTail else log1p (-(Math.Exp logTail))

    /// log P(a, x), the log of the gamma(a, 1) CDF at x (see gammaLogPQ).
    let gammaLogP (x: float) (a: float) : float = let struct (p, _) = gammaLogPQ x a in p

    /// log Q(a, x) = log(1 − P(a, x)), the log of the gamma(a, 1) survival function at x (see gammaLogPQ).
    let gammaLogQ (x: float) (a: float) : float = let struct (_, q) = gammaLogPQ x a in q

    /// The x > 0 where h(log x) = 0 for h increasing in log x: bracketing outward from x0 in log x, then
    /// Newton steps in w = log x (dh: dh/dw) safeguarded by bisection, to |Δw| ≤ 4e−16.
    let private solveIncreasingLog (h: float -> float) (dh: float -> float) (x0: float) =
        let mutable lo = Math.Log x0
        let mutable hi = lo
        let mutable step = 1.0
        while h lo > 0.0 && lo > -745.0 do
            lo <- lo - step
            step <- step * 2.0
        step <- 1.0
        while h hi < 0.0 && hi < 709.0 do
            hi <- hi + step
            step <- step * 2.0
        lo <- Math.Max(lo, -745.0)
        hi <- Math.Min(hi, 709.0)
        // past the range of doubles: the root is 0 or +inf to double precision
        if h hi < 0.0 then Double.PositiveInfinity
        elif h lo > 0.0 then 0.0
        else
            let mutable w = 0.5 * (lo + hi)
            let mutable iter = 0
            while hi - lo > 4e-16 * Math.Max(1.0, abs w) && iter < 200 do
                let v = h w
                if v = 0.0 then
                    lo <- w
                    hi <- w
                else
                    if v < 0.0 then lo <- w else hi <- w
                    let next = w - v / dh w
                    w <- if next > lo && next < hi && not (Double.IsNaN next) then next else 0.5 * (lo + hi)
                iter <- iter + 1
            Math.Exp w

    /// The Student-t(ν) quantile at lower-tail probability p, with q = 1 − p given separately so that the
    /// upper tail keeps its accuracy (Newton on the log CDF, see studentTLogCdf).
    let studentTQuantile (p: float) (q: float) (nu: float) : float =
        let m = Math.Min(p, q)
        if Double.IsNaN m || not (nu > 0.0) then Double.NaN
        elif m <= 0.0 then (if p <= q then Double.NegativeInfinity else Double.PositiveInfinity)
        elif m >= 0.5 then 0.0
        else
            let target = Math.Log m
            let logPdf (s: float) = lgamma (0.5 * (nu + 1.0)) - lgamma (0.5 * nu) - 0.5 * Math.Log(nu * Math.PI) - 0.5 * (nu + 1.0) * log1p (s * s / nu)
            // F(−s) decreases in s: h(w) = target − log F(−eʷ) increases
            let h (w: float) = target - studentTLogCdf (-(Math.Exp w)) nu
            let dh (w: float) = let s = Math.Exp w in Math.Exp(logPdf s + w - studentTLogCdf (-s) nu)
            let s = solveIncreasingLog h dh 1.0
            if p <= q then -s else s

    /// The gamma(a, 1) quantile at lower-tail probability p, q = 1 − p given separately (Newton on log P
    /// or log Q, whichever side is small).
    let gammaQuantile (p: float) (q: float) (a: float) : float =
        if Double.IsNaN p || Double.IsNaN q || not (a > 0.0) then Double.NaN
        elif p <= 0.0 then 0.0
        elif q <= 0.0 then Double.PositiveInfinity
        else
            let slope (w: float) (logF: float) = Math.Exp(logGammaPrefix a (Math.Exp w) - logF)
            if p <= q then
                let lp = Math.Log p
                solveIncreasingLog (fun w -> gammaLogP (Math.Exp w) a - lp) (fun w -> slope w (gammaLogP (Math.Exp w) a)) a
            else
                let lq = Math.Log q
                solveIncreasingLog (fun w -> lq - gammaLogQ (Math.Exp w) a) (fun w -> slope w (gammaLogQ (Math.Exp w) a)) a

    // ------------------------------------------------------------------
    // span kernels (generic scalar loop)
    // ------------------------------------------------------------------

    let inline private checkLengths (srcLen: int) (dstLen: int) =
        if dstLen < srcLen then
            raise (ArgumentException("destination span is shorter than the source span", "dst"))

    let inline private map64 ([<InlineIfLambda>] f: float -> float) (src: ReadOnlySpan<float>) (dst: Span<float>) =
        checkLengths src.Length dst.Length
        for i in 0 .. src.Length - 1 do
            dst.[i] <- f src.[i]

    let inline private map32 ([<InlineIfLambda>] f: float -> float) (src: ReadOnlySpan<float32>) (dst: Span<float32>) =
        checkLengths src.Length dst.Length
        for i in 0 .. src.Length - 1 do
            dst.[i] <- float32 (f (float src.[i]))

    let lgammaSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 lgamma src dst
    let digammaSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 digamma src dst
    let trigammaSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 trigamma src dst
    let erfSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 erf src dst
    let erfcSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 erfc src dst
    let erfinvSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 erfinv src dst
    let log1pSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 log1p src dst
    let expm1Span (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 expm1 src dst
    let normalCdfSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 normalCdf src dst
    let normalLogCdfSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 normalLogCdf src dst
    let normalIcdfSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 normalIcdf src dst
    let logSigmoidSpan (src: ReadOnlySpan<float>) (dst: Span<float>) = map64 logSigmoid src dst

    let lgammaSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 lgamma src dst
    let digammaSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 digamma src dst
    let trigammaSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 trigamma src dst
    let erfSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 erf src dst
    let erfcSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 erfc src dst
    let erfinvSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 erfinv src dst
    let log1pSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 log1p src dst
    let expm1SpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 expm1 src dst
    let normalCdfSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 normalCdf src dst
    let normalLogCdfSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 normalLogCdf src dst
    let normalIcdfSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 normalIcdf src dst
    let logSigmoidSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) = map32 logSigmoid src dst

    // ------------------------------------------------------------------
    // SIMD softplus / sigmoid
    //   softplus(x) = max(x,0) + log1p(exp(−|x|)),   u = exp(−|x|) ∈ (0,1]
    //   float64: log1p(u) by log1pUnit's series (one division; Vector{256,512}.Log<float> cost 3× the rest)
    //   float32: log1p(u) by its atanh series in float32
    //   sigmoid(x) = x ≥ 0 ? 1/(1+u) : u/(1+u)
    // float64: u by expNonPositive; float32: by Simd's ExpF32Kernel. Not Vector{256,512}.Exp/Log: BCL methods
    // that tier up on their own schedule, and the float32 one works in float64 with helpers that are not
    // inlined without dynamic PGO.
    // AggressiveOptimization: under tiered JIT these loops otherwise spend a long time in
    // tier-0/OSR code (measured 5-10x slower for the first ~second of use).
    // ------------------------------------------------------------------

    /// e^a for a ≤ 0 (NaN stays NaN, below −746 gives 0, as Math.Exp does): k = round(a/ln 2) by the 1.5·2⁵²
    /// shift (whose low bits then hold k), r = a − k·ln 2 in two parts (|r| ≤ ln 2/2), e^r by its Taylor series
    /// to r¹³ (the first term left out is below 5e-18; Estrin's scheme, a chain of 4 FMAs, not Horner's 13: these
    /// loops are bound by latency), times 2^(k + 54) (normal for k ≥ −1076) and 2⁻⁵⁴, so
    /// that a subnormal result is rounded once. Our own rather than Vector256.Exp: that one is a BCL method
    /// that the runtime JIT-compiles in tiers (tier-0 code, several times slower, until it tiers up), and it
    /// inlines into the kernels that call this.
    let inline internal expNonPositive256 (a: Vector256<float>) =
        let a = Avx.Max(Vector256.Create -746.0, a)
        let t = Vector256.FusedMultiplyAdd(a, Vector256.Create 1.4426950408889634, Vector256.Create 6755399441055744.0)
        let k = t - Vector256.Create 6755399441055744.0
        let r = Vector256.FusedMultiplyAdd(k, Vector256.Create -0.6931471805599453, a)
        let r = Vector256.FusedMultiplyAdd(k, Vector256.Create -2.3190468138462996e-17, r)
        let r2 = r * r
        let r4 = r2 * r2
        let r8 = r4 * r4
        let q0 = Vector256.FusedMultiplyAdd(Vector256.Create 1.0, r, Vector256.Create 1.0)
        let q1 = Vector256.FusedMultiplyAdd(Vector256.Create 0.16666666666666666, r, Vector256.Create 0.5)
        let q2 = Vector256.FusedMultiplyAdd(Vector256.Create 0.008333333333333333, r, Vector256.Create 0.041666666666666664)
        let q3 = Vector256.FusedMultiplyAdd(Vector256.Create 0.0001984126984126984, r, Vector256.Create 0.001388888888888889)
        let q4 = Vector256.FusedMultiplyAdd(Vector256.Create 2.7557319223985893e-06, r, Vector256.Create 2.48015873015873e-05)
        let q5 = Vector256.FusedMultiplyAdd(Vector256.Create 2.505210838544172e-08, r, Vector256.Create 2.755731922398589e-07)
        let q6 = Vector256.FusedMultiplyAdd(Vector256.Create 1.6059043836821613e-10, r, Vector256.Create 2.08767569878681e-09)
        let w0 = Vector256.FusedMultiplyAdd(q1, r2, q0)
        let w1 = Vector256.FusedMultiplyAdd(q3, r2, q2)
        let w2 = Vector256.FusedMultiplyAdd(q5, r2, q4)
        let w3 = q6
        let z0 = Vector256.FusedMultiplyAdd(w1, r4, w0)
        let z1 = Vector256.FusedMultiplyAdd(w3, r4, w2)
        let p = Vector256.FusedMultiplyAdd(z1, r8, z0)
        let scale = Vector256.ShiftLeft(t.AsUInt64() + Vector256.Create 1077UL, 52).AsDouble()
        p * scale * Vector256.Create 5.551115123125783e-17

    /// expNonPositive256 on 512-bit vectors.
    let inline internal expNonPositive512 (a: Vector512<float>) =
        let a = Avx512F.Max(Vector512.Create -746.0, a)
        let t = Vector512.FusedMultiplyAdd(a, Vector512.Create 1.4426950408889634, Vector512.Create 6755399441055744.0)
        let k = t - Vector512.Create 6755399441055744.0
        let r = Vector512.FusedMultiplyAdd(k, Vector512.Create -0.6931471805599453, a)
        let r = Vector512.FusedMultiplyAdd(k, Vector512.Create -2.3190468138462996e-17, r)
        let r2 = r * r
        let r4 = r2 * r2
        let r8 = r4 * r4
        let q0 = Vector512.FusedMultiplyAdd(Vector512.Create 1.0, r, Vector512.Create 1.0)
        let q1 = Vector512.FusedMultiplyAdd(Vector512.Create 0.16666666666666666, r, Vector512.Create 0.5)
        let q2 = Vector512.FusedMultiplyAdd(Vector512.Create 0.008333333333333333, r, Vector512.Create 0.041666666666666664)
        let q3 = Vector512.FusedMultiplyAdd(Vector512.Create 0.0001984126984126984, r, Vector512.Create 0.001388888888888889)
        let q4 = Vector512.FusedMultiplyAdd(Vector512.Create 2.7557319223985893e-06, r, Vector512.Create 2.48015873015873e-05)
        let q5 = Vector512.FusedMultiplyAdd(Vector512.Create 2.505210838544172e-08, r, Vector512.Create 2.755731922398589e-07)
        let q6 = Vector512.FusedMultiplyAdd(Vector512.Create 1.6059043836821613e-10, r, Vector512.Create 2.08767569878681e-09)
        let w0 = Vector512.FusedMultiplyAdd(q1, r2, q0)
        let w1 = Vector512.FusedMultiplyAdd(q3, r2, q2)
        let w2 = Vector512.FusedMultiplyAdd(q5, r2, q4)
        let w3 = q6
        let z0 = Vector512.FusedMultiplyAdd(w1, r4, w0)
        let z1 = Vector512.FusedMultiplyAdd(w3, r4, w2)
        let p = Vector512.FusedMultiplyAdd(z1, r8, z0)
        let scale = Vector512.ShiftLeft(t.AsUInt64() + Vector512.Create 1077UL, 52).AsDouble()
        p * scale * Vector512.Create 5.551115123125783e-17

    /// log1p u for u ∈ [0, 1], given c = 2/(2 + u) (the caller's one division): with s = u·c/2 ≤ 1/3,
    /// log1p u = 2·atanh s = u·c·Σ_k s^(2k)/(2k + 1), to k = 14 (the first term left out is below 2e-16 of the
    /// sum; Estrin's scheme in y = s²). u multiplies last, so that a subnormal u keeps its relative accuracy (log1p u = u there).
    let inline internal log1pUnit256 (u: Vector256<float>) (c: Vector256<float>) =
        let s = u * c * Vector256.Create 0.5
        let y = s * s
        let y2 = y * y
        let y4 = y2 * y2
        let y8 = y4 * y4
        let q0 = Vector256.FusedMultiplyAdd(Vector256.Create 0.3333333333333333, y, Vector256.Create 1.0)
        let q1 = Vector256.FusedMultiplyAdd(Vector256.Create 0.14285714285714285, y, Vector256.Create 0.2)
        let q2 = Vector256.FusedMultiplyAdd(Vector256.Create 0.09090909090909091, y, Vector256.Create 0.1111111111111111)
        let q3 = Vector256.FusedMultiplyAdd(Vector256.Create 0.06666666666666667, y, Vector256.Create 0.07692307692307693)
        let q4 = Vector256.FusedMultiplyAdd(Vector256.Create 0.05263157894736842, y, Vector256.Create 0.058823529411764705)
        let q5 = Vector256.FusedMultiplyAdd(Vector256.Create 0.043478260869565216, y, Vector256.Create 0.047619047619047616)
        let q6 = Vector256.FusedMultiplyAdd(Vector256.Create 0.037037037037037035, y, Vector256.Create 0.04)
        let q7 = Vector256.Create 0.034482758620689655
        let w0 = Vector256.FusedMultiplyAdd(q1, y2, q0)
        let w1 = Vector256.FusedMultiplyAdd(q3, y2, q2)
        let w2 = Vector256.FusedMultiplyAdd(q5, y2, q4)
        let w3 = Vector256.FusedMultiplyAdd(q7, y2, q6)
        let z0 = Vector256.FusedMultiplyAdd(w1, y4, w0)
        let z1 = Vector256.FusedMultiplyAdd(w3, y4, w2)
        let p = Vector256.FusedMultiplyAdd(z1, y8, z0)
        u * (c * p)

    /// log1pUnit256 on 512-bit vectors.
    let inline internal log1pUnit512 (u: Vector512<float>) (c: Vector512<float>) =
        let s = u * c * Vector512.Create 0.5
        let y = s * s
        let y2 = y * y
        let y4 = y2 * y2
        let y8 = y4 * y4
        let q0 = Vector512.FusedMultiplyAdd(Vector512.Create 0.3333333333333333, y, Vector512.Create 1.0)
        let q1 = Vector512.FusedMultiplyAdd(Vector512.Create 0.14285714285714285, y, Vector512.Create 0.2)
        let q2 = Vector512.FusedMultiplyAdd(Vector512.Create 0.09090909090909091, y, Vector512.Create 0.1111111111111111)
        let q3 = Vector512.FusedMultiplyAdd(Vector512.Create 0.06666666666666667, y, Vector512.Create 0.07692307692307693)
        let q4 = Vector512.FusedMultiplyAdd(Vector512.Create 0.05263157894736842, y, Vector512.Create 0.058823529411764705)
        let q5 = Vector512.FusedMultiplyAdd(Vector512.Create 0.043478260869565216, y, Vector512.Create 0.047619047619047616)
        let q6 = Vector512.FusedMultiplyAdd(Vector512.Create 0.037037037037037035, y, Vector512.Create 0.04)
        let q7 = Vector512.Create 0.034482758620689655
        let w0 = Vector512.FusedMultiplyAdd(q1, y2, q0)
        let w1 = Vector512.FusedMultiplyAdd(q3, y2, q2)
        let w2 = Vector512.FusedMultiplyAdd(q5, y2, q4)
        let w3 = Vector512.FusedMultiplyAdd(q7, y2, q6)
        let z0 = Vector512.FusedMultiplyAdd(w1, y4, w0)
        let z1 = Vector512.FusedMultiplyAdd(w3, y4, w2)
        let p = Vector512.FusedMultiplyAdd(z1, y8, z0)
        u * (c * p)

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private softplus512 (s: ReadOnlySpan<Vector512<float>>) (d: Span<Vector512<float>>) =
        let two = Vector512.Create 2.0
        let zero = Vector512<float>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = expNonPositive512 (-(Vector512.Abs x))
            d.[i] <- Vector512.Max(x, zero) + log1pUnit512 u (two / (two + u))

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private softplus256 (s: ReadOnlySpan<Vector256<float>>) (d: Span<Vector256<float>>) =
        let two = Vector256.Create 2.0
        let zero = Vector256<float>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = expNonPositive256 (-(Vector256.Abs x))
            d.[i] <- Vector256.Max(x, zero) + log1pUnit256 u (two / (two + u))

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private softplus512F (s: ReadOnlySpan<Vector512<float32>>) (d: Span<Vector512<float32>>) =
        let c (v: float32) = Vector512.Create v
        let zero = Vector512<float32>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = ExpF32Kernel.V512(-(Vector512.Abs x))
            // log1p u = 2 atanh t, t = u/(2 + u) ≤ 1/3: its series to t¹⁵ (the rest is below 3e-9 relative)
            let t = u / (c 2.0f + u)
            let t2 = t * t
            let mutable q = c (1.0f / 15.0f)
            q <- q * t2 + c (1.0f / 13.0f)
            q <- q * t2 + c (1.0f / 11.0f)
            q <- q * t2 + c (1.0f / 9.0f)
            q <- q * t2 + c (1.0f / 7.0f)
            q <- q * t2 + c (1.0f / 5.0f)
            q <- q * t2 + c (1.0f / 3.0f)
            q <- q * t2 + c 1.0f
            d.[i] <- Vector512.Max(x, zero) + (t + t) * q

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private softplus256F (s: ReadOnlySpan<Vector256<float32>>) (d: Span<Vector256<float32>>) =
        let c (v: float32) = Vector256.Create v
        let zero = Vector256<float32>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = ExpF32Kernel.V256(-(Vector256.Abs x))
            // log1p u = 2 atanh t, t = u/(2 + u) ≤ 1/3: its series to t¹⁵ (the rest is below 3e-9 relative)
            let t = u / (c 2.0f + u)
            let t2 = t * t
            let mutable q = c (1.0f / 15.0f)
            q <- q * t2 + c (1.0f / 13.0f)
            q <- q * t2 + c (1.0f / 11.0f)
            q <- q * t2 + c (1.0f / 9.0f)
            q <- q * t2 + c (1.0f / 7.0f)
            q <- q * t2 + c (1.0f / 5.0f)
            q <- q * t2 + c (1.0f / 3.0f)
            q <- q * t2 + c 1.0f
            d.[i] <- Vector256.Max(x, zero) + (t + t) * q

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private sigmoid512 (s: ReadOnlySpan<Vector512<float>>) (d: Span<Vector512<float>>) =
        let one = Vector512.Create 1.0
        let zero = Vector512<float>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = expNonPositive512 (-(Vector512.Abs x))
            let r = one / (one + u)
            d.[i] <- Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, zero), r, u * r)

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private sigmoid256 (s: ReadOnlySpan<Vector256<float>>) (d: Span<Vector256<float>>) =
        let one = Vector256.Create 1.0
        let zero = Vector256<float>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = expNonPositive256 (-(Vector256.Abs x))
            let r = one / (one + u)
            d.[i] <- Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, zero), r, u * r)

    /// softplus512 and sigmoid512 in one pass: one e^(−|x|) for both, the same operations as each, so the same bits.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private softplusSigmoid512 (s: ReadOnlySpan<Vector512<float>>) (d: Span<Vector512<float>>) (g: Span<Vector512<float>>) =
        let one = Vector512.Create 1.0
        let two = Vector512.Create 2.0
        let zero = Vector512<float>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = expNonPositive512 (-(Vector512.Abs x))
            d.[i] <- Vector512.Max(x, zero) + log1pUnit512 u (two / (two + u))
            let r = one / (one + u)
            g.[i] <- Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, zero), r, u * r)

    /// softplusSigmoid512 on 256-bit vectors.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private softplusSigmoid256 (s: ReadOnlySpan<Vector256<float>>) (d: Span<Vector256<float>>) (g: Span<Vector256<float>>) =
        let one = Vector256.Create 1.0
        let two = Vector256.Create 2.0
        let zero = Vector256<float>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = expNonPositive256 (-(Vector256.Abs x))
            d.[i] <- Vector256.Max(x, zero) + log1pUnit256 u (two / (two + u))
            let r = one / (one + u)
            g.[i] <- Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, zero), r, u * r)

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private sigmoid512F (s: ReadOnlySpan<Vector512<float32>>) (d: Span<Vector512<float32>>) =
        let one = Vector512.Create 1.0f
        let zero = Vector512<float32>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = ExpF32Kernel.V512(-(Vector512.Abs x))
            let r = one / (one + u)
            d.[i] <- Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, zero), r, u * r)

    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private sigmoid256F (s: ReadOnlySpan<Vector256<float32>>) (d: Span<Vector256<float32>>) =
        let one = Vector256.Create 1.0f
        let zero = Vector256<float32>.Zero
        for i in 0 .. s.Length - 1 do
            let x = s.[i]
            let u = ExpF32Kernel.V256(-(Vector256.Abs x))
            let r = one / (one + u)
            d.[i] <- Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, zero), r, u * r)

    /// Scalar tail of the float32 kernels, same formula in float32 arithmetic.
    let private softplusF32Scalar (x: float32) = float32 (softplus (float x))
    let private sigmoidF32Scalar (x: float32) = float32 (sigmoid (float x))

    /// dst.[i] <- softplus src.[i] (float64), SIMD (AVX-512 or AVX2) with a scalar remainder.
    let softplusSpan (src: ReadOnlySpan<float>) (dst: Span<float>) =
        checkLengths src.Length dst.Length
        let mutable done' = 0
        if Vector512.IsHardwareAccelerated && src.Length >= Vector512<float>.Count then
            let vs = MemoryMarshal.Cast<float, Vector512<float>> src
            softplus512 vs (MemoryMarshal.Cast<float, Vector512<float>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector512<float>.Count
        elif Vector256.IsHardwareAccelerated && src.Length >= Vector256<float>.Count then
            let vs = MemoryMarshal.Cast<float, Vector256<float>> src
            softplus256 vs (MemoryMarshal.Cast<float, Vector256<float>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector256<float>.Count
        for i in done' .. src.Length - 1 do
            dst.[i] <- softplus src.[i]

    /// dst.[i] <- sigmoid src.[i] (float64), SIMD with a scalar remainder.
    let sigmoidSpan (src: ReadOnlySpan<float>) (dst: Span<float>) =
        checkLengths src.Length dst.Length
        let mutable done' = 0
        if Vector512.IsHardwareAccelerated && src.Length >= Vector512<float>.Count then
            let vs = MemoryMarshal.Cast<float, Vector512<float>> src
            sigmoid512 vs (MemoryMarshal.Cast<float, Vector512<float>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector512<float>.Count
        elif Vector256.IsHardwareAccelerated && src.Length >= Vector256<float>.Count then
            let vs = MemoryMarshal.Cast<float, Vector256<float>> src
            sigmoid256 vs (MemoryMarshal.Cast<float, Vector256<float>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector256<float>.Count
        for i in done' .. src.Length - 1 do
            dst.[i] <- sigmoid src.[i]

    /// softplus src.[i] into dst.[i] and sigmoid src.[i] (its derivative) into sigma.[i] (float64) in one pass, the
    /// same bits as softplusSpan and sigmoidSpan: the compiled program's softplus keeps σ for its adjoint.
    let softplusSigmoidSpan (src: ReadOnlySpan<float>) (dst: Span<float>) (sigma: Span<float>) =
        checkLengths src.Length dst.Length
        checkLengths src.Length sigma.Length
        let mutable done' = 0
        if Vector512.IsHardwareAccelerated && src.Length >= Vector512<float>.Count then
            let vs = MemoryMarshal.Cast<float, Vector512<float>> src
            softplusSigmoid512 vs (MemoryMarshal.Cast<float, Vector512<float>>(dst.Slice(0, src.Length)))
                (MemoryMarshal.Cast<float, Vector512<float>>(sigma.Slice(0, src.Length)))
            done' <- vs.Length * Vector512<float>.Count
        elif Vector256.IsHardwareAccelerated && src.Length >= Vector256<float>.Count then
            let vs = MemoryMarshal.Cast<float, Vector256<float>> src
            softplusSigmoid256 vs (MemoryMarshal.Cast<float, Vector256<float>>(dst.Slice(0, src.Length)))
                (MemoryMarshal.Cast<float, Vector256<float>>(sigma.Slice(0, src.Length)))
            done' <- vs.Length * Vector256<float>.Count
        for i in done' .. src.Length - 1 do
            let x = src.[i]
            dst.[i] <- softplus x
            sigma.[i] <- sigmoid x

    /// dst.[i] <- softplus src.[i] (float32 SIMD arithmetic; a few float32 ulp).
    let softplusSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) =
        checkLengths src.Length dst.Length
        let mutable done' = 0
        if Vector512.IsHardwareAccelerated && src.Length >= Vector512<float32>.Count then
            let vs = MemoryMarshal.Cast<float32, Vector512<float32>> src
            softplus512F vs (MemoryMarshal.Cast<float32, Vector512<float32>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector512<float32>.Count
        elif Vector256.IsHardwareAccelerated && src.Length >= Vector256<float32>.Count then
            let vs = MemoryMarshal.Cast<float32, Vector256<float32>> src
            softplus256F vs (MemoryMarshal.Cast<float32, Vector256<float32>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector256<float32>.Count
        for i in done' .. src.Length - 1 do
            dst.[i] <- softplusF32Scalar src.[i]

    /// dst.[i] <- sigmoid src.[i] (float32 SIMD arithmetic; a few float32 ulp).
    let sigmoidSpanF32 (src: ReadOnlySpan<float32>) (dst: Span<float32>) =
        checkLengths src.Length dst.Length
        let mutable done' = 0
        if Vector512.IsHardwareAccelerated && src.Length >= Vector512<float32>.Count then
            let vs = MemoryMarshal.Cast<float32, Vector512<float32>> src
            sigmoid512F vs (MemoryMarshal.Cast<float32, Vector512<float32>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector512<float32>.Count
        elif Vector256.IsHardwareAccelerated && src.Length >= Vector256<float32>.Count then
            let vs = MemoryMarshal.Cast<float32, Vector256<float32>> src
            sigmoid256F vs (MemoryMarshal.Cast<float32, Vector256<float32>>(dst.Slice(0, src.Length)))
            done' <- vs.Length * Vector256<float32>.Count
        for i in done' .. src.Length - 1 do
            dst.[i] <- sigmoidF32Scalar src.[i]
