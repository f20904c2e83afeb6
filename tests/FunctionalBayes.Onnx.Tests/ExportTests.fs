/// ONNX export: every exportable layer and link, exported and run in ONNX Runtime, against the
/// in-process posterior-mean predictor at batch sizes 1, 7 and 4096, in float32 and float64.
module FunctionalBayes.Onnx.Tests.ExportTests

open System
open System.Collections.Generic
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

type private ModelFn = Map<string, Tensor> -> Model<Tensor>

/// Point values for the latents: one prior draw (any point estimate will do for the comparison).
let private pointsOf (m: ModelFn) (data: Map<string, Tensor>) =
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 11UL) (m data)))
    Trace.latents tr |> Array.filter (fun s -> not s.IsObserved) |> Array.map (fun s -> s.Name, s.Value.Value) |> Map.ofArray
    |> Map.filter (fun k _ -> not (k = "y"))

/// Data of n rows: x (n, 4) in [-1, 1], z (n, 3), integer ids g in 0..5 (as floats).
let private dataOf (n: int) =
    let x = Rng.uniform (Rng.key 21UL) [| n; 4 |] * 2.0 - 1.0
    let z = Rng.uniform (Rng.key 22UL) [| n; 3 |] * 2.0 - 1.0
    let g = Rng.categorical (Rng.key 23UL) (Tensor.zeros [| n; 6 |]) |> Tensor.toFloat64
    Map [ "x", x; "z", z; "g", g ]

/// Runs the exported model in ONNX Runtime.
let private runOnnx (bytes: byte[]) (float64: bool) (inputs: Map<string, Tensor>) : Map<string, float[] * int[]> =
    // ORT's Extended/All fusions reassociate arithmetic (seen: 7e-10 relative on attention in
    // float64), so the float64 comparison at 1e-10 runs at the Basic level; float32 runs at the default.
    let level = if float64 then GraphOptimizationLevel.Basic else GraphOptimizationLevel.All
    use p = OnnxPredictor.Load(bytes, PredictorOptions(GraphOptimizationLevel = level))
    let dict = Dictionary<string, OnnxArray>()
    for inp in p.Inputs do
        let t = inputs.[inp.Name]
        let shape = t.Shape |> Array.map int64
        dict.[inp.Name] <- (if float64 then OnnxArray.FromFloat64(Tensor.toArray t, shape) else OnnxArray.FromFloat32(Tensor.toArrayF32 t, shape))
    let out = p.Run(dict)
    out |> Seq.map (fun kv ->
        let v = kv.Value
        let data = if float64 then v.GetData<float>() else v.GetData<float32>() |> Array.map float
        kv.Key, (data, v.GetShape() |> Array.map int))
    |> Map.ofSeq

/// Exports at the default batch of 16 example rows, then compares ORT with the in-process predictor.
let private agree (name: string) (m: ModelFn) (inputs: string list) =
    let example = dataOf 16 |> Map.filter (fun k _ -> List.contains k inputs)
    let points = pointsOf m example
    for float64 in [ false; true ] do
        let opts = { ExportOptions.Default with Float64 = float64 }
        let bytes = Export.toModel opts m points example |> Export.toBytes
        for n in [ 1; 7; 4096 ] do
            let data = dataOf n |> Map.filter (fun k _ -> List.contains k inputs)
            let expected = Export.predict m points data
            let got = runOnnx bytes float64 data
            for site, mean in expected do
                let values, shape = got.[site + "_mean"]
                Assert.Equal<int[]>(mean.Shape, shape)
                let e = Tensor.toArray mean
                let tol = if float64 then 1e-10 else 1e-5
                for i in 0 .. e.Length - 1 do
                    if abs (values.[i] - e.[i]) > tol * (1.0 + abs e.[i]) then
                        failwithf "%s (%s, batch %d): element %d is %.17g in ONNX Runtime and %.17g in process" name (if float64 then "float64" else "float32") n i values.[i] e.[i]

