"""A conformance run never lies: implementations that crash, exit, hang or cannot be imported,
and damaged fixtures, all give a written table and report, the affected cases named, the other
cases' results kept, provenance recorded, and a non-zero exit.  Everything goes through the real
CLI in a subprocess, as a CI job runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.misbehaving_impls import HANG_MARKER_ENV
from tests.suite_helpers import ROOT, ctrl_c_on, run_cli

MODULE = "tests.misbehaving_impls"
SOME_CASES = "L1-uni-*batched-nohx-*"  # five cases: f32, f64 and two c64


def run_report(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report, markdown = tmp_path / "report.json", tmp_path / "report.md"
    proc = run_cli(*args, "--oracle", "fixtures", "--report", str(report), "--markdown", str(markdown))
    assert markdown.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, json.loads(report.read_text())


# (implementation, what the crash message must say)
CRASHES = [
    ("SegfaultOnComplex", "the worker process was killed by SIGSEGV"),
    (
        "OsExitZeroOnComplex",
        "the worker process exited with code 0 (os._exit inside the implementation?)",
    ),
    ("OsExitOnComplex", "the worker process exited with code 3"),
    ("HangsOnComplex", "timed out after 3 s (--timeout)"),
]


@pytest.mark.parametrize(("impl", "what"), CRASHES, ids=[c[0] for c in CRASHES])
def test_a_crash_fails_its_cases_and_the_run_goes_on(tmp_path: Path, impl: str, what: str) -> None:
    proc, report = run_report(tmp_path, "--impl", f"{MODULE}:{impl}", "--case", SOME_CASES, "--timeout", "3")
    assert proc.returncode == 1, proc.stdout[-3000:]
    crashes = [r for r in report["results"] if r["check"] == "crash"]
    assert crashes and all(what in r["message"] for r in crashes), crashes[:1]
    assert {r["case"].split("-")[-2] for r in crashes} == {"c64"}  # the complex cases, and only they
    assert all("in check 'forward (oracle fixtures)'" in r["message"] for r in crashes)
    kept = [r for r in report["results"] if r["status"] == "pass"]
    assert {r["case"].split("-")[-2] for r in kept} >= {"f32", "f64"}  # the other cases' results are kept
    table = {row["feature"]: row for row in report["table"]}
    assert table["complex64"]["status"] == "FAIL" and table["float64"]["status"] == "pass"
    assert report["provenance"]["torch_fixtures"].startswith("2.13.0")
    assert report["provenance"]["impl_module"] == MODULE
    assert "-> FAIL" in proc.stdout and "rerun: lstm-conformance --impl" in proc.stdout


def test_a_crash_in_an_error_case_fails_that_item_and_the_rest_still_run(tmp_path: Path) -> None:
    proc, report = run_report(tmp_path, "--impl", f"{MODULE}:SegfaultOnEmptyBatch", "--case", "errors:*")
    assert proc.returncode == 1
    crashes = [r for r in report["results"] if r["check"] == "crash"]
    assert {r["case"] for r in crashes} == {"errors:input-batch-0-accepted"}
    assert {r["features"][0] for r in crashes} == {"errors", "error_types"}
    assert all("killed by SIGSEGV" in r["message"] for r in crashes)
    assert crashes[0]["rerun"].startswith(
        f"lstm-conformance --impl {MODULE}:SegfaultOnEmptyBatch --case errors:input-batch-0-accepted"
    )
    # every other error case still has its verdicts, in both rows
    for row in ("errors", "error_types"):
        ran = [r for r in report["results"] if r["features"] == [row] and r["check"] != "crash"]
        assert len(ran) == 47 and all(r["status"] == "pass" for r in ran), row


def test_memory_error_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    proc, report = run_report(tmp_path, "--impl", f"{MODULE}:MemoryErrorOnComplex", "--case", SOME_CASES)
    assert proc.returncode == 1
    failures = [r for r in report["results"] if r["status"] == "fail"]
    assert failures and all("raised MemoryError: bounded" in r["message"] for r in failures)
    assert not [r for r in report["results"] if r["check"] == "crash"]


def test_an_implementation_that_cannot_import_is_one_failure(tmp_path: Path) -> None:
    proc, report = run_report(tmp_path, "--impl", "tests.impl_raises_at_import:LSTM")
    assert proc.returncode == 1
    (failure,) = report["results"]
    assert failure["check"] == "import" and "this module fails at import" in failure["message"]
    assert report["passed"] is False


def test_a_temp_directory_too_long_for_a_unix_socket_still_runs(tmp_path: Path) -> None:
    """A deep TMPDIR (a CI workspace) once crashed the run with 'AF_UNIX path too long' from
    the fork server's socket, before any report was written."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    report = tmp_path / "report.json"
    args = ("--impl", "lstm_ref:LSTM", "--oracle", "fixtures", "--case", "L1-uni-batched-nohx-f64-eval")
    proc = run_cli(*args, "--report", str(report), TMPDIR=str(deep))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert json.loads(report.read_text())["passed"] is True
    assert list(deep.iterdir()) == []  # the worker's files went elsewhere and were cleaned up


