"""The conformance suite's ``gradients`` row, tested: it passes lstm_ref and the torch adapter,
fails every deliberately broken backward (tests/broken_gradient_impls.py) on that row, naming
the diverging tensor, shows an implementation without ``vjp`` as "not supported", and works
from the fixtures with torch absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conformance.checks import gradients
from conformance.contract.cases import all_cases
from conformance.contract.selection import default_cases, fixture_ids
from conformance.oracles import fixtures
from tests import broken_gradient_impls
from tests.suite_helpers import has_torch, needs_torch, run_cli, run_in_process

MODULE = "tests.broken_gradient_impls"


# -- the fixtures carry the gradients ------------------------------------------------------------------


def test_every_fixture_case_stores_upstream_and_torch_gradients() -> None:
    store = fixtures.FixtureStore()
    for case in all_cases():
        arrays = store.load(case)
        if case.stores_outputs_only:  # a size case keeps its outputs only; live torch checks its gradients
            assert not any(k.startswith(("grad_", "dout_")) for k in arrays), case.id
            continue
        if "error" in arrays:
            assert not any(k.startswith(("grad_", "dout_")) for k in arrays), case.id
            continue
        for k in ("output", "h_n", "c_n"):
            assert (
                arrays["dout_" + k].shape == arrays[k].shape and arrays["dout_" + k].dtype == arrays[k].dtype
            )
        names = ["input", "h0", "c0", *(k[2:] for k in arrays if k.startswith("w."))]
        assert [k[5:] for k in arrays if k.startswith("grad_")] == names, case.id
        data = arrays["packed_data"] if case.packed else arrays["x"]
        assert arrays["grad_input"].shape == data.shape, case.id


# -- correct implementations pass -------------------------------------------------------------------


def test_lstm_ref_passes_the_gradients_row_from_fixtures() -> None:
    rows, _ = run_in_process("lstm_ref:LSTM")
    grad = rows["gradients"]
    assert grad.status == "pass" and grad.failed == 0 and grad.skipped == 0, grad.notes
    store, held = fixtures.FixtureStore(), fixture_ids()
    assert grad.passed == sum(
        1
        for c in default_cases()  # the run's selection, where the fixtures hold the case's gradients
        if c.id in held and not c.stores_outputs_only and "error" not in store.load(c)
    )
    assert all(r.status != "FAIL" for r in rows.values())


@needs_torch
def test_torch_adapter_vjp_passes_against_gradient_fixtures() -> None:
    rows, _ = run_in_process("torch")
    assert rows["gradients"].status == "pass" and rows["gradients"].skipped == 0, rows["gradients"].notes
    assert rows["gradients"].passed >= 40


@needs_torch
def test_torch_adapter_vjp_replays_dropout_masks() -> None:
    """dropout_masks reach the adapter's layer-by-layer autograd (shared Parameters)."""
    _, results = run_in_process("torch", oracle="both", pattern="dropout-replay-*")
    grads = [r for r in results if r.check == "gradients"]
    # dropout-replay-f32-bf, dropout-replay-packed-bi and its float32 twin, against both oracles
    assert len(grads) == 6 and all(r.status == "pass" for r in grads), [r.message for r in grads]


@needs_torch
def test_live_torch_gradients_for_random_configurations() -> None:
    _, results = run_in_process("lstm_ref:LSTM", oracle="torch", pattern="random-*")
    grads = [r for r in results if r.check == "gradients"]
    assert len(grads) >= 6 and all(r.status == "pass" for r in grads), [r.message for r in grads]


# -- broken backward passes are caught ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(broken_gradient_impls.BROKEN))
def test_broken_gradient_is_caught_on_the_gradients_row(name: str) -> None:
    rows, results = run_in_process(f"{MODULE}:{name}")
    failing = sorted(f for f, r in rows.items() if r.status == "FAIL")
    assert failing == ["gradients"], f"{name}: failing rows {failing}"
    messages = [r.message for r in results if r.check == "gradients" and r.status == "fail"]
    tensor = broken_gradient_impls.BROKEN[name]
    assert any(m.startswith(f"gradient of {tensor} diverges") for m in messages), (tensor, messages[:3])
    first = messages[0]
    assert (
        "max abs err" in first
        and "max rel err" in first
        and "tolerance rtol=" in first
        and "worst at" in first
    )


