"""The torch-family adapters (conformance/adapters/torch_*.py, torchscript.py) through the real
CLI, on small --case subsets: the rows they must pass pass, each known finding FAILs exactly
its rows, declared rows read declared, and torch-compile refuses to answer uncompiled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.suite_helpers import needs_torch, run_cli

pytestmark = needs_torch


def run(tmp_path: Path, impl: str, case: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]], str]:
    """Against the fixtures only, in the CLI's own process: these tests are about the adapters;
    live torch, a worker process and fresh ones to rerun failures alone would each import torch
    again (tests/test_isolation.py and test_robustness.py test those)."""
    report = tmp_path / "report.json"
    args = ("--case", case, "--oracle", "fixtures", "--isolate", "none", "--quiet", "--report", str(report))
    proc = run_cli("--impl", impl, *args)
    data = json.loads(report.read_text())
    return proc.returncode, data, {row["feature"]: row for row in data["table"]}, proc.stdout


def statuses(rows: dict[str, dict[str, Any]], *names: str) -> dict[str, str]:
    return {name: rows[name]["status"] for name in names}


def test_torch_decomp_drops_nothing_between_layers_in_training(tmp_path: Path) -> None:
    code, _, rows, _ = run(tmp_path, "torch-decomp", "dropout*")
    assert code == 1
    assert statuses(rows, "dropout_p0_p1", "dropout_statistics") == {
        "dropout_p0_p1": "FAIL",
        "dropout_statistics": "FAIL",
    }
    assert rows["dropout_replay"]["status"] == "pass"  # given masks: layer by layer, decomposed
    assert rows["dropout_p0_p1"]["passed"] > 0  # p = 0 is right; only p = 1 fails


def test_torch_decomp_error_types(tmp_path: Path) -> None:
    _, data, rows, _ = run(tmp_path, "torch-decomp", "errors:*")
    assert statuses(rows, "errors", "error_types") == {"errors": "pass", "error_types": "FAIL"}
    failed = {r["case"] for r in data["results"] if r["status"] == "fail"}
    assert failed == {"errors:input-seq-len-0", "errors:input-seq-len-0-unbatched", "errors:hx-three-states"}


def test_torchscript_packed_passes(tmp_path: Path) -> None:
    code, _, rows, _ = run(tmp_path, "torchscript", "L1-uni-packed_unsorted-nohx-f64-eval")
    assert code == 0
    assert statuses(rows, "packed_unsorted", "gradients") == {"packed_unsorted": "pass", "gradients": "pass"}


def test_torchscript_errors_and_poisoned_state(tmp_path: Path) -> None:
    # the 13 error cases with "-b" or "-c" in their ids (a third of the time of all 48): the
    # bidirectional=1 constructor, hx-batch-first-layout, and the poisoning pair (hx-c0-none, then
    # hx-f32-c0-in-f64-model-accepted) with input-batch-0-accepted after it
    _, data, rows, _ = run(tmp_path, "torchscript", "errors:*-[bc]*")
    assert statuses(rows, "errors", "error_types") == {"errors": "FAIL", "error_types": "FAIL"}
    messages = {r["case"]: r["message"] for r in data["results"] if r["status"] == "fail"}
    assert "RuntimeError at construction" in messages["errors:ctor-bidirectional-int-accepted"]
    assert "raised Error at call" in messages["errors:hx-batch-first-layout"]  # torch.jit.Error
    # after hx=(h0, None) and a float32 c0 in a float64 model: INTERNAL ASSERT from then on
    assert "INTERNAL ASSERT" in messages["errors:input-batch-0-accepted"]


def test_torch_quantized_passes_at_a_declared_tolerance(tmp_path: Path) -> None:
    code, _, rows, stdout = run(tmp_path, "torch-quantized", "probe-gate_f-f32")
    assert code == 0
    assert "PASS at a declared tolerance (float32 rtol=0, atol=0.05" in stdout
    assert statuses(rows, "whole_sequence", "stepwise", "cell") == dict.fromkeys(
        ("whole_sequence", "stepwise", "cell"), "pass"
    )
    for declared in ("float64", "complex64", "proj_size", "no_bias", "unbatched", "gradients"):
        assert rows[declared]["notes"][0].startswith("(declared: quantized dynamic LSTM"), declared


def test_torch_quantized_has_no_backward_as_declared() -> None:
    import torch

    from conformance.adapters.torch_quantized import quantize

    x = torch.randn(5, 2, 3, requires_grad=True)
    out, _ = quantize(torch.nn.LSTM(3, 4))(x)
    with pytest.warns(UserWarning, match="aten::quantized_lstm: an autograd kernel was not registered"):
        out.sum().backward()
    assert x.grad is None


def test_torch_compile_runs_compiled_code(tmp_path: Path) -> None:
    code, _, rows, _ = run(tmp_path, "torch-compile", "L1-uni-batched-nohx-f32-eval")
    assert code == 0
    assert statuses(rows, "whole_sequence", "stepwise", "chunked") == dict.fromkeys(
        ("whole_sequence", "stepwise", "chunked"), "pass"
    )
    assert rows["dropout_replay"]["notes"][0].startswith("(declared: a compiled nn.LSTM")


def test_torch_compile_refuses_to_answer_without_a_compiled_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.adapters import torch_compile

    monkeypatch.setenv(torch_compile.BACKEND_ENV, "eager")  # dynamo runs, no compiled graph
    model = torch_compile.TorchCompileLSTM(input_size=3, hidden_size=4, dtype=np.float32, seed=0).eval()
    with pytest.raises(torch_compile.NotCompiledError):
        model(np.zeros((5, 2, 3), np.float32))


def test_torch_compile_backward_runs_compiled_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """vjp is torch.autograd.grad through Inductor's compiled backward graph: a vjp whose
    backward graph does not count (as if compiled elsewhere) is refused, and the counted one
    equals eager torch.autograd's (the smallest model: each compile costs seconds)."""
    from conformance.adapters import torch_compile
    from conformance.run.torch_adapter import TorchLSTM

    config = dict(input_size=2, hidden_size=2, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x, grad_out, grad_h, grad_c = (
        rng.standard_normal(s) for s in ((3, 1, 2), (3, 1, 2), (1, 1, 2), (1, 1, 2))
    )
    # the backward graph compiled without its calls counted
    monkeypatch.setattr(torch_compile.CountingInductor, "_inner_compile", _compile_fx_inner)
    with pytest.raises(torch_compile.NotCompiledError, match="backward"):
        torch_compile.TorchCompileLSTM(**config).eval().vjp(x, None, grad_out, grad_h, grad_c)
    monkeypatch.undo()
    model = torch_compile.TorchCompileLSTM(**config).eval()
    got = model.vjp(x, None, grad_out, grad_h, grad_c)
    assert model.backend.backward_calls == 1
    eager = TorchLSTM(**config).eval()
    eager.load_state_dict(model.state_dict())
    want = eager.vjp(x, None, grad_out, grad_h, grad_c)
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-14, err_msg=name)


def _compile_fx_inner(self: Any, gm: Any, example_inputs: Any, **kwargs: Any) -> Any:
    from torch._inductor.compile_fx import compile_fx_inner

    return compile_fx_inner(gm, example_inputs, **kwargs)


def test_torch_cuda_without_cuda_stops_with_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    proc = run_cli("--impl", "torch-cuda")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "--impl torch-cuda: no CUDA device here (torch.cuda.is_available() is False)"
    ]
