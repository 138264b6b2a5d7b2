"""Dynamically quantized nn.LSTM raises other exception types than nn.LSTM for bad input.

Exits 1 while any type differs.
"""

import sys
import warnings

import torch

warnings.simplefilter("ignore")
m = torch.nn.LSTM(3, 4).eval()
q = torch.ao.quantization.quantize_dynamic(torch.nn.ModuleDict({"m": m}), {torch.nn.LSTM}, dtype=torch.qint8)[
    "m"
]
cases = {
    "1-D input": (torch.zeros(3), None),
    "4-D input": (torch.zeros(1, 5, 2, 3), None),
    "float64 input": (torch.zeros(5, 2, 3, dtype=torch.float64), None),
    "hx a single tensor": (torch.zeros(5, 2, 3), torch.zeros(1, 2, 4)),
}


def raised(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return type(exc).__name__
    return "nothing"


differ = 0
with torch.no_grad():
    for name, args in cases.items():
        eager, quantized = raised(m, *args), raised(q, *args)
        print(f"{name:20} nn.LSTM raises {eager:14} quantized raises {quantized}")
        differ += eager != quantized
sys.exit(1 if differ else 0)
