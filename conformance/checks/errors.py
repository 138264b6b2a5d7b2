"""Bad inputs, as data: each must raise the same exception type as torch.nn.LSTM.

From docs/semantics.md ("Constructor checks" and "Input checks"). torch's exception type for each is
recorded in ``fixtures/manifest.json`` by ``regen`` and re-read live when torch is present.
Only rows where torch itself raises a meaningful error are listed (torch's gaps, such as no
validation of packed input, are left to each implementation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ..contract.compare import Agreement, Divergence


@dataclass(frozen=True)
class ErrorCase:
    id: str
    ctor: dict[str, Any] = field(default_factory=dict)  # keywords on top of BASE_CTOR
    # (the run's dtype) -> (input, hx); None: the constructor alone must raise
    call: Callable[[Any], tuple[Any, ...]] | None = None
    expected: str = ""  # torch's exception type (documentation; the oracle decides)
    dtypes: tuple[str, ...] = ("float64", "float32")  # the runs it belongs to
    needs: tuple[str, ...] = ()  # table rows (features) it exercises beyond the basics
    dtype: str = "float64"  # this copy's run

    @property
    def stage(self) -> str:
        """Where torch rejects it: at construction, or at the call."""
        return "construction" if self.call is None else "call"


BASE_CTOR: dict[str, Any] = {"input_size": 3, "hidden_size": 4}


def ramp(dtype: DTypeLike, *shape: int) -> np.ndarray:
    """A deterministic array of that shape: values evenly spaced in [-1, 1]."""
    return np.linspace(-1, 1, int(np.prod(shape)) or 1)[: int(np.prod(shape))].reshape(shape).astype(dtype)


def other_float(dtype: DTypeLike) -> DTypeLike:
    """The other real dtype: an input of it does not match the model's weights."""
    return np.float32 if np.dtype(dtype) == np.float64 else np.float64


def _packed(dtype: DTypeLike, features: int) -> Any:
    import lstm_ref

    data = ramp(dtype, 7, features)  # lengths (4, 3): batch_sizes [2, 2, 2, 1]
    return lstm_ref.PackedSequence(data, np.array([2, 2, 2, 1]), None, None)


INPUT = (5, 2, 3)  # (L, N, input_size) for BASE_CTOR
STATE = (1, 2, 4)  # (layers * directions, N, hidden_size)

