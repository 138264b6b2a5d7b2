"""``--impl torch``: torch.nn.LSTM and torch.nn.LSTMCell behind lstm_ref's NumPy API.

The suite checks torch itself with this adapter (against the fixtures, which an older or newer
torch made).  It converts arrays to tensors and back and calls torch; the LSTM is torch's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

import lstm_ref
from lstm_ref.layout import dropout_noise

from ..oracles.torch_oracle import (
    autograd_vjp,
    differentiable_leaves,
    one_thread,
    run_layers,
    to_numpy,
    to_tensor,
)

if TYPE_CHECKING:
    import torch


def to_torch_input(value: Any) -> Any:
    """An array or lstm_ref.PackedSequence as torch's (anything else is passed on unchanged)."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(value, lstm_ref.PackedSequence):
        fields: list[Any] = [None if v is None else to_tensor(np.asarray(v)) for v in value]
        return PackedSequence(*fields)
    return to_tensor(value)


def to_torch_hx(hx: Any) -> Any:
    if isinstance(hx, (tuple, list)):
        return type(hx)(to_tensor(v) for v in hx)
    return to_tensor(hx)


def _state_dict(module: Any) -> dict[str, np.ndarray]:
    return {name: to_numpy(value) for name, value in module.state_dict().items()}


def _load_state_dict(module: Any, state_dict: dict[str, Any]) -> None:
    import torch

    module.load_state_dict({name: torch.as_tensor(np.array(value)) for name, value in state_dict.items()})


def to_device(value: Any, device: str) -> Any:
    """Tensors (also in a PackedSequence, tuple or list) moved to ``device``; anything else as is."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    if device == "cpu":
        return value
    if isinstance(value, (torch.Tensor, PackedSequence)):
        tensor: Any = value
        return tensor.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device) for v in value)
    return value


def from_torch_output(out: Any, h_n: Any, c_n: Any) -> Any:
    """torch's ``(output, (h_n, c_n))`` as NumPy (a PackedSequence as lstm_ref's)."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(out, PackedSequence):
        fields: list[Any] = [out.data, out.batch_sizes, out.sorted_indices, out.unsorted_indices]
        arrays: list[Any] = [None if f is None else to_numpy(f) for f in fields]
        return lstm_ref.PackedSequence(*arrays), (to_numpy(h_n), to_numpy(c_n))
    return to_numpy(out), (to_numpy(h_n), to_numpy(c_n))


def new_torch_lstm(config: tuple[Any, ...], dtype: Any, seed: int | None) -> torch.nn.LSTM:
    """``torch.nn.LSTM(*config, dtype=...)`` (config in the constructor's order, from
    input_size to proj_size), its weights drawn from ``seed`` without touching torch's global
    generator.  Bad arguments meet torch's own checks."""
    import torch

    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size = config
    try:
        tdtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
    except TypeError as exc:
        raise TypeError(f"dtype {dtype!r} has no torch equivalent") from exc
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        return torch.nn.LSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            dtype=tdtype,
        )


Holder = TypeVar("Holder", bound="TorchModuleState")


class TorchModuleState:
    """The plug-in API's state methods over a torch module held in ``self.module``: the training
    flag and the state_dict as NumPy arrays under torch's own names."""

    module: torch.nn.LSTM

    @property
    def training(self) -> bool:
        return bool(self.module.training)

    def train(self: Holder, mode: bool = True) -> Holder:
        self.module.train(mode)
        return self

    def eval(self: Holder) -> Holder:
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        return _state_dict(self.module)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _load_state_dict(self.module, state_dict)


