"""Known failures: ``--expect FILE`` (a baseline), ``lstm-conformance baseline``, and the
findings of ``docs/compatibility.md`` (matrix.py), all as :class:`Expectation` objects.

An expectation accepts the failures it matches, for a reason: a failing result whose case id,
check and rows match becomes ``expected`` (shown in the table, not failing the run).  One that
matches results which all pass now is *stale*: the failure it was written for is gone, and the
entry would hide its return (``--strict-expect`` fails the run on it).  An entry whose results
did not run at all (filtered out by ``--case`` or by another shard) is neither.

The file is TOML (or JSON with the same structure)::

    [[expect]]
    row = "dropout_statistics"          # a row (or a list of rows; fnmatch patterns)
    reason = "one dropout mask per sequence (Keras' LSTM(dropout=p))"
    finding = "https://github.com/org/port/issues/12"   # optional

    [[expect]]
    case = "errors:input-*"             # a case or suite item id (fnmatch), and/or
    check = "error_types"               # a check name (forward, stepwise, gradients, ...)
    reason = "the runtime raises its own exception classes"

A result matches when every field given matches: ``case`` its id, ``check`` its check, and one of
the ``row`` patterns one of the rows it counts towards.  ``impl`` (fnmatch on ``--impl``) limits
an entry to one implementation, so one file can serve several.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checks.rows import ROW_NAMES
from .runner import Result

EXPECTED = "expected"  # the status of a failure an expectation accepts
FIELDS = ("case", "check", "row", "impl", "reason", "finding")


class ExpectError(ValueError):
    """A baseline file that cannot be used (a usage error: exit 2, one line)."""


@dataclass(frozen=True)
class Expectation:
    reason: str
    case: str = "*"  # fnmatch on the result's case id (a suite item id for errors:*)
    check: str = "*"  # fnmatch on the check's name
    rows: tuple[str, ...] = ()  # fnmatch patterns on the rows; empty: any row
    impl: str = "*"  # fnmatch on the implementation's --impl
    finding: str = ""  # where the failure is explained (an issue, a docs section)

    def applies_to(self, impl: str) -> bool:
        return fnmatch.fnmatchcase(impl, self.impl)

    def matches(self, case: str, check: str, rows: Iterable[str]) -> bool:
        return (
            fnmatch.fnmatchcase(case, self.case)
            and fnmatch.fnmatchcase(check, self.check)
            and (not self.rows or any(fnmatch.fnmatchcase(r, p) for r in rows for p in self.rows))
        )

    def matches_result(self, result: Result) -> bool:
        return self.matches(result.case, result.check, result.features)

    def describe(self) -> str:
        """``row 'x', case 'y'``: the fields that select, for messages."""
        parts = [f"row {' | '.join(self.rows)!r}"] if self.rows else []
        parts += [
            f"{name} {value!r}"
            for name, value in (("case", self.case), ("check", self.check))
            if value != "*"
        ]
        return ", ".join(parts) + (f" (impl {self.impl!r})" if self.impl != "*" else "")

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"reason": self.reason}
        if self.case != "*":
            entry["case"] = self.case
        if self.check != "*":
            entry["check"] = self.check
        if self.rows:
            entry["row"] = list(self.rows)
        if self.impl != "*":
            entry["impl"] = self.impl
        if self.finding:
            entry["finding"] = self.finding
        return entry


def from_entry(entry: Mapping[str, Any], where: str) -> Expectation:
    """One ``[[expect]]`` table; ExpectError naming ``where`` if it is malformed."""
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise ExpectError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(FIELDS)})")
    texts = {k: v for k, v in entry.items() if k != "row"}
    bad = next((k for k, v in texts.items() if not isinstance(v, str)), None)
    if bad:
        raise ExpectError(f"{where}: {bad!r} must be a string")
    reason = str(entry.get("reason", "")).strip()
    if not reason:
        raise ExpectError(f"{where}: every entry needs a reason")
    rows = entry.get("row", ())
    rows = (rows,) if isinstance(rows, str) else rows
    if not isinstance(rows, list | tuple) or not all(isinstance(r, str) for r in rows):
        raise ExpectError(f"{where}: 'row' must be a row name or a list of them")
    for pattern in rows:
        if not fnmatch.filter(ROW_NAMES, pattern):
            raise ExpectError(f"{where}: row {pattern!r} names no row of the table")
    if not rows and "case" not in entry and "check" not in entry:
        raise ExpectError(
            f"{where}: give a case, a check or a row (an entry matching everything hides everything)"
        )
    return Expectation(
        reason,
        entry.get("case", "*"),
        entry.get("check", "*"),
        tuple(rows),
        entry.get("impl", "*"),
        entry.get("finding", ""),
    )


def from_json(entries: Sequence[Mapping[str, Any]], where: str = "expectations") -> list[Expectation]:
    return [from_entry(e, f"{where}, entry {n}") for n, e in enumerate(entries, 1)]


def load(path: Path) -> list[Expectation]:
    """A TOML (``*.toml``) or JSON file of ``expect`` entries; ExpectError if unusable."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExpectError(f"{path}: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else _toml_parser(path).loads(text)
    except ValueError as exc:  # json's and TOML's decode errors are ValueErrors
        raise ExpectError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    entries = data.get("expect", []) if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ExpectError(f"{path}: expected a list of [[expect]] tables")
    return from_json(entries, str(path))


