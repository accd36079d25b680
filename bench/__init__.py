"""``make bench``: throughput, latency and memory of the pipeline against the model's
ceiling (raw ONNX Runtime batch scoring) and the naive recipe (PyTorch, one text at a time).
"""
