/// Autodiff semantics: nesting, Hessians, collections of parameters, threads, graphs, backends.
module FunctionalBayes.Tensors.Tests.AutodiffTests

open System
open System.Threading.Tasks
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private s (v: float) = Tensor.scalar v
let private d (f: Tensor -> Tensor) (x: float) = Autodiff.grad f (s x)

let ``perturbation confusion (Siskind and Pearlmutter 2005)`` () =
    // D (λx. x · D (λy. x + y) 1) 1 = 1; a confused implementation gives 2.
    let r = d (fun x -> x * d (fun y -> x + y) 1.0) 1.0
    Assert.Equal(1.0, Tensor.toScalar r)
    // d/dx [x · d/dy (x·y)] = d/dx x² = 2x
    let r2 = d (fun x -> x * d (fun y -> x * y) 3.0) 1.5
    Assert.Equal(3.0, Tensor.toScalar r2)

let ``second and third derivatives by nesting`` () =
    let f (x: Tensor) = Tensor.exp (x * 2.0)
    let x = 0.3
    Assert.Equal(4.0 * Math.Exp(2.0 * x), Tensor.toScalar (d (fun x -> d f (Tensor.toScalar x) |> ignore; Autodiff.grad f x) x), 12)
    let d2 = d (Autodiff.grad f) x
    Assert.Equal(4.0 * Math.Exp(2.0 * x), Tensor.toScalar d2, 12)
    let d3 = d (Autodiff.grad (Autodiff.grad f)) x
    Assert.Equal(8.0 * Math.Exp(2.0 * x), Tensor.toScalar d3, 12)
    let dsin = d (Autodiff.grad (fun x -> Tensor.tanh x)) 0.4
    let t = Math.Tanh 0.4
    Assert.Equal(-2.0 * t * (1.0 - t * t), Tensor.toScalar dsin, 13)

let ``Hessian of a cubic with a cross term`` () =
    let f (x: Tensor) = Tensor.sum (Tensor.Pow(x, 3.0)) + Tensor.select 0 0 x * Tensor.select 0 1 x
    let x = Tensor.ofArray [| 0.5; -1.0; 2.0 |]
    let h = Autodiff.hessian f x
    Assert.Equal<int[]>([| 3; 3 |], h.Shape)
    assertClose 1e-13 [| 3.0; 1.0; 0.0; 1.0; -6.0; 0.0; 0.0; 0.0; 12.0 |] (Tensor.toArray h)

let ``Hessian of logsumexp is diag(p) - p pᵀ`` () =
    let x = Tensor.ofArray [| 0.2; -1.0; 1.5; 0.0 |]
    let p = Tensor.toArray (Tensor.softmax 0 x)
    let expected = [| for i in 0 .. 3 do for j in 0 .. 3 -> (if i = j then p.[i] else 0.0) - p.[i] * p.[j] |]
    assertClose 1e-13 expected (Tensor.toArray (Autodiff.hessian Tensor.logsumexp x))

let ``Hessian of a logistic regression log density`` () =
    // H = -Xᵀ diag(σ(η)(1-σ(η))) X
    let xm = randomTensor 11 [| 6; 3 |] -1.0 1.0
    let y = Tensor.ofArray [| 1.0; 0.0; 1.0; 1.0; 0.0; 0.0 |]
    let f (b: Tensor) =
        let eta = Tensor.matmul xm b
        Tensor.sum (y * eta - Tensor.softplus eta)
    let b = Tensor.ofArray [| 0.3; -0.2; 0.5 |]
    let eta = Tensor.toArray (Tensor.matmul xm b)
    let xv = Tensor.toArray xm
    let w = eta |> Array.map (fun e -> let p = 1.0 / (1.0 + exp -e) in p * (1.0 - p))
    let expected = [| for i in 0 .. 2 do for j in 0 .. 2 -> -(Seq.sum (seq { for r in 0 .. 5 -> xv.[r * 3 + i] * w.[r] * xv.[r * 3 + j] })) |]
    assertClose 1e-12 expected (Tensor.toArray (Autodiff.hessian f b))

