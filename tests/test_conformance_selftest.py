"""The conformance suite, tested: it passes lstm_ref and torch, fails every deliberately broken
implementation (on the row that should catch it), skips what an implementation declares
unsupported, works without torch, and treats bad fixtures as errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import cli
from conformance.checks.errors import error_cases
from conformance.contract.cases import FACTORS, all_cases, pairwise
from conformance.contract.selection import fixture_ids
from conformance.oracles import fixtures, regen
from conformance.oracles.sources import make_oracles
from conformance.run import report, runner
from conformance.run.impls import load_impl
from tests import broken_impls
from tests.suite_helpers import ROOT, needs_torch, run_cli, run_in_process


def table_of(
    impl_spec: str, oracle: str = "fixtures", rows: tuple[str, ...] = ()
) -> dict[str, report.TableRow]:
    return run_in_process(impl_spec, oracle, rows=rows)[0]


# -- broken implementations are caught -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(broken_impls.BROKEN))
def test_broken_implementation_is_caught(name: str) -> None:
    rows = table_of(f"tests.broken_impls:{name}", rows=broken_impls.BROKEN[name])
    failing = sorted(f for f, r in rows.items() if r.status == "FAIL")
    for row in broken_impls.BROKEN[name]:
        assert row in failing, f"{name}: row {row!r} should fail; failing rows: {failing}"


@pytest.mark.parametrize(
    ("name", "oracle", "cases"),
    [
        ("WrongGateOrder", "both", "probe-gate_i*"),
        ("PaddingRunThrough", "fixtures", "*packed*"),
        ("DropoutAfterLastLayer", "fixtures", "dropout*"),
    ],
)
def test_cli_fails_broken_implementation(name: str, oracle: str, cases: str, tmp_path: Path) -> None:
    """Through the CLI, on the cases that count towards the rows the bug should fail (the
    in-process test above runs those rows' every case)."""
    report = tmp_path / "report.json"
    proc = run_cli(
        "--impl", f"tests.broken_impls:{name}", "--oracle", oracle, "--case", cases, "--report", str(report)
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "-> FAIL" in proc.stdout
    assert f"rerun: lstm-conformance --impl tests.broken_impls:{name} --case " in proc.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is False
    failing = {row["feature"] for row in data["table"] if row["status"] == "FAIL"}
    assert set(broken_impls.BROKEN[name]) <= failing


def test_failure_message_locates_layer_direction_step_and_gate() -> None:
    impl = load_impl("tests.broken_impls:WrongGateOrder")
    results = runner.run_all(runner.jobs_for(impl, make_oracles("fixtures"), pattern="L3-bi-bf-p3-*"))
    forward = next(r for r in results if r.check == "forward" and r.status == "fail")
    assert "diverges first at" in forward.message and "time step" in forward.message
    assert "layer 0 diverges" in forward.message
    assert "tolerance rtol=" in forward.message
    gate = next(r for r in results if r.check == "forward" and "gate/state" in r.message)
    assert "gate/state 'f'" in gate.message or "gate/state 'g'" in gate.message
    assert forward.rerun.startswith(
        "lstm-conformance --impl tests.broken_impls:WrongGateOrder --case L3-bi-bf-p3-"
    )


@pytest.mark.parametrize(
    "case_id", ["mix-packed_unsorted-hx-bi-L2-proj", "L1-bi-bf-p3-nobias-unbatched-hx-f64-train"]
)
def test_gate_is_located_for_packed_and_unbatched_input(case_id: str) -> None:
    impl = load_impl("tests.broken_impls:WrongGateOrder")
    results = runner.run_all(runner.jobs_for(impl, make_oracles("fixtures"), pattern=case_id))
    forward = next(r for r in results if r.check == "forward")
    assert forward.status == "fail"
    assert "layer 0, direction 0, time step 0, gate/state 'f'" in forward.message


def test_stacking_bug_is_located_between_layers() -> None:
    impl = load_impl("tests.broken_impls:DropoutNotScaled")
    results = runner.run_all(runner.jobs_for(impl, make_oracles("fixtures"), pattern="dropout-replay-*"))
    forward = next(r for r in results if r.check == "forward" and r.status == "fail")
    assert "Every layer matches when run alone" in forward.message


def test_deeper_layer_bug_is_located_inside_the_stack() -> None:
    """Layer 1's reverse o gate is wrong only where layer 1 sits in a stack: rebuilt alone as a
    one-layer model it is right, so the stack cut after layer 1 names it."""
    impl = load_impl("tests.broken_impls:ReverseOGateDeepLayers")
    case_id = "L3-bi-bf-p3-nobias-batched-hx-f32-eval"
    results = runner.run_all(runner.jobs_for(impl, make_oracles("fixtures"), pattern=case_id))
    forward = next(r for r in results if r.check == "forward")
    assert forward.status == "fail"
    assert "but inside the stack layer 1 diverges" in forward.message
    assert "layer 1, direction 1 (reverse), time step 5, gate/state 'o'" in forward.message


def test_broken_gates_are_not_judged_as_a_dropout_bug() -> None:
    """Swapped i/f gates shut every unit of the wired layer: not a dropout bug."""
    for name in ("InputForgetGatesSwapped", "WrongGateOrder"):
        impl = load_impl(f"tests.broken_impls:{name}")
        (result,) = runner.run_all(
            runner.jobs_for(impl, make_oracles("fixtures"), pattern="dropout_statistics")
        )
        assert result.status == "skip", result.message
        assert result.message.startswith("not judged: forward fails on this configuration without dropout")


# -- correct implementations pass ----------------------------------------------------------------


def test_lstm_ref_passes_every_row_in_process() -> None:
    rows = table_of("lstm_ref:LSTM", "fixtures")
    assert all(r.status != "FAIL" for r in rows.values()), {f: r.notes for f, r in rows.items()}
    float64_run = error_cases("float64")  # lstm_ref supports float64: its error cases run in it
    assert rows["whole_sequence"].passed > 40
    assert rows["errors"].passed == rows["error_types"].passed == len(float64_run)


# lstm_ref's default run with both oracles, every row passing: tests/test_docs.py's
# test_generated_blocks_are_current makes that run (the README's sample is its output) and fails
# unless it passes with both oracles on.


@needs_torch
def test_cli_torch_adapter_passes_against_fixtures(tmp_path: Path) -> None:
    # a slice: `regen --check` (tests/test_fixtures_robustness.py) compares every fixture with torch
    report = tmp_path / "r.json"
    proc = run_cli("--impl", "torch", "--oracle", "fixtures", "--case", "L1-*", "--report", str(report))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads(report.read_text())["oracles"] == {"fixtures": "on"}  # torch is here, not asked for


def test_cli_without_torch_uses_fixtures_only(tmp_path: Path) -> None:
    # a slice: the whole default run without torch is tests/test_installed.py's
    report = tmp_path / "r.json"
    proc = run_cli("--case", "L1-uni-*", "--report", str(report), block_torch=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["oracles"]["fixtures"] == "on"
    assert data["oracles"]["torch"].startswith("torch is not importable")
    skipped = [r for r in data["results"] if r["status"] == "skip"]
    assert skipped and all(r["oracle"] == "torch" for r in skipped)
    assert "torch is not importable" in proc.stdout


def test_cli_without_torch_still_catches_bugs() -> None:
    proc = run_cli(
        "--impl", "tests.broken_impls:DirectionsSwapped", "--case", "L1-bi-batched*", block_torch=True
    )
    assert proc.returncode == 1 and "-> FAIL" in proc.stdout, proc.stdout[-2000:]


def test_impl_torch_without_torch_is_a_clear_error() -> None:
    proc = run_cli("--impl", "torch", block_torch=True)
    assert proc.returncode != 0 and "torch is not importable" in proc.stderr
    proc = run_cli("regen", "--check", block_torch=True)
    assert proc.returncode == 2 and "needs torch" in proc.stderr


# -- declared capabilities -------------------------------------------------------------------------


def test_declared_unsupported_is_skipped_with_reason_not_passed() -> None:
    rows = table_of("tests.broken_impls:PackedDeclaredUnsupported")
    for row in ("packed_sorted", "packed_unsorted"):
        assert rows[row].status == "skipped" and rows[row].passed == 0
        assert any("no PackedSequence support yet" in n for n in rows[row].notes)
    assert all(r.status != "FAIL" for r in rows.values())


def test_plain_wrapper_passes_and_optional_cell_is_skipped() -> None:
    rows = table_of("tests.broken_impls:Wrapped")
    assert all(r.status != "FAIL" for r in rows.values())
    assert rows["cell"].status == "skipped" and "provides no LSTMCell" in rows["cell"].notes[0]
    assert rows["whole_sequence"].passed > 40


def test_pytest_entry_runs_without_torch() -> None:
    # a slice of the cases: tests/test_installed.py runs them all through the installed plugin
    code = "import sys; sys.modules['torch'] = None; import pytest; sys.exit(pytest.main(['conformance', '-q', '-p', 'no:cacheprovider', '-rs', '-k', 'L1- or random']))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "torch is not importable" in proc.stdout and " passed" in proc.stdout


class _UnknownFeature(broken_impls.lstm_ref.LSTM):
    conformance_unsupported = {"packing": "typo"}  # noqa: RUF012


def test_unknown_declared_feature_is_an_error() -> None:
    with pytest.raises(SystemExit, match="unknown feature 'packing'"):
        load_impl("tests.test_conformance_selftest:_UnknownFeature")


def test_bad_impl_spec_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="MODULE:ATTR"):
        load_impl("numpy")  # a bare module is not an implementation
    with pytest.raises(SystemExit, match="cannot import"):
        load_impl("no_such_module:LSTM")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    target = tmp_path / "fixtures"
    shutil.copytree(fixtures.FIXTURES_DIR, target)
    return target


def _cli_in_process(capsys: Any, *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().out


def test_corrupted_fixture_fails_naming_the_file(fixture_copy: Path, capsys: Any) -> None:
    victim = fixture_copy / "cases" / "probe-gate_f.npz"
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    victim.write_bytes(bytes(blob))
    code, out = _cli_in_process(
        capsys, "--oracle", "fixtures", "--fixtures", str(fixture_copy), "--case", "probe-gate_f"
    )
    assert code == 1
    assert "probe-gate_f.npz" in out and "sha256" in out


def test_missing_fixture_fails_naming_the_file(fixture_copy: Path, capsys: Any) -> None:
    (fixture_copy / "cases" / "edge-batch0.npz").unlink()
    code, out = _cli_in_process(
        capsys, "--oracle", "fixtures", "--fixtures", str(fixture_copy), "--case", "edge-batch0"
    )
    assert code == 1 and "edge-batch0.npz" in out and "missing" in out


def test_missing_manifest_fails(fixture_copy: Path, capsys: Any) -> None:
    (fixture_copy / "manifest.json").unlink()
    code, out = _cli_in_process(
        capsys, "--oracle", "fixtures", "--fixtures", str(fixture_copy), "--case", "L1-*"
    )
    assert code == 1 and "manifest.json" in out and "lstm-conformance regen" in out


def test_case_dropped_from_manifest_fails(fixture_copy: Path, capsys: Any) -> None:
    manifest = json.loads((fixture_copy / "manifest.json").read_text())
    del manifest["cases"]["edge-one-step"]
    (fixture_copy / "manifest.json").write_text(json.dumps(manifest))
    code, out = _cli_in_process(
        capsys, "--oracle", "fixtures", "--fixtures", str(fixture_copy), "--case", "edge-one-step"
    )
    assert code == 1 and "missing from" in out


def test_manifest_lists_every_default_case_with_provenance() -> None:
    manifest = fixtures.FixtureStore().manifest
    assert set(manifest["cases"]) == fixture_ids()  # the default cases plus the completions
    assert {c.id for c in all_cases()} <= fixture_ids()
    assert manifest["generated_by"] == "lstm-conformance regen"
    assert {"torch", "numpy"} <= set(manifest["versions"])
    for entry in manifest["cases"].values():
        assert len(entry["sha256"]) == 64 and entry["file"].endswith(".npz")
    total = sum(p.stat().st_size for p in fixtures.FIXTURES_DIR.rglob("*") if p.is_file())
    assert total < 3_000_000, f"fixtures are {total / 1e6:.1f} MB"


def test_npz_writer_is_deterministic_and_pickle_free() -> None:
    arrays = {"w.a": np.arange(6.0).reshape(2, 3), "mask_0": np.array([True, False]), "error": np.array("X")}
    first, second = fixtures.npz_bytes(arrays), fixtures.npz_bytes(dict(arrays))
    assert first == second
    back = fixtures.read_npz_bytes(first, "mem")
    assert list(back) == list(arrays) and all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_drift_is_reported_per_case_and_array(fixture_copy: Path) -> None:
    store = fixtures.FixtureStore(fixture_copy)
    manifest = json.loads(json.dumps(store.manifest))
    files = {e["file"]: (fixture_copy / e["file"]).read_bytes() for e in manifest["cases"].values()}
    assert regen.drift(store, manifest, files) == []
    entry = manifest["cases"]["probe-gate_i"]
    arrays = fixtures.read_npz_bytes(files[entry["file"]], "x")
    arrays["h_n"] = arrays["h_n"] + 1e-6
    files[entry["file"]] = fixtures.npz_bytes(arrays)
    entry["sha256"] = fixtures.sha256(files[entry["file"]])
    problems = regen.drift(store, manifest, files)
    assert len(problems) == 1 and problems[0].startswith("probe-gate_i/h_n: max abs drift 1.000e-06 (beyond")


@needs_torch
def test_regeneration_is_byte_identical_for_a_sample() -> None:
    """Two regenerations on one machine give the same bytes; against the committed fixtures
    (made on another machine, perhaps another CPU) only rounding within the drift tolerance."""
    sample = [
        c
        for c in all_cases()
        if c.id in {"probe-gate_o", "dropout-replay-f32-bf", "L1-uni-batched-nohx-f32-eval"}
    ]
    _, files = regen.build(sample, {})
    _, again = regen.build(sample, {})
    assert files == again
    for case in sample:
        rel = fixtures.case_file(case.id)
        committed = fixtures.read_npz_bytes((fixtures.FIXTURES_DIR / rel).read_bytes(), rel)
        drift = regen._array_drift(case.id, committed, fixtures.read_npz_bytes(files[rel], rel))
        assert not [line for line, beyond in drift if beyond], drift


# -- cases ---------------------------------------------------------------------------------------


def test_pairwise_covers_every_pair_and_is_small() -> None:
    rows = pairwise(FACTORS)
    names = list(FACTORS)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            seen = {(r[a], r[b]) for r in rows}
            assert seen == {(x, y) for x in FACTORS[a] for y in FACTORS[b]}, (a, b)
    assert len(rows) <= 24
    assert pairwise(FACTORS) == rows  # deterministic


def test_case_ids_are_unique_and_seeds_stable() -> None:
    cases = all_cases(full=True)
    assert len({c.id for c in cases}) == len(cases) >= 3072
    probe = next(c for c in all_cases() if c.id == "probe-gate_i")
    assert probe.seed == probe.seed and np.array_equal(probe.make_data()["x"], probe.make_data()["x"])
