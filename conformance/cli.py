"""``lstm-conformance``: run the conformance suite and print the conformance table.

lstm-conformance [--impl MODULE:ATTR|torch] [--full] [--case PATTERN]
                 [--oracle both|fixtures|torch] [--report PATH.json]
lstm-conformance regen [--check]
lstm-conformance export DIR [--fixtures DIR]
lstm-conformance matrix [--impls NAME,...]   (docs/compatibility.md)
lstm-conformance torch-diff [--against DIR]   (docs/torch-versions.md)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import provenance, report, runner
from .disagreements import flag_notes, oracle_labels, reconcile
from .fixtures import FIXTURES_DIR
from .impls import DEFAULT_IMPL, Impl, load_impl
from .oracles import make_oracles, witness_of
from .progress import Progress
from .provenance import implementation_version
from .regen import main_regen
from .rows import suite_checks
from .workers import default_jobs


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
        help="worker processes running the implementation (default: the machine's cores)",
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
    from .torch_oracle import torch_available

    reason = torch_available()
    if reason:
        print(f"lstm-conformance regen needs torch: {reason}", file=sys.stderr)
        return 2
    return main_regen(args.check, args.fixtures, exact=args.exact)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["regen"]:
        return _regen(argv[1:])
    if argv[:1] == ["export"]:  # every default case as exec-protocol files (export.py)
        from .export import main_export

        return main_export(argv[1:])
    if argv[:1] == ["torch-diff"]:  # nn.LSTM's changes between the fixtures' torch and live torch
        from .torch_diff import main_torch_diff

        return main_torch_diff(argv[1:])
    if argv[:1] == ["matrix"]:  # every installed adapter, one column each (matrix.py)
        from .matrix import main_matrix

        return main_matrix(argv[1:])
    args = _parser().parse_args(argv)
    if args.list:
        from .torch_oracle import torch_available

        cases = runner.select_cases(args.full, args.case, torch_available() is None)
        for case in cases:
            print(f"{case.id:55} {' '.join(case.features())}")
        print(f"{len(cases)} cases")
        return 0
    return run(args, argv)


DEFAULT_TIMEOUT_S = 600.0  # per job; a JAX port recompiling for every new model stays well inside


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


def _in_process(args: argparse.Namespace, oracles: list[Any], progress_on: bool) -> Outcome:
    """--isolate none: the implementation runs in this process (no protection from crashes)."""
    impl = load_impl(args.impl)
    impl.rerun_extra = _rerun_extra(args)
    jobs = runner.jobs_for(impl, oracles, full=args.full, pattern=args.case)
    progress = Progress(len(jobs), enabled=progress_on)
    results: list[runner.Result] = []
    try:
        for job in jobs:
            done = job.run()
            results += done
            progress.update(any(r.status == "fail" for r in done))
    except KeyboardInterrupt:
        return Outcome(results, impl, "", interrupted=True)
    finally:
        progress.close()
    return Outcome(results, impl, implementation_version(args.impl, impl.factory))


def _in_workers(args: argparse.Namespace, oracles: list[Any], progress_on: bool) -> Outcome:
    from .workers import Pool

    extra = _rerun_extra(args)
    pool = Pool(args.impl, extra, args.jobs or default_jobs(), args.timeout, fresh=args.isolate == "case")
    info, problem = pool.start()
    if info is None:
        failure = runner.Result("import", "import", "-", ("whole_sequence",), "fail", message=problem)
        return Outcome([failure], Impl(args.impl, _not_loaded, rerun_extra=extra), "unknown")
    impl = Impl(args.impl, _not_loaded, info.unsupported, None, info.tolerances, extra)
    jobs = runner.jobs_for(impl, oracles, full=args.full, pattern=args.case)
    progress = Progress(len(jobs), enabled=progress_on)
    run = pool.run(jobs, lambda job: job.prepare(), lambda job, done: progress.update(_failed(done)))
    progress.close()
    if not run.interrupted and args.isolate == "shared":
        _recheck_alone(args, extra, jobs, run.results)
    return Outcome(run.results, impl, info.version, run.interrupted)


def _failed(results: list[runner.Result]) -> bool:
    return any(r.status == "fail" for r in results)


RECHECK_AT_MOST = 20  # failing jobs rerun alone to tell state leaks from real failures


def _recheck_alone(
    args: argparse.Namespace, extra: str, jobs: list[runner.Job], results: list[runner.Result]
) -> None:
    """A job that failed in a shared worker is rerun in a fresh one; if it passes there, its
    failure depends on what ran before it in the same process: say so."""
    from .workers import Pool

    # a job that hung is not rerun: that would only wait for the timeout again
    hung = {r.case for r in results if r.check == "crash" and "timed out" in r.message}
    failing_ids = {r.case for r in results if r.status == "fail"} - hung
    failing = [j for j in jobs if j.id in failing_ids or f"{j.task.suite}:*" in failing_ids]
    if not failing or len(failing) > RECHECK_AT_MOST:
        return
    pool = Pool(args.impl, extra, args.jobs or default_jobs(), args.timeout, fresh=True)
    if pool.start()[0] is None:
        return
    alone = pool.run(failing, lambda job: job.prepare(), lambda job, done: None)
    passed_alone = {j.id for j in failing} - {r.case for r in alone.results if r.status == "fail"}
    for r in results:
        if r.status == "fail" and r.case in passed_alone:
            r.message += (
                "\n    passes when run alone in a fresh process (--isolate case): this failure depends on "
                "what ran before it in the same process (state leaking between calls)"
            )


def _not_loaded(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the implementation runs in worker processes, not in the parent")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    t0 = time.perf_counter()
    if args.impl == "torch":
        from .torch_oracle import torch_available

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
    selected = len(
        runner.select_cases(
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
    print(
        f"lstm-conformance: {args.impl} ({selected} cases selected{'' if args.case else ' by default'})",
        flush=True,
    )
    progress_on = not args.quiet
    outcome = (_in_process if args.isolate == "none" else _in_workers)(args, oracles, progress_on)
    results = ([fixture_problem] if fixture_problem else []) + outcome.results
    # oracles that disagree (another torch than the fixtures'): flagged, not failed (disagreements.py)
    disagreeing = reconcile(results, witness_of(oracles), args.impl)
    info = provenance.collect(args.impl, outcome.impl_version, fixtures_made, argv)
    for line in provenance.header_lines(info):
        print(line)
    for o in oracles:
        print(f"  oracle {o.name}: " + (f"skipped ({o.skip_reason})" if o.skip_reason else "on"))
    return _report(args, argv, outcome, results, info, oracles, time.perf_counter() - t0, disagreeing)


def _report(
    args: argparse.Namespace,
    argv: list[str],
    outcome: Outcome,
    results: list[runner.Result],
    info: dict[str, Any],
    oracles: list[Any],
    elapsed: float,
    disagreeing: list[str] | None = None,
) -> int:
    """The table, the failures, the verdict; the Markdown and JSON reports, always."""
    impl = outcome.impl
    rows = report.table(results, impl)
    flag_notes(rows, results)
    print()
    print(report.format_table(rows))
    failures = list(report.iter_failures(results))
    labels = oracle_labels(info["torch_fixtures"], info["torch_live"])
    for r in failures[: args.max_failures]:
        vs = labels.get(r.oracle, r.oracle)
        print(f"\nFAIL {r.check} [{r.case}] vs {vs}\n    {r.message}\n  rerun: {r.rerun}")
    if len(failures) > args.max_failures:
        print(f"\n... and {len(failures) - args.max_failures} more failures (see --report)")
    n = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    suite = {check.name for check in suite_checks()}
    n_cases = len({r.case for r in results if r.check not in suite and not r.case.startswith("errors:")})
    n_error_cases = len({r.case for r in results if r.case.startswith("errors:")})
    verdict = "INTERRUPTED (partial results)" if outcome.interrupted else report.verdict(results, impl)
    summary = (
        f"{len(results)} checks over {n_cases} cases and {n_error_cases} error cases: {n['pass']} passed, {n['fail']} failed, "
        f"{n['skip']} skipped in {elapsed:.1f} s -> {verdict}"
    )
    if disagreeing:
        print(
            "\nwhere the oracles disagree (a change in torch, not a finding about the implementation; "
            "`lstm-conformance torch-diff` groups them by cause):"
        )
        print("\n".join("  " + line for line in disagreeing))
    print("\n" + summary)
    if args.markdown:
        args.markdown.write_text(report.format_markdown(rows, impl, summary, info))
    if args.report:
        meta = {
            "passed": not failures and not outcome.interrupted,
            "interrupted": outcome.interrupted,
            "counts": n,
            "elapsed_s": round(elapsed, 3),
            "oracles": {o.name: o.skip_reason or "on" for o in oracles},
            "provenance": info,
            "argv": argv,
            "oracle_disagreements": disagreeing or [],
        }
        report.report_json(args.report, impl, rows, results, meta)
    if outcome.interrupted:
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
