"""``--impl haiku``: dm-haiku's ``hk.LSTM`` under ``hk.dynamic_unroll`` (in ``hk.transform``,
applied under ``jax.jit``), one per torch layer and direction, behind lstm_ref's NumPy API;
one ``hk.LSTM`` step is the cell. Gradients are ``jax.vjp``'s.

The adapter converts layouts only (conformance.toolkit does the stacking): Haiku's one Linear
on ``[x, h]`` has ``w = [weight_ih, weight_hh].T`` and one bias, with the gate blocks in the
order i, g, f, o, and ``hk.LSTM`` adds a fixed 1 to the forget gate's pre-activation in every
call, so Haiku's bias is ``bias_ih + bias_hh`` reordered, minus 1 in the forget block (and -1
there alone for ``bias=False``: Haiku's Linear always has a bias). Haiku knows no lengths and
runs forward only: packed input runs padded, each sequence's final state is taken at its own
length, and the reverse direction runs on each sequence reversed within its length. Between
layers: ``hk.dropout`` (its own draw) or the given masks. Like flax, the module turns on
``jax_enable_x64`` (float64 otherwise silently becomes float32).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from lstm_ref.layout import gate_rows, param_suffix

from ..toolkit import LayerByLayerLSTM, from_library_gates, last_at_lengths, to_library_gates
from . import require, versions

require("haiku", "jax", "haiku")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]

import haiku as hk  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from .jax_autodiff import padded_vjp  # noqa: E402

ORDER = "igfo"  # hk.LSTM: `i, g, f, o = jnp.split(gated, 4, axis=-1)`


@functools.cache
def _unroll(hidden: Any, all_states: bool) -> Any:
    """``hk.dynamic_unroll(hk.LSTM(hidden))``, transformed: ``apply(params, x, h0, c0)`` ->
    (outputs, final state, or every step's state with ``all_states``); ``h0`` None starts from
    Haiku's own initial state (the batch of ``x``)."""

    def unroll(x: Any, h0: Any, c0: Any) -> Any:
        core = hk.LSTM(hidden, name="lstm")
        state = core.initial_state(x.shape[1]) if h0 is None else hk.LSTMState(h0, c0)
        return hk.dynamic_unroll(core, x, state, return_all_states=all_states)  # type: ignore[no-untyped-call]

    return hk.without_apply_rng(hk.transform(unroll))


@functools.cache
def _apply_unroll(hidden: int, all_states: bool) -> Any:
    """``_unroll``'s apply under jax.jit, as a Haiku user runs it."""
    return jax.jit(_unroll(hidden, all_states).apply)


@functools.cache
def _step(hidden: int) -> Any:
    """One ``hk.LSTM`` step, transformed and jitted: ``apply(params, x, h, c)`` -> ``(h, LSTMState)``."""
    step: Any = hk.transform(lambda x, h, c: hk.LSTM(hidden, name="lstm")(x, hk.LSTMState(h, c)))
    return jax.jit(hk.without_apply_rng(step).apply)


def _forget_one(hidden: int, dtype: Any) -> np.ndarray:
    """1 in torch's forget block: what hk.LSTM adds to the forget gate's pre-activation."""
    one = np.zeros(4 * hidden, dtype)
    one[gate_rows("f", hidden)] = 1
    return one


def to_haiku(weights: dict[str, Any], hidden: int, dtype: Any) -> dict[str, dict[str, Any]]:
    """One layer and direction's torch-named weights (toolkit.layer_weights) as hk.LSTM's."""
    w = jnp.concatenate([weights["weight_ih"], weights["weight_hh"]], axis=1)
    bias = weights["bias_ih"] + weights["bias_hh"] if "bias_ih" in weights else np.zeros(4 * hidden, dtype)
    b = bias - _forget_one(hidden, dtype)
    return {"lstm/linear": {"w": to_library_gates(w, ORDER).T, "b": to_library_gates(b, ORDER)}}


def from_haiku(
    params: dict[str, dict[str, Any]], features: int, bias: bool, dtype: Any
) -> dict[str, np.ndarray]:
    """hk.LSTM's parameters in torch's names (its bias, with the fixed 1, in bias_ih)."""
    w = from_library_gates(np.asarray(params["lstm/linear"]["w"]).T, ORDER).astype(dtype)
    weights = {"weight_ih": w[:, :features], "weight_hh": w[:, features:]}
    if bias:
        b = from_library_gates(np.asarray(params["lstm/linear"]["b"]), ORDER).astype(dtype)
        weights["bias_ih"] = b + _forget_one(len(b) // 4, dtype)
        weights["bias_hh"] = np.zeros_like(b)
    return weights


def _real(dtype: np.dtype) -> np.dtype:
    """Haiku's initializers draw real numbers: complex weights start from the real part's type."""
    return np.dtype(np.finfo(dtype).dtype) if dtype.kind == "c" else dtype


class HaikuLSTM(LayerByLayerLSTM):
    """torch.nn.LSTM's API over hk.LSTM, one per layer and direction."""

    conformance_unsupported: ClassVar[dict[str, str]] = {
        "proj_size": "hk.LSTM has no projection (proj_size)",
    }
    conformance_cell: ClassVar[str] = "conformance.adapters.haiku:HaikuLSTMCell"
    conformance_version: ClassVar[str] = versions("dm-haiku", "jax", "jaxlib")

    def _build(self, seed: int | None) -> None:
        self.key = jax.random.PRNGKey(0 if seed is None else seed)

    def _initial_state_dict(self) -> dict[str, np.ndarray]:
        """Haiku's own initial weights (hk.Linear's truncated normal, zero bias), torch-named."""
        hidden = self.config["hidden_size"]
        state: dict[str, np.ndarray] = {}
        for layer in range(self.num_layers):
            features = self.layer_features(layer)
            # hk.LSTM has no input size: Haiku reads it off the first input
            x = np.zeros((1, 1, features), _real(self.dtype))
            for direction in range(self.directions):
                self.key, key = jax.random.split(self.key)
                params = _unroll(hidden, False).init(key, x, None, None)
                weights = from_haiku(params, features, bool(self.config["bias"]), self.dtype)
                state.update({n + param_suffix(layer, direction): v for n, v in weights.items()})
        return state

    def run_direction(
        self,
        layer: int,
        direction: int,
        weights: dict[str, Any],
        x: Any,
        state: tuple[Any, Any],
        lengths: Any,
    ) -> tuple[Any, tuple[Any, Any]]:
        hidden = self.config["hidden_size"]
        params = to_haiku(weights, hidden, self.dtype)
        out, final = _apply_unroll(hidden, lengths is not None)(params, x, *state)
        if lengths is None:
            return out, (final.hidden, final.cell)
        return out, (last_at_lengths(final.hidden, lengths), last_at_lengths(final.cell, lengths))

    def library_dropout(self, x: Any) -> Any:
        self.key, key = jax.random.split(self.key)
        return hk.dropout(key, self.p, x)

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
        """jax.vjp of this forward (the stack, with the weights under torch's names)."""
        upstream = (grad_output, grad_h_n, grad_c_n)
        return padded_vjp(self, self._forward_of_weights, input, hx, upstream, dropout_masks)

    def _forward_of_weights(self, x: Any, h0: Any, c0: Any, weights: Any, lengths: Any, noise: Any) -> Any:
        return self.forward_padded(weights, x, h0, c0, lengths, noise)


class HaikuLSTMCell:
    """One hk.LSTM step as torch.nn.LSTMCell."""

    def __init__(
        self, input_size: Any, hidden_size: Any, bias: Any = True, dtype: Any = np.float32, seed: int = 0
    ) -> None:
        self.hidden, self.bias, self.dtype = hidden_size, bias, np.dtype(dtype)
        self.params: Any = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        weights = {name: np.asarray(value, self.dtype) for name, value in state_dict.items()}
        self.params = to_haiku(weights, self.hidden, self.dtype)

    def __call__(self, input: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(input)
        if hx is None:
            hx = (np.zeros((*x.shape[:-1], self.hidden), x.dtype),) * 2
        _, state = _step(self.hidden)(self.params, x, hx[0], hx[1])
        return np.asarray(state.hidden), np.asarray(state.cell)
