"""The per-case checks: each takes a Context (the implementation, the case, the oracle's
arrays) and returns how closely it agreed, or raises Divergence saying where it did not.

Which cases each check applies to, and which table rows it counts towards, is declared in
``rows.py``.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from ..contract.cases import Case
from ..contract.compare import Agreement, Divergence, Layout, compare
from .harness import (
    Arrays,
    CheckSkipped,
    Context,
    build,
    call,
    compare_all,
    expect_error,
    model_hx,
    model_input,
    model_masks,
    oracle_weights,
    output_layout,
)
from .localize import locate


def check_forward(ctx: Context) -> Agreement:
    """Whole sequence: output, h_n, c_n shapes, dtypes and values; inputs left untouched."""
    case, arrays = ctx.case, ctx.arrays
    x, hx, masks = model_input(case, arrays), model_hx(arrays), model_masks(case, arrays)
    if "error" in arrays:
        return expect_error(ctx, lambda: call(build(ctx.factory, case, arrays), x, hx, masks))
    model = build(ctx.factory, case, arrays)
    out, h_n, c_n = call(model, x, hx, masks)
    try:
        agreement = compare_all(case, arrays, ctx.tol, out, h_n, c_n)
        agreement.max_abs_vs_torch32 = distance_to_torch32(case, arrays, out, h_n, c_n)
    except Divergence as div:
        where = locate(ctx)
        raise Divergence(div.message + ("\n    " + where if where else ""), div.max_abs, div.ratio) from None
    pristine = model_input(case, arrays)
    if not np.array_equal(
        np.asarray(x[0] if case.packed else x),
        np.asarray(pristine[0] if case.packed else pristine),
        equal_nan=True,
    ):
        raise Divergence("the call modified its input array in place")
    if hx is not None and not (np.array_equal(hx[0], arrays["h0"]) and np.array_equal(hx[1], arrays["c0"])):
        raise Divergence("the call modified hx in place")
    return agreement


def distance_to_torch32(case: Case, arrays: Arrays, out: Any, h_n: Any, c_n: Any) -> float | None:
    """Max |actual - torch's own 32-bit result| over output, h_n and c_n (None for 64-bit cases)."""
    if "torch32_output" not in arrays:
        return None
    data = out[0] if case.packed else out
    pairs = ((data, "output"), (h_n, "h_n"), (c_n, "c_n"))
    with np.errstate(invalid="ignore"):
        gaps = [np.abs(np.asarray(got, np.complex128) - arrays["torch32_" + name]) for got, name in pairs]
    finite = [float(np.max(gap[np.isfinite(gap)])) for gap in gaps if np.isfinite(gap).any()]
    return max(finite, default=0.0)


def _time_axis(case: Case) -> int:
    return 1 if case.batch_first and case.form == "batched" else 0


def _run_chunks(ctx: Context, bounds: list[int]) -> tuple[np.ndarray, Any, Any]:
    case, arrays = ctx.case, ctx.arrays
    model = build(ctx.factory, case, arrays)
    x, axis = arrays["x"], _time_axis(case)
    state: Any = model_hx(arrays)
    outs = []
    for lo, hi in itertools.pairwise(bounds):
        chunk = np.take(x, np.arange(lo, hi), axis=axis)
        out, h, c = call(model, chunk, state, None)
        outs.append(out)
        state = (h, c)
    return np.concatenate(outs, axis=axis), state[0], state[1]


def check_stepwise(ctx: Context) -> Agreement:
    """One step per call carrying (h, c) == the whole sequence == torch's own stepwise run."""
    case, arrays = ctx.case, ctx.arrays
    out, h, c = _run_chunks(ctx, list(range(case.steps + 1)))
    agreement = compare_all(case, arrays, ctx.tol, out, h, c, "one step per call vs torch's whole sequence: ")
    torch_stepwise = {
        **arrays,
        "output": arrays["stepwise_output"],
        "h_n": arrays["stepwise_h_n"],
        "c_n": arrays["stepwise_c_n"],
    }
    return agreement.merge(
        compare_all(
            case, torch_stepwise, ctx.tol, out, h, c, "one step per call vs torch one step per call: "
        )
    )


