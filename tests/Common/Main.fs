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

/// `--child args`: a test's child process (kill-and-resume tests), the assembly's `FunctionalBayes.Tests.CheckpointTests+Child.main`.
let private runChild (args: string[]) =
    let asm = Reflection.Assembly.GetExecutingAssembly()
    match asm.GetTypes() |> Array.tryPick (fun t -> if t.Name = "Child" then Option.ofObj (t.GetMethod "main") else None) with
    | Some m -> unbox<int> (m.Invoke(null, [| box args |]))
    | None -> eprintfn "%s has no child process entry (a module Child with main)." asm.FullName; 2

[<EntryPoint>]
let main argv =
    if argv.Length > 0 && argv.[0] = "--child" then runChild argv.[1..]
    else Tests.runTestsInAssemblyWithCLIArgs [ CLIArguments.Append_Summary_Handler(SummaryHandler writeCounts) ] argv
