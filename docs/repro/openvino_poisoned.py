"""After one refused call, a compiled OpenVINO LSTM refuses every later valid call.

A torch.nn.LSTM converted with openvino.convert_model and compiled for the CPU runs a valid
call; a call with a c0 of the wrong hidden size is refused ("ParameterMismatch: Can not clone
with new dims"), as torch refuses it. From then on the same compiled model refuses the valid
call too, with the same message about the earlier call's dimensions, also on a new infer
request (compiled.create_infer_request()): the compiled model itself keeps the bad shape.
Exits 1 while the valid call is refused.
"""

import sys
import warnings

import numpy as np
import openvino
import torch

warnings.simplefilter("ignore")
lstm = torch.nn.LSTM(3, 4).eval()
example = (torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
compiled = openvino.Core().compile_model(
    openvino.convert_model(lstm, example_input=example), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
)
x, state = np.ones((5, 2, 3), np.float32), np.zeros((1, 2, 4), np.float32)
refused_later = False
calls = (
    ("valid", compiled, state),
    ("c0 of hidden size 5", compiled, np.zeros((1, 2, 5), np.float32)),
    ("valid again", compiled, state),
    ("valid, on a new infer request", compiled.create_infer_request().infer, state),
)
for name, run, c0 in calls:
    try:
        out = run([x, state, c0])
        print(f"{name}: output {out[0].shape}")
    except RuntimeError as exc:
        refused_later |= name.startswith("valid")
        print(f"{name}: RuntimeError ({str(exc).strip().splitlines()[-1][-70:]})")
sys.exit(1 if refused_later else 0)
