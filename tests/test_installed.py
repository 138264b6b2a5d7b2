"""The suite as a new user gets it: built as `python -m build` builds it (an sdist, then a wheel
from the sdist), installed into a fresh virtual environment in a temporary directory outside the
checkout, and run from there, with torch absent and then present, on an implementation that
lives only in that directory (tests/installed_user/tinylstm.py, an independent NumPy LSTM).

One virtual environment serves the module, in file order: the torch-free tests run before the
fixture that installs torch (each checks which it has), and the editable-install test comes last.
About 1.5 to 2 minutes (machine load), most of it building, installing and running the suite four
times; torch is this interpreter's, linked into the venv (see _link_from_here).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.suite_helpers import ROOT

USER_FILES = Path(__file__).parent / "installed_user"
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".ci-venv", ".nox", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
    ".hypothesis", ".benchmarks", "bench-results", ".regen.lock",
)  # fmt: skip
TORCH = "torch==2.13.0"  # the ci extra's pin (never an unpinned torch: 5 GB)

# The one-file setup the README shows, as a user would save it in their own tests.
USER_TEST_FILE = """\
from conformance.pytest_plugin import conformance_suite

test_tiny_lstm = conformance_suite("tinylstm:TinyLSTM")
"""


@dataclass
class Installed:
    base: Path
    src: Path  # the copy of the checkout that was built
    venv: Path
    user: Path  # the user's project: cwd of every run, outside the checkout
    wheel: Path
    sdist: Path
    built_with: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LSTM_CONFORMANCE_FIXTURES")
            and not k.startswith("PYTEST_")
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        return {**env, **extra}

    def run(self, *cmd: str | Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess[str]:
        if "pytest" in map(str, cmd[:3]):
            # no bytecode from pytest: its assert-rewritten copies of the installed modules
            # (*-pytest-*.pyc) outlive pip's uninstall of the wheel, and the directories left
            # would shadow the editable install as a namespace package (test_editable_install)
            env = {"PYTHONDONTWRITEBYTECODE": "1", **env}
        return subprocess.run(
            [str(c) for c in cmd],
            cwd=self.user,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pip(self, *args: str | Path) -> None:
        """pip install into the venv: this interpreter's pip, run for the venv's Python (--python),
        so the venv is made without a pip of its own (ensurepip costs seconds)."""
        pip = (sys.executable, "-m", "pip", "--python", self.python)
        proc = self.run(*pip, "install", "-q", "--no-compile", *args, timeout=600)
        assert proc.returncode == 0, f"pip install {args} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"


def _ok(proc: subprocess.CompletedProcess[str], rc: int = 0) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == rc, f"exit {proc.returncode}, expected {rc}: {proc.args}\n{out[-4000:]}"
    return out


def _build(src: Path, dist: Path) -> str:
    """`python -m build` (isolated, as a user does: the ci extra has build); where build or its
    build requirements cannot be had, the same two steps without isolation, with this
    interpreter's setuptools."""
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 0:
        return "python -m build"
    logs = proc.stdout[-1000:] + proc.stderr[-2000:]
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir()
    code = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", code, dist], cwd=src, capture_output=True, text=True)
    assert proc.returncode == 0, (
        f"python -m build failed:\n{logs}\nand so did build_sdist:\n{proc.stderr[-3000:]}"
    )
    sdist = dist / proc.stdout.split()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(dist / "unpacked", filter="data")
    (unpacked,) = (dist / "unpacked").iterdir()
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        dist,
        unpacked,
    ]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip wheel --no-build-isolation failed:\n{proc.stderr[-3000:]}"
    return "sdist, then pip wheel --no-build-isolation (python -m build could not run)"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    assert not base.resolve().is_relative_to(ROOT.resolve())
    src, venv, dist, user = base / "src", base / "venv", base / "dist", base / "user"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    built_with = _build(src, dist)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    user.mkdir()
    shutil.copy(USER_FILES / "tinylstm.py", user)
    (user / "test_my_lstm.py").write_text(USER_TEST_FILE)
    inst = Installed(base, src, venv, user, wheel, sdist, built_with)
    inst.pip(wheel, "pytest")  # numpy comes as the wheel's dependency
    return inst


