"""LSTMs broken only at some sizes: lstm_ref.LSTM with one size-dependent fault each, the kind a
blocked or vectorized kernel has when its remainder, matrix-vector or chunking path is wrong.

tests/test_sizes.py asserts the default run's size cases fail every one of them (on the
``sizes`` row) and that ``lstm-conformance explore`` shrinks HiddenTailOff to the first size
past its threshold. Each fault sits past a block (there must be a full block and a tail), so
the small cases (hidden 5, input 4, batch <= 4, 6 steps) cannot see it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import lstm_ref
from lstm_ref.functional import prepare_weights


def tail_start(n: int, block: int) -> int | None:
    """Where the partial block after the last full one starts; None without a full block or tail."""
    full = n // block
    return full * block if full and n % block else None


def _is_dense(x: Any) -> bool:
    return not isinstance(x, tuple)  # a PackedSequence is a tuple


def _scale_tail(a: np.ndarray, width: int, start: int, factor: float) -> np.ndarray:
    """Units ``start:`` of every ``width``-wide block of the last axis (one per direction), scaled."""
    a = np.array(a, copy=True)
    blocks = a.reshape(*a.shape[:-1], a.shape[-1] // width, width)
    blocks[..., start:] *= factor
    return blocks.reshape(a.shape)


class HiddenTailOff(lstm_ref.LSTM):
    """Hidden units past the last full block of 32 come out 1% off."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, (h, c) = super().forward(input, hx, dropout_masks=dropout_masks)
        start = tail_start(self.hidden_size, 32)
        if start is None:
            return out, (h, c)
        c = _scale_tail(c, self.hidden_size, start, 1.01)
        if self.proj_size:  # the tail is inside the projection: only c shows it directly
            return out, (h, c)
        h = _scale_tail(h, self.hidden_size, start, 1.01)
        if _is_dense(out):
            return _scale_tail(out, self.hidden_size, start, 1.01), (h, c)
        data = _scale_tail(out.data, self.hidden_size, start, 1.01)
        return lstm_ref.PackedSequence(data, *out[1:]), (h, c)


class InputTailIgnored(lstm_ref.LSTM):
    """Input features past the last full block of 16 are ignored (read as 0)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        start = tail_start(self.input_size, 16)
        if start is not None:
            if _is_dense(input):
                input = np.array(input, copy=True)
                input[..., start:] = 0
            else:
                data = np.array(input.data, copy=True)
                data[..., start:] = 0
                input = lstm_ref.PackedSequence(data, *input[1:])
        return super().forward(input, hx, dropout_masks=dropout_masks)


class BatchTailPreviousRow(lstm_ref.LSTM):
    """Batch rows past the last full block of 8 read the previous row's input (dense batches)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if _is_dense(input) and np.ndim(input) == 3:
            axis = 0 if self.batch_first else 1
            start = tail_start(np.shape(input)[axis], 8)
            if start is not None:
                x = np.array(input, copy=True)
                rows = np.arange(start, x.shape[axis])
                src = np.take(np.asarray(input), rows - 1, axis=axis)
                if axis == 0:
                    x[rows] = src
                else:
                    x[:, rows] = src
                input = x
        return super().forward(input, hx, dropout_masks=dropout_masks)


class BatchOfOneDropsBiasHH(lstm_ref.LSTM):
    """A batched batch of exactly one (the matrix-vector path) drops bias_hh."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        axis = 0 if self.batch_first else 1
        if not (self.bias and _is_dense(input) and np.ndim(input) == 3 and np.shape(input)[axis] == 1):
            return super().forward(input, hx, dropout_masks=dropout_masks)
        saved = self._layers
        params = {k: (np.zeros_like(v) if k.startswith("bias_hh") else v) for k, v in self._params.items()}
        self._layers = prepare_weights(
            params, int(self.num_layers), self.num_directions, self.bias, self.proj_size > 0
        )
        try:
            return super().forward(input, hx, dropout_masks=dropout_masks)
        finally:
            self._layers = saved


class LongSequenceLosesCell(lstm_ref.LSTM):
    """Sequences over 64 steps are run in chunks of 64 that restart the cell state at 0
    (unidirectional dense input)."""

    CHUNK = 64

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if self.bidirectional or not _is_dense(input):
            return super().forward(input, hx, dropout_masks=dropout_masks)
        x = np.asarray(input)
        axis = 1 if self.batch_first and x.ndim == 3 else 0
        steps = x.shape[axis]
        if steps <= self.CHUNK:
            return super().forward(input, hx, dropout_masks=dropout_masks)
        outs, state = [], hx
        for t0 in range(0, steps, self.CHUNK):
            t = np.arange(t0, min(t0 + self.CHUNK, steps))
            masks = None if dropout_masks is None else [np.asarray(m)[t] for m in dropout_masks]
            if t0:
                state = (state[0], np.zeros_like(state[1]))
            out, state = super().forward(np.take(x, t, axis=axis), state, dropout_masks=masks)
            outs.append(out)
        return np.concatenate(outs, axis=axis), state


# class name -> the table rows the default run must fail
SIZE_BROKEN: dict[str, tuple[str, ...]] = {
    "HiddenTailOff": ("sizes", "whole_sequence"),
    "InputTailIgnored": ("sizes", "whole_sequence"),
    "BatchTailPreviousRow": ("sizes", "whole_sequence"),
    "BatchOfOneDropsBiasHH": ("sizes", "whole_sequence"),
    "LongSequenceLosesCell": ("sizes", "whole_sequence"),
}


class FusedFloat32(lstm_ref.LSTM):
    """Correct, declaring what fused float32 runtimes lack (OpenVINO, TensorFlow's fused op)."""

    conformance_unsupported: ClassVar[dict[str, str]] = {
        "complex": "no complex numbers",
        "float64": "float32 kernels only",
        "proj_size": "no projection",
        "dropout": "inference only",
    }
