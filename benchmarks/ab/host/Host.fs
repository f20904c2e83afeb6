// A/B in one process: the probe built against build A and against build B, each in its own
// AssemblyLoadContext, timed in alternating short runs (A B, then B A, ...), so load from other processes and
// the process's own state (CPU, memory placement) hit both alike. One JSON line per figure.
open System
open System.IO
open System.Runtime.Loader

type private Ctx(dir: string) =
    inherit AssemblyLoadContext(Path.GetFileName dir, false)
    override this.Load(name) =
        let p = Path.Combine(dir, string name.Name + ".dll")
        if File.Exists p then this.LoadFromAssemblyPath p else Unchecked.defaultof<_>

let private make (dir: string) (workload: string) =
    let asm = Ctx(dir).LoadFromAssemblyPath(Path.Combine(dir, "probe.dll"))
    let make = (nonNull (asm.GetType "AbProbe.Probe")).GetMethod "Make" |> nonNull
    match make.Invoke(null, [| box workload |]) with
    | :? Func<int, float> as f -> f
    | _ -> failwithf "the probe in %s made no workload %s" dir workload

let private quantile (p: float) (xs: float seq) =
    let s = Seq.sort xs |> Array.ofSeq
    s.[min (s.Length - 1) (int (p * float (s.Length - 1) + 0.5))]

let private json (name: string) (value: float) (unit: string) =
    printfn "{\"name\":\"%s\",\"value\":%s,\"unit\":\"%s\"}" name (value.ToString("R", Globalization.CultureInfo.InvariantCulture)) unit

[<EntryPoint>]
let main argv =
    if argv.Length < 5 then
        eprintfn "usage: host DIR_A DIR_B ROUNDS SECONDS_PER_RUN WORKLOAD..."
        exit 2
    let dirA, dirB = Path.GetFullPath argv.[0], Path.GetFullPath argv.[1]
    let rounds, budget = int argv.[2], float argv.[3]
    for w in argv.[4..] do
        let a, b = make dirA w, make dirB w
        for f in [ a; b ] do
            let sw = Diagnostics.Stopwatch.StartNew()
            while sw.Elapsed.TotalSeconds < 3.0 do f.Invoke 1 |> ignore
        let n = max 1 (int (budget / ((a.Invoke 3 + b.Invoke 3) / 6.0)))
        let ta, tb, ratio = ResizeArray(), ResizeArray(), ResizeArray()
        for r in 1 .. rounds do
            let x, y =
                if r % 2 = 1 then let x = a.Invoke n in x, b.Invoke n
                else let y = b.Invoke n in a.Invoke n, y
            ta.Add(1e6 * x / float n); tb.Add(1e6 * y / float n); ratio.Add(y / x)
        json (sprintf "ab_%s_a" w) (quantile 0.5 ta) "us"
        json (sprintf "ab_%s_b" w) (quantile 0.5 tb) "us"
        json (sprintf "ab_%s_b_over_a" w) (quantile 0.5 ratio) "ratio"
        json (sprintf "ab_%s_b_over_a_q25" w) (quantile 0.25 ratio) "ratio"
        json (sprintf "ab_%s_b_over_a_q75" w) (quantile 0.75 ratio) "ratio"
    0
