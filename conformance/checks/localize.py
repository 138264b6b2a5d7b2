"""Where a failing case first goes wrong: which layer, then which step and gate.

``locate`` reruns every layer alone, as a one-layer model fed the oracle's input for that layer,
so a wrong layer is named even when the layers after it inherit its error.  A bug that only
fires in a deeper layer (one that reads its own index) does not show in a one-layer model, so
when every layer matches alone, each layer is also run inside the stack: as the last layer of
the stack truncated after it, whose earlier layers are then known to give it the oracle's
input.  Inside the first wrong layer, ``locate_gate`` compares the implementation's own per-step internals (the gates
i, f, g, o, the cell state c and the hidden state h, as ``lstm_ref.trace`` records them) with
the plain equations of ``lstm_ref.reference`` evaluated in 64 bits, and names the first one off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import lstm_ref
from lstm_ref.layout import dropout_noise, param_suffix
from lstm_ref.reference import lstm_cell

from ..contract.cases import Case
from ..contract.compare import Divergence, compare
from .harness import (
    Arrays,
    Context,
    build,
    call,
    model_hx,
    model_input,
    output_layout,
    packed_output_data,
)
from .harness import state_layout as base_state_layout


def layer_weights(arrays: Arrays, layer: int) -> Arrays:
    """Layer ``layer``'s parameters renamed as layer 0's, for a one-layer model."""
    return {
        name[2:].replace(f"_l{layer}", "_l0"): value.copy()
        for name, value in arrays.items()
        if name.startswith("w.") and f"_l{layer}" in name
    }


def layer_input(case: Case, arrays: Arrays, layer: int) -> Any:
    """What layer ``layer`` reads in the oracle's run: the input, or the previous layer's output
    times the dropout noise the oracle applied between the two."""
    if layer == 0:
        return model_input(case, arrays)
    previous = arrays[f"layer_{layer - 1}_output"]
    # held in 64 bits for a 32-bit case (the exact answer): fed to the model in its own dtype
    data = (previous * _noise_after(case, arrays, layer - 1, previous)).astype(case.dtype)
    if case.packed:
        return lstm_ref.PackedSequence(data, *model_input(case, arrays)[1:])
    return data


def _noise_after(case: Case, arrays: Arrays, layer: int, like: np.ndarray) -> Any:
    """The dropout multiplier on layer ``layer``'s output, in ``like``'s layout (1 if none)."""
    if case.mode != "train" or case.num_layers == 1 or case.p == 0:
        return 1
    if case.p == 1:
        return np.zeros((), dtype=case.dtype)
    noise = dropout_noise(arrays[f"mask_{layer}"], case.p, case.dtype)  # time-major
    if case.batch_first and case.form == "batched":
        noise = np.swapaxes(noise, 0, 1)
    return noise.reshape(like.shape)


def _layer_expected(case: Case, arrays: Arrays, layer: int) -> Arrays:
    directions = slice(layer * case.num_directions, (layer + 1) * case.num_directions)
    last = layer == case.num_layers - 1
    return {
        **arrays,
        "output": arrays["output"] if last else arrays[f"layer_{layer}_output"],
        "h_n": arrays["h_n"][directions],
        "c_n": arrays["c_n"][directions],
    }


def locate(ctx: Context) -> str:
    """Rerun layer by layer, each as a one-layer model fed the oracle's layer input."""
    case, arrays, tol = ctx.case, ctx.arrays, ctx.tol
    d = case.num_directions
    if case.num_layers > 1 and "layer_0_output" not in arrays:
        return ""
    for layer in range(case.num_layers):
        features = case.input_size if layer == 0 else d * case.h_out
        single = replace(case, num_layers=1, input_size=features, mode="eval", dropout=0.0)
        model: Any = None
        try:
            model = build(ctx.factory, single, arrays, weights=layer_weights(arrays, layer))
            x, hx = layer_input(case, arrays, layer), model_hx(arrays)
            if hx is not None:
                hx = (hx[0][layer * d : (layer + 1) * d], hx[1][layer * d : (layer + 1) * d])
            out, h_n, c_n = call(model, x, hx, None)
            expected = _layer_expected(case, arrays, layer)
            data = packed_output_data(case, arrays, out) if case.packed else out
            compare(
                data,
                expected["output"],
                tol,
                f"layer {layer} output",
                output_layout(case, arrays),
                case.dtype,
            )
            state = replace(base_state_layout(case), layer_offset=layer)
            compare(h_n, expected["h_n"], tol, f"layer {layer} h_n", state, case.dtype)
            compare(c_n, expected["c_n"], tol, f"layer {layer} c_n", state, case.dtype)
        except Divergence as div:
            gate = locate_gate(ctx, model, x, hx, layer)
            return f"Run alone on the reference's layer-{layer} input, layer {layer} diverges: {div.message}{gate}"
        except Exception as exc:  # the single-layer rerun itself failed
            return f"(could not rerun layer {layer} alone: {type(exc).__name__}: {exc})"
    return locate_in_stack(ctx) or (
        "Every layer matches when run alone on the reference's layer input, so the divergence is "
        "in how layers are stacked: dropout between layers, layer wiring, or h_n/c_n assembly."
    )


