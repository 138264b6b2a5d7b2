"""The adapter toolkit: what an adapter for a library that does not speak torch.nn.LSTM's API
needs besides the library itself (docs/adapters.md, "Writing an adapter").

Most LSTM libraries run one layer (often one direction) at a time, on padded input with
lengths, with their own gate order and bias layout; torch stacks layers and directions, takes
``PackedSequence`` input and names every weight. The pieces here convert between the two and
never compute an LSTM step:

* :class:`StackedLSTM`: torch.nn.LSTM's NumPy API (constructor arguments, weights under torch's
  names with strict loading, the training flag) for an adapter that stacks a library's layers
  itself. :class:`LayerByLayerLSTM` also drives the stack: the adapter only runs one direction
  of one layer (``run_direction``); directions, layers, dropout between them, projections'
  state sizes, ``hx`` and every input form are handled here.
* :class:`Form`: any input form (batched, ``batch_first``, unbatched, packed) as time-major
  padded input with a batch axis and lengths, and the library's results back in that form.
* :func:`reverse_within_lengths`, :func:`last_at_lengths`: the reverse direction and the final
  states of a library that knows nothing of lengths.
* :func:`to_library_gates`, :func:`from_library_gates`: torch's gate blocks ``i, f, g, o`` in
  the library's order and back.
* :func:`library_versions`: what to put in ``conformance_version`` (the versions named in the
  report's provenance instead of "unknown").

The array functions index and multiply only, so they take NumPy, JAX or torch arrays alike
(JAX's are traced through, for an adapter's ``vjp``).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

import lstm_ref
from lstm_ref.layout import GATES, dropout_noise, param_shapes, param_suffix

__all__ = [
    "Form",
    "LayerByLayerLSTM",
    "StackedLSTM",
    "check_stacking",
    "from_library_gates",
    "last_at_lengths",
    "layer_weights",
    "library_versions",
    "repack",
    "reverse_within_lengths",
    "split_hx",
    "to_library_gates",
]

Stacked = TypeVar("Stacked", bound="StackedLSTM")
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def library_versions(*distributions: str) -> str:
    """``"torch 2.13.0+cpu, onnxruntime 1.31.1"`` for the installed distributions named: an
    adapter's ``conformance_version``, shown in the provenance of every report and the matrix."""
    from .run.provenance import live_torch

    found = []
    for dist in distributions:
        if dist == "torch":  # torch.__version__ in full, as everywhere ("2.10.0+cu128")
            found.append(f"torch {live_torch()}")
            continue
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} absent")
    return ", ".join(found)


# -- gate order ------------------------------------------------------------------------------------


def _gate_permutation(order: str, hidden: int) -> np.ndarray:
    """Rows of torch's ``(4H, ...)`` blocks in the library's ``order`` (torch's letters; the
    cell candidate may be written ``c``, as Keras, ONNX and TensorFlow call it)."""
    letters = order.replace("c", "g")
    if sorted(letters) != sorted(GATES):
        raise ValueError(f"gate order {order!r} is not a permutation of i, f, g (or c), o")
    return np.concatenate([np.arange(hidden) + GATES.index(g) * hidden for g in letters])


def _take(array: Any, index: np.ndarray, axis: int) -> Any:
    return array[(slice(None),) * (axis % array.ndim) + (index,)]