class TorchForward(TorchModuleState):
    """torch.nn.LSTM behind lstm_ref.LSTM's NumPy API, without the backward pass.

    ``dropout_masks`` are honoured by running torch layer by layer (one-layer modules sharing
    the parameters) and multiplying the masks, scaled by 1/(1-p), onto the layer inputs.
    Subclasses (the torch-family adapters) change what runs the module: ``device``,
    ``_run_module`` (the whole module) and ``_run_layer`` (a one-layer module, for masks).
    """

    conformance_unsupported: ClassVar[dict[str, str]] = {}
    device: ClassVar[str] = "cpu"

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
        config = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size)
        self.module = new_torch_lstm(config, dtype, seed).to(self.device)
        self.dtype = np.dtype(dtype)

    def _replay_noise(self, dropout_masks: Sequence[Any] | None, required: bool) -> list[Any] | None:
        """The noise ``keep / (1-p)`` of the given masks, when this call draws dropout."""
        import torch

        m = self.module
        p, layers = float(m.dropout), int(m.num_layers)
        if not (m.training and 0 < p < 1 and layers > 1) or (dropout_masks is None and not required):
            return None
        if torch.is_complex(next(m.parameters())):
            raise NotImplementedError('"bernoulli_scalar_cpu_" not implemented for complex dtypes')
        if dropout_masks is None:
            raise ValueError("vjp in training mode with dropout needs dropout_masks")
        if len(dropout_masks) != layers - 1:
            raise ValueError(f"expected {layers - 1} dropout masks, got {len(dropout_masks)}")
        noise = [torch.from_numpy(dropout_noise(keep, p, self.dtype)) for keep in dropout_masks]
        return to_device(noise, self.device)  # type: ignore[no-any-return]

    def _run_module(self, x: Any, hx: Any) -> Any:
        """``(output, (h_n, c_n))`` of the whole module (torch's own call here)."""
        return self.module(x, hx)

    def _run_layer(self, single: Any) -> Any:
        """What runs a one-layer module sharing the parameters, when masks are replayed."""
        return single

    def _forward(self, x: Any, hx: Any, noise: list[Any] | None) -> tuple[Any, Any, Any]:
        if noise is None:
            out, (h_n, c_n) = self._run_module(x, hx)
            return out, h_n, c_n
        return run_layers(self.module, x, hx, noise, self._run_layer)[:3]  # masks are time-major

    def _inputs(self, input: Any, hx: Any) -> tuple[Any, Any]:
        x, t_hx = to_torch_input(input), None if hx is None else to_torch_hx(hx)
        return to_device(x, self.device), to_device(t_hx, self.device)

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        import torch

        x, t_hx = self._inputs(input, hx)
        with torch.no_grad(), one_thread():
            out, h_n, c_n = self._forward(x, t_hx, self._replay_noise(dropout_masks, required=False))
        return from_torch_output(out, h_n, c_n)


class TorchLSTM(TorchForward):
    """torch.nn.LSTM behind lstm_ref.LSTM's NumPy API, with the backward pass (``vjp``)."""

    def vjp(
        self,
        input: Any,
        hx: Any,
        grad_output: Any,
        grad_h_n: Any = None,
        grad_c_n: Any = None,
        *,
        dropout_masks: Sequence[Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """torch.autograd.grad of this forward, with lstm_ref.LSTM.vjp's API."""
        import torch
        from torch.nn.utils.rnn import PackedSequence

        m = self.module
        with torch.enable_grad(), one_thread(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            x, leaf, h0, c0 = differentiable_leaves(m, *self._inputs(input, hx))
            out, h_n, c_n = self._forward(x, (h0, c0), self._replay_noise(dropout_masks, required=True))
            data = out.data if isinstance(out, PackedSequence) else out
            if isinstance(grad_output, lstm_ref.PackedSequence):
                grad_output = grad_output.data
            upstream = [
                torch.zeros_like(t)
                if g is None
                else torch.from_numpy(np.array(g, dtype=to_numpy(t).dtype)).to(t.device)
                for g, t in ((grad_output, data), (grad_h_n, h_n), (grad_c_n, c_n))
            ]
            grads = autograd_vjp(m, (data, h_n, c_n), [leaf, h0, c0], upstream)
        names = ["input", "h0", "c0", *(name for name, _ in m.named_parameters())]
        return {n: to_numpy(g) for n, g in zip(names, grads, strict=True)}


class TorchLSTMCell:
    """torch.nn.LSTMCell behind lstm_ref.LSTMCell's NumPy API (the cell of ``--impl torch``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        import torch

        tdtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
        self.module = torch.nn.LSTMCell(input_size, hidden_size, bias=bias, dtype=tdtype)

    def state_dict(self) -> dict[str, np.ndarray]:
        return _state_dict(self.module)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _load_state_dict(self.module, state_dict)

    def __call__(self, input: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.no_grad(), one_thread():
            h, c = self._run(to_tensor(input), None if hx is None else to_torch_hx(hx))
        return to_numpy(h), to_numpy(c)

    def _run(self, x: Any, hx: Any) -> Any:
        """``(h, c)`` of one step (torch's own call here; the adapters change it)."""
        return self.module(x, hx)
