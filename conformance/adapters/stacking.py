"""What the Keras and Flax adapters share: both libraries run one layer at a time and know
neither torch's layer count, nor ``batch_first``, nor PackedSequence, so the adapter stacks the
layers, splits torch's stacked states and re-packs the padded output."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np

import lstm_ref
from lstm_ref.layout import param_shapes

Stacked = TypeVar("Stacked", bound="StackedLSTM")


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


def repack(padded: np.ndarray, like: lstm_ref.PackedSequence) -> lstm_ref.PackedSequence:
    """Time-major padded output (caller's order) packed with ``like``'s batch_sizes and indices."""
    if like.sorted_indices is not None:
        padded = padded[:, np.asarray(like.sorted_indices)]
    rows = [padded[t, : int(n)] for t, n in enumerate(np.asarray(like.batch_sizes))]
    data = np.concatenate(rows, axis=0) if rows else padded[:0, 0]
    return lstm_ref.PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


class StackedLSTM:
    """torch.nn.LSTM's NumPy API over a library that runs one layer at a time: the constructor's
    checks, the weights under torch's names (``_state``), strict loading and the training flag.
    A subclass builds the library's layers (``_build``), reads their initial weights
    (``_initial_state_dict``) and writes loaded ones into them (``_assign_weights``)."""

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
        if proj_size:
            raise NotImplementedError(self.conformance_unsupported["proj_size"])
        check_stacking(num_layers, batch_first)
        self.dtype = np.dtype(dtype)
        self.config = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, bias=bias)
        self.batch_first, self.bidirectional = batch_first, bool(bidirectional)
        self.num_layers, self.p, self.training = num_layers, dropout, True
        self._build(seed)
        self._state = self._initial_state_dict()

    def _build(self, seed: int | None) -> None:
        """Make ``self.layers`` (one library layer per torch layer) and ``self.dropout``."""
        raise NotImplementedError

    def _initial_state_dict(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _assign_weights(self) -> None:
        """Write ``self._state`` into the library's layers."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self._state.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        c = self.config
        shapes = param_shapes(
            c["input_size"], c["hidden_size"], c["num_layers"], self.bidirectional, c["bias"]
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
