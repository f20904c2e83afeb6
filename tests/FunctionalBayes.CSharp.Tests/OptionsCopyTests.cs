using FunctionalBayes;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The builders change the core's options records through OptionsCopy ({ o with … } in F#), never their
/// positional constructors: each copy changes its own fields and nothing else (setting a field back gives a record
/// equal to the original, by F#'s structural equality).</summary>
public class OptionsCopyTests
{
    [Fact]
    public void McmcCopiesChangeOnlyTheirField()
    {
        var o = McmcOptions.Default;
        Assert.Equal(3, o.WithChains(3).Chains);
        Assert.Equal(o, o.WithChains(3).WithChains(o.Chains));
        Assert.Equal(7, o.WithWarmup(7).Warmup);
        Assert.Equal(o, o.WithWarmup(7).WithWarmup(o.Warmup));
        var s = o.WithSamples(5, 2);
        Assert.Equal((5, 2), (s.Samples, s.Thin));
        Assert.Equal(o, s.WithSamples(o.Samples, o.Thin));
        Assert.Equal(9UL, o.WithSeed(9).Seed);
        Assert.Equal(o, o.WithSeed(9).WithSeed(o.Seed));
        Assert.Equal(0.95, o.WithTargetAccept(0.95).TargetAccept);
        Assert.Equal(o, o.WithTargetAccept(0.95).WithTargetAccept(o.TargetAccept));
        Assert.Equal(4, o.WithMaxTreeDepth(4).MaxTreeDepth);
        Assert.Equal(o, o.WithMaxTreeDepth(4).WithMaxTreeDepth(o.MaxTreeDepth));
        Assert.Equal(MetricAdaptation.FisherDiagonal, o.WithAdaptation(MetricAdaptation.FisherDiagonal).Adaptation);
        Assert.Equal(o, o.WithAdaptation(MetricAdaptation.NewFisherLowRank(LowRankSettings.Default)).WithAdaptation(o.Adaptation));
        var st = o.WithInitialStepSize(0.25, false);
        Assert.Equal((0.25, false), (st.InitialStepSize, st.FindInitialStepSize));
        Assert.Equal(o, st.WithInitialStepSize(o.InitialStepSize, o.FindInitialStepSize));
        Assert.False(o.WithParallel(false).Parallel);
        Assert.Equal(o, o.WithParallel(false).WithParallel(o.Parallel));
        Assert.Equal(McmcGradient.Tape, o.WithGradient(McmcGradient.Tape).Gradient);
        Assert.Equal(o, o.WithGradient(McmcGradient.Tape).WithGradient(o.Gradient));
        Assert.Equal(InitStrategy.NewInitUniform(0.5), o.WithInit(InitStrategy.NewInitUniform(0.5)).Init);
        Assert.Equal(o, o.WithInit(InitStrategy.NewInitUniform(0.5)).WithInit(o.Init));
    }

    [Fact]
    public void FitCopiesChangeOnlyTheirField()
    {
        var o = FitOptions.Default;
        Assert.Equal(0.3, o.WithLearningRate(0.3).LearningRate);
        Assert.Equal(o, o.WithLearningRate(0.3).WithLearningRate(o.LearningRate));
        Assert.Equal(LrSchedule.Constant, o.WithSchedule(LrSchedule.Constant).Schedule);
        Assert.Equal(o, o.WithSchedule(LrSchedule.Constant).WithSchedule(o.Schedule));
        Assert.Equal(3, o.WithParticles(3).Particles);
        Assert.Equal(o, o.WithParticles(3).WithParticles(o.Particles));
        Assert.Equal(5UL, o.WithSeed(5).Seed);
        Assert.Equal(o, o.WithSeed(5).WithSeed(o.Seed));
        Assert.Equal(2.0, o.WithClipNorm(2.0).ClipNorm!.Value);
        Assert.Equal(AutoGuideKind.AutoDelta, o.WithAutoGuide(AutoGuideKind.AutoDelta).AutoGuide);
        Assert.Equal(o, o.WithAutoGuide(AutoGuideKind.AutoDelta).WithAutoGuide(o.AutoGuide));
        // steps and epochs replace each other; the batch size stays with steps
        var e = o.WithEpochs(4, 32);
        Assert.Equal((4, 32), (e.Run.Epochs!.Value, e.Run.BatchSize!.Value));
        Assert.Null(e.Run.Steps);
        var st = e.WithSteps(10);
        Assert.Equal(10, st.Run.Steps!.Value);
        Assert.Null(st.Run.Epochs);
        Assert.Equal(32, st.Run.BatchSize!.Value);
        Assert.Equal(64, o.WithBatchSize(64).Run.BatchSize!.Value);
        var es = o.WithEarlyStopping(50, 1e-4, 3).Run.EarlyStopping!.Value;
        Assert.Equal((50, 1e-4, 3), (es.Window, es.RelTol, es.Patience));
        Assert.Equal(o.Run.Shuffle, o.WithEarlyStopping(50, 1e-4, 3).Run.Shuffle);
    }
}
