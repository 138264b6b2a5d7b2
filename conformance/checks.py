"""The registry of checks: feature name -> function(ctx) -> worst Stat, or raise Divergence.

Case checks run once per (case, oracle); suite checks run once per oracle (or once, for
oracle-free checks). The CLI and the pytest entry both iterate over this registry.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import lstm_ref

from .cases import Case
from .compare import Divergence, Layout, Stat, compare
from .errors import ERROR_CASES, ErrorCase, run_error_case
from .tolerances import DROPOUT_RATE_SIGMAS, Tolerance, forward_tolerance

Factory = Callable[..., Any]


@dataclass
class Context:
    factory: Factory
    case: Case
    exp: dict[str, np.ndarray]  # the oracle's arrays (inputs, weights, expected outputs)
    oracle: str
    cell: Factory | None = None  # the implementation's LSTMCell, if it has one

    @property
    def tol(self) -> Tolerance:
        return forward_tolerance(self.case.dtype)


# -- helpers -----------------------------------------------------------------------------------


def weights(exp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[2:]: v.copy() for k, v in exp.items() if k.startswith("w.")}


def build(
    factory: Factory,
    case: Case,
    exp: dict[str, np.ndarray],
    weights_: dict[str, np.ndarray] | None = None,
    **overrides: Any,
) -> Any:
    """factory(**config, seed=0), loaded with the oracle's weights, in the case's mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = factory(**{**case.config(), **overrides}, seed=0)
    model.load_state_dict(weights(exp) if weights_ is None else weights_)
    model.train(case.mode == "train")
    return model


def model_input(case: Case, exp: dict[str, np.ndarray]) -> Any:
    if case.packed:
        return lstm_ref.PackedSequence(
            exp["packed_data"].copy(),
            exp["batch_sizes"].copy(),
            exp["sorted_indices"].copy() if "sorted_indices" in exp else None,
            exp["unsorted_indices"].copy() if "unsorted_indices" in exp else None,
        )
    return exp["x"].copy()


