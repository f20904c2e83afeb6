using FGp = FunctionalBayes.Gp;

namespace FunctionalBayes.Fluent;

/// <summary>
/// Gaussian-process covariance functions as Stan writes them, differentiable in the inputs and the
/// hyperparameters (use them inside a model). Inputs are [N] (one feature) or [N, D]; the result is the
/// [N1, N2] cross-covariance. With <see cref="Prior.MultivariateNormal"/>, or <see cref="NdArray.Cholesky"/> and
/// <see cref="Prior.MultivariateNormalCholesky"/>, they give a GP prior.
/// </summary>
public static class GaussianProcess
{
    private static FunctionalBayes.Tensors.Tensor A(NdArray? a, string name) =>
        (a ?? throw new ArgumentNullException(name, $"The Gaussian-process argument '{name}' is null.")).Value;

    /// <summary>Exponentiated quadratic α² exp(−d²/(2ρ²)) (Stan's gp_exp_quad_cov).</summary>
    /// <param name="alpha">The marginal standard deviation α.</param>
    /// <param name="rho">The length scale ρ.</param>
    /// <param name="x1">Inputs [N1] or [N1, D].</param>
    /// <param name="x2">Inputs [N2] or [N2, D].</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    public static NdArray ExpQuad(NdArray alpha, NdArray rho, NdArray x1, NdArray x2) =>
        NdArray.Wrap(FGp.expQuad(A(alpha, nameof(alpha)), A(rho, nameof(rho)), A(x1, nameof(x1)), A(x2, nameof(x2))));

    /// <summary>Matérn 3/2: α² (1 + √3 d/ρ) exp(−√3 d/ρ) (Stan's gp_matern32_cov).</summary>
    /// <inheritdoc cref="ExpQuad" path="/param"/>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    public static NdArray Matern32(NdArray alpha, NdArray rho, NdArray x1, NdArray x2) =>
        NdArray.Wrap(FGp.matern32(A(alpha, nameof(alpha)), A(rho, nameof(rho)), A(x1, nameof(x1)), A(x2, nameof(x2))));

    /// <summary>Matérn 5/2: α² (1 + √5 d/ρ + 5d²/(3ρ²)) exp(−√5 d/ρ) (Stan's gp_matern52_cov).</summary>
    /// <inheritdoc cref="ExpQuad" path="/param"/>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    public static NdArray Matern52(NdArray alpha, NdArray rho, NdArray x1, NdArray x2) =>
        NdArray.Wrap(FGp.matern52(A(alpha, nameof(alpha)), A(rho, nameof(rho)), A(x1, nameof(x1)), A(x2, nameof(x2))));

    /// <summary>Periodic: α² exp(−2 sin²(π d/p)/ℓ²) (Stan's gp_periodic_cov).</summary>
    /// <param name="alpha">The marginal standard deviation α.</param>
    /// <param name="lengthScale">The length scale ℓ.</param>
    /// <param name="period">The period p.</param>
    /// <param name="x1">Inputs [N1] or [N1, D].</param>
    /// <param name="x2">Inputs [N2] or [N2, D].</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    public static NdArray Periodic(NdArray alpha, NdArray lengthScale, NdArray period, NdArray x1, NdArray x2) =>
        NdArray.Wrap(FGp.periodic(A(alpha, nameof(alpha)), A(lengthScale, nameof(lengthScale)), A(period, nameof(period)), A(x1, nameof(x1)), A(x2, nameof(x2))));

    /// <summary>K + δ·I: jitter or a noise variance on the diagonal of a square covariance.</summary>
    /// <param name="covariance">A square covariance [N, N].</param>
    /// <param name="delta">δ (a number or a broadcastable array).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The covariance is not square.</exception>
    public static NdArray AddDiagonal(NdArray covariance, NdArray delta) =>
        NdArray.Wrap(FGp.addDiagonal(A(delta, nameof(delta)), A(covariance, nameof(covariance))));
}
