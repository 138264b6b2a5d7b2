"""Golden-fixture handling under damage: `regen --check` checks the files on disk, `regen` and
`regen --check` fail with one line (exit 2) where they cannot run, regen is locked and cleans up
after an interrupted one, and FixtureStore.verify() reports a directory-wide problem once.

Every test works on a copy of fixtures/ in tmp_path. The in-process CLI tests share one real
regeneration from live torch (module-scoped `live_build`); one subprocess test runs a real
`python -m conformance regen --check` end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import cli
from conformance.oracles import fixtures
from conformance.oracles import regen as regen_module
from tests.suite_helpers import ROOT, needs_torch, run_cli

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


def perturb(d: Path, case_id: str, array: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    """Rewrite one array of a sound file (its new hash in the manifest)."""
    manifest = json.loads((d / "manifest.json").read_text())
    entry = manifest["cases"][case_id]
    arrays = fixtures.read_npz_bytes((d / entry["file"]).read_bytes(), "x")
    arrays[array] = change(arrays[array])
    blob = fixtures.npz_bytes(arrays)
    (d / entry["file"]).write_bytes(blob)
    entry["sha256"] = fixtures.sha256(blob)
    (d / "manifest.json").write_text(json.dumps(manifest))


def make_stale(d: Path) -> None:
    """A sound file (its hash in the manifest) that is not what live torch makes."""
    perturb(d, "probe-gate_i", "h_n", lambda h_n: h_n + 1e-6)


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
    "untouched": Damage(untouched, 0, "fixtures match live torch: {n} cases,", 0),
}


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def fx(tmp_path: Path) -> Path:
    """A private copy of the repository's fixtures/ (never the repository's own)."""
    target = tmp_path / "fixtures"
    ignore = shutil.ignore_patterns(fixtures.LOCK_FILE, fixtures.TEMP_GLOB)
    shutil.copytree(fixtures.FIXTURES_DIR, target, ignore=ignore)
    return target


@pytest.fixture(scope="module")
def live_build() -> tuple[dict[str, Any], dict[str, bytes]]:
    """One real regeneration from live torch, shared by every in-process CLI test."""
    pytest.importorskip("torch")
    from conformance.checks.errors import torch_error_types
    from conformance.contract.selection import fixture_cases

    return regen_module.build(fixture_cases(), torch_error_types())


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch, live_build: tuple[dict[str, Any], dict[str, bytes]]) -> list[int]:
    """Serve `live_build` to the CLI instead of regenerating; the list counts the regenerations."""
    calls: list[int] = []

    def cached(cases: Any, error_types: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
        calls.append(1)
        manifest, files = live_build
        return json.loads(json.dumps(manifest)), dict(files)

    monkeypatch.setattr(regen_module, "build", cached)
    return calls


def regen(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["regen", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def problem_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(PROBLEM_PREFIXES)]


def expected_line(damage: Damage, d: Path, kind_prefix: bool = True) -> str:
    """damage.line for directory d; without its MISSING/CORRUPT/... word, as verify() words it."""
    n = len(json.loads((fixtures.FIXTURES_DIR / "manifest.json").read_text())["cases"])
    line = damage.line.format(d=d, n=n)
    for prefix in () if kind_prefix else PROBLEM_PREFIXES:
        line = line.removeprefix(prefix)
    return line


def live_torch() -> str:
    import torch

    return str(torch.__version__)


@pytest.fixture
def held_lock(fx: Path) -> Iterator[Path]:
    """fx's regen lock, held exclusively as a concurrent regen would (flock conflicts between
    open file descriptions, in one process as across processes)."""
    if sys.platform == "win32":
        pytest.skip("no flock on Windows")
    import fcntl

    with open(fx / fixtures.LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield fx


# -- regen --check ---------------------------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("name", list(DAMAGES))
def test_check_names_each_damaged_file_once(
    name: str, fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    damage = DAMAGES[name]
    damage.apply(fx)
    code, out, err = regen(capsys, "--check", "--fixtures", str(fx))
    expected = expected_line(damage, fx)
    assert code == damage.check_exit, out + err
    assert "Traceback" not in out + err
    if damage.check_exit == 2:  # cannot run: one line on stderr, before regenerating anything
        assert out == "" and builds == []
        assert err.count("\n") == 1 and err.startswith(f"lstm-conformance regen: {expected}")
        return
    assert err == ""
    made_by = json.loads((fx / "manifest.json").read_text())["versions"]["torch"]
    assert f"torch: fixtures made by torch {made_by} " in out and f"; live torch {live_torch()}\n" in out
    assert ("torch versions differ" in out) == (made_by != live_torch())
    assert any(line.startswith(expected) for line in out.splitlines()), out
    if damage.check_exit == 1:
        assert len(problem_lines(out)) == 1, out  # the one damaged file, named on one line
        assert out.splitlines()[-1].startswith(f"1 bad fixture file(s) in {fx}")
    else:
        assert problem_lines(out) == []


@needs_torch
def test_check_keeps_the_drift_report_per_array(
    fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    make_stale(fx)
    code, out, _ = regen(capsys, "--check", "--fixtures", str(fx))
    drift = [line for line in out.splitlines() if line.startswith("DRIFT ")]
    assert code == 1
    assert len(drift) == 1 and drift[0].startswith("DRIFT probe-gate_i/h_n: max abs drift 1.000e-06 (beyond")


@needs_torch
def test_rounding_of_another_cpu_is_named_but_only_exact_fails(
    fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    """torch's float32 kernels round differently on another CPU (AVX2 vs AVX-512): one ulp off
    is within the drift tolerance, so --check passes and says so; --exact fails on it."""
    case = "L1-uni-batched-nohx-f32-eval"
    perturb(fx, case, "h_n", lambda h_n: np.nextafter(h_n, np.float32(np.inf)))
    code, out, _ = regen(capsys, "--check", "--fixtures", str(fx))
    assert code == 0 and problem_lines(out) == [], out
    assert "within the drift tolerance" in out.splitlines()[-1] and f"{case}.npz" in out
    code, out, _ = regen(capsys, "--check", "--exact", "--fixtures", str(fx))
    assert code == 1 and f"STALE {fx}/cases/{case}.npz: differs from what live torch makes now" in out
    assert f"DRIFT {case}/h_n: max abs drift" in out and "(within drift tolerance" in out


@needs_torch
def test_check_says_when_the_fixtures_came_from_another_torch(
    fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((fx / "manifest.json").read_text())
    manifest["versions"]["torch"] = "1.0.0"
    (fx / "manifest.json").write_text(json.dumps(manifest))
    code, out, _ = regen(capsys, "--check", "--fixtures", str(fx))
    assert code == 0
    assert "torch: fixtures made by torch 1.0.0 (numpy " in out
    differ = [line for line in out.splitlines() if line.startswith("torch versions differ")]
    assert differ == [
        f"torch versions differ: the fixtures were made by torch 1.0.0, live torch is {live_torch()}; "
        "differences below may come from the version change"
    ]


@needs_torch
@pytest.mark.parametrize("name", ["flipped-byte", "manifest-not-json"])
def test_check_subprocess_exit_code_and_no_traceback(name: str, fx: Path) -> None:
    """End to end, with a real regeneration: `python -m conformance regen --check --fixtures COPY`."""
    damage = DAMAGES[name]
    damage.apply(fx)
    proc = run_cli("regen", "--check", "--fixtures", str(fx))
    assert proc.returncode == damage.check_exit, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    expected = expected_line(damage, fx)
    if damage.check_exit == 2:
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr
    else:
        assert [line for line in problem_lines(proc.stdout) if line.startswith(expected)] == problem_lines(
            proc.stdout
        )
        assert len(problem_lines(proc.stdout)) == 1


# -- regen -----------------------------------------------------------------------------------------


@needs_torch
def test_regen_removes_temp_files_left_by_an_interrupted_regen(
    fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    leftovers = [fx / "cases" / ".x.npz.tmp", fx / ".manifest.jsonab12cd.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    code, out, _ = regen(capsys, "--check", "--fixtures", str(fx))
    assert code == 0 and all(f"note: {p} is a temp file" in out for p in leftovers)  # noted, not fatal
    code, out, err = regen(capsys, "--fixtures", str(fx))
    assert (code, err) == (0, "")
    assert not any(p.exists() for p in leftovers)
    assert "removed 2 temp file(s) left by an interrupted regen" in out
    assert fixtures.FixtureStore(fx).verify() == []


@needs_torch
def test_regen_rewrites_an_unreadable_manifest(
    fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    """regen is the repair every error message points to, so a broken manifest does not stop it."""
    break_manifest(fx)
    code, out, err = regen(capsys, "--fixtures", str(fx))
    assert (code, err) == (0, "")
    assert "the previous manifest.json was unusable (replaced)" in out
    assert regen(capsys, "--check", "--fixtures", str(fx))[0] == 0


@needs_torch
def test_regen_creates_a_new_directory_and_writes_what_check_accepts(
    tmp_path: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new" / "fixtures"
    code, out, _ = regen(capsys, "--fixtures", str(target))
    assert code == 0 and "no previous fixtures" in out and f"torch {live_torch()} made these fixtures" in out
    assert regen(capsys, "--check", "--fixtures", str(target))[0] == 0


@needs_torch
def test_lock_file_is_neither_extra_nor_committed(
    fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert regen(capsys, "--fixtures", str(fx))[0] == 0
    assert (fx / fixtures.LOCK_FILE).is_file()
    assert fixtures.FixtureStore(fx).verify() == []
    code, out, _ = regen(capsys, "--check", "--fixtures", str(fx))
    assert code == 0 and fixtures.LOCK_FILE not in out
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed")
    ignored = subprocess.run([git, "check-ignore", "-q", f"fixtures/{fixtures.LOCK_FILE}"], cwd=ROOT)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0, f"fixtures/{fixtures.LOCK_FILE} is not in .gitignore"


@needs_torch
@pytest.mark.parametrize("check", [False, True], ids=["regen", "regen-check"])
def test_held_lock_fails_at_once(
    check: bool, held_lock: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    before = (held_lock / "manifest.json").read_bytes()
    code, out, err = regen(capsys, *(["--check"] if check else []), "--fixtures", str(held_lock))
    assert code == 2 and out == "" and builds == []  # failed before regenerating anything
    assert err.count("\n") == 1 and f"is using {held_lock} right now" in err and "locked" in err
    assert (held_lock / "manifest.json").read_bytes() == before


@needs_torch
def test_regen_into_an_unwritable_directory(
    fx: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    folders = [fx / "cases", fx]
    for folder in folders:
        folder.chmod(0o555)
    try:
        try:  # root (and some filesystems) ignore the mode: find out by trying
            (fx / "probe").write_bytes(b"")
        except OSError:
            pass
        else:
            pytest.skip(f"chmod does not stop writes here (euid {os.geteuid()})")
        code, out, err = regen(capsys, "--fixtures", str(fx))
    finally:
        for folder in reversed(folders):
            folder.chmod(0o755)
    assert code == 2 and out == "" and builds == []
    assert err.count("\n") == 1 and err.startswith("lstm-conformance regen: cannot write fixtures directory")


@needs_torch
def test_regen_where_the_directory_cannot_be_created(
    tmp_path: Path, builds: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Unwritable even as root: the parent is a file."""
    (tmp_path / "a-file").write_text("")
    code, out, err = regen(capsys, "--fixtures", str(tmp_path / "a-file" / "fixtures"))
    assert code == 2 and out == "" and builds == []
    assert err.count("\n") == 1 and "cannot create fixtures directory" in err and "Traceback" not in err


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
    from conformance.contract.cases import all_cases

    flip_byte(fx)
    case = next(c for c in all_cases() if c.id == "probe-gate_f")
    with pytest.raises(fixtures.FixtureError, match=r"probe-gate_f\.npz: sha256 does not match"):
        fixtures.FixtureStore(fx).load(case)
    other = next(c for c in all_cases() if c.id == "probe-gate_i")
    assert isinstance(fixtures.FixtureStore(fx).load(other)["h_n"], np.ndarray)


def test_verify_needs_no_torch(fx: Path) -> None:
    flip_byte(fx)
    code = (
        "import sys; sys.modules['torch'] = None; from conformance.oracles.fixtures import FixtureStore; "
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


def test_a_load_owns_its_arrays_and_a_corrupt_file_is_not_served_from_memory(fx: Path) -> None:
    from conformance.contract.cases import all_cases

    case = next(c for c in all_cases() if c.id == "probe-gate_f")
    path = fx / "cases" / "probe-gate_f.npz"
    with np.load(path) as z:
        on_disk = {name: z[name] for name in z.files}
    first = fixtures.FixtureStore(fx).load(case)
    for value in first.values():
        value[...] = 0  # an implementation writing into what it was given
    second = fixtures.FixtureStore(fx).load(case)
    assert second.keys() == on_disk.keys()
    for name, value in on_disk.items():
        np.testing.assert_array_equal(second[name], value, err_msg=name)
    flip_byte(fx)  # after both loads: the bytes are checked again, not remembered
    with pytest.raises(fixtures.FixtureError, match=r"probe-gate_f\.npz: sha256 does not match"):
        fixtures.FixtureStore(fx).load(case)
