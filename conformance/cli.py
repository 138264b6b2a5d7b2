"""``lstm-conformance``: run the conformance suite and print the conformance table.

lstm-conformance [--impl MODULE:ATTR|torch] [--full] [--case PATTERN]
                 [--oracle both|fixtures|torch] [--report PATH.json]
                 [--expect FILE [--strict-expect]] [--shard K/N]
lstm-conformance baseline --report R.json > FILE   (expect.py)
lstm-conformance merge R1.json ... [--markdown M.md] [--report OUT.json]   (shards.py)
lstm-conformance regen [--check]
lstm-conformance export DIR [--fixtures DIR]
lstm-conformance matrix [--impls NAME,...]   (docs/compatibility.md)
lstm-conformance torch-diff [--against DIR]   (docs/torch-versions.md)
lstm-conformance explore [--impl X] [--examples N] [--seconds S] [--seed N]   (docs/rows.md)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks.rows import suite_checks
from .oracles.disagreements import flag_notes, oracle_labels, reconcile
from .oracles.fixtures import FIXTURES_DIR
from .oracles.regen import main_regen
from .oracles.sources import make_oracles, witness_of
from .run import expect, provenance, report, runner, shards
from .run.expect import Expectation
from .run.impls import DEFAULT_IMPL, Impl, load_impl
from .run.progress import Progress
from .run.provenance import implementation_version
from .run.workers import default_jobs, jobs_env_problem


def _parser() -> argparse.ArgumentParser:
    """The options (long because it is a declaration: one entry per option)."""
    p = argparse.ArgumentParser(
        prog="lstm-conformance",
        description="Check an LSTM implementation against torch.nn.LSTM (golden fixtures and, "
        "when installed, live torch). 'lstm-conformance regen [--check]' rewrites the fixtures.",
    )
    p.add_argument(
        "--impl",
        default=DEFAULT_IMPL,
        help="MODULE:ATTR of the implementation "
        "under test (lstm_ref.LSTM's API), or 'torch' (default: %(default)s)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="the whole option product (3072 cases) "
        "instead of all pairs; cases beyond the fixtures need live torch",
    )
    p.add_argument(
        "--case",
        metavar="PATTERN",
        help="run only cases whose id matches (fnmatch), e.g. 'L2-*' or 'errors:*' or 'dropout_statistics'",
    )
    p.add_argument(
        "--oracle",
        choices=("both", "fixtures", "torch"),
        default="both",
        help="fixtures, live torch, or both (default; torch is skipped when absent)",
    )
    p.add_argument("--report", metavar="PATH.json", type=Path, help="write every result as JSON")
    p.add_argument("--markdown", metavar="PATH.md", type=Path, help="also write the table as Markdown")
    p.add_argument(
        "--fixtures", type=Path, default=FIXTURES_DIR, help="fixtures directory (default: %(default)s)"
    )
    p.add_argument(
        "--list", action="store_true", help="list the selected cases and their table rows, run nothing"
    )
    p.add_argument(
        "--max-failures", type=int, default=10, help="failure details to print (default %(default)s)"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="worker processes running the implementation (default: $LSTM_CONFORMANCE_JOBS, else the machine's cores)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="a job (one case, or one suite check) running longer fails as hung (default %(default)g)",
    )
    p.add_argument(
        "--isolate",
        choices=("shared", "case", "none"),
        default="shared",
        help="shared: workers run many cases (default); case: a fresh worker per case, so no verdict "
        "depends on what ran before; none: in this process, unprotected",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--expect",
        metavar="FILE",
        type=Path,
        help="a baseline (TOML or JSON): the failures it lists, each with a reason, show as "
        "'expected' and do not fail the run ('lstm-conformance baseline' writes one)",
    )
    p.add_argument(
        "--strict-expect",
        action="store_true",
        help="with --expect: an entry that no longer fails fails the run",
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        type=shards.parse_shard,
        help="run the K-th of N parts of the selection, split evenly by expected cost "
        "('lstm-conformance merge' joins the parts' --report files)",
    )
    p.add_argument(
        "--case-spec",
        metavar="FILE.json",
        type=Path,
        help="run exactly the case in FILE (as `lstm-conformance explore` writes it) against live torch "
        "(without torch: lstm_ref in 64 bits)",
    )
    return p


def _regen(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lstm-conformance regen",
        description="Rewrite fixtures/ from live torch (one regen of a directory at a time; temp "
        "files an interrupted regen left are removed). --check regenerates in memory and compares "
        "every file on disk: exit 1 naming each missing, corrupt, extra or stale file, with the drift "
        "per array (differences within the drift tolerance, another CPU's rounding, are listed, "
        "not failed, unless --exact). Exit 2, with one line on stderr, when it cannot run at all.",
    )
    p.add_argument("--check", action="store_true", help="compare, write nothing")
    p.add_argument(
        "--exact",
        action="store_true",
        help="with --check: any difference fails, also rounding within the drift tolerance "
        "(on the machine that made the fixtures)",
    )
    p.add_argument(
        "--fixtures", type=Path, default=FIXTURES_DIR, help="fixtures directory (default: %(default)s)"
    )
    args = p.parse_args(argv)
    from .oracles.torch_oracle import torch_available

    try:
        reason = torch_available()  # imports torch: Ctrl-C may come here too
        if reason:
            print(f"lstm-conformance regen needs torch: {reason}", file=sys.stderr)
            return 2
        return main_regen(args.check, args.fixtures, exact=args.exact)
    except KeyboardInterrupt:  # atomic writes: every fixture is the old one or the new one
        print(
            "lstm-conformance regen: interrupted (Ctrl-C); the fixtures on disk are intact", file=sys.stderr
        )
        return 130


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["regen"]:
        return _regen(argv[1:])
    if argv[:1] == ["export"]:  # every default case as exec-protocol files (export.py)
        from .tools.export import main_export

        return main_export(argv[1:])
    if argv[:1] == ["torch-diff"]:  # nn.LSTM's changes between the fixtures' torch and live torch
        from .oracles.torch_diff import main_torch_diff

        return main_torch_diff(argv[1:])
    if argv[:1] == ["matrix"]:  # every installed adapter, one column each (matrix.py)
        from .tools.matrix import main_matrix

        return main_matrix(argv[1:])
    if argv[:1] == ["baseline"]:  # a --expect file from a run's --report (expect.py)
        from .run.expect import main_baseline

        return main_baseline(argv[1:])
    if argv[:1] == ["merge"]:  # the shards' reports as one (shards.py)
        from .run.shards import main_merge

        return main_merge(argv[1:])
    if argv[:1] == ["explore"]:  # a property-based search that shrinks (explore.py)
        from .tools.explore import main_explore

        return main_explore(argv[1:])
    args = _parser().parse_args(argv)
    problem = usage_problem(args)
    if problem:  # before anything runs: one line, exit 2
        print(f"lstm-conformance: {problem}", file=sys.stderr)
        return 2
    expectations = _expectations(args)
    if expectations is None:
        return 2
    if args.list and args.shard:
        print(
            "--list takes no --shard: the split depends on the implementation's declarations "
            "(a shard's --report lists its units)",
            file=sys.stderr,
        )
        return 2
    if args.case_spec:
        from .tools.explore import read_spec

        try:
            args.spec_cases = [read_spec(args.case_spec)]
        except ValueError as exc:
            print(f"lstm-conformance: {exc}", file=sys.stderr)
            return 2
    if args.list:
        return _list(args)
    try:
        return run(args, argv, expectations)
    except KeyboardInterrupt:  # before the implementation was started: a report of nothing
        print("lstm-conformance: interrupted (Ctrl-C) before anything ran", file=sys.stderr)
        if args.report:
            impl = Impl(args.impl, _not_loaded)
            meta = {"passed": False, "interrupted": True, "counts": {}, "argv": argv}
            _write(args.report, lambda path: report.report_json(path, impl, report.table([], impl), [], meta))
        return 130


def usage_problem(args: argparse.Namespace) -> str | None:
    """What makes the command line unusable, found before anything runs, or None."""
    from .run.impls import spec_problem

    if not (math.isfinite(args.timeout) and args.timeout > 0):
        return f"--timeout must be a positive number of seconds, got {args.timeout:g}"
    if args.jobs < 0:
        return f"--jobs must be 0 (one per core) or more, got {args.jobs}"
    problem = jobs_env_problem() if args.jobs == 0 else None
    if problem:
        return problem
    problem = spec_problem(args.impl)
    if problem:
        return problem
    for option, path in (("--report", args.report), ("--markdown", args.markdown)):
        problem = report.destination_problem(path) if path is not None else None
        if problem:
            return f"{option} {path}: {problem}"
    return None


def _list(args: argparse.Namespace) -> int:
    """The cases and suite items a run with the same options would run, with their rows: the
    implementation's declarations (read in a worker, as a run does) complete the default set
    over what it supports (selection.py)."""
    from .contract.selection import uncovered
    from .tools.explore import WorkerRunner

    oracles = make_oracles(args.oracle, args.fixtures)
    with_torch = any(o.name == "torch" and not o.skip_reason for o in oracles)
    unsupported: dict[str, str] = {}
    if args.impl != DEFAULT_IMPL:
        worker = WorkerRunner(args.impl, args.timeout)
        info, problem = worker.start()
        worker.close()
        if info is None:
            print(f"lstm-conformance --list: {problem}", file=sys.stderr)
            return 1
        unsupported = info.unsupported
    spec_cases = getattr(args, "spec_cases", None)
    cases = spec_cases or runner.select_cases(args.full, args.case, with_torch, unsupported)
    if unsupported:  # comment lines first: the case lines and the count stay easy to parse
        print(f"# {args.impl} declares unsupported: {', '.join(unsupported)}")
    if not args.full and not args.case and not spec_cases:
        left = uncovered(unsupported, cases)
        print(
            "# every supported pair of option values and form x direction x dtype triple is covered"
            if not left
            else f"# {left} supported pairs/triples are not covered: they need live torch (cases beyond the fixtures)"
        )
    for case in cases:
        print(f"{case.id:55} {' '.join(case.features())}")
    items = {} if spec_cases else runner.suite_items(args.case)
    for item, rows in items.items():
        print(f"{item:55} {' '.join(rows)}")
    n_errors = sum(item.startswith("errors:") for item in items)
    others = [item for item in items if not item.startswith("errors:")]
    print(
        f"{len(cases)} cases and {n_errors} error cases"
        + (f", {', '.join(others)}" if others else "")
        + (
            " (error cases in float64; an implementation declaring float64 unsupported gets float32 copies)"
            if n_errors
            else ""
        )
    )
    return 0


DEFAULT_TIMEOUT_S = 600.0  # per job; a JAX port recompiling for every new model stays well inside


def _expectations(args: argparse.Namespace) -> list[Expectation] | None:
    """--expect's entries for this implementation ([] without it); None (after one line on
    stderr) when the file cannot be used."""
    if args.strict_expect and not args.expect:
        print("--strict-expect needs --expect FILE", file=sys.stderr)
        return None
    if not args.expect:
        return []
    try:
        return expect.for_impl(expect.load(args.expect), args.impl)
    except expect.ExpectError as exc:
        print(f"--expect {exc}", file=sys.stderr)
        return None


def _jobs(
    impl: Impl, oracles: list[Any], args: argparse.Namespace
) -> tuple[list[runner.Job], dict[str, Any]]:
    """The run's jobs: the selection, or with --shard this shard's part of it (and what the
    report records about the split)."""
    jobs = runner.jobs_for(impl, oracles, args.full, args.case, getattr(args, "spec_cases", None))
    if not args.shard:
        return jobs, {}
    part = shards.select(jobs, impl, args.shard)
    return part.jobs, part.meta


def _rerun_extra(args: argparse.Namespace) -> str:
    """The options a rerun line must carry to check the same thing again."""
    extra = ""
    if args.fixtures != FIXTURES_DIR:
        extra += f" --fixtures {args.fixtures}"
    if args.full:
        extra += " --full"
    if args.timeout != DEFAULT_TIMEOUT_S:
        extra += f" --timeout {args.timeout:g}"
    if args.isolate != "shared":
        extra += f" --isolate {args.isolate}"
    if getattr(args, "case_spec", None):
        extra += f" --case-spec {args.case_spec}"
    return extra


def _fixture_oracle_problem(
    oracles: list[Any],
) -> tuple[list[Any], runner.Result | None, dict[str, str] | None]:
    """A fixtures problem that affects every case is one failure, not one per case: the
    fixture oracle is then dropped from the run.  Also returns the fixtures' provenance."""
    store = next((o.store for o in oracles if o.name == "fixtures"), None)
    if store is None:
        return oracles, None, None
    whole = [p for p in store.audit() if p.whole_directory]
    if not whole:
        return oracles, None, store.provenance()
    message = (
        f"FixtureError: {whole[0]} (every case needs it; `lstm-conformance regen` rewrites the fixtures)"
    )
    problem = runner.Result(
        "fixtures", "fixtures:*", "fixtures", ("whole_sequence",), "fail", message=message
    )
    return [o for o in oracles if o.name != "fixtures"], problem, None


