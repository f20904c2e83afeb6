using System.Reflection;
using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The facade's public surface (and its cluster satellite's) holds no F# or core types, and every public type
/// is C#-shaped.</summary>
public class PublicSurfaceTests
{
    /// <summary>
    /// Core types deliberately exposed: none. (If one is ever added, list it here with the reason; the core's
    /// F# types are options, lists, functions, tuples, unions and records that C# users should not see.)
    /// </summary>
    private static readonly HashSet<Type> Allowed = new();

    private static readonly Assembly Facade = typeof(NdArray).Assembly;

    /// <summary>The C# assemblies checked: the facade and the cluster satellite (whose signatures may name the C# wire
    /// types of FunctionalBayes.Cluster.Grains, FitSpec and FitStatus, but not the F# FunctionalBayes.Cluster's).</summary>
    private static readonly Assembly[] Checked = [Facade, typeof(ClusterRegistry).Assembly];

    private static bool IsForbidden(Type t)
    {
        if (Allowed.Contains(t)) return false;
        var asm = t.Assembly.GetName().Name;
        return asm is "FSharp.Core" or "FunctionalBayes" or "FunctionalBayes.Tensors" or "FunctionalBayes.Cluster";
    }

    private static IEnumerable<Type> Exported() => Checked.SelectMany(a => a.GetExportedTypes());

    /// <summary>Every type a signature mentions, through arrays, by-refs, pointers, generic arguments and constraints.</summary>
    private static IEnumerable<Type> Mentioned(Type t) => Mentioned(t, new HashSet<Type>());

    private static IEnumerable<Type> Mentioned(Type t, HashSet<Type> seen)
    {
        if (!seen.Add(t)) yield break;
        if (t.HasElementType) { foreach (var e in Mentioned(t.GetElementType()!, seen)) yield return e; yield break; }
        if (t.IsGenericParameter)
        {
            // constraints such as TSelf : ScaledLayerBuilder<TSelf> refer back to the parameter: 'seen' stops that
            foreach (var c in t.GetGenericParameterConstraints()) foreach (var e in Mentioned(c, seen)) yield return e;
            yield break;
        }
        yield return t.IsGenericType ? t.GetGenericTypeDefinition() : t;
        if (t.IsGenericType)
            foreach (var a in t.GetGenericArguments())
                foreach (var e in Mentioned(a, seen)) yield return e;
    }

    private static IEnumerable<(string Where, Type Type)> Signatures()
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var type in Exported())
        {
            if (type.BaseType is { } bt) yield return ($"{type} base", bt);
            foreach (var i in type.GetInterfaces()) yield return ($"{type} interface", i);
            foreach (var g in type.GetGenericArguments()) yield return ($"{type} generic", g);
            foreach (var m in type.GetMembers(flags))
            {
                switch (m)
                {
                    case MethodBase mb:
                        if (mb is MethodInfo mi) yield return ($"{type}.{mb.Name} return", mi.ReturnType);
                        foreach (var p in mb.GetParameters()) yield return ($"{type}.{mb.Name}({p.Name})", p.ParameterType);
                        if (mb.IsGenericMethodDefinition) foreach (var g in mb.GetGenericArguments()) yield return ($"{type}.{mb.Name}<>", g);
                        break;
                    case PropertyInfo pi:
                        yield return ($"{type}.{pi.Name}", pi.PropertyType);
                        break;
                    case FieldInfo fi:
                        yield return ($"{type}.{fi.Name}", fi.FieldType);
                        break;
                    case EventInfo ei:
                        yield return ($"{type}.{ei.Name}", ei.EventHandlerType!);
                        break;
                }
            }
        }
    }

    [Fact]
    public void NoPublicSignatureMentionsAnFSharpOrCoreType()
    {
        var bad = Signatures()
            .SelectMany(s => Mentioned(s.Type).Where(IsForbidden).Select(t => $"{s.Where}: {t.FullName}"))
            .Distinct()
            .ToArray();
        Assert.True(bad.Length == 0, "F# or core types in the public surface:\n" + string.Join("\n", bad));
    }

    [Fact]
    public void PublicTypesAreInTheFluentNamespaceAndAvoidBclNames()
    {
        var types = Exported().ToArray();
        Assert.Contains(typeof(ClusterRegistry), types);
        Assert.All(types, t => Assert.Equal("FunctionalBayes.Fluent", t.Namespace));
        string[] bcl = ["Tensor", "Range", "Index", "Vector", "Matrix", "Random", "Task", "Model"];
        Assert.DoesNotContain(types, t => bcl.Contains(t.Name.Split('`')[0]));
        // and no name clashes with the F# core's public types (the cluster's too), so `using FunctionalBayes;` or
        // `using FunctionalBayes.Cluster;` does not make names ambiguous
        var core = Checked.SelectMany(c => c.GetReferencedAssemblies())
            .Where(a => a.Name is "FunctionalBayes" or "FunctionalBayes.Tensors" or "FunctionalBayes.Cluster" or "FunctionalBayes.Cluster.Grains")
            .DistinctBy(a => a.Name)
            .SelectMany(a => Assembly.Load(a).GetExportedTypes())
            .Select(t => t.Name)
            .ToHashSet();
        Assert.DoesNotContain(types, t => core.Contains(t.Name));
    }

    [Fact]
    public void PublicMembersArePascalCase()
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var bad = Exported()
            .SelectMany(t => t.GetMembers(flags).Select(m => (t, m)))
            .Where(x => x.m is not ConstructorInfo && !(x.m is FieldInfo { IsSpecialName: true }) && !x.m.Name.StartsWith("op_") && !x.m.Name.StartsWith("get_") && !x.m.Name.StartsWith("set_")
                        && !x.m.Name.Contains('<') && !x.m.Name.Contains('.') && char.IsLower(x.m.Name[0]))
            .Select(x => $"{x.t.Name}.{x.m.Name}")
            .ToArray();
        Assert.True(bad.Length == 0, string.Join(", ", bad));
    }
}
