"""One comparison helper: shape, dtype, NaN/Inf pattern and values, with a located message."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from ..run.remote import type_name
from .tolerances import Tolerance


class Divergence(AssertionError):
    """An implementation disagrees with the oracle; the message says where."""

    def __init__(self, message: str, max_abs: float = float("nan"), ratio: float = float("nan")) -> None:
        super().__init__(message)
        self.message = message
        self.max_abs = max_abs
        self.ratio = ratio


@dataclass
class Agreement:
    """How close a passing comparison came: the worst absolute error and the worst error as a
    fraction of the tolerance (``ratio <= 1`` passes)."""

    max_abs: float = 0.0
    ratio: float = 0.0  # worst |actual - expected| / (atol + rtol * |expected|)
    # 32-bit cases are judged against the exact answer; this is the distance to torch's own
    # 32-bit result, reported beside it (None where the case has none)
    max_abs_vs_torch32: float | None = None
    # at a declared tolerance: the worst error as a fraction of the suite's default one
    default_ratio: float | None = None

    def merge(self, other: Agreement) -> Agreement:
        return Agreement(
            max(self.max_abs, other.max_abs),
            max(self.ratio, other.ratio),
            _max_of(self.max_abs_vs_torch32, other.max_abs_vs_torch32),
            _max_of(self.default_ratio, other.default_ratio),
        )


def _max_of(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


@dataclass(frozen=True)
class Layout:
    """How to name an index of an array: ``kind`` is one of
    time_major (L, N, F), batch_first (N, L, F), unbatched (L, F), packed (S, F),
    state (layers*D, N, H), state_unbatched (layers*D, H), rows (N, H) or (H,)."""

    kind: str
    num_directions: int = 1
    width: int = 1  # H_out per direction (feature columns) for outputs
    batch_sizes: tuple[int, ...] = ()
    sorted_indices: tuple[int, ...] | None = None
    layer_offset: int = 0

    def describe(self, index: tuple[int, ...]) -> str:
        d = self.num_directions
        if self.kind == "rows":
            return (f"batch {index[0]}, " if len(index) > 1 else "") + f"unit {index[-1]}"

        def direction(k: int) -> str:
            return "forward" if k % d == 0 or d == 1 else "reverse"

        if self.kind.startswith("state"):
            k = index[0]
            where = f"layer {k // d + self.layer_offset}, direction {k % d} ({direction(k)})"
            return where + (f", batch {index[1]}" if self.kind == "state" else "") + f", unit {index[-1]}"
        col = index[-1]
        dir_txt = (
            f"direction {col // self.width} ({direction(col // self.width)})" if d == 2 else "direction 0"
        )
        if self.kind == "time_major":
            t, b = index[0], index[1]
        elif self.kind == "batch_first":
            b, t = index[0], index[1]
        elif self.kind == "unbatched":
            t, b = index[0], 0
        else:  # packed row -> (t, sorted slot -> original batch index)
            offsets = np.concatenate([[0], np.cumsum(self.batch_sizes)])
            t = int(np.searchsorted(offsets, index[0], side="right") - 1)
            slot = index[0] - int(offsets[t])
            b = self.sorted_indices[slot] if self.sorted_indices is not None else slot
        return f"{dir_txt}, time step {t}, batch {b}, unit {col % self.width}"

    def times_of(self, indices: np.ndarray) -> np.ndarray:
        """The time step of each row of ``indices`` (n, ndim)."""
        if self.kind == "batch_first":
            return indices[:, 1]
        if self.kind == "packed":
            offsets = np.concatenate([[0], np.cumsum(self.batch_sizes)])
            return np.searchsorted(offsets, indices[:, 0], side="right") - 1
        return indices[:, 0]


def _first_bad(bad: np.ndarray, layout: Layout) -> tuple[int, ...]:
    """The first bad element in processing order: earliest step of the forward direction,
    else the latest step of the reverse direction (it runs backwards). Ties go to the first
    index in row-major order, the order np.argwhere lists them in."""
    indices = np.argwhere(bad)
    if layout.kind.startswith("state"):
        return tuple(int(i) for i in indices[0])
    times = layout.times_of(indices)
    if layout.num_directions == 2:
        forward = indices[:, -1] < layout.width
        if forward.any():
            indices, times = indices[forward], times[forward]
        else:
            times = -times
    return tuple(int(i) for i in indices[int(np.argmin(times))])  # argmin: the first of equals


def check_form(
    what: str,
    actual: object,
    expected: np.ndarray,
    expected_by: str = "expected",
    dtype: DTypeLike | None = None,
) -> np.ndarray:
    """``actual`` if it is an ndarray of the expected shape and dtype (``dtype``, default the
    expected array's), else a Divergence saying which differs."""
    if not isinstance(actual, np.ndarray):
        raise Divergence(f"{what}: expected a numpy.ndarray, got {type_name(actual)}")
    if actual.shape != expected.shape:
        raise Divergence(f"{what}: shape {actual.shape}, {expected_by} {expected.shape}")
    want = expected.dtype if dtype is None else np.dtype(dtype)
    if actual.dtype != want:
        raise Divergence(f"{what}: dtype {actual.dtype}, {expected_by} {want}")
    return actual


def _check_nan_inf_pattern(a: np.ndarray, e: np.ndarray, what: str, layout: Layout) -> np.ndarray:
    """NaN must meet NaN and an infinity the same infinity; returns where ``e`` is finite."""
    a128, e128 = a.astype(np.complex128), e.astype(np.complex128)
    nan_e = np.isnan(e128)
    with np.errstate(invalid="ignore", over="ignore"):
        inf_e = np.isinf(e128) & ~nan_e
        pattern = (np.isnan(a128) != nan_e) | (inf_e & (a128 != e128))
    if np.any(pattern):
        ix = _first_bad(pattern, layout)
        raise Divergence(
            f"{what}: NaN/Inf pattern differs first at {layout.describe(ix)}: "
            f"got {a[ix]}, expected {e[ix]} ({int(pattern.sum())} elements differ)",
            float("inf"),
            float("inf"),
        )
    finite: np.ndarray = ~nan_e & ~inf_e
    return finite


def _ratio(diff: np.ndarray, magnitude: np.ndarray, finite: np.ndarray, tol: Tolerance) -> np.ndarray:
    """Each element's error as a fraction of its bound ``atol + rtol * |expected|``."""
    ratio: np.ndarray = diff / np.where(finite, tol.atol + tol.rtol * magnitude, 1.0)
    return ratio


def compare(
    actual: object,
    expected: np.ndarray,
    tol: Tolerance,
    what: str,
    layout: Layout,
    dtype: DTypeLike | None = None,
) -> Agreement:
    """Elementwise ``|a - e| <= atol + rtol * |e|`` (NaN where NaN, equal infinities).

    ``dtype``: the dtype ``actual`` must have, when ``expected`` is held wider (the exact
    64-bit answer of a 32-bit case)."""
    e = np.asarray(expected)
    a = check_form(what, actual, e, dtype=dtype)
    if a.size == 0:
        return Agreement()
    finite = _check_nan_inf_pattern(a, e, what, layout)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(a.astype(np.complex128) - e.astype(np.complex128)), 0.0).real
        diff = np.where(np.isfinite(diff), diff, np.inf)  # actual inf where expected finite
        magnitude = np.abs(np.where(finite, e.astype(np.complex128), 0)).real
        ratio = _ratio(diff, magnitude, finite, tol)
        default_ratio = (
            None if tol.default is None else float(_ratio(diff, magnitude, finite, tol.default).max())
        )
        rel = np.where(finite & (magnitude > 0), diff / np.where(magnitude > 0, magnitude, 1), 0)
    max_abs, worst = float(diff.max()), float(ratio.max())
    if worst > 1:
        ix = _first_bad(ratio > 1, layout)
        raise Divergence(
            f"{what} diverges first at {layout.describe(ix)}: got {a[ix]}, expected {e[ix]}; "
            f"over the tensor max abs err {max_abs:.3e}, max rel err {float(rel.max()):.3e}, "
            f"{int((ratio > 1).sum())}/{ratio.size} elements beyond {'declared ' if tol.default else ''}tolerance {tol}",
            max_abs,
            worst,
        )
    return Agreement(max_abs, worst, default_ratio=default_ratio)
