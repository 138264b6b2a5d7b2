"""The LSTM computation, fast, as three small layers: one cell step, one direction
of one layer, and the stack of layers and directions with dropout between them.
The same equations written plainly, in torch's gate order, are ``reference.py``;
tests/test_reference.py holds the two together.

Everything here works on *prepared* weights (see ``prepare_weights``) and on the
packed, time-major layout: a batch of sequences is a 2-D array ``(S, features)``
whose rows ``offsets[t] : offsets[t] + batch_sizes[t]`` are time step ``t``.  A
dense ``(L, N, F)`` input is the special case ``batch_sizes = [N] * L``, so one
code path serves dense, unbatched and PackedSequence input.

Prepared layout (why it differs from torch's): torch stores the gate blocks in
the order i, f, g, o.  We reorder them to i, f, o, g so the three sigmoid gates
are one contiguous block, and negate the sigmoid rows of the weights and the
bias.  Negation is exact in floating point, so the pre-activation we compute is
exactly ``-z`` and ``sigmoid(z) = 1 / (1 + exp(-z))`` costs three in-place ufunc
calls with no temporaries.  ``b_ih + b_hh`` is folded into one bias added with
the input projection.  These change rounding only (the order of two additions),
well inside the tolerances documented in docs/rows.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .layout import GATES, param_suffix

# The gate order of the prepared layout (torch's is layout.GATES: i, f, g, o).
PREPARED_GATES = ("i", "f", "o", "g")

# record(rows, gates, c, h_cell, h) is called after each step when tracing;
# gates are activated and in the prepared order PREPARED_GATES.
StepRecorder = Callable[[slice, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class DirectionWeights:
    """One direction of one layer, in the prepared layout (see module docstring)."""

    w_ih_t: np.ndarray  # (input features, 4H)
    w_hh_t: np.ndarray  # (H_out, 4H)
    bias: np.ndarray | None  # (4H,) = b_ih + b_hh, or None without bias
    w_hr_t: np.ndarray | None  # (H, proj_size), or None without projection


@dataclass(frozen=True)
class LayerWeights:
    directions: tuple[DirectionWeights, ...]
    w_ih_t: np.ndarray  # both directions side by side: (features, D*4H), one matmul per layer
    bias: np.ndarray | None  # (D*4H,)


def permute_gate_blocks(rows: np.ndarray, source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """(4H, ...) gate blocks stacked in the order ``source`` -> stacked in the order ``target``."""
    rows = np.asarray(rows)
    if rows.shape[0] % 4:
        raise ValueError(f"{rows.shape[0]} rows are not four gate blocks")
    h = rows.shape[0] // 4  # slices, not np.split: this runs on every load of every model
    starts = [source.index(gate) * h for gate in target]
    return np.concatenate([rows[start : start + h] for start in starts], axis=0)


def to_prepared_gate_order(rows: np.ndarray) -> np.ndarray:
    """torch's (4H, ...) gate blocks i, f, g, o -> the prepared order i, f, o, g (no negation)."""
    return permute_gate_blocks(rows, GATES, PREPARED_GATES)


def to_torch_gate_order(rows: np.ndarray) -> np.ndarray:
    """(4H, ...) gate blocks in the prepared order i, f, o, g -> torch's i, f, g, o."""
    return permute_gate_blocks(rows, PREPARED_GATES, GATES)


