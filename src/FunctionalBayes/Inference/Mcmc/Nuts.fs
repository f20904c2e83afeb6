namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// The No-U-Turn sampler as Stan runs it (base_nuts): multinomial sampling over the trajectory, uniform
/// progressive sampling inside subtrees and biased progressive sampling at the top, the generalized
/// U-turn criterion with the two extra checks across subtrees at every merge, divergence when the
/// energy error exceeds MaxDeltaH (NaN counts as divergent), Stan's accept statistic.
/// The sampler owns scratch buffers (one per chain, not thread-safe); nothing is allocated per leapfrog.
[<OptimizeFromFirstCall>]
type NutsKernel internal (ev: IGradientEvaluator, maxDepthCapacity: int) =
    let dim = ev.Dim
    let dyn = Dynamics(ev)
    let vec () = Array.zeroCreate<float> dim
    // a span copy (a memmove): Array.blit takes Array.Copy's untyped overload, with its type checks, at every leapfrog
    let copyInto (src: float[]) (dst: float[]) = ReadOnlySpan<float>(src, 0, dim).CopyTo(Span<float>(dst, 0, dim))
    let z = PhasePoint(dim)
    let zFwd = PhasePoint(dim)
    let zBck = PhasePoint(dim)
    let zSample = PhasePoint(dim)
    let zPropose = PhasePoint(dim)
    let pFwdFwd, pSharpFwdFwd, pFwdBck, pSharpFwdBck = vec (), vec (), vec (), vec ()
    let pBckFwd, pSharpBckFwd, pBckBck, pSharpBckBck = vec (), vec (), vec (), vec ()
    let rho, rhoFwd, rhoBck, rhoExt = vec (), vec (), vec (), vec ()
    // per recursion level d (1..capacity): the locals of build_tree at that depth
    let levels = maxDepthCapacity + 1
    let pInitEnd = Array.init levels (fun _ -> vec ())
    let pSharpInitEnd = Array.init levels (fun _ -> vec ())
    let rhoInit = Array.init levels (fun _ -> vec ())
    let zProposeFinal = Array.init levels (fun _ -> PhasePoint(dim))
    let pFinalBeg = Array.init levels (fun _ -> vec ())
    let pSharpFinalBeg = Array.init levels (fun _ -> vec ())
    let rhoFinal = Array.init levels (fun _ -> vec ())
    let rhoTmp = Array.init levels (fun _ -> vec ())
    // per-transition scalars
    let mutable eps = 1.0
    let mutable h0 = 0.0
    let mutable maxDeltaH = NutsParameters.DefaultMaxDeltaH
    let mutable nLeapfrog = 0
    let mutable sumMetroProb = 0.0
    let mutable sumSymProb = 0.0
    let mutable divergent = false
    let mutable uKey = RngKey(0u, 0u)
    let mutable uCount = 0

    let uniform () =
        let r = Rng.uniformAt uKey uCount
        uCount <- uCount + 1
        r

    static let dot (a: float[]) (b: float[]) = Simd.Dot(ReadOnlySpan a, ReadOnlySpan b)

    static let add (a: float[]) (b: float[]) (dest: float[]) = Simd.Add(ReadOnlySpan a, ReadOnlySpan b, Span dest)

    /// Stan's generalized no-U-turn criterion: p♯₋·ρ > 0 and p♯₊·ρ > 0.
    static member Criterion(pSharpMinus: float[], pSharpPlus: float[], rho: float[]) =
        dot pSharpPlus rho > 0.0 && dot pSharpMinus rho > 0.0

    /// The checks at the merge of two adjacent subtrees A and B (A's outer end a0 and inner end a1 meet
    /// B's inner end b0; b1 is B's outer end): the merged tree (ρ_A + ρ_B between a0 and b1), and Stan's two
    /// extra checks, A extended by b0 (ρ_A + p_b0 between a0 and b0) and B extended by a1 (ρ_B + p_a1
    /// between a1 and b1). `scratch` is overwritten. True when no U-turn is found.
    static member MergeCriterion(pSharpA0: float[], pA1: float[], pSharpA1: float[], rhoA: float[],
                                 pB0: float[], pSharpB0: float[], pSharpB1: float[], rhoB: float[], scratch: float[]) =
        add rhoA rhoB scratch
        NutsKernel.Criterion(pSharpA0, pSharpB1, scratch)
        && (add rhoA pB0 scratch; NutsKernel.Criterion(pSharpA0, pSharpB0, scratch))
        && (add rhoB pA1 scratch; NutsKernel.Criterion(pSharpA1, pSharpB1, scratch))

    member private this.BuildTree(depth: int, zProp: PhasePoint, pSharpBeg: float[], pSharpEnd: float[], rhoAcc: float[],
                                  pBeg: float[], pEnd: float[], sign: float, logSumWeight: byref<float>) : bool =
        if depth = 0 then
            dyn.Leapfrog(z, sign * eps)
            z.Index <- z.Index + (if sign > 0.0 then 1 else -1)
            nLeapfrog <- nLeapfrog + 1
            let h = dyn.H z
            if h - h0 > maxDeltaH then divergent <- true
            logSumWeight <- Dyn.logSumExp logSumWeight (h0 - h)
            sumMetroProb <- sumMetroProb + (if h0 - h > 0.0 then 1.0 else exp (h0 - h))
            // nuts-rs counts a divergent leapfrog as 0 whatever the threshold
            sumSymProb <- sumSymProb + (if divergent then 0.0 else Dyn.symmetricAccept h0 h)
            zProp.CopyFrom z
            copyInto z.V pSharpBeg
            copyInto z.V pSharpEnd
            add rhoAcc z.P rhoAcc
            copyInto z.P pBeg
            copyInto z.P pEnd
            not divergent
        else
            // the initial subtree
            let mutable lswInit = Double.NegativeInfinity
            let rInit = rhoInit.[depth]
            Array.Clear rInit
            let validInit = this.BuildTree(depth - 1, zProp, pSharpBeg, pSharpInitEnd.[depth], rInit, pBeg, pInitEnd.[depth], sign, &lswInit)
            if not validInit then false
            else
                // the final subtree
                let zFinal = zProposeFinal.[depth]
                let mutable lswFinal = Double.NegativeInfinity
                let rFinal = rhoFinal.[depth]
                Array.Clear rFinal
                let validFinal = this.BuildTree(depth - 1, zFinal, pSharpFinalBeg.[depth], pSharpEnd, rFinal, pFinalBeg.[depth], pEnd, sign, &lswFinal)
                if not validFinal then false
                else
                    // uniform progressive sampling between the two halves
                    let lswSubtree = Dyn.logSumExp lswInit lswFinal
                    logSumWeight <- Dyn.logSumExp logSumWeight lswSubtree
                    if lswFinal > lswSubtree then zProp.CopyFrom zFinal
                    elif uniform () < exp (lswFinal - lswSubtree) then zProp.CopyFrom zFinal
                    let rSub = rhoTmp.[depth]
                    add rInit rFinal rSub
                    add rhoAcc rSub rhoAcc
                    // the whole subtree, then the two checks between its halves
                    NutsKernel.MergeCriterion(pSharpBeg, pInitEnd.[depth], pSharpInitEnd.[depth], rInit,
                                               pFinalBeg.[depth], pSharpFinalBeg.[depth], pSharpEnd, rFinal, rSub)

    /// The flat dimension.
    member _.Dim = dim

    /// The evaluator the sampler calls.
    member internal _.Evaluator = ev

    /// One NUTS transition from `state` with the given settings and key.
    member this.Step(p: NutsParameters, key: RngKey, state: HmcState) : HmcState * TransitionInfo =
        Dyn.checkState "Nuts.step" dim state
        if p.MaxTreeDepth > maxDepthCapacity then
            invalidArg "parameters" (sprintf "Nuts.step: MaxTreeDepth %d exceeds the %d this sampler was built for." p.MaxTreeDepth maxDepthCapacity)
        dyn.Metric <- p.Metric
        eps <- p.StepSize
        maxDeltaH <- p.MaxDeltaH
        let kMom, kU = Rng.split key
        uKey <- kU
        uCount <- 0
        dyn.Load(state, z)
        dyn.SampleMomentum(kMom, z)
        zFwd.CopyFrom z
        zBck.CopyFrom z
        zSample.CopyFrom z
        zPropose.CopyFrom z
        copyInto z.P pFwdFwd
        copyInto z.V pSharpFwdFwd
        copyInto z.P pFwdBck
        copyInto z.P pBckFwd
        copyInto z.P pBckBck
        copyInto pSharpFwdFwd pSharpFwdBck
        copyInto pSharpFwdFwd pSharpBckFwd
        copyInto pSharpFwdFwd pSharpBckBck
        copyInto z.P rho
        let mutable logSumWeight = 0.0
        h0 <- dyn.H z
        nLeapfrog <- 0
        sumMetroProb <- 0.0
        sumSymProb <- 0.0
        divergent <- false
        let mutable depth = 0
        let mutable fin = false
        while not fin && depth < p.MaxTreeDepth do
            Array.Clear rhoFwd
            Array.Clear rhoBck
            let mutable lswSubtree = Double.NegativeInfinity
            let valid =
                if uniform () > 0.5 then
                    // extend forward: the old trajectory becomes the backward subtree
                    z.CopyFrom zFwd
                    copyInto rho rhoBck
                    copyInto pFwdFwd pBckFwd
                    copyInto pSharpFwdFwd pSharpBckFwd
                    let v = this.BuildTree(depth, zPropose, pSharpFwdBck, pSharpFwdFwd, rhoFwd, pFwdBck, pFwdFwd, 1.0, &lswSubtree)
                    zFwd.CopyFrom z
                    v
                else
                    // extend backward: the old trajectory becomes the forward subtree
                    z.CopyFrom zBck
                    copyInto rho rhoFwd
                    copyInto pBckBck pFwdBck
                    copyInto pSharpBckBck pSharpFwdBck
                    let v = this.BuildTree(depth, zPropose, pSharpBckFwd, pSharpBckBck, rhoBck, pBckFwd, pBckBck, -1.0, &lswSubtree)
                    zBck.CopyFrom z
                    v
            if not valid then fin <- true
            else
                depth <- depth + 1
                // biased progressive sampling at the top
                if lswSubtree > logSumWeight then zSample.CopyFrom zPropose
                elif uniform () < exp (lswSubtree - logSumWeight) then zSample.CopyFrom zPropose
                logSumWeight <- Dyn.logSumExp logSumWeight lswSubtree
                add rhoBck rhoFwd rho
                // the backward subtree is A (outer end bck-bck), the forward one B (outer end fwd-fwd)
                let persist =
                    NutsKernel.MergeCriterion(pSharpBckBck, pBckFwd, pSharpBckFwd, rhoBck,
                                               pFwdBck, pSharpFwdBck, pSharpFwdFwd, rhoFwd, rhoExt)
                if not persist then fin <- true
        let accept = if nLeapfrog > 0 then sumMetroProb / float nLeapfrog else 0.0
        let symmetric = if nLeapfrog > 0 then sumSymProb / float nLeapfrog else 0.0
        let energy = dyn.H zSample
        dyn.ToState zSample,
        { StepSize = eps; TreeDepth = depth; NumLeapfrog = nLeapfrog; Divergent = divergent; Energy = energy; AcceptStat = accept; AcceptStatSymmetric = symmetric; SampleIndex = zSample.Index }

