"""torch.jit.script of nn.LSTM(bidirectional=1) raises RuntimeError; eager torch constructs it.

Eager nn.LSTM accepts bidirectional=1 and only a call fails (TypeError from _VF.lstm). Scripting
fails: the int constant does not match aten::lstm's `bool bidirectional`, and a second attempt in
the same process fails with "Can't redefine method: forward__0". Exits 1 while present.
"""

import sys
import warnings

import torch

warnings.simplefilter("ignore")
x = torch.zeros(5, 2, 3)
eager = torch.nn.LSTM(3, 4, bidirectional=1)
print("eager nn.LSTM(bidirectional=1): constructed")
try:
    eager(x)
except TypeError as exc:
    print(f"eager call: TypeError: {str(exc).splitlines()[0][:80]}")
failed = 0
for attempt in (1, 2):
    try:
        torch.jit.script(torch.nn.LSTM(3, 4, bidirectional=1))
        print(f"script attempt {attempt}: ok")
    except RuntimeError as exc:
        failed += 1
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        print(f"script attempt {attempt}: RuntimeError: {lines[0][:120]}")
sys.exit(1 if failed else 0)
