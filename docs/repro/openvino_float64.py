"""OpenVINO computes a float64 torch LSTM in float32 and returns float64 arrays.

A float64 torch.nn.LSTM converted with openvino.convert_model keeps float64 inputs and outputs
(the converted model's types say f64), but the CPU plugin computes in float32: the output is off
by about 1e-7 where float64 rounding is about 1e-16. f64 is not an accepted
INFERENCE_PRECISION_HINT ("Supported values: bf16, f16, f32, undefined"), and f32 or undefined
give the same float32 result. Exits 1 while the float64 result is only float32-accurate.
"""

import sys
import warnings

import numpy as np
import openvino
import torch

warnings.simplefilter("ignore")
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 4, dtype=torch.float64).eval()
x = torch.randn(6, 2, 3, dtype=torch.float64)
with torch.no_grad():
    expected = lstm(x)[0].numpy()
model = openvino.convert_model(lstm, example_input=(x,))
print(
    "OpenVINO",
    openvino.__version__,
    "model input/output types:",
    model.inputs[0].get_element_type(),
    model.outputs[0].get_element_type(),
)
core = openvino.Core()
worst = 0.0
for hint in ("f32", "undefined", "f64"):
    try:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    except RuntimeError as exc:
        print(f"INFERENCE_PRECISION_HINT={hint}: refused ({str(exc).strip().splitlines()[-1]})")
        continue
    out = compiled([x.numpy()])[0]
    err = np.abs(out - expected).max()
    worst = max(worst, err)
    print(
        f"INFERENCE_PRECISION_HINT={hint}: output dtype {out.dtype}, max |OpenVINO - torch float64| = {err:.1e}"
    )
sys.exit(1 if worst > 1e-12 else 0)
