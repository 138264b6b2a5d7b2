"""``LSTM`` and ``LSTMCell``: torch's constructor checks, parameters, input
forms and errors, on top of the functional core in ``functional.py``."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .functional import (
    LayerWeights,
    StepRecorder,
    prepare_direction,
    prepare_weights,
    prepared_step_in_place,
    run_stack,
)
from .layout import cell_param_shapes, dropout_noise, param_shapes
from .packing import PackedSequence

SUPPORTED_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))

_DROPOUT_RANGE = (
    "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
)


def _module_dtype(dtype: DTypeLike) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind not in "fc":
        # torch: "Only Tensors of floating point and complex dtype can require gradients"
        raise RuntimeError(f"LSTM parameters must be floating point or complex, got dtype {dt}")
    if dt not in SUPPORTED_DTYPES:
        raise TypeError(f"lstm_ref supports float32, float64, complex64 and complex128, got {dt}")
    return dt


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: np.dtype) -> np.ndarray:
    """U(-bound, bound); complex fills real and imaginary parts independently (as torch)."""
    if dtype.kind == "c":
        pairs = rng.uniform(-bound, bound, size=(*shape, 2))
        return (pairs[..., 0] + 1j * pairs[..., 1]).astype(dtype)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _check_int_size(name: str, value: Any) -> None:
    if not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero")


def _is_integer(value: Any) -> bool:
    """int or a NumPy integer (torch accepts np.int64 sizes where it does not type-check)."""
    return isinstance(value, numbers.Integral)


def _as_array(value: Any, what: str) -> np.ndarray:
    if value is None:
        raise AttributeError(f"{what} is None; expected an array")
    if isinstance(value, PackedSequence):
        raise TypeError(f"{what} must be an array, got a PackedSequence")
    return np.asarray(value)


_P = TypeVar("_P", bound="_Parameters")


class _Parameters:
    """Named parameters in torch's registration order, with load/save by name."""

    dtype: np.dtype
    training: bool
    _params: dict[str, np.ndarray]

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _prepare(self) -> None:
        raise NotImplementedError

    def _init_parameters(self, seed: int | None, hidden_size: int) -> None:
        self._rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0  # as torch
        self._params = {
            name: _uniform(self._rng, shape, bound, self.dtype) for name, shape in self._shapes().items()
        }
        self._prepare()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, under torch's names and in its order."""
        return {name: value.copy() for name, value in self._params.items()}

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        return iter(self.state_dict().items())

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Load parameters by name; missing, unexpected or misshapen entries raise RuntimeError."""
        expected = self._shapes()
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        problems = []
        if missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
        if unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
        loaded = {}
        for name, shape in expected.items():
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name])
            if value.shape != shape:
                problems.append(
                    f"size mismatch for {name}: copying a param with shape {value.shape} from "
                    f"checkpoint, the shape in current model is {shape}"
                )
            elif value.dtype.kind == "c" and self.dtype.kind != "c":
                problems.append(f"{name}: cannot load complex values into a {self.dtype} model")
            else:
                loaded[name] = np.array(value, dtype=self.dtype, copy=True)
        if problems:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(problems)
            )
        self._params = loaded
        self._prepare()

    def train(self: _P, mode: bool = True) -> _P:
        self.training = bool(mode)
        return self

    def eval(self: _P) -> _P:
        return self.train(False)


class LSTM(_Parameters):
    """A NumPy ``torch.nn.LSTM``: same arguments, parameters, shapes and errors."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        dtype: DTypeLike = np.float32,
        seed: int | None = None,
    ) -> None:
        # Same checks, same order, same exception types as torch.nn.RNNBase.__init__.
        stored_dropout = float(dropout)  # torch calls float() first: None raises TypeError
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:  # type: ignore[operator]
            raise ValueError(_DROPOUT_RANGE)
        if dropout > 0 and num_layers == 1:  # type: ignore[operator]
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                "dropout expects num_layers greater than 1, but got "
                f"dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
        _check_int_size("input_size", input_size)
        _check_int_size("hidden_size", hidden_size)
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if isinstance(num_layers, float):
            raise TypeError("'float' object cannot be interpreted as an integer")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if not _is_integer(proj_size) or isinstance(proj_size, bool):
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = stored_dropout
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.dtype = _module_dtype(dtype)
        self.training = True
        self._init_parameters(seed, hidden_size)

    # -- parameters ---------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_hidden_size(self) -> int:
        """H_out: proj_size if projecting, else hidden_size."""
        return int(self.proj_size or self.hidden_size)

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return param_shapes(
            int(self.input_size),
            int(self.hidden_size),
            int(self.num_layers),
            bool(self.bidirectional),
            bool(self.bias),
            int(self.proj_size),
        )

    def _prepare(self) -> None:
        self._layers: tuple[LayerWeights, ...] = prepare_weights(
            self._params, int(self.num_layers), self.num_directions, self.bias, self.proj_size > 0
        )

    @classmethod
    def from_torch(cls, module: Any) -> LSTM:
        """Copy the configuration, weights and train/eval mode of a torch.nn.LSTM (duck-typed)."""
        arrays = {k: v.detach().cpu().resolve_conj().numpy() for k, v in module.state_dict().items()}
        model = cls(
            module.input_size,
            module.hidden_size,
            num_layers=module.num_layers,
            bias=module.bias,
            batch_first=module.batch_first,
            dropout=module.dropout,
            bidirectional=bool(module.bidirectional),
            proj_size=module.proj_size,
            dtype=arrays["weight_ih_l0"].dtype,
        )
        model.load_state_dict(arrays)
        return model.train(module.training)

    def __repr__(self) -> str:
        # torch's extra_repr conditions, including its `is not` checks (bidirectional=0 is shown)
        shown = [
            ("proj_size", self.proj_size != 0),
            ("num_layers", self.num_layers != 1),
            ("bias", self.bias is not True),
            ("batch_first", self.batch_first is not False),
            ("dropout", self.dropout != 0),
            ("bidirectional", self.bidirectional is not False),
        ]
        parts = [f"{self.input_size}, {self.hidden_size}"]
        parts += [f"{name}={getattr(self, name)}" for name, show in shown if show]
        return f"LSTM({', '.join(parts)}, dtype={self.dtype.name})"

    # -- forward ----------------------------------------------------------------

    def __call__(
        self, input: Any, hx: Any = None, *, dropout_masks: Sequence[ArrayLike] | None = None
    ) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
        return self.forward(input, hx, dropout_masks=dropout_masks)

    def forward(
        self, input: Any, hx: Any = None, *, dropout_masks: Sequence[ArrayLike] | None = None
    ) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
        """Same inputs and outputs as torch.nn.LSTM.forward; see README for dropout_masks."""
        return self._run(input, hx, dropout_masks)

    def vjp(
        self,
        input: Any,
        hx: Any,
        grad_output: Any,
        grad_h_n: ArrayLike | None = None,
        grad_c_n: ArrayLike | None = None,
        *,
        dropout_masks: Sequence[ArrayLike] | None = None,
    ) -> dict[str, np.ndarray]:
        """Backward pass: the vector-Jacobian product of ``self(input, hx, dropout_masks=...)``.

        grad_output has the output's shape (a PackedSequence or its data for packed
        input); grad_h_n / grad_c_n are shaped like h_n / c_n, None meaning zeros.
        Returns what ``torch.autograd.grad`` gives for the same upstream gradients:
        ``"input"`` (in the input's layout; the data for a PackedSequence), ``"h0"``
        and ``"c0"`` (shaped like torch's h0/c0, caller's batch order; also when hx
        is None) and one entry per ``state_dict`` name.  Complex dtypes follow
        torch's convention (``J^H v``).  In training mode with ``0 < dropout < 1``
        and several layers, ``dropout_masks`` is required (ValueError otherwise):
        the gradient depends on the masks the forward used.  See ``backward.py``.
        """
        from .backward import vjp

        return vjp(self, input, hx, grad_output, grad_h_n, grad_c_n, dropout_masks=dropout_masks)

    def _run(
        self,
        input: Any,
        hx: Any,
        dropout_masks: Sequence[ArrayLike] | None,
        record: Callable[[int, int], StepRecorder | None] | None = None,
        layer_outputs: list[np.ndarray] | None = None,
    ) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
        call = _Call.prepare(self, input, hx)
        noise = self._dropout_noise(call, dropout_masks)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out, h_n, c_n = run_stack(
                call.data, call.batch_sizes, call.h0, call.c0, self._layers, noise, record, layer_outputs
            )
        return call.finish(out, h_n, c_n)

    def _dropout_noise(self, call: _Call, masks: Sequence[ArrayLike] | None) -> list[np.ndarray] | None:
        """The num_layers-1 multipliers ``keep/(1-p)`` torch's CPU dropout applies, or None."""
        boundaries = int(self.num_layers) - 1
        shape = (call.data.shape[0], self.num_directions * self.output_hidden_size)
        if masks is not None:
            masks = self._check_masks(call, masks, boundaries)
        p = self.dropout
        if not self.training or p == 0 or boundaries == 0 or call.data.shape[0] == 0:
            return None
        if p == 1:  # torch: input * zeros({}), no random draw
            return [np.zeros((), dtype=self.dtype)] * boundaries
        if self.dtype.kind == "c":
            raise NotImplementedError('"bernoulli_scalar_cpu_" not implemented for complex dtypes (as torch)')
        if masks is None:
            keep = [self._rng.random(shape) >= p for _ in range(boundaries)]
        else:
            keep = [np.asarray(m).reshape(shape) != 0 for m in masks]
        return [dropout_noise(k, p, self.dtype) for k in keep]

    def _check_masks(self, call: _Call, masks: Sequence[ArrayLike], boundaries: int) -> list[np.ndarray]:
        masks = list(masks)
        if len(masks) != boundaries:
            raise ValueError(f"dropout_masks: expected {boundaries} masks (num_layers - 1), got {len(masks)}")
        expected = call.mask_shape(self.num_directions * self.output_hidden_size)
        arrays = [np.asarray(m) for m in masks]
        for k, m in enumerate(arrays):
            if m.shape != expected:
                raise ValueError(
                    f"dropout_masks[{k}]: expected shape {expected} (time-major layer output), got {m.shape}"
                )
            if not np.all((m == 0) | (m == 1)):
                raise ValueError(f"dropout_masks[{k}]: a keep-mask must contain only 0 and 1")
        return arrays


