"""Pure cores: plain functions and records, no Faust, Kafka or ONNX Runtime imports."""
