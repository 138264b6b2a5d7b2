"""Backpropagation through time: the vector-Jacobian product of ``LSTM.forward``.

``vjp(m, input, hx, grad_output, grad_h_n, grad_c_n, dropout_masks=...)`` returns
what ``torch.autograd.grad`` returns for the same forward and the same upstream
gradients: the gradient of the input (or of ``PackedSequence.data``), of h0 and
c0, and of every parameter under its state_dict name.

How it is organised (mirrors ``functional.py``):

1. One forward pass through ``functional.run_stack`` with its ``record`` hook,
   keeping per row the activated gates, ``c`` and (when projecting) ``h_cell``;
   the layer outputs give ``h``.  Rows are the packed time-major rows, so dense,
   unbatched and packed input share one code path here too.
2. Per direction, whole-sequence precomputation of the local derivatives
   (``_local_factors``), then one sweep backwards in time (``_sweep``) whose only
   matrix product per step is ``dh_prev = dP @ W_hh`` (plus ``@ W_hr`` when
   projecting).  Everything else is elementwise.
3. Weight, bias and input gradients with whole-sequence matrix products:
   ``dW_ih = dP^T X``, ``dW_hh = dP^T H_prev``, ``dW_hr = dH^T H_cell``,
   ``dX = dP W_ih`` (both directions of a layer in one product).

The backward depends on the forward only through ``run_stack``'s documented
hooks (activated gates in the order i, f, o, g; per-layer outputs), not on its
internal weight layout: it takes the torch-named parameters, reorders their gate
blocks to i, f, o, g (``_BackwardWeights``), and ``dP`` is the gradient of the true
pre-activation ``z`` in that order.  ``functional.to_torch_gate_order`` puts weight
gradients back in torch's i, f, g, o order.

Complex dtypes: torch's autograd returns ``J^H v`` (conjugate Wirtinger
convention); the LSTM is holomorphic, so that is ``conj(J^T conj(v))``.  We run
the plain transposed product on ``conj(v)`` and conjugate the result.

Dropout: the gradient flows through ``keep / (1-p)`` exactly as in the forward.
In training mode with ``0 < p < 1`` (and more than one layer) the masks must be
given: torch differentiates through the masks its own forward drew, and a VJP
against freshly drawn masks would be meaningless, so ``dropout_masks=None``
raises ``ValueError`` there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .functional import StepRecorder, run_stack, to_prepared_gate_order, to_torch_gate_order
from .layout import param_suffix
from .packing import PackedSequence

if TYPE_CHECKING:
    from .module import LSTM, _Call


@dataclass(frozen=True)
class _BackwardWeights:
    """One direction's weights as the backward multiplies by them (gates i, f, o, g)."""

    w_hh: np.ndarray  # (4H, H_out): dh_prev = dP @ w_hh
    w_hr: np.ndarray | None  # (proj, H): dh_cell = dh @ w_hr


def _backward_weights(m: LSTM) -> tuple[list[list[_BackwardWeights]], list[np.ndarray]]:
    """Per layer and direction ``_BackwardWeights``; per layer W_ih of all directions (D*4H, F)."""
    params = m._params
    directions, w_ih = [], []
    for layer in range(int(m.num_layers)):
        suffixes = [param_suffix(layer, direction) for direction in range(m.num_directions)]
        directions.append(
            [
                _BackwardWeights(
                    to_prepared_gate_order(params["weight_hh" + suffix]),
                    params["weight_hr" + suffix] if m.proj_size else None,
                )
                for suffix in suffixes
            ]
        )
        w_ih.append(np.concatenate([to_prepared_gate_order(params["weight_ih" + s]) for s in suffixes]))
    return directions, w_ih


# -- forward with a tape ----------------------------------------------------------


@dataclass
class _Tape:
    """What one direction's backward needs, per packed row."""

    gates: np.ndarray  # (S, 4H) activated, in the recorder's order i, f, o, g
    c: np.ndarray  # (S, H) cell state after the step
    h_cell: np.ndarray | None  # (S, H) o*tanh(c) before projection, only when projecting


