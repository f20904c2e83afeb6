namespace FunctionalBayes.Tensors

open System
open System.Linq.Expressions

/// One evaluator of a compiled value-and-gradient program: it owns its buffers, so it is not
/// thread-safe; make one per thread or chain. A call allocates nothing.
[<Sealed; OptimizeFromFirstCall>]
type CompiledEvaluator internal (dim: int, run: Func<float[], float[], int[][], float>, vals: float[], adjs: float[], ints: int[][],
                                 rebind: Tensor[] -> float[] -> int[][] -> unit) =
    /// The length of the flat parameter vector.
    member _.Dim = dim
    /// Binds new data tensors (of the compiled shapes and dtypes) into this evaluator's own buffers, as
    /// CompiledGradient.Bind does for a new binding, without allocating new buffers: what a loop over
    /// batches wants. Checks everything (shapes, dtypes, index ranges) before it changes anything.
    member _.Rebind(data: Tensor[]) = rebind data vals ints
    /// Writes the gradient with respect to the flat parameters into `gradient` and returns the value.
    member _.Evaluate(position: ReadOnlySpan<float>, gradient: Span<float>) : float =
        if position.Length <> dim || gradient.Length <> dim then
            invalidArg "position" (sprintf "CompiledEvaluator: position and gradient must have length %d, got %d and %d." dim position.Length gradient.Length)
        position.CopyTo(Span<float>(vals, 0, dim))
        let v = run.Invoke(vals, adjs, ints)
        ReadOnlySpan<float>(adjs, 0, dim).CopyTo(gradient)
        v

/// A compiled program bound to one set of data tensors: it makes evaluators.
[<Sealed>]
type CompiledBinding internal (dim: int, run: Func<float[], float[], int[][], float>, template: float[], adjLength: int, ints: int[][],
                               rebind: Tensor[] -> float[] -> int[][] -> unit) =
    /// The length of the flat parameter vector.
    member _.Dim = dim
    /// A new evaluator with its own buffers.
    member _.CreateEvaluator() = CompiledEvaluator(dim, run, Array.copy template, Array.zeroCreate adjLength, Array.copy ints, rebind)

/// A scalar function of parameter tensors (differentiated) and data tensors (inputs, not
/// differentiated), compiled into one straight-line program of value and gradient.
[<Sealed>]
type CompiledGradient internal (paramShapes: int[][], dataShapes: int[][], dataDtypes: Dtype[], instructions: int, lengthOfVals: int, listing: string,
                                bind: (Tensor[] -> unit) -> Tensor[] -> CompiledBinding) =
    let check (data: Tensor[]) =
        if data.Length <> dataShapes.Length then
            invalidArg "data" (sprintf "CompiledGradient.Bind: the program takes %d data tensors, got %d." dataShapes.Length data.Length)
        for i in 0 .. data.Length - 1 do
            if not (Shape.equal data.[i].ShapeRef dataShapes.[i]) || data.[i].Dtype <> dataDtypes.[i] then
                invalidArg "data"
                    (sprintf "CompiledGradient.Bind: data tensor %d has shape %s and dtype %O; the program was compiled for shape %s and dtype %O. Compile again for new shapes."
                        i (Shape.format data.[i].ShapeRef) data.[i].Dtype (Shape.format dataShapes.[i]) dataDtypes.[i])
    /// The shapes of the parameter tensors, in order; the flat vector concatenates them.
    member _.ParamShapes = paramShapes |> Array.map Array.copy
    /// The shapes of the data tensors the program takes.
    member _.DataShapes = dataShapes |> Array.map Array.copy
    /// The number of primitive ops in the program (after dead-code removal and folding).
    member _.Instructions = instructions
    /// One line per op of the program (its index in the trace, name, shape, and whether a buffer kernel runs it).
    member _.Listing = listing
    /// The length of each evaluator's value buffer.
    member _.BufferLength = lengthOfVals
    /// The program bound to data tensors of the compiled shapes and dtypes (no recompilation).
    member _.Bind(data: Tensor[]) : CompiledBinding =
        check data
        bind check data

