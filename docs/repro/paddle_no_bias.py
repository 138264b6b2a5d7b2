"""paddle.nn.LSTM without biases: IndexError at construction with 2 layers or two directions,
and a crash (SIGSEGV) at the first call with one layer.

Paddle's way to drop the biases is bias_ih_attr=False, bias_hh_attr=False. The cells then still
hold (zero, frozen) biases, but RNNBase only names the weights, and flatten_parameters, which
assumes four parameters per cell, indexes past its list (IndexError: list assignment index out
of range) as soon as there is more than one cell. With one cell it builds, but hands the fused
rnn kernel two weights where it expects four, and the process dies. Each construction runs in
a child process. Exits 1 while any of them fails.
"""

import signal
import subprocess
import sys

CHILD = r"""
import sys, warnings
warnings.simplefilter("ignore")
import paddle
layers, direction = int(sys.argv[1]), sys.argv[2]
lstm = paddle.nn.LSTM(3, 4, num_layers=layers, direction=direction, bias_ih_attr=False, bias_hh_attr=False)
print("built", flush=True)
out, (h, c) = lstm(paddle.ones([2, 5, 3]))
print("called: output", out.shape)
"""

failed = False
for layers, direction in ((2, "forward"), (1, "bidirect"), (1, "forward")):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(layers), direction], capture_output=True, text=True
    )
    lines = [line for line in proc.stdout.splitlines() if line in ("built",) or line.startswith("called")]
    if proc.returncode < 0:  # Paddle prints a C++ traceback on stdout before it dies
        lines.append(f"killed by {signal.Signals(-proc.returncode).name}")
    elif proc.returncode:
        lines.append(proc.stderr.strip().splitlines()[-1])
    failed |= proc.returncode != 0
    print(f"bias=False, num_layers={layers}, direction={direction!r}: {'; '.join(lines)}")
sys.exit(1 if failed else 0)
