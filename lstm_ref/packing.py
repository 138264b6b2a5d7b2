"""PackedSequence and the pack / pad helpers of torch.nn.utils.rnn, in NumPy.

A packed sequence stores a batch of variable-length sequences time-major with
the padding removed: ``data[offset[t] : offset[t] + batch_sizes[t]]`` holds
time step ``t`` of the ``batch_sizes[t]`` longest sequences (sorted by length,
longest first).  ``sorted_indices`` maps sorted slots to the caller's batch
order and ``unsorted_indices`` is its inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

_UNSORTED_HINT = (
    "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
    "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence "
    "to sidestep this requirement if you do not need ONNX exportability."
)


class _PackedSequenceFields(NamedTuple):
    data: np.ndarray
    batch_sizes: np.ndarray
    sorted_indices: np.ndarray | None = None
    unsorted_indices: np.ndarray | None = None


class PackedSequence(_PackedSequenceFields):
    """Same four fields, same meaning, as ``torch.nn.utils.rnn.PackedSequence``.

    As in torch, ``unsorted_indices`` defaults to the inverse of ``sorted_indices``.
    """

    __slots__ = ()

    def __new__(
        cls,
        data: np.ndarray,
        batch_sizes: np.ndarray,
        sorted_indices: np.ndarray | None = None,
        unsorted_indices: np.ndarray | None = None,
    ) -> PackedSequence:
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(np.asarray(sorted_indices))
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)


def invert_permutation(permutation: np.ndarray) -> np.ndarray:
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(permutation.size, dtype=permutation.dtype)
    return inverse


def batch_sizes_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """batch_sizes[t] = how many sequences are longer than t (lengths sorted or not)."""
    steps = np.arange(int(lengths.max()) if lengths.size else 0)
    counts: np.ndarray = (lengths[None, :] > steps[:, None]).sum(axis=1)
    return counts.astype(np.int64)


def packed_lengths(batch_sizes: np.ndarray) -> np.ndarray:
    """Per sorted slot, the number of steps it runs for."""
    slots = np.arange(int(batch_sizes[0]) if batch_sizes.size else 0)
    counts: np.ndarray = (batch_sizes[None, :] > slots[:, None]).sum(axis=1)
    return counts.astype(np.int64)


def _check_pack_arguments(
    padded: np.ndarray, lengths: np.ndarray, steps: int, batch: int, enforce_sorted: bool
) -> None:
    """pack_padded_sequence's checks, in torch's order (its C++ _pack_padded_sequence)."""
    if padded.size == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    if lengths.size != batch:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {lengths.size} (batch_size={batch})"
        )
    if enforce_sorted and np.any(np.diff(lengths) > 0):
        raise RuntimeError(_UNSORTED_HINT)
    if lengths.min() <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    # torch does not check this and packs out-of-bounds memory; we refuse.
    if lengths.max() > steps:
        raise RuntimeError(
            f"pack_padded_sequence: a length of {int(lengths.max())} is longer than the "
            f"padded sequence ({steps} steps)"
        )


def pack_padded_sequence(
    input: ArrayLike,
    lengths: ArrayLike,
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` if batch_first) like torch."""
    padded = np.asarray(input)
    lengths_arr = np.asarray(lengths).astype(np.int64)
    if padded.ndim < 2:  # torch: IndexError from input.size(1)
        raise IndexError(f"pack_padded_sequence: expected input of at least 2 dimensions, got {padded.ndim}")
    if lengths_arr.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D array, but got {lengths_arr.ndim}D")
    time_major = np.swapaxes(padded, 0, 1) if batch_first else padded
    steps, batch = time_major.shape[0], time_major.shape[1]
    _check_pack_arguments(padded, lengths_arr, steps, batch, enforce_sorted)
    if enforce_sorted:
        sorted_indices = None
        unsorted_indices = None
    else:
        # Ties keep their original order (a stable sort).  torch uses the unstable
        # torch.sort(descending=True): same order for up to 16 sequences, but beyond that it
        # may order tied lengths differently (torch 2.13 CPU).  Per-sequence results, h_n/c_n
        # (original order) and unpacked outputs do not depend on the order among ties.
        sorted_indices = np.argsort(-lengths_arr, kind="stable").astype(np.int64)
        unsorted_indices = invert_permutation(sorted_indices)
        lengths_arr = lengths_arr[sorted_indices]
        time_major = time_major[:, sorted_indices]
    batch_sizes = batch_sizes_from_lengths(lengths_arr)
    data = (
        np.concatenate([time_major[t, :n] for t, n in enumerate(batch_sizes)], axis=0)
        if batch
        else time_major[:0, 0]
    )
    return PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of pack_padded_sequence: ``(padded, lengths)`` in the caller's batch order."""
    data, batch_sizes, _, unsorted_indices = sequence
    batch_sizes = np.asarray(batch_sizes, dtype=np.int64)
    max_steps = batch_sizes.size
    if total_length is not None:
        if total_length < max_steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being {max_steps}"
            )
        max_steps = total_length
    batch = int(batch_sizes[0])
    padded = np.full((max_steps, batch, *data.shape[1:]), padding_value, dtype=data.dtype)
    offset = 0
    for t, n in enumerate(batch_sizes):
        padded[t, :n] = data[offset : offset + n]
        offset += n
    lengths = packed_lengths(batch_sizes)
    if unsorted_indices is not None:
        padded = padded[:, unsorted_indices]
        lengths = lengths[unsorted_indices]
    if batch_first:
        padded = np.swapaxes(padded, 0, 1)
    return padded, lengths


def pad_sequence(
    sequences: Sequence[ArrayLike], batch_first: bool = False, padding_value: float = 0.0
) -> np.ndarray:
    arrays = [np.asarray(s) for s in sequences]
    if not arrays:
        raise RuntimeError("received an empty list of sequences")
    for b, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[1:] != arrays[0].shape[1:]:
            raise RuntimeError(
                f"pad_sequence: every sequence needs the same trailing shape; sequence 0 is "
                f"{arrays[0].shape}, sequence {b} is {a.shape}"
            )
    steps = max(a.shape[0] for a in arrays)
    padded = np.full((steps, len(arrays), *arrays[0].shape[1:]), padding_value, dtype=np.result_type(*arrays))
    for b, a in enumerate(arrays):
        padded[: a.shape[0], b] = a
    return np.swapaxes(padded, 0, 1) if batch_first else padded


def pack_sequence(sequences: Sequence[Any], enforce_sorted: bool = True) -> PackedSequence:
    lengths = np.array([np.asarray(s).shape[0] for s in sequences], dtype=np.int64)
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)
