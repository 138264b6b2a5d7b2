"""The ``gradients`` row: the implementation's backward pass against torch.autograd.grad.

Two halves, both declared in ``rows.py``:

* ``produce_gradients`` (the oracle side): for every case torch can run, upstream gradients
  ``dout_output`` (packed: of the data), ``dout_h_n``, ``dout_c_n`` drawn from the case's seed,
  and ``torch.autograd.grad`` of the same forward (same weights, inputs and dropout masks) as
  ``grad_input`` (packed: of the data), ``grad_h0``, ``grad_c0`` and ``grad_<param>`` for every
  parameter.  When the case has no hx, torch is given zero leaves for (h0, c0), so
  ``grad_h0``/``grad_c0`` exist for every case.  Stored in the fixtures like every other array.
* ``check_gradients``: ``model.vjp(input, hx, dout_output, dout_h_n, dout_c_n,
  dropout_masks=...)`` (lstm_ref.LSTM's API) must return every one of those tensors, compared
  with ``tolerances.CONFORMANCE_GRADIENT`` (per tensor, relative to its scale).  The first
  diverging tensor is named with the worst element, max abs/rel error and tolerance.

An implementation without a ``vjp`` method is shown as "gradients: not supported" (skipped,
never failed); so is one that declares ``conformance_unsupported = {"gradients": ...}``.
"""

from __future__ import annotations

import warnings
import zlib
from typing import Any

import numpy as np

from ..contract.cases import Case
from ..contract.compare import Agreement, Divergence, check_form
from ..contract.tolerances import conformance_gradient_tolerance, forward_tolerance
from ..oracles import torch_oracle
from ..run.remote import type_name
from .harness import CheckSkipped, Context, build, model_hx, model_input, model_masks, state_layout

NOT_SUPPORTED = "gradients: not supported (the implementation has no vjp method)"
UPSTREAM = ("output", "h_n", "c_n")


# -- the oracle side: upstream gradients and torch.autograd.grad -----------------------------------


def upstream_gradients(case: Case, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``dout_*``: random upstream gradients shaped like output (packed: data), h_n, c_n,
    drawn from a seed derived from the case id (so a fixture and live torch agree)."""
    rng = np.random.default_rng(zlib.crc32(f"{case.id}/gradients".encode()))
    dt = np.dtype(case.dtype)
    out = {}
    for name in UPSTREAM:
        shape = arrays[name].shape
        if dt.kind == "c":
            value = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
        else:
            value = rng.standard_normal(shape)
        out["dout_" + name] = value.astype(dt)
    return out


def produce_gradients(
    case: Case, arrays: dict[str, np.ndarray], module: Any, inputs: dict[str, Any]
) -> dict[str, np.ndarray]:
    """The array producer: ``dout_*`` and torch's ``grad_*`` for ``case`` (nothing where the
    forward raised)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    if "error" in arrays:
        return {}
    upstream = upstream_gradients(case, arrays)
    with torch.enable_grad():
        x, leaf, h0, c0 = torch_oracle.differentiable_leaves(module, inputs["input"], inputs["hx"])
        torch.manual_seed(case.seed)  # the same dropout draw as the stored forward (and masks)
        out, (h_n, c_n) = module(x, (h0, c0))
        data = out.data if isinstance(out, PackedSequence) else out
        if case.replays_masks:
            # the forward differentiated used the stored masks: the same values up to rounding
            # (float32 with grad enabled leaves oneDNN's inference path: up to 3e-6 on saturated
            # inputs), where another draw would move them by O(0.1)
            tol = forward_tolerance(case.dtype)
            for name, got in (("output", data), ("h_n", h_n), ("c_n", c_n)):
                if not np.allclose(
                    torch_oracle.to_numpy(got), arrays[name], 100 * tol.rtol, 100 * tol.atol, equal_nan=True
                ):
                    raise RuntimeError(
                        f"{case.id}: the differentiated forward's dropout draw is not the stored masks'"
                    )
        grads = torch_oracle.autograd_vjp(
            module,
            (data, h_n, c_n),
            [leaf, h0, c0],
            [torch.from_numpy(upstream["dout_" + k].copy()) for k in UPSTREAM],
        )
    names = ["input", "h0", "c0", *(name for name, _ in module.named_parameters())]
    return {**upstream, **{"grad_" + n: torch_oracle.to_numpy(g) for n, g in zip(names, grads, strict=True)}}


# -- the check -------------------------------------------------------------------------------------


