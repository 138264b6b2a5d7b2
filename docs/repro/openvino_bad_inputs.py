"""OpenVINO runs a converted torch LSTM on inputs torch refuses; on one thread it returns
empty arrays for inputs of the wrong size.

torch.nn.LSTM(3, 4) refuses an input with 7 features, an empty sequence and an h0 for another
batch size (RuntimeError each) and a float64 input (ValueError). The same module converted
with openvino.convert_model (the PyTorch frontend traces it; every input dimension comes out
dynamic) and compiled for the CPU accepts the empty sequence and the float64 input (converted
to float32). Compiled with INFERENCE_NUM_THREADS=1, it also accepts the other two and returns
outputs with a batch of 0. A 1-D input is refused by both, torch with ValueError, OpenVINO with
RuntimeError. Exits 1 while any of them is accepted.
"""

import sys
import warnings

import numpy as np
import openvino
import torch

warnings.simplefilter("ignore")
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 4).eval()
example = (torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
model = openvino.convert_model(lstm, example_input=example)
print("OpenVINO", openvino.__version__, "inputs:", [str(i.get_partial_shape()) for i in model.inputs])

zeros = np.zeros((1, 2, 4), np.float32)
calls = {
    "input with 7 features": (np.ones((5, 2, 7), np.float32), zeros, zeros),
    "sequence of length 0": (np.ones((0, 2, 3), np.float32), zeros, zeros),
    "h0 for a batch of 3 (input batch 2)": (
        np.ones((5, 2, 3), np.float32),
        np.ones((1, 3, 4), np.float32),
        zeros,
    ),
    "float64 input": (np.ones((5, 2, 3), np.float64), zeros, zeros),
    "1-D input": (np.ones(3, np.float32), zeros, zeros),
}
for name, (x, h0, c0) in calls.items():
    try:
        lstm(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
        print(f"torch, {name}: accepted")
    except (RuntimeError, ValueError) as exc:
        print(f"torch, {name}: {type(exc).__name__} ({str(exc).splitlines()[0][:60]})")

accepted = 0
for config in ({}, {"INFERENCE_NUM_THREADS": 1}):
    compiled = openvino.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", **config})
    for name, (x, h0, c0) in calls.items():
        try:
            out = compiled([x, h0, c0])
            says = f"returned output {out[0].shape}, h_n {out[1].shape}"
            accepted += 1
        except RuntimeError as exc:
            says = f"RuntimeError ({str(exc).strip().splitlines()[-1][:60]})"
        print(f"OpenVINO {config or 'default threads'}, {name}: {says}")
sys.exit(1 if accepted else 0)
