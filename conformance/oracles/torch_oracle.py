"""The live oracle: torch.nn.LSTM run on a case's inputs, giving the expected arrays.

Importing this module does not import torch; the functions do, so the suite runs (fixtures
only) where torch is not installed.

``expected_from_torch(case, producers)`` is the one function that makes expected arrays: the
fixture writer (``lstm-conformance regen``) stores its result, the live oracle compares against
it.  ``producers`` are the extra array makers that rows declare (``rows.array_producers()``),
e.g. the gradients row's upstream gradients and torch's ``grad_*``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from lstm_ref.layout import dropout_noise, param_suffix

from ..contract.cases import Case

# (case, arrays so far, the torch module, {"input": torch input, "hx": torch hx}) -> more arrays
ArrayProducer = Callable[[Case, dict[str, np.ndarray], Any, dict[str, Any]], dict[str, np.ndarray]]


def torch_available() -> str | None:
    """None when torch imports and is in the supported range, else the reason why not."""
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install
        return f"torch is not importable ({type(exc).__name__}: {exc})"
    from .torch_diff import unsupported_torch

    return unsupported_torch(str(torch.__version__))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread while the suite runs it: these problems are tiny, and on a
    busy machine a second thread makes a 1000-step run 10-100x slower. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def to_numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().resolve_conj().cpu().numpy().copy()  # type: ignore[no-any-return]


def to_tensor(value: Any) -> Any:
    """A torch tensor holding a copy of ``value`` if it is an ndarray; anything else unchanged
    (so a bad argument reaches torch as it is, and torch raises its own error)."""
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, copy=True))
    return value


def mask_shape(case: Case, arrays: dict[str, np.ndarray], features: int) -> tuple[int, ...]:
    """torch's dropout mask shape, time-major (docs/semantics.md, "Dropout")."""
    if case.packed:
        return (int(arrays["packed_data"].shape[0]), features)
    if case.form == "unbatched":
        return (case.steps, 1, features)
    return (case.steps, case.batch, features)


# -- torch.nn.LSTM one layer at a time (dropout masks replayed between layers) -------------------


def single_layer(module: Any, layer: int) -> Any:
    """A one-layer torch.nn.LSTM whose parameters ARE layer ``layer``'s of ``module`` (shared,
    not copied, so autograd reaches them; LSTM.forward re-reads its parameters every call)."""
    import torch

    d = 2 if module.bidirectional else 1
    features = module.input_size if layer == 0 else d * (module.proj_size or module.hidden_size)
    single = torch.nn.LSTM(
        features,
        module.hidden_size,
        bias=module.bias,
        batch_first=module.batch_first,
        bidirectional=module.bidirectional,
        proj_size=module.proj_size,
        dtype=next(module.parameters()).dtype,
    )
    for name in list(single._parameters):
        single._parameters[name] = module._parameters[
            name.replace(param_suffix(0, 0), param_suffix(layer, 0))
        ]
    return single.eval()


