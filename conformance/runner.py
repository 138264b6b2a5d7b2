"""Run the registry of checks over the cases and oracles; aggregate into the conformance table.

Used by the CLI (``lstm-conformance``) and by the pytest entry (``conformance/test_conformance.py``).
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from .cases import Case, all_cases, random_cases
from .compare import Divergence, Stat
from .errors import ERROR_CASES
from .fixtures import FixtureError, FixtureStore

DEFAULT_IMPL = "lstm_ref:LSTM"
IMPL_ALIASES = {"torch": "conformance.torch_oracle:TorchLSTM", "lstm_ref": DEFAULT_IMPL}
RANDOM_CASES = 8  # extra random configurations checked against live torch in a default run

# Table rows, in order, with what they cover. Every row name can be declared unsupported.
FEATURES: dict[str, str] = {
    "whole_sequence": "output, h_n, c_n of a whole-sequence call (every case)",
    "stepwise": "one step per call carrying (h, c) == whole sequence == torch stepwise",
    "chunked": "uneven chunks carrying (h, c) == whole sequence",
    "batch_first": "batch_first=True cases; transposes input and output only",
    "unbatched": "2-D input; equals a batch of one",
    "packed_sorted": "PackedSequence, enforce_sorted=True; each sequence == its own run",
    "packed_unsorted": "PackedSequence, enforce_sorted=False; hx/h_n in caller's order",
    "bidirectional": "bidirectional=True cases",
    "multi_layer": "num_layers 2 and 3",
    "proj_size": "proj_size > 0 (LSTMP)",
    "no_bias": "bias=False",
    "hx_given": "explicit (h0, c0)",
    "dropout_replay": "train mode, torch's dropout masks replayed exactly (dropout_masks=)",
    "dropout_eval": "dropout > 0 in eval mode is the identity",
    "dropout_p0_p1": "train mode with p = 0 and p = 1",
    "dropout_statistics": "own masks: drop rate, 1/(1-p) scale, fresh per call and element",
    "probes": "weights isolating one gate, one bias, one direction, one layer",
    "state_dict": "parameter names/order/shapes; missing, unexpected, misshapen raise",
    "errors": "bad arguments/inputs raise torch's exception type",
    "float32": "float32 cases (torch's oneDNN/native float32 path)",
    "float64": "float64 cases",
    "complex64": "complex64 cases",
    "complex128": "complex128 cases (complex + dropout in train raises NotImplementedError)",
    "edge_long": "1000-step sequences",
    "edge_saturated": "inputs ~1e3 (saturated gates)",
    "edge_nan_inf": "NaN / Inf propagate like torch",
    "edge_batch0": "batch of 0",
    "edge_layout": "non-contiguous, Fortran-order and read-only input",
    "random": "random configurations (live torch only)",
    "cell": "optional LSTMCell: stepping it equals the one-layer LSTM",
}
# Declaration aliases: one key standing for several rows.
ALIASES: dict[str, tuple[str, ...]] = {
    "packed": ("packed_sorted", "packed_unsorted"),
    "complex": ("complex64", "complex128"),
    "dropout": ("dropout_replay", "dropout_p0_p1", "dropout_statistics"),
    "dropout_masks": ("dropout_replay",),
    "edges": ("edge_long", "edge_saturated", "edge_nan_inf", "edge_batch0", "edge_layout"),
}


@dataclass
class Result:
    check: str
    case: str
    oracle: str  # fixtures | torch | self
    features: tuple[str, ...]
    status: str  # pass | fail | skip
    max_abs: float | None = None
    ratio: float | None = None
    message: str = ""
    rerun: str = ""


@dataclass
class Impl:
    spec: str
    factory: Callable[..., Any]
    unsupported: dict[str, str] = field(default_factory=dict)  # row -> reason
    cell: Callable[..., Any] | None = None  # an LSTMCell with lstm_ref.LSTMCell's API, if any


def _import(spec: str, what: str) -> Any:
    module_name, attr = spec.split(":", 1)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m`: modules in the current directory import
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"{what} {spec!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"{what} {spec!r}: {module_name!r} has no attribute {attr!r}") from None
    return obj


def _cell_for(spec: str, factory: Any) -> Any:
    """The implementation's LSTMCell: its ``conformance_cell`` attribute (a class or a
    MODULE:ATTR string); lstm_ref.LSTMCell for lstm_ref.LSTM and its subclasses; torch's for torch."""
    cell = getattr(factory, "conformance_cell", None)
    if isinstance(cell, str):
        return _import(cell, "conformance_cell")
    if cell is not None:
        return cell
    if spec == "torch":
        from .torch_oracle import TorchLSTMCell

        return TorchLSTMCell
    import lstm_ref

    if isinstance(factory, type) and issubclass(factory, lstm_ref.LSTM):
        return lstm_ref.LSTMCell
    return None


