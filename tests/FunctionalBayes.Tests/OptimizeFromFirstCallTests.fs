/// The build step that makes hot kernels fully optimised from their first call (Directory.Build.targets,
/// .config/OptimizeFromFirstCall.fsx): F# drops MethodImplOptions.AggressiveOptimization from source, so
/// the flag must be found in the built assemblies, on exactly the code marked [<OptimizeFromFirstCall>].
module FunctionalBayes.Tests.OptimizeFromFirstCallTests

open System
open System.Reflection
open System.Runtime.CompilerServices
open Expecto
open FunctionalBayes.Tensors

let private everything =
    BindingFlags.Public ||| BindingFlags.NonPublic ||| BindingFlags.Static ||| BindingFlags.Instance ||| BindingFlags.DeclaredOnly

let private flagged (m: MethodBase) =
    m.MethodImplementationFlags.HasFlag MethodImplAttributes.AggressiveOptimization

/// Every method with a body in a type and in its nested (closure) types.
let rec private bodies (t: Type) : MethodBase list =
    [ for m in t.GetMethods everything do
        if not m.IsAbstract then yield m :> MethodBase
      for c in t.GetConstructors everything do yield c :> MethodBase
      for n in t.GetNestedTypes everything do yield! bodies n ]

let private moduleType (name: string) =
    match typeof<Tensor>.Assembly.GetType("FunctionalBayes.Tensors." + name) with
    | null -> failwithf "type %s not found" name
    | t -> t

[<Tests>]
let tests =
    testList "OptimizeFromFirstCallTests" [
        test "every method of the marked kernel modules carries AggressiveOptimization, closures included" {
            for name in [ "Gemm"; "Gemv"; "Special"; "Ops"; "Cpu"; "CompiledKernels"; "RngImpl"; "CompiledEvaluator"; "Simd" ] do
                let ms = bodies (moduleType name)
                Expect.isGreaterThan ms.Length 0 (sprintf "%s has methods" name)
                let missing = ms |> List.filter (flagged >> not) |> List.map (fun m -> (match m.DeclaringType with null -> "" | t -> t.Name) + "." + m.Name)
                Expect.isEmpty missing (sprintf "%s: methods without the flag" name)
        }
        test "unmarked code keeps tiered compilation (and its profile-guided optimisation)" {
            // The tape (Tensor, TensorModule) calls closures through FSharpFunc: tier-1 PGO devirtualises them.
            for name in [ "Tensor"; "Shape" ] do
                let ms = bodies (moduleType name)
                Expect.isGreaterThan ms.Length 0 (sprintf "%s has methods" name)
                Expect.isEmpty (ms |> List.filter flagged |> List.map (fun m -> m.Name)) (sprintf "%s: flagged methods" name)
        }
        test "the core's leapfrog and NUTS tree code and the SVI optimizers' update are flagged too" {
            let core = typeof<FunctionalBayes.NutsKernel>.Assembly
            for name in [ "FunctionalBayes.NutsKernel"; "FunctionalBayes.Dynamics"; "FunctionalBayes.Dyn"; "FunctionalBayes.Optim" ] do
                match core.GetType name with
                | null -> failtestf "type %s not found in the core" name
                | t ->
                    let missing = bodies t |> List.filter (flagged >> not) |> List.map (fun m -> m.Name)
                    Expect.isEmpty missing (sprintf "%s: methods without the flag" name)
        }
    ]
