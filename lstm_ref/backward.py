"""Backpropagation through time: the vector-Jacobian product of ``LSTM.forward``.

``vjp(call, layers, params, dropout_noise, grad_output, grad_h_n, grad_c_n)``
returns what ``torch.autograd.grad`` returns for the same forward and the same
upstream gradients: the gradient of the input (or of ``PackedSequence.data``), of
h0 and c0, and of every parameter under its state_dict name.  ``LSTM.vjp``
prepares its arguments: the normalised call (``calls.Call``), the prepared
weights the forward runs on, the torch-named parameters and the dropout noise.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .calls import Call
from .functional import (
    LayerWeights,
    StepRecorder,
    run_stack,
    to_prepared_gate_order,
    to_torch_gate_order,
)
from .layout import param_suffix
from .packing import PackedSequence


@dataclass(frozen=True)
class _BackwardWeights:
    """One direction's weights as the backward multiplies by them (gates i, f, o, g)."""

    w_hh: np.ndarray  # (4H, H_out): dh_prev = dP @ w_hh
    w_hr: np.ndarray | None  # (proj, H): dh_cell = dh @ w_hr


@dataclass(frozen=True)
class _LayerBackwardWeights:
    directions: list[_BackwardWeights]
    w_ih: np.ndarray  # (D*4H, F): W_ih of all directions, gates i, f, o, g: dX = dP @ w_ih


def _backward_weights(
    params: Mapping[str, np.ndarray], layer: int, num_directions: int
) -> _LayerBackwardWeights:
    """One layer's weights as the backward multiplies by them, from the torch-named parameters."""
    suffixes = [param_suffix(layer, direction) for direction in range(num_directions)]
    directions = [
        _BackwardWeights(to_prepared_gate_order(params["weight_hh" + s]), params.get("weight_hr" + s))
        for s in suffixes
    ]
    w_ih = np.concatenate([to_prepared_gate_order(params["weight_ih" + s]) for s in suffixes])
    return _LayerBackwardWeights(directions, w_ih)


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


def _forward(call: Call, layers: Sequence[LayerWeights], noise: Sequence[np.ndarray] | None) -> _Forward:
    rows, hidden, dtype = call.data.shape[0], call.c0.shape[-1], call.dtype
    tapes: dict[tuple[int, int], _Tape] = {}

    def record(layer: int, direction: int) -> StepRecorder:
        projecting = layers[layer].directions[direction].w_hr_t is not None
        tape = _Tape(
            np.empty((rows, 4 * hidden), dtype),
            np.empty((rows, hidden), dtype),
            np.empty((rows, hidden), dtype) if projecting else None,
        )
        tapes[layer, direction] = tape
        return _recorder(tape)

    outputs: list[np.ndarray] = []
    run_stack(call.data, call.batch_sizes, call.h0, call.c0, layers, noise, record, outputs)
    inputs = [call.data]
    for index in range(len(outputs) - 1):
        inputs.append(outputs[index] if noise is None else outputs[index] * noise[index])
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

    gate_scale: np.ndarray  # (S, 4H): dP = [dc, dc, dh_cell, dc] * gate_scale, blockwise
    o_dtanh: np.ndarray  # (S, H): o * (1 - tanh(c)^2), dh_cell -> dc
    f: np.ndarray  # (S, H): forget gate, dc -> dc_prev


def _local_factors(tape: _Tape, c_prev: np.ndarray) -> _Factors:
    hidden = tape.c.shape[1]
    gates = tape.gates
    i, f, o, g = (gates[:, j * hidden : (j + 1) * hidden] for j in range(4))
    scale = np.empty_like(gates)
    sigmoid, scale_sigmoid = gates[:, : 3 * hidden], scale[:, : 3 * hidden]
    np.subtract(1, sigmoid, out=scale_sigmoid)  # sigmoid' = a(1-a)
    scale_sigmoid *= sigmoid
    scale[:, :hidden] *= g
    scale[:, hidden : 2 * hidden] *= c_prev
    o_dtanh = np.tanh(tape.c)
    scale[:, 2 * hidden : 3 * hidden] *= o_dtanh
    scale_g = scale[:, 3 * hidden :]
    np.multiply(g, g, out=scale_g)  # tanh' = 1 - g^2
    np.subtract(1, scale_g, out=scale_g)
    scale_g *= i
    np.multiply(o_dtanh, o_dtanh, out=o_dtanh)
    np.subtract(1, o_dtanh, out=o_dtanh)
    o_dtanh *= o
    return _Factors(scale, o_dtanh, f)


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
    """Backwards in time through one direction, in place.  (Over 50 lines only for its
    eleven-argument signature and this docstring; the loop is 20 lines.)

    grad_out: (S, H_out) upstream gradient of the direction's per-row output.
    dh, dc: (B, H_out), (B, H) hold the gradient of h_n, c_n on entry and of
    h0, c0 on return.
    d_gates: (S, 4H) receives dP, the gradient of the pre-activation (i, f, o, g);
    d_gates4 is the same memory viewed (S, 4, H).
    d_h_out: (S, H_out) receives the gradient of each row's h, when projecting.
    """
    batch, hidden = dc.shape
    w_hh, w_hr = weights.w_hh, weights.w_hr
    dh_cell_buffer = np.empty((batch, hidden), dtype=dc.dtype)
    dc_buffer = np.empty((batch, hidden), dtype=dc.dtype)
    dh_buffer = np.empty_like(dh)
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    # the forward ran forward in time (or backward when reverse); we undo it
    steps = range(len(batch_sizes)) if reverse else range(len(batch_sizes) - 1, -1, -1)
    gate_scale4 = factors.gate_scale.reshape(-1, 4, hidden)
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
            dh_cell,
            dc[:n],
            gate_scale4[rows],
            factors.o_dtanh[rows],
            factors.f[rows],
            d_gates4[rows],
            dc_buffer[:n],
        )
        np.matmul(d_gates[rows], w_hh, out=dh[:n])