@dataclass
class Outcome:
    results: list[runner.Result]
    impl: Impl
    impl_version: str
    interrupted: bool = False
    shard: dict[str, Any] = field(default_factory=dict)  # --shard: what the report records about the split


def _in_process(args: argparse.Namespace, oracles: list[Any], progress_on: bool) -> Outcome:
    """--isolate none: the implementation runs in this process (no protection from crashes)."""
    impl = load_impl(args.impl)
    impl.rerun_extra = _rerun_extra(args)
    jobs, shard = _jobs(impl, oracles, args)
    progress = Progress(len(jobs), enabled=progress_on)
    results: list[runner.Result] = []
    try:
        for job in jobs:
            done = job.run()
            results += done
            progress.update(any(r.status == "fail" for r in done))
    except KeyboardInterrupt:
        return Outcome(results, impl, "", interrupted=True, shard=shard)
    finally:
        progress.close()
    return Outcome(results, impl, implementation_version(args.impl, impl.factory), shard=shard)


def _in_workers(args: argparse.Namespace, oracles: list[Any], progress_on: bool) -> Outcome:
    from .run.workers import Pool

    extra = _rerun_extra(args)
    pool = Pool(args.impl, extra, args.jobs or default_jobs(), args.timeout, fresh=args.isolate == "case")
    info, problem = pool.start()
    if info is None:
        failure = runner.Result("import", "import", "-", ("whole_sequence",), "fail", message=problem)
        return Outcome([failure], Impl(args.impl, _not_loaded, rerun_extra=extra), "unknown")
    assert pool.impl is not None
    impl = pool.impl
    jobs, shard = _jobs(impl, oracles, args)
    progress = Progress(len(jobs), enabled=progress_on)
    run = pool.run(jobs, lambda job: job.prepare(), lambda job, done: progress.update(_failed(done)))
    progress.close()
    interrupted = run.interrupted
    if not interrupted and args.isolate == "shared":
        interrupted = _recheck_alone(args, extra, jobs, run.results, run.after_others)
    return Outcome(run.results, impl, info.version, interrupted, shard)


