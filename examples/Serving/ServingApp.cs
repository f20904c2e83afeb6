using System.Buffers;
using System.Text.Json;
using FunctionalBayes.OnnxRuntime;

namespace FunctionalBayes.Serving;

/// <summary>The command line was incomplete or the model could not be loaded.</summary>
public sealed class ServingConfigurationException(string message, Exception? innerException = null)
    : Exception(message, innerException);

/// <summary>How much one request may ask of the server.</summary>
/// <param name="MaxRows">The most rows (first-axis entries) of any input in one request; more is answered with 413. The
/// default, 1,000,000 rows, keeps a request of a few float columns to a few hundred MB while it is parsed and run, so
/// that a handful of concurrent requests fit a 24 GB host with room to spare.</param>
/// <param name="MaxBodyBytes">The largest request body; a larger one is answered with 413 before it is read. Default 64 MB.</param>
public sealed record ServingLimits(long MaxRows = ServingLimits.DefaultMaxRows, long MaxBodyBytes = ServingLimits.DefaultMaxBodyBytes)
{
    /// <summary>The default row limit.</summary>
    public const long DefaultMaxRows = 1_000_000;

    /// <summary>The default body limit (64 MB).</summary>
    public const long DefaultMaxBodyBytes = 64L * 1024 * 1024;
}

/// <summary>
/// An ASP.NET Core minimal API that serves one ONNX model:
/// <c>GET /health</c>, <c>GET /model</c> and <c>POST /predict</c>.
/// </summary>
/// <remarks>
/// <c>POST /predict</c> takes a JSON object with one key per model input, each holding nested arrays of numbers
/// that follow the input's shape (rows of numbers for a rank-2 input, a flat array for a rank-1 input), and answers
/// with one key per model output in the same form. Every problem with a request (empty or malformed body, unknown
/// or missing input, ragged rows, wrong row length, non-numeric values, anything the model rejects) is answered with
/// 400 and a ProblemDetails JSON body naming the problem; a body above the limit or an input with more rows than the
/// limit (<see cref="ServingLimits"/>) with 413. Inputs are checked against the model's valid values (category ids,
/// finite numbers) before it runs.
/// </remarks>
public static class ServingApp
{
    /// <summary>
    /// Builds the app from command-line arguments: <c>--model PATH</c> (required) plus any ASP.NET Core
    /// arguments such as <c>--urls http://127.0.0.1:5000</c>.
    /// </summary>
    /// <param name="args">The command-line arguments.</param>
    /// <returns>The app, not yet started.</returns>
    /// <exception cref="ServingConfigurationException">No model was given or it could not be loaded.</exception>
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var modelPath = builder.Configuration["model"];
        if (string.IsNullOrWhiteSpace(modelPath))
        {
            throw new ServingConfigurationException(
                "Usage: dotnet run --project examples/Serving -- --model path/to/model.onnx [--maxRows 1000000] [--maxBodyBytes 67108864] [--urls http://127.0.0.1:5000]");
        }

