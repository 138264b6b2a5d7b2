"""``--impl keras``: Keras 3 ``keras.layers.LSTM`` (``Bidirectional`` for two directions), one
Keras layer per torch layer, behind lstm_ref's NumPy API.

Runs on the backend ``KERAS_BACKEND`` names (jax, tensorflow, torch), JAX when unset, and says
which in its ``conformance_version``. The adapter converts layouts
only: torch's weights to Keras' (kernels transposed, the two biases summed into Keras' one; the
gate order i, f, c, o is torch's i, f, g, o), time-major to batch-major, packed input to
padded input plus Keras' ``mask``, and back. Between layers it applies Keras' own
``keras.layers.Dropout`` (its own draw), or multiplies the given masks (replay). The recurrence is
always Keras'. Every sublayer (``LSTM``, ``Bidirectional``, ``Dropout``) is made with the model's
``dtype``: a Keras layer casts its inputs to its own dtype. ``vjp`` differentiates the same layers
(``stateless_call`` with the weights as inputs) with the backend's own autodiff: ``jax.vjp``,
``tf.GradientTape`` or ``torch.autograd.grad``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

import lstm_ref
from lstm_ref.layout import dropout_noise, param_suffix

from . import keras_backend, require, versions
from .stacking import StackedLSTM, repack, split_hx

os.environ.setdefault("KERAS_BACKEND", "jax")
require("keras", "keras", keras_backend())

import keras  # noqa: E402

BACKEND = keras.backend.backend()  # what Keras runs on (fixed when keras was first imported)
BACKEND_DISTRIBUTIONS = {"jax": ("jax", "jaxlib"), "torch": ("torch",)}


def backend_version() -> str:
    """``backend tensorflow: tensorflow 2.21.0`` (TF is installed as tensorflow or tensorflow-cpu)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return f"backend tensorflow: tensorflow {tf.__version__}"
    return f"backend {BACKEND}: {versions(*BACKEND_DISTRIBUTIONS.get(BACKEND, (BACKEND,)))}"