def _where(name: str, index: tuple[int, ...], case: Case) -> str:
    """A readable name for one element of gradient ``name``."""
    if not index:
        return "the only element"
    if name == "input":
        if case.packed:
            return f"packed row {index[0]}, feature {index[1]}"
        if case.form == "unbatched":
            return f"time step {index[0]}, feature {index[1]}"
        t, b = (index[1], index[0]) if case.batch_first else (index[0], index[1])
        return f"time step {t}, batch {b}, feature {index[2]}"
    if name in ("h0", "c0"):
        return state_layout(case).describe(index)
    if name.startswith(("weight_ih", "weight_hh", "bias_")):
        gate, unit = "ifgo"[index[0] // case.hidden_size], index[0] % case.hidden_size
        return f"gate {gate}, unit {unit}" + (f", column {index[1]}" if len(index) > 1 else "")
    return "row " + ", column ".join(str(i) for i in index)


def compare_gradient(got: Any, want: np.ndarray, name: str, case: Case) -> Agreement:
    """One gradient tensor: type, shape, dtype, NaN/Inf pattern, then the GRADIENT criterion
    ``max|got - want| <= rtol * max|want| + atol`` over the finite entries."""
    what = f"gradient of {name!r}"
    check_form(what, got, want, expected_by="torch's is")
    if want.size == 0:
        return Agreement()
    tol = conformance_gradient_tolerance(case.dtype)
    a, e = got.astype(np.complex128), want.astype(np.complex128)
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(e)
        pattern = (np.isnan(a) != np.isnan(e)) | (~finite & ~np.isnan(e) & (a != e))
        if np.any(pattern):
            ix = tuple(int(i) for i in np.argwhere(pattern)[0])
            raise Divergence(
                f"{what}: NaN/Inf pattern differs first at {_where(name, ix, case)}: got {got[ix]}, "
                f"torch has {want[ix]} ({int(pattern.sum())} elements differ)",
                float("inf"),
                float("inf"),
            )
        diff = np.where(finite, np.abs(a - e), 0.0).real
        diff = np.where(np.isnan(diff), np.inf, diff)
    scale = float(np.abs(np.where(finite, e, 0)).max())
    err = float(diff.max())
    bound = tol.rtol * scale + tol.atol
    if err > bound:
        ix = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        raise Divergence(
            f"{what} diverges: max abs err {err:.3e}, max rel err {err / scale if scale else float('inf'):.3e} "
            f"(relative to max|grad| {scale:.3e}); tolerance rtol={tol.rtol:g} * max|grad| + atol={tol.atol:g} "
            f"= {bound:.3e}; worst at {_where(name, ix, case)}: got {got[ix]}, torch {want[ix]}",
            err,
            err / bound,
        )
    return Agreement(err, err / bound)


def check_gradients(ctx: Context) -> Agreement:
    """vjp with the oracle's upstream gradients == torch.autograd.grad, tensor by tensor."""
    case, arrays = ctx.case, ctx.arrays
    try:
        model = build(ctx.factory, case, arrays)
    except Exception:
        if not callable(getattr(ctx.factory, "vjp", None)):  # no vjp anyway: the row cannot run
            raise CheckSkipped(NOT_SUPPORTED) from None
        raise
    vjp = getattr(model, "vjp", None)
    if not callable(vjp):
        raise CheckSkipped(NOT_SUPPORTED)
    masks = model_masks(case, arrays)
    args = (model_input(case, arrays), model_hx(arrays), *(arrays["dout_" + k].copy() for k in UPSTREAM))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = vjp(*args) if masks is None else vjp(*args, dropout_masks=masks)
    if not isinstance(got, dict):
        raise Divergence(f"vjp returned {type_name(got)}, expected a dict of gradients by name")
    expected = {k[len("grad_") :]: v for k, v in arrays.items() if k.startswith("grad_")}
    missing = [k for k in expected if k not in got]
    if missing:
        raise Divergence(f"vjp returned no gradient for {missing} (expected {list(expected)})")
    stat, failures = Agreement(), []
    for name, want in expected.items():
        try:
            stat = stat.merge(compare_gradient(got[name], want, name, case))
        except Divergence as exc:
            failures.append((name, exc))
    if failures:
        first = failures[0][1]
        others = [n for n, _ in failures[1:]]
        also = f"\n    also diverging: {', '.join(others)}" if others else ""
        raise Divergence(first.message + also, first.max_abs, first.ratio)
    return stat