def _stack_weights(arrays: Arrays, layers: int) -> Arrays:
    """The parameters of layers 0 .. layers-1, under their own names."""
    return {
        name[2:]: value.copy()
        for name, value in arrays.items()
        if name.startswith("w.") and int(name.rsplit("_l", 1)[1].split("_")[0]) < layers
    }


def locate_in_stack(ctx: Context) -> str:
    """Every layer matched alone: run the stack truncated after layer 1, 2, ... until one
    diverges from the oracle's output of that layer.  Its earlier layers matched (the shorter
    stack did), so that layer was fed the oracle's input, and it diverges where it sits in the
    stack only: a bug tied to the layer's index.  Not where dropout acts between the layers
    (training with p > 0): the cut stack would then also test the dropout, and could not say
    which of the two is wrong."""
    case, arrays, tol = ctx.case, ctx.arrays, ctx.tol
    if case.mode == "train" and case.p > 0:
        return ""
    d = case.num_directions
    for layer in range(1, case.num_layers):
        stack = replace(case, num_layers=layer + 1)
        model: Any = None
        try:
            model = build(ctx.factory, stack, arrays, weights=_stack_weights(arrays, layer + 1))
            hx = model_hx(arrays)
            if hx is not None:
                hx = (hx[0][: (layer + 1) * d], hx[1][: (layer + 1) * d])
            out, h_n, c_n = call(model, model_input(case, arrays), hx, None)
            expected = _layer_expected(case, arrays, layer)
            data = packed_output_data(case, arrays, out) if case.packed else out
            compare(
                data,
                expected["output"],
                tol,
                f"layer {layer} output",
                output_layout(case, arrays),
                case.dtype,
            )
            state = base_state_layout(case)
            compare(h_n, arrays["h_n"][: (layer + 1) * d], tol, f"h_n of layers 0-{layer}", state, case.dtype)
            compare(c_n, arrays["c_n"][: (layer + 1) * d], tol, f"c_n of layers 0-{layer}", state, case.dtype)
        except Divergence as div:
            gate = locate_gate(ctx, model, model_input(case, arrays), hx, layer, traced_layer=layer)
            return (
                f"Every layer matches when run alone on the reference's layer input, but inside the stack "
                f"layer {layer} diverges (the stack cut after layer {layer}, whose layers 0-{layer - 1} match, "
                f"so layer {layer} reads the reference's input): {div.message}{gate}"
            )
        except Exception as exc:
            return f"(could not run the stack cut after layer {layer}: {type(exc).__name__}: {exc})"
    return ""


# -- inside one layer: the first step and gate that is off -------------------------------------------

INTERNALS = ("i", "f", "g", "o", "c", "h")  # in the order a step computes them


def _packed_rows(case: Case, values: np.ndarray) -> np.ndarray:
    """An array in the case's layout (time-major, batch-first, unbatched or packed rows) ->
    packed time-major rows (S, F): step t is the next ``batch_sizes[t]`` rows."""
    if case.packed or case.form == "unbatched":
        return values
    if case.batch_first:
        values = np.swapaxes(values, 0, 1)
    return values.reshape(-1, values.shape[-1])


Internals = dict[tuple[int, int], dict[str, np.ndarray]]  # (layer, direction) -> i, f, g, o, c, h


def _internals(model: Any, x: Any, hx: Any) -> Internals | None:
    """The implementation's per-step internals through its optional ``conformance_trace`` hook
    (docs/plugin.md), or lstm_ref.trace for lstm_ref; None if it offers none or the hook fails."""
    try:
        hook = getattr(model, "conformance_trace", None)
        if callable(hook):
            return dict(hook(x, hx))
        if isinstance(model, lstm_ref.LSTM):
            recorded = lstm_ref.trace(model, x, hx)
            return {
                (d.layer, d.direction): {n: getattr(d, n) for n in INTERNALS} for d in recorded.directions
            }
    except Exception:
        return None
    return None


