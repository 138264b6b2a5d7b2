"""Run the declared checks (``rows.py``) over the cases and oracles, as jobs of results.

Used by the CLI (``lstm-conformance``) and by the pytest entry (``conformance/test_conformance.py``);
the table and reports are made from the results by ``report.py``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from ..checks.harness import Arrays, CheckSkipped, Context, SuiteContext
from ..checks.rows import CaseCheck, SuiteCheck, case_checks, suite_checks
from ..contract.cases import Case, all_cases, random_cases
from ..contract.compare import Agreement, Divergence
from ..contract.selection import default_cases
from ..oracles.fixtures import FixtureError
from ..oracles.sources import Oracle
from ..oracles.torch_oracle import with_exact_expectations
from .impls import Impl
from .remote import safe_str

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


@dataclass(frozen=True)
class Task:
    """One unit of work, as sent to a worker: a case, or a suite check (against one oracle)."""

    id: str
    case: Case | None = None
    suite: str = ""  # a SuiteCheck's name
    oracle: str = ""  # the suite check's oracle ("self" for none)
    pattern: str | None = None  # --case, selecting a suite check's items
    resume_after: str = ""  # a suite check resumed after the item its last worker crashed in
    items: frozenset[str] | None = None  # a suite check's items this task runs (a shard's); None: all

    @property
    def rows(self) -> tuple[str, ...]:
        return self.case.features() if self.case is not None else (self.suite,)


# What the parent (which holds the oracles) gives a task: for a case, per applicable oracle,
# its arrays or a Result saying why there are none; for a suite check, torch's exception types
# (or a Result saying why not).
Payload = list[tuple[str, Arrays | Result]] | dict[str, str] | Result | None


@dataclass
class Job:
    """A task with what the parent needs to run it: the oracles' side (``prepare``)."""

    task: Task
    prepare: Callable[[], Payload]
    spec: str  # the implementation, for rerun lines
    impl: Impl | None = None  # set for in-process runs

    @property
    def id(self) -> str:
        return self.task.id

    def run(self) -> list[Result]:
        """In this process (the pytest entry and the project's own tests)."""
        assert self.impl is not None
        return [r for r in execute(self.impl, self.task, self.prepare()) if isinstance(r, Result)]


def select_cases(
    full: bool, pattern: str | None, with_torch: bool, unsupported: Collection[str] = ()
) -> list[Case]:
    """The run's cases: the default set completed over what the implementation supports
    (``selection.py``), or the whole product with ``full``, plus random ones when live torch
    can judge them; ``pattern`` (fnmatch on ids) selects among those."""
    cases = all_cases(full) if full else default_cases(unsupported, with_torch)
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
    lines = safe_str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def rerun_command(impl: Impl, case_id: str, oracle: str) -> str:
    return _rerun(impl.spec, case_id, oracle, impl.rerun_extra)


def _rerun(spec: str, case_id: str, oracle: str, extra: str) -> str:
    """The command that reruns one case: every option that changes what is checked included."""
    oracle_arg = f" --oracle {oracle}" if oracle in ("fixtures", "torch") else ""
    return f"lstm-conformance --impl {spec} --case {case_id}{oracle_arg}{extra}"


def crash_result(task: Task, check: str, what: str, rerun_extra: str, spec: str, item: str = "") -> Result:
    """A job whose worker died or hung: a failure of the check it was in, saying what happened.
    In a suite check, ``item`` is the item it was in (the rest are resumed in another worker)."""
    where = f" in check {check!r}" if check else ""
    message = (
        f"crashed{where}: the worker process {what}"
        if not what.startswith(("the ", "timed", "importing"))
        else f"crashed{where}: {what}"
    )
    if task.case is not None:
        message += "; the rest of this case's checks did not run"
    case_id = task.id if task.case is not None else item or f"{task.suite}:*"
    return Result(
        "crash",
        case_id,
        task.oracle or "-",
        task.rows,
        "fail",
        message=message,
        rerun=_rerun(spec, item or task.id, task.oracle, rerun_extra),
    )


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
        failed.detail = f"{type(exc).__name__}: {safe_str(exc)}".strip()
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


def execute(impl: Impl, task: Task, payload: Payload) -> Iterator[Result | str]:
    """Run a task against its payload, yielding each check's name as it starts (so a crash can
    be named) and each Result."""
    if task.case is not None:
        yield from _execute_case(impl, task.case, payload)  # type: ignore[arg-type]
    else:
        yield from _execute_suite(impl, task, payload)


def _execute_case(
    impl: Impl, case: Case, oracle_arrays: list[tuple[str, Arrays | Result]]
) -> Iterator[Result | str]:
    first_oracle = True
    for oracle, arrays in oracle_arrays:
        if isinstance(arrays, Result):
            yield arrays
            continue
        for check in case_checks():
            if (not check.every_oracle and not first_oracle) or not check.applies(case, arrays):
                continue
            yield f"{check.name} (oracle {oracle})"
            ctx = Context(
                impl.factory,
                case,
                arrays,
                oracle,
                cell=impl.cell,
                declared_tol=impl.tolerances.get(case.dtype),
            )
            # a declared feature of the case removes every check of it, whatever row the check counts towards
            yield run_check(
                impl,
                check.name,
                case.id,
                oracle,
                check.counts_towards(case),
                _with_needs(check, ctx),
                case.features(),
            )
        first_oracle = False


