"""``--impl keras`` through the real CLI on a small subset (fixtures oracle): float32 rows pass,
projection and complex are declared with Keras' reason, and the known finding (float64 computed
in float32 on the JAX backend, docs/compatibility.md) fails on exactly the float64 cases."""

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


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("keras") / "report.json"
    run_cli(
        "--impl", IMPL, "--oracle", "fixtures", "--case", "L1-uni-*", "--jobs", "1", "--report", str(path)
    )
    result: dict[str, Any] = json.loads(Path(path).read_text())
    return result


def test_float32_rows_pass(report: dict[str, Any]) -> None:
    table = {row["feature"]: row for row in report["table"]}
    for row in ("float32", "state_dict", "packed_sorted", "unbatched", "edge_layout"):
        assert table[row]["status"] in ("pass", "FAIL"), (row, table[row])
    assert table["float32"]["status"] == "pass", table["float32"]
    assert table["state_dict"]["status"] == "pass", table["state_dict"]


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
    assert all("dtype float32, expected float64" in r["message"] for r in failed)
    float32_cases = [r for r in report["results"] if "-f32-" in r["case"] and r["status"] != "skip"]
    assert float32_cases and all(r["status"] == "pass" for r in float32_cases)
