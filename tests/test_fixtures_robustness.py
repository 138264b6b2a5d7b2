"""Golden-fixture handling under damage: FixtureStore.verify() checks a whole fixtures directory
once and reports a directory-wide problem (manifest, directory) once, not once per case.

Every test works on a copy of fixtures/ in tmp_path. The damage table also records what
`regen --check` must say about each damage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conformance import fixtures
from tests.suite_helpers import ROOT

PROBLEM_PREFIXES = ("MISSING ", "CORRUPT ", "EXTRA ", "STALE ")

# -- damage, declared once -------------------------------------------------------------------------


def flip_byte(d: Path) -> None:
    victim = d / "cases" / "probe-gate_f.npz"
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    victim.write_bytes(bytes(blob))


def delete_file(d: Path) -> None:
    (d / "cases" / "edge-batch0.npz").unlink()


def add_extra(d: Path) -> None:
    shutil.copy(d / "cases" / "probe-gate_f.npz", d / "cases" / "not-a-case.npz")


def make_stale(d: Path) -> None:
    """A sound file (its hash in the manifest) that is not what live torch makes."""
    manifest = json.loads((d / "manifest.json").read_text())
    entry = manifest["cases"]["probe-gate_i"]
    arrays = fixtures.read_npz_bytes((d / entry["file"]).read_bytes(), "x")
    arrays["h_n"] = arrays["h_n"] + 1e-6
    blob = fixtures.npz_bytes(arrays)
    (d / entry["file"]).write_bytes(blob)
    entry["sha256"] = fixtures.sha256(blob)
    (d / "manifest.json").write_text(json.dumps(manifest))


def break_manifest(d: Path) -> None:
    (d / "manifest.json").write_text('{"format": 1, "cases": {')


def escape_directory(d: Path) -> None:
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["cases"]["probe-gate_f"]["file"] = "../../outside.npz"
    (d / "manifest.json").write_text(json.dumps(manifest))


def empty_directory(d: Path) -> None:
    shutil.rmtree(d)
    d.mkdir()


def missing_directory(d: Path) -> None:
    shutil.rmtree(d)


def untouched(d: Path) -> None:
    pass


@dataclass(frozen=True)
class Damage:
    apply: Callable[[Path], None]
    check_exit: int  # of `regen --check`
    line: str  # what the report line naming the problem holds
    verify_lines: int  # FixtureStore.verify() problems (0: only live torch can tell)


DAMAGES = {
    "flipped-byte": Damage(flip_byte, 1, "CORRUPT {d}/cases/probe-gate_f.npz: sha256 does not match", 1),
    "deleted-npz": Damage(delete_file, 1, "MISSING {d}/cases/edge-batch0.npz: missing", 1),
    "extra-npz": Damage(add_extra, 1, "EXTRA {d}/cases/not-a-case.npz: not listed in manifest.json", 1),
    "stale-npz": Damage(make_stale, 1, "STALE {d}/cases/probe-gate_i.npz: differs from what live torch", 0),
    "manifest-not-json": Damage(break_manifest, 2, "{d}/manifest.json: unreadable manifest: not JSON", 1),
    "entry-escapes-dir": Damage(escape_directory, 2, "{d}/manifest.json: malformed manifest", 1),
    "empty-directory": Damage(empty_directory, 2, "{d}: fixtures directory is empty", 1),
    "missing-directory": Damage(missing_directory, 2, "{d}: fixtures directory does not exist", 1),
    "untouched": Damage(untouched, 0, "fixtures match live torch: {n} cases, byte for byte", 0),
}


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def fx(tmp_path: Path) -> Path:
    """A private copy of the repository's fixtures/ (never the repository's own)."""
    target = tmp_path / "fixtures"
    shutil.copytree(fixtures.FIXTURES_DIR, target)
    return target


def expected_line(damage: Damage, d: Path, kind_prefix: bool = True) -> str:
    """damage.line for directory d; without its MISSING/CORRUPT/... word, as verify() words it."""
    n = len(json.loads((fixtures.FIXTURES_DIR / "manifest.json").read_text())["cases"])
    line = damage.line.format(d=d, n=n)
    for prefix in () if kind_prefix else PROBLEM_PREFIXES:
        line = line.removeprefix(prefix)
    return line


# -- FixtureStore.verify / provenance (no torch needed) --------------------------------------------


@pytest.mark.parametrize("name", list(DAMAGES))
def test_verify_reports_each_problem_once(name: str, fx: Path) -> None:
    damage = DAMAGES[name]
    damage.apply(fx)
    problems = fixtures.FixtureStore(fx).verify()
    assert len(problems) == damage.verify_lines, problems
    if damage.verify_lines:  # worded as regen --check words it
        assert problems[0].startswith(expected_line(damage, fx, kind_prefix=False)), problems


def test_verify_of_the_repository_fixtures_is_clean() -> None:
    assert fixtures.FixtureStore().verify() == []


def test_provenance_is_the_manifest_versions(fx: Path) -> None:
    manifest = json.loads((fx / "manifest.json").read_text())
    found = fixtures.FixtureStore(fx).provenance()
    assert found == {**manifest["versions"], "generated_by": "lstm-conformance regen"}
    assert {"torch", "numpy", "python"} <= set(found)
    break_manifest(fx)
    with pytest.raises(fixtures.FixtureError, match="not JSON"):
        fixtures.FixtureStore(fx).provenance()


def test_load_still_names_a_corrupt_file(fx: Path) -> None:
    from conformance.cases import all_cases

    flip_byte(fx)
    case = next(c for c in all_cases() if c.id == "probe-gate_f")
    with pytest.raises(fixtures.FixtureError, match=r"probe-gate_f\.npz: sha256 does not match"):
        fixtures.FixtureStore(fx).load(case)
    other = next(c for c in all_cases() if c.id == "probe-gate_i")
    assert isinstance(fixtures.FixtureStore(fx).load(other)["h_n"], np.ndarray)


def test_verify_needs_no_torch(fx: Path) -> None:
    flip_byte(fx)
    code = (
        "import sys; sys.modules['torch'] = None; from conformance.fixtures import FixtureStore; "
        "print('\\n'.join(FixtureStore(sys.argv[1]).verify()))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(fx)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{fx}/cases/probe-gate_f.npz: sha256 does not match")