let private gaussianOf (f: Map<string, Tensor> -> Model<Tensor>) : ModelFn =
    fun d -> model {
        let! mu = f d
        return! Links.gaussian "y" mu (d.TryFind "y")
    }

let ``linear layers`` () =
    agree "adaptive + intercept" (gaussianOf (fun d -> model {
        let! a = Layers.adaptive "x" d.["x"]
        let! b = Layers.intercept "b"
        return a + b })) [ "x" ]
    agree "fixed prior, 2 units, tanh" (gaussianOf (fun d -> model {
        let! h = FixedPriorLayer.Default.Call("h", d.["x"], units = 2, activation = Tensor.tanh)
        return! Layers.adaptive "o" h })) [ "x" ]

let ``interaction layers`` () =
    agree "fm" (gaussianOf (fun d -> Layers.fm "fm" d.["x"] 2)) [ "x" ]
    agree "fm3" (gaussianOf (fun d -> Layers.fm3 "fm3" d.["x"] 2)) [ "x" ]
    agree "low-rank interaction" (gaussianOf (fun d -> Layers.lowRankInteraction "lr" d.["x"] d.["z"] 2)) [ "x"; "z" ]
    agree "interaction" (gaussianOf (fun d -> Layers.interaction "ia" d.["x"] d.["z"])) [ "x"; "z" ]
    agree "interaction without z" (gaussianOf (fun d -> InteractionLayer.Default.Call("iu", d.["x"]))) [ "x" ]
    agree "bilinear" (gaussianOf (fun d -> Layers.bilinear "bl" d.["x"] d.["z"])) [ "x"; "z" ]
    agree "low-rank bilinear" (gaussianOf (fun d -> Layers.lowRankBilinear "lb" d.["x"] d.["z"] 2)) [ "x"; "z" ]

let ``categorical layers, through Gather and CumSum`` () =
    agree "embedding" (gaussianOf (fun d -> model {
        let! e = Layers.embedding "e" d.["g"] 6 3
        return Tensor.sumAxes [| 1 |] false e })) [ "g" ]
    agree "random effects" (gaussianOf (fun d -> Layers.randomEffects "re" d.["g"] 6)) [ "g" ]
    agree "random walk" (gaussianOf (fun d -> Layers.randomWalk "rw" d.["g"] 6 1)) [ "g" ]
    agree "random slopes" (gaussianOf (fun d -> Layers.randomSlopes "rs" d.["x"] d.["g"] 6)) [ "x"; "g" ]
    agree "AR(1)" (gaussianOf (fun d -> Layers.ar1 "ar" d.["g"] 6)) [ "g" ]
    agree "fixed effects" (gaussianOf (fun d -> Layers.fixedEffects "fe" d.["g"] 6)) [ "g" ]

let ``sparse, attention and mixture layers`` () =
    agree "horseshoe" (gaussianOf (fun d -> Layers.horseshoe "hs" d.["x"])) [ "x" ]
    agree "regularized horseshoe" (gaussianOf (fun d -> (HorseshoeLayer.Create(slabScale = 2.0)).Call("rhs", d.["x"]))) [ "x" ]
    agree "spike and slab" (gaussianOf (fun d -> Layers.spikeAndSlab "ss" d.["x"])) [ "x" ]
    agree "horseshoe interaction" (gaussianOf (fun d -> Layers.horseshoeInteraction "hi" d.["x"])) [ "x" ]
    agree "attention" (gaussianOf (fun d -> Layers.attention "at" d.["x"])) [ "x" ]
    agree "mixture" (gaussianOf (fun d -> Layers.mixture "mx" d.["x"])) [ "x" ]

