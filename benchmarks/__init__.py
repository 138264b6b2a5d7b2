"""Benchmarks of lstm_ref against torch (and ONNX when installed); see README "Benchmarks"."""
