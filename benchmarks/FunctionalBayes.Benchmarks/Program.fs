module FunctionalBayes.Benchmarks.Program

open FunctionalBayes.Benchmarks

let private suites =
    [ "gemm", Suites.gemm
      "elementwise", Suites.elementwise
      "grad", Suites.grad
      // the pieces of the logistic-regression gradient (issue 24)
      "logisticparts", Suites.logisticParts
      "svi", Suites.svi
      // chains of element-wise ops, compiled (issue 22)
      "fusion", Suites.fusion
      "onnx", Suites.onnx
      "nuts", NutsSuite.run
      // the posteriordb section of the nuts suite alone (metric adapters and rstan)
      "nutsdb", NutsSuite.posteriordb
      // the same on the Gaussian-process posteriors and the mixture alone
      "nutsdb-gpmix", NutsSuite.posteriordbGpMixture
      "aevb", AevbSuite.aevb
      "hbnn", HbnnSuite.run
      // NUTS's CPU time per leapfrog on the HBNN potential, per metric (issue 27)
      "hbnn-nuts", HbnnSuite.nuts
      "firstcall", FirstCallSuite.run
      // streamed Parquet against in-memory minibatch SVI (issue 28)
      "tables", TablesSuite.run ]

[<EntryPoint>]
let main argv =
    match argv with
    | [| "firstcall-child"; name |] ->
        FirstCallSuite.child name
        0
    | _ ->
        let wanted = if argv.Length = 0 then suites |> List.map fst else List.ofArray argv
        match wanted |> List.filter (fun w -> not (suites |> List.exists (fun (n, _) -> n = w))) with
        | [] ->
            for w in wanted do
                (suites |> List.find (fun (n, _) -> n = w) |> snd) ()
            0
        | unknown ->
            eprintfn "unknown suite(s): %s. Suites: %s" (String.concat ", " unknown) (suites |> List.map fst |> String.concat ", ")
            2
