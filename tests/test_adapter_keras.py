"""``--impl keras`` through the real CLI on a small subset (fixtures oracle): float32 rows pass,
gradients through ``jax.vjp`` included, projection and complex are declared with Keras' reason,
and the known finding (float64 computed in float32 on the JAX backend, docs/compatibility.md)
fails on exactly the float64 cases. With ``KERAS_BACKEND=tensorflow`` (when TensorFlow is
installed) the run is on TensorFlow, the report says so, and float64 passes, gradients too."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.suite_helpers import run_cli

os.environ.setdefault("KERAS_BACKEND", "jax")  # as the adapter does; Keras defaults to TensorFlow
pytest.importorskip("keras")
pytest.importorskip("jax")

IMPL = "conformance.adapters.keras:KerasLSTM"


def run(tmp: Path, backend: str) -> dict[str, Any]:
    path = tmp / "report.json"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KERAS_BACKEND", backend)
        run_cli(
            "--impl", IMPL, "--oracle", "fixtures", "--case", "L1-uni-*", "--jobs", "1", "--report", str(path)
        )  # fmt: skip
    result: dict[str, Any] = json.loads(path.read_text())
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run(tmp_path_factory.mktemp("keras"), "jax")


def test_float32_rows_pass(report: dict[str, Any]) -> None:
    table = {row["feature"]: row for row in report["table"]}
    for row in ("float32", "state_dict", "packed_sorted", "unbatched", "edge_layout"):
        assert table[row]["status"] in ("pass", "FAIL"), (row, table[row])
    assert table["float32"]["status"] == "pass", table["float32"]
    assert table["state_dict"]["status"] == "pass", table["state_dict"]
    assert "backend jax: jax " in report["provenance"]["impl_version"]
    passed = [r for r in report["results"] if r["check"] == "gradients" and r["status"] == "pass"]
    assert {r["case"] for r in passed} >= {
        "L1-uni-batched-nohx-f32-eval",
        "L1-uni-packed_sorted-nohx-f32-eval",
    }


def test_declared_rows_carry_keras_reason(report: dict[str, Any]) -> None:
    table = {row["feature"]: row for row in report["table"]}
    assert table["proj_size"]["status"] == "skipped"
    assert table["proj_size"]["notes"][0] == "(declared: keras.layers.LSTM has no projection (proj_size))"
    for row in ("complex64", "complex128"):
        assert table[row]["status"] == "skipped"
        assert table[row]["notes"][0].startswith("(declared: keras.layers.LSTM has no complex dtypes")


def test_float64_finding_fails_exactly_the_float64_cases(report: dict[str, Any]) -> None:
    failed = [r for r in report["results"] if r["status"] == "fail"]
    assert failed
    assert all("-f64-" in r["case"] for r in failed), [r["case"] for r in failed]
    for r in failed:  # the forward checks' words, and the gradient check's
        assert (
            "dtype float32, expected float64" in r["message"]
            or "dtype float32, torch's is float64" in r["message"]
        )
    float32_cases = [r for r in report["results"] if "-f32-" in r["case"] and r["status"] != "skip"]
    assert float32_cases and all(r["status"] == "pass" for r in float32_cases)


def test_on_tensorflow_the_report_names_it_and_float64_passes(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    report = run(tmp_path, "tensorflow")
    assert "backend tensorflow: tensorflow " in report["provenance"]["impl_version"]
    table = {row["feature"]: row for row in report["table"]}
    for row in ("float32", "float64", "unbatched", "packed_sorted", "packed_unsorted", "gradients"):
        assert table[row]["status"] == "pass", (row, table[row])
    assert not [r for r in report["results"] if r["status"] == "fail"]
