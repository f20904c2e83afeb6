namespace FunctionalBayes

open FunctionalBayes.Tensors

/// A family of coefficient priors that takes a scale: the coefficient prior of a layer is built from
/// the family and the (sampled or fixed) scale. Any distribution that takes a scale can be used.
[<RequireQualifiedAccess>]
type ScaleFamily =
    /// Normal(loc, scale).
    | Normal of loc: float
    /// Laplace(loc, scale).
    | Laplace of loc: float
    /// Cauchy(loc, scale).
    | Cauchy of loc: float
    /// StudentT(df, loc, scale).
    | StudentT of df: float * loc: float
    /// Logistic(loc, scale).
    | Logistic of loc: float
    /// Any family: a function from the scale tensor to a distribution.
    | Custom of name: string * make: (Tensor -> Distribution)

    /// The family's distribution at a scale (validated).
    member f.WithScale(scale: Tensor) : Distribution =
        let loc (v: float) = Tensor.fullOf scale.Dtype [||] v
        match f with
        | Normal l -> Dist.normal (loc l) scale
        | Laplace l -> Dist.laplace (loc l) scale
        | Cauchy l -> Dist.cauchy (loc l) scale
        | StudentT (df, l) -> Dist.studentT (loc df) (loc l) scale
        | Logistic l -> Dist.logistic (loc l) scale
        | Custom (_, make) -> make scale

    /// The same as WithScale, without validation (for the hot path once settings are checked).
    member f.WithScaleUnchecked(scale: Tensor) : Distribution =
        let loc (v: float) = Tensor.fullOf scale.Dtype [||] v
        match f with
        | Normal l -> Distribution.Normal (loc l, scale)
        | Laplace l -> Distribution.Laplace (loc l, scale)
        | Cauchy l -> Distribution.Cauchy (loc l, scale)
        | StudentT (df, l) -> Distribution.StudentT (loc df, loc l, scale)
        | Logistic l -> Distribution.Logistic (loc l, scale)
        | Custom (_, make) -> make scale

    /// Raises a clear error, naming the layer, if the family cannot be built at scale 1.
    member f.Validate(layer: string) =
        try f.WithScale(Tensor.scalar 1.0) |> ignore
        with :? System.ArgumentException as e ->
            invalidArg "coef" (sprintf "%s: invalid coefficient prior %A: %s" layer f e.Message)
