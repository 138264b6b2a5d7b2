"""Deliberately broken LSTMs: lstm_ref.LSTM with exactly one thing wrong each.

tests/test_conformance_selftest.py asserts the conformance suite fails every one of them (and
the table row that should catch it fails), and passes lstm_ref itself. Each is a classic
mistake from real implementations.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import lstm_ref
from lstm_ref.functional import prepare_weights


def _prepare_with(model: lstm_ref.LSTM, params: dict[str, np.ndarray]) -> None:
    model._layers = prepare_weights(
        params, int(model.num_layers), model.num_directions, model.bias, model.proj_size > 0
    )


def _gate_blocks(w: np.ndarray) -> list[np.ndarray]:
    return list(np.split(w, 4, axis=0))


class WrongGateOrder(lstm_ref.LSTM):
    """Reads torch's gate blocks as i, g, f, o instead of i, f, g, o."""

    def _prepare(self) -> None:
        params = {}
        for name, w in self._params.items():
            if name.startswith(("weight_ih", "weight_hh", "bias_")):
                i, f, g, o = _gate_blocks(w)
                w = np.concatenate([i, g, f, o])
            params[name] = w
        _prepare_with(self, params)


class ReverseOGateDeepLayers(lstm_ref.LSTM):
    """In layers 1+, the reverse direction's o gate reads the forward direction's recurrent
    weights (a copy-paste slip only deeper layers hit: rebuilt as a one-layer model, it is gone)."""

    def _prepare(self) -> None:
        params = dict(self._params)
        for name in [n for n in params if n.startswith("weight_hh_l") and n.endswith("_reverse")]:
            if not name.startswith("weight_hh_l0_"):
                w = params[name].copy()
                o = slice(3 * self.hidden_size, 4 * self.hidden_size)
                w[o] = params[name.removesuffix("_reverse")][o]
                params[name] = w
        _prepare_with(self, params)


class InputForgetGatesSwapped(lstm_ref.LSTM):
    """Reads torch's gate blocks as f, i, g, o (the input and forget gates swapped)."""

    def _prepare(self) -> None:
        params = {}
        for name, w in self._params.items():
            if name.startswith(("weight_ih", "weight_hh", "bias_")):
                i, f, g, o = _gate_blocks(w)
                w = np.concatenate([f, i, g, o])
            params[name] = w
        _prepare_with(self, params)


class DroppedBiasHH(lstm_ref.LSTM):
    """Uses bias_ih only (bias_hh loaded but ignored)."""

    def _prepare(self) -> None:
        params = {k: (np.zeros_like(v) if k.startswith("bias_hh") else v) for k, v in self._params.items()}
        _prepare_with(self, params)


class TransposedBlocks(lstm_ref.LSTM):
    """Transposes each H x H block of weight_hh (only shape-neutral when H_out == H)."""

    def _prepare(self) -> None:
        params = {}
        for name, w in self._params.items():
            if name.startswith("weight_hh") and w.shape[0] == 4 * w.shape[1]:
                w = np.concatenate([b.T for b in _gate_blocks(w)])
            params[name] = w
        _prepare_with(self, params)


class LayerInputHalvesSwapped(lstm_ref.LSTM):
    """Feeds layers > 0 the previous layer's output as [reverse | forward] (bidirectional)."""

    def _prepare(self) -> None:
        params = dict(self._params)
        if self.bidirectional:
            w = self.output_hidden_size
            for name in params:
                if name.startswith("weight_ih_l") and not name.startswith("weight_ih_l0"):
                    params[name] = np.concatenate([params[name][:, w:], params[name][:, :w]], axis=1)
        _prepare_with(self, params)


class ReverseHnFromLastStep(lstm_ref.LSTM):
    """Takes the reverse direction's h_n from the last time step (it finishes at step 0)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, (h, c) = super().forward(input, hx, dropout_masks=dropout_masks)
        if (
            self.bidirectional
            and isinstance(out, np.ndarray)
            and out.ndim == 3
            and out.shape[1]
            and out.shape[0]
        ):
            w = self.output_hidden_size
            last = out[:, -1] if self.batch_first else out[-1]
            h = h.copy()
            h[-1] = last[:, w:]
        return out, (h, c)


class StateIgnored(lstm_ref.LSTM):
    """Ignores the given (h0, c0): every call starts from zeros."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        return super().forward(input, None, dropout_masks=dropout_masks)


