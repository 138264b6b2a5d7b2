"""torch.compile (Inductor, RNNs allowed) of a two-layer float64 nn.LSTM on a 1000-step sequence
fails with a RecursionError inside Inductor; eager nn.LSTM runs it.

In float64 (no oneDNN layer op) torch's decomposition unrolls every step of both layers into one
graph, and Inductor recurses past Python's limit on it. Takes a few minutes on 2 cores.
Exits 1 while the behaviour is present.
"""

import sys

import torch
import torch._dynamo

torch._dynamo.config.allow_rnn = True  # without it dynamo skips nn.LSTM and runs it eagerly
torch.manual_seed(0)
m = torch.nn.LSTM(3, 4, num_layers=2, dtype=torch.float64).eval()
x = torch.randn(1000, 2, 3, dtype=torch.float64)
with torch.no_grad():
    eager = m(x)[0]
    try:
        got = torch.compile(m, fullgraph=True)(x)[0]  # Inductor
    except Exception as exc:  # InductorError wrapping the RecursionError
        print(
            f"eager output {tuple(eager.shape)}; compiled: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        )
        sys.exit(1 if "RecursionError" in str(exc) else 2)
print(f"compiled ran: max |compiled - eager| = {(got - eager).abs().max().item():.3e}")
sys.exit(0)