def test_jobs_2_gives_the_results_of_jobs_1(tmp_path: Path) -> None:
    reports = []
    for jobs in ("1", "2"):
        (tmp_path / jobs).mkdir()
        proc, report = run_report(
            tmp_path / jobs, "--impl", f"{MODULE}:SegfaultOnComplex", "--case", "L2-*", "--jobs", jobs
        )
        assert proc.returncode == 1
        reports.append(report)
    assert reports[0]["results"] == reports[1]["results"]
    assert reports[0]["table"] == reports[1]["table"]


def test_state_leaking_between_calls_is_named(tmp_path: Path) -> None:
    shared, report = run_report(
        tmp_path, "--impl", f"{MODULE}:LeaksStateAfterComplex", "--case", SOME_CASES, "--jobs", "1"
    )
    assert shared.returncode == 1
    leaks = [r for r in report["results"] if r["status"] == "fail"]
    assert leaks and all(
        "passes when run alone in a fresh process (--isolate case)" in r["message"] for r in leaks
    )
    (tmp_path / "alone").mkdir()
    alone, report = run_report(
        tmp_path / "alone",
        "--impl",
        f"{MODULE}:LeaksStateAfterComplex",
        "--case",
        SOME_CASES,
        "--isolate",
        "case",
    )
    assert alone.returncode == 0, alone.stdout[-2000:]


def test_ctrl_c_writes_the_partial_report_and_exits_130(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "conformance", "--impl", f"{MODULE}:HangsOnComplex", "--case", "L1-*"]
    cmd += ["--oracle", "fixtures", "--jobs", "1", "--report", str(report)]
    marker = tmp_path / "hanging"
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_on,
        env={**os.environ, HANG_MARKER_ENV: str(marker)},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not marker.exists():  # until the worker is stuck in a complex case
        assert proc.poll() is None and time.monotonic() < deadline, "the run never reached a complex case"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and data["passed"] is False
    assert "INTERRUPTED (partial results)" in out
    assert any(r["status"] == "pass" for r in data["results"])


# -- damaged fixtures: a run exits 1 naming the file; a whole-directory problem is said once ----------


@pytest.fixture
def fixtures_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", copy)
    return copy


def test_a_corrupt_fixture_fails_its_case_naming_the_file(tmp_path: Path, fixtures_copy: Path) -> None:
    target = fixtures_copy / "cases" / "L1-uni-batched-nohx-f32-eval.npz"
    blob = bytearray(target.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    target.write_bytes(bytes(blob))
    proc, report = run_report(tmp_path, "--fixtures", str(fixtures_copy), "--case", "L1-uni-batched-*")
    assert proc.returncode == 1
    failure = next(r for r in report["results"] if r["status"] == "fail")
    assert str(target) in failure["message"] and "sha256" in failure["message"]
    assert f"--fixtures {fixtures_copy}" in failure["rerun"]


def test_a_broken_manifest_is_reported_once(tmp_path: Path, fixtures_copy: Path) -> None:
    (fixtures_copy / "manifest.json").write_text("{ not json")
    proc, report = run_report(tmp_path, "--fixtures", str(fixtures_copy))
    assert proc.returncode == 1
    failures = [r for r in report["results"] if r["status"] == "fail"]
    assert len(failures) == 1 and "manifest.json" in failures[0]["message"], failures[:3]
    assert proc.stdout.count("manifest.json") <= 3


def test_a_worker_sees_the_parent_as_it_is_when_the_worker_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Workers start from a fork server on Linux, which started with the parent's environment,
    sys.path and directory of its own start; each worker still gets those of its own start."""
    from conformance import cli

    def run() -> int:
        argv = ["--impl", "probe_lstm:LSTM", "--case", "L1-uni-batched-nohx-f64-eval", "--oracle", "fixtures"]
        return cli.main([*argv, "--quiet"])

    (tmp_path / "probe_lstm.py").write_text(
        "import os, lstm_ref\n"
        "class LSTM(lstm_ref.LSTM):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        assert os.environ.get('LSTM_PROBE') == 'now' and os.path.isfile('here'), 'a stale parent'\n"
        "        super().__init__(*args, **kwargs)\n"
    )
    monkeypatch.setenv("LSTM_PROBE", "before")
    assert run() == 1  # the fork server (where there is one) is running from here on
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LSTM_PROBE", "now")
    (tmp_path / "here").touch()
    monkeypatch.chdir(tmp_path)
    assert run() == 0, capsys.readouterr().out[-2000:]
