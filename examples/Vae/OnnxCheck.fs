/// The trained VAE's encoder and decoder exported to ONNX and run in ONNX Runtime against the
/// in-process networks.
module Vae.OnnxCheck

open System.Collections.Generic
open System.IO
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

let private runOrt (path: string) (input: string) (x: Tensor) =
    use p = OnnxPredictor.Load path
    let inputs = Dictionary<string, OnnxArray>()
    inputs.[input] <- OnnxArray.FromFloat32(Tensor.toArrayF32 x, x.Shape |> Array.map int64)
    p.Run(inputs) |> Seq.map (fun kv -> kv.Key, kv.Value.GetData<float32>()) |> Map.ofSeq

let private maxAbsDiff (ort: float32[]) (t: Tensor) =
    Array.map2 (fun (a: float32) (b: float) -> abs (float a - b)) ort (Tensor.toArray t) |> Array.max

/// Writes vae-encoder.onnx and vae-decoder.onnx to outDir (float32) and returns the largest
/// |ONNX Runtime − in-process| over the encoder's outputs on x and the decoder's mean on their loc.
let exportAndCompare (outDir: string) (engine: AevbEngine) (st: AevbState) (x: Tensor) : float =
    let encPath = Path.Combine(outDir, "vae-encoder.onnx")
    let decPath = Path.Combine(outDir, "vae-decoder.onnx")
    AutoencoderExport.encoder ExportOptions.Default engine st |> Export.toFile encPath
    AutoencoderExport.decoder ExportOptions.Default engine st |> Export.toFile decPath
    let encOrt = runOrt encPath AutoencoderExport.EncoderInput x
    let encIn = Aevb.encodeParams engine st x
    let encDiff = encIn |> Seq.map (fun (KeyValue (k, v)) -> maxAbsDiff encOrt.[k] v) |> Seq.max
    let z = encIn.["loc"]
    let decDiff = maxAbsDiff (runOrt decPath AutoencoderExport.DecoderInput z).[AutoencoderExport.DecoderOutput] (Aevb.decode engine st z)
    printfn "wrote %s and %s: max |ONNX Runtime - in-process| = %.3g (encoder), %.3g (decoder mean) on %d test images"
        encPath decPath encDiff decDiff x.Shape.[0]
    max encDiff decDiff