def prepare_gate_rows(rows: np.ndarray) -> np.ndarray:
    """Reorder torch's (4H, ...) gate blocks to i, f, o, g and negate the sigmoid rows."""
    prepared = to_prepared_gate_order(rows)  # a new array: negated in place
    sigmoid_rows = prepared[: 3 * (prepared.shape[0] // 4)]
    np.negative(sigmoid_rows, out=sigmoid_rows)
    return prepared


def prepare_direction(
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
    w_hr: np.ndarray | None,
) -> DirectionWeights:
    bias = None if b_ih is None or b_hh is None else prepare_gate_rows(b_ih + b_hh)
    return DirectionWeights(
        w_ih_t=np.ascontiguousarray(prepare_gate_rows(w_ih).T),
        w_hh_t=np.ascontiguousarray(prepare_gate_rows(w_hh).T),
        bias=bias,
        w_hr_t=None if w_hr is None else np.ascontiguousarray(np.asarray(w_hr).T),
    )


def prepare_weights(
    params: Mapping[str, np.ndarray], num_layers: int, num_directions: int, bias: bool, proj: bool
) -> tuple[LayerWeights, ...]:
    """Turn torch-named parameters into the prepared per-layer layout, once per load."""
    layers = []
    for layer in range(num_layers):
        directions = []
        for direction in range(num_directions):
            suffix = param_suffix(layer, direction)
            directions.append(
                prepare_direction(
                    params["weight_ih" + suffix],
                    params["weight_hh" + suffix],
                    params["bias_ih" + suffix] if bias else None,
                    params["bias_hh" + suffix] if bias else None,
                    params["weight_hr" + suffix] if proj else None,
                )
            )
        w_ih_t = np.ascontiguousarray(np.concatenate([d.w_ih_t for d in directions], axis=1))
        layer_bias = np.concatenate([d.bias for d in directions]) if bias else None  # type: ignore[misc]
        layers.append(LayerWeights(tuple(directions), w_ih_t, layer_bias))
    return tuple(layers)


def prepared_step_in_place(
    gates: np.ndarray,
    c: np.ndarray,
    h: np.ndarray,
    w_hr_t: np.ndarray | None,
    scratch: np.ndarray,
    h_cell: np.ndarray,
) -> None:
    """One LSTM step on prepared-layout pre-activations, in place (used by ``LSTMCell``).

    The plain equations, in torch's gate order, are ``reference.lstm_cell``.

    gates: (n, 4H) pre-activations in the prepared layout; activated in place.
    c: (n, H) cell state, updated in place to ``f*c + i*g``.
    h: (n, H_out) receives the new hidden state ``o*tanh(c)`` (projected if w_hr_t).
    scratch, h_cell: (n, H) work buffers; h_cell holds ``o*tanh(c)`` when projecting.

    ``run_direction`` runs the same operations, inlined into its loop with views
    prepared once (see there); this is the one-step form.
    """
    hidden = c.shape[1]
    sigmoid_block = gates[:, : 3 * hidden]
    np.exp(sigmoid_block, out=sigmoid_block)  # rows were negated: exp(-z)
    np.add(sigmoid_block, 1, out=sigmoid_block)
    np.reciprocal(sigmoid_block, out=sigmoid_block)
    g = gates[:, 3 * hidden :]
    np.tanh(g, out=g)
    np.multiply(gates[:, :hidden], g, out=scratch)  # i*g
    np.multiply(c, gates[:, hidden : 2 * hidden], out=c)  # f*c
    np.add(scratch, c, out=c)
    np.tanh(c, out=scratch)
    np.multiply(gates[:, 2 * hidden : 3 * hidden], scratch, out=h_cell if w_hr_t is not None else h)
    if w_hr_t is not None:
        np.matmul(h_cell, w_hr_t, out=h)


def cell_forward(
    x: np.ndarray, h0: np.ndarray, c0: np.ndarray, weights: DirectionWeights
) -> tuple[np.ndarray, np.ndarray]:
    """One step of ``LSTMCell`` (no projection): x (N, I), h0 and c0 (N, H) -> (h1, c1)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        gates = x @ weights.w_ih_t
        if weights.bias is not None:
            gates += weights.bias
        gates += h0 @ weights.w_hh_t
        c1 = np.array(c0, copy=True)
        h1 = np.empty_like(c1)
        prepared_step_in_place(gates, c1, h1, None, np.empty_like(c1), h1)
    return h1, c1


class _StepViews(NamedTuple):
    """Every view one step of ``n`` active slots uses (``run_direction``'s buffers, rows :n)."""

    gates: np.ndarray  # (n, 4H) pre-activations i, f, o, g, activated in place
    sigmoid_block: np.ndarray  # i, f, o
    o: np.ndarray
    g: np.ndarray
    i_f: np.ndarray  # [i | f]
    g_c: np.ndarray  # [tanh(g) | c]
    tanh_g: np.ndarray
    c: np.ndarray
    products: np.ndarray  # [i*g | f*c]
    i_g: np.ndarray  # i*g, then tanh(c)
    f_c: np.ndarray  # f*c
    o_tanh_c: np.ndarray  # o*tanh(c) when projecting (h_cell)
    h: np.ndarray  # (n, H_out) the active slots' hidden state


class _DirectionBuffers:
    """The work buffers of one direction, sized for all B slots, and their per-step views."""

    def __init__(self, h0: np.ndarray, c0: np.ndarray, projecting: bool) -> None:
        batch, hidden = c0.shape
        dtype = c0.dtype
        self.hidden = hidden
        self.gates = np.empty((batch, 4 * hidden), dtype=dtype)
        self.g_c = np.empty((batch, 2 * hidden), dtype=dtype)  # [tanh(g) | c]
        self.g_c[:, hidden:] = c0
        self.products = np.empty((batch, 2 * hidden), dtype=dtype)  # [i*g | f*c], then tanh(c) first
        self.h_cell = np.empty((batch, hidden), dtype=dtype) if projecting else None
        self.h = np.array(h0, copy=True)

    def views(self, n: int) -> _StepViews:
        hidden = self.hidden
        gates, g_c, products = self.gates[:n], self.g_c[:n], self.products[:n]
        return _StepViews(
            gates=gates,
            sigmoid_block=gates[:, : 3 * hidden],
            o=gates[:, 2 * hidden : 3 * hidden],
            g=gates[:, 3 * hidden :],
            i_f=gates[:, : 2 * hidden],
            g_c=g_c,
            tanh_g=g_c[:, :hidden],
            c=g_c[:, hidden:],
            products=products,
            i_g=products[:, :hidden],
            f_c=products[:, hidden:],
            o_tanh_c=products[:, :hidden] if self.h_cell is None else self.h_cell[:n],
            h=self.h[:n],
        )

    def final_c(self) -> np.ndarray:
        return np.array(self.g_c[:, self.hidden :])


def _row_starts(sizes: list[int]) -> list[int]:
    """The first packed row of each time step."""
    starts = [0] * len(sizes)
    for t in range(1, len(sizes)):
        starts[t] = starts[t - 1] + sizes[t - 1]
    return starts


def run_direction(
    input_projection: np.ndarray,
    batch_sizes: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    weights: DirectionWeights,
    reverse: bool,
    output: np.ndarray,
    record: StepRecorder | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One direction of one layer over a packed batch.

    input_projection: (S, 4H) ``x @ W_ih^T + bias`` for every row (prepared layout).
    h0, c0: (B, H_out), (B, H) initial state per sorted batch slot.
    output: (S, H_out) view that receives the hidden state of every row.
    Returns (h_n, c_n), each slot's state after its own last step.

    Batch slots are sorted longest first, so at step t only the first
    ``batch_sizes[t]`` slots are active.  Running forward, finished slots keep
    their last state; running in reverse, a slot keeps h0/c0 until its own last
    step comes up.  That is exactly torch's packed semantics, and for dense input
    (all batch sizes equal) it is the plain recurrence (``reference.lstm_direction``
    says the same thing plainly, in torch's gate order).

    Longer than 50 lines on purpose: the loop is ``prepared_step_in_place`` inlined,
    tuned for per-step Python overhead (a step of a small LSTM is a dozen NumPy
    calls of about a microsecond each), so a step is one flat run of ufunc calls:

    * every view a step uses is made again only when the batch size changes;
    * ``tanh(g)`` is written next to ``c`` in one (B, 2H) buffer ``[tanh(g) | c]``,
      so ``f*c`` and ``i*g`` are one multiply of ``[i | f]`` by it, and ``c`` one add;
    * dense input (all batch sizes equal, so every slot steps every time) keeps
      ``h`` in ``output``: each step writes its rows there and the next step's
      recurrent product reads them back, with no copy.  Packed input keeps ``h``
      in its own buffer, which also holds the finished slots' last states.
    (A BLAS gemm with beta=1, e.g. scipy's, could fold ``+ input_projection`` into
    the recurrent product; that add is about 5% of a step, not worth a dependency.)
    The arithmetic is prepared_step_in_place's, operation for operation (bitwise the
    same for real dtypes; for complex, ``f*c`` vs ``c*f`` may round differently under FMA).
    """
    w_hh_t, w_hr_t = weights.w_hh_t, weights.w_hr_t
    sizes: list[int] = batch_sizes.tolist()
    starts = _row_starts(sizes)
    dense = sizes[0] == sizes[-1]  # sizes never increase: all equal
    buffers = _DirectionBuffers(h0, c0, projecting=w_hr_t is not None)
    if dense:  # time-major (L, N, ·) views: row block t is step t
        batch = c0.shape[0]
        projection_steps = input_projection.reshape(len(sizes), batch, input_projection.shape[1])
        output_steps = output.reshape(len(sizes), batch, output.shape[1])  # a view: splits axis 0 only
    one = np.ones((), dtype=c0.dtype)  # a 0-d array: adding a Python scalar costs a conversion per call
    time_steps = range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes))
    h_prev = h_new = buffers.h
    n_views = -1  # no views yet
    # ufunc outputs are positional (cheaper than out=); np.dot has less call overhead than matmul.
    for t in time_steps:
        n = sizes[t]
        if n != n_views:
            gates, sigmoid_block, o, g, i_f, g_c, tanh_g, c, products, i_g, f_c, o_tanh_c, h_active = (
                buffers.views(n)
            )
            n_views = n
        if dense:
            h_prev, h_new, projection = h_new, output_steps[t], projection_steps[t]
        else:
            rows = slice(starts[t], starts[t] + n)
            h_prev = h_new = h_active
            projection = input_projection[rows]

        np.dot(h_prev, w_hh_t, gates)
        np.add(gates, projection, gates)
        np.exp(sigmoid_block, sigmoid_block)  # rows were negated: exp(-z)
        np.add(sigmoid_block, one, sigmoid_block)
        np.reciprocal(sigmoid_block, sigmoid_block)
        np.tanh(g, tanh_g)
        np.multiply(i_f, g_c, products)  # [i*g | f*c]
        np.add(i_g, f_c, c)
        np.tanh(c, i_g)
        if w_hr_t is None:
            np.multiply(o, i_g, h_new)
        else:
            np.multiply(o, i_g, o_tanh_c)
            np.matmul(o_tanh_c, w_hr_t, out=h_new)
        if not dense:
            output[rows] = h_new
        if record is not None:
            g[...] = tanh_g  # the recorder sees activated gates
            h_cell = h_new if w_hr_t is None else o_tanh_c
            record(slice(starts[t], starts[t] + n), gates, c, h_cell, h_new)
    if dense:
        buffers.h[...] = h_new
    return buffers.h, buffers.final_c()


def run_stack(
    data: np.ndarray,
    batch_sizes: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    layers: Sequence[LayerWeights],
    dropout_noise: Sequence[np.ndarray] | None = None,
    record: Callable[[int, int], StepRecorder | None] | None = None,
    layer_outputs: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All layers and directions over packed data.

    h0, c0: (num_layers * D, B, ·), layer-major (index layer*D + direction).
    dropout_noise: num_layers-1 arrays ``keep_mask / (1-p)`` multiplied onto the
    input of layers 1.. (torch applies dropout between layers only).
    record(layer, direction) gives the step recorder of that direction, if any.
    Returns (output (S, D*H_out), h_n, c_n).
    """
    num_directions = len(layers[0].directions)
    h_out = h0.shape[-1]
    h_n = np.empty_like(h0)
    c_n = np.empty_like(c0)
    layer_input = data
    output = data
    for index, layer in enumerate(layers):
        projection = layer_input @ layer.w_ih_t
        if layer.bias is not None:
            projection += layer.bias
        gate_width = projection.shape[1] // num_directions
        output = np.empty((data.shape[0], num_directions * h_out), dtype=h0.dtype)
        for direction, weights in enumerate(layer.directions):
            state_index = index * num_directions + direction
            h_n[state_index], c_n[state_index] = run_direction(
                projection[:, direction * gate_width : (direction + 1) * gate_width],
                batch_sizes,
                h0[state_index],
                c0[state_index],
                weights,
                reverse=direction == 1,
                output=output[:, direction * h_out : (direction + 1) * h_out],
                record=None if record is None else record(index, direction),
            )
        if layer_outputs is not None:
            layer_outputs.append(output)
        layer_input = output
        if dropout_noise is not None and index < len(layers) - 1:
            layer_input = output * dropout_noise[index]
    return output, h_n, c_n
