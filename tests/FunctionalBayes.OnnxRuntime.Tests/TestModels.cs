using Google.Protobuf;
using Onnx;

namespace FunctionalBayes.OnnxRuntime.Tests;

/// <summary>Small ONNX models built with the Onnx.* protobuf classes (IR 8, opset 17), and C# references.</summary>
internal static class TestModels
{
    public const int InFeatures = 5;
    public const int OutFeatures = 3;

    /// <summary>Deterministic weights W (5×3, row-major) and bias b (3).</summary>
    public static readonly double[] W = Enumerable.Range(0, InFeatures * OutFeatures).Select(i => Math.Sin(1.3 * i + 0.2) * 0.7).ToArray();
    public static readonly double[] B = [0.1, -0.25, 0.05];

    /// <summary>y = tanh(x·W + b), x: [N, 5], y: [N, 3]; with <paramref name="softmax"/>, also
    /// p = softmax(y, axis −1) and s = ReduceSum(p, axes [1], keepdims 0): [N].</summary>
    public static byte[] Tanh(TensorProto.Types.DataType type, bool softmax = false)
    {
        var graph = new GraphProto { Name = softmax ? "tanh_softmax" : "tanh_layer" };
        graph.Input.Add(Value("x", type, Sym("N"), Fixed(InFeatures)));
        graph.Initializer.Add(Initializer("W", type, W, InFeatures, OutFeatures));
        graph.Initializer.Add(Initializer("b", type, B, OutFeatures));
        graph.Node.Add(Node("MatMul", ["x", "W"], ["xw"]));
        graph.Node.Add(Node("Add", ["xw", "b"], ["z"]));
        graph.Node.Add(Node("Tanh", ["z"], ["y"]));
        graph.Output.Add(Value("y", type, Sym("N"), Fixed(OutFeatures)));
        if (softmax)
        {
            graph.Initializer.Add(new TensorProto
            {
                Name = "axes", DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 1 }, Int64Data = { 1 },
            });
            graph.Node.Add(Node("Softmax", ["y"], ["p"], new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = -1 }));
            graph.Node.Add(Node("ReduceSum", ["p", "axes"], ["s"], new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 0 }));
            graph.Output.Add(Value("p", type, Sym("N"), Fixed(OutFeatures)));
            graph.Output.Add(Value("s", type, Sym("N")));
        }

        return Model(graph);
    }

    /// <summary>out = a + b with a symbolic length, for integer element types.</summary>
    public static byte[] AddTwo(TensorProto.Types.DataType type)
    {
        var graph = new GraphProto { Name = "add_two" };
        graph.Input.Add(Value("a", type, Sym("L")));
        graph.Input.Add(Value("b", type, Sym("L")));
        graph.Node.Add(Node("Add", ["a", "b"], ["out"]));
        graph.Output.Add(Value("out", type, Sym("L")));
        return Model(graph);
    }

    /// <summary>y = Reshape(x, [-1, 3]) for x: [N, 5]: valid for our checks, but ONNX Runtime fails at run time
    /// unless 5·N is a multiple of 3.</summary>
    public static byte[] ReshapeByThree()
    {
        var graph = new GraphProto { Name = "reshape_by_three" };
        graph.Input.Add(Value("x", TensorProto.Types.DataType.Float, Sym("N"), Fixed(InFeatures)));
        graph.Initializer.Add(new TensorProto
        {
            Name = "shape", DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 2 }, Int64Data = { -1, 3 },
        });
        graph.Node.Add(Node("Reshape", ["x", "shape"], ["y"]));
        graph.Output.Add(Value("y", TensorProto.Types.DataType.Float, Sym("M"), Fixed(3)));
        return Model(graph);
    }

    public static string WriteTemp(byte[] model)
    {
        var path = Path.Combine(Path.GetTempPath(), $"fb-ort-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, model);
        return path;
    }

    /// <summary>The reference tanh(x·W + b) in double precision.</summary>
    public static double[] TanhReference(IReadOnlyList<double> x, int batch)
    {
        var y = new double[batch * OutFeatures];
        for (var n = 0; n < batch; n++)
        {
            for (var j = 0; j < OutFeatures; j++)
            {
                var acc = B[j];
                for (var k = 0; k < InFeatures; k++)
                {
                    acc += x[n * InFeatures + k] * W[k * OutFeatures + j];
                }

                y[n * OutFeatures + j] = Math.Tanh(acc);
            }
        }

        return y;
    }

    public static double[] SoftmaxRows(double[] y, int batch)
    {
        var p = new double[y.Length];
        for (var n = 0; n < batch; n++)
        {
            var row = y.AsSpan(n * OutFeatures, OutFeatures);
            var max = row.ToArray().Max();
            var sum = 0.0;
            for (var j = 0; j < OutFeatures; j++)
            {
                sum += p[n * OutFeatures + j] = Math.Exp(row[j] - max);
            }

            for (var j = 0; j < OutFeatures; j++)
            {
                p[n * OutFeatures + j] /= sum;
            }
        }

        return p;
    }

    public static double[] Inputs(int batch, int seed = 1)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, batch * InFeatures).Select(_ => random.NextDouble() * 4 - 2).ToArray();
    }

    public static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double relTol)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var bound = relTol * Math.Max(1.0, Math.Abs(expected[i]));
            Assert.True(Math.Abs(expected[i] - actual[i]) <= bound, $"element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {bound:E2})");
        }
    }

    private static TensorShapeProto.Types.Dimension Sym(string name) => new() { DimParam = name };

    private static TensorShapeProto.Types.Dimension Fixed(long size) => new() { DimValue = size };

    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type, params TensorShapeProto.Types.Dimension[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.AddRange(dims);
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static TensorProto Initializer(string name, TensorProto.Types.DataType type, double[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type };
        tensor.Dims.AddRange(dims);
        if (type == TensorProto.Types.DataType.Float)
        {
            var floats = values.Select(v => (float)v).ToArray();
            var bytes = new byte[floats.Length * 4];
            Buffer.BlockCopy(floats, 0, bytes, 0, bytes.Length);
            tensor.RawData = ByteString.CopyFrom(bytes);
        }
        else
        {
            tensor.DoubleData.AddRange(values);
        }

        return tensor;
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = op + "_" + outputs[0] };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static byte[] Model(GraphProto graph)
    {
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "FunctionalBayes.Tests",
            ProducerVersion = "1.0",
            Domain = "ai.functionalbayes",
            ModelVersion = 3,
            DocString = "a test model",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "likelihood", Value = "normal" });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "features", Value = "5" });
        return model.ToByteArray();
    }
}
