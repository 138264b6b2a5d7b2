"""What the JAX adapters (flax, haiku) share for ``vjp``: the backward pass is ``jax.vjp`` of
the adapter's forward, written as a function of the input, the initial state and the weights
under torch's names (the adapter's layout conversions are traced with the library's call, so
every gradient arrives under torch's name: a summed bias gives both bias_ih and bias_hh)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax  # the adapters that import this module have required it
import numpy as np

from ..toolkit import Form, split_hx


def needs_masks(training: bool, p: float, num_layers: int, dropout_masks: Sequence[Any] | None) -> None:
    """A training-mode backward with a random dropout draw needs the forward's masks."""
    if training and 0 < p < 1 and num_layers > 1 and dropout_masks is None:
        raise ValueError("vjp in training mode with dropout needs dropout_masks")


def torch_vjp(
    forward: Callable[..., tuple[Any, Any, Any]], primals: tuple[Any, ...], cotangents: tuple[Any, ...]
) -> tuple[Any, ...]:
    """``jax.vjp(forward, *primals)`` applied to ``cotangents``, in torch's convention: for
    complex arrays torch gives ``J^H v`` where JAX's vjp gives ``v^T J``, so torch's is
    ``conj(vjp(conj(v)))`` (the same for real arrays)."""
    _, pullback = jax.vjp(forward, *primals)
    grads = pullback(tuple(np.conj(v) for v in cotangents))
    return tuple(jax.tree_util.tree_map(lambda g: np.conj(np.asarray(g)), grads))


def padded_vjp(
    model: Any,
    forward: Callable[..., tuple[Any, Any, Any]],
    input: Any,
    hx: Any,
    upstream: tuple[Any, Any, Any],
    dropout_masks: Sequence[Any] | None,
) -> dict[str, np.ndarray]:
    """lstm_ref.LSTM.vjp's result for ``model`` (a ``toolkit.StackedLSTM``), whose forward is
    ``forward(x, h0, c0, weights, lengths, noise)`` on time-major padded ``x`` with a batch
    axis and stacked states (``toolkit.Form``), with the weights by torch's name."""
    needs_masks(model.training, float(model.p), model.num_layers, dropout_masks)
    form = Form(input, model.batch_first)
    x, lengths = form.padded(input)
    noise = form.noise(dropout_masks, float(model.p), model.dtype)
    zeros = model.zero_state(x.shape[1])
    h0, c0 = zeros if hx is None else (form.state(v) for v in split_hx(hx, len(zeros[0])))
    grad_output, grad_h_n, grad_c_n = upstream
    cotangents = (
        form.padded(grad_output)[0].astype(model.dtype),
        np.zeros_like(zeros[0]) if grad_h_n is None else form.state(grad_h_n).astype(model.dtype),
        np.zeros_like(zeros[1]) if grad_c_n is None else form.state(grad_c_n).astype(model.dtype),
    )
    weights = {name: np.asarray(value) for name, value in model.state_dict().items()}

    def differentiated(x: Any, h0: Any, c0: Any, weights: dict[str, Any]) -> tuple[Any, Any, Any]:
        return forward(x, h0, c0, weights, lengths, noise)  # type: ignore[no-any-return]

    gx, gh, gc, gw = torch_vjp(differentiated, (x, h0, c0, weights), cotangents)
    result = {"input": form.data(gx), "h0": form.state_back(gh), "c0": form.state_back(gc)}
    return {**result, **{name: np.asarray(gw[name]) for name in weights}}