def backend_vjp(fn: Any, primals: list[Any], cotangents: list[Any]) -> list[np.ndarray]:
    """``fn``'s vector-Jacobian product at ``primals`` by the backend's own autodiff."""
    if BACKEND == "jax":
        import jax

        outs, pullback = jax.vjp(fn, *[keras.ops.convert_to_tensor(p) for p in primals])
        return [
            to_numpy(g)
            for g in pullback(
                tuple(keras.ops.cast(c, o.dtype) for c, o in zip(cotangents, outs, strict=True))
            )
        ]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        sources = [tf.convert_to_tensor(p) for p in primals]
        with tf.GradientTape() as tape:
            tape.watch(sources)
            outs = fn(*sources)
        grads = tape.gradient(
            list(outs),
            sources,
            output_gradients=[tf.cast(c, o.dtype) for c, o in zip(cotangents, outs, strict=True)],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return [to_numpy(g) for g in grads]
    if BACKEND == "torch":
        import torch

        leaves = [torch.tensor(np.asarray(p), requires_grad=True) for p in primals]
        outs = fn(*leaves)
        upstream = [torch.as_tensor(np.asarray(c)).to(o.dtype) for c, o in zip(cotangents, outs, strict=True)]
        grads = torch.autograd.grad(outs, leaves, upstream, allow_unused=True)
        return [np.zeros_like(p) if g is None else to_numpy(g) for p, g in zip(primals, grads, strict=True)]
    raise NotImplementedError(f"Keras' {BACKEND} backend has no autodiff")


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def pad_packed(packed: lstm_ref.PackedSequence) -> tuple[np.ndarray, np.ndarray]:
    """A PackedSequence as batch-major padded data ``(N, T, F)`` and lengths, caller's order."""
    padded, lengths = lstm_ref.pad_packed_sequence(packed, batch_first=True)
    return padded, lengths


def _cells(layer: Any) -> list[Any]:
    """The LSTMCell of each direction of one Keras layer (forward first)."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [layer.forward_layer.cell, layer.backward_layer.cell]
    return [layer.cell]


class KerasLSTM(StackedLSTM):
    """torch.nn.LSTM's API over a stack of Keras LSTM layers."""

    conformance_unsupported: ClassVar[dict[str, str]] = {
        "proj_size": "keras.layers.LSTM has no projection (proj_size)",
        "complex": "keras.layers.LSTM has no complex dtypes (Keras' floatx/dtype policies are real)",
    }
    conformance_version: ClassVar[str] = f"{versions('keras')}, {backend_version()}"

    def _build(self, seed: int | None) -> None:
        self.dropout = keras.layers.Dropout(self.p, seed=seed, dtype=self.dtype.name)
        self.layers = [self._layer(layer, seed) for layer in range(self.num_layers)]

    def _layer(self, layer: int, seed: int | None) -> Any:
        """One Keras layer, built for its input features."""
        hidden = self.config["hidden_size"]
        lstm = keras.layers.LSTM(
            hidden,
            use_bias=self.config["bias"],
            unit_forget_bias=False,
            return_sequences=True,
            return_state=True,
            dtype=self.dtype.name,
            seed=seed,
        )
        keras_layer = keras.layers.Bidirectional(lstm, dtype=self.dtype.name) if self.bidirectional else lstm
        features = self.config["input_size"] if layer == 0 else (1 + self.bidirectional) * hidden
        keras_layer.build((None, None, features))
        return keras_layer

    def _initial_state_dict(self) -> dict[str, np.ndarray]:
        """Keras' own initial weights in torch's names (bias in bias_ih, zeros in bias_hh)."""
        state: dict[str, np.ndarray] = {}
        for layer, keras_layer in enumerate(self.layers):
            for direction, cell in enumerate(_cells(keras_layer)):
                suffix = param_suffix(layer, direction)
                state["weight_ih" + suffix] = to_numpy(cell.kernel).T.astype(self.dtype)
                state["weight_hh" + suffix] = to_numpy(cell.recurrent_kernel).T.astype(self.dtype)
                if self.config["bias"]:
                    state["bias_ih" + suffix] = to_numpy(cell.bias).astype(self.dtype)
                    state["bias_hh" + suffix] = np.zeros_like(state["bias_ih" + suffix])
        return state

    def _assign_weights(self) -> None:
        for layer, keras_layer in enumerate(self.layers):
            for direction, cell in enumerate(_cells(keras_layer)):
                s = param_suffix(layer, direction)
                cell.kernel.assign(self._state["weight_ih" + s].T)
                cell.recurrent_kernel.assign(self._state["weight_hh" + s].T)
                if self.config["bias"]:
                    cell.bias.assign(self._state["bias_ih" + s] + self._state["bias_hh" + s])

    def _initial_states(self, hx: Any, unbatched: bool) -> list[Any] | None:
        """torch's (D*layers, N, H) pair as one ``initial_state`` list per Keras layer."""
        if hx is None:
            return None
        h0, c0 = split_hx(hx, (1 + self.bidirectional) * self.num_layers)
        if unbatched:
            h0, c0 = (None if v is None else np.asarray(v)[:, None] for v in (h0, c0))
        d = 1 + self.bidirectional
        per_layer = []
        for layer in range(self.num_layers):
            states = []
            for k in range(layer * d, (layer + 1) * d):
                states += [h0[k], None if c0 is None else c0[k]]
            per_layer.append(states)
        return per_layer

    def _noise(self, dropout_masks: Sequence[Any] | None, like: Any) -> list[np.ndarray] | None:
        """The given time-major keep-masks as batch-major noise ``keep / (1-p)``."""
        if dropout_masks is None:
            return None
        noise = []
        for keep in dropout_masks:
            keep = np.asarray(keep)
            if isinstance(like, lstm_ref.PackedSequence):
                fields = (keep, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
                keep = pad_packed(lstm_ref.PackedSequence(*fields))[0]
            elif keep.ndim == 2:  # unbatched (L, F)
                keep = keep[None]
            else:
                keep = np.swapaxes(keep, 0, 1)
            noise.append(dropout_noise(keep, float(self.p), self.dtype))
        return noise

    def _run(
        self, x: Any, states: list[Any] | None, mask: Any, noise: Any, weights: list[Any] | None = None
    ) -> Any:
        """Keras' layers one after the other, with dropout between them; batch-major. With
        ``weights`` (one list per layer, in ``trainable_variables`` order) the layers run by
        ``stateless_call`` on those values, so the backend can differentiate them."""
        hs, cs = [], []
        for layer, keras_layer in enumerate(self.layers):
            kwargs = dict(
                initial_state=None if states is None else states[layer], mask=mask, training=self.training
            )
            if weights is None:
                out, *final = keras_layer(x, **kwargs)
            else:
                fixed = [v.value for v in keras_layer.non_trainable_variables]
                (out, *final), _ = keras_layer.stateless_call(weights[layer], fixed, x, **kwargs)
            hs += final[0::2]
            cs += final[1::2]
            x = out
            if layer < self.num_layers - 1:
                if noise is not None:
                    x = out * noise[layer]
                elif self.training:
                    x = self.dropout(out, training=True)
        return x, hs, cs

    def _batch_major(self, value: Any, like: Any) -> np.ndarray:
        """An input-shaped array (the input or its gradient; packed: the data) batch-major."""
        if isinstance(like, lstm_ref.PackedSequence):
            data = value.data if isinstance(value, lstm_ref.PackedSequence) else value
            fields = (np.asarray(data), like.batch_sizes, like.sorted_indices, like.unsorted_indices)
            return pad_packed(lstm_ref.PackedSequence(*fields))[0]
        x = np.asarray(value)
        if x.ndim == 2:  # unbatched
            return x[None]
        return x if self.batch_first else np.swapaxes(x, 0, 1)

    def _from_batch_major(self, out: np.ndarray, like: Any) -> Any:
        if isinstance(like, lstm_ref.PackedSequence):
            return repack(np.swapaxes(out, 0, 1), like)
        if np.ndim(like) == 2:
            return out[0]
        return out if self.batch_first else np.swapaxes(out, 0, 1)

    def _mask(self, input: Any) -> Any:
        """Keras' mask for packed input (True up to each sequence's length), else None."""
        if not isinstance(input, lstm_ref.PackedSequence):
            return None
        x, lengths = pad_packed(input)
        return np.arange(x.shape[1])[None, :] < lengths[:, None]

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        x = self._batch_major(input, input)
        unbatched = not isinstance(input, lstm_ref.PackedSequence) and np.ndim(input) == 2
        states = self._initial_states(hx, unbatched)
        out, hs, cs = self._run(x, states, self._mask(input), self._noise(dropout_masks, input))
        h_n, c_n = np.stack([to_numpy(h) for h in hs]), np.stack([to_numpy(c) for c in cs])
        if unbatched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        return self._from_batch_major(to_numpy(out), input), (h_n, c_n)

    def vjp(
        self,
        input: Any,
        hx: Any,
        grad_output: Any,
        grad_h_n: Any,
        grad_c_n: Any,
        *,
        dropout_masks: Sequence[Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """torch.autograd.grad's answer from the backend's autodiff through the same layers,
        converted back to torch's names and layouts (a bias gradient serves both torch biases).
        Without given masks, training mode's dropout is Keras' own draw, made once outside."""
        x = self._batch_major(input, input)
        unbatched = not isinstance(input, lstm_ref.PackedSequence) and np.ndim(input) == 2
        d, hidden = 1 + self.bidirectional, self.config["hidden_size"]
        if hx is None:
            zeros = np.zeros((d * self.num_layers, x.shape[0], hidden), self.dtype)
            hx = (zeros[:, 0], zeros[:, 0]) if unbatched else (zeros, zeros.copy())
        h0, c0 = (np.asarray(v) for v in split_hx(hx, d * self.num_layers))
        noise = self._noise(dropout_masks, input)
        if noise is None and self.training and self.num_layers > 1:
            shape = (x.shape[0], x.shape[1], d * hidden)
            ones = np.ones(shape, self.dtype)
            noise = [self.dropout(ones, training=True) for _ in range(self.num_layers - 1)]
        counts = [len(layer.trainable_variables) for layer in self.layers]
        mask = self._mask(input)

        def forward(x: Any, h0: Any, c0: Any, *values: Any) -> tuple[Any, Any, Any]:
            if unbatched:
                h0, c0 = h0[:, None], c0[:, None]
            states = [
                [s for k in range(layer * d, (layer + 1) * d) for s in (h0[k], c0[k])]
                for layer in range(self.num_layers)
            ]
            weights, start = [], 0
            for n in counts:
                weights.append(list(values[start : start + n]))
                start += n
            out, hs, cs = self._run(x, states, mask, noise, weights)
            h_n, c_n = keras.ops.stack(hs), keras.ops.stack(cs)
            if unbatched:
                h_n, c_n = h_n[:, 0], c_n[:, 0]
            return out, h_n, c_n

        values = [to_numpy(v.value) for layer in self.layers for v in layer.trainable_variables]
        cotangents = [self._batch_major(grad_output, input), np.asarray(grad_h_n), np.asarray(grad_c_n)]
        grads = backend_vjp(forward, [x, h0, c0, *values], cotangents)
        g_input = self._from_batch_major(grads[0], input)
        result = {
            "input": g_input.data if isinstance(g_input, lstm_ref.PackedSequence) else g_input,
            "h0": grads[1],
            "c0": grads[2],
        }
        by_variable = dict(
            zip((id(v) for layer in self.layers for v in layer.trainable_variables), grads[3:], strict=True)
        )
        for layer, keras_layer in enumerate(self.layers):
            for direction, cell in enumerate(_cells(keras_layer)):
                s = param_suffix(layer, direction)
                result["weight_ih" + s] = by_variable[id(cell.kernel)].T
                result["weight_hh" + s] = by_variable[id(cell.recurrent_kernel)].T
                if self.config["bias"]:
                    result["bias_ih" + s] = by_variable[id(cell.bias)]
                    result["bias_hh" + s] = by_variable[id(cell.bias)].copy()
        return result