class _Call:
    """One forward call's input, normalised to the packed time-major layout.

    Checks run in torch's order so the first error reported is torch's.
    """

    data: np.ndarray  # (S, input_size) packed time-major rows
    batch_sizes: np.ndarray
    h0: np.ndarray  # (num_layers * D, B, H_out), sorted batch order
    c0: np.ndarray

    def __init__(self) -> None:
        self.packed: PackedSequence | None = None
        self.batched = True
        self.batch_first = False
        self.steps = 0
        self.batch = 0

    @classmethod
    def prepare(cls, m: LSTM, input: Any, hx: Any) -> _Call:
        call = cls()
        h_out, layers_dirs = m.output_hidden_size, int(m.num_layers) * m.num_directions
        if isinstance(input, PackedSequence):
            call.packed = input
            data = _as_array(input.data, "PackedSequence.data")
            call.batch_sizes = _check_batch_sizes(input.batch_sizes, data)
            call.batch = int(call.batch_sizes[0])
            h0c0 = None if hx is None else _split_hx(hx)
            _check_dtype(m, data, RuntimeError)  # torch: its C++ matmul fails, a RuntimeError
            if data.ndim != 2:
                raise RuntimeError(f"input must have 2 dimensions, got {data.ndim}")
            _check_input_size(m, data)
        else:
            x = _as_array(input, "input")
            if x.ndim not in (2, 3):
                raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {x.ndim}D instead")
            call.batched = x.ndim == 3
            h0c0 = None if hx is None else _split_hx(hx)
            if h0c0 is not None:
                want = 3 if call.batched else 2
                if h0c0[0].ndim != want or h0c0[1].ndim != want:
                    kind = "batched 3-D" if call.batched else "unbatched 2-D"
                    raise RuntimeError(
                        f"For {kind} input, hx and cx should also be {want}-D but got "
                        f"({h0c0[0].ndim}-D, {h0c0[1].ndim}-D) tensors"
                    )
                if not call.batched:
                    h0c0 = (h0c0[0][:, None], h0c0[1][:, None])
            _check_dtype(m, x)
            _check_input_size(m, x)
            if not call.batched:
                x = x[:, None]
            elif m.batch_first:
                call.batch_first = True
                x = np.swapaxes(x, 0, 1)
            call.steps, call.batch = x.shape[0], x.shape[1]
            call.batch_sizes = np.full(call.steps, call.batch, dtype=np.int64)
            data = x.reshape(call.steps * call.batch, x.shape[2])
        expected_h = (layers_dirs, call.batch, h_out)
        expected_c = (layers_dirs, call.batch, m.hidden_size)
        if h0c0 is None:
            call.h0 = np.zeros(expected_h, dtype=m.dtype)
            call.c0 = np.zeros(expected_c, dtype=m.dtype)
        else:
            for k, (state, expected) in enumerate(zip(h0c0, (expected_h, expected_c), strict=True)):
                if state.shape != expected:
                    raise RuntimeError(f"Expected hidden[{k}] size {expected}, got {list(state.shape)}")
            call.h0, call.c0 = (_state_in_dtype(m, s, k) for k, s in enumerate(h0c0))
            if call.packed is not None and call.packed.sorted_indices is not None:
                order = np.asarray(call.packed.sorted_indices)
                call.h0, call.c0 = call.h0[:, order], call.c0[:, order]
        if call.packed is None and call.steps == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        call.data = data
        return call

    def mask_shape(self, features: int) -> tuple[int, ...]:
        """Shape of one dropout mask: the layer output in time-major layout."""
        if self.packed is not None:
            return (self.data.shape[0], features)
        if not self.batched:
            return (self.steps, features)
        return (self.steps, self.batch, features)

    def to_layout(self, rows: np.ndarray) -> np.ndarray:
        """(S, F) packed rows -> the time-major layout of mask_shape."""
        return rows.reshape(self.mask_shape(rows.shape[-1]))

    def finish(
        self, out: np.ndarray, h_n: np.ndarray, c_n: np.ndarray
    ) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
        if self.packed is not None:
            if self.packed.unsorted_indices is not None:
                order = np.asarray(self.packed.unsorted_indices)
                h_n, c_n = h_n[:, order], c_n[:, order]
            p = self.packed
            return PackedSequence(out, p.batch_sizes, p.sorted_indices, p.unsorted_indices), (h_n, c_n)
        output = out.reshape(self.steps, self.batch, out.shape[-1])
        if not self.batched:
            return output[:, 0], (h_n[:, 0], c_n[:, 0])
        if self.batch_first:
            output = np.swapaxes(output, 0, 1)  # a transposed view, like torch
        return output, (h_n, c_n)