def check_chunked(ctx: Context) -> Agreement:
    """Uneven chunks carrying (h, c) == the whole sequence."""
    n = ctx.case.steps
    bounds = sorted({0, 1, min(3, n), n}) if n >= 2 else [0, n]
    out, h, c = _run_chunks(ctx, bounds)
    return compare_all(ctx.case, ctx.arrays, ctx.tol, out, h, c, f"chunks {bounds}: ")


def check_batch_first(ctx: Context) -> Agreement:
    """batch_first transposes input and output only: a time-major model, same weights and
    transposed input, gives the transposed output and the same h_n, c_n."""
    case, arrays = ctx.case, ctx.arrays
    model = build(ctx.factory, case, arrays, batch_first=False)
    out, h, c = call(
        model, np.swapaxes(arrays["x"], 0, 1).copy(), model_hx(arrays), model_masks(case, arrays)
    )
    tm = replace(case, batch_first=False)
    expected_transposed = {**arrays, "output": np.swapaxes(arrays["output"], 0, 1)}
    return compare_all(tm, expected_transposed, ctx.tol, out, h, c, "time-major model on transposed input: ")


def check_unbatched(ctx: Context) -> Agreement:
    """Unbatched (L, H_in) input equals a batch of one, squeezed."""
    case, arrays = ctx.case, ctx.arrays
    model = build(ctx.factory, case, arrays)
    x = arrays["x"][None] if case.batch_first else arrays["x"][:, None]
    hx = model_hx(arrays)
    hx = None if hx is None else (hx[0][:, None].copy(), hx[1][:, None].copy())
    masks = model_masks(case, arrays)
    masks = None if masks is None else [m[:, None] for m in masks]
    out, h, c = call(model, x.copy(), hx, masks)
    batched = replace(case, form="batched", batch=1)
    expected_batch_of_one = {
        **arrays,
        "output": arrays["output"][None] if case.batch_first else arrays["output"][:, None],
        "h_n": arrays["h_n"][:, None],
        "c_n": arrays["c_n"][:, None],
    }
    return compare_all(batched, expected_batch_of_one, ctx.tol, out, h, c, "batch of one: ")


def unpack(arrays: Arrays, data: np.ndarray, b: int) -> np.ndarray:
    """Rows of original batch element ``b`` from packed ``data`` (time order)."""
    sizes = arrays["batch_sizes"]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    slot = int(np.flatnonzero(arrays["sorted_indices"] == b)[0]) if "sorted_indices" in arrays else b
    return np.stack([data[offsets[t] + slot] for t in range(len(sizes)) if sizes[t] > slot])


def check_packed_per_sequence(ctx: Context) -> Agreement:
    """Each packed sequence equals an independent dense run on its own prefix."""
    case, arrays = ctx.case, ctx.arrays
    model = build(ctx.factory, case, arrays)
    hx = model_hx(arrays)
    agreement = Agreement()
    for b, n in enumerate(arrays["lengths"]):
        x = arrays["x"][:n, b : b + 1]
        x = np.swapaxes(x, 0, 1).copy() if case.batch_first else x.copy()
        hx_b = None if hx is None else (hx[0][:, b : b + 1].copy(), hx[1][:, b : b + 1].copy())
        out, h, c = call(model, x, hx_b, None)
        dense = replace(case, form="batched", batch=1, steps=int(n))
        want = unpack(arrays, arrays["output"], b)[:, None]
        expected_alone = {
            **arrays,
            "output": np.swapaxes(want, 0, 1) if case.batch_first else want,
            "h_n": arrays["h_n"][:, b : b + 1],
            "c_n": arrays["c_n"][:, b : b + 1],
        }
        agreement = agreement.merge(
            compare_all(dense, expected_alone, ctx.tol, out, h, c, f"sequence {b} (length {n}) alone: ")
        )
    return agreement


