using System.Net;
using System.Text;
using System.Text.Json;
using FunctionalBayes.Serving;
using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FunctionalBayes.OnnxRuntime.Tests;

/// <summary>Issue 23: /predict parses its body by streaming into pooled arrays; the answers and errors are those of
/// the in-process predictor.</summary>
public sealed class ServingParserTests(ServingFixture fixture) : IClassFixture<ServingFixture>
{
    private static async Task<(HttpStatusCode Status, string Text)> Post(HttpClient client, string body)
    {
        using var response = await client.PostAsync("/predict", new StringContent(body, Encoding.UTF8, "application/json"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string Detail(HttpStatusCode status, string text)
    {
        Assert.True(status == HttpStatusCode.BadRequest, $"{(int)status}: {text}");
        using var json = JsonDocument.Parse(text);
        Assert.Equal(400, json.RootElement.GetProperty("status").GetInt32());
        return json.RootElement.GetProperty("detail").GetString()!;
    }

    /// <summary>Serves one model on a free loopback port for the duration of <paramref name="body"/>.</summary>
    private static async Task Serving(byte[] model, Func<HttpClient, Task> body)
    {
        var path = TestModels.WriteTemp(model);
        var app = ServingApp.Build(path, "http://127.0.0.1:0");
        try
        {
            await app.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri(ServingApp.GetListeningUrl(app)), Timeout = TimeSpan.FromSeconds(30) };
            await body(client);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("{\"x\": [[1, 2, 3, 4, 5]]")]
    [InlineData("{\"x\": [[1, 2, 3, 4, 5],]}")]
    [InlineData("{\"x\": [[1, 2, 3, 4, 5]]} trailing")]
    [InlineData("{\"x\": [[1, 2, 3, 4, 5 6]]}")]
    [InlineData("{\"x\": [[NaN, 2, 3, 4, 5]]}")]
    public async Task Malformed_json_gets_400_with_a_problem(string body)
    {
        var (status, text) = await Post(fixture.Client, body);
        Assert.Contains("not valid JSON", Detail(status, text));
    }

    [Fact]
    public async Task A_row_of_the_wrong_width_gets_400_naming_the_row()
    {
        var (status, text) = await Post(fixture.Client, "{\"x\": [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5]]}");
        var detail = Detail(status, text);
        Assert.Contains("x[2] has 7 numbers", detail);
        Assert.Contains("must have 5", detail);
    }

    [Theory]
    [InlineData("[[1, 2, 3, 4, 5], [1, \"NaN\", 3, 4, 5]]", "x[1][1] is a string (\"NaN\")")]
    [InlineData("[[1, 2, 3, 4, 5], [1, 2, 3, 4, \"five\"]]", "x[1][4] is a string (\"five\")")]
    [InlineData("[[1, 2, 3, 4, 5], [1, 2, 3, 1e39, 5]]", "x[1][3] = 1e39 is not a valid float32 value")]
    [InlineData("[[1, 2, 3, 4, 5], [1, 2, {}, 4, 5]]", "x[1][2] is a object")]
    [InlineData("[[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], []]", "x[2] has 0 numbers")]
    public async Task A_bad_value_gets_400_naming_row_and_column(string x, string expected)
    {
        var (status, text) = await Post(fixture.Client, $"{{\"x\": {x}}}");
        Assert.Contains(expected, Detail(status, text));
    }

    [Fact]
    public async Task Predictions_equal_the_in_process_predictor_on_random_inputs()
    {
        using var predictor = OnnxPredictor.Load(TestModels.Tanh(DataType.Float, softmax: true));
        var random = new Random(2323);
        for (var trial = 0; trial < 20; trial++)
        {
            var n = random.Next(1, 60);
            var x = new float[n * 5];
            for (var i = 0; i < x.Length; i++)
            {
                x[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 3)));
            }

            var rows = Enumerable.Range(0, n).Select(r => x.Skip(r * 5).Take(5).ToArray()).ToArray();
            var (status, text) = await Post(fixture.Client, JsonSerializer.Serialize(new { x = rows }));
            Assert.True(status == HttpStatusCode.OK, text);
            var expected = predictor.Run(new Dictionary<string, OnnxArray> { ["x"] = OnnxArray.FromFloat32(x, n, 5) });
            using var json = JsonDocument.Parse(text);
            foreach (var (name, array) in expected)
            {
                var actual = Flatten(json.RootElement.GetProperty(name)).Select(e => e.GetSingle()).ToArray();
                Assert.Equal(array.GetData<float>(), actual); // exact: the same floats went in
            }
        }
    }

    [Fact]
    public async Task Float64_predictions_equal_the_in_process_predictor()
    {
        var model = TestModels.Tanh(DataType.Double);
        using var predictor = OnnxPredictor.Load(model);
        var x = TestModels.Inputs(7, seed: 5);
        var expected = predictor.Run(new Dictionary<string, OnnxArray> { ["x"] = OnnxArray.FromFloat64(x.ToArray(), 7, 5) })["y"].GetData<double>();
        await Serving(model, async client =>
        {
            var rows = Enumerable.Range(0, 7).Select(r => x.Skip(r * 5).Take(5).ToArray()).ToArray();
            var (status, text) = await Post(client, JsonSerializer.Serialize(new { x = rows }));
            Assert.True(status == HttpStatusCode.OK, text);
            using var json = JsonDocument.Parse(text);
            Assert.Equal(expected, Flatten(json.RootElement.GetProperty("y")).Select(e => e.GetDouble()).ToArray());
        });
    }

    [Fact]
    public async Task Int64_id_columns_are_parsed_exactly_and_invalid_ids_are_rejected()
    {
        var model = ModelProto.Parser.ParseFrom(TestModels.AddTwo(DataType.Int64));
        model.MetadataProps.Add(new StringStringEntryProto
        {
            Key = OnnxPredictor.ValidInputsKey, Value = "{\"a\": {\"integer\": true, \"min\": 0, \"max\": 4}}",
        });
        await Serving(model.ToByteArray(), async client =>
        {
            // exact beyond 2^53, where a double would round
            var (ok, text) = await Post(client, "{\"a\": [1, 4, 0], \"b\": [9007199254740993, 2, -3]}");
            Assert.True(ok == HttpStatusCode.OK, text);
            using (var json = JsonDocument.Parse(text))
            {
                Assert.Equal([9007199254740994L, 6L, -3L], json.RootElement.GetProperty("out").EnumerateArray().Select(e => e.GetInt64()));
            }

            var (s1, t1) = await Post(client, "{\"a\": [1, 7, 0], \"b\": [0, 0, 0]}");
            var d1 = Detail(s1, t1);
            Assert.Contains("Input 'a' holds 7 at row 1", d1);
            Assert.Contains("0..4", d1);

            var (s2, t2) = await Post(client, "{\"a\": [1, -1, 0], \"b\": [0, 0, 0]}");
            Assert.Contains("Input 'a' holds -1 at row 1", Detail(s2, t2));

            var (s3, t3) = await Post(client, "{\"a\": [1, 2.5, 0], \"b\": [0, 0, 0]}");
            Assert.Contains("a[1] = 2.5 is not a valid int64 value", Detail(s3, t3));

            var (s4, t4) = await Post(client, "{\"a\": [1, 2], \"b\": [0, 0, 0]}");
            Assert.Contains("L = 3", Detail(s4, t4));
        });
    }

    [Fact]
    public void FromBuffer_uses_only_the_prefix_the_shape_needs()
    {
        var model = ModelProto.Parser.ParseFrom(TestModels.AddTwo(DataType.Int64));
        model.MetadataProps.Add(new StringStringEntryProto
        {
            Key = OnnxPredictor.ValidInputsKey, Value = "{\"a\": {\"integer\": true, \"min\": 0, \"max\": 4}}",
        });
        using var predictor = OnnxPredictor.Load(model.ToByteArray());
        // the tail (99, an invalid id) is not part of the array: neither checked nor read
        var a = OnnxArray.FromBuffer(new long[] { 1, 2, 99, 99 }, 2);
        Assert.Equal(2, a.Length);
        var output = predictor.Run(new Dictionary<string, OnnxArray> { ["a"] = a, ["b"] = OnnxArray.FromBuffer(new long[] { 10, 20, 30 }, 2) });
        Assert.Equal([11L, 22L], output["out"].GetData<long>());
        Assert.Throws<ArgumentException>(() => OnnxArray.FromBuffer(new long[] { 1 }, 2));
    }

    private static IEnumerable<JsonElement> Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten) : [e];

