"""Dynamically quantized nn.LSTM: inputs ~1e3 lose precision, NaN/Inf raise.

quantize_dynamic quantizes each call's activations to int8 over their [min, max] range: with
inputs around 1e3 the small ones are lost (error ~0.3 where float32 nn.LSTM is exact to 1e-6),
NaN/Inf raise "In ChooseQuantizationParams, min should be less than or equal to max" (nn.LSTM
propagates them). Exits 1 while either is present.
"""

import sys
import warnings

import torch

warnings.simplefilter("ignore")
torch.manual_seed(0)
m = torch.nn.LSTM(3, 4).eval()
holder = torch.ao.quantization.quantize_dynamic(
    torch.nn.ModuleDict({"m": m}), {torch.nn.LSTM}, dtype=torch.qint8
)
q = holder["m"]
with torch.no_grad():
    x = torch.randn(6, 2, 3) * 1e3
    x[:, :, 0] = torch.randn(6, 2) * 1e-2  # one small feature among saturated ones
    err = (q(x)[0] - m(x)[0]).abs().max().item()
    print(f"inputs ~1e3: max |quantized - nn.LSTM| = {err:.3e}")
    bad = torch.randn(6, 2, 3)
    bad[2, 0, 1], bad[3, 1, 2] = float("nan"), float("inf")
    try:
        q(bad)
        nan_error = None
    except RuntimeError as exc:
        nan_error = str(exc).splitlines()[0]
    print(
        f"NaN/Inf input: nn.LSTM output has NaN: {bool(m(bad)[0].isnan().any())}; quantized raises: {nan_error}"
    )

sys.exit(1 if err > 0.05 or nan_error else 0)
