"""``trace``: every gate and state of every step, to see where an implementation diverges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .functional import PREPARED_GATES, StepRecorder
from .module import LSTM, _Call


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
    rows_total: list[int] = []
    buffers: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    hidden, h_out = m.hidden_size, m.output_hidden_size

    def recorder(layer: int, direction: int) -> StepRecorder:
        store = buffers.setdefault((layer, direction), {})

        def record(rows: slice, gates: np.ndarray, c: np.ndarray, h_cell: np.ndarray, h: np.ndarray) -> None:
            if not store:
                n_rows = rows_total[0]
                for name in ("i", "f", "g", "o", "c", "h_cell"):
                    store[name] = np.zeros((n_rows, hidden), dtype=m.dtype)
                store["h"] = np.zeros((n_rows, h_out), dtype=m.dtype)
            for position, name in enumerate(PREPARED_GATES):
                store[name][rows] = gates[:, position * hidden : (position + 1) * hidden]
            store["c"][rows] = c
            store["h_cell"][rows] = h_cell
            store["h"][rows] = h

        return record

    call = _Call.prepare(m, input, hx)
    rows_total.append(call.data.shape[0])
    layer_outputs: list[np.ndarray] = []
    output, (h_n, c_n) = m._run(input, hx, dropout_masks, recorder, layer_outputs)
    result = Trace(output, h_n, c_n, layer_outputs=[call.to_layout(o) for o in layer_outputs])
    for (layer, direction), store in sorted(buffers.items()):
        arrays = {k: call.to_layout(v) for k, v in store.items()}
        result.directions.append(DirectionTrace(layer, direction, **arrays))
    return result
