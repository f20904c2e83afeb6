/// A small synthetic posterior with every part a report can show: NUTS statistics with divergences, a vector
/// site, an SVI loss, a continuous and a binary observed site, and a model description.
module FunctionalBayes.Reporting.Tests.SampleInput

open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Reporting

let chains, draws = 4, 200

/// Where the tests keep the pages and pictures they make, to look at: $FB_REPORT_ARTIFACTS, or a temporary folder.
let artifacts () =
    let dir =
        match System.Environment.GetEnvironmentVariable "FB_REPORT_ARTIFACTS" with
        | null | "" -> System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fb-report-artifacts")
        | d -> d
    System.IO.Directory.CreateDirectory dir |> ignore
    dir

let private normals (seed: uint64) (n: int) = Rng.normal (Rng.key seed) [| n |] |> Tensor.toArray

let private uniforms (seed: uint64) (n: int) = Rng.uniform (Rng.key seed) [| n |] |> Tensor.toArray

/// AR(1) draws with the given mean and sd, [chain][draw].
let private ar (seed: uint64) (mean: float) (sd: float) =
    let e = normals seed (chains * draws)
    Array.init chains (fun c ->
        let x = Array.zeroCreate draws
        x.[0] <- e.[c * draws]
        for t in 1 .. draws - 1 do
            x.[t] <- 0.5 * x.[t - 1] + sqrt 0.75 * e.[c * draws + t]
        x |> Array.map (fun v -> mean + sd * v))

let private stack (perChain: float[][][]) (k: int) =
    // perChain.[e].[c].[i] → [chains; draws; k]
    Tensor.create [| chains; draws; k |]
        [| for c in 0 .. chains - 1 do
            for i in 0 .. draws - 1 do
                for e in 0 .. k - 1 -> perChain.[e].[c].[i] |]

let input : ReportInput =
    let mu = ar 1UL 4.0 3.0
    let tau = ar 2UL 0.0 0.6 |> Array.map (Array.map exp)
    let theta = Array.init 8 (fun j -> ar (10UL + uint64 j) (float j - 3.5) 1.0)
    let draws' =
        Map.ofList
            [ "mu", Tensor.create [| chains; draws |] (Array.concat mu)
              "tau", Tensor.create [| chains; draws |] (Array.concat tau)
              "theta", stack theta 8 ]
    let energy = ar 3UL 20.0 3.0
    let u = normals 4UL (chains * draws)
    let stats =
        { Lp = energy |> Array.map (Array.map (fun e -> -e + 5.0))
          AcceptStat = Array.init chains (fun c -> Array.init draws (fun i -> 0.6 + 0.4 * abs (sin (float (c * draws + i)))))
          StepSize = Array.init chains (fun c -> Array.create draws (0.3 + 0.05 * float c))
          TreeDepth = Array.init chains (fun c -> Array.init draws (fun i -> 2 + (c + i) % 3))
          NLeapfrog = Array.init chains (fun c -> Array.init draws (fun i -> 3 + (c + i) % 7))
          Divergent = Array.init chains (fun c -> Array.init draws (fun i -> u.[c * draws + i] > 2.3))
          Energy = energy }
    let yObs = [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
    let yRep = Array.init 100 (fun d -> let z = normals (100UL + uint64 d) 8 in Array.init 8 (fun j -> yObs.[j] * 0.5 + 10.0 * z.[j]))
    let p = Array.init 60 (fun j -> float j / 59.0)
    let uo = uniforms 300UL 60
    let bObs = p |> Array.mapi (fun j q -> if uo.[j] < q then 1.0 else 0.0)
    let bRep = Array.init 80 (fun d -> let z = uniforms (400UL + uint64 d) 60 in p |> Array.mapi (fun j q -> if z.[j] < q then 1.0 else 0.0))
    { Title = "Eight schools (synthetic draws)"
      Draws = draws'
      Stats = Some stats
      MaxTreeDepth = 10
      TargetAccept = 0.8
      SviLoss = Some (Array.init 500 (fun i -> 50.0 + 1000.0 * exp (-float i / 60.0) + 3.0 * sin (float i)))
      Checks =
        [ { Site = "y"; Observed = yObs; Replicated = yRep }
          { Site = "clicked"; Observed = bObs; Replicated = bRep } ]
      Description =
        Some [| [| "site"; "kind"; "distribution"; "value" |]
                [| "mu"; "latent"; "Normal"; "[]" |]
                [| "tau"; "latent"; "HalfCauchy"; "[]" |]
                [| "theta"; "latent"; "Normal"; "[8]" |]
                [| "y"; "observed"; "Normal"; "[8]" |] |] }
