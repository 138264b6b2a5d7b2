"""The exec protocol's cost (docs/exec-protocol.md): the C port of tests/c_lstm built as a
protocol-1 command (a process per request) and as-is (protocol 2, one persistent process), each
also with a start-up of 50 ms (-DSTARTUP_MS=50: a port that loads a runtime before it can answer,
which protocol 1 pays per request and protocol 2 once per worker).

One forward request through the adapter, and the C port's whole default run (one round each)::

    python -m pytest benchmarks/test_exec_requests.py --benchmark-columns=median,rounds
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance.run.exec_impl import make_exec_factory

ROOT = Path(__file__).resolve().parent.parent
STARTUP = "-DSTARTUP_MS=50"
BUILDS = {
    "protocol1": ["-DEXEC_V1"],
    "protocol2": [],
    "protocol1-startup50ms": ["-DEXEC_V1", STARTUP],
    "protocol2-startup50ms": [STARTUP],
}


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler: `cc` is not on PATH")
    out = tmp_path_factory.mktemp("c_lstm")
    for name, flags in BUILDS.items():
        source = ROOT / "tests" / "c_lstm" / "lstm.c"
        subprocess.run([cc, "-O2", "-std=c99", *flags, "-o", str(out / name), str(source), "-lm"], check=True)
    return {name: out / name for name in BUILDS}


@pytest.mark.parametrize("build", list(BUILDS))
def test_exec_forward_request(benchmark: Any, binaries: dict[str, Path], build: str) -> None:
    model = make_exec_factory(str(binaries[build]))(input_size=4, hidden_size=5, dtype=np.dtype("float32"))
    x = np.zeros((6, 4, 4), np.float32)
    out, _ = benchmark(model, x)
    assert out.shape == (6, 4, 5)


@pytest.mark.parametrize("build", list(BUILDS))
def test_exec_default_run(benchmark: Any, binaries: dict[str, Path], build: str) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "conformance", "--quiet", "--impl", f"exec:{binaries[build]}"]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)

    proc = benchmark.pedantic(run, rounds=1, iterations=1)
    assert proc.returncode == 0 and "-> PASS" in proc.stdout, proc.stdout[-2000:]