def test_failure_names_the_first_diverging_tensor_and_the_others() -> None:
    _, results = run_in_process(f"{MODULE}:ReverseWeightGradsSwapped", pattern="mix-bi-L3-proj-hx-bf")
    (fail,) = [r for r in results if r.check == "gradients"]
    assert fail.status == "fail"
    assert fail.message.startswith("gradient of 'weight_ih_l0' diverges")
    assert (
        "\n    also diverging: weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_hr_l0, weight_ih_l0_reverse,"
        in fail.message
    )
    assert (
        fail.rerun
        == f"lstm-conformance --impl {MODULE}:ReverseWeightGradsSwapped --case mix-bi-L3-proj-hx-bf --oracle fixtures"
    )


def test_cli_fails_broken_gradient_with_json_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    oracle = "both" if has_torch() else "fixtures"
    proc = run_cli(
        "--impl", f"{MODULE}:DroppedC0Grad", "--oracle", oracle, "--case", "L2-*", "--report", str(report)
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAIL gradients [" in proc.stdout and "gradient of 'c0' diverges" in proc.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is False
    failing = {row["feature"] for row in data["table"] if row["status"] == "FAIL"}
    assert failing == {"gradients"}
    oracles = {r["oracle"] for r in data["results"] if r["check"] == "gradients" and r["status"] == "fail"}
    assert oracles == ({"fixtures", "torch"} if has_torch() else {"fixtures"})


def test_cli_without_torch_checks_gradients_from_fixtures(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = run_cli(
        "--impl", f"{MODULE}:BiasHHGradZeroed", "--case", "L2-*", "--report", str(report), block_torch=True
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["oracles"]["torch"].startswith("torch is not importable")
    rows = {row["feature"]: row for row in data["table"]}
    assert rows["gradients"]["status"] == "FAIL" and rows["gradients"]["failed"] > 0
    proc = run_cli("--case", "dropout-replay-*", "--report", str(report), block_torch=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    grads = [r for r in json.loads(report.read_text())["results"] if r["check"] == "gradients"]
    assert [(r["oracle"], r["status"]) for r in grads] == [("fixtures", "pass")] * 3


# -- implementations without a backward ------------------------------------------------------------------


def test_impl_without_vjp_is_not_supported_and_still_passes(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = run_cli("--impl", f"{MODULE}:NoVjp", "--oracle", "fixtures", "--report", str(report))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    rows = {row["feature"]: row for row in data["table"]}
    grad = rows["gradients"]
    assert (
        grad["status"] == "skipped" and grad["passed"] == 0 and grad["failed"] == 0 and grad["skipped"] > 40
    )
    assert grad["notes"] == [gradients.NOT_SUPPORTED]
    assert "gradients: not supported" in proc.stdout
    assert rows["whole_sequence"]["status"] == "pass"


def test_declared_unsupported_gradients_are_skipped_with_the_reason() -> None:
    rows, _ = run_in_process(f"{MODULE}:GradientsDeclaredUnsupported")
    grad = rows["gradients"]
    assert grad.status == "skipped" and grad.passed == 0 and grad.failed == 0
    assert any("backward not validated yet" in n for n in grad.notes)
    assert all(r.status != "FAIL" for r in rows.values())


def test_declared_unsupported_case_features_skip_their_gradients() -> None:
    rows, results = run_in_process("tests.broken_impls:PackedDeclaredUnsupported")
    packed = [r for r in results if r.check == "gradients" and "packed" in r.case]
    assert packed and all(r.status == "skip" and "no PackedSequence support yet" in r.message for r in packed)
    assert rows["gradients"].status == "pass"


# -- the gradient comparison itself ---------------------------------------------------------------------


def test_compare_gradient_tolerance_is_relative_to_the_tensor_scale() -> None:
    case = next(c for c in all_cases() if c.id == "probe-gate_i")
    want = np.array([[1000.0, 1e-9]])
    ok = want + np.array([[5e-10, 5e-10]])  # 5e-13 relative to max|grad|: within rtol=1e-12
    assert gradients.compare_gradient(ok, want, "weight_hr_l0", case).ratio < 1
    with pytest.raises(gradients.Divergence, match="gradient of 'weight_hr_l0' diverges"):
        gradients.compare_gradient(want + 2e-9, want, "weight_hr_l0", case)
    with pytest.raises(gradients.Divergence, match="dtype float32, torch's is float64"):
        gradients.compare_gradient(want.astype(np.float32), want, "x", case)
    with pytest.raises(gradients.Divergence, match="NaN/Inf pattern"):
        gradients.compare_gradient(np.array([[np.nan, 1e-9]]), want, "x", case)


def test_a_permille_weight_gradient_error_fails_in_every_dtype() -> None:
    _, results = run_in_process(f"{MODULE}:WeightGradOffByOnePermille")
    failed = {
        c.dtype
        for c in all_cases()
        for r in results
        if r.case == c.id and r.check == "gradients" and r.status == "fail"
    }
    assert failed == {"float32", "float64", "complex64", "complex128"}