def load_impl(spec: str) -> Impl:
    """``MODULE:ATTR`` (or an alias: ``torch``, ``lstm_ref``) -> the factory and its declarations."""
    from .extensions import load_extensions

    load_extensions()  # extension rows (e.g. gradients) may be declared unsupported
    target = IMPL_ALIASES.get(spec, spec)
    if ":" not in target:
        raise SystemExit(f"--impl {spec!r}: expected MODULE:ATTR (e.g. lstm_ref:LSTM) or 'torch'")
    if spec.startswith("exec:"):  # a command speaking docs/exec-protocol.md
        from .exec_impl import make_exec_factory

        factory: Any = make_exec_factory(spec[len("exec:") :])
    else:
        factory = _import(target, "--impl")
    if spec == "torch" or target == IMPL_ALIASES["torch"]:
        from .torch_oracle import torch_available

        reason = torch_available()
        if reason:
            raise SystemExit(f"--impl torch: {reason}")
    declared = dict(getattr(factory, "conformance_unsupported", {}) or {})
    unsupported: dict[str, str] = {}
    for key, reason in declared.items():
        rows = ALIASES.get(key, (key,))
        for row in rows:
            if row not in FEATURES:
                raise SystemExit(
                    f"{spec}: conformance_unsupported names unknown feature {key!r}; "
                    f"known: {', '.join([*FEATURES, *ALIASES])}"
                )
            unsupported[row] = str(reason)
    return Impl(spec, factory, unsupported, _cell_for(spec, factory))


# -- oracles -----------------------------------------------------------------------------------


class FixtureOracle:
    name = "fixtures"

    def __init__(self, store: FixtureStore, covered: set[str]) -> None:
        self.store, self.covered = store, covered
        self.skip_reason: str | None = None

    def applies(self, case: Case) -> bool:
        return case.id in self.covered

    def expected(self, case: Case) -> dict[str, np.ndarray]:
        return self.store.load(case)

    def error_types(self) -> dict[str, str]:
        return self.store.error_types()


class TorchOracle:
    name = "torch"

    def __init__(self) -> None:
        from .torch_oracle import torch_available

        self.skip_reason = torch_available()
        self._errors: dict[str, str] | None = None

    def applies(self, case: Case) -> bool:
        return True

    def expected(self, case: Case) -> dict[str, np.ndarray]:
        from .torch_oracle import expected_from_torch

        return expected_from_torch(case)

    def error_types(self) -> dict[str, str]:
        if self._errors is None:
            from .errors import torch_error_types

            self._errors = torch_error_types()
        return self._errors


Oracle = FixtureOracle | TorchOracle


def make_oracles(which: str = "both", fixtures_dir: Path | None = None) -> list[Oracle]:
    oracles: list[Oracle] = []
    if which in ("both", "fixtures"):
        store = FixtureStore(fixtures_dir) if fixtures_dir else FixtureStore()
        oracles.append(FixtureOracle(store, {c.id for c in all_cases(full=False)}))
    if which in ("both", "torch"):
        oracles.append(TorchOracle())
    return oracles


# -- jobs ------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One unit of work: yields Results (the pytest entry runs one per test item)."""

    id: str
    run: Callable[[], list[Result]]


def select_cases(full: bool, pattern: str | None, with_torch: bool) -> list[Case]:
    cases = all_cases(full)
    if with_torch or pattern:
        cases += random_cases(RANDOM_CASES)
    if pattern:
        pool = {c.id: c for c in [*all_cases(True), *cases]}
        return [c for cid, c in pool.items() if fnmatch.fnmatchcase(cid, pattern)]
    return cases


def _skip_for(impl: Impl, features: tuple[str, ...]) -> str | None:
    for f in features:
        if f in impl.unsupported:
            return f"implementation declares {f!r} unsupported: {impl.unsupported[f]}"
    return None


def _rerun(impl: Impl, case_id: str, oracle: str) -> str:
    return f"lstm-conformance --impl {impl.spec} --case {case_id} --oracle {oracle}"


def _result(
    impl: Impl,
    check: str,
    case_id: str,
    oracle: str,
    features: tuple[str, ...],
    fn: Callable[[], Stat],
    requires: tuple[str, ...] = (),  # the case's own rows: a check of a declared-unsupported case skips
) -> Result:
    reason = _skip_for(impl, (*features, *requires))
    rerun = _rerun(impl, case_id, oracle)
    if reason:
        return Result(check, case_id, oracle, features, "skip", message=reason, rerun=rerun)
    try:
        stat = fn()
    except checks.CellMissing as exc:
        return Result(check, case_id, oracle, features, "skip", message=str(exc), rerun=rerun)
    except Divergence as div:
        return Result(check, case_id, oracle, features, "fail", div.max_abs, div.ratio, div.message, rerun)
    except FixtureError as exc:
        return Result(check, case_id, oracle, features, "fail", message=f"FixtureError: {exc}", rerun=rerun)
    except Exception as exc:
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Result(check, case_id, oracle, features, "fail", message=f"raised {tb}", rerun=rerun)
    return Result(check, case_id, oracle, features, "pass", stat.max_abs, stat.ratio, rerun=rerun)