/// Compiles a traced scalar function into a fused, allocation-free value-and-gradient program.
[<RequireQualifiedAccess>]
module Compiler =

    /// Operations on at most this many elements are generated as straight-line scalar code whose
    /// values live in locals; larger ones call buffer kernels.
    let internal UnrollLimit = 64

    [<Struct>]
    type private Cell = { V: Expression; A: Expression voption }

    type private Kind =
        | KParam of int
        | KData of int
        | KStatic
        | KConst of Tensor
        | KDyn

    type private Info =
        { Shape: int[]
          Size: int
          Dtype: Dtype
          Kind: Kind
          mutable Grad: bool
          mutable Off: int
          mutable AdjOff: int
          mutable Cells: Cell[]
          mutable IntSlot: int }

    let private miClear = nonNull (typeof<Array>.GetMethod("Clear", [| typeof<Array>; typeof<int>; typeof<int> |]))
    let private miForward = nonNull (typeof<ProgramKernel>.GetMethod("Forward"))
    let private miBackward = nonNull (typeof<ProgramKernel>.GetMethod("Backward"))

    let private num (v: float) = Expression.Constant(v, typeof<float>) :> Expression
    let private add (a: Expression) (b: Expression) = Expression.Add(a, b) :> Expression
    let private cond (c: Expression) (a: Expression) (b: Expression) = Expression.Condition(c, a, b) :> Expression
    let private adjOf (c: Cell) =
        match c.A with
        | ValueSome a -> a
        | ValueNone -> invalidOp "Compiler: a value without an adjoint was asked for one."

    /// A comparison's value in the program: 1 or 0.
    let private compareExpr (c: CompareOp) (x: Expression) (y: Expression) : Expression =
        cond (Ops.compareExpr c x y) (num 1.0) (num 0.0)

    // ---- tracing and the staticness check -------------------------------------------------------

    let private sameConstant (a: Tensor) (b: Tensor) =
        Shape.equal a.ShapeRef b.ShapeRef && a.Dtype = b.Dtype
        && (match a.Storage, b.Storage with
            | F64 x, F64 y -> Array.forall2 (fun (p: float) q -> BitConverter.DoubleToInt64Bits p = BitConverter.DoubleToInt64Bits q) x y
            | F32 x, F32 y -> Array.forall2 (fun (p: float32) q -> BitConverter.SingleToInt32Bits p = BitConverter.SingleToInt32Bits q) x y
            | I32 x, I32 y -> x = y
            | B x, B y -> x = y
            | _ -> false)

    let private sameValue (a: GraphValue) (b: GraphValue) =
        match a, b with
        | GraphInput i, GraphInput j -> i = j
        | GraphNode i, GraphNode j -> i = j
        | GraphConstant s, GraphConstant t -> sameConstant s t
        | GraphInput _, _ | GraphNode _, _ | GraphConstant _, _ -> false

    let private describeValue (v: GraphValue) =
        match v with
        | GraphInput i -> sprintf "input %d" i
        | GraphNode i -> sprintf "node %d" i
        | GraphConstant t -> sprintf "a constant of shape %s" (Shape.format t.ShapeRef)

    /// None when the two traces record the same program; otherwise why not.
    let private difference (g1: Graph) (g2: Graph) : string option =
        let why = "the op graph depends on the values of the parameters (a host-side branch, or a value read back from a tensor)"
        if g1.Nodes.Length <> g2.Nodes.Length then
            Some (sprintf "%s: tracing at two points recorded %d and %d ops." why g1.Nodes.Length g2.Nodes.Length)
        else
            let mutable result = None
            let mutable i = 0
            while result.IsNone && i < g1.Nodes.Length do
                let a = g1.Nodes.[i]
                let b = g2.Nodes.[i]
                if a.Op <> b.Op then
                    result <- Some (sprintf "%s: op %d is %s at the first point and %s at the second." why i a.Op.Name b.Op.Name)
                elif not (Shape.equal a.Shape b.Shape) || a.Dtype <> b.Dtype || a.Inputs.Length <> b.Inputs.Length then
                    result <- Some (sprintf "%s: op %d (%s) has shape %s at the first point and %s at the second." why i a.Op.Name (Shape.format a.Shape) (Shape.format b.Shape))
                else
                    for k in 0 .. a.Inputs.Length - 1 do
                        if result.IsNone && not (sameValue a.Inputs.[k] b.Inputs.[k]) then
                            result <- Some (sprintf "%s: input %d of op %d (%s) is %s at the first point and %s at the second (a constant that changed was computed from a parameter's value)."
                                                why k i a.Op.Name (describeValue a.Inputs.[k]) (describeValue b.Inputs.[k]))
                i <- i + 1
            if result.IsNone && not (Array.forall2 sameValue g1.Outputs g2.Outputs) then
                result <- Some (sprintf "%s: the output differs between the two points." why)
            result

    // ---- element-wise fusion -----------------------------------------------------------------------
    // A run of large element-wise ops of one shape becomes one loop over Vector<float> blocks and a scalar
    // tail (ops between them that read none of the run's values run before it): each input is loaded once,
    // intermediates stay in registers, and only the values read after the loop (by other ops or by the
    // backward kernels) are stored. Only ops whose element form is exact IEEE arithmetic are fused, so the
    // loop gives the kernels' bits; the backward is the kernels'.

    /// Where a fused step reads an operand.
    type private FusedArg =
        /// n elements at this value offset
        | FLoad of int
        /// one value at this offset, broadcast
        | FScalar of int
        /// the result of an earlier step of the loop
        | FStep of int

    type private FusedStep = { Op: Op; Args: FusedArg[]; Store: int }

    let private vecType = typeof<System.Numerics.Vector<float>>
    let private vecFromArray = nonNull (vecType.GetConstructor([| typeof<float[]>; typeof<int> |]))
    let private vecFromScalar = nonNull (vecType.GetConstructor([| typeof<float> |]))
    let private vecCopyTo = nonNull (vecType.GetMethod("CopyTo", [| typeof<float[]>; typeof<int> |]))
    let private vecMethod (name: string) =
        typeof<System.Numerics.Vector>.GetMethods()
        |> Array.find (fun m -> m.Name = name && m.IsGenericMethodDefinition && m.GetParameters().Length = 1)
        |> fun m -> m.MakeGenericMethod(typeof<float>)
    let private vecAbs = vecMethod "Abs"
    let private vecSqrt = vecMethod "SquareRoot"

    /// Whether an op joins fused loops: its vector form gives its kernel's bits (IEEE add, sub, mul, div,
    /// sqrt; sign-bit neg and abs). Transcendental ops keep their kernels.
    let private fusable (op: Op) =
        match op with
        | Binary (Add | Sub | Mul | Div) | Unary (Neg | Abs | Sqrt) -> true
        | _ -> false

    let private stepExpr (op: Op) (vector: bool) (a: Expression[]) : Expression =
        match op with
        | Binary b when not vector -> Ops.binaryExpr b a.[0] a.[1]
        | Unary u when not vector -> Ops.unaryExpr u a.[0]
        | Binary Add -> Expression.Add(a.[0], a.[1]) :> Expression
        | Binary Sub -> Expression.Subtract(a.[0], a.[1]) :> Expression
        | Binary Mul -> Expression.Multiply(a.[0], a.[1]) :> Expression
        | Binary Div -> Expression.Divide(a.[0], a.[1]) :> Expression
        | Unary Neg -> Expression.Negate(a.[0]) :> Expression
        | Unary Abs -> Expression.Call(vecAbs, a.[0]) :> Expression
        | Unary Sqrt -> Expression.Call(vecSqrt, a.[0]) :> Expression
        | _ -> invalidOp (sprintf "Compiler: %s is not fused." op.Name)

    /// One loop over n elements running the steps: Vector<float> blocks, then the scalar tail.
    let private fusedLoop (n: int) (steps: FusedStep[]) : Action<float[]> =
        let v = Expression.Parameter(typeof<float[]>, "vals")
        let i = Expression.Variable(typeof<int>, "i")
        let vars = ResizeArray<ParameterExpression>([ i ])
        let at (off: int) = Expression.Add(Expression.Constant off, i) :> Expression
        let body (vector: bool) (prelude: ResizeArray<Expression>) =
            let t = if vector then vecType else typeof<float>
            let block = ResizeArray<Expression>()
            let loads = Collections.Generic.Dictionary<int, Expression>()
            let scalars = Collections.Generic.Dictionary<int, Expression>()
            let results = Array.zeroCreate<Expression> steps.Length
            let local (e: Expression) (into: ResizeArray<Expression>) =
                let p = Expression.Variable(t)
                vars.Add p
                into.Add(Expression.Assign(p, e))
                p :> Expression
            let arg (a: FusedArg) =
                match a with
                | FStep s -> results.[s]
                | FLoad off ->
                    match loads.TryGetValue off with
                    | true, e -> e
                    | _ ->
                        let e = local (if vector then Expression.New(vecFromArray, v, at off) :> Expression else Expression.ArrayAccess(v, at off) :> Expression) block
                        loads.[off] <- e
                        e
                | FScalar off ->
                    match scalars.TryGetValue off with
                    | true, e -> e
                    | _ ->
                        let x = Expression.ArrayAccess(v, Expression.Constant off) :> Expression
                        let e = local (if vector then Expression.New(vecFromScalar, x) :> Expression else x) prelude
                        scalars.[off] <- e
                        e
            steps |> Array.iteri (fun s st ->
                results.[s] <- local (stepExpr st.Op vector (st.Args |> Array.map arg)) block
                if st.Store >= 0 then
                    block.Add(if vector then Expression.Call(results.[s], vecCopyTo, v, at st.Store) :> Expression
                              else Expression.Assign(Expression.ArrayAccess(v, at st.Store), results.[s]) :> Expression))
            block
        let prelude = ResizeArray<Expression>()
        let w = System.Numerics.Vector<float>.Count
        let vBody = body true prelude
        let sBody = body false prelude
        let stop1 = Expression.Label("blocks")
        let stop2 = Expression.Label("tail")
        let loop (cont: Expression) (stop: LabelTarget) (b: ResizeArray<Expression>) (step: int) =
            b.Add(Expression.AddAssign(i, Expression.Constant step))
            Expression.Loop(Expression.IfThenElse(cont, Expression.Block(b), Expression.Break stop), stop) :> Expression
        let code =
            [ yield Expression.Assign(i, Expression.Constant 0) :> Expression
              yield! prelude
              yield loop (Expression.LessThanOrEqual(i, Expression.Constant(n - w))) stop1 vBody w
              yield loop (Expression.LessThan(i, Expression.Constant n)) stop2 sBody 1 ]
        Expression.Lambda<Action<float[]>>(Expression.Block(vars, code), [| v |]).Compile()

    // ---- the compiler --------------------------------------------------------------------------

    exception private Unsupported of string

    let private unsupported fmt = Printf.kprintf (fun s -> raise (Unsupported s)) fmt

    let private build (g: Graph) (nParams: int) (fuse: bool) : CompiledGradient =
        let nIn = g.InputShapes.Length
        let nodes = g.Nodes
        let total = nIn + nodes.Length
        let key (v: GraphValue) =
            match v with
            | GraphInput i -> i
            | GraphNode k -> nIn + k
            | GraphConstant _ -> -1
        let outV =
            match g.Outputs with
            | [| GraphNode k |] -> nIn + k
            | [| GraphInput _ |] | [| GraphConstant _ |] -> unsupported "the function's value does not go through any op on the parameters."
            | _ -> unsupported "the function must return one tensor."
        if nodes.[outV - nIn].Shape.Length <> 0 && Shape.size nodes.[outV - nIn].Shape <> 1 then
            unsupported "the function must return one value, got shape %s." (Shape.format nodes.[outV - nIn].Shape)
        if not nodes.[outV - nIn].Dtype.IsFloat then
            unsupported "the function returns %O; a compiled program returns a float value." nodes.[outV - nIn].Dtype
        // liveness
        let live = Array.zeroCreate<bool> total
        live.[outV] <- true
        for k in nodes.Length - 1 .. -1 .. 0 do
            if live.[nIn + k] then
                for v in nodes.[k].Inputs do
                    let j = key v
                    if j >= 0 then live.[j] <- true
        // dependence on parameters and data
        let dyn = Array.zeroCreate<bool> total
        let usesData = Array.zeroCreate<bool> total
        for i in 0 .. nIn - 1 do
            if i < nParams then dyn.[i] <- true else usesData.[i] <- true
        for k in 0 .. nodes.Length - 1 do
            for v in nodes.[k].Inputs do
                let j = key v
                if j >= 0 then
                    dyn.[nIn + k] <- dyn.[nIn + k] || dyn.[j]
                    usesData.[nIn + k] <- usesData.[nIn + k] || usesData.[j]
        // parameter-free, data-free ops are folded into constants now
        let folded = Array.zeroCreate<Tensor> total
        let readConst (v: GraphValue) =
            match v with
            | GraphConstant t -> t
            | GraphNode k -> folded.[nIn + k]
            | GraphInput _ -> invalidOp "not a constant"
        for k in 0 .. nodes.Length - 1 do
            if live.[nIn + k] && not dyn.[nIn + k] && not usesData.[nIn + k] then
                folded.[nIn + k] <- Prim.Exec(nodes.[k].Op, nodes.[k].Inputs |> Array.map readConst)
        let infos =
            Array.init total (fun i ->
                let shape, dt, kind =
                    if i < nIn then
                        g.InputShapes.[i], g.InputDtypes.[i], (if i < nParams then KParam i else KData (i - nParams))
                    else
                        let n = nodes.[i - nIn]
                        n.Shape, n.Dtype,
                        (if dyn.[i] then KDyn elif usesData.[i] then KStatic else KConst folded.[i])
                { Shape = shape; Size = Shape.size shape; Dtype = dt; Kind = kind; Grad = false
                  Off = -1; AdjOff = -1; Cells = [||]; IntSlot = -1 })
        for i in 0 .. nParams - 1 do
            if infos.[i].Dtype <> Float64 then unsupported "parameter %d is %O; the compiled program differentiates float64 parameters." i infos.[i].Dtype
            infos.[i].Grad <- true
        let dtypeOf (v: GraphValue) =
            match v with
            | GraphConstant t -> t.Dtype
            | _ -> infos.[key v].Dtype
        // whether an op passes the gradient to its inputs at all
        let flows (n: GraphOp) =
            match n.Op with
            | Compare _ | StopGradient | PositiveDefinite -> false
            | Cast _ -> n.Dtype.IsFloat && (dtypeOf n.Inputs.[0]).IsFloat
            | _ -> true
        // which dynamic values carry a gradient. Every dtype lives in the float64 buffers: float32 values
        // rounded to float32 after each op (computed in float64), int32 and bool values exactly.
        for k in 0 .. nodes.Length - 1 do
            let i = nIn + k
            if live.[i] && dyn.[i] then
                let n = nodes.[k]
                // int32 comes only from casts and from ops that move values (exact in float64)
                if n.Dtype = Dtype.Int32 then
                    match n.Op with
                    | Cast _ | Reshape _ | StopGradient | Permute _ | BroadcastTo _ | Slice _ | Pad _ | Concat _ | Gather _ | Where -> ()
                    | Unary _ | Binary _ | Compare _ | Reduce _ | MatMul _ | ScatterAdd _ | Cumsum _ | Clamp _ | Cholesky
                    | TriangularSolve _ | PositiveDefinite | GlmLogLikelihood _ | CategoricalGlmLogLikelihood ->
                        unsupported "op %d (%s) computes int32 from the parameters; the compiled program holds int32 values only from casts and ops that move values." k n.Op.Name
                infos.[i].Grad <- flows n && n.Dtype.IsFloat && n.Inputs |> Array.exists (fun v -> let j = key v in j >= 0 && infos.[j].Grad)
        if not infos.[outV].Grad then unsupported "the function's value does not depend on the parameters through any differentiable op."
        // and which of them the output's adjoint reaches: a value read only where the gradient stops (a
        // stopGradient'ed max shift, a comparison) keeps no adjoint, so its op runs no backward kernel
        let reached = Array.zeroCreate<bool> total
        reached.[outV] <- true
        for k in nodes.Length - 1 .. -1 .. 0 do
            let i = nIn + k
            if reached.[i] && infos.[i].Grad && flows nodes.[k] then
                for v in nodes.[k].Inputs do
                    let j = key v
                    if j >= 0 then reached.[j] <- true
        for i in nParams .. total - 1 do
            if not reached.[i] then infos.[i].Grad <- false
        // ---- code generation --------------------------------------------------------------------
        let vals = Expression.Parameter(typeof<float[]>, "vals")
        let adjs = Expression.Parameter(typeof<float[]>, "adjs")
        let ints = Expression.Parameter(typeof<int[][]>, "ints")
        let locals = ResizeArray<ParameterExpression>()
        let pre = ResizeArray<Expression>()
        let fwd = ResizeArray<Expression>()
        let bwdBlocks = ResizeArray<ResizeArray<Expression>>()
        let post = ResizeArray<Expression>()
        let dim = Array.sum (Array.init nParams (fun i -> infos.[i].Size))
        let mutable nextVal = dim
        let mutable nextAdj = dim
        let mutable instructions = 0
        let listing = ResizeArray<string>()
        let allocVal n = let o = nextVal in nextVal <- nextVal + n; o
        let allocAdj n = let o = nextAdj in nextAdj <- nextAdj + n; o
        // what to write into every evaluator's value buffer: constants now, data-dependent values at bind
        let constInits = ResizeArray<int * float[]>()
        let staticSlots = ResizeArray<int * int>()      // (value offset, value index)
        let intSlots = ResizeArray<Choice<int[], int>>() // constant ints, or a value index evaluated at bind
        let gatherBounds = ResizeArray<int * int * string>() // (int slot, bound, op) for index checks
        let newLocal () =
            let p = Expression.Variable(typeof<float>)
            locals.Add p
            p
        let arenaCell (info: Info) (i: int) =
            { V = Expression.ArrayAccess(vals, Expression.Constant(info.Off + i))
              A = if info.AdjOff >= 0 then ValueSome (Expression.ArrayAccess(adjs, Expression.Constant(info.AdjOff + i)) :> Expression) else ValueNone }
        // parameters: offsets in the flat vector; small ones are read into locals
        let mutable off = 0
        for i in 0 .. nParams - 1 do
            let info = infos.[i]
            info.Off <- off
            info.AdjOff <- off
            if info.Size <= UnrollLimit && live.[i] then
                info.Cells <-
                    Array.init info.Size (fun e ->
                        let v = newLocal ()
                        let a = newLocal ()
                        pre.Add(Expression.Assign(v, Expression.ArrayAccess(vals, Expression.Constant(off + e))))
                        pre.Add(Expression.Assign(a, num 0.0))
                        post.Add(Expression.AddAssign(Expression.ArrayAccess(adjs, Expression.Constant(off + e)), a))
                        { V = v; A = ValueSome (a :> Expression) })
            off <- off + info.Size
        // data and data-dependent values read by dynamic ops get value slots
        let ensureStatic (j: int) =
            let info = infos.[j]
            if info.Off < 0 then
                info.Off <- allocVal info.Size
                staticSlots.Add((info.Off, j))
        let cellOf (v: GraphValue) (i: int) : Cell =
            match v with
            | GraphConstant t -> { V = num (Cpu.toF64 t.Storage).[i]; A = ValueNone }
            | _ ->
                let info = infos.[key v]
                match info.Kind with
                | KConst t -> { V = num (Cpu.toF64 t.Storage).[i]; A = ValueNone }
                | KData _ | KStatic -> ensureStatic (key v); arenaCell info i
                | KParam _ | KDyn -> if info.Cells.Length = 0 then arenaCell info i else info.Cells.[i]
        let constTensor (v: GraphValue) =
            match v with
            | GraphConstant t -> Some t
            | _ ->
                match infos.[key v].Kind with
                | KConst t -> Some t
                | KParam _ | KData _ | KStatic | KDyn -> None
        let shapeOf (v: GraphValue) =
            match v with
            | GraphConstant t -> t.ShapeRef
            | _ -> infos.[key v].Shape
        let constArena = ResizeArray<Tensor * int>()
        /// The value offset of v (spilling small values computed into locals), and its adjoint offset (-1: none).
        let arena (v: GraphValue) : int * int =
            match constTensor v with
            | Some t ->
                match constArena |> Seq.tryFind (fun (c, _) -> obj.ReferenceEquals(c, t)) with
                | Some (_, o) -> o, -1
                | None ->
                    let o = allocVal t.Size
                    constInits.Add((o, Cpu.toF64 t.Storage))
                    constArena.Add((t, o))
                    o, -1
            | None ->
                let j = key v
                let info = infos.[j]
                match info.Kind with
                | KData _ | KStatic -> ensureStatic j; info.Off, -1
                | KParam _ -> info.Off, info.AdjOff
                | KConst _ -> invalidOp "unreachable"
                | KDyn ->
                    if info.Off < 0 then
                        // a value held in locals, now needed whole by a kernel: copy it out, and its adjoint back
                        let cells = info.Cells
                        info.Off <- allocVal info.Size
                        if info.Grad then info.AdjOff <- allocAdj info.Size
                        let back = ResizeArray<Expression>()
                        for e in 0 .. info.Size - 1 do
                            fwd.Add(Expression.Assign(Expression.ArrayAccess(vals, Expression.Constant(info.Off + e)), cells.[e].V))
                            match cells.[e].A with
                            | ValueSome a when info.Grad -> back.Add(Expression.AddAssign(a, Expression.ArrayAccess(adjs, Expression.Constant(info.AdjOff + e))))
                            | _ -> ()
                        bwdBlocks.Add back
                    info.Off, info.AdjOff
        let intSlotOf (v: GraphValue) (bound: int) (opName: string) =
            let slot =
                match constTensor v with
                | Some t ->
                    intSlots.Add(Choice1Of2 (match t.Storage with
                                             | I32 a -> a
                                             | s -> Cpu.toF64 s |> Array.map int))
                    intSlots.Count - 1
                | None ->
                    let j = key v
                    let info = infos.[j]
                    match info.Kind with
                    | KData _ | KStatic ->
                        if info.IntSlot < 0 then
                            intSlots.Add(Choice2Of2 j)
                            info.IntSlot <- intSlots.Count - 1
                        info.IntSlot
                    | KParam _ | KDyn | KConst _ -> unsupported "the indices of %s depend on the parameters." opName
            gatherBounds.Add((slot, bound, opName))
            slot
        /// Where an op's indices come from: an int slot (constant or bound from the data, checked at bind),
        /// or, for indices computed from the parameters, their values' offset (checked when the op runs).
        let indicesOf (v: GraphValue) (bound: int) (opName: string) : int * int =
            match v with
            | GraphConstant _ -> intSlotOf v bound opName, -1
            | _ ->
                match infos.[key v].Kind with
                | KDyn -> -1, fst (arena v)
                | KParam _ | KData _ | KStatic | KConst _ -> intSlotOf v bound opName, -1
        let kernel (i: int) (kf: int -> int -> ProgramKernel) =
            // the output lives in the value buffer
            let info = infos.[i]
            info.Off <- allocVal info.Size
            if info.Grad then info.AdjOff <- allocAdj info.Size
            let k = kf info.Off info.AdjOff
            fwd.Add(Expression.Call(Expression.Constant(k), miForward, vals, ints))
            // a float32 value, computed in float64, becomes a float32 value before anything reads it
            if info.Dtype = Float32 then
                fwd.Add(Expression.Call(Expression.Constant(CompiledKernels.RoundToFloat32(info.Off, info.Size)), miForward, vals, ints))
            let back = ResizeArray<Expression>()
            if info.Grad then back.Add(Expression.Call(Expression.Constant(k), miBackward, vals, adjs, ints))
            bwdBlocks.Add back
        // whether the current op wrote fresh locals (a float32 op's are rounded after it)
        let freshLocals = ref false
        let localCells (i: int) =
            let info = infos.[i]
            freshLocals.Value <- true
            info.Cells <-
                Array.init info.Size (fun _ ->
                    let v = newLocal ()
                    let a =
                        if info.Grad then
                            let a = newLocal ()
                            pre.Add(Expression.Assign(a, num 0.0))
                            ValueSome (a :> Expression)
                        else ValueNone
                    { V = v; A = a })
            info.Cells
        let accumulate (back: ResizeArray<Expression>) (target: Cell) (value: Expression) =
            match target.A with
            | ValueSome a -> back.Add(Expression.AddAssign(a, value))
            | ValueNone -> ()
        /// For each output element, the input cell it reads (for layout ops).
        let layoutSources (op: Op) (ins: GraphValue[]) (outShape: int[]) : (int * int)[] =
            let n = Shape.size outShape
            let outSt = Shape.stridesOf outShape
            let coords (i: int) =
                let c = Array.zeroCreate outShape.Length
                let mutable rem = i
                for d in 0 .. outShape.Length - 1 do
                    c.[d] <- rem / outSt.[d]
                    rem <- rem - c.[d] * outSt.[d]
                c
            let flat (shape: int[]) (c: int[]) =
                let st = Shape.stridesOf shape
                let mutable s = 0
                for d in 0 .. c.Length - 1 do
                    s <- s + c.[d] * st.[d]
                s
            let inShape = shapeOf ins.[0]
            match op with
            | Reshape _ | StopGradient | Cast _ -> Array.init n (fun i -> 0, i)
            | BroadcastTo _ ->
                let m = CompiledKernels.broadcastMap inShape outShape
                Array.init n (fun i -> 0, (if m.Length = 0 then i else m.[i]))
            | Permute perm ->
                Array.init n (fun i ->
                    let c = coords i
                    let ic = Array.zeroCreate inShape.Length
                    for d in 0 .. perm.Length - 1 do
                        ic.[perm.[d]] <- c.[d]
                    0, flat inShape ic)
            | Slice (starts, _) -> Array.init n (fun i -> 0, flat inShape (Array.map2 (+) (coords i) starts))
            | Pad (starts, _) ->
                Array.init n (fun i ->
                    let c = Array.map2 (-) (coords i) starts
                    if Array.exists2 (fun x d -> x < 0 || x >= d) c inShape then -1, 0 else 0, flat inShape c)
            | Concat axis ->
                let bounds = ins |> Array.map (fun v -> (shapeOf v).[axis]) |> Array.scan (+) 0
                Array.init n (fun i ->
                    let c = coords i
                    let mutable s = 0
                    while c.[axis] >= bounds.[s + 1] do
                        s <- s + 1
                    c.[axis] <- c.[axis] - bounds.[s]
                    s, flat (shapeOf ins.[s]) c)
            | _ -> invalidOp "not a layout op"
        // ---- fused loops: runs of large float64 element-wise ops of one shape, in program order ------
        let consumers = Array.init total (fun _ -> ResizeArray<int>())
        for k in 0 .. nodes.Length - 1 do
            if live.[nIn + k] && dyn.[nIn + k] then
                for v in nodes.[k].Inputs do
                    let j = key v
                    if j >= 0 then consumers.[j].Add k
        let groupOf = Array.create nodes.Length -1
        let groups = ResizeArray<int[]>()
        if fuse then
            let joins k =
                let info = infos.[nIn + k]
                info.Dtype = Float64 && info.Size > UnrollLimit && fusable nodes.[k].Op
                && nodes.[k].Inputs |> Array.forall (fun v -> let s = shapeOf v in Shape.equal s info.Shape || Shape.size s = 1)
            let run = ResizeArray<int>()
            let flush () =
                // one op alone is its kernel
                if run.Count >= 2 then
                    for k in run do groupOf.[k] <- groups.Count
                    groups.Add(run.ToArray())
                run.Clear()
            for k in 0 .. nodes.Length - 1 do
                if live.[nIn + k] && dyn.[nIn + k] then
                    if joins k then
                        if run.Count > 0 && not (Shape.equal infos.[nIn + run.[0]].Shape infos.[nIn + k].Shape) then flush ()
                        run.Add k
                    // an op that reads none of the run's values (a scalar's exp, say) runs before the loop,
                    // which runs at the run's last op; one that reads them ends the run
                    elif nodes.[k].Inputs |> Array.exists (fun v -> let j = key v in j >= nIn && run.Contains(j - nIn)) then flush ()
            flush ()
        // whether a fused op's value is stored: read after its loop, or by a backward kernel (the
        // operands of mul, the divisor and quotient of div, the input and output of abs and sqrt)
        let stored (k: int) =
            let i = nIn + k
            let readsBack (c: int) =
                infos.[nIn + c].Grad
                && (match nodes.[c].Op with
                    | Binary Mul | Unary (Abs | Sqrt) -> true
                    | Binary Div -> key nodes.[c].Inputs.[1] = i
                    | _ -> false)
            i = outV
            || consumers.[i] |> Seq.exists (fun c -> groupOf.[c] <> groupOf.[k] || readsBack c)
            || (infos.[i].Grad && (match nodes.[k].Op with
                                   | Binary Div | Unary (Abs | Sqrt) -> true
                                   | _ -> false))
        /// The value (and adjoint) slots of fused loop `gid`'s ops.
        let allocFused (gid: int) =
            for k in groups.[gid] do
                let info = infos.[nIn + k]
                info.Off <- allocVal info.Size
                if info.Grad then info.AdjOff <- allocAdj info.Size
        /// The forward of fused loop `gid`, after its last op's inputs are computed.
        let emitFused (gid: int) =
            let g = groups.[gid]
            let stepOf = Collections.Generic.Dictionary<int, int>()
            let steps =
                g |> Array.mapi (fun s k ->
                    stepOf.[k] <- s
                    let args =
                        nodes.[k].Inputs |> Array.map (fun v ->
                            let j = key v
                            if j >= nIn && groupOf.[j - nIn] = gid then FStep stepOf.[j - nIn]
                            else
                                let o, _ = arena v
                                if Shape.size (shapeOf v) = 1 then FScalar o else FLoad o)
                    { Op = nodes.[k].Op; Args = args; Store = (if stored k then infos.[nIn + k].Off else -1) })
            fwd.Add(Expression.Invoke(Expression.Constant(fusedLoop infos.[nIn + g.[0]].Size steps), vals))
        /// A fused op's backward: its kernel's (the values it reads are stored, see `stored`).
        let backwardOnly (i: int) (kf: int -> int -> ProgramKernel) =
            let info = infos.[i]
            let back = ResizeArray<Expression>()
            if info.Grad then back.Add(Expression.Call(Expression.Constant(kf info.Off info.AdjOff), miBackward, vals, adjs, ints))
            bwdBlocks.Add back
        // ---- one op at a time ---------------------------------------------------------------------
        for k in 0 .. nodes.Length - 1 do
            let i = nIn + k
            if live.[i] && dyn.[i] then
                let n = nodes.[k]
                let info = infos.[i]
                let ins = n.Inputs
                let size = info.Size
                let small = size <= UnrollLimit
                instructions <- instructions + 1
                freshLocals.Value <- false
                let gid = groupOf.[k]
                listing.Add(sprintf "%d %s %s%s" k n.Op.Name (Shape.format info.Shape)
                                (if small then ""
                                 elif gid >= 0 then sprintf " (fused loop %d%s)" gid (if stored k then "" else ", not stored")
                                 else " (kernel)"))
                let mapOf (v: GraphValue) = CompiledKernels.broadcastMap (shapeOf v) info.Shape
                let mapAt (m: int[]) e = if m.Length = 0 then e else m.[e]
                match n.Op with
                | _ when gid >= 0 ->
                    // in a fused loop: the loop runs at the last op; each op keeps its kernel's backward
                    let g = groups.[gid]
                    if k = g.[0] then allocFused gid
                    if k = g.[g.Length - 1] then emitFused gid
                    match n.Op with
                    | Binary b ->
                        let x, gx = arena ins.[0]
                        let y, gy = arena ins.[1]
                        backwardOnly i (fun o go -> CompiledKernels.Binary(b, x, mapOf ins.[0], y, mapOf ins.[1], o, size, gx, gy, go))
                    | Unary u ->
                        let x, gx = arena ins.[0]
                        let scratch = if info.Grad then allocVal size else -1
                        backwardOnly i (fun o go -> CompiledKernels.Unary(u, x, o, size, gx, go, scratch))
                    | _ -> invalidOp (sprintf "Compiler: %s is not fused." n.Op.Name)
                | Cast dt when Ops.castChanges (dtypeOf ins.[0]) dt ->
                    if small then
                        let cells = localCells i
                        let back = ResizeArray<Expression>()
                        for e in 0 .. size - 1 do
                            let x = cellOf ins.[0] e
                            fwd.Add(Expression.Assign(cells.[e].V, Ops.castExpr dt x.V))
                            if info.Grad then accumulate back x (adjOf cells.[e])
                        bwdBlocks.Add back
                    else
                        let x, gx = arena ins.[0]
                        kernel i (fun o go -> CompiledKernels.Cast(dt, x, o, size, (if info.Grad then gx else -1), go))
                | Reshape _ | StopGradient | Cast _ | Permute _ | BroadcastTo _ | Slice _ | Pad _ | Concat _ ->
                    let noAdj = match n.Op with
                                | StopGradient -> true
                                | Cast _ -> not info.Grad
                                | _ -> false
                    let isAlias = match n.Op with
                                  | Reshape _ | StopGradient | Cast _ -> true
                                  | _ -> false
                    if small then
                        // a view: each element is an input element, nothing is computed
                        let src = layoutSources n.Op ins info.Shape
                        info.Cells <-
                            src |> Array.map (fun (s, e) ->
                                if s < 0 then { V = num 0.0; A = ValueNone }
                                else
                                    let c = cellOf ins.[s] e
                                    if noAdj then { c with A = ValueNone } else c)
                        instructions <- instructions - 1
                    elif isAlias && (match constTensor ins.[0] with
                                     | Some _ -> false
                                     | None -> true) then
                        let o, a = arena ins.[0]
                        info.Off <- o
                        info.AdjOff <- (if noAdj then -1 else a)
                        if info.Grad && info.AdjOff < 0 then invalidOp "alias without adjoint"
                        instructions <- instructions - 1
                    else
                        let src = layoutSources n.Op ins info.Shape
                        let places = ins |> Array.map arena
                        kernel i (fun o go ->
                            CompiledKernels.Copy(places |> Array.map fst, places |> Array.map (fun (_, a) -> if noAdj then -1 else a),
                                                 src |> Array.map fst, src |> Array.map snd, o, go))
                | Unary u ->
                    let rule =
                        match (Ops.unary u).Decl.Vjp with
                        | Ok r -> r
                        | Error why -> if info.Grad then unsupported "%s" why else Rule.G
                    if small then
                        let cells = localCells i
                        let back = ResizeArray<Expression>()
                        for e in 0 .. size - 1 do
                            let x = cellOf ins.[0] e
                            fwd.Add(Expression.Assign(cells.[e].V, Ops.unaryExpr u x.V))
                            if info.Grad then accumulate back x (Ops.ruleExpr rule (adjOf cells.[e]) x.V null cells.[e].V)
                        bwdBlocks.Add back
                    else
                        let x, gx = arena ins.[0]
                        let scratch = if info.Grad then allocVal size else -1
                        kernel i (fun o go -> CompiledKernels.Unary(u, x, o, size, gx, go, scratch))
                | Binary b ->
                    let mx = mapOf ins.[0]
                    let my = mapOf ins.[1]
                    if small then
                        let cells = localCells i
                        let back = ResizeArray<Expression>()
                        for e in 0 .. size - 1 do
                            let x = cellOf ins.[0] (mapAt mx e)
                            let y = cellOf ins.[1] (mapAt my e)
                            let o = cells.[e]
                            fwd.Add(Expression.Assign(o.V, Ops.binaryExpr b x.V y.V))
                            if info.Grad then
                                let d = (Ops.binary b).Decl
                                accumulate back x (Ops.ruleExpr d.VjpX (adjOf o) x.V y.V o.V)
                                accumulate back y (Ops.ruleExpr d.VjpY (adjOf o) x.V y.V o.V)
                        bwdBlocks.Add back
                    else
                        let x, gx = arena ins.[0]
                        let y, gy = arena ins.[1]
                        kernel i (fun o go -> CompiledKernels.Binary(b, x, mx, y, my, o, size, gx, gy, go))
                | Compare c ->
                    let mx = mapOf ins.[0]
                    let my = mapOf ins.[1]
                    if small then
                        let cells = localCells i
                        for e in 0 .. size - 1 do
                            fwd.Add(Expression.Assign(cells.[e].V, compareExpr c (cellOf ins.[0] (mapAt mx e)).V (cellOf ins.[1] (mapAt my e)).V))
                        bwdBlocks.Add(ResizeArray())
                    else
                        let x, _ = arena ins.[0]
                        let y, _ = arena ins.[1]
                        kernel i (fun o _ -> CompiledKernels.Compare(c, x, mx, y, my, o, size))
                | Where ->
                    let mm = mapOf ins.[0]
                    let mx = mapOf ins.[1]
                    let my = mapOf ins.[2]
                    if small then
                        let cells = localCells i
                        let back = ResizeArray<Expression>()
                        for e in 0 .. size - 1 do
                            let m = cellOf ins.[0] (mapAt mm e)
                            let x = cellOf ins.[1] (mapAt mx e)
                            let y = cellOf ins.[2] (mapAt my e)
                            let o = cells.[e]
                            fwd.Add(Expression.Assign(o.V, Ops.whereExpr m.V x.V y.V))
                            if info.Grad then
                                let d = Ops.where.Decl
                                accumulate back x (Ops.whereRuleExpr d.VjpX (adjOf o) m.V x.V y.V o.V)
                                accumulate back y (Ops.whereRuleExpr d.VjpY (adjOf o) m.V x.V y.V o.V)
                        bwdBlocks.Add back
                    else
                        let m, _ = arena ins.[0]
                        let x, gx = arena ins.[1]
                        let y, gy = arena ins.[2]
                        let need = CompiledKernels.whereScratch mm mx my size gy
                        let scratch = if need > 0 then allocVal need else -1
                        kernel i (fun o go -> CompiledKernels.Where(m, mm, x, mx, y, my, o, size, gx, gy, go, scratch))
                | Clamp (lo, hi) ->
                    // a float32 clamp has float32 bounds (the tape's float32 kernel and rule round them)
                    let lo, hi = Ops.castValue info.Dtype lo, Ops.castValue info.Dtype hi
                    if small then
                        let cells = localCells i
                        let back = ResizeArray<Expression>()
                        let rule = Ops.clamp.Decl.Vjp lo hi
                        for e in 0 .. size - 1 do
                            let x = cellOf ins.[0] e
                            fwd.Add(Expression.Assign(cells.[e].V, Ops.clampExpr lo hi x.V))
                            if info.Grad then accumulate back x (Ops.ruleExpr rule (adjOf cells.[e]) x.V null cells.[e].V)
                        bwdBlocks.Add back
                    else
                        let x, gx = arena ins.[0]
                        kernel i (fun o go -> CompiledKernels.Clamp(lo, hi, x, o, size, gx, go))
                | Reduce (r, axes, _) ->
                    let inShape = shapeOf ins.[0]
                    let nIn' = Shape.size inShape
                    // the output element of each input element: the reduced shape broadcast back over the input
                    let map =
                        match CompiledKernels.broadcastMap (Shape.reduced inShape axes true) inShape with
                        | [||] -> Array.init nIn' id
                        | m -> m
                    if r = Sum && nIn' <= UnrollLimit then
                        let cells = localCells i
                        let back = ResizeArray<Expression>()
                        let acc = Array.create size ValueNone
                        for j in 0 .. nIn' - 1 do
                            let x = (cellOf ins.[0] j).V
                            acc.[map.[j]] <- (match acc.[map.[j]] with
                                              | ValueNone -> ValueSome x
                                              | ValueSome s -> ValueSome (add s x))
                        for e in 0 .. size - 1 do
                            fwd.Add(Expression.Assign(cells.[e].V, (match acc.[e] with
                                                                   | ValueSome s -> s
                                                                   | ValueNone -> num 0.0)))
                        if info.Grad then
                            for j in 0 .. nIn' - 1 do
                                accumulate back (cellOf ins.[0] j) (adjOf cells.[map.[j]])
                        bwdBlocks.Add back
                    else
                        let x, gx = arena ins.[0]
                        let scratch = if r = Max then allocVal size else -1
                        kernel i (fun o go -> CompiledKernels.Reduce(r, x, nIn', (if size = 1 then [||] else map), o, size, scratch, gx, go))
                | MatMul (tA, tB) ->
                    let a = shapeOf ins.[0]
                    let b = shapeOf ins.[1]
                    let ra = a.Length
                    let rb = b.Length
                    let rank = info.Shape.Length
                    let m = info.Shape.[rank - 2]
                    let nn = info.Shape.[rank - 1]
                    let kk = if tA then a.[ra - 2] else a.[ra - 1]
                    let batch = info.Shape.[.. rank - 3]
                    let nb = Shape.size batch
                    let offsets (s: int[]) =
                        let r = s.Length
                        let mat = s.[r - 2] * s.[r - 1]
                        let bm = CompiledKernels.broadcastMap s.[.. r - 3] batch
                        Array.init nb (fun q -> (if bm.Length = 0 then q else bm.[q]) * mat)
                    let x, gx = arena ins.[0]
                    let y, gy = arena ins.[1]
                    kernel i (fun o go -> CompiledKernels.MatMul(tA, tB, m, nn, kk, a.[ra - 1], b.[rb - 1], x, offsets a, y, offsets b, o, gx, gy, go))
                | Gather axis ->
                    let s = shapeOf ins.[0]
                    let slot, idx = indicesOf ins.[1] s.[axis] "gather"
                    let q = Shape.size (shapeOf ins.[1])
                    let x, gx = arena ins.[0]
                    kernel i (fun o go -> CompiledKernels.Gather(x, Shape.size s.[.. axis - 1], s.[axis], Shape.size s.[axis + 1 ..], slot, idx, q, o, gx, go))
                | ScatterAdd (axis, sz) ->
                    let s = shapeOf ins.[0]
                    let ir = (shapeOf ins.[1]).Length
                    let slot, idx = indicesOf ins.[1] sz "scatterAdd"
                    let q = Shape.size (shapeOf ins.[1])
                    let x, gx = arena ins.[0]
                    kernel i (fun o go -> CompiledKernels.ScatterAdd(x, Shape.size s.[.. axis - 1], sz, Shape.size s.[axis + ir ..], slot, idx, q, o, gx, go))
                | Cumsum (axis, rev) ->
                    let s = shapeOf ins.[0]
                    let x, gx = arena ins.[0]
                    kernel i (fun o go -> CompiledKernels.Cumsum(x, Shape.size s.[.. axis - 1], s.[axis], Shape.size s.[axis + 1 ..], rev, o, gx, go))
                | TriangularSolve (lower, tr) ->
                    let s = shapeOf ins.[0]
                    let r = s.Length
                    let nn = s.[r - 1]
                    let kk = info.Shape.[r - 1]
                    let batch = Shape.size s.[.. r - 3]
                    let a, ga = arena ins.[0]
                    let b, gb = arena ins.[1]
                    let scratch = if info.Grad then allocVal size else -1
                    kernel i (fun o go -> CompiledKernels.TriangularSolve(lower, tr, batch, nn, kk, a, b, o, scratch, ga, gb, go))
                | Cholesky ->
                    let s = shapeOf ins.[0]
                    let nn = s.[s.Length - 1]
                    let batch = if nn = 0 then 0 else size / (nn * nn)
                    let a, ga = arena ins.[0]
                    // one n×n scratch for the adjoint, reused matrix by matrix
                    let scratch = if info.Grad then allocVal (nn * nn) else -1
                    kernel i (fun o go -> CompiledKernels.Cholesky(Array.copy s, batch, nn, a, o, scratch, ga, go))
                | PositiveDefinite ->
                    let s = shapeOf ins.[0]
                    let nn = s.[s.Length - 1]
                    let a, _ = arena ins.[0]
                    let scratch = allocVal (max 1 (nn * nn))
                    kernel i (fun o _ -> CompiledKernels.PositiveDefinite(size, nn, a, o, scratch))
                | GlmLogLikelihood family ->
                    let s = shapeOf ins.[0]
                    let nn, dd = s.[0], s.[1]
                    let perRow = Shape.size (shapeOf ins.[1]) > 1
                    let x, gx = arena ins.[0]
                    let a, ga = arena ins.[1]
                    let b, gb = arena ins.[2]
                    let y, _ = arena ins.[3]
                    let m, _ = arena ins.[4]
                    // Xᵀr and Σr (d + 1) always with a gradient; r itself only where ∂x or a per-row ∂α reads it
                    let gs = if info.Grad then allocVal (dd + 1) else -1
                    let rs = if info.Grad && (gx >= 0 || (perRow && ga >= 0)) then allocVal nn else -1
                    kernel i (fun o go -> CompiledKernels.Glm(family, nn, dd, x, a, perRow, b, y, m, o, rs, gs, gx, ga, gb, go))
                | CategoricalGlmLogLikelihood ->
                    let s = shapeOf ins.[0]
                    let nn, dd = s.[0], s.[1]
                    let cc = (shapeOf ins.[2]).[1]
                    let x, gx = arena ins.[0]
                    let a, ga = arena ins.[1]
                    let b, gb = arena ins.[2]
                    let y, _ = arena ins.[3]
                    let m, _ = arena ins.[4]
                    let scratch = allocVal (CategoricalGlmKernel.scratchSize dd cc)
                    // XᵀR and ΣR ((d + 1)·C) always with a gradient; R itself only where ∂x reads it
                    let gs = if info.Grad then allocVal ((dd + 1) * cc) else -1
                    let rs = if info.Grad && gx >= 0 then allocVal (nn * cc) else -1
                    kernel i (fun o go -> CompiledKernels.CategoricalGlm(nn, dd, cc, x, a, b, y, m, o, scratch, rs, gs, gx, ga, gb, go))
                // a float32 op's fresh locals, computed in float64, become float32 values (kernels' outputs: see `kernel`)
                if info.Dtype = Float32 && freshLocals.Value then
                    for c in info.Cells do
                        fwd.Add(Expression.Assign(c.V, Ops.castExpr Float32 c.V))
        // ---- the program --------------------------------------------------------------------------
        let outCell = cellOf (GraphNode (outV - nIn)) 0
        let result = Expression.Variable(typeof<float>, "result")
        let body = ResizeArray<Expression>()
        body.Add(Expression.Call(miClear, adjs, Expression.Constant(0), Expression.ArrayLength(adjs)))
        body.AddRange pre
        body.AddRange fwd
        body.Add(Expression.Assign(result, outCell.V))
        body.Add(Expression.Assign(adjOf outCell, num 1.0))
        for b in Seq.rev bwdBlocks do
            body.AddRange b
        body.AddRange post
        body.Add result
        let lambda =
            Expression.Lambda<Func<float[], float[], int[][], float>>(
                Expression.Block(typeof<float>, Seq.append locals [ result ], body), [| vals; adjs; ints |])
        let run = lambda.Compile()
        let nVals = nextVal
        let nAdj = nextAdj
        let template = Array.zeroCreate<float> nVals
        for (o, v) in constInits do
            Array.blit v 0 template o v.Length
        let liveStatic =
            [| for k in 0 .. nodes.Length - 1 do
                   if live.[nIn + k] then
                       match infos.[nIn + k].Kind with
                       | KStatic -> yield k
                       | KParam _ | KData _ | KConst _ | KDyn -> () |]
        // data-dependent values, computed once per binding: the static slots' values and the int arrays,
        // all checked before anything is written
        let staticValues (data: Tensor[]) =
            let values = Array.zeroCreate<Tensor> total
            for j in 0 .. data.Length - 1 do
                values.[nParams + j] <- data.[j].Detach()
            let read (v: GraphValue) =
                match v with
                | GraphConstant t -> t
                | _ ->
                    let j = key v
                    match infos.[j].Kind with
                    | KConst t -> t
                    | KData _ | KStatic -> values.[j]
                    | KParam _ | KDyn -> invalidOp "a data-dependent value reads a parameter"
            for k in liveStatic do
                values.[nIn + k] <- Prim.Exec(nodes.[k].Op, nodes.[k].Inputs |> Array.map read)
            let intArrays =
                intSlots.ToArray() |> Array.map (fun s ->
                    match s with
                    | Choice1Of2 a -> a
                    | Choice2Of2 j ->
                        match values.[j].Storage with
                        | I32 a -> Array.copy a
                        | st -> Cpu.toF64 st |> Array.map int)
            for (slot, bound, opName) in gatherBounds do
                for v in intArrays.[slot] do
                    if v < 0 || v >= bound then
                        invalidArg "data" (sprintf "%s: index %d is outside [0, %d); check the index data." opName v bound)
            values, intArrays
        let writeInto (values: Tensor[], intArrays: int[][]) (vals: float[]) (ints: int[][]) =
            for (o, j) in staticSlots do
                let a = Cpu.toF64 values.[j].Storage
                Array.blit a 0 vals o a.Length
            Array.blit intArrays 0 ints 0 intArrays.Length
        let bindData (check: Tensor[] -> unit) (data: Tensor[]) =
            let t = Array.copy template
            let ints = Array.zeroCreate intSlots.Count
            writeInto (staticValues data) t ints
            let rebind (d: Tensor[]) (vals: float[]) (ints: int[][]) =
                check d
                writeInto (staticValues d) vals ints
            CompiledBinding(dim, run, t, nAdj, ints, rebind)
        CompiledGradient(Array.init nParams (fun i -> infos.[i].Shape), Array.init (nIn - nParams) (fun j -> infos.[nParams + j].Shape),
                         Array.init (nIn - nParams) (fun j -> infos.[nParams + j].Dtype), instructions, nVals, String.Join("\n", listing), bindData)

    /// `compile`, with fused loops or (fuse = false) one kernel per large op: the tests' reference.
    let internal compileWith (fuse: bool) (f: Tensor[] -> Tensor) (first: Tensor[]) (second: Tensor[]) (data: Tensor[]) : Result<CompiledGradient, string> =
        if first.Length <> second.Length then invalidArg "second" (sprintf "Compiler.compile: %d and %d parameter tensors." first.Length second.Length)
        let trace (ps: Tensor[]) = Graph.traceWithReads (fun xs -> [| f xs |]) (Array.append ps data)
        try
            let g1, reads = trace first
            if reads.Length > 0 then
                let shown = reads |> Array.distinct |> Array.truncate 3
                Error (sprintf "the function reads values of its inputs (parameters or data) on the host, which a compiled program would freeze as constants: %s%s. Write it with tensor ops (comparisons, where) instead."
                           (String.Join("; ", shown)) (if reads.Length > shown.Length then sprintf " (%d reads in all)" reads.Length else ""))
            else
            let g2, _ = trace second
            match difference g1 g2 with
            | Some why -> Error why
            | None -> Ok (build g1 first.Length fuse)
        with
        | Unsupported why -> Error why

    /// Traces `f` (parameters, then data) at two parameter points, checks that both record the same
    /// op graph, and compiles it. Error: why the function cannot be compiled (the caller falls back
    /// to the tape). The data tensors are inputs of the program: bind new ones of the same shapes.
    let compile (f: Tensor[] -> Tensor) (first: Tensor[]) (second: Tensor[]) (data: Tensor[]) : Result<CompiledGradient, string> =
        compileWith true f first second data
