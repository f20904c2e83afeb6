using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Hosting;
using FunctionalBayes.Cluster;

namespace FunctionalBayes.Fluent;

/// <summary>
/// Silos that run a <see cref="ClusterRegistry"/>'s models, and the services an Orleans client needs to submit jobs.
/// <code>
/// using IHost silo = await ClusterHosting.StartLocalSiloAsync(registry);          // silo 0 on loopback
/// await using var cluster = await ClusterConnection.ConnectLocalAsync(30000);     // its gateway
/// </code>
/// For a real deployment configure the silo yourself (ADO.NET, Redis or Azure clustering) and call
/// <see cref="AddFunctionalBayes"/> on its <see cref="ISiloBuilder"/>.
/// </summary>
public static class ClusterHosting
{
    /// <summary>The default silo-to-silo port of silo 0 (Orleans' default); silo i uses this + i.</summary>
    public static int DefaultSiloPort => LocalSiloSettings.Primary.SiloPort;

    /// <summary>The default gateway (client) port of silo 0 (Orleans' default); silo i uses this + i.</summary>
    public static int DefaultGatewayPort => LocalSiloSettings.Primary.GatewayPort;

    /// <summary>Adds the fit runner with this registry (the models the silo can run) to a silo you configure.</summary>
    /// <param name="silo">The silo.</param>
    /// <param name="registry">The models and data sets; give every silo the same.</param>
    /// <param name="checkpointEvery">How often a running fit checkpoints into the job's folder; null for 2 s.</param>
    /// <returns>The silo builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="silo"/> or <paramref name="registry"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="checkpointEvery"/> is not positive.</exception>
    public static ISiloBuilder AddFunctionalBayes(this ISiloBuilder silo, ClusterRegistry registry, TimeSpan? checkpointEvery = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(registry);
        return ClusterSilo.AddFunctionalBayes(silo, registry.Core, Runner(checkpointEvery));
    }

    /// <summary>Adds the grains' types to an Orleans client's (or silo's) services: a client you configure yourself
    /// needs them before <see cref="ClusterConnection(Orleans.IClusterClient)"/> can submit jobs with it.</summary>
    /// <param name="services">The client's services.</param>
    /// <returns>The services.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    public static IServiceCollection AddFunctionalBayesGrainTypes(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        ClusterSilo.AddGrainAssembly(services);
        return services;
    }

    private static FitRunnerSettings Runner(TimeSpan? checkpointEvery) =>
        checkpointEvery is { } every ? FitRunnerSettings.Default.WithCheckpointSeconds(every.TotalSeconds) : FitRunnerSettings.Default;

    /// <summary>
    /// Starts silo number <paramref name="number"/> on this machine's loopback with development clustering (no external
    /// service): ports <see cref="DefaultSiloPort"/> + number and <see cref="DefaultGatewayPort"/> + number; silo 0 is
    /// the primary (it holds the membership table). Dispose the host to stop the silo.
    /// </summary>
    /// <param name="registry">The models and data sets.</param>
    /// <param name="number">The silo's number (0 first).</param>
    /// <param name="fastFailureDetection">Declare a dead silo in seconds rather than about a minute (tests, small local clusters).</param>
    /// <param name="checkpointEvery">How often a running fit checkpoints; null for 2 s.</param>
    /// <returns>The started silo's host.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="registry"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="number"/> is negative, or <paramref name="checkpointEvery"/> is not positive.</exception>
    public static Task<IHost> StartLocalSiloAsync(ClusterRegistry registry, int number = 0, bool fastFailureDetection = false, TimeSpan? checkpointEvery = null)
    {
        if (number < 0) throw new ArgumentOutOfRangeException(nameof(number), number, "ClusterHosting: a silo's number is 0 or more.");
        return StartLocalSiloAsync(registry, DefaultSiloPort + number, DefaultGatewayPort + number, DefaultSiloPort, fastFailureDetection, checkpointEvery);
    }

    /// <summary>Starts a silo on loopback on ports of your choice (see <see cref="StartLocalSiloAsync(ClusterRegistry, int, bool, TimeSpan?)"/>).</summary>
    /// <param name="registry">The models and data sets.</param>
    /// <param name="siloPort">This silo's silo-to-silo port.</param>
    /// <param name="gatewayPort">The port clients connect to.</param>
    /// <param name="primarySiloPort">The primary silo's <paramref name="siloPort"/>: its own for the primary.</param>
    /// <param name="fastFailureDetection">Declare a dead silo in seconds.</param>
    /// <param name="checkpointEvery">How often a running fit checkpoints; null for 2 s.</param>
    /// <returns>The started silo's host.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="registry"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="checkpointEvery"/> is not positive.</exception>
    public static Task<IHost> StartLocalSiloAsync(ClusterRegistry registry, int siloPort, int gatewayPort, int primarySiloPort, bool fastFailureDetection = false, TimeSpan? checkpointEvery = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var settings = LocalSiloSettings.Primary
            .WithPorts(siloPort, gatewayPort, primarySiloPort)
            .WithFastFailureDetection(fastFailureDetection)
            .WithRunner(Runner(checkpointEvery));
        return ClusterSilo.StartLocalAsync(registry.Core, settings);
    }
}
