/// The entry point of an Expecto suite: runs every [<Tests>] value of the assembly with Expecto's command line,
/// and, where FB_TEST_RESULTS names a file, writes "passed failed" there for the solution's closing line.
module FunctionalBayes.TestRunner

open System
open System.IO
open Expecto
open Expecto.Impl

let private writeCounts (summary: TestRunSummary) =
    match Environment.GetEnvironmentVariable "FB_TEST_RESULTS" with
    | null | "" -> ()
    | path ->
        Directory.CreateDirectory(nonNull (Path.GetDirectoryName(Path.GetFullPath path))) |> ignore
        File.WriteAllText(path, sprintf "%d %d\n" summary.passed.Length (summary.failed.Length + summary.errored.Length))

[<EntryPoint>]
let main argv =
    Tests.runTestsInAssemblyWithCLIArgs [ CLIArguments.Append_Summary_Handler(SummaryHandler writeCounts) ] argv