def _split_hx(hx: Any) -> tuple[np.ndarray, np.ndarray]:
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
    return _as_array(hx[0], "hx[0] (h_0)"), _as_array(hx[1], "hx[1] (c_0)")


def _check_dtype(m: LSTM, x: np.ndarray, error: type[Exception] = ValueError) -> None:
    if x.dtype != m.dtype:
        raise error(
            f"RNN input dtype ({x.dtype}) does not match weight dtype ({m.dtype}). "
            f"Convert input: input.astype(np.{m.dtype}), or convert model: LSTM(..., dtype=np.{x.dtype})"
        )


def _check_input_size(m: LSTM, x: np.ndarray) -> None:
    if x.shape[-1] != m.input_size:
        raise RuntimeError(
            f"input.size(-1) must be equal to input_size. Expected {m.input_size}, got {x.shape[-1]}"
        )


def _state_in_dtype(m: LSTM | LSTMCell, state: np.ndarray, k: int) -> np.ndarray:
    # torch: h0 enters a matmul with the weights, so its dtype must match exactly; c0 is only
    # combined elementwise and is promoted silently when narrower (or integer), fails when wider.
    promotable = k == 1 and (state.dtype.kind in "biu" or np.can_cast(state.dtype, m.dtype, "safe"))
    if state.dtype != m.dtype and not promotable:
        raise RuntimeError(f"hidden[{k}] dtype {state.dtype} does not match weight dtype {m.dtype}")
    return np.asarray(state, dtype=m.dtype)


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


