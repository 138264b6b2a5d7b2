"""``lstm-conformance``: run the conformance suite and print the conformance table.

lstm-conformance [--impl MODULE:ATTR|torch] [--full] [--case PATTERN]
                 [--oracle both|fixtures|torch] [--report PATH.json]
lstm-conformance regen [--check]
lstm-conformance export DIR [--fixtures DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import report, runner
from .fixtures import FIXTURES_DIR, main_regen
from .impls import DEFAULT_IMPL, load_impl
from .oracles import make_oracles


def _parser() -> argparse.ArgumentParser:
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
    return p


def _regen(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lstm-conformance regen",
        description="Rewrite fixtures/ from live torch (one regen of a directory at a time; temp "
        "files an interrupted regen left are removed). --check regenerates in memory and compares "
        "every file on disk: exit 1 naming each missing, corrupt, extra or stale file, with the drift "
        "per array. Exit 2, with one line on stderr, when it cannot run at all.",
    )
    p.add_argument("--check", action="store_true", help="compare, write nothing")
    p.add_argument(
        "--fixtures", type=Path, default=FIXTURES_DIR, help="fixtures directory (default: %(default)s)"
    )
    args = p.parse_args(argv)
    from .torch_oracle import torch_available

    reason = torch_available()
    if reason:
        print(f"lstm-conformance regen needs torch: {reason}", file=sys.stderr)
        return 2
    return main_regen(args.check, args.fixtures)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["regen"]:
        return _regen(argv[1:])
    if argv[:1] == ["export"]:  # every default case as exec-protocol files (export.py)
        from .export import main_export

        return main_export(argv[1:])
    args = _parser().parse_args(argv)
    if args.list:
        from .torch_oracle import torch_available

        cases = runner.select_cases(args.full, args.case, torch_available() is None)
        for case in cases:
            print(f"{case.id:55} {' '.join(case.features())}")
        print(f"{len(cases)} cases")
        return 0
    t0 = time.perf_counter()
    impl = load_impl(args.impl)
    oracles = make_oracles(args.oracle, args.fixtures)
    jobs = runner.jobs_for(impl, oracles, full=args.full, pattern=args.case)
    if not jobs:
        print(f"no case matches --case {args.case!r}", file=sys.stderr)
        return 2
    results = runner.run_all(jobs)
    elapsed = time.perf_counter() - t0
    rows = report.table(results, impl)
    print(f"lstm-conformance: {impl.spec}")
    for o in oracles:
        print(f"  oracle {o.name}: " + (f"skipped ({o.skip_reason})" if o.skip_reason else "on"))
    print()
    print(report.format_table(rows))
    failures = list(report.iter_failures(results))
    for r in failures[: args.max_failures]:
        print(f"\nFAIL {r.check} [{r.case}] vs {r.oracle}\n    {r.message}\n  rerun: {r.rerun}")
    if len(failures) > args.max_failures:
        print(f"\n... and {len(failures) - args.max_failures} more failures (see --report)")
    n = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    n_cases = len({r.case for r in results if not r.case.startswith("errors:")})
    n_error_cases = len({r.case for r in results if r.case.startswith("errors:")})
    summary = (
        f"{len(results)} checks over {n_cases} cases and {n_error_cases} error cases: {n['pass']} passed, {n['fail']} failed, "
        f"{n['skip']} skipped in {elapsed:.1f} s -> {report.verdict(results, impl)}"
    )
    print("\n" + summary)
    if args.markdown:
        args.markdown.write_text(report.format_markdown(rows, impl, summary))
    if args.report:
        meta = {
            "passed": not failures,
            "counts": n,
            "elapsed_s": round(elapsed, 3),
            "oracles": {o.name: o.skip_reason or "on" for o in oracles},
            "argv": argv,
        }
        report.report_json(args.report, impl, rows, results, meta)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
