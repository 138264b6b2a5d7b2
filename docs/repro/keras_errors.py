"""keras.layers.LSTM accepts or rejects bad arguments differently from torch.nn.LSTM.

Each line: the argument, what torch raises, what Keras 3 raises. Exits 1 while any differs.
"""

import os
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
import numpy as np
import torch

warnings.simplefilter("ignore")


def outcome(fn):
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__
    return "nothing"


def keras_call(x, state=None, input_size=3, **kw):
    layer = keras.layers.LSTM(4, return_sequences=True, **kw)
    layer.build((None, None, input_size))
    layer(x, initial_state=state)


x64, x32 = np.zeros((2, 5, 3)), np.zeros((2, 5, 3), np.float32)
h, c = np.zeros((2, 4)), np.zeros((2, 4))
# fmt: off
cases = [  # (what, torch, keras)
    ("input_size=0", lambda: torch.nn.LSTM(0, 4), lambda: keras_call(np.zeros((2, 5, 0)), input_size=0)),
    ("bias=1 / use_bias=1", lambda: torch.nn.LSTM(3, 4, bias=1), lambda: keras_call(x32, use_bias=1)),
    ("dropout=True", lambda: torch.nn.LSTM(3, 4, dropout=True), lambda: keras.layers.Dropout(True)),
("input_size=np.int64(3)", lambda: torch.nn.LSTM(np.int64(3), 4), lambda: keras_call(x32, input_size=np.int64(3))),
("float64 input, float32 model", lambda: torch.nn.LSTM(3, 4)(torch.zeros(5, 2, 3, dtype=torch.float64)), lambda: keras_call(x64)),
("input of 7 features, model of 3", lambda: torch.nn.LSTM(3, 4)(torch.zeros(5, 2, 7)), lambda: keras_call(np.zeros((2, 5, 7), np.float32))),
("sequence of length 0", lambda: torch.nn.LSTM(3, 4)(torch.zeros(0, 2, 3)), lambda: keras_call(np.zeros((2, 0, 3), np.float32))),
("h0 of batch 3 for a batch of 2", lambda: torch.nn.LSTM(3, 4)(torch.zeros(5, 2, 3), (torch.zeros(1, 3, 4)) * 2), lambda: keras_call(x32, [np.zeros((3, 4), np.float32), np.zeros((2, 4), np.float32)])),
    ("dtype=int32", lambda: torch.nn.LSTM(3, 4, dtype=torch.int32), lambda: keras_call(x32, dtype="int32")),
]
# fmt: on
differ = 0
for what, t, k in cases:
    got_t, got_k = outcome(t), outcome(k)
    differ += got_t != got_k
    print(f"{what:34} torch: {got_t:14} keras: {got_k}")
print(f"{differ} of {len(cases)} differ (keras {keras.__version__})")
sys.exit(1 if differ else 0)
