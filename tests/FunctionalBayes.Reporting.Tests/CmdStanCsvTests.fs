/// CmdStan CSV: the round trip is exact, and a file in CmdStan's documented layout (settings comments, header,
/// adaptation comments, draws, timing comments) is read correctly.
module FunctionalBayes.Reporting.Tests.CmdStanCsvTests

open System
open System.IO
open Expecto
open FunctionalBayes.Tensors
open FunctionalBayes.Reporting
open FunctionalBayes.Reporting.Tests.SampleInput

/// A hand-made file in the layout CmdStan 2.3x writes for `sample` (see CmdStan's guide, "Stan CSV File Format"):
/// a 2 × 2 matrix Sigma appears column-major (Sigma.1.1, Sigma.2.1, Sigma.1.2, Sigma.2.2).
let fixture = """# stan_version_major = 2
# stan_version_minor = 33
# stan_version_patch = 1
# model = bernoulli_model
# start_datetime = 2024-01-01 00:00:00 UTC
# method = sample (Default)
#   sample
#     num_samples = 3
#     num_warmup = 1000 (Default)
#     save_warmup = 0 (Default)
#     thin = 1 (Default)
#     adapt
#       engaged = 1 (Default)
#       gamma = 0.05 (Default)
#       delta = 0.9
#       kappa = 0.75 (Default)
#       t0 = 10 (Default)
#     algorithm = hmc (Default)
#       hmc
#         engine = nuts (Default)
#           nuts
#             max_depth = 12
#         metric = diag_e (Default)
#         stepsize = 1 (Default)
# id = 1 (Default)
# data
#   file = bernoulli.data.json
# init = 2 (Default)
# random
#   seed = 4711
# output
#   file = output.csv (Default)
lp__,accept_stat__,stepsize__,treedepth__,n_leapfrog__,divergent__,energy__,theta,Sigma.1.1,Sigma.2.1,Sigma.1.2,Sigma.2.2
# Adaptation terminated
# Step size = 0.893542
# Diagonal elements of inverse mass matrix:
# 0.483503, 1.2, 0.7, 1.1, 0.9
-7.25837,0.982274,0.893542,1,3,0,7.31688,0.163186,1.5,0.25,0.35,2.5
-6.97547,0.986524,0.893542,2,3,0,7.24546,0.195023,1.6,0.26,0.36,2.6
-8.02916,0.776849,0.893542,1,1,1,8.10014,0.0789087,1.7,0.27,0.37,2.7
# 
#  Elapsed Time: 0.005 seconds (Warm-up)
#                0.012 seconds (Sampling)
#                0.017 seconds (Total)
# 
"""

[<Tests>]
let tests =
    testList "CmdStanCsv" [

        testCase "write then read gives back every draw and statistic exactly" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "fb-cmdstan-" + Guid.NewGuid().ToString("N"))
            try
                let paths = CmdStanCsv.write dir "eight" input
                Expect.equal paths.Length chains "one file per chain"
                Expect.isTrue (File.Exists(Path.Combine(dir, "eight_data.json"))) "observed data written"
                let back = CmdStanCsv.toInput input.Title (paths |> List.map CmdStanCsv.read)
                Expect.equal (back.Draws |> Map.keys |> List.ofSeq) (input.Draws |> Map.keys |> List.ofSeq) "sites"
                for KeyValue (site, t) in input.Draws do
                    Expect.equal back.Draws.[site].Shape t.Shape (sprintf "%s shape" site)
                    Expect.equal (Tensor.toArray back.Draws.[site]) (Tensor.toArray t) (sprintf "%s values, bit for bit" site)
                let s0, s1 = input.Stats.Value, back.Stats.Value
                Expect.equal s1.Lp s0.Lp "lp__"
                Expect.equal s1.AcceptStat s0.AcceptStat "accept_stat__"
                Expect.equal s1.StepSize s0.StepSize "stepsize__"
                Expect.equal s1.TreeDepth s0.TreeDepth "treedepth__"
                Expect.equal s1.NLeapfrog s0.NLeapfrog "n_leapfrog__"
                Expect.equal s1.Divergent s0.Divergent "divergent__"
                Expect.equal s1.Energy s0.Energy "energy__"
                Expect.equal back.MaxTreeDepth input.MaxTreeDepth "max_depth"
                Expect.equal back.TargetAccept input.TargetAccept "delta"
                let header = File.ReadAllLines paths.Head |> Array.find (fun l -> not (l.StartsWith "#"))
                Expect.stringStarts header "lp__,accept_stat__,stepsize__,treedepth__,n_leapfrog__,divergent__,energy__,mu,tau,theta.1,theta.2" "Stan's column names"
            finally
                if Directory.Exists dir then Directory.Delete(dir, true)

        testCase "a CmdStan file: settings, adaptation, draws, timing, column-major matrices" <| fun () ->
            let c = CmdStanCsv.parse "fixture.csv" fixture
            Expect.equal c.Columns.Length 12 "columns"
            Expect.equal c.Values.Length 3 "draws"
            Expect.equal c.Values.[2].[7] 0.0789087 "theta of draw 3"
            Expect.equal c.StepSize (Some 0.893542) "step size"
            Expect.equal c.InverseMetric (Some [| 0.483503; 1.2; 0.7; 1.1; 0.9 |]) "inverse metric"
            Expect.equal c.Timing (Some (0.005, 0.012, 0.017)) "timing"
            Expect.contains c.Config ("num_warmup", "1000") "settings, (Default) removed"
            Expect.contains c.Config ("model", "bernoulli_model") "model name"
            let r = CmdStanCsv.toInput "bernoulli" [ c; c ]
            Expect.equal r.Draws.["theta"].Shape [| 2; 3 |] "scalar site [chains; draws]"
            Expect.equal r.Draws.["Sigma"].Shape [| 2; 3; 2; 2 |] "matrix site"
            // row-major [row; col] from Stan's column-major columns: Sigma[2,1] = 0.25 (draw 1), Sigma[1,2] = 0.35
            Expect.equal (Tensor.toArray r.Draws.["Sigma"]).[0 .. 3] [| 1.5; 0.35; 0.25; 2.5 |] "Sigma of draw 1, row-major"
            Expect.equal r.MaxTreeDepth 12 "max_depth read"
            Expect.equal r.TargetAccept 0.9 "delta read"
            Expect.equal r.Stats.Value.Divergent.[1] [| false; false; true |] "divergent__"
            Expect.equal r.Stats.Value.TreeDepth.[0] [| 1; 2; 1 |] "treedepth__"

        testCase "saved warmup draws are skipped" <| fun () ->
            let text =
                fixture.Replace("#     num_warmup = 1000 (Default)", "#     num_warmup = 2").Replace("#     save_warmup = 0 (Default)", "#     save_warmup = 1")
            let r = CmdStanCsv.toInput "w" [ CmdStanCsv.parse "warm.csv" text ]
            Expect.equal r.Draws.["theta"].Shape [| 1; 1 |] "3 rows − 2 warmup"
            Expect.equal (Tensor.toArray r.Draws.["theta"]) [| 0.0789087 |] "the sampling draw"

        testCase "a malformed file is refused naming the file and line" <| fun () ->
            let bad = fixture.Replace("-6.97547,0.986524,", "-6.97547,")
            let ex = Expect.throwsC (fun () -> CmdStanCsv.parse "bad.csv" bad |> ignore) id
            Expect.stringContains ex.Message "bad.csv line 39 has 11 values but the header has 12 columns" "where and what"
    ]
