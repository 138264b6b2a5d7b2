"""lstm_ref.LSTM forward against live torch.nn.LSTM, over the option matrix.

Cases are data (``Case``); a few generic checks run over them.  Weights always
come from the torch module via ``LSTM.from_torch``; expected values always come
from running torch, never from lstm_ref.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from lstm_test_utils import DTYPES, assert_close, pairwise, random_array, to_numpy, torch_dtype

import lstm_ref
from conformance.contract.cases import Case as SuiteCase

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN"),
    pytest.mark.filterwarnings("ignore:Complex modules are a new feature"),
]

INPUT_SIZE, HIDDEN, PROJ, STEPS, BATCH = 3, 4, 2, 5, 3
SORTED_LENGTHS = [5, 3, 3, 1]  # with a tie
UNSORTED_LENGTHS = [2, 5, 1, 3, 3]  # with a tie


def Case(dtype: str = "float64", **options: Any) -> SuiteCase:
    """The conformance suite's case declaration, at this file's sizes."""
    return SuiteCase(
        dtype=dtype, input_size=INPUT_SIZE, hidden_size=HIDDEN, steps=STEPS, batch=BATCH, **options
    )


def torch_module(case: SuiteCase, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return torch.nn.LSTM(**{**case.config(), "dropout": 0.0, "dtype": torch_dtype(case.dtype)}).eval()


FACTORS: dict[str, list[Any]] = {
    "num_layers": [1, 2, 3],
    "bidirectional": [False, True],
    "batch_first": [False, True],
    "proj_size": [0, PROJ],
    "bias": [True, False],
    "form": ["batched", "unbatched", "packed_sorted", "packed_unsorted"],
    "hx": [False, True],
}
# The full product for the real dtypes (cheap: small sizes), a pairwise covering array for complex.
FULL_PRODUCT = [
    Case(dtype, **dict(zip(FACTORS, values, strict=True)))
    for dtype in ("float64", "float32")
    for values in itertools.product(*FACTORS.values())
]
COMPLEX_DTYPES = ["complex64", "complex128"]
PAIRWISE_COMPLEX = [Case(**row) for row in pairwise({"dtype": COMPLEX_DTYPES, **FACTORS})]
CASES = FULL_PRODUCT + PAIRWISE_COMPLEX


def make_inputs(case: SuiteCase, seed: int = 1) -> tuple[Any, Any, Any, Any]:
    """(torch input, lstm_ref input, torch hx, lstm_ref hx) for a case, same values on both sides."""
    rng = np.random.default_rng(seed)
    d = 2 if case.bidirectional else 1
    h_out = case.proj_size or HIDDEN
    if case.form.startswith("packed"):
        lengths = SORTED_LENGTHS if case.form == "packed_sorted" else UNSORTED_LENGTHS
        batch = len(lengths)
        padded = random_array(rng, (max(lengths), batch, INPUT_SIZE), case.dtype)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            torch.from_numpy(padded), lengths, enforce_sorted=case.form == "packed_sorted"
        )
        ref_input = lstm_ref.PackedSequence(
            to_numpy(packed.data),
            packed.batch_sizes.numpy(),
            None if packed.sorted_indices is None else packed.sorted_indices.numpy(),
            None if packed.unsorted_indices is None else packed.unsorted_indices.numpy(),
        )
        torch_input: Any = packed
        state_batch: tuple[int, ...] = (batch,)
    elif case.form == "unbatched":
        x = random_array(rng, (STEPS, INPUT_SIZE), case.dtype)
        torch_input, ref_input, state_batch = torch.from_numpy(x), x, ()
    else:
        shape = (BATCH, STEPS, INPUT_SIZE) if case.batch_first else (STEPS, BATCH, INPUT_SIZE)
        x = random_array(rng, shape, case.dtype)
        torch_input, ref_input, state_batch = torch.from_numpy(x), x, (BATCH,)
    if not case.hx:
        return torch_input, ref_input, None, None
    h0 = random_array(rng, (case.num_layers * d, *state_batch, h_out), case.dtype)
    c0 = random_array(rng, (case.num_layers * d, *state_batch, HIDDEN), case.dtype)
    return torch_input, ref_input, (torch.from_numpy(h0), torch.from_numpy(c0)), (h0, c0)


def _arrays(out: Any, h: Any, c: Any) -> dict[str, np.ndarray]:
    data = out.data if hasattr(out, "batch_sizes") else out
    return {
        "output": to_numpy(data) if hasattr(data, "detach") else data,
        "h_n": to_numpy(h) if hasattr(h, "detach") else h,
        "c_n": to_numpy(c) if hasattr(c, "detach") else c,
    }


def _complex128_truth(module: Any, t_in: Any, t_hx: Any) -> dict[str, np.ndarray]:
    """torch itself in complex128, same weights and inputs upcast."""
    wide = copy.deepcopy(module).to(torch.complex128)
    up = lambda t: t.to(torch.complex128)  # noqa: E731
    x = t_in._replace(data=up(t_in.data)) if hasattr(t_in, "batch_sizes") else up(t_in)
    with torch.no_grad():
        out, (h, c) = wide(x, None if t_hx is None else tuple(map(up, t_hx)))
    return _arrays(out, h, c)


def check_against_torch(module: Any, ref: lstm_ref.LSTM, t_in: Any, r_in: Any, t_hx: Any, r_hx: Any) -> None:
    with torch.no_grad():
        t_out, (t_h, t_c) = module(t_in, t_hx)
    r_out, (r_h, r_c) = ref(r_in, r_hx)
    if isinstance(t_out, torch.nn.utils.rnn.PackedSequence):
        assert isinstance(r_out, lstm_ref.PackedSequence)
        np.testing.assert_array_equal(r_out.batch_sizes, t_out.batch_sizes.numpy())
        for name in ("sorted_indices", "unsorted_indices"):
            t_idx, r_idx = getattr(t_out, name), getattr(r_out, name)
            assert (t_idx is None) == (r_idx is None), name
            if t_idx is not None:
                np.testing.assert_array_equal(r_idx, t_idx.numpy())
    else:
        # batch_first output is a transposed view in torch; lstm_ref mirrors that (loosely checked)
        assert r_out.flags.c_contiguous == t_out.is_contiguous()
    actual, expected = _arrays(r_out, r_h, r_c), _arrays(t_out, t_h, t_c)
    if module.weight_ih_l0.dtype != torch.complex64:
        for name in actual:
            assert_close(actual[name], expected[name], what=name)
        return
    # complex64: sigmoid/tanh have poles, so random complex64 LSTMs are ill-conditioned and torch's
    # own complex64 result is often further than forward_tolerance(complex64) from the exact answer
    # (measured: up to 5e-3 relative at this data scale).  Compare lstm_ref with torch's complex128
    # run instead, allowing forward_tolerance(complex64) plus 4x torch's own complex64 error there.
    truth = _complex128_truth(module, t_in, t_hx)
    for name in actual:
        assert actual[name].shape == expected[name].shape and actual[name].dtype == expected[name].dtype, name
        torch_error = float(np.max(np.abs(expected[name] - truth[name]), initial=0.0))
        assert_close(
            actual[name].astype(np.complex128),
            truth[name],
            "complex64",
            f"{name} vs complex128",
            4 * torch_error,
        )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_torch(case: SuiteCase) -> None:
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    check_against_torch(module, ref, *make_inputs(case))


def test_option_matrix_is_covered() -> None:
    """The pairwise subset really covers every pair of option values for the complex dtypes."""
    rows = [vars(c) for c in PAIRWISE_COMPLEX]
    names = ["dtype", *FACTORS]
    factors = {"dtype": COMPLEX_DTYPES, **FACTORS}
    for a, b in itertools.combinations(names, 2):
        seen = {(r[a], r[b]) for r in rows}
        assert seen == set(itertools.product(factors[a], factors[b])), (a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_explicit_zero_state_equals_no_state(dtype: str) -> None:
    """torch's test_rnn_initial_hidden_state: hx of zeros == hx None (both against torch)."""
    case = Case(dtype, num_layers=2, bidirectional=True, proj_size=PROJ)
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    x = random_array(np.random.default_rng(0), (STEPS, BATCH, INPUT_SIZE), dtype)
    zeros = (np.zeros((4, BATCH, PROJ), dtype), np.zeros((4, BATCH, HIDDEN), dtype))
    with torch.no_grad():
        expected = module(torch.from_numpy(x))
    for hx in (None, zeros):
        out, (h, c) = ref(x, hx)
        assert_close(out, expected[0])
        assert_close(h, expected[1][0])
        assert_close(c, expected[1][1])


