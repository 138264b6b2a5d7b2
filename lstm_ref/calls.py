"""One call's input, normalised: what ``LSTM`` and ``LSTMCell`` accept, checked in torch's
order and turned into the layout ``functional`` computes on, and the results turned back.

``Call.prepare(model, input, hx)`` reads only a model's public configuration
(``ModelConfig``), so ``module.py`` (the models), ``trace.py`` and ``backward.py`` share it
without depending on one another.  Errors are torch's exception types, raised in torch's order,
so the first error reported is torch's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import ArrayLike

from .functional import LayerWeights, StepRecorder, run_stack
from .packing import PackedSequence


class CellConfig(Protocol):
    """What ``prepare_cell_call`` reads of an LSTMCell."""

    @property
    def input_size(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...


class ModelConfig(CellConfig, Protocol):
    """What ``Call.prepare`` reads of an LSTM: its public configuration."""

    @property
    def num_layers(self) -> int: ...
    @property
    def batch_first(self) -> bool: ...
    @property
    def num_directions(self) -> int: ...
    @property
    def output_hidden_size(self) -> int: ...


def as_array(value: Any, what: str) -> np.ndarray:
    """``value`` as an ndarray; None, a PackedSequence and non-numeric (object, string) arrays
    are errors, of torch's types (``what`` names the argument)."""
    if value is None:
        raise AttributeError(f"{what} is None; expected an array")
    if isinstance(value, PackedSequence):
        raise TypeError(f"{what} must be an array, got a PackedSequence")
    array = np.asarray(value)
    if array.dtype.kind in "OUSV":  # torch cannot make a tensor of these: TypeError
        raise TypeError(f"{what}: can't use an array of dtype {array.dtype}; expected a numeric dtype")
    return array


def state_in_dtype(dtype: np.dtype[Any], state: np.ndarray, index: int) -> np.ndarray:
    """hx[index] (0: h0, 1: c0) in the model's dtype, or torch's error.

    torch: h0 enters a matmul with the weights, so its dtype must match exactly; c0 is only
    combined elementwise and is promoted silently when narrower (or integer), fails when wider.
    """
    promotable = index == 1 and (state.dtype.kind in "biu" or np.can_cast(state.dtype, dtype, "safe"))
    if state.dtype != dtype and not promotable:
        raise RuntimeError(f"hidden[{index}] dtype {state.dtype} does not match weight dtype {dtype}")
    return np.asarray(state, dtype=dtype)


