using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The F# core's newer modelling pieces reach C#: GLM-form likelihoods, LKJ, flat and constrained
/// priors, truncation, Cholesky and the GP kernels, each against a closed form.</summary>
public class ModelingHookTests
{
    private static double LogProb(Prior p, NdArray x) => p.LogProb(x).Sum().ToArray()[0];

    private static double LogFactorial(int k) => Enumerable.Range(1, k).Sum(i => Math.Log(i));

    [Fact]
    public void PoissonLogIsPoissonAtExpOfTheLogRate()
    {
        // log p(k | λ = e^η) = kη − e^η − log k!
        foreach (var (eta, k) in new[] { (-3.0, 0), (0.5, 2), (4.0, 60) })
            Assert.Equal(k * eta - Math.Exp(eta) - LogFactorial(k), LogProb(Prior.PoissonLog(eta), k), 9);
    }

    [Fact]
    public void NegativeBinomialLogIsNegBinomial2AtExpOfTheLogMean()
    {
        // neg_binomial_2(k | μ, φ) = Γ(k+φ)/(k! Γ(φ)) (φ/(μ+φ))^φ (μ/(μ+φ))^k
        const double eta = 1.2, phi = 3.5;
        const int k = 4;
        var mu = Math.Exp(eta);
        var expected = MathNet.Numerics.SpecialFunctions.GammaLn(k + phi) - LogFactorial(k) - MathNet.Numerics.SpecialFunctions.GammaLn(phi)
                       + phi * Math.Log(phi / (mu + phi)) + k * Math.Log(mu / (mu + phi));
        Assert.Equal(expected, LogProb(Prior.NegativeBinomialLog(eta, phi), k), 9);
        Assert.Throws<ArgumentException>(() => Prior.NegativeBinomialLog(eta, -1.0));
    }

    [Fact]
    public void BernoulliLogitGlmIsTheSumOfBernoulliLogMassesAtTheLinearPredictor()
    {
        // log p(y) = Σᵢ yᵢ log σ(ηᵢ) + (1 − yᵢ) log σ(−ηᵢ), η = x·β + α
        var x = new double[,] { { 0.5, -1.0 }, { 2.0, 0.25 }, { -0.3, 0.8 } };
        double[] beta = { 0.7, -0.4 }, y = { 1, 0, 1 };
        const double alpha = 0.2;
        var expected = 0.0;
        for (var i = 0; i < 3; i++)
        {
            var eta = alpha + x[i, 0] * beta[0] + x[i, 1] * beta[1];
            expected += y[i] == 1 ? -Math.Log(1 + Math.Exp(-eta)) : -Math.Log(1 + Math.Exp(eta));
        }
        var glm = Prior.BernoulliLogitGlm(NdArray.FromMatrix(x), alpha, NdArray.FromArray(beta));
        Assert.Equal(expected, LogProb(glm, NdArray.FromArray(y)), 12);
        Assert.Equal(double.NegativeInfinity, LogProb(glm, NdArray.FromArray(new[] { 1.0, 2.0, 0.0 })));
        var ex = Assert.Throws<ArgumentException>(() => Prior.BernoulliLogitGlm(NdArray.FromMatrix(x), alpha, NdArray.FromArray(new[] { 1.0 })));
        Assert.Contains("beta", ex.Message);
    }

    [Fact]
    public void CategoricalLogitGlmIsTheSumOfCategoricalLogMassesAtTheLinearPredictors()
    {
        // log p(y) = Σᵢ ηᵢ[yᵢ] − log Σₖ exp ηᵢₖ, η = x·β + α (α one intercept per class, β [d, C])
        var x = new double[,] { { 0.5, -1.0 }, { 2.0, 0.25 }, { -0.3, 0.8 } };
        var beta = new double[,] { { 0.7, -0.4, 0.1 }, { 0.2, 0.3, -0.5 } };
        double[] alpha = { 0.2, -0.1, 0.0 }, y = { 2, 0, 1 };
        var expected = 0.0;
        for (var i = 0; i < 3; i++)
        {
            var eta = new double[3];
            for (var k = 0; k < 3; k++) eta[k] = alpha[k] + x[i, 0] * beta[0, k] + x[i, 1] * beta[1, k];
            expected += eta[(int)y[i]] - Math.Log(Math.Exp(eta[0]) + Math.Exp(eta[1]) + Math.Exp(eta[2]));
        }
        var glm = Prior.CategoricalLogitGlm(NdArray.FromMatrix(x), NdArray.FromArray(alpha), NdArray.FromMatrix(beta));
        Assert.Equal(expected, LogProb(glm, NdArray.FromArray(y)), 12);
        Assert.Equal(double.NegativeInfinity, LogProb(glm, NdArray.FromArray(new[] { 1.0, 3.0, 0.0 })));
        var ex = Assert.Throws<ArgumentException>(() => Prior.CategoricalLogitGlm(NdArray.FromMatrix(x), NdArray.FromArray(new[] { 0.0, 0.0 }), NdArray.FromMatrix(beta)));
        Assert.Contains("alpha", ex.Message);
    }

