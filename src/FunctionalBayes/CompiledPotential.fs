namespace FunctionalBayes

open System
open System.Diagnostics
open FunctionalBayes.Tensors

/// A potential whose energy and gradient were compiled into one allocation-free program.
[<NoEquality; NoComparison>]
type CompiledPotential =
    { /// Evaluators of the compiled program on the data it was compiled with.
      Source: GradientSource
      /// Wall-clock time of tracing (twice), checking and compiling, in milliseconds.
      CompileMilliseconds: float
      /// The number of primitive ops the program runs (after dead-code removal and folding).
      Instructions: int
      /// The program, one op a line (for reports and debugging).
      Listing: string
      /// The same program on new data tensors of the compiled shapes (no recompilation); raises
      /// when a shape or dtype differs.
      Rebind: Tensor[] -> GradientSource }

/// The result of compiling a potential: the compiled program, or the tape and the reason why.
[<NoEquality; NoComparison>]
type Compilation =
    /// The energy's op graph is static and was compiled.
    | Compiled of CompiledPotential
    /// The energy could not be compiled (its graph depends on latent values, or uses an op the
    /// compiler lacks); `source` evaluates it on the tape.
    | FellBack of reason: string * source: GradientSource

[<RequireQualifiedAccess>]
module Compilation =

    let private ofBinding (instructions: int) (b: CompiledBinding) : GradientSource =
        let create () =
            let e = b.CreateEvaluator()
            { new IGradientEvaluator with
                member _.Dim = e.Dim
                member _.Evaluate(q, g) = e.Evaluate(q, g) }
        { Dim = b.Dim; Kind = GradientKind.Compiled instructions; Create = create }

    /// A second point for the staticness check: every coordinate moves, and changes sign when it is
    /// not near zero, so that a branch on a sign or a threshold between the two is seen. A branch that
    /// both points take the same way cannot be seen by tracing.
    let private nearby (point: Tensor[]) =
        point |> Array.mapi (fun i t ->
            Tensor.create t.Shape (Tensor.toArray t |> Array.mapi (fun j v -> 0.3 - 0.9 * v + 0.01 * float (i + j))))

    let private checkPoint (what: string) (p: Potential) (point: Tensor[]) =
        if point.Length <> p.Latents.Length then
            invalidArg "point" (sprintf "%s: %d tensors for %d latent sites (%s)." what point.Length p.Latents.Length (String.Join(", ", p.Latents |> Array.map (fun l -> l.Name))))
        Array.iter2 (fun (l: LatentSite) (t: Tensor) ->
            if not (Shape.equal l.UnconstrainedShape t.Shape) then
                invalidArg "point" (sprintf "%s: site '%s' has unconstrained shape %s but the point gives %s." what l.Name (Shape.format l.UnconstrainedShape) (Shape.format t.Shape))) p.Latents point

    /// Compiles a potential whose data are inputs of the program: `build data` makes the potential
    /// (for example `fun d -> LogDensity.potential key (model d)`), `data` are the tensors it is
    /// compiled with, `point` an unconstrained point (one tensor per latent). The energy is traced at
    /// `point` and at a second point; if both traces record the same op graph, it is compiled, and
    /// `Rebind` runs it on new data of the same shapes. Otherwise the result falls back to the tape
    /// and says why.
    let compileWithData (build: Tensor[] -> Potential) (data: Tensor[]) (point: Tensor[]) : Compilation =
        let p = build data
        checkPoint "Compilation.compileWithData" p point
        let nP = point.Length
        let energy (xs: Tensor[]) =
            let q = build xs.[nP ..]
            if q.Latents.Length <> nP then
                invalidOp (sprintf "Compilation: the potential built on traced data has %d latent sites, not %d." q.Latents.Length nP)
            q.Energy xs.[.. nP - 1]
        let sw = Stopwatch.StartNew()
        let result =
            try Compiler.compile energy point (nearby point) data
            with ex -> Error (sprintf "tracing the energy failed: %s" ex.Message)
        match result with
        | Ok cg ->
            let binding = cg.Bind data
            let ms = sw.Elapsed.TotalMilliseconds
            Compiled
                { Source = ofBinding cg.Instructions binding
                  CompileMilliseconds = ms
                  Instructions = cg.Instructions
                  Listing = cg.Listing
                  Rebind = fun d -> ofBinding cg.Instructions (cg.Bind d) }
        | Error why -> FellBack (why, GradientSource.tape p)

    /// Compiles a potential with its data fixed (they become constants of the program). See
    /// `compileWithData` for data that change.
    let compile (p: Potential) (point: Tensor[]) : Compilation =
        compileWithData (fun _ -> p) [||] point

    /// The gradient source samplers use by default: the compiled program when the energy's graph is static,
    /// else the tape, whose Kind then says why it was not compiled.
    let auto (p: Potential) : GradientSource =
        // a fixed point inside Stan's default init box, away from zero where a branch could hide
        let point =
            p.Latents |> Array.mapi (fun i l -> Rng.uniform (Rng.foldIn (Rng.key 0x5EEDUL) i) l.UnconstrainedShape * 3.0 - 1.5)
        let fellBack why (s: GradientSource) = { s with Kind = GradientKind.TapeFallback why }
        match (try compile p point with e -> FellBack (e.Message, GradientSource.tape p)) with
        | Compiled cp -> cp.Source
        | FellBack (why, s) -> fellBack why s

