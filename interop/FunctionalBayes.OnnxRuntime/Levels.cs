using System.Collections.ObjectModel;
using System.Text.Json;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>Categorical inputs given by their levels (strings), mapped to the model's category ids.</summary>
public sealed partial class OnnxPredictor
{
    /// <summary>The metadata key prefix under which FunctionalBayes' exporter lists a categorical input's levels:
    /// <c>functionalbayes.levels.{input}</c> holds a JSON array of strings in id order (id i is level i).</summary>
    public const string LevelsKeyPrefix = "functionalbayes.levels.";

    private IReadOnlyDictionary<string, (string[] Levels, ReadOnlyCollection<string> View, Dictionary<string, int> Ids)>? levelsByInput;

    /// <summary>The levels of a categorical input in id order (level i has id i), as the model's metadata lists them.</summary>
    /// <param name="inputName">The input's name.</param>
    /// <returns>The levels, or <see langword="null"/> when the model lists none for the input.</returns>
    public IReadOnlyList<string>? GetLevels(string inputName)
    {
        ArgumentNullException.ThrowIfNull(inputName);
        return Levels().TryGetValue(inputName, out var entry) ? entry.View : null;
    }

    /// <summary>
    /// The input array of a categorical input from its levels: each level becomes its id by the model's metadata
    /// (<see cref="LevelsKeyPrefix"/>), in the input's element type, with one row per level.
    /// </summary>
    /// <param name="inputName">The categorical input's name.</param>
    /// <param name="levels">One level per row.</param>
    /// <returns>The ids, shaped [rows] (or [rows, 1] when the input has a second dimension of 1).</returns>
    /// <exception cref="InvalidModelInputException">The input is unknown, the model lists no levels for it, its element
    /// type holds no ids, or a level is not among the model's (the message names the input, the row and the level).</exception>
    public OnnxArray FromLevels(string inputName, IReadOnlyList<string?> levels)
    {
        ArgumentNullException.ThrowIfNull(inputName);
        ArgumentNullException.ThrowIfNull(levels);
        if (!inputIndex.TryGetValue(inputName, out var index))
        {
            throw new InvalidModelInputException(inputName, $"The model has no input '{inputName}'; its inputs are {string.Join(", ", inputs.Select(i => i.Name))}.");
        }

        if (!Levels().TryGetValue(inputName, out var entry))
        {
            throw new InvalidModelInputException(
                inputName,
                $"Input '{inputName}' is not categorical in this model: its metadata has no '{LevelsKeyPrefix}{inputName}' entry; give its ids as numbers.");
        }

        var ids = new int[levels.Count];
        for (var r = 0; r < ids.Length; r++)
        {
            var level = levels[r];
            if (level is null || !entry.Ids.TryGetValue(level, out ids[r]))
            {
                var known = string.Join(", ", entry.Levels.Take(10)) + (entry.Levels.Length > 10 ? ", ..." : string.Empty);
                throw new InvalidModelInputException(
                    inputName,
                    level is null
                        ? $"Input '{inputName}', row {r}: a missing level; the model takes one of its {entry.Levels.Length} levels ({known})."
                        : $"Input '{inputName}', row {r}: the level '{level}' is not among the model's {entry.Levels.Length} levels ({known}); the model was fitted without it.");
            }
        }

        var info = inputs[index];
        long[] shape = info.Rank == 2 && info.Dimensions[1] == 1 ? [ids.Length, 1] : [ids.Length];
        return info.ElementType switch
        {
            OnnxElementType.Int32 => OnnxArray.FromInt32(ids, shape),
            OnnxElementType.Int64 => OnnxArray.FromInt64(ids.Select(i => (long)i).ToArray(), shape),
            OnnxElementType.Float32 => OnnxArray.FromFloat32(ids.Select(i => (float)i).ToArray(), shape),
            OnnxElementType.Float64 => OnnxArray.FromFloat64(ids.Select(i => (double)i).ToArray(), shape),
            _ => throw new InvalidModelInputException(inputName, $"Input '{inputName}' is {info.ElementType.ToString().ToLowerInvariant()}, which holds no category ids."),
        };
    }

    /// <summary>The levels of each categorical input, read from the metadata once.</summary>
    private IReadOnlyDictionary<string, (string[] Levels, ReadOnlyCollection<string> View, Dictionary<string, int> Ids)> Levels() =>
        LazyInitializer.EnsureInitialized(ref levelsByInput, () =>
        {
            var result = new Dictionary<string, (string[], ReadOnlyCollection<string>, Dictionary<string, int>)>(StringComparer.Ordinal);
            foreach (var (key, json) in Metadata.CustomMetadata)
            {
                if (!key.StartsWith(LevelsKeyPrefix, StringComparison.Ordinal))
                {
                    continue;
                }

                string[] levels;
                try
                {
                    levels = JsonSerializer.Deserialize<string[]>(json) ?? throw new JsonException("null");
                }
                catch (JsonException e)
                {
                    throw new InvalidDataException($"The model's '{key}' metadata is not a JSON array of strings: {e.Message}", e);
                }

                var ids = new Dictionary<string, int>(levels.Length, StringComparer.Ordinal);
                for (var i = 0; i < levels.Length; i++)
                {
                    if (levels[i] is null || !ids.TryAdd(levels[i], i))
                    {
                        throw new InvalidDataException($"The model's '{key}' metadata lists a null or repeated level at index {i}.");
                    }
                }

                // one read-only view, so that callers may cache by it
                result[key[LevelsKeyPrefix.Length..]] = (levels, new ReadOnlyCollection<string>(levels), ids);
            }

            return result;
        });
}
