namespace FunctionalBayes

open System
open System.Globalization
open FunctionalBayes.Tensors

/// The posterior summary of one scalar quantity over all chains (Vehtari et al. 2021, as the R
/// package `posterior` and ArviZ compute it). Diagnostics that are undefined for the draws (a
/// constant quantity) are NaN, as `posterior` returns NA.
type ScalarSummary =
    { /// The scalar's name: the site name, with a 0-based index for elements of a tensor site (`theta[3]`, `w[1,2]`).
      Name: string
      /// The mean over all draws of all chains.
      Mean: float
      /// The standard deviation over all draws (denominator S − 1).
      Sd: float
      /// Monte Carlo standard error of the mean: sd / √ess_mean.
      McseMean: float
      /// Monte Carlo standard error of the sd (Kenney–Keeping variance of the variance).
      McseSd: float
      /// The 5 % quantile (R's type 7).
      Q5: float
      /// The median (R's type 7).
      Q50: float
      /// The 95 % quantile (R's type 7).
      Q95: float
      /// Bulk effective sample size: ESS of the rank-normalized split chains.
      EssBulk: float
      /// Tail effective sample size: the smaller ESS of the 5 % and 95 % quantile indicators.
      EssTail: float
      /// Rank-normalized split R̂: the larger of the bulk and the folded (tail) R̂.
      RHat: float }

/// The health of one NUTS chain after warmup.
type ChainHealth =
    { /// The chain's index (0-based).
      Chain: int
      /// Post-warmup draws of the chain.
      Draws: int
      /// Divergent transitions.
      Divergences: int
      /// Transitions whose tree reached the maximum depth.
      TreeDepthHits: int
      /// Energy Bayesian fraction of missing information (NaN when no energies were given).
      Ebfmi: float }

/// What the Stan-style warnings are computed from: numbers only.
type WarningInput =
    { /// Number of chains (ESS thresholds are 100 per chain).
      Chains: int
      /// The sampler's maximum tree depth (named in the tree-depth warning).
      MaxTreeDepth: int
      /// The target acceptance statistic (δ, named in the divergence warning).
      TargetAccept: float
      /// Per-chain health; empty when the draws carry no sampler statistics.
      Health: ChainHealth[]
      /// The per-scalar summaries.
      Summaries: ScalarSummary[] }

/// A Stan-style warning after a run.
[<RequireQualifiedAccess>]
type DiagnosticWarning =
    /// Divergent transitions after warmup (count, target acceptance).
    | Divergences of count: int * targetAccept: float
    /// Transitions that hit the maximum tree depth (count, the maximum depth).
    | TreeDepth of count: int * maxDepth: int
    /// Chains whose E-BFMI is below 0.3 (their indices and values).
    | LowEbfmi of chains: (int * float)[]
    /// Scalars with R̂ above 1.01 (the largest R̂, and the names).
    | HighRHat of largest: float * names: string[]
    /// Scalars whose bulk ESS is below 100 per chain (the threshold, and the names).
    | LowEssBulk of threshold: float * names: string[]
    /// Scalars whose tail ESS is below 100 per chain (the threshold, and the names).
    | LowEssTail of threshold: float * names: string[]