/// A sum's cotangent is kept as one value until an op needs it whole (issue 24): through element-wise ops
/// with operands broadcast in both directions (a [3, 1] and a [1, 4] summed down), a where with a broadcast
/// mask, a neg, ops that need it whole (reshape, matmul, a partial sum), a leaf summed directly, second
/// derivatives and a vjp; every gradient against its closed form.
let ``a sum's cotangent broadcast lazily gives the closed-form gradients`` () =
    let a = Tensor.create [| 3; 1 |] [| 0.5; -1.0; 2.0 |]
    let b = Tensor.create [| 1; 4 |] [| 1.0; 2.0; -3.0; 0.25 |]
    let av, bv = Tensor.toArray a, Tensor.toArray b
    // f = Σᵢⱼ (aᵢ bⱼ − aᵢ) + Σᵢ aᵢ: ∂aᵢ = Σⱼ (bⱼ − 1) + 1, ∂bⱼ = Σᵢ aᵢ
    let gs = Autodiff.gradN (fun ts -> Tensor.sum (ts.[0] * ts.[1] - ts.[0]) + Tensor.sum ts.[0]) [| a; b |]
    Assert.Equal<int[]>([| 3; 1 |], gs.[0].Shape)
    Assert.Equal<int[]>([| 1; 4 |], gs.[1].Shape)
    assertClose 1e-15 (Array.create 3 (Array.sumBy (fun v -> v - 1.0) bv + 1.0)) (Tensor.toArray gs.[0])
    assertClose 1e-15 (Array.create 4 (Array.sum av)) (Tensor.toArray gs.[1])
    // the gradient of Σ x is ones of x's shape; of −Σ x, minus ones
    Assert.Equal<float[]>(Array.create 6 1.0, Tensor.toArray (Autodiff.grad Tensor.sum (Tensor.zeros [| 2; 3 |])))
    let gNeg = Autodiff.grad (fun x -> -(Tensor.sum x)) (Tensor.zeros [| 2; 3 |])
    Assert.Equal<int[]>([| 2; 3 |], gNeg.Shape)
    Assert.Equal<float[]>(Array.create 6 -1.0, Tensor.toArray gNeg)
    // where with a [1, 3] mask over [2, 3]: the gradient is 2x where the mask is set, 0 elsewhere
    let mask = Tensor.ofBools [| true; false; true |] |> Tensor.reshape [| 1; 3 |]
    let xw = Tensor.create [| 2; 3 |] [| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 |]
    let gw = Autodiff.grad (fun x -> Tensor.sum (Tensor.where mask (Tensor.square x) (Tensor.zerosLike x))) xw
    Assert.Equal<float[]>([| 2.0; 0.0; 6.0; 8.0; 0.0; 12.0 |], Tensor.toArray gw)
    // through a reshape, a matmul and a partial sum: f = Σ (M·reshape(x))² over rows then columns
    let m = Tensor.create [| 2; 2 |] [| 1.0; 2.0; 3.0; 4.0 |]
    let xr = Tensor.ofArray [| 0.5; -1.0 |]
    let f (x: Tensor) = Tensor.sum (Tensor.sumAxes [| 1 |] false (Tensor.square (Tensor.matmul m (Tensor.reshape [| 2; 1 |] x))))
    // Mx = [−1.5; −2.5]; ∂x = 2 Mᵀ(Mx) = 2·[−1.5 − 7.5; −3 − 10]
    assertClose 1e-15 [| -18.0; -26.0 |] (Tensor.toArray (Autodiff.grad f xr))
    // second derivatives: the Hessian of Σ xᵢ³ + Σ x is diag(6x)
    let h = Autodiff.hessian (fun x -> Tensor.sum (Tensor.Pow(x, 3.0)) + Tensor.sum x) (Tensor.ofArray [| 1.0; -2.0 |])
    Assert.Equal<float[]>([| 6.0; 0.0; 0.0; -12.0 |], Tensor.toArray h)
    // a vjp through a sum taken over one axis: y = Σⱼ xᵢⱼ² (per row), vᵀJ = 2 vᵢ xᵢⱼ
    let _, gv = Autodiff.vjp (fun x -> Tensor.sumAxes [| 1 |] false (Tensor.square x)) xw (Tensor.ofArray [| 1.0; -1.0 |])
    Assert.Equal<float[]>([| 2.0; 4.0; 6.0; -8.0; -10.0; -12.0 |], Tensor.toArray gv)

