"""torch's decomposition of aten.lstm never applies dropout between layers in training mode.

torch/_decomp/decompositions.py, _rnn_helper: `dropout = dropout if (train and num_layers < i - 1)
else 0.0` is never true for a layer index i < num_layers, so the train-mode call equals eval.
Exits 1 while the behaviour is present.
"""

import sys

import torch
from torch._decomp import decomposition_table

lstm_decomp = decomposition_table[torch.ops.aten.lstm.input]
torch.manual_seed(0)
m = torch.nn.LSTM(3, 4, num_layers=2, dropout=1.0, dtype=torch.float64).train()
x = torch.randn(5, 2, 3, dtype=torch.float64)
h0 = torch.zeros(2, 2, 4, dtype=torch.float64)
with torch.no_grad():
    eager_train = m(x, (h0, h0))[0]  # p=1: layer 1 sees zeros, deterministic
    decomp_train = lstm_decomp(x, [h0, h0], m._flat_weights, True, 2, 1.0, True, False, False)[0]
    eager_eval = m.eval()(x, (h0, h0))[0]
diff = (decomp_train - eager_train).abs().max().item()
same_as_eval = (decomp_train - eager_eval).abs().max().item()
print(f"train mode, dropout=1.0: max |decomposition - nn.LSTM| = {diff:.3e}")
print(f"max |decomposition(train) - nn.LSTM(eval)| = {same_as_eval:.3e} (0: no dropout applied)")

# the drop rate with p=0.5: nn.LSTM drops about half of layer 1's inputs, the decomposition none
m2 = torch.nn.LSTM(3, 4, num_layers=2, dropout=0.5, dtype=torch.float64).train()
runs = [lstm_decomp(x, [h0, h0], m2._flat_weights, True, 2, 0.5, True, False, False)[0] for _ in range(3)]
spread = max((r - runs[0]).abs().max().item() for r in runs)
print(f"p=0.5: three train-mode calls differ by at most {spread:.3e} (nn.LSTM's differ: fresh masks)")
sys.exit(1 if diff > 1e-9 else 0)
