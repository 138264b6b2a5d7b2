"""Which software judged a run: printed in the console header and stored in the JSON and
Markdown reports, so a result can be traced to the torch that made the fixtures, the torch
that ran live, and the implementation's own version."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np


def implementation_version(spec: str, factory: Any = None) -> str:
    """The factory's ``conformance_version`` (shipped adapters name their libraries' versions),
    else ``__version__`` of the implementation's top-level package, else its distribution's
    version, else "unknown" (called where the implementation is imported: in a worker)."""
    declared = getattr(factory, "conformance_version", None)
    if declared:
        return str(declared)
    if spec.startswith("exec:"):  # the command's capabilities answer gives conformance_version
        return "unknown"
    top = spec.split(":")[0].split(".")[0]
    version = getattr(sys.modules.get(top), "__version__", None)
    if version:
        return str(version)
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def live_torch() -> str:
    """The installed torch's full ``torch.__version__`` ("2.10.0+cu128": a CUDA wheel's
    distribution version lacks the "+cu128"), read without importing torch; "absent" if none."""
    if "torch" in sys.modules:  # imported already (None: its import is blocked)
        module = sys.modules["torch"]
        return "absent" if module is None else str(getattr(module, "__version__", "unknown"))
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "absent"
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        text = ""
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    if found:
        return found.group(1)
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def collect(spec: str, impl_version: str, fixtures: dict[str, str] | None, argv: list[str]) -> dict[str, Any]:
    module = spec if spec.startswith("exec:") else spec.split(":")[0]  # exec: the command itself
    return {
        "torch_live": live_torch(),
        "torch_fixtures": (fixtures or {}).get("torch", "no fixtures"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "impl_module": module,
        "impl_version": impl_version,
        "command": " ".join(["lstm-conformance", *argv]),
    }


def header_lines(info: dict[str, Any]) -> list[str]:
    lines = [
        f"  implementation: {info['impl_module']} {info['impl_version']}",
        f"  torch (live): {info['torch_live']}; torch that made the fixtures: {info['torch_fixtures']}",
        f"  numpy {info['numpy']}, Python {info['python']}, {info['platform']}",
        f"  command: {info['command']}",
    ]
    live, made = info["torch_live"], info["torch_fixtures"]
    if live != "absent" and made != "no fixtures" and live.split("+")[0] != made.split("+")[0]:
        lines.append(
            f"  note: live torch {live} differs from the fixtures' torch {made} "
            "(`lstm-conformance torch-diff` lists what changed in nn.LSTM)"
        )
    return lines
