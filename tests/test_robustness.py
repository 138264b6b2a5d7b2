"""The verdict is out of the implementation's reach, on every path (issue 16): one test per way
a user found to make a run lie, crash or hang -- deliberately bad implementations
(tests/reaches_for_the_verdict.py, tests/misbehaving_impls.py), bad paths and options, Ctrl-C in
every phase. Runs go through the real CLI (and the real pytest plugin) in subprocesses, a few
cases each; one run serves several assertions."""

from __future__ import annotations

import io
import itertools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import cli
from conformance.run import progress, remote
from tests.suite_helpers import ROOT, ctrl_c_on, needs_torch, run_cli

MODULE = "tests.misbehaving_impls"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone too


# -- one run of an implementation that reaches for the verdict, one way per case -----------------


@pytest.fixture(scope="module")
def per_case(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("per_case")
    report, pids = tmp / "report.json", tmp / "pids"
    cmd = [sys.executable, "-m", "conformance", "--impl", "tests.reaches_for_the_verdict:MisbehavesPerCase"]
    cmd += ["--case", "L1-*", "--oracle", "fixtures", "--quiet", "--report", str(report), "--timeout", "120"]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=_env(MISBEHAVING_PID_FILE=str(pids)), capture_output=True, text=True, timeout=300
    )
    return proc, json.loads(report.read_text()), pids


def _case(report: dict[str, Any], case: str) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r["case"] == case]


# (case, what its failures must say): one line of the table each
PER_CASE = [
    # an ndarray subclass whose ufuncs lie (all zeros), in a process whose comparisons are patched
    ("L1-uni-batched-nohx-f32-eval", "output diverges first at direction 0, time step 0"),
    # zeros in a PackedSequence, in the same patched process
    ("L1-uni-packed_unsorted-nohx-f64-eval", "output diverges first"),
    ("L1-uni-batched-nohx-f64-eval", "the call returned generator, not the tuple (output, (h_n, c_n))"),
    ("L1-uni-unbatched-nohx-f32-eval", "raised _Unprintable: <str() raised RuntimeError>"),
    ("L1-uni-unbatched-nohx-c64-eval", "raised KeyboardInterrupt"),
    ("L1-uni-p3-batched-nohx-c64-eval", "raised _Custom: custom BaseException"),
    ("L1-uni-packed_sorted-nohx-f32-eval", "raised SystemExit: 0"),
    ("L1-bi-bf-p3-nobias-unbatched-hx-f64-train", "the worker process exited with code 4"),
]


@pytest.mark.parametrize(("case", "said"), PER_CASE, ids=[c[0] for c in PER_CASE])
def test_a_misbehaving_case_fails_saying_what_it_did(per_case: Any, case: str, said: str) -> None:
    _, report, _ = per_case
    results = _case(report, case)
    assert results and all(r["status"] == "fail" for r in results if r["check"] == "forward"), results
    assert any(said in r["message"] for r in results), [r["message"] for r in results]
    assert "crashed" not in said or len(results) == 1
    assert not any("os._exit inside" in r["message"] for r in results if "exited" not in said)


def test_the_misbehaving_run_keeps_the_other_cases_and_exits_1(per_case: Any) -> None:
    proc, report, pids = per_case
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert report["passed"] is False and report["interrupted"] is False
    # the cases it computes right pass (L1-uni-bf-nobias-packed_sorted-nohx-c64-train, ...)
    assert any(r["status"] == "pass" and r["check"] == "forward" for r in report["results"])
    # the child it forked to hold the worker's pipe was killed with the worker's process group
    forked = [int(line) for line in pids.read_text().split()]  # the run, and the rerun alone
    assert forked and not any(_alive(pid) for pid in forked)


# -- the pytest path: the implementation in workers, never a green session with nothing run --------


PYTEST_CASES = "L1-uni-p3-batched-nohx-c64-eval or L1-uni-batched-nohx-f32-eval"


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path)]
    cmd += ["--lstm-oracle", "fixtures", "-k", f"{PYTEST_CASES} or test_zz", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)


