"""``--impl keras``: Keras 3 ``keras.layers.LSTM`` (``Bidirectional`` for two directions), one
Keras layer per torch layer, behind lstm_ref's NumPy API.

Runs on the JAX backend unless the user set ``KERAS_BACKEND``. The adapter converts layouts
only: torch's weights to Keras' (kernels transposed, the two biases summed into Keras' one; the
gate order i, f, c, o is torch's i, f, g, o), time-major to batch-major, packed input to
padded input plus Keras' ``mask``, and back. Between layers it applies Keras' own
``keras.layers.Dropout`` (its own draw), or multiplies the given masks (replay). The recurrence is
always Keras'.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

import lstm_ref
from lstm_ref.layout import dropout_noise, param_suffix

from . import require, versions
from .stacking import StackedLSTM, repack, split_hx

os.environ.setdefault("KERAS_BACKEND", "jax")
require("keras", "keras")

import keras  # noqa: E402


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
    conformance_version: ClassVar[str] = versions("keras", "jax", "jaxlib")

    def _build(self, seed: int | None) -> None:
        self.dropout = keras.layers.Dropout(self.p, seed=seed)
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
        keras_layer = keras.layers.Bidirectional(lstm) if self.bidirectional else lstm
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

    def _run(self, x: Any, states: list[Any] | None, mask: Any, noise: list[np.ndarray] | None) -> Any:
        """Keras' layers one after the other, with dropout between them; batch-major."""
        hs, cs = [], []
        for layer, keras_layer in enumerate(self.layers):
            initial = None if states is None else states[layer]
            out, *final = keras_layer(x, initial_state=initial, mask=mask, training=self.training)
            hs += final[0::2]
            cs += final[1::2]
            x = out
            if layer < self.num_layers - 1:
                if noise is not None:
                    x = out * noise[layer]
                elif self.training:
                    x = self.dropout(out, training=True)
        return x, hs, cs

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        packed = isinstance(input, lstm_ref.PackedSequence)
        mask = None
        if packed:
            x, lengths = pad_packed(input)
            mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
        else:
            x = np.asarray(input)
        unbatched = not packed and x.ndim == 2
        if unbatched:
            x = x[None]
        elif not packed and not self.batch_first and x.ndim == 3:
            x = np.swapaxes(x, 0, 1)
        out, hs, cs = self._run(
            x, self._initial_states(hx, unbatched), mask, self._noise(dropout_masks, input)
        )
        out = to_numpy(out)
        h_n, c_n = np.stack([to_numpy(h) for h in hs]), np.stack([to_numpy(c) for c in cs])
        if packed:
            return repack(np.swapaxes(out, 0, 1), input), (h_n, c_n)  # Keras is batch-major
        if unbatched:
            return out[0], (h_n[:, 0], c_n[:, 0])
        return (out if self.batch_first else np.swapaxes(out, 0, 1)), (h_n, c_n)