let ``every link's mean`` () =
    let withLink (link: string -> Tensor -> Tensor option -> Model<Tensor>) : ModelFn =
        fun d -> model {
            let! mu = Layers.adaptive "x" d.["x"]
            return! link "y" mu (d.TryFind "y")
        }
    let links =
        [ "gaussian", Links.gaussian; "lognormal", Links.lognormal; "studentT", Links.studentT; "logit", Links.logit
          "poisson", Links.poisson; "negativeBinomial", (fun n yh y -> Links.negativeBinomial n (Tensor.exp yh) y)
          "ordinal", Links.ordinal 4; "zeroInflatedPoisson", Links.zeroInflatedPoisson
          "zeroInflatedNegativeBinomial", Links.zeroInflatedNegativeBinomial; "beta", Links.beta
          "gamma", Links.gamma; "exponential", Links.exponential ]
    for name, link in links do
        agree name (withLink link) [ "x" ]
    agree "categorical (softmax)" (fun d -> model {
        let! logits = AdaptiveLayer.Default.Call("x", d.["x"], units = 3)
        return! Links.categorical "y" logits (d.TryFind "y") }) [ "x" ]

/// A GLM likelihood's log density is one fused op (no ONNX form, refused by name); its predictive mean,
/// the link of x·β + α, is what a predictor exports.
let ``GLM likelihoods export their predictive mean`` () =
    for make in [ Dist.bernoulliLogitGlm; Dist.poissonLogGlm ] do
        agree "glm" (fun d -> model {
            let! alpha = Model.sample "alpha" (Dist.normal (Tensor.scalar 0.0) (Tensor.scalar 1.0))
            let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| 4 |]) (Tensor.ones [| 4 |]))
            return! Model.observe "y" (make d.["x"] alpha beta) (d.TryFind "y") }) [ "x" ]
    // the fused op inside a predictor is refused, naming it
    let m (d: Map<string, Tensor>) = model {
        let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| 4 |]) (Tensor.ones [| 4 |]))
        let first = Tensor.narrow 1 0 1 d.["x"]
        let y = Tensor.squeeze -1 first * 0.0
        let ll = Tensor.glmLogLikelihood GlmFamily.BernoulliLogit d.["x"] (Tensor.scalar 0.0) beta y (Tensor.geScalar y 0.0)
        return! Links.gaussian "y" (first * 0.0 + ll) (d.TryFind "y") }
    let example = dataOf 16 |> Map.filter (fun k _ -> k = "x")
    let ex = Assert.Throws<OnnxExportException>(fun () -> Export.toModel ExportOptions.Default m (pointsOf m example) example |> ignore)
    Assert.Contains("glmLogLikelihood", ex.Message)

/// The categorical GLM's predictive mean is its class probabilities softmax(x·β + α) [batch, C], as a
/// categorical link's; its fused log density is refused by name inside a predictor.
let ``the categorical GLM exports its class probabilities`` () =
    let c = 3
    let m (d: Map<string, Tensor>) = model {
        let! alpha = Model.sample "alpha" (Dist.normal (Tensor.zeros [| c |]) (Tensor.ones [| c |]))
        let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| 4; c |]) (Tensor.ones [| 4; c |]))
        return! Model.observe "y" (Dist.categoricalLogitGlm d.["x"] alpha beta) (d.TryFind "y") }
    agree "categorical glm" m [ "x" ]
    // the in-process predictive mean is the class probabilities, computed here from the points
    let data = dataOf 7 |> Map.filter (fun k _ -> k = "x")
    let points = pointsOf m data
    let xa, aa, ba = Tensor.toArray data.["x"], Tensor.toArray points.["alpha"], Tensor.toArray points.["beta"]
    let _, mean = (Export.predict m points data).[0]
    Assert.Equal<int[]>([| 7; c |], mean.Shape)
    let got = Tensor.toArray mean
    for i in 0 .. 6 do
        let eta = Array.init c (fun k -> aa.[k] + Array.fold (+) 0.0 (Array.init 4 (fun j -> xa.[i * 4 + j] * ba.[j * c + k])))
        let z = eta |> Array.sumBy exp
        for k in 0 .. c - 1 do
            let p = exp eta.[k] / z
            if abs (got.[i * c + k] - p) > 1e-12 then failwithf "row %d class %d: %.17g in process, %.17g by hand" i k got.[i * c + k] p
    let inside (d: Map<string, Tensor>) = model {
        let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| 4; c |]) (Tensor.ones [| 4; c |]))
        let first = Tensor.narrow 1 0 1 d.["x"]
        let y = Tensor.squeeze -1 first * 0.0
        let ll = Tensor.categoricalGlmLogLikelihood d.["x"] (Tensor.zeros [| c |]) beta y (Tensor.geScalar y 0.0)
        return! Links.gaussian "y" (first * 0.0 + ll) (d.TryFind "y") }
    let example = dataOf 16 |> Map.filter (fun k _ -> k = "x")
    let ex = Assert.Throws<OnnxExportException>(fun () -> Export.toModel ExportOptions.Default inside (pointsOf inside example) example |> ignore)
    Assert.Contains("categoricalGlmLogLikelihood", ex.Message)

