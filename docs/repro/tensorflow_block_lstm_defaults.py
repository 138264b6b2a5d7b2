"""TensorFlow's BlockLSTM op by default adds 1 to the forget gate and clips the cell state to +-3.

BlockLSTM's attributes default to forget_bias=1 and cell_clip=3 (BlockLSTMV2: cell_clip=0, no
forget_bias); torch.nn.LSTM has neither. With torch's weights and the defaults, the output moves
away from torch's; with forget_bias=0, cell_clip=-1 (a value <= 0 turns clipping off) it matches.

Run: python tensorflow_block_lstm_defaults.py   (exits 1 while the defaults differ from torch)
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import torch

F, H, L, N = 2, 3, 30, 1
rng = np.random.default_rng(0)
w_ih = rng.uniform(-0.5, 0.5, (4 * H, F)).astype(np.float32)
w_hh = rng.uniform(-0.5, 0.5, (4 * H, H)).astype(np.float32)
b = np.full(4 * H, 2.0, np.float32)  # gates open: the cell state grows past 3
x = rng.uniform(0, 1, (L, N, F)).astype(np.float32)

ref = torch.nn.LSTM(F, H)
with torch.no_grad():
    for name, value in dict(weight_ih_l0=w_ih, weight_hh_l0=w_hh, bias_ih_l0=b, bias_hh_l0=0 * b).items():
        getattr(ref, name).copy_(torch.from_numpy(value))
    out, (_, c_n) = ref(torch.from_numpy(x))


def icfo(a):
    """torch's gate blocks i, f, g, o as BlockLSTM's i, c, f, o (c is torch's g)."""
    i, f, g, o = np.split(a, 4, axis=0)
    return np.concatenate([i, g, f, o], axis=0)


w = tf.constant(icfo(np.concatenate([w_ih, w_hh], axis=1)).T)
zero, state = tf.zeros(H), tf.zeros((N, H))
print(
    "tensorflow", tf.__version__, "torch", torch.__version__, f"torch's final max |c| = {c_n.abs().max():.2f}"
)
errors = {}
for label, attrs in (
    ("defaults", {}),
    ("forget_bias=0, cell_clip=-1", dict(forget_bias=0.0, cell_clip=-1.0)),
):
    _, cs, _, _, _, _, h = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.constant(L, tf.int64), x=tf.constant(x), cs_prev=state, h_prev=state, w=w,
        wci=zero, wcf=zero, wco=zero, b=tf.constant(icfo(b)), **attrs,
    )  # fmt: skip
    errors[label] = np.abs(h.numpy() - out.numpy()).max()
    print(
        f"{label}: final max |c| = {np.abs(cs.numpy()[-1]).max():.2f}, max |output - torch| = {errors[label]:.1e}"
    )
sys.exit(1 if errors["defaults"] > 1e-5 else 0)
