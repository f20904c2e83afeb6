namespace FunctionalBayes.Onnx

// (the exporter)
