"""Keras 3 (JAX backend) computes a float64 LSTM in float32 unless jax_enable_x64 is on.

Run: python keras_float64.py [--x64]   (exits 1 while the float64 result is float32-accurate)
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
if "--x64" in sys.argv:
    import jax

    jax.config.update("jax_enable_x64", True)
import warnings

import keras
import numpy as np
import torch

warnings.simplefilter("ignore")  # JAX warns that float64 "will be truncated to dtype float32"
rng = np.random.default_rng(0)
F, H, L, N = 3, 4, 6, 2
w_ih, w_hh = rng.uniform(-0.5, 0.5, (4 * H, F)), rng.uniform(-0.5, 0.5, (4 * H, H))
b_ih, b_hh = rng.uniform(-0.5, 0.5, 4 * H), rng.uniform(-0.5, 0.5, 4 * H)
x = rng.uniform(-1, 1, (N, L, F))  # float64, batch-major

ref = torch.nn.LSTM(F, H, batch_first=True, dtype=torch.float64)
with torch.no_grad():
    for name, value in dict(weight_ih_l0=w_ih, weight_hh_l0=w_hh, bias_ih_l0=b_ih, bias_hh_l0=b_hh).items():
        getattr(ref, name).copy_(torch.from_numpy(value))
    expected = ref(torch.from_numpy(x))[0].numpy()

layer = keras.layers.LSTM(H, return_sequences=True, unit_forget_bias=False, dtype="float64")
layer.build((None, None, F))
layer.cell.kernel.assign(w_ih.T)  # Keras: (input, 4H), gates i, f, c, o (torch's i, f, g, o)
layer.cell.recurrent_kernel.assign(w_hh.T)
layer.cell.bias.assign(b_ih + b_hh)
out = keras.ops.convert_to_numpy(layer(x))
print("keras", keras.__version__, "backend", keras.backend.backend(), "layer dtype", layer.dtype)
print(
    "kernel variable dtype",
    layer.cell.kernel.dtype,
    "- its value",
    keras.ops.convert_to_numpy(layer.cell.kernel.value).dtype,
)
print("output dtype", out.dtype, "(float64 model, float64 input)")
t = keras.ops.convert_to_numpy(keras.ops.tanh(x))  # the LSTM's activation, on a float64 array
print(
    "keras.ops.tanh(float64).dtype =",
    t.dtype,
    f"max |err| = {np.abs(t - np.tanh(x)).max():.1e}",
    "- result_type('float64', float) =",
    keras.src.backend.common.dtypes.result_type("float64", float),
)
err = np.abs(out.astype(np.float64) - expected).max()
print(f"max |keras - torch float64| = {err:.3e} (float64 rounding is ~1e-16)")
sys.exit(1 if out.dtype != np.float64 or err > 1e-12 else 0)