    [Fact]
    public async Task A_categorical_input_takes_its_levels_by_name()
    {
        // out = a + b (int64), with the levels s0, s1, s2 listed for a (issue 28: the vocabulary travels with the model)
        var model = ModelProto.Parser.ParseFrom(TestModels.AddTwo(DataType.Int64));
        model.MetadataProps.Add(new StringStringEntryProto { Key = OnnxPredictor.LevelsKeyPrefix + "a", Value = "[\"s0\",\"s1\",\"s2\"]" });
        await Serving(model.ToByteArray(), async client =>
        {
            // levels and ids mix; b has no levels, so a string there is refused as before
            var (status, text) = await Post(client, "{\"a\": [\"s2\", \"s0\", 1], \"b\": [10, 20, 30]}");
            Assert.True(status == HttpStatusCode.OK, $"{(int)status}: {text}");
            using (var json = JsonDocument.Parse(text))
            {
                Assert.Equal([12L, 20L, 31L], json.RootElement.GetProperty("out").EnumerateArray().Select(e => e.GetInt64()));
            }

            var (s1, t1) = await Post(client, "{\"a\": [\"s1\", \"s9\"], \"b\": [1, 2]}");
            var unseen = Detail(s1, t1);
            Assert.Contains("'a'", unseen);
            Assert.Contains("a[1]", unseen);
            Assert.Contains("\"s9\"", unseen);
            Assert.Contains("s0, s1, s2", unseen);
            var (s2, t2) = await Post(client, "{\"a\": [\"s1\"], \"b\": [\"s1\"]}");
            var notCategorical = Detail(s2, t2);
            Assert.Contains("not a number", notCategorical);
        });
    }
}