@dataclass
class _LayerRows:
    """One layer's steps as packed time-major rows, in 64 bits: the input the layer read, the
    oracle's output of it (its h per step), and which rows make step t."""

    inputs: np.ndarray
    expected_h: np.ndarray
    sizes: list[int]
    starts: np.ndarray
    order: list[int]  # sorted slot -> batch element, to find each slot's h0/c0


def locate_gate(ctx: Context, model: Any, x: Any, hx: Any, layer: int, traced_layer: int = 0) -> str:
    """The first gate (i, f, g, o), c or h of layer ``layer`` that is off, in processing order;
    ``model(x, hx)`` runs it as its layer ``traced_layer``.

    Each step is checked on its own: the reference cell is fed the oracle's input to the layer,
    the oracle's previous h and the implementation's own previous c (which agreed until then),
    in 64 bits."""
    case, arrays = ctx.case, ctx.arrays
    if case.batch_size == 0 or model is None:
        return ""
    recorded = _internals(model, x, hx)
    if recorded is None:
        return ""
    d = case.num_directions
    hx = None if hx is None else (hx[0][traced_layer * d :], hx[1][traced_layer * d :])  # the layer's own
    x = layer_input(case, arrays, layer)
    wide = np.complex128 if case.dtype.startswith("complex") else np.float64
    sizes = [int(n) for n in arrays["batch_sizes"]] if case.packed else [case.batch_size] * case.steps
    rows = _LayerRows(
        _packed_rows(case, np.asarray(x[0] if case.packed else x, dtype=wide)),
        _packed_rows(case, np.asarray(_layer_expected(case, arrays, layer)["output"], dtype=wide)),
        sizes,
        np.concatenate([[0], np.cumsum(sizes)]).astype(int),
        [int(i) for i in arrays["sorted_indices"]] if "sorted_indices" in arrays else list(range(sizes[0])),
    )
    time_major = replace(case, batch_first=False)  # recorded internals are time-major
    for direction in range(case.num_directions):
        suffix = param_suffix(layer, direction)
        params = {
            name[2 : -len(suffix)]: np.asarray(value, dtype=wide)
            for name, value in arrays.items()
            if name.startswith("w.") and name.endswith(suffix)
        }
        impl = {
            n: _packed_rows(time_major, np.asarray(recorded[traced_layer, direction][n])).astype(wide)
            for n in INTERNALS
        }
        state = None if hx is None else (hx[0][direction], hx[1][direction])
        found = _first_off(ctx, rows, params, impl, state, direction)
        if found:
            return (
                "\n    first internal divergence (the implementation's trace vs the cell equations): "
                f"layer {layer}, direction {direction}{' (reverse)' if direction else ''}, {found}"
            )
    return ""


def _first_off(
    ctx: Context,
    rows: _LayerRows,
    params: Arrays,
    impl: Arrays,
    state: tuple[Any, Any] | None,
    direction: int,
) -> str:
    """Step by step in processing order, the first internal of one direction that is off."""
    case, wide = ctx.case, rows.inputs.dtype
    h0 = None if state is None else np.asarray(state[0], dtype=wide).reshape(-1, case.h_out)
    c0 = None if state is None else np.asarray(state[1], dtype=wide).reshape(-1, case.hidden_size)
    columns = slice(direction * case.h_out, (direction + 1) * case.h_out)
    sizes, starts = rows.sizes, rows.starts
    for t in range(len(sizes) - 1, -1, -1) if direction else range(len(sizes)):
        n, previous = sizes[t], (t + 1 if direction else t - 1)
        h_prev = np.zeros((n, case.h_out), wide) if h0 is None else h0[rows.order[:n]].copy()
        c_prev = np.zeros((n, case.hidden_size), wide) if c0 is None else c0[rows.order[:n]].copy()
        if 0 <= previous < len(sizes):
            m = min(n, sizes[previous])  # sequences that also ran at the previous step
            h_prev[:m] = rows.expected_h[starts[previous] : starts[previous] + m, columns]
            c_prev[:m] = impl["c"][starts[previous] : starts[previous] + m]
        step = slice(starts[t], starts[t] + n)
        want = lstm_cell(rows.inputs[step], h_prev, c_prev, params)._asdict()
        for name in INTERNALS:
            error = np.abs(impl[name][step] - want[name])
            if np.any(error > ctx.tol.atol + ctx.tol.rtol * np.abs(want[name])):
                return f"time step {t}, gate/state {name!r}, max abs err {float(error.max()):.3e}"
    return ""
