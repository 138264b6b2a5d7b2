"""``--impl tensorflow`` through the real CLI on the float32 cases of one to three layers and of
dropout (fixtures oracle): forward, packed input (sorted and unsorted, bidirectional: each
sequence reversed within its length), unbatched, the LSTMBlockCell ``cell`` row and gradients
through tf.GradientTape pass; projection, float64, complex and the error rows are declared with
the op's reason; tf.nn.dropout's refusal of rate=1 fails exactly the p=1 case. Plus direct checks
that the declared reasons are what TensorFlow says today, and of the two gradient findings of
docs/compatibility.md (BlockLSTMV2's gradient, BlockLSTM's on an empty batch) against torch."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.suite_helpers import run_cli

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from conformance.adapters import tensorflow as adapter  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("tensorflow") / "report.json"
    proc = run_cli(
        "--impl", "tensorflow", "--oracle", "fixtures", "--case", "L[12]-*f32*", "--jobs", "1", "--report", str(path)
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def table(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in report["table"]}


def test_rows_pass_with_the_op_and_its_gradient(report: dict[str, Any]) -> None:
    rows = table(report)
    assert "tf.raw_ops.BlockLSTM" in report["provenance"]["impl_version"]
    for row in (
        "whole_sequence", "stepwise", "chunked", "unbatched", "packed_sorted", "packed_unsorted",
        "bidirectional", "batch_first", "no_bias", "dropout_replay", "cell", "gradients",
    ):  # fmt: skip
        assert rows[row]["status"] == "pass", (row, rows[row])
    passed = {r["case"] for r in report["results"] if r["check"] == "gradients" and r["status"] == "pass"}
    assert "L2-bi-bf-nobias-packed_unsorted-nohx-f32-train" in passed


def test_declared_rows_carry_the_ops_reason(report: dict[str, Any]) -> None:
    rows = table(report)
    declared = adapter.TensorFlowLSTM.conformance_unsupported
    for row, key in (
        ("proj_size", "proj_size"),
        ("float64", "float64"),
        ("complex64", "complex"),
        ("complex128", "complex"),
        ("errors", "errors"),
        ("error_types", "error_types"),
    ):
        assert (rows[row]["status"], rows[row]["passed"], rows[row]["failed"]) == ("skipped", 0, 0), row
        assert rows[row]["notes"][0] == f"(declared: {declared[key]})"


def test_dropout_1_in_training_mode_meets_tf_nn_dropouts_refusal() -> None:
    model = adapter.TensorFlowLSTM(input_size=3, hidden_size=4, num_layers=2, dropout=1.0).train()
    with pytest.raises(ValueError, match=r"`rate` must be a scalar tensor or a float in the range \[0, 1\)"):
        model(np.zeros((2, 1, 3), np.float32))
    model.eval()(np.zeros((2, 1, 3), np.float32))  # eval mode has no dropout


def test_the_declared_reasons_are_tensorflows_own() -> None:
    zero = np.zeros(4)
    for dtype, name in ((np.float64, "double"), (np.complex64, "complex64")):
        with pytest.raises(Exception, match=adapter.DTYPE_ERROR.format(name)):
            tf.raw_ops.BlockLSTM(
                seq_len_max=np.int64(1), x=np.zeros((1, 1, 3), dtype), cs_prev=np.zeros((1, 4), dtype),
                h_prev=np.zeros((1, 4), dtype), w=np.zeros((7, 16), dtype), wci=zero.astype(dtype),
                wcf=zero.astype(dtype), wco=zero.astype(dtype), b=np.zeros(16, dtype),
            )  # fmt: skip


def test_block_lstm_v2s_input_gradient_is_still_wrong() -> None:
    """Why the adapter runs v1: V2 (gate order i, f, c, o) gets v1's gradient function."""
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4)
    x = torch.randn(5, 2, 3, requires_grad=True)
    grad = np.random.default_rng(0).standard_normal((5, 2, 4)).astype(np.float32)
    out = module(x)[0]
    (want,) = torch.autograd.grad(out, x, torch.from_numpy(grad))
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    ifco = np.concatenate([sd["weight_ih_l0"], sd["weight_hh_l0"]], 1)  # V2's gate order is torch's
    w, b = tf.constant(ifco.T), tf.constant(sd["bias_ih_l0"] + sd["bias_hh_l0"])
    xx, zero, state = tf.constant(x.detach().numpy()), tf.zeros(4), tf.zeros((2, 4))
    with tf.GradientTape() as tape:
        tape.watch(xx)
        h = tf.raw_ops.BlockLSTMV2(
            seq_len_max=np.int64(5), x=xx, cs_prev=state, h_prev=state, w=w, wci=zero, wcf=zero, wco=zero, b=b
        )[6]
    np.testing.assert_allclose(h.numpy(), out.detach().numpy(), atol=1e-6)  # its forward is right
    got = tape.gradient(h, xx, output_gradients=tf.constant(grad)).numpy()
    assert np.abs(got - want.numpy()).max() > 1e-2  # while this holds, BlockLSTMV2 stays unused
