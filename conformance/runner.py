"""Run the declared checks (``rows.py``) over the cases and oracles, as jobs of results.

Used by the CLI (``lstm-conformance``) and by the pytest entry (``conformance/test_conformance.py``);
the table and reports are made from the results by ``report.py``.
"""

from __future__ import annotations

import fnmatch
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .cases import Case, all_cases, random_cases
from .compare import Agreement, Divergence
from .fixtures import FixtureError
from .harness import Arrays, CheckSkipped, Context, SuiteContext
from .impls import Impl
from .oracles import Oracle
from .rows import CaseCheck, SuiteCheck, case_checks, suite_checks
from .torch_oracle import with_exact_expectations

RANDOM_CASES = 8  # extra random configurations checked against live torch in a default run


@dataclass
class Result:
    check: str
    case: str
    oracle: str  # fixtures | torch | self
    features: tuple[str, ...]  # the table rows this result counts towards
    status: str  # pass | fail | skip
    max_abs: float | None = None  # vs the exact answer for 32-bit cases
    ratio: float | None = None
    message: str = ""
    rerun: str = ""
    max_abs_vs_torch32: float | None = None
    detail: str = ""  # the whole exception text, where `message` shows its first line
    default_ratio: float | None = None  # at a declared tolerance: worst error / the suite's default


@dataclass
class Job:
    """One unit of work: yields Results (the pytest entry runs one per test item)."""

    id: str
    run: Callable[[], list[Result]]


def select_cases(full: bool, pattern: str | None, with_torch: bool) -> list[Case]:
    """The run's cases: the default set (or the whole product with ``full``), plus random ones
    when live torch can judge them; ``pattern`` (fnmatch on ids) selects among those."""
    cases = all_cases(full)
    if with_torch or pattern:
        cases += random_cases(RANDOM_CASES)
    if pattern:
        return [c for c in cases if fnmatch.fnmatchcase(c.id, pattern)]
    return cases


def declared_reason(impl: Impl, rows: tuple[str, ...]) -> str | None:
    """Why a check is skipped: the first of its rows the implementation declares unsupported."""
    for row in rows:
        if row in impl.unsupported:
            return f"implementation declares {row!r} unsupported: {impl.unsupported[row]}"
    return None


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (JAX, for one, appends pages of notes)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def rerun_command(impl: Impl, case_id: str, oracle: str) -> str:
    return f"lstm-conformance --impl {impl.spec} --case {case_id} --oracle {oracle}"


def run_check(
    impl: Impl,
    check: str,
    case_id: str,
    oracle: str,
    rows: tuple[str, ...],
    run: Callable[[], Agreement],
    needs: tuple[str, ...] = (),
) -> Result:
    """One check counting towards ``rows``, as a Result: skipped if the implementation declares
    one of those rows or of the features it ``needs`` unsupported, else pass or fail."""

    def result(
        status: str, message: str = "", max_abs: float | None = None, ratio: float | None = None
    ) -> Result:
        return Result(
            check,
            case_id,
            oracle,
            rows,
            status,
            max_abs,
            ratio,
            message,
            rerun_command(impl, case_id, oracle),
        )

    reason = declared_reason(impl, (*rows, *needs))
    if reason:
        return result("skip", reason)
    try:
        agreement = run()
    except CheckSkipped as exc:
        return result("skip", str(exc))
    except Divergence as div:
        return result("fail", div.message, div.max_abs, div.ratio)
    except FixtureError as exc:
        return result("fail", f"FixtureError: {exc}")
    except Exception as exc:
        failed = result("fail", "raised " + first_line(exc))
        failed.detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return failed
    passed = result("pass", max_abs=agreement.max_abs, ratio=agreement.ratio)
    passed.max_abs_vs_torch32 = agreement.max_abs_vs_torch32
    passed.default_ratio = agreement.default_ratio
    return passed


def _checks_of_case(impl: Impl, case: Case, oracle: str, arrays: Arrays, first_oracle: bool) -> list[Result]:
    results = []
    for check in case_checks():
        if (not check.every_oracle and not first_oracle) or not check.applies(case, arrays):
            continue
        ctx = Context(
            impl.factory, case, arrays, oracle, cell=impl.cell, declared_tol=impl.tolerances.get(case.dtype)
        )
        run = _with_needs(check, ctx)
        # a declared feature of the case removes every check of it, whatever row the check counts towards
        results.append(
            run_check(impl, check.name, case.id, oracle, check.counts_towards(case), run, case.features())
        )
    return results


def _with_needs(check: CaseCheck, ctx: Context) -> Callable[[], Agreement]:
    """The check, skipped with the reason when the oracle lacks arrays it needs (old fixtures)."""

    def run() -> Agreement:
        missing = [name for name in check.needs if name not in ctx.arrays]
        if missing:
            raise CheckSkipped(
                f"the {ctx.oracle} oracle has no {', '.join(missing)} for this case (run `lstm-conformance regen`)"
            )
        return check.run(ctx)

    return run


def case_job(impl: Impl, case: Case, oracles: list[Oracle]) -> Job:
    def run() -> list[Result]:
        results: list[Result] = []
        first_oracle = True
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
                arrays = with_exact_expectations(oracle.expected(case))
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                rerun = rerun_command(impl, case.id, oracle.name)
                results.append(
                    Result(
                        "forward", case.id, oracle.name, case.features(), "fail", message=message, rerun=rerun
                    )
                )
                continue
            results += _checks_of_case(impl, case, oracle.name, arrays, first_oracle)
            first_oracle = False
        return results

    return Job(case.id, run)


def suite_job(impl: Impl, check: SuiteCheck, oracle: Oracle | None, pattern: str | None) -> Job:
    oracle_name = "self" if oracle is None else oracle.name
    rows = (check.name,)

    def run() -> list[Result]:
        if oracle is not None and oracle.skip_reason:
            return [
                Result(check.name, f"{check.name}:*", oracle_name, rows, "skip", message=oracle.skip_reason)
            ]
        torch_types = (lambda: {}) if oracle is None else oracle.error_types
        ctx = SuiteContext(impl.factory, impl.unsupported, torch_types, impl.tolerances)
        try:
            items = [
                item for item in check.items(ctx) if not pattern or fnmatch.fnmatchcase(item.id, pattern)
            ]
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return [Result(check.name, f"{check.name}:*", oracle_name, rows, "fail", message=message)]
        return [
            run_check(impl, check.name, item.id, oracle_name, rows, item.run, (*check.needs, *item.needs))
            for item in items
        ]

    return Job(check.name if oracle is None else f"{check.name}[{oracle_name}]", run)


def suite_jobs(impl: Impl, oracles: list[Oracle], pattern: str | None) -> list[Job]:
    jobs = []
    for check in suite_checks():
        if pattern and not any(fnmatch.fnmatchcase(item, pattern) for item in check.item_ids):
            continue
        for oracle in oracles if check.per_oracle else [None]:
            jobs.append(suite_job(impl, check, oracle, pattern))
    return jobs


def jobs_for(impl: Impl, oracles: list[Oracle], full: bool = False, pattern: str | None = None) -> list[Job]:
    with_torch = any(o.name == "torch" and not o.skip_reason for o in oracles)
    cases = select_cases(full, pattern, with_torch)
    return [case_job(impl, c, oracles) for c in cases] + suite_jobs(impl, oracles, pattern)


def run_all(jobs: list[Job]) -> list[Result]:
    return [r for job in jobs for r in job.run()]