class LSTMCell(_Parameters):
    """A NumPy ``torch.nn.LSTMCell``: one step, same parameters and shapes."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: DTypeLike = np.float32,
        seed: int | None = None,
    ) -> None:
        # torch does not validate these; torch.empty does (TypeError, then RuntimeError)
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not _is_integer(value):
                raise TypeError(f"LSTMCell: {name} should be of type int, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if value < 0:
                raise RuntimeError(f"LSTMCell: {name} must not be negative, got {value}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.dtype = _module_dtype(dtype)
        self.training = True
        self._init_parameters(seed, hidden_size)

    def __repr__(self) -> str:
        bias = "" if self.bias is True else f", bias={self.bias}"
        return f"LSTMCell({self.input_size}, {self.hidden_size}{bias}, dtype={self.dtype.name})"

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return cell_param_shapes(int(self.input_size), int(self.hidden_size), bool(self.bias))

    def _prepare(self) -> None:
        p = self._params
        self._weights = prepare_direction(
            p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), None
        )

    @classmethod
    def from_torch(cls, module: Any) -> LSTMCell:
        arrays = {k: v.detach().cpu().resolve_conj().numpy() for k, v in module.state_dict().items()}
        cell = cls(module.input_size, module.hidden_size, bias=module.bias, dtype=arrays["weight_ih"].dtype)
        cell.load_state_dict(arrays)
        return cell.train(module.training)

    def __call__(self, input: ArrayLike, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return self.forward(input, hx)

    def forward(self, input: ArrayLike, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        x = _as_array(input, "input")
        if x.ndim not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {x.ndim}D instead")
        states = None
        if hx is not None:
            if isinstance(hx, np.ndarray):
                raise TypeError("LSTMCell: hx must be a tuple (h_0, c_0) of arrays, got a single array")
            arrays = [_as_array(state, f"hx[{k}]") for k, state in enumerate(hx)]
            for k, state in enumerate(arrays):
                if state.ndim not in (1, 2):
                    raise ValueError(f"LSTMCell: Expected hx[{k}] to be 1D or 2D, got {state.ndim}D instead")
            if len(arrays) != 2:
                raise RuntimeError(f"lstm_cell expects two hidden states (h_0, c_0), got {len(arrays)}")
            states = (arrays[0], arrays[1])
        batched = x.ndim == 2
        x = x if batched else x[None]
        if states is None:
            zeros = np.zeros((x.shape[0], self.hidden_size), dtype=self.dtype)
            states = (zeros, zeros)
        elif not batched:
            states = (states[0][None], states[1][None])
        if x.dtype != self.dtype:
            raise RuntimeError(f"LSTMCell: input dtype {x.dtype} does not match weight dtype {self.dtype}")
        if x.shape[1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}"
            )
        for k, state in enumerate(states):
            if state.shape[0] != x.shape[0]:
                raise RuntimeError(
                    f"Input batch size {x.shape[0]} doesn't match hidden{k} batch size {state.shape[0]}"
                )
            if state.shape[1] != self.hidden_size:
                raise RuntimeError(
                    f"hidden{k} has inconsistent hidden_size: got {state.shape[1]}, expected {self.hidden_size}"
                )
        h0, c0 = (_state_in_dtype(self, s, k) for k, s in enumerate(states))
        w = self._weights
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            gates = x @ w.w_ih_t
            if w.bias is not None:
                gates += w.bias
            gates += h0 @ w.w_hh_t
            c1 = np.array(c0, copy=True)
            h1 = np.empty_like(c1)
            prepared_step_in_place(gates, c1, h1, None, np.empty_like(c1), h1)
        return (h1, c1) if batched else (h1[0], c1[0])
