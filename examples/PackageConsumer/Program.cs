// A user's program against the packed FunctionalBayes.CSharp: fit intercept + adaptive(x) with a Gaussian link
// by SVI on simulated data, check the coefficients and export the posterior-mean predictor to ONNX. Built with
// -p:FbSatellites=true it also runs the exported model in ONNX Runtime (FunctionalBayes.CSharp.OnnxRuntime) and
// writes the report (FunctionalBayes.CSharp.Reporting). Prints "consumer: ok" when the checks pass; exits 1 otherwise.
using System.Globalization;
using FunctionalBayes.Fluent;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var onnxPath = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "package-consumer.onnx");

const int n = 400, d = 3;
double[] beta = [1.0, -0.5, 0.25];
const double bias = 0.3, sigma = 0.2;
var keys = RandomKey.FromSeed(42UL).Split(2);
var x = keys[0].Normal(n, d);
var y = bias + x.MatMul(NdArray.FromArray(beta)) + sigma * keys[1].Normal(n);
var data = new DataSet().Add("x", x).Add("y", y);

static BayesModel<NdArray> Regression(DataSet data) =>
    from b in Layer.Intercept().Apply("b")
    from lin in Layer.Adaptive().Apply("x", data["x"])
    from y in Link.Gaussian("y", b + lin, data.GetOrNull("y"))
    select y;

var fitted = new SviFitter(Regression, data).WithLearningRate(0.05).ForSteps(1500).WithSeed(1).Fit();
var summary = fitted.Summary(samples: 500, seed: 2);
var estimate = summary.Single(s => s.Name == "InterceptLayer_b_beta").Mean
    .Concat(summary.Single(s => s.Name == "AdaptiveLayer_x_beta").Mean).ToArray();
var truth = new[] { bias }.Concat(beta).ToArray();
var maxCoefErr = truth.Zip(estimate, (a, b) => Math.Abs(a - b)).Max();

var newRows = new DataSet().Add("x", RandomKey.FromSeed(7UL).Normal(64, d));
fitted.ExportOnnx(onnxPath, newRows);
var inProcess = fitted.PredictPosteriorMean(newRows)["y_mean"].ToArray();
var exported = new FileInfo(onnxPath).Length;
Console.WriteLine($"coefficients {string.Join(", ", estimate.Select(v => v.ToString("F3")))} (truth {string.Join(", ", truth)}), max error {maxCoefErr:G3}");
Console.WriteLine($"exported {onnxPath} ({exported} bytes); in-process posterior-mean predictions of {inProcess.Length} rows");
var ok = maxCoefErr < 0.1 && exported > 0 && inProcess.Length == 64;
#if SATELLITES
using var predictor = OnnxModels.Load(onnxPath);
var fromOnnx = predictor.Run(newRows)["y_mean"].ToArray();
var maxDiff = inProcess.Select((v, i) => Math.Abs(fromOnnx[i] - v)).Max();
var report = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(onnxPath))!, "report", "report.html");
fitted.SaveReport(report, data, samples: 200);
Console.WriteLine($"ONNX Runtime {predictor.RuntimeVersion} agrees with the in-process predictor to {maxDiff:G3} on 64 rows; report {new FileInfo(report).Length} bytes");
// float32 rounding of outputs near 1 is ~1e-7
ok = ok && maxDiff < 1e-4 && new FileInfo(report).Length > 0;
#endif
// 400 rows and noise 0.2: the posterior sds are about 0.01, so 0.1 is ten of them.
if (ok)
{
    Console.WriteLine("consumer: ok");
    return 0;
}
Console.WriteLine("consumer: FAILED");
return 1;
