namespace FunctionalBayes.Tensors

open System
open System.Collections.Generic
open System.Threading

/// One reverse-mode differentiation in progress. Its nodes are kept in creation order, which is a
/// topological order, so the backward pass needs no graph search. Each tape has a level that is
/// larger than that of every tape created before it; in nested differentiation the tape with the
/// highest level is the innermost one, which is how perturbations of different levels stay apart.
[<Sealed; AllowNullLiteral>]
type Tape internal (level: int64, tracing: bool) =
    // The only process-wide value the library keeps: it hands out unique, increasing tape levels,
    // so it cannot make two differentiations interfere.
    static let mutable counter = 0L
    let nodes = ResizeArray<Node>()
    let hostReads = ResizeArray<string>()
    static member internal Create() = Tape(Interlocked.Increment(&counter), false)
    /// A tape that records a graph (Graph.trace): it also notes every read of a recorded value on the
    /// host, which a graph cannot replay.
    static member internal CreateTracing() = Tape(Interlocked.Increment(&counter), true)
    member _.Level = level
    member internal _.Nodes = nodes
    member internal _.Tracing = tracing
    /// The host reads of recorded values, in order (what and where).
    member internal _.HostReads = lock hostReads (fun () -> hostReads.ToArray())
    member internal _.NoteHostRead(what: string) = lock hostReads (fun () -> hostReads.Add what)

    member internal this.Record(op: Op voption, inputs: Tensor[], output: Tensor) : Node =
        // A function under differentiation may itself run work on several threads.
        lock nodes (fun () ->
            let n = Node(this, nodes.Count, op, inputs, output)
            nodes.Add n
            n)

    /// Starts differentiating with respect to x: the result is x tracked on this tape.
    member internal this.Leaf(x: Tensor) = Tensor(x.Raw, x, this.Record(ValueNone, [||], x))

/// A recorded application of a primitive op (or, with no op, a variable being differentiated).
and [<Sealed; AllowNullLiteral>] Node internal (tape: Tape, index: int, op: Op voption, inputs: Tensor[], output: Tensor) =
    member _.Tape = tape
    /// The op's result one level down.
    member _.Output = output
    member _.Index = index
    member _.Op = op
    member _.Inputs = inputs
    /// The derivative f'(x) that a unary op's forward kept for its VJP (Ops' KeepForAdjoint), recorded at
    /// first order; null otherwise.
    member val internal Kept: float[] | null = null with get, set

/// An immutable n-dimensional array with reverse-mode automatic differentiation.
/// A tensor that is being differentiated wraps its primal (the same value, one nesting level down)
/// and the node that produced it; a constant has neither.
and [<Sealed; AllowNullLiteral>] Tensor internal (raw: RawTensor, primal: Tensor, node: Node) =
    member internal _.Raw = raw
    /// The storage, for backends and interop.
    member _.Storage = raw.Storage
    member internal _.NodeOrNull = node

    /// The value one differentiation level down (itself for a constant).
    member t.Primal = if isNull primal then t else primal

    /// The same values with every differentiation level removed: a constant.
    member t.Detach() =
        if isNull node then t
        else
            t.NoteHostRead "Tensor.detach"
            Tensor(raw, null, null)

    /// Notes on every tracing tape this tensor is recorded on that its values were read on the host
    /// (`what`, and the first caller outside this library).
    member internal t.NoteHostRead(what: string) =
        let mutable cur = t
        while not (isNull cur.NodeOrNull) do
            let tape = cur.NodeOrNull.Tape
            if tape.Tracing then
                let here = typeof<Tape>.Assembly
                let caller =
                    Diagnostics.StackTrace(1, false).GetFrames()
                    |> Array.tryPick (fun f ->
                        match f.GetMethod() with
                        | null -> None
                        | m ->
                            match m.DeclaringType with
                            | null -> None
                            | ty when obj.ReferenceEquals(ty.Assembly, here) -> None
                            | ty -> Some (sprintf "%s.%s" (ty.FullName |> Option.ofObj |> Option.defaultValue ty.Name) m.Name))
                tape.NoteHostRead(match caller with
                                  | Some c -> sprintf "%s in %s" what c
                                  | None -> what)
            cur <- cur.Primal

    /// True when this tensor is being differentiated at some level.
    member _.IsTracked = not (isNull node)

    /// The shape, as a fresh array.
    member _.Shape = Array.copy raw.Shape
    member internal _.ShapeRef = raw.Shape
    member _.Rank = raw.Shape.Length
    /// The number of elements.
    member _.Size = raw.Size
    member _.Dtype = raw.Dtype

    static member (+) (a: Tensor, b: Tensor) = Prim.Binary(Add, a, b)
    static member (+) (a: Tensor, b: float) = Prim.Binary(Add, a, Prim.Constant(a.Dtype, [||], b))
    static member (+) (a: float, b: Tensor) = Prim.Binary(Add, Prim.Constant(b.Dtype, [||], a), b)
    static member (-) (a: Tensor, b: Tensor) = Prim.Binary(Sub, a, b)
    static member (-) (a: Tensor, b: float) = Prim.Binary(Sub, a, Prim.Constant(a.Dtype, [||], b))
    static member (-) (a: float, b: Tensor) = Prim.Binary(Sub, Prim.Constant(b.Dtype, [||], a), b)
    static member (*) (a: Tensor, b: Tensor) = Prim.Binary(Mul, a, b)
    static member (*) (a: Tensor, b: float) = Prim.Binary(Mul, a, Prim.Constant(a.Dtype, [||], b))
    static member (*) (a: float, b: Tensor) = Prim.Binary(Mul, Prim.Constant(b.Dtype, [||], a), b)
    static member (/) (a: Tensor, b: Tensor) = Prim.Binary(Div, a, b)
    static member (/) (a: Tensor, b: float) = Prim.Binary(Div, a, Prim.Constant(a.Dtype, [||], b))
    static member (/) (a: float, b: Tensor) = Prim.Binary(Div, Prim.Constant(b.Dtype, [||], a), b)
    static member Pow (a: Tensor, b: Tensor) = Prim.Binary(Pow, a, b)
    static member Pow (a: Tensor, b: float) = Prim.Binary(Pow, a, Prim.Constant(a.Dtype, [||], b))
    static member Pow (a: float, b: Tensor) = Prim.Binary(Pow, Prim.Constant(b.Dtype, [||], a), b)
    static member (~-) (a: Tensor) = Prim.Exec(Ops.unaryOp Neg, [| a |])

    override t.ToString() =
        let s = raw.Storage
        let host = match s with
                   | Device d -> d.ToHost()
                   | _ -> s
        let items =
            match host with
            | F64 a -> a |> Seq.truncate 8 |> Seq.map (fun v -> v.ToString("G6")) |> Seq.toArray
            | F32 a -> a |> Seq.truncate 8 |> Seq.map (fun v -> v.ToString("G6")) |> Seq.toArray
            | I32 a -> a |> Seq.truncate 8 |> Seq.map string |> Seq.toArray
            | B a -> a |> Seq.truncate 8 |> Seq.map string |> Seq.toArray
            | Device _ -> [||]
        let more = if raw.Size > 8 then ", ..." else ""
        sprintf "Tensor(%s, shape=%s, [%s%s])" (raw.Dtype.ToString()) (Shape.format raw.Shape) (String.Join(", ", items)) more

