"""``--impl flax``: Flax nnx ``OptimizedLSTMCell`` under ``nnx.RNN`` (``nnx.Bidirectional`` for two
directions), one per torch layer, behind lstm_ref's NumPy API; ``nnx.LSTMCell`` is the cell.

The adapter converts layouts only: torch's weights to Flax's (kernels transposed, the two biases
summed into the one Flax's hidden Linear has; zeros there for ``bias=False``: Flax's cell always
has one), torch's ``(h, c)`` to Flax's carry ``(c, h)``, packed input to padded input plus
``seq_lengths`` (Flax flips each sequence within its length for the reverse direction) and back.
Between layers it applies Flax's own ``nnx.Dropout`` (its own draw) or multiplies the given masks.
The recurrence is always Flax's, run under ``nnx.jit`` as a Flax user would.

JAX creates no 64-bit arrays unless ``jax_enable_x64`` is on (a float64 ``param_dtype`` silently
gives float32 parameters), so this module turns it on, as every Flax user who wants float64 must.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

import lstm_ref
from lstm_ref.layout import GATES, dropout_noise, gate_rows, param_suffix

from ..toolkit import StackedLSTM, repack, split_hx
from . import require, versions

require("flax", "jax", "flax")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]

from flax import nnx  # noqa: E402

from .jax_autodiff import padded_vjp  # noqa: E402


def to_numpy(value: Any) -> np.ndarray:
    return np.array(value)


def _call_layer(rnn: Any, x: Any, carry: Any, seq_lengths: Any, time_major: bool) -> Any:
    """One Flax layer (RNN or Bidirectional), returning (carry, outputs)."""
    return rnn(x, initial_carry=carry, seq_lengths=seq_lengths, time_major=time_major, return_carry=True)


_run_layer = nnx.jit(_call_layer, static_argnames=("time_major",))  # as a Flax user runs it


def _cells(rnn: Any) -> list[Any]:
    """The OptimizedLSTMCell of each direction of one layer (forward first)."""
    layer: Any = rnn
    if isinstance(rnn, nnx.Bidirectional):
        return [layer.forward_rnn.cell, layer.backward_rnn.cell]
    return [layer.cell]


def _flax_weights(state: dict[str, Any], layer: int, direction: int) -> dict[tuple[str, str], Any]:
    """One direction's torch-named weights (NumPy, or JAX tracers for vjp) as its cell's:
    kernels transposed, Flax's one bias = torch's two summed, or zeros for bias=False."""
    s = param_suffix(layer, direction)
    w_ih, w_hh = jax.numpy.asarray(state["weight_ih" + s]), jax.numpy.asarray(state["weight_hh" + s])
    if "bias_ih" + s in state:
        bias = jax.numpy.asarray(state["bias_ih" + s] + state["bias_hh" + s])
    else:
        bias = jax.numpy.zeros(w_hh.shape[0], w_hh.dtype)
    return {("dense_i", "kernel"): w_ih.T, ("dense_h", "kernel"): w_hh.T, ("dense_h", "bias"): bias}


def _load(rnn: Any, state: dict[str, Any], layer: int) -> None:
    """torch-named weights into one Flax layer's cells."""
    for direction, cell in enumerate(_cells(rnn)):
        for (linear, name), value in _flax_weights(state, layer, direction).items():
            getattr(getattr(cell, linear), name).value = value


def _with_weights(rnn: Any, state: dict[str, Any], layer: int) -> Any:
    """A copy of one Flax layer holding torch-named weights, made functionally (split, new
    values, merge: Flax refuses to mutate a Variable inside jax.vjp's trace)."""
    graphdef, variables = nnx.split(rnn)
    prefixes = ("['forward_rnn']", "['backward_rnn']") if isinstance(rnn, nnx.Bidirectional) else ("",)
    new = {
        f"{prefix}['cell']['{linear}']['{name}'].value": value
        for direction, prefix in enumerate(prefixes)
        for (linear, name), value in _flax_weights(state, layer, direction).items()
    }
    keystr = jax.tree_util.keystr
    variables = jax.tree_util.tree_map_with_path(lambda p, leaf: new.get(keystr(p), leaf), variables)
    return nnx.merge(graphdef, variables)


