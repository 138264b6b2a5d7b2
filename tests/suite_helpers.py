"""Shared by the conformance self-tests: drive the real CLI as a user would, with or without torch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

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


def run_cli(*args: str, block_torch: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", BLOCK_TORCH] if block_torch else [sys.executable, "-m", "conformance"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*cmd, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def ctrl_c_on() -> None:
    """Popen's preexec_fn for a run a test interrupts: SIGINT raises KeyboardInterrupt in the
    child, also where the tests run with SIGINT ignored (a background job), which Python would
    otherwise pass on to it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