    [Fact]
    public void LkjCholeskyOfDimensionTwoIsTheCorrelationsDensityAtZero()
    {
        // d = 2: ρ has density (1 − ρ²)^(η−1) / (2^(2η−1) B(η, η)); at ρ = 0 (L = I), for η = 2: 1 / (8 · 1/6) = 0.75.
        var identity = NdArray.FromMatrix(new double[,] { { 1, 0 }, { 0, 1 } });
        Assert.Equal(Math.Log(0.75), LogProb(Prior.LkjCholesky(2, 2.0), identity), 9);
        Assert.Throws<ArgumentException>(() => Prior.LkjCholesky(1, 1.0));
    }

    [Fact]
    public void WishartAndInverseWishartAtTheIdentity()
    {
        // p = 2, ν = 3, scale I, at X = I: −½ tr(I) − (νp/2) log 2 − log Γ₂(3/2), with Γ₂(3/2) = √π Γ(3/2) Γ(1) = π/2.
        var identity = NdArray.FromMatrix(new double[,] { { 1, 0 }, { 0, 1 } });
        var expected = -1.0 - 3.0 * Math.Log(2.0) - Math.Log(Math.PI / 2.0);
        Assert.Equal(expected, LogProb(Prior.Wishart(3.0, identity), identity), 12);
        Assert.Equal(expected, LogProb(Prior.InverseWishart(3.0, identity), identity), 12);
        // a symmetric matrix that is not positive definite is off the support; a bad scale or ν is refused
        var indefinite = NdArray.FromMatrix(new double[,] { { 1, 2 }, { 2, 1 } });
        Assert.Equal(double.NegativeInfinity, LogProb(Prior.Wishart(3.0, identity), indefinite));
        Assert.Throws<ArgumentException>(() => Prior.InverseWishart(3.0, indefinite));
        Assert.Throws<ArgumentException>(() => Prior.Wishart(0.5, identity));
    }

    [Fact]
    public void ImproperUniformIsFlatOnItsSupportAndCannotBeDrawn()
    {
        var flat = Prior.ImproperUniform(ParamConstraint.Positive, 3);
        Assert.Equal(0.0, LogProb(flat, NdArray.FromArray(new[] { 0.5, 2.0, 30.0 })));
        Assert.Equal(double.NegativeInfinity, LogProb(flat, NdArray.FromArray(new[] { 0.5, -2.0, 30.0 })));
        Assert.ThrowsAny<Exception>(() => flat.Sample(1));
        Assert.Throws<ArgumentException>(() => Prior.ImproperUniform(ParamConstraint.Simplex));
    }

    [Fact]
    public void RestrictedKeepsTheDensityAndTruncatedRenormalizes()
    {
        // Normal(0, 1) at 0.5: −½ log 2π − 0.125; truncated to (0, ∞) it is doubled.
        var normalAt = -0.5 * Math.Log(2 * Math.PI) - 0.125;
        var n = Prior.Normal(0.0, 1.0);
        Assert.Equal(normalAt, LogProb(n.RestrictedTo(ParamConstraint.Positive), 0.5), 12);
        Assert.Equal(normalAt + Math.Log(2), LogProb(n.Truncated(0.0, null), 0.5), 12);
        Assert.Equal(double.NegativeInfinity, LogProb(n.Truncated(0.0, null), -0.5));
        // Exponential(1) truncated to (0, 1): e^−x / (1 − e^−1).
        Assert.Equal(-0.25 - Math.Log(1 - Math.Exp(-1)), LogProb(Prior.Exponential(1.0).Truncated(null, 1.0), 0.25), 12);
        // half of a Cauchy(0, 1): 2 / (π (1 + x²))
        Assert.Equal(Math.Log(2 / (Math.PI * 1.25)), LogProb(Prior.Cauchy(0.0, 1.0).Truncated(0.0, null), 0.5), 12);
        Assert.Throws<ArgumentException>(() => n.Truncated(1.0, 0.0));
        Assert.Throws<NotSupportedException>(() => Prior.Beta(2.0, 1.0).Truncated(0.1, 0.9));
    }

