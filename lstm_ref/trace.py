"""``trace``: every gate and state of every step, to see where an implementation diverges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .calls import Call
from .functional import PREPARED_GATES, StepRecorder
from .module import LSTM


@dataclass
class DirectionTrace:
    """One direction of one layer, every step, in time order (reverse direction included).

    Arrays are time-major like the dropout masks: ``(L, N, ·)`` for batched input
    (also with batch_first), ``(L, ·)`` unbatched, ``(sum(lengths), ·)`` packed.
    """

    layer: int
    direction: int
    i: np.ndarray  # input gate, sigmoid
    f: np.ndarray  # forget gate, sigmoid
    g: np.ndarray  # cell candidate, tanh
    o: np.ndarray  # output gate, sigmoid
    c: np.ndarray  # cell state after the step
    h_cell: np.ndarray  # o * tanh(c), before projection
    h: np.ndarray  # hidden state after projection (== h_cell without proj_size)


@dataclass
class Trace:
    output: Any
    h_n: np.ndarray
    c_n: np.ndarray
    directions: list[DirectionTrace] = field(default_factory=list)
    layer_outputs: list[np.ndarray] = field(default_factory=list)  # before dropout, time-major

    def at(self, layer: int, direction: int = 0) -> DirectionTrace:
        return next(d for d in self.directions if d.layer == layer and d.direction == direction)


def trace(m: LSTM, input: Any, hx: Any = None, *, dropout_masks: Sequence[ArrayLike] | None = None) -> Trace:
    """Run ``m(input, hx, dropout_masks=...)`` recording every step's internals.

    Runs the same code as ``m(...)``, so ``trace(...).output`` equals it exactly.
    (In training mode without masks, this draws fresh dropout masks, like a call.)
    """
    call = Call.prepare(m, input, hx)
    recorders = _Recorders(call.data.shape[0], m.hidden_size, m.output_hidden_size, m.dtype)
    layer_outputs: list[np.ndarray] = []
    noise = m.dropout_noise(call, dropout_masks)
    output, (h_n, c_n) = call.run(m.layer_weights, noise, recorders.recorder, layer_outputs)
    result = Trace(output, h_n, c_n, layer_outputs=[call.to_layout(o) for o in layer_outputs])
    for (layer, direction), store in sorted(recorders.buffers.items()):
        arrays = {name: call.to_layout(rows) for name, rows in store.items()}
        result.directions.append(DirectionTrace(layer, direction, **arrays))
    return result


class _Recorders:
    """Per layer and direction, buffers of every packed row's gates and states, and the
    ``functional.StepRecorder`` that fills them."""

    def __init__(self, rows: int, hidden: int, h_out: int, dtype: np.dtype[Any]) -> None:
        self.rows, self.hidden, self.h_out, self.dtype = rows, hidden, h_out, dtype
        self.buffers: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def recorder(self, layer: int, direction: int) -> StepRecorder:
        hidden = self.hidden
        store = {
            name: np.zeros((self.rows, hidden), self.dtype) for name in ("i", "f", "g", "o", "c", "h_cell")
        }
        store["h"] = np.zeros((self.rows, self.h_out), self.dtype)
        self.buffers[layer, direction] = store

        def record(rows: slice, gates: np.ndarray, c: np.ndarray, h_cell: np.ndarray, h: np.ndarray) -> None:
            for position, name in enumerate(PREPARED_GATES):
                store[name][rows] = gates[:, position * hidden : (position + 1) * hidden]
            store["c"][rows] = c
            store["h_cell"][rows] = h_cell
            store["h"][rows] = h

        return record