def case_job(impl: Impl, case: Case, oracles: list[Oracle]) -> Job:
    def run() -> list[Result]:
        results: list[Result] = []
        first_done = False
        for oracle in oracles:
            if not oracle.applies(case):
                continue
            if oracle.skip_reason:
                results.append(
                    Result(
                        "forward", case.id, oracle.name, case.features(), "skip", message=oracle.skip_reason
                    )
                )
                continue
            try:
                exp = oracle.expected(case)
            except Exception as exc:
                msg = f"{type(exc).__name__}: {exc}"
                results.append(
                    Result(
                        "forward",
                        case.id,
                        oracle.name,
                        case.features(),
                        "fail",
                        message=msg,
                        rerun=_rerun(impl, case.id, oracle.name),
                    )
                )
                continue
            for chk in checks.CASE_CHECKS:
                if not chk.every_oracle and first_done:
                    continue
                if not chk.applies(case, exp):
                    continue
                ctx = checks.Context(impl.factory, case, exp, oracle.name, cell=impl.cell)
                results.append(
                    _result(
                        impl,
                        chk.name,
                        case.id,
                        oracle.name,
                        chk.features(case),
                        lambda c=chk, x=ctx: c.fn(x),
                        case.features(),
                    )
                )
            first_done = True
        return results

    return Job(case.id, run)


def suite_jobs(impl: Impl, oracles: list[Oracle], pattern: str | None) -> list[Job]:
    jobs: list[Job] = []

    def errors_job(oracle: Oracle) -> Job:
        def run() -> list[Result]:
            out = []
            if oracle.skip_reason:
                return [
                    Result("errors", "errors:*", oracle.name, ("errors",), "skip", message=oracle.skip_reason)
                ]
            try:
                types = oracle.error_types()
            except Exception as exc:
                return [
                    Result(
                        "errors",
                        "errors:*",
                        oracle.name,
                        ("errors",),
                        "fail",
                        message=f"{type(exc).__name__}: {exc}",
                    )
                ]
            for ec in ERROR_CASES:
                cid = f"errors:{ec.id}"
                if pattern and not fnmatch.fnmatchcase(cid, pattern):
                    continue
                if ec.id not in types:
                    out.append(
                        Result(
                            "errors",
                            cid,
                            oracle.name,
                            ("errors",),
                            "fail",
                            message=f"error case {ec.id!r} missing from the oracle (run `lstm-conformance regen`)",
                        )
                    )
                    continue
                out.append(
                    _result(
                        impl,
                        "errors",
                        cid,
                        oracle.name,
                        ("errors",),
                        lambda e=ec, t=types[ec.id]: checks.check_error_case(impl.factory, e, t),
                    )
                )
            return out

        return Job(f"errors[{oracle.name}]", run)

    for oracle in oracles:
        if not pattern or pattern.startswith("errors"):
            jobs.append(errors_job(oracle))
    if not pattern or fnmatch.fnmatchcase("dropout_statistics", pattern):
        jobs.append(
            Job(
                "dropout_statistics",
                lambda: [
                    _result(
                        impl,
                        "dropout_statistics",
                        "dropout_statistics",
                        "self",
                        ("dropout_statistics",),
                        lambda: checks.check_dropout_statistics(impl.factory),
                    )
                ],
            )
        )
    return jobs


def jobs_for(impl: Impl, oracles: list[Oracle], full: bool = False, pattern: str | None = None) -> list[Job]:
    from .extensions import load_extensions

    load_extensions()
    with_torch = any(o.name == "torch" and not o.skip_reason for o in oracles)
    cases = select_cases(full, pattern, with_torch)
    return [case_job(impl, c, oracles) for c in cases] + suite_jobs(impl, oracles, pattern)


def run_all(jobs: list[Job]) -> list[Result]:
    return [r for job in jobs for r in job.run()]


# -- the table -----------------------------------------------------------------------------------


@dataclass
class Row:
    feature: str
    status: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    max_abs: float | None = None
    ratio: float | None = None
    notes: list[str] = field(default_factory=list)


def table(results: list[Result], impl: Impl) -> list[Row]:
    rows = {f: Row(f, "") for f in FEATURES}
    needs: dict[str, dict[str, None]] = {}  # row -> features declared unsupported by skipped cases
    for r in results:
        for f in r.features:
            row = rows.setdefault(f, Row(f, ""))
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
        elif row.skipped:
            row.status = "skipped"
        else:
            row.status = "skipped"
            row.notes.append(
                impl.unsupported.get(row.feature)
                or "no check ran (needs live torch, or filtered out by --case)"
            )
    return list(rows.values())


def format_table(rows: list[Row]) -> str:
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


def format_markdown(rows: list[Row], impl: Impl, summary: str) -> str:
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


def report_json(path: Path, impl: Impl, rows: list[Row], results: list[Result], meta: dict[str, Any]) -> None:
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


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0
