"""torch.compile of nn.LSTM (RNNs allowed) never applies dropout between layers in training mode.

Dynamo hands aten.lstm to torch's decomposition (torch/_decomp/decompositions.py, _rnn_helper),
whose condition `num_layers < i - 1` is never true: the train-mode call equals eval mode.
Exits 1 while the behaviour is present.
"""

import sys

import torch
import torch._dynamo

torch._dynamo.config.allow_rnn = True  # without it dynamo skips nn.LSTM and runs it eagerly
torch.manual_seed(0)
m = torch.nn.LSTM(3, 4, num_layers=2, dropout=1.0, dtype=torch.float64).train()
x = torch.randn(5, 2, 3, dtype=torch.float64)
compiled = torch.compile(m, fullgraph=True)  # Inductor
with torch.no_grad():
    got = compiled(x)[0]
    eager_train = m(x)[0]  # p=1: layer 1 sees zeros, deterministic
    eager_eval = m.eval()(x)[0]
diff = (got - eager_train).abs().max().item()
print(f"train mode, dropout=1.0: max |compiled - eager nn.LSTM| = {diff:.3e}")
print(f"max |compiled(train) - eager(eval)| = {(got - eager_eval).abs().max().item():.3e} (0: no dropout)")
sys.exit(1 if diff > 1e-9 else 0)