[<RequireQualifiedAccess>]
module Nuts =

    /// Checks NUTS settings; raises naming the bad one.
    let validate (dim: int) (p: NutsParameters) =
        Dyn.checkStepSize "Nuts" p.StepSize
        Dyn.checkMetric "Nuts" dim p.Metric
        Dyn.checkMaxTreeDepth "Nuts" p.MaxTreeDepth
        Dyn.checkMaxDeltaH "Nuts" p.MaxDeltaH

    /// A sampler with buffers for trees up to maxTreeDepth, over one evaluator (one per chain).
    let sampler (ev: IGradientEvaluator) (maxTreeDepth: int) : NutsKernel =
        if ev.Dim < 1 then invalidArg "ev" "Nuts: the potential has no coordinates (no latent sites to sample)."
        Dyn.checkMaxTreeDepth "Nuts" maxTreeDepth
        NutsKernel(ev, maxTreeDepth)

    /// Evaluates the potential at a position: the chain's first state.
    let init (ev: IGradientEvaluator) (position: float[]) : HmcState = Dyn.init ev position

    /// NUTS with the step size and metric given on each call (for Warmup); buffers for trees up to
    /// maxTreeDepth (not thread-safe: one per chain).
    let tunable (ev: IGradientEvaluator) (maxTreeDepth: int) (maxDeltaH: float) : TunableKernel =
        Dyn.checkMaxDeltaH "Nuts" maxDeltaH
        let s = sampler ev maxTreeDepth
        { Dim = ev.Dim; Evaluator = ev
          Step = fun eps metric key state -> s.Step({ StepSize = eps; Metric = metric; MaxTreeDepth = maxTreeDepth; MaxDeltaH = maxDeltaH }, key, state) }

    /// The NUTS kernel with fixed settings over an evaluator (not thread-safe: one per chain).
    let kernel (ev: IGradientEvaluator) (p: NutsParameters) : SamplingAlgorithm =
        validate ev.Dim p
        let s = sampler ev p.MaxTreeDepth
        { Init = init ev; Step = fun key state -> s.Step(p, key, state) }