def _failed(results: list[runner.Result]) -> bool:
    return any(r.status == "fail" for r in results)


RECHECK_AT_MOST = 20  # failing jobs rerun alone to tell state leaks from real failures


def _recheck_alone(
    args: argparse.Namespace,
    extra: str,
    jobs: list[runner.Job],
    results: list[runner.Result],
    after_others: set[str],
) -> bool:
    """A job that failed in a worker after other jobs is rerun in a fresh one; if that rerun completes and
    passes, its failure depends on what ran before it in the same process: say so. True when
    Ctrl-C stopped the reruns (only those that completed are used)."""
    from .run.workers import Pool

    # a job that hung is not rerun: that would only wait for the timeout again
    hung = {r.case for r in results if r.check == "crash" and "timed out" in r.message}
    failing_ids = {r.case for r in results if r.status == "fail"} - hung
    failing = [  # a job that ran first in a fresh worker has already run alone
        j
        for j in jobs
        if j.id in after_others and (j.id in failing_ids or f"{j.task.suite}:*" in failing_ids)
    ]
    if not failing or len(failing) > RECHECK_AT_MOST:
        return False
    pool = Pool(args.impl, extra, args.jobs or default_jobs(), args.timeout, fresh=True)
    try:
        if pool.start()[0] is None:
            return False
        alone = pool.run(failing, lambda job: job.prepare(), lambda job, done: None)
    except KeyboardInterrupt:
        pool.close()
        return True
    passed_alone = alone.completed - {r.case for r in alone.results if r.status == "fail"}
    for r in results:
        if r.status == "fail" and r.case in passed_alone:
            r.message += (
                "\n    passes when run alone in a fresh process (--isolate case): this failure depends on "
                "what ran before it in the same process (state leaking between calls)"
            )
    return alone.interrupted


