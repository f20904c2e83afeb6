namespace FunctionalBayes.Reporting

open System
open System.Globalization
open System.IO
open System.Text
open FunctionalBayes
open FunctionalBayes.Tensors

/// One chain's file in CmdStan's CSV format, as read.
type CmdStanChain =
    { /// The column names in file order (`lp__`, …, `theta.1`, …).
      Columns: string[]
      /// The draws, [draw][column].
      Values: float[][]
      /// The `key = value` settings from the comment lines before the header (keys trimmed, "(Default)" removed).
      Config: (string * string) list
      /// The adapted step size, from "# Step size = …".
      StepSize: float option
      /// The adapted inverse metric's diagonal (or dense matrix rows concatenated), from the adaptation comments.
      InverseMetric: float[] option
      /// Elapsed seconds (warm-up, sampling, total), from the closing comments.
      Timing: (float * float * float) option }

/// CmdStan CSV: write draws and sampler statistics one file per chain (for `arviz.from_cmdstan` and
/// `posterior::read_cmdstan_csv` / cmdstanr), observed data as CmdStan JSON, and read CmdStan's files back.
[<RequireQualifiedAccess>]
module CmdStanCsv =

    let private inv = CultureInfo.InvariantCulture

    /// The sampler-statistic columns, in CmdStan's order.
    let statColumns = [| "lp__"; "accept_stat__"; "stepsize__"; "treedepth__"; "n_leapfrog__"; "divergent__"; "energy__" |]

    /// Element indices of a site shape in CmdStan's (column-major, 1-based) order, each with its row-major offset.
    let internal stanOrder (shape: int[]) : (int[] * int)[] =
        let k = Array.fold (*) 1 shape
        Array.init k (fun cm ->
            // cm is a column-major linear index: the first index moves fastest
            let idx = Array.zeroCreate shape.Length
            let mutable r = cm
            for d in 0 .. shape.Length - 1 do
                idx.[d] <- r % shape.[d]
                r <- r / shape.[d]
            let mutable rm = 0
            for d in 0 .. shape.Length - 1 do
                rm <- rm * shape.[d] + idx.[d]
            idx |> Array.map (fun i -> i + 1), rm)

    /// The Stan name of an element: `theta.1`, `w.2.3`; the site name for a scalar.
    let internal columnName (site: string) (idx1: int[]) =
        if idx1.Length = 0 then site else site + "." + String.Join(".", idx1 |> Array.map (fun i -> i.ToString inv))

    let private r (v: float) = v.ToString("R", inv)

    /// The CSV text of chain `chain` (0-based) of the input, in CmdStan's layout: settings comments, the header,
    /// the adaptation comments, one line per draw, the timing comments. Sites in the map's order.
    let chainText (chain: int) (inverseMetric: float[] option) (input: ReportInput) : string =
        let chains, n = ReportInput.validate input
        if chain < 0 || chain >= chains then
            invalidArg "chain" (sprintf "CmdStanCsv: chain %d does not exist; the draws have %d chains." chain chains)
        let sites =
            input.Draws |> Map.toArray |> Array.map (fun (site, t) ->
                let shape = t.Shape
                let siteShape = shape.[2..]
                let k = Array.fold (*) 1 siteShape
                site, siteShape, k, Tensor.toArray t)
        let sb = StringBuilder()
        let line (s: string) = sb.Append(s).Append('\n') |> ignore
        let isNuts = input.Stats.IsSome
        line "# stan_version_major = 2"
        line "# stan_version_minor = 36"
        line "# stan_version_patch = 0"
        line (sprintf "# model = %s" (input.Title.Replace('\n', ' ')))
        line "# method = sample (Default)"
        line "#   sample"
        line (sprintf "#     num_samples = %d" n)
        line "#     num_warmup = 0"
        line "#     save_warmup = 0"
        line "#     thin = 1"
        line "#     adapt"
        line (sprintf "#       engaged = %d" (if isNuts then 1 else 0))
        line (sprintf "#       delta = %s" (r input.TargetAccept))
        line "#     algorithm = hmc (Default)"
        line "#       hmc"
        line "#         engine = nuts (Default)"
        line "#           nuts"
        line (sprintf "#             max_depth = %d" input.MaxTreeDepth)
        line "#         metric = diag_e (Default)"
        line (sprintf "# id = %d" (chain + 1))
        line "# data"
        line "#   file = data.json"
        line "# generator = FunctionalBayes (the draws were made by FunctionalBayes, not by Stan)"
        let paramCols =
            sites |> Array.collect (fun (site, shape, _, _) -> stanOrder shape |> Array.map (fun (idx, _) -> columnName site idx))
        line (String.Join(",", Array.append statColumns paramCols))
        match input.Stats with
        | Some st ->
            line "# Adaptation terminated"
            line (sprintf "# Step size = %s" (r st.StepSize.[chain].[n - 1]))
            match inverseMetric with
            | Some m ->
                line "# Diagonal elements of inverse mass matrix:"
                line ("# " + String.Join(", ", m |> Array.map r))
            | None -> ()
        | None -> ()
        for i in 0 .. n - 1 do
            let stats =
                match input.Stats with
                | Some st ->
                    [| r st.Lp.[chain].[i]; r st.AcceptStat.[chain].[i]; r st.StepSize.[chain].[i]
                       st.TreeDepth.[chain].[i].ToString inv; st.NLeapfrog.[chain].[i].ToString inv
                       (if st.Divergent.[chain].[i] then "1" else "0"); r st.Energy.[chain].[i] |]
                | None -> [| "0"; "0"; "0"; "0"; "0"; "0"; "0" |]
            let vals =
                sites |> Array.collect (fun (_, shape, k, data) ->
                    stanOrder shape |> Array.map (fun (_, off) -> r data.[(chain * n + i) * k + off]))
            line (String.Join(",", Array.append stats vals))
        line "# "
        line "#  Elapsed Time: 0 seconds (Warm-up)"
        line "#                0 seconds (Sampling)"
        line "#                0 seconds (Total)"
        line "# "
        sb.ToString()

    /// Observed data as CmdStan JSON ({ "site": [values…] }), for `arviz.from_cmdstan(observed_data=…)`.
    let dataJson (input: ReportInput) : string =
        let parts =
            input.Checks |> List.map (fun c ->
                sprintf "%s: [%s]" (Text.Json.JsonSerializer.Serialize c.Site) (String.Join(", ", c.Observed |> Array.map r)))
        "{\n  " + String.Join(",\n  ", parts) + "\n}\n"

    /// Writes one CmdStan CSV per chain (`<prefix>_1.csv`, …) and the observed data (`<prefix>_data.json`) into
    /// `directory`; returns the CSV paths.
    let write (directory: string) (prefix: string) (input: ReportInput) : string list =
        let chains, _ = ReportInput.validate input
        Directory.CreateDirectory directory |> ignore
        File.WriteAllText(Path.Combine(directory, prefix + "_data.json"), dataJson input)
        [ for c in 0 .. chains - 1 ->
            let path = Path.Combine(directory, sprintf "%s_%d.csv" prefix (c + 1))
            File.WriteAllText(path, chainText c None input)
            path ]

    let private parseFloat (file: string) (lineNo: int) (s: string) =
        match Double.TryParse(s.Trim(), NumberStyles.Float, inv) with
        | true, v -> v
        | _ ->
            match s.Trim().ToLowerInvariant() with
            | "nan" -> nan
            | "inf" | "+inf" -> infinity
            | "-inf" -> -infinity
            | _ -> invalidArg "path" (sprintf "CmdStanCsv: %s line %d: '%s' is not a number." file lineNo s)

    /// Reads CmdStan CSV text (one chain). `file` names it in error messages.
    let parse (file: string) (text: string) : CmdStanChain =
        let lines = text.Replace("\r\n", "\n").Split('\n')
        let mutable header : string[] option = None
        let config = Collections.Generic.List<string * string>()
        let rows = Collections.Generic.List<float[]>()
        let mutable step = None
        let mutable metric = None
        let mutable expectMetric = false
        let times = Collections.Generic.List<float>()
        lines |> Array.iteri (fun i raw ->
            let l = raw.Trim()
            if l.StartsWith "#" then
                let body = l.TrimStart('#').Trim()
                if expectMetric && body <> "" && (Char.IsDigit body.[0] || body.[0] = '-' || body.[0] = '.') then
                    let vals = body.Split([| ','; ' ' |], StringSplitOptions.RemoveEmptyEntries) |> Array.map (parseFloat file (i + 1))
                    metric <- Some (Array.append (defaultArg metric [||]) vals)
                else
                    expectMetric <- false
                    if body.StartsWith "Step size" then
                        step <- Some (parseFloat file (i + 1) (body.Substring(body.IndexOf('=') + 1)))
                    elif body.StartsWith "Diagonal elements of inverse mass matrix" || body.StartsWith "Elements of inverse mass matrix" then
                        expectMetric <- true
                    elif body.Contains "seconds" then
                        let t = body.Replace("Elapsed Time:", "").Trim()
                        let num = t.Split(' ', StringSplitOptions.RemoveEmptyEntries).[0]
                        times.Add(parseFloat file (i + 1) num)
                    elif header.IsNone && body.Contains "=" then
                        let eq = body.IndexOf '='
                        let v = body.Substring(eq + 1).Replace("(Default)", "").Trim()
                        config.Add(body.Substring(0, eq).Trim(), v)
            elif l <> "" then
                match header with
                | None -> header <- Some (l.Split(',') |> Array.map (fun s -> s.Trim()))
                | Some h ->
                    let cells = l.Split(',')
                    if cells.Length <> h.Length then
                        invalidArg "path" (sprintf "CmdStanCsv: %s line %d has %d values but the header has %d columns." file (i + 1) cells.Length h.Length)
                    rows.Add(cells |> Array.map (parseFloat file (i + 1))))
        match header with
        | None -> invalidArg "path" (sprintf "CmdStanCsv: %s has no header line (lp__,…); is it a CmdStan CSV file?" file)
        | Some h ->
            { Columns = h; Values = rows.ToArray(); Config = List.ofSeq config; StepSize = step; InverseMetric = metric
              Timing = if times.Count >= 3 then Some (times.[0], times.[1], times.[2]) else None }

    /// Reads one CmdStan CSV file (one chain).
    let read (path: string) : CmdStanChain =
        if not (File.Exists path) then invalidArg "path" (sprintf "CmdStanCsv: %s does not exist." path)
        parse path (File.ReadAllText path)

    /// Splits a column name into its base name and 1-based indices (`w.2.3` → w, [2; 3]); trailing numeric parts only.
    let internal splitName (col: string) =
        let parts = col.Split('.')
        let mutable k = parts.Length
        while k > 1 && parts.[k - 1] |> Seq.forall Char.IsDigit && parts.[k - 1] <> "" do
            k <- k - 1
        String.Join(".", parts.[0 .. k - 1]), parts.[k..] |> Array.map int

    /// The chains as a report input: parameters regrouped into sites shaped [chains; draws; ...] (CmdStan's
    /// column-major element order undone), the NUTS statistics when the files have them.
    let toInput (title: string) (chains: CmdStanChain list) : ReportInput =
        let chainsArr = List.toArray chains
        if chainsArr.Length = 0 then invalidArg "chains" "CmdStanCsv.toInput: no chains."
        let c0 = chainsArr.[0]
        for (i, c) in Array.indexed chainsArr do
            if c.Columns <> c0.Columns then
                invalidArg "chains" (sprintf "CmdStanCsv.toInput: chain %d has different columns from chain 0." i)
            if c.Values.Length <> c0.Values.Length then
                invalidArg "chains" (sprintf "CmdStanCsv.toInput: chain %d has %d draws, chain 0 has %d." i c.Values.Length c0.Values.Length)
        let cfg key = c0.Config |> List.tryFind (fun (k, _) -> k = key) |> Option.map snd
        let parseInt (s: string option) d = match s with Some v -> (match Int32.TryParse v with | true, x -> x | _ -> d) | None -> d
        let parseF (s: string option) d = match s with Some v -> (match Double.TryParse(v, NumberStyles.Float, inv) with | true, x -> x | _ -> d) | None -> d
        // warmup draws saved in the file (save_warmup = 1) come first: skip them
        let skip =
            match cfg "save_warmup" with
            | Some ("1" | "true") -> (parseInt (cfg "num_warmup") 0 + parseInt (cfg "thin") 1 - 1) / parseInt (cfg "thin") 1
            | _ -> 0
        let chainsArr = chainsArr |> Array.map (fun c -> { c with Values = c.Values.[min skip c.Values.Length ..] })
        let n = c0.Values.Length - min skip c0.Values.Length
        let m = chainsArr.Length
        let colIndex = c0.Columns |> Array.mapi (fun i c -> c, i) |> Map.ofArray
        let stat name = colIndex |> Map.tryFind name
        let paramCols = c0.Columns |> Array.indexed |> Array.filter (fun (_, c) -> not (c.EndsWith "__"))
        let groups =
            paramCols
            |> Array.map (fun (i, c) -> let b, idx = splitName c in b, idx, i)
            |> Array.groupBy (fun (b, _, _) -> b)
        let draws =
            groups |> Array.map (fun (site, cols) ->
                let rank = cols |> Array.map (fun (_, idx, _) -> idx.Length) |> Array.max
                let shape = Array.init rank (fun d -> cols |> Array.map (fun (_, idx, _) -> idx.[d]) |> Array.max)
                let k = Array.fold (*) 1 shape
                if cols.Length <> k then
                    invalidArg "chains" (sprintf "CmdStanCsv.toInput: site '%s' has %d columns but its indices span shape %s." site cols.Length (Shape.format shape))
                let data = Array.zeroCreate (m * n * k)
                for (_, idx, col) in cols do
                    let mutable off = 0
                    for d in 0 .. rank - 1 do
                        off <- off * shape.[d] + (idx.[d] - 1)
                    for c in 0 .. m - 1 do
                        for i in 0 .. n - 1 do
                            data.[(c * n + i) * k + off] <- chainsArr.[c].Values.[i].[col]
                site, Tensor.create (Array.append [| m; n |] shape) data)
            |> Map.ofArray
        let column (name: string) = chainsArr |> Array.map (fun c -> let j = colIndex.[name] in c.Values |> Array.map (fun row -> row.[j]))
        let stats =
            if statColumns |> Array.forall (fun s -> (stat s).IsSome) then
                Some { Lp = column "lp__"; AcceptStat = column "accept_stat__"; StepSize = column "stepsize__"
                       TreeDepth = column "treedepth__" |> Array.map (Array.map int)
                       NLeapfrog = column "n_leapfrog__" |> Array.map (Array.map int)
                       Divergent = column "divergent__" |> Array.map (Array.map (fun v -> v <> 0.0))
                       Energy = column "energy__" }
            else None
        { ReportInput.ofDraws title draws with
            Stats = stats; MaxTreeDepth = parseInt (cfg "max_depth") 10; TargetAccept = parseF (cfg "delta") 0.8 }
