"""``--impl onnxruntime`` through the real CLI on a few cases: the rows that run pass, the
declared rows read skipped with the exporter's / onnxruntime's own reason, and onnxruntime's
abort on a float32 batch of 0 is a named crash of those cases, not a lost run. Plus direct
checks of what the default run cannot reach (unsorted packed input in float32, re-export after
load_state_dict) and that the declared reasons are still what the libraries say."""

from __future__ import annotations

import importlib.util
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

import lstm_ref  # noqa: E402
from conformance.adapters import onnxruntime as adapter  # noqa: E402
from tests.suite_helpers import run_cli  # noqa: E402


@cache
def run(pattern: str, tmp: str) -> tuple[int, dict[str, Any], str]:
    report = Path(tmp) / "report.json"
    proc = run_cli(
        "--impl",
        "onnxruntime",
        "--jobs",
        "1",
        "--quiet",
        "--oracle",
        "fixtures",
        "--case",
        pattern,
        "--report",
        str(report),
    )
    return proc.returncode, json.loads(report.read_text()), proc.stdout


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return lambda pattern: run(pattern, str(tmp_path_factory.mktemp("onnxruntime")))


def table(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in report["table"]}


def test_one_layer_cases_pass_or_read_declared(reports: Any) -> None:
    code, report, out = reports("L1-uni-*")  # f32 dense/unbatched/packed pass; f64, complex, proj declared
    rows = table(report)
    assert code == 0, out[-3000:]
    for row in (
        "whole_sequence",
        "stepwise",
        "chunked",
        "unbatched",
        "packed_sorted",
        "float32",
        "state_dict",
    ):
        assert rows[row]["status"] == "pass", (row, rows[row])
    declared = {
        "proj_size": adapter.PROJ_REASON,
        "float64": adapter.DOUBLE_REASON,
        "complex64": adapter.COMPLEX_REASON,
        "complex128": adapter.COMPLEX_REASON,
        "dropout_replay": adapter.DROPOUT_REASON,
        "dropout_p0_p1": adapter.DROPOUT_REASON,
        "dropout_statistics": adapter.DROPOUT_REASON,
    }
    for row, reason in declared.items():
        assert (rows[row]["status"], rows[row]["passed"], rows[row]["failed"]) == ("skipped", 0, 0)
        assert rows[row]["notes"][0] == f"(declared: {reason})"
    assert not [r for r in report["results"] if r["status"] == "pass" and "proj_size" in r["features"]]


def test_batch_of_zero_is_a_named_crash_and_the_run_goes_on(reports: Any) -> None:
    code, report, _ = reports("edge-[bo]*-f32")  # edge-batch0-f32, edge-batch0-hx-f32, edge-one-step-f32
    assert code == 1
    crash = [r for r in report["results"] if r["case"] == "edge-batch0-f32" and r["status"] == "fail"]
    assert len(crash) == 1, crash
    assert "the worker process was killed by SIGABRT" in crash[0]["message"]
    one_step = [r for r in report["results"] if r["case"] == "edge-one-step-f32"]
    assert one_step and not [r for r in one_step if r["status"] == "fail"], one_step
    assert [r for r in one_step if r["status"] == "pass" and r["check"] == "forward"]
    assert table(report)["edge_batch0"]["status"] == "FAIL"


def test_call_errors_reach_onnxruntime(reports: Any) -> None:
    code, report, _ = reports("errors:input-*-f32")
    assert code == 1
    results = {(r["case"], r["check"]): r for r in report["results"] if r["oracle"] == "fixtures"}
    size = results["errors:input-size-mismatch-f32", "error_types"]
    assert "raised InvalidArgument at call" in size["message"], size
    assert results["errors:input-size-mismatch-f32", "errors"]["status"] == "pass"
    assert "raised nothing" in results["errors:input-seq-len-0-f32", "errors"]["message"]
    # the abort fails the error case it hit, by its own id; the other error cases still ran
    crashed = [r for r in report["results"] if r["check"] == "crash"]
    assert {r["case"] for r in crashed} == {"errors:input-batch-0-accepted-f32"}, crashed
    assert "errors (errors:input-batch-0-accepted-f32)" in crashed[0]["message"]
    assert "SIGABRT" in crashed[0]["message"]


def _packed_case(enforce_sorted: bool) -> tuple[Any, Any, Any]:
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(1)
    module = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).eval()
    lengths = torch.tensor([5, 4, 5, 2] if not enforce_sorted else [5, 5, 4, 2])
    x = pack_padded_sequence(torch.randn(5, 4, 3), lengths, enforce_sorted=enforce_sorted)
    hx = (torch.randn(4, 4, 4), torch.randn(4, 4, 4))
    return module, x, hx


@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_input_matches_torch(enforce_sorted: bool) -> None:
    module, x, hx = _packed_case(enforce_sorted)
    model = adapter.OnnxRuntimeLSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    model.load_state_dict({k: v.numpy() for k, v in module.state_dict().items()})
    fields = [
        None if f is None else f.numpy()
        for f in (x.data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    ]
    out, (h_n, c_n) = model(lstm_ref.PackedSequence(*fields), (hx[0].numpy(), hx[1].numpy()))
    with torch.no_grad():
        want, (want_h, want_c) = module(x, hx)
    assert isinstance(out, lstm_ref.PackedSequence)
    np.testing.assert_array_equal(out.batch_sizes, fields[1])
    for got, expected in ((out.data, want.data), (h_n, want_h), (c_n, want_c)):
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_new_weights_are_exported_again() -> None:
    model = adapter.OnnxRuntimeLSTM(3, 4)
    x = np.ones((2, 1, 3), np.float32)
    before = model(x)[0]
    state = {k: v * 2 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    module = torch.nn.LSTM(3, 4).eval()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    with torch.no_grad():
        want = module(torch.from_numpy(x))[0].numpy()
    after = model(x)[0]
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, want, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore")
def test_the_declared_reasons_are_the_libraries_own() -> None:
    with pytest.raises(Exception, match="LSTMs with projections"):
        adapter.OnnxRuntimeLSTM(3, 4, proj_size=2)(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(Exception, match="LSTM operator does not support double yet"):
        adapter.OnnxRuntimeLSTM(3, 4, dtype=np.float64)(np.zeros((2, 1, 3)))
    for dtype in (np.complex64, np.complex128):
        with pytest.raises(Exception, match="is an unexpected tensor scalar type"):
            adapter.OnnxRuntimeLSTM(3, 4, dtype=dtype)(np.zeros((2, 1, 3), dtype))
    assert importlib.util.find_spec("onnxruntime.training") is None  # the gradients reason: inference only
    module = adapter.OnnxRuntimeLSTM(3, 4, num_layers=2, dropout=0.5).train().module
    with pytest.raises(Exception, match="dropout in training mode"):  # the exporter's own refusal
        torch.onnx.export(
            module,
            (torch.zeros(2, 1, 3),),
            io.BytesIO(),
            dynamo=False,
            training=torch.onnx.TrainingMode.TRAINING,
        )