def _recorder(tape: _Tape) -> StepRecorder:
    def record(rows: slice, gates: np.ndarray, c: np.ndarray, h_cell: np.ndarray, h: np.ndarray) -> None:
        tape.gates[rows] = gates
        tape.c[rows] = c
        if tape.h_cell is not None:
            tape.h_cell[rows] = h_cell

    return record


@dataclass
class _Forward:
    layer_inputs: list[np.ndarray]  # the input each layer read (after dropout)
    layer_outputs: list[np.ndarray]  # (S, D*H_out) before dropout
    tapes: dict[tuple[int, int], _Tape]


def _forward(m: LSTM, call: _Call, noise: list[np.ndarray] | None) -> _Forward:
    rows, hidden, dtype = call.data.shape[0], m.hidden_size, m.dtype
    tapes: dict[tuple[int, int], _Tape] = {}

    def record(layer: int, direction: int) -> StepRecorder:
        tape = _Tape(
            np.empty((rows, 4 * hidden), dtype),
            np.empty((rows, hidden), dtype),
            np.empty((rows, hidden), dtype) if m.proj_size else None,
        )
        tapes[layer, direction] = tape
        return _recorder(tape)

    outputs: list[np.ndarray] = []
    run_stack(call.data, call.batch_sizes, call.h0, call.c0, m._layers, noise, record, outputs)
    inputs = [call.data]
    for k in range(len(outputs) - 1):
        inputs.append(outputs[k] if noise is None else outputs[k] * noise[k])
    return _Forward(inputs, outputs, tapes)


# -- one direction ------------------------------------------------------------------


def previous_rows(batch_sizes: np.ndarray, reverse: bool) -> np.ndarray:
    """For each packed row, the row holding its previous state.

    Indexes ``concatenate([per_row_states, initial_states])``: a value ``S + b``
    means slot b's initial state (h0/c0), as in ``functional.run_direction``.
    """
    sizes = np.asarray(batch_sizes, dtype=np.int64)
    total = int(sizes.sum())
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    step = np.repeat(np.arange(sizes.size), sizes)
    slot = np.arange(total) - offsets[step]
    if reverse:
        neighbour = np.minimum(step + 1, sizes.size - 1)
        valid = (step + 1 < sizes.size) & (slot < sizes[neighbour])
    else:
        neighbour = np.maximum(step - 1, 0)
        valid = step > 0
    result: np.ndarray = np.where(valid, offsets[neighbour] + slot, total + slot)
    return result


@dataclass
class _Factors:
    """Whole-sequence local derivatives of one direction (rows as the tape)."""

    k: np.ndarray  # (S, 4H): dP = [dc, dc, dh_cell, dc] * k, blockwise
    o_dtanh: np.ndarray  # (S, H): o * (1 - tanh(c)^2), dh_cell -> dc
    f: np.ndarray  # (S, H): forget gate, dc -> dc_prev


def _local_factors(tape: _Tape, c_prev: np.ndarray) -> _Factors:
    hidden = tape.c.shape[1]
    gates = tape.gates
    i, f, o, g = (gates[:, j * hidden : (j + 1) * hidden] for j in range(4))
    k = np.empty_like(gates)
    sigmoid, k_sigmoid = gates[:, : 3 * hidden], k[:, : 3 * hidden]
    np.subtract(1, sigmoid, out=k_sigmoid)  # sigmoid' = a(1-a)
    k_sigmoid *= sigmoid
    k[:, :hidden] *= g
    k[:, hidden : 2 * hidden] *= c_prev
    o_dtanh = np.tanh(tape.c)
    k[:, 2 * hidden : 3 * hidden] *= o_dtanh
    k_g = k[:, 3 * hidden :]
    np.multiply(g, g, out=k_g)  # tanh' = 1 - g^2
    np.subtract(1, k_g, out=k_g)
    k_g *= i
    np.multiply(o_dtanh, o_dtanh, out=o_dtanh)
    np.subtract(1, o_dtanh, out=o_dtanh)
    o_dtanh *= o
    return _Factors(k, o_dtanh, f)


