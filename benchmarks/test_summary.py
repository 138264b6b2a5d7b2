"""The summary's plumbing, fast (part of the smoke run): tables written, declarations and
wrong answers skipped with their reasons, a first-call child process answering."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from benchmarks import impls, summary
from lstm_ref import LSTM


class NoProjection(LSTM):
    conformance_unsupported: ClassVar[dict[str, str]] = {"proj_size": "this library has no projection"}


class WrongAnswer(LSTM):
    def __call__(self, input: Any, hx: Any = None, **kwargs: Any) -> Any:
        out, state = super().__call__(input, hx, **kwargs)
        return out + 1.0, state


class NoGradients:
    """A plug-in with a forward only (lstm_ref's, wrapped)."""

    def __init__(self, **kwargs: Any) -> None:
        self.model = LSTM(**kwargs)

    def load_state_dict(self, state_dict: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict(state_dict)

    def eval(self) -> None:
        self.model.eval()

    def __call__(self, input: Any, hx: Any = None) -> Any:
        return self.model(input, hx)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {name: f"benchmarks.test_summary:{cls}" for name, cls in _FAKES.items()}
    monkeypatch.setattr(impls, "PLUGIN_IMPLS", {**impls.PLUGIN_IMPLS, **fake})


_FAKES = {"no-proj": "NoProjection", "wrong": "WrongAnswer", "no-grad": "NoGradients"}


@pytest.mark.usefixtures("fakes")
@pytest.mark.parametrize(
    ("impl", "config", "mode", "reason"),
    [
        (
            "no-proj",
            "medium-proj",
            "forward",
            "declares proj_size unsupported: this library has no projection",
        ),
        ("wrong", "tiny", "forward", "answer differs from torch by 1"),
        ("no-grad", "tiny", "forward+backward", "no-grad has no vjp"),
        ("no-grad", "tiny", "forward", None),
    ],
)
def test_skips_with_reason(impl: str, config: str, mode: str, reason: str | None) -> None:
    row = summary.Row(config, mode, impl)
    case = summary.build_and_check(row, impls.CONFIG_BY_ID[config], mode)
    if reason is None:
        assert case is not None and row.unavailable is None and row.max_abs_error is not None
        assert row.max_abs_error < 1e-5 and row.build_s is not None and row.first_call_s is not None
    else:
        assert case is None and row.unavailable is not None and row.unavailable.startswith(reason)


def test_summary_writes_tables(tmp_path: Path) -> None:
    argv = [
        "--configs",
        "tiny",
        "--blocks",
        "1",
        "--block-time",
        "0.001",
        "--first-call",
        "inline",
        "--peak-size",
        "128",
    ]
    assert summary.main([*argv, "--impls", "lstm_ref,onnx-reference", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert "| config | mode | torch | lstm_ref |" in text  # torch added: ratios need it
    assert "First call (inline)" in text and "| tiny | forward+backward | lstm_ref |" in text
    if importlib.util.find_spec("onnx") is None:  # the test extra alone (CI): the library is named
        assert "**onnx-reference** (tiny forward, tiny forward+backward): onnx is not installed" in text
    else:
        assert (
            "**onnx-reference** (tiny forward+backward): onnx's ReferenceEvaluator has no gradients" in text
        )
    data = json.loads((tmp_path / "summary.json").read_text())
    ratios = {(r["impl"], r["mode"]): r["ratio_to_torch"] for r in data["results"]}
    assert ratios[("torch", "forward")] == 1.0 and ratios[("lstm_ref", "forward")] > 0


def test_first_call_in_a_fresh_process() -> None:
    cold = impls.first_call_in_process("lstm_ref", "tiny", "forward", threads=1, timeout=120)
    assert set(cold) == {"build_s", "first_call_s"}, cold
    assert 0 < cold["first_call_s"] < 10


def test_first_call_past_the_timeout_is_killed() -> None:
    cold = impls.first_call_in_process("lstm_ref", "tiny", "forward", threads=1, timeout=0.2)
    assert cold.get("timed_out") and "took over 0 s" in cold["error"], cold