# --- stepwise and chunked calls -------------------------------------------------------------

STEP_CASES = [
    Case("float32"),
    Case("float64", num_layers=2),
    Case("float64", num_layers=3, proj_size=PROJ, batch_first=True),
    Case("float32", num_layers=2, proj_size=PROJ, bias=False),
    Case("complex128", num_layers=2),
    Case("float64", num_layers=2, form="unbatched"),
]


def _split_time(case: SuiteCase, x: np.ndarray, start: int, stop: int) -> np.ndarray:
    if case.form == "batched" and case.batch_first:
        return x[:, start:stop]
    return x[start:stop]


def _cat_time(case: SuiteCase, parts: list[np.ndarray]) -> np.ndarray:
    axis = 1 if case.form == "batched" and case.batch_first else 0
    return np.concatenate(parts, axis=axis)


@pytest.mark.parametrize(
    "chunks", [[1] * STEPS, [2, 1, 2], [4, 1]], ids=["stepwise", "chunks212", "chunks41"]
)
@pytest.mark.parametrize("case", STEP_CASES, ids=lambda c: c.id)
def test_chunked_calls_equal_whole_sequence_and_torch(case: SuiteCase, chunks: list[int]) -> None:
    """Feeding the sequence in pieces, carrying (h, c), equals one call; and torch's own pieces."""
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    _, x, _, hx = make_inputs(replace(case, hx=True))
    whole_out, (whole_h, whole_c) = ref(x, hx)
    ref_parts, torch_parts = [], []
    r_state, t_state = hx, tuple(torch.from_numpy(s) for s in hx)
    start = 0
    for size in chunks:
        piece = _split_time(case, x, start, start + size)
        start += size
        out, r_state = ref(piece, r_state)
        ref_parts.append(out)
        with torch.no_grad():
            t_out, t_state = module(torch.from_numpy(np.ascontiguousarray(piece)), t_state)
        torch_parts.append(to_numpy(t_out))
    assert start == STEPS
    assert_close(_cat_time(case, ref_parts), whole_out, what="pieces vs whole")
    assert_close(r_state[0], whole_h, what="h pieces vs whole")
    assert_close(r_state[1], whole_c, what="c pieces vs whole")
    assert_close(_cat_time(case, ref_parts), _cat_time(case, torch_parts), what="pieces vs torch pieces")
    assert_close(r_state[0], t_state[0], what="h vs torch pieces")
    assert_close(r_state[1], t_state[1], what="c vs torch pieces")