def _sweep(
    factors: _Factors,
    weights: _BackwardWeights,
    batch_sizes: np.ndarray,
    reverse: bool,
    grad_out: np.ndarray,
    dh: np.ndarray,
    dc: np.ndarray,
    d_gates: np.ndarray,
    d_gates4: np.ndarray,
    d_h_out: np.ndarray | None,
) -> None:
    """Backwards in time through one direction, in place.

    grad_out: (S, H_out) upstream gradient of the direction's per-row output.
    dh, dc: (B, H_out), (B, H) hold the gradient of h_n, c_n on entry and of
    h0, c0 on return.
    d_gates: (S, 4H) receives dP, the gradient of the pre-activation (i, f, o, g);
    d_gates4 is the same memory viewed (S, 4, H).
    d_h_out: (S, H_out) receives the gradient of each row's h, when projecting.
    """
    hidden = dc.shape[1]
    w_hh, w_hr = weights.w_hh, weights.w_hr
    batch = dc.shape[0]
    dh_cell_buffer = np.empty((batch, hidden), dtype=dc.dtype)
    dc_buffer = np.empty((batch, hidden), dtype=dc.dtype)
    dh_buffer = np.empty_like(dh)
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    # the forward ran forward in time (or backward when reverse); we undo it
    steps = range(len(batch_sizes)) if reverse else range(len(batch_sizes) - 1, -1, -1)
    k4 = factors.k.reshape(-1, 4, hidden)
    for t in steps:
        n = int(batch_sizes[t])
        rows = slice(int(offsets[t]), int(offsets[t]) + n)
        dh_out = dh_buffer[:n]
        np.add(dh[:n], grad_out[rows], out=dh_out)
        if w_hr is None:
            dh_cell = dh_out
        else:
            assert d_h_out is not None
            d_h_out[rows] = dh_out
            dh_cell = dh_cell_buffer[:n]
            np.matmul(dh_out, w_hr, out=dh_cell)
        _cell_backward(
            dh_cell, dc[:n], k4[rows], factors.o_dtanh[rows], factors.f[rows], d_gates4[rows], dc_buffer[:n]
        )
        np.matmul(d_gates[rows], w_hh, out=dh[:n])


