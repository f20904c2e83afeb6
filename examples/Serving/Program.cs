// FunctionalBayes model server: serves an exported .onnx model over HTTP.
//   dotnet run --project examples/Serving -- --model path/to/model.onnx --urls http://127.0.0.1:5000
using FunctionalBayes.Serving;

WebApplication app;
try
{
    app = ServingApp.Build(args);
}
catch (ServingConfigurationException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

await app.RunAsync();
return 0;
