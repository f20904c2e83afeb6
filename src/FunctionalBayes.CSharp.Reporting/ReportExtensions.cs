using FunctionalBayes.Tensors;

namespace FunctionalBayes.Fluent;

/// <summary>The posterior report of a <see cref="FittedModel"/> (package FunctionalBayes.CSharp.Reporting).</summary>
public static class ReportExtensions
{
    /// <summary>Writes the posterior report: one self-contained HTML file (plotly.js inline, opens offline) with the
    /// summary table (mean, sd, MCSE, quantiles, ESS, R-hat), posterior densities and intervals, the loss curve,
    /// the model's description and posterior predictive checks of the observed sites on <paramref name="data"/>.</summary>
    /// <param name="fitted">The fitted model.</param>
    /// <param name="path">The HTML file to write (its folder is created).</param>
    /// <param name="data">The data the model was fitted on (observed sites are compared with replicated data).</param>
    /// <param name="samples">Guide draws summarised and plotted (at least 4; a sampled posterior shows all its draws).</param>
    /// <param name="seed">The seed of the draws.</param>
    /// <exception cref="ArgumentNullException"><paramref name="fitted"/>, <paramref name="path"/> or <paramref name="data"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="samples"/> is less than 4, or the model rejects the data.</exception>
    public static void SaveReport(this FittedModel fitted, string path, DataSet data, int samples = 1000, ulong seed = 3)
    {
        ArgumentNullException.ThrowIfNull(fitted);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(data);
        var input = FunctionalBayes.Reporting.FromPosterior.input($"Posterior report ({fitted.Method})", Rng.key(seed), samples, fitted.Core, data.ToMap());
        FunctionalBayes.Reporting.Report.saveInput(path, input);
    }
}
