"""What torch.nn.LSTM computes, written plainly: one cell step and one direction of one layer.

This is the readable reference; ``functional.py`` computes the same thing fast, and the tests
hold the two together.  The conformance suite also uses it as the oracle of its gate-level
localisation.  Gate order is torch's: the (4H, ...) weights stack the blocks i, f, g, o.

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)        input gate
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)        forget gate
    g =    tanh(W_ig x + b_ig + W_hg h + b_hg)        cell candidate
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)        output gate
    c' = f * c + i * g
    h' = o * tanh(c')              (then h' = W_hr h' when proj_size > 0)

Parameters are passed as a mapping with torch's LSTMCell names (``weight_ih``, ``weight_hh``,
optional ``bias_ih``, ``bias_hh`` and ``weight_hr``); arrays compute in their own dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np


class Step(NamedTuple):
    """Everything one step computes (each (N, H), ``h`` (N, H_out))."""

    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray
    h: np.ndarray


def sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))  # type: ignore[no-any-return]


def lstm_cell(x: np.ndarray, h: np.ndarray, c: np.ndarray, params: Mapping[str, np.ndarray]) -> Step:
    """One step: x (N, I), h (N, H_out), c (N, H) -> the gates and the new (c, h)."""
    z = x @ params["weight_ih"].T + h @ params["weight_hh"].T
    if "bias_ih" in params:
        z = z + params["bias_ih"] + params["bias_hh"]
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g), sigmoid(z_o)
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    if "weight_hr" in params:
        h_new = h_new @ params["weight_hr"].T
    return Step(i, f, g, o, c_new, h_new)


class DirectionResult(NamedTuple):
    output: np.ndarray  # (L, N, H_out), or packed rows (S, H_out)
    h_n: np.ndarray  # (N, H_out): each sequence's state after its own last step
    c_n: np.ndarray  # (N, H)
    steps: list[Step]  # steps[t] is time step t (also when running in reverse)


def lstm_direction(
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    params: Mapping[str, np.ndarray],
    reverse: bool = False,
    batch_sizes: Sequence[int] | None = None,
) -> DirectionResult:
    """One direction of one layer over a sequence.

    x is (L, N, I), or with ``batch_sizes`` packed rows (S, I): step t is the next
    ``batch_sizes[t]`` rows, sequences sorted longest first, so only the first
    ``batch_sizes[t]`` of them take part in step t and the others keep their state.
    In reverse, each sequence starts from h0/c0 at its own last step.
    """
    sizes = [x.shape[1]] * x.shape[0] if batch_sizes is None else [int(n) for n in batch_sizes]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    rows = [x[t] if batch_sizes is None else x[starts[t] : starts[t + 1]] for t in range(len(sizes))]
    h, c = np.array(h0, copy=True), np.array(c0, copy=True)
    steps: list[Step] = [None] * len(sizes)  # type: ignore[list-item]
    for t in reversed(range(len(sizes))) if reverse else range(len(sizes)):
        n = sizes[t]
        steps[t] = lstm_cell(rows[t], h[:n], c[:n], params)
        h[:n], c[:n] = steps[t].h, steps[t].c
    rows_out = [s.h for s in steps] or [np.empty((0, h.shape[-1]), dtype=h.dtype)]
    output = np.concatenate(rows_out).reshape(*x.shape[:-1], h.shape[-1])
    return DirectionResult(output, h, c, steps)
