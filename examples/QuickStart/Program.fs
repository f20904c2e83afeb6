/// QuickStart: simulate a linear regression and recover its coefficients and noise scale by
/// gradient descent on the Gaussian negative log-likelihood, written with tensors and autodiff.
module QuickStart.Program

open System
open System.Diagnostics
open System.Globalization
open System.IO
open FunctionalBayes.Tensors

type private Options = { Out: string; Steps: int }

let private parse (argv: string[]) =
    let rec go i o =
        if i >= argv.Length then o
        else
            match argv.[i] with
            | "--out" when i + 1 < argv.Length -> go (i + 2) { o with Out = argv.[i + 1] }
            | "--steps" when i + 1 < argv.Length -> go (i + 2) { o with Steps = int argv.[i + 1] }
            | a -> failwithf "unknown argument %s (use --out DIR, --steps N)" a
    go 0 { Out = "."; Steps = 300 }

/// The model's parameters: coefficients, intercept and log noise scale.
type Params = { Beta: Tensor; Bias: Tensor; LogSigma: Tensor }

[<EntryPoint>]
let main argv =
    let opts = parse argv
    let n, d = 10_000, 5
    let trueBeta = [| 1.5; -2.0; 0.5; 0.0; 3.0 |]
    let trueBias, trueSigma = 0.7, 0.4
    let kx, kn = Rng.split (Rng.key 20261121UL)
    let x = Rng.normal kx [| n; d |]
    let y = Tensor.matmul x (Tensor.ofArray trueBeta) + trueBias + trueSigma * Rng.normal kn [| n |]

    // mean negative log-likelihood of y ~ Normal(x·beta + bias, sigma)
    let loss (p: Params) =
        let sigma = Tensor.exp p.LogSigma
        let z = (y - Tensor.matmul x p.Beta - p.Bias) / sigma
        Tensor.mean (0.5 * Tensor.square z) + p.LogSigma + 0.5 * log (2.0 * Math.PI)

    let lr = 0.1
    let step (p: Params) =
        let l, g = Autodiff.valueAndGradRecord loss p
        l, { Beta = p.Beta - lr * g.Beta; Bias = p.Bias - lr * g.Bias; LogSigma = p.LogSigma - lr * g.LogSigma }

    let sw = Stopwatch.StartNew()
    let mutable p = { Beta = Tensor.zeros [| d |]; Bias = Tensor.scalar 0.0; LogSigma = Tensor.scalar 0.0 }
    for i in 1 .. opts.Steps do
        let l, next = step p
        p <- next
        if i % 50 = 0 || i = opts.Steps then
            printfn "step %4d  loss %.5f" i (Tensor.toScalar l)
    let seconds = sw.Elapsed.TotalSeconds

    let beta = Tensor.toArray p.Beta
    printfn ""
    printfn "%-10s %10s %10s" "parameter" "true" "estimate"
    for j in 0 .. d - 1 do
        printfn "%-10s %10.4f %10.4f" (sprintf "beta[%d]" j) trueBeta.[j] beta.[j]
    let bias = Tensor.toScalar p.Bias
    let sigma = exp (Tensor.toScalar p.LogSigma)
    printfn "%-10s %10.4f %10.4f" "bias" trueBias bias
    printfn "%-10s %10.4f %10.4f" "sigma" trueSigma sigma

    Directory.CreateDirectory opts.Out |> ignore
    let inv (v: float) = v.ToString("R", CultureInfo.InvariantCulture)
    File.WriteAllLines(
        Path.Combine(opts.Out, "quickstart-coefficients.csv"),
        Array.append [| "name,true,estimate" |]
            (Array.append
                (Array.init d (fun j -> sprintf "beta[%d],%s,%s" j (inv trueBeta.[j]) (inv beta.[j])))
                [| sprintf "bias,%s,%s" (inv trueBias) (inv bias); sprintf "sigma,%s,%s" (inv trueSigma) (inv sigma) |]))

    let rmse = sqrt (Array.average (Array.map2 (fun a b -> (a - b) ** 2.0) trueBeta beta))
    printfn """{"coef_rmse":%s,"sigma_abs_err":%s,"fit_seconds":%s,"steps":%d}"""
        (inv rmse) (inv (abs (sigma - trueSigma))) (inv seconds) opts.Steps
    0
