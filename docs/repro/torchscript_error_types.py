"""A scripted nn.LSTM raises torch.jit.Error (or RuntimeError) where eager nn.LSTM raises
ValueError, IndexError or AttributeError (and torch.jit.Error, not RuntimeError, for the
checks nn.LSTM makes with RuntimeError). Exits 1 while the types differ.
"""

import sys
import warnings

import torch

warnings.simplefilter("ignore")
model = torch.nn.LSTM(3, 4, proj_size=2, dtype=torch.float64).eval()
scripted = torch.jit.script(model)
x = torch.zeros(5, 2, 3, dtype=torch.float64)
h = torch.zeros(1, 2, 2, dtype=torch.float64)
c = torch.zeros(1, 2, 4, dtype=torch.float64)
cases = {
    "1-D input": (torch.zeros(3, dtype=torch.float64), None),
    "hx a single tensor": (x, h),
    "h0 with hidden_size (projections)": (x, (c, c)),
}


def raised(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return f"{type(exc).__module__}.{type(exc).__name__}"
    return "nothing"


differ = 0
with torch.no_grad():
    for name, args in cases.items():
        eager, script = raised(model, *args), raised(scripted.forward__0, *args)
        print(f"{name:36} eager raises {eager:22} scripted raises {script}")
        differ += eager != script
sys.exit(1 if differ else 0)