# --- degenerate and awkward inputs ----------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        Case("float32"),
        Case("float64", num_layers=2, bidirectional=True),
        Case("float64", num_layers=2, bidirectional=True, batch_first=True, proj_size=PROJ, hx=True),
        Case("complex64", proj_size=PROJ),
    ],
    ids=lambda c: c.id,
)
def test_batch_of_zero(case: SuiteCase) -> None:
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    d = 2 if case.bidirectional else 1
    shape = (0, STEPS, INPUT_SIZE) if case.batch_first else (STEPS, 0, INPUT_SIZE)
    x = np.zeros(shape, dtype=case.dtype)
    hx = None
    if case.hx:
        hx = (
            np.zeros((case.num_layers * d, 0, case.proj_size or HIDDEN), case.dtype),
            np.zeros((case.num_layers * d, 0, HIDDEN), case.dtype),
        )
    check_against_torch(
        module, ref, torch.from_numpy(x), x, None if hx is None else tuple(map(torch.from_numpy, hx)), hx
    )


def _awkward_layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    strided = np.repeat(x, 2, axis=-1)[..., ::2]  # non-contiguous, same values
    fortran = np.asfortranarray(x)
    readonly = x.copy()
    readonly.setflags(write=False)
    return {"strided": strided, "fortran": fortran, "readonly": readonly}


