"""TensorFlow's BlockLSTM: on a batch of 0 sequences the weight gradient is uninitialised memory.

torch.nn.LSTM on an empty batch gives an empty output and zero weight gradients; BlockLSTM's
forward is right (an empty output), but its gradient (BlockLSTMGrad) returns a `w` gradient
holding whatever was in memory (here anything from 4e-6 to 5e35, different from call to call).

Run: python tensorflow_batch0_grad.py   (exits 1 while the weight gradient is not zero)
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import torch

F, H, L = 3, 4, 5
rng = np.random.default_rng(0)
w = tf.constant(rng.uniform(-0.5, 0.5, (F + H, 4 * H)).astype(np.float32))
b = tf.constant(rng.uniform(-0.5, 0.5, 4 * H).astype(np.float32))
x, state, zero = tf.zeros((L, 0, F)), tf.zeros((0, H)), tf.zeros(H)

ref = torch.nn.LSTM(F, H)
out, _ = ref(torch.zeros(L, 0, F))
torch_dw = torch.autograd.grad(out, ref.weight_ih_l0, torch.zeros(L, 0, H))[0]
print(
    "torch", torch.__version__, "output", tuple(out.shape), f"max |d weight_ih| = {torch_dw.abs().max():.1e}"
)

print("tensorflow", tf.__version__)
worst = 0.0
for _ in range(3):
    with tf.GradientTape() as tape:
        tape.watch([w, b])
        h = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.constant(L, tf.int64), x=x, cs_prev=state, h_prev=state, w=w,
            wci=zero, wcf=zero, wco=zero, b=b, forget_bias=0.0, cell_clip=-1.0, use_peephole=False,
        )[6]  # fmt: skip
    dw, db = tape.gradient(h, [w, b], output_gradients=tf.zeros_like(h))
    worst = max(worst, float(np.abs(dw.numpy()).max()))
    print(
        f"BlockLSTM output {tuple(h.shape)}: max |d w| = {np.abs(dw.numpy()).max():.3e}, max |d b| = {np.abs(db.numpy()).max():.1e}"
    )
sys.exit(1 if worst != 0 else 0)
