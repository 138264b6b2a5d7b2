"""``--impl haiku`` through the real CLI on the float32 dropout cases (fixtures oracle): two-layer,
bidirectional, packed input with replayed masks and jax.vjp gradients pass; projection is
declared with Haiku's reason; the one numeric finding (hk.dropout refuses rate 1,
docs/compatibility.md) fails exactly the p=1 cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.suite_helpers import run_cli

pytest.importorskip("jax")
pytest.importorskip("haiku")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("haiku") / "report.json"
    run_cli(
        "--impl",
        "haiku",
        "--oracle",
        "fixtures",
        "--case",
        "dropout-*f32*",
        "--jobs",
        "1",
        "--report",
        str(path),
    )
    result: dict[str, Any] = json.loads(Path(path).read_text())
    return result


def test_rows_pass(report: dict[str, Any]) -> None:
    table = {row["feature"]: row for row in report["table"]}
    for row in ("dropout_replay", "packed_unsorted", "stepwise", "chunked", "state_dict"):
        assert table[row]["status"] == "pass", (row, table[row])
    assert table["gradients"]["passed"] >= 2, table["gradients"]  # jax.vjp, replayed masks too
    assert "dm-haiku 0.0.17" in report["provenance"]["impl_version"]


def test_dropout_p1_is_refused_by_haiku(report: dict[str, Any]) -> None:
    failed = [r for r in report["results"] if r["status"] == "fail"]
    assert failed
    assert {r["case"] for r in failed} == {"dropout-p1-train-f32"}
    assert all("ValueError: rate must be in [0, 1)" in r["message"] for r in failed)


def test_projection_declared_with_haiku_reason(report: dict[str, Any]) -> None:
    assert report["unsupported"]["proj_size"] == "hk.LSTM has no projection (proj_size)"
