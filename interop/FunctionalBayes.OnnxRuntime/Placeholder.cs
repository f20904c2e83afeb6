namespace FunctionalBayes.OnnxRuntime;

// (the ONNX Runtime binding)
internal static class Placeholder { }
