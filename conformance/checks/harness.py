"""How the suite drives an implementation: build a model from a case and the oracle's arrays,
feed it the oracle's inputs, call it, and compare what comes back.

Every check (forward_checks, dropout_checks, gradients, localize) goes through these helpers,
so an implementation is always called the same way: ``factory(**config, seed=0)``, then
``load_state_dict``, ``train``/``eval`` and ``__call__`` (docs/plugin.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import lstm_ref

from ..contract.cases import Case
from ..contract.compare import Agreement, Divergence, Layout, compare
from ..contract.tolerances import Tolerance, forward_tolerance
from ..run.remote import type_name

Factory = Callable[..., Any]
Arrays = dict[str, np.ndarray]  # an oracle's arrays for one case (see docs/fixtures.md)


class CheckSkipped(Exception):
    """A check cannot run for this implementation because an optional capability is absent
    (no LSTMCell, no vjp, no gradients in the oracle): shown as skipped, with the reason."""


@dataclass
class SuiteContext:
    """What a suite check (run once, not per case) gets: the implementation, its declarations,
    and the oracle's torch exception types by error case id (fetched on first use)."""

    factory: Factory
    unsupported: dict[str, str]
    torch_types: Callable[[], dict[str, str]]
    declared_tols: dict[str, Tolerance] = field(default_factory=dict)  # dtype -> the impl's own

    @property
    def dtype(self) -> str:
        """float64, or float32 where the implementation declares float64 unsupported."""
        return "float32" if "float64" in self.unsupported else "float64"


@dataclass
class Context:
    factory: Factory
    case: Case
    arrays: Arrays  # the oracle's arrays: inputs, weights, expected outputs
    oracle: str
    cell: Factory | None = None  # the implementation's LSTMCell, if it has one
    declared_tol: Tolerance | None = None  # the implementation's own, where it declares one

    @property
    def tol(self) -> Tolerance:
        """The tolerance of the case's dtype: the suite's, or the one the implementation
        declares (which then carries the suite's as ``default``, to report the excess)."""
        return self.declared_tol or forward_tolerance(self.case.dtype)


def oracle_weights(arrays: Arrays) -> Arrays:
    """The case's parameters under torch's names (stored as ``w.<name>``), copied."""
    return {name[2:]: value.copy() for name, value in arrays.items() if name.startswith("w.")}


def build(
    factory: Factory,
    case: Case,
    arrays: Arrays,
    weights: Arrays | None = None,
    **overrides: Any,
) -> Any:
    """factory(**config, seed=0), loaded with the oracle's weights, in the case's mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = factory(**{**case.config(), **overrides}, seed=0)
    model.load_state_dict(oracle_weights(arrays) if weights is None else weights)
    model.train(case.mode == "train")
    return model


def model_input(case: Case, arrays: Arrays) -> Any:
    """A fresh copy of the case's input: an array, or a PackedSequence for packed forms."""
    if case.packed:
        return lstm_ref.PackedSequence(
            arrays["packed_data"].copy(),
            arrays["batch_sizes"].copy(),
            arrays["sorted_indices"].copy() if "sorted_indices" in arrays else None,
            arrays["unsorted_indices"].copy() if "unsorted_indices" in arrays else None,
        )
    return arrays["x"].copy()


def model_hx(arrays: Arrays) -> tuple[np.ndarray, np.ndarray] | None:
    return (arrays["h0"].copy(), arrays["c0"].copy()) if "h0" in arrays else None


def model_masks(case: Case, arrays: Arrays) -> list[np.ndarray] | None:
    if not case.replays_masks or "error" in arrays:
        return None
    return [arrays[f"mask_{k}"].copy() for k in range(case.num_layers - 1)]


def call(model: Any, x: Any, hx: Any, masks: list[np.ndarray] | None) -> tuple[Any, Any, Any]:
    """``model(x, hx[, dropout_masks=masks])`` -> (output, h_n, c_n); anything else diverges."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model(x, hx) if masks is None else model(x, hx, dropout_masks=masks)
    # torch returns a tuple: anything else (a list, a generator that unpacks the same) diverges
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Divergence(f"the call returned {type_name(result)}, not the tuple (output, (h_n, c_n))")
    out, state = result
    if not (isinstance(state, tuple) and len(state) == 2):
        raise Divergence(
            f"the call returned (output, {type_name(state)}), not (output, (h_n, c_n)) with a tuple"
        )
    return out, state[0], state[1]


def output_layout(case: Case, arrays: Arrays, batch_first: bool | None = None) -> Layout:
    if batch_first is None:
        batch_first = case.batch_first
    if case.packed:
        kind = "packed"
    elif case.form == "unbatched":
        kind = "unbatched"
    else:
        kind = "batch_first" if batch_first else "time_major"
    return Layout(
        kind,
        case.num_directions,
        case.h_out,
        tuple(int(b) for b in arrays.get("batch_sizes", ())),
        tuple(int(i) for i in arrays["sorted_indices"]) if "sorted_indices" in arrays else None,
    )


def state_layout(case: Case) -> Layout:
    return Layout("state_unbatched" if case.form == "unbatched" else "state", case.num_directions)


def packed_output_data(case: Case, arrays: Arrays, out: Any) -> np.ndarray:
    """Check the PackedSequence bookkeeping fields and return its data."""
    fields = ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    if not (isinstance(out, tuple) and len(out) == 4):
        raise Divergence(f"packed input: output is {type_name(out)}, expected a PackedSequence")
    for name, got in zip(fields[1:], out[1:], strict=True):
        want = arrays.get(name)
        if (want is None) != (got is None) or (
            want is not None and not np.array_equal(np.asarray(got), want)
        ):
            raise Divergence(f"packed output: {name} is {got!r}, expected {want!r} (the input's)")
    return out[0]  # type: ignore[no-any-return]


def compare_all(
    case: Case, arrays: Arrays, tol: Tolerance, out: Any, h_n: Any, c_n: Any, label: str = ""
) -> Agreement:
    """output (packed: its data), h_n and c_n against the arrays' expected ones."""
    data = packed_output_data(case, arrays, out) if case.packed else out
    agreement = compare(
        data, arrays["output"], tol, f"{label}output", output_layout(case, arrays), case.dtype
    )
    agreement = agreement.merge(
        compare(h_n, arrays["h_n"], tol, f"{label}h_n", state_layout(case), case.dtype)
    )
    return agreement.merge(compare(c_n, arrays["c_n"], tol, f"{label}c_n", state_layout(case), case.dtype))


def expect_error(ctx: Context, run: Callable[[], Any]) -> Agreement:
    """Where torch raises on a case: the same exception type.  Where torch raises
    NotImplementedError (complex dropout in training), torch has no answer to compare with,
    so an implementation may raise it too or compute something: neither is judged."""
    expected = str(ctx.arrays["error"])  # torch's exception type name
    try:
        run()
        if expected == "NotImplementedError":
            return Agreement()
    except Exception as exc:
        if type(exc).__name__ == expected:
            return Agreement()
        raise Divergence(f"raised {type(exc).__name__}: {exc}; torch raises {expected}") from exc
    raise Divergence(f"returned normally; torch raises {expected} on this case")
