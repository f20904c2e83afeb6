namespace FunctionalBayes.Tensors

open System
open Microsoft.FSharp.Reflection

/// Reverse-mode automatic differentiation. Every call makes its own tape, so differentiations on
/// different threads never meet, and nested calls (a gradient inside a function being
/// differentiated) keep their perturbations apart by tape level.
[<RequireQualifiedAccess>]
module Autodiff =

    let private onTape (tape: Tape) (t: Tensor) =
        let n = t.NodeOrNull
        not (isNull n) && obj.ReferenceEquals(n.Tape, tape)

    /// Propagates the cotangent `seed` of `y` back through `tape`; returns the adjoint of every node
    /// up to y's (null where nothing flowed). An adjoint may be smaller than its node, standing for its
    /// broadcast to the node's shape (a sum's cotangent: see Prim.Expand).
    let internal backward (tape: Tape) (y: Tensor) (seed: Tensor) : Tensor[] =
        if not (onTape tape y) then [||]
        else
            let nodes = tape.Nodes
            let yi = y.NodeOrNull.Index
            let adj = Array.zeroCreate<Tensor> (yi + 1)
            adj.[yi] <- seed
            for i in yi .. -1 .. 0 do
                let g = adj.[i]
                if not (isNull g) then
                    let n = nodes.[i]
                    match n.Op with
                    | ValueNone -> ()
                    | ValueSome op ->
                        let ins = n.Inputs
                        let needs = Array.zeroCreate<bool> ins.Length
                        let mutable any = false
                        for k in 0 .. ins.Length - 1 do
                            needs.[k] <- onTape tape ins.[k]
                            any <- any || needs.[k]
                        if any then
                            let xs = Prim.PrimalsAt(tape, ins)
                            let gs = Prim.Vjp(op, xs, n.Output, g, needs, n.Kept)
                            for k in 0 .. ins.Length - 1 do
                                if needs.[k] && not (isNull gs.[k]) then
                                    let j = ins.[k].NodeOrNull.Index
                                    adj.[j] <- if isNull adj.[j] then gs.[k] else adj.[j] + gs.[k]
            adj

    let private adjointOf (adj: Tensor[]) (leaf: Tensor) (x: Tensor) =
        let i = leaf.NodeOrNull.Index
        if i < adj.Length && not (isNull adj.[i]) then Prim.Expand(adj.[i], x.ShapeRef) else Tensor.zerosLike x

    let private valueAt (tape: Tape) (y: Tensor) = if onTape tape y then y.Primal else y

    let private requireScalar (what: string) (y: Tensor) =
        if y.Size <> 1 then
            invalidArg "f" (sprintf "%s: the function must return one value, got shape %s. Sum it, or use Autodiff.vjp." what (Shape.format y.ShapeRef))
        if not y.Dtype.IsFloat then
            invalidArg "f" (sprintf "%s: the function must return a float tensor, got %O." what y.Dtype)

    /// The value of a scalar function of several tensors and its gradient with respect to each.
    let valueAndGradN (f: Tensor[] -> Tensor) (xs: Tensor[]) : Tensor * Tensor[] =
        let tape = Tape.Create()
        let leaves = xs |> Array.map tape.Leaf
        let y = f leaves
        requireScalar "Autodiff.grad" y
        let adj = backward tape y (Tensor.onesLike (valueAt tape y))
        valueAt tape y, Array.map2 (adjointOf adj) leaves xs

    /// The gradient of a scalar function of several tensors.
    let gradN (f: Tensor[] -> Tensor) (xs: Tensor[]) = snd (valueAndGradN f xs)

    /// The value of a scalar function of one tensor and its gradient.
    let valueAndGrad (f: Tensor -> Tensor) (x: Tensor) : Tensor * Tensor =
        let v, g = valueAndGradN (fun xs -> f xs.[0]) [| x |]
        v, g.[0]

    /// The gradient of a scalar function of one tensor.
    let grad (f: Tensor -> Tensor) (x: Tensor) = snd (valueAndGrad f x)

    /// The value and gradient of a scalar function of named tensors.
    let valueAndGradMap (f: Map<string, Tensor> -> Tensor) (xs: Map<string, Tensor>) : Tensor * Map<string, Tensor> =
        let keys = xs |> Map.toArray |> Array.map fst
        let v, gs = valueAndGradN (fun ts -> f (Array.zip keys ts |> Map.ofArray)) (keys |> Array.map (fun k -> xs.[k]))
        v, Array.zip keys gs |> Map.ofArray

    let gradMap f xs = snd (valueAndGradMap f xs)

    /// The value and gradient of a scalar function of an F# record whose fields are all tensors;
    /// the gradient is a record of the same type.
    let valueAndGradRecord<'R> (f: 'R -> Tensor) (r: 'R) : Tensor * 'R =
        let t = typeof<'R>
        if not (FSharpType.IsRecord(t, true)) then
            invalidArg "r" (sprintf "Autodiff.gradRecord: %s is not an F# record." t.Name)
        let fields = FSharpType.GetRecordFields(t, true)
        for p in fields do
            if p.PropertyType <> typeof<Tensor> then
                invalidArg "r" (sprintf "Autodiff.gradRecord: field %s of %s is a %s, not a Tensor." p.Name t.Name p.PropertyType.Name)
        let read = FSharpValue.PreComputeRecordReader(t, true)
        let make = FSharpValue.PreComputeRecordConstructor(t, true)
        let ofTensors (ts: Tensor[]) = make (Array.map box ts) :?> 'R
        let xs = read (nonNull (box r)) |> Array.map (fun (o: obj | null) -> match o with :? Tensor as x -> x | _ -> invalidArg "r" "Autodiff.gradRecord: a field is null.")
        let v, gs = valueAndGradN (ofTensors >> f) xs
        v, ofTensors gs

    let gradRecord<'R> (f: 'R -> Tensor) (r: 'R) = snd (valueAndGradRecord f r)

    /// f x and the vector-Jacobian product vᵀ J_f(x), for f of any output shape (v has that shape).
    let vjp (f: Tensor -> Tensor) (x: Tensor) (v: Tensor) : Tensor * Tensor =
        let tape = Tape.Create()
        let leaf = tape.Leaf x
        let y = f leaf
        let yv = valueAt tape y
        if not (Shape.equal yv.ShapeRef v.ShapeRef) then
            invalidArg "v" (sprintf "Autodiff.vjp: the cotangent has shape %s but f returns %s." (Shape.format v.ShapeRef) (Shape.format yv.ShapeRef))
        let adj = backward tape y v
        yv, adjointOf adj leaf x

    /// The Jacobian of f at a 1-D x, one reverse pass per output element: shape (outputShape @ [n]).
    let jacobian (f: Tensor -> Tensor) (x: Tensor) : Tensor =
        if x.Rank <> 1 then invalidArg "x" (sprintf "Autodiff.jacobian: x must be 1-D, got shape %s." (Shape.format x.ShapeRef))
        let tape = Tape.Create()
        let leaf = tape.Leaf x
        let y = f leaf
        let yv = valueAt tape y
        let m = yv.Size
        let rows =
            Array.init m (fun i ->
                let e = Array.zeroCreate m
                e.[i] <- 1.0
                let seed = Tensor.create yv.ShapeRef e |> Tensor.cast yv.Dtype
                adjointOf (backward tape y seed) leaf x)
        if m = 0 then Tensor.zeros (Array.append yv.ShapeRef x.ShapeRef)
        else Tensor.stack 0 rows |> Tensor.reshape (Array.append yv.ShapeRef x.ShapeRef)

    /// The Hessian of a scalar function of a small 1-D x (reverse over reverse): shape [n, n].
    let hessian (f: Tensor -> Tensor) (x: Tensor) : Tensor = jacobian (grad f) x
