// QuickStart in C#: BLayers' README model, intercept + adaptive(x) + adaptive(x²) + FM(x, rank 3) with a
// Gaussian link, fitted by SVI with the minibatch ELBO to simulated data (N = 10 000, d = 5). The data,
// model, fit settings and seeds are those of examples/QuickStart (F#), so the figures are comparable.
using System.Diagnostics;
using System.Globalization;
using FunctionalBayes.Fluent;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

var (outDir, epochs, seed) = (".", 300, 0UL);
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--out" when i + 1 < args.Length: outDir = args[++i]; break;
        case "--epochs" when i + 1 < args.Length: epochs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--seed" when i + 1 < args.Length: seed = ulong.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]} (use --out DIR, --epochs N, --seed S)");
            return 2;
    }
}

const int n = 10_000, d = 5;
// the truth
const double bias = 0.7, sigma = 0.5;
double[] beta1 = [1.5, -2.0, 0.5, 0.0, 1.0];
double[] beta2 = [0.3, 0.0, -0.4, 0.2, 0.0];
var theta = NdArray.Create([d, 3, 1], [0.6, -0.2, 0.1, 0.3, 0.5, -0.4, -0.5, 0.1, 0.2, 0.2, -0.3, 0.4, 0.1, 0.2, -0.6]);
var keys = RandomKey.FromSeed(20261121UL).Split(2);
var x = keys[0].Normal(n, d);
var fmTrue = Layer.FM().Apply("fm", x, lowRankDim: 3)
    .Substitute(new Dictionary<string, NdArray> { ["FMLayer_fm_scale"] = NdArray.Ones(1), ["FMLayer_fm_theta"] = theta })
    .Trace().Result;
var mean = bias + x.MatMul(NdArray.FromArray(beta1)) + x.Square().MatMul(NdArray.FromArray(beta2)) + fmTrue.Flatten();
var y = mean + sigma * keys[1].Normal(n);
var data = new DataSet().Add("x", x).Add("y", y);

const int batch = 1000;
var fitter = new SviFitter(QuickStartModel, data)
    .WithLearningRate(0.05, LearningRateSchedule.WarmupCosine)
    .ForEpochs(epochs, batch)
    .WithSeed(seed);
Console.WriteLine($"Fitting intercept + adaptive(x) + adaptive(x²) + FM(x, rank 3), N = {n}, d = {d}: {epochs} epochs of batch {batch} ({fitter.TotalSteps} steps)");
var sw = Stopwatch.StartNew();
var fitted = fitter.Fit(new ConsoleProgressBar());
var seconds = sw.Elapsed.TotalSeconds;

var summary = fitted.Summary(samples: 1000, seed: 2);
Console.WriteLine();
Console.WriteLine($"{"site",-26} {"mean",10} {"sd",10} {"5%",10} {"95%",10}");
foreach (var s in summary)
    for (var i = 0; i < s.Mean.Count; i++)
        Console.WriteLine($"{s.Label(i),-26} {s.Mean[i],10:F4} {s.Sd[i],10:F4} {s.Q5[i],10:F4} {s.Q95[i],10:F4}");

IReadOnlyList<double> Est(string name) => summary.Single(s => s.Name == name).Mean;
var truth = new[] { bias }.Concat(beta1).Concat(beta2).Concat(PairWeights(theta)).ToArray();
var estimate = Est("InterceptLayer_b_beta").Concat(Est("AdaptiveLayer_x_beta")).Concat(Est("AdaptiveLayer_x2_beta"))
    .Concat(PairWeights(NdArray.Create(summary.Single(s => s.Name == "FMLayer_fm_theta").Shape, Est("FMLayer_fm_theta")))).ToArray();
var rmse = Math.Sqrt(truth.Zip(estimate, (a, b) => (a - b) * (a - b)).Average());
var sigmaHat = Est("y_sigma")[0];
Console.WriteLine();
Console.WriteLine($"Recovered {truth.Length} coefficients (intercept, linear, quadratic, FM pairs): RMSE {rmse:F4}; sigma {sigmaHat:F4} (true {sigma:F2})");

Directory.CreateDirectory(outDir);
fitted.Save(Path.Combine(outDir, "quickstart-posterior.json"));

// Export the posterior-mean predictor and check ONNX Runtime against it on 256 held-out rows
// (the same rows and posterior draws as the F# QuickStart).
var heldOut = new DataSet().Add("x", RandomKey.FromSeed(7).Normal(256, 5));
var onnxPath = Path.Combine(outDir, "quickstart.onnx");
fitted.ExportOnnx(onnxPath, heldOut);
var inProcess = fitted.PredictPosteriorMean(heldOut)["y_mean"].ToArray();
using var predictor = OnnxModels.Load(onnxPath);
var fromOnnx = predictor.Run("x", heldOut["x"].ToArray().Select(v => (float)v).ToArray(), [256, 5], out _);
var maxDiff = inProcess.Select((v, i) => Math.Abs(fromOnnx[i] - v)).Max();
Console.WriteLine($"Exported {onnxPath}; ONNX Runtime {predictor.RuntimeVersion} agrees with the in-process predictor to {maxDiff:G2} on 256 held-out rows.");

Console.WriteLine($$"""{"coef_rmse":{{R(rmse)}},"sigma_abs_err":{{R(Math.Abs(sigmaHat - sigma))}},"fit_seconds":{{R(seconds)}},"steps":{{fitted.Losses.Count}},"onnx_max_abs_diff":{{R(maxDiff)}}}""");
return 0;

// The model, as in BLayers' README.
static BayesModel<NdArray> QuickStartModel(DataSet data)
{
    var x = data["x"];
    return from b in Layer.Intercept().Apply("b")
           from lin in Layer.Adaptive().Apply("x", x)
           from quad in Layer.Adaptive().Apply("x2", x.Square())
           from fm in Layer.FM().Apply("fm", x, lowRankDim: 3)
           from y in Link.Gaussian("y", b + lin + quad + fm, data.GetOrNull("y"))
           select y;
}

// The FM's pairwise weights ⟨θ_i, θ_j⟩, i < j, from a (d, l, 1) factor array.
static double[] PairWeights(NdArray theta)
{
    var d = theta.Shape[0];
    var v = theta.Reshape(d, -1);
    var g = v.MatMul(v.Transpose()).ToArray();
    var w = new List<double>();
    for (var i = 0; i < d - 1; i++)
        for (var j = i + 1; j < d; j++)
            w.Add(g[i * d + j]);
    return w.ToArray();
}

static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);

/// <summary>A progress bar on the console; reports arrive on the fitting thread, in order.</summary>
sealed class ConsoleProgressBar : IProgress<FitProgress>
{
    private const int Width = 40;

    public void Report(FitProgress p)
    {
        var filled = Width * p.Step / p.TotalSteps;
        Console.Write($"\r[{new string('#', filled)}{new string('.', Width - filled)}] {p.Step,5}/{p.TotalSteps}  loss {p.Loss,12:F2}  eta {p.Eta.TotalSeconds,4:F1}s ");
        if (p.Step == p.TotalSteps) Console.WriteLine();
    }
}
