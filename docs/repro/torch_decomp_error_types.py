"""torch's decomposition of aten.lstm raises other exception types than aten.lstm itself.

A zero-length sequence: ValueError (from torch.cat of no steps) where torch raises RuntimeError;
three hidden states: AssertionError where torch raises RuntimeError. Exits 1 while present.
"""

import sys

import torch
from torch._decomp import decomposition_table

lstm_decomp = decomposition_table[torch.ops.aten.lstm.input]
m = torch.nn.LSTM(3, 4, dtype=torch.float64)
h = torch.zeros(1, 2, 4, dtype=torch.float64)
cases = {
    "zero-length sequence": (torch.zeros(0, 2, 3, dtype=torch.float64), [h, h]),
    "three hidden states": (torch.zeros(5, 2, 3, dtype=torch.float64), [h, h, h]),
}


def raised(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "nothing"


differ = 0
for name, (x, hx) in cases.items():
    aten_says = raised(torch.lstm, x, hx, m._flat_weights, True, 1, 0.0, False, False, False)
    decomp_says = raised(lstm_decomp, x, hx, m._flat_weights, True, 1, 0.0, False, False, False)
    print(f"{name}:\n  torch.lstm    raises {aten_says}\n  decomposition raises {decomp_says}")
    differ += aten_says.split(":")[0] != decomp_says.split(":")[0]
sys.exit(1 if differ else 0)
