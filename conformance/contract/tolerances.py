"""Every tolerance the project uses, in one place (documented in docs/rows.md, "Tolerances").

A comparison passes where ``|actual - expected| <= atol + rtol * |expected|``
elementwise, as ``torch.testing.assert_close`` (NaN must meet NaN, infinities must be equal).

64-bit cases are compared with torch's 64-bit result; lstm_ref against torch 2.13.0 CPU over
the default cases plus 40 random ones: float64 max abs error 1.3e-15 (1000-step and saturated
cases included), complex128 3.6e-16.  The bounds leave about 100x headroom, for
implementations that sum in another order, and no more: float32 arithmetic in a float64 model
(errors ~1e-7) or a 1e-9 weight perturbation fails.

32-bit cases are compared with the EXACT answer (torch in 64 bits on the same 32-bit inputs,
weights and masks), never with torch's own 32-bit result, so an implementation more accurate
than torch cannot fail for it.  The bound is assert_close's float32 default, and torch's own
32-bit result meets it with headroom: measured over all 1561 32-bit cases (the --full product,
the named cases and 40 random ones; outputs, final states, per-layer outputs and stepwise runs),
torch 2.13.0 CPU float32 uses at most 0.28 of it (edge-saturated-f32: 2.8e-6 from the exact
answer, on inputs of ~1e3) and complex64 at most 0.016.  (The bound before this rule, 2e-6
absolute, was failed by torch itself on that case.)  At the size cases (hidden up to 129, input
up to 129, 130 steps; weights scaled by fan-in, docs/rows.md "What the model assumes") torch's
float32 uses at most 0.086 of it (size-h64-i129-b17-bi-nobias-f32, 8.9e-7), and 0.24 at
input = hidden = 1000: the reduction length needs no term of its own at these weight scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    # set on a tolerance an implementation declares (conformance_tolerance): the suite's own,
    # so a comparison also reports how far beyond it the implementation went
    default: Tolerance | None = None

    def __str__(self) -> str:
        return f"rtol={self.rtol:g}, atol={self.atol:g}"


def declared_tolerances(declared: object) -> dict[str, Tolerance]:
    """``conformance_tolerance = {"float32": (rtol, atol), ...}`` -> dtype name -> Tolerance
    (with the suite's own as ``default``); ValueError says what is wrong."""
    if not declared:
        return {}
    if not isinstance(declared, dict):
        raise ValueError(
            f"conformance_tolerance must be a dict dtype -> (rtol, atol), got {type(declared).__name__}"
        )
    out = {}
    for dtype, pair in declared.items():
        name = np.dtype(dtype).name
        if name not in FORWARD:
            raise ValueError(f"conformance_tolerance: unknown dtype {dtype!r}; known: {', '.join(FORWARD)}")
        rtol, atol = (float(v) for v in pair)
        out[name] = Tolerance(rtol, atol, default=FORWARD[name])
    return out


# Forward values (output, h_n, c_n, per-layer outputs, stepwise/chunked/batch_first/unbatched/
# packed-per-sequence equivalences): 64-bit against torch, 32-bit against the exact answer.
FORWARD = {
    "float32": Tolerance(rtol=1.3e-6, atol=1e-5),  # assert_close's float32 default
    "complex64": Tolerance(rtol=1.3e-6, atol=1e-5),
    # 64-bit: both sides compute the same formulas; only summation order differs.
    "float64": Tolerance(rtol=1e-12, atol=1e-13),
    "complex128": Tolerance(rtol=1e-12, atol=1e-13),
}

# `lstm-conformance regen --check`: how far a freshly generated fixture array may move before
# the drift is called out as beyond tolerance (any change at all is reported and exits 1).
# Tighter than FORWARD for 32-bit: a new torch's own float32 result drifting by more is news.
DRIFT = {
    **FORWARD,
    "float32": Tolerance(rtol=1.3e-6, atol=2e-6),
    "complex64": Tolerance(rtol=1.3e-6, atol=2e-6),
}

# Dropout statistics (implementations that draw their own masks): the observed drop rate
# must be within this many binomial standard deviations of p.
DROPOUT_RATE_SIGMAS = 5.0


def forward_tolerance(dtype: DTypeLike) -> Tolerance:
    return FORWARD[np.dtype(dtype).name]


def drift_tolerance(dtype: DTypeLike) -> Tolerance:
    return DRIFT[np.dtype(dtype).name]


# Gradients: LSTM.vjp (or any backward) against torch.autograd.grad with the same upstream
# gradients.  Unlike FORWARD these are per tensor, relative to the gradient's scale:
#     max|actual - expected| <= rtol * max|expected| + atol
# because a gradient entry near zero carries the absolute rounding error of the long sum
# that produced it, so an elementwise rtol is meaningless there.
# How measured (lstm_ref's LSTM.vjp vs torch 2.13.0 CPU autograd, worst over tensors and
# cases): tests/test_gradients.py's option matrix (1-3 layers, bidirectional, proj, bias,
# batch_first, unbatched, packed sorted/unsorted, replayed dropout; L=5 N=3 I=4 H=6) plus
# L=50 N=8 I=16 H=64 runs (3-layer bidirectional; packed proj; dropout), and float32
# L=100 N=32 I=128 H=256 / L=50 N=64 I=512 H=1024 single-layer runs:
#   float64 1.9e-15, float32 1.6e-6, complex128 2.7e-13, complex64 1.2e-3.
# complex64 is that loose because complex sigmoid/tanh amplify rounding (poles): torch's own
# complex64 gradients differ from a complex128 computation by up to 1.1e-3 on the same cases,
# as much as lstm_ref's do.  The bounds leave about 10x headroom.
GRADIENT = {
    "float32": Tolerance(rtol=2e-5, atol=1e-7),
    "complex64": Tolerance(rtol=1e-2, atol=1e-6),
    "float64": Tolerance(rtol=1e-12, atol=1e-14),
    "complex128": Tolerance(rtol=3e-12, atol=1e-14),
}


def gradient_tolerance(dtype: DTypeLike) -> Tolerance:
    return GRADIENT[np.dtype(dtype).name]


def gradient_error(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max |actual - expected|, max |expected|): the two sides of the GRADIENT criterion."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if expected.size == 0:
        return 0.0, 0.0
    return float(np.max(np.abs(actual - expected))), float(np.max(np.abs(expected)))


# The conformance suite's `gradients` row: its complex draws are scaled 0.35 (cases.py), far
# from the poles, and there complex64 gradients are as accurate as float32's -- measured
# (lstm_ref vs torch 2.13.0, the 1536 complex64 cases of `--full --case 'L[12]-*'` and
# 'L3-bi-*') at most 1.7e-6 abs, 7e-7 of the tensor's scale -- so it uses float32's bound
# (about 30x headroom) instead of GRADIENT's 1e-2, which would let a 0.1% error through.
CONFORMANCE_GRADIENT = {**GRADIENT, "complex64": GRADIENT["float32"]}


def conformance_gradient_tolerance(dtype: DTypeLike) -> Tolerance:
    return CONFORMANCE_GRADIENT[np.dtype(dtype).name]
