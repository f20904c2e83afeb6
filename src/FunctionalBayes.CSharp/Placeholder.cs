namespace FunctionalBayes.CSharp;

// (the C# facade)
internal static class Placeholder { }
