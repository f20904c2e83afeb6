/// The shared posteriordb posteriors (../shared/posteriordb: Stan program, data, reference moments) and
/// their models written with model { }; used by the tests (NutsPosteriorTests, MetricAdapterTests) and the
/// `nuts` benchmark suite.
module FunctionalBayes.PosteriorDbShared

open System
open System.IO
open System.Text.Json
open FunctionalBayes
open FunctionalBayes.Tensors

/// The repository root: the folder holding FunctionalBayes.sln above the binaries or the sources.
let internal repoRoot () =
    let rec up (d: DirectoryInfo | null) =
        match d with
        | null -> None
        | d when File.Exists(Path.Combine(d.FullName, "FunctionalBayes.sln")) -> Some d.FullName
        | d -> up d.Parent
    match up (DirectoryInfo AppContext.BaseDirectory) |> Option.orElse (up (DirectoryInfo __SOURCE_DIRECTORY__)) with
    | Some root -> root
    | None -> failwith "posteriordb: FunctionalBayes.sln not found above the binaries or the sources."

/// ../shared/posteriordb beside the repository root.
let internal posteriordbDir () = Path.GetFullPath(Path.Combine(repoRoot (), "..", "shared", "posteriordb"))

type internal Reference = { Data: JsonElement; Moments: Map<string, float * float> }

let internal load (name: string) : Reference =
    let doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(posteriordbDir (), name + ".json")))
    let root = doc.RootElement
    let moments =
        root.GetProperty("reference").EnumerateObject()
        |> Seq.map (fun p -> p.Name, (p.Value.GetProperty("mean").GetDouble(), p.Value.GetProperty("sd").GetDouble()))
        |> Map.ofSeq
    { Data = root.GetProperty("data").Clone(); Moments = moments }

let internal vector (e: JsonElement) = e.EnumerateArray() |> Seq.map (fun v -> v.GetDouble()) |> Seq.toArray
let internal matrix (e: JsonElement) =
    let rows = e.EnumerateArray() |> Seq.map vector |> Seq.toArray
    Tensor.create [| rows.Length; rows.[0].Length |] (Array.concat rows)

/// Per scalar, draws.[chain].[draw], named as Stan does (1-based: beta[1]).
let internal scalars (draws: Map<string, Tensor>) : Map<string, float[][]> =
    draws
    |> Map.toSeq
    |> Seq.collect (fun (site, t) ->
        let chains, n = t.Shape.[0], t.Shape.[1]
        let k = Shape.size t.Shape.[2..]
        let data = Tensor.toArray t
        Seq.init k (fun e ->
            (if t.Rank = 2 then site else sprintf "%s[%d]" site (e + 1)),
            Array.init chains (fun c -> Array.init n (fun i -> data.[(c * n + i) * k + e]))))
    |> Map.ofSeq

// Flat (improper) priors in the Stan programs are written as Normal(0, 1000) / HalfNormal(1000): at the
// posterior's scale (sd ≤ 6, means ≤ 26) they shift a mean by under 1e-4 sd, far inside the tolerance.

let internal eightSchools (d: JsonElement) = model {
    let y = Tensor.ofArray (vector (d.GetProperty "y"))
    let sigma = Tensor.ofArray (vector (d.GetProperty "sigma"))
    let j = y.Shape.[0]
    let! thetaTrans = Model.sample "theta_trans" (Independent (Normal (Tensor.zeros [| j |], Tensor.ones [| j |]), 1))
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (HalfCauchy (Tensor.scalar 5.0))
    return! Model.observe "y" (Independent (Normal (thetaTrans * tau + mu, sigma), 1)) (Some y)
}

