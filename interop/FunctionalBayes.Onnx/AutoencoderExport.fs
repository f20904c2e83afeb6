namespace FunctionalBayes.Onnx

open System
open FunctionalBayes
open FunctionalBayes.Tensors

/// ONNX export of a trained AEVB autoencoder's two networks, each in eval mode (BatchNorm normalizes
/// with its running statistics, Dropout is the identity): the encoder x (batch, dataDim) → the
/// variational family's parameters, and the decoder z (batch, latentDim) → the observation mean E[x | z].
/// Each network is traced at two batch sizes from its own forward pass, so any network of the Nn modules
/// or of user functions exports, as long as its ops have an ONNX form (the error names the op otherwise).
[<RequireQualifiedAccess>]
module AutoencoderExport =

    /// The encoder's input name.
    [<Literal>]
    let EncoderInput = "x"

    /// The decoder's input name.
    [<Literal>]
    let DecoderInput = "z"

    /// The decoder's output name.
    [<Literal>]
    let DecoderOutput = "mean"

    let private fail (msg: string) = raise (OnnxExportException msg)

    /// Probe batches of n rows (not one value repeated, so a value computed on the host from the data
    /// is caught as such rather than taken for a filled constant).
    let private probeData (e: AevbEngine) (dt: Dtype) (n: int) = Rng.uniform (Rng.key 0xE1UL) [| n; e.DataDim |] |> Tensor.cast dt
    let private probeLatent (e: AevbEngine) (dt: Dtype) (n: int) = Rng.normal (Rng.key 0xD1UL) [| n; e.LatentDim |] |> Tensor.cast dt

    let private named (opts: ExportOptions) (graphName: string) =
        if opts.GraphName = ExportOptions.Default.GraphName then { opts with GraphName = graphName } else opts

    /// Runs an export, prefixing its error with which network and family failed.
    let private exporting (what: string) (build: unit -> Onnx.ModelProto) =
        try build ()
        with :? OnnxExportException as ex -> fail (sprintf "AutoencoderExport: the %s cannot be exported: %s" what ex.Message)

    let private metadata (m: Onnx.ModelProto) (role: string) (e: AevbEngine) (inputs: string) (outputs: string list) =
        Export.addMetadata m "functionalbayes.aevb.role" role
        Export.addMetadata m "functionalbayes.aevb.variational" e.Variational.Name
        Export.addMetadata m "functionalbayes.aevb.observation" e.Observation.Name
        Export.addMetadata m "functionalbayes.aevb.latent_dim" (string e.LatentDim)
        Export.addMetadata m "functionalbayes.aevb.data_dim" (string e.DataDim)
        Export.addMetadata m "functionalbayes.inputs" inputs
        Export.addMetadata m "functionalbayes.outputs" (String.Join(",", outputs))

    /// The encoder as an ONNX model: input "x" (batch, dataDim); one output per parameter of the
    /// variational family, named by it (for Normal "loc" and "scale", each (batch, latentDim)), as the
    /// encoder's heads give them after their transforms — what `Aevb.encodeParams` computes.
    let encoder (opts: ExportOptions) (e: AevbEngine) (st: AevbState) : Onnx.ModelProto =
        let dt = Aevb.dtypeOf st
        let names = e.Variational.Params |> Array.ofList
        let f (xs: Tensor[]) =
            let outs, _ = e.Encoder.Apply st.EncParams st.EncState xs.[0] false
            names |> Array.map (fun k ->
                match outs.TryFind k with
                | Some t -> t
                | None ->
                    fail (sprintf "it returns [%s] but the variational family %s expects [%s]."
                              (String.Join(", ", outs |> Map.keys)) e.Variational.Name (String.Join(", ", names))))
        let m =
            exporting (sprintf "encoder (variational family %s)" e.Variational.Name) (fun () ->
                Export.ofFunction (named opts "aevb_encoder") f [| EncoderInput |] [| probeData e dt 2 |] [| probeData e dt 3 |] names)
        metadata m "encoder" e EncoderInput (List.ofArray names)
        m

    /// The decoder as an ONNX model: input "z" (batch, latentDim), output "mean" (batch, dataDim), the
    /// observation family's mean — sigmoid(logits) for Bernoulli, loc for Normal, Laplace, Logistic and
    /// Student's t (NaN where its df ≤ 1) — what `Aevb.decode` computes. A family without a finite mean
    /// (Cauchy, Student's t with a fixed df ≤ 1) is refused by name.
    let decoder (opts: ExportOptions) (e: AevbEngine) (st: AevbState) : Onnx.ModelProto =
        let dt = Aevb.dtypeOf st
        let family = e.Observation
        // a family whose mean is nowhere finite has nothing to export (one finite only for some parameter
        // values, as Student's t with a learned df, exports its mean with NaN where it has none, as in process)
        let probe = Aevb.decode e st (probeLatent e dt 3) |> Tensor.toArray
        if probe |> Array.forall (fun v -> not (Double.IsFinite v)) then
            fail (sprintf "AutoencoderExport: the observation family %s has no finite mean (E[x | z] is NaN or infinite at every probe latent), so the decoder has no mean to export; use a family with a mean (Bernoulli, Normal, Laplace, Logistic, Student's t with df > 1)." family.Name)
        let f (zs: Tensor[]) =
            let z = zs.[0]
            let ps, _ = e.Decoder.Apply st.DecParams st.DecState z false
            let mean = family.Mean ps
            [| Tensor.broadcastTo [| z.Shape.[0]; e.DataDim |] mean |]
        let m =
            exporting (sprintf "decoder (observation family %s)" family.Name) (fun () ->
                Export.ofFunction (named opts "aevb_decoder") f [| DecoderInput |] [| probeLatent e dt 2 |] [| probeLatent e dt 3 |] [| DecoderOutput |])
        metadata m "decoder" e DecoderInput [ DecoderOutput ]
        m
