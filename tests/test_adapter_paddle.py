"""``--impl paddle`` through the real CLI: the dropout cases (training mode, so Paddle's
backward runs and its gradients are checked against torch's, with given masks replayed) and
the one-layer cases (forward rows pass; the eval-mode gradients fail with Paddle's own error;
complex reads declared). Plus direct checks of the findings the default run meets (bias=False,
the empty sequence as a named crash) and of the declared reason."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("paddle")
pytest.importorskip("torch")

from conformance.adapters import paddle as adapter
from tests.suite_helpers import run_cli


@cache
def run(pattern: str, tmp: str) -> tuple[int, dict[str, Any], str]:
    report = Path(tmp) / "report.json"
    proc = run_cli(
        "--impl", "paddle", "--jobs", "1", "--quiet", "--oracle", "fixtures",
        "--case", pattern, "--report", str(report),
    )  # fmt: skip
    return proc.returncode, json.loads(report.read_text()), proc.stdout


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return lambda pattern: run(pattern, str(tmp_path_factory.mktemp("paddle")))


def results(report: dict[str, Any], check: str) -> dict[str, str]:
    return {r["case"]: r["status"] for r in report["results"] if r["check"] == check}


def table(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in report["table"]}


def test_training_mode_gradients_and_replayed_masks_match_torch(reports: Any) -> None:
    _, report, out = reports("dropout-[pr]*")  # p0, p1, replay (bf, packed-bi), float32 twins
    gradients, forward = results(report, "gradients"), results(report, "forward")
    for case in ("dropout-p0-train", "dropout-p1-train", "dropout-replay-f32-bf", "dropout-replay-packed-bi"):
        assert gradients[case] == "pass", (case, out[-3000:])
        assert forward[case] == "pass", (case, out[-3000:])
    assert table(report)["dropout_replay"]["status"] == "pass"


def test_one_layer_forward_passes_and_eval_mode_has_no_backward(reports: Any) -> None:
    code, report, out = reports("L1-uni-*")
    rows = table(report)
    assert code == 1, out[-3000:]
    for row in ("whole_sequence", "stepwise", "chunked", "unbatched", "packed_sorted", "packed_unsorted"):
        assert rows[row]["status"] == "pass", (row, rows[row])
    for row in ("float32", "float64"):  # every forward check; the row FAILs on gradients
        assert rows[row]["passed"] > 0
    assert rows["complex64"]["notes"][0] == f"(declared: {adapter.COMPLEX_REASON})"
    eval_failures = [
        r["message"] for r in report["results"] if r["check"] == "gradients" and r["status"] == "fail"
    ]
    assert eval_failures and all("Tensor holds no memory" in m for m in eval_failures), eval_failures


def test_an_empty_sequence_is_a_named_crash_and_bad_dropout_is_accepted(reports: Any) -> None:
    code, report, _ = reports("errors:*")
    assert code == 1
    crashes = [r for r in report["results"] if r["check"] == "crash"]
    assert {r["case"] for r in crashes} >= {"errors:input-seq-len-0"}, crashes
    assert all("the worker process was killed by SIG" in r["message"] for r in crashes)
    messages = {r["case"]: r["message"] for r in report["results"] if r["status"] == "fail"}
    assert (
        "raised nothing; torch raises ValueError at construction" in messages["errors:ctor-dropout-negative"]
    )


def test_bias_false_with_two_layers_fails_in_paddles_constructor() -> None:
    with pytest.raises(IndexError, match="list assignment index out of range"):
        adapter.PaddleLSTM(3, 4, num_layers=2, bias=False)


def test_projections_and_layouts_convert_both_ways() -> None:
    """weight_hr is Paddle's weight_ho transposed, and load/state_dict round-trip torch's names."""
    import torch

    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, num_layers=2, proj_size=2, batch_first=True, dtype=torch.float64)
    model = adapter.PaddleLSTM(3, 4, num_layers=2, proj_size=2, batch_first=True, dtype=np.float64).eval()
    state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    model.load_state_dict(state)
    assert list(model.state_dict()) == list(state)
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    out, (h_n, c_n) = model(x)
    with torch.no_grad():
        want, (want_h, want_c) = module(torch.from_numpy(x))
    for got, expected in ((out, want), (h_n, want_h), (c_n, want_c)):
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12, atol=1e-14)


def test_the_declared_reason_is_paddles_own() -> None:
    import paddle

    with pytest.raises(TypeError, match=r"only supports \[float16, float32, float64, bfloat16\]"):
        paddle.set_default_dtype("complex64")