let internal arK (d: JsonElement) = model {
    let k = d.GetProperty("K").GetInt32()
    let y = vector (d.GetProperty "y")
    let t = y.Length
    // lagged design: row t-K-1 holds y[t-1], ..., y[t-K] for t = K+1 .. T (1-based)
    let lags = Tensor.create [| t - k; k |] [| for s in k .. t - 1 do for l in 1 .. k -> y.[s - l] |]
    let target = Tensor.ofArray y.[k ..]
    let! alpha = Model.sample "alpha" (Normal (Tensor.scalar 0.0, Tensor.scalar 10.0))
    let! beta = Model.sample "beta" (Independent (Normal (Tensor.zeros [| k |], Tensor.create [| k |] (Array.create k 10.0)), 1))
    let! sigma = Model.sample "sigma" (HalfCauchy (Tensor.scalar 2.5))
    return! Model.observe "y" (Independent (Normal (alpha + Tensor.matmul lags beta, sigma), 1)) (Some target)
}

let internal regression2 (x: float[]) (y: float[]) (sigmaPrior: Distribution) = model {
    let x = Tensor.ofArray x
    let! beta = Model.sample "beta" (Independent (Normal (Tensor.zeros [| 2 |], Tensor.create [| 2 |] [| 1000.0; 1000.0 |]), 1))
    let! sigma = Model.sample "sigma" sigmaPrior
    let mu = Tensor.select 0 0 beta + Tensor.select 0 1 beta * x
    return! Model.observe "y" (Independent (Normal (mu, sigma), 1)) (Some (Tensor.ofArray y))
}

let internal blr (d: JsonElement) = model {
    let x = matrix (d.GetProperty "X")
    let y = Tensor.ofArray (vector (d.GetProperty "y"))
    let dim = x.Shape.[1]
    let! beta = Model.sample "beta" (Independent (Normal (Tensor.zeros [| dim |], Tensor.create [| dim |] (Array.create dim 10.0)), 1))
    let! sigma = Model.sample "sigma" (HalfNormal (Tensor.scalar 10.0))
    return! Model.observe "y" (Independent (Normal (Tensor.matmul x beta, sigma), 1)) (Some y)
}

/// The eight schools' theta = theta_trans·tau + mu per draw (a transformed parameter in the Stan program).
let internal eightSchoolsTheta (s: Map<string, float[][]>) : Map<string, float[][]> =
    Map.ofSeq (seq {
        for j in 1 .. 8 ->
            let tt = s.[sprintf "theta_trans[%d]" j]
            sprintf "theta[%d]" j, Array.map3 (fun (a: float[]) (m: float[]) (t: float[]) -> Array.map3 (fun a m t -> a * t + m) a m t) tt s.["mu"] s.["tau"] })

/// A shared posterior: a short name, its file, posteriordb's target accept statistic, its model, and the
/// Stan program's derived scalars from our draws' scalars.
type internal SharedPosterior =
    { Name: string
      File: string
      TargetAccept: float
      Model: Reference -> Model<Tensor>
      Derived: Map<string, float[][]> -> Map<string, float[][]> }

/// The five shared posteriors.
let internal all : SharedPosterior list =
    let none (_: Map<string, float[][]>) = Map.empty
    [ { Name = "eight_schools"; File = "eight_schools-eight_schools_noncentered"; TargetAccept = 0.95; Model = (fun r -> eightSchools r.Data); Derived = eightSchoolsTheta }
      { Name = "arK"; File = "arK-arK"; TargetAccept = 0.8; Model = (fun r -> arK r.Data); Derived = none }
      { Name = "earnings"; File = "earnings-logearn_height"; TargetAccept = 0.8; Derived = none
        Model = fun r -> regression2 (vector (r.Data.GetProperty "height")) (vector (r.Data.GetProperty "earn") |> Array.map log) (HalfNormal (Tensor.scalar 1000.0)) }
      { Name = "kidiq"; File = "kidiq-kidscore_momiq"; TargetAccept = 0.8; Derived = none
        Model = fun r -> regression2 (vector (r.Data.GetProperty "mom_iq")) (vector (r.Data.GetProperty "kid_score")) (HalfCauchy (Tensor.scalar 2.5)) }
      { Name = "blr"; File = "sblrc-blr"; TargetAccept = 0.8; Model = (fun r -> blr r.Data); Derived = none } ]

/// The shared posterior of a name in `all`.
let internal named (name: string) = all |> List.find (fun p -> p.Name = name)
