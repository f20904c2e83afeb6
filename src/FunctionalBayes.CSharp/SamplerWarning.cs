namespace FunctionalBayes.Fluent;

/// <summary>What a sampler warning is about (Stan's diagnostics after sampling).</summary>
public enum SamplerWarningKind
{
    /// <summary>Divergent transitions after warmup.</summary>
    Divergences,
    /// <summary>Transitions that hit the maximum tree depth.</summary>
    TreeDepth,
    /// <summary>Chains whose energy Bayesian fraction of missing information (E-BFMI) is below 0.3.</summary>
    LowEbfmi,
    /// <summary>Scalars whose R-hat is above 1.01: the chains have not mixed.</summary>
    HighRHat,
    /// <summary>Scalars whose bulk effective sample size is below 100 per chain.</summary>
    LowBulkEss,
    /// <summary>Scalars whose tail effective sample size is below 100 per chain.</summary>
    LowTailEss,
}

/// <summary>A Stan-style warning after sampling: its kind and Stan's text (which <see cref="ToString"/> returns).</summary>
public sealed record SamplerWarning
{
    private SamplerWarning(SamplerWarningKind kind, string text)
    {
        Kind = kind;
        Text = text;
    }

    /// <summary>What the warning is about.</summary>
    public SamplerWarningKind Kind { get; }

    /// <summary>Stan's wording of the warning, naming the scalars or chains concerned.</summary>
    public string Text { get; }

    /// <summary>The warning's text.</summary>
    public override string ToString() => Text;

    internal static SamplerWarning Of(DiagnosticWarning w) => new(
        w.Tag switch
        {
            DiagnosticWarning.Tags.Divergences => SamplerWarningKind.Divergences,
            DiagnosticWarning.Tags.TreeDepth => SamplerWarningKind.TreeDepth,
            DiagnosticWarning.Tags.LowEbfmi => SamplerWarningKind.LowEbfmi,
            DiagnosticWarning.Tags.HighRHat => SamplerWarningKind.HighRHat,
            DiagnosticWarning.Tags.LowEssBulk => SamplerWarningKind.LowBulkEss,
            DiagnosticWarning.Tags.LowEssTail => SamplerWarningKind.LowTailEss,
            _ => throw new ArgumentOutOfRangeException(nameof(w), w.Tag, "An unknown kind of sampler warning."),
        },
        w.Text);
}