class CellStateIgnored(lstm_ref.LSTM):
    """Uses h0 but starts the cell state from zeros."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if hx is not None and isinstance(hx, tuple) and len(hx) == 2 and hx[1] is not None:
            hx = (hx[0], np.zeros_like(np.asarray(hx[1])))
        return super().forward(input, hx, dropout_masks=dropout_masks)


class HnBatchFirst(lstm_ref.LSTM):
    """Returns h_n and c_n batch-first when batch_first=True (torch never does)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, (h, c) = super().forward(input, hx, dropout_masks=dropout_masks)
        if self.batch_first and isinstance(input, np.ndarray) and input.ndim == 3:
            h, c = np.swapaxes(h, 0, 1), np.swapaxes(c, 0, 1)
        return out, (h, c)


def _swap_halves(a: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([a[..., width:], a[..., :width]], axis=-1)


class DirectionsSwapped(lstm_ref.LSTM):
    """Concatenates [reverse | forward] instead of [forward | reverse] in the last layer's output."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, state = super().forward(input, hx, dropout_masks=dropout_masks)
        if self.bidirectional:
            w = self.output_hidden_size
            if isinstance(out, lstm_ref.PackedSequence):
                out = out._replace(data=_swap_halves(out.data, w))
            else:
                out = _swap_halves(out, w)
        return out, state


class ReverseNotFlipped(lstm_ref.LSTM):
    """Leaves the reverse direction's outputs in processing order (not flipped back in time)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, state = super().forward(input, hx, dropout_masks=dropout_masks)
        if self.bidirectional and isinstance(out, np.ndarray):
            w = self.output_hidden_size
            axis = 1 if self.batch_first and out.ndim == 3 else 0
            out = out.copy()
            out[..., w:] = np.flip(out[..., w:], axis=axis)
        return out, state


class DropoutAfterLastLayer(lstm_ref.LSTM):
    """Also applies dropout to the last layer's output (torch drops between layers only)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, state = super().forward(input, hx, dropout_masks=dropout_masks)
        p = self.dropout
        if self.training and 0 < p < 1 and self.num_layers > 1 and isinstance(out, np.ndarray) and out.size:
            if dropout_masks is not None:
                keep = np.asarray(dropout_masks[-1], dtype=bool)
                if self.batch_first and out.ndim == 3:
                    keep = np.swapaxes(keep, 0, 1)
            else:
                keep = self._rng.random(out.shape) >= p
            out = out * keep.reshape(out.shape) / self.dtype.type(1 - p)
        return out, state


class DropoutNotScaled(lstm_ref.LSTM):
    """Drops units but forgets the 1/(1-p) scale on the kept ones."""

    def dropout_noise(self, call: Any, masks: Any) -> Any:
        noise = super().dropout_noise(call, masks)
        if noise is None or self.dropout in (0, 1):
            return noise
        return [n * self.dtype.type(1 - self.dropout) for n in noise]


class SameMaskEveryStep(lstm_ref.LSTM):
    """Draws its own dropout mask once per sequence and reuses it at every time step."""

    def dropout_noise(self, call: Any, masks: Any) -> Any:
        if masks is not None or not self.training or self.dropout in (0, 1) or self.num_layers == 1:
            return super().dropout_noise(call, masks)
        p, width = self.dropout, self.num_directions * self.output_hidden_size
        steps, batch = len(call.batch_sizes), int(call.batch_sizes[0]) if len(call.batch_sizes) else 0
        if call.data.shape[0] != steps * batch:
            return super().dropout_noise(call, masks)
        keep = self._rng.random((1, batch, width)) >= p
        keep = np.broadcast_to(keep, (steps, batch, width)).reshape(steps * batch, width)
        return [keep.astype(self.dtype) / self.dtype.type(1 - p)] * (int(self.num_layers) - 1)


class BatchMajorMasks(lstm_ref.LSTM):
    """Reads dropout masks batch-major (N, L, F) when batch_first=True (torch's are time-major)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if (
            dropout_masks is not None
            and self.batch_first
            and isinstance(input, np.ndarray)
            and input.ndim == 3
        ):
            n, steps = input.shape[0], input.shape[1]
            dropout_masks = [np.swapaxes(np.asarray(m).reshape(n, steps, -1), 0, 1) for m in dropout_masks]
        return super().forward(input, hx, dropout_masks=dropout_masks)


class PaddingRunThrough(lstm_ref.LSTM):
    """Pads packed input with zeros and runs the padding through the recurrence (h_n at the
    last padded step, reverse direction started inside the padding)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if not isinstance(input, lstm_ref.PackedSequence):
            return super().forward(input, hx, dropout_masks=dropout_masks)
        data, sizes = np.asarray(input.data), np.asarray(input.batch_sizes)
        steps, batch = len(sizes), int(sizes[0])
        padded = np.zeros((steps, batch, data.shape[1]), dtype=data.dtype)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for t in range(steps):
            padded[t, : sizes[t]] = data[offsets[t] : offsets[t + 1]]
        order = input.sorted_indices
        if hx is not None and order is not None:
            hx = (np.asarray(hx[0])[:, order], np.asarray(hx[1])[:, order])
        was_bf, self.batch_first = self.batch_first, False
        try:
            out, (h, c) = super().forward(padded, hx)
        finally:
            self.batch_first = was_bf
        rows = np.concatenate([out[t, : sizes[t]] for t in range(steps)])
        if input.unsorted_indices is not None:
            h, c = h[:, input.unsorted_indices], c[:, input.unsorted_indices]
        return input._replace(data=rows), (h, c)


class HxNotSorted(lstm_ref.LSTM):
    """Uses hx in the packed (sorted) slot order instead of the caller's batch order."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if (
            isinstance(input, lstm_ref.PackedSequence)
            and input.unsorted_indices is not None
            and hx is not None
        ):
            undo = np.asarray(input.unsorted_indices)
            hx = (np.asarray(hx[0])[:, undo], np.asarray(hx[1])[:, undo])  # cancels the sort
        return super().forward(input, hx, dropout_masks=dropout_masks)