/// Convergence diagnostics (Vehtari, Gelman, Simpson, Carpenter, Bürkner 2021, arXiv:1903.08008):
/// rank-normalized split R̂, bulk and tail ESS (autocovariances by FFT, Geyer's initial monotone
/// sequence), Monte Carlo standard errors of the mean, sd and quantiles, E-BFMI, per-scalar
/// summaries and Stan-style warnings. Draws are given per chain: `draws.[chain].[iteration]`.
[<RequireQualifiedAccess>]
module Diagnostics =

    /// R̂ above this is reported (Vehtari et al. 2021).
    [<Literal>]
    let RHatThreshold = 1.01

    /// Bulk and tail ESS below this many per chain are reported (rstan).
    [<Literal>]
    let EssPerChainThreshold = 100.0

    /// E-BFMI below this is reported (Stan).
    [<Literal>]
    let EbfmiThreshold = 0.3

    // ---- validation ---------------------------------------------------------------------------

    let private minDraws = 4

    let internal validate (what: string) (draws: float[][]) =
        if draws.Length = 0 then
            invalidArg "draws" (sprintf "%s: no chains were given; pass the draws as draws.[chain].[iteration]." what)
        let n = draws.[0].Length
        draws
        |> Array.iteri (fun c ch ->
            let len = ch.Length
            if len <> n then
                invalidArg "draws"
                    (sprintf "%s: chain %d has %d draws but chain 0 has %d; every chain needs the same number of draws." what c len n))
        if n < minDraws then
            invalidArg "draws"
                (sprintf "%s: each chain has %d draws; the split-chain diagnostics need at least %d per chain." what n minDraws)
        draws
        |> Array.iteri (fun c ch ->
            ch
            |> Array.iteri (fun i v ->
                if not (Double.IsFinite v) then
                    invalidArg "draws" (sprintf "%s: draw %d of chain %d is %g; diagnostics need finite draws." what i c v)))

    // ---- small numeric helpers --------------------------------------------------------------

    let private mean (x: float[]) = Array.average x

    /// Sample variance (denominator n − 1).
    let private variance (x: float[]) =
        let m = mean x
        let mutable s = 0.0
        for v in x do
            s <- s + (v - m) * (v - m)
        s / float (x.Length - 1)

    let private flatten (draws: float[][]) = Array.concat draws

    /// Constant as `posterior` decides it (is_constant): max − min below machine epsilon (2⁻⁵²), so draws
    /// that differ only in their last bits are constant too.
    let private isConstant (draws: float[][]) =
        let mutable lo = Double.PositiveInfinity
        let mutable hi = Double.NegativeInfinity
        for ch in draws do
            for v in ch do
                lo <- min lo v
                hi <- max hi v
        abs (hi - lo) < 2.220446049250313e-16

    let private mapChains (f: float -> float) (draws: float[][]) = draws |> Array.map (Array.map f)

    /// The p-quantile of the values, R's default (type 7): linear interpolation between the order
    /// statistics at (S − 1)·p, written as R writes it, (1 − h)·a + h·b (a + h·(b − a) can differ in the
    /// last bit, which breaks ties in the folded draws of tail R̂).
    let quantile (p: float) (values: float[]) : float =
        if Double.IsNaN p || p < 0.0 || p > 1.0 then
            invalidArg "p" (sprintf "Diagnostics.quantile: p = %g is outside [0, 1]." p)
        if values.Length = 0 then invalidArg "values" "Diagnostics.quantile: no values."
        let s = Array.sort values
        let h = float (s.Length - 1) * p
        let lo = int (Math.Floor h)
        if lo >= s.Length - 1 then s.[s.Length - 1]
        else
            let a = s.[lo]
            let b = s.[lo + 1]
            let f = h - float lo
            if f > 0.0 && b <> a then (1.0 - f) * a + f * b else a

    // ---- FFT and autocovariance ---------------------------------------------------------------

    /// In-place iterative radix-2 FFT of (re, im) (length a power of two); inverse without the 1/n.
    let private fft (re: float[]) (im: float[]) (inverse: bool) =
        let n = re.Length
        // bit-reversal permutation
        let mutable j = 0
        for i in 1 .. n - 1 do
            let mutable bit = n >>> 1
            while j &&& bit <> 0 do
                j <- j ^^^ bit
                bit <- bit >>> 1
            j <- j ^^^ bit
            if i < j then
                let tr = re.[i]
                re.[i] <- re.[j]
                re.[j] <- tr
                let ti = im.[i]
                im.[i] <- im.[j]
                im.[j] <- ti
        let sign = if inverse then 1.0 else -1.0
        let mutable len = 2
        while len <= n do
            let ang = sign * 2.0 * Math.PI / float len
            let wr = Math.Cos ang
            let wi = Math.Sin ang
            let half = len / 2
            let mutable start = 0
            while start < n do
                let mutable cr = 1.0
                let mutable ci = 0.0
                for k in 0 .. half - 1 do
                    let a = start + k
                    let b = a + half
                    let xr = re.[b] * cr - im.[b] * ci
                    let xi = re.[b] * ci + im.[b] * cr
                    re.[b] <- re.[a] - xr
                    im.[b] <- im.[a] - xi
                    re.[a] <- re.[a] + xr
                    im.[a] <- im.[a] + xi
                    let ncr = cr * wr - ci * wi
                    ci <- cr * wi + ci * wr
                    cr <- ncr
                start <- start + len
            len <- len <<< 1

    /// The biased autocovariance estimate of a sequence at every lag t = 0 … N − 1,
    /// (1/N) Σ_{i<N−t} (x_i − x̄)(x_{i+t} − x̄) (Geyer 1992), computed by FFT with zero padding to a
    /// power of two of at least 2N, so no circular wrap-around enters.
    let autocovariance (x: float[]) : float[] =
        if x.Length = 0 then invalidArg "x" "Diagnostics.autocovariance: empty sequence."
        let n = x.Length
        let mutable m = 1
        while m < 2 * n do
            m <- m <<< 1
        let re = Array.zeroCreate m
        let im = Array.zeroCreate m
        let xm = mean x
        for i in 0 .. n - 1 do
            re.[i] <- x.[i] - xm
        fft re im false
        for k in 0 .. m - 1 do
            re.[k] <- re.[k] * re.[k] + im.[k] * im.[k]
            im.[k] <- 0.0
        fft re im true
        Array.init n (fun t -> re.[t] / (float m * float n))

    // ---- the basic diagnostics on (already split) chains ---------------------------------------

    /// Each chain cut in half (the middle draw of an odd-length chain is dropped): 2M chains of ⌊N/2⌋.
    let splitChains (draws: float[][]) : float[][] =
        draws
        |> Array.collect (fun ch ->
            let n = ch.Length
            let half = n / 2
            [| ch.[0 .. half - 1]; ch.[n - half .. n - 1] |])

    /// Rank normalization: every draw replaced by Φ⁻¹((r − 3/8)/(S + 1/4)), r its rank among all S
    /// draws of all chains (ties get their average rank), as `posterior::z_scale` (Blom, c = 3/8).
    let rankNormalize (draws: float[][]) : float[][] =
        let flat = flatten draws
        let s = flat.Length
        let order = Array.init s id
        Array.Sort(Array.copy flat, order)
        let ranks = Array.zeroCreate s
        let mutable i = 0
        while i < s do
            let mutable j = i
            while j + 1 < s && flat.[order.[j + 1]] = flat.[order.[i]] do
                j <- j + 1
            let avg = float (i + j) / 2.0 + 1.0 // 1-based average rank of the tie group
            for k in i .. j do
                ranks.[order.[k]] <- avg
            i <- j + 1
        let denom = float s + 0.25
        let z = ranks |> Array.map (fun r -> Special.normalIcdf ((r - 0.375) / denom))
        let n = draws.[0].Length
        Array.init draws.Length (fun c -> z.[c * n .. c * n + n - 1])

    /// The basic (potential scale reduction) R̂ of the chains as given:
    /// √((B/W + n − 1)/n) with B = n·var(chain means) and W = mean(chain variances).
    /// NaN for constant draws. Split the chains first for split-R̂.
    let rhatBasic (draws: float[][]) : float =
        if draws.Length < 1 || draws.[0].Length < 2 then
            invalidArg "draws" "Diagnostics.rhatBasic: needs at least 2 draws per chain."
        if isConstant draws then Double.NaN
        else
            let n = float draws.[0].Length
            let means = draws |> Array.map mean
            let vars = draws |> Array.map variance
            let b = if draws.Length > 1 then n * variance means else 0.0
            let w = mean vars
            Math.Sqrt((b / w + n - 1.0) / n)

    /// The effective sample size of the chains as given (`posterior`'s `.ess`): chain autocovariances
    /// by FFT averaged over chains, ρ_t = 1 − (W − acov_t)/var⁺, Geyer's initial positive and initial
    /// monotone sequences, τ = −1 + 2 Σ_{t<T} ρ_t + ρ_T, capped at τ ≥ 1/log10(S); ESS = S/τ.
    /// NaN for constant draws or fewer than 3 draws per chain. Split the chains first for split-ESS.
    let essBasic (draws: float[][]) : float =
        let chains = draws.Length
        let n = if chains = 0 then 0 else draws.[0].Length
        if n < 3 || isConstant draws then Double.NaN
        else
            let acovs = draws |> Array.map autocovariance
            let acov t =
                let mutable s = 0.0
                for c in 0 .. chains - 1 do
                    s <- s + acovs.[c].[t]
                s / float chains
            let nf = float n
            let meanVar = acov 0 * nf / (nf - 1.0)
            let varPlus =
                let v = meanVar * (nf - 1.0) / nf
                if chains > 1 then v + variance (draws |> Array.map mean) else v
            let rho = Array.zeroCreate n
            let mutable t = 0
            let mutable rhoEven = 1.0
            rho.[0] <- rhoEven
            let mutable rhoOdd = 1.0 - (meanVar - acov 1) / varPlus
            rho.[1] <- rhoOdd
            while t < n - 5 && not (Double.IsNaN(rhoEven + rhoOdd)) && rhoEven + rhoOdd > 0.0 do
                t <- t + 2
                rhoEven <- 1.0 - (meanVar - acov t) / varPlus
                rhoOdd <- 1.0 - (meanVar - acov (t + 1)) / varPlus
                if rhoEven + rhoOdd >= 0.0 then
                    rho.[t] <- rhoEven
                    rho.[t + 1] <- rhoOdd
            let maxT = t
            // the last even term enters the improved estimate (lower variance in the antithetic case)
            if rhoEven > 0.0 then rho.[maxT] <- rhoEven
            // Geyer's initial monotone sequence
            t <- 0
            while t <= maxT - 4 do
                t <- t + 2
                if rho.[t] + rho.[t + 1] > rho.[t - 2] + rho.[t - 1] then
                    rho.[t] <- (rho.[t - 2] + rho.[t - 1]) / 2.0
                    rho.[t + 1] <- rho.[t]
            let s = float (chains * n)
            // R's rho_hat_t[1:max_t] is rho_hat_t[1] when max_t = 0 (1:0 is c(1, 0), and index 0 selects
            // nothing): the truncation at lag 0 still sums ρ̂₀, so ESS = S/2 there, as `posterior` gives.
            let mutable sum = 0.0
            for k in 0 .. max 0 (maxT - 1) do
                sum <- sum + rho.[k]
            let tau = max (-1.0 + 2.0 * sum + rho.[maxT]) (1.0 / Math.Log10 s)
            s / tau

    // ---- the reported diagnostics -------------------------------------------------------------

    /// Rank-normalized split R̂ of the bulk: rhatBasic (rankNormalize (splitChains draws)).
    let rhatBulk (draws: float[][]) : float =
        validate "Diagnostics.rhatBulk" draws
        rhatBasic (rankNormalize (splitChains draws))

    /// Rank-normalized split R̂ of the folded draws |x − median(x)| (the tails).
    let rhatTail (draws: float[][]) : float =
        validate "Diagnostics.rhatTail" draws
        let med = quantile 0.5 (flatten draws)
        rhatBasic (rankNormalize (splitChains (mapChains (fun v -> abs (v - med)) draws)))

    /// R̂ as reported: the larger of the bulk and the folded rank-normalized split R̂.
    let rhat (draws: float[][]) : float =
        let b = rhatBulk draws
        let t = rhatTail draws
        if Double.IsNaN b || Double.IsNaN t then Double.NaN else max b t

    /// Bulk ESS: essBasic (rankNormalize (splitChains draws)).
    let essBulk (draws: float[][]) : float =
        validate "Diagnostics.essBulk" draws
        essBasic (rankNormalize (splitChains draws))

    /// ESS of the p-quantile: essBasic of the split indicator I[x ≤ quantile(x, p)].
    let essQuantile (p: float) (draws: float[][]) : float =
        validate "Diagnostics.essQuantile" draws
        if isConstant draws then Double.NaN
        else
            let q = quantile p (flatten draws)
            essBasic (splitChains (mapChains (fun v -> if v <= q then 1.0 else 0.0) draws))

    /// Tail ESS: the smaller of the 5 % and 95 % quantile ESS.
    let essTail (draws: float[][]) : float =
        let a = essQuantile 0.05 draws
        let b = essQuantile 0.95 draws
        if Double.IsNaN a || Double.IsNaN b then Double.NaN else min a b

    /// ESS of the mean: essBasic (splitChains draws), no rank normalization.
    let essMean (draws: float[][]) : float =
        validate "Diagnostics.essMean" draws
        essBasic (splitChains draws)

    /// Monte Carlo standard error of the mean: sd(x)/√ess_mean(x).
    let mcseMean (draws: float[][]) : float =
        let ess = essMean draws
        Math.Sqrt(variance (flatten draws) / ess)

    /// Monte Carlo standard error of the sd (Kenney–Keeping): with c = x − x̄ and E = mean(c²),
    /// var(var) = (mean(c⁴) − E²)/ess_mean(c²) and mcse = √(var(var)/E/4).
    let mcseSd (draws: float[][]) : float =
        validate "Diagnostics.mcseSd" draws
        let m = mean (flatten draws)
        let c2 = mapChains (fun v -> (v - m) * (v - m)) draws
        let flat2 = flatten c2
        let e = mean flat2
        let m4 = flat2 |> Array.averageBy (fun v -> v * v)
        let ess = essBasic (splitChains c2)
        Math.Sqrt((m4 - e * e) / ess / e / 4.0)

    // ---- Beta quantile (for the quantile MCSE) ------------------------------------------------

    /// Continued fraction of the regularized incomplete beta function (modified Lentz).
    let private betaCf (a: float) (b: float) (x: float) =
        let tiny = 1e-300
        let qab = a + b
        let qap = a + 1.0
        let qam = a - 1.0
        let mutable c = 1.0
        let mutable d = 1.0 - qab * x / qap
        if abs d < tiny then d <- tiny
        d <- 1.0 / d
        let mutable h = d
        let mutable m = 1
        let mutable fin = false
        while not fin && m <= 100000 do
            let fm = float m
            let m2 = 2.0 * fm
            let aa = fm * (b - fm) * x / ((qam + m2) * (a + m2))
            d <- 1.0 + aa * d
            if abs d < tiny then d <- tiny
            c <- 1.0 + aa / c
            if abs c < tiny then c <- tiny
            d <- 1.0 / d
            h <- h * d * c
            let aa2 = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
            d <- 1.0 + aa2 * d
            if abs d < tiny then d <- tiny
            c <- 1.0 + aa2 / c
            if abs c < tiny then c <- tiny
            d <- 1.0 / d
            let del = d * c
            h <- h * del
            if abs (del - 1.0) < 1e-15 then fin <- true
            m <- m + 1
        h

    /// The regularized incomplete beta function I_x(a, b).
    let internal betaInc (a: float) (b: float) (x: float) =
        if x <= 0.0 then 0.0
        elif x >= 1.0 then 1.0
        else
            let lbeta = Special.lgamma a + Special.lgamma b - Special.lgamma (a + b)
            let front = Math.Exp(a * Math.Log x + b * Math.Log(1.0 - x) - lbeta)
            if x < (a + 1.0) / (a + b + 2.0) then front * betaCf a b x / a
            else 1.0 - front * betaCf b a (1.0 - x) / b

    /// The p-quantile of Beta(a, b), by bisection on I_x(a, b) to machine precision.
    let internal betaQuantile (p: float) (a: float) (b: float) =
        let mutable lo = 0.0
        let mutable hi = 1.0
        let mutable it = 0
        while it < 200 && hi - lo > 1e-16 do
            let mid = 0.5 * (lo + hi)
            if betaInc a b mid < p then lo <- mid else hi <- mid
            it <- it + 1
        0.5 * (lo + hi)

    /// Monte Carlo standard error of the p-quantile (`posterior::mcse_quantile`): with the
    /// quantile's ESS, take the Beta(ess·p + 1, ess·(1 − p) + 1) quantiles at Φ(∓1) = 0.1586553 and
    /// 0.8413447, map them to order statistics (⌊a₁S⌋ and ⌈a₂S⌉, 1-based, clamped to 1 … S) and
    /// halve the distance between those draws.
    let mcseQuantile (p: float) (draws: float[][]) : float =
        let ess = essQuantile p draws
        if Double.IsNaN ess then Double.NaN
        else
            let sorted = Array.sort (flatten draws)
            let s = sorted.Length
            let a1 = betaQuantile 0.1586553 (ess * p + 1.0) (ess * (1.0 - p) + 1.0)
            let a2 = betaQuantile 0.8413447 (ess * p + 1.0) (ess * (1.0 - p) + 1.0)
            let i1 = max (int (Math.Floor(a1 * float s))) 1
            let i2 = min (int (Math.Ceiling(a2 * float s))) s
            (sorted.[i2 - 1] - sorted.[i1 - 1]) / 2.0

    /// Energy Bayesian fraction of missing information of one chain, as ArviZ computes it:
    /// mean((E_i − E_{i−1})²) / var(E) (variance with denominator n).
    let ebfmi (energy: float[]) : float =
        if energy.Length < 2 then
            invalidArg "energy" "Diagnostics.ebfmi: needs at least 2 energies."
        energy
        |> Array.iteri (fun i v ->
            if not (Double.IsFinite v) then
                invalidArg "energy" (sprintf "Diagnostics.ebfmi: energy %d is %g; energies must be finite." i v))
        // a constant energy is 0/0 (posterior and ArviZ give NA/NaN), not the 0 that rounding in the mean
        // would make of it (and no low-E-BFMI warning)
        if isConstant [| energy |] then Double.NaN
        else
            let m = mean energy
            let mutable num = 0.0
            for i in 1 .. energy.Length - 1 do
                let d = energy.[i] - energy.[i - 1]
                num <- num + d * d
            let mutable den = 0.0
            for v in energy do
                den <- den + (v - m) * (v - m)
            (num / float (energy.Length - 1)) / (den / float energy.Length)

    // ---- summaries ------------------------------------------------------------------------------

    /// The summary of one scalar from its draws, draws.[chain].[iteration].
    let summarize (name: string) (draws: float[][]) : ScalarSummary =
        validate (sprintf "Diagnostics.summarize (%s)" name) draws
        let flat = flatten draws
        let constant = isConstant draws
        { Name = name
          Mean = mean flat
          Sd = Math.Sqrt(variance flat)
          McseMean = (if constant then Double.NaN else mcseMean draws)
          McseSd = (if constant then Double.NaN else mcseSd draws)
          Q5 = quantile 0.05 flat
          Q50 = quantile 0.5 flat
          Q95 = quantile 0.95 flat
          EssBulk = essBulk draws
          EssTail = essTail draws
          RHat = rhat draws }

    /// The name of element `index` (row-major, 0-based) of a site of the given shape:
    /// `site` for a scalar, `site[i]`, `site[i,j]`, … otherwise.
    let elementName (site: string) (shape: int[]) (index: int) : string =
        if shape.Length = 0 then site
        else
            let idx = Array.zeroCreate shape.Length
            let mutable r = index
            for d in shape.Length - 1 .. -1 .. 0 do
                idx.[d] <- r % shape.[d]
                r <- r / shape.[d]
            let parts = idx |> Array.map (fun i -> i.ToString(CultureInfo.InvariantCulture))
            sprintf "%s[%s]" site (String.Join(",", parts))

    /// The draws of every scalar element of a site tensor shaped [chains; draws; ...site shape],
    /// as (name, draws.[chain].[iteration]) in row-major element order.
    let siteScalars (site: string) (draws: Tensor) : (string * float[][])[] =
        let shape = draws.Shape
        if shape.Length < 2 then
            invalidArg "draws"
                (sprintf "Diagnostics: site '%s' has draws of shape %s; expected [chains; draws; ...site shape]."
                    site (Shape.format shape))
        let chains = shape.[0]
        let n = shape.[1]
        let siteShape = shape.[2..]
        let k = Array.fold (*) 1 siteShape
        let data = Tensor.toArray draws
        Array.init k (fun e ->
            elementName site siteShape e,
            Array.init chains (fun c -> Array.init n (fun i -> data.[(c * n + i) * k + e])))

    /// Summaries of every scalar element of every site; each tensor is shaped
    /// [chains; draws; ...site shape]. Sites in the map's order, elements row-major, named as
    /// `elementName` does. The scalars are summarised in parallel (the result does not depend on it).
    let summarizeSites (draws: Map<string, Tensor>) : ScalarSummary[] =
        let scalars = draws |> Map.toArray |> Array.collect (fun (site, t) -> siteScalars site t)
        // bad input is refused on this thread, with its own exception, before the parallel work
        for name, d in scalars do validate (sprintf "Diagnostics.summarize (%s)" name) d
        scalars |> Array.Parallel.map (fun (name, d) -> summarize name d)

    /// The health of one chain: divergences, tree-depth hits (tree depth ≥ maxTreeDepth) and E-BFMI
    /// (NaN when energy is empty).
    /// The summary as a text table, one row per scalar (name, mean, sd, mcse, 5 %, 50 %, 95 %, ess_bulk, ess_tail,
    /// r_hat): what the examples print, and the C# facade's `Summary().ToString()`.
    let formatTable (rows: ScalarSummary[]) : string =
        let width = rows |> Array.fold (fun w r -> max w r.Name.Length) 9
        let sb = System.Text.StringBuilder()
        let line (s: string) = sb.Append(s.TrimEnd()).Append('\n') |> ignore
        line (sprintf "%-*s %10s %10s %10s %10s %10s %10s %9s %9s %7s" width "parameter" "mean" "sd" "mcse" "5%" "50%" "95%" "ess_bulk" "ess_tail" "r_hat")
        for r in rows do
            line (sprintf "%-*s %10.4g %10.4g %10.4g %10.4g %10.4g %10.4g %9.0f %9.0f %7.3f" width r.Name r.Mean r.Sd r.McseMean r.Q5 r.Q50 r.Q95 r.EssBulk r.EssTail r.RHat)
        sb.ToString()

    let chainHealth (chain: int) (maxTreeDepth: int) (divergent: bool[]) (treeDepth: int[]) (energy: float[]) : ChainHealth =
        if divergent.Length <> treeDepth.Length || (energy.Length <> 0 && energy.Length <> divergent.Length) then
            invalidArg "divergent"
                (sprintf "Diagnostics.chainHealth: chain %d has %d divergence flags, %d tree depths and %d energies; they must have one per draw."
                    chain divergent.Length treeDepth.Length energy.Length)
        { Chain = chain
          Draws = divergent.Length
          Divergences = divergent |> Array.sumBy (fun d -> if d then 1 else 0)
          TreeDepthHits = treeDepth |> Array.sumBy (fun d -> if d >= maxTreeDepth then 1 else 0)
          Ebfmi = if energy.Length = 0 then Double.NaN else ebfmi energy }

    // ---- warnings -------------------------------------------------------------------------------

    /// The warnings a run deserves, in Stan's order: divergences, tree depth, E-BFMI, R̂, bulk ESS,
    /// tail ESS. NaN diagnostics (constant quantities) raise none.
    let warnings (input: WarningInput) : DiagnosticWarning list =
        let div = input.Health |> Array.sumBy (fun h -> h.Divergences)
        let depth = input.Health |> Array.sumBy (fun h -> h.TreeDepthHits)
        let lowE =
            input.Health
            |> Array.filter (fun h -> not (Double.IsNaN h.Ebfmi) && h.Ebfmi < EbfmiThreshold)
            |> Array.map (fun h -> h.Chain, h.Ebfmi)
        let highR = input.Summaries |> Array.filter (fun s -> s.RHat > RHatThreshold)
        let essMin = EssPerChainThreshold * float input.Chains
        let lowBulk = input.Summaries |> Array.filter (fun s -> s.EssBulk < essMin)
        let lowTail = input.Summaries |> Array.filter (fun s -> s.EssTail < essMin)
        let names (xs: ScalarSummary[]) = xs |> Array.map (fun s -> s.Name)
        [ if div > 0 then DiagnosticWarning.Divergences (div, input.TargetAccept)
          if depth > 0 then DiagnosticWarning.TreeDepth (depth, input.MaxTreeDepth)
          if lowE.Length > 0 then DiagnosticWarning.LowEbfmi lowE
          if highR.Length > 0 then
              DiagnosticWarning.HighRHat (highR |> Array.map (fun s -> s.RHat) |> Array.max, names highR)
          if lowBulk.Length > 0 then DiagnosticWarning.LowEssBulk (essMin, names lowBulk)
          if lowTail.Length > 0 then DiagnosticWarning.LowEssTail (essMin, names lowTail) ]

    let private listNames (names: string[]) =
        let shown = names |> Array.truncate 10
        let more = if names.Length > 10 then sprintf " and %d more" (names.Length - 10) else ""
        String.Join(", ", shown) + more

    /// Stan's text for a warning (rstan's wording, with the names of the scalars concerned).
    let warningText (w: DiagnosticWarning) : string =
        let inv (x: float) (fmt: string) = x.ToString(fmt, CultureInfo.InvariantCulture)
        match w with
        | DiagnosticWarning.Divergences (n, delta) ->
            sprintf "There were %d divergent transitions after warmup. Increasing adapt_delta (target acceptance) above %s may help. See https://mc-stan.org/misc/warnings.html#divergent-transitions-after-warmup"
                n (inv delta "0.###")
        | DiagnosticWarning.TreeDepth (n, d) ->
            sprintf "There were %d transitions after warmup that exceeded the maximum treedepth. Increase max_treedepth above %d. See https://mc-stan.org/misc/warnings.html#maximum-treedepth-exceeded"
                n d
        | DiagnosticWarning.LowEbfmi chains ->
            let detail = chains |> Array.map (fun (c, e) -> sprintf "chain %d: %s" c (inv e "0.###"))
            sprintf "There were %d chains where the estimated Bayesian Fraction of Missing Information was low (%s). See https://mc-stan.org/misc/warnings.html#bfmi-low"
                chains.Length (String.Join(", ", detail))
        | DiagnosticWarning.HighRHat (largest, names) ->
            sprintf "The largest R-hat is %s, indicating chains have not mixed (R-hat > %s for %s). Running the chains for more iterations may help. See https://mc-stan.org/misc/warnings.html#r-hat"
                (inv largest "0.00") (inv RHatThreshold "0.00") (listNames names)
        | DiagnosticWarning.LowEssBulk (threshold, names) ->
            sprintf "Bulk Effective Samples Size (ESS) is too low (below %s for %s), indicating posterior means and medians may be unreliable. Running the chains for more iterations may help. See https://mc-stan.org/misc/warnings.html#bulk-ess"
                (inv threshold "0") (listNames names)
        | DiagnosticWarning.LowEssTail (threshold, names) ->
            sprintf "Tail Effective Samples Size (ESS) is too low (below %s for %s), indicating posterior variances and tail quantiles may be unreliable. Running the chains for more iterations may help. See https://mc-stan.org/misc/warnings.html#tail-ess"
                (inv threshold "0") (listNames names)

    /// The warning texts of a run (empty when all is well).
    let warningMessages (input: WarningInput) : string list = warnings input |> List.map warningText

type DiagnosticWarning with
    /// Stan's text for the warning (Diagnostics.warningText).
    member w.Text = Diagnostics.warningText w