def _toml_parser(path: Path) -> Any:
    """tomllib (Python 3.11+), else tomli where installed."""
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ExpectError(f"{path}: reading TOML needs Python 3.11+ (or tomli); or write the file as JSON")


def for_impl(expectations: Iterable[Expectation], impl: str) -> list[Expectation]:
    return [e for e in expectations if e.applies_to(impl)]


def apply(results: list[Result], expectations: Sequence[Expectation]) -> None:
    """Every failure an expectation matches becomes ``expected``; its message says why."""
    for r in results:
        if r.status != "fail":
            continue
        e = next((e for e in expectations if e.matches_result(r)), None)
        if e is not None:
            r.status = EXPECTED
            r.message = f"expected ({e.reason}{'; ' + e.finding if e.finding else ''}): {r.message}"


def stale(results: Iterable[Result], expectations: Sequence[Expectation]) -> list[Expectation]:
    """The expectations that matched passing results and no failure: the failure is gone."""
    statuses: dict[Expectation, set[str]] = {e: set() for e in expectations}
    for r in results:
        for e in expectations:
            if e.matches_result(r):
                statuses[e].add(r.status)
    return [e for e, seen in statuses.items() if "pass" in seen and not seen & {EXPECTED, "fail"}]


# -- writing a baseline -------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, but for DEL and non-BMP characters)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def results_of(report: Mapping[str, Any]) -> list[Result]:
    """A ``--report`` JSON's results as Result objects (non-finite numbers are stored as text)."""
    fields = set(Result.__dataclass_fields__)

    def value(key: str, v: Any) -> Any:
        return tuple(v) if key == "features" else float(v) if isinstance(v, str) and key in NUMBERS else v

    return [Result(**{k: value(k, v) for k, v in r.items() if k in fields}) for r in report["results"]]


NUMBERS = ("max_abs", "ratio", "max_abs_vs_torch32", "default_ratio")


def recorded(report: Mapping[str, Any]) -> list[Expectation]:
    """The expectations a ``--report`` JSON was judged with (none if it had no --expect)."""
    return from_json(report.get("expect", {}).get("entries", []), "the report's expectations")


def baseline_entries(report: Mapping[str, Any]) -> list[Expectation]:
    """A baseline for the run a ``--report`` JSON records: the expectations it was judged with,
    less the stale ones, and one entry per failing check of a case (or suite item) that no
    expectation accepted.  Failures that are not about the implementation's behaviour (it did
    not import, the fixtures are broken) are left out: no baseline should accept those."""
    results = results_of(report)
    kept = recorded(report)
    gone = set(stale(results, kept))
    entries = [e for e in kept if e not in gone]
    new: dict[tuple[str, str], Expectation] = {}
    for r in results:
        if r.status == "fail" and r.check not in ("import", "fixtures"):
            first = (r.message.strip().splitlines() or [""])[0]
            exactly = re.sub(r"([][*?])", r"[\1]", r.case)  # the id itself, not a pattern
            new.setdefault((r.case, r.check), Expectation(f"baseline: {first[:150]}", exactly, r.check))
    return entries + list(new.values())


def format_toml(entries: Iterable[Expectation], header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for e in entries:
        lines += ["", "[[expect]]"]
        for key, value in e.to_json().items():
            if isinstance(value, list):
                lines.append(f"{key} = [{', '.join(_toml_string(v) for v in value)}]")
            else:
                lines.append(f"{key} = {_toml_string(value)}")
    return "\n".join(lines) + "\n"


def main_baseline(argv: list[str]) -> int:
    """``lstm-conformance baseline --report R.json``: a --expect file accepting R's failures."""
    import argparse
    import sys

    p = argparse.ArgumentParser(
        prog="lstm-conformance baseline",
        description="Print a --expect file (TOML) that accepts every failure of a run: the entries "
        "the run was judged with (less the stale ones) and one per failing check of a case. Edit "
        "each reason (and add a finding link) before committing it.",
    )
    p.add_argument("--report", required=True, type=Path, metavar="R.json", help="a run's --report JSON")
    args = p.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        entries = baseline_entries(report)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"lstm-conformance baseline: {args.report}: not a usable report ({exc})", file=sys.stderr)
        return 2
    if "shard" in report:
        print(
            f"lstm-conformance baseline: {args.report} is shard {report['shard']['index']}/"
            f"{report['shard']['count']}: merge the shards first (lstm-conformance merge ... --report R.json)",
            file=sys.stderr,
        )
        return 2
    if report.get("interrupted"):
        print(f"lstm-conformance baseline: {args.report} is of an interrupted run: partial", file=sys.stderr)
    header = (
        f"lstm-conformance --expect file for {report['impl']} "
        f"({report['provenance']['impl_version']}), from {args.report.name}: {len(entries)} entries.\n"
        "Replace each 'baseline: ...' reason by why the failure is accepted, and add a finding link."
    )
    sys.stdout.write(format_toml(entries, header))
    return 0