class Float32Accumulation(lstm_ref.LSTM):
    """Computes in float32 even in float64 mode (casting back at the end)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if self.dtype != np.float64 or not isinstance(input, np.ndarray) or input.dtype != np.float64:
            return super().forward(input, hx, dropout_masks=dropout_masks)
        low = lstm_ref.LSTM(
            self.input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            bias=self.bias,
            batch_first=self.batch_first,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
            dtype=np.float32,
        )
        low.load_state_dict({k: v.astype(np.float32) for k, v in self._params.items()})
        low.train(self.training)
        if hx is not None:
            hx = tuple(np.asarray(a).astype(np.float32) for a in hx)
        out, (h, c) = low(input.astype(np.float32), hx, dropout_masks=dropout_masks)
        return out.astype(np.float64), (h.astype(np.float64), c.astype(np.float64))


class TinyWeightError(lstm_ref.LSTM):
    """Perturbs weight_ih_l0 by 1e-9 (a rounding-level bug that a loose tolerance would hide)."""

    def _prepare(self) -> None:
        params = dict(self._params)
        params["weight_ih_l0"] = params["weight_ih_l0"] + self.dtype.type(1e-9)
        _prepare_with(self, params)


class NanToNum(lstm_ref.LSTM):
    """Scrubs NaN/Inf from the output (torch propagates them)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, (h, c) = super().forward(input, hx, dropout_masks=dropout_masks)
        if isinstance(out, np.ndarray):
            out = np.nan_to_num(out)
        return out, (np.nan_to_num(h), np.nan_to_num(c))


class IgnoresUnexpectedKeys(lstm_ref.LSTM):
    """load_state_dict silently drops keys it does not know (RTNeural #148's failure mode)."""

    def load_state_dict(self, state_dict: Any) -> None:
        known = self._shapes()
        super().load_state_dict({k: v for k, v in state_dict.items() if k in known})


