"""dm-haiku's hk.LSTM under hk.dynamic_unroll accepts or rejects bad arguments differently from
torch.nn.LSTM. Each line: the argument, torch's exception, Haiku's. Exits 1 while any differs."""

import sys

import haiku as hk
import jax

jax.config.update("jax_enable_x64", True)  # before Haiku makes any array
import numpy as np  # noqa: E402
import torch  # noqa: E402


def outcome(fn):
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__
    return "nothing"


def haiku_call(x, state=None, hidden=4, features=3, dtype=np.float64):
    """hk.LSTM(hidden) unrolled over time-major x, parameters made for `features` inputs."""

    def unroll(x, state):
        core = hk.LSTM(hidden)
        return hk.dynamic_unroll(
            core, x, core.initial_state(x.shape[1]) if state is None else hk.LSTMState(*state)
        )

    f = hk.without_apply_rng(hk.transform(unroll))
    params = f.init(jax.random.PRNGKey(0), np.zeros((1, 1, features), dtype), None)
    f.apply(params, x, state)


t64 = dict(dtype=torch.float64)
x = np.zeros((5, 2, 3))
h64, h32 = np.zeros((2, 4)), np.zeros((2, 4), np.float32)
# fmt: off
cases = [  # (what, torch, haiku)
    ("hidden_size=0", lambda: torch.nn.LSTM(3, 0), lambda: haiku_call(x, hidden=0)),
    ("sequence of length 0", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(0, 2, 3, **t64)), lambda: haiku_call(np.zeros((0, 2, 3)))),
    ("float32 input, float64 model", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 3)), lambda: haiku_call(x.astype(np.float32))),
    ("input of 7 features, model of 3", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 7, **t64)), lambda: haiku_call(np.zeros((5, 2, 7)))),
    ("h0 of batch 3 for a batch of 2", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 3, **t64), (torch.zeros(1, 3, 4, **t64), torch.zeros(1, 2, 4, **t64))), lambda: haiku_call(x, (np.zeros((3, 4)), h64))),
    ("c0 of 5 units, model of 4", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 3, **t64), (torch.zeros(1, 2, 4, **t64), torch.zeros(1, 2, 5, **t64))), lambda: haiku_call(x, (h64, np.zeros((2, 5))))),
    ("float32 c0 in a float64 model (torch accepts)", lambda: torch.nn.LSTM(3, 4, **t64)(torch.zeros(5, 2, 3, **t64), (torch.zeros(1, 2, 4, **t64), torch.zeros(1, 2, 4))), lambda: haiku_call(x, (h64, h32))),
]
# fmt: on
differ = 0
for what, t, h in cases:
    got_t, got_h = outcome(t), outcome(h)
    differ += got_t != got_h
    print(f"{what:48} torch: {got_t:14} haiku: {got_h}")
print(f"{differ} of {len(cases)} differ")
sys.exit(1 if differ else 0)
