"""Flax nnx's LSTM (OptimizedLSTMCell under nnx.RNN) accepts or rejects bad arguments
differently from torch.nn.LSTM. Each line: the argument, torch's exception, Flax's.
Exits 1 while any differs."""

import sys

import jax

jax.config.update("jax_enable_x64", True)  # before flax builds any array
import numpy as np  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402


def outcome(fn):
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__
    return "nothing"


def flax_call(x, carry=None, features=3, hidden=4, dtype=np.float64):
    rnn = nnx.RNN(
        nnx.OptimizedLSTMCell(features, hidden, param_dtype=dtype, rngs=nnx.Rngs(0)), time_major=True
    )
    rnn(x, initial_carry=carry)


t64 = dict(dtype=torch.float64)
x = np.zeros((5, 2, 3))
state32, state64 = np.zeros((2, 4), np.float32), np.zeros((2, 4))
# fmt: off
cases = [  # (what, torch, flax)
    ("hidden_size=0", lambda: torch.nn.LSTM(3, 0), lambda: flax_call(x, hidden=0)),
("dropout=-0.1 / nnx.Dropout(-0.1)", lambda: torch.nn.LSTM(3, 4, dropout=-0.1), lambda: nnx.Dropout(-0.1)),
("dropout=None / nnx.Dropout(None)", lambda: torch.nn.LSTM(3, 4, dropout=None), lambda: nnx.Dropout(None)),
("4-d input", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(2, 5, 2, 3, **t64)), lambda: flax_call(np.zeros((5, 2, 2, 3)))),
("sequence of length 0", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(0, 2, 3, **t64)), lambda: flax_call(np.zeros((0, 2, 3)))),
("float32 input, float64 model", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 3)), lambda: flax_call(x.astype(np.float32))),
("input of 7 features, model of 3", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 7, **t64)), lambda: flax_call(np.zeros((5, 2, 7)))),
("float32 c0 in a float64 model (torch accepts)", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 3, **t64), (torch.zeros(1, 2, 4, **t64), torch.zeros(1, 2, 4)) ), lambda: flax_call(x, (state32, state64))),  # Flax's carry is (c, h)
]
# fmt: on
differ = 0
for what, t, f in cases:
    got_t, got_f = outcome(t), outcome(f)
    differ += got_t != got_f
    print(f"{what:48} torch: {got_t:14} flax: {got_f}")
print(f"{differ} of {len(cases)} differ")
sys.exit(1 if differ else 0)
