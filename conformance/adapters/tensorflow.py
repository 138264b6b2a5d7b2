"""``--impl tensorflow``: TensorFlow's fused LSTM op ``tf.raw_ops.BlockLSTM``, one call per torch
layer and direction, behind lstm_ref's NumPy API; gradients through ``tf.GradientTape``.
(Keras on the TensorFlow backend, ``tf.keras``, is ``KERAS_BACKEND=tensorflow --impl keras``.)

The op is not a layer: it has no constructor, no weights of its own and no initializer, so the
adapter holds torch's weights (drawn first from TF's ``stateless_uniform`` in torch's range) and
converts them: one ``w`` = ``[weight_ih, weight_hh]`` transposed, ((input + hidden) x 4H), one
``b`` = ``bias_ih + bias_hh`` (zeros for ``bias=False``: the op always takes one), torch's gate
blocks i, f, g, o reordered to the op's i, c, f, o (c is torch's g). It calls the op with
``forget_bias=0`` and ``cell_clip=-1``: the op's defaults (1 and 3) add 1 to the forget gate and
clip the cell state, which torch does not. Input becomes time-major; packed input becomes padded
input plus lengths: the reverse direction runs on each sequence reversed within its own length
(``tf.reverse_sequence``) and the final state is the op's state at each sequence's last step
(``tf.gather_nd``). Between layers: TF's own ``tf.nn.dropout`` (its own draw), or the given
masks multiplied in (replay). The recurrence is always the op's.

Why ``BlockLSTM`` and not ``BlockLSTMV2`` (whose gate order is Keras'): TensorFlow registers
BlockLSTM's gradient for BlockLSTMV2 too, and it assumes v1's gate order, so V2's input and state
gradients are wrong (docs/compatibility.md). The op takes half and float32 only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

import lstm_ref
from lstm_ref.layout import dropout_noise, param_suffix

from . import require
from .stacking import StackedLSTM, repack, split_hx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up banner on stderr, not errors
require("tensorflow", "tensorflow")

import tensorflow as tf  # noqa: E402

OP = "tf.raw_ops.BlockLSTM"
DTYPE_ERROR = "Value for attr 'T' of {} is not in the list of allowed values: half, float"
NOT_A_LAYER = (
    f"{OP} is an op, not a layer: it has no constructor and no argument checks to compare with "
    "torch's (the adapter passes the arrays to it unchecked)"
)


def swap_f_g(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """torch's gate blocks i, f, g, o as the op's i, c, f, o (c is torch's g), and back: the
    two middle blocks trade places, so the same function converts both ways."""
    i, f, g, o = np.split(np.asarray(a), 4, axis=axis)
    return np.concatenate([i, g, f, o], axis=axis)


def op_weights(
    state: dict[str, np.ndarray], suffix: str, bias: bool, dtype: np.dtype[Any]
) -> tuple[Any, Any]:
    """One layer and direction's ``(w, b)`` in the op's layout, as TF constants."""
    w = swap_f_g(np.concatenate([state["weight_ih" + suffix], state["weight_hh" + suffix]], axis=1)).T
    b = state["bias_ih" + suffix] + state["bias_hh" + suffix] if bias else np.zeros(w.shape[1], dtype)
    return tf.constant(w.astype(dtype)), tf.constant(swap_f_g(b).astype(dtype))


def block_lstm(x: Any, h0: Any, c0: Any, w: Any, b: Any) -> Any:
    """The op on a time-major sequence: (i, cs, f, o, ci, co, h), each (T, N, H)."""
    no_peephole = tf.zeros(tf.shape(b)[0] // 4, b.dtype)
    return tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64),
        x=x,
        cs_prev=c0,
        h_prev=h0,
        w=w,
        wci=no_peephole,
        wcf=no_peephole,
        wco=no_peephole,
        b=b,
        forget_bias=0.0,
        cell_clip=-1.0,
        use_peephole=False,
    )


def _padded(data: Any, like: lstm_ref.PackedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Packed ``data`` (laid out as ``like``'s) as time-major padded data and lengths, in the
    caller's batch order."""
    data = data.data if isinstance(data, lstm_ref.PackedSequence) else data
    fields = (np.asarray(data), like.batch_sizes, like.sorted_indices, like.unsorted_indices)
    padded, lengths = lstm_ref.pad_packed_sequence(lstm_ref.PackedSequence(*fields))
    return padded, np.asarray(lengths)


def _reverse(x: Any, lengths: Any) -> Any:
    """Time reversed: the whole axis, or each sequence within its own length."""
    if lengths is None:
        return tf.reverse(x, axis=[0])
    return tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)


def _last(seq: Any, lengths: Any) -> Any:
    """The op's output at each sequence's last step: (N, H)."""
    if lengths is None:
        return seq[-1]
    batch = tf.range(tf.shape(seq)[1], dtype=tf.int64)
    return tf.gather_nd(seq, tf.stack([lengths - 1, batch], axis=1))