def _requirement_closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The distributions installed here that ``names`` are, and all they require."""
    todo, found = list(names), {}
    while todo:
        dist = metadata.distribution(todo.pop())
        key = canonicalize_name(dist.metadata["Name"])
        if key in found:
            continue
        found[key] = dist
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(found.values())


def _link_from_here(inst: Installed, names: tuple[str, ...]) -> None:
    """Install ``names`` (and their requirements) into the venv as this interpreter has them:
    their files symlinked into its site-packages, dist-info included.  The same files `pip
    install` would unpack, without unpacking torch's 700 MB again and byte-compiling it on first
    import (about 30 s of the module's time)."""
    code = (
        "import sysconfig, importlib.metadata as m; print(sysconfig.get_paths()['purelib']); "
        "print(*(d.metadata['Name'] for d in m.distributions()))"
    )
    site_line, names_line = _ok(inst.run(inst.python, "-c", code)).strip().splitlines()
    site, has = Path(site_line), {canonicalize_name(n) for n in names_line.split()}
    for dist in _requirement_closure(names):
        if canonicalize_name(dist.metadata["Name"]) in has:
            continue  # the venv has its own (numpy, from the wheel's dependencies)
        tops = {f.parts[0] for f in dist.files or () if f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            (site / top).symlink_to(Path(str(dist.locate_file(top))))


@pytest.fixture(scope="module")
def with_torch(installed: Installed) -> Installed:
    try:
        pinned = metadata.version("torch").split("+")[0] == TORCH.split("==")[1]
        metadata.version("hypothesis")
    except metadata.PackageNotFoundError:
        pinned = False
    if pinned:
        _link_from_here(installed, ("torch", "hypothesis"))
    else:  # this interpreter has another torch (or none): the pinned one, as a user installs it
        installed.pip(TORCH, "hypothesis")
    return installed


def _fixture_files() -> dict[str, bytes]:
    root = ROOT / "fixtures"
    manifest = json.loads((root / "manifest.json").read_text())
    files = {"manifest.json": (root / "manifest.json").read_bytes()}
    for entry in manifest["cases"].values():
        files[entry["file"]] = (root / entry["file"]).read_bytes()
        assert hashlib.sha256(files[entry["file"]]).hexdigest() == entry["sha256"]
    return files


def test_wheel_and_sdist_carry_the_fixtures_and_every_module(installed: Installed) -> None:
    fixtures = _fixture_files()
    assert len(fixtures) > 60
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        for rel, data in fixtures.items():
            assert whl.read(f"conformance/_golden/{rel}") == data, rel
        assert not [n for n in names if n.startswith("fixtures/")], "fixtures/ must not be a top-level name"
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "[pytest11]\nlstm_conformance = conformance.pytest_plugin" in whl.read(entry_points).decode()
    sources = {
        p.relative_to(installed.src).as_posix()
        for d in ("lstm_ref", "conformance")
        for p in (installed.src / d).rglob("*.py")
    }
    missing = sorted(sources - names)
    assert not missing, f"not in the wheel (add their packages to [tool.setuptools] packages): {missing}"
    assert {"conformance/py.typed", "lstm_ref/py.typed"} <= names
    with tarfile.open(installed.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        for rel, data in fixtures.items():
            member = sdist.extractfile(f"{top}/fixtures/{rel}")
            assert member is not None and member.read() == data, rel
    print(
        f"built with {installed.built_with}: wheel {installed.wheel.stat().st_size} B, sdist {installed.sdist.stat().st_size} B"
    )


def test_the_installed_package_finds_its_fixtures(installed: Installed) -> None:
    code = "from conformance.oracles.fixtures import FIXTURES_DIR; print(FIXTURES_DIR)"
    site = Path(_ok(installed.run(installed.python, "-c", code)).strip())
    assert site.is_relative_to(installed.venv) and site.name == "_golden", site
    assert (site / "manifest.json").read_bytes() == (ROOT / "fixtures" / "manifest.json").read_bytes()
    other = installed.base / "elsewhere"
    overridden = _ok(
        installed.run(installed.python, "-c", code, LSTM_CONFORMANCE_FIXTURES=str(other))
    ).strip()
    assert Path(overridden) == other
    # --fixtures still wins: an empty directory is an error naming it, not the packaged data
    other.mkdir()
    out = _ok(
        installed.run(
            "lstm-conformance", "--impl", "tinylstm:TinyLSTM", "--oracle", "fixtures", "--fixtures", other
        ),
        rc=1,
    )
    assert str(other) in out


def _report(path: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads(path.read_text())
    return report


def _assert_passes(report: dict[str, object]) -> None:
    """The whole default run passed, with the fixtures oracle on and torch absent."""
    assert report["passed"] is True
    counts = report["counts"]
    assert isinstance(counts, dict) and counts["fail"] == 0 and counts["pass"] > 100, counts
    table = report["table"]
    assert isinstance(table, list)
    statuses = {row["feature"]: row["status"] for row in table}
    assert set(statuses.values()) <= {"pass", "skipped"}, statuses
    for row in ("whole_sequence", "bidirectional", "proj_size", "float32", "complex64", "edge_nan_inf"):
        assert statuses[row] == "pass", (row, statuses[row])
    for row in ("packed_sorted", "dropout_replay", "errors"):  # declared by TinyLSTM
        assert statuses[row] == "skipped", (row, statuses[row])
    oracles = report["oracles"]
    assert isinstance(oracles, dict) and oracles["fixtures"] == "on"
    assert "torch is not importable" in str(oracles.get("torch")), oracles


def test_cli_without_torch(installed: Installed) -> None:
    assert installed.run(installed.python, "-c", "import torch").returncode != 0, "torch must be absent here"
    out = _ok(installed.run("lstm-conformance", "--impl", "tinylstm:TinyLSTM", "--report", "no-torch.json"))
    assert "-> PASS" in out
    _assert_passes(_report(installed.user / "no-torch.json"))
    # a wrong implementation fails through the installed CLI too (python -m conformance, the same)
    broken = installed.run(
        installed.python, "-m", "conformance", "--impl", "tinylstm:SwappedGates", "--case", "L1-uni-*"
    )
    assert "-> FAIL" in _ok(broken, rc=1)


def _pytest_counts(out: str) -> dict[str, int]:
    return {
        word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", out.splitlines()[-1])
    }


def test_pytest_plugin_without_torch(installed: Installed) -> None:
    assert installed.run(installed.python, "-c", "import hypothesis").returncode != 0
    args = ("-p", "no:cacheprovider", "-q", "-rs")
    # a slice (the whole default run from this wheel is test_cli_without_torch's), with the
    # random-configuration test, which must say why it skips
    pyargs = ("pytest", "--pyargs", "conformance", "--lstm-impl", "tinylstm:TinyLSTM", "-k", "L1- or random")
    out = _ok(installed.run(*pyargs, *args))
    counts = _pytest_counts(out)
    assert counts.get("passed", 0) >= 10 and "failed" not in counts, out[-3000:]
    assert "hypothesis is not installed" in out  # the random-configuration test says why it skips
    assert "site-packages/conformance/test_conformance.py" in out or "conformance/test_conformance.py" in out
    # the README's one-file setup, in the user's own tests
    out = _ok(
        installed.run("pytest", "test_my_lstm.py", "-k", "L1-", *args)
    )  # a slice: the full run is above
    assert _pytest_counts(out).get("passed", 0) >= 10, out[-3000:]
    broken = installed.run(
        "pytest", "--pyargs", "conformance", "--lstm-impl", "tinylstm:SwappedGates", "-k", "L1-uni", *args
    )
    out = _ok(broken, rc=1)
    assert "output diverges first at" in out and "rerun: lstm-conformance --impl tinylstm:SwappedGates" in out


def test_cli_and_pytest_with_torch(with_torch: Installed) -> None:
    inst = with_torch
    _ok(inst.run(inst.python, "-c", "import torch"))
    # (--oracle fixtures where torch is installed: tests/test_conformance_selftest.py)
    # a slice (the full run is test_cli_without_torch's; with torch, docgen's run in the checkout)
    out = _ok(
        inst.run(
            "lstm-conformance", "--impl", "tinylstm:TinyLSTM", "--case", "L1-uni-*", "--report", "both.json"
        )
    )
    assert "-> PASS" in out
    both = _report(inst.user / "both.json")
    assert both["passed"] is True and both["oracles"] == {"fixtures": "on", "torch": "on"}, both["oracles"]
    torch_checks = [r for r in both["results"] if r["oracle"] == "torch"]  # type: ignore[index]
    assert len(torch_checks) > 20 and all(r["status"] in ("pass", "skip") for r in torch_checks)
    out = _ok(
        inst.run(
            "pytest",
            "--pyargs",
            "conformance",
            "--lstm-impl",
            "tinylstm:TinyLSTM",
            "-k",
            "L1-uni or random",  # a slice, and the random configurations against live torch
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
        )
    )
    counts = _pytest_counts(out)
    assert counts.get("passed", 0) >= 10 and "failed" not in counts, out[-3000:]
    assert "test_random_configs_against_torch" not in out  # ran (with hypothesis and torch), not skipped


def test_editable_install_finds_the_checkout_fixtures(with_torch: Installed) -> None:
    inst = with_torch
    inst.pip("setuptools>=68")
    inst.pip("--no-deps", "--no-build-isolation", "-e", inst.src)
    code = "from conformance.oracles.fixtures import FIXTURES_DIR; print(FIXTURES_DIR)"
    assert Path(_ok(inst.run(inst.python, "-c", code)).strip()) == inst.src / "fixtures"
    # the entry point and the checkout's root conftest.py register the plugin once between them
    # (twice would be an argparse conflict), and the checkout's old option names still work there
    proc = subprocess.run(
        [str(inst.python), "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
         "--impl", "lstm_ref:LSTM", "--lstm-oracle", "fixtures", "-k", "L1-uni"],
        cwd=inst.src, env=inst.env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert _pytest_counts(_ok(proc)).get("passed", 0) >= 10, proc.stdout[-2000:]