@pytest.mark.parametrize("layout", ["strided", "fortran", "readonly"])
@pytest.mark.parametrize(
    "case",
    [Case("float32", num_layers=2, hx=True), Case("float64", bidirectional=True, batch_first=True, hx=True)],
    ids=lambda c: c.id,
)
def test_non_contiguous_and_read_only_inputs(case: SuiteCase, layout: str) -> None:
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    t_in, x, t_hx, hx = make_inputs(case)
    x2 = _awkward_layouts(x)[layout]
    hx2 = tuple(_awkward_layouts(s)[layout] for s in hx)
    assert layout == "readonly" or not x2.flags.c_contiguous
    before = [a.copy() for a in (x2, *hx2)]
    check_against_torch(module, ref, t_in, x2, t_hx, hx2)
    for a, b in zip((x2, *hx2), before, strict=True):
        np.testing.assert_array_equal(a, b)  # inputs are not modified


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "inf_in_state"])
def test_non_finite_values_propagate_like_torch(dtype: str, bad: str) -> None:
    case = Case(dtype, num_layers=2, bidirectional=True, hx=True)
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    _, x, _, hx = make_inputs(case)
    x, hx = x.copy(), (hx[0].copy(), hx[1].copy())
    if bad == "inf_in_state":
        hx[1][0, 1, 2] = np.inf
    else:
        x[2, 1, 0] = float(bad)  # one feature: W x is +-inf (or nan), not a sum of mixed infinities
    check_against_torch(module, ref, torch.from_numpy(x), x, tuple(map(torch.from_numpy, hx)), hx)
    out, (_, c_n) = ref(x, hx)
    if bad == "nan":
        assert np.isnan(out).any()  # the nan really spreads
    else:
        # infinities saturate sigmoid/tanh to finite values: no nan may appear where torch has none
        assert not np.isnan(out).any()
        assert bad != "inf_in_state" or np.isinf(c_n).any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saturated_inputs(dtype: str) -> None:
    """|x| ~ 1e3 saturates every gate; exp overflow must not turn into nan where torch has none.

    (Real dtypes only: complex sigmoid/tanh do not saturate, they have poles.)"""
    case = Case(dtype, num_layers=2, proj_size=PROJ)
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    x = random_array(np.random.default_rng(3), (STEPS, BATCH, INPUT_SIZE), dtype, scale=1e3)
    check_against_torch(module, ref, torch.from_numpy(x), x, None, None)
    out, _ = ref(x)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_sequence(dtype: str) -> None:
    case = Case(dtype, num_layers=2, bidirectional=True, hx=True)
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    rng = np.random.default_rng(4)
    x = random_array(rng, (1000, 2, INPUT_SIZE), dtype)
    hx = (random_array(rng, (4, 2, HIDDEN), dtype), random_array(rng, (4, 2, HIDDEN), dtype))
    check_against_torch(module, ref, torch.from_numpy(x), x, tuple(map(torch.from_numpy, hx)), hx)


def test_unbatched_ignores_batch_first_and_equals_batch_of_one() -> None:
    case = Case("float64", num_layers=2, bidirectional=True, batch_first=True, proj_size=PROJ)
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    x = random_array(np.random.default_rng(5), (STEPS, INPUT_SIZE), "float64")
    out, (h, c) = ref(x)
    with torch.no_grad():
        t_out, (t_h, t_c) = module(torch.from_numpy(x)[None])  # batch_first: (1, L, F)
    assert_close(out, t_out[0])
    assert_close(h, t_h[:, 0])
    assert_close(c, t_c[:, 0])


