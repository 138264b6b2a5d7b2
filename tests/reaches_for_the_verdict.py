"""An implementation that reaches for the verdict, one way per L1 case (tests/test_robustness.py
runs them all in one CLI run). Importing this module patches the suite's comparisons in the
importing process: never import it in the test process itself."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

import lstm_ref
from tests.misbehaving_impls import ExitsUnderAForkedChild


def _patch_the_suite() -> None:
    """What a module imported by an implementation can do to the process it is imported in:
    every comparison of the suite's copy in this process passes."""
    import conformance.checks.harness  # noqa: F401 -- loaded, so that it is patched too
    from conformance.contract.compare import Agreement

    for name, module in list(sys.modules.items()):
        if name.startswith("conformance."):
            for attr in ("compare", "compare_all", "compare_gradient"):
                if callable(getattr(module, attr, None)):
                    setattr(module, attr, lambda *args, **kwargs: Agreement())


_patch_the_suite()


class _Zeros(np.ndarray):
    """An ndarray whose ufuncs say it matches anything: NaN nowhere, every difference 0."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        shape = np.broadcast_shapes(*(np.shape(i) for i in inputs))
        if ufunc is np.isfinite:
            return np.ones(shape, bool)
        if ufunc in (np.isnan, np.isinf):
            return np.zeros(shape, bool)
        return np.zeros(shape)

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        return True

    def astype(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self

    def max(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return 0.0


class _Unprintable(ValueError):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


class _Custom(BaseException):
    pass


class MisbehavesPerCase(lstm_ref.LSTM):
    """The case's dtype and input form pick the misbehaviour; other cases are computed right."""

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        kind = np.dtype(self.dtype).name
        packed = isinstance(input, lstm_ref.PackedSequence)
        ndim = None if packed else np.ndim(input)
        if kind == "float32" and ndim == 3 and not self.proj_size:  # all zeros, claiming to match
            out, (h, c) = super().__call__(input, hx, dropout_masks=dropout_masks)
            lie = [np.zeros_like(a).view(_Zeros) for a in (out, h, c)]
            return lie[0], (lie[1], lie[2])
        if kind == "float64" and ndim == 3 and not self.bidirectional:  # right numbers, wrong type
            result = super().__call__(input, hx, dropout_masks=dropout_masks)
            return (value for value in result)
        if kind == "float32" and ndim == 2:
            raise _Unprintable
        if kind == "complex64" and ndim == 2:
            raise KeyboardInterrupt
        if kind == "complex64" and ndim == 3 and self.proj_size:
            raise _Custom("custom BaseException")
        if kind == "float32" and packed:
            sys.exit(0)
        if kind == "float64" and packed:  # zeros: only the patched comparisons would pass them
            out, (h, c) = super().__call__(input, hx, dropout_masks=dropout_masks)
            zeros = lstm_ref.PackedSequence(
                np.zeros_like(out.data), out.batch_sizes, out.sorted_indices, out.unsorted_indices
            )
            return zeros, (np.zeros_like(h), np.zeros_like(c))
        if kind == "float64" and self.bidirectional:
            ExitsUnderAForkedChild.misbehave(self)  # type: ignore[arg-type]
        return super().__call__(input, hx, dropout_masks=dropout_masks)
