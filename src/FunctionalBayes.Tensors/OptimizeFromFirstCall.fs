namespace FunctionalBayes.Tensors

open System

/// Marks an assembly, a module (with its closures) or a function whose code must be fully optimised from its
/// first call. F# drops `MethodImplOptions.AggressiveOptimization`; the build (Directory.Build.targets,
/// FbOptimizeFromFirstCall) sets that flag on every method this attribute covers, so hot kernels never run as
/// tier-0 code, whatever the application's tiered-JIT settings.
[<Sealed; AttributeUsage(AttributeTargets.Assembly ||| AttributeTargets.Class ||| AttributeTargets.Method, AllowMultiple = false)>]
type internal OptimizeFromFirstCallAttribute() =
    inherit Attribute()