class WrongErrorType(lstm_ref.LSTM):
    """Raises ValueError for a wrong feature size (torch raises RuntimeError)."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        x = np.asarray(input) if isinstance(input, np.ndarray) else None
        if x is not None and x.ndim in (2, 3) and x.shape[-1] != self.input_size and x.dtype == self.dtype:
            raise ValueError("wrong input size")
        return super().forward(input, hx, dropout_masks=dropout_masks)


class UnbatchedKeepsBatchDim(lstm_ref.LSTM):
    """Returns (L, 1, F) / (D*layers, 1, H) for unbatched input instead of squeezing."""

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, (h, c) = super().forward(input, hx, dropout_masks=dropout_masks)
        if isinstance(input, np.ndarray) and input.ndim == 2:
            return out[:, None], (h[:, None], c[:, None])
        return out, (h, c)


class PackedDeclaredUnsupported(PaddingRunThrough):
    """Broken on packed input, but says so: the suite must skip packed (with the reason), not fail."""

    conformance_unsupported: ClassVar[dict[str, str]] = {"packed": "no PackedSequence support yet"}


class _SwappedGateCell(lstm_ref.LSTMCell):
    def _prepare(self) -> None:
        from lstm_ref.functional import prepare_direction

        p = {k: v for k, v in self._params.items()}
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if name in p:
                i, f, g, o = _gate_blocks(p[name])
                p[name] = np.concatenate([i, f, o, g])
        self._weights = prepare_direction(
            p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), None
        )


class CellWrongGateOrder(lstm_ref.LSTM):
    """A correct LSTM whose LSTMCell reads the gates as i, f, o, g."""

    conformance_cell = _SwappedGateCell


class Wrapped:
    """A correct implementation that is not an lstm_ref.LSTM subclass and has no LSTMCell: the
    suite must pass it through the public API alone and skip the optional cell row."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._m = lstm_ref.LSTM(*args, **kwargs)

    def state_dict(self) -> dict[str, np.ndarray]:
        return self._m.state_dict()

    def load_state_dict(self, sd: Any) -> None:
        self._m.load_state_dict(sd)

    def train(self, mode: bool = True) -> Wrapped:
        self._m.train(mode)
        return self

    def eval(self) -> Wrapped:
        return self.train(False)

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        return self._m(input, hx, dropout_masks=dropout_masks)


# name -> the conformance-table rows that must fail for it
BROKEN: dict[str, tuple[str, ...]] = {
    "WrongGateOrder": ("whole_sequence", "probes"),
    "DroppedBiasHH": ("whole_sequence", "probes"),
    "ReverseOGateDeepLayers": ("bidirectional", "multi_layer"),
    "InputForgetGatesSwapped": ("whole_sequence", "probes"),
    "TransposedBlocks": ("whole_sequence",),
    "StateIgnored": ("hx_given", "stepwise", "chunked"),
    "CellStateIgnored": ("hx_given", "stepwise"),
    "HnBatchFirst": ("batch_first",),
    "DirectionsSwapped": ("bidirectional", "probes"),
    "LayerInputHalvesSwapped": ("bidirectional", "multi_layer"),
    "ReverseHnFromLastStep": ("bidirectional",),
    "ReverseNotFlipped": ("bidirectional",),
    "DropoutAfterLastLayer": ("dropout_replay", "dropout_statistics"),
    "DropoutNotScaled": ("dropout_replay", "dropout_statistics"),
    "SameMaskEveryStep": ("dropout_statistics",),
    "BatchMajorMasks": ("dropout_replay",),
    "PaddingRunThrough": ("packed_sorted", "packed_unsorted"),
    "HxNotSorted": ("packed_unsorted",),
    "Float32Accumulation": ("float64",),
    "TinyWeightError": ("float64", "whole_sequence"),
    "NanToNum": ("edge_nan_inf",),
    "IgnoresUnexpectedKeys": ("state_dict",),
    "WrongErrorType": ("error_types",),  # rejected, but with the wrong type: `errors` passes
    "UnbatchedKeepsBatchDim": ("unbatched",),
    "CellWrongGateOrder": ("cell",),
}
