"""``--impl exec:COMMAND`` and ``lstm-conformance export`` with a real C implementation.

tests/c_lstm/lstm.c (a one-layer unidirectional float32/float64 LSTM) is compiled with the
system ``cc``, as-is and with ``-DSWAP_GATES`` (f and g read the other way round), and run
through the real CLI. tests/c_lstm/twin.py is the same implementation in NumPy: the C program
must get the same table and the same failure messages as its Python twin.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import exec_impl
from conformance.exec_impl import ExecCommandFailed, make_exec_factory
from conformance.rows import ALIASES
from tests.c_lstm.twin import UNSUPPORTED
from tests.suite_helpers import ROOT, needs_torch, run_cli

SOURCE = ROOT / "tests" / "c_lstm" / "lstm.c"
TWIN = "tests.c_lstm.twin:OneLayer"
TWIN_SWAPPED = "tests.c_lstm.twin:SwappedGates"


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler: `cc` is not on PATH")
    out = tmp_path_factory.mktemp("c_lstm")
    built = {}
    for name, flags in (("good", []), ("swapped", ["-DSWAP_GATES"])):
        exe = out / f"lstm_{name}"
        subprocess.run(
            [
                cc,
                "-O2",
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-Werror",
                *flags,
                "-o",
                str(exe),
                str(SOURCE),
                "-lm",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        built[name] = exe
    return built


def cli_report(tmp_path: Path, impl: str, *args: str) -> tuple[int, dict[str, Any], str]:
    report = tmp_path / f"report-{abs(hash((impl, args)))}.json"
    proc = run_cli("--impl", impl, "--report", str(report), *args)
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(report.read_text()), proc.stdout


def declared_rows() -> set[str]:
    return {row for key in UNSUPPORTED for row in ALIASES.get(key, (key,))}


def rows_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in report["table"]}


def masked(message: str) -> str:
    """A failure message with its floating-point values masked (C and NumPy round differently)."""
    message = re.sub(r"\b(got|expected) [^,;]+", r"\1 #", message)
    return re.sub(r"\berr [-+0-9.e]+", "err #", message)


# -- the good build ------------------------------------------------------------------------------


def assert_passes(code: int, report: dict[str, Any], out: str) -> None:
    assert code == 0, out[-4000:]
    rows = rows_of(report)
    for feature in declared_rows():
        assert rows[feature]["status"] == "skipped", rows[feature]
        assert rows[feature]["passed"] == 0 and rows[feature]["failed"] == 0
    assert report["unsupported"] == {r: UNSUPPORTED[k] for k in UNSUPPORTED for r in ALIASES.get(k, (k,))}
    assert rows["errors"]["notes"] == [f"(declared: {UNSUPPORTED['errors']})"]
    assert rows["error_types"]["status"] == "skipped"  # declaring `errors` skips both
    for feature in ("whole_sequence", "stepwise", "chunked", "unbatched", "hx_given", "probes", "state_dict"):
        assert rows[feature]["status"] == "pass", rows[feature]
    for feature in ("float32", "float64", "edge_long", "edge_saturated", "edge_layout"):
        assert rows[feature]["status"] == "pass", rows[feature]
    assert not any(r["status"] == "FAIL" for r in report["table"])


def test_c_build_passes_fixtures_like_its_python_twin(binaries: dict[str, Path], tmp_path: Path) -> None:
    code, report, out = cli_report(tmp_path, f"exec:{binaries['good']}", "--oracle", "fixtures")
    assert_passes(code, report, out)
    _, twin, _ = cli_report(tmp_path, TWIN, "--oracle", "fixtures")
    status = lambda rep: {f: (r["status"], r["passed"], r["skipped"]) for f, r in rows_of(rep).items()}  # noqa: E731
    assert status(report) == status(twin)


@needs_torch
def test_c_build_passes_live_torch(binaries: dict[str, Path], tmp_path: Path) -> None:
    code, report, out = cli_report(tmp_path, f"exec:{binaries['good']}", "--oracle", "torch")
    assert_passes(code, report, out)
    assert report["oracles"] == {"torch": "on"}


# -- the swapped build ---------------------------------------------------------------------------


def test_swapped_gates_fail_on_the_right_rows_with_pythons_messages(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    code, c_report, out = cli_report(tmp_path, f"exec:{binaries['swapped']}", "--oracle", "fixtures")
    assert code == 1, out[-3000:]
    twin_code, twin_report, _ = cli_report(tmp_path, TWIN_SWAPPED, "--oracle", "fixtures")
    assert twin_code == 1
    failed = {f for f, r in rows_of(c_report).items() if r["status"] == "FAIL"}
    assert failed == {f for f, r in rows_of(twin_report).items() if r["status"] == "FAIL"}
    assert {"whole_sequence", "float32", "float64", "probes", "stepwise", "chunked"} <= failed
    assert not failed & declared_rows()

    def failures(report: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {
            (r["check"], r["case"]): masked(r["message"]) for r in report["results"] if r["status"] == "fail"
        }

    c_failures, twin_failures = failures(c_report), failures(twin_report)
    assert c_failures == twin_failures
    first = c_failures[("forward", "L1-uni-batched-nohx-f32-eval")]
    assert first.startswith("output diverges first at direction 0, time step 0, batch 0, unit 0: got #")
    assert "Run alone on the reference's layer-0 input, layer 0 diverges" in first
    # the same swap in an lstm_ref subclass (which also gets the gate located): same first line
    _, ref_report, _ = cli_report(
        tmp_path,
        "tests.broken_impls:WrongGateOrder",
        "--oracle",
        "fixtures",
        "--case",
        "L1-uni-batched-nohx-f32-eval",
    )
    ref = next(r for r in ref_report["results"] if r["check"] == "forward")
    assert masked(ref["message"]).splitlines()[0] == first.splitlines()[0]


# -- export, read back by the C program ------------------------------------------------------------


def test_export_cases_run_by_the_c_program(binaries: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "export"
    proc = run_cli("export", str(target))
    assert proc.returncode == 0, proc.stderr
    index = json.loads((target / "index.json").read_text())
    assert index["protocol"] == exec_impl.PROTOCOL
    assert not list(tmp_path.glob(".export*"))  # no staging directory left behind
    declared = declared_rows()
    ran = 0
    for entry in index["cases"]:
        assert (target / entry["request"]).is_file()
        if set(entry["features"]) & declared or entry["expected_error"]:
            continue
        work = tmp_path / "run" / entry["id"]
        shutil.copytree(target / entry["dir"], work)
        subprocess.run([str(binaries["good"]), str(work)], check=True, timeout=60)
        tol = entry["tolerance"]
        for name, rel in entry["expected"].items():
            want = np.load(target / rel)
            got = np.load(work / f"{name}.npy")
            # 32-bit cases: the expected answer is the exact one, held in 64 bits
            assert got.dtype == np.dtype(entry["dtype"]) and got.shape == want.shape, (entry["id"], name)
            np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"], err_msg=entry["id"])
        ran += 1
    assert ran >= 10
    # the broken build fails the same exported case
    work = tmp_path / "run-swapped"
    case = next(e for e in index["cases"] if e["id"] == "L1-uni-batched-nohx-f64-eval")
    shutil.copytree(target / case["dir"], work)
    subprocess.run([str(binaries["swapped"]), str(work)], check=True, timeout=60)
    assert not np.allclose(np.load(work / "output.npy"), np.load(target / case["expected"]["output"]))


def test_export_replaces_an_export_but_not_other_directories(tmp_path: Path) -> None:
    target = tmp_path / "export"
    assert run_cli("export", str(target)).returncode == 0
    assert run_cli("export", str(target)).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    proc = run_cli("export", str(other))
    assert proc.returncode != 0 and "not overwriting" in proc.stderr
    assert (other / "keep.txt").read_text() == "mine"


# -- the adapter, in process ------------------------------------------------------------------------


def test_errors_cross_the_protocol_as_torchs_types(binaries: dict[str, Path]) -> None:
    factory = make_exec_factory(str(binaries["good"]))
    assert factory.conformance_unsupported == UNSUPPORTED
    with pytest.raises(ValueError):
        factory(input_size=3, hidden_size=0, dtype=np.dtype("float64"))
    with pytest.raises(TypeError, match="cannot be sent over the exec protocol"):
        factory(input_size=np.int64(3), hidden_size=4)
    model = factory(input_size=3, hidden_size=4, dtype=np.dtype("float64"), seed=0)
    assert list(model.state_dict()) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    x = np.zeros((5, 2, 3))
    with pytest.raises(ValueError):
        model(np.zeros(3))
    with pytest.raises(RuntimeError):
        model(np.zeros((5, 2, 7)))
    with pytest.raises(RuntimeError):
        model(x, (np.zeros((1, 3, 4)), np.zeros((1, 2, 4))))
    with pytest.raises(RuntimeError):
        model.load_state_dict({**model.state_dict(), "weight_ih_l1": np.zeros((16, 3))})
    out, (h, c) = model(x)
    assert out.shape == (5, 2, 4) and h.shape == c.shape == (1, 2, 4) and out.dtype == np.float64


def test_a_crashing_command_is_not_an_error_torch_raises(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        "import json, os, sys\n"
        "d = sys.argv[1]\n"
        "op = json.load(open(os.path.join(d, 'request.json')))['op']\n"
        "if op == 'capabilities':\n"
        "    json.dump({'protocol': 1, 'unsupported': {'gradients': 'no'}}, open(os.path.join(d, 'response.json'), 'w'))\n"
        "elif op == 'forward':\n"
        "    sys.stderr.write('segfault, say\\n'); sys.exit(139)\n"
    )
    factory = make_exec_factory(f"{sys.executable} {script}")
    model = factory(input_size=3, hidden_size=4)
    assert model.state_dict() == {}
    with pytest.raises(ExecCommandFailed, match=r"exit status 139.*segfault, say"):
        model(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(SystemExit, match="capabilities request failed"):
        make_exec_factory(str(tmp_path / "no-such-program"))
    with pytest.raises(SystemExit, match="capabilities request failed"):
        make_exec_factory("false")