def test_under_pytest_os_exit_0_fails_the_case(tmp_path: Path) -> None:
    """``pytest --pyargs conformance`` and a ``conformance_suite(...)`` test of a user's own."""
    (tmp_path / "test_mine.py").write_text(
        "from conformance.pytest_plugin import conformance_suite\n"
        f"test_mine = conformance_suite('{MODULE}:OsExitZeroOnComplex', oracle='fixtures')\n"
        "def test_zz_never_imported_here():  # runs last: the implementation stayed in the workers\n"
        f"    import sys; assert '{MODULE}' not in sys.modules\n"
    )
    proc = _pytest(
        tmp_path, "--pyargs", "conformance", "test_mine.py", "--lstm-impl", f"{MODULE}:OsExitZeroOnComplex"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "2 failed, 3 passed" in out, out[-3000:]
    for test in ("test_conformance", "test_mine"):
        assert f"{test}[L1-uni-p3-batched-nohx-c64-eval]" in out, out[-3000:]
    assert "exited with code 0 (os._exit inside the implementation?)" in out


def test_under_pytest_xdist_and_pytest_timeout_the_same(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    pytest.importorskip("pytest_timeout")
    proc = _pytest(
        tmp_path,
        "-n",
        "2",
        "--timeout",
        "240",
        "--pyargs",
        "conformance",
        "--lstm-impl",
        f"{MODULE}:OsExitZeroOnComplex",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "1 failed, 1 passed" in out, out[-3000:]
    assert "test_conformance[L1-uni-p3-batched-nohx-c64-eval]" in out
    assert "exited with code 0" in out


# -- usage errors: before anything runs, exit 2, one line -------------------------------------------


def _usage_cases(tmp: Path) -> list[list[str]]:
    (tmp / "dir").mkdir(exist_ok=True)
    return [
        ["--report", str(tmp / "dir")],
        ["--report", str(tmp / "missing" / "r.json")],
        ["--markdown", "/proc/not-writable.md"],  # unwritable even for root
        ["--report", str(tmp / "ok.json"), "--markdown", str(tmp / "dir")],
        ["--impl", ""],
        ["--impl", ":"],
        ["--impl", "exec:"],
        ["--timeout", "0"],
        ["--timeout", "-5"],
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["LSTM_CONFORMANCE_JOBS", "two"],
        ["LSTM_CONFORMANCE_JOBS", "0"],
    ]


@pytest.mark.parametrize("index", range(13))
def test_a_usage_error_is_one_line_and_exit_2(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    args = _usage_cases(tmp_path)[index]
    if args[0] == "LSTM_CONFORMANCE_JOBS":  # the environment's default for --jobs
        monkeypatch.setenv(*args[:2])
        args = args[2:]
    code = cli.main(["--case", "L1-uni-batched-nohx-f64-eval", "--oracle", "fixtures", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", out
    assert len(err.strip().splitlines()) == 1 and err.startswith("lstm-conformance: "), err
    assert not (tmp_path / "ok.json").exists()  # nothing ran, nothing was written


def test_usage_error_from_the_shell(tmp_path: Path) -> None:
    """The same through the real entry point (exit status, nothing on stdout)."""
    proc = run_cli("--timeout", "nan", "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr


# -- Ctrl-C in every phase: one line, exit 130, the partial report ----------------------------------


def _interrupt(cmd: list[str], marker: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_on,
    )
    try:
        _wait_for(marker, proc)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_ctrl_c_while_the_implementation_imports(tmp_path: Path) -> None:
    marker, report = tmp_path / "importing", tmp_path / "r.json"
    cmd = [sys.executable, "-m", "conformance", "--impl", "tests.impl_hangs_at_import:LSTM"]
    cmd += ["--case", "L1-uni-batched-nohx-f64-eval", "--oracle", "fixtures", "--report", str(report)]
    code, out, err = _interrupt(cmd, marker, _env(HANGS_AT_IMPORT_MARKER=str(marker)))
    assert code == 130, out[-2000:] + err[-2000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and data["passed"] is False and data["results"] == []


def test_ctrl_c_during_the_rerun_alone_phase(tmp_path: Path) -> None:
    """The failures stay failures; none is diagnosed from a rerun that never finished. (Two
    cases: only a job that ran after another in its worker is rerun alone.)"""
    report = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "conformance", "--impl", f"{MODULE}:FailsThenHangsAlone", "--jobs", "1"]
    cmd += ["--case", "L1-uni-batched-nohx-f*-eval", "--oracle", "fixtures", "--report", str(report)]
    code, out, err = _interrupt(cmd, tmp_path / "rerun", _env(MISBEHAVING_MARKER_DIR=str(tmp_path)))
    assert code == 130, out[-2000:] + err[-2000:]
    assert "Traceback" not in err
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and data["passed"] is False
    failures = [r for r in data["results"] if r["status"] == "fail"]
    assert failures and not any("passes when run alone" in r["message"] for r in failures)


def test_a_failure_of_a_job_that_ran_first_in_its_worker_is_not_rerun(tmp_path: Path) -> None:
    """One case, one fresh worker: it already ran alone, so no second worker starts (this
    implementation would hang in one, after leaving a "rerun" marker)."""
    report = tmp_path / "r.json"
    args = (
        "--impl",
        f"{MODULE}:FailsThenHangsAlone",
        "--jobs",
        "1",
        "--case",
        "L1-uni-batched-nohx-f64-eval",
    )
    args += ("--oracle", "fixtures", "--report", str(report))
    args += ("--timeout", "30")  # a rerun that did start would hang this long
    proc = run_cli(*args, MISBEHAVING_MARKER_DIR=str(tmp_path))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (tmp_path / "rerun").exists()
    failures = [r for r in json.loads(report.read_text())["results"] if r["status"] == "fail"]
    assert failures and not any("run alone" in r["message"] for r in failures)


@needs_torch
def test_ctrl_c_during_regen(tmp_path: Path) -> None:
    from conformance.oracles.fixtures import FixtureStore

    copy = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", copy, ignore=shutil.ignore_patterns(".regen.lock"))
    cmd = [sys.executable, "-m", "conformance", "regen", "--fixtures", str(copy)]
    code, out, err = _interrupt(cmd, copy / ".regen.lock", _env())
    assert code == 130, out[-2000:] + err[-2000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert FixtureStore(copy).audit() == []  # every fixture intact


# -- bounded fixture reads --------------------------------------------------------------------------


def test_a_fixture_that_is_a_device_or_a_fifo_is_a_clear_failure(tmp_path: Path) -> None:
    copy = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", copy)
    zero, fifo = (
        copy / "cases" / "L1-uni-batched-nohx-f64-eval.npz",
        copy / "cases" / "L1-uni-batched-nohx-f32-eval.npz",
    )
    zero.unlink()
    zero.symlink_to("/dev/zero")
    fifo.unlink()
    os.mkfifo(fifo)
    report = tmp_path / "r.json"
    proc = run_cli(
        "--fixtures", str(copy), "--case", "L1-uni-batched-*", "--oracle", "fixtures", "--report", str(report)
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    failures = {
        r["case"]: r["message"] for r in json.loads(report.read_text())["results"] if r["status"] == "fail"
    }
    assert set(failures) == {"L1-uni-batched-nohx-f64-eval", "L1-uni-batched-nohx-f32-eval"}
    assert all("not a regular file" in m for m in failures.values()), failures


# -- --isolate none, --list, a declared reason, the progress estimate (in this process) ---------------


def test_list_selects_what_a_run_selects_and_isolate_none_says_it_is_unprotected(
    tmp_path: Path, capsys: Any
) -> None:
    pattern = "errors:input-*"
    assert cli.main(["--list", "--case", pattern, "--oracle", "fixtures"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[:-1]]
    report = tmp_path / "r.json"
    code = cli.main(
        ["--case", pattern, "--oracle", "fixtures", "--isolate", "none", "--quiet", "--report", str(report)]
    )
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    assert code == 0, out[-2000:]
    assert sorted(listed) == sorted({r["case"] for r in data["results"]}) and listed
    assert data["isolation"].startswith("--isolate none: unprotected")
    assert "unprotected" in out.splitlines()[-1]
    assert cli.main(["--list", "--case", "dropout_statistics", "--oracle", "fixtures"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["dropout_statistics", "dropout_statistics"]


def test_a_row_that_cannot_run_for_a_declared_reason_is_skipped_not_failed() -> None:
    """No vjp, and construction fails on some cases: the gradients row is skipped there too."""
    from conformance.oracles.sources import make_oracles
    from conformance.run import report, runner
    from conformance.run.impls import load_impl

    impl = load_impl(f"{MODULE}:NoVjpCannotBeBuilt")
    results = runner.run_all(runner.jobs_for(impl, make_oracles("fixtures"), pattern="L1-*"))
    assert any(r.check == "forward" and r.status == "fail" for r in results)  # construction fails
    row = next(r for r in report.table(results, impl) if r.feature == "gradients")
    assert row.status == "skipped" and row.failed == 0 and row.skipped > 0, row


def test_the_time_left_is_estimated_only_after_a_few_jobs(monkeypatch: Any) -> None:
    clock = itertools.chain([0.0], itertools.count(6.0, 6.0))  # a line at every job
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    bar = progress.Progress(100, stream=stream)
    for _ in range(20):
        bar.update(False)
    lines = stream.getvalue().splitlines()
    assert "estimating time left" in lines[0] and "s left" not in lines[0], lines
    assert lines[-1].endswith("s left") and "~" in lines[-1], lines


# -- what crosses from a worker ------------------------------------------------------------------


def test_only_plain_data_crosses_from_a_worker() -> None:
    """Arrays arrive as new base-class arrays; a pickled object (code to run) is refused."""

    class Sub(np.ndarray):
        pass

    encoded = remote.encode(
        (np.arange(6.0).reshape(2, 3).view(Sub), [np.float32(1)], {"k": 1j}), remote.Objects()
    )
    value = remote.decode(remote.loads(remote.dumps(encoded)), None)
    assert type(value[0]) is np.ndarray and value[0].flags.writeable and value[0].dtype == np.float64
    assert np.array_equal(value[0], np.arange(6.0).reshape(2, 3))
    assert type(value[1][0]) is np.float32 and value[2] == {"k": 1j}
    with pytest.raises(remote.ProtocolError):
        remote.loads(pickle.dumps(np.zeros(3)))
    with pytest.raises(remote.ProtocolError):
        remote.decode(("a", "|O8", (1,), b"\0" * 8), None)


def test_an_input_written_in_place_or_its_layout_still_show_through_the_worker(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = run_cli(
        "--impl", f"{MODULE}:TouchesItsInput", "--case", "L1-uni-batched-nohx-f*", "--oracle", "fixtures",
        "--report", str(report), "--isolate", "case",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:]
    results = json.loads(report.read_text())["results"]
    failed = {(r["case"][-8:-5], r["check"]): r["message"] for r in results if r["status"] == "fail"}
    assert failed[("f64", "forward")] == "the call modified its input array in place", failed
    layout = failed[("f32", "input_layout")]
    assert layout.startswith("strided input: raised ValueError: only C-contiguous"), layout
    assert ("f32", "forward") not in failed
