"""``dropout_statistics``: for implementations that draw their own dropout masks.

No oracle can predict another library's random draws, so this check measures them instead:
the drop rate is p, kept values are scaled by 1/(1-p), masks are redrawn on every call and
for every element, and eval mode is deterministic and drops nothing (judged by value, within
the tolerance).

How a dropped unit is seen: layer 1 of a two-layer model is wired so that its output unit j
is exactly 0 if and only if its input unit j was dropped.  Only the cell candidate reads the
input (g = tanh(x_j)), the input and output gates are saturated open, the forget gate shut and
there is no recurrence, so h1_j = o * tanh(i * tanh(x_j)) with x_j = keep_j * y0_j / (1 - p).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lstm_ref.layout import gate_rows
from lstm_ref.reference import lstm_direction

from ..contract.cases import Case
from ..contract.compare import Agreement, Divergence, Layout, compare
from ..contract.tolerances import DROPOUT_RATE_SIGMAS, Tolerance, forward_tolerance
from .harness import Arrays, CheckSkipped, Factory, build, call, oracle_weights

HIDDEN, P, STEPS, BATCH = 8, 0.4, 40, 8
SATURATED = 40.0  # sigmoid(40) == 1.0 and sigmoid(-40) ~ 4e-18 in float64
CASE = Case(
    num_layers=2, hidden_size=HIDDEN, input_size=3, steps=STEPS, batch=BATCH, dropout=P, name="dropout-stats"
)


def wired_weights(weights: Arrays) -> Arrays:
    """Layer 1 rewired as the module docstring says; layer 0 keeps its random weights."""
    wired = dict(weights)
    wired["weight_ih_l1"] = np.zeros((4 * HIDDEN, HIDDEN))
    wired["weight_ih_l1"][gate_rows("g", HIDDEN)] = np.eye(HIDDEN)
    wired["weight_hh_l1"] = np.zeros_like(weights["weight_hh_l1"])
    wired["bias_hh_l1"] = np.zeros(4 * HIDDEN)
    wired["bias_ih_l1"] = np.zeros(4 * HIDDEN)
    for gate, value in (("i", SATURATED), ("f", -SATURATED), ("o", SATURATED)):
        wired["bias_ih_l1"][gate_rows(gate, HIDDEN)] = value
    return wired


def _check_train_call(
    output: np.ndarray, expected_kept: np.ndarray, call_index: int, tol: Tolerance
) -> float:
    """One train-mode call's output: drop rate, scale of kept units, per-element masks.
    Returns |rate - p|."""
    # dropped: nearer 0 (o * tanh(i * tanh(0)) + O(sigmoid(-40))) than the kept value; so a
    # runtime within a declared tolerance is read right too
    dropped = np.abs(output) < np.abs(output - expected_kept)
    rate, sigma = float(dropped.mean()), np.sqrt(P * (1 - P) / output.size)
    if abs(rate - P) > DROPOUT_RATE_SIGMAS * sigma:
        raise Divergence(
            f"train call {call_index}: {rate:.3f} of layer-1 inputs dropped, expected p={P} "
            f"(+-{DROPOUT_RATE_SIGMAS:g} sigma = {DROPOUT_RATE_SIGMAS * sigma:.3f}); "
            "dropout between layers only, never after the last layer"
        )
    compare(
        np.where(dropped, expected_kept, output).astype(output.dtype),
        expected_kept,
        tol,
        "kept units (scaled by 1/(1-p))",
        Layout("time_major"),
        output.dtype,
    )
    per_step = dropped.reshape(STEPS, -1)
    if np.all(per_step == per_step[:1]):
        raise Divergence("the same dropout mask is used at every time step; torch draws per element")
    return abs(rate - P)


def reference_output(weights: Arrays, x: np.ndarray) -> np.ndarray:
    """The wired two-layer model's output without dropout: the cell equations, in 64 bits."""
    out = x.astype(np.float64)
    zeros = np.zeros((x.shape[1], HIDDEN))
    for layer in range(CASE.num_layers):
        suffix = f"_l{layer}"
        params = {
            k.removesuffix(suffix): v.astype(np.float64) for k, v in weights.items() if k.endswith(suffix)
        }
        out = lstm_direction(out, zeros, zeros, params).output
    return out


def forward_or_not_judged(
    factory: Factory, case: Case, arrays: Arrays, weights: Arrays, tol: Tolerance
) -> None:
    """The same configuration without dropout (p = 0) must compute the LSTM: if it does not,
    a unit that comes out 0 says nothing about dropout (swapped i and f gates shut every unit
    of the wired layer), so the check is not judged; the forward rows show the bug."""
    model = build(factory, replace(case, dropout=0.0, mode="eval"), arrays, weights=weights)
    output = call(model, arrays["x"].copy(), None, None)[0]
    try:
        compare(
            output, reference_output(weights, arrays["x"]), tol, "output", Layout("time_major"), case.dtype
        )
    except Divergence as div:
        raise CheckSkipped(
            f"not judged: forward fails on this configuration without dropout ({div.message.splitlines()[0]})"
        ) from None


def check_dropout_statistics(
    factory: Factory, dtype: str = "float64", tol: Tolerance | None = None
) -> Agreement:
    """Drop rate ~ p, kept values scaled by 1/(1-p), masks fresh per call and element, eval
    deterministic (see the module docstring for how dropped units are seen), in ``dtype``."""
    case = replace(CASE, dtype=dtype)
    arrays = case.make_data()
    weights = {k: v.astype(dtype) for k, v in wired_weights(oracle_weights(arrays)).items()}
    tol = tol or forward_tolerance(dtype)
    forward_or_not_judged(factory, case, arrays, weights, tol)
    model = build(factory, replace(case, mode="train"), arrays, weights=weights)
    x = arrays["x"]
    outputs = [call(model, x.copy(), None, None)[0] for _ in range(2)]
    layer0_weights = {name: value for name, value in weights.items() if "_l0" in name}
    layer0 = build(factory, replace(case, num_layers=1, dropout=0.0), arrays, weights=layer0_weights)
    layer0.eval()
    y0 = call(layer0, x.copy(), None, None)[0]
    opened = 1 / (1 + np.exp(-SATURATED))
    expected_kept = opened * np.tanh(opened * np.tanh(y0 / (1 - P)))
    worst = max(_check_train_call(out, expected_kept, k, tol) for k, out in enumerate(outputs))
    if np.array_equal(outputs[0], outputs[1]):
        raise Divergence("two train-mode calls gave identical outputs: masks are not redrawn per call")
    model.eval()
    first, second = (call(model, x.copy(), None, None)[0] for _ in range(2))
    if not np.array_equal(first, second):
        raise Divergence("eval mode is not deterministic")
    # eval is the identity: the wired value without any drop or scale, within the tolerance (a
    # lossy runtime may round a tiny value to 0; a dropped unit is off by the whole value)
    compare(
        first,
        (opened * np.tanh(opened * np.tanh(y0))).astype(first.dtype),
        tol,
        "eval-mode output (no dropout in eval)",
        Layout("time_major"),
        first.dtype,
    )
    sigma = np.sqrt(P * (1 - P) / outputs[0].size)
    return Agreement(worst, worst / (DROPOUT_RATE_SIGMAS * sigma))
