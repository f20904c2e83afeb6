using System.Net;
using System.Text;
using System.Text.Json;
using FunctionalBayes.Serving;
using Microsoft.AspNetCore.Builder;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FunctionalBayes.OnnxRuntime.Tests;

/// <summary>Starts examples/Serving in-process on 127.0.0.1 with a free port, once for the class.</summary>
public sealed class ServingFixture : IAsyncLifetime
{
    private readonly string modelPath = TestModels.WriteTemp(TestModels.Tanh(DataType.Float, softmax: true));
    private WebApplication? app;

    public HttpClient Client { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync()
    {
        app = ServingApp.Build(modelPath, "http://127.0.0.1:0");
        await app.StartAsync();
        Client.BaseAddress = new Uri(ServingApp.GetListeningUrl(app));
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        File.Delete(modelPath);
    }
}

public sealed class ServingTests(ServingFixture fixture) : IClassFixture<ServingFixture>
{
    private HttpClient Client => fixture.Client;

    [Fact]
    public void Listens_on_loopback_with_a_real_port()
    {
        Assert.Equal("127.0.0.1", Client.BaseAddress!.Host);
        Assert.NotEqual(0, Client.BaseAddress.Port);
    }

    [Fact]
    public async Task Health_answers_ok()
    {
        using var response = await Client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("ok", json.RootElement.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Model_describes_inputs_and_outputs()
    {
        using var response = await Client.GetAsync("/model");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var x = Assert.Single(json.RootElement.GetProperty("inputs").EnumerateArray());
        Assert.Equal("x", x.GetProperty("name").GetString());
        Assert.Equal("float32", x.GetProperty("elementType").GetString());
        Assert.Equal([-1L, 5L], x.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal("[N, 5]", x.GetProperty("shapeText").GetString());
        Assert.Equal(["y", "p", "s"], json.RootElement.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Predict_returns_the_model_outputs_as_nested_arrays()
    {
        var x = TestModels.Inputs(3, seed: 42).Select(v => (double)(float)v).ToArray();
        var rows = Enumerable.Range(0, 3).Select(r => x.Skip(r * 5).Take(5).ToArray()).ToArray();
        var body = JsonSerializer.Serialize(new { x = rows });
        using var response = await Client.PostAsync("/predict", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);

        using var json = JsonDocument.Parse(text);
        var y = json.RootElement.GetProperty("y");
        Assert.Equal(3, y.GetArrayLength());
        Assert.All(y.EnumerateArray(), row => Assert.Equal(3, row.GetArrayLength()));
        var expected = TestModels.TanhReference(x, 3);
        TestModels.AssertClose(expected, y.EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(e => e.GetDouble()).ToArray(), 1e-5);
        TestModels.AssertClose(TestModels.SoftmaxRows(expected, 3), json.RootElement.GetProperty("p").EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(e => e.GetDouble()).ToArray(), 1e-5);
        var s = json.RootElement.GetProperty("s");
        Assert.Equal(3, s.GetArrayLength());
        TestModels.AssertClose([1.0, 1.0, 1.0], s.EnumerateArray().Select(e => e.GetDouble()).ToArray(), 1e-5);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("{\"x\": [[1, 2, 3, 4, 5]", "not valid JSON")]
    [InlineData("not json at all", "not valid JSON")]
    [InlineData("[[1, 2, 3, 4, 5]]", "must be a JSON object")]
    [InlineData("{}", "Missing model input(s): x: float32[N, 5]")]
    [InlineData("{\"z\": [[1, 2, 3, 4, 5]]}", "no input named 'z'")]
    [InlineData("{\"x\": [[1, 2, 3, 4]]}", "x[0] has 4 numbers but 'x' has shape [N, 5]")]
    [InlineData("{\"x\": [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]}", "x[1] has 6 numbers")]
    [InlineData("{\"x\": [[1, 2, \"three\", 4, 5]]}", "x[0][2] is a string")]
    [InlineData("{\"x\": [[1, 2, null, 4, 5]]}", "x[0][2] is a null")]
    [InlineData("{\"x\": [1, 2, 3, 4, 5]}", "x[0] must be an array")]
    [InlineData("{\"x\": [[[1], [2], [3], [4], [5]]]}", "x[0][0] is an array")]
    [InlineData("{\"x\": \"hello\"}", "x must be an array")]
    [InlineData("{\"x\": [[1, 2, 3, 4, 1e300]]}", "is not a valid float32 value")]
    [InlineData("{\"x\": [[1, 2, 3, 4, 5]], \"x\": [[1, 2, 3, 4, 5]]}", "more than once")]
    public async Task Bad_requests_get_400_with_a_problem_message(string body, string expected)
    {
        using var response = await Client.PostAsync("/predict", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        Assert.Equal(400, json.RootElement.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("title").GetString()));
        Assert.Contains(expected, json.RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_bounded_loop_of_mixed_requests_never_gets_a_500()
    {
        var good = JsonSerializer.Serialize(new { x = new[] { new[] { 0.1, 0.2, 0.3, 0.4, 0.5 } } });
        string[] bodies = [good, "{\"x\": [[1]]}", "{", "", good, "{\"x\": [[true, 1, 2, 3, 4]]}"];
        var tasks = Enumerable.Range(0, 240).Select(async i =>
        {
            var body = bodies[i % bodies.Length];
            using var response = await Client.PostAsync("/predict", new StringContent(body, Encoding.UTF8, "application/json"));
            return (body == good, response.StatusCode);
        });
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(r.Item1 ? HttpStatusCode.OK : HttpStatusCode.BadRequest, r.StatusCode));
    }
}
