"""lstm_ref.reference (the plain LSTM equations) against live torch, and the fast path against it.

Two generic checks run over one table of cases (``CASES``):

* ``reference.lstm_direction`` / ``lstm_cell``, stacked by ``reference_stack`` below, against
  torch.nn.LSTM / LSTMCell with the same weights: the reference is what torch computes;
* ``lstm_ref.LSTM`` / ``LSTMCell`` (the fast, prepared-layout path) against the reference.

Everything is float64 or complex128, so both comparisons hold to a few ulps of the output's
scale (``RELATIVE``), far tighter than the forward tolerances used against float32 torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from lstm_test_utils import random_array, to_numpy, torch_dtype

import lstm_ref
from lstm_ref import reference
from lstm_ref.layout import param_suffix

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN"),
    pytest.mark.filterwarnings("ignore:Complex modules are a new feature"),
]

INPUT_SIZE, HIDDEN, PROJ, STEPS, BATCH = 3, 5, 2, 6, 4
# max |a - b| / max |b| over each compared array: a few ulps of float64 (2.2e-16)
RELATIVE = 1e-13


@dataclass(frozen=True)
class Case:
    dtype: str = "float64"
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: int = 0
    bias: bool = True
    lengths: tuple[int, ...] | None = None  # packed input with these (sorted) lengths
    hx: bool = True

    @property
    def id(self) -> str:
        parts = [self.dtype, f"nl{self.num_layers}", "bidir" if self.bidirectional else "uni"]
        parts += [f"proj{self.proj_size}"] if self.proj_size else []
        parts += [] if self.bias else ["nobias"]
        parts += [f"packed{''.join(map(str, self.lengths))}"] if self.lengths else []
        parts += [] if self.hx else ["nohx"]
        return "-".join(parts)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def batch(self) -> int:
        return len(self.lengths) if self.lengths else BATCH

    def torch_module(self) -> Any:
        torch.manual_seed(0)
        return torch.nn.LSTM(
            INPUT_SIZE,
            HIDDEN,
            num_layers=self.num_layers,
            bias=self.bias,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
            dtype=torch_dtype(self.dtype),
        ).eval()


CASES = [
    Case(),
    Case(hx=False),
    Case(bias=False),
    Case(bidirectional=True),  # the reverse direction
    Case(proj_size=PROJ),
    Case(lengths=(6, 4, 4, 1)),  # packed, with a tie
    Case(bidirectional=True, lengths=(5, 3, 1)),  # packed, reverse starts at each own last step
    Case(num_layers=3, bidirectional=True, proj_size=PROJ),
    Case("complex128"),
    Case("complex128", num_layers=2, bidirectional=True, proj_size=PROJ, lengths=(6, 2, 2)),
]


@dataclass
class Inputs:
    """One case's input, time-major: dense (L, N, I), or packed rows (S, I) with batch_sizes."""

    x: np.ndarray
    batch_sizes: np.ndarray | None
    h0: np.ndarray  # (num_layers * D, N, H_out)
    c0: np.ndarray  # (num_layers * D, N, H)

    def for_lstm_ref(self) -> Any:
        if self.batch_sizes is None:
            return self.x
        return lstm_ref.PackedSequence(self.x, self.batch_sizes)

    def for_torch(self) -> Any:
        x = torch.from_numpy(self.x)
        if self.batch_sizes is None:
            return x
        return torch.nn.utils.rnn.PackedSequence(x, torch.from_numpy(self.batch_sizes))


