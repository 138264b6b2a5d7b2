"""TensorFlow's BlockLSTMV2 op: right forward, wrong input and state gradients (BlockLSTM, v1, is right).

TensorFlow registers v1's gradient function for BlockLSTMV2 too; it calls BlockLSTMGrad, which
reads the weights in v1's gate order (i, c, f, o), while V2's weights are in i, f, c, o.

Run: python tensorflow_block_lstm_v2_grad.py   (exits 1 while V2's input gradient is wrong)
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import torch
from tensorflow.python.framework import ops

rng = np.random.default_rng(0)
F, H, L, N = 3, 4, 6, 2
w_ih = rng.uniform(-0.5, 0.5, (4 * H, F)).astype(np.float32)
w_hh = rng.uniform(-0.5, 0.5, (4 * H, H)).astype(np.float32)
b = rng.uniform(-0.5, 0.5, 4 * H).astype(np.float32)
x = rng.uniform(-1, 1, (L, N, F)).astype(np.float32)
h0, c0 = rng.uniform(-1, 1, (2, N, H)).astype(np.float32)
grad_h = rng.standard_normal((L, N, H)).astype(np.float32)

ref = torch.nn.LSTM(F, H)  # torch's gate blocks: i, f, g, o
with torch.no_grad():
    for name, value in dict(weight_ih_l0=w_ih, weight_hh_l0=w_hh, bias_ih_l0=b, bias_hh_l0=0 * b).items():
        getattr(ref, name).copy_(torch.from_numpy(value))
xt = torch.from_numpy(x).requires_grad_()
out, _ = ref(xt, (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
(torch_dx,) = torch.autograd.grad(out, xt, torch.from_numpy(grad_h))


def reorder(a, order):
    """torch's gate blocks i, f, g, o in ``order`` (the ops call g "c")."""
    blocks = dict(zip("ifgo", np.split(a, 4, axis=0), strict=True))
    return np.concatenate([blocks[k] for k in order], axis=0)


print("tensorflow", tf.__version__)
worst = {}
for name, order, extra in (
    ("BlockLSTM", "igfo", dict(forget_bias=0.0, cell_clip=-1.0)),  # v1: i, c, f, o
    ("BlockLSTMV2", "ifgo", dict(cell_clip=0.0)),  # V2: i, f, c, o
):
    op = getattr(tf.raw_ops, name)
    w = tf.constant(reorder(np.concatenate([w_ih, w_hh], axis=1), order).T)  # (F + H, 4H)
    xx, zero = tf.constant(x), tf.zeros(H)
    with tf.GradientTape() as tape:
        tape.watch(xx)
        h = op(
            seq_len_max=tf.constant(L, tf.int64), x=xx, cs_prev=c0, h_prev=h0, w=w,
            wci=zero, wcf=zero, wco=zero, b=tf.constant(reorder(b, order)), use_peephole=False, **extra,
        )[6]  # fmt: skip
    dx = tape.gradient(h, xx, output_gradients=tf.constant(grad_h)).numpy()
    forward = np.abs(h.numpy() - out.detach().numpy()).max()
    worst[name] = np.abs(dx - torch_dx.numpy()).max()
    grad_fn = ops._gradient_registry.lookup(name).__name__
    print(
        f"{name}: gradient function {grad_fn}; max |output - torch| = {forward:.1e}, max |d input - torch| = {worst[name]:.1e}"
    )
# V2's own gradient op, which TensorFlow has but does not register, called by hand
w = tf.constant(reorder(np.concatenate([w_ih, w_hh], axis=1), "ifgo").T)
args = dict(
    seq_len_max=tf.constant(L, tf.int64), x=tf.constant(x), cs_prev=c0, h_prev=h0, w=w,
    wci=tf.zeros(H), wcf=tf.zeros(H), wco=tf.zeros(H), b=tf.constant(reorder(b, "ifgo")), use_peephole=False,
)  # fmt: skip
i, cs, f, o, ci, co, h = tf.raw_ops.BlockLSTMV2(**args, cell_clip=0.0)
dx = tf.raw_ops.BlockLSTMGradV2(
    **args, i=i, cs=cs, f=f, o=o, ci=ci, co=co, h=h, cs_grad=tf.zeros_like(cs), h_grad=tf.constant(grad_h)
)[0].numpy()
print(f"BlockLSTMGradV2 called directly: max |d input - torch| = {np.abs(dx - torch_dx.numpy()).max():.1e}")
print(f"max |torch's d input| = {np.abs(torch_dx.numpy()).max():.2f}")
sys.exit(1 if worst["BlockLSTMV2"] > 1e-4 else 0)
