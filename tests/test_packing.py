"""PackedSequence helpers and packed LSTM input against torch.nn.utils.rnn and torch.nn.LSTM."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from lstm_test_utils import assert_close, random_array, to_numpy, torch_dtype

import lstm_ref

torch = pytest.importorskip("torch")
rnn_utils = torch.nn.utils.rnn

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

LENGTH_SETS = {
    "single": [5],
    "sorted-ties": [5, 3, 3, 1],
    "unsorted-ties": [2, 5, 1, 3, 3],
    "all-equal": [4, 4, 4],
    "all-one": [1, 1],
    "torch-test-1": [10, 10, 6, 2, 2, 1, 1],
    "torch-test-2": [2, 1, 3, 2, 10, 5, 3],
}
FEATURES = {"F3": (3,), "no-feature-dim": (), "2x3": (2, 3)}


def is_sorted(lengths: list[int]) -> bool:
    return all(a >= b for a, b in itertools.pairwise(lengths))


def padded_input(
    lengths: list[int], features: tuple[int, ...], batch_first: bool, dtype: str = "float64"
) -> np.ndarray:
    rng = np.random.default_rng(len(lengths))
    x = random_array(rng, (max(lengths), len(lengths), *features), dtype)
    return np.ascontiguousarray(np.swapaxes(x, 0, 1)) if batch_first else x


def assert_same_packed(actual: Any, expected: Any) -> None:
    assert isinstance(actual, lstm_ref.PackedSequence)
    np.testing.assert_array_equal(actual.data, to_numpy(expected.data))
    assert actual.data.dtype == to_numpy(expected.data).dtype
    np.testing.assert_array_equal(actual.batch_sizes, expected.batch_sizes.numpy())
    for name in ("sorted_indices", "unsorted_indices"):
        t, r = getattr(expected, name), getattr(actual, name)
        assert (t is None) == (r is None), name
        if t is not None:
            np.testing.assert_array_equal(r, t.numpy(), err_msg=name)


PACK_CASES = [
    pytest.param(
        lengths,
        features,
        batch_first,
        enforce,
        id=f"{lname}-{fname}-{'bf' if batch_first else 'tf'}-{'enforce' if enforce else 'free'}",
    )
    for (lname, lengths), (fname, features), batch_first, enforce in itertools.product(
        LENGTH_SETS.items(), FEATURES.items(), [False, True], [True, False]
    )
    if is_sorted(lengths) or not enforce
]


@pytest.mark.parametrize(("lengths", "features", "batch_first", "enforce_sorted"), PACK_CASES)
def test_pack_and_pad_match_torch(
    lengths: list[int], features: tuple[int, ...], batch_first: bool, enforce_sorted: bool
) -> None:
    x = padded_input(lengths, features, batch_first)
    expected = rnn_utils.pack_padded_sequence(
        torch.from_numpy(x), lengths, batch_first=batch_first, enforce_sorted=enforce_sorted
    )
    actual = lstm_ref.pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    assert_same_packed(actual, expected)
    # lengths may also be a NumPy array
    assert_same_packed(
        lstm_ref.pack_padded_sequence(
            x, np.array(lengths), batch_first=batch_first, enforce_sorted=enforce_sorted
        ),
        expected,
    )
    for total_length, padding_value in [(None, 0.0), (max(lengths) + 2, -7.5)]:
        t_padded, t_lengths = rnn_utils.pad_packed_sequence(
            expected, batch_first=batch_first, padding_value=padding_value, total_length=total_length
        )
        r_padded, r_lengths = lstm_ref.pad_packed_sequence(
            actual, batch_first=batch_first, padding_value=padding_value, total_length=total_length
        )
        np.testing.assert_array_equal(r_padded, to_numpy(t_padded))
        assert r_padded.shape == tuple(t_padded.shape) and r_padded.dtype == to_numpy(t_padded).dtype
        np.testing.assert_array_equal(r_lengths, t_lengths.numpy())


@pytest.mark.parametrize(
    ("lname", "enforce_sorted"),
    # unsorted lengths with enforce_sorted is an error case (test_errors)
    [
        (name, enforce)
        for name in LENGTH_SETS
        for enforce in (True, False)
        if is_sorted(LENGTH_SETS[name]) or not enforce
    ],
)
def test_pack_sequence_and_pad_sequence_match_torch(lname: str, enforce_sorted: bool) -> None:
    lengths = LENGTH_SETS[lname]
    rng = np.random.default_rng(0)
    seqs = [random_array(rng, (n, 3), "float32") for n in lengths]
    expected = rnn_utils.pack_sequence([torch.from_numpy(s) for s in seqs], enforce_sorted=enforce_sorted)
    assert_same_packed(lstm_ref.pack_sequence(seqs, enforce_sorted=enforce_sorted), expected)
    for batch_first, padding_value in [(False, 0.0), (True, 2.5)]:
        t = rnn_utils.pad_sequence(
            [torch.from_numpy(s) for s in seqs], batch_first=batch_first, padding_value=padding_value
        )
        r = lstm_ref.pad_sequence(seqs, batch_first=batch_first, padding_value=padding_value)
        np.testing.assert_array_equal(r, to_numpy(t))
        assert r.dtype == np.float32


def test_enforce_sorted_gives_no_indices() -> None:
    packed = lstm_ref.pack_padded_sequence(np.zeros((3, 2, 1)), [3, 2])
    assert packed.sorted_indices is None and packed.unsorted_indices is None


# --- packed LSTM --------------------------------------------------------------------------------

LSTM_CASES = [
    pytest.param(
        dtype,
        proj,
        lname,
        enforce,
        hx,
        id=f"{dtype}-proj{proj}-{lname}-{'enforce' if enforce else 'free'}-{'hx' if hx else 'nohx'}",
    )
    for dtype, proj, lname, enforce, hx in itertools.product(
        ["float32", "float64"],
        [0, 2],
        ["single", "torch-test-1", "torch-test-2", "unsorted-ties"],
        [True, False],
        [False, True],
    )
    if is_sorted(LENGTH_SETS[lname]) or not enforce
]


@pytest.mark.parametrize(("dtype", "proj_size", "lname", "enforce_sorted", "with_hx"), LSTM_CASES)
def test_packed_sequence_equals_independent_runs(
    dtype: str, proj_size: int, lname: str, enforce_sorted: bool, with_hx: bool
) -> None:
    """torch's test_variable_sequence: every sequence of a packed batch equals torch run on that
    sequence alone (its own prefix, its own hx column); padded positions are exactly zero."""
    lengths = LENGTH_SETS[lname]
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, 2, bidirectional=True, proj_size=proj_size, dtype=torch_dtype(dtype)).eval()
    ref = lstm_ref.LSTM.from_torch(module)
    rng = np.random.default_rng(1)
    x = random_array(rng, (max(lengths), len(lengths), 3), dtype)
    h_out = proj_size or 4
    hx = (
        (random_array(rng, (4, len(lengths), h_out), dtype), random_array(rng, (4, len(lengths), 4), dtype))
        if with_hx
        else None
    )
    packed = lstm_ref.pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    out, (h_n, c_n) = ref(packed, hx)
    padded, out_lengths = lstm_ref.pad_packed_sequence(out)
    np.testing.assert_array_equal(out_lengths, lengths)
    for b, n in enumerate(lengths):
        state = (
            None if hx is None else tuple(torch.from_numpy(np.ascontiguousarray(s[:, b : b + 1])) for s in hx)
        )
        with torch.no_grad():
            t_out, (t_h, t_c) = module(torch.from_numpy(np.ascontiguousarray(x[:n, b : b + 1])), state)
        assert_close(padded[:n, b : b + 1], t_out, what=f"output of sequence {b}")
        assert_close(h_n[:, b : b + 1], t_h, what=f"h_n of sequence {b}")
        assert_close(c_n[:, b : b + 1], t_c, what=f"c_n of sequence {b}")
        assert np.all(padded[n:, b] == 0)


def test_packed_data_rows_follow_batch_sizes() -> None:
    """An independent check of the layout: row r of data is (t, sorted slot b) in packed order."""
    lengths = [2, 5, 1, 3, 3]
    x = np.arange(5 * 5, dtype=np.float64).reshape(5, 5, 1)
    packed = lstm_ref.pack_padded_sequence(x, lengths, enforce_sorted=False)
    order = sorted(range(5), key=lambda b: -lengths[b])  # stable, longest first
    rows = [x[t, b, 0] for t in range(5) for b in order if lengths[b] > t]
    np.testing.assert_array_equal(packed.data[:, 0], rows)
    np.testing.assert_array_equal(packed.sorted_indices, order)


# --- many tied lengths: torch's unstable sort ----------------------------------------------------

MANY_TIES = np.random.default_rng(0).integers(1, 5, 40).tolist()  # 40 sequences, lengths 1..4


def test_many_ties_packing_is_stable_and_equivalent_to_torch() -> None:
    """Beyond 16 sequences torch's unstable sort may order tied lengths differently from
    lstm_ref's stable order (a documented difference); everything observable after unpacking
    is the same."""
    x = padded_input(MANY_TIES, (3,), False)
    t = rnn_utils.pack_padded_sequence(torch.from_numpy(x), MANY_TIES, enforce_sorted=False)
    r = lstm_ref.pack_padded_sequence(x, MANY_TIES, enforce_sorted=False)
    lengths = np.array(MANY_TIES)
    stable = sorted(range(len(MANY_TIES)), key=lambda b: -MANY_TIES[b])  # Python's sort is stable
    np.testing.assert_array_equal(r.sorted_indices, stable)
    np.testing.assert_array_equal(r.unsorted_indices, np.argsort(stable))
    np.testing.assert_array_equal(lengths[r.sorted_indices], lengths[t.sorted_indices.numpy()])
    np.testing.assert_array_equal(r.batch_sizes, t.batch_sizes.numpy())
    r_padded, r_lengths = lstm_ref.pad_packed_sequence(r)
    t_padded, t_lengths = rnn_utils.pad_packed_sequence(t)
    np.testing.assert_array_equal(r_padded, to_numpy(t_padded))
    np.testing.assert_array_equal(r_lengths, t_lengths.numpy())


@pytest.mark.parametrize("packer", ["torch-packed", "lstm_ref-packed"])
def test_many_ties_lstm_matches_torch(packer: str) -> None:
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, 2, bidirectional=True, dtype=torch.float64).eval()
    ref = lstm_ref.LSTM.from_torch(module)
    x = padded_input(MANY_TIES, (3,), False)
    hx = tuple(random_array(np.random.default_rng(9), (4, len(MANY_TIES), 4), "float64") for _ in range(2))
    t_packed = rnn_utils.pack_padded_sequence(torch.from_numpy(x), MANY_TIES, enforce_sorted=False)
    with torch.no_grad():
        t_out, (t_h, t_c) = module(t_packed, tuple(map(torch.from_numpy, hx)))
    if packer == "torch-packed":  # torch's own slot order, whatever it is
        r_in = lstm_ref.PackedSequence(
            to_numpy(t_packed.data),
            t_packed.batch_sizes.numpy(),
            t_packed.sorted_indices.numpy(),
            t_packed.unsorted_indices.numpy(),
        )
    else:
        r_in = lstm_ref.pack_padded_sequence(x, MANY_TIES, enforce_sorted=False)
    r_out, (h, c) = ref(r_in, hx)
    assert_close(lstm_ref.pad_packed_sequence(r_out)[0], rnn_utils.pad_packed_sequence(t_out)[0])
    assert_close(h, t_h)
    assert_close(c, t_c)


def test_packed_sequence_constructor_derives_unsorted_indices_like_torch() -> None:
    """PackedSequence(data, batch_sizes, sorted_indices): torch fills in unsorted_indices, so h_n
    and pad_packed_sequence come back in the caller's order."""
    lengths = [2, 5, 3, 3]
    x = padded_input(lengths, (3,), False)
    t_full = rnn_utils.pack_padded_sequence(torch.from_numpy(x), lengths, enforce_sorted=False)
    t = rnn_utils.PackedSequence(t_full.data, t_full.batch_sizes, t_full.sorted_indices)
    r = lstm_ref.PackedSequence(to_numpy(t.data), t.batch_sizes.numpy(), t.sorted_indices.numpy())
    assert_same_packed(r, t)
    assert_same_packed(
        lstm_ref.PackedSequence(to_numpy(t.data), t.batch_sizes.numpy()),
        rnn_utils.PackedSequence(t.data, t.batch_sizes),
    )
    np.testing.assert_array_equal(
        lstm_ref.pad_packed_sequence(r)[0], to_numpy(rnn_utils.pad_packed_sequence(t)[0])
    )
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, dtype=torch.float64).eval()
    with torch.no_grad():
        _, (t_h, t_c) = module(t)
    _, (h, c) = lstm_ref.LSTM.from_torch(module)(r)
    assert_close(h, t_h)
    assert_close(c, t_c)