_BASE_CASES: list[ErrorCase] = [
    # constructor (section 1)
    ErrorCase("ctor-hidden_size-0", {"hidden_size": 0}, expected="ValueError"),
    ErrorCase("ctor-input_size-0", {"input_size": 0}, expected="ValueError"),
    ErrorCase("ctor-num_layers-0", {"num_layers": 0}, expected="ValueError"),
    ErrorCase("ctor-num_layers-float", {"num_layers": 2.0}, expected="TypeError"),
    ErrorCase("ctor-dropout-negative", {"dropout": -0.1}, expected="ValueError"),
    ErrorCase("ctor-dropout-above-1", {"dropout": 1.1}, expected="ValueError"),
    ErrorCase("ctor-dropout-bool", {"dropout": True}, expected="ValueError"),
    ErrorCase("ctor-dropout-none", {"dropout": None}, expected="TypeError"),
    ErrorCase("ctor-proj_size-negative", {"proj_size": -1}, expected="ValueError", needs=("proj_size",)),
    ErrorCase("ctor-proj_size-equals-hidden", {"proj_size": 4}, expected="ValueError", needs=("proj_size",)),
    ErrorCase("ctor-input_size-float", {"input_size": 3.0}, expected="TypeError"),
    ErrorCase("ctor-hidden_size-str", {"hidden_size": "4"}, expected="TypeError"),
    ErrorCase("ctor-bias-int", {"bias": 1}, expected="TypeError"),
    ErrorCase("ctor-batch_first-int", {"batch_first": 1}, expected="TypeError", needs=("batch_first",)),
    ErrorCase("ctor-dtype-int32", {"dtype": np.dtype("int32")}, expected="RuntimeError"),
    ErrorCase("ctor-num_layers-str", {"num_layers": "2"}, expected="TypeError"),
    ErrorCase("ctor-proj_size-float", {"proj_size": 2.0}, expected="TypeError", needs=("proj_size",)),
    ErrorCase("ctor-proj_size-bool", {"proj_size": True}, expected="TypeError", needs=("proj_size",)),
    ErrorCase("ctor-input_size-np-int64", {"input_size": np.int64(3)}, expected="TypeError"),
    ErrorCase("ctor-unknown-keyword", {"foo": 1}, expected="TypeError"),
    # accepted by torch: an implementation must not raise either
    ErrorCase("ctor-num_layers-true-accepted", {"num_layers": True}, expected="none"),
    ErrorCase(
        "ctor-bidirectional-int-accepted", {"bidirectional": 1}, expected="none", needs=("bidirectional",)
    ),
    ErrorCase(
        "ctor-dropout-1-accepted",
        {"dropout": 1.0, "num_layers": 2},
        expected="none",
        needs=("multi_layer", "dropout_p0_p1"),
    ),
    # forward (section 2)
    ErrorCase("input-1d", call=lambda d: (ramp(d, 3), None), expected="ValueError"),
    ErrorCase("input-4d", call=lambda d: (ramp(d, 2, 5, 2, 3), None), expected="ValueError"),
    ErrorCase("input-size-mismatch", call=lambda d: (ramp(d, 5, 2, 7), None), expected="RuntimeError"),
    ErrorCase(
        "input-size-mismatch-unbatched",
        call=lambda d: (ramp(d, 5, 7), None),
        expected="RuntimeError",
        needs=("unbatched",),
    ),
    ErrorCase(
        "input-dtype-mismatch", call=lambda d: (ramp(other_float(d), *INPUT), None), expected="ValueError"
    ),
    ErrorCase("input-seq-len-0", call=lambda d: (ramp(d, 0, 2, 3), None), expected="RuntimeError"),
    ErrorCase(
        "input-seq-len-0-unbatched",
        call=lambda d: (ramp(d, 0, 3), None),
        expected="RuntimeError",
        needs=("unbatched",),
    ),
    ErrorCase(
        "hx-h0-wrong-batch",
        call=lambda d: (ramp(d, *INPUT), (ramp(d, 1, 3, 4), ramp(d, *STATE))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-c0-wrong-hidden",
        call=lambda d: (ramp(d, *INPUT), (ramp(d, *STATE), ramp(d, 1, 2, 5))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-h0-wrong-layers",
        call=lambda d: (ramp(d, *INPUT), (ramp(d, 2, 2, 4), ramp(d, *STATE))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-batch-first-layout",
        {"batch_first": True},
        call=lambda d: (ramp(d, 2, 5, 3), (ramp(d, 2, 1, 4), ramp(d, 2, 1, 4))),
        expected="RuntimeError",
        needs=("batch_first",),
    ),
    ErrorCase(
        "hx-proj-h0-hidden-size",
        {"proj_size": 2},
        call=lambda d: (ramp(d, *INPUT), (ramp(d, 1, 2, 4), ramp(d, 1, 2, 4))),
        expected="RuntimeError",
        needs=("proj_size",),
    ),
    ErrorCase(
        "hx-proj-c0-proj-size",
        {"proj_size": 2},
        call=lambda d: (ramp(d, *INPUT), (ramp(d, 1, 2, 2), ramp(d, 1, 2, 2))),
        expected="RuntimeError",
        needs=("proj_size",),
    ),
    ErrorCase("hx-single-array", call=lambda d: (ramp(d, *INPUT), ramp(d, *STATE)), expected="IndexError"),
    ErrorCase(
        "hx-one-element-tuple", call=lambda d: (ramp(d, *INPUT), (ramp(d, *STATE),)), expected="IndexError"
    ),
    ErrorCase(
        "hx-three-states",
        call=lambda d: (ramp(d, *INPUT), (ramp(d, *STATE), ramp(d, *STATE), ramp(d, *STATE))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-c0-none", call=lambda d: (ramp(d, *INPUT), (ramp(d, *STATE), None)), expected="AttributeError"
    ),
    ErrorCase(
        "hx-2d-for-batched",
        call=lambda d: (ramp(d, *INPUT), (ramp(d, 2, 4), ramp(d, 2, 4))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-3d-for-unbatched",
        call=lambda d: (ramp(d, 5, 3), (ramp(d, *STATE), ramp(d, *STATE))),
        expected="RuntimeError",
        needs=("unbatched",),
    ),
    ErrorCase(
        "hx-list-accepted",
        call=lambda d: (ramp(d, *INPUT), [ramp(d, *STATE), ramp(d, *STATE)]),
        expected="none",
    ),
    ErrorCase(
        "hx-f32-c0-in-f64-model-accepted",
        call=lambda d: (ramp(d, *INPUT), (ramp(d, *STATE), ramp(np.float32, *STATE))),
        expected="none",
        dtypes=("float64",),
    ),
    ErrorCase("input-batch-0-accepted", call=lambda d: (ramp(d, 5, 0, 3), None), expected="none"),
    ErrorCase(
        "hx-f64-h0-in-f32-model",
        {"dtype": np.dtype("float32")},
        call=lambda d: (ramp(np.float32, *INPUT), (ramp(np.float64, *STATE), ramp(np.float32, *STATE))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "packed-input-size-mismatch",
        call=lambda d: (_packed(d, 7), None),
        expected="RuntimeError",
        needs=("packed_sorted",),
    ),
    ErrorCase(
        "hx-unbatched-wrong-size",
        call=lambda d: (ramp(d, 5, 3), (ramp(d, 1, 5), ramp(d, 1, 4))),
        expected="RuntimeError",
        needs=("unbatched",),
    ),
]


def error_cases(dtype: str) -> list[ErrorCase]:
    """The error cases of a run in ``dtype`` (float64, or float32 for 32-bit-only
    implementations); the float32 copies' ids end in ``-f32``."""
    suffix = "" if dtype == "float64" else "-" + dtype.replace("float", "f")
    return [
        replace(case, id=case.id + suffix, ctor={"dtype": np.dtype(dtype), **case.ctor}, dtype=dtype)
        for case in _BASE_CASES
        if dtype in case.dtypes
    ]


ERROR_CASES: list[ErrorCase] = error_cases("float64") + error_cases("float32")


@dataclass(frozen=True)
class Outcome:
    stage: str  # construction | call | none (nothing raised)
    error: str  # the exception type name ("none" if nothing was raised)
    message: str = ""  # the exception's message, first line


def run_error_case(factory: Callable[..., Any], case: ErrorCase) -> Outcome:
    """Construct (and call): where it raised, what, or that nothing was raised."""
    import warnings

    stage = "construction"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = factory(**{**BASE_CTOR, **case.ctor})
            if case.call is not None:
                stage = "call"
                model.eval()
                x, hx = case.call(np.dtype(case.dtype))
                model(x, hx)
    except Exception as exc:
        return Outcome(stage, type(exc).__name__, (str(exc).splitlines() or [""])[0])
    return Outcome("none", "none")


def _said(outcome: Outcome) -> str:
    if outcome.stage == "none":
        return "raised nothing"
    return f"raised {outcome.error} at {outcome.stage}" + (f" ({outcome.message})" if outcome.message else "")


def check_rejected(factory: Callable[..., Any], case: ErrorCase, torch_type: str) -> Agreement:
    """``errors``: rejected with some exception where torch rejects it, and at the same stage
    (construction or call); accepted where torch accepts it."""
    got = run_error_case(factory, case)
    if torch_type == "none":
        if got.stage != "none":
            raise Divergence(f"error case {case.id}: {_said(got)}; torch accepts it")
    elif got.stage != case.stage:
        raise Divergence(f"error case {case.id}: {_said(got)}; torch raises {torch_type} at {case.stage}")
    return Agreement()


def check_error_type(factory: Callable[..., Any], case: ErrorCase, torch_type: str) -> Agreement:
    """``error_types``: the exception type is torch's (``"none"``: accepted, as torch does)."""
    got = run_error_case(factory, case)
    if got.error != torch_type or (torch_type != "none" and got.stage != case.stage):
        raise Divergence(f"error case {case.id}: {_said(got)}; torch raises {torch_type} at {case.stage}")
    return Agreement()


def torch_error_types() -> dict[str, str]:
    """torch's exception type for every error case (``"none"`` if torch raised nothing)."""
    from ..run.torch_adapter import TorchLSTM

    return {case.id: run_error_case(TorchLSTM, case).error for case in ERROR_CASES}