        var limits = new ServingLimits(
            long.TryParse(builder.Configuration["maxRows"], out var rows) ? rows : ServingLimits.DefaultMaxRows,
            long.TryParse(builder.Configuration["maxBodyBytes"], out var bytes) ? bytes : ServingLimits.DefaultMaxBodyBytes);
        return Configure(builder, modelPath, null, limits);
    }

    /// <summary>Builds the app for one model listening on one URL (use port 0 to pick a free port).</summary>
    /// <param name="modelPath">The <c>.onnx</c> file to serve.</param>
    /// <param name="url">The URL to listen on, such as <c>http://127.0.0.1:0</c>.</param>
    /// <param name="options">The predictor options; defaults when <see langword="null"/>.</param>
    /// <param name="limits">The request limits; <see cref="ServingLimits"/>' defaults when <see langword="null"/>.</param>
    /// <returns>The app, not yet started. After <c>StartAsync</c>, <see cref="GetListeningUrl"/> gives the bound address.</returns>
    /// <exception cref="ServingConfigurationException">The model could not be loaded.</exception>
    public static WebApplication Build(string modelPath, string url, PredictorOptions? options = null, ServingLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentException.ThrowIfNullOrEmpty(url);
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        return Configure(builder, modelPath, options, limits ?? new ServingLimits());
    }

    /// <summary>The first address the started app listens on (with the real port when port 0 was asked for).</summary>
    /// <param name="app">A started app.</param>
    /// <returns>The address, such as <c>http://127.0.0.1:41234</c>.</returns>
    public static string GetListeningUrl(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Urls.First();
    }

    private static WebApplication Configure(WebApplicationBuilder builder, string modelPath, PredictorOptions? options, ServingLimits limits)
    {
        if (limits.MaxRows < 1 || limits.MaxBodyBytes < 1)
        {
            throw new ServingConfigurationException($"The request limits must be positive; got {limits}.");
        }

        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = limits.MaxBodyBytes);
        OnnxPredictor predictor;
        try
        {
            predictor = OnnxPredictor.Load(modelPath, options);
        }
        catch (Exception e) when (e is IOException or OnnxRuntimeException or DllNotFoundException or UnauthorizedAccessException)
        {
            throw new ServingConfigurationException($"Cannot serve '{modelPath}': {e.Message}", e);
        }

        builder.Services.AddSingleton(predictor);
        builder.Services.AddProblemDetails();
        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(predictor.Dispose);
        app.UseExceptionHandler();
        app.UseStatusCodePages();

        app.MapGet("/health", () => Results.Ok(new { status = "ok" }));
        app.MapGet("/model", (OnnxPredictor p) => Results.Ok(new
        {
            inputs = p.Inputs.Select(Describe),
            levels = p.Inputs.Where(i => p.GetLevels(i.Name) is not null).ToDictionary(i => i.Name, i => p.GetLevels(i.Name)),
            outputs = p.Outputs.Select(Describe),
            metadata = p.Metadata,
            runtimeVersion = p.RuntimeVersion,
        }));
        app.MapPost("/predict", (HttpRequest request, OnnxPredictor p, CancellationToken cancel) => PredictAsync(request, p, limits, cancel));
        return app;
    }

    private static object Describe(TensorInfo info) => new
    {
        name = info.Name,
        elementType = info.ElementType.ToString().ToLowerInvariant(),
        shape = info.Dimensions,
        dimensionNames = info.SymbolicDimensions,
        shapeText = info.ShapeText,
    };

    private static async Task<IResult> PredictAsync(HttpRequest request, OnnxPredictor predictor, ServingLimits limits, CancellationToken cancel)
    {
        if (request.ContentLength > limits.MaxBodyBytes)
        {
            return TooLarge(request.ContentLength.Value, limits);
        }

        // the body goes into a pooled buffer, parsed by a Utf8JsonReader straight into pooled arrays: no document, no copies
        var body = Pool<byte>.Rent(request.ContentLength is { } length ? (int)Math.Max(length + 1, 1) : 4096);
        try
        {
            var size = 0;
            try
            {
                while (true)
                {
                    if (size == body.Length)
                    {
                        body = Pool<byte>.Grow(body, size);
                    }

                    var read = await request.Body.ReadAsync(body.AsMemory(size), cancel);
                    if (read == 0)
                    {
                        break;
                    }

                    size += read;
                }
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return TooLarge(null, limits);
            }

            return Predict(body.AsSpan(0, size), predictor, limits);
        }
        finally
        {
            Pool<byte>.Return(body);
        }
    }

    private static IResult Predict(ReadOnlySpan<byte> json, OnnxPredictor predictor, ServingLimits limits)
    {
        // one validating pass that allocates nothing: malformed JSON and too many rows are answered before any parsing
        var scan = Scan(json, limits.MaxRows);
        if (scan.Rows is { } rows)
        {
            return Results.Problem(
                title: "Too many rows",
                detail: $"Input '{rows.Input}' has {rows.Count} rows; this server takes at most {limits.MaxRows} rows per request (maxRows). Split the request.",
                statusCode: StatusCodes.Status413PayloadTooLarge);
        }

        if (json.IsEmpty)
        {
            return BadRequest("Empty request body", "The request body is empty. Send a JSON object with one key per model input, "
                + $"e.g. {Example(predictor)}.");
        }

        if (scan.Malformed is { } malformed)
        {
            return BadRequest("Malformed JSON", $"The request body is not valid JSON: {malformed}");
        }

        var reader = new Utf8JsonReader(json);
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            var kind = reader.TokenType switch
            {
                JsonTokenType.StartArray => "array",
                JsonTokenType.String => "string",
                JsonTokenType.Number => "number",
                JsonTokenType.True => "true",
                JsonTokenType.False => "false",
                _ => "null",
            };
            return BadRequest("Invalid request", $"The request body must be a JSON object with one key per model input, e.g. {Example(predictor)}; got a JSON {kind}.");
        }

        var inputs = new Dictionary<string, OnnxArray>(StringComparer.Ordinal);
        try
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString()!;
                var info = predictor.Inputs.FirstOrDefault(i => i.Name == name);
                if (info is null)
                {
                    return BadRequest("Unknown input", $"The model has no input named '{name}'. Its inputs are: {string.Join(", ", predictor.Inputs)}.");
                }

                if (inputs.ContainsKey(name))
                {
                    return BadRequest("Duplicate input", $"Input '{name}' is given more than once.");
                }

                reader.Read();
                try
                {
                    inputs[name] = JsonInput.Read(info, ref reader, predictor.GetLevels(name));
                }
                catch (FormatException e)
                {
                    return BadRequest("Invalid input", e.Message);
                }
            }

            var missing = predictor.Inputs.Where(i => !inputs.ContainsKey(i.Name)).ToList();
            if (missing.Count > 0)
            {
                return BadRequest("Missing input", $"Missing model input(s): {string.Join(", ", missing)}. Send e.g. {Example(predictor)}.");
            }

            IReadOnlyDictionary<string, OnnxArray> outputs;
            try
            {
                outputs = predictor.Run(inputs);
            }
            catch (InvalidModelInputException e)
            {
                return BadRequest("Invalid input", e.Message);
            }
            catch (OnnxRuntimeException e)
            {
                return BadRequest("The model rejected the input", e.Message);
            }

            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                foreach (var (name, array) in outputs)
                {
                    writer.WritePropertyName(name);
                    JsonInput.Write(writer, array);
                }

                writer.WriteEndObject();
            }

            return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
        }
        finally
        {
            foreach (var array in inputs.Values)
            {
                JsonInput.Return(array);
            }
        }
    }

    private static IResult TooLarge(long? length, ServingLimits limits) =>
        Results.Problem(
            title: "Request body too large",
            detail: (length is { } n ? $"The request body has {n} bytes; " : "The request body is larger than the limit; ")
                + $"this server takes at most {limits.MaxBodyBytes} bytes (maxBodyBytes). Split the request.",
            statusCode: StatusCodes.Status413PayloadTooLarge);

    /// <summary>One forward pass of a <see cref="Utf8JsonReader"/> that allocates nothing but input names: the first
    /// input with more than <paramref name="maxRows"/> rows (elements of its outer array), else the reader's message
    /// when the body is not valid JSON.</summary>
    private static ((string Input, long Count)? Rows, string? Malformed) Scan(ReadOnlySpan<byte> json, long maxRows)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { AllowTrailingCommas = false });
        string? property = null;
        long count = 0;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName when reader.CurrentDepth == 1:
                        property = reader.GetString();
                        count = 0;
                        break;
                    case JsonTokenType.StartArray or JsonTokenType.StartObject when reader.CurrentDepth == 2 && property is not null:
                    case JsonTokenType.Number or JsonTokenType.String or JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null
                        when reader.CurrentDepth == 2 && property is not null:
                        if (++count > maxRows)
                        {
                            // finish counting this input's rows without building anything
                            while (reader.Read() && reader.CurrentDepth >= 2)
                            {
                                if (reader.CurrentDepth == 2 && reader.TokenType is not (JsonTokenType.EndArray or JsonTokenType.EndObject))
                                {
                                    count++;
                                }
                            }

                            return ((property, count), null);
                        }

                        break;
                }
            }
        }
        catch (JsonException e)
        {
            return (null, e.Message);
        }

        return (null, null);
    }

    private static IResult BadRequest(string title, string detail) =>
        Results.Problem(title: title, detail: detail, statusCode: StatusCodes.Status400BadRequest);

    private static string Example(OnnxPredictor predictor) =>
        "{" + string.Join(", ", predictor.Inputs.Select(i => $"\"{i.Name}\": {ExampleValue(i)}")) + "}";

    private static string ExampleValue(TensorInfo info)
    {
        var text = "0.0";
        for (var d = info.Rank - 1; d >= 0; d--)
        {
            var n = info.Dimensions[d] > 0 ? (int)Math.Min(info.Dimensions[d], 3) : 1;
            text = "[" + string.Join(", ", Enumerable.Repeat(text, n)) + (info.Dimensions[d] > 3 ? ", ..." : string.Empty) + "]";
        }

        return text;
    }
}
