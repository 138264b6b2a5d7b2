"""onnxruntime's LSTM accepts a sequence of length 0; torch.nn.LSTM raises RuntimeError.

A one-layer, one-direction torch.nn.LSTM exported with torch.onnx.export (TorchScript
exporter) returns an empty output and zero states for a (0, N, H_in) input. Exits 1 while
onnxruntime accepts it.
"""

import io
import sys
import warnings

import numpy as np
import onnxruntime
import torch

warnings.simplefilter("ignore")
lstm = torch.nn.LSTM(3, 4).eval()
buffer = io.BytesIO()
torch.onnx.export(
    lstm,
    (torch.zeros(3, 2, 3),),
    buffer,
    dynamo=False,
    input_names=["x"],
    dynamic_axes={"x": {0: "L", 1: "N"}},
)
session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])

x = np.zeros((0, 2, 3), np.float32)
try:
    lstm(torch.from_numpy(x))
    print("torch: accepted")
except RuntimeError as exc:
    print(f"torch raises RuntimeError: {exc}")
try:
    out, h_n, c_n = session.run(None, {"x": x})
except Exception as exc:  # onnxruntime's own exception classes
    print(f"onnxruntime raises {type(exc).__name__}")
    sys.exit(0)
print(f"onnxruntime accepts it: output {out.shape}, h_n {h_n.shape} = {h_n.ravel().tolist()}")
sys.exit(1)
