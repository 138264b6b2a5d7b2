"""paddle.nn.LSTM accepts constructor arguments torch refuses, and refuses bad calls with
ValueError where torch raises RuntimeError.

torch.nn.LSTM raises ValueError for dropout -0.1, 1.1 or True and for num_layers=0, TypeError
for dropout=None and for input_size=np.int64(3); paddle.nn.LSTM builds all of them. At the
call, an input with 7 features for input_size 3 and an h0 for another batch size are refused
by both, torch with RuntimeError, Paddle with ValueError ("(InvalidArgument) ..."). Exits 1 while
any constructor argument is accepted.
"""

import sys
import warnings

import numpy as np
import paddle
import torch

warnings.simplefilter("ignore")


def outcome(make):
    try:
        make()
        return "accepted"
    except Exception as exc:
        return f"{type(exc).__name__} ({str(exc).strip().splitlines()[0][:70]})"


accepted = 0
for name, kwargs in {
    "dropout=-0.1": {"dropout": -0.1},
    "dropout=1.1": {"dropout": 1.1},
    "dropout=True": {"dropout": True},
    "dropout=None": {"dropout": None},
    "num_layers=0": {"num_layers": 0},
    "input_size=np.int64(3)": {"input_size": np.int64(3)},
}.items():
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    paddle_says = outcome(lambda a=args: paddle.nn.LSTM(**a))
    accepted += paddle_says == "accepted"
    print(f"{name}: torch {outcome(lambda a=args: torch.nn.LSTM(**a))}; paddle {paddle_says}")

t_lstm, p_lstm = torch.nn.LSTM(3, 4), paddle.nn.LSTM(3, 4, time_major=True)
for name, x, h0 in (
    ("input with 7 features", np.ones((5, 2, 7), np.float32), None),
    ("h0 for a batch of 3", np.ones((5, 2, 3), np.float32), np.zeros((1, 3, 4), np.float32)),
):
    t_hx = None if h0 is None else (torch.from_numpy(h0), torch.zeros(1, 2, 4))
    p_hx = None if h0 is None else (paddle.to_tensor(h0), paddle.zeros([1, 2, 4]))
    print(
        f"{name}: torch {outcome(lambda x=x, hx=t_hx: t_lstm(torch.from_numpy(x), hx))}; "
        f"paddle {outcome(lambda x=x, hx=p_hx: p_lstm(paddle.to_tensor(x), hx))}"
    )
sys.exit(1 if accepted else 0)
