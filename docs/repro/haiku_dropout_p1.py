"""hk.dropout refuses rate 1, where torch drops everything: torch.nn.LSTM(dropout=1.0) in
training mode feeds zeros to every layer after the first (torch.nn.functional.dropout(x, 1.0)
is all zeros), so a two-layer torch model with dropout=1 has no Haiku equivalent through
hk.dropout. Exits 1 while hk.dropout raises for rate 1."""

import sys

import haiku as hk
import jax
import numpy as np
import torch

x = np.ones((5, 2, 4), np.float32)
print(
    "torch.nn.functional.dropout(x, p=1.0):",
    float(torch.nn.functional.dropout(torch.from_numpy(x), 1.0).abs().max()),
)
m = torch.nn.LSTM(3, 4, num_layers=2, dropout=1.0).train()
print(
    "torch.nn.LSTM(3, 4, num_layers=2, dropout=1.0) in training mode runs:",
    tuple(m(torch.zeros(5, 2, 3))[0].shape),
)
try:
    hk.dropout(jax.random.PRNGKey(0), 1.0, x)
except ValueError as exc:
    print(f"hk.dropout(rate=1.0): ValueError: {exc}")
    sys.exit(1)
print("hk.dropout(rate=1.0): accepted")