def _apply_noise(module: Any, out: Any, noise: Any) -> Any:
    """A layer's output times the dropout noise (time-major, or a 0-d zero for p = 1)."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(out, PackedSequence):
        return PackedSequence(out.data * noise, out.batch_sizes, out.sorted_indices, out.unsorted_indices)
    if not noise.dim():
        return out * noise
    if out.dim() == 2:  # unbatched: masks are (L, 1, F)
        return out * noise.reshape(out.shape)
    return out * (noise.transpose(0, 1) if module.batch_first else noise)


def run_layers(
    module: Any, x: Any, hx: Any, noise: Sequence[Any] | None, wrap: Callable[[Any], Any] | None = None
) -> tuple[Any, Any, Any, list[Any]]:
    """torch.nn.LSTM layer by layer, multiplying the input of layer l+1 by ``noise[l]``
    (torch's dropout noise ``keep / (1-p)``, time-major).  Layers run in eval mode, so
    torch draws nothing itself; ``wrap`` turns each one-layer module into what runs it (a
    scripted or quantized module, for an adapter).  Returns (output, h_n, c_n, per-layer
    outputs before dropout)."""
    import torch

    d = 2 if module.bidirectional else 1
    layer_input, hs, cs, outs = x, [], [], []
    for layer in range(int(module.num_layers)):
        states = (
            None if hx is None else (hx[0][layer * d : (layer + 1) * d], hx[1][layer * d : (layer + 1) * d])
        )
        single = single_layer(module, layer)
        out, (h, c) = (single if wrap is None else wrap(single))(layer_input, states)
        outs.append(out)
        hs.append(h)
        cs.append(c)
        layer_input = out
        if noise is not None and layer < int(module.num_layers) - 1:
            layer_input = _apply_noise(module, out, noise[layer])
    return outs[-1], torch.cat(hs, 0), torch.cat(cs, 0), outs


def output_data(out: Any) -> np.ndarray:
    """An output as NumPy: the data of a PackedSequence, else the tensor."""
    from torch.nn.utils.rnn import PackedSequence

    return to_numpy(out.data if isinstance(out, PackedSequence) else out)


# -- the expected arrays of one case ---------------------------------------------------------------


def expected_from_torch(case: Case, producers: Sequence[ArrayProducer] = ()) -> dict[str, np.ndarray]:
    """Inputs and torch's outputs for ``case`` (the content of one fixture file)."""
    with warnings.catch_warnings(), one_thread():
        # "LSTM with projections is not supported with oneDNN", "dropout ... num_layers=1"
        warnings.simplefilter("ignore", UserWarning)
        return _expected_from_torch(case, producers)


def _module_and_input(case: Case, arrays: dict[str, np.ndarray]) -> tuple[Any, Any, Any]:
    """The torch module with the case's weights and mode, its input (packed for packed forms;
    the packing is recorded in ``arrays``) and hx."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    module = torch.nn.LSTM(**{**case.config(), "dtype": torch_dtype(case.dtype)})
    module.load_state_dict(
        {k[2:]: torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("w.")}
    )
    module.train(case.mode == "train")
    x: Any = torch.from_numpy(arrays["x"].copy())
    if case.packed:
        lengths = torch.from_numpy(arrays["lengths"])
        x = pack_padded_sequence(x, lengths, enforce_sorted=case.form == "packed_sorted")
        arrays["packed_data"] = to_numpy(x.data)
        arrays["batch_sizes"] = to_numpy(x.batch_sizes)
        if x.sorted_indices is not None:
            arrays["sorted_indices"] = to_numpy(x.sorted_indices)
            arrays["unsorted_indices"] = to_numpy(x.unsorted_indices)
    hx = (torch.from_numpy(arrays["h0"]), torch.from_numpy(arrays["c0"])) if case.hx else None
    return module, x, hx


def _replayed_noise(case: Case, arrays: dict[str, np.ndarray]) -> list[Any] | None:
    """The dropout noise torch's own forward applied (same seed, same draw order), with the
    keep-masks recorded in ``arrays`` as ``mask_<k>``; None when nothing is dropped."""
    import torch

    dtype = torch_dtype(case.dtype)
    if case.replays_masks:
        torch.manual_seed(case.seed)
        features = case.num_directions * case.h_out
        shape = mask_shape(case, arrays, features)
        masks = [torch.empty(shape, dtype=dtype).bernoulli_(1 - case.p) for _ in range(case.num_layers - 1)]
        for k, m in enumerate(masks):
            keep = to_numpy(m) != 0
            arrays[f"mask_{k}"] = keep.reshape(case.steps, features) if case.form == "unbatched" else keep
        return [m.div(1 - case.p) for m in masks]
    if case.mode == "train" and case.p == 1 and case.num_layers > 1:
        return [torch.zeros((), dtype=dtype)] * (case.num_layers - 1)
    return None


def _stepwise(case: Case, module: Any, x: Any, hx: Any) -> dict[str, np.ndarray]:
    """torch itself called one time step at a time, carrying (h, c)."""
    import torch

    steps_out, state = [], hx
    time_axis = 1 if case.batch_first and case.form == "batched" else 0
    for t in range(case.steps):
        out, state = module(x.narrow(time_axis, t, 1), state)
        steps_out.append(out)
    return {
        "stepwise_output": to_numpy(torch.cat(steps_out, time_axis)),
        "stepwise_h_n": to_numpy(state[0]),
        "stepwise_c_n": to_numpy(state[1]),
    }


def _expected_from_torch(case: Case, producers: Sequence[ArrayProducer]) -> dict[str, np.ndarray]:
    import torch

    arrays = case.make_data()
    module, x, hx = _module_and_input(case, arrays)
    with torch.no_grad():
        torch.manual_seed(case.seed)
        try:
            out, (h_n, c_n) = module(x, hx)
        except Exception as exc:
            arrays["error"] = np.array(type(exc).__name__)
            return arrays
        noise = _replayed_noise(case, arrays)
        arrays.update(output=output_data(out), h_n=to_numpy(h_n), c_n=to_numpy(c_n))
        if case.num_layers > 1:
            for k, layer_out in enumerate(run_layers(module, x, hx, noise)[3][:-1]):
                arrays[f"layer_{k}_output"] = output_data(layer_out)
        if stepwise_applies(case):
            arrays.update(_stepwise(case, module, x, hx))
        if case.dtype in EXACT_DTYPES:
            arrays.update(_exact_arrays(case, arrays))
        for producer in producers:
            arrays.update(producer(case, arrays, module, {"input": x, "hx": hx}))
    return arrays


# 32-bit cases are judged against the exact answer: torch in 64 bits on the same (32-bit
# representable) inputs, weights and dropout masks, stored as ``exact_<name>`` next to torch's
# own 32-bit ``<name>`` (docs/rows.md, "Tolerances").
EXACT_DTYPES = {"float32": "float64", "complex64": "complex128"}
EXACT_PREFIX = "exact_"


def _exact_arrays(case: Case, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The case's outputs computed by torch in 64 bits from the same 32-bit inputs and weights."""
    import torch

    wide = replace(case, dtype=EXACT_DTYPES[case.dtype])
    inputs = {k: v.astype(wide.dtype) if v.dtype == np.dtype(case.dtype) else v for k, v in arrays.items()}
    module, x, hx = _module_and_input(wide, inputs)
    noise = None
    if case.replays_masks:
        noise = [
            torch.from_numpy(dropout_noise(arrays[f"mask_{k}"], case.p, wide.dtype))
            for k in range(case.num_layers - 1)
        ]
    elif case.mode == "train" and case.p == 1 and case.num_layers > 1:
        noise = [torch.zeros((), dtype=torch_dtype(wide.dtype))] * (case.num_layers - 1)
    out, h_n, c_n, layer_outputs = run_layers(module, x, hx, noise)
    exact = {"output": output_data(out), "h_n": to_numpy(h_n), "c_n": to_numpy(c_n)}
    for k, layer_out in enumerate(layer_outputs[:-1]):
        exact[f"layer_{k}_output"] = output_data(layer_out)
    if stepwise_applies(case):
        exact.update(_stepwise(case, module.eval(), x, hx))
    return {EXACT_PREFIX + name: value for name, value in exact.items()}


def with_exact_expectations(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays with every expected output replaced by its exact (64-bit) value, where the
    oracle has one; torch's own 32-bit values stay available as ``torch32_<name>``."""
    exact = {k[len(EXACT_PREFIX) :]: v for k, v in arrays.items() if k.startswith(EXACT_PREFIX)}
    if not exact:
        return arrays
    return {**arrays, **{"torch32_" + k: arrays[k] for k in exact if k in arrays}, **exact}


def stepwise_applies(case: Case) -> bool:
    """Stepwise == whole sequence holds for unidirectional dense input without a random draw."""
    return (
        not case.bidirectional
        and not case.packed
        and not case.replays_masks
        and case.batch_size > 0
        and case.steps <= 50  # a 1000-step stepwise run adds seconds and no coverage
        and not (
            case.dtype.startswith("complex") and case.mode == "train" and case.num_layers > 1 and case.p > 0
        )
    )


# -- autograd: torch's vector-Jacobian product, for the gradients row and the torch adapter --------


def zero_state(module: Any, x: Any, width: int) -> Any:
    """torch's implicit zero h0/c0 (hx=None) as an explicit tensor, shaped like hx."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    lead = int(module.num_layers) * (2 if module.bidirectional else 1)
    dtype, device = next(module.parameters()).dtype, next(module.parameters()).device
    if isinstance(x, PackedSequence):
        shape: tuple[int, ...] = (lead, int(x.batch_sizes[0]), width)
    elif x.dim() == 2:
        shape = (lead, width)
    else:
        shape = (lead, x.shape[0 if module.batch_first else 1], width)
    return torch.zeros(shape, dtype=dtype, device=device)


def differentiable_leaves(module: Any, x: Any, hx: Any) -> tuple[Any, Any, Any, Any]:
    """(input to call with, its differentiable leaf (packed: the data), h0 leaf, c0 leaf)."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(x, PackedSequence):
        leaf = x.data.detach().clone().requires_grad_()
        x = PackedSequence(leaf, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    else:
        leaf = x = x.detach().clone().requires_grad_()
    if hx is None:
        h0 = zero_state(module, x, int(module.proj_size) or int(module.hidden_size))
        c0 = zero_state(module, x, int(module.hidden_size))
    else:
        h0, c0 = hx
    return x, leaf, h0.detach().clone().requires_grad_(), c0.detach().clone().requires_grad_()


def autograd_vjp(
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
