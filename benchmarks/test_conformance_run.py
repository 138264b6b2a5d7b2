"""The default conformance run of lstm_ref, timed with --jobs 1 and --jobs 2 (the worker pool's
speed-up; the target is under 10 s on 2 cores).  One round each: a run is seconds long.

    python -m pytest benchmarks/test_conformance_run.py --benchmark-columns=median
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("jobs", [1, 2])
def test_default_run(benchmark: Any, jobs: int) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "conformance", "--quiet", "--jobs", str(jobs)]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)

    proc = benchmark.pedantic(run, rounds=1, iterations=1)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "-> PASS" in proc.stdout
