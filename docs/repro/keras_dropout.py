"""keras.layers.LSTM(dropout=p) is not torch's dropout between layers: Keras draws ONE mask per
sequence (the same input units dropped at every time step); torch.nn.LSTM(dropout=p) drops
each element of a layer's output independently. Exits 1 while Keras' masks repeat over time."""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
import numpy as np

F, H, L = 8, 8, 20
layer = keras.layers.LSTM(H, return_sequences=True, dropout=0.5, unit_forget_bias=False, seed=1)
layer.build((None, None, F))
# h_t depends on x_t alone: no recurrence, forget gate shut (bias -100), identity-like kernel.
layer.cell.recurrent_kernel.assign(np.zeros((H, 4 * H), np.float32))
layer.cell.kernel.assign(np.tile(np.eye(F, H, dtype=np.float32), 4))
layer.cell.bias.assign(np.r_[np.zeros(H), -100 * np.ones(H), np.zeros(2 * H)].astype(np.float32))
x = np.ones((1, L, F), np.float32)  # the same input at every step
h = np.asarray(layer(x, training=True))[0]
patterns = {tuple(np.round(row, 6)) for row in h}
print(f"{L} steps, same input each step: {len(patterns)} distinct outputs over time (Keras' dropout=0.5)")
print("step 0 output:", np.round(h[0], 3))
print("step 9 output:", np.round(h[9], 3))
print("torch's inter-layer dropout draws per element and step: ~all", L, "steps would differ")
sys.exit(1 if len(patterns) == 1 else 0)
