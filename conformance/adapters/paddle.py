"""``--impl paddle``: PaddlePaddle's ``paddle.nn.LSTM`` (CPU) behind lstm_ref's NumPy API, with
the backward pass through Paddle's autograd (``paddle.grad``).

``paddle.nn.LSTM`` has torch's parameter layout (weights ``(4H, in)``, two biases, gate order
i, f, g, o); the adapter converts only what differs: ``batch_first`` is Paddle's
``time_major=not batch_first``, ``bidirectional`` its ``direction="bidirect"``, ``bias=False`` its
``bias_ih_attr=bias_hh_attr=False``, the projection ``weight_hr`` its ``weight_ho`` (transposed),
an unbatched input gets a batch axis (Paddle takes 3-D input only), packed input becomes
padded + ``sequence_length`` and the output is packed again. Weights are read from and written to
each layer's cells (``module[layer].cell`` / ``cell_fw``, ``cell_bw``): the torch-named
attributes Paddle sets on the LSTM are misassigned when ``proj_size`` is set. The recurrence is
Paddle's (its fused ``rnn`` kernel, or its per-cell loop with projections), and so is the
dropout between layers in training mode. Given dropout masks are replayed by one-layer
``paddle.nn.LSTM``\\ s with each layer's weights, the masks multiplied in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, TypeVar, cast

import numpy as np

import lstm_ref
from lstm_ref.layout import dropout_noise, param_shapes, param_suffix

from . import require, versions
from .stacking import repack

require("paddle", "paddle")

import paddle  # noqa: E402

COMPLEX_REASON = (
    "Paddle has no complex LSTM: paddle.set_default_dtype 'only supports [float16, float32, float64, "
    "bfloat16]', and paddle.nn.LSTM creates its parameters in the default dtype"
)

Model = TypeVar("Model", bound="PaddleLSTM")


@contextlib.contextmanager
def default_dtype(dtype: np.dtype[Any]) -> Iterator[None]:
    """Paddle creates parameters in its default dtype: set it for the construction only."""
    before, name = paddle.get_default_dtype(), str(dtype)
    paddle.set_default_dtype(cast(Any, name))
    try:
        yield
    finally:
        paddle.set_default_dtype(before)


def _check_interpreted(bias: Any, batch_first: Any) -> None:
    """The two arguments the adapter translates into Paddle's (attrs, time_major), checked as
    torch checks them, so that a bad one is not silently converted."""
    if not isinstance(bias, bool):
        raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")


def _tensor(value: Any, grad: bool = False) -> Any:
    if value is None:
        return None
    tensor = paddle.to_tensor(np.ascontiguousarray(value))
    tensor.stop_gradient = not grad
    return tensor


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.numpy())


class PaddleLSTM:
    """paddle.nn.LSTM as torch.nn.LSTM, weights under torch's names, with vjp."""

    conformance_version: ClassVar[str] = versions("paddlepaddle")
    conformance_unsupported: ClassVar[dict[str, str]] = {"complex": COMPLEX_REASON}

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
        _check_interpreted(bias, batch_first)
        self.dtype = np.dtype(dtype)
        self.config = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.bias, self.batch_first, self.proj_size = bias, batch_first, proj_size
        self.p, self.directions = dropout, 2 if bidirectional else 1
        if seed is not None:
            paddle.seed(seed)
        self.module = self._new(input_size, num_layers)
        self.module.train()

    def _new(self, input_size: Any, num_layers: Any) -> Any:
        attr = None if self.bias else False
        with default_dtype(self.dtype):
            return paddle.nn.LSTM(
                input_size,
                self.config["hidden_size"],
                num_layers=num_layers,
                direction="bidirect" if self.directions == 2 else "forward",
                time_major=not self.batch_first,
                dropout=self.p,
                bias_ih_attr=attr,
                bias_hh_attr=attr,
                proj_size=self.proj_size,
            )

    # -- weights under torch's names ----------------------------------------------------------

    @staticmethod
    def _cells(module: Any, layer: int) -> list[Any]:
        rnn = module[layer]
        return [rnn.cell_fw, rnn.cell_bw] if hasattr(rnn, "cell_fw") else [rnn.cell]

    def _params(self, module: Any, layers: Sequence[int], offset: int = 0) -> dict[str, tuple[Any, bool]]:
        """torch name -> (the Paddle parameter, whether it is stored transposed), in torch's order
        (``offset``: the torch layer of ``module``'s layer 0)."""
        params: dict[str, tuple[Any, bool]] = {}
        for layer in layers:
            for direction, cell in enumerate(self._cells(module, layer)):
                suffix = param_suffix(layer + offset, direction)
                params["weight_ih" + suffix] = (cell.weight_ih, False)
                params["weight_hh" + suffix] = (cell.weight_hh, False)
                if self.bias:
                    params["bias_ih" + suffix] = (cell.bias_ih, False)
                    params["bias_hh" + suffix] = (cell.bias_hh, False)
                if self.proj_size:
                    params["weight_hr" + suffix] = (cell.weight_ho, True)
        return params

    def _all_params(self) -> dict[str, tuple[Any, bool]]:
        return self._params(self.module, range(int(self.config["num_layers"])))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {n: (_numpy(p).T if t else _numpy(p)).copy() for n, (p, t) in self._all_params().items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        c = self.config
        shapes = param_shapes(
            c["input_size"],
            c["hidden_size"],
            c["num_layers"],
            self.directions == 2,
            self.bias,
            self.proj_size,
        )
        if set(state_dict) != set(shapes):
            raise RuntimeError(f"state_dict keys {sorted(state_dict)} != {sorted(shapes)}")
        for name, shape in shapes.items():
            if np.shape(state_dict[name]) != shape:
                raise RuntimeError(f"{name}: shape {np.shape(state_dict[name])}, expected {shape}")
        for name, (param, transposed) in self._all_params().items():
            value = np.array(state_dict[name], dtype=self.dtype)
            param.set_value(np.ascontiguousarray(value.T if transposed else value))

    @property
    def training(self) -> bool:
        return bool(self.module.training)

    def train(self: Model, mode: bool = True) -> Model:
        self.module.train() if mode else self.module.eval()
        return self

    def eval(self: Model) -> Model:
        return self.train(False)

    # -- the call -----------------------------------------------------------------------------

    def _layout(self, input: Any) -> tuple[np.ndarray, Any, str]:
        """``input`` as Paddle takes it (3-D, in the module's time_major layout), the
        sequence lengths (packed input) and the form: "packed", "unbatched" or "dense"."""
        if isinstance(input, lstm_ref.PackedSequence):
            padded, lengths = lstm_ref.pad_packed_sequence(input)  # time-major, caller's order
            return (np.swapaxes(padded, 0, 1) if self.batch_first else padded), lengths, "packed"
        x = np.asarray(input)
        if x.ndim == 2:  # Paddle takes 3-D input only: the batch axis torch adds itself
            return (x[None] if self.batch_first else x[:, None]), None, "unbatched"
        return x, None, "dense"

    def _from_layout(self, out: np.ndarray, form: str, like: Any) -> Any:
        """The inverse of ``_layout`` for an output (or an input gradient) array."""
        if form == "unbatched":
            return out[0] if self.batch_first else out[:, 0]
        if form == "packed":
            return repack(np.swapaxes(out, 0, 1) if self.batch_first else out, like)
        return out

    def _to_layout(self, grad_output: np.ndarray, form: str, like: Any) -> np.ndarray:
        """An upstream gradient of the output (packed: of its data) in Paddle's layout."""
        if form == "packed":
            fields = (grad_output, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
            return self._layout(lstm_ref.PackedSequence(*fields))[0]
        return self._layout(grad_output)[0]

    def _noise(self, dropout_masks: Sequence[Any] | None, form: str, like: Any) -> list[Any] | None:
        """The given time-major keep-masks as ``keep / (1-p)`` tensors in Paddle's layout."""
        if dropout_masks is None or not (self.training and 0 < float(self.p) < 1):
            return None
        noise = []
        for keep in dropout_masks:
            keep = np.asarray(keep)
            if form == "packed":
                fields = (keep, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
                keep = lstm_ref.pad_packed_sequence(lstm_ref.PackedSequence(*fields))[0]
            elif form == "unbatched":
                keep = keep[:, None]
            if self.batch_first:
                keep = np.swapaxes(keep, 0, 1)
            noise.append(_tensor(dropout_noise(keep, float(self.p), self.dtype)))
        return noise

    def _layer_modules(self) -> list[Any]:
        """One-layer paddle.nn.LSTMs holding each layer's weights (to replay given masks)."""
        out = self.proj_size or self.config["hidden_size"]
        modules, state = [], self.state_dict()
        for layer in range(int(self.config["num_layers"])):
            features = self.config["input_size"] if layer == 0 else self.directions * out
            single = self._new(features, 1)
            single.train() if self.training else single.eval()
            for name, (param, transposed) in self._params(single, [0], offset=layer).items():
                value = state[name]
                param.set_value(np.ascontiguousarray(value.T if transposed else value))
            modules.append(single)
        return modules

    def _run(self, x: Any, states: Any, lengths: Any, noise: list[Any] | None) -> tuple[Any, ...]:
        """Paddle's forward, the whole module or layer by layer with the given masks:
        ``(out, h_n, c_n, the parameters that ran, by torch name)``."""
        if noise is None:
            out, (h_n, c_n) = self.module(x, states, sequence_length=lengths)
            return out, h_n, c_n, self._all_params()
        modules, d = self._layer_modules(), self.directions
        finals: list[tuple[Any, Any]] = []
        for layer, single in enumerate(modules):
            layer_states = None if states is None else tuple(s[layer * d : (layer + 1) * d] for s in states)
            out, final = single(x, layer_states, sequence_length=lengths)
            finals.append(final)
            x = out * noise[layer] if layer < len(modules) - 1 else out
        params: dict[str, tuple[Any, bool]] = {}
        for layer, single in enumerate(modules):
            params |= self._params(single, [0], offset=layer)
        return x, paddle.concat([f[0] for f in finals]), paddle.concat([f[1] for f in finals]), params

    def _states(self, hx: Any, form: str, grad: bool = False) -> Any:
        """torch's ``(h_0, c_0)`` as Paddle's initial_states (a batch axis when unbatched)."""
        if hx is None:
            return None
        states = [None if v is None else np.asarray(v) for v in hx]
        if form == "unbatched":
            states = [None if v is None else v[:, None] for v in states]
        return tuple(_tensor(v, grad) for v in states)

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        x, lengths, form = self._layout(input)
        noise = self._noise(dropout_masks, form, input)
        with paddle.no_grad():
            out, h_n, c_n, _ = self._run(_tensor(x), self._states(hx, form), _tensor(lengths), noise)
        h, c = _numpy(h_n), _numpy(c_n)
        if form == "unbatched":
            h, c = h[:, 0], c[:, 0]
        return self._from_layout(_numpy(out), form, input), (h, c)

    def vjp(
        self,
        input: Any,
        hx: Any,
        grad_output: np.ndarray,
        grad_h_n: np.ndarray,
        grad_c_n: np.ndarray,
        *,
        dropout_masks: Sequence[Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """``paddle.grad`` of the forward with the given upstream gradients (zero states as
        leaves when ``hx`` is None, so that h0 and c0 get gradients too)."""
        x_np, lengths, form = self._layout(input)
        noise = self._noise(dropout_masks, form, input)
        if noise is None and self.training and 0 < float(self.p) < 1 and int(self.config["num_layers"]) > 1:
            raise ValueError("vjp in training mode with dropout needs dropout_masks")
        if hx is None:
            shape = (self.directions * int(self.config["num_layers"]), *np.shape(grad_h_n)[1:])
            hx = (np.zeros(shape, self.dtype), np.zeros(np.shape(grad_c_n), self.dtype))
        x, states = _tensor(x_np, grad=True), self._states(hx, form, grad=True)
        out, h_n, c_n, params = self._run(x, states, _tensor(lengths), noise)
        upstream = [self._to_layout(np.asarray(grad_output), form, input), grad_h_n, grad_c_n]
        if form == "unbatched":
            upstream[1:] = [np.asarray(g)[:, None] for g in upstream[1:]]
        leaves = [x, *states, *(p for p, _ in params.values())]
        grads = paddle.grad(
            [out, h_n, c_n], leaves, grad_outputs=[_tensor(u) for u in upstream], allow_unused=True
        )
        arrays = [
            np.zeros(leaf.shape, self.dtype) if g is None else _numpy(g)
            for g, leaf in zip(grads, leaves, strict=True)
        ]
        grad_x = self._from_layout(arrays[0], form, input)
        result = {"input": grad_x.data if form == "packed" else grad_x}
        h0, c0 = arrays[1:3]
        result |= {
            "h0": h0[:, 0] if form == "unbatched" else h0,
            "c0": c0[:, 0] if form == "unbatched" else c0,
        }
        for (name, (_, transposed)), grad in zip(params.items(), arrays[3:], strict=True):
            result[name] = grad.T if transposed else grad
        return result
