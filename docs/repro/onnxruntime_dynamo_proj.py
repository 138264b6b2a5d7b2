"""A projected torch.nn.LSTM (proj_size > 0): the TorchScript exporter refuses it, the dynamo
exporter exports it, and onnxruntime cannot run what it exported.

ONNX's LSTM operator has no projection. torch.onnx.export(dynamo=False) raises
"LSTMs with projections"; dynamo=True emits an ONNX LSTM whose state shapes disagree
(h0 has proj_size, c0 hidden_size), which onnxruntime rejects. Exits 1 while no exporter gives
a model that onnxruntime runs and that matches torch.
"""

import io
import logging
import sys
import warnings

import numpy as np
import onnxruntime
import torch

warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 4, proj_size=2).eval()
x = torch.randn(5, 2, 3)
with torch.no_grad():
    expected = lstm(x)[0].numpy()
matches = []
for dynamo in (False, True):
    try:
        if dynamo:
            model = torch.onnx.export(lstm, (x,), dynamo=True, verbose=False).model_proto.SerializeToString()
        else:
            buffer = io.BytesIO()
            torch.onnx.export(lstm, (x,), buffer, dynamo=False)
            model = buffer.getvalue()
    except Exception as exc:
        print(f"dynamo={dynamo}: export raises {type(exc).__name__}: {str(exc).splitlines()[0][:90]}")
        continue
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    except Exception as exc:
        print(f"dynamo={dynamo}: exported; onnxruntime raises {type(exc).__name__}: {str(exc)[-70:]}")
        continue
    print(f"dynamo={dynamo}: runs, max abs difference {np.abs(got - expected).max():.3g}")
    matches.append(got.shape == expected.shape and np.allclose(got, expected, atol=1e-5))
sys.exit(0 if any(matches) else 1)
