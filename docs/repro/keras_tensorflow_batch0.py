"""Keras 3 on the TensorFlow backend: an LSTM on a batch of 0 sequences raises InvalidArgumentError.

torch.nn.LSTM returns an empty output for an empty batch; Keras' LSTMCell on TensorFlow fails in
its bias addition ("Biases must be 1D: [0, 4H]"). On the JAX backend the same call returns an
empty output.

Run: KERAS_BACKEND=tensorflow python keras_tensorflow_batch0.py   (exits 1 while the call raises)
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np
import torch

F, H, L = 3, 5, 4
x = np.zeros((0, L, F), np.float32)  # batch-major: 0 sequences of 4 steps
print(
    "torch",
    torch.__version__,
    "output",
    tuple(torch.nn.LSTM(F, H, batch_first=True)(torch.from_numpy(x))[0].shape),
)
layer = keras.layers.LSTM(H, return_sequences=True)
print("keras", keras.__version__, "backend", keras.backend.backend())
try:
    print("keras output", tuple(layer(x).shape))
except Exception as exc:  # tensorflow's InvalidArgumentError
    print(f"keras: {type(exc).__name__}:", " ".join(str(exc).split())[:200])
    sys.exit(1)
