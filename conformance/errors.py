"""Bad inputs, as data: each must raise the same exception type as torch.nn.LSTM.

From docs/semantics.md ("Constructor checks" and "Input checks"). torch's exception type for each is
recorded in ``fixtures/manifest.json`` by ``regen`` and re-read live when torch is present.
Only rows where torch itself raises a meaningful error are listed (torch's gaps, such as no
validation of packed input, are left to each implementation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .compare import Agreement, Divergence

FLOAT64 = np.dtype("float64")


@dataclass(frozen=True)
class ErrorCase:
    id: str
    ctor: dict[str, Any] = field(default_factory=dict)  # keywords on top of BASE_CTOR
    call: Callable[[], tuple[Any, ...]] | None = None  # () -> (input, hx); None: constructor only
    expected: str = ""  # torch's exception type (documentation; the oracle decides)


BASE_CTOR: dict[str, Any] = {"input_size": 3, "hidden_size": 4, "dtype": FLOAT64}


def ramp(*shape: int, dtype: Any = FLOAT64) -> np.ndarray:
    """A deterministic array of that shape: values evenly spaced in [-1, 1]."""
    return np.linspace(-1, 1, int(np.prod(shape)) or 1)[: int(np.prod(shape))].reshape(shape).astype(dtype)


def _packed(features: int) -> Any:
    import lstm_ref

    data = ramp(7, features)  # lengths (4, 3): batch_sizes [2, 2, 2, 1]
    return lstm_ref.PackedSequence(data, np.array([2, 2, 2, 1]), None, None)


INPUT = (5, 2, 3)  # (L, N, input_size) for BASE_CTOR
STATE = (1, 2, 4)  # (layers * directions, N, hidden_size)

ERROR_CASES: list[ErrorCase] = [
    # constructor (section 1)
    ErrorCase("ctor-hidden_size-0", {"hidden_size": 0}, expected="ValueError"),
    ErrorCase("ctor-input_size-0", {"input_size": 0}, expected="ValueError"),
    ErrorCase("ctor-num_layers-0", {"num_layers": 0}, expected="ValueError"),
    ErrorCase("ctor-num_layers-float", {"num_layers": 2.0}, expected="TypeError"),
    ErrorCase("ctor-dropout-negative", {"dropout": -0.1}, expected="ValueError"),
    ErrorCase("ctor-dropout-above-1", {"dropout": 1.1}, expected="ValueError"),
    ErrorCase("ctor-dropout-bool", {"dropout": True}, expected="ValueError"),
    ErrorCase("ctor-dropout-none", {"dropout": None}, expected="TypeError"),
    ErrorCase("ctor-proj_size-negative", {"proj_size": -1}, expected="ValueError"),
    ErrorCase("ctor-proj_size-equals-hidden", {"proj_size": 4}, expected="ValueError"),
    ErrorCase("ctor-input_size-float", {"input_size": 3.0}, expected="TypeError"),
    ErrorCase("ctor-hidden_size-str", {"hidden_size": "4"}, expected="TypeError"),
    ErrorCase("ctor-bias-int", {"bias": 1}, expected="TypeError"),
    ErrorCase("ctor-batch_first-int", {"batch_first": 1}, expected="TypeError"),
    ErrorCase("ctor-dtype-int32", {"dtype": np.dtype("int32")}, expected="RuntimeError"),
    ErrorCase("ctor-num_layers-str", {"num_layers": "2"}, expected="TypeError"),
    ErrorCase("ctor-proj_size-float", {"proj_size": 2.0}, expected="TypeError"),
    ErrorCase("ctor-proj_size-bool", {"proj_size": True}, expected="TypeError"),
    ErrorCase("ctor-input_size-np-int64", {"input_size": np.int64(3)}, expected="TypeError"),
    ErrorCase("ctor-unknown-keyword", {"foo": 1}, expected="TypeError"),
    # accepted by torch: an implementation must not raise either
    ErrorCase("ctor-num_layers-true-accepted", {"num_layers": True}, expected="none"),
    ErrorCase("ctor-bidirectional-int-accepted", {"bidirectional": 1}, expected="none"),
    ErrorCase("ctor-dropout-1-accepted", {"dropout": 1.0, "num_layers": 2}, expected="none"),
    # forward (section 2)
    ErrorCase("input-1d", call=lambda: (ramp(3), None), expected="ValueError"),
    ErrorCase("input-4d", call=lambda: (ramp(2, 5, 2, 3), None), expected="ValueError"),
    ErrorCase("input-size-mismatch", call=lambda: (ramp(5, 2, 7), None), expected="RuntimeError"),
    ErrorCase("input-size-mismatch-unbatched", call=lambda: (ramp(5, 7), None), expected="RuntimeError"),
    ErrorCase(
        "input-dtype-mismatch", call=lambda: (ramp(*INPUT, dtype=np.float32), None), expected="ValueError"
    ),
    ErrorCase("input-seq-len-0", call=lambda: (ramp(0, 2, 3), None), expected="RuntimeError"),
    ErrorCase("input-seq-len-0-unbatched", call=lambda: (ramp(0, 3), None), expected="RuntimeError"),
    ErrorCase(
        "hx-h0-wrong-batch",
        call=lambda: (ramp(*INPUT), (ramp(1, 3, 4), ramp(*STATE))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-c0-wrong-hidden",
        call=lambda: (ramp(*INPUT), (ramp(*STATE), ramp(1, 2, 5))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-h0-wrong-layers",
        call=lambda: (ramp(*INPUT), (ramp(2, 2, 4), ramp(*STATE))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-batch-first-layout",
        {"batch_first": True},
        call=lambda: (ramp(2, 5, 3), (ramp(2, 1, 4), ramp(2, 1, 4))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-proj-h0-hidden-size",
        {"proj_size": 2},
        call=lambda: (ramp(*INPUT), (ramp(1, 2, 4), ramp(1, 2, 4))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-proj-c0-proj-size",
        {"proj_size": 2},
        call=lambda: (ramp(*INPUT), (ramp(1, 2, 2), ramp(1, 2, 2))),
        expected="RuntimeError",
    ),
    ErrorCase("hx-single-array", call=lambda: (ramp(*INPUT), ramp(*STATE)), expected="IndexError"),
    ErrorCase("hx-one-element-tuple", call=lambda: (ramp(*INPUT), (ramp(*STATE),)), expected="IndexError"),
    ErrorCase(
        "hx-three-states",
        call=lambda: (ramp(*INPUT), (ramp(*STATE), ramp(*STATE), ramp(*STATE))),
        expected="RuntimeError",
    ),
    ErrorCase("hx-c0-none", call=lambda: (ramp(*INPUT), (ramp(*STATE), None)), expected="AttributeError"),
    ErrorCase(
        "hx-2d-for-batched", call=lambda: (ramp(*INPUT), (ramp(2, 4), ramp(2, 4))), expected="RuntimeError"
    ),
    ErrorCase(
        "hx-3d-for-unbatched",
        call=lambda: (ramp(5, 3), (ramp(*STATE), ramp(*STATE))),
        expected="RuntimeError",
    ),
    ErrorCase("hx-list-accepted", call=lambda: (ramp(*INPUT), [ramp(*STATE), ramp(*STATE)]), expected="none"),
    ErrorCase(
        "hx-f32-c0-in-f64-model-accepted",
        call=lambda: (ramp(*INPUT), (ramp(*STATE), ramp(*STATE, dtype=np.float32))),
        expected="none",
    ),
    ErrorCase("input-batch-0-accepted", call=lambda: (ramp(5, 0, 3), None), expected="none"),
    ErrorCase(
        "hx-f64-h0-in-f32-model",
        {"dtype": np.dtype("float32")},
        call=lambda: (ramp(*INPUT, dtype=np.float32), (ramp(*STATE), ramp(*STATE, dtype=np.float32))),
        expected="RuntimeError",
    ),
    ErrorCase(
        "packed-input-size-mismatch",
        call=lambda: (_packed(7), None),
        expected="RuntimeError",
    ),
    ErrorCase(
        "hx-unbatched-wrong-size",
        call=lambda: (ramp(5, 3), (ramp(1, 5), ramp(1, 4))),
        expected="RuntimeError",
    ),
]


def run_error_case(factory: Callable[..., Any], case: ErrorCase) -> str | None:
    """Construct (and call); the exception type name raised, or None if nothing was raised."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = factory(**{**BASE_CTOR, **case.ctor})
            if case.call is not None:
                model.eval()
                x, hx = case.call()
                model(x, hx)
    except Exception as exc:
        return type(exc).__name__
    return None


def check_error_case(factory: Callable[..., Any], case: ErrorCase, torch_type: str) -> Agreement:
    """The implementation raises torch's exception type (``"none"``: accepts, as torch does)."""
    got = run_error_case(factory, case)
    if got == torch_type or (got is None and torch_type == "none"):
        return Agreement()
    raise Divergence(
        f"error case {case.id}: {'raised ' + got if got else 'raised nothing'}; torch raises {torch_type}"
    )


def torch_error_types() -> dict[str, str]:
    """torch's exception type for every error case (``"none"`` if torch raised nothing)."""
    from .torch_adapter import TorchLSTM

    return {case.id: run_error_case(TorchLSTM, case) or "none" for case in ERROR_CASES}
