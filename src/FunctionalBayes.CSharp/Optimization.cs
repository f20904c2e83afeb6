namespace FunctionalBayes.Fluent;

/// <summary>BLayers' learning-rate schedules for <see cref="SviFitter.WithLearningRate"/>, sized to the whole run.</summary>
public enum LearningRateSchedule
{
    /// <summary>Cosine decay from the learning rate to zero over the run (BLayers' default).</summary>
    Cosine,
    /// <summary>One cycle: warm up to the learning rate over 10 % of the run, then cosine down (div factor 25).</summary>
    WarmupCosine,
    /// <summary>The same learning rate at every step.</summary>
    Constant,
}

/// <summary>The variational families a fit can use (NumPyro's autoguides).</summary>
public enum GuideKind
{
    /// <summary>Per site: a Normal on unconstrained space, mapped onto the site's support.</summary>
    AutoNormal,
    /// <summary>All latents flattened into one vector with a diagonal Normal (BLayers' default).</summary>
    AutoDiagonalNormal,
    /// <summary>All latents flattened into one vector with a full-covariance Normal.</summary>
    AutoMultivariateNormal,
    /// <summary>A low-rank-plus-diagonal Normal (rank √D unless given).</summary>
    AutoLowRankMultivariateNormal,
    /// <summary>A point estimate per site (MAP).</summary>
    AutoDelta,
    /// <summary>MAP on unconstrained space, then a Normal from the inverse Hessian (Laplace approximation).</summary>
    AutoLaplaceApproximation,
    // the names without NumPyro's "Auto" prefix, which users guess first: the same values
    /// <summary>The same as <see cref="AutoNormal"/>.</summary>
    Normal = AutoNormal,
    /// <summary>The same as <see cref="AutoDiagonalNormal"/>.</summary>
    DiagonalNormal = AutoDiagonalNormal,
    /// <summary>The same as <see cref="AutoMultivariateNormal"/>.</summary>
    MultivariateNormal = AutoMultivariateNormal,
    /// <summary>The same as <see cref="AutoLowRankMultivariateNormal"/>.</summary>
    LowRankMultivariateNormal = AutoLowRankMultivariateNormal,
    /// <summary>The same as <see cref="AutoDelta"/>.</summary>
    Delta = AutoDelta,
    /// <summary>The same as <see cref="AutoLaplaceApproximation"/>.</summary>
    LaplaceApproximation = AutoLaplaceApproximation,
}

/// <summary>A learning rate as a function of the step, for the optimizers of <see cref="SviOptimizer"/>.</summary>
public sealed class LearningRate
{
    private LearningRate(Schedule value) => Value = value;

    internal Schedule Value { get; }

    private static double Positive(double v, string name) =>
        v > 0.0 && !double.IsInfinity(v) ? v : throw new ArgumentOutOfRangeException(name, v, $"LearningRate: {name} must be positive and finite.");

    /// <summary>The same rate at every step.</summary>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentOutOfRangeException">The rate is not positive and finite.</exception>
    public static LearningRate Constant(double rate) => new(Schedule.NewConstant(Positive(rate, nameof(rate))));

    /// <summary>A constant rate from a number.</summary>
    /// <param name="rate">The rate (positive).</param>
    public static implicit operator LearningRate(double rate) => Constant(rate);

    /// <summary>rate · (α + (1 − α)·½(1 + cos(π·min(t, T)/T))): optax's cosine decay.</summary>
    /// <param name="rate">The initial rate.</param>
    /// <param name="steps">T, the decay's length in steps.</param>
    /// <param name="alpha">The final fraction of the rate.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public static LearningRate CosineDecay(double rate, int steps, double alpha = 0.0) =>
        new(Schedule.NewCosineDecay(Positive(rate, nameof(rate)), steps > 0 ? steps : throw new ArgumentOutOfRangeException(nameof(steps)), alpha));

    /// <summary>
    /// One cycle (optax's cosine_onecycle_schedule): from peak/divFactor up to peak over pctStart·steps by a
    /// cosine, then down to peak/(divFactor·finalDivFactor).
    /// </summary>
    /// <param name="peak">The peak rate.</param>
    /// <param name="steps">The run's length in steps.</param>
    /// <param name="pctStart">The warm-up's share of the run.</param>
    /// <param name="divFactor">peak / initial rate.</param>
    /// <param name="finalDivFactor">initial rate / final rate.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public static LearningRate WarmupCosine(double peak, int steps, double pctStart = 0.1, double divFactor = 25.0, double finalDivFactor = 1e4) =>
        new(Schedule.NewWarmupCosine(Positive(peak, nameof(peak)), steps > 0 ? steps : throw new ArgumentOutOfRangeException(nameof(steps)), pctStart, divFactor, finalDivFactor));

    /// <summary>rate · decay^(t / transitionSteps).</summary>
    /// <param name="rate">The initial rate.</param>
    /// <param name="decay">The factor per transition.</param>
    /// <param name="transitionSteps">Steps per transition.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public static LearningRate ExponentialDecay(double rate, double decay, int transitionSteps) =>
        new(Schedule.NewExponentialDecay(Positive(rate, nameof(rate)), Positive(decay, nameof(decay)), transitionSteps > 0 ? transitionSteps : throw new ArgumentOutOfRangeException(nameof(transitionSteps))));

