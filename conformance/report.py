"""The conformance table (one row per ``rows.ROWS`` entry) and the reports made of it:
console text, Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .impls import Impl
from .rows import ROW_NAMES
from .runner import Result


@dataclass
class TableRow:
    feature: str
    status: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    max_abs: float | None = None
    ratio: float | None = None
    notes: list[str] = field(default_factory=list)


def table(results: list[Result], impl: Impl) -> list[TableRow]:
    rows = {name: TableRow(name, "") for name in ROW_NAMES}
    needs: dict[str, dict[str, None]] = {}  # row -> features declared unsupported by skipped cases
    for r in results:
        for f in r.features:
            row = rows.setdefault(f, TableRow(f, ""))
            if r.status == "pass":
                row.passed += 1
            elif r.status == "fail":
                row.failed += 1
            else:
                row.skipped += 1
                declared = [g for g in r.features if g in impl.unsupported and g != f]
                if f not in impl.unsupported and declared:
                    needs.setdefault(f, {}).update(dict.fromkeys(declared))
                elif r.message not in row.notes:
                    row.notes.append(r.message)
            if r.max_abs is not None and np.isfinite(r.max_abs):
                row.max_abs = max(row.max_abs or 0.0, r.max_abs)
            if r.ratio is not None and np.isfinite(r.ratio):
                row.ratio = max(row.ratio or 0.0, r.ratio)
    for f, wanted in needs.items():
        rows[f].notes.insert(0, f"some cases need {', '.join(wanted)} (declared unsupported)")
    for row in rows.values():
        if row.failed:
            row.status = "FAIL"
        elif row.passed:
            row.status = "pass"
        else:
            row.status = "skipped"
        if not (row.passed or row.failed or row.skipped):
            row.notes.append(
                impl.unsupported.get(row.feature)
                or "no check ran (needs live torch, or filtered out by --case)"
            )
    return list(rows.values())


def format_table(rows: list[TableRow]) -> str:
    lines = [
        f"{'feature':<20} {'status':<8} {'pass':>5} {'fail':>5} {'skip':>5}  {'worst |err|':>11}  {'/tol':>7}  notes"
    ]
    for r in rows:
        err = f"{r.max_abs:.2e}" if r.max_abs is not None else "-"
        ratio = f"{r.ratio:.3g}" if r.ratio is not None else "-"
        note = "; ".join(r.notes[:2])
        lines.append(
            f"{r.feature:<20} {r.status:<8} {r.passed:>5} {r.failed:>5} {r.skipped:>5}  {err:>11}  {ratio:>7}  {note}"
        )
    return "\n".join(lines)


def format_markdown(rows: list[TableRow], impl: Impl, summary: str) -> str:
    """The table as Markdown (a compliance dashboard for a README or a CI summary)."""
    lines = [
        f"### lstm-conformance: `{impl.spec}`",
        "",
        summary,
        "",
        "| feature | status | pass | fail | skip | worst abs err | /tol | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        err = f"{r.max_abs:.2e}" if r.max_abs is not None else ""
        ratio = f"{r.ratio:.3g}" if r.ratio is not None else ""
        note = "; ".join(r.notes).replace("|", "\\|")
        lines.append(
            f"| {r.feature} | {r.status} | {r.passed} | {r.failed} | {r.skipped} | {err} | {ratio} | {note} |"
        )
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
    path.write_text(json.dumps(payload, indent=1) + "\n")
