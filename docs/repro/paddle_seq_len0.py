"""paddle.nn.LSTM kills the process on a sequence of length 0; torch raises RuntimeError.

torch.nn.LSTM refuses a (0, N, H_in) input with "RuntimeError: Expected sequence length to be
larger than 0 in RNN". paddle.nn.LSTM (CPU) passes it on to its fused rnn kernel, and the
process dies with a signal (SIGFPE here), float32 and float64 alike, whether the tensor is made
by paddle.zeros or by paddle.to_tensor from an empty NumPy array (what an adapter passes). Each
call runs in a child process so that this script can report how it ended. Exits 1 while any
child dies.
"""

import signal
import subprocess
import sys

import torch

CHILD = r"""
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np, paddle
dtype, maker = sys.argv[1], sys.argv[2]
paddle.set_default_dtype(dtype)
lstm = paddle.nn.LSTM(3, 4, time_major=True)
x = paddle.zeros([0, 2, 3], dtype) if maker == "zeros" else paddle.to_tensor(np.zeros((0, 2, 3), dtype))
out, (h, c) = lstm(x)
print("paddle returned an output of shape", out.shape)
"""

try:
    torch.nn.LSTM(3, 4)(torch.zeros(0, 2, 3))
except RuntimeError as exc:
    print("torch:", type(exc).__name__, exc)

died = False
for dtype in ("float32", "float64"):
    for maker in ("zeros", "to_tensor"):
        proc = subprocess.run([sys.executable, "-c", CHILD, dtype, maker], capture_output=True, text=True)
        if proc.returncode < 0:  # Paddle prints a C++ traceback on stdout before it dies
            how, died = f"killed by {signal.Signals(-proc.returncode).name}", True
        else:
            how = (proc.stdout.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        print(f"paddle {dtype}, input from paddle.{maker}: {how}")
sys.exit(1 if died else 0)
