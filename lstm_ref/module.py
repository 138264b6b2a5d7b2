"""``LSTM`` and ``LSTMCell``: torch's constructor checks and parameters, on top of
``calls.py`` (one call's input forms and errors), ``functional.py`` (the computation)
and ``backward.py`` (``LSTM.vjp``)."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import backward
from .calls import Call, prepare_cell_call
from .functional import LayerWeights, cell_forward, prepare_direction, prepare_weights
from .layout import cell_param_shapes, dropout_noise, param_shapes

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

    def _init_module(
        self, input_size: int, hidden_size: int, bias: bool, dtype: DTypeLike, seed: int | None
    ) -> None:
        """The configuration LSTM and LSTMCell share (after their own checks), then parameters."""
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.dtype = _module_dtype(dtype)
        self.training = True
        self._init_parameters(seed, hidden_size)

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


def _check_lstm_arguments(
    input_size: Any,
    hidden_size: Any,
    num_layers: Any,
    bias: Any,
    batch_first: Any,
    dropout: Any,
    proj_size: Any,
) -> float:
    """torch.nn.RNNBase.__init__'s checks: same order, same exception types, same warning.

    Returns ``float(dropout)``, the value the module stores.
    """
    stored_dropout = float(dropout)  # torch calls float() first: None raises TypeError
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:  # type: ignore[operator]
        raise ValueError(_DROPOUT_RANGE)
    if dropout > 0 and num_layers == 1:  # type: ignore[operator]
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero "
            "dropout expects num_layers greater than 1, but got "
            f"dropout={dropout} and num_layers={num_layers}",
            stacklevel=3,  # the caller of LSTM(...), as torch's
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
    return stored_dropout


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
        stored_dropout = _check_lstm_arguments(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size
        )
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.dropout = stored_dropout
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self._init_module(input_size, hidden_size, bias, dtype, seed)

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
        """Same inputs and outputs as torch.nn.LSTM.forward; dropout_masks replays given keep-masks (docs/semantics.md section 5)."""
        call = Call.prepare(self, input, hx)
        return call.run(self.layer_weights, self.dropout_noise(call, dropout_masks))

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
        call = Call.prepare(self, input, hx)
        if dropout_masks is None and self._draws_dropout_masks(call):
            raise ValueError(
                f"vjp in training mode with dropout={self.dropout} needs dropout_masks: the gradient "
                "depends on the masks the forward used (pass the same dropout_masks as to the "
                "forward call, or call m.eval())"
            )
        noise = self.dropout_noise(call, dropout_masks)
        return backward.vjp(call, self.layer_weights, self.params, noise, grad_output, grad_h_n, grad_c_n)

    # -- what a call uses ---------------------------------------------------------------

    @property
    def params(self) -> Mapping[str, np.ndarray]:
        """The parameters by torch's names, in its order: a read-only view, not copies
        (do not modify the arrays; ``state_dict()`` gives copies)."""
        return MappingProxyType(self._params)

    @property
    def layer_weights(self) -> tuple[LayerWeights, ...]:
        """The parameters in ``functional``'s prepared layout, one entry per layer (made once
        per load, read by every call)."""
        return self._layers

    def dropout_noise(self, call: Call, masks: Sequence[ArrayLike] | None) -> list[np.ndarray] | None:
        """The num_layers-1 multipliers ``keep/(1-p)`` torch's CPU dropout applies, or None.

        ``masks`` are checked against ``call`` even where no dropout applies; without masks,
        keep-masks are drawn from the model's Generator.
        """
        boundaries = int(self.num_layers) - 1
        features = self.num_directions * self.output_hidden_size
        if masks is not None:
            masks = call.check_masks(masks, boundaries, features)
        p = self.dropout
        if not self.training or p == 0 or boundaries == 0 or call.data.shape[0] == 0:
            return None
        if p == 1:  # torch: input * zeros({}), no random draw
            return [np.zeros((), dtype=self.dtype)] * boundaries
        if self.dtype.kind == "c":
            raise NotImplementedError('"bernoulli_scalar_cpu_" not implemented for complex dtypes (as torch)')
        shape = (call.data.shape[0], features)
        if masks is None:
            keep = [self._rng.random(shape) >= p for _ in range(boundaries)]
        else:
            keep = [np.asarray(m).reshape(shape) != 0 for m in masks]
        return [dropout_noise(k, p, self.dtype) for k in keep]

    def _draws_dropout_masks(self, call: Call) -> bool:
        """Whether ``dropout_noise(call, None)`` would draw random masks."""
        return (
            self.training
            and 0 < self.dropout < 1
            and int(self.num_layers) > 1
            and call.data.shape[0] > 0
            and self.dtype.kind != "c"
        )


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
        self._init_module(input_size, hidden_size, bias, dtype, seed)

    def __repr__(self) -> str:
        bias = "" if self.bias is True else f", bias={self.bias}"
        return f"LSTMCell({self.input_size}, {self.hidden_size}{bias}, dtype={self.dtype.name})"

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return cell_param_shapes(int(self.input_size), int(self.hidden_size), bool(self.bias))

    def _prepare(self) -> None:
        params = self._params
        self._weights = prepare_direction(
            params["weight_ih"], params["weight_hh"], params.get("bias_ih"), params.get("bias_hh"), None
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
        call = prepare_cell_call(self, input, hx)
        h1, c1 = cell_forward(call.x, call.h0, call.c0, self._weights)
        return (h1, c1) if call.batched else (h1[0], c1[0])