def _not_loaded(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the implementation runs in worker processes, not in the parent")


def run(args: argparse.Namespace, argv: list[str], expectations: list[Expectation] | None = None) -> int:
    t0 = time.perf_counter()
    if args.impl == "torch":
        from .oracles.torch_oracle import torch_available

        if torch_available():  # checked here too: the workers are other processes
            print(f"--impl torch: {torch_available()}", file=sys.stderr)
            return 2
    from .adapters import REGISTRY, unavailable

    if args.impl in REGISTRY and unavailable(args.impl):  # a library or the device is missing
        print(f"--impl {args.impl}: {unavailable(args.impl)}", file=sys.stderr)
        return 2
    oracles, fixture_problem, fixtures_made = _fixture_oracle_problem(
        make_oracles(args.oracle, args.fixtures)
    )
    if getattr(args, "spec_cases", None):  # a spec's case is in no fixture: live torch, or lstm_ref-f64
        from .tools.explore import spec_oracle

        oracles, fixture_problem = [spec_oracle()], None
    selected = len(
        getattr(args, "spec_cases", None)
        or runner.select_cases(
            args.full, args.case, any(o.name == "torch" and not o.skip_reason for o in oracles)
        )
    )
    if (
        args.case
        and not selected
        and not any(runner.suite_jobs(Impl(args.impl, _not_loaded), oracles, args.case))
    ):
        print(f"no case matches --case {args.case!r}", file=sys.stderr)
        return 2
    shard = f"; shard {args.shard} of them here" if args.shard else ""
    print(
        f"lstm-conformance: {args.impl} ({selected} cases selected{'' if args.case else ' by default'}{shard})",
        flush=True,
    )
    progress_on = not args.quiet
    try:
        outcome = (_in_process if args.isolate == "none" else _in_workers)(args, oracles, progress_on)
    except KeyboardInterrupt:  # while the implementation imported: a report with nothing run
        unknown = Impl(args.impl, _not_loaded, rerun_extra=_rerun_extra(args))
        outcome = Outcome([], unknown, "unknown", interrupted=True)
    results = ([fixture_problem] if fixture_problem else []) + outcome.results
    # oracles that disagree (another torch than the fixtures'): flagged, not failed (disagreements.py)
    disagreeing = reconcile(results, witness_of(oracles), args.impl)
    info = provenance.collect(args.impl, outcome.impl_version, fixtures_made, argv)
    for line in provenance.header_lines(info):
        print(line)
    for o in oracles:
        print(f"  oracle {o.name}: " + (f"skipped ({o.skip_reason})" if o.skip_reason else "on"))
    return _report(
        args, argv, outcome, results, info, oracles, time.perf_counter() - t0, expectations or [], disagreeing
    )


def _report(
    args: argparse.Namespace,
    argv: list[str],
    outcome: Outcome,
    results: list[runner.Result],
    info: dict[str, Any],
    oracles: list[Any],
    elapsed: float,
    expectations: list[Expectation],
    disagreeing: list[str] | None = None,
) -> int:
    """The table, the failures, the verdict; the Markdown and JSON reports, always."""
    impl = outcome.impl
    meta: dict[str, Any] = {
        "oracles": {o.name: o.skip_reason or "on" for o in oracles},
        "provenance": info,
        "argv": argv,
        "tolerances": {dtype: [tol.rtol, tol.atol] for dtype, tol in impl.tolerances.items()},
        "isolation": UNPROTECTED if args.isolate == "none" else args.isolate,
        "oracle_disagreements": disagreeing or [],  # cases where the oracles disagree (disagreements.py)
    }
    if args.expect:
        meta["expect"] = {"entries": [e.to_json() for e in expectations], "strict": args.strict_expect}
        meta["expect_file"] = str(args.expect)
    if outcome.shard:
        meta["shard"] = outcome.shard
    report_data = {"impl": impl.spec, "unsupported": impl.unsupported, **meta}
    return judge_and_report(
        results,
        report_data,
        meta,
        elapsed,
        args.markdown,
        args.report,
        args.max_failures,
        outcome.interrupted,
    )


def summary_counts(results: list[runner.Result]) -> tuple[dict[str, int], int, int]:
    """Results per status, cases, error cases."""
    n = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    expected = sum(r.status == expect.EXPECTED for r in results)
    if expected:
        n[expect.EXPECTED] = expected
    suite = {check.name for check in suite_checks()}
    n_cases = len({r.case for r in results if r.check not in suite and not r.case.startswith("errors:")})
    n_error_cases = len({r.case for r in results if r.case.startswith("errors:")})
    return n, n_cases, n_error_cases


def _plural(count: int, what: str) -> str:
    return f"{count} {what}{'s' * (count != 1)}"


def judge_and_report(
    results: list[runner.Result],
    run: dict[str, Any],
    meta: dict[str, Any],
    elapsed: float,
    markdown: Path | None,
    report_path: Path | None,
    max_failures: int,
    interrupted: bool = False,
) -> int:
    """Judge ``results`` (of a run, or of merged shards) as ``run`` records them (its "impl",
    "unsupported", "tolerances" and "expect"), print the table, the failures and the verdict, and
    write the reports; the exit code."""
    from .contract.tolerances import declared_tolerances

    tolerances = declared_tolerances({k: tuple(v) for k, v in run.get("tolerances", {}).items()})
    impl = Impl(run["impl"], _not_loaded, run["unsupported"], None, tolerances)
    expectations = expect.recorded(run)
    strict = bool(run.get("expect", {}).get("strict"))
    expect.apply(results, expectations)
    sharded = "shard" in meta  # a shard cannot tell a stale entry: its failure may be in another shard
    gone = [] if sharded or interrupted else expect.stale(results, expectations)
    rows = report.table(results, impl)
    flag_notes(rows, results)
    print()
    print(report.format_table(rows))
    failures = list(report.iter_failures(results))
    labels = oracle_labels(
        meta.get("provenance", {}).get("torch_fixtures"), meta.get("provenance", {}).get("torch_live")
    )
    for r in failures[:max_failures]:
        vs = labels.get(r.oracle, r.oracle)
        print(f"\nFAIL {r.check} [{r.case}] vs {vs}\n    {r.message}\n  rerun: {r.rerun}")
    if len(failures) > max_failures:
        print(f"\n... and {len(failures) - max_failures} more failures (see --report)")
    for e in gone:
        print(
            f"\nSTALE expectation ({e.describe()}): {e.reason}\n    its checks pass now: remove the entry "
            "(it would hide the failure's return)"
        )
    if sharded and expectations:
        print("\n(stale expectations are judged when the shards are merged: lstm-conformance merge)")
    n, n_cases, n_error_cases = summary_counts(results)
    verdict = "INTERRUPTED (partial results)" if interrupted else report.verdict(results, impl)
    notes = [_plural(n[expect.EXPECTED], "expected failure")] if n.get(expect.EXPECTED) else []
    notes += [_plural(len(gone), "stale expectation")] if gone else []
    if strict and gone and not failures and not interrupted:
        verdict = "FAIL"
    if notes:
        verdict += f" ({', '.join(notes)})"
    expected = f", {n[expect.EXPECTED]} expected" if expect.EXPECTED in n else ""
    summary = (
        f"{len(results)} checks over {n_cases} cases and {n_error_cases} error cases: {n['pass']} passed, {n['fail']} failed, "
        f"{n['skip']} skipped{expected} in {elapsed:.1f} s -> {verdict}"
    )
    if meta.get("oracle_disagreements"):
        print(
            "\nwhere the oracles disagree (a change in torch, not a finding about the implementation; "
            "`lstm-conformance torch-diff` groups them by cause):"
        )
        print("\n".join("  " + line for line in meta["oracle_disagreements"]))
    if meta.get("isolation") == UNPROTECTED:
        summary += f" ({UNPROTECTED})"
    print("\n" + summary)
    if interrupted:
        print("lstm-conformance: interrupted (Ctrl-C); the results so far are reported", file=sys.stderr)
    passed = not failures and not interrupted and not (strict and gone)
    written = True
    if report_path:  # first: the JSON is what CI reads
        meta = {
            "passed": passed,
            "interrupted": interrupted,
            "counts": n,
            "elapsed_s": round(elapsed, 3),
            **meta,
        }
        if gone:
            meta["stale"] = [e.to_json() for e in gone]
        written = _write(report_path, lambda path: report.report_json(path, impl, rows, results, meta))
    if markdown:
        text = report.format_markdown(rows, impl, summary, meta["provenance"])
        written = _write(markdown, lambda path: report.write_markdown(path, text)) and written
    if not written:
        return 2
    if interrupted:
        return 130
    return 0 if passed else 1


UNPROTECTED = (
    "--isolate none: unprotected, the implementation ran in this process and could change any verdict"
)


def _write(path: Path, write: Any) -> bool:
    try:
        write(path)
    except OSError as exc:  # checked before the run; the disk may still fill up
        print(f"lstm-conformance: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