def make_inputs(case: Case, seed: int = 1) -> Inputs:
    rng = np.random.default_rng(seed)
    layers_dirs, h_out = case.num_layers * case.directions, case.proj_size or HIDDEN
    if case.lengths is None:
        x, batch_sizes = random_array(rng, (STEPS, BATCH, INPUT_SIZE), case.dtype), None
    else:
        steps = np.arange(max(case.lengths))
        batch_sizes = (np.array(case.lengths)[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)
        x = random_array(rng, (int(batch_sizes.sum()), INPUT_SIZE), case.dtype)
    h0 = random_array(rng, (layers_dirs, case.batch, h_out), case.dtype)
    c0 = random_array(rng, (layers_dirs, case.batch, HIDDEN), case.dtype)
    if not case.hx:
        h0, c0 = np.zeros_like(h0), np.zeros_like(c0)
    return Inputs(x, batch_sizes, h0, c0)


def reference_stack(
    params: dict[str, np.ndarray], case: Case, inputs: Inputs
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[reference.DirectionResult]]:
    """All layers and directions by ``reference.lstm_direction`` (no dropout: eval mode).

    Returns (output, h_n, c_n, per layer-direction results in torch's h_n order)."""
    layer_input, h_n, c_n = inputs.x, np.empty_like(inputs.h0), np.empty_like(inputs.c0)
    results = []
    for layer in range(case.num_layers):
        outputs = []
        for direction in range(case.directions):
            state = layer * case.directions + direction
            suffix = param_suffix(layer, direction)
            direction_params = {
                name[: -len(suffix)]: v for name, v in params.items() if name.endswith(suffix)
            }
            result = reference.lstm_direction(
                layer_input,
                inputs.h0[state],
                inputs.c0[state],
                direction_params,
                reverse=direction == 1,
                batch_sizes=inputs.batch_sizes,
            )
            h_n[state], c_n[state] = result.h_n, result.c_n
            outputs.append(result.output)
            results.append(result)
        layer_input = np.concatenate(outputs, axis=-1)
    return layer_input, h_n, c_n, results


def assert_near(actual: Any, expected: Any, what: str, relative: float = RELATIVE) -> None:
    """Same shape and dtype; max |actual - expected| <= relative * max |expected| (and > 0 scale)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    scale = float(np.max(np.abs(expected), initial=0.0))
    assert scale > 0.05, f"{what}: expected values are trivially small ({scale}), the check proves nothing"
    error = float(np.max(np.abs(actual - expected), initial=0.0))
    assert error <= relative * scale, f"{what}: max error {error:.3g} > {relative:g} * scale {scale:.3g}"


def torch_results(case: Case, module: Any, inputs: Inputs) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out, (h_n, c_n) = module(
            inputs.for_torch(), (torch.from_numpy(inputs.h0), torch.from_numpy(inputs.c0))
        )
    data = out.data if inputs.batch_sizes is not None else out
    return {"output": to_numpy(data), "h_n": to_numpy(h_n), "c_n": to_numpy(c_n)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reference_matches_torch(case: Case) -> None:
    module = case.torch_module()
    params = {name: to_numpy(value) for name, value in module.state_dict().items()}
    inputs = make_inputs(case)
    output, h_n, c_n, _ = reference_stack(params, case, inputs)
    expected = torch_results(case, module, inputs)
    for name, value in {"output": output, "h_n": h_n, "c_n": c_n}.items():
        assert_near(value, expected[name], f"reference {name} vs torch")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fast_path_matches_reference(case: Case) -> None:
    """lstm_ref.LSTM's forward and every step trace.trace records, against the plain equations."""
    model = lstm_ref.LSTM.from_torch(case.torch_module())
    inputs = make_inputs(case)
    output, h_n, c_n, directions = reference_stack(dict(model.state_dict()), case, inputs)
    out, (fast_h_n, fast_c_n) = model(inputs.for_lstm_ref(), (inputs.h0, inputs.c0))
    fast_output = out.data if inputs.batch_sizes is not None else out
    assert_near(fast_output, output, "output")
    assert_near(fast_h_n, h_n, "h_n")
    assert_near(fast_c_n, c_n, "c_n")
    trace = lstm_ref.trace(model, inputs.for_lstm_ref(), (inputs.h0, inputs.c0))
    for state, expected in enumerate(directions):
        recorded = trace.at(*divmod(state, case.directions))
        for name in ("i", "f", "g", "o", "c", "h"):
            want = np.concatenate([getattr(step, name) for step in expected.steps])
            assert_near(recorded.__dict__[name].reshape(want.shape), want, f"trace state {state} {name}")


CELL_CASES = [("float64", True), ("float64", False), ("complex128", True)]


@pytest.mark.parametrize(("dtype", "bias"), CELL_CASES)
def test_reference_cell_matches_torch_and_the_fast_cell(dtype: str, bias: bool) -> None:
    torch.manual_seed(0)
    module = torch.nn.LSTMCell(INPUT_SIZE, HIDDEN, bias=bias, dtype=torch_dtype(dtype))
    params = {name: to_numpy(value) for name, value in module.state_dict().items()}
    rng = np.random.default_rng(2)
    x = random_array(rng, (BATCH, INPUT_SIZE), dtype)
    h0, c0 = random_array(rng, (BATCH, HIDDEN), dtype), random_array(rng, (BATCH, HIDDEN), dtype)
    step = reference.lstm_cell(x, h0, c0, params)
    with torch.no_grad():
        t_h, t_c = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    assert_near(step.h, to_numpy(t_h), "reference h vs torch")
    assert_near(step.c, to_numpy(t_c), "reference c vs torch")
    fast_h, fast_c = lstm_ref.LSTMCell.from_torch(module)(x, (h0, c0))
    assert_near(fast_h, step.h, "LSTMCell h vs reference")
    assert_near(fast_c, step.c, "LSTMCell c vs reference")


def test_reference_gates_are_torch_gate_order() -> None:
    """One step by hand: the reference splits z = W_ih x + W_hh h + b into torch's i, f, g, o."""
    hidden = 2
    params = {"weight_ih": np.zeros((8, 1)), "weight_hh": np.zeros((8, hidden))}
    params["weight_ih"][:, 0] = [1, 1, 2, 2, 3, 3, 4, 4]  # z = (1, 1 | 2, 2 | 3, 3 | 4, 4) for x = 1
    step = reference.lstm_cell(np.ones((1, 1)), np.zeros((1, hidden)), np.full((1, hidden), 0.5), params)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    np.testing.assert_allclose(step.i, sigmoid(1.0) * np.ones((1, 2)), rtol=1e-15)
    np.testing.assert_allclose(step.f, sigmoid(2.0) * np.ones((1, 2)), rtol=1e-15)
    np.testing.assert_allclose(step.g, np.tanh(3.0) * np.ones((1, 2)), rtol=1e-15)
    np.testing.assert_allclose(step.o, sigmoid(4.0) * np.ones((1, 2)), rtol=1e-15)
    c = sigmoid(2.0) * 0.5 + sigmoid(1.0) * np.tanh(3.0)
    np.testing.assert_allclose(step.c, np.full((1, 2), c), rtol=1e-15)
    np.testing.assert_allclose(step.h, np.full((1, 2), sigmoid(4.0) * np.tanh(c)), rtol=1e-15)