    [Fact]
    public void StudentTAndGammaPriorsCanBeTruncated()
    {
        // half Student-t(3, 0, 2.5): twice the t₃ density 2/(π√3)·(1 + z²/3)⁻²/2.5 at z = x/2.5
        var halfT = Prior.StudentT(3.0, 0.0, 2.5).Truncated(0.0, null);
        var z = 1.0 / 2.5;
        Assert.Equal(Math.Log(2 * 2 / (Math.PI * Math.Sqrt(3)) * Math.Pow(1 + z * z / 3, -2) / 2.5), LogProb(halfT, 1.0), 12);
        Assert.Equal(double.NegativeInfinity, LogProb(halfT, -0.5));
        Assert.All(halfT.Sample(5UL, 200).ToArray(), v => Assert.True(v >= 0.0));
        // Gamma(3, 1) below 2: x² e⁻ˣ/2 over P(3, 2) = 1 − 5e⁻²
        var gamma = Prior.Gamma(3.0, 1.0).Truncated(null, 2.0);
        Assert.Equal(Math.Log(0.25 * Math.Exp(-0.5) / 2) - Math.Log(1 - 5 * Math.Exp(-2)), LogProb(gamma, 0.5), 12);
        Assert.All(gamma.Sample(6UL, 200).ToArray(), v => Assert.True(v >= 0.0 && v <= 2.0));
    }

    [Fact]
    public void CholeskyAndTheGpKernelsMatchTheirClosedForms()
    {
        var l = NdArray.FromMatrix(new double[,] { { 4, 2 }, { 2, 3 } }).Cholesky().ToArray();
        foreach (var (e, a) in new[] { 2.0, 0.0, 1.0, Math.Sqrt(2.0) }.Zip(l)) Assert.Equal(e, a, 12);
        Assert.Throws<ArgumentException>(() => NdArray.FromMatrix(new double[,] { { 1, 2 }, { 2, 1 } }).Cholesky());
        var x = NdArray.FromArray(new[] { 0.0, 1.5 });
        const double alpha = 2.0, rho = 0.7, d = 1.5;
        var k = GaussianProcess.ExpQuad(alpha, rho, x, x).ToArray();
        Assert.Equal(alpha * alpha * Math.Exp(-d * d / (2 * rho * rho)), k[1], 12);
        Assert.Equal(alpha * alpha, k[0], 12);
        var r3 = Math.Sqrt(3) * d / rho;
        Assert.Equal(alpha * alpha * (1 + r3) * Math.Exp(-r3), GaussianProcess.Matern32(alpha, rho, x, x).ToArray()[1], 12);
        var r5 = Math.Sqrt(5) * d / rho;
        Assert.Equal(alpha * alpha * (1 + r5 + r5 * r5 / 3) * Math.Exp(-r5), GaussianProcess.Matern52(alpha, rho, x, x).ToArray()[2], 12);
        const double ell = 0.9, period = 2.5;
        var s = Math.Sin(Math.PI * d / period);
        Assert.Equal(alpha * alpha * Math.Exp(-2 * s * s / (ell * ell)), GaussianProcess.Periodic(alpha, ell, period, x, x).ToArray()[1], 12);
        var jittered = GaussianProcess.AddDiagonal(GaussianProcess.ExpQuad(alpha, rho, x, x), 1e-6).ToArray();
        Assert.Equal(alpha * alpha + 1e-6, jittered[3], 12);
        Assert.Throws<ArgumentException>(() => GaussianProcess.AddDiagonal(NdArray.FromArray(new[] { 1.0, 2.0 }), 1e-6));
    }

    private static BayesModel<NdArray> GpRegression(DataSet d) =>
        from alpha in Bayes.Sample("alpha", Prior.HalfNormal(2.0))
        from rho in Bayes.Sample("rho", Prior.HalfNormal(2.0))
        from sigma in Bayes.Sample("sigma", Prior.HalfNormal(1.0))
        let cov = GaussianProcess.AddDiagonal(GaussianProcess.ExpQuad(alpha, rho, d["x"], d["x"]), sigma * sigma + 1e-9)
        from obs in Bayes.Observe("y", Prior.MultivariateNormalCholesky(NdArray.Zeros(d["x"].Shape[0]), cov.Cholesky()), d.GetOrNull("y"))
        select obs;

    [Fact]
    public void AGpRegressionSamples()
    {
        // y ~ MVN(0, K(x; α, ρ) + σ²I) with α, ρ, σ half-normal: NUTS reaches the truth's neighbourhood.
        var x = NdArray.FromArray(Enumerable.Range(0, 12).Select(i => i / 2.0).ToArray());
        var y = NdArray.FromArray(Enumerable.Range(0, 12).Select(i => Math.Sin(i / 2.0)).ToArray());
        var data = new DataSet().Add("x", x).Add("y", y);
        var fitted = new NutsSampler(GpRegression, data).WithChains(1).WithWarmup(300).WithSamples(300).WithSeed(2).Sample();
        var rho = fitted.Summary().Single(s => s.Name == "rho").Mean[0];
        // sin has a length scale near 1 on this grid; the posterior mean lies well inside (0.3, 3).
        Assert.InRange(rho, 0.3, 3.0);
        Assert.All(fitted.Posterior()["sigma"].ToArray(), s => Assert.True(s > 0));
    }
}
