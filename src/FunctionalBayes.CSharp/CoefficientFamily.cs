using Microsoft.FSharp.Core;
using FDist = FunctionalBayes.Distribution;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// A family of coefficient priors that takes a scale: a layer builds its coefficients' prior from the
/// family and its (sampled) scale, for example Normal(0, scale) or Laplace(0, scale).
/// </summary>
public sealed class CoefficientFamily
{
    private CoefficientFamily(ScaleFamily value) => Value = value;

    internal ScaleFamily Value { get; }

    internal static CoefficientFamily Wrap(ScaleFamily f) => new(f);

    /// <summary>Normal(<paramref name="loc"/>, scale): BLayers' default.</summary>
    /// <param name="loc">The location.</param>
    public static CoefficientFamily Normal(double loc = 0.0) => new(ScaleFamily.NewNormal(loc));

    /// <summary>Laplace(<paramref name="loc"/>, scale): a sparser, lasso-like prior.</summary>
    /// <param name="loc">The location.</param>
    public static CoefficientFamily Laplace(double loc = 0.0) => new(ScaleFamily.NewLaplace(loc));

    /// <summary>Cauchy(<paramref name="loc"/>, scale): heavy tails.</summary>
    /// <param name="loc">The location.</param>
    public static CoefficientFamily Cauchy(double loc = 0.0) => new(ScaleFamily.NewCauchy(loc));

    /// <summary>StudentT(<paramref name="df"/>, <paramref name="loc"/>, scale).</summary>
    /// <param name="df">Degrees of freedom (positive).</param>
    /// <param name="loc">The location.</param>
    public static CoefficientFamily StudentT(double df, double loc = 0.0) => new(ScaleFamily.NewStudentT(df, loc));

    /// <summary>Logistic(<paramref name="loc"/>, scale).</summary>
    /// <param name="loc">The location.</param>
    public static CoefficientFamily Logistic(double loc = 0.0) => new(ScaleFamily.NewLogistic(loc));

    /// <summary>Any family: a function from the scale array to a prior.</summary>
    /// <param name="name">A name for messages.</param>
    /// <param name="make">Builds the prior at a scale.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static CoefficientFamily Custom(string name, Func<NdArray, Prior> make)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(make);
        return new(ScaleFamily.NewCustom(name, FuncConvert.FromFunc<FTensor?, FDist>(s =>
            (make(NdArray.Wrap(s)) ?? throw new InvalidOperationException($"CoefficientFamily '{name}' returned a null prior.")).Value)));
    }

    /// <summary>The family's prior at a given scale (validated).</summary>
    /// <param name="scale">The scale.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scale"/> is null.</exception>
    public Prior AtScale(NdArray scale)
    {
        ArgumentNullException.ThrowIfNull(scale);
        return Prior.Wrap(Value.WithScale(scale.Value));
    }

    /// <inheritdoc />
    public override string ToString() => Value.IsCustom ? ((ScaleFamily.Custom)Value).name : Value.ToString();
}
