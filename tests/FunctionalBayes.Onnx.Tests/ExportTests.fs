module FunctionalBayes.Onnx.Tests.ExportTests
