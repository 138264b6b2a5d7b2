"""``--impl exec:COMMAND`` and ``lstm-conformance export`` with a real C implementation.

tests/c_lstm/lstm.c (a stacked, bidirectional float32/float64 LSTM speaking protocol 2: a
persistent process, ``trace`` and ``vjp``) is compiled once with the system ``cc``, as-is, as a
protocol-1 command (``-DEXEC_V1``) and as broken copies (``-DSWAP_GATES``: f and g read the
other way round; ``-DBROKEN_O``: a tanh o gate; ``-DBROKEN_O_DEEP_REVERSE``: the same in the
reverse direction of layers 1+ only), and run through the real CLI. The one full
default run of this module is the protocol-2 build's; the others select cases with ``--case``.
tests/c_lstm/twin.py is the protocol-1 program's one-layer part in NumPy: on one-layer cases the
C program must get the same table and the same failure messages as its Python twin. tests/c_lstm/faulty.py wraps the C program in
a command that crashes or hangs (with a sleeping child) on float64 models.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lstm_ref
from conformance.checks.rows import ALIASES
from conformance.run import exec_impl
from conformance.run.exec_impl import ExecCommandFailed, make_exec_factory
from tests.c_lstm.twin import UNSUPPORTED
from tests.suite_helpers import ROOT, ctrl_c_on, has_torch, run_cli

SOURCE = ROOT / "tests" / "c_lstm" / "lstm.c"
FAULTY = ROOT / "tests" / "c_lstm" / "faulty.py"
TWIN_SWAPPED = "tests.c_lstm.twin:SwappedGates"
# lstm.c's declarations (its twin is one layer, one direction and forward only; the C program
# built with -DEXEC_V1 adds "gradients")
C_UNSUPPORTED = {
    **{k: v for k, v in UNSUPPORTED.items() if k not in ("gradients", "bidirectional", "multi_layer")},
    "dropout": "no dropout between layers",
}
BUILDS = {
    "good": [],
    "v1": ["-DEXEC_V1"],
    "swapped": ["-DSWAP_GATES"],
    "swapped_v1": ["-DEXEC_V1", "-DSWAP_GATES"],
    "broken_o": ["-DBROKEN_O"],
    "deep_reverse_o": ["-DBROKEN_O_DEEP_REVERSE"],
}
ONE_CASE = "L1-uni-batched-nohx-f32-eval"
F32_AND_F64 = "L1-uni-batched-nohx-f*-eval"  # faulty.py misbehaves on the second only


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler: `cc` is not on PATH")
    out = tmp_path_factory.mktemp("c_lstm")
    built = {}
    for name, flags in BUILDS.items():
        exe = out / f"lstm_{name}"
        warnings = ["-Wall", "-Wextra", "-Werror"]
        command = [cc, "-O2", "-std=c99", *warnings, *flags, "-o", str(exe), str(SOURCE), "-lm"]
        subprocess.run(command, check=True, capture_output=True, text=True)
        built[name] = exe
    return built


def cli(tmp_path: Path, impl: str, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    """The real CLI with its own TMPDIR (so what it leaves there can be seen): exit code,
    the JSON report, stdout."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    report = tmp_path / f"report-{abs(hash((impl, args)))}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    command = [sys.executable, "-m", "conformance", "--impl", impl, "--report", str(report), *args]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(report.read_text()), proc.stdout


def leftovers(tmp_path: Path) -> list[str]:
    """Request directories the exec adapter left in the run's TMPDIR (after giving the adapter's
    reaper, which cleans up when a worker ends, a moment)."""
    deadline = time.monotonic() + 10
    while True:
        left = sorted(p.name for p in (tmp_path / "tmp").glob("lstm-exec-*"))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def faulty(fault: str, markers: Path, binary: Path) -> str:
    return f"exec:{sys.executable} {FAULTY} {fault} {markers} {binary}"


def declared_rows(unsupported: dict[str, str]) -> set[str]:
    return {row for key in unsupported for row in ALIASES.get(key, (key,))}


def rows_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in report["table"]}


def failures(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["check"], r["case"]): r["message"] for r in report["results"] if r["status"] == "fail"}


def masked(message: str) -> str:
    """A failure message with its floating-point values masked (C and NumPy round differently)."""
    message = re.sub(r"\b(got|expected) [^,;]+", r"\1 #", message)
    return re.sub(r"\berr [-+0-9.e]+", "err #", message)


