"""torch.onnx.export(dynamo=True, Dim.AUTO) fixes an LSTM's sequence length to the example's,
while the ONNX input still declares it dynamic; onnxruntime then returns a wrong-shaped output
for another length, without an error.

Exported with L=5, N=2 and run with L=10, N=2: torch gives (10, 2, 4); the exported graph
reshapes the LSTM's (10, 2, 1, 4) output to (5, -1, 4). (For L*N not divisible by 5*4,
onnxruntime raises a Reshape error instead.) Exits 1 while the shape is wrong.
"""

import logging
import sys
import warnings

import numpy as np
import onnxruntime
import torch

warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 4).eval()
auto = torch.export.Dim.AUTO
program = torch.onnx.export(
    lstm,
    (torch.zeros(5, 2, 3),),
    dynamo=True,
    input_names=["x"],
    dynamic_shapes=({0: auto, 1: auto},),
    verbose=False,
)
proto = program.model_proto
declared = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
print("ONNX input x declared shape:", declared)
session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])

x = np.random.default_rng(0).standard_normal((10, 2, 3)).astype(np.float32)
with torch.no_grad():
    expected = lstm(torch.from_numpy(x))[0].numpy()
got = session.run(None, {"x": x})[0]
print("torch output shape:", expected.shape, " onnxruntime output shape:", got.shape)
ok = got.shape == expected.shape and np.allclose(got, expected, atol=1e-5)
print("max abs difference:", float(np.abs(got - expected).max()) if got.shape == expected.shape else "n/a")
sys.exit(0 if ok else 1)
