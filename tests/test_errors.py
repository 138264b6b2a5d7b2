"""Bad arguments and bad inputs: lstm_ref raises the SAME exception type as live torch.

Every case is data: a callable that takes a library adapter (torch or lstm_ref) and does
the bad thing.  torch is the oracle and runs live for every case; nothing about torch's
exception type is hard-coded.  For lstm_ref we also check the message is informative: it is
either torch's message verbatim, or mentions the listed fragments (expected / given values).

Rows come from docs/semantics.md (sections 7 and 8) plus LSTMCell and packing.
Deliberate differences from torch are a separate, commented list at the end.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from lstm_test_utils import assert_close, to_numpy, torch_dtype

import lstm_ref
from conformance.run.exec_impl import CTOR_PARAMS

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


def z(*shape: int, dtype: str = "float32") -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


class Lib:
    """What a case may use; one implementation per library."""

    name: str

    def LSTM(self, *args: Any, dtype: Any = "float32", **kwargs: Any) -> Any:  # constructor under test
        raise NotImplementedError

    def model(self, *args: Any, dtype: str = "float32", **kwargs: Any) -> Any:
        """A valid model; lstm_ref's copies torch's weights so results can be compared."""
        raise NotImplementedError

    def LSTMCell(self, *args: Any, dtype: Any = "float32", **kwargs: Any) -> Any:
        raise NotImplementedError

    def cell(self, *args: Any, dtype: str = "float32", **kwargs: Any) -> Any:
        raise NotImplementedError

    def arr(self, a: np.ndarray) -> Any:
        raise NotImplementedError

    def pack_padded_sequence(self, x: np.ndarray, lengths: list[int], **kwargs: Any) -> Any:
        raise NotImplementedError

    def pad_packed_sequence(self, packed: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def pack_sequence(self, seqs: list[np.ndarray], **kwargs: Any) -> Any:
        raise NotImplementedError

    def pad_sequence(self, seqs: list[np.ndarray], **kwargs: Any) -> Any:
        raise NotImplementedError


def _dtype_for_torch(dtype: Any) -> Any:
    try:
        return torch_dtype(dtype)
    except KeyError:
        return getattr(torch, np.dtype(dtype).name)


class TorchLib(Lib):
    name = "torch"

    def LSTM(self, *args: Any, dtype: Any = "float32", **kwargs: Any) -> Any:
        return torch.nn.LSTM(*args, dtype=_dtype_for_torch(dtype), **kwargs)

    def model(self, *args: Any, dtype: str = "float32", **kwargs: Any) -> Any:
        torch.manual_seed(0)
        return torch.nn.LSTM(*args, dtype=torch_dtype(dtype), **kwargs)

    def LSTMCell(self, *args: Any, dtype: Any = "float32", **kwargs: Any) -> Any:
        return torch.nn.LSTMCell(*args, dtype=_dtype_for_torch(dtype), **kwargs)

    def cell(self, *args: Any, dtype: str = "float32", **kwargs: Any) -> Any:
        torch.manual_seed(0)
        return torch.nn.LSTMCell(*args, dtype=torch_dtype(dtype), **kwargs)

    def arr(self, a: np.ndarray) -> Any:
        return torch.from_numpy(np.array(a))  # (ascontiguousarray would make 0-D 1-D)

    def pack_padded_sequence(self, x: np.ndarray, lengths: list[int], **kwargs: Any) -> Any:
        return torch.nn.utils.rnn.pack_padded_sequence(self.arr(x), lengths, **kwargs)

    def pad_packed_sequence(self, packed: Any, **kwargs: Any) -> Any:
        return torch.nn.utils.rnn.pad_packed_sequence(packed, **kwargs)

    def pack_sequence(self, seqs: list[np.ndarray], **kwargs: Any) -> Any:
        return torch.nn.utils.rnn.pack_sequence([self.arr(s) for s in seqs], **kwargs)

    def pad_sequence(self, seqs: list[np.ndarray], **kwargs: Any) -> Any:
        return torch.nn.utils.rnn.pad_sequence([self.arr(s) for s in seqs], **kwargs)


class RefLib(Lib):
    name = "lstm_ref"

    def LSTM(self, *args: Any, dtype: Any = "float32", **kwargs: Any) -> Any:
        return lstm_ref.LSTM(*args, dtype=np.dtype(dtype), **kwargs)

    def model(self, *args: Any, dtype: str = "float32", **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the torch twin's own warnings are not under test
            return lstm_ref.LSTM.from_torch(TORCH.model(*args, dtype=dtype, **kwargs))

    def LSTMCell(self, *args: Any, dtype: Any = "float32", **kwargs: Any) -> Any:
        return lstm_ref.LSTMCell(*args, dtype=np.dtype(dtype), **kwargs)

    def cell(self, *args: Any, dtype: str = "float32", **kwargs: Any) -> Any:
        return lstm_ref.LSTMCell.from_torch(TORCH.cell(*args, dtype=dtype, **kwargs))

    def arr(self, a: np.ndarray) -> Any:
        return a

    def pack_padded_sequence(self, x: np.ndarray, lengths: list[int], **kwargs: Any) -> Any:
        return lstm_ref.pack_padded_sequence(x, lengths, **kwargs)

    def pad_packed_sequence(self, packed: Any, **kwargs: Any) -> Any:
        return lstm_ref.pad_packed_sequence(packed, **kwargs)

    def pack_sequence(self, seqs: list[np.ndarray], **kwargs: Any) -> Any:
        return lstm_ref.pack_sequence(seqs, **kwargs)

    def pad_sequence(self, seqs: list[np.ndarray], **kwargs: Any) -> Any:
        return lstm_ref.pad_sequence(seqs, **kwargs)


TORCH, REF = TorchLib(), RefLib()
SAME = "same-as-torch"  # lstm_ref's message must equal torch's verbatim


@dataclass(frozen=True)
class Bad:
    id: str
    run: Callable[[Lib], Any]
    mentions: tuple[str, ...] | str = ()  # fragments lstm_ref's message must contain, or SAME
    warns: str | None = None  # a UserWarning (fragment) both must emit before failing


def fwd(x: np.ndarray, hx: Any = None, *model_args: Any, **model_kwargs: Any) -> Callable[[Lib], Any]:
    """Call a (valid) model on x and hx; hx entries are numpy arrays or None."""
    args = model_args or (3, 4)

    def run(lib: Lib) -> Any:
        m = lib.model(*args, **model_kwargs)
        state = hx
        if isinstance(hx, np.ndarray):
            state = lib.arr(hx)
        elif isinstance(hx, tuple | list):
            state = type(hx)(None if s is None else lib.arr(s) for s in hx)
        return m(lib.arr(x), state)

    return run


def fwd_packed(
    lengths: list[int], features: int = 3, hx: Any = None, dtype: str = "float32", **kw: Any
) -> Callable[[Lib], Any]:
    def run(lib: Lib) -> Any:
        m = lib.model(3, 4, **kw)
        packed = lib.pack_padded_sequence(
            z(max(lengths), len(lengths), features, dtype=dtype), lengths, enforce_sorted=False
        )
        state = None if hx is None else tuple(None if s is None else lib.arr(s) for s in hx)
        return m(packed, state)

    return run


def ctor(*args: Any, **kwargs: Any) -> Callable[[Lib], Any]:
    return lambda lib: lib.LSTM(*args, **kwargs)


X = z(5, 2, 3)
H0, C0 = z(1, 2, 4), z(1, 2, 4)

CONSTRUCTOR = [
    Bad("hidden_size=0", ctor(3, 0), SAME),
    Bad("hidden_size=-1", ctor(3, -1), SAME),
    Bad("input_size=0", ctor(0, 4), SAME),
    Bad("input_size=-1", ctor(-1, 4), SAME),
    Bad("num_layers=0", ctor(3, 4, 0), SAME),
    Bad("num_layers=-1", ctor(3, 4, -1), SAME),
    Bad("num_layers=2.0", ctor(3, 4, 2.0), ("float",)),
    Bad("num_layers=1.5", ctor(3, 4, 1.5), ("float",)),
    Bad("num_layers='2'", ctor(3, 4, "2")),
    Bad("num_layers=None", ctor(3, 4, None)),
    Bad("num_layers=np.float64(2.0)", ctor(3, 4, np.float64(2.0)), ("float",)),
    Bad("proj_size='1'", ctor(3, 4, proj_size="1")),
    *(
        Bad(f"dropout={v!r}", ctor(3, 4, 2, dropout=v), SAME)
        for v in (-0.1, 1.1, True, "0.5", float("nan"), np.float64(-1))
    ),
    Bad("dropout=None", ctor(3, 4, 2, dropout=None), ("NoneType",)),
    Bad("dropout='abc'", ctor(3, 4, 2, dropout="abc"), ("abc",)),
    Bad("dropout=1j", ctor(3, 4, 2, dropout=1j), ("complex",)),
    Bad("proj_size=-1", ctor(3, 4, proj_size=-1), SAME),
    Bad("proj_size=hidden", ctor(3, 4, proj_size=4), SAME),
    Bad("proj_size>hidden", ctor(3, 4, proj_size=5), SAME),
    Bad("proj_size=2.0", ctor(3, 4, proj_size=2.0), ("float",)),
    Bad("proj_size=True", ctor(3, 4, proj_size=True), ("bool",)),
    *(
        Bad(f"input_size={v!r}", ctor(v, 4), ("input_size", type(v).__name__))
        for v in (3.0, "3", None, np.int64(3))
    ),
    Bad("hidden_size=4.0", ctor(3, 4.0), SAME),
    *(Bad(f"bias={v!r}", ctor(3, 4, bias=v), SAME) for v in (1, None, 0, "True")),
    *(Bad(f"batch_first={v!r}", ctor(3, 4, batch_first=v), SAME) for v in (1, "yes", 0, "False")),
    Bad("dtype=int32", ctor(3, 4, dtype="int32"), ("int32",)),
    Bad("dtype=int64", ctor(3, 4, dtype="int64"), ("int64",)),
    Bad("unknown kwarg", ctor(3, 4, foo=1), ("foo",)),
    # the dropout warning comes before the type checks
    Bad(
        "warn-then-TypeError",
        ctor(3, 4.0, dropout=0.5),
        ("hidden_size",),
        warns="non-zero dropout expects num_layers greater than 1",
    ),
]

FORWARD = [
    *(Bad(f"input {n}-D", fwd(z(*(3,) * n)), SAME) for n in (0, 1, 4)),
    Bad("input 1-D float64 (dim checked before dtype)", fwd(z(3, dtype="float64")), SAME),
    Bad("input_size mismatch batched", fwd(z(5, 2, 7)), SAME),
    Bad("input_size mismatch unbatched", fwd(z(5, 7)), SAME),
    Bad("input last dim 0", fwd(z(5, 2, 0)), SAME),
    Bad("h0 wrong batch", fwd(X, (z(1, 3, 4), C0)), SAME),
    Bad("h0 wrong layers", fwd(X, (z(2, 2, 4), C0)), SAME),
    Bad("h0 wrong hidden", fwd(X, (z(1, 2, 5), C0)), SAME),
    Bad("c0 wrong", fwd(X, (H0, z(1, 2, 5))), SAME),
    Bad("both wrong: h0 reported", fwd(X, (z(1, 3, 4), z(1, 2, 5))), SAME),
    Bad("proj h0 with hidden_size", fwd(X, (z(1, 2, 4), C0), 3, 4, proj_size=2), SAME),
    Bad("proj c0 with proj_size", fwd(X, (z(1, 2, 2), z(1, 2, 2)), 3, 4, proj_size=2), SAME),
    Bad("bidir2 h0 too few layers", fwd(X, (z(2, 2, 4), z(4, 2, 4)), 3, 4, 2, bidirectional=True), SAME),
    Bad(
        "batch_first h0 batch-first", fwd(z(2, 5, 3), (z(2, 1, 4), z(2, 1, 4)), 3, 4, batch_first=True), SAME
    ),
    Bad("hx single array (1 layer)", fwd(X, H0), ("(h_0, c_0)",)),
    Bad("hx single array (2 layers)", fwd(X, z(2, 2, 4), 3, 4, 2), ("3-D",)),
    Bad("hx single array (3 rows)", fwd(X, z(3, 2, 4), 3, 4, 3)),
    Bad("unbatched input, hx single 2-D array", fwd(z(5, 3), z(2, 4)), SAME),
    Bad("hx single 4-D array (two states stacked)", fwd(X, z(2, 1, 2, 4)), ("(h_0, c_0)", "single array")),
    Bad(
        "input a nested list",
        lambda lib: lib.model(3, 4)(z(5, 2, 3).tolist(), None),
        ("numpy.ndarray", "list"),
    ),
    Bad(
        "input an object array",
        lambda lib: lib.model(3, 4)(lib.arr(z(5, 2, 3, dtype="object")), None),
        ("object",),
    ),
    Bad("hx 1-tuple", fwd(X, (H0,)), ("(h_0, c_0)",)),
    Bad("hx 3-tuple", fwd(X, (H0, C0, C0)), ("two hidden states",)),
    Bad("hx (h0, None)", fwd(X, (H0, None)), ("None",)),
    Bad("hx (None, c0)", fwd(X, (None, C0)), ("None",)),
    Bad("batched input 2-D hx", fwd(X, (z(2, 4), z(2, 4))), SAME),
    Bad("batched input mixed 3-D/2-D hx", fwd(X, (H0, z(2, 4))), SAME),
    Bad("unbatched input 3-D hx", fwd(z(5, 3), (z(1, 1, 4), z(1, 1, 4))), SAME),
    Bad("unbatched wrong hx size", fwd(z(5, 3), (z(1, 5), z(1, 4))), SAME),
    *(
        Bad(f"input {dt} into float32 model", fwd(z(5, 2, 3, dtype=dt)), ("float32", dt))
        for dt in ("float64", "float16", "int64", "complex64")
    ),
    Bad(
        "float64 input with wrong size: dtype reported",
        fwd(z(5, 2, 7, dtype="float64")),
        ("float64", "float32"),
    ),
    Bad("float32 model, float64 h0", fwd(X, (z(1, 2, 4, dtype="float64"), C0)), ("float64", "float32")),
    Bad("float32 model, float64 c0", fwd(X, (H0, z(1, 2, 4, dtype="float64"))), ("float64", "float32")),
    Bad(
        "float64 model, float32 h0",
        fwd(z(5, 2, 3, dtype="float64"), (H0, z(1, 2, 4, dtype="float64")), dtype="float64"),
        ("float32", "float64"),
    ),
    Bad(
        "complex64 model, float32 h0",
        fwd(z(5, 2, 3, dtype="complex64"), (H0, z(1, 2, 4, dtype="complex64")), dtype="complex64"),
        ("float32", "complex64"),
    ),
    Bad(
        "complex64 model, float64 c0",
        fwd(
            z(5, 2, 3, dtype="complex64"),
            (z(1, 2, 4, dtype="complex64"), z(1, 2, 4, dtype="float64")),
            dtype="complex64",
        ),
        ("float64", "complex64"),
    ),
    Bad("seq_len 0", fwd(z(0, 2, 3)), SAME),
    Bad("seq_len 0 batch 0", fwd(z(0, 0, 3)), SAME),
    Bad("seq_len 0 unbatched", fwd(z(0, 3)), SAME),
    Bad("seq_len 0 bidir", fwd(z(0, 2, 3), None, 3, 4, bidirectional=True), SAME),
    Bad("seq_len 0 batch_first", fwd(z(2, 0, 3), None, 3, 4, batch_first=True), SAME),
    # PackedSequence input: torch runs no Python checks; its C++ errors are RuntimeError
    Bad("packed wrong input_size", fwd_packed([5, 3, 2], features=7), ("input_size", "7", "3")),
    Bad(
        "packed hx batch too small",
        fwd_packed([5, 3, 2], hx=(z(1, 2, 4), z(1, 2, 4))),
        ("hidden[0]", "(1, 3, 4)", "[1, 2, 4]"),
    ),
    Bad(
        "packed h0 hidden wrong",
        fwd_packed([5, 3, 2], hx=(z(1, 3, 5), z(1, 3, 4))),
        ("hidden[0]", "(1, 3, 4)", "[1, 3, 5]"),
    ),
    Bad(
        "packed c0 hidden wrong",
        fwd_packed([5, 3, 2], hx=(z(1, 3, 4), z(1, 3, 5))),
        ("hidden[1]", "(1, 3, 4)", "[1, 3, 5]"),
    ),
    Bad(
        "packed hx layers wrong",
        fwd_packed([5, 3, 2], hx=(z(1, 3, 4), z(1, 3, 4)), num_layers=2),
        ("hidden[0]", "(2, 3, 4)", "[1, 3, 4]"),
    ),
    Bad("packed float64 data", fwd_packed([5, 3, 2], dtype="float64"), ("float64", "float32")),
    Bad(
        "packed float64 h0",
        fwd_packed([5, 3, 2], hx=(z(1, 3, 4, dtype="float64"), z(1, 3, 4))),
        ("float64", "float32"),
    ),
    Bad("packed hx 1-tuple", fwd_packed([5, 3, 2], hx=(z(1, 3, 4),)), ("(h_0, c_0)",)),
    Bad("packed (h0, None)", fwd_packed([5, 3, 2], hx=(z(1, 3, 4), None)), ("None",)),
]

PACKING = [
    Bad(
        "unsorted lengths with enforce_sorted",
        lambda lib: lib.pack_padded_sequence(z(5, 3, 3), [2, 5, 3]),
        SAME,
    ),
    Bad("length 0", lambda lib: lib.pack_padded_sequence(z(5, 3, 3), [5, 0, 3], enforce_sorted=False), SAME),
    Bad(
        "negative length",
        lambda lib: lib.pack_padded_sequence(z(5, 3, 3), [5, -1, 3], enforce_sorted=False),
        SAME,
    ),
    Bad("len(lengths) != batch", lambda lib: lib.pack_padded_sequence(z(5, 3, 3), [5, 3]), ("3", "2")),
    Bad("pack_sequence unsorted", lambda lib: lib.pack_sequence([z(2, 3), z(4, 3)]), SAME),
    Bad("pack_sequence empty list", lambda lib: lib.pack_sequence([])),
    Bad(
        "pack_sequence mismatched features",
        lambda lib: lib.pack_sequence([z(4, 3), z(2, 2)]),
        ("(4, 3)", "(2, 2)"),
    ),
    Bad("pad_sequence empty list", lambda lib: lib.pad_sequence([])),
    Bad(
        "pad_sequence mismatched features",
        lambda lib: lib.pad_sequence([z(4, 3), z(2, 2)]),
        ("(4, 3)", "(2, 2)"),
    ),
    Bad("pack_padded_sequence 1-D input", lambda lib: lib.pack_padded_sequence(z(5), [5])),
    Bad("pack_padded_sequence empty batch", lambda lib: lib.pack_padded_sequence(z(5, 0, 3), []), SAME),
    Bad(
        "pack_padded_sequence no features", lambda lib: lib.pack_padded_sequence(z(5, 3, 0), [5, 3, 2]), SAME
    ),
    Bad("pack_padded_sequence no steps", lambda lib: lib.pack_padded_sequence(z(0, 3, 2), [5, 3, 2]), SAME),
    Bad(
        "pack_padded_sequence 2-D lengths",
        lambda lib: lib.pack_padded_sequence(z(5, 3, 2), [[3, 2, 1]]),
        ("1D", "2D"),
    ),
    # several problems at once: torch's order of checks decides which is reported
    Bad("unsorted and too few lengths", lambda lib: lib.pack_padded_sequence(z(5, 3, 2), [2, 3]), SAME),
    Bad("unsorted with a zero length", lambda lib: lib.pack_padded_sequence(z(5, 3, 2), [2, 0, 3]), SAME),
    Bad("sorted with a zero length", lambda lib: lib.pack_padded_sequence(z(5, 3, 2), [3, 2, 0]), SAME),
    Bad(
        "total_length too short",
        lambda lib: lib.pad_packed_sequence(lib.pack_padded_sequence(z(5, 2, 3), [5, 3]), total_length=4),
        SAME,
    ),
]

CELL = [
    *(Bad(f"cell input {n}-D", lambda lib, n=n: lib.cell(3, 4)(lib.arr(z(*(3,) * n))), SAME) for n in (0, 3)),
    Bad(
        "cell hx 3-D",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(1, 2, 4)), lib.arr(z(2, 4)))),
        SAME,
    ),
    Bad("cell input_size mismatch", lambda lib: lib.cell(3, 4)(lib.arr(z(2, 5))), SAME),
    Bad(
        "cell hidden wrong",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(2, 5)), lib.arr(z(2, 4)))),
        SAME,
    ),
    Bad(
        "cell c wrong",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(2, 4)), lib.arr(z(2, 5)))),
        SAME,
    ),
    Bad(
        "cell batch mismatch",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(3, 4)), lib.arr(z(3, 4)))),
        SAME,
    ),
    Bad(
        "cell unbatched x, batched hx",
        lambda lib: lib.cell(3, 4)(lib.arr(z(3)), (lib.arr(z(2, 4)), lib.arr(z(2, 4)))),
        SAME,
    ),
    Bad(
        "cell batched x, unbatched hx",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(4)), lib.arr(z(4)))),
        SAME,
    ),
    Bad(
        "cell float64 input",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3, dtype="float64"))),
        ("float64", "float32"),
    ),
    Bad(
        "cell float64 h",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(2, 4, dtype="float64")), lib.arr(z(2, 4)))),
        ("float64", "float32"),
    ),
    Bad("cell hx single array", lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), lib.arr(z(2, 4))), ("tuple",)),
    Bad(
        "cell hx 1-tuple",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(2, 4)),)),
        ("two hidden states",),
    ),
    Bad(
        "cell hx 3-tuple",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(2, 4)),) * 3),
        ("two hidden states",),
    ),
    Bad(
        "cell hx (h, None)", lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(2, 4)), None)), ("None",)
    ),
    Bad("cell ctor input_size=-1", lambda lib: lib.LSTMCell(-1, 4), ("-1",)),
    Bad("cell ctor hidden_size=-1", lambda lib: lib.LSTMCell(3, -1), ("-1",)),
    Bad("cell ctor input_size=3.0", lambda lib: lib.LSTMCell(3.0, 4), ("float",)),
    Bad("cell ctor hidden_size='4'", lambda lib: lib.LSTMCell(3, "4"), ("str",)),
    Bad("cell ctor dtype=int64", lambda lib: lib.LSTMCell(3, 4, dtype="int64"), ("int64",)),
]

ALL_BAD = CONSTRUCTOR + FORWARD + PACKING + CELL


def outcome(lib: Lib, run: Callable[[Lib], Any]) -> tuple[BaseException | None, Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = run(lib), None
        except Exception as e:  # any exception is data here
            result, error = None, e
    messages = [
        str(w.message)
        for w in caught
        if issubclass(w.category, UserWarning) and "oneDNN" not in str(w.message)
    ]
    return error, result, messages


@pytest.mark.parametrize("case", ALL_BAD, ids=lambda c: c.id)
def test_same_exception_type_as_torch(case: Bad) -> None:
    t_error, _, t_warnings = outcome(TORCH, case.run)
    r_error, _, r_warnings = outcome(REF, case.run)
    assert t_error is not None, "the case must be an error in torch (the oracle)"
    assert r_error is not None, f"torch raised {type(t_error).__name__}: {t_error}; lstm_ref raised nothing"
    assert type(r_error) is type(t_error), (
        f"torch: {type(t_error).__name__}: {t_error}\nlstm_ref: {type(r_error).__name__}: {r_error}"
    )
    if case.mentions == SAME:
        assert str(r_error) == str(t_error)
    else:
        for fragment in case.mentions:
            assert fragment in str(r_error), f"{fragment!r} not in lstm_ref's message {str(r_error)!r}"
    if case.warns:
        assert any(case.warns in w for w in t_warnings), t_warnings
        assert any(case.warns in w for w in r_warnings), r_warnings


# --- accepted by both (the checks must not be stricter than torch here) ------------------------


@dataclass(frozen=True)
class Ok:
    id: str
    run: Callable[[Lib], Any]
    warns: str | None = None


ACCEPTED = [
    Ok("num_layers=True", ctor(3, 4, True)),
    Ok("num_layers=np.int64(2)", ctor(3, 4, np.int64(2))),
    Ok("input_size=True", ctor(True, 4)),
    Ok("hidden_size=True", ctor(3, True)),
    *(Ok(f"bidirectional={v!r}", ctor(3, 4, bidirectional=v)) for v in (1, "x", 0)),
    Ok("dropout=1.0 two layers", ctor(3, 4, 2, dropout=1.0)),
    Ok("dropout=0 (int)", ctor(3, 4, dropout=0)),
    Ok("dropout=np.float64", ctor(3, 4, 2, dropout=np.float64(0.5))),
    Ok("proj_size=np.int64(2)", ctor(3, 4, proj_size=np.int64(2))),
    Ok(
        "dropout=0.5 one layer warns",
        ctor(3, 4, dropout=0.5),
        warns="dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects num_layers greater than 1, but got dropout=0.5 and num_layers=1",
    ),
    Ok("dtype complex64", ctor(3, 4, dtype="complex64")),
    Ok("hx as a list", fwd(X, [H0, C0])),
    Ok("batch 0", fwd(z(5, 0, 3))),
    Ok("batch 0 bidir 2 layers", fwd(z(5, 0, 3), None, 3, 4, 2, bidirectional=True)),
    Ok("unbatched on batch_first model", fwd(z(5, 3), None, 3, 4, batch_first=True)),
    Ok(
        "float64 model, float32 c0 (promoted)",
        fwd(z(5, 2, 3, dtype="float64") + 0.5, (z(1, 2, 4, dtype="float64"), C0 + 1), dtype="float64"),
    ),
    Ok(
        "complex64 model, float32 c0 (promoted)",
        fwd(z(5, 2, 3, dtype="complex64") + 0.5j, (z(1, 2, 4, dtype="complex64"), C0 + 1), dtype="complex64"),
    ),
    Ok(
        "float64 model, int64 c0 (promoted)",
        fwd(
            z(5, 2, 3, dtype="float64") + 0.5,
            (z(1, 2, 4, dtype="float64"), z(1, 2, 4, dtype="int64") + 1),
            dtype="float64",
        ),
    ),
    Ok("cell ctor input_size=0", lambda lib: lib.LSTMCell(0, 4)),
    Ok("cell ctor hidden_size=0", lambda lib: lib.LSTMCell(3, 0)),
    Ok("cell batch 0", lambda lib: lib.cell(3, 4)(lib.arr(z(0, 3)))),
    Ok(
        "cell float64, float32 c0 (promoted)",
        lambda lib: lib.cell(3, 4, dtype="float64")(
            lib.arr(z(2, 3, dtype="float64") + 1), (lib.arr(z(2, 4, dtype="float64")), lib.arr(z(2, 4) + 1))
        ),
    ),
    Ok(
        "cell hx list",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3) + 1), [lib.arr(z(2, 4) + 1), lib.arr(z(2, 4))]),
    ),
]


def _comparable(result: Any) -> list[Any]:
    """Flatten a forward result to arrays, or a module to its public configuration."""
    if isinstance(result, tuple | list):
        return [x for r in result for x in _comparable(r)]
    if hasattr(result, "batch_sizes"):
        return _comparable(result.data)
    if hasattr(result, "detach") or isinstance(result, np.ndarray):
        return [result]
    return [tuple(getattr(result, n, None) for n in CTOR_PARAMS[:-2])]  # not dtype, seed


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_accepted_like_torch(case: Ok) -> None:
    t_error, t_result, t_warnings = outcome(TORCH, case.run)
    r_error, r_result, r_warnings = outcome(REF, case.run)
    assert t_error is None, f"torch raised {t_error!r}: the case is not an accepted one"
    assert r_error is None, f"lstm_ref raised {type(r_error).__name__}: {r_error}"
    for t, r in zip(_comparable(t_result), _comparable(r_result), strict=True):
        if hasattr(t, "detach"):
            assert_close(r, to_numpy(t))
        else:
            assert r == t
    if case.warns:
        assert case.warns in t_warnings
        assert case.warns in r_warnings
    else:
        assert r_warnings == []


# --- deliberate differences: lstm_ref is stricter than torch (documented here) -------------------


@dataclass(frozen=True)
class Stricter:
    id: str
    run: Callable[[Lib], Any]
    error: type[BaseException]
    mentions: tuple[str, ...]
    why: str


STRICTER = [
    Stricter(
        "pack_padded_sequence length > T",
        lambda lib: lib.pack_padded_sequence(z(6, 4, 3), [7, 3, 3, 2]),
        RuntimeError,
        ("7", "6"),
        "torch does not check and packs out-of-bounds memory (docs/semantics.md section 8)",
    ),
    Stricter(
        "packed hx 3-tuple",
        fwd_packed([5, 3, 2], hx=(z(1, 3, 4),) * 3),
        RuntimeError,
        ("two hidden states",),
        "torch's packed path silently ignores the third element",
    ),
    Stricter(
        "packed hx batch too large",
        fwd_packed([5, 3, 2], hx=(z(1, 4, 4), z(1, 4, 4))),
        RuntimeError,
        ("hidden[0]", "(1, 3, 4)", "[1, 4, 4]"),
        "torch's packed path index_selects the first rows of a too-large hx silently",
    ),
    Stricter(
        "packed hx 2-D",
        fwd_packed([5, 3, 2], hx=(z(3, 4), z(3, 4))),
        RuntimeError,
        ("hidden[0]", "(1, 3, 4)", "[3, 4]"),
        "torch raises an IndexError from inside permute_hidden; lstm_ref reports the shape",
    ),
    Stricter(
        "dtype float16",
        ctor(3, 4, dtype="float16"),
        TypeError,
        ("float16",),
        "lstm_ref supports float32/float64/complex64/complex128 only; torch accepts half",
    ),
    Stricter(
        "cell float32, float64 c0",
        lambda lib: lib.cell(3, 4)(lib.arr(z(2, 3)), (lib.arr(z(2, 4)), lib.arr(z(2, 4, dtype="float64")))),
        RuntimeError,
        ("float64", "float32"),
        "torch promotes and returns float64 (h, c) from a float32 cell; lstm_ref keeps the cell's dtype",
    ),
]


@pytest.mark.parametrize("case", STRICTER, ids=lambda c: c.id)
def test_deliberately_stricter_than_torch(case: Stricter) -> None:
    t_error, _, _ = outcome(TORCH, case.run)
    r_error, _, _ = outcome(REF, case.run)
    # torch does something else (accepts, or fails obscurely); if torch starts raising the same
    # type with the same meaning, this list entry should move to ALL_BAD.
    assert t_error is None or type(t_error) is not case.error, case.why
    assert isinstance(r_error, case.error), f"{case.why}: lstm_ref raised {r_error!r}"
    for fragment in case.mentions:
        assert fragment in str(r_error), f"{fragment!r} not in {str(r_error)!r}"


def test_float32_model_with_float16_c0_follows_torchs_native_path() -> None:
    """torch's oneDNN float32 path rejects a float16 c0 (RuntimeError) but its native path
    (proj_size>0, packed, or oneDNN off) promotes it; lstm_ref follows the native path."""
    x, h0, c0 = X + 1, z(1, 2, 2), z(1, 2, 4, dtype="float16") + 1
    t_out = TORCH.model(3, 4, proj_size=2)(TORCH.arr(x), (TORCH.arr(h0), TORCH.arr(c0)))
    r_out = REF.model(3, 4, proj_size=2)(x, (h0, c0))
    for t, r in zip(_comparable(t_out), _comparable(r_out), strict=True):
        assert_close(r, to_numpy(t))