/// At first order the tape's softplus keeps σ(x) from its forward (one e^(−|x|)) and its VJP multiplies by it:
/// the gradient of Σ softplus(x) is sigmoidSpan's bits, the value softplusSpan's; of Σ c·softplus(x), c·σ(x);
/// nested (a Hessian: σ(x)(1 − σ(x)) on the diagonal) and float32 take the rule.
let ``the tape's softplus VJP reads the sigmoid its forward kept`` () =
    let xs = Array.init 37 (fun i -> -30.0 + 1.7 * float i)
    let bits (a: float[]) = Array.map BitConverter.DoubleToInt64Bits a
    let sp, sg = Array.zeroCreate 37, Array.zeroCreate 37
    Special.softplusSpan (ReadOnlySpan xs) (Span sp)
    Special.sigmoidSpan (ReadOnlySpan xs) (Span sg)
    let v, g = Autodiff.valueAndGrad (fun x -> Tensor.sum (Tensor.softplus x)) (Tensor.ofArray xs)
    Assert.Equal<int64[]>(bits sg, bits (Tensor.toArray g))
    Assert.Equal(Array.sum sp, Tensor.toScalar v, 1e-12)
    let g3 = Autodiff.grad (fun x -> Tensor.sum (-3.0 * Tensor.softplus x)) (Tensor.ofArray xs)
    Assert.Equal<int64[]>(bits (Array.map (fun s -> -3.0 * s) sg), bits (Tensor.toArray g3))
    let x3 = [| -2.0; 0.5; 4.0 |]
    let h = Autodiff.hessian (fun x -> Tensor.sum (Tensor.softplus x)) (Tensor.ofArray x3)
    let p = x3 |> Array.map (fun t -> 1.0 / (1.0 + exp -t))
    assertClose 1e-15 [| for i in 0 .. 2 do for j in 0 .. 2 -> if i = j then p.[i] * (1.0 - p.[i]) else 0.0 |] (Tensor.toArray h)
    let g32 = Autodiff.grad (fun x -> Tensor.sum (Tensor.softplus x)) (Tensor.ofArray xs |> Tensor.cast Float32)
    assertClose 1e-6 (xs |> Array.map (fun t -> 1.0 / (1.0 + exp -t))) (Tensor.toArrayF32 g32 |> Array.map float)

let ``value and gradient of several tensors, maps and records`` () =
    let f (xs: Tensor[]) = Tensor.sum (xs.[0] * xs.[1]) + Tensor.sum (Tensor.exp xs.[0])
    let a = Tensor.ofArray [| 0.1; 0.2 |]
    let b = Tensor.ofArray [| 3.0; 4.0 |]
    let v, gs = Autodiff.valueAndGradN f [| a; b |]
    Assert.Equal(0.3 + 0.8 + exp 0.1 + exp 0.2, Tensor.toScalar v, 14)
    assertClose 1e-15 [| 3.0 + exp 0.1; 4.0 + exp 0.2 |] (Tensor.toArray gs.[0])
    assertClose 1e-15 [| 0.1; 0.2 |] (Tensor.toArray gs.[1])
    let gm = Autodiff.gradMap (fun m -> f [| m.["a"]; m.["b"] |]) (Map [ "a", a; "b", b ])
    assertClose 1e-15 (Tensor.toArray gs.[0]) (Tensor.toArray gm.["a"])
    assertClose 1e-15 (Tensor.toArray gs.[1]) (Tensor.toArray gm.["b"])

type private Linear = { W: Tensor; B: Tensor }

let ``gradient of a record of named parameters`` () =
    let x = Tensor.ofArray [| 1.0; 2.0 |]
    let p = { W = Tensor.create [| 2; 2 |] [| 1.0; 0.0; 0.0; 1.0 |]; B = Tensor.ofArray [| 0.5; -0.5 |] }
    let loss (q: Linear) = Tensor.sum (Tensor.square (Tensor.matmul q.W x + q.B))
    let g = Autodiff.gradRecord loss p
    // out = [1.5; 1.5]; dL/dB = 2·out, dL/dW = 2·out xᵀ
    assertClose 1e-15 [| 3.0; 3.0 |] (Tensor.toArray g.B)
    assertClose 1e-15 [| 3.0; 6.0; 3.0; 6.0 |] (Tensor.toArray g.W)

let ``vjp and jacobian of a vector function`` () =
    let f (x: Tensor) = Tensor.stack 0 [ Tensor.select 0 0 x * Tensor.select 0 1 x; Tensor.exp (Tensor.select 0 1 x) ]
    let x = Tensor.ofArray [| 2.0; 0.5 |]
    let j = Autodiff.jacobian f x
    assertClose 1e-15 [| 0.5; 2.0; 0.0; exp 0.5 |] (Tensor.toArray j)
    let y, g = Autodiff.vjp f x (Tensor.ofArray [| 1.0; -1.0 |])
    assertClose 1e-15 [| 1.0; exp 0.5 |] (Tensor.toArray y)
    assertClose 1e-15 [| 0.5; 2.0 - exp 0.5 |] (Tensor.toArray g)

