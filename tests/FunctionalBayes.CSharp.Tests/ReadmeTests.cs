using System.Reflection;
using System.Text.RegularExpressions;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>README.md's code blocks are compiled by the build (tests/ReadmeBlocks.targets): the C# blocks into this
/// assembly, the F# blocks into tests/FunctionalBayes.Readme. These tests check that none was left out.</summary>
public class ReadmeTests
{
    private static string Readme()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FunctionalBayes.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return File.ReadAllText(Path.Combine(dir.FullName, "README.md"));
    }

    private static int Blocks(string language) =>
        Regex.Matches(Readme(), "^```" + language + "\\s*$", RegexOptions.Multiline).Count;

    [Fact]
    public void EveryCSharpBlockIsCompiled()
    {
        var context = typeof(ReadmeBlocks.ReadmeContext);
        var compiled = context.GetMethods(BindingFlags.Static | BindingFlags.NonPublic).Count(m => m.Name.StartsWith("CSharpBlock"));
        Assert.True(Blocks("csharp") > 0);
        Assert.Equal(Blocks("csharp"), compiled);
    }

    [Fact]
    public void EveryFSharpBlockIsCompiled()
    {
        var assembly = typeof(FunctionalBayes.Readme.Prelude).Assembly;
        var compiled = assembly.GetTypes().Count(t => t.FullName is { } n && Regex.IsMatch(n, "^FunctionalBayes\\.Readme\\.FSharpBlock\\d+$"));
        Assert.True(Blocks("fsharp") > 0);
        Assert.Equal(Blocks("fsharp"), compiled);
    }
}