def to_library_gates(array: Any, order: str, axis: int = 0) -> Any:
    """torch's gate blocks ``i, f, g, o`` (``4H`` along ``axis``) in the library's ``order``,
    e.g. ``"icfo"`` for TensorFlow's BlockLSTM, ``"igfo"`` for Haiku, ``"ifco"`` for Keras."""
    return _take(array, _gate_permutation(order, array.shape[axis] // 4), axis)


def from_library_gates(array: Any, order: str, axis: int = 0) -> Any:
    """The inverse of :func:`to_library_gates`: the library's gate blocks in torch's order."""
    permutation = _gate_permutation(order, array.shape[axis] // 4)
    return _take(array, np.argsort(permutation), axis)


# -- stacking --------------------------------------------------------------------------------------


def check_stacking(num_layers: Any, batch_first: Any) -> None:
    """The arguments only the adapter interprets (the library has no layer count and no
    batch_first), checked as torch checks them so that a bad one cannot be silently converted."""
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
    if isinstance(num_layers, int) and num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")


def split_hx(hx: Any, states: int) -> tuple[Any, Any]:
    """torch's stacked ``(h_0, c_0)``; refuses what cannot be split into ``states`` per-layer
    states (the library receives one state per layer and direction, never the stack)."""
    if isinstance(hx, (tuple, list)) and len(hx) > 2:
        raise RuntimeError(f"expected hx to be (h_0, c_0), got {len(hx)} arrays")
    h0, c0 = hx[0], hx[1]
    for name, value in (("h_0", h0), ("c_0", c0)):
        if value is not None and len(value) != states:
            raise RuntimeError(f"{name} has {len(value)} layers * directions, expected {states}")
    return h0, c0


def layer_weights(state: Mapping[str, Any], layer: int, direction: int) -> dict[str, Any]:
    """One layer and direction's weights under torch's names without the suffix
    (``weight_ih``, ``weight_hh``, and ``bias_ih``, ``bias_hh``, ``weight_hr`` where present)."""
    suffix = param_suffix(layer, direction)
    return {name: state[name + suffix] for name in WEIGHTS if name + suffix in state}


# -- input forms -----------------------------------------------------------------------------------


def repack(padded: np.ndarray, like: lstm_ref.PackedSequence) -> lstm_ref.PackedSequence:
    """Time-major padded output (caller's order) packed with ``like``'s batch_sizes and indices."""
    if like.sorted_indices is not None:
        padded = padded[:, np.asarray(like.sorted_indices)]
    rows = [padded[t, : int(n)] for t, n in enumerate(np.asarray(like.batch_sizes))]
    data = np.concatenate(rows, axis=0) if rows else padded[:0, 0]
    return lstm_ref.PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


class Form:
    """One call's input form, to give the library time-major padded arrays with a batch axis,
    ``(L, N, F)``, plus per-sequence ``lengths`` (packed input only, caller's order), and to
    turn what the library returns back into torch's form for that input."""

    def __init__(self, input: Any, batch_first: bool) -> None:
        self.like = input if isinstance(input, lstm_ref.PackedSequence) else None
        self.batch_first = batch_first
        self.unbatched = self.like is None and np.ndim(input) == 2

    @property
    def packed(self) -> bool:
        return self.like is not None

    def padded(self, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """An input-like (or output-like) array, or packed data of this call's packing, as
        time-major padded ``(L, N, F)`` and the lengths (None unless packed). An array of
        another rank is passed on as it is, for the library to judge."""
        if self.like is not None:
            data = value.data if isinstance(value, lstm_ref.PackedSequence) else value
            fields = (np.asarray(data), *self.like[1:])
            padded, lengths = lstm_ref.pad_packed_sequence(lstm_ref.PackedSequence(*fields))
            return padded, lengths
        x = np.asarray(value)
        if self.unbatched:
            return x[:, None], None
        return (np.swapaxes(x, 0, 1) if self.batch_first and x.ndim == 3 else x), None

    def output(self, padded: np.ndarray) -> Any:
        """Time-major padded ``(L, N, F)`` in torch's form for this input (packed: packed)."""
        if self.like is not None:
            return repack(padded, self.like)
        if self.unbatched:
            return padded[:, 0]
        return np.swapaxes(padded, 0, 1) if self.batch_first else padded

    def data(self, padded: np.ndarray) -> np.ndarray:
        """Like :meth:`output`, but the data alone for packed input (what a vjp returns)."""
        out = self.output(padded)
        return np.asarray(out.data if isinstance(out, lstm_ref.PackedSequence) else out)

    def state(self, value: Any) -> Any:
        """A stacked state of torch's form for this input (no batch axis when unbatched) as
        ``(D*layers, N, H)``; None stays None."""
        return (
            None if value is None else (np.asarray(value)[:, None] if self.unbatched else np.asarray(value))
        )

    def state_back(self, value: Any) -> Any:
        """The inverse of :meth:`state`."""
        return value[:, 0] if self.unbatched else value

    def noise(self, dropout_masks: Sequence[Any] | None, p: float, dtype: Any) -> list[np.ndarray] | None:
        """torch's keep-masks (time-major, output-shaped: docs/plugin.md) as padded noise
        ``keep / (1-p)``, the multiplier of each layer boundary's padded output."""
        if dropout_masks is None:
            return None
        return [dropout_noise(self._time_major(np.asarray(keep)), p, dtype) for keep in dropout_masks]

    def _time_major(self, keep: np.ndarray) -> np.ndarray:
        if self.like is not None:
            return self.padded(keep)[0]
        return keep[:, None] if self.unbatched else keep  # masks are time-major already


def _namespace(array: Any) -> Any:
    """The array API namespace of ``array`` (NumPy's for anything without one)."""
    get = getattr(array, "__array_namespace__", None)
    return get() if get is not None else np


def _concat(arrays: list[Any]) -> Any:
    """The directions' outputs side by side (feature axis)."""
    xp = _namespace(arrays[0])
    concat = getattr(xp, "concat", None) or xp.concatenate  # NumPy < 2 has no concat
    return concat(arrays, axis=-1)


def _time_index(lengths: np.ndarray, steps: int) -> np.ndarray:
    """``(L, N)`` time indices that flip each sequence within its length, padding in place."""
    t = np.arange(steps)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def reverse_within_lengths(x: Any, lengths: np.ndarray | None) -> Any:
    """Time-major ``(L, N, ...)`` with each sequence reversed within its own length (padding
    stays at the end): the reverse direction for a library that only runs forward in time.
    Applied twice it is the identity. Without lengths, the whole time axis is reversed."""
    if lengths is None:
        return x[np.arange(x.shape[0] - 1, -1, -1)]  # a copy (NumPy's flip is a negative-stride view)
    lengths = np.asarray(lengths)
    return x[_time_index(lengths, x.shape[0]), np.arange(lengths.size)[None, :]]


def last_at_lengths(states: Any, lengths: np.ndarray | None) -> Any:
    """Each sequence's state at its own last step, from time-major per-step states ``(L, N,
    H)``: the final state of a library that runs through the padding. Without lengths, the
    last step."""
    if lengths is None:
        return states[-1]
    lengths = np.asarray(lengths)
    return states[np.maximum(lengths - 1, 0), np.arange(lengths.size)]


# -- the classes -----------------------------------------------------------------------------------


class StackedLSTM:
    """torch.nn.LSTM's NumPy API over a library that runs one layer at a time: the constructor's
    checks, the weights under torch's names (``_state``), strict loading and the training flag.
    A subclass builds the library's layers (``_build``), reads their initial weights
    (``_initial_state_dict``) and writes loaded ones into them (``_assign_weights``).

    ``proj_size`` is supported when the subclass does not declare it unsupported (its reason
    is raised as ``NotImplementedError`` then); ``self.h_out`` is the hidden state's size."""

    conformance_unsupported: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        input_size: Any,
        hidden_size: Any,
        num_layers: Any = 1,
        bias: Any = True,
        batch_first: Any = False,
        dropout: Any = 0.0,
        bidirectional: Any = False,
        proj_size: Any = 0,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        if proj_size and "proj_size" in self.conformance_unsupported:
            raise NotImplementedError(self.conformance_unsupported["proj_size"])
        check_stacking(num_layers, batch_first)
        self.dtype = np.dtype(dtype)
        self.config = dict(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bias=bias,
            proj_size=proj_size,
        )
        self.batch_first, self.bidirectional = batch_first, bool(bidirectional)
        self.num_layers, self.p, self.training = num_layers, dropout, True
        self.directions = 2 if self.bidirectional else 1
        self.h_out = proj_size or hidden_size
        self._build(seed)
        self._state = self._initial_state_dict()

    def _build(self, seed: int | None) -> None:
        """Make the library's layers (and its dropout)."""
        raise NotImplementedError

    def _initial_state_dict(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _assign_weights(self) -> None:
        """Write ``self._state`` into the library's layers."""
        raise NotImplementedError

    def layer_features(self, layer: int) -> Any:
        """What layer ``layer`` reads: the input, or both directions of the layer below (as
        given: a bad ``input_size`` reaches the library unconverted)."""
        return self.config["input_size"] if layer == 0 else self.directions * self.h_out

    def zero_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """torch's default ``(h0, c0)`` for a padded batch: zeros, stacked."""
        stack = self.directions * self.num_layers
        h = np.zeros((stack, batch, self.h_out), self.dtype)
        return h, np.zeros((stack, batch, self.config["hidden_size"]), self.dtype)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self._state.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        c = self.config
        shapes = param_shapes(
            c["input_size"], c["hidden_size"], c["num_layers"], self.bidirectional, c["bias"], c["proj_size"]
        )
        if set(state_dict) != set(shapes):
            raise RuntimeError(f"state_dict keys {sorted(state_dict)} != {sorted(shapes)}")
        for name, shape in shapes.items():
            if np.shape(state_dict[name]) != shape:
                raise RuntimeError(f"{name}: shape {np.shape(state_dict[name])}, expected {shape}")
        self._state = {n: np.array(state_dict[n], dtype=self.dtype) for n in shapes}  # torch's order
        self._assign_weights()

    def train(self: Stacked, mode: bool = True) -> Stacked:
        self.training = bool(mode)
        return self

    def eval(self: Stacked) -> Stacked:
        return self.train(False)


class LayerByLayerLSTM(StackedLSTM):
    """A :class:`StackedLSTM` that also runs the stack: the subclass says how the library runs
    one direction of one layer (:meth:`run_direction`), and how it draws dropout
    (:meth:`library_dropout`); everything between torch's call and those is done here.

    The reverse direction runs the library forward in time on each sequence reversed within
    its length (:func:`reverse_within_lengths`), and its output is reversed back. Weights are
    passed to every call (``_assign_weights`` does nothing), so :meth:`forward_padded` can be
    differentiated by the library's autodiff with the weights as arguments (a ``vjp``)."""

    def _assign_weights(self) -> None:
        pass

    def run_direction(
        self,
        layer: int,
        direction: int,
        weights: dict[str, Any],
        x: Any,
        state: tuple[Any, Any],
        lengths: Any,
    ) -> tuple[Any, tuple[Any, Any]]:
        """The library's LSTM over ``x`` ``(L, N, F)``, time-major and forward in time, from
        ``state`` ``(h0, c0)`` (``(N, H_out)``, ``(N, H)``), with ``weights`` in torch's layout
        (:func:`layer_weights`): ``(output (L, N, H_out), (h_n, c_n))``. ``lengths`` (packed
        input only) says where each sequence ends: ``h_n``/``c_n`` are the states there."""
        raise NotImplementedError

    def library_dropout(self, x: Any) -> Any:
        """The library's own dropout (rate ``self.p``) of a layer's output, in training mode."""
        raise NotImplementedError(f"{type(self).__name__} has no library_dropout")

    def forward_padded(
        self,
        state: Mapping[str, Any],
        x: Any,
        h0: Any,
        c0: Any,
        lengths: np.ndarray | None,
        noise: Sequence[Any] | None = None,
    ) -> tuple[Any, Any, Any]:
        """The whole stack on time-major padded ``x`` ``(L, N, F)`` from stacked ``h0``/``c0``,
        with torch-named weights ``state``: ``(output, h_n, c_n)``, padded and stacked. Between
        layers, ``noise`` multiplies the output, else the library's dropout in training mode."""
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.directions):
                k = layer * self.directions + direction
                seq = x if direction == 0 else reverse_within_lengths(x, lengths)
                weights = layer_weights(state, layer, direction)
                initial = (h0[k], None if c0 is None else c0[k])  # a missing c0 reaches the library
                out, (h, c) = self.run_direction(layer, direction, weights, seq, initial, lengths)
                outs.append(out if direction == 0 else reverse_within_lengths(out, lengths))
                hs.append(h)
                cs.append(c)
            x = outs[0] if len(outs) == 1 else _concat(outs)
            if layer < self.num_layers - 1:
                if noise is not None:
                    x = x * noise[layer]
                elif self.training and self.p:
                    x = self.library_dropout(x)
        xp = _namespace(hs[0])
        return x, xp.stack(hs), xp.stack(cs)

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        form = Form(input, self.batch_first)
        x, lengths = form.padded(input)
        if hx is None:
            h0, c0 = self.zero_state(x.shape[1] if x.ndim > 1 else 1)  # 1-D input: the library's to refuse
        else:
            h0, c0 = (form.state(v) for v in split_hx(hx, self.directions * self.num_layers))
        noise = form.noise(dropout_masks, float(self.p), self.dtype)
        out, h_n, c_n = self.forward_padded(self._state, x, h0, c0, lengths, noise)
        return form.output(np.asarray(out)), (
            form.state_back(np.asarray(h_n)),
            form.state_back(np.asarray(c_n)),
        )
