"""Sharded runs: ``--shard K/N`` runs one of N parts of the selection; ``lstm-conformance merge``
joins the parts' ``--report`` files into one table with one verdict.

The selection (the cases, and every item of the suite checks: each error case against each
oracle, ``dropout_statistics``) is cut into units with an expected cost, and the units are dealt
longest first to the shard with the least work so far.  The same selection always gives the same
split, so N jobs that run with the same options and ``--shard 1/N`` ... ``--shard N/N`` run every
unit exactly once.  Each shard's report records the selection (a digest of every unit's id) and
its own units; ``merge`` refuses missing or duplicated shards, and shards of different runs
(another implementation, version, selection, oracle, torch or baseline).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..checks.harness import SuiteContext
from ..checks.rows import suite_checks
from ..contract.cases import Case
from .impls import Impl
from .runner import Job

SUITE_ITEM_COST = 0.05  # an error case: construct and call a small model (a small case is ~1.5)
DROPOUT_STATISTICS_COST = 2.0  # five calls of a 2-layer, 40-step model


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``K/N`` with 1 <= K <= N (an argparse ``type``)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N (e.g. 2/4), got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")
    return Shard(k, n)


def case_cost(case: Case) -> float:
    """Expected cost of a case, relative to a small one-layer case (~1.5): a fixed part (the
    oracle's side, building models), a part per layer and direction (the checks call the model
    several times) growing with the steps and the sizes; a case where torch raises (complex with
    dropout in training) is one check of the exception.  Fitted to lstm_ref's times on --full."""
    if case.dtype.startswith("complex") and case.mode == "train" and case.num_layers > 1 and case.p > 0:
        return 0.2
    work = case.batch_size * case.hidden_size * (case.input_size + case.h_out + case.hidden_size)
    return 1.0 + case.num_layers * case.num_directions * (0.4 + case.steps / 100) * (1 + work / 20_000)


@dataclass(frozen=True)
class Unit:
    id: str  # the case's id, or "<suite job>/<item id>"
    cost: float
    job: int  # index in the selection's jobs
    item: str = ""  # a suite check's item