let ``the exported model is named after the data and sites, at IR 8 and opset 17`` () =
    let m = gaussianOf (fun d -> Layers.adaptive "x" d.["x"])
    let example = dataOf 8 |> Map.filter (fun k _ -> k = "x")
    let onnx = Export.toModel ExportOptions.Default m (pointsOf m example) example
    Assert.Equal(8L, onnx.IrVersion)
    Assert.Equal(17L, onnx.OpsetImport.[0].Version)
    Assert.Equal("FunctionalBayes", onnx.ProducerName)
    Assert.Equal("x", onnx.Graph.Input.[0].Name)
    Assert.Equal("batch", onnx.Graph.Input.[0].Type.TensorType.Shape.Dim.[0].DimParam)
    Assert.Equal(4L, onnx.Graph.Input.[0].Type.TensorType.Shape.Dim.[1].DimValue)
    Assert.Equal("y_mean", onnx.Graph.Output.[0].Name)
    let meta = onnx.MetadataProps |> Seq.map (fun e -> e.Key, e.Value) |> Map.ofSeq
    Assert.Contains("AdaptiveLayer_x_beta", meta.["functionalbayes.sites"])
    use p = OnnxPredictor.Load(Export.toBytes onnx)
    Assert.Equal("x", p.Inputs.[0].Name)
    Assert.Equal(OnnxElementType.Float32, p.Inputs.[0].ElementType)

let ``layers without an ONNX form are refused by name`` () =
    let x = Tensor.linspace 0.0 1.0 20
    let ps (d: Map<string, Tensor>) = model {
        let! f = Layers.pspline "s" d.["x"] (Splines.makeKnots (Tensor.toArray x) 4 3)
        return! Links.gaussian "y" f (d.TryFind "y")
    }
    let example = Map [ "x", x ]
    let ex = Assert.Throws<OnnxExportException>(fun () -> Export.toModel ExportOptions.Default ps (pointsOf ps example) example |> ignore)
    Assert.Contains("PSplineLayer 's'", ex.Message)
    Assert.Contains("host", ex.Message)
    let hs (d: Map<string, Tensor>) = model {
        let! f = Layers.hsgp "gp" d.["x"] 1.5 5
        return! Links.gaussian "y" f (d.TryFind "y")
    }
    let ex = Assert.Throws<OnnxExportException>(fun () -> Export.toModel ExportOptions.Default hs (pointsOf hs example) example |> ignore)
    Assert.Contains("HSGPLayer 'gp'", ex.Message)

[<Tests>]
let tests =
    testList "ExportTests" [
        testCase "linear layers" ``linear layers``
        testCase "interaction layers" ``interaction layers``
        testCase "categorical layers, through Gather and CumSum" ``categorical layers, through Gather and CumSum``
        testCase "sparse, attention and mixture layers" ``sparse, attention and mixture layers``
        testCase "every link's mean" ``every link's mean``
        testCase "GLM likelihoods export their predictive mean" ``GLM likelihoods export their predictive mean``
        testCase "the categorical GLM exports its class probabilities" ``the categorical GLM exports its class probabilities``
        testCase "the exported model is named after the data and sites, at IR 8 and opset 17" ``the exported model is named after the data and sites, at IR 8 and opset 17``
        testCase "layers without an ONNX form are refused by name" ``layers without an ONNX form are refused by name``
    ]