/// Every primitive op in one place: its shape and dtype rule (which raises the errors users see),
/// its execution on a backend with the nesting of differentiation levels, and its vector-Jacobian
/// product, written with primitive ops so that it can itself be differentiated.
/// A VJP rule staged into tensor ops: (mask, g, x, y, out) -> the cotangent.
and internal StagedRule = delegate of Tensor * Tensor * Tensor * Tensor * Tensor -> Tensor

and [<Sealed>] internal Prim private () =

    /// The innermost tape among the inputs, or null when all are constants.
    static let top (xs: Tensor[]) : Tape =
        let mutable t: Tape = null
        for x in xs do
            let n = x.NodeOrNull
            if not (isNull n) && (isNull t || n.Tape.Level > t.Level) then t <- n.Tape
        t

    /// The input with the given tape's level removed.
    static let primalAt (tape: Tape) (x: Tensor) =
        let n = x.NodeOrNull
        if not (isNull n) && obj.ReferenceEquals(n.Tape, tape) then x.Primal else x

    /// The inputs with the given tape's level removed.
    static let primalsAt (tape: Tape) (xs: Tensor[]) =
        let r = Array.zeroCreate<Tensor> xs.Length
        for i in 0 .. xs.Length - 1 do r.[i] <- primalAt tape xs.[i]
        r

    static let fail (op: Op) (msg: string) = invalidArg "input" (sprintf "%s: %s" op.Name msg)

    static let requireFloat (op: Op) (x: RawTensor) =
        if not x.Dtype.IsFloat then
            fail op (sprintf "expects a float tensor, got %O of shape %s. Convert it first (Tensor.toFloat64)." x.Dtype (Shape.format x.Shape))

    static let requireSameDtype (op: Op) (a: RawTensor) (b: RawTensor) =
        if a.Dtype <> b.Dtype then
            fail op (sprintf "operands have dtypes %O and %O; convert one of them (Tensor.cast)." a.Dtype b.Dtype)

    /// The checks the two fused GLM ops share: five inputs (x, alpha, beta, y, the support mask), x a float
    /// matrix [n, d], alpha, beta and y of x's dtype; returns (n, d).
    static let glmInputs (op: Op) (xs: RawTensor[]) =
        if xs.Length <> 5 then fail op (sprintf "takes 5 inputs (x, alpha, beta, y, the support mask), got %d." xs.Length)
        let x0 = xs.[0]
        requireFloat op x0
        if x0.Rank <> 2 then
            fail op (sprintf "x must be a matrix [n, d] (one row per observation), got shape %s; make one predictor a column with Tensor.unsqueeze -1." (Shape.format x0.Shape))
        let n, d = x0.Shape.[0], x0.Shape.[1]
        for (what, t) in [ "alpha", xs.[1]; "beta", xs.[2]; "y", xs.[3] ] do
            if t.Dtype <> x0.Dtype then
                fail op (sprintf "%s is %O but x is %O; convert one of them (Tensor.cast)." what t.Dtype x0.Dtype)
        struct (n, d)

    /// The fused GLM ops' last check: the support mask is bool [n] (after y's own shape check names y).
    static let glmMask (op: Op) (m: RawTensor) (n: int) =
        if m.Dtype <> Bool || m.Rank <> 1 || m.Shape.[0] <> n then
            fail op (sprintf "the support mask must be bool of shape [%d], got %O of shape %s." n m.Dtype (Shape.format m.Shape))

    /// The shape and dtype rule of every op but the four that every model runs most (`infer` has those): kept
    /// apart so that the common ops' rule stays a small method.
    static let inferRest (op: Op) (xs: RawTensor[]) : struct (int[] * Dtype) =
        let x0 = xs.[0]
        match op with
        | Unary _ | Binary _ | Compare _ | Reduce _ -> invalidOp (sprintf "Prim.inferRest: %s is inferred by Prim.infer." op.Name)
        | MatMul (tA, tB) ->
            let a = x0
            let b = xs.[1]
            requireFloat op a
            requireSameDtype op a b
            if a.Rank < 2 || b.Rank < 2 then
                fail op (sprintf "needs operands of rank >= 2, got shapes %s and %s." (Shape.format a.Shape) (Shape.format b.Shape))
            let ra = a.Rank
            let rb = b.Rank
            let m, ka = if tA then a.Shape.[ra - 1], a.Shape.[ra - 2] else a.Shape.[ra - 2], a.Shape.[ra - 1]
            let kb, n = if tB then b.Shape.[rb - 1], b.Shape.[rb - 2] else b.Shape.[rb - 2], b.Shape.[rb - 1]
            if ka <> kb then
                fail op (sprintf "inner dimensions differ: shapes %s and %s (%d vs %d)." (Shape.format a.Shape) (Shape.format b.Shape) ka kb)
            let batch = Shape.broadcast op.Name a.Shape.[.. ra - 3] b.Shape.[.. rb - 3]
            struct (Array.append batch [| m; n |], a.Dtype)
        | Permute perm ->
            if (Array.sort perm) <> Array.init x0.Rank id then
                fail op (sprintf "%s is not a permutation of the %d axes of shape %s." (Shape.format perm) x0.Rank (Shape.format x0.Shape))
            struct (perm |> Array.map (fun p -> x0.Shape.[p]), x0.Dtype)
        | Reshape shape ->
            if Shape.size shape <> x0.Size || shape |> Array.exists (fun d -> d < 0) then
                fail op (sprintf "cannot reshape %s (%d elements) to %s." (Shape.format x0.Shape) x0.Size (Shape.format shape))
            struct (shape, x0.Dtype)
        | BroadcastTo shape ->
            let b = Shape.broadcast op.Name x0.Shape shape
            if not (Shape.equal b shape) then
                fail op (sprintf "cannot broadcast %s to %s." (Shape.format x0.Shape) (Shape.format shape))
            struct (shape, x0.Dtype)
        | Concat axis ->
            let s0 = x0.Shape
            let mutable total = 0
            for x in xs do
                if x.Dtype <> x0.Dtype then fail op (sprintf "dtypes differ: %O and %O." x0.Dtype x.Dtype)
                if x.Rank <> s0.Length
                   || (x.Shape |> Array.indexed |> Array.exists (fun (i, d) -> i <> axis && d <> s0.[i])) then
                    fail op (sprintf "shapes %s and %s differ outside axis %d." (Shape.format s0) (Shape.format x.Shape) axis)
                total <- total + x.Shape.[axis]
            struct (s0 |> Array.mapi (fun i d -> if i = axis then total else d), x0.Dtype)
        | Slice (starts, lengths) ->
            if starts.Length <> x0.Rank || lengths.Length <> x0.Rank
               || Array.exists2 (fun s l -> s < 0 || l < 0) starts lengths
               || (Array.mapi (fun i s -> s + lengths.[i] > x0.Shape.[i]) starts |> Array.exists id) then
                fail op (sprintf "box starting at %s with lengths %s does not fit in shape %s."
                             (Shape.format starts) (Shape.format lengths) (Shape.format x0.Shape))
            struct (lengths, x0.Dtype)
        | Pad (starts, shape) ->
            if starts.Length <> x0.Rank || shape.Length <> x0.Rank
               || (Array.mapi (fun i s -> s < 0 || s + x0.Shape.[i] > shape.[i]) starts |> Array.exists id) then
                fail op (sprintf "cannot place shape %s at %s inside %s." (Shape.format x0.Shape) (Shape.format starts) (Shape.format shape))
            struct (shape, x0.Dtype)
        | Gather axis ->
            let idx = xs.[1]
            if idx.Dtype <> Dtype.Int32 then fail op (sprintf "indices must be int32, got %O." idx.Dtype)
            struct (Array.concat [ x0.Shape.[.. axis - 1]; idx.Shape; x0.Shape.[axis + 1 ..] ], x0.Dtype)
        | ScatterAdd (axis, size) ->
            let idx = xs.[1]
            requireFloat op x0
            if idx.Dtype <> Dtype.Int32 then fail op (sprintf "indices must be int32, got %O." idx.Dtype)
            let ir = idx.Rank
            if x0.Rank < axis + ir || not (Shape.equal x0.Shape.[axis .. axis + ir - 1] idx.Shape) then
                fail op (sprintf "updates of shape %s do not hold indices of shape %s at axis %d." (Shape.format x0.Shape) (Shape.format idx.Shape) axis)
            struct (Array.concat [ x0.Shape.[.. axis - 1]; [| size |]; x0.Shape.[axis + ir ..] ], x0.Dtype)
        | Cumsum _ ->
            requireFloat op x0
            struct (x0.Shape, x0.Dtype)
        | Where ->
            if x0.Dtype <> Bool then fail op (sprintf "the mask must be bool, got %O." x0.Dtype)
            requireSameDtype op xs.[1] xs.[2]
            let s = Shape.broadcast op.Name x0.Shape xs.[1].Shape
            struct (Shape.broadcast op.Name s xs.[2].Shape, xs.[1].Dtype)
        | Clamp (lo, hi) ->
            requireFloat op x0
            if lo > hi then fail op (sprintf "lower bound %g is above upper bound %g." lo hi)
            struct (x0.Shape, x0.Dtype)
        | Cast dt -> struct (x0.Shape, dt)
        | StopGradient -> struct (x0.Shape, x0.Dtype)
        | Cholesky | PositiveDefinite ->
            requireFloat op x0
            if x0.Rank < 2 || x0.Shape.[x0.Rank - 1] <> x0.Shape.[x0.Rank - 2] then
                fail op (sprintf "needs a batch of square matrices, got shape %s." (Shape.format x0.Shape))
            match op with
            | PositiveDefinite -> struct (x0.Shape.[.. x0.Rank - 3], Bool)
            | _ -> struct (x0.Shape, x0.Dtype)
        | TriangularSolve _ ->
            let b = xs.[1]
            requireFloat op x0
            requireSameDtype op x0 b
            if x0.Rank < 2 || x0.Shape.[x0.Rank - 1] <> x0.Shape.[x0.Rank - 2] || b.Rank <> x0.Rank
               || not (Shape.equal x0.Shape.[.. x0.Rank - 3] b.Shape.[.. b.Rank - 3]) || b.Shape.[b.Rank - 2] <> x0.Shape.[x0.Rank - 1] then
                fail op (sprintf "needs A of shape [..., n, n] and B of shape [..., n, k] with the same batch, got %s and %s." (Shape.format x0.Shape) (Shape.format b.Shape))
            struct (b.Shape, x0.Dtype)
        | GlmLogLikelihood _ ->
            let struct (n, d) = glmInputs op xs
            let a, b, y = xs.[1], xs.[2], xs.[3]
            if b.Rank <> 1 || b.Shape.[0] <> d then
                fail op (sprintf "beta must have shape [%d] (one coefficient per column of x, shape %s), got %s." d (Shape.format x0.Shape) (Shape.format b.Shape))
            if not (a.Rank = 0 || (a.Rank = 1 && (a.Shape.[0] = 1 || a.Shape.[0] = n))) then
                fail op (sprintf "alpha must be a scalar (one intercept) or have shape [%d] (one offset per row of x, shape %s), got %s." n (Shape.format x0.Shape) (Shape.format a.Shape))
            if y.Rank <> 1 || y.Shape.[0] <> n then
                fail op (sprintf "y must have shape [%d] (one observation per row of x, shape %s), got %s." n (Shape.format x0.Shape) (Shape.format y.Shape))
            glmMask op xs.[4] n
            struct ([||], x0.Dtype)
        | CategoricalGlmLogLikelihood ->
            let struct (n, d) = glmInputs op xs
            let a, b, y = xs.[1], xs.[2], xs.[3]
            if b.Rank <> 2 || b.Shape.[0] <> d || b.Shape.[1] < 1 then
                fail op (sprintf "beta must have shape [%d, C] (one row per column of x, shape %s; one column per class, C >= 1), got %s." d (Shape.format x0.Shape) (Shape.format b.Shape))
            let c = b.Shape.[1]
            if a.Rank <> 1 || a.Shape.[0] <> c then
                fail op (sprintf "alpha must have shape [%d] (one intercept per class, as beta %s has columns), got %s." c (Shape.format b.Shape) (Shape.format a.Shape))
            if y.Rank <> 1 || y.Shape.[0] <> n then
                fail op (sprintf "y must have shape [%d] (one class id per row of x, shape %s), got %s." n (Shape.format x0.Shape) (Shape.format y.Shape))
            glmMask op xs.[4] n
            struct ([||], x0.Dtype)

    /// The shape and dtype of an op's output from its inputs; raises the errors users see.
    static let infer (op: Op) (xs: RawTensor[]) : struct (int[] * Dtype) =
        let x0 = xs.[0]
        match op with
        | Unary _ ->
            requireFloat op x0
            struct (x0.Shape, x0.Dtype)
        | Binary _ ->
            requireFloat op x0
            requireSameDtype op x0 xs.[1]
            struct ((if Shape.equal x0.Shape xs.[1].Shape then x0.Shape else Shape.broadcast op.Name x0.Shape xs.[1].Shape), x0.Dtype)
        | Compare _ ->
            requireSameDtype op x0 xs.[1]
            struct ((if Shape.equal x0.Shape xs.[1].Shape then x0.Shape else Shape.broadcast op.Name x0.Shape xs.[1].Shape), Bool)
        | Reduce (_, axes, keep) ->
            requireFloat op x0
            struct (Shape.reduced x0.Shape axes keep, x0.Dtype)
        | _ -> inferRest op xs

    /// Whether every tensor's storage is on the host (not a device backend's).
    static let onHost (xs: Tensor[]) =
        xs |> Array.forall (fun t -> match t.Raw.Storage with
                                     | Device _ -> false
                                     | F64 _ | F32 _ | I32 _ | B _ -> true)

    static let backendOf (xs: RawTensor[]) : IBackend =
        let mutable b = Cpu.backend
        for x in xs do
            match x.Storage with
            | Device d -> b <- d.Backend
            | _ -> ()
        b

    /// A unary op that declares KeepForAdjoint, recorded with a float64 host constant as input on a tape that
    /// does not trace: its output and the derivative its VJP will read, in one pass (softplus: σ(x) from the
    /// same e^(−|x|)); the output has the op's own kernel's bits.
    static let keptForward (op: Op) (x: Tensor) (tape: Tape) : struct (Tensor * float[]) voption =
        match op with
        | Unary u when not tape.Tracing && isNull x.NodeOrNull ->
            match (Ops.unary u).Decl.KeepForAdjoint, x.Raw.Storage with
            | ValueSome keep, F64 src ->
                let o = GC.AllocateUninitializedArray<float> src.Length
                let k = GC.AllocateUninitializedArray<float> src.Length
                keep.Invoke(ReadOnlySpan src, Span o, Span k)
                ValueSome (struct (Tensor(RawTensor(x.ShapeRef, F64 o), null, null), k))
            | _ -> ValueNone
        | _ -> ValueNone

    /// Applies a primitive op. At each differentiation level that the inputs carry, the op is applied
    /// to the primals one level down and the result recorded on that level's tape. Ops without a
    /// derivative (comparisons, casts to int or bool, stopGradient) are recorded too, so that a
    /// recorded graph is complete; their VJPs give no gradient.
    static let rec exec (op: Op) (inputs: Tensor[]) : Tensor =
        let top = top inputs
        if isNull top then compute op inputs
        else
            match (match op with
                   | Unary _ -> keptForward op (primalAt top inputs.[0]) top
                   | _ -> ValueNone) with
            | ValueSome (struct (p, kept)) ->
                let node = top.Record(ValueSome op, inputs, p)
                node.Kept <- kept
                Tensor(p.Raw, p, node)
            | ValueNone ->
                // one level of differentiation (the common case): the primals are constants, so compute directly
                let p = if oneLevel top inputs then compute op inputs else exec op (primalsAt top inputs)
                Tensor(p.Raw, p, top.Record(ValueSome op, inputs, p))

    /// The op on the inputs' values, as a constant (a tracked tensor's Raw is its primal's).
    and compute (op: Op) (inputs: Tensor[]) : Tensor =
        let raws = Array.zeroCreate<RawTensor> inputs.Length
        for i in 0 .. inputs.Length - 1 do raws.[i] <- inputs.[i].Raw
        let struct (shape, dt) = infer op raws
        Tensor(backendOf(raws).Execute(op, raws, shape, dt), null, null)

    /// Whether no input is tracked below `tape`'s level.
    and oneLevel (tape: Tape) (xs: Tensor[]) =
        let mutable ok = true
        for x in xs do
            let n = x.NodeOrNull
            if not (isNull n) && not (isNull (primalAt tape x).NodeOrNull) then ok <- false
        ok

    // ---- building blocks for the VJPs (all differentiable) ------------------------------------

    static let constant (dt: Dtype) (shape: int[]) (v: float) =
        let n = Shape.size shape
        let s =
            match dt with
            | Float32 -> F32 (Array.create n (float32 v))
            | Dtype.Int32 -> I32 (Array.create n (int v))
            | Bool -> B (Array.create n (v <> 0.0))
            | Float64 -> F64 (Array.create n v)
        Tensor(RawTensor(shape, s), null, null)

    static let scalarLike (x: Tensor) (v: float) = constant x.Dtype [||] v
    static let un u x = exec (Ops.unaryOp u) [| x |]
    static let bin b x y = exec (Ops.binaryOp b) [| x; y |]
    static let add x y = bin Add x y
    static let sub x y = bin Sub x y
    static let mul x y = bin Mul x y
    static let div x y = bin Div x y
    static let neg x = un Neg x
    static let scale (x: Tensor) (c: float) = mul x (scalarLike x c)
    static let cmp c x y = exec (Compare c) [| x; y |]
    static let where m a b = exec Where [| m; a; b |]
    static let reshape (shape: int[]) (x: Tensor) =
        if Shape.equal x.ShapeRef shape then x else exec (Reshape shape) [| x |]

    /// Sums a broadcast gradient back to the shape of the input it came from.
    static let unbroadcast (g: Tensor) (shape: int[]) =
        let gs = g.ShapeRef
        if Shape.equal gs shape then g
        else
            let lead = gs.Length - shape.Length
            let axes =
                [| for i in 0 .. gs.Length - 1 do
                       if i < lead || (shape.[i - lead] = 1 && gs.[i] <> 1) then yield i |]
            let s = if axes.Length = 0 then g else exec (Reduce (Sum, axes, true)) [| g |]
            reshape shape s

    static let permute (perm: int[]) (x: Tensor) = exec (Permute perm) [| x |]

    /// g broadcast to `shape` (g itself when it has that shape).
    static let expand (g: Tensor) (shape: int[]) =
        if Shape.equal g.ShapeRef shape then g else exec (BroadcastTo shape) [| g |]

    /// An element-wise op's cotangent `r` for an input of `shape`, r's shape broadcasting to the output's: r as it
    /// is where the input has the output's shape (r stands for its broadcast: a sum's cotangent stays one value
    /// until an op needs it whole), else r expanded to the output's shape and summed down to the input's.
    static let toInput (r: Tensor) (outShape: int[]) (shape: int[]) =
        if Shape.equal shape outShape then r else unbroadcast (expand r outShape) shape

    /// Swaps the last two axes.
    static let lastTwo (t: Tensor) =
        let r = t.Rank
        permute (Array.init r (fun i -> if i = r - 2 then r - 1 elif i = r - 1 then r - 2 else i)) t

    /// An n×n constant with entries f i j.
    static let squareMask (dt: Dtype) (n: int) (f: int -> int -> float) =
        let v = Array.init (n * n) (fun k -> f (k / n) (k % n))
        exec (Cast dt) [| Tensor(RawTensor([| n; n |], F64 v), null, null) |]

    /// A declared rule (Ops) staged once into tensor ops of (mask, g, x, y, out), so that the VJP can itself be
    /// differentiated (y: null for unary ops; mask: where's mask, null for other ops). Staging walks the rule
    /// once per op, not once per call. Delegates, not curried closures (whose calls type-test the closure),
    /// and a leaf operand read in place, since the tape runs these on every backward pass.
    static let rec stageRule (r: Rule) : StagedRule =
        match r with
        | Rule.G -> StagedRule(fun _ g _ _ _ -> g)
        | Rule.X -> StagedRule(fun _ _ x _ _ -> x)
        | Rule.Y -> StagedRule(fun _ _ _ y _ -> y)
        | Rule.Out -> StagedRule(fun _ _ _ _ o -> o)
        | Rule.Num v -> StagedRule(fun _ _ x _ _ -> scalarLike x v)
        | Rule.Plus (a, b) -> stageBinary Add a b
        | Rule.Minus (a, b) -> stageBinary Sub a b
        | Rule.Times (a, b) -> stageBinary Mul a b
        | Rule.Over (a, b) -> stageBinary Div a b
        | Rule.ApplyBinary (op, p, q) -> stageBinary op p q
        | Rule.Negate a -> let fa = stageRule a in StagedRule(fun m g x y o -> neg (fa.Invoke(m, g, x, y, o)))
        | Rule.Apply (u, a) -> let fa = stageRule a in StagedRule(fun m g x y o -> un u (fa.Invoke(m, g, x, y, o)))
        | Rule.If (c, a, b, t, e) ->
            let fa, fb, ft, fe = stageRule a, stageRule b, stageRule t, stageRule e
            StagedRule(fun m g x y o ->
                where (cmp c (fa.Invoke(m, g, x, y, o)) (fb.Invoke(m, g, x, y, o))) (ft.Invoke(m, g, x, y, o)) (fe.Invoke(m, g, x, y, o)))
        | Rule.Select (t, e) ->
            let ft, fe = stageRule t, stageRule e
            StagedRule(fun m g x y o -> where m (ft.Invoke(m, g, x, y, o)) (fe.Invoke(m, g, x, y, o)))

    /// op(a, b) staged; the cotangent times a leaf (most VJPs: g·y, g·x, g·out, g/y) without a call per leaf.
    and stageBinary (op: BinaryOp) (a: Rule) (b: Rule) : StagedRule =
        match a, b with
        | Rule.G, Rule.X -> StagedRule(fun _ g x _ _ -> bin op g x)
        | Rule.G, Rule.Y -> StagedRule(fun _ g _ y _ -> bin op g y)
        | Rule.G, Rule.Out -> StagedRule(fun _ g _ _ o -> bin op g o)
        | Rule.G, b ->
            let fb = stageRule b
            StagedRule(fun m g x y o -> bin op g (fb.Invoke(m, g, x, y, o)))
        | a, b ->
            let fa, fb = stageRule a, stageRule b
            StagedRule(fun m g x y o -> bin op (fa.Invoke(m, g, x, y, o)) (fb.Invoke(m, g, x, y, o)))

    /// Every unary and binary op's VJP rules, and where's, staged once, by the op's tag.
    static let unaryVjps = Ops.allUnary |> Array.map (fun u -> (Ops.unary u).Decl.Vjp |> Result.map stageRule)
    static let binaryVjps =
        Ops.allBinary |> Array.map (fun b -> let d = (Ops.binary b).Decl in struct (stageRule d.VjpX, stageRule d.VjpY))
    static let whereVjps = struct (stageRule Ops.where.Decl.VjpX, stageRule Ops.where.Decl.VjpY)


    /// Vector-Jacobian products. `xs` are the inputs and `out` the output, one level down; `g` is the
    /// output's cotangent. Only inputs whose `needs` flag is set get a gradient (others get null).
    static let vjp (op: Op) (xs: Tensor[]) (out: Tensor) (g: Tensor) (needs: bool[]) (kept: float[] | null) : Tensor[] =
        // g may be smaller than the output, standing for its broadcast (a sum's cotangent, see toInput): the
        // element-wise ops take it as it is (their rules broadcast it), every other op gets it whole
        let g =
            match op with
            | Unary _ | Binary _ | Where -> g
            | _ -> expand g out.ShapeRef
        let x = xs.[0]
        let one (f: unit -> Tensor) = [| (if needs.[0] then f () else null) |]
        match op with
        | Unary u ->
            match unaryVjps.[Ops.unaryIndex u], kept with
            | Ok _, NonNull d when isNull g.NodeOrNull && (match g.Raw.Storage with Device _ -> false | F64 _ | F32 _ | I32 _ | B _ -> true) ->
                // first order, f'(x) kept by the forward: g · f'(x), as the rule computes it, without f' again
                one (fun () -> mul g (Tensor(RawTensor(x.ShapeRef, F64 d), null, null)))
            | Ok rule, _ -> one (fun () -> rule.Invoke(null, g, x, null, out))
            | Error why, _ -> if needs.[0] then raise (NotSupportedException why) else [| null |]
        | Binary b ->
            let y = xs.[1]
            let struct (vx, vy) = binaryVjps.[Ops.binaryIndex b]
            [| (if needs.[0] then toInput (vx.Invoke(null, g, x, y, out)) out.ShapeRef x.ShapeRef else null)
               (if needs.[1] then toInput (vy.Invoke(null, g, x, y, out)) out.ShapeRef y.ShapeRef else null) |]
        | Compare _ -> [| null; null |]
        | PositiveDefinite -> [| null |]
        | Reduce (r, axes, _) ->
            one (fun () ->
                let keptShape = Shape.reduced x.ShapeRef axes true
                let gk = reshape keptShape g
                match r with
                // broadcast lazily: gk stands for its broadcast to x's shape (see toInput)
                | Sum -> gk
                | Max ->
                    let hit = cmp Eq x (reshape keptShape out)
                    let w = exec (Cast x.Dtype) [| hit |]
                    let count = exec (Reduce (Sum, axes, true)) [| w |]
                    mul gk (div w count))
        | MatMul (tA, tB) ->
            let b = xs.[1]
            let ga =
                if not needs.[0] then null
                else
                    let r = if tA then exec (MatMul (tB, true)) [| b; g |] else exec (MatMul (false, not tB)) [| g; b |]
                    unbroadcast r x.ShapeRef
            let gb =
                if not needs.[1] then null
                else
                    let r = if tB then exec (MatMul (true, tA)) [| g; x |] else exec (MatMul (not tA, false)) [| x; g |]
                    unbroadcast r b.ShapeRef
            [| ga; gb |]
        | Permute perm ->
            one (fun () ->
                let inv = Array.zeroCreate perm.Length
                perm |> Array.iteri (fun i p -> inv.[p] <- i)
                permute inv g)
        | Reshape _ -> one (fun () -> reshape x.ShapeRef g)
        | BroadcastTo _ -> one (fun () -> unbroadcast g x.ShapeRef)
        | Concat axis ->
            let mutable off = 0
            [| for xi in xs do
                   let s = xi.ShapeRef
                   let starts = Array.zeroCreate s.Length
                   starts.[axis] <- off
                   let lengths = g.ShapeRef |> Array.mapi (fun i d -> if i = axis then s.[axis] else d)
                   off <- off + s.[axis]
                   yield exec (Slice (starts, lengths)) [| g |] |]
            |> Array.mapi (fun i t -> if needs.[i] then t else null)
        | Slice (starts, _) -> one (fun () -> exec (Pad (starts, x.ShapeRef)) [| g |])
        | Pad (starts, _) -> one (fun () -> exec (Slice (starts, x.ShapeRef)) [| g |])
        | Gather axis -> [| (if needs.[0] then exec (ScatterAdd (axis, x.ShapeRef.[axis])) [| g; xs.[1] |] else null); null |]
        | ScatterAdd (axis, _) -> [| (if needs.[0] then exec (Gather axis) [| g; xs.[1] |] else null); null |]
        | Cumsum (axis, rev) -> one (fun () -> exec (Cumsum (axis, not rev)) [| g |])
        | Where ->
            let m, a, b = xs.[0], xs.[1], xs.[2]
            let struct (vx, vy) = whereVjps
            [| null
               (if needs.[1] then toInput (vx.Invoke(m, g, a, b, out)) out.ShapeRef a.ShapeRef else null)
               (if needs.[2] then toInput (vy.Invoke(m, g, a, b, out)) out.ShapeRef b.ShapeRef else null) |]
        | Clamp (lo, hi) -> one (fun () -> (stageRule (Ops.clamp.Decl.Vjp lo hi)).Invoke(null, g, x, null, out))
        | Cast dt -> [| (if needs.[0] && dt.IsFloat && x.Dtype.IsFloat then exec (Cast x.Dtype) [| g |] else null) |]
        | StopGradient -> [| null |]
        | Cholesky ->
            // Murray (2016): Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹), Φ = lower triangle with the diagonal halved.
            one (fun () ->
                let l = out
                let n = l.ShapeRef.[l.Rank - 1]
                let phi = squareMask l.Dtype n (fun i j -> if i > j then 1.0 elif i = j then 0.5 else 0.0)
                let p = mul (exec (MatMul (true, false)) [| l; g |]) phi
                let tmp = exec (TriangularSolve (true, true)) [| l; p |]
                let s = lastTwo (exec (TriangularSolve (true, true)) [| l; lastTwo tmp |])
                scale (add s (lastTwo s)) 0.5)
        | TriangularSolve (lower, tr) ->
            let a = x
            let xsol = out
            let bbar = exec (TriangularSolve (lower, not tr)) [| a; g |]
            let abar =
                if not needs.[0] then null
                else
                    let n = a.ShapeRef.[a.Rank - 1]
                    let full = if tr then neg (exec (MatMul (false, true)) [| xsol; bbar |]) else neg (exec (MatMul (false, true)) [| bbar; xsol |])
                    mul full (squareMask a.Dtype n (fun i j -> if (if lower then i >= j else i <= j) then 1.0 else 0.0))
            [| abar; (if needs.[1] then bbar else null) |]
        | GlmLogLikelihood family ->
            // r = y − E[y | η] (0 off the support): ∂x = g·r βᵀ, ∂α = g·r (summed for one α), ∂β = g·Xᵀr;
            // y and the mask are data (no gradient). Primitive ops, so this can be differentiated again.
            let alpha, beta, y, mask = xs.[1], xs.[2], xs.[3], xs.[4]
            let n, d = x.ShapeRef.[0], x.ShapeRef.[1]
            let eta = add (reshape [| n |] (exec (MatMul (false, false)) [| x; reshape [| d; 1 |] beta |])) alpha
            let mean =
                match family with
                | GlmFamily.BernoulliLogit -> un Sigmoid eta
                | GlmFamily.PoissonLog -> un Exp eta
            let gr = mul (where mask (sub y mean) (scalarLike y 0.0)) g
            [| (if needs.[0] then exec (MatMul (false, false)) [| reshape [| n; 1 |] gr; reshape [| 1; d |] beta |] else null)
               (if needs.[1] then unbroadcast gr alpha.ShapeRef else null)
               (if needs.[2] then reshape [| d |] (exec (MatMul (true, false)) [| x; reshape [| n; 1 |] gr |]) else null)
               null
               null |]
        | CategoricalGlmLogLikelihood when isNull (top [| x; xs.[1]; xs.[2]; g |]) && onHost (Array.append xs [| g |]) ->
            // first order (nothing above this level differentiates the gradient): the kernel's one pass gives
            // XᵀR and ΣR (and R for ∂x), as the compiled program computes them, instead of a dozen [n, C] ops;
            // nested differentiation takes the primitive form below
            let n, d, c = x.ShapeRef.[0], x.ShapeRef.[1], xs.[2].ShapeRef.[1]
            let gv = (Cpu.toF64 g.Raw.Storage).[0]
            let bv = Cpu.toF64 xs.[2].Raw.Storage
            let grad = Array.zeroCreate ((d + 1) * c)
            let r = if needs.[0] then Array.zeroCreate (n * c) else [||]
            CategoricalGlmKernel.run n d c (Cpu.toF64 x.Raw.Storage) 0 (Cpu.toF64 xs.[1].Raw.Storage) 0 bv 0
                (Cpu.toF64 xs.[3].Raw.Storage) 0 (Cpu.toF64 xs.[4].Raw.Storage) 0 (Array.zeroCreate (CategoricalGlmKernel.scratchSize d c)) 0
                true grad 0 needs.[0] r 0 |> ignore
            let result (shape: int[]) (v: float[]) =
                Tensor(RawTensor(shape, (match x.Dtype with
                                         | Float32 -> F32 (Array.map float32 v)
                                         | _ -> F64 v)), null, null)
            [| (if needs.[0] then
                    // (g·R) βᵀ, β stored [d, C] being op(B) = βᵀ transposed
                    let gx = Array.zeroCreate (n * d)
                    if n > 0 && d > 0 then
                        for i in 0 .. r.Length - 1 do
                            r.[i] <- gv * r.[i]
                        Gemm.gemmF64Threads 1 false true n d c r 0 c bv 0 c gx 0 d false
                    result [| n; d |] gx
                else null)
               (if needs.[1] then result [| c |] (Array.init c (fun k -> gv * grad.[d * c + k])) else null)
               (if needs.[2] then result [| d; c |] (Array.init (d * c) (fun i -> gv * grad.[i])) else null)
               null
               null |]
        | CategoricalGlmLogLikelihood ->
            // R = onehot(y) − softmax(η) (0 off the support): ∂x = g·R βᵀ, ∂α = g·Σᵢ Rᵢ, ∂β = g·XᵀR; y and the
            // mask are data (no gradient). Primitive ops, so this can be differentiated again; the max shift
            // is a constant (softmax does not depend on it).
            let alpha, beta, y, mask = xs.[1], xs.[2], xs.[3], xs.[4]
            let n, c = x.ShapeRef.[0], beta.ShapeRef.[1]
            let eta = add (exec (MatMul (false, false)) [| x; beta |]) alpha
            let shifted = sub eta (exec StopGradient [| exec (Reduce (Max, [| 1 |], true)) [| eta |] |])
            let e = un Exp shifted
            let p = div e (exec (Reduce (Sum, [| 1 |], true)) [| e |])
            let classes = exec (Cast y.Dtype) [| Tensor(RawTensor([| 1; c |], F64 (Array.init c float)), null, null) |]
            let onehot = exec (Cast x.Dtype) [| cmp Eq (reshape [| n; 1 |] y) classes |]
            let gr = mul (where (reshape [| n; 1 |] mask) (sub onehot p) (scalarLike x 0.0)) g
            [| (if needs.[0] then exec (MatMul (false, true)) [| gr; beta |] else null)
               (if needs.[1] then exec (Reduce (Sum, [| 0 |], false)) [| gr |] else null)
               (if needs.[2] then exec (MatMul (true, false)) [| x; gr |] else null)
               null
               null |]

    static member PrimalsAt(tape, xs) = primalsAt tape xs
    static member Exec(op, inputs) = exec op inputs
    /// A binary element-wise op; mixed float32/float64 operands are computed in float64.
    static member Binary(b: BinaryOp, x: Tensor, y: Tensor) =
        if x.Dtype = y.Dtype || not (x.Dtype.IsFloat && y.Dtype.IsFloat) then exec (Ops.binaryOp b) [| x; y |]
        else
            let up (t: Tensor) = if t.Dtype = Float64 then t else exec (Cast Float64) [| t |]
            exec (Ops.binaryOp b) [| up x; up y |]
    static member Vjp(op, xs, out, g, needs, kept) = vjp op xs out g needs kept
    /// g broadcast to `shape`: a cotangent that stands for its broadcast, made whole.
    static member Expand(g, shape) = expand g shape
    static member Constant(dt, shape, v) = constant dt shape v