def _not_loaded(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("only the ids of suite items are needed here")


def units(jobs: list[Job], impl: Impl) -> list[Unit]:
    """Every unit of work of the selection, in the selection's order."""
    checks = {check.name: check for check in suite_checks()}
    # the items' ids, as a worker will enumerate them (they depend on the declarations)
    ctx = SuiteContext(_not_loaded, impl.unsupported, lambda: {}, impl.tolerances)
    out = []
    for n, job in enumerate(jobs):
        task = job.task
        if task.case is not None:
            out.append(Unit(task.id, case_cost(task.case), n))
            continue
        cost = DROPOUT_STATISTICS_COST if task.suite == "dropout_statistics" else SUITE_ITEM_COST
        for item in checks[task.suite].items(ctx):
            if not task.pattern or fnmatch.fnmatchcase(item.id, task.pattern):  # as runner does
                out.append(Unit(f"{task.id}/{item.id}", cost, n, item.id))
    return out


def split(all_units: list[Unit], count: int) -> list[list[Unit]]:
    """Longest first, each to the shard with the least expected cost so far (ties: the lower
    shard); each shard's units back in the selection's order.  A suite item's units (one per
    oracle: ``errors[fixtures]/X``, ``errors[torch]/X``) stay in one shard, as a case's oracles
    do in its one job: where the oracles disagree, the run judges the case by both answers."""
    groups: dict[str, list[Unit]] = {}
    for unit in all_units:
        groups.setdefault(unit.item or unit.id, []).append(unit)
    costs = {key: sum(u.cost for u in group) for key, group in groups.items()}
    loads = [0.0] * count
    parts: list[list[Unit]] = [[] for _ in range(count)]
    for key in sorted(groups, key=lambda key: (-costs[key], key)):
        k = min(range(count), key=lambda i: (loads[i], i))
        loads[k] += costs[key]
        parts[k] += groups[key]
    order = {u.id: n for n, u in enumerate(all_units)}
    return [sorted(part, key=lambda u: order[u.id]) for part in parts]


def digest(all_units: list[Unit]) -> str:
    return hashlib.sha256("\n".join(sorted(u.id for u in all_units)).encode()).hexdigest()


@dataclass
class Selection:
    jobs: list[Job]  # this shard's jobs (a suite job limited to this shard's items)
    meta: dict[str, Any]  # what the report records, for merge


def select(jobs: list[Job], impl: Impl, shard: Shard) -> Selection:
    """This shard's part of ``jobs``."""
    all_units = units(jobs, impl)
    mine = split(all_units, shard.count)[shard.index - 1]
    items: dict[int, set[str]] = {}
    for u in mine:
        items.setdefault(u.job, set()).update([u.item] if u.item else [])
    chosen = []
    for n, job in enumerate(jobs):
        if n not in items:
            continue
        if job.task.case is None:
            job = replace(job, task=replace(job.task, items=frozenset(items[n])))
        chosen.append(job)
    meta = {
        "index": shard.index,
        "count": shard.count,
        "selection": digest(all_units),
        "units_total": len(all_units),
        "units": [u.id for u in mine],
        "expected_cost": round(sum(u.cost for u in mine), 3),
    }
    return Selection(chosen, meta)


# -- merge ------------------------------------------------------------------------------------------


class MergeError(Exception):
    """Shard reports that do not make one run (exit 2)."""


# what must be equal in every shard of one run (provenance's "command" and "platform" may differ)
SAME = ("impl", "unsupported", "tolerances", "oracles", "expect")
SAME_PROVENANCE = ("torch_live", "torch_fixtures", "numpy", "python", "impl_module", "impl_version")


def check_shards(reports: list[tuple[Path, dict[str, Any]]]) -> int:
    """The shard count, if ``reports`` are every shard of one run exactly once; else MergeError."""
    for path, r in reports:
        if not isinstance(r, dict) or not {"impl", "results", "provenance"} <= set(r):
            raise MergeError(f"{path}: not a lstm-conformance --report file")
        if "shard" not in r and any(a.startswith("--shard") for a in r.get("argv", [])):  # no split made
            failure = next((x["message"] for x in r.get("results", []) if x["status"] == "fail"), "")
            raise MergeError(
                f"{path}: the shard did not run: {failure.splitlines()[0] if failure else 'no results'}"
            )
        if "shard" not in r:
            raise MergeError(f"{path}: not a shard's report (run with --shard K/N)")
        if r.get("interrupted"):
            raise MergeError(
                f"{path}: shard {r['shard']['index']}/{r['shard']['count']} was interrupted; rerun it"
            )
    first_path, first = reports[0]
    count = first["shard"]["count"]
    for path, r in reports[1:]:
        for key in ("count", "selection"):
            if r["shard"][key] != first["shard"][key]:
                raise MergeError(
                    f"{path} and {first_path}: different {'shard counts' if key == 'count' else 'selections'}"
                )
        for key in SAME:
            if r.get(key) != first.get(key):
                raise MergeError(f"{path} and {first_path}: different {key}")
        for key in SAME_PROVENANCE:
            if r["provenance"].get(key) != first["provenance"].get(key):
                raise MergeError(
                    f"{path} and {first_path}: different {key} "
                    f"({r['provenance'].get(key)} vs {first['provenance'].get(key)})"
                )
    seen: dict[int, Path] = {}
    for path, r in reports:
        k = r["shard"]["index"]
        if k in seen:
            raise MergeError(f"shard {k}/{count} given twice: {seen[k]} and {path}")
        seen[k] = path
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise MergeError(f"missing shard(s) {', '.join(f'{k}/{count}' for k in missing)}")
    ids = [u for _, r in reports for u in r["shard"]["units"]]
    combined = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    if len(ids) != len(set(ids)) or combined != first["shard"]["selection"]:
        raise MergeError("the shards' units do not make up their selection (edited reports?)")
    return int(count)


def merged_results(reports: list[dict[str, Any]]) -> list[Any]:
    """Every shard's results; a result about a whole suite check or the fixtures (case
    ``NAME:*``, e.g. the torch oracle skipped), which each shard reports, is kept once."""
    from .expect import results_of

    out, whole = [], set()
    for r in sorted(reports, key=lambda r: r["shard"]["index"]):
        for result in results_of(r):
            key = (result.check, result.case, result.oracle, result.status, result.message)
            if result.case.endswith(":*"):
                if key in whole:
                    continue
                whole.add(key)
            out.append(result)
    return out


def merged_disagreements(reports: list[dict[str, Any]]) -> list[str]:
    """Every shard's lines on where the oracles disagree (a case's line once); the line about a
    shard as a whole (its dropout random stream count) says which shard it counts."""
    from ..oracles.disagreements import MASK_LINE

    out: list[str] = []
    for r in sorted(reports, key=lambda r: r["shard"]["index"]):
        for line in r.get("oracle_disagreements", []):
            if line.startswith(MASK_LINE):
                line = f"shard {r['shard']['index']}/{r['shard']['count']}: {line}"
            if line not in out:
                out.append(line)
    return out


def main_merge(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lstm-conformance merge",
        description="Join the --report files of every shard of one run (--shard K/N) into one table "
        "with one verdict. Exit 0 when it passes, 1 when anything failed, 2 when the reports are "
        "not every shard of one run exactly once.",
    )
    p.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    p.add_argument("--markdown", metavar="PATH.md", type=Path, help="also write the table as Markdown")
    p.add_argument("--report", metavar="PATH.json", type=Path, help="write the merged report as JSON")
    p.add_argument(
        "--max-failures", type=int, default=10, help="failure details to print (default %(default)s)"
    )
    args = p.parse_args(argv)
    try:
        reports = [(path, json.loads(path.read_text())) for path in args.reports]
    except (OSError, ValueError) as exc:
        print(f"lstm-conformance merge: {exc}", file=sys.stderr)
        return 2
    try:
        count = check_shards(reports)
    except MergeError as exc:
        print(f"lstm-conformance merge: {exc}", file=sys.stderr)
        return 2
    from ..cli import judge_and_report

    first = reports[0][1]
    elapsed = [r["elapsed_s"] for _, r in reports]
    print(
        f"lstm-conformance merge: {count} shards of {first['impl']} "
        f"({first['shard']['units_total']} units; longest shard {max(elapsed):.1f} s, all {sum(elapsed):.1f} s)"
    )
    meta = {
        k: first[k]
        for k in ("oracles", "provenance", "argv", "tolerances", "expect", "expect_file")
        if k in first
    }
    meta["oracle_disagreements"] = merged_disagreements([r for _, r in reports])
    meta["merged_from"] = [str(path) for path, _ in reports]
    isolation = [r["isolation"] for _, r in reports if "isolation" in r]
    if isolation:  # a shard run unprotected (--isolate none) makes the merged verdict say so
        meta["isolation"] = next((i for i in isolation if i.startswith("--isolate none")), isolation[0])
    return judge_and_report(
        merged_results([r for _, r in reports]),
        first,
        meta,
        sum(elapsed),
        args.markdown,
        args.report,
        args.max_failures,
    )