def model_hx(exp: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    return (exp["h0"].copy(), exp["c0"].copy()) if "h0" in exp else None


def model_masks(case: Case, exp: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    if not case.replays_masks or "error" in exp:
        return None
    return [exp[f"mask_{k}"].copy() for k in range(case.num_layers - 1)]


def call(model: Any, x: Any, hx: Any, masks: list[np.ndarray] | None) -> tuple[Any, Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model(x, hx) if masks is None else model(x, hx, dropout_masks=masks)
    try:
        out, (h_n, c_n) = result
    except (TypeError, ValueError) as exc:
        raise Divergence(f"the call returned {type(result).__name__}, not (output, (h_n, c_n))") from exc
    return out, h_n, c_n


def output_layout(case: Case, exp: dict[str, np.ndarray], batch_first: bool | None = None) -> Layout:
    bf = case.batch_first if batch_first is None else batch_first
    kind = (
        "packed"
        if case.packed
        else "unbatched"
        if case.form == "unbatched"
        else "batch_first"
        if bf
        else "time_major"
    )
    return Layout(
        kind,
        case.num_directions,
        case.h_out,
        tuple(int(b) for b in exp.get("batch_sizes", ())),
        tuple(int(i) for i in exp["sorted_indices"]) if "sorted_indices" in exp else None,
    )


def state_layout(case: Case) -> Layout:
    return Layout("state_unbatched" if case.form == "unbatched" else "state", case.num_directions)


def packed_output_data(case: Case, exp: dict[str, np.ndarray], out: Any) -> np.ndarray:
    """Check the PackedSequence bookkeeping fields and return its data."""
    fields = ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    if not (isinstance(out, tuple) and len(out) == 4):
        raise Divergence(f"packed input: output is {type(out).__name__}, expected a PackedSequence")
    for name, got in zip(fields[1:], out[1:], strict=True):
        want = exp.get(name)
        if (want is None) != (got is None) or (
            want is not None and not np.array_equal(np.asarray(got), want)
        ):
            raise Divergence(f"packed output: {name} is {got!r}, expected {want!r} (the input's)")
    return out[0]  # type: ignore[no-any-return]


def compare_all(
    case: Case, exp: dict[str, np.ndarray], tol: Tolerance, out: Any, h_n: Any, c_n: Any, label: str = ""
) -> Stat:
    data = packed_output_data(case, exp, out) if case.packed else out
    stat = compare(data, exp["output"], tol, f"{label}output", output_layout(case, exp))
    stat = stat.merge(compare(h_n, exp["h_n"], tol, f"{label}h_n", state_layout(case)))
    return stat.merge(compare(c_n, exp["c_n"], tol, f"{label}c_n", state_layout(case)))


def expect_error(ctx: Context, run: Callable[[], Any]) -> Stat:
    expected = str(ctx.exp["error"])
    try:
        run()
    except Exception as exc:
        if type(exc).__name__ == expected:
            return Stat()
        raise Divergence(f"raised {type(exc).__name__}: {exc}; torch raises {expected}") from exc
    raise Divergence(f"returned normally; torch raises {expected} on this case")


# -- localisation: which layer, direction, step and (for lstm_ref-shaped impls) gate ---------


def _noise(case: Case, exp: dict[str, np.ndarray], layer: int, like: np.ndarray) -> np.ndarray | None:
    """torch's dropout noise on the input of layer ``layer + 1``, in ``like``'s layout."""
    dt = np.dtype(case.dtype)
    if case.mode != "train" or case.num_layers == 1 or case.p == 0:
        return None
    if case.p == 1:
        return np.zeros((), dtype=dt)
    keep = exp[f"mask_{layer}"].astype(dt) * (dt.type(1) / dt.type(1 - case.p))
    if case.batch_first and case.form == "batched":
        keep = np.swapaxes(keep, 0, 1)
    return keep.reshape(like.shape)


def layer_input(case: Case, exp: dict[str, np.ndarray], layer: int) -> Any:
    if layer == 0:
        return model_input(case, exp)
    prev = exp[f"layer_{layer - 1}_output"]
    noise = _noise(case, exp, layer - 1, prev)
    data = prev if noise is None else prev * noise
    if case.packed:
        base = model_input(case, exp)
        return lstm_ref.PackedSequence(data, *base[1:])
    return data


def locate(ctx: Context) -> str:
    """Rerun layer by layer, each single-layer model fed the oracle's layer input."""
    case, exp, tol = ctx.case, ctx.exp, ctx.tol
    d = case.num_directions
    if case.num_layers > 1 and "layer_0_output" not in exp:
        return ""
    for layer in range(case.num_layers):
        features = case.input_size if layer == 0 else d * case.h_out
        sub = {
            k[2:].replace(f"_l{layer}", "_l0"): v.copy()
            for k, v in exp.items()
            if k.startswith("w.") and f"_l{layer}" in k
        }
        single_case = replace(case, num_layers=1, input_size=features, mode="eval", dropout=0.0)
        try:
            model = build(ctx.factory, single_case, exp, weights_=sub)
            x = layer_input(case, exp, layer)
            hx = model_hx(exp)
            if hx is not None:
                hx = (hx[0][layer * d : (layer + 1) * d], hx[1][layer * d : (layer + 1) * d])
            out, h_n, c_n = call(model, x, hx, None)
            expected_out = exp["output"] if layer == case.num_layers - 1 else exp[f"layer_{layer}_output"]
            layer_exp = {
                **exp,
                "output": expected_out,
                "h_n": exp["h_n"][layer * d : (layer + 1) * d],
                "c_n": exp["c_n"][layer * d : (layer + 1) * d],
            }
            data = packed_output_data(case, exp, out) if case.packed else out
            compare(data, expected_out, tol, f"layer {layer} output", output_layout(case, exp))
            state = replace(state_layout(case), layer_offset=layer)
            compare(h_n, layer_exp["h_n"], tol, f"layer {layer} h_n", state)
            compare(c_n, layer_exp["c_n"], tol, f"layer {layer} c_n", state)
        except Divergence as div:
            gate = _locate_gate(ctx, model, x, hx, layer) if isinstance(model, lstm_ref.LSTM) else ""
            return (
                f"Run alone on the reference's layer-{layer} input, layer {layer} diverges: {div.message}"
                + gate
            )
        except Exception as exc:  # the single-layer rerun itself failed
            return f"(could not rerun layer {layer} alone: {type(exc).__name__}: {exc})"
    return (
        "Every layer matches when run alone on the reference's layer input, so the divergence is "
        "in how layers are stacked: dropout between layers, layer wiring, or h_n/c_n assembly."
    )


def _rows(case: Case, a: np.ndarray) -> np.ndarray:
    """An array in the case's layout (time-major / batch-first / unbatched / packed rows)
    -> packed time-major rows (S, F), the layout lstm_ref's internals use."""
    if case.packed:
        return a
    if case.form == "unbatched":
        return a
    if case.batch_first:
        a = np.swapaxes(a, 0, 1)
    return a.reshape(-1, a.shape[-1])


def _locate_gate(ctx: Context, model: Any, x: Any, hx: Any, layer: int) -> str:
    """For lstm_ref-shaped impls: the first gate (i, f, g, o), c or h that is off, in processing
    order, against the cell equations evaluated in 64-bit on the oracle's weights, the oracle's
    previous h and the impl's own previous c (which agreed until then)."""
    case, exp = ctx.case, ctx.exp
    if case.batch_size == 0:
        return ""
    try:
        tr = lstm_ref.trace(model, x, hx)
    except Exception:
        return ""
    d, hid, h_out = case.num_directions, case.hidden_size, case.h_out
    wide = np.complex128 if case.dtype.startswith("complex") else np.float64
    sizes = [int(n) for n in exp["batch_sizes"]] if case.packed else [case.batch_size] * case.steps
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    order = [int(i) for i in exp["sorted_indices"]] if "sorted_indices" in exp else list(range(sizes[0]))
    xs = _rows(case, np.asarray(x[0] if case.packed else x, dtype=wide))
    out_exp = exp["output"] if layer == case.num_layers - 1 else exp[f"layer_{layer}_output"]
    out_exp = _rows(case, np.asarray(out_exp, dtype=wide))
    tol = ctx.tol

    def sig(z: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return 1 / (1 + np.exp(-z))  # type: ignore[no-any-return]

    for direction in range(d):
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        w = {
            k[2:].replace(sfx, ""): np.asarray(v, dtype=wide)
            for k, v in exp.items()
            if k == "w." + k[2:].split(sfx)[0] + sfx
        }
        t_dir = tr.at(0, direction)
        time_major = replace(case, batch_first=False)  # trace arrays are time-major
        impl = {
            n: _rows(time_major, np.asarray(getattr(t_dir, n))).astype(wide)
            for n in ("i", "f", "g", "o", "c", "h")
        }
        h0 = None if hx is None else np.asarray(hx[0][direction], dtype=wide).reshape(-1, h_out)
        c0 = None if hx is None else np.asarray(hx[1][direction], dtype=wide).reshape(-1, hid)
        steps = range(len(sizes) - 1, -1, -1) if direction else range(len(sizes))
        cols = slice(direction * h_out, (direction + 1) * h_out)
        for t in steps:
            n = sizes[t]
            rows = slice(offsets[t], offsets[t] + n)
            prev = t + 1 if direction else t - 1
            h_prev = np.zeros((n, h_out), wide) if h0 is None else h0[order[:n]].copy()
            c_prev = np.zeros((n, hid), wide) if c0 is None else c0[order[:n]].copy()
            if 0 <= prev < len(sizes):
                m = min(n, sizes[prev])  # slots that also ran at the previous processed step
                h_prev[:m] = out_exp[offsets[prev] : offsets[prev] + m, cols]
                c_prev[:m] = impl["c"][offsets[prev] : offsets[prev] + m]
            z = xs[rows] @ w["weight_ih"].T + h_prev @ w["weight_hh"].T
            if case.bias:
                z = z + w["bias_ih"] + w["bias_hh"]
            i, f, g, o = (z[:, k * hid : (k + 1) * hid] for k in range(4))
            want = {"i": sig(i), "f": sig(f), "g": np.tanh(g), "o": sig(o)}
            want["c"] = want["f"] * c_prev + want["i"] * want["g"]
            cell_h = want["o"] * np.tanh(want["c"])
            want["h"] = cell_h @ w["weight_hr"].T if case.proj_size else cell_h
            for name in ("i", "f", "g", "o", "c", "h"):
                err = np.abs(impl[name][rows] - want[name])
                if np.any(err > tol.atol + tol.rtol * np.abs(want[name])):
                    return (
                        f"\n    first internal divergence (lstm_ref.trace vs the cell equations): "
                        f"layer {layer}, direction {direction}, time step {t}, gate/state {name!r}, "
                        f"max abs err {float(err.max()):.3e}"
                    )
    return ""


# -- case checks ---------------------------------------------------------------------------------


def check_forward(ctx: Context) -> Stat:
    """Whole sequence: output, h_n, c_n shapes, dtypes and values; inputs left untouched."""
    case, exp = ctx.case, ctx.exp
    x, hx, masks = model_input(case, exp), model_hx(exp), model_masks(case, exp)
    if "error" in exp:
        return expect_error(ctx, lambda: call(build(ctx.factory, case, exp), x, hx, masks))
    model = build(ctx.factory, case, exp)
    out, h_n, c_n = call(model, x, hx, masks)
    try:
        stat = compare_all(case, exp, ctx.tol, out, h_n, c_n)
    except Divergence as div:
        where = locate(ctx)
        raise Divergence(div.message + ("\n    " + where if where else ""), div.max_abs, div.ratio) from None
    pristine = model_input(case, exp)
    if not np.array_equal(
        np.asarray(x[0] if case.packed else x),
        np.asarray(pristine[0] if case.packed else pristine),
        equal_nan=True,
    ):
        raise Divergence("the call modified its input array in place")
    if hx is not None and not (np.array_equal(hx[0], exp["h0"]) and np.array_equal(hx[1], exp["c0"])):
        raise Divergence("the call modified hx in place")
    return stat


def _time_axis(case: Case) -> int:
    return 1 if case.batch_first and case.form == "batched" else 0


def _run_chunks(ctx: Context, bounds: list[int]) -> tuple[np.ndarray, Any, Any]:
    case, exp = ctx.case, ctx.exp
    model = build(ctx.factory, case, exp)
    x, state, axis = exp["x"], model_hx(exp), _time_axis(case)
    outs = []
    for lo, hi in itertools.pairwise(bounds):
        chunk = np.take(x, np.arange(lo, hi), axis=axis)
        out, h, c = call(model, chunk, state, None)
        outs.append(out)
        state = (h, c)
    return np.concatenate(outs, axis=axis), state[0], state[1]


def check_stepwise(ctx: Context) -> Stat:
    """One step per call carrying (h, c) == the whole sequence == torch's own stepwise run."""
    case, exp = ctx.case, ctx.exp
    out, h, c = _run_chunks(ctx, list(range(case.steps + 1)))
    stat = compare_all(case, exp, ctx.tol, out, h, c, "stepwise vs whole-sequence ")
    stepwise = {
        **exp,
        "output": exp["stepwise_output"],
        "h_n": exp["stepwise_h_n"],
        "c_n": exp["stepwise_c_n"],
    }
    return stat.merge(compare_all(case, stepwise, ctx.tol, out, h, c, "stepwise vs torch stepwise "))


def check_chunked(ctx: Context) -> Stat:
    """Uneven chunks carrying (h, c) == the whole sequence."""
    n = ctx.case.steps
    bounds = sorted({0, 1, min(3, n), n}) if n >= 2 else [0, n]
    out, h, c = _run_chunks(ctx, bounds)
    return compare_all(ctx.case, ctx.exp, ctx.tol, out, h, c, f"chunks {bounds}: ")


def check_batch_first(ctx: Context) -> Stat:
    """batch_first transposes input and output only: a time-major model, same weights and
    transposed input, gives the transposed output and the same h_n, c_n."""
    case, exp = ctx.case, ctx.exp
    model = build(ctx.factory, case, exp, batch_first=False)
    out, h, c = call(model, np.swapaxes(exp["x"], 0, 1).copy(), model_hx(exp), model_masks(case, exp))
    tm = replace(case, batch_first=False)
    tm_exp = {**exp, "output": np.swapaxes(exp["output"], 0, 1)}
    return compare_all(tm, tm_exp, ctx.tol, out, h, c, "time-major model on transposed input: ")


def check_unbatched(ctx: Context) -> Stat:
    """Unbatched (L, H_in) input equals a batch of one, squeezed."""
    case, exp = ctx.case, ctx.exp
    model = build(ctx.factory, case, exp)
    x = exp["x"][None] if case.batch_first else exp["x"][:, None]
    hx = model_hx(exp)
    hx = None if hx is None else (hx[0][:, None].copy(), hx[1][:, None].copy())
    masks = model_masks(case, exp)
    masks = None if masks is None else [m[:, None] for m in masks]
    out, h, c = call(model, x.copy(), hx, masks)
    batched = replace(case, form="batched", batch=1)
    b_exp = {
        **exp,
        "output": exp["output"][None] if case.batch_first else exp["output"][:, None],
        "h_n": exp["h_n"][:, None],
        "c_n": exp["c_n"][:, None],
    }
    return compare_all(batched, b_exp, ctx.tol, out, h, c, "batch of one: ")


def unpack(exp: dict[str, np.ndarray], data: np.ndarray, b: int) -> np.ndarray:
    """Rows of original batch element ``b`` from packed ``data`` (time order)."""
    sizes = exp["batch_sizes"]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    slot = int(np.flatnonzero(exp["sorted_indices"] == b)[0]) if "sorted_indices" in exp else b
    return np.stack([data[offsets[t] + slot] for t in range(len(sizes)) if sizes[t] > slot])


def check_packed_per_sequence(ctx: Context) -> Stat:
    """Each packed sequence equals an independent dense run on its own prefix."""
    case, exp = ctx.case, ctx.exp
    model = build(ctx.factory, case, exp)
    hx = model_hx(exp)
    stat = Stat()
    for b, n in enumerate(exp["lengths"]):
        x = exp["x"][:n, b : b + 1]
        x = np.swapaxes(x, 0, 1).copy() if case.batch_first else x.copy()
        hx_b = None if hx is None else (hx[0][:, b : b + 1].copy(), hx[1][:, b : b + 1].copy())
        out, h, c = call(model, x, hx_b, None)
        dense = replace(case, form="batched", batch=1, steps=int(n))
        want = unpack(exp, exp["output"], b)[:, None]
        d_exp = {
            **exp,
            "output": np.swapaxes(want, 0, 1) if case.batch_first else want,
            "h_n": exp["h_n"][:, b : b + 1],
            "c_n": exp["c_n"][:, b : b + 1],
        }
        stat = stat.merge(compare_all(dense, d_exp, ctx.tol, out, h, c, f"sequence {b} (length {n}) alone: "))
    return stat


def check_input_layout(ctx: Context) -> Stat:
    """Non-contiguous (strided, Fortran-order) and read-only input and hx give the same result."""
    case, exp = ctx.case, ctx.exp
    model = build(ctx.factory, case, exp)
    x = exp["x"]
    wide = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype)
    wide[..., ::2] = x
    frozen = x.copy()
    frozen.flags.writeable = False
    hx = model_hx(exp)
    if hx is not None:
        for a in hx:
            a.flags.writeable = False
    stat = Stat()
    for label, variant in (
        ("strided", wide[..., ::2]),
        ("Fortran-order", np.asfortranarray(x)),
        ("read-only", frozen),
    ):
        try:
            out, h, c = call(model, variant, hx, None)
        except Exception as exc:
            raise Divergence(f"{label} input: raised {type(exc).__name__}: {exc}") from exc
        stat = stat.merge(compare_all(case, exp, ctx.tol, out, h, c, f"{label} input: "))
    return stat


def check_state_dict(ctx: Context) -> Stat:
    """Names, order and shapes as torch; a round trip is exact; a missing, unexpected or
    misshapen entry raises RuntimeError (torch's strict load_state_dict)."""
    case, exp = ctx.case, ctx.exp
    want = weights(exp)
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
    return Stat()


class CellMissing(Exception):
    """The implementation provides no LSTMCell (the cell row is optional)."""


def check_cell(ctx: Context) -> Stat:
    """Stepping the implementation's LSTMCell, with the layer's weights, equals the LSTM."""
    case, exp = ctx.case, ctx.exp
    if ctx.cell is None:
        raise CellMissing("the implementation provides no LSTMCell (set conformance_cell to add one)")
    w = weights(exp)
    cell = ctx.cell(case.input_size, case.hidden_size, bias=case.bias, dtype=np.dtype(case.dtype), seed=0)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in w.items()})
    x = exp["x"]
    if case.form == "unbatched":
        steps = [x[t] for t in range(case.steps)]
    else:
        steps = [x[:, t] if case.batch_first else x[t] for t in range(case.steps)]
    state = None if "h0" not in exp else (exp["h0"][0].copy(), exp["c0"][0].copy())
    hs = []
    for xt in steps:
        state = cell(xt.copy(), state)
        hs.append(state[0])
    axis = 1 if case.batch_first and case.form == "batched" else 0
    out = np.stack(hs, axis=axis)
    stat = compare(out, exp["output"], ctx.tol, "LSTMCell steps: output", output_layout(case, exp))
    rows = Layout("rows")
    stat = stat.merge(compare(state[0], exp["h_n"][0], ctx.tol, "LSTMCell steps: final h", rows))
    return stat.merge(compare(state[1], exp["c_n"][0], ctx.tol, "LSTMCell steps: final c", rows))


@dataclass(frozen=True)
class CaseCheck:
    name: str
    fn: Callable[[Context], Stat]
    applies: Callable[[Case, dict[str, np.ndarray]], bool]
    features: Callable[[Case], tuple[str, ...]]
    every_oracle: bool = True  # False: metamorphic checks, run against the first oracle only


def _ok(exp: dict[str, np.ndarray]) -> bool:
    return "error" not in exp


CASE_CHECKS: list[CaseCheck] = [
    CaseCheck(
        "cell",
        check_cell,
        lambda c, e: (
            _ok(e)
            and c.num_layers == 1
            and not c.bidirectional
            and not c.proj_size
            and c.form in ("batched", "unbatched")
            and c.batch_size > 0
            and c.steps <= 50
        ),
        lambda c: ("cell",),
        every_oracle=False,
    ),
    CaseCheck("forward", check_forward, lambda c, e: True, lambda c: c.features()),
    CaseCheck(
        "stepwise",
        check_stepwise,
        lambda c, e: _ok(e) and "stepwise_output" in e,
        lambda c: ("stepwise", c.dtype),
    ),
    CaseCheck(
        "chunked",
        check_chunked,
        lambda c, e: _ok(e) and "stepwise_output" in e and c.steps >= 3,
        lambda c: ("chunked", c.dtype),
    ),
    CaseCheck(
        "batch_first",
        check_batch_first,
        lambda c, e: _ok(e) and c.batch_first and c.form == "batched",
        lambda c: ("batch_first", c.dtype),
        every_oracle=False,
    ),
    CaseCheck(
        "unbatched",
        check_unbatched,
        lambda c, e: _ok(e) and c.form == "unbatched",
        lambda c: ("unbatched", c.dtype),
        every_oracle=False,
    ),
    CaseCheck(
        "packed_per_sequence",
        check_packed_per_sequence,
        lambda c, e: _ok(e) and c.packed and not c.replays_masks,
        lambda c: (c.form, c.dtype),
        every_oracle=False,
    ),
    CaseCheck(
        "input_layout",
        check_input_layout,
        lambda c, e: (
            _ok(e) and c.form == "batched" and not c.replays_masks and c.batch_size > 0 and c.steps <= 50
        ),
        lambda c: ("edge_layout", c.dtype),
        every_oracle=False,
    ),
    CaseCheck(
        "state_dict",
        check_state_dict,
        lambda c, e: not c.probe and not c.edge and c.form in ("batched", "packed_sorted"),
        lambda c: ("state_dict",),
        every_oracle=False,
    ),
]


# -- suite checks --------------------------------------------------------------------------------


def check_error_case(factory: Factory, case: ErrorCase, torch_type: str) -> Stat:
    got = run_error_case(factory, case)
    if got == torch_type or (got is None and torch_type == "none"):
        return Stat()
    raise Divergence(
        f"error case {case.id}: {'raised ' + got if got else 'raised nothing'}; torch raises {torch_type}"
    )


def check_dropout_statistics(factory: Factory) -> Stat:
    """For implementations drawing their own masks: drop rate ~ p, kept values scaled by
    1/(1-p), masks redrawn per call and per element, eval deterministic.

    Layer 1 is wired so its output unit j is exactly 0 iff input unit j was dropped:
    g = tanh(x_j) alone (i and o saturated open, f shut, no recurrence), so
    h1_j = o * tanh(i * tanh(x_j)), with x_j = mask_j * y0_j / (1 - p)."""
    hidden, p, steps, batch = 8, 0.4, 40, 8
    case = Case(
        num_layers=2,
        hidden_size=hidden,
        input_size=3,
        steps=steps,
        batch=batch,
        dropout=p,
        name="dropout-stats",
    )
    data = case.make_data()
    w = weights(data)
    eye, big = np.eye(hidden), 40.0  # sigmoid(40) == 1.0 and sigmoid(-40) ~ 4e-18 in float64
    w["weight_ih_l1"] = np.zeros((4 * hidden, hidden))
    w["weight_ih_l1"][2 * hidden : 3 * hidden] = eye
    w["weight_hh_l1"][:] = 0
    w["bias_ih_l1"][:] = 0
    w["bias_hh_l1"][:] = 0
    w["bias_ih_l1"][:hidden] = big  # i open
    w["bias_ih_l1"][hidden : 2 * hidden] = -big  # f shut
    w["bias_ih_l1"][3 * hidden :] = big  # o open
    model = build(factory, replace(case, mode="train"), data, weights_=w)
    x = data["x"]
    outs = [call(model, x.copy(), None, None)[0] for _ in range(2)]
    layer0 = build(
        factory,
        replace(case, num_layers=1, dropout=0.0),
        data,
        weights_={k: v for k, v in w.items() if "_l0" in k},
    )
    layer0.eval()
    y0 = call(layer0, x.copy(), None, None)[0]
    sig = 1 / (1 + np.exp(-big))
    expected_kept = sig * np.tanh(sig * np.tanh(y0 / (1 - p)))
    n = outs[0].size
    sigma = np.sqrt(p * (1 - p) / n)
    worst = 0.0
    for k, out in enumerate(outs):
        dropped = np.abs(out) < 1e-12  # exactly o * tanh(i * tanh(0)) + O(sigmoid(-40))
        rate = float(dropped.mean())
        if abs(rate - p) > DROPOUT_RATE_SIGMAS * sigma:
            raise Divergence(
                f"train call {k}: {rate:.3f} of layer-1 inputs dropped, expected p={p} "
                f"(+-{DROPOUT_RATE_SIGMAS:g} sigma = {DROPOUT_RATE_SIGMAS * sigma:.3f}); "
                "dropout between layers only, never after the last layer"
            )
        worst = max(worst, abs(rate - p))
        compare(
            np.where(dropped, expected_kept, out),
            expected_kept,
            forward_tolerance(np.float64),
            "kept units (scaled by 1/(1-p))",
            Layout("time_major"),
        )
        per_step = dropped.reshape(steps, -1)
        if np.all(per_step == per_step[:1]):
            raise Divergence("the same dropout mask is used at every time step; torch draws per element")
    if np.array_equal(outs[0], outs[1]):
        raise Divergence("two train-mode calls gave identical outputs: masks are not redrawn per call")
    model.eval()
    e1, e2 = (call(model, x.copy(), None, None)[0] for _ in range(2))
    if not np.array_equal(e1, e2):
        raise Divergence("eval mode is not deterministic")
    if not np.all(e1 != 0):
        raise Divergence("eval mode dropped units")
    return Stat(worst, worst / (DROPOUT_RATE_SIGMAS * sigma))


SUITE_CHECKS = {"errors": ERROR_CASES, "dropout_statistics": check_dropout_statistics}
