namespace FunctionalBayes.Tensors

/// Where a recorded op reads a value from.
type GraphValue =
    /// The i-th input of the traced function.
    | GraphInput of int
    /// A value that does not depend on the inputs (a parameter, a constant).
    | GraphConstant of Tensor
    /// The result of the i-th recorded node.
    | GraphNode of int

/// One recorded primitive op.
type GraphOp = { Op: Op; Inputs: GraphValue[]; Shape: int[]; Dtype: Dtype }

/// A forward pass recorded as primitive ops in execution order: what an exporter or a compiled
/// evaluator reads.
type Graph = { InputShapes: int[][]; InputDtypes: Dtype[]; Nodes: GraphOp[]; Outputs: GraphValue[] }

[<RequireQualifiedAccess>]
module Graph =

    /// Runs f on the example inputs and records every primitive op that depends on them; also the reads
    /// of recorded values on the host (Tensor.detach, toArray, ...), which the graph cannot replay.
    let internal traceWithReads (f: Tensor[] -> Tensor[]) (inputs: Tensor[]) : Graph * string[] =
        let tape = Tape.CreateTracing()
        let leaves = inputs |> Array.map tape.Leaf
        let outs = f leaves
        let nodes = tape.Nodes |> Seq.toArray
        let leafIndex = leaves |> Array.mapi (fun i l -> l.NodeOrNull.Index, i) |> dict
        // Tape node indices to positions among the recorded (non-leaf) nodes.
        let position = Array.create nodes.Length -1
        let mutable k = 0
        for n in nodes do
            if n.Op.IsSome then
                position.[n.Index] <- k
                k <- k + 1
        let valueOf (t: Tensor) =
            let n = t.NodeOrNull
            if not (isNull n) && obj.ReferenceEquals(n.Tape, tape) then
                if n.Op.IsNone then GraphInput leafIndex.[n.Index] else GraphNode position.[n.Index]
            else GraphConstant (t.Detach())
        let ops =
            nodes |> Array.choose (fun n ->
                match n.Op with
                | ValueSome op ->
                    Some { Op = op; Inputs = n.Inputs |> Array.map valueOf; Shape = n.Output.Shape; Dtype = n.Output.Dtype }
                | ValueNone -> None)
        { InputShapes = inputs |> Array.map (fun t -> t.Shape)
          InputDtypes = inputs |> Array.map (fun t -> t.Dtype)
          Nodes = ops
          Outputs = outs |> Array.map valueOf },
        tape.HostReads

    /// Runs f on the example inputs and records every primitive op that depends on them.
    let trace (f: Tensor[] -> Tensor[]) (inputs: Tensor[]) : Graph = fst (traceWithReads f inputs)

    /// Evaluates a recorded graph on new inputs (differentiably).
    let run (g: Graph) (inputs: Tensor[]) : Tensor[] =
        if inputs.Length <> g.InputShapes.Length then
            invalidArg "inputs" (sprintf "Graph.run: the graph takes %d inputs, got %d." g.InputShapes.Length inputs.Length)
        let results = Array.zeroCreate<Tensor> g.Nodes.Length
        let read v =
            match v with
            | GraphInput i -> inputs.[i]
            | GraphConstant t -> t
            | GraphNode i -> results.[i]
        g.Nodes |> Array.iteri (fun i n -> results.[i] <- Prim.Exec(n.Op, n.Inputs |> Array.map read))
        g.Outputs |> Array.map read
