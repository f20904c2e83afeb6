using System.Text.Json;
using FunctionalBayes.OnnxRuntime;

namespace FunctionalBayes.Serving;

/// <summary>Converts between JSON nested arrays and <see cref="OnnxArray"/>.</summary>
public static class JsonInput
{
    /// <summary>
    /// Reads a JSON value for a model input: nested arrays of numbers with one level per dimension (a bare
    /// number for a scalar input). The arrays must be rectangular and fit the input's fixed dimensions.
    /// </summary>
    /// <param name="info">The model input.</param>
    /// <param name="value">The JSON value.</param>
    /// <returns>The array, in the input's element type.</returns>
    /// <exception cref="FormatException">The value does not fit; the message names the input and the problem.</exception>
    public static OnnxArray Parse(TensorInfo info, JsonElement value)
    {
        ArgumentNullException.ThrowIfNull(info);
        var rank = info.Rank;
        var shape = new long[rank];
        var known = new bool[rank];
        var numbers = new List<JsonElement>();
        Walk(info, value, 0, shape, known, numbers, info.Name);
        for (var d = 0; d < rank; d++)
        {
            if (!known[d])
            {
                shape[d] = 0; // an empty array above this level
            }
        }

        return info.ElementType switch
        {
            OnnxElementType.Float32 => OnnxArray.FromFloat32(Convert(numbers, info, (JsonElement e, out float x) =>
            {
                var ok = e.TryGetDouble(out var d);
                x = (float)d;
                return ok && float.IsFinite(x);
            }), shape),
            OnnxElementType.Float64 => OnnxArray.FromFloat64(Convert(numbers, info, (JsonElement e, out double x) => e.TryGetDouble(out x)), shape),
            OnnxElementType.Int32 => OnnxArray.FromInt32(Convert(numbers, info, (JsonElement e, out int x) => e.TryGetInt32(out x)), shape),
            OnnxElementType.Int64 => OnnxArray.FromInt64(Convert(numbers, info, (JsonElement e, out long x) => e.TryGetInt64(out x)), shape),
            _ => throw new FormatException($"Input '{info.Name}' has element type {info.ElementType}, which this server cannot read from JSON."),
        };
    }

    /// <summary>Writes an array as nested JSON arrays following its shape (non-finite numbers become null).</summary>
    /// <param name="writer">The JSON writer.</param>
    /// <param name="array">The array.</param>
    public static void Write(Utf8JsonWriter writer, OnnxArray array)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(array);
        var index = 0;
        WriteLevel(writer, array, 0, ref index);
    }

    private delegate bool TryConvert<T>(JsonElement element, out T value);

    private static T[] Convert<T>(List<JsonElement> numbers, TensorInfo info, TryConvert<T> convert)
    {
        var result = new T[numbers.Count];
        for (var i = 0; i < result.Length; i++)
        {
            if (!convert(numbers[i], out result[i]))
            {
                throw new FormatException(
                    $"Input '{info.Name}': element {i} (flat, row-major) = {numbers[i].GetRawText()} is not a valid {info.ElementType.ToString().ToLowerInvariant()} value.");
            }
        }

        return result;
    }

    private static void Walk(TensorInfo info, JsonElement value, int depth, long[] shape, bool[] known, List<JsonElement> numbers, string path)
    {
        if (depth == info.Rank)
        {
            if (value.ValueKind != JsonValueKind.Number)
            {
                var what = value.ValueKind == JsonValueKind.Array
                    ? $"an array, but '{info.Name}' has shape {info.ShapeText} (rank {info.Rank}) so it takes {Depth(info.Rank)}"
                    : $"a {value.ValueKind.ToString().ToLowerInvariant()} ({Truncate(value.GetRawText())}), not a number";
                throw new FormatException($"{path} is {what}.");
            }

            numbers.Add(value);
            return;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException(
                $"{path} must be an array: '{info.Name}' has shape {info.ShapeText} (rank {info.Rank}) so it takes {Depth(info.Rank)}; got a {value.ValueKind.ToString().ToLowerInvariant()}.");
        }

        var length = value.GetArrayLength();
        var expected = info.Dimensions[depth];
        if (expected >= 0 && length != expected)
        {
            var noun = depth == info.Rank - 1 && info.Rank > 1 ? "row" : "array";
            throw new FormatException(
                $"{path} has {length} {(depth == info.Rank - 1 ? "numbers" : "elements")} but '{info.Name}' has shape {info.ShapeText}, so each {noun} at depth {depth} must have {expected}.");
        }

        if (!known[depth])
        {
            known[depth] = true;
            shape[depth] = length;
        }
        else if (shape[depth] != length)
        {
            throw new FormatException(
                $"{path} has {length} elements but earlier arrays at the same depth have {shape[depth]}: the arrays of '{info.Name}' must be rectangular.");
        }

        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            Walk(info, item, depth + 1, shape, known, numbers, $"{path}[{i}]");
            i++;
        }
    }

    private static string Depth(int rank) =>
        rank == 0 ? "a single number" : rank == 1 ? "a flat array of numbers" : $"arrays nested {rank} deep";

    private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "...";

    private static void WriteLevel(Utf8JsonWriter writer, OnnxArray array, int depth, ref int index)
    {
        if (depth == array.Shape.Count)
        {
            switch (array.Data)
            {
                case float[] f:
                    WriteNumber(writer, f[index]);
                    break;
                case double[] d:
                    WriteNumber(writer, d[index]);
                    break;
                case int[] i:
                    writer.WriteNumberValue(i[index]);
                    break;
                case long[] l:
                    writer.WriteNumberValue(l[index]);
                    break;
            }

            index++;
            return;
        }

        writer.WriteStartArray();
        for (long k = 0; k < array.Shape[depth]; k++)
        {
            WriteLevel(writer, array, depth + 1, ref index);
        }

        writer.WriteEndArray();
    }

    private static void WriteNumber(Utf8JsonWriter writer, double value)
    {
        if (double.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            writer.WriteNullValue();
        }
    }

    private static void WriteNumber(Utf8JsonWriter writer, float value)
    {
        if (float.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}
