"""onnxruntime's LSTM turns a NaN input into finite outputs; torch.nn.LSTM propagates it.

Exports a one-layer torch.nn.LSTM with torch.onnx.export (TorchScript exporter), feeds a
sequence whose first step holds a NaN, and compares. Exits 1 while the outputs differ.
"""

import io
import sys
import warnings

import numpy as np
import onnxruntime
import torch

warnings.simplefilter("ignore")
torch.manual_seed(0)
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

x = np.random.default_rng(0).standard_normal((3, 1, 3)).astype(np.float32)
x[0, 0, 0] = np.nan  # one NaN in the first step
with torch.no_grad():
    expected = lstm(torch.from_numpy(x))[0].numpy()
got = session.run(None, {"x": x})[0]
print("torch       output[:, 0, 0]:", expected[:, 0, 0])
print("onnxruntime output[:, 0, 0]:", got[:, 0, 0])
print(f"NaN elements: torch {np.isnan(expected).sum()}, onnxruntime {np.isnan(got).sum()} of {got.size}")
sys.exit(1 if np.isnan(expected).sum() != np.isnan(got).sum() else 0)
