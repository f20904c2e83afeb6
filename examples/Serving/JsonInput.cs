using System.Text;
using System.Text.Json;
using FunctionalBayes.OnnxRuntime;

namespace FunctionalBayes.Serving;

/// <summary>Converts between JSON nested arrays and <see cref="OnnxArray"/>.</summary>
public static class JsonInput
{
    /// <summary>
    /// Reads a JSON value for a model input from a reader positioned on its first token: nested arrays of numbers with
    /// one level per dimension (a bare number for a scalar input), rectangular and fitting the input's fixed dimensions.
    /// The numbers go straight into a pooled array (see <c>Pool</c>); no document is built.
    /// Give the result back with <see cref="Return"/> once the model has run. On return the reader is on the value's last token.
    /// </summary>
    /// <param name="info">The model input.</param>
    /// <param name="reader">The reader, on the value's first token.</param>
    /// <returns>The array, in the input's element type, over a pooled buffer.</returns>
    /// <exception cref="FormatException">The value does not fit; the message names the input, the element
    /// (<c>x[row][column]</c>) and the problem. Nothing stays rented.</exception>
    public static OnnxArray Read(TensorInfo info, ref Utf8JsonReader reader) => Read(info, ref reader, null);

    /// <summary>
    /// Reads a JSON value for a model input as <see cref="Read(TensorInfo, ref Utf8JsonReader)"/> does; where the model
    /// lists the input's levels (<see cref="OnnxPredictor.GetLevels"/>: a categorical column the model was fitted with), an
    /// element may also be a level, a JSON string, which becomes its id.
    /// </summary>
    /// <param name="info">The model input.</param>
    /// <param name="reader">The reader, on the value's first token.</param>
    /// <param name="levels">The input's levels in id order, or <see langword="null"/> for an input without levels.</param>
    /// <returns>The array, in the input's element type, over a pooled buffer.</returns>
    /// <exception cref="FormatException">The value does not fit, or a level is not among the input's; the message names
    /// the input, the element and the problem. Nothing stays rented.</exception>
    public static OnnxArray Read(TensorInfo info, ref Utf8JsonReader reader, IReadOnlyList<string>? levels)
    {
        ArgumentNullException.ThrowIfNull(info);
        var ids = levels is null ? null : IdsOf(levels);
        return info.ElementType switch
        {
            OnnxElementType.Float32 => Read(info, ref reader, levels, (ref Utf8JsonReader r, out float x) =>
            {
                if (r.TokenType == JsonTokenType.String)
                {
                    var ok = Level(ids, ref r, out var id);
                    x = id;
                    return ok;
                }

                var number = r.TryGetDouble(out var d);
                x = (float)d;
                return number && float.IsFinite(x);
            }),
            OnnxElementType.Float64 => Read(info, ref reader, levels, (ref Utf8JsonReader r, out double x) =>
            {
                if (r.TokenType == JsonTokenType.String)
                {
                    var ok = Level(ids, ref r, out var id);
                    x = id;
                    return ok;
                }

                return r.TryGetDouble(out x) && double.IsFinite(x);
            }),
            OnnxElementType.Int32 => Read(info, ref reader, levels, (ref Utf8JsonReader r, out int x) =>
                r.TokenType == JsonTokenType.String ? Level(ids, ref r, out x) : r.TryGetInt32(out x)),
            OnnxElementType.Int64 => Read(info, ref reader, levels, (ref Utf8JsonReader r, out long x) =>
            {
                if (r.TokenType == JsonTokenType.String)
                {
                    var ok = Level(ids, ref r, out var id);
                    x = id;
                    return ok;
                }

                return r.TryGetInt64(out x);
            }),
            _ => throw new FormatException($"Input '{info.Name}' has element type {info.ElementType}, which this server cannot read from JSON."),
        };
    }

    /// <summary>Each level's id, built once per list of levels (the predictor reads the levels once).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IReadOnlyList<string>, Dictionary<string, int>> Ids = new();

    private static Dictionary<string, int> IdsOf(IReadOnlyList<string> levels) =>
        Ids.GetValue(levels, static l =>
        {
            var ids = new Dictionary<string, int>(l.Count, StringComparer.Ordinal);
            for (var i = 0; i < l.Count; i++)
            {
                ids.TryAdd(l[i], i);
            }

            return ids;
        });

    private static bool Level(Dictionary<string, int>? ids, ref Utf8JsonReader reader, out int id)
    {
        id = 0;
        return ids is not null && reader.GetString() is { } level && ids.TryGetValue(level, out id);
    }