def _cell_backward(
    dh_cell: np.ndarray,
    dc: np.ndarray,
    k: np.ndarray,
    o_dtanh: np.ndarray,
    f: np.ndarray,
    d_gates: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """One step's elementwise backward, in place (the recurrent matmul is the caller's).

    dh_cell: (n, H) gradient of ``o*tanh(c)``; dc: (n, H) gradient of the new c on
    entry, of the previous c on return; k, o_dtanh, f: this step's ``_Factors``
    rows (k viewed (n, 4, H)); d_gates: (n, 4, H) receives the gate gradients.
    """
    dc_total = scratch
    np.multiply(dh_cell, o_dtanh, out=dc_total)
    dc_total += dc
    np.multiply(k[:, :2], dc_total[:, None, :], out=d_gates[:, :2])  # i, f
    np.multiply(k[:, 2], dh_cell, out=d_gates[:, 2])  # o
    np.multiply(k[:, 3], dc_total, out=d_gates[:, 3])  # g
    np.multiply(dc_total, f, out=dc)


# -- a layer and the stack ----------------------------------------------------------------


def _direction_backward(
    call: _Call,
    tape: _Tape,
    weights: _BackwardWeights,
    reverse: bool,
    h: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    grad_out: np.ndarray,
    d_h: np.ndarray,
    d_c: np.ndarray,
    d_gates: np.ndarray,
    d_gates4: np.ndarray,
) -> dict[str, np.ndarray]:
    """Backward through one direction of one layer.

    h: (S, H_out) the direction's output rows; h0, c0: its initial state.
    grad_out: (S, H_out) gradient of h.  d_h, d_c: gradient of h_n, c_n on entry,
    of h0, c0 on return.  d_gates (S, 4H), viewed (S, 4, H) as d_gates4, receives
    the pre-activation gradients.  Returns this direction's weight_hh, bias and
    weight_hr gradients, under their names without the layer suffix.
    """
    prev = previous_rows(call.batch_sizes, reverse)
    h_prev = np.concatenate([h, h0])[prev]
    c_prev = np.concatenate([tape.c, c0])[prev]
    d_h_out = None if weights.w_hr is None else np.empty_like(h)
    _sweep(
        _local_factors(tape, c_prev),
        weights,
        call.batch_sizes,
        reverse,
        grad_out,
        d_h,
        d_c,
        d_gates,
        d_gates4,
        d_h_out,
    )
    grads = {"weight_hh": to_torch_gate_order(d_gates.T @ h_prev)}
    d_bias = to_torch_gate_order(d_gates.sum(axis=0))
    grads["bias_ih"], grads["bias_hh"] = d_bias, d_bias.copy()
    if d_h_out is not None:
        assert tape.h_cell is not None
        grads["weight_hr"] = d_h_out.T @ tape.h_cell
    return grads


def _layer_backward(
    m: LSTM,
    call: _Call,
    index: int,
    weights_by_direction: list[_BackwardWeights],
    w_ih: np.ndarray,
    fwd: _Forward,
    grad_out: np.ndarray,
    d_h0: np.ndarray,
    d_c0: np.ndarray,
    grads: dict[str, np.ndarray],
) -> np.ndarray:
    """Backward through all directions of one layer; returns the gradient of its input.

    grad_out: (S, D*H_out) gradient of the layer output. d_h0, d_c0 hold the
    gradient of this layer's h_n, c_n on entry and of its h0, c0 on return.
    """
    rows, hidden, h_out = call.data.shape[0], m.hidden_size, m.output_hidden_size
    num_directions = len(weights_by_direction)
    d_gates = np.empty((rows, num_directions * 4 * hidden), dtype=m.dtype)
    d_gates4 = d_gates.reshape(rows, num_directions, 4, hidden)
    for direction, weights in enumerate(weights_by_direction):
        k = index * num_directions + direction
        columns = slice(direction * h_out, (direction + 1) * h_out)
        direction_grads = _direction_backward(
            call,
            fwd.tapes[index, direction],
            weights,
            direction == 1,
            fwd.layer_outputs[index][:, columns],
            call.h0[k],
            call.c0[k],
            grad_out[:, columns],
            d_h0[k],
            d_c0[k],
            d_gates[:, direction * 4 * hidden : (direction + 1) * 4 * hidden],
            d_gates4[:, direction],
        )
        suffix = param_suffix(index, direction)
        for name, value in direction_grads.items():
            if m.bias or not name.startswith("bias"):
                grads[name + suffix] = value
    d_w_ih = d_gates.T @ fwd.layer_inputs[index]
    for direction, part in enumerate(np.split(d_w_ih, num_directions, axis=0)):
        grads["weight_ih" + param_suffix(index, direction)] = to_torch_gate_order(part)
    d_input: np.ndarray = d_gates @ w_ih
    return d_input


def stack_backward(
    m: LSTM,
    call: _Call,
    noise: list[np.ndarray] | None,
    grad_output: np.ndarray,
    d_h: np.ndarray,
    d_c: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Forward with a tape, then backward through every layer (last first).

    grad_output: (S, D*H_out) packed rows.  d_h, d_c: gradient of h_n, c_n in
    sorted slot order on entry, of h0, c0 on return.  Returns (grad of
    call.data, parameter grads by name).
    """
    fwd = _forward(m, call, noise)
    directions, w_ih = _backward_weights(m)
    grads: dict[str, np.ndarray] = {}
    grad_layer_output = grad_output
    d_input = grad_output
    for index in range(int(m.num_layers) - 1, -1, -1):
        d_input = _layer_backward(
            m, call, index, directions[index], w_ih[index], fwd, grad_layer_output, d_h, d_c, grads
        )
        if index > 0:
            grad_layer_output = d_input if noise is None else d_input * noise[index - 1]
    return d_input, grads


# -- the module-level entry point -----------------------------------------------------


def _as_grad(m: LSTM, value: ArrayLike, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(value.data if isinstance(value, PackedSequence) else value)
    if array.shape != shape:
        raise ValueError(f"{what}: expected shape {shape} (as the forward's), got {array.shape}")
    if array.dtype.kind == "c" and m.dtype.kind != "c":
        raise ValueError(f"{what}: complex gradient for a {m.dtype} model")
    return np.asarray(array, dtype=m.dtype)


def _grad_rows(m: LSTM, call: _Call, grad_output: Any) -> np.ndarray:
    """grad_output in the output's layout -> (S, D*H_out) packed time-major rows."""
    features = m.num_directions * m.output_hidden_size
    if call.packed is not None:
        shape: tuple[int, ...] = (call.data.shape[0], features)
    elif not call.batched:
        shape = (call.steps, features)
    elif call.batch_first:
        shape = (call.batch, call.steps, features)
    else:
        shape = (call.steps, call.batch, features)
    grad = _as_grad(m, grad_output, shape, "grad_output")
    if call.batch_first and call.packed is None and call.batched:
        grad = np.swapaxes(grad, 0, 1)
    return np.ascontiguousarray(grad.reshape(call.data.shape[0], features))


def _grad_state(m: LSTM, call: _Call, value: Any, like: np.ndarray, what: str) -> np.ndarray:
    """grad_h_n / grad_c_n (caller's layout and batch order) -> (layers*D, B, ·) sorted order."""
    if value is None:
        return np.zeros_like(like)
    shape = like.shape if call.batched else (like.shape[0], like.shape[2])
    grad = _as_grad(m, value, shape, what)
    if not call.batched:
        grad = grad[:, None]
    if call.packed is not None and call.packed.unsorted_indices is not None:
        # forward: h_n_user = h_n_sorted[:, unsorted], so d_sorted[:, unsorted] = d_user
        sorted_grad = np.empty_like(grad)
        sorted_grad[:, np.asarray(call.packed.unsorted_indices)] = grad
        return sorted_grad
    return np.array(grad, copy=True)


def _user_state(call: _Call, grad: np.ndarray) -> np.ndarray:
    """Gradient of h0/c0 in sorted slot order -> the caller's order and layout."""
    if call.packed is not None and call.packed.sorted_indices is not None:
        # forward: h0_sorted = h0_user[:, sorted]
        user = np.empty_like(grad)
        user[:, np.asarray(call.packed.sorted_indices)] = grad
        grad = user
    return grad if call.batched else grad[:, 0]


def _user_input(call: _Call, grad: np.ndarray) -> np.ndarray:
    """Gradient of call.data -> the input's own layout."""
    if call.packed is not None:
        return grad
    grad = grad.reshape(call.steps, call.batch, grad.shape[-1])
    if not call.batched:
        return grad[:, 0]
    if call.batch_first:
        return np.ascontiguousarray(np.swapaxes(grad, 0, 1))
    return grad


def _dropout_needs_masks(m: LSTM, call: _Call) -> bool:
    return (
        m.training
        and 0 < m.dropout < 1
        and int(m.num_layers) > 1
        and call.data.shape[0] > 0
        and m.dtype.kind != "c"
    )


def vjp(
    m: LSTM,
    input: Any,
    hx: Any,
    grad_output: Any,
    grad_h_n: ArrayLike | None = None,
    grad_c_n: ArrayLike | None = None,
    *,
    dropout_masks: Sequence[ArrayLike] | None = None,
) -> dict[str, np.ndarray]:
    """See ``LSTM.vjp``."""
    from .module import _Call

    call = _Call.prepare(m, input, hx)
    if dropout_masks is None and _dropout_needs_masks(m, call):
        raise ValueError(
            f"vjp in training mode with dropout={m.dropout} needs dropout_masks: the gradient "
            "depends on the masks the forward used (pass the same dropout_masks as to the "
            "forward call, or call m.eval())"
        )
    noise = m._dropout_noise(call, dropout_masks)
    complex_dtype = m.dtype.kind == "c"
    grad_rows = _grad_rows(m, call, grad_output)
    d_h = _grad_state(m, call, grad_h_n, call.h0, "grad_h_n")
    d_c = _grad_state(m, call, grad_c_n, call.c0, "grad_c_n")
    if complex_dtype:  # torch returns J^H v = conj(J^T conj(v)) for this holomorphic map
        grad_rows, d_h, d_c = np.conj(grad_rows), np.conj(d_h), np.conj(d_c)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        d_input, param_grads = stack_backward(m, call, noise, grad_rows, d_h, d_c)
    result = {"input": _user_input(call, d_input), "h0": _user_state(call, d_h), "c0": _user_state(call, d_c)}
    for name in m._shapes():
        result[name] = param_grads[name]
    if complex_dtype:
        result = {name: np.conj(value) for name, value in result.items()}
    return result
