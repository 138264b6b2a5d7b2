"""After two bad calls in a fresh process, every later call of any scripted nn.LSTM fails with an INTERNAL ASSERT.

Under no_grad: a call with hx=(h0, None) (rejected, as by eager torch), then one with a float64
h0 and a float32 c0 (eager torch accepts it), each on a freshly scripted nn.LSTM. From then on a
plain call of a new scripted LSTM raises "INTERNAL ASSERT FAILED ... alias_analysis.cpp".
Exits 1 while the behaviour is present.
"""

import sys
import warnings

import torch

warnings.simplefilter("ignore")
x = torch.zeros(5, 2, 3, dtype=torch.float64)
h0 = torch.zeros(1, 2, 4, dtype=torch.float64)


def call(hx):
    """A freshly scripted nn.LSTM called once (no eager call in between: that hides it)."""
    scripted = torch.jit.script(torch.nn.LSTM(3, 4, dtype=torch.float64).eval())
    with torch.no_grad():
        try:
            scripted.forward__0(x, hx)
            return "ok"
        except Exception as exc:
            return type(exc).__name__ + (" (INTERNAL ASSERT FAILED)" if "INTERNAL ASSERT" in str(exc) else "")


print("hx=(h0, None) (eager: AttributeError):   ", call((h0, None)))
print("h0 float64, c0 float32 (eager: accepted):", call((h0, h0.float())))
after = call(None)
print("plain call again:                        ", after)
sys.exit(1 if "ASSERT" in after else 0)
