/// Runs every Expecto test of this assembly (dotnet run --project tests/FunctionalBayes.Reporting.Tests -- [Expecto options]).
module FunctionalBayes.Reporting.Tests.Main

open Expecto

[<EntryPoint>]
let main argv = Tests.runTestsInAssemblyWithCLIArgs [] argv
