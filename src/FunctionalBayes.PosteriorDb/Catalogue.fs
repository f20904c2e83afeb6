namespace FunctionalBayes.PosteriorDb

open System
open System.IO
open System.Text.Json
open FunctionalBayes
open FunctionalBayes.Tensors

/// One posteriordb posterior's data and reference moments, as read from its JSON file.
[<NoEquality; NoComparison>]
type PosteriorData =
    { /// posteriordb's name, e.g. "arK-arK".
      Name: string
      /// The data block (Stan's data names).
      Data: JsonElement
      /// Reference mean and sd of each scalar, by Stan's name (beta[1], L[2,1]).
      Reference: Map<string, float * float> }

    /// A real scalar of the data.
    member d.Real(name: string) = d.Data.GetProperty(name).GetDouble()
    /// An integer scalar of the data.
    member d.Int(name: string) = d.Data.GetProperty(name).GetInt32()
    /// A real array of the data.
    member d.Vector(name: string) = d.Data.GetProperty(name).EnumerateArray() |> Seq.map (fun v -> v.GetDouble()) |> Seq.toArray
    /// An integer array of the data.
    member d.Ints(name: string) = d.Data.GetProperty(name).EnumerateArray() |> Seq.map (fun v -> v.GetInt32()) |> Seq.toArray
    /// A real matrix of the data (an array of rows) as an (rows, cols) tensor.
    member d.Matrix(name: string) =
        let rows = d.Data.GetProperty(name).EnumerateArray() |> Seq.map (fun r -> r.EnumerateArray() |> Seq.map (fun v -> v.GetDouble()) |> Seq.toArray) |> Seq.toArray
        if rows.Length = 0 then invalidArg "name" (sprintf "posteriordb %s: the matrix '%s' has no rows." d.Name name)
        Tensor.create [| rows.Length; rows.[0].Length |] (Array.concat rows)

/// What a run of a posterior needs besides its model: posteriordb's sampler settings where they differ
/// from Stan's defaults.
type PosteriorSettings =
    { /// Stan's adapt_delta (0.8 unless posteriordb's reference run raised it).
      TargetAccept: float
      /// A dense metric (for strongly correlated posteriors whose cheap test needs it).
      DenseMetric: bool }

    /// Stan's defaults.
    static member Default = { TargetAccept = 0.8; DenseMetric = false }

/// A posterior of the catalogue: its name, its model written with the library, and the quantities its
/// reference names that are not sites (computed from the draws by Stan's names).
[<NoEquality; NoComparison>]
type Posterior =
    { /// posteriordb's name (the data file's name without .json).
      Name: string
      /// The model on the posterior's data.
      Model: PosteriorData -> Model<unit>
      /// Reference quantities that are functions of the sites (generated quantities, transformed
      /// parameters), from per-scalar draws (draws.[chain].[draw]) by Stan's names.
      Derived: Map<string, float[][]> -> Map<string, float[][]>
      Settings: PosteriorSettings }

/// Loading posteriordb JSON files and naming draws as Stan does.
[<RequireQualifiedAccess>]
module PosteriorData =

    let private repoRoot () =
        let rec up (d: DirectoryInfo | null) =
            match d with
            | null -> None
            | d when File.Exists(Path.Combine(d.FullName, "FunctionalBayes.sln")) -> Some d.FullName
            | d -> up d.Parent
        up (DirectoryInfo AppContext.BaseDirectory)

    /// Where a posterior's file is looked for: the output's posteriordb/ folder (the repository's small
    /// files), then ../shared/posteriordb beside the repository root.
    let searchPath () : string list =
        [ yield Path.Combine(AppContext.BaseDirectory, "posteriordb")
          match repoRoot () with
          | Some root -> yield Path.GetFullPath(Path.Combine(root, "..", "shared", "posteriordb"))
          | None -> () ]

    let private find (file: string) =
        let dirs = searchPath ()
        match dirs |> List.map (fun d -> Path.Combine(d, file)) |> List.tryFind File.Exists with
        | None -> failwithf "posteriordb: %s not found in %s." file (String.Join(", ", dirs))
        | Some path -> path

    /// Reads "<name>.json" (posteriordb's name, e.g. "arK-arK") from the search path: its data block,
    /// or the data of the data set it names ("dataset": "<d>" reads "<d>.data.json", shared by the
    /// posteriors of one data set), and its reference moments.
    let load (name: string) : PosteriorData =
        use doc = JsonDocument.Parse(File.ReadAllText(find (name + ".json")))
        let root = doc.RootElement
        let reference =
            root.GetProperty("reference").EnumerateObject()
            |> Seq.map (fun p -> p.Name, (p.Value.GetProperty("mean").GetDouble(), p.Value.GetProperty("sd").GetDouble()))
            |> Map.ofSeq
        let data =
            match root.TryGetProperty "data" with
            | true, d -> d.Clone()
            | false, _ ->
                let dataset = root.GetProperty("dataset").GetString()
                use dd = JsonDocument.Parse(File.ReadAllText(find (string dataset + ".data.json")))
                dd.RootElement.GetProperty("data").Clone()
        { Name = name; Data = data; Reference = reference }

    /// Per scalar, draws.[chain].[draw], named as Stan does: x, x[i], x[i,j] (1-based, row-major).
    let scalars (draws: Map<string, Tensor>) : Map<string, float[][]> =
        draws
        |> Map.toSeq
        |> Seq.collect (fun (site, t) ->
            let chains, n = t.Shape.[0], t.Shape.[1]
            let event = t.Shape.[2..]
            let k = Shape.size event
            let data = Tensor.toArray t
            let name e =
                if event.Length = 0 then site
                else
                    let idx = Array.zeroCreate event.Length
                    let mutable r = e
                    for a in event.Length - 1 .. -1 .. 0 do
                        idx.[a] <- r % event.[a] + 1
                        r <- r / event.[a]
                    sprintf "%s[%s]" site (String.Join(",", idx))
            Seq.init k (fun e -> name e, Array.init chains (fun c -> Array.init n (fun i -> data.[(c * n + i) * k + e]))))
        |> Map.ofSeq

    /// A derived quantity's draws, elementwise from others of the same shape.
    let map2 (f: float -> float -> float) (a: float[][]) (b: float[][]) = Array.map2 (Array.map2 f) a b
