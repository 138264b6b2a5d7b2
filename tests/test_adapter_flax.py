"""``--impl flax`` through the real CLI on a small subset (fixtures oracle): every row that runs
passes (float32, float64 with jax_enable_x64, complex64, packed with seq_lengths, the nnx.LSTMCell
cell row, gradients through jax.vjp), and projection is declared with Flax's reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.suite_helpers import run_cli

pytest.importorskip("jax")
pytest.importorskip("flax")

IMPL = "conformance.adapters.flax:FlaxLSTM"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("flax") / "report.json"
    run_cli(
        "--impl", IMPL, "--oracle", "fixtures", "--case", "L1-uni-*", "--jobs", "1", "--report", str(path)
    )
    result: dict[str, Any] = json.loads(Path(path).read_text())
    return result


def test_rows_pass(report: dict[str, Any]) -> None:
    table = {row["feature"]: row for row in report["table"]}
    rows = ("float32", "float64", "complex64", "packed_sorted", "packed_unsorted", "unbatched")
    for row in (*rows, "cell", "state_dict", "whole_sequence", "stepwise", "chunked", "gradients"):
        assert table[row]["status"] == "pass", (row, table[row])
    assert not [r for r in report["results"] if r["status"] == "fail"]
    assert table["gradients"]["passed"] >= 5  # jax.vjp: packed, unbatched, complex64 among them


def test_projection_declared_with_flax_reason(report: dict[str, Any]) -> None:
    table = {row["feature"]: row for row in report["table"]}
    assert table["proj_size"]["status"] == "skipped"
    assert table["proj_size"]["notes"][0].startswith("(declared: Flax's LSTM cells")
