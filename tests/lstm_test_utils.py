"""Shared helpers for the unit tests: build torch and lstm_ref twins, make inputs, compare.

Tolerances come only from ``conformance.contract.tolerances`` (never hard-coded here).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from conformance.contract.tolerances import forward_tolerance

# complex sigmoid/tanh have poles; keep complex test data moderate (|re|, |im| ~ N(0, 0.5^2))
COMPLEX_SCALE = 0.5
DTYPES = ("float32", "float64", "complex64", "complex128")


def torch_dtype(dtype: Any) -> Any:
    import torch

    return {
        "float32": torch.float32,
        "float64": torch.float64,
        "complex64": torch.complex64,
        "complex128": torch.complex128,
    }[np.dtype(dtype).name]


def random_array(
    rng: np.random.Generator, shape: Sequence[int], dtype: Any, scale: float = 1.0
) -> np.ndarray:
    dt = np.dtype(dtype)
    values = rng.standard_normal(tuple(shape)) * scale
    if dt.kind == "c":
        values = (values + 1j * rng.standard_normal(tuple(shape)) * scale) * COMPLEX_SCALE
    return values.astype(dt)


def to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().resolve_conj().numpy()


def assert_close(
    actual: Any, expected: Any, dtype: Any = None, what: str = "", extra_atol: float = 0.0
) -> None:
    """Same shape, same dtype, values within the project's forward tolerance; NaN where torch has NaN.

    ``extra_atol`` is only for comparisons against a higher-precision truth, where it is the
    measured error of torch itself on the same case (see test_forward's complex64 check).
    """
    if hasattr(expected, "detach"):
        expected = to_numpy(expected)
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"{what}: expected an ndarray, got {type(actual).__name__}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != torch {expected.dtype}"
    tol = forward_tolerance(dtype if dtype is not None else expected.dtype)
    np.testing.assert_allclose(
        actual, expected, rtol=tol.rtol, atol=tol.atol + extra_atol, equal_nan=True, err_msg=what
    )


def pairwise(factors: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """A small deterministic covering array: every pair of values of every two factors appears."""
    names = list(factors)
    uncovered = {
        (a, va, b, vb) for a, b in itertools.combinations(names, 2) for va in factors[a] for vb in factors[b]
    }
    rows: list[dict[str, Any]] = []
    candidates = [dict(zip(names, values, strict=True)) for values in itertools.product(*factors.values())]
    while uncovered:
        best = max(
            candidates,
            key=lambda row: sum(
                (a, row[a], b, row[b]) in uncovered for a, b in itertools.combinations(names, 2)
            ),
        )
        rows.append(best)
        uncovered -= {(a, best[a], b, best[b]) for a, b in itertools.combinations(names, 2)}
    return rows
