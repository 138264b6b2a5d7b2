"""``lstm-conformance matrix``: every shipped adapter whose library is installed, one column each.

Each implementation runs as its own ``lstm-conformance --impl NAME --report ...`` process (so
each gets the suite's worker isolation, timeouts and honest exit codes); the matrix reads the
reports and writes ``docs/compatibility.md`` (between its generated markers; the findings below
them are written by hand) and ``docs/compatibility.json``.  A cell is ``pass``, ``FAIL`` (with
the first failure's message), ``declared`` (with the implementation's reason) or ``skipped``.
A row too costly to check over every case for one column (``ROW_SUBSETS``: torch-compile's
compiled backward) is judged by a second run on a named subset of the cases, and its cell's
note says which.

Exit 0 when every FAIL cell is explained by a finding on the page (a ``### NAME: ...`` section
whose ``Rows:`` line names the row and whose reproduction script exists), 1 otherwise, 2 when
an implementation could not be run at all.  The findings are expectations, as ``--expect``
entries (expect.py); a finding whose rows all pass now is named as no longer seen.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..adapters import REGISTRY, unavailable
from ..checks.rows import ROW_NAMES
from ..run.expect import Expectation, for_impl

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "compatibility.md"
BLOCK = re.compile(r"(<!-- generated:matrix -->\n)(.*?)(<!-- /generated:matrix -->)", re.S)
# the columns, in order: the reference and torch itself first, then the adapters
IMPLEMENTATIONS = ("lstm_ref", "torch", *REGISTRY)
FIRST_MESSAGE_CHARS = 160


@dataclass
class Column:
    name: str
    version: str = ""
    verdict: str = ""
    elapsed_s: float | None = None
    not_run: str = ""  # why the implementation was not run here
    cells: dict[str, dict[str, str]] | None = None  # row -> {"status", "detail"}
    date: str = ""  # the day this column was run (columns kept from an earlier run keep theirs)


def _why_not(name: str) -> str:
    if name == "lstm_ref":
        return ""
    if name == "torch":
        from ..oracles.torch_oracle import torch_available

        return torch_available() or ""
    return unavailable(name) or ""


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= FIRST_MESSAGE_CHARS else line[: FIRST_MESSAGE_CHARS - 3] + "..."


def cells_from_report(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """row -> {"status": pass|FAIL|declared|skipped, "detail": first message or reason}."""
    unsupported: dict[str, str] = report.get("unsupported", {})
    failures: dict[str, str] = {}
    for r in report["results"]:
        if r["status"] == "fail":
            for row in r["features"]:
                failures.setdefault(row, f"{r['check']} [{r['case']}]: {_first_line(r['message'])}")
    cells = {}
    for row in report["table"]:
        name = row["feature"]
        if name in unsupported:
            cells[name] = {"status": "declared", "detail": unsupported[name]}
        elif row["status"] == "FAIL":
            cells[name] = {"status": "FAIL", "detail": failures.get(name, "")}
        elif row["status"] == "pass":
            tolerance = next((n for n in row["notes"] if n.startswith("at a declared tolerance")), "")
            cells[name] = {"status": "pass", "detail": tolerance}
        else:
            cells[name] = {"status": "skipped", "detail": "; ".join(row["notes"])}
    return cells


@dataclass(frozen=True)
class RowSubset:
    """A row too costly to check over every case for one column: the column's run declares it,
    and a second run, on the cases matching ``cases`` with ``env`` set, judges it."""

    row: str
    cases: str  # a --case pattern
    env: tuple[tuple[str, str], ...]
    scope: str  # what the cell's note says was checked, and why not more


ROW_SUBSETS: dict[str, RowSubset] = {
    "torch-compile": RowSubset(
        "gradients",
        "L[123]-*",
        (("CONFORMANCE_TORCH_COMPILE_BACKWARD", "1"),),
        "the compiled backward, on the all-pairs cases 'L[123]-*' only (over every case it takes "
        "more than an hour on 2 cores: Inductor compiles a backward graph unrolled over each "
        "case's steps; docs/adapters.md)",
    ),
}


def _run(
    name: str, args: list[str], timeout: float, workdir: Path, tag: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str] | str:
    """``lstm-conformance --impl NAME ARGS``: (its report, its verdict), or why there is none."""
    report_path = workdir / f"{tag}.json"
    cmd = [
        sys.executable,
        "-m",
        "conformance",
        "--impl",
        name,
        "--report",
        str(report_path),
        "--quiet",
        *args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return f"the run took longer than {timeout:g} s"
    (workdir / f"{tag}.log").write_text(proc.stdout + proc.stderr)
    if not report_path.exists():
        return f"exit {proc.returncode} without a report: {_first_line(proc.stderr)}"
    report = json.loads(report_path.read_text())
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    verdict = summary.rsplit("-> ", 1)[-1] if "-> " in summary else ("PASS" if report["passed"] else "FAIL")
    return report, verdict


def run_one(name: str, jobs: int, timeout: float, workdir: Path) -> Column:
    """One ``lstm-conformance --impl NAME`` process and its report (and, for a row in
    ``ROW_SUBSETS``, a second one on that row's cases)."""
    why = _why_not(name)
    if why:
        return Column(name, not_run=why)
    print(f"matrix: {name} ...", flush=True)
    ran = _run(name, ["--jobs", str(jobs)], timeout, workdir, name)
    if isinstance(ran, str):
        return Column(name, not_run=ran)
    report, verdict = ran
    column = Column(name, report["provenance"]["impl_version"], verdict, report["elapsed_s"])
    column.date = datetime.date.today().isoformat()
    column.cells = cells_from_report(report)
    subset = ROW_SUBSETS.get(name)
    if subset:
        args = ["--jobs", str(jobs), "--case", subset.cases]
        sub = _run(name, args, timeout, workdir, f"{name}-{subset.row}", dict(subset.env))
        if isinstance(sub, str):
            cell = {"status": "skipped", "detail": f"{subset.scope}: {sub}"}
        else:
            cell = _subset_cell(cells_from_report(sub[0]), subset)
            column.elapsed_s = (column.elapsed_s or 0.0) + sub[0]["elapsed_s"]
        column.cells[subset.row] = cell
        if cell["status"] == "FAIL":
            column.verdict = "FAIL"
    print(f"matrix: {name}: {column.verdict} in {column.elapsed_s:.0f} s", flush=True)
    return column


def _subset_cell(cells: dict[str, dict[str, str]], subset: RowSubset) -> dict[str, str]:
    """The subset run's cell for its row, its note saying what was checked (a FAIL's note still
    starts with "check [case]", which findings match)."""
    cell = cells.get(subset.row, {"status": "skipped", "detail": "no such row in the subset run"})
    detail = f"{cell['detail']} ({subset.scope})" if cell["detail"] else subset.scope
    return {"status": cell["status"], "detail": detail}


def _cell_text(column: Column, row: str, notes: list[str]) -> str:
    if column.cells is None:
        return "not run"
    cell = column.cells.get(row, {"status": "skipped", "detail": "no such row in this run"})
    status, detail = cell["status"], cell["detail"]
    if not detail:
        return status
    notes.append(f"{column.name} · `{row}`: {detail}")
    tag = f"{status} [{len(notes)}]"
    return f"**{tag}**" if status == "FAIL" else tag


def render(columns: list[Column], meta: dict[str, str]) -> str:
    """The generated block: the header line, the matrix, the numbered notes."""
    ran = [c for c in columns if c.cells is not None]
    notes: list[str] = []
    header = ["row", *(f"{c.name}<br>{_short_version(c.version)}" for c in ran)]
    lines = [
        f"Made by `lstm-conformance matrix` on {_dates(ran, meta)}: torch {meta['torch']}, numpy "
        f"{meta['numpy']}, Python {meta['python']}, {meta['machine']}. Verdicts: "
        + "; ".join(f"{c.name} {c.verdict} ({c.elapsed_s:.0f} s)" for c in ran)
        + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in ROW_NAMES:
        lines.append("| " + " | ".join([f"`{row}`", *(_cell_text(c, row, notes) for c in ran)]) + " |")
    if notes:
        lines += ["", *(f"{i}. {note.replace('|', '/')}" for i, note in enumerate(notes, 1))]
    absent = [c for c in columns if c.cells is None]
    if absent:
        lines += ["", "Not run here: " + "; ".join(f"{c.name} ({c.not_run})" for c in absent) + "."]
    return "\n".join(lines) + "\n"


def _dates(columns: list[Column], meta: dict[str, str]) -> str:
    return ", ".join(sorted({c.date or meta["date"] for c in columns})) or meta["date"]


def kept_columns(page_path: Path) -> dict[str, Column]:
    """The columns of the page's JSON, by name (empty when there is none yet)."""
    path = page_path.with_suffix(".json")
    if not path.exists():
        return {}
    fields = set(Column.__dataclass_fields__)
    columns = json.loads(path.read_text())["columns"]
    return {c["name"]: Column(**{k: v for k, v in c.items() if k in fields}) for c in columns}


def _short_version(version: str) -> str:
    return version.replace(", ", "<br>")


FINDING = re.compile(r"^### (?P<impl>[\w-]+): (?P<title>[^\n]*).*?(?=^### |^## |\Z)", re.S | re.M)
CELL_FAILURE = re.compile(r"^([\w-]+) \[([^\]]+)\]")  # a FAIL cell's detail: "check [case]: message"


def findings(page: str, root: Path = ROOT) -> list[Expectation]:
    """The page's findings as expectations (expect.py, as ``--expect`` entries): a ``### NAME:
    title`` section accepts the failures of implementation NAME in the rows its ``Rows:`` line
    names, if its ``Reproduction:`` link points at a script that exists."""
    out = []
    for m in FINDING.finditer(page):
        section = m.group(0)
        rows = re.search(r"^Rows: (.*)$", section, re.M)
        repro = re.search(r"^Reproduction: \[[^\]]*\]\(([^)]+)\)", section, re.M)
        named = rows.group(1) if rows and not rows.group(1).startswith("none") else ""
        names = tuple(r for r in re.findall(r"`([\w]+)`", named) if r in ROW_NAMES)
        if names and repro and (root / "docs" / repro.group(1)).is_file():
            finding = f"docs/{repro.group(1)}"
            out.append(
                Expectation(m.group("title").strip(), rows=names, impl=m.group("impl"), finding=finding)
            )
    return out


def _accepted(expectations: list[Expectation], row: str, cell: dict[str, str]) -> bool:
    """Whether an expectation accepts the cell's failure (its first, as the cell records it)."""
    m = CELL_FAILURE.match(cell.get("detail", ""))
    check, case = (m.group(1), m.group(2)) if m else ("", "")
    return any(e.matches(case, check, (row,)) for e in expectations)


def unexplained_failures(columns: list[Column], page: str, root: Path = ROOT) -> list[str]:
    """FAIL cells that no finding of the page (:func:`findings`) accepts."""
    known = findings(page, root)
    return [
        f"{c.name} · {row}"
        for c in columns
        for row, cell in (c.cells or {}).items()
        if cell["status"] == "FAIL" and not _accepted(for_impl(known, c.name), row, cell)
    ]


def stale_findings(columns: list[Column], page: str, root: Path = ROOT) -> list[str]:
    """Findings about a column whose rows show no FAIL any more (some pass): the divergence
    they describe is gone (as ``--expect``'s stale entries)."""
    out = []
    for e in findings(page, root):
        for c in columns:
            if c.cells is None or not e.applies_to(c.name):
                continue
            statuses = {cell["status"] for row, cell in c.cells.items() if e.matches("", "*", (row,))}
            if "pass" in statuses and "FAIL" not in statuses:
                out.append(f"{c.name}: {e.reason} (its rows pass now)")
    return out


def write(columns: list[Column], page_path: Path, meta: dict[str, str]) -> str:
    page = (
        page_path.read_text()
        if page_path.exists()
        else "<!-- generated:matrix -->\n<!-- /generated:matrix -->\n"
    )
    if not BLOCK.search(page):
        raise SystemExit(f"{page_path}: no <!-- generated:matrix --> block to fill")
    page = BLOCK.sub(lambda m: m.group(1) + render(columns, meta) + m.group(3), page)
    page_path.write_text(page)
    payload = {**meta, "columns": [vars(c) for c in columns]}
    page_path.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    return page


def _meta() -> dict[str, str]:
    from ..run.provenance import live_torch

    return {
        "date": datetime.date.today().isoformat(),
        "torch": live_torch(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "lstm-conformance " + " ".join(sys.argv[1:]),
    }


def main_matrix(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lstm-conformance matrix",
        description="Run every shipped adapter whose library is installed (each in its own process) "
        "and write docs/compatibility.md and .json.",
    )
    p.add_argument(
        "--impls",
        help=f"comma-separated subset of: {', '.join(IMPLEMENTATIONS)}; the page's other columns "
        "are kept from its JSON",
    )
    p.add_argument("--page", type=Path, default=PAGE, help="the page to write (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="workers per implementation")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per implementation")
    args = p.parse_args(argv)
    names = args.impls.split(",") if args.impls else list(IMPLEMENTATIONS)
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown:
        print(f"lstm-conformance matrix: unknown implementation(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lstm-matrix-") as tmp:
        ran = {name: run_one(name, args.jobs, args.timeout, Path(tmp)) for name in names}
    kept = kept_columns(args.page) if args.impls else {}
    columns = [ran.get(n) or kept[n] for n in IMPLEMENTATIONS if n in ran or n in kept]
    page = write(columns, args.page, _meta())
    print(f"matrix: wrote {args.page} and {args.page.with_suffix('.json')}")
    failed_to_run = [c for c in ran.values() if c.cells is None and not _why_not(c.name)]
    for c in failed_to_run:
        print(f"matrix: {c.name} could not be run: {c.not_run}", file=sys.stderr)
    unexplained = unexplained_failures(columns, page, args.page.resolve().parent.parent)
    for item in unexplained:
        print(f"matrix: FAIL without a finding on the page: {item}", file=sys.stderr)
    for item in stale_findings(
        [c for c in columns if c.name in ran], page, args.page.resolve().parent.parent
    ):
        print(f"matrix: a finding no longer seen: {item}", file=sys.stderr)
    return 2 if failed_to_run else 1 if unexplained else 0
