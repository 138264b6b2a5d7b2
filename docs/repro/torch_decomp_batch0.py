"""torch's decomposition of aten.lstm crashes the process (SIGFPE) on a float32 batch of 0.

In inference on CPU with float32 it picks mkldnn_one_layer_lstm (aten.mkldnn_rnn_layer), which
dies with a floating point exception for an empty batch; nn.LSTM returns an empty output.
The call runs in a subprocess, so this script can report it. Exits 1 while the crash happens.
"""

import subprocess
import sys

CALL = """
import torch
from torch._decomp import decomposition_table
m = torch.nn.LSTM(3, 4).eval()
x, h = torch.zeros(5, 0, 3), torch.zeros(1, 0, 4)
print("nn.LSTM output shape:", tuple(m(x)[0].shape), flush=True)
with torch.no_grad():
    out = decomposition_table[torch.ops.aten.lstm.input](x, [h, h], m._flat_weights, True, 1, 0.0, False, False, False)
print("decomposition output shape:", tuple(out[0].shape))
"""
proc = subprocess.run([sys.executable, "-c", CALL], capture_output=True, text=True)
print(proc.stdout.strip())
print(
    f"decomposition process exit status: {proc.returncode}"
    + (" (killed by SIGFPE)" if proc.returncode == -8 else "")
)
sys.exit(0 if proc.returncode == 0 else 1)
