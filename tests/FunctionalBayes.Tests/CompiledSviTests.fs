/// SVI with a compiled loss and gradient: the compiled program agrees with the tape for the same key
/// and batch, a fit gives the same parameters with compilation on and off, and guides whose draws
/// are not location-scale Normal fall back to the tape and say why.
module FunctionalBayes.Tests.CompiledSviTests

open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors

let private s (v: float) = Tensor.scalar v

/// |a − b| ≤ tol · scale, with the scale the larger magnitude (at least 1e-300).
let private close (what: string) (tol: float) (scale: float) (a: float) (b: float) =
    Expect.isTrue (abs (a - b) <= tol * max scale 1e-300) (sprintf "%s: compiled %.17g vs tape %.17g (scale %g)" what a b scale)

/// The compiled loss and gradient against the tape's at the state, for a key and batch.
let private agree (cfg: SviConfig<'T>) (st: SviState) (key: RngKey) (n: int) (batch: Map<string, Tensor>) =
    match Svi.compileElbo cfg st key n batch with
    | Error why -> failtestf "expected the ELBO to compile, got: %s" why
    | Ok c ->
        let lc, gc = c.Evaluate st key batch
        let lt, gt = Svi.lossAndGradient cfg n batch st key
        close "loss" 1e-12 (abs lt) lc lt
        Expect.equal gc.Length gt.Length "one gradient per parameter"
        for i in 0 .. gt.Length - 1 do
            let a = Tensor.toArray gc.[i]
            let b = Tensor.toArray gt.[i]
            Expect.equal gc.[i].Shape gt.[i].Shape (sprintf "gradient %s shape" st.Names.[i])
            let scale = b |> Array.map abs |> Array.max
            Array.iteri2 (fun j x y -> close (sprintf "d loss / d %s[%d]" st.Names.[i] j) 1e-12 scale x y) a b
        c

/// β ~ N(0, 1), σ ~ HalfNormal(1), y ~ N(xβ, σ).
let private regression (d: Map<string, Tensor>) = model {
    let! beta = Model.sample "beta" (Dist.toEvent 1 (Normal (Tensor.zeros [| 3 |], Tensor.ones [| 3 |])))
    let! sigma = Model.sample "sigma" (HalfNormal (s 1.0))
    return! Model.observe "y" (Normal (Tensor.matmul d.["x"] beta, sigma)) (d.TryFind "y")
}
let private regData =
    let x = Rng.normal (Rng.key 11UL) [| 20; 3 |]
    Map [ "x", x; "y", Tensor.matmul x (Tensor.ofArray [| 1.0; -0.5; 0.25 |]) + 0.3 * Rng.normal (Rng.key 12UL) [| 20 |] ]

/// A BLayers-style model: an adaptive linear layer, an intercept and a Gaussian link.
let private layered (d: Map<string, Tensor>) = model {
    let! mu = Layers.adaptive "x" d.["x"]
    let! b = Layers.intercept "b"
    return! Links.gaussian "y" (mu + b) (d.TryFind "y")
}
let private layData =
    let x = Rng.normal (Rng.key 21UL) [| 50; 2 |]
    Map [ "x", x; "y", Tensor.matmul x (Tensor.ofArray [| 2.0; -1.0 |]) + 1.0 + 0.3 * Rng.normal (Rng.key 22UL) [| 50 |] ]

let private config (m: Map<string, Tensor> -> Model<'T>) (d: Map<string, Tensor>) (kind: AutoGuideKind) (elbo: Elbo) =
    { Model = m; Guide = Guide.auto kind (InitUniform 2.0) (Rng.key 5UL) (m d); Optimizer = Optimizer.AdamDefault 0.05; Elbo = elbo; ClipNorm = None }

let private moved (st: SviState) =
    { st with Unconstrained = st.Unconstrained |> Array.mapi (fun i t -> t + 0.1 * Rng.normal (Rng.key (uint64 (900 + i))) t.Shape) }

let private regressionAgrees () =
    let cfg = config regression regData AutoGuideKind.AutoNormal (Elbo.Trace 2)
    let st = Svi.init cfg (Rng.key 1UL) regData |> moved
    for k in [ 3UL; 4UL; 5UL ] do
        agree cfg st (Rng.key k) 20 regData |> ignore

let private batchedAgrees () =
    let cfg = config layered layData AutoGuideKind.AutoDiagonalNormal (Elbo.Batched 1)
    let st = Svi.init cfg (Rng.key 2UL) layData |> moved
    let full = Data.take (Tensor.ofInts [| 3; 7; 8; 10; 11; 15; 20; 21; 22; 30; 31; 32; 40; 41; 42; 49 |]) layData
    let c = agree cfg st (Rng.key 6UL) 50 full
    Expect.equal c.BatchRows 16 "compiled for 16 rows"
    // the same program on another batch of 16 rows and another key
    let other = Data.slice 17 16 layData
    let lc, gc = c.Evaluate st (Rng.key 7UL) other
    let lt, gt = Svi.lossAndGradient cfg 50 other st (Rng.key 7UL)
    close "loss on another batch" 1e-12 (abs lt) lc lt
    Array.iteri2 (fun i (a: Tensor) (b: Tensor) ->
        let bb = Tensor.toArray b
        let scale = bb |> Array.map abs |> Array.max
        Array.iter2 (close (sprintf "gradient %d on another batch" i) 1e-12 scale) (Tensor.toArray a) bb) gc gt
    // a short last batch (50 = 3·16 + 2) gets its own program
    let short = Data.slice 48 2 layData
    let cs = agree cfg st (Rng.key 8UL) 50 short
    Expect.equal cs.BatchRows 2 "compiled for the short batch"
    Expect.throws (fun () -> c.Evaluate st (Rng.key 8UL) short |> ignore) "a 16-row program refuses a 2-row batch"

let private fitsAgree () =
    let cfg = config layered layData AutoGuideKind.AutoNormal (Elbo.Batched 2)
    let opts = SviRunOptions.ForEpochs(10, 16)
    let on = Svi.runWith true cfg (Rng.key 9UL) layData opts
    let off = Svi.runWith false cfg (Rng.key 9UL) layData opts
    Expect.equal on.Losses.Length 40 "40 steps"
    let rowsCompiled = on.Gradients |> Array.choose (function SviGradient.CompiledProgram (r, _, _) -> Some r | SviGradient.OnTape _ -> None) |> Array.sort
    Expect.equal rowsCompiled [| 2; 16 |] (sprintf "programs for 16 rows and the short batch of 2, got %A" on.Gradients)
    Expect.isTrue (off.Gradients |> Array.forall (function SviGradient.OnTape (_, why) -> why = "compilation is off" | SviGradient.CompiledProgram _ -> false)) "off: the tape"
    Array.iteri2 (fun i (a: float) (b: float) -> close (sprintf "loss at step %d" i) 1e-10 (abs b) a b) on.Losses off.Losses
    for KeyValue (name, v) in off.Params do
        let a = Tensor.toArray on.Params.[name]
        Array.iter2 (fun x y -> close (sprintf "parameter %s" name) 1e-10 (max 1.0 (abs y)) x y) a (Tensor.toArray v)

let private fallsBack () =
    let cfg = config regression regData AutoGuideKind.AutoMultivariateNormal (Elbo.Trace 1)
    let st = Svi.init cfg (Rng.key 1UL) regData
    match Svi.compileElbo cfg st (Rng.key 2UL) 20 regData with
    | Ok _ -> failtest "a multivariate-Normal guide should not compile"
    | Error why -> Expect.stringContains why "MultivariateNormal" "the reason names the distribution"
    let r = Svi.runWith true cfg (Rng.key 9UL) regData (SviRunOptions.ForSteps 3)
    match r.Gradients with
    | [| SviGradient.OnTape (20, why) |] -> Expect.stringContains why "_auto_latent" "the reason names the site"
    | other -> failtestf "expected one tape entry, got %A" other
    let off = Svi.runWith false cfg (Rng.key 9UL) regData (SviRunOptions.ForSteps 3)
    Expect.equal r.Losses off.Losses "the fallback is the tape"

[<Tests>]
let tests =
    testList "CompiledSviTests" [
        testCase "AutoNormal regression, Trace ELBO with two particles: compiled loss and gradient equal the tape's" regressionAgrees
        testCase "BLayers-style model, Batched ELBO (N/b = 50/16), and a short last batch: compiled equals the tape" batchedAgrees
        testCase "a fit with compilation on and off gives the same parameters" fitsAgree
        testCase "a guide without location-scale Normal draws falls back to the tape and says why" fallsBack
    ]
