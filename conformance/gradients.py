"""The ``gradients`` row: the implementation's backward pass against torch.autograd.grad.

An extension module (see ``extensions.py``); importing it

* registers an array producer: for every case torch can run, the oracle draws upstream
  gradients ``dout_output`` (packed: the data), ``dout_h_n``, ``dout_c_n`` from the case's
  seed and stores ``torch.autograd.grad`` of the same forward (same weights, inputs and
  dropout masks) as ``grad_input`` (packed: of the data), ``grad_h0``, ``grad_c0`` and
  ``grad_<param>`` for every parameter.  When the case has no hx, torch is given zero
  leaves for (h0, c0), so ``grad_h0``/``grad_c0`` exist for every case.  The same arrays come
  from live torch and, stored, from the fixtures (checked with torch absent);
* appends the ``gradients`` CaseCheck: ``model.vjp(input, hx, dout_output, dout_h_n,
  dout_c_n, dropout_masks=...)`` (lstm_ref.LSTM's API) must return every one of those
  tensors, compared with ``tolerances.CONFORMANCE_GRADIENT`` (per tensor, relative to its scale).  The
  first diverging tensor is named with the worst element, max abs/rel error and tolerance;
* gives the ``--impl torch`` adapter a ``vjp`` (torch.autograd.grad), so torch itself is
  checked against the gradient fixtures.

An implementation without a ``vjp`` method is shown as "gradients: not supported" (skipped,
never failed); so is one that declares ``conformance_unsupported = {"gradients": ...}``.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

import lstm_ref

from . import checks, runner, torch_oracle
from .cases import Case
from .compare import Divergence, Stat, check_form
from .tolerances import conformance_gradient_tolerance, forward_tolerance

FEATURE = "gradients"
NOT_SUPPORTED = "gradients: not supported (the implementation has no vjp method)"
UPSTREAM = ("output", "h_n", "c_n")


class GradientsSkipped(checks.CellMissing):
    """No gradient check for this case: the runner shows it as skipped, with the reason.

    (``checks.CellMissing`` is the runner's "optional capability absent" skip.)"""


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


def _zero_state(module: Any, x: Any, width: int) -> Any:
    """torch's implicit zero h0/c0 (hx=None) as an explicit tensor, shaped like hx."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    lead = int(module.num_layers) * (2 if module.bidirectional else 1)
    dtype = next(module.parameters()).dtype
    if isinstance(x, PackedSequence):
        shape: tuple[int, ...] = (lead, int(x.batch_sizes[0]), width)
    elif x.dim() == 2:
        shape = (lead, width)
    else:
        shape = (lead, x.shape[0 if module.batch_first else 1], width)
    return torch.zeros(shape, dtype=dtype)


def _leaves(module: Any, x: Any, hx: Any) -> tuple[Any, Any, Any, Any]:
    """(input to call with, its differentiable leaf (packed: the data), h0 leaf, c0 leaf)."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(x, PackedSequence):
        leaf = x.data.detach().clone().requires_grad_()
        x = PackedSequence(leaf, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    else:
        leaf = x = x.detach().clone().requires_grad_()
    if hx is None:
        h0 = _zero_state(module, x, int(module.proj_size) or int(module.hidden_size))
        c0 = _zero_state(module, x, int(module.hidden_size))
    else:
        h0, c0 = hx
    return x, leaf, h0.detach().clone().requires_grad_(), c0.detach().clone().requires_grad_()


def _autograd(
    module: Any, outs: tuple[Any, Any, Any], leaves: list[Any], upstream: Sequence[Any]
) -> list[Any]:
    """torch.autograd.grad(outs, leaves + parameters, upstream), as the gradient of the real
    scalar ``sum(Re(conj(u) * out))``: the same vector-Jacobian product (the upstream reaching
    each output is exactly ``u``), without grad_outputs (whose first use costs a 1 s import)."""
    import torch

    loss: Any = sum(
        torch.real(torch.conj(u) * o).sum() if o.is_complex() else (u * o).sum()
        for o, u in zip(outs, upstream, strict=True)
    )
    grads = torch.autograd.grad(loss, [*leaves, *module.parameters()], allow_unused=True)
    return [
        torch.zeros_like(t) if g is None else g
        for g, t in zip(grads, [*leaves, *module.parameters()], strict=True)
    ]


def produce(
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
        x, leaf, h0, c0 = _leaves(module, inputs["input"], inputs["hx"])
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
                    torch_oracle._np(got), arrays[name], 100 * tol.rtol, 100 * tol.atol, equal_nan=True
                ):
                    raise RuntimeError(
                        f"{case.id}: the differentiated forward's dropout draw is not the stored masks'"
                    )
        grads = _autograd(
            module,
            (data, h_n, c_n),
            [leaf, h0, c0],
            [torch.from_numpy(upstream["dout_" + k].copy()) for k in UPSTREAM],
        )
    names = ["input", "h0", "c0", *(name for name, _ in module.named_parameters())]
    return {**upstream, **{"grad_" + n: torch_oracle._np(g) for n, g in zip(names, grads, strict=True)}}


torch_oracle.register_array_producer(produce)


# -- the --impl torch adapter's vjp -----------------------------------------------------------------


def _layered(module: Any, x: Any, hx: tuple[Any, Any], noise: list[Any]) -> tuple[Any, Any, Any]:
    """``torch_oracle.run_layers`` with the single-layer modules sharing ``module``'s
    Parameters, so that autograd reaches them (dropout noise between layers)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    d = 2 if module.bidirectional else 1
    unbatched = not isinstance(x, PackedSequence) and x.dim() == 2
    layer_input, hs, cs = x, [], []
    for layer in range(int(module.num_layers)):
        single = torch_oracle._single_layer(module, layer)
        for name in list(single._parameters):
            single._parameters[name] = module._parameters[name.replace("_l0", f"_l{layer}")]
        out, (h, c) = single(
            layer_input, (hx[0][layer * d : (layer + 1) * d], hx[1][layer * d : (layer + 1) * d])
        )
        hs.append(h)
        cs.append(c)
        layer_input = out
        if layer < int(module.num_layers) - 1:
            n = noise[layer]
            if isinstance(out, PackedSequence):
                layer_input = PackedSequence(
                    out.data * n, out.batch_sizes, out.sorted_indices, out.unsorted_indices
                )
            elif unbatched:
                layer_input = out * n.reshape(out.shape)
            elif module.batch_first:
                layer_input = out * n.transpose(0, 1)
            else:
                layer_input = out * n
    return out, torch.cat(hs, 0), torch.cat(cs, 0)


def torch_vjp(
    self: Any,
    input: Any,
    hx: Any,
    grad_output: Any,
    grad_h_n: Any = None,
    grad_c_n: Any = None,
    *,
    dropout_masks: Sequence[Any] | None = None,
) -> dict[str, np.ndarray]:
    """``TorchLSTM.vjp``: torch.autograd.grad of the adapter's forward (lstm_ref.LSTM.vjp's API)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    m = self.module
    with torch.enable_grad(), torch_oracle.one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        x0 = torch_oracle._to_torch_input(input)
        t_hx = None if hx is None else torch_oracle._to_torch_hx(hx)
        x, leaf, h0, c0 = _leaves(m, x0, t_hx)
        p, layers = float(m.dropout), int(m.num_layers)
        if m.training and 0 < p < 1 and layers > 1:
            if torch.is_complex(next(m.parameters())):
                raise NotImplementedError('"bernoulli_scalar_cpu_" not implemented for complex dtypes')
            if dropout_masks is None:
                raise ValueError("vjp in training mode with dropout needs dropout_masks")
            wdtype = next(m.parameters()).dtype
            noise = [torch.from_numpy(np.asarray(k) != 0).to(wdtype).div_(1 - p) for k in dropout_masks]
            out, h_n, c_n = _layered(m, x, (h0, c0), noise)
        else:
            out, (h_n, c_n) = m(x, (h0, c0))
        data = out.data if isinstance(out, PackedSequence) else out
        if isinstance(grad_output, lstm_ref.PackedSequence):
            grad_output = grad_output.data
        upstream = [
            torch.zeros_like(t)
            if g is None
            else torch.from_numpy(np.array(g, dtype=torch_oracle._np(t).dtype))
            for g, t in ((grad_output, data), (grad_h_n, h_n), (grad_c_n, c_n))
        ]
        grads = _autograd(m, (data, h_n, c_n), [leaf, h0, c0], upstream)
    names = ["input", "h0", "c0", *(name for name, _ in m.named_parameters())]
    return {n: torch_oracle._np(g) for n, g in zip(names, grads, strict=True)}


torch_oracle.TorchLSTM.vjp = torch_vjp  # type: ignore[attr-defined]


# -- the check -------------------------------------------------------------------------------------


def _declared_unsupported(factory: Any, case: Case) -> str | None:
    declared = dict(getattr(factory, "conformance_unsupported", {}) or {})
    rows = {row: reason for key, reason in declared.items() for row in runner.ALIASES.get(key, (key,))}
    for feature in case.features():
        if feature in rows:
            return f"implementation declares {feature!r} unsupported: {rows[feature]}"
    return None


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
        return checks.state_layout(case).describe(index)
    if name.startswith(("weight_ih", "weight_hh", "bias_")):
        gate, unit = "ifgo"[index[0] // case.hidden_size], index[0] % case.hidden_size
        return f"gate {gate}, unit {unit}" + (f", column {index[1]}" if len(index) > 1 else "")
    return "row " + ", column ".join(str(i) for i in index)


def compare_gradient(got: Any, want: np.ndarray, name: str, case: Case) -> Stat:
    """One gradient tensor: type, shape, dtype, NaN/Inf pattern, then the GRADIENT criterion
    ``max|got - want| <= rtol * max|want| + atol`` over the finite entries."""
    what = f"gradient of {name!r}"
    check_form(what, got, want, expected_by="torch's is")
    if want.size == 0:
        return Stat()
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
    return Stat(err, err / bound)


def check_gradients(ctx: checks.Context) -> Stat:
    """vjp with the oracle's upstream gradients == torch.autograd.grad, tensor by tensor."""
    case, exp = ctx.case, ctx.exp
    if "dout_output" not in exp:
        raise GradientsSkipped(
            f"the {ctx.oracle} oracle has no gradients for this case (run `lstm-conformance regen`)"
        )
    declared = _declared_unsupported(ctx.factory, case)
    if declared:
        raise GradientsSkipped(declared)
    model = checks.build(ctx.factory, case, exp)
    vjp = getattr(model, "vjp", None)
    if not callable(vjp):
        raise GradientsSkipped(NOT_SUPPORTED)
    masks = checks.model_masks(case, exp)
    args = (checks.model_input(case, exp), checks.model_hx(exp), *(exp["dout_" + k].copy() for k in UPSTREAM))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = vjp(*args) if masks is None else vjp(*args, dropout_masks=masks)
    if not isinstance(got, dict):
        raise Divergence(f"vjp returned {type(got).__name__}, expected a dict of gradients by name")
    expected = {k[len("grad_") :]: v for k, v in exp.items() if k.startswith("grad_")}
    missing = [k for k in expected if k not in got]
    if missing:
        raise Divergence(f"vjp returned no gradient for {missing} (expected {list(expected)})")
    stat, failures = Stat(), []
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


checks.CASE_CHECKS.append(
    checks.CaseCheck(FEATURE, check_gradients, lambda c, e: "error" not in e, lambda c: (FEATURE,))
)
runner.FEATURES[FEATURE] = "vjp (backward) == torch.autograd.grad with the same upstream gradients and masks"
