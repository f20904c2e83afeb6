using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class ReportTests
{
    [Fact]
    public void SaveReportWritesOneSelfContainedPage()
    {
        var data = TestData.Linear(100);
        var fitted = new SviFitter(TestData.LinearModel, data).ForSteps(200).WithSeed(7).Fit();
        var path = Path.Combine(Path.GetTempPath(), $"fb-csharp-report-{Guid.NewGuid():N}.html");
        try
        {
            fitted.SaveReport(path, data, samples: 200);
            var html = File.ReadAllText(path);
            Assert.Contains("id=\"summary-table\"", html);
            Assert.Contains("id=\"chart-loss\"", html);
            Assert.Contains("id=\"chart-ppc-y\"", html);
            Assert.Contains("plotly.js v", html);
            Assert.DoesNotContain("<script src=", html);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SaveReportRefusesTooFewDraws()
    {
        var data = TestData.Linear(50);
        var fitted = new SviFitter(TestData.LinearModel, data).ForSteps(20).WithSeed(7).Fit();
        var ex = Assert.Throws<ArgumentException>(() => fitted.SaveReport(Path.GetTempFileName(), data, samples: 2));
        Assert.Contains("at least 4", ex.Message);
    }
}
