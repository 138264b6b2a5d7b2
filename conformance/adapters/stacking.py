"""What the Keras and Flax adapters share: both libraries run one layer at a time and know
neither torch's layer count, nor ``batch_first``, nor PackedSequence, so the adapter stacks the
layers, splits torch's stacked states and re-packs the padded output."""

from __future__ import annotations

from typing import Any

import numpy as np

import lstm_ref


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
