namespace FunctionalBayes.Fluent

open System
open System.Collections.Generic
open System.Runtime.InteropServices
open FunctionalBayes.Tensors

/// Argument checks of the facade: C# may pass null wherever F# would not.
module internal Arg =
    /// Throws ArgumentNullException naming the parameter when x is null.
    let inline notNull (name: string) (x: 'T) = if isNull (box x) then nullArg name

    /// x, or ArgumentNullException naming the parameter.
    let inline get (name: string) (x: 'T) : 'T = (if isNull (box x) then nullArg name); x

    /// x, or ArgumentNullException with a message.
    let inline getMsg (name: string) (message: string) (x: 'T) : 'T =
        if isNull (box x) then raise (ArgumentNullException(name, message))
        x

    /// An F# option of a possibly null reference.
    let inline opt (x: 'T) : 'T option = if isNull (box x) then None else Some x

    /// An F# option of a Nullable.
    let inline optv (x: Nullable<'T>) : 'T option = if x.HasValue then Some x.Value else None

    /// A read-only copy of an array, as C# sees it.
    let inline readOnly (xs: 'T[]) : IReadOnlyList<'T> = Array.AsReadOnly(Array.copy xs) :> IReadOnlyList<'T>

/// <summary>
/// An immutable n-dimensional array of numbers (float64 by default) with automatic differentiation:
/// the values a model body computes with. Arithmetic operators broadcast like NumPy.
/// </summary>
/// <remarks>
/// The name avoids a clash with <c>System.Numerics.Tensors.Tensor&lt;T&gt;</c> in code that imports both
/// namespaces. Inside a model, arrays may be tracked for differentiation; <see cref="ToArray"/> and the
/// other conversions read their current values.
/// </remarks>
[<Sealed; AllowNullLiteral>]
type NdArray internal (value: Tensor) =
    do if isNull (box value) then invalidOp "The core library returned no tensor."

    static let arg (name: string) (a: NdArray) : Tensor = (Arg.get name a).Value

    /// The wrapped core tensor.
    member internal _.Value = value

    static member internal Wrap(t: Tensor) = NdArray(t)

    // ---- creation ---------------------------------------------------------------------------

    /// <summary>A one-dimensional float64 array (the data are copied).</summary>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    static member FromArray(values: float[]) = NdArray(Tensor.ofArray (Arg.get "values" values))

    /// <summary>A one-dimensional float32 array (the data are copied).</summary>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    static member FromArray(values: float32[]) = NdArray(Tensor.ofArrayF32 (Arg.get "values" values))

    /// <summary>A one-dimensional int32 array, for category ids and indices (the data are copied).</summary>
    /// <param name="values">The values.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    static member FromArray(values: int[]) = NdArray(Tensor.ofInts (Arg.get "values" values))

    /// <summary>A two-dimensional float64 array: rows by columns (the data are copied).</summary>
    /// <param name="values">The matrix.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    static member FromMatrix(values: float[,]) = NdArray(Tensor.ofArray2D (Arg.get "values" values))

    /// <summary>A two-dimensional float32 array: rows by columns (the data are copied).</summary>
    /// <param name="values">The matrix.</param>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    static member FromMatrix(values: float32[,]) = NdArray(Tensor.ofArray2DF32 (Arg.get "values" values))

    /// <summary>A float64 array of any shape from row-major data (copied).</summary>
    /// <param name="shape">The shape, for example <c>[2, 3]</c>.</param>
    /// <param name="data">Row-major values; their number must be the product of the shape.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The data do not fill the shape.</exception>
    static member Create(shape: IReadOnlyList<int>, data: IReadOnlyList<float>) =
        Arg.notNull "shape" shape
        Arg.notNull "data" data
        NdArray(Tensor.create (Seq.toArray shape) (Seq.toArray data))

    /// <summary>A rank-0 float64 array holding one value.</summary>
    /// <param name="value">The value.</param>
    static member Scalar(value: float) = NdArray(Tensor.scalar value)

    /// <summary>A float64 array of the given shape filled with one value.</summary>
    /// <param name="value">The fill value.</param>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    static member Full(value: float, [<ParamArray>] shape: int[]) = NdArray(Tensor.full (Arg.get "shape" shape) value)

    /// <summary>A float64 array of zeros.</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    static member Zeros([<ParamArray>] shape: int[]) = NdArray.Full(0.0, shape)

    /// <summary>A float64 array of ones.</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    static member Ones([<ParamArray>] shape: int[]) = NdArray.Full(1.0, shape)

    /// <summary>Draws standard normal values from a seed (the same seed gives the same values on any machine).</summary>
    /// <param name="seed">The seed.</param>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    static member RandomNormal(seed: uint64, [<ParamArray>] shape: int[]) =
        NdArray(Rng.normal (Rng.key seed) (Arg.get "shape" shape))

    /// <summary>Joins arrays along an existing axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    /// <param name="arrays">The arrays, of equal shape except along <paramref name="axis"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="arrays"/> or one of its items is null.</exception>
    static member Concat(axis: int, [<ParamArray>] arrays: NdArray[]) =
        let ts =
            Arg.get "arrays" arrays
            |> Array.mapi (fun i a -> (Arg.getMsg "arrays" $"NdArray.Concat: array {i} is null." a).Value)
        NdArray(Tensor.concat axis ts)

    /// <summary>A rank-0 array from a number, so that numbers can be passed where arrays are expected.</summary>
    /// <param name="value">The value.</param>
    static member op_Implicit(value: float) : NdArray = NdArray.Scalar value

    // ---- properties and conversion ----------------------------------------------------------

    /// <summary>The shape (a fresh array).</summary>
    member _.Shape: int[] = value.Shape

    /// <summary>The number of axes.</summary>
    member _.Rank = value.Rank

    /// <summary>The number of elements.</summary>
    member _.Size = value.Size

    /// <summary>The element type: "float64", "float32", "int32" or "bool".</summary>
    member _.ElementType = value.Dtype.ToString()

    /// <summary>The values as float64, row-major (a copy).</summary>
    member _.ToArray() : float[] = Tensor.toArray value

    /// <summary>The values as int32 (integers as they are, floats truncated).</summary>
    member _.ToIntArray() : int[] = Tensor.toInts value

    /// <summary>A rank-2 array as a matrix.</summary>
    /// <exception cref="ArgumentException">The array is not of rank 2.</exception>
    member _.ToMatrix() : float[,] = Tensor.toArray2D value

    /// <summary>The single value of a one-element array.</summary>
    /// <exception cref="ArgumentException">The array has more than one element.</exception>
    member _.ToScalar() : float = Tensor.toScalar value

    /// <summary>The same values without differentiation (gradients stop here).</summary>
    member _.Detach() = NdArray(Tensor.detach value)

    /// <inheritdoc />
    override _.ToString() =
        // the core prints Tensor(...): a C# user knows this type as NdArray
        let s = value.ToString()
        if s.StartsWith("Tensor(", StringComparison.Ordinal) then "NdArray" + s.Substring("Tensor".Length) else s

    // ---- operators --------------------------------------------------------------------------

    /// <summary>Element-wise sum, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    static member (+)(a: NdArray, b: NdArray) = NdArray(arg "a" a + arg "b" b)
    /// <summary>Adds a number to every element.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    static member (+)(a: NdArray, b: float) = NdArray(arg "a" a + b)
    /// <summary>Adds a number to every element.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    static member (+)(a: float, b: NdArray) = NdArray(a + arg "b" b)
    /// <summary>Element-wise difference, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    static member (-)(a: NdArray, b: NdArray) = NdArray(arg "a" a - arg "b" b)
    /// <summary>Subtracts a number from every element.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    static member (-)(a: NdArray, b: float) = NdArray(arg "a" a - b)
    /// <summary>Subtracts every element from a number.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    static member (-)(a: float, b: NdArray) = NdArray(a - arg "b" b)
    /// <summary>Element-wise product, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    static member (*)(a: NdArray, b: NdArray) = NdArray(arg "a" a * arg "b" b)
    /// <summary>Multiplies every element by a number.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    static member (*)(a: NdArray, b: float) = NdArray(arg "a" a * b)
    /// <summary>Multiplies every element by a number.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    static member (*)(a: float, b: NdArray) = NdArray(a * arg "b" b)
    /// <summary>Element-wise quotient, broadcasting.</summary>
    /// <param name="a">The left operand.</param>
    /// <param name="b">The right operand.</param>
    static member (/)(a: NdArray, b: NdArray) = NdArray(arg "a" a / arg "b" b)
    /// <summary>Divides every element by a number.</summary>
    /// <param name="a">The array.</param>
    /// <param name="b">The number.</param>
    static member (/)(a: NdArray, b: float) = NdArray(arg "a" a / b)
    /// <summary>Divides a number by every element.</summary>
    /// <param name="a">The number.</param>
    /// <param name="b">The array.</param>
    static member (/)(a: float, b: NdArray) = NdArray(a / arg "b" b)
    /// <summary>Element-wise negation.</summary>
    /// <param name="a">The array.</param>
    static member (~-)(a: NdArray) = NdArray(-(arg "a" a))

    // ---- element-wise math ------------------------------------------------------------------

    /// <summary>e raised to each element.</summary>
    member _.Exp() = NdArray(Tensor.exp value)
    /// <summary>The natural logarithm of each element.</summary>
    member _.Log() = NdArray(Tensor.log value)
    /// <summary>The square root of each element.</summary>
    member _.Sqrt() = NdArray(Tensor.sqrt value)
    /// <summary>The absolute value of each element.</summary>
    member _.Abs() = NdArray(Tensor.abs value)
    /// <summary>Each element squared.</summary>
    member _.Square() = NdArray(Tensor.square value)
    /// <summary>Each element raised to a power.</summary>
    /// <param name="exponent">The power.</param>
    member _.Pow(exponent: float) = NdArray(Tensor.powScalar value exponent)
    /// <summary>The logistic sigmoid 1 / (1 + e^−x) of each element.</summary>
    member _.Sigmoid() = NdArray(Tensor.sigmoid value)
    /// <summary>The hyperbolic tangent of each element.</summary>
    member _.Tanh() = NdArray(Tensor.tanh value)
    /// <summary>log(1 + e^x) of each element, computed stably.</summary>
    member _.Softplus() = NdArray(Tensor.softplus value)
    /// <summary>max(x, 0) of each element.</summary>
    member _.Relu() = NdArray(Tensor.relu value)
    /// <summary>Clamps each element to [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <param name="min">The lower bound (may be negative infinity).</param>
    /// <param name="max">The upper bound (may be positive infinity).</param>
    member _.Clamp(min: float, max: float) = NdArray(Tensor.clamp min max value)

    // ---- reductions, shapes and linear algebra ----------------------------------------------

    /// <summary>The sum of all elements (rank 0).</summary>
    member _.Sum() = NdArray(Tensor.sum value)
    /// <summary>The sum along one axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    /// <param name="keepDims">Keep the axis with length 1.</param>
    member _.Sum(axis: int, [<Optional; DefaultParameterValue(false)>] keepDims: bool) = NdArray(Tensor.sumAxes [| axis |] keepDims value)
    /// <summary>The mean of all elements (rank 0).</summary>
    member _.Mean() = NdArray(Tensor.mean value)
    /// <summary>The mean along one axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    /// <param name="keepDims">Keep the axis with length 1.</param>
    member _.Mean(axis: int, [<Optional; DefaultParameterValue(false)>] keepDims: bool) = NdArray(Tensor.meanAxes [| axis |] keepDims value)
    /// <summary>Softmax along an axis.</summary>
    /// <param name="axis">The axis (negative counts from the end).</param>
    member _.Softmax([<Optional; DefaultParameterValue(-1)>] axis: int) =
        NdArray(Tensor.softmax axis value)

    /// <summary>The matrix product with NumPy's rules (a vector is a row on the left, a column on the right).</summary>
    /// <param name="other">The right operand.</param>
    /// <exception cref="ArgumentNullException"><paramref name="other"/> is null.</exception>
    /// <exception cref="ArgumentException">The inner dimensions differ; the message names both shapes.</exception>
    member _.MatMul(other: NdArray) = NdArray(Tensor.matmul value (arg "other" other))
    /// <summary>Swaps the last two axes.</summary>
    member _.Transpose() = NdArray(Tensor.transpose value)

    /// <summary>The lower Cholesky factor L (L·Lᵀ = this) of a symmetric positive-definite matrix, or of each in a batch [..., N, N].</summary>
    /// <exception cref="ArgumentException">The matrix is not square or not positive definite.</exception>
    member _.Cholesky() = NdArray(Tensor.cholesky value)
    /// <summary>The same elements in a new shape; one dimension may be −1 and is then inferred.</summary>
    /// <param name="shape">The new shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    member _.Reshape([<ParamArray>] shape: int[]) = NdArray(Tensor.reshape (Arg.get "shape" shape) value)
    /// <summary>All elements as a vector.</summary>
    member _.Flatten() = NdArray(Tensor.flatten value)
    /// <summary>Elements <paramref name="start"/> to <paramref name="start"/> + <paramref name="length"/> − 1 along an axis.</summary>
    /// <param name="axis">The axis.</param>
    /// <param name="start">The first index.</param>
    /// <param name="length">How many.</param>
    member _.Narrow(axis: int, start: int, length: int) = NdArray(Tensor.narrow axis start length value)
    /// <summary>Element <paramref name="index"/> along an axis, dropping that axis (for example one column of a matrix).</summary>
    /// <param name="axis">The axis.</param>
    /// <param name="index">The index.</param>
    member _.Slice(axis: int, index: int) = NdArray(Tensor.select axis index value)
    /// <summary>Picks entries along an axis by integer indices (an int32 array).</summary>
    /// <param name="axis">The axis.</param>
    /// <param name="indices">The indices.</param>
    /// <exception cref="ArgumentNullException"><paramref name="indices"/> is null.</exception>
    member _.Take(axis: int, indices: NdArray) = NdArray(Tensor.indexSelect axis (arg "indices" indices) value)
    /// <summary>Inserts an axis of length 1.</summary>
    /// <param name="axis">Where.</param>
    member _.Unsqueeze(axis: int) = NdArray(Tensor.unsqueeze axis value)

/// <summary>
/// A key for random numbers (JAX-style): split it into independent keys instead of reusing it. The same key
/// gives the same numbers on any machine and with any number of threads, so simulations are reproducible.
/// </summary>
[<Sealed; AllowNullLiteral>]
type RandomKey private (value: RngKey) =
    member internal _.Value = value

    /// <summary>A key from a seed.</summary>
    /// <param name="seed">The seed.</param>
    static member FromSeed(seed: uint64) = RandomKey(Rng.key seed)

    /// <summary><paramref name="count"/> independent keys from this one (the first two are the same for any count ≥ 2).</summary>
    /// <param name="count">How many keys (at least 0).</param>
    /// <exception cref="ArgumentException"><paramref name="count"/> is negative.</exception>
    member _.Split([<Optional; DefaultParameterValue(2)>] count: int) : IReadOnlyList<RandomKey> =
        Array.AsReadOnly(Rng.splitN value count |> Seq.map RandomKey |> Seq.toArray) :> IReadOnlyList<RandomKey>

    /// <summary>A key derived from this key and an integer (for example a loop index).</summary>
    /// <param name="data">The integer.</param>
    member _.FoldIn(data: int) = RandomKey(Rng.foldIn value data)

    /// <summary>Standard normal draws (float64).</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    member _.Normal([<ParamArray>] shape: int[]) = NdArray(Rng.normal value (Arg.get "shape" shape))

    /// <summary>Uniform draws in (0, 1) (float64).</summary>
    /// <param name="shape">The shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    member _.Uniform([<ParamArray>] shape: int[]) = NdArray(Rng.uniform value (Arg.get "shape" shape))

    /// <summary>A random permutation of 0..n−1 (int32).</summary>
    /// <param name="n">The length.</param>
    member _.Permutation(n: int) = NdArray(Rng.permutation value n)
