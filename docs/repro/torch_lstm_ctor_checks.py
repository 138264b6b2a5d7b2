"""nn.LSTM's constructor checks across torch versions: input_size=0, bias and batch_first given
as int, input_size given as a NumPy integer. Prints, for the installed torch, what each raises
(or "accepts"), in float64 and float32. Needs only torch and numpy; always exits 0.
"""

import warnings

import numpy as np
import torch

warnings.simplefilter("ignore")
probes = {
    "input_size=0": {"input_size": 0},
    "bias=1": {"bias": 1},
    "batch_first=1": {"batch_first": 1},
    "input_size=np.int64(3)": {"input_size": np.int64(3)},
}
print(f"torch {torch.__version__}")
for name, kwargs in probes.items():
    for dtype in (torch.float64, torch.float32):
        try:
            torch.nn.LSTM(**{"input_size": 3, "hidden_size": 4, "dtype": dtype, **kwargs})
            said = "accepts"
        except Exception as exc:
            said = f"raises {type(exc).__name__}"
        print(f"  nn.LSTM({name}, dtype={dtype}): {said}")