def assert_passes(code: int, report: dict[str, Any], out: str, unsupported: dict[str, str]) -> None:
    assert code == 0, out[-4000:]
    rows = rows_of(report)
    for feature in declared_rows(unsupported):
        assert rows[feature]["status"] == "skipped", rows[feature]
        assert rows[feature]["passed"] == 0 and rows[feature]["failed"] == 0
    assert report["unsupported"] == {r: unsupported[k] for k in unsupported for r in ALIASES.get(k, (k,))}
    assert rows["errors"]["notes"] == [f"(declared: {unsupported['errors']})"]
    assert rows["error_types"]["status"] == "skipped"  # declaring `errors` skips both
    assert not any(r["status"] == "FAIL" for r in report["table"])


# -- protocol 2: the one full default run ------------------------------------------------------------


@pytest.fixture(scope="module")
def v2_run(binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    """The C port's default run (fixtures, and live torch where installed), persistent."""
    tmp_path = tmp_path_factory.mktemp("v2_run")
    return (*cli(tmp_path, f"exec:{binaries['good']}"), tmp_path)


def test_c_port_passes_the_default_run_over_protocol_2_with_gradients(
    binaries: dict[str, Path], v2_run: tuple[Any, ...]
) -> None:
    code, report, out, tmp_path = v2_run
    assert_passes(code, report, out, C_UNSUPPORTED)
    rows = rows_of(report)
    for feature in ("whole_sequence", "stepwise", "chunked", "unbatched", "hx_given", "probes", "state_dict"):
        assert rows[feature]["status"] == "pass", rows[feature]
    for feature in ("bidirectional", "multi_layer", "batch_first", "dropout_eval", "no_bias"):
        assert rows[feature]["status"] == "pass", rows[feature]
    for feature in ("float32", "float64", "edge_long", "edge_saturated", "edge_layout", "edge_batch0"):
        assert rows[feature]["status"] == "pass", rows[feature]
    # the backward pass written in C, against torch.autograd.grad (fixtures, and live torch)
    assert rows["gradients"]["status"] == "pass" and rows["gradients"]["passed"] >= 60, rows["gradients"]
    assert report["oracles"]["torch"] == ("on" if has_torch() else report["oracles"]["torch"])
    # the header names the command, its declared version and how it is driven
    command = f"exec:{binaries['good']}"
    assert f"  implementation: {command} c_lstm 2 (exec protocol 2, persistent, trace, vjp)\n" in out
    assert report["provenance"]["impl_module"] == command
    assert leftovers(tmp_path) == []


# -- protocol 1 still works ------------------------------------------------------------------------


def test_a_protocol_1_command_runs_unchanged_and_matches_its_python_twin(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    """The f/g-swapped build, as a protocol-1 command: the table (passes included) and the
    failure messages of its NumPy twin."""
    code, c_report, out = cli(
        tmp_path, f"exec:{binaries['swapped_v1']}", "--oracle", "fixtures", "--case", "L1-uni-*"
    )
    assert code == 1, out[-3000:]
    assert "(exec protocol 1)" in out
    twin_code, twin_report, _ = cli(tmp_path, TWIN_SWAPPED, "--oracle", "fixtures", "--case", "L1-uni-*")
    assert twin_code == 1
    status = lambda rep: {f: (r["status"], r["passed"], r["skipped"]) for f, r in rows_of(rep).items()}  # noqa: E731
    assert status(c_report) == status(twin_report)
    failed = {f for f, r in rows_of(c_report).items() if r["status"] == "FAIL"}
    assert {"whole_sequence", "float32", "float64", "stepwise", "chunked"} <= failed
    assert not failed & declared_rows(UNSUPPORTED)
    c_failures = {k: masked(v) for k, v in failures(c_report).items()}
    assert c_failures == {k: masked(v) for k, v in failures(twin_report).items()}
    first = c_failures[("forward", ONE_CASE)]
    assert first.startswith("output diverges first at direction 0, time step 0, batch 0, unit 0: got #")
    assert "Run alone on the reference's layer-0 input, layer 0 diverges" in first
    assert "first internal divergence" not in first  # protocol 1 has no trace
    # the same swap in an lstm_ref subclass (which also gets the gate located): same first line
    _, ref_report, _ = cli(
        tmp_path, "tests.broken_impls:WrongGateOrder", "--oracle", "fixtures", "--case", ONE_CASE
    )
    ref = next(r for r in ref_report["results"] if r["check"] == "forward")
    assert masked(ref["message"]).splitlines()[0] == first.splitlines()[0]


# -- protocol 2: localisation, crashes, hangs ----------------------------------------------------------


@pytest.mark.parametrize(("build", "gate"), [("swapped", "f"), ("broken_o", "o")])
def test_a_broken_gate_is_named_over_exec(
    binaries: dict[str, Path], tmp_path: Path, build: str, gate: str
) -> None:
    code, report, out = cli(tmp_path, f"exec:{binaries[build]}", "--oracle", "fixtures", "--case", ONE_CASE)
    assert code == 1, out[-3000:]
    message = failures(report)[("forward", ONE_CASE)]
    assert (
        message.splitlines()[-1]
        .strip()
        .startswith(
            "first internal divergence (the implementation's trace vs the cell equations): "
            f"layer 0, direction 0, time step 0, gate/state {gate!r}, max abs err"
        )
    ), message
    assert ("gradients", ONE_CASE) in failures(report)  # its backward pass follows its forward


@pytest.mark.skipif(not has_torch(), reason="a --full case: judged by live torch")
def test_a_bug_in_a_deeper_layers_reverse_o_gate_is_named_over_exec(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    """Only layer 1's reverse direction is wrong, and only inside the stack (rebuilt alone as a
    one-layer model it is the C program's layer 0, which is right)."""
    case = "L2-bi-batched-hx-f64-eval"
    code, report, out = cli(tmp_path, f"exec:{binaries['deep_reverse_o']}", "--full", "--case", case)
    assert code == 1, out[-3000:]
    message = failures(report)[("forward", case)]
    assert "but inside the stack layer 1 diverges" in message
    assert (
        message.splitlines()[-1]
        .strip()
        .startswith(
            "first internal divergence (the implementation's trace vs the cell equations): "
            "layer 1, direction 1 (reverse), time step 5, gate/state 'o', max abs err"
        )
    ), message


def test_a_crashing_persistent_command_is_restarted_and_fails_only_its_case(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    impl = faulty("crash-persistent", tmp_path, binaries["good"])
    code, report, out = cli(tmp_path, impl, "--oracle", "fixtures", "--case", F32_AND_F64)
    assert code == 1, out[-3000:]
    results = [r for r in report["results"] if r["status"] != "skip"]
    f32 = [r for r in results if "-f32-" in r["case"]]
    f64 = [r for r in results if "-f64-" in r["case"]]
    assert f32 and all(r["status"] == "pass" for r in f32), f32  # after every crash, a fresh server
    assert f64 and all(r["status"] == "fail" for r in f64)
    assert all("(persistent): construct request failed (killed by signal 11)" in r["message"] for r in f64)
    assert "the command is restarted for the next request" in f64[0]["message"]
    assert leftovers(tmp_path) == []


def gone(pid: int) -> bool:
    """No such process, or a zombie (dead; this machine's init may be slow to reap orphans),
    within a few seconds."""
    deadline = time.monotonic() + 10
    while True:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def children(markers: Path) -> list[int]:
    return [int(p.read_text()) for p in markers.glob("child-*")]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_hanging_command_is_killed_with_its_children_on_timeout(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    impl = faulty("hang-persistent", markers, binaries["good"])
    code, report, out = cli(tmp_path, impl, "--oracle", "fixtures", "--case", F32_AND_F64, "--timeout", "3")
    assert code == 1, out[-3000:]
    crash = failures(report)[("crash", "L1-uni-batched-nohx-f64-eval")]
    assert "timed out after 3 s (--timeout)" in crash
    assert all(r["status"] != "fail" for r in report["results"] if "-f32-" in r["case"])
    assert children(markers) and all(gone(pid) for pid in children(markers))
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_kills_a_hanging_command_and_its_children(binaries: dict[str, Path], tmp_path: Path) -> None:
    """Protocol 1 this time (one process per request); Ctrl-C reaches the CLI's process group."""
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    impl = faulty("hang", markers, binaries["good"])
    command = [
        sys.executable,
        "-m",
        "conformance",
        "--impl",
        impl,
        "--oracle",
        "fixtures",
        "--case",
        F32_AND_F64,
    ]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=ctrl_c_on,
    )
    deadline = time.monotonic() + 120
    while not children(markers) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert children(markers), proc.communicate()
    assert list((tmp_path / "tmp").glob("lstm-exec-*"))  # the hanging request's directory, for now
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert all(gone(pid) for pid in children(markers))
    assert leftovers(tmp_path) == []


# -- export, read back by the C program ------------------------------------------------------------


def test_export_cases_run_by_the_c_program(binaries: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "export"
    proc = run_cli("export", str(target))
    assert proc.returncode == 0, proc.stderr
    index = json.loads((target / "index.json").read_text())
    assert index["protocol"] == exec_impl.EXPORT_PROTOCOL == 1  # forward requests: the same in 1 and 2
    assert not list(tmp_path.glob(".export*"))  # no staging directory left behind
    declared = declared_rows(C_UNSUPPORTED)
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
    assert factory.conformance_unsupported == C_UNSUPPORTED
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


def test_trace_and_vjp_over_the_protocol_match_lstm_ref(binaries: dict[str, Path]) -> None:
    """The C program's gates and gradients, through the adapter, against lstm_ref's (itself
    checked against torch): the values cross the protocol in the right places and layouts."""
    factory = make_exec_factory(str(binaries["good"]))
    rng = np.random.default_rng(0)

    def states(*shape: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.standard_normal(shape), rng.standard_normal(shape)

    for layers, bidirectional, batch_first, x, hx in (
        (1, False, False, rng.standard_normal((5, 2, 3)), None),
        (1, False, True, rng.standard_normal((2, 5, 3)), states(1, 2, 4)),
        (1, False, False, rng.standard_normal((5, 3)), states(1, 4)),
        (2, True, True, rng.standard_normal((2, 5, 3)), states(4, 2, 4)),
    ):
        config = {"num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first}
        ref = lstm_ref.LSTM(3, 4, **config, dtype=np.float64, seed=1)
        model = factory(input_size=3, hidden_size=4, **config, dtype=np.dtype("float64"), seed=0)
        model.load_state_dict(ref.state_dict())
        recorded = lstm_ref.trace(ref, x, hx).directions
        internals = model.conformance_trace(x, hx)
        assert list(internals) == [(d.layer, d.direction) for d in recorded]
        for d in recorded:
            for name in exec_impl.TRACED:
                got = internals[d.layer, d.direction][name]
                np.testing.assert_allclose(got, getattr(d, name), rtol=1e-12, atol=1e-14, err_msg=name)
        out, (h_n, c_n) = ref(x, hx)
        upstream = [rng.standard_normal(a.shape) for a in (out, h_n, c_n)]
        got_grads, want = model.vjp(x, hx, *upstream), ref.vjp(x, hx, *upstream)
        assert set(got_grads) == set(want) == {"input", "h0", "c0", *ref.state_dict()}
        for name, value in want.items():
            np.testing.assert_allclose(got_grads[name], value, rtol=1e-10, atol=1e-12, err_msg=name)


def test_a_persistent_command_that_breaks_the_protocol_is_named(tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(
        "import json, os, sys\n"
        "if sys.argv[-1] != '--exec-persistent':\n"
        "    caps = {'protocol': 2, 'persistent': True, 'unsupported': {}}\n"
        "    json.dump(caps, open(os.path.join(sys.argv[-1], 'response.json'), 'w'))\n"
        "    sys.exit(0)\n"
        "for line in sys.stdin:\n"
        "    print('loading weights...', flush=True)\n"
    )
    factory = make_exec_factory(f"{sys.executable} {script}")
    assert not hasattr(factory, "vjp") and not hasattr(factory, "conformance_trace")  # no "ops"
    with pytest.raises(
        ExecCommandFailed, match=r"answered b'loading weights...' on stdout.*print anything else to stderr"
    ):
        factory(input_size=3, hidden_size=4)
    script.write_text(
        "import json, os, sys\njson.dump({'protocol': 3}, open(os.path.join(sys.argv[-1], 'response.json'), 'w'))\n"
    )
    with pytest.raises(SystemExit, match="answered protocol 3, this suite speaks 1 and 2"):
        make_exec_factory(f"{sys.executable} {script}")


def test_a_persistent_request_past_its_time_limit_kills_the_command_and_the_next_one_restarts_it(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    factory = make_exec_factory(
        faulty("hang-persistent", tmp_path, binaries["good"])[len("exec:") :], timeout=2
    )
    with pytest.raises(
        ExecCommandFailed, match=r"\(persistent\): construct request ran past 2 s; the command was killed"
    ):
        factory(input_size=3, hidden_size=4, dtype=np.dtype("float64"))
    assert children(tmp_path) and all(gone(pid) for pid in children(tmp_path))
    model = factory(input_size=3, hidden_size=4, dtype=np.dtype("float32"))  # a fresh process
    assert model(np.zeros((5, 2, 3), np.float32))[0].shape == (5, 2, 4)