def check_input_layout(ctx: Context) -> Agreement:
    """Non-contiguous (strided, Fortran-order) and read-only input and hx give the same result."""
    case, arrays = ctx.case, ctx.arrays
    model = build(ctx.factory, case, arrays)
    x = arrays["x"]
    wide = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype)
    wide[..., ::2] = x
    frozen = x.copy()
    frozen.flags.writeable = False
    hx = model_hx(arrays)
    if hx is not None:
        for a in hx:
            a.flags.writeable = False
    agreement = Agreement()
    for label, variant in (
        ("strided", wide[..., ::2]),
        ("Fortran-order", np.asfortranarray(x)),
        ("read-only", frozen),
    ):
        try:
            out, h, c = call(model, variant, hx, None)
        except Divergence as div:  # the call's result has the wrong type
            raise Divergence(f"{label} input: {div.message}") from None
        except Exception as exc:
            raise Divergence(f"{label} input: raised {type(exc).__name__}: {exc}") from exc
        agreement = agreement.merge(compare_all(case, arrays, ctx.tol, out, h, c, f"{label} input: "))
    return agreement


def check_state_dict(ctx: Context) -> Agreement:
    """Names, order and shapes as torch; a round trip is exact; a missing, unexpected or
    misshapen entry raises RuntimeError (torch's strict load_state_dict)."""
    case, arrays = ctx.case, ctx.arrays
    want = oracle_weights(arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ctx.factory(**case.config(), seed=0)
    got = model.state_dict()
    if list(got) != list(want):
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else f"order {list(got)}"
        raise Divergence(f"state_dict names differ from torch's {list(want)}: {detail}")
    for k in want:
        if tuple(np.shape(got[k])) != want[k].shape:
            raise Divergence(f"state_dict[{k!r}] has shape {np.shape(got[k])}, torch's is {want[k].shape}")
    model.load_state_dict(want)
    back = model.state_dict()
    for k in want:
        if np.asarray(back[k]).dtype != want[k].dtype or not np.array_equal(back[k], want[k]):
            raise Divergence(f"state_dict()[{k!r}] after load_state_dict is not the loaded array")
    first, last = next(iter(want)), list(want)[-1]
    bad = {
        f"missing {last!r}": {k: v for k, v in want.items() if k != last},
        f"unexpected 'weight_ih_l{case.num_layers}'": {**want, f"weight_ih_l{case.num_layers}": want[first]},
        f"misshapen {first!r}": {**want, first: np.concatenate([want[first], want[first][:1]])},
    }
    for label, sd in bad.items():
        try:
            model.load_state_dict(sd)
        except RuntimeError:
            continue
        except Exception as exc:
            raise Divergence(
                f"load_state_dict with {label} raised {type(exc).__name__}, torch raises RuntimeError"
            ) from exc
        raise Divergence(f"load_state_dict with {label} was accepted silently; torch raises RuntimeError")
    return Agreement()


def check_cell(ctx: Context) -> Agreement:
    """Stepping the implementation's LSTMCell, with the layer's weights, equals the LSTM."""
    case, arrays = ctx.case, ctx.arrays
    if ctx.cell is None:
        raise CheckSkipped("the implementation provides no LSTMCell (set conformance_cell to add one)")
    w = oracle_weights(arrays)
    cell = ctx.cell(case.input_size, case.hidden_size, bias=case.bias, dtype=np.dtype(case.dtype), seed=0)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in w.items()})
    x = arrays["x"]
    if case.form == "unbatched":
        steps = [x[t] for t in range(case.steps)]
    else:
        steps = [x[:, t] if case.batch_first else x[t] for t in range(case.steps)]
    state: Any = None if "h0" not in arrays else (arrays["h0"][0].copy(), arrays["c0"][0].copy())
    hs = []
    for xt in steps:
        state = cell(xt.copy(), state)
        hs.append(state[0])
    axis = 1 if case.batch_first and case.form == "batched" else 0
    out = np.stack(hs, axis=axis)
    agreement = compare(
        out, arrays["output"], ctx.tol, "LSTMCell steps: output", output_layout(case, arrays), case.dtype
    )
    rows = Layout("rows")
    agreement = agreement.merge(
        compare(state[0], arrays["h_n"][0], ctx.tol, "LSTMCell steps: final h", rows, case.dtype)
    )
    return agreement.merge(
        compare(state[1], arrays["c_n"][0], ctx.tol, "LSTMCell steps: final c", rows, case.dtype)
    )