def test_accepts_list_hx_and_eval_train_flag_roundtrip() -> None:
    case = Case("float64", num_layers=2, hx=True)
    module = torch_module(case)
    ref = lstm_ref.LSTM.from_torch(module)
    assert ref.training is False  # from_torch copies eval mode
    t_in, x, t_hx, hx = make_inputs(case)
    check_against_torch(module, ref, t_in, x, list(t_hx), list(hx))
    assert ref.train().training is True
    assert ref.eval().training is False


# --- random shapes (hypothesis, derandomized) ------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@st.composite
def random_configs(draw: Any) -> dict[str, Any]:
    hidden = draw(st.integers(1, 6))
    return {
        "dtype": draw(st.sampled_from(["float64", "float32", "complex128"])),
        "input_size": draw(st.integers(1, 5)),
        "hidden": hidden,
        "proj": draw(st.integers(0, hidden - 1)),
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "lengths": draw(st.lists(st.integers(1, 7), min_size=1, max_size=5)),
        "form": draw(st.sampled_from(["batched", "unbatched", "packed"])),
        "hx": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@hypothesis.settings(derandomize=True, max_examples=60, deadline=None)
@hypothesis.given(random_configs())
def test_random_shapes_match_torch(cfg: dict[str, Any]) -> None:
    torch.manual_seed(cfg["seed"])
    module = torch.nn.LSTM(
        cfg["input_size"],
        cfg["hidden"],
        cfg["num_layers"],
        bias=cfg["bias"],
        batch_first=cfg["batch_first"],
        bidirectional=cfg["bidirectional"],
        proj_size=cfg["proj"],
        dtype=torch_dtype(cfg["dtype"]),
    ).eval()
    ref = lstm_ref.LSTM.from_torch(module)
    rng = np.random.default_rng(cfg["seed"])
    lengths, dtype = cfg["lengths"], cfg["dtype"]
    steps, batch = max(lengths), len(lengths)
    state_batch: tuple[int, ...] = (batch,)
    if cfg["form"] == "packed":
        padded = random_array(rng, (steps, batch, cfg["input_size"]), dtype)
        t_in: Any = torch.nn.utils.rnn.pack_padded_sequence(
            torch.from_numpy(padded), lengths, enforce_sorted=False
        )
        r_in: Any = lstm_ref.pack_padded_sequence(padded, lengths, enforce_sorted=False)
    elif cfg["form"] == "unbatched":
        r_in = random_array(rng, (steps, cfg["input_size"]), dtype)
        t_in, state_batch = torch.from_numpy(r_in), ()
    else:
        shape = (batch, steps) if cfg["batch_first"] else (steps, batch)
        r_in = random_array(rng, (*shape, cfg["input_size"]), dtype)
        t_in = torch.from_numpy(r_in)
    t_hx = r_hx = None
    if cfg["hx"]:
        d = 2 if cfg["bidirectional"] else 1
        r_hx = (
            random_array(rng, (cfg["num_layers"] * d, *state_batch, cfg["proj"] or cfg["hidden"]), dtype),
            random_array(rng, (cfg["num_layers"] * d, *state_batch, cfg["hidden"]), dtype),
        )
        t_hx = tuple(map(torch.from_numpy, r_hx))
    check_against_torch(module, ref, t_in, r_in, t_hx, r_hx)


@pytest.mark.parametrize("proj_size", [0, 32])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_realistic_size(dtype: str, proj_size: int) -> None:
    """A realistic size: L=50, N=8, F=16, H=64, 3 layers, bidirectional."""
    torch.manual_seed(0)
    module = torch.nn.LSTM(
        16, 64, 3, bidirectional=True, proj_size=proj_size, dtype=torch_dtype(dtype)
    ).eval()
    ref = lstm_ref.LSTM.from_torch(module)
    rng = np.random.default_rng(0)
    x = random_array(rng, (50, 8, 16), dtype)
    h_out = proj_size or 64
    hx = (random_array(rng, (6, 8, h_out), dtype), random_array(rng, (6, 8, 64), dtype))
    check_against_torch(module, ref, torch.from_numpy(x), x, tuple(map(torch.from_numpy, hx)), hx)