    /// <summary>The rate at a step (0-based).</summary>
    /// <param name="step">The step.</param>
    public double At(int step) => Value.At(step);
}

/// <summary>An optimizer for SVI: how parameters move given their gradients.</summary>
public sealed class SviOptimizer
{
    private SviOptimizer(Optimizer value) => Value = value;

    internal Optimizer Value { get; }

    private static Schedule R(LearningRate? lr) => (lr ?? throw new ArgumentNullException("learningRate")).Value;

    /// <summary>Adam (Kingma and Ba).</summary>
    /// <param name="learningRate">The learning rate (a number or a <see cref="LearningRate"/> schedule).</param>
    /// <param name="beta1">The first moment's decay.</param>
    /// <param name="beta2">The second moment's decay.</param>
    /// <param name="epsilon">Added to the denominator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    public static SviOptimizer Adam(LearningRate learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8) =>
        new(Optimizer.NewAdam(R(learningRate), beta1, beta2, epsilon));

    /// <summary>Adam with decoupled weight decay (Loshchilov and Hutter).</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="weightDecay">The decay per step, relative to the rate.</param>
    /// <param name="beta1">The first moment's decay.</param>
    /// <param name="beta2">The second moment's decay.</param>
    /// <param name="epsilon">Added to the denominator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    public static SviOptimizer AdamW(LearningRate learningRate, double weightDecay = 1e-4, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8) =>
        new(Optimizer.NewAdamW(R(learningRate), beta1, beta2, epsilon, weightDecay));

    /// <summary>Pyro's ClippedAdam: gradients clipped element-wise, the rate decayed by <paramref name="rateDecay"/> per step.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="clipNorm">The element-wise clip.</param>
    /// <param name="rateDecay">The rate's factor per step.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    public static SviOptimizer ClippedAdam(LearningRate learningRate, double clipNorm = 10.0, double rateDecay = 1.0) =>
        new(Optimizer.NewClippedAdam(R(learningRate), 0.9, 0.999, 1e-8, clipNorm, rateDecay));

    /// <summary>Stochastic gradient descent with heavy-ball momentum.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="momentum">The momentum (0 for plain SGD).</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    public static SviOptimizer Sgd(LearningRate learningRate, double momentum = 0.0) => new(Optimizer.NewSgd(R(learningRate), momentum));

    /// <summary>Adagrad.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="epsilon">Added to the denominator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    public static SviOptimizer Adagrad(LearningRate learningRate, double epsilon = 1e-8) => new(Optimizer.NewAdagrad(R(learningRate), epsilon));

    /// <summary>RMSProp: v = ρ·v + (1−ρ)·g², step = rate·g/(√v + ε).</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <param name="decay">ρ.</param>
    /// <param name="epsilon">ε.</param>
    /// <exception cref="ArgumentNullException"><paramref name="learningRate"/> is null.</exception>
    public static SviOptimizer RmsProp(LearningRate learningRate, double decay = 0.9, double epsilon = 1e-8) => new(Optimizer.NewRmsProp(R(learningRate), decay, epsilon));

    /// <inheritdoc />
    public override string ToString() => Value.ToString();
}

/// <summary>The progress of a fit, reported through <see cref="IProgress{T}"/>.</summary>
public sealed class FitProgress
{
    internal FitProgress(int step, int totalSteps, double loss, TimeSpan elapsed, TimeSpan eta)
    {
        Step = step;
        TotalSteps = totalSteps;
        Loss = loss;
        Elapsed = elapsed;
        Eta = eta;
    }

    /// <summary>Steps done (1-based).</summary>
    public int Step { get; }
    /// <summary>Steps in the whole run.</summary>
    public int TotalSteps { get; }
    /// <summary>The loss (negative ELBO) of the last step.</summary>
    public double Loss { get; }
    /// <summary>Time since the run started.</summary>
    public TimeSpan Elapsed { get; }
    /// <summary>The estimated time left.</summary>
    public TimeSpan Eta { get; }

    /// <inheritdoc />
    public override string ToString() => $"step {Step}/{TotalSteps}, loss {Loss:G6}, elapsed {Elapsed.TotalSeconds:F1}s, eta {Eta.TotalSeconds:F1}s";
}

/// <summary>Thrown when a fit's loss or a gradient stops being finite: by <see cref="SviFitter"/> and by
/// <see cref="AevbTrainer"/> (whose parameters are named "encoder.{name}" and "decoder.{name}").</summary>
public sealed class FitDivergedException : Exception
{
    internal FitDivergedException(string message, Exception inner, IReadOnlyDictionary<string, NdArray> lastFinite)
        : base(InFacadeTerms(message), inner) => LastFiniteParameters = lastFinite;

    // the core's messages name its own settings and fields; a C# user knows the facade's
    private static string InFacadeTerms(string message) => message
        .Replace("(LastFiniteState)", "(LastFiniteParameters)", StringComparison.Ordinal)
        .Replace("gradient clipping (ClipNorm)", "gradient clipping (WithGradientClipping)", StringComparison.Ordinal);

    /// <summary>The parameters after the last step whose loss was finite.</summary>
    public IReadOnlyDictionary<string, NdArray> LastFiniteParameters { get; }
}