    /// <summary>Gives an array made by <see cref="Read"/> back to its pool; it must not be used afterwards.</summary>
    /// <param name="array">The array.</param>
    public static void Return(OnnxArray array)
    {
        ArgumentNullException.ThrowIfNull(array);
        switch (array.Data)
        {
            case float[] f:
                Pool<float>.Return(f);
                break;
            case double[] d:
                Pool<double>.Return(d);
                break;
            case int[] i:
                Pool<int>.Return(i);
                break;
            case long[] l:
                Pool<long>.Return(l);
                break;
        }
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

    private delegate bool TryConvert<T>(ref Utf8JsonReader reader, out T value);

    private static OnnxArray Read<T>(TensorInfo info, ref Utf8JsonReader reader, IReadOnlyList<string>? levels, TryConvert<T> convert)
        where T : unmanaged
    {
        var rank = info.Rank;
        var shape = new long[rank];
        var known = new bool[rank];
        var index = new long[rank]; // the position inside each open array
        var buffer = Pool<T>.Rent(256);
        var count = 0;
        try
        {
            var depth = 0; // arrays open
            while (true)
            {
                if (depth == rank)
                {
                    if (reader.TokenType != JsonTokenType.Number && !(levels is not null && reader.TokenType == JsonTokenType.String))
                    {
                        var what = reader.TokenType == JsonTokenType.StartArray
                            ? $"an array, but '{info.Name}' has shape {info.ShapeText} (rank {rank}) so it takes {Depth(rank)}"
                            : $"a {Kind(reader.TokenType)} ({Raw(ref reader)}), not a number";
                        throw new FormatException($"{Path(info, index, depth)} is {what}.");
                    }

                    if (count == buffer.Length)
                    {
                        buffer = Pool<T>.Grow(buffer, count);
                    }

                    if (!convert(ref reader, out buffer[count]))
                    {
                        if (reader.TokenType == JsonTokenType.String && levels is not null)
                        {
                            throw new FormatException(
                                $"Input '{info.Name}': {Path(info, index, depth)} = {Raw(ref reader)} is not one of the {levels.Count} levels the model was fitted with"
                                + $" ({Truncate(string.Join(", ", levels))}); give a known level or its id.");
                        }

                        throw new FormatException(
                            $"Input '{info.Name}': {Path(info, index, depth)} = {Raw(ref reader)} is not a valid {info.ElementType.ToString().ToLowerInvariant()} value"
                            + " (numbers must be finite and fit the type).");
                    }

                    count++;
                }
                else if (reader.TokenType == JsonTokenType.StartArray)
                {
                    index[depth++] = 0;
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.EndArray)
                    {
                        continue; // on to its first element
                    }

                    Close(info, --depth, 0, shape, known, index); // an empty array
                }
                else
                {
                    throw new FormatException(
                        $"{Path(info, index, depth)} must be an array: '{info.Name}' has shape {info.ShapeText} (rank {rank}) so it takes {Depth(rank)}; got a {Kind(reader.TokenType)}.");
                }

                // an element is complete: move to the next one, closing the arrays that end here
                var next = false;
                while (depth > 0 && !next)
                {
                    index[depth - 1]++;
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.EndArray)
                    {
                        depth--;
                        Close(info, depth, index[depth], shape, known, index);
                    }
                    else
                    {
                        next = true;
                    }
                }

                if (!next)
                {
                    break;
                }
            }

            for (var d = 0; d < rank; d++)
            {
                if (!known[d])
                {
                    shape[d] = 0; // an empty array above this level
                }
            }

            return OnnxArray.FromBuffer(buffer, shape);
        }
        catch
        {
            Pool<T>.Return(buffer);
            throw;
        }
    }

    /// <summary>Checks the length of the array just closed at <paramref name="depth"/> (its path is the open indices above it).</summary>
    private static void Close(TensorInfo info, int depth, long length, long[] shape, bool[] known, long[] index)
    {
        var expected = info.Dimensions[depth];
        if (expected >= 0 && length != expected)
        {
            var noun = depth == info.Rank - 1 && info.Rank > 1 ? "row" : "array";
            throw new FormatException(
                $"{Path(info, index, depth)} has {length} {(depth == info.Rank - 1 ? "numbers" : "elements")} but '{info.Name}' has shape {info.ShapeText}, so each {noun} at depth {depth} must have {expected}.");
        }

        if (!known[depth])
        {
            known[depth] = true;
            shape[depth] = length;
        }
        else if (shape[depth] != length)
        {
            throw new FormatException(
                $"{Path(info, index, depth)} has {length} elements but earlier arrays at the same depth have {shape[depth]}: the arrays of '{info.Name}' must be rectangular.");
        }
    }

    /// <summary>The element's path, such as <c>x[3][1]</c> (row 3, column 1): the input name and the first <paramref name="depth"/> indices.</summary>
    private static string Path(TensorInfo info, long[] index, int depth)
    {
        var path = new StringBuilder(info.Name);
        for (var d = 0; d < depth; d++)
        {
            path.Append('[').Append(index[d]).Append(']');
        }

        return path.ToString();
    }

    private static string Kind(JsonTokenType token) => token switch
    {
        JsonTokenType.Number => "number",
        JsonTokenType.String => "string",
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        JsonTokenType.Null => "null",
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        _ => token.ToString().ToLowerInvariant(),
    };

    /// <summary>The token's text for a message (strings quoted, objects abbreviated), at most 40 characters.</summary>
    private static string Raw(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => Truncate("\"" + reader.GetString() + "\""),
        JsonTokenType.StartObject => "{...}",
        _ => Truncate(Encoding.UTF8.GetString(reader.ValueSpan)),
    };

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