let ``gradient edge cases`` () =
    // a function that ignores its input has a zero gradient of the input's shape
    let g = Autodiff.grad (fun _ -> s 3.0) (Tensor.ones [| 2; 2 |])
    Assert.Equal<float[]>(Array.zeroCreate 4, Tensor.toArray g)
    // detach stops the gradient
    let g2 = Autodiff.grad (fun x -> Tensor.sum (x * Tensor.detach x)) (Tensor.ofArray [| 3.0 |])
    Assert.Equal(3.0, Tensor.toScalar g2)
    // a non-scalar output is refused with advice
    let ex = Assert.Throws<ArgumentException>(fun () -> Autodiff.grad Tensor.exp (Tensor.ones [| 2 |]) |> ignore)
    Assert.Contains("[2]", ex.Message)
    Assert.Contains("vjp", ex.Message)
    // the value returned is a constant
    let v, _ = Autodiff.valueAndGrad Tensor.sum (Tensor.ones [| 2 |])
    Assert.False(v.IsTracked)

let ``threads differentiating different functions at once get correct results`` () =
    let x = randomTensor 5 [| 50 |] -1.0 1.0
    let f1 (x: Tensor) = Tensor.sum (Tensor.tanh x * x)
    let f2 (x: Tensor) = Tensor.logsumexp (x * 3.0) + Tensor.sum (Tensor.square x)
    let e1 = Tensor.toArray (Autodiff.grad f1 x)
    let e2 = Tensor.toArray (Autodiff.grad f2 x)
    let e3 = Tensor.toArray (Autodiff.hessian f2 (Tensor.narrow 0 0 5 x))
    let results =
        Array.init 8 (fun k ->
            Task.Run(fun () ->
                [| for _ in 1 .. 200 ->
                       match k % 3 with
                       | 0 -> Tensor.toArray (Autodiff.grad f1 x) = e1
                       | 1 -> Tensor.toArray (Autodiff.grad f2 x) = e2
                       | _ -> Tensor.toArray (Autodiff.hessian f2 (Tensor.narrow 0 0 5 x)) = e3 |]))
    Task.WaitAll(results |> Array.map (fun t -> t :> Task))
    for t in results do
        Assert.All(t.Result, fun ok -> Assert.True ok)

let ``a recorded graph replays the forward pass`` () =
    let w = randomTensor 1 [| 3; 4 |] -1.0 1.0
    let b = randomTensor 2 [| 4 |] -1.0 1.0
    let f (xs: Tensor[]) = [| Tensor.sigmoid (Tensor.matmul xs.[0] w + b) |> Tensor.sumAxes [| 1 |] false |]
    let x = randomTensor 3 [| 5; 3 |] -1.0 1.0
    let g = Graph.trace f [| x |]
    Assert.Equal<string[]>([| "matmul"; "add"; "sigmoid"; "sum" |], g.Nodes |> Array.map (fun n -> n.Op.Name))
    Assert.Equal<int[]>([| 5; 4 |], g.Nodes.[0].Shape)
    Assert.True(match g.Nodes.[0].Inputs with
                | [| GraphInput 0; GraphConstant _ |] -> true
                | _ -> false)
    let x2 = randomTensor 4 [| 5; 3 |] -1.0 1.0
    assertTensorClose 0.0 (f [| x2 |]).[0] (Graph.run g [| x2 |]).[0]

[<Tests>]
let tests =
    testList "AutodiffTests" [
        testCase "perturbation confusion (Siskind and Pearlmutter 2005)" ``perturbation confusion (Siskind and Pearlmutter 2005)``
        testCase "second and third derivatives by nesting" ``second and third derivatives by nesting``
        testCase "Hessian of a cubic with a cross term" ``Hessian of a cubic with a cross term``
        testCase "Hessian of logsumexp is diag(p) - p pᵀ" ``Hessian of logsumexp is diag(p) - p pᵀ``
        testCase "Hessian of a logistic regression log density" ``Hessian of a logistic regression log density``
        testCase "a sum's cotangent broadcast lazily gives the closed-form gradients" ``a sum's cotangent broadcast lazily gives the closed-form gradients``
        testCase "the tape's softplus VJP reads the sigmoid its forward kept" ``the tape's softplus VJP reads the sigmoid its forward kept``
        testCase "value and gradient of several tensors, maps and records" ``value and gradient of several tensors, maps and records``
        testCase "gradient of a record of named parameters" ``gradient of a record of named parameters``
        testCase "vjp and jacobian of a vector function" ``vjp and jacobian of a vector function``
        testCase "gradient edge cases" ``gradient edge cases``
        testCase "threads differentiating different functions at once get correct results" ``threads differentiating different functions at once get correct results``
        testCase "a recorded graph replays the forward pass" ``a recorded graph replays the forward pass``
    ]
