"""The conformance table (one row per ``rows.ROWS`` entry) and the reports made of it:
console text, Markdown and JSON."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checks.rows import ROW_NAMES
from ..oracles.fixtures import atomic_write
from .impls import Impl
from .runner import Result


@dataclass
class TableRow:
    feature: str
    status: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    max_abs: float | None = None  # worst error: vs the exact answer for 32-bit cases
    ratio: float | None = None  # worst error / tolerance
    notes: list[str] = field(default_factory=list)
    max_abs_vs_torch32: float | None = None  # 32-bit cases: worst distance to torch's own 32-bit result
    default_ratio: float | None = None  # at a declared tolerance: worst error / the suite's default
    expected: int = 0  # failures a baseline accepts (--expect, expect.py)


def _worst(current: float | None, value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return current
    return max(current or 0.0, value)


def _count(row: TableRow, result: Result, impl: Impl, needs: dict[str, dict[str, None]]) -> None:
    if result.status == "pass":
        row.passed += 1
    elif result.status == "fail":
        row.failed += 1
    elif result.status == "expected":
        row.expected += 1
    else:
        row.skipped += 1
        declared = [g for g in result.features if g in impl.unsupported and g != row.feature]
        if row.feature not in impl.unsupported and declared:
            needs.setdefault(row.feature, {}).update(dict.fromkeys(declared))
        elif row.feature not in impl.unsupported and result.message not in row.notes:
            row.notes.append(result.message)
    row.max_abs = _worst(row.max_abs, result.max_abs)
    row.ratio = _worst(row.ratio, result.ratio)
    row.max_abs_vs_torch32 = _worst(row.max_abs_vs_torch32, result.max_abs_vs_torch32)
    row.default_ratio = _worst(row.default_ratio, result.default_ratio)


def table(results: list[Result], impl: Impl) -> list[TableRow]:
    """One row per declared row, in table order, counting every result towards its rows."""
    rows = {name: TableRow(name, "") for name in ROW_NAMES}
    needs: dict[str, dict[str, None]] = {}  # row -> features declared unsupported by skipped cases
    for result in results:
        for feature in result.features:
            _count(rows.setdefault(feature, TableRow(feature, "")), result, impl, needs)
    for feature, wanted in needs.items():
        row = rows[feature]
        if row.passed or row.failed:
            row.notes.insert(0, f"some cases need {', '.join(wanted)} (declared unsupported)")
        else:  # the row is not declared, but no case of it is left to run
            row.notes.insert(0, f"declaring {', '.join(wanted)} removed this row's last case")
    for row in rows.values():
        row.status = (
            "FAIL" if row.failed else "expected" if row.expected else "pass" if row.passed else "skipped"
        )
        if row.expected:
            row.notes.insert(0, f"{row.expected} expected failure{'s' * (row.expected > 1)} (--expect)")
        if row.feature in impl.unsupported:
            row.notes.insert(0, f"(declared: {impl.unsupported[row.feature]})")
        elif not (row.passed or row.failed or row.skipped or row.expected):
            row.notes.append("no check ran (needs live torch, or filtered out by --case)")
        if row.default_ratio is not None:
            row.notes.insert(0, declared_tolerance_note(row.default_ratio))
    return list(rows.values())


def _excess(default_ratio: float) -> str:
    if default_ratio <= 1:
        return "the default tolerance would also pass"
    return f"worst error {default_ratio:.3g}x the default tolerance"


def declared_tolerance_note(default_ratio: float) -> str:
    return f"at a declared tolerance: {_excess(default_ratio)}"


def verdict(results: list[Result], impl: Impl) -> str:
    """PASS or FAIL, saying when the pass is at a tolerance the implementation declared."""
    if any(r.status == "fail" for r in results):
        return "FAIL"
    ratios = [r.default_ratio for r in results if r.default_ratio is not None]
    if not ratios:
        return "PASS"
    declared = "; ".join(f"{dtype} {tol}" for dtype, tol in impl.tolerances.items())
    return f"PASS at a declared tolerance ({declared}; {_excess(max(ratios))})"


COLUMNS = ("feature", "status", "pass", "fail", "skip", "worst |err|", "/tol", "vs torch32", "notes")


def _cells(row: TableRow) -> list[str]:
    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    return [
        row.feature,
        row.status,
        str(row.passed),
        str(row.failed),
        str(row.skipped),
        number(row.max_abs, ".2e"),
        number(row.ratio, ".3g"),
        number(row.max_abs_vs_torch32, ".2e"),
    ]


def format_table(rows: list[TableRow]) -> str:
    """The console table. ``worst |err|`` is against the exact answer for 32-bit cases; ``vs
    torch32`` is the distance to torch's own 32-bit result there."""
    widths = (20, 8, 5, 5, 5, 11, 7, 10)
    align = ("<", "<", ">", ">", ">", ">", ">", ">")

    def line(cells: list[str], notes: str) -> str:
        text = " ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True))
        return f"{text}  {notes}".rstrip()

    lines = [line(list(COLUMNS[:-1]), "notes")]
    lines += [line(_cells(r), "; ".join(r.notes[:2])) for r in rows]
    return "\n".join(lines)


def format_markdown(
    rows: list[TableRow], impl: Impl, summary: str, provenance: dict[str, Any] | None = None
) -> str:
    """The table as Markdown (a compliance dashboard for a README or a CI summary)."""
    lines = [f"### lstm-conformance: `{impl.spec}`", "", summary, ""]
    if provenance:
        lines += [", ".join(f"{k}: `{v}`" for k, v in provenance.items()), ""]
    lines += [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        cells = [c.replace("-", "") if c == "-" else c for c in _cells(r)]
        note = "; ".join(r.notes).replace("|", "\\|")
        lines.append("| " + " | ".join([*cells, note]) + " |")
    return "\n".join(lines) + "\n"


def iter_failures(results: list[Result]) -> Iterator[Result]:
    return (r for r in results if r.status == "fail")


def report_json(
    path: Path, impl: Impl, rows: list[TableRow], results: list[Result], meta: dict[str, Any]
) -> None:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not np.isfinite(x):
            return str(x)
        return x

    payload = {
        "impl": impl.spec,
        "unsupported": impl.unsupported,
        **meta,
        "table": [{k: clean(v) for k, v in asdict(r).items()} for r in rows],
        "results": [{k: clean(v) for k, v in asdict(r).items()} for r in results],
    }
    atomic_write(path, (json.dumps(payload, indent=1) + "\n").encode())


def write_markdown(path: Path, text: str) -> None:
    atomic_write(path, text.encode())


def destination_problem(path: Path) -> str | None:
    """Why a report cannot be written to ``path`` (checked before the run), or None."""
    if path.is_dir():
        return "is a directory"
    if path.exists() and not path.is_file():
        return "exists and is not a regular file"
    parent = path.parent
    if not parent.is_dir():
        return f"directory {parent} does not exist"
    try:  # what atomic_write will do: a temp file beside it
        with tempfile.NamedTemporaryFile(dir=parent, prefix="." + path.name, suffix=".tmp"):
            pass
    except OSError as exc:
        return f"cannot write in {parent} ({exc.strerror or exc})"
    return None
