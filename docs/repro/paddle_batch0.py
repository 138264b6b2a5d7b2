"""paddle.nn.LSTM refuses an empty batch; torch returns empty outputs.

torch.nn.LSTM takes a (L, 0, H_in) input and returns a (L, 0, H) output and (1, 0, H) states.
paddle.nn.LSTM, float32 and float64 alike, refuses it in training mode ("RuntimeError:
(PreconditionNotMet) Tensor holds no memory") and, with two bidirectional layers (the suite's
edge-batch0 case), in eval mode ("ValueError: (InvalidArgument) The input size should not be
0"); only one layer in eval mode returns the empty output. Exits 1 while an empty batch is
refused.
"""

import itertools
import sys
import warnings

import numpy as np
import paddle
import torch

warnings.simplefilter("ignore")
with torch.no_grad():
    out, (h, _) = torch.nn.LSTM(3, 4)(torch.zeros(5, 0, 3))
print("torch: output", tuple(out.shape), "h_n", tuple(h.shape))
refused = False
for dtype in ("float32", "float64"):
    for (layers, direction), mode in itertools.product(((2, "bidirect"), (1, "forward")), ("eval", "train")):
        paddle.set_default_dtype(dtype)
        lstm = paddle.nn.LSTM(3, 4, num_layers=layers, direction=direction, time_major=True)
        lstm.train() if mode == "train" else lstm.eval()
        try:
            out, (h, _) = lstm(paddle.to_tensor(np.zeros((5, 0, 3), dtype)))
            says = f"output {out.shape}, h_n {h.shape}"
        except (ValueError, RuntimeError) as exc:
            refused, says = True, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        print(f"paddle {dtype}, {layers} layer(s), {direction}, {mode} mode: {says}")
sys.exit(1 if refused else 0)
