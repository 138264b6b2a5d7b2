"""onnxruntime rejects bad LSTM inputs with its own exception classes, not torch's.

torch.nn.LSTM raises RuntimeError/ValueError for a wrong feature size, a wrong dtype and a
wrong h0 batch; the same model exported with torch.onnx.export (TorchScript exporter) makes
onnxruntime raise InvalidArgument / Fail (subclasses of Exception only). Exits 1 while the
type names differ.
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
example = (torch.zeros(3, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
torch.onnx.export(
    lstm,
    example,
    buffer,
    dynamo=False,
    input_names=["x", "h0", "c0"],
    dynamic_axes={"x": {0: "L", 1: "N"}, "h0": {1: "N"}, "c0": {1: "N"}},
)
session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])


def raised(call, *arrays):
    try:
        call(*arrays)
    except Exception as exc:
        return type(exc).__name__
    return "nothing"


def torch_call(x, h0, c0):
    lstm(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))


def onnxruntime_call(x, h0, c0):
    session.run(None, {"x": x, "h0": h0, "c0": c0})


z = lambda *shape, dtype=np.float32: np.zeros(shape, dtype)  # noqa: E731
bad = {
    "input size 7": (z(5, 2, 7), z(1, 2, 4), z(1, 2, 4)),
    "float64 input": (z(5, 2, 3, dtype=np.float64), z(1, 2, 4), z(1, 2, 4)),
    "h0 batch 3": (z(5, 2, 3), z(1, 3, 4), z(1, 2, 4)),
}
differ = 0
for what, arrays in bad.items():
    t, o = raised(torch_call, *arrays), raised(onnxruntime_call, *arrays)
    print(f"{what:14s} torch: {t:13s} onnxruntime: {o}")
    differ += t != o
sys.exit(1 if differ else 0)
