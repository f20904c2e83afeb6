using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>Conversions between the facade's types and the core's F# types.</summary>
internal static class Convert
{
    internal static FSharpOption<FTensor?>? Option(NdArray? a) => a is null ? null : FSharpOption<FTensor?>.Some(a.Value);

    internal static FSharpOption<T>? Option<T>(T? v) where T : struct => v is { } x ? FSharpOption<T>.Some(x) : null;

    internal static FSharpOption<T>? OptionRef<T>(T? v) where T : class => v is null ? null : FSharpOption<T>.Some(v);

    internal static FSharpMap<string, FTensor?> ToMap(IEnumerable<KeyValuePair<string, NdArray>> items) =>
        MapModule.OfSeq(items.Select(kv => Tuple.Create(kv.Key, (FTensor?)kv.Value.Value)));

    internal static IReadOnlyDictionary<string, NdArray> FromMap(FSharpMap<string, FTensor?> map)
    {
        var d = new SortedDictionary<string, NdArray>(StringComparer.Ordinal);
        foreach (var kv in map) d[kv.Key] = NdArray.Wrap(kv.Value);
        return d;
    }

    /// <summary>An activation as an F# option (None, that is null, when there is none).</summary>
    internal static FSharpOption<FSharpFunc<FTensor?, FTensor?>>? Activation(Func<NdArray, NdArray>? f) =>
        f is null ? null : FSharpOption<FSharpFunc<FTensor?, FTensor?>>.Some(FuncConvert.FromFunc<FTensor?, FTensor?>(t =>
            (f(NdArray.Wrap(t)) ?? throw new InvalidOperationException("The activation function returned null.")).Value));

    /// <summary>A facade model function as the core's model function of the data (the result boxed).</summary>
    internal static FSharpFunc<FSharpMap<string, FTensor?>, Model<object?>> ModelFunction<T>(Func<DataSet, BayesModel<T>>? model, string name)
    {
        ArgumentNullException.ThrowIfNull(model, name);
        return FuncConvert.FromFunc<FSharpMap<string, FTensor?>, Model<object?>>(map =>
        {
            var m = model(DataSet.FromMap(map)) ?? throw new InvalidOperationException("The model function returned null.");
            return FunctionalBayes.Model.map(FuncConvert.FromFunc<T, object?>(v => v), m.Value);
        });
    }
}
