namespace FunctionalBayes.Cluster

open System
open System.Threading.Tasks
open Microsoft.Extensions.DependencyInjection
open Microsoft.Extensions.Hosting
open Microsoft.Extensions.Logging
open Orleans
open Orleans.Configuration
open Orleans.Hosting
open Orleans.Serialization

/// A silo on this machine's loopback with development clustering (no external service): the primary silo
/// holds the membership table, so the others name its port. For a real deployment configure the silo
/// yourself (ADO.NET, Redis or Azure clustering) and call ClusterSilo.AddFunctionalBayes.
type LocalSiloSettings =
    { /// The silo-to-silo port.
      SiloPort: int
      /// The port clients connect to.
      GatewayPort: int
      /// The primary silo's SiloPort; this silo's own for the primary.
      PrimarySiloPort: int
      /// Declare a dead silo in seconds rather than about a minute (tests, small local clusters).
      FastFailureDetection: bool
      Runner: FitRunnerSettings }

    /// The primary silo on ports 11111 and 30000 (Orleans' defaults).
    static member Primary =
        { SiloPort = 11111; GatewayPort = 30000; PrimarySiloPort = 11111; FastFailureDetection = false; Runner = FitRunnerSettings.Default }

    /// Silo number `i` (0 is the primary) on ports 11111 + i and 30000 + i.
    static member Numbered(i: int) =
        { LocalSiloSettings.Primary with SiloPort = 11111 + i; GatewayPort = 30000 + i }

    /// These settings on other ports: this silo's, its gateway's, and the primary silo's SiloPort (its own for the primary).
    member s.WithPorts(siloPort: int, gatewayPort: int, primarySiloPort: int) =
        { s with SiloPort = siloPort; GatewayPort = gatewayPort; PrimarySiloPort = primarySiloPort }

    /// These settings with fast failure detection on or off.
    member s.WithFastFailureDetection(fast: bool) = { s with FastFailureDetection = fast }

    /// These settings with another fit runner's settings.
    member s.WithRunner(runner: FitRunnerSettings) = { s with Runner = runner }

/// Silos that run FunctionalBayes fits.
[<AbstractClass; Sealed>]
type ClusterSilo =

    /// Names the grains' assembly to Orleans' serializer and manifest (an F# entry assembly carries no
    /// application-part attributes for Orleans to follow); silos and clients both need it.
    static member AddGrainAssembly(services: IServiceCollection) =
        services.AddSerializer(fun b -> b.AddAssembly(typeof<FitGrain>.Assembly) |> ignore) |> ignore

    /// Adds the fit runner (with this registry: the models the silo can run) to a silo, for jobs and data-parallel SVI.
    static member AddFunctionalBayes(silo: ISiloBuilder, registry: ModelRegistry, settings: FitRunnerSettings) : ISiloBuilder =
        let runner = FitRunner(registry, settings)
        silo.ConfigureServices(fun services ->
            services.AddSingleton<IFitRunner>(runner).AddSingleton<IShardRunner>(runner) |> ignore
            ClusterSilo.AddGrainAssembly services)

    /// Membership settings that declare a killed silo dead within a few seconds (Orleans' own tests do the same).
    static member UseFastFailureDetection(silo: ISiloBuilder) : ISiloBuilder =
        silo.Configure<ClusterMembershipOptions>(fun (o: ClusterMembershipOptions) ->
            o.ProbeTimeout <- TimeSpan.FromSeconds 1.0
            o.NumMissedProbesLimit <- 1
            o.NumVotesForDeathDeclaration <- 1
            o.TableRefreshTimeout <- TimeSpan.FromSeconds 1.0
            o.IAmAliveTablePublishTimeout <- TimeSpan.FromSeconds 2.0)

    /// Starts a silo on loopback ports running this registry's models; dispose the host to stop it.
    static member StartLocalAsync(registry: ModelRegistry, settings: LocalSiloSettings) : Task<IHost> =
        task {
            let builder = Host.CreateApplicationBuilder()
            // Orleans' startup notes (GC mode, watchdog) are warnings; a silo of fits logs errors only.
            builder.Logging.SetMinimumLevel(LogLevel.Error) |> ignore
            builder.UseOrleans(fun silo ->
                let primary =
                    if settings.PrimarySiloPort = settings.SiloPort then null
                    else Net.IPEndPoint(Net.IPAddress.Loopback, settings.PrimarySiloPort)
                silo.UseLocalhostClustering(settings.SiloPort, settings.GatewayPort, primary) |> ignore
                ClusterSilo.AddFunctionalBayes(silo, registry, settings.Runner) |> ignore
                if settings.FastFailureDetection then ClusterSilo.UseFastFailureDetection silo |> ignore)
            |> ignore
            let host = builder.Build()
            do! host.StartAsync()
            return host
        }

/// Clients of a FunctionalBayes cluster.
[<AbstractClass; Sealed>]
type ClusterClient =

    /// Connects to silos on loopback gateway ports; the client is host.Services' IClusterClient
    /// (ClusterClient.Of). Dispose the host to disconnect.
    static member ConnectLocalAsync(gatewayPorts: int[]) : Task<IHost> =
        task {
            let builder = Host.CreateApplicationBuilder()
            builder.Logging.SetMinimumLevel(LogLevel.Warning) |> ignore
            builder.UseOrleansClient(fun c ->
                c.UseLocalhostClustering(gatewayPorts) |> ignore
                ClusterSilo.AddGrainAssembly c.Services) |> ignore
            let host = builder.Build()
            do! host.StartAsync()
            return host
        }

    /// The cluster client of a host made by ConnectLocalAsync (or any host with UseOrleansClient).
    static member Of(host: IHost) : IClusterClient = host.Services.GetRequiredService<IClusterClient>()
