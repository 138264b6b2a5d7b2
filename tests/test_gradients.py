"""LSTM.vjp (backward pass) against torch.autograd.grad and against finite differences.

Each case builds a torch.nn.LSTM, copies it with ``LSTM.from_torch``, draws the
same random upstream gradients (grad_output, grad_h_n, grad_c_n) for both, and
compares every gradient tensor (input, h0, c0, each parameter).  Agreement is
measured relative to the gradient's scale, ``max|a - e| <= rtol * max|e| + atol``
(``conformance.contract.tolerances.GRADIENT``), and the first tensor that fails is named.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

import lstm_ref
from conformance.contract.tolerances import GRADIENT, gradient_error, gradient_tolerance

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

L, N, IN, H = 5, 3, 4, 6  # sequence length, batch, input size, hidden size
LENGTHS = [5, 2, 4]  # packed cases: unsorted on purpose


@dataclass(frozen=True)
class Case:
    dtype: str = "float64"
    layers: int = 1
    bidirectional: bool = False
    proj: int = 0
    bias: bool = True
    batch_first: bool = False
    form: str = "dense"  # dense | unbatched | packed_sorted | packed_unsorted
    hx: bool = True  # pass h0/c0 (else None)
    dropout: float = 0.0  # > 0: train mode, masks replayed from torch
    seed: int = 0
    hidden: int = H

    def __str__(self) -> str:
        defaults = Case()
        parts = [f"{k}={v}" for k, v in vars(self).items() if v != getattr(defaults, k) and k != "dtype"]
        return "-".join([self.dtype, *parts]) or self.dtype


# A pairwise-style subset of the option matrix: every option appears with several
# others and in more than one dtype.
CASES = [
    Case(),
    Case(layers=2, bidirectional=True),
    Case(layers=3, proj=3, batch_first=True),
    Case(layers=2, bidirectional=True, proj=4, bias=False),
    Case(form="unbatched", layers=2, bidirectional=True, proj=2),
    Case(form="unbatched", hx=False),
    Case(form="packed_sorted", layers=2, bidirectional=True),
    Case(form="packed_unsorted", layers=2, bidirectional=True, proj=3),
    Case(form="packed_unsorted", bias=False, hx=False),
    Case(layers=3, bidirectional=True, dropout=0.4, batch_first=True),
    Case(layers=2, dropout=0.5, proj=3, form="packed_unsorted", bidirectional=True),
    Case(layers=2, dropout=0.3, form="unbatched"),
    Case("float32"),
    Case("float32", layers=2, bidirectional=True, batch_first=True),
    Case("float32", layers=2, proj=3, form="packed_unsorted", bidirectional=True),
    Case("float32", layers=3, dropout=0.5, bidirectional=True),
    Case("float32", form="unbatched", bias=False, proj=2),
    Case("complex128"),
    Case("complex128", layers=2, bidirectional=True, proj=3, batch_first=True),
    Case("complex128", form="packed_unsorted", layers=2, bidirectional=True),
    Case("complex64", layers=2, bidirectional=True),
    Case("complex64", form="unbatched", proj=3, bias=False),
]


# -- building the same call on both sides --------------------------------------------------


@dataclass
class Problem:
    torch_module: Any
    model: lstm_ref.LSTM
    torch_input: Any  # what the torch module is called with
    leaves: list[Any]  # torch tensors to differentiate: input (data), [h0, c0]
    numpy_input: Any
    numpy_hx: Any
    masks: list[np.ndarray] | None
    dropout_seed: int


def _torch_dtype(name: str) -> Any:
    return getattr(torch, name)


def _randn(shape: tuple[int, ...], dtype: Any) -> Any:
    return torch.randn(*shape, dtype=dtype)


def build(case: Case) -> Problem:
    torch.manual_seed(case.seed)
    dtype = _torch_dtype(case.dtype)
    module = torch.nn.LSTM(
        IN,
        case.hidden,
        num_layers=case.layers,
        bias=case.bias,
        batch_first=case.batch_first,
        dropout=case.dropout,
        bidirectional=case.bidirectional,
        proj_size=case.proj,
        dtype=dtype,
    )
    module.train(case.dropout > 0)
    d = 2 if case.bidirectional else 1
    h_out = case.proj or case.hidden
    batch = 1 if case.form == "unbatched" else N
    state_batch: tuple[int, ...] = () if case.form == "unbatched" else (batch,)
    h0 = _randn((d * case.layers, *state_batch, h_out), dtype).requires_grad_()
    c0 = _randn((d * case.layers, *state_batch, case.hidden), dtype).requires_grad_()
    leaves: list[Any] = []
    if case.form == "unbatched":
        x = _randn((L, IN), dtype).requires_grad_()
        torch_input: Any = x
        numpy_input: Any = x.detach().numpy()
    elif case.form == "dense":
        x = _randn((N, L, IN) if case.batch_first else (L, N, IN), dtype).requires_grad_()
        torch_input, numpy_input = x, x.detach().numpy()
    else:
        padded = _randn((L, N, IN), dtype)
        lengths = sorted(LENGTHS, reverse=True) if case.form == "packed_sorted" else LENGTHS
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            padded, torch.tensor(lengths), enforce_sorted=case.form == "packed_sorted"
        )
        x = packed.data.detach().requires_grad_()
        torch_input = torch.nn.utils.rnn.PackedSequence(
            x, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
        numpy_input = lstm_ref.PackedSequence(
            x.detach().numpy(),
            packed.batch_sizes.numpy(),
            None if packed.sorted_indices is None else packed.sorted_indices.numpy(),
            None if packed.unsorted_indices is None else packed.unsorted_indices.numpy(),
        )
    leaves.append(x)
    if case.hx:
        leaves += [h0, c0]
    model = lstm_ref.LSTM.from_torch(module)
    masks = None
    if case.dropout > 0:
        rows = x.shape[0] * (x.shape[1] if case.form == "dense" else 1)
        mask_shape: tuple[int, ...] = (rows, d * h_out) if case.form != "dense" else (L, N, d * h_out)
        torch.manual_seed(1000 + case.seed)  # §5 replication recipe
        noise = [
            torch.empty(mask_shape, dtype=dtype).bernoulli_(1 - case.dropout).div_(1 - case.dropout)
            for _ in range(case.layers - 1)
        ]
        masks = [(n != 0).numpy() for n in noise]
    numpy_hx = (h0.detach().numpy(), c0.detach().numpy()) if case.hx else None
    return Problem(module, model, torch_input, leaves, numpy_input, numpy_hx, masks, 1000 + case.seed)


def torch_grads(p: Problem, case: Case) -> tuple[dict[str, Any], list[Any]]:
    """torch.autograd.grad of the forward, and the upstream gradients it used."""
    hx = (p.leaves[1], p.leaves[2]) if case.hx else None
    torch.manual_seed(p.dropout_seed)
    out, (h_n, c_n) = p.torch_module(p.torch_input, hx)
    out_tensor = out.data if case.form.startswith("packed") else out
    upstream = [torch.randn_like(t) for t in (out_tensor, h_n, c_n)]
    params = dict(p.torch_module.named_parameters())
    inputs = [*p.leaves, *params.values()]
    grads = torch.autograd.grad((out_tensor, h_n, c_n), inputs, upstream)
    names = ["input", "h0", "c0"][: len(p.leaves)] + list(params)
    return {k: g.numpy() for k, g in zip(names, grads, strict=True)}, [u.numpy() for u in upstream]


def first_failure(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], dtype: str) -> str | None:
    tol = gradient_tolerance(dtype)
    for name, want in expected.items():
        got = actual[name]
        if got.shape != want.shape:
            return f"{name}: shape {got.shape} != torch's {want.shape}"
        err, scale = gradient_error(got, want)
        if err > tol.rtol * scale + tol.atol:
            return f"{name}: max abs error {err:.3g} > {tol.rtol:g} * max|grad| ({scale:.3g}) + {tol.atol:g}"
    return None


# -- against live torch ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vjp_matches_torch_autograd(case: Case) -> None:
    p = build(case)
    expected, (g_out, g_h, g_c) = torch_grads(p, case)
    actual = p.model.vjp(p.numpy_input, p.numpy_hx, g_out, g_h, g_c, dropout_masks=p.masks)
    assert list(actual) == ["input", "h0", "c0", *p.model.state_dict()]
    assert first_failure(actual, expected, case.dtype) is None, first_failure(actual, expected, case.dtype)
    for name, value in actual.items():
        assert value.dtype == p.model.dtype, name


def test_hx_none_gives_zero_state_grads_shaped_like_torch() -> None:
    for form, shape in (("dense", (4, N, 3)), ("unbatched", (4, 3))):
        case = Case(form=form, layers=2, bidirectional=True, proj=3, hx=False)
        p = build(case)
        expected, (g_out, g_h, g_c) = torch_grads(p, case)
        actual = p.model.vjp(p.numpy_input, None, g_out, g_h, g_c)
        assert first_failure(actual, expected, case.dtype) is None, first_failure(
            actual, expected, case.dtype
        )
        assert actual["h0"].shape == shape
        assert actual["c0"].shape == (*shape[:-1], H)
        # with hx=None torch's h0 is zeros: compare with the grads taken at explicit zeros
        zeros = (np.zeros(shape, p.model.dtype), np.zeros((*shape[:-1], H), p.model.dtype))
        explicit = p.model.vjp(p.numpy_input, zeros, g_out, g_h, g_c)
        for name in actual:
            np.testing.assert_array_equal(actual[name], explicit[name], err_msg=name)


def test_upstream_defaults_and_packed_grad_output() -> None:
    case = Case(form="packed_unsorted", layers=2, bidirectional=True)
    p = build(case)
    rng = np.random.default_rng(1)
    out, _ = p.model(p.numpy_input, p.numpy_hx)
    g_out = rng.standard_normal(out.data.shape)
    as_packed = p.model.vjp(p.numpy_input, p.numpy_hx, out._replace(data=g_out))
    as_array = p.model.vjp(p.numpy_input, p.numpy_hx, g_out, None, None)
    zeros = p.model.vjp(p.numpy_input, p.numpy_hx, g_out, *(np.zeros_like(s) for s in p.numpy_hx))
    for name in as_array:
        np.testing.assert_array_equal(as_packed[name], as_array[name], err_msg=name)
        np.testing.assert_array_equal(zeros[name], as_array[name], err_msg=name)


# -- independent oracle: central finite differences on lstm_ref's own forward -------------------------


def _objective(model: lstm_ref.LSTM, inp: Any, hx: Any, upstream: list[np.ndarray], masks: Any) -> complex:
    out, (h_n, c_n) = model(inp, hx, dropout_masks=masks)
    data = out.data if isinstance(out, lstm_ref.PackedSequence) else out
    return complex(sum(np.sum(u * v) for u, v in zip(upstream, (data, h_n, c_n), strict=True)))


def finite_difference_grads(case: Case, p: Problem, upstream: list[np.ndarray]) -> dict[str, np.ndarray]:
    """d/dθ of sum(u * forward) for every entry of every tensor, by central differences.

    Real: two-point stencil, eps=1e-5 (truncation O(eps^2) + rounding O(1e-16/eps)).
    Complex: five-point stencil, eps=1e-4 (truncation O(eps^4)), as complex gates
    have larger higher derivatives.

    For complex models the map is holomorphic, so a real-axis difference gives
    d/dθ of sum(conj(u) * forward); torch's gradient is its conjugate.
    """
    model = p.model
    is_complex = model.dtype.kind == "c"
    weights = [np.conj(u) for u in upstream] if is_complex else upstream
    state = model.state_dict()
    data = p.numpy_input.data if isinstance(p.numpy_input, lstm_ref.PackedSequence) else p.numpy_input
    hx = p.numpy_hx
    tensors = {"input": data, "h0": hx[0], "c0": hx[1], **state}

    def evaluate(name: str, value: np.ndarray) -> complex:
        if name in state:
            model.load_state_dict({**state, name: value})
            try:
                return _objective(model, p.numpy_input, hx, weights, p.masks)
            finally:
                model.load_state_dict(state)
        if name == "input":
            inp = p.numpy_input._replace(data=value) if case.form.startswith("packed") else value
            return _objective(model, inp, hx, weights, p.masks)
        new_hx = (value, hx[1]) if name == "h0" else (hx[0], value)
        return _objective(model, p.numpy_input, new_hx, weights, p.masks)

    if is_complex:
        eps, steps, coefficients = 1e-4, (2, 1, -1, -2), (-1 / 12, 8 / 12, -8 / 12, 1 / 12)
    else:
        eps, steps, coefficients = 1e-5, (1, -1), (1 / 2, -1 / 2)
    grads = {}
    for name, tensor in tensors.items():
        grad = np.zeros_like(tensor)
        for index in np.ndindex(tensor.shape):
            slope = 0j
            for step, weight in zip(steps, coefficients, strict=True):
                shifted = tensor.copy()
                shifted[index] += step * eps
                slope += weight * evaluate(name, shifted) / eps
            grad[index] = np.conj(slope) if is_complex else slope.real
        grads[name] = grad
    return grads


FD_CASES = [
    Case(layers=2, bidirectional=True, proj=2, seed=1, hidden=3),
    Case(form="packed_unsorted", layers=2, bidirectional=True, bias=False, seed=2, hidden=3),
    Case(form="unbatched", layers=2, dropout=0.5, proj=2, seed=3, hidden=3),
    # complex sigmoid/tanh have poles: this seed keeps |output| < 1, far from them, so that
    # finite differences are accurate (near a pole they are not, whatever the backward)
    Case("complex128", layers=2, bidirectional=True, seed=6, hidden=3),
]


@pytest.mark.parametrize("case", FD_CASES, ids=str)
def test_vjp_matches_finite_differences(case: Case) -> None:
    p = build(case)
    _, upstream = torch_grads(p, case)
    fd = finite_difference_grads(case, p, upstream)
    actual = p.model.vjp(p.numpy_input, p.numpy_hx, *upstream, dropout_masks=p.masks)
    for name, want in fd.items():
        err, scale = gradient_error(actual[name], want)
        # measured: real <= 1.6e-10, complex <= 1.3e-9 relative to the gradient's scale
        assert err <= 1e-8 * max(scale, 1.0), f"{name}: {err:.3g} vs finite differences (scale {scale:.3g})"


# -- dropout and errors ---------------------------------------------------------------------------


def test_train_mode_dropout_without_masks_raises() -> None:
    model = lstm_ref.LSTM(IN, H, num_layers=2, dropout=0.5, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((L, N, IN))
    g = np.zeros((L, N, H))
    with pytest.raises(ValueError, match="dropout_masks"):
        model.vjp(x, None, g)
    model.eval().vjp(x, None, g)  # eval: no dropout, no masks needed


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_dropout_without_random_draw_needs_no_masks(p: float) -> None:
    case = Case(layers=2, bidirectional=True, dropout=p)
    problem = build(replace(case, dropout=0.0))
    problem.torch_module.dropout = p
    problem.torch_module.train()
    problem.model = lstm_ref.LSTM.from_torch(problem.torch_module)
    expected, upstream = torch_grads(problem, case)
    actual = problem.model.vjp(problem.numpy_input, problem.numpy_hx, *upstream)
    assert first_failure(actual, expected, case.dtype) is None, first_failure(actual, expected, case.dtype)


def test_grad_shape_mismatch_is_a_clear_error() -> None:
    model = lstm_ref.LSTM(IN, H, dtype=np.float64, seed=0)
    x = np.zeros((L, N, IN))
    with pytest.raises(ValueError, match="grad_output"):
        model.vjp(x, None, np.zeros((L, N, H + 1)))
    with pytest.raises(ValueError, match="grad_h_n"):
        model.vjp(x, None, np.zeros((L, N, H)), np.zeros((1, N + 1, H)))
    with pytest.raises(ValueError, match="complex"):
        model.vjp(x, None, np.zeros((L, N, H), dtype=np.complex128))


def test_gradient_tolerances_cover_every_dtype() -> None:
    assert set(GRADIENT) == {"float32", "float64", "complex64", "complex128"}


# -- random configurations (hypothesis, derandomized) ----------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@st.composite
def random_cases(draw: Any) -> Case:
    layers = draw(st.integers(1, 3))
    hidden = draw(st.integers(2, 7))
    return Case(
        dtype=draw(st.sampled_from(["float64", "float64", "float32", "complex128"])),
        layers=layers,
        bidirectional=draw(st.booleans()),
        proj=draw(st.integers(0, hidden - 1)),
        bias=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        form=draw(st.sampled_from(["dense", "unbatched", "packed_sorted", "packed_unsorted"])),
        hx=draw(st.booleans()),
        dropout=draw(st.sampled_from([0.0, 0.5])) if layers > 1 else 0.0,
        seed=draw(st.integers(0, 2**16)),
        hidden=hidden,
    )


@hypothesis.settings(derandomize=True, max_examples=60, deadline=None)
@hypothesis.given(random_cases())
def test_vjp_matches_torch_on_random_configs(case: Case) -> None:
    if case.dtype.startswith("complex") and case.dropout:
        case = replace(case, dropout=0.0)  # torch: no complex bernoulli
    p = build(case)
    expected, (g_out, g_h, g_c) = torch_grads(p, case)
    actual = p.model.vjp(p.numpy_input, p.numpy_hx, g_out, g_h, g_c, dropout_masks=p.masks)
    failure = first_failure(actual, expected, case.dtype)
    assert failure is None, f"{case}: {failure}"
