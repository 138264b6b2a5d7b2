"""The conformance table's rows, declared once, in table order.

Each ``Row`` says what it covers and which checks earn it.  The runner runs the checks, the
table counts their results, declarations (``conformance_unsupported``) name rows, and the
fixture generator asks the rows which extra oracle arrays to store (``produce``).

A check may count towards more rows than its own: the whole-sequence check of a bidirectional
float32 case counts towards ``whole_sequence``, ``bidirectional`` and ``float32``.  Rows with no
check of their own (``bidirectional``, ``float32``, ``probes``, ...) are earned that way, by the
cases that have the feature (``Case.features``).

Adding a row is one entry here plus its check function (docs/rows.md shows an example).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..contract.cases import Case
from ..contract.compare import Agreement, Divergence
from ..oracles.torch_oracle import ArrayProducer
from . import dropout_checks, forward_checks, gradients
from .errors import ERROR_CASES, ErrorCase, check_error_type, check_rejected, error_cases
from .harness import Arrays, Context, Factory, SuiteContext


@dataclass(frozen=True)
class CaseCheck:
    """A check run on every case it applies to, once per oracle (or only against the first
    oracle that has the case, for checks that compare the implementation with itself)."""

    name: str
    run: Callable[[Context], Agreement]
    applies: Callable[[Case, Arrays], bool]
    counts_towards: Callable[[Case], tuple[str, ...]]
    every_oracle: bool = True
    needs: tuple[str, ...] = ()  # oracle arrays it reads beyond the forward's (made by `produce`)


@dataclass(frozen=True)
class SuiteItem:
    id: str
    run: Callable[[], Agreement]
    needs: tuple[str, ...] = ()  # features it exercises: declaring one skips it


SuiteItems = Iterator[SuiteItem]


@dataclass(frozen=True)
class SuiteCheck:
    """A check run once per oracle (or once, needing no oracle) over its own items."""

    name: str
    item_ids: tuple[str, ...]  # what `items` yields, in order (so --case can select without running)
    items: Callable[[SuiteContext], SuiteItems]
    per_oracle: bool  # False: needs no oracle ("self"), runs once
    needs: tuple[str, ...] = ()  # rows whose declaration also skips this one


@dataclass(frozen=True)
class Row:
    name: str
    description: str
    checks: tuple[CaseCheck, ...] = ()
    suite: SuiteCheck | None = None
    produce: ArrayProducer | None = None  # extra arrays the torch oracle stores for this row


def _ok(arrays: Arrays) -> bool:
    return "error" not in arrays


def _own_row_and_dtype(name: str) -> Callable[[Case], tuple[str, ...]]:
    return lambda case: (name, case.dtype)


def _packed_per_sequence(form: str) -> CaseCheck:
    return CaseCheck(
        "packed_per_sequence",
        forward_checks.check_packed_per_sequence,
        lambda c, a: _ok(a) and c.form == form and not c.replays_masks,
        _own_row_and_dtype(form),
        every_oracle=False,
    )


def _error_items(
    check: Callable[[Factory, ErrorCase, str], Agreement],
) -> Callable[[SuiteContext], SuiteItems]:
    """Every error case of the run's dtype, checked by ``check`` against torch's type."""

    def items(ctx: SuiteContext) -> SuiteItems:
        types = ctx.torch_types()
        for case in error_cases(ctx.dtype):
            if case.id not in types:
                message = f"error case {case.id!r} missing from the oracle (run `lstm-conformance regen`)"
                yield SuiteItem(f"errors:{case.id}", lambda m=message: _raise(m), case.needs)  # type: ignore[misc]
            else:
                run = lambda e=case, t=types[case.id]: check(ctx.factory, e, t)  # type: ignore[misc]  # noqa: E731
                yield SuiteItem(f"errors:{case.id}", run, case.needs)

    return items


def _raise(message: str) -> Agreement:
    raise Divergence(message)


def _dropout_statistics_items(ctx: SuiteContext) -> SuiteItems:
    yield SuiteItem(
        "dropout_statistics",
        lambda: dropout_checks.check_dropout_statistics(
            ctx.factory, ctx.dtype, ctx.declared_tols.get(ctx.dtype)
        ),
        ("multi_layer",),
    )


ERROR_IDS = tuple(f"errors:{case.id}" for case in ERROR_CASES)


def _feature(name: str, description: str) -> Row:
    """A row with no check of its own: earned by the checks of cases that have the feature."""
    return Row(name, description)


ROWS: tuple[Row, ...] = (
    Row(
        "whole_sequence",
        "output, h_n, c_n of a whole-sequence call (every case)",
        (CaseCheck("forward", forward_checks.check_forward, lambda c, a: True, lambda c: c.features()),),
    ),
    Row(
        "stepwise",
        "one step per call carrying (h, c) == whole sequence == torch stepwise",
        (
            CaseCheck(
                "stepwise",
                forward_checks.check_stepwise,
                lambda c, a: _ok(a) and "stepwise_output" in a,
                _own_row_and_dtype("stepwise"),
            ),
        ),
    ),
    Row(
        "chunked",
        "uneven chunks carrying (h, c) == whole sequence",
        (
            CaseCheck(
                "chunked",
                forward_checks.check_chunked,
                lambda c, a: _ok(a) and "stepwise_output" in a and c.steps >= 3,
                _own_row_and_dtype("chunked"),
            ),
        ),
    ),
    Row(
        "batch_first",
        "batch_first=True cases; transposes input and output only",
        (
            CaseCheck(
                "batch_first",
                forward_checks.check_batch_first,
                lambda c, a: _ok(a) and c.batch_first and c.form == "batched",
                _own_row_and_dtype("batch_first"),
                every_oracle=False,
            ),
        ),
    ),
    Row(
        "unbatched",
        "2-D input; equals a batch of one",
        (
            CaseCheck(
                "unbatched",
                forward_checks.check_unbatched,
                lambda c, a: _ok(a) and c.form == "unbatched",
                _own_row_and_dtype("unbatched"),
                every_oracle=False,
            ),
        ),
    ),
    Row(
        "packed_sorted",
        "PackedSequence, enforce_sorted=True; each sequence == its own run",
        (_packed_per_sequence("packed_sorted"),),
    ),
    Row(
        "packed_unsorted",
        "PackedSequence, enforce_sorted=False; hx/h_n in caller's order",
        (_packed_per_sequence("packed_unsorted"),),
    ),
    _feature("bidirectional", "bidirectional=True cases"),
    _feature("multi_layer", "num_layers 2 and 3"),
    _feature("proj_size", "proj_size > 0 (LSTMP)"),
    _feature("no_bias", "bias=False"),
    _feature("hx_given", "explicit (h0, c0)"),
    _feature("dropout_replay", "train mode, torch's dropout masks replayed exactly (dropout_masks=)"),
    _feature("dropout_eval", "dropout > 0 in eval mode is the identity"),
    _feature("dropout_p0_p1", "train mode with p = 0 and p = 1"),
    Row(
        "dropout_statistics",
        "own masks: drop rate, 1/(1-p) scale, fresh per call and element",
        suite=SuiteCheck(
            "dropout_statistics", ("dropout_statistics",), _dropout_statistics_items, per_oracle=False
        ),
    ),
    _feature("probes", "weights isolating one gate, one bias, one direction, one layer"),
    Row(
        "state_dict",
        "parameter names/order/shapes; missing, unexpected, misshapen raise",
        (
            CaseCheck(
                "state_dict",
                forward_checks.check_state_dict,
                lambda c, a: not c.probe and not c.edge and c.form in ("batched", "packed_sorted"),
                lambda c: ("state_dict",),
                every_oracle=False,
            ),
        ),
    ),
    Row(
        "errors",
        "every bad argument/input is rejected (at construction or at the call, as torch), every valid one accepted",
        suite=SuiteCheck("errors", ERROR_IDS, _error_items(check_rejected), per_oracle=True),
    ),
    Row(
        "error_types",
        "and with torch's exception type (declare `errors` to skip both)",
        suite=SuiteCheck(
            "error_types", ERROR_IDS, _error_items(check_error_type), per_oracle=True, needs=("errors",)
        ),
    ),
    _feature("float32", "float32 cases (torch's oneDNN/native float32 path)"),
    _feature("float64", "float64 cases"),
    _feature("complex64", "complex64 cases"),
    _feature("complex128", "complex128 cases (complex + dropout in train raises NotImplementedError)"),
    _feature("edge_long", "1000-step sequences"),
    _feature("edge_saturated", "inputs ~1e3 (saturated gates)"),
    _feature("edge_nan_inf", "NaN / Inf propagate like torch"),
    _feature("edge_batch0", "batch of 0"),
    Row(
        "edge_layout",
        "non-contiguous, Fortran-order and read-only input",
        (
            CaseCheck(
                "input_layout",
                forward_checks.check_input_layout,
                lambda c, a: (
                    _ok(a)
                    and c.form == "batched"
                    and not c.replays_masks
                    and c.batch_size > 0
                    and c.steps <= 50
                ),
                _own_row_and_dtype("edge_layout"),
                every_oracle=False,
            ),
        ),
    ),
    _feature(
        "sizes",
        "hidden/input/projection sizes past 16/32/64/128, batches of 1 and past 8/16, 67 and 130 steps",
    ),
    _feature("random", "random configurations (live torch only)"),
    Row(
        "cell",
        "optional LSTMCell: stepping it equals the one-layer LSTM",
        (
            CaseCheck(
                "cell",
                forward_checks.check_cell,
                lambda c, a: (
                    _ok(a)
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
        ),
    ),
    Row(
        "gradients",
        "vjp (backward) == torch.autograd.grad with the same upstream gradients and masks",
        (
            CaseCheck(
                "gradients",
                gradients.check_gradients,
                # size cases' fixtures store no gradients (docs/fixtures.md): live torch judges those
                lambda c, a: _ok(a) and ("dout_output" in a or not c.stores_outputs_only),
                lambda c: ("gradients",),
                needs=("dout_output",),
            ),
        ),
        produce=gradients.produce_gradients,
    ),
)

# Declaration aliases: one key standing for several rows.
ALIASES: dict[str, tuple[str, ...]] = {
    "packed": ("packed_sorted", "packed_unsorted"),
    "complex": ("complex64", "complex128"),
    "dropout": ("dropout_replay", "dropout_p0_p1", "dropout_statistics"),
    "dropout_masks": ("dropout_replay",),
    "edges": ("edge_long", "edge_saturated", "edge_nan_inf", "edge_batch0", "edge_layout"),
}

ROW_NAMES: tuple[str, ...] = tuple(row.name for row in ROWS)
DESCRIPTIONS: dict[str, str] = {row.name: row.description for row in ROWS}


def case_checks() -> Iterator[CaseCheck]:
    return (check for row in ROWS for check in row.checks)


def suite_checks() -> Iterator[SuiteCheck]:
    return (row.suite for row in ROWS if row.suite is not None)


def array_producers() -> list[ArrayProducer]:
    """What the torch oracle adds to every case's arrays, row by row (e.g. gradients)."""
    return [row.produce for row in ROWS if row.produce is not None]


def expand_declarations(declared: dict[str, Any]) -> dict[str, str]:
    """``conformance_unsupported`` (rows or aliases -> reason) as row -> reason; KeyError
    names the first unknown key."""
    unsupported: dict[str, str] = {}
    for key, reason in declared.items():
        for row in ALIASES.get(key, (key,)):
            if row not in DESCRIPTIONS:
                raise KeyError(key)
            unsupported[row] = str(reason)
    return unsupported