def _cell_backward(
    dh_cell: np.ndarray,
    dc: np.ndarray,
    gate_scale: np.ndarray,
    o_dtanh: np.ndarray,
    f: np.ndarray,
    d_gates: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """One step's elementwise backward, in place (the recurrent matmul is the caller's).

    dh_cell: (n, H) gradient of ``o*tanh(c)``; dc: (n, H) gradient of the new c on
    entry, of the previous c on return; gate_scale, o_dtanh, f: this step's ``_Factors``
    rows (gate_scale viewed (n, 4, H)); d_gates: (n, 4, H) receives the gate gradients.
    """
    dc_total = scratch
    np.multiply(dh_cell, o_dtanh, out=dc_total)
    dc_total += dc
    np.multiply(gate_scale[:, :2], dc_total[:, None, :], out=d_gates[:, :2])  # i, f
    np.multiply(gate_scale[:, 2], dh_cell, out=d_gates[:, 2])  # o
    np.multiply(gate_scale[:, 3], dc_total, out=d_gates[:, 3])  # g
    np.multiply(dc_total, f, out=dc)


# -- a layer and the stack ----------------------------------------------------------------


def _direction_backward(
    call: Call,
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
    call: Call,
    index: int,
    weights: _LayerBackwardWeights,
    fwd: _Forward,
    grad_out: np.ndarray,
    d_h0: np.ndarray,
    d_c0: np.ndarray,
    grads: dict[str, np.ndarray],
) -> np.ndarray:
    """Backward through all directions of one layer; returns the gradient of its input.

    grad_out: (S, D*H_out) gradient of the layer output. d_h0, d_c0 hold the
    gradient of this layer's h_n, c_n on entry and of its h0, c0 on return.
    Stores the layer's parameter gradients in ``grads`` (bias entries also for a
    model without bias; ``vjp`` keeps the model's names).
    """
    rows, hidden, h_out = call.data.shape[0], call.c0.shape[-1], call.h0.shape[-1]
    num_directions = len(weights.directions)
    d_gates = np.empty((rows, num_directions * 4 * hidden), dtype=call.dtype)
    d_gates4 = d_gates.reshape(rows, num_directions, 4, hidden)
    for direction, direction_weights in enumerate(weights.directions):
        state_index = index * num_directions + direction
        columns = slice(direction * h_out, (direction + 1) * h_out)
        direction_grads = _direction_backward(
            call,
            fwd.tapes[index, direction],
            direction_weights,
            direction == 1,
            fwd.layer_outputs[index][:, columns],
            call.h0[state_index],
            call.c0[state_index],
            grad_out[:, columns],
            d_h0[state_index],
            d_c0[state_index],
            d_gates[:, direction * 4 * hidden : (direction + 1) * 4 * hidden],
            d_gates4[:, direction],
        )
        suffix = param_suffix(index, direction)
        for name, value in direction_grads.items():
            grads[name + suffix] = value
    d_w_ih = d_gates.T @ fwd.layer_inputs[index]
    for direction, part in enumerate(np.split(d_w_ih, num_directions, axis=0)):
        grads["weight_ih" + param_suffix(index, direction)] = to_torch_gate_order(part)
    d_input: np.ndarray = d_gates @ weights.w_ih
    return d_input


def stack_backward(
    call: Call,
    layers: Sequence[LayerWeights],
    params: Mapping[str, np.ndarray],
    noise: Sequence[np.ndarray] | None,
    grad_output: np.ndarray,
    d_h: np.ndarray,
    d_c: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Forward with a tape (on ``layers``), then backward through every layer (last first).

    params: the torch-named parameters the backward multiplies by.
    grad_output: (S, D*H_out) packed rows.  d_h, d_c: gradient of h_n, c_n in
    sorted slot order on entry, of h0, c0 on return.  Returns (grad of
    call.data, parameter grads by name, bias entries also without bias).
    """
    fwd = _forward(call, layers, noise)
    num_directions = len(layers[0].directions)
    grads: dict[str, np.ndarray] = {}
    grad_layer_output = grad_output
    d_input = grad_output
    for index in range(len(layers) - 1, -1, -1):
        weights = _backward_weights(params, index, num_directions)
        d_input = _layer_backward(call, index, weights, fwd, grad_layer_output, d_h, d_c, grads)
        if index > 0:
            grad_layer_output = d_input if noise is None else d_input * noise[index - 1]
    return d_input, grads


# -- the module-level entry point -----------------------------------------------------


def _as_grad(call: Call, value: ArrayLike, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(value.data if isinstance(value, PackedSequence) else value)
    if array.shape != shape:
        raise ValueError(f"{what}: expected shape {shape} (as the forward's), got {array.shape}")
    if array.dtype.kind == "c" and call.dtype.kind != "c":
        raise ValueError(f"{what}: complex gradient for a {call.dtype} model")
    return np.asarray(array, dtype=call.dtype)


def _grad_rows(call: Call, grad_output: Any, features: int) -> np.ndarray:
    """grad_output in the output's layout -> (S, D*H_out) packed time-major rows."""
    grad = _as_grad(call, grad_output, call.output_shape(features), "grad_output")
    if call.batch_first and call.packed is None and call.batched:
        grad = np.swapaxes(grad, 0, 1)
    return np.ascontiguousarray(grad.reshape(call.data.shape[0], features))


def _grad_state(call: Call, value: Any, like: np.ndarray, what: str) -> np.ndarray:
    """grad_h_n / grad_c_n (caller's layout and batch order) -> (layers*D, B, ·) sorted order."""
    if value is None:
        return np.zeros_like(like)
    shape = like.shape if call.batched else (like.shape[0], like.shape[2])
    grad = _as_grad(call, value, shape, what)
    if not call.batched:
        grad = grad[:, None]
    if call.packed is not None and call.packed.unsorted_indices is not None:
        # forward: h_n_user = h_n_sorted[:, unsorted], so d_sorted[:, unsorted] = d_user
        sorted_grad = np.empty_like(grad)
        sorted_grad[:, np.asarray(call.packed.unsorted_indices)] = grad
        return sorted_grad
    return np.array(grad, copy=True)


def _user_state(call: Call, grad: np.ndarray) -> np.ndarray:
    """Gradient of h0/c0 in sorted slot order -> the caller's order and layout."""
    if call.packed is not None and call.packed.sorted_indices is not None:
        # forward: h0_sorted = h0_user[:, sorted]
        user = np.empty_like(grad)
        user[:, np.asarray(call.packed.sorted_indices)] = grad
        grad = user
    return grad if call.batched else grad[:, 0]


def _user_input(call: Call, grad: np.ndarray) -> np.ndarray:
    """Gradient of call.data -> the input's own layout."""
    if call.packed is not None:
        return grad
    grad = grad.reshape(call.steps, call.batch, grad.shape[-1])
    if not call.batched:
        return grad[:, 0]
    if call.batch_first:
        return np.ascontiguousarray(np.swapaxes(grad, 0, 1))
    return grad


def vjp(
    call: Call,
    layers: Sequence[LayerWeights],
    params: Mapping[str, np.ndarray],
    dropout_noise: Sequence[np.ndarray] | None,
    grad_output: Any,
    grad_h_n: ArrayLike | None = None,
    grad_c_n: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """The VJP of ``call.run(layers, dropout_noise)``; see ``LSTM.vjp`` for the result.

    layers: the prepared weights the forward runs on; params: the same parameters under
    torch's names, which the backward multiplies by and names its gradients after.
    """
    complex_dtype = call.dtype.kind == "c"
    features = len(layers[0].directions) * call.h0.shape[-1]
    grad_rows = _grad_rows(call, grad_output, features)
    d_h = _grad_state(call, grad_h_n, call.h0, "grad_h_n")
    d_c = _grad_state(call, grad_c_n, call.c0, "grad_c_n")
    if complex_dtype:  # torch returns J^H v = conj(J^T conj(v)) for this holomorphic map
        grad_rows, d_h, d_c = np.conj(grad_rows), np.conj(d_h), np.conj(d_c)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        d_input, param_grads = stack_backward(call, layers, params, dropout_noise, grad_rows, d_h, d_c)
    result = {"input": _user_input(call, d_input), "h0": _user_state(call, d_h), "c0": _user_state(call, d_c)}
    for name in params:
        result[name] = param_grads[name]
    if complex_dtype:
        result = {name: np.conj(value) for name, value in result.items()}
    return result
