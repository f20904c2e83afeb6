using FunctionalBayes.Cluster;
using FunctionalBayes.Fluent;

namespace ReadmeBlocks;

/// <summary>The names that the README's C# blocks take as given (tests/ReadmeBlocks.targets makes each block a method
/// of this class). The blocks are compiled, never run.</summary>
internal static partial class ReadmeContext
{
    internal static readonly DataSet data = FunctionalBayes.CSharp.Tests.TestData.QuickStart(50);
    internal static readonly DataSet newData = new DataSet().Add("x", data["x"]);
    internal static readonly IProgress<FitProgress> fitProgress = new Progress<FitProgress>();
    internal static readonly IProgress<SamplingProgress> samplingProgress = new Progress<SamplingProgress>();
    internal static readonly CancellationToken cancellationToken = CancellationToken.None;
    internal static readonly IProgress<FitStatus> jobProgress = new Progress<FitStatus>();
}
