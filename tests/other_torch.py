"""Fixture sets that simulate another torch: a copy of the repository's fixtures with the torch
version, exception types, dropout masks or values of some cases changed, their hashes updated in
the manifest (so the set is sound, only different). Used by tests/test_torch_diff.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from conformance.oracles import fixtures

Edit = Callable[[dict[str, np.ndarray]], None]


def copy_fixtures(target: Path) -> Path:
    ignore = shutil.ignore_patterns(fixtures.LOCK_FILE, fixtures.TEMP_GLOB)
    shutil.copytree(fixtures.FIXTURES_DIR, target, ignore=ignore)
    return target


def other_torch(
    target: Path,
    torch: str,
    errors: dict[str, str] | None = None,
    edits: dict[str, Edit] | None = None,
) -> Path:
    """The fixtures as torch ``torch`` would have made them: ``errors`` (error case id ->
    exception type) and ``edits`` (case id -> a function changing its arrays in place)."""
    d = copy_fixtures(target)
    manifest = json.loads((d / fixtures.MANIFEST).read_text())
    manifest["versions"]["torch"] = torch
    manifest["errors"].update(errors or {})
    for case_id, edit in (edits or {}).items():
        entry = manifest["cases"][case_id]
        path = d / entry["file"]
        arrays = fixtures.read_npz_bytes(path.read_bytes(), str(path))
        edit(arrays)
        blob = fixtures.npz_bytes(arrays)
        path.write_bytes(blob)
        entry["sha256"] = fixtures.sha256(blob)
        entry["arrays"] = {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()}
    (d / fixtures.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return d


def raises(error: str) -> Edit:
    """A forward case that raises ``error`` instead (an existing "error" array is replaced)."""

    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays["error"] = np.array(error)

    return edit


def shifted(name: str, by: float) -> Edit:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = arrays[name] + np.asarray(by, arrays[name].dtype)

    return edit


def other_masks(arrays: dict[str, np.ndarray]) -> None:
    """Another dropout stream: every keep-mask flipped, and (as a consequence) other outputs."""
    for name in [k for k in arrays if k.startswith("mask_")]:
        arrays[name] = ~arrays[name]
    for name in ("output", "h_n", "c_n"):
        arrays[name] = arrays[name] * np.asarray(0.5, arrays[name].dtype)
