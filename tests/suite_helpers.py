"""Shared by the conformance self-tests: drive the real CLI as a user would, with or without torch,
or the same run in this process (its table and results)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.checks.rows import case_checks
from conformance.oracles.sources import make_oracles
from conformance.run import report, runner
from conformance.run.impls import load_impl

ROOT = Path(__file__).resolve().parent.parent
# Runs the CLI with `import torch` failing, as on a machine without torch.
BLOCK_TORCH = (
    "import sys; sys.modules['torch'] = None; from conformance.cli import main; sys.exit(main(sys.argv[1:]))"
)


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


needs_torch = pytest.mark.skipif(not has_torch(), reason="torch not installed")


def run_cli(*args: str, block_torch: bool = False, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess from the checkout; ``env_extra``: environment variables to set."""
    cmd = [sys.executable, "-c", BLOCK_TORCH] if block_torch else [sys.executable, "-m", "conformance"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    return subprocess.run([*cmd, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def ctrl_c_on() -> None:
    """Popen's preexec_fn for a run a test interrupts: SIGINT raises KeyboardInterrupt in the
    child, also where the tests run with SIGINT ignored (a background job), which Python would
    otherwise pass on to it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_in_process(
    spec: str, oracle: str = "fixtures", pattern: str | None = None, rows: tuple[str, ...] = ()
) -> tuple[dict[str, report.TableRow], list[runner.Result]]:
    """A run's table (by row) and results, here; with ``rows``, only the jobs holding a check
    that counts towards one of them run, which leaves those rows' verdicts exactly what the
    whole run gives them."""
    impl = load_impl(spec)
    jobs = runner.jobs_for(impl, make_oracles(oracle), pattern=pattern)
    if rows:
        jobs = [job for job in jobs if set(_rows_of(job)) & set(rows)]
    results = runner.run_all(jobs)
    return {r.feature: r for r in report.table(results, impl)}, results


def _rows_of(job: runner.Job) -> tuple[str, ...]:
    case = job.task.case
    if case is None:
        return job.task.rows
    return tuple(row for check in case_checks() for row in check.counts_towards(case))
