using Microsoft.FSharp.Core;
using FTensor = FunctionalBayes.Tensors.Tensor;
using T = FunctionalBayes.Tensors.TensorModule;

namespace FunctionalBayes.Fluent;

/// <summary>
/// An immutable n-dimensional array of numbers (float64 by default) with automatic differentiation:
/// the values a model body computes with. Arithmetic operators broadcast like NumPy.
/// </summary>
/// <remarks>
/// The name avoids a clash with <c>System.Numerics.Tensors.Tensor&lt;T&gt;</c> in code that imports both
/// namespaces. Inside a model, arrays may be tracked for differentiation; <see cref="ToArray"/> and the
/// other conversions read their current values.
/// </remarks>
public sealed class NdArray
{
    internal NdArray(FTensor? value) => Value = value ?? throw new InvalidOperationException("The core library returned no tensor.");

    /// <summary>The wrapped core tensor.</summary>
    internal FTensor Value { get; }

    internal static NdArray Wrap(FTensor? value) => new(value);

    internal static FTensor? Unwrap(NdArray? a) => a?.Value;

    // ---- creation ---------------------------------------------------------------------------

    /// <summary>A one-dimensional float64 array (the data are copied).</summary>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    public static NdArray FromArray(double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(T.ofArray(values));
    }

    /// <summary>A one-dimensional float32 array (the data are copied).</summary>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    public static NdArray FromArray(float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(T.ofArrayF32(values));
    }

    /// <summary>A one-dimensional int32 array, for category ids and indices (the data are copied).</summary>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    public static NdArray FromArray(int[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(T.ofInts(values));
    }

    /// <summary>A two-dimensional float64 array: rows by columns (the data are copied).</summary>
    /// <param name="values">The matrix.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    public static NdArray FromMatrix(double[,] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(T.ofArray2D(values));
    }

    /// <summary>A two-dimensional float32 array: rows by columns (the data are copied).</summary>
    /// <param name="values">The matrix.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    public static NdArray FromMatrix(float[,] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(T.ofArray2DF32(values));
    }

    /// <summary>A float64 array of any shape from row-major data (copied).</summary>
    /// <param name="shape">The shape, for example <c>[2, 3]</c>.</param>
    /// <param name="data">Row-major values; their number must be the product of the shape.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data do not fill the shape.</exception>
    public static NdArray Create(IReadOnlyList<int> shape, IReadOnlyList<double> data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        return new(T.create(shape.ToArray(), data.ToArray()));
    }

    /// <summary>A rank-0 float64 array holding one value.</summary>
    /// <param name="value">The value.</param>
    public static NdArray Scalar(double value) => new(T.scalar(value));

    /// <summary>A float64 array of the given shape filled with one value.</summary>
    /// <param name="value">The fill value.</param>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    public static NdArray Full(double value, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return new(T.full(shape, value));
    }

    /// <summary>A float64 array of zeros.</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    public static NdArray Zeros(params int[] shape) => Full(0.0, shape);

    /// <summary>A float64 array of ones.</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    public static NdArray Ones(params int[] shape) => Full(1.0, shape);

    /// <summary>Draws standard normal values from a seed (the same seed gives the same values on any machine).</summary>
    /// <param name="seed">The seed.</param>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    public static NdArray RandomNormal(ulong seed, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return new(FunctionalBayes.Tensors.Rng.normal(FunctionalBayes.Tensors.Rng.key(seed), shape));
    }

    /// <summary>Joins arrays along an existing axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    /// <param name="arrays">The arrays, of equal shape except along <paramref name="axis"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="arrays"/> or one of its items is null.</exception>
    public static NdArray Concat(int axis, params NdArray[] arrays)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        var ts = new FTensor[arrays.Length];
        for (var i = 0; i < arrays.Length; i++)
            ts[i] = (arrays[i] ?? throw new ArgumentNullException(nameof(arrays), $"NdArray.Concat: array {i} is null.")).Value;
        return new(T.concat(axis, ts));
    }

    /// <summary>A rank-0 array from a number, so that numbers can be passed where arrays are expected.</summary>
    /// <param name="value">The value.</param>
    public static implicit operator NdArray(double value) => Scalar(value);

    // ---- properties and conversion ----------------------------------------------------------

    /// <summary>The shape (a fresh array).</summary>
    public int[] Shape => Value.Shape;

    /// <summary>The number of axes.</summary>
    public int Rank => Value.Rank;

    /// <summary>The number of elements.</summary>
    public int Size => Value.Size;

    /// <summary>The element type: "float64", "float32", "int32" or "bool".</summary>
    public string ElementType => Value.Dtype.ToString();

    /// <summary>The values as float64, row-major (a copy).</summary>
    public double[] ToArray() => T.toArray(Value);

    /// <summary>The values as int32 (integers as they are, floats truncated).</summary>
    public int[] ToIntArray() => T.toInts(Value);

    /// <summary>A rank-2 array as a matrix.</summary>
    /// <exception cref="ArgumentException">The array is not of rank 2.</exception>
    public double[,] ToMatrix() => T.toArray2D(Value);

    /// <summary>The single value of a one-element array.</summary>
    /// <exception cref="ArgumentException">The array has more than one element.</exception>
    public double ToScalar() => T.toScalar(Value);

    /// <summary>The same values without differentiation (gradients stop here).</summary>
    public NdArray Detach() => new(T.detach(Value));

    /// <inheritdoc />
    public override string ToString()
    {
        // the core prints Tensor(...): a C# user knows this type as NdArray
        var s = Value.ToString();
        return s.StartsWith("Tensor(", StringComparison.Ordinal) ? "NdArray" + s.Substring("Tensor".Length) : s;
    }

    // ---- operators --------------------------------------------------------------------------

    /// <summary>Element-wise sum, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    public static NdArray operator +(NdArray a, NdArray b) => new(Arg(a, nameof(a)) + Arg(b, nameof(b)));
    /// <summary>Adds a number to every element.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    public static NdArray operator +(NdArray a, double b) => new(Arg(a, nameof(a)) + b);
    /// <summary>Adds a number to every element.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    public static NdArray operator +(double a, NdArray b) => new(a + Arg(b, nameof(b)));
    /// <summary>Element-wise difference, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    public static NdArray operator -(NdArray a, NdArray b) => new(Arg(a, nameof(a)) - Arg(b, nameof(b)));
    /// <summary>Subtracts a number from every element.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    public static NdArray operator -(NdArray a, double b) => new(Arg(a, nameof(a)) - b);
    /// <summary>Subtracts every element from a number.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    public static NdArray operator -(double a, NdArray b) => new(a - Arg(b, nameof(b)));
    /// <summary>Element-wise product, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    public static NdArray operator *(NdArray a, NdArray b) => new(Arg(a, nameof(a)) * Arg(b, nameof(b)));
    /// <summary>Multiplies every element by a number.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    public static NdArray operator *(NdArray a, double b) => new(Arg(a, nameof(a)) * b);
    /// <summary>Multiplies every element by a number.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    public static NdArray operator *(double a, NdArray b) => new(a * Arg(b, nameof(b)));
    /// <summary>Element-wise quotient, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    public static NdArray operator /(NdArray a, NdArray b) => new(Arg(a, nameof(a)) / Arg(b, nameof(b)));
    /// <summary>Divides every element by a number.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    public static NdArray operator /(NdArray a, double b) => new(Arg(a, nameof(a)) / b);
    /// <summary>Divides a number by every element.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    public static NdArray operator /(double a, NdArray b) => new(a / Arg(b, nameof(b)));
    /// <summary>Element-wise negation.</summary>
    /// <param name="a">The array.</param>
    public static NdArray operator -(NdArray a) => new(-Arg(a, nameof(a)));

    private static FTensor Arg(NdArray? a, string name) => (a ?? throw new ArgumentNullException(name)).Value;

    // ---- element-wise math ------------------------------------------------------------------

    /// <summary>e raised to each element.</summary>
    public NdArray Exp() => new(T.exp(Value));
    /// <summary>The natural logarithm of each element.</summary>
    public NdArray Log() => new(T.log(Value));
    /// <summary>The square root of each element.</summary>
    public NdArray Sqrt() => new(T.sqrt(Value));
    /// <summary>The absolute value of each element.</summary>
    public NdArray Abs() => new(T.abs(Value));
    /// <summary>Each element squared.</summary>
    public NdArray Square() => new(T.square(Value));
    /// <summary>Each element raised to a power.</summary>
    /// <param name="exponent">The power.</param>
    public NdArray Pow(double exponent) => new(T.powScalar(Value, exponent));
    /// <summary>The logistic sigmoid 1 / (1 + e^−x) of each element.</summary>
    public NdArray Sigmoid() => new(T.sigmoid(Value));
    /// <summary>The hyperbolic tangent of each element.</summary>
    public NdArray Tanh() => new(T.tanh(Value));
    /// <summary>log(1 + e^x) of each element, computed stably.</summary>
    public NdArray Softplus() => new(T.softplus(Value));
    /// <summary>max(x, 0) of each element.</summary>
    public NdArray Relu() => new(T.relu(Value));
    /// <summary>Clamps each element to [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <param name="min">The lower bound (may be negative infinity).</param>
    /// <param name="max">The upper bound (may be positive infinity).</param>
    public NdArray Clamp(double min, double max) => new(T.clamp(min, max, Value));

    // ---- reductions, shapes and linear algebra ----------------------------------------------

    /// <summary>The sum of all elements (rank 0).</summary>
    public NdArray Sum() => new(T.sum(Value));
    /// <summary>The sum along one axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    /// <param name="keepDims">Keep the axis with length 1.</param>
    public NdArray Sum(int axis, bool keepDims = false) => new(T.sumAxes(new[] { axis }, keepDims, Value));
    /// <summary>The mean of all elements (rank 0).</summary>
    public NdArray Mean() => new(T.mean(Value));
    /// <summary>The mean along one axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    /// <param name="keepDims">Keep the axis with length 1.</param>
    public NdArray Mean(int axis, bool keepDims = false) => new(T.meanAxes(new[] { axis }, keepDims, Value));
    /// <summary>Softmax along an axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    public NdArray Softmax(int axis = -1) => new(T.softmax(axis, Value));

    /// <summary>The matrix product with NumPy's rules (a vector is a row on the left, a column on the right).</summary>
    /// <param name="other">The right operand.</param>
    /// <exception cref="ArgumentNullException"><paramref name="other"/> is null.</exception>
    /// <exception cref="ArgumentException">The inner dimensions differ; the message names both shapes.</exception>
    public NdArray MatMul(NdArray other) => new(T.matmul(Value, Arg(other, nameof(other))));
    /// <summary>Swaps the last two axes.</summary>
    public NdArray Transpose() => new(T.transpose(Value));

    /// <summary>The lower Cholesky factor L (L·Lᵀ = this) of a symmetric positive-definite matrix, or of each in a batch [..., N, N].</summary>
    /// <exception cref="ArgumentException">The matrix is not square or not positive definite.</exception>
    public NdArray Cholesky() => new(T.cholesky(Value));
    /// <summary>The same elements in a new shape; one dimension may be −1 and is then inferred.</summary>
    /// <param name="shape">The new shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    public NdArray Reshape(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return new(T.reshape(shape, Value));
    }
    /// <summary>All elements as a vector.</summary>
    public NdArray Flatten() => new(T.flatten(Value));
    /// <summary>Elements <paramref name="start"/> to <paramref name="start"/> + <paramref name="length"/> − 1 along an axis.</summary>
    /// <param name="axis">The axis.</param>
    /// <param name="start">The first index.</param>
    /// <param name="length">How many.</param>
    public NdArray Narrow(int axis, int start, int length) => new(T.narrow(axis, start, length, Value));
    /// <summary>Element <paramref name="index"/> along an axis, dropping that axis (for example one column of a matrix).</summary>
    /// <param name="axis">The axis.</param>
    /// <param name="index">The index.</param>
    public NdArray Slice(int axis, int index) => new(T.select(axis, index, Value));
    /// <summary>Picks entries along an axis by integer indices (an int32 array).</summary>
    /// <param name="axis">The axis.</param>
    /// <param name="indices">The indices.</param>
    /// <exception cref="ArgumentNullException"><paramref name="indices"/> is null.</exception>
    public NdArray Take(int axis, NdArray indices) => new(T.indexSelect(axis, Arg(indices, nameof(indices)), Value));
    /// <summary>Inserts an axis of length 1.</summary>
    /// <param name="axis">Where.</param>
    public NdArray Unsqueeze(int axis) => new(T.unsqueeze(axis, Value));
}