def _execute_suite(impl: Impl, task: Task, payload: Payload) -> Iterator[Result | str]:
    if isinstance(payload, Result):
        yield payload
        return
    check = next(c for c in suite_checks() if c.name == task.suite)
    types = payload if isinstance(payload, dict) else {}
    ctx = SuiteContext(impl.factory, impl.unsupported, lambda: types, impl.tolerances)
    rows = (check.name,)
    skipping = bool(task.resume_after)  # up to and including the item a worker crashed in
    for item in check.items(ctx):
        if skipping:
            skipping = item.id != task.resume_after
            continue
        if (not task.pattern or fnmatch.fnmatchcase(item.id, task.pattern)) and (
            task.items is None or item.id in task.items
        ):
            yield suite_item_label(check.name, item.id)
            yield run_check(
                impl, check.name, item.id, task.oracle, rows, item.run, (*check.needs, *item.needs)
            )


def suite_items(pattern: str | None, dtype: str = "float64") -> dict[str, tuple[str, ...]]:
    """The suite checks' items a run with ``--case pattern`` runs (for an implementation whose
    suite checks run in ``dtype``), each with the rows it counts towards."""

    def unused(*args: object, **kwargs: object) -> None:
        raise AssertionError("listing items calls nothing")

    ctx = SuiteContext(unused, {} if dtype == "float64" else {"float64": ""}, dict)
    selected: dict[str, tuple[str, ...]] = {}
    for check in suite_checks():
        for item in check.items(ctx):
            if not pattern or fnmatch.fnmatchcase(item.id, pattern):
                selected[item.id] = (*selected.get(item.id, ()), check.name)
    return selected


def suite_item_label(check: str, item: str) -> str:
    """What a worker reports before each item of a suite check (``errors (input-batch-0)``)."""
    return f"{check} ({item})"


def suite_item_of(task: Task, label: str) -> str:
    """The item id in a :func:`suite_item_label` of ``task``'s check, or ``""``."""
    prefix = f"{task.suite} ("
    return label[len(prefix) : -1] if task.suite and label.startswith(prefix) else ""


def _case_payload(case: Case, oracles: list[Oracle], spec: str, rerun_extra: str) -> Payload:
    """Per applicable oracle, its arrays for the case (made here, in the parent), or a Result."""
    payload: list[tuple[str, Arrays | Result]] = []
    for oracle in oracles:
        if not oracle.applies(case):
            continue
        if oracle.skip_reason:
            payload.append(
                (
                    oracle.name,
                    Result(
                        "forward", case.id, oracle.name, case.features(), "skip", message=oracle.skip_reason
                    ),
                )
            )
            continue
        try:
            payload.append((oracle.name, with_exact_expectations(oracle.expected(case))))
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            rerun = _rerun(spec, case.id, oracle.name, rerun_extra)
            payload.append(
                (
                    oracle.name,
                    Result(
                        "forward", case.id, oracle.name, case.features(), "fail", message=message, rerun=rerun
                    ),
                )
            )
    return payload


def _suite_payload(check: SuiteCheck, oracle: Oracle | None) -> Payload:
    if oracle is None:
        return {}
    if oracle.skip_reason:
        return Result(
            check.name, f"{check.name}:*", oracle.name, (check.name,), "skip", message=oracle.skip_reason
        )
    try:
        return oracle.error_types()
    except Exception as exc:
        return Result(
            check.name,
            f"{check.name}:*",
            oracle.name,
            (check.name,),
            "fail",
            message=f"{type(exc).__name__}: {exc}",
        )


def case_job(impl: Impl, case: Case, oracles: list[Oracle]) -> Job:
    return Job(
        Task(case.id, case=case),
        lambda: _case_payload(case, oracles, impl.spec, impl.rerun_extra),
        impl.spec,
        impl,
    )


def suite_jobs(impl: Impl, oracles: list[Oracle], pattern: str | None) -> list[Job]:
    jobs = []
    for check in suite_checks():
        if pattern and not any(fnmatch.fnmatchcase(item, pattern) for item in check.item_ids):
            continue
        for oracle in oracles if check.per_oracle else [None]:
            name = "self" if oracle is None else oracle.name
            task = Task(
                check.name if oracle is None else f"{check.name}[{name}]",
                suite=check.name,
                oracle=name,
                pattern=pattern,
            )
            jobs.append(Job(task, lambda c=check, o=oracle: _suite_payload(c, o), impl.spec, impl))  # type: ignore[misc]
    return jobs


def jobs_for(
    impl: Impl,
    oracles: list[Oracle],
    full: bool = False,
    pattern: str | None = None,
    cases: list[Case] | None = None,
) -> list[Job]:
    """The run's jobs; ``cases`` (a --case-spec's) replaces the selection and its suite checks."""
    if cases is not None:
        return [
            case_job(impl, c, oracles) for c in cases if not pattern or fnmatch.fnmatchcase(c.id, pattern)
        ]
    with_torch = any(o.name == "torch" and not o.skip_reason for o in oracles)
    cases = select_cases(full, pattern, with_torch, impl.unsupported)
    return [case_job(impl, c, oracles) for c in cases] + suite_jobs(impl, oracles, pattern)


def run_all(jobs: list[Job]) -> list[Result]:
    return [r for job in jobs for r in job.run()]
