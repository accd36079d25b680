"""streamsense models: inference runtime, registry, training, ONNX export."""
