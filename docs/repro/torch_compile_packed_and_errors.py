"""torch.compile(nn.LSTM, fullgraph=True), RNNs allowed: packed input and bad input.

PackedSequence input fails to compile ("Could not guard on data-dependent expression"), and the
argument errors nn.LSTM raises (ValueError, RuntimeError) come out as torch._dynamo.exc.Unsupported
("Observed exception"). Eager nn.LSTM is shown next to it. Exits 1 while either is present.
"""

import sys

import torch
import torch._dynamo

torch._dynamo.config.allow_rnn = True


def outcome(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
    return "ok"


m = torch.nn.LSTM(3, 4).eval()
packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 3), [5, 3])
bad = torch.zeros(3)  # 1-D input
differ = 0
with torch.no_grad():
    for name, x in (("packed input", packed), ("1-D input", bad)):
        torch._dynamo.reset()
        eager, compiled = outcome(m, x), outcome(torch.compile(m, fullgraph=True), x)
        print(f"{name}:\n  eager    {eager}\n  compiled {compiled}")
        differ += eager.split(":")[0] != compiled.split(":")[0]
sys.exit(1 if differ else 0)
