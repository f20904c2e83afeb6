using System.Collections.ObjectModel;

namespace FunctionalBayes.OnnxRuntime;

/// <summary>
/// A dense, row-major n-dimensional array: an element type, a shape and a flat data array.
/// It is what <see cref="OnnxPredictor.Run(IReadOnlyDictionary{string, OnnxArray})"/> takes and returns.
/// </summary>
/// <remarks>
/// The data array is not copied: an input is read in place (pinned) during a run, so do not change it
/// while a run that uses it is in progress.
/// </remarks>
public sealed class OnnxArray
{
    private readonly long[] shape;

    private OnnxArray(OnnxElementType elementType, Array data, long[] shape, bool prefix = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        this.shape = (long[])shape.Clone();
        long count = 1;
        foreach (var d in this.shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"The shape {FormatShape(shape)} has a negative dimension.", nameof(shape));
            }

            count = checked(count * d);
        }

        if (prefix ? count > data.LongLength : count != data.LongLength)
        {
            throw new ArgumentException(
                $"The data has {data.LongLength} elements but the shape {FormatShape(shape)} needs {count}.", nameof(data));
        }

        ElementType = elementType;
        Length = count;
        Data = data;
        Shape = new ReadOnlyCollection<long>(this.shape);
    }

    /// <summary>The element type: <see cref="OnnxElementType.Float32"/>, <see cref="OnnxElementType.Float64"/>,
    /// <see cref="OnnxElementType.Int32"/> or <see cref="OnnxElementType.Int64"/>.</summary>
    public OnnxElementType ElementType { get; }

    /// <summary>The dimensions, outermost first. Empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The flat, row-major data: a <c>float[]</c>, <c>double[]</c>, <c>int[]</c> or <c>long[]</c>. For an array
    /// made by <see cref="FromBuffer{T}"/> it may be longer than <see cref="Length"/>; only its first <see cref="Length"/>
    /// elements belong to the array.</summary>
    public Array Data { get; }

    /// <summary>The number of elements (the product of the shape).</summary>
    public long Length { get; }

    internal long[] ShapeArray => shape;

    /// <summary>Wraps float32 data (not copied) with a shape.</summary>
    /// <param name="data">The row-major data; its length must be the product of the shape.</param>
    /// <param name="shape">The dimensions.</param>
    public static OnnxArray FromFloat32(float[] data, params long[] shape) => new(OnnxElementType.Float32, data, shape);

    /// <summary>Wraps float64 data (not copied) with a shape.</summary>
    /// <param name="data">The row-major data; its length must be the product of the shape.</param>
    /// <param name="shape">The dimensions.</param>
    public static OnnxArray FromFloat64(double[] data, params long[] shape) => new(OnnxElementType.Float64, data, shape);

    /// <summary>Wraps int32 data (not copied) with a shape.</summary>
    /// <param name="data">The row-major data; its length must be the product of the shape.</param>
    /// <param name="shape">The dimensions.</param>
    public static OnnxArray FromInt32(int[] data, params long[] shape) => new(OnnxElementType.Int32, data, shape);

    /// <summary>Wraps int64 data (not copied) with a shape.</summary>
    /// <param name="data">The row-major data; its length must be the product of the shape.</param>
    /// <param name="shape">The dimensions.</param>
    public static OnnxArray FromInt64(long[] data, params long[] shape) => new(OnnxElementType.Int64, data, shape);

    /// <summary>Wraps data of a supported element type (<see cref="float"/>, <see cref="double"/>,
    /// <see cref="int"/> or <see cref="long"/>) with a shape.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="data">The row-major data; its length must be the product of the shape.</param>
    /// <param name="shape">The dimensions.</param>
    /// <exception cref="NotSupportedException">For any other <typeparamref name="T"/>.</exception>
    public static OnnxArray Create<T>(T[] data, params long[] shape)
        where T : unmanaged =>
        new(ElementTypeOf<T>(), data, shape);

    /// <summary>Wraps the first elements of a buffer that may be longer than the shape needs, such as one rented from
    /// <see cref="System.Buffers.ArrayPool{T}"/> (not copied; the caller returns it to its pool after the run).</summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, <see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <param name="buffer">The row-major data in its first (product of the shape) elements.</param>
    /// <param name="shape">The dimensions.</param>
    /// <exception cref="NotSupportedException">For any other <typeparamref name="T"/>.</exception>
    public static OnnxArray FromBuffer<T>(T[] buffer, params long[] shape)
        where T : unmanaged =>
        new(ElementTypeOf<T>(), buffer, shape, prefix: true);

    /// <summary>The data as a <typeparamref name="T"/>[] (not copied).</summary>
    /// <typeparam name="T">The CLR element type matching <see cref="ElementType"/>.</typeparam>
    /// <exception cref="InvalidCastException">When <typeparamref name="T"/> does not match the element type.</exception>
    public T[] GetData<T>()
        where T : unmanaged =>
        Data as T[] ?? throw new InvalidCastException(
            $"The array holds {ElementType.ToString().ToLowerInvariant()} elements ({Data.GetType().Name}), not {typeof(T).Name}.");

    /// <summary>The shape as a new array.</summary>
    public long[] GetShape() => (long[])shape.Clone();

    /// <inheritdoc />
    public override string ToString() => $"{ElementType.ToString().ToLowerInvariant()}{FormatShape(shape)}";

    internal static OnnxElementType ElementTypeOf<T>() =>
        typeof(T) == typeof(float) ? OnnxElementType.Float32
        : typeof(T) == typeof(double) ? OnnxElementType.Float64
        : typeof(T) == typeof(int) ? OnnxElementType.Int32
        : typeof(T) == typeof(long) ? OnnxElementType.Int64
        : throw new NotSupportedException($"Element type {typeof(T).Name} is not supported; use float, double, int or long.");

    internal static bool IsSupported(OnnxElementType type) =>
        type is OnnxElementType.Float32 or OnnxElementType.Float64 or OnnxElementType.Int32 or OnnxElementType.Int64;

    internal static int ElementSize(OnnxElementType type) => type switch
    {
        OnnxElementType.Float32 or OnnxElementType.Int32 => 4,
        OnnxElementType.Float64 or OnnxElementType.Int64 => 8,
        _ => throw new NotSupportedException($"Element type {type} is not supported."),
    };

    internal static OnnxArray CreateUnchecked(OnnxElementType type, Array data, long[] shape) => new(type, data, shape);

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