class Call:
    """One forward call of an LSTM, its input in the packed time-major layout.

    Dense ``(L, N, F)`` input becomes ``batch_sizes = [N] * L`` and rows ``data`` of shape
    ``(L*N, F)``; unbatched input is a batch of one; a PackedSequence is used as it is.
    """

    data: np.ndarray  # (S, input_size) packed time-major rows
    batch_sizes: np.ndarray  # (L,) rows per time step, non-increasing
    h0: np.ndarray  # (num_layers * D, B, H_out), sorted batch order
    c0: np.ndarray  # (num_layers * D, B, H)

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype  # the model's
        self.packed: PackedSequence | None = None
        self.batched = True
        self.batch_first = False
        self.steps = 0  # L of dense input (0 for packed)
        self.batch = 0  # B: the batch size, slots sorted longest first when packed

    @classmethod
    def prepare(cls, model: ModelConfig, input: Any, hx: Any) -> Call:
        """Check and normalise ``model(input, hx)``'s arguments, as torch does."""
        call = cls(model.dtype)
        if isinstance(input, PackedSequence):
            states = call._read_packed(model, input, hx)
        else:
            states = call._read_dense(model, input, hx)
        call._read_initial_state(model, states)
        if call.packed is None and call.steps == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        return call

    def _read_packed(
        self, model: ModelConfig, packed: PackedSequence, hx: Any
    ) -> tuple[np.ndarray, np.ndarray] | None:
        self.packed = packed
        data = as_array(packed.data, "PackedSequence.data")
        self.batch_sizes = _check_batch_sizes(packed.batch_sizes, data)
        self.batch = int(self.batch_sizes[0])
        states = None if hx is None else split_hx(hx)
        _check_dtype(model, data, RuntimeError)  # torch: its C++ matmul fails, a RuntimeError
        if data.ndim != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {data.ndim}")
        _check_input_size(model, data)
        self.data = data
        return states

    def _read_dense(self, model: ModelConfig, input: Any, hx: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if not isinstance(input, np.ndarray):  # torch: input.dim() on a list, an AttributeError
            raise AttributeError(
                f"input must be a numpy.ndarray or a PackedSequence, got {type(input).__name__}"
            )
        x = as_array(input, "input")
        if x.ndim not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {x.ndim}D instead")
        self.batched = x.ndim == 3
        states = None if hx is None else split_hx(hx)
        if states is not None:
            want = 3 if self.batched else 2
            if states[0].ndim != want or states[1].ndim != want:
                kind = "batched 3-D" if self.batched else "unbatched 2-D"
                raise RuntimeError(
                    f"For {kind} input, hx and cx should also be {want}-D but got "
                    f"({states[0].ndim}-D, {states[1].ndim}-D) tensors"
                )
            if isinstance(hx, np.ndarray):  # torch indexes a single tensor, then _VF.lstm refuses it
                raise TypeError(f"hx must be a tuple (h_0, c_0), got a single array of shape {hx.shape}")
            if not self.batched:
                states = (states[0][:, None], states[1][:, None])
        _check_dtype(model, x)
        _check_input_size(model, x)
        if not self.batched:
            x = x[:, None]
        elif model.batch_first:
            self.batch_first = True
            x = np.swapaxes(x, 0, 1)
        self.steps, self.batch = x.shape[0], x.shape[1]
        self.batch_sizes = np.full(self.steps, self.batch, dtype=np.int64)
        self.data = x.reshape(self.steps * self.batch, x.shape[2])
        return states

    def _read_initial_state(self, model: ModelConfig, states: tuple[np.ndarray, np.ndarray] | None) -> None:
        layers_dirs = int(model.num_layers) * model.num_directions
        expected_h = (layers_dirs, self.batch, model.output_hidden_size)
        expected_c = (layers_dirs, self.batch, model.hidden_size)
        if states is None:
            self.h0 = np.zeros(expected_h, dtype=model.dtype)
            self.c0 = np.zeros(expected_c, dtype=model.dtype)
            return
        for index, (state, expected) in enumerate(zip(states, (expected_h, expected_c), strict=True)):
            if state.shape != expected:
                raise RuntimeError(f"Expected hidden[{index}] size {expected}, got {list(state.shape)}")
        self.h0, self.c0 = (state_in_dtype(model.dtype, s, index) for index, s in enumerate(states))
        if self.packed is not None and self.packed.sorted_indices is not None:
            order = np.asarray(self.packed.sorted_indices)
            self.h0, self.c0 = self.h0[:, order], self.c0[:, order]

    # -- layouts --------------------------------------------------------------------

    def mask_shape(self, features: int) -> tuple[int, ...]:
        """Shape of one dropout mask: the layer output in time-major layout."""
        if self.packed is not None:
            return (self.data.shape[0], features)
        if not self.batched:
            return (self.steps, features)
        return (self.steps, self.batch, features)

    def output_shape(self, features: int) -> tuple[int, ...]:
        """Shape of the output (or its data, for packed input) the caller sees."""
        if self.batch_first and self.packed is None and self.batched:
            return (self.batch, self.steps, features)
        return self.mask_shape(features)

    def to_layout(self, rows: np.ndarray) -> np.ndarray:
        """(S, F) packed rows -> the time-major layout of mask_shape."""
        return rows.reshape(self.mask_shape(rows.shape[-1]))

    def check_masks(self, masks: Sequence[ArrayLike], boundaries: int, features: int) -> list[np.ndarray]:
        """``dropout_masks``: ``boundaries`` keep-masks (0/1), each of ``mask_shape(features)``."""
        masks = list(masks)
        if len(masks) != boundaries:
            raise ValueError(f"dropout_masks: expected {boundaries} masks (num_layers - 1), got {len(masks)}")
        expected = self.mask_shape(features)
        arrays = [np.asarray(m) for m in masks]
        for index, mask in enumerate(arrays):
            if mask.shape != expected:
                raise ValueError(
                    f"dropout_masks[{index}]: expected shape {expected} (time-major layer output), "
                    f"got {mask.shape}"
                )
            if not np.all((mask == 0) | (mask == 1)):
                raise ValueError(f"dropout_masks[{index}]: a keep-mask must contain only 0 and 1")
        return arrays

    # -- running it -------------------------------------------------------------------

    def run(
        self,
        layers: Sequence[LayerWeights],
        dropout_noise: Sequence[np.ndarray] | None,
        record: Callable[[int, int], StepRecorder | None] | None = None,
        layer_outputs: list[np.ndarray] | None = None,
    ) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
        """``functional.run_stack`` on this call, results in the caller's layout (``finish``)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out, h_n, c_n = run_stack(
                self.data, self.batch_sizes, self.h0, self.c0, layers, dropout_noise, record, layer_outputs
            )
        return self.finish(out, h_n, c_n)

    def finish(
        self, out: np.ndarray, h_n: np.ndarray, c_n: np.ndarray
    ) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
        """run_stack's (S, D*H_out) rows and sorted-order states -> torch's output and (h_n, c_n)."""
        if self.packed is not None:
            if self.packed.unsorted_indices is not None:
                order = np.asarray(self.packed.unsorted_indices)
                h_n, c_n = h_n[:, order], c_n[:, order]
            packed = self.packed
            packed_output = PackedSequence(
                out, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
            )
            return packed_output, (h_n, c_n)
        output = out.reshape(self.steps, self.batch, out.shape[-1])
        if not self.batched:
            return output[:, 0], (h_n[:, 0], c_n[:, 0])
        if self.batch_first:
            output = np.swapaxes(output, 0, 1)  # a transposed view, like torch
        return output, (h_n, c_n)


def split_hx(hx: Any) -> tuple[np.ndarray, np.ndarray]:
    """hx must be a pair (h_0, c_0); mirror torch's exception types for other shapes of it.

    A single array is indexed as torch indexes a single tensor: ``hx[0]``, ``hx[1]``.
    """
    if isinstance(hx, np.ndarray) and hx.shape[:1] in ((), (1,)):
        raise IndexError(f"hx must be a tuple (h_0, c_0), got a single array of shape {hx.shape}")
    try:
        n = len(hx)
    except TypeError:
        raise TypeError(f"hx must be a tuple (h_0, c_0), got {type(hx).__name__}") from None
    if n < 2:
        raise IndexError(f"hx must be a tuple (h_0, c_0), got {n} element(s)")
    if n > 2:
        raise RuntimeError(f"lstm expects two hidden states, got {n}")
    return as_array(hx[0], "hx[0] (h_0)"), as_array(hx[1], "hx[1] (c_0)")


def _check_dtype(model: CellConfig, x: np.ndarray, error: type[Exception] = ValueError) -> None:
    if x.dtype != model.dtype:
        raise error(
            f"RNN input dtype ({x.dtype}) does not match weight dtype ({model.dtype}). "
            f"Convert input: input.astype(np.{model.dtype}), or convert model: LSTM(..., dtype=np.{x.dtype})"
        )


def _check_input_size(model: CellConfig, x: np.ndarray) -> None:
    if x.shape[-1] != model.input_size:
        raise RuntimeError(
            f"input.size(-1) must be equal to input_size. Expected {model.input_size}, got {x.shape[-1]}"
        )


def _check_batch_sizes(batch_sizes: Any, data: np.ndarray) -> np.ndarray:
    """torch does not validate packed input at all; we say what is wrong."""
    sizes = np.asarray(batch_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu":
        raise RuntimeError(f"PackedSequence.batch_sizes must be a non-empty 1-D integer array, got {sizes!r}")
    if sizes.min() <= 0 or np.any(np.diff(sizes) > 0):
        raise RuntimeError(
            f"PackedSequence.batch_sizes must be positive and non-increasing, got {sizes.tolist()}"
        )
    if data.ndim >= 1 and int(sizes.sum()) != data.shape[0]:
        raise RuntimeError(
            f"PackedSequence.data has {data.shape[0]} rows but batch_sizes add up to {int(sizes.sum())}"
        )
    return sizes.astype(np.int64)


# -- LSTMCell ---------------------------------------------------------------------------


class CellCall(NamedTuple):
    """One LSTMCell call's input, batched: x (N, input_size), h0 and c0 (N, hidden_size)."""

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray
    batched: bool  # False: the caller gave 1-D input and gets 1-D results


def prepare_cell_call(cell: CellConfig, input: ArrayLike, hx: Any) -> CellCall:
    """Check and normalise ``cell(input, hx)``'s arguments, as torch.nn.LSTMCell does."""
    x = as_array(input, "input")
    if x.ndim not in (1, 2):
        raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {x.ndim}D instead")
    states = None if hx is None else _split_cell_hx(hx)
    batched = x.ndim == 2
    x = x if batched else x[None]
    if states is None:
        zeros = np.zeros((x.shape[0], cell.hidden_size), dtype=cell.dtype)
        states = (zeros, zeros)
    elif not batched:
        states = (states[0][None], states[1][None])
    if x.dtype != cell.dtype:
        raise RuntimeError(f"LSTMCell: input dtype {x.dtype} does not match weight dtype {cell.dtype}")
    if x.shape[1] != cell.input_size:
        raise RuntimeError(f"input has inconsistent input_size: got {x.shape[1]} expected {cell.input_size}")
    for index, state in enumerate(states):
        if state.shape[0] != x.shape[0]:
            raise RuntimeError(
                f"Input batch size {x.shape[0]} doesn't match hidden{index} batch size {state.shape[0]}"
            )
        if state.shape[1] != cell.hidden_size:
            raise RuntimeError(
                f"hidden{index} has inconsistent hidden_size: got {state.shape[1]}, expected {cell.hidden_size}"
            )
    h0, c0 = (state_in_dtype(cell.dtype, s, index) for index, s in enumerate(states))
    return CellCall(x, h0, c0, batched)


def _split_cell_hx(hx: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(hx, np.ndarray):
        raise TypeError("LSTMCell: hx must be a tuple (h_0, c_0) of arrays, got a single array")
    arrays = [as_array(state, f"hx[{index}]") for index, state in enumerate(hx)]
    for index, state in enumerate(arrays):
        if state.ndim not in (1, 2):
            raise ValueError(f"LSTMCell: Expected hx[{index}] to be 1D or 2D, got {state.ndim}D instead")
    if len(arrays) != 2:
        raise RuntimeError(f"lstm_cell expects two hidden states (h_0, c_0), got {len(arrays)}")
    return arrays[0], arrays[1]
