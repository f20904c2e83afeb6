using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using FunctionalBayes.Serving;
using Xunit.Abstractions;

namespace FunctionalBayes.OnnxRuntime.Tests;

/// <summary>Issue 23, finding 7: the Serving example is bounded. It runs alone (it measures the process's RSS).</summary>
[Collection(nameof(MemoryCollection))]
public sealed class ServingLimitTests(ServingFixture fixture, ITestOutputHelper output) : IClassFixture<ServingFixture>, IDisposable
{
    // the example's defaults (ServingFixture gives no limits); a client with room for the slow large requests
    private readonly HttpClient client = new() { BaseAddress = fixture.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(150) };

    public void Dispose() => client.Dispose();

    /// <summary>A body of <paramref name="rows"/> rows of five numbers, 12 bytes a row.</summary>
    private static byte[] Rows(int rows)
    {
        var row = "[1,2,3,4,5]"u8;
        var body = new byte[8 + rows * (row.Length + 1)];
        var at = 0;
        "{\"x\": ["u8.CopyTo(body);
        at += 7;
        for (var i = 0; i < rows; i++)
        {
            row.CopyTo(body.AsSpan(at));
            at += row.Length;
            body[at++] = (byte)(i + 1 < rows ? ',' : ']');
        }

        body[at++] = (byte)'}';
        return body[..at];
    }

    private static async Task<(HttpStatusCode Status, JsonElement Problem)> ProblemOf(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode is >= 400 and < 500, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        Assert.Equal((int)response.StatusCode, json.RootElement.GetProperty("status").GetInt32());
        return (response.StatusCode, json.RootElement.Clone());
    }

    [Fact]
    public async Task A_body_above_the_limit_gets_413_with_a_problem_naming_the_limit()
    {
        var body = new byte[ServingLimits.DefaultMaxBodyBytes + 1024];
        // Expect: 100-continue, so that the client waits for the answer instead of writing into a closed request
        using var sized = new HttpRequestMessage(HttpMethod.Post, "/predict") { Content = new ByteArrayContent(body) };
        sized.Headers.ExpectContinue = true;
        using var response = await client.SendAsync(sized);
        var (status, problem) = await ProblemOf(response);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("at most", problem.GetProperty("detail").GetString());

        // without a Content-Length (chunked), Kestrel's own limit stops the read: 413 too, never 500
        using var chunked = new StreamContent(new MemoryStream(body));
        chunked.Headers.ContentLength = null;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/predict") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        request.Headers.ExpectContinue = true;
        using var response2 = await client.SendAsync(request);
        var (status2, _) = await ProblemOf(response2);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status2);
    }

    [Fact]
    public async Task More_rows_than_the_limit_get_413_naming_the_input_and_the_limit()
    {
        using var response = await client.PostAsync("/predict", new ByteArrayContent(Rows((int)ServingLimits.DefaultMaxRows + 1)));
        var (status, problem) = await ProblemOf(response);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        var detail = problem.GetProperty("detail").GetString();
        Assert.Contains("Input 'x' has 1000001 rows", detail);
        Assert.Contains("at most 1000000", detail);
    }

    [Fact]
    public async Task Eight_concurrent_24_MB_requests_and_20000_small_ones_stay_under_1_GB_and_give_the_memory_back()
    {
        static long Rss()
        {
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            using var p = Process.GetCurrentProcess();
            return p.WorkingSet64;
        }

        var small = Encoding.UTF8.GetBytes("{\"x\": [[0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 3, 4, 5]]}");
        for (var i = 0; i < 20; i++)
        {
            using var warm = await client.PostAsync("/predict", new ByteArrayContent(small));
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        // the baseline is taken warm: after one of each kind of request (code compiled, pools and threads made)
        using (var warmLarge = await client.PostAsync("/predict", new ByteArrayContent(Rows(2_000_000))))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, warmLarge.StatusCode);
        }

        var baseline = Rss();
        var (largeStatuses, smallStatuses, peak) = await LoadPhase(small);

        // the server gives the memory back: RSS returns to within 20 % of the baseline (bounded wait, then fail)
        var after = Rss();
        for (var wait = 0; wait < 30 && after >= baseline * 1.2; wait++)
        {
            await Task.Delay(500);
            after = Rss();
        }

        output.WriteLine($"RSS baseline {baseline / 1e6:F0} MB, peak {peak / 1e6:F0} MB, after {after / 1e6:F0} MB");
        Assert.Equal(20_000, smallStatuses.Length);
        Assert.All(smallStatuses, s => Assert.Equal(HttpStatusCode.OK, s));
        // 2,000,000 rows are above the default row limit: refused with 413 before the document is built
        Assert.All(largeStatuses, s => Assert.Equal(HttpStatusCode.RequestEntityTooLarge, s));
        Assert.True(peak < 1L << 30, $"peak RSS {peak / 1e6:F0} MB (baseline {baseline / 1e6:F0} MB)");
        Assert.True(after < baseline * 1.2, $"RSS after {after / 1e6:F0} MB, baseline {baseline / 1e6:F0} MB, peak {peak / 1e6:F0} MB");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<(HttpStatusCode[] Large, HttpStatusCode[] Small, long Peak)> LoadPhase(byte[] small)
    {
        var large = Rows(2_000_000); // 24 MB, 2,000,000 × 5
        long peak = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            using var p = Process.GetCurrentProcess();
            while (!stop.IsCancellationRequested)
            {
                p.Refresh();
                peak = Math.Max(peak, p.WorkingSet64);
                await Task.Delay(20);
            }
        });
        var largeTasks = Enumerable.Range(0, 8).Select(async _ =>
        {
            using var r = await client.PostAsync("/predict", new ByteArrayContent(large));
            if (!r.IsSuccessStatusCode)
            {
                await ProblemOf(r);
            }

            return r.StatusCode;
        }).ToArray();
        var smallTasks = Enumerable.Range(0, 16).Select(async _ =>
        {
            var seen = new List<HttpStatusCode>();
            for (var i = 0; i < 20_000 / 16; i++)
            {
                using var r = await client.PostAsync("/predict", new ByteArrayContent(small));
                seen.Add(r.StatusCode);
            }

            return seen;
        }).ToArray();
        var largeStatuses = await Task.WhenAll(largeTasks);
        var smallStatuses = (await Task.WhenAll(smallTasks)).SelectMany(s => s).ToArray();
        stop.Cancel();
        await sampler;
        return (largeStatuses, smallStatuses, peak);
    }
}