class TensorFlowLSTM(StackedLSTM):
    """torch.nn.LSTM's API over tf.raw_ops.BlockLSTM, one op call per layer and direction."""

    conformance_unsupported: ClassVar[dict[str, str]] = {
        "proj_size": f"{OP} has no projection (proj_size)",
        "float64": f"{OP} takes half and float32 only ('{DTYPE_ERROR.format('double')}')",
        "complex": f"{OP} takes half and float32 only ('{DTYPE_ERROR.format('complex64')}')",
        "errors": NOT_A_LAYER,
        "error_types": NOT_A_LAYER,
    }
    conformance_cell: ClassVar[str] = "conformance.adapters.tensorflow:TensorFlowLSTMCell"
    conformance_version: ClassVar[str] = f"tensorflow {tf.__version__} ({OP}, cell tf.raw_ops.LSTMBlockCell)"

    def _build(self, seed: int | None) -> None:
        self.seed = 0 if seed is None else int(seed)

    def _initial_state_dict(self) -> dict[str, np.ndarray]:
        """torch's initialisation, U(-1/sqrt(H), 1/sqrt(H)), drawn by TF (the op has none)."""
        from lstm_ref.layout import param_shapes

        c = self.config
        shapes = param_shapes(
            c["input_size"], c["hidden_size"], c["num_layers"], self.bidirectional, c["bias"]
        )
        bound = 1.0 / np.sqrt(c["hidden_size"]) if c["hidden_size"] else 0.0
        state = {}
        for k, (name, shape) in enumerate(shapes.items()):
            draw = tf.random.stateless_uniform(shape, [self.seed, k], -bound, bound, tf.float32)
            state[name] = draw.numpy().astype(self.dtype)
        self._state = state
        self._assign_weights()
        return state

    def _assign_weights(self) -> None:
        d = 1 + self.bidirectional
        self.weights = [
            op_weights(self._state, param_suffix(layer, direction), self.config["bias"], self.dtype)
            for layer in range(self.num_layers)
            for direction in range(d)
        ]

    # -- layouts ------------------------------------------------------------------------------

    def _time_major(self, value: Any, like: Any) -> tuple[Any, Any]:
        """An input-shaped array (the input or its gradient) as a time-major (T, N, F) TF
        tensor, and the lengths (packed input) or None."""
        if isinstance(like, lstm_ref.PackedSequence):
            padded, lengths = _padded(value, like)
            return tf.constant(padded), tf.constant(np.asarray(lengths), tf.int64)
        x = np.asarray(value)
        if x.ndim == 2:  # unbatched (L, F)
            x = x[:, None]
        elif self.batch_first:
            x = np.swapaxes(x, 0, 1)
        return tf.constant(np.ascontiguousarray(x)), None

    def _from_time_major(self, value: Any, like: Any) -> Any:
        """The inverse of ``_time_major`` for an output-shaped array (packed: a PackedSequence)."""
        out = np.asarray(value)
        if isinstance(like, lstm_ref.PackedSequence):
            return repack(out, like)
        if np.ndim(like) == 2:
            return out[:, 0]
        return np.swapaxes(out, 0, 1) if self.batch_first else out

    def _states(self, hx: Any, batch: int, unbatched: bool) -> tuple[Any, Any]:
        """torch's stacked (h_0, c_0), zeros when absent, as (D*layers, N, H) TF tensors."""
        states = (1 + self.bidirectional) * self.num_layers
        if hx is None:  # two tensors: a gradient for each
            shape = (states, batch, self.config["hidden_size"])
            return tf.zeros(shape, tf.as_dtype(self.dtype)), tf.zeros(shape, tf.as_dtype(self.dtype))
        h0, c0 = split_hx(hx, states)
        pair = []
        for value in (h0, c0):
            v = np.asarray(value)
            pair.append(tf.constant(v[:, None] if unbatched else v))
        return pair[0], pair[1]

    # -- the op, layer by layer ----------------------------------------------------------------

    def _forward(self, x: Any, h0: Any, c0: Any, weights: Any, lengths: Any, noise: Any) -> Any:
        """Time-major ``(output, h_n, c_n)`` from the op, layer by layer, dropout between."""
        d = 1 + self.bidirectional
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                k = layer * d + direction
                w, b = weights[k]
                seq = _reverse(x, lengths) if direction else x
                result = block_lstm(seq, h0[k], c0[k], w, b)
                h, c = result[6], result[1]
                hs.append(_last(h, lengths))
                cs.append(_last(c, lengths))
                outs.append(_reverse(h, lengths) if direction else h)
            x = outs[0] if d == 1 else tf.concat(outs, axis=2)
            if layer < self.num_layers - 1:
                if noise is not None:
                    x = x * noise[layer]
                elif self.training:
                    x = tf.nn.dropout(x, rate=self.p)
        return x, tf.stack(hs), tf.stack(cs)

    def _noise(self, dropout_masks: Sequence[Any] | None, like: Any) -> list[Any] | None:
        """The given time-major keep-masks as ``keep / (1-p)`` in the op's (T, N, F) layout."""
        if dropout_masks is None:
            return None
        noise = []
        for keep in dropout_masks:
            keep = np.asarray(keep)
            if isinstance(like, lstm_ref.PackedSequence):
                keep = _padded(keep, like)[0]
            elif keep.ndim == 2:  # unbatched
                keep = keep[:, None]
            noise.append(tf.constant(dropout_noise(keep, float(self.p), self.dtype)))
        return noise

    def _inputs(self, input: Any, hx: Any, dropout_masks: Sequence[Any] | None) -> tuple[Any, ...]:
        x, lengths = self._time_major(input, input)
        unbatched = not isinstance(input, lstm_ref.PackedSequence) and np.ndim(input) == 2
        h0, c0 = self._states(hx, int(x.shape[1]), unbatched)
        return x, h0, c0, lengths, self._noise(dropout_masks, input), unbatched

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        x, h0, c0, lengths, noise, unbatched = self._inputs(input, hx, dropout_masks)
        out, h_n, c_n = self._forward(x, h0, c0, self.weights, lengths, noise)
        h_n, c_n = h_n.numpy(), c_n.numpy()
        if unbatched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        return self._from_time_major(out.numpy(), input), (h_n, c_n)

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
        """torch.autograd.grad's answer from ``tf.GradientTape`` over the same forward (the op's
        registered gradient, BlockLSTMGrad), converted back to torch's names and layouts."""
        x, h0, c0, lengths, noise, unbatched = self._inputs(input, hx, dropout_masks)
        g_out, _ = self._time_major(grad_output, input)
        g_h, g_c = (np.asarray(g)[:, None] if unbatched else np.asarray(g) for g in (grad_h_n, grad_c_n))
        flat = [t for pair in self.weights for t in pair]
        sources = [x, h0, c0, *flat]
        with tf.GradientTape() as tape:
            tape.watch(sources)
            weights = [(flat[2 * k], flat[2 * k + 1]) for k in range(len(self.weights))]
            out, h_n, c_n = self._forward(x, h0, c0, weights, lengths, noise)
        grads = tape.gradient(
            [out, h_n, c_n],
            sources,
            output_gradients=[g_out, tf.constant(g_h), tf.constant(g_c)],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        gx, gh0, gc0 = (g.numpy() for g in grads[:3])
        g_input = self._from_time_major(gx, input)
        if isinstance(g_input, lstm_ref.PackedSequence):
            g_input = np.asarray(g_input.data)
        result = {"input": g_input, "h0": gh0, "c0": gc0}
        if unbatched:
            result["h0"], result["c0"] = gh0[:, 0], gc0[:, 0]
        d, hidden = 1 + self.bidirectional, self.config["hidden_size"]
        for k in range(len(self.weights)):
            s = param_suffix(k // d, k % d)
            features = self.config["input_size"] if k < d else d * hidden  # the layer's input
            gw = swap_f_g(grads[3 + 2 * k].numpy().T)  # (4H, F + H) in torch's gate order
            result["weight_ih" + s], result["weight_hh" + s] = gw[:, :features], gw[:, features:]
            if self.config["bias"]:
                gb = swap_f_g(grads[4 + 2 * k].numpy())
                result["bias_ih" + s], result["bias_hh" + s] = gb, gb.copy()
        return result


class TensorFlowLSTMCell:
    """``tf.raw_ops.LSTMBlockCell`` (the op BlockLSTM loops over) as torch.nn.LSTMCell."""

    def __init__(
        self, input_size: Any, hidden_size: Any, bias: Any = True, dtype: Any = np.float32, seed: int = 0
    ):
        self.dtype, self.bias, self.hidden_size = np.dtype(dtype), bias, hidden_size

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = {k + "_": np.asarray(v) for k, v in state_dict.items()}
        self.w, self.b = op_weights(state, "_", self.bias, self.dtype)

    def __call__(self, input: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(input)
        unbatched = x.ndim == 1
        x = x[None] if unbatched else x
        if hx is None:
            h = c = np.zeros((x.shape[0], self.hidden_size), self.dtype)
        else:
            h, c = (np.asarray(v)[None] if unbatched else np.asarray(v) for v in hx)
        no_peephole = tf.zeros(self.hidden_size, self.b.dtype)
        result = tf.raw_ops.LSTMBlockCell(
            x=x, cs_prev=c, h_prev=h, w=self.w, wci=no_peephole, wcf=no_peephole, wco=no_peephole,
            b=self.b, forget_bias=0.0, cell_clip=-1.0, use_peephole=False,
        )  # fmt: skip
        h_new, c_new = result[6].numpy(), result[1].numpy()
        return (h_new[0], c_new[0]) if unbatched else (h_new, c_new)
