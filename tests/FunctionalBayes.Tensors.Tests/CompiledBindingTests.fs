/// Rebinding a compiled program's evaluator to new data in place: the numbers of a fresh binding and of
/// the tape, and nothing changed when the new data are refused.
module FunctionalBayes.Tensors.Tests.CompiledBindingTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

// a gather by int ids (an int slot bound from the data) and a data-only product (a static slot)
let private f (xs: Tensor[]) =
    let p, x, ids = xs.[0], xs.[1], xs.[2]
    Tensor.sum (Tensor.indexSelect 0 ids p * x) + Tensor.sum (x * x) * Tensor.sum (p * p)

let private evaluate (e: CompiledEvaluator) (p: float[]) =
    let g = Array.zeroCreate p.Length
    let v = e.Evaluate(ReadOnlySpan p, Span g)
    v, g

let private tape (p: float[]) (x: Tensor) (ids: Tensor) =
    let v, g = Autodiff.valueAndGradN (fun ps -> f [| ps.[0]; x; ids |]) [| Tensor.ofArray p |]
    Tensor.toScalar v, Tensor.toArray g.[0]

let ``an evaluator rebound in place gives a fresh binding's and the tape's numbers`` () =
    let p = [| 0.3; -1.2; 0.7; 2.0 |]
    let x1, ids1 = randomTensor 1 [| 80 |] -1.0 1.0, Tensor.ofInts (Array.init 80 (fun i -> i % 4))
    let x2, ids2 = randomTensor 2 [| 80 |] -1.0 1.0, Tensor.ofInts (Array.init 80 (fun i -> (i * 7 + 1) % 4))
    match Compiler.compile f [| Tensor.ofArray p |] [| Tensor.ofArray (p |> Array.map (fun v -> v * 1.1 + 0.1)) |] [| x1; ids1 |] with
    | Error why -> failwithf "not compiled: %s" why
    | Ok cg ->
        let e = cg.Bind([| x1; ids1 |]).CreateEvaluator()
        let v1, g1 = evaluate e p
        let tv1, tg1 = tape p x1 ids1
        assertClose 1e-13 [| tv1 |] [| v1 |]
        assertClose 1e-13 tg1 g1
        e.Rebind [| x2; ids2 |]
        let v2, g2 = evaluate e p
        let fv, fg = evaluate (cg.Bind([| x2; ids2 |]).CreateEvaluator()) p
        Assert.Equal(BitConverter.DoubleToInt64Bits fv, BitConverter.DoubleToInt64Bits v2)
        Assert.Equal<int64[]>(fg |> Array.map BitConverter.DoubleToInt64Bits, g2 |> Array.map BitConverter.DoubleToInt64Bits)
        let tv2, tg2 = tape p x2 ids2
        assertClose 1e-13 [| tv2 |] [| v2 |]
        assertClose 1e-13 tg2 g2
        Assert.NotEqual(v1, v2)
        // refused data change nothing: an index out of range, then a shape the program was not compiled for
        let bad = Tensor.ofInts (Array.init 80 (fun i -> if i = 40 then 9 else i % 4))
        let ex = Assert.Throws<ArgumentException>(fun () -> e.Rebind [| x1; bad |])
        Assert.Contains("index 9 is outside [0, 4)", ex.Message)
        let ex = Assert.Throws<ArgumentException>(fun () -> e.Rebind [| randomTensor 3 [| 81 |] -1.0 1.0; ids1 |])
        Assert.Contains("[81]", ex.Message)
        let v3, g3 = evaluate e p
        Assert.Equal(BitConverter.DoubleToInt64Bits v2, BitConverter.DoubleToInt64Bits v3)
        Assert.Equal<int64[]>(g2 |> Array.map BitConverter.DoubleToInt64Bits, g3 |> Array.map BitConverter.DoubleToInt64Bits)

[<Tests>]
let tests =
    testList "CompiledBindingTests" [
        testCase "an evaluator rebound in place gives a fresh binding's and the tape's numbers" ``an evaluator rebound in place gives a fresh binding's and the tape's numbers``
    ]
