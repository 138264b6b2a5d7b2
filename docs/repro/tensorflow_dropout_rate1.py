"""TensorFlow's tf.nn.dropout refuses rate=1, which torch accepts (everything dropped).

torch.nn.LSTM(dropout=1.0) in training mode zeroes every layer's output but the last;
torch.nn.functional.dropout(p=1) returns zeros. tf.nn.dropout raises ValueError for rate=1
(its range is [0, 1)), so a TensorFlow port of such a model cannot be run in training mode.

Run: python tensorflow_dropout_rate1.py   (exits 1 while rate=1 is refused)
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import torch

x = np.ones((2, 3), np.float32)
print(
    "torch",
    torch.__version__,
    "dropout(p=1):",
    torch.nn.functional.dropout(torch.from_numpy(x), p=1.0).numpy().ravel(),
)
print("tensorflow", tf.__version__)
try:
    print("tf.nn.dropout(rate=1):", tf.nn.dropout(x, rate=1.0).numpy().ravel())
except ValueError as exc:
    print("tf.nn.dropout(rate=1): ValueError:", exc)
    sys.exit(1)
