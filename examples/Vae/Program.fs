/// The classic VAE (Kingma and Welling) on Fashion-MNIST: 784-400-20, ReLU, Bernoulli decoder,
/// unit-Normal prior, Normal encoder, Adam 1e-3, batch 128; weights U(±1/√fan_in) as PyTorch's
/// nn.Linear (the benchmark's PyTorch baseline) draws them. The project file takes TrainingGc.props
/// (garbage-collector settings for training; see there).
///
///   dotnet run -c Release --project examples/Vae -- --epochs 3 --out vae-out
///
/// Data: Debian's dataset-fashion-mnist package (IDX files under /usr/share/datasets/fashion-mnist/):
///   sudo apt-get install dataset-fashion-mnist
/// Pictures: ScottPlot needs a font (Debian: sudo apt-get install fonts-dejavu-core).
module Vae.Program

open System
open System.IO
open FunctionalBayes
open FunctionalBayes.Tensors

let private dataDir = "/usr/share/datasets/fashion-mnist"
let private installHint = "Install Fashion-MNIST as root with: apt-get update && apt-get install -y dataset-fashion-mnist (or each through sudo; IDX files under /usr/share/datasets/fashion-mnist/)."

let private argValue (args: string[]) (name: string) =
    args |> Array.tryFindIndex ((=) name) |> Option.bind (fun i -> if i + 1 < args.Length then Some args.[i + 1] else None)

/// Writes a grid of 28×28 images (rows of a (N, 784) tensor) as a grayscale PNG.
let private savePng (path: string) (title: string) (images: float[][]) (cols: int) =
    let rows = (images.Length + cols - 1) / cols
    let cells = Array2D.create (rows * 29) (cols * 29) 1.0
    images |> Array.iteri (fun k img ->
        let r0 = (k / cols) * 29
        let c0 = (k % cols) * 29
        for i in 0 .. 27 do
            for j in 0 .. 27 do
                cells.[r0 + i, c0 + j] <- 1.0 - img.[i * 28 + j])
    use plt = new ScottPlot.Plot()
    let hm = plt.Add.Heatmap(cells)
    hm.Colormap <- ScottPlot.Colormaps.Grayscale()
    plt.Title(title)
    plt.HideGrid()
    plt.Axes.Frameless() |> ignore
    plt.SavePng(path, cols * 60, rows * 60 + 40) |> ignore

[<EntryPoint>]
let main args =
    let epochs = argValue args "--epochs" |> Option.map int |> Option.defaultValue 10
    let outDir = argValue args "--out" |> Option.defaultValue "vae-out"
    let limit = argValue args "--train-rows" |> Option.map int
    let file name = Path.Combine(dataDir, name)
    let needed = [ "train-images-idx3-ubyte.gz"; "t10k-images-idx3-ubyte.gz" ]
    match needed |> List.tryFind (fun f -> not (File.Exists (file f))) with
    | Some missing ->
        eprintfn "Fashion-MNIST is missing (%s). %s" (file missing) installHint
        2
    | None ->
    Directory.CreateDirectory outDir |> ignore
    let train = Idx.readImages (file "train-images-idx3-ubyte.gz")
    let train = match limit with Some n -> Tensor.narrow 0 0 (min n train.Shape.[0]) train | None -> train
    let test = Idx.readImages (file "t10k-images-idx3-ubyte.gz")
    printfn "Fashion-MNIST: %d training and %d test images of %d pixels" train.Shape.[0] test.Shape.[0] train.Shape.[1]

    let latent = 20
    let encoder = Nn.mlp { MlpSpec.Create(784, [ 400 ], [ Nn.head "loc" latent Activations.identity; Nn.head "scale" latent Activations.halfExp ]) with Init = WeightInit.FanInUniform }
    let decoder = Nn.mlp { MlpSpec.Create(latent, [ 400 ], [ Nn.head "logits" 784 Activations.identity ]) with Init = WeightInit.FanInUniform }
    let engine =
        Aevb.create latent 784 encoder decoder AevbPrior.UnitNormal Family.bernoulli Family.normal
                    (Optimizer.AdamDefault 1e-3) 1 1.0
    let key = Rng.key 1242UL
    let kInit, kRun = Rng.split key
    let kEval = Rng.key 7UL
    let st0 = Aevb.init engine kInit
    let seconds = ResizeArray<float>()
    let lastNegElbo = ref nan
    let opts = AevbRunOptions.Create(epochs, 128)
    let onEpoch (ep: AevbEpoch) =
                let negElbo = -(Aevb.elbo engine kEval ep.State test 1 1000)
                seconds.Add ep.Seconds
                lastNegElbo.Value <- negElbo
                printfn "epoch %d: %.2f s, train loss %.1f nats/image, test -ELBO %.2f nats/image"
                    (ep.Epoch + 1) ep.Seconds (ep.MeanLoss / 128.0) negElbo
    let result = Aevb.runIn RunContext.Quiet onEpoch engine kRun st0 train opts
    let st = result.State

    let toRows (t: Tensor) = let a = Tensor.toArray t in Array.init t.Shape.[0] (fun i -> a.[i * 784 .. i * 784 + 783])
    let generated = Aevb.generate engine (Rng.key 11UL) st 64 true |> toRows
    let originals = Tensor.narrow 0 0 16 test
    let recon = Aevb.reconstruct engine st originals
    let pairs = Array.append (toRows originals) (toRows recon)
    try
        savePng (Path.Combine(outDir, "vae-generated.png")) "Generated (decoder mean of prior draws)" generated 8
        savePng (Path.Combine(outDir, "vae-reconstructions.png")) "Test images (top) and reconstructions (bottom)" pairs 16
        printfn "wrote %s and %s" (Path.Combine(outDir, "vae-generated.png")) (Path.Combine(outDir, "vae-reconstructions.png"))
    with ex ->
        eprintfn "Could not write the PNGs (%s). ScottPlot needs a font: sudo apt-get install fonts-dejavu-core" ex.Message
    Aevb.save (Path.Combine(outDir, "vae-params.json")) engine (Some opts) st
    let onnxDiff = OnnxCheck.exportAndCompare outDir engine st test
    let meanSeconds = if seconds.Count = 0 then nan else Seq.average seconds
    printfn "{\"epoch_seconds\":%.3f,\"test_neg_elbo_nats\":%.2f,\"epochs\":%d,\"onnx_max_abs_diff\":%.3g}" meanSeconds lastNegElbo.Value seconds.Count onnxDiff
    0