class FlaxLSTM(StackedLSTM):
    """torch.nn.LSTM's API over a stack of Flax nnx RNN layers."""

    conformance_unsupported: ClassVar[dict[str, str]] = {
        "proj_size": "Flax's LSTM cells (nnx.LSTMCell, nnx.OptimizedLSTMCell) have no projection (proj_size)",
    }
    conformance_cell: ClassVar[str] = "conformance.adapters.flax:FlaxLSTMCell"
    conformance_version: ClassVar[str] = versions("flax", "jax", "jaxlib")

    def _build(self, seed: int | None) -> None:
        rngs = nnx.Rngs(0 if seed is None else seed)
        self.dropout = nnx.Dropout(self.p, rngs=rngs)
        self.layers = [self._layer(layer, rngs) for layer in range(self.num_layers)]

    def _layer(self, layer: int, rngs: Any) -> Any:
        hidden = self.config["hidden_size"]
        features = self.config["input_size"] if layer == 0 else (1 + self.bidirectional) * hidden

        def rnn() -> Any:
            cell = nnx.OptimizedLSTMCell(features, hidden, param_dtype=self.dtype, rngs=rngs)
            return nnx.RNN(cell, rngs=rngs)

        return nnx.Bidirectional(rnn(), rnn(), rngs=rngs) if self.bidirectional else rnn()

    def _initial_state_dict(self) -> dict[str, np.ndarray]:
        """Flax's own initial weights in torch's names (bias in bias_hh, zeros in bias_ih)."""
        state: dict[str, np.ndarray] = {}
        for layer, rnn in enumerate(self.layers):
            for direction, cell in enumerate(_cells(rnn)):
                suffix = param_suffix(layer, direction)
                state["weight_ih" + suffix] = to_numpy(cell.dense_i.kernel.value).T
                state["weight_hh" + suffix] = to_numpy(cell.dense_h.kernel.value).T
                if self.config["bias"]:
                    state["bias_ih" + suffix] = np.zeros_like(to_numpy(cell.dense_h.bias.value))
                    state["bias_hh" + suffix] = to_numpy(cell.dense_h.bias.value)
        return state

    def _assign_weights(self) -> None:
        for layer, rnn in enumerate(self.layers):
            _load(rnn, self._state, layer)

    def _carries(self, hx: Any) -> list[Any] | None:
        """torch's (D*layers, [N,] H) pair as Flax's carries ``(c, h)``, per layer."""
        if hx is None:
            return None
        h0, c0 = split_hx(hx, (1 + self.bidirectional) * self.num_layers)
        d = 1 + self.bidirectional
        carries = []
        for layer in range(self.num_layers):
            per_dir = [(None if c0 is None else c0[k], h0[k]) for k in range(layer * d, (layer + 1) * d)]
            carries.append(tuple(per_dir) if self.bidirectional else per_dir[0])
        return carries

    def _noise(self, dropout_masks: Sequence[Any] | None, like: Any) -> list[np.ndarray] | None:
        """The given time-major keep-masks as noise ``keep / (1-p)`` in the layout of ``like``."""
        if dropout_masks is None:
            return None
        noise = []
        for keep in dropout_masks:
            keep = np.asarray(keep)
            if isinstance(like, lstm_ref.PackedSequence):
                fields = (keep, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
                keep = lstm_ref.pad_packed_sequence(lstm_ref.PackedSequence(*fields))[0]
            elif keep.ndim == 3 and self.batch_first:
                keep = np.swapaxes(keep, 0, 1)
            noise.append(dropout_noise(keep, float(self.p), self.dtype))
        return noise

    def _run(
        self, x: Any, carries: Any, lengths: Any, time_major: bool, noise: Any, layers: Any = None
    ) -> Any:
        """Flax's layers one after the other, with dropout between them (``layers``: the
        vjp's copies, called without nnx.jit inside jax.vjp's trace)."""
        finals = []
        for layer, rnn in enumerate(self.layers if layers is None else layers):
            carry = None if carries is None else carries[layer]
            run = _run_layer if layers is None else _call_layer
            final, out = run(rnn, x, carry, lengths, time_major)
            finals += list(final) if self.bidirectional else [final]
            x = out
            if layer < self.num_layers - 1:
                if noise is not None:
                    x = out * noise[layer]
                elif self.training:
                    x = self.dropout(out, deterministic=False)
        return x, finals

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        packed = isinstance(input, lstm_ref.PackedSequence)
        lengths = None
        if packed:
            x, lengths = lstm_ref.pad_packed_sequence(input)
        else:
            x = np.asarray(input)
        time_major = packed or x.ndim != 3 or not self.batch_first
        noise = self._noise(dropout_masks, input)
        out, finals = self._run(x, self._carries(hx), lengths, time_major, noise)
        h_n = np.stack([to_numpy(h) for _, h in finals])
        c_n = np.stack([to_numpy(c) for c, _ in finals])
        out = to_numpy(out)
        return (repack(out, input) if packed else out), (h_n, c_n)

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
        """jax.vjp of this forward, with the weights under torch's names as arguments."""
        upstream = (grad_output, grad_h_n, grad_c_n)
        return padded_vjp(self, self._forward_of_weights, input, hx, upstream, dropout_masks)

    def _forward_of_weights(self, x: Any, h0: Any, c0: Any, weights: Any, lengths: Any, noise: Any) -> Any:
        """``_run`` on time-major padded input, on copies of the layers (made inside the trace)
        holding ``weights``; returns the output and the stacked ``h_n``, ``c_n``."""
        d = 1 + self.bidirectional
        carries = []
        for layer in range(self.num_layers):
            per_dir = [(c0[k], h0[k]) for k in range(layer * d, (layer + 1) * d)]
            carries.append(tuple(per_dir) if self.bidirectional else per_dir[0])
        layers = [_with_weights(rnn, weights, layer) for layer, rnn in enumerate(self.layers)]
        out, finals = self._run(x, carries, lengths, True, noise, layers)
        stack = jax.numpy.stack
        return out, stack([h for _, h in finals]), stack([c for c, _ in finals])


class FlaxLSTMCell:
    """nnx.LSTMCell (one Linear per gate: ii/if/ig/io without bias, hi/hf/hg/ho with) as
    torch.nn.LSTMCell."""

    def __init__(
        self, input_size: Any, hidden_size: Any, bias: Any = True, dtype: Any = np.float32, seed: int = 0
    ):
        self.dtype, self.bias = np.dtype(dtype), bias
        self.cell = nnx.LSTMCell(input_size, hidden_size, param_dtype=self.dtype, rngs=nnx.Rngs(seed))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        hidden = self.cell.hidden_features
        w_ih, w_hh = (
            np.asarray(state_dict["weight_ih"], self.dtype),
            np.asarray(state_dict["weight_hh"], self.dtype),
        )
        bias = np.zeros(4 * hidden, self.dtype)
        if self.bias:
            bias = np.asarray(state_dict["bias_ih"], self.dtype) + np.asarray(
                state_dict["bias_hh"], self.dtype
            )
        for gate, (i_name, h_name) in zip(
            GATES, (("ii", "hi"), ("if_", "hf"), ("ig", "hg"), ("io", "ho")), strict=True
        ):
            rows = gate_rows(gate, hidden)
            getattr(self.cell, i_name).kernel.value = jax.numpy.asarray(w_ih[rows].T)
            getattr(self.cell, h_name).kernel.value = jax.numpy.asarray(w_hh[rows].T)
            getattr(self.cell, h_name).bias.value = jax.numpy.asarray(bias[rows])

    def __call__(self, input: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(input)
        carry = self.cell.initialize_carry(x.shape, rngs=nnx.Rngs(0)) if hx is None else (hx[1], hx[0])
        (c, h), _ = self.cell(carry, jax.numpy.asarray(x))
        return to_numpy(h), to_numpy(c)
