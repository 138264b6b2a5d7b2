"""Implementations that attack the run itself (tests/test_isolation.py): a run must still write
its table and reports, name what happened, and exit non-zero."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from typing import Any

import numpy as np

import lstm_ref


class _OnComplex(lstm_ref.LSTM):
    """Misbehaves on complex cases only, so the others' results must be kept."""

    def misbehave(self) -> None:
        raise NotImplementedError

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if np.dtype(self.dtype).kind == "c":
            self.misbehave()
        return super().__call__(input, hx, dropout_masks=dropout_masks)


class SegfaultOnComplex(_OnComplex):
    def misbehave(self) -> None:
        ctypes.string_at(0)  # reads address 0: SIGSEGV


class ExitZeroOnComplex(_OnComplex):
    """The false green of old: sys.exit(0) from inside a call."""

    def misbehave(self) -> None:
        sys.exit(0)


class OsExitOnComplex(_OnComplex):
    def misbehave(self) -> None:
        os._exit(3)


class HangsOnComplex(_OnComplex):
    def misbehave(self) -> None:
        time.sleep(600)


class MemoryErrorOnComplex(_OnComplex):
    def misbehave(self) -> None:
        raise MemoryError("bounded: raised, not allocated")


class LeaksStateAfterComplex(lstm_ref.LSTM):
    """Every call after a complex one in the same process is off: a verdict that depends on the
    order of cases, which --isolate case and the recheck expose."""

    poisoned = False

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if np.dtype(self.dtype).kind == "c":
            type(self).poisoned = True
        out, (h, c) = super().__call__(input, hx, dropout_masks=dropout_masks)
        if (
            type(self).poisoned
            and np.dtype(self.dtype).kind != "c"
            and not isinstance(out, lstm_ref.PackedSequence)
        ):
            out = out + 1e-3
        return out, (h, c)


class SegfaultOnEmptyBatch(lstm_ref.LSTM):
    """As onnxruntime aborts on a batch of 0: a crash inside the error cases' suite check."""

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if isinstance(input, np.ndarray) and input.ndim == 3 and input.shape[1] == 0:
            ctypes.string_at(0)
        return super().__call__(input, hx, dropout_masks=dropout_masks)


# -- issue 16: implementations that try to reach the verdict, or the suite's own code ------------


class OsExitZeroOnComplex(_OnComplex):
    """Exit 0 from inside a call: under pytest this once ended the session green with nothing run."""

    def misbehave(self) -> None:
        os._exit(0)


class _Zeros(np.ndarray):
    """An ndarray whose ufuncs and comparisons claim equality with anything."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        shape = np.broadcast_shapes(*(np.shape(i) for i in inputs))
        if ufunc in (np.isnan, np.isinf, np.isfinite):
            return np.zeros(shape, bool) if ufunc is not np.isfinite else np.ones(shape, bool)
        return np.zeros(shape, dtype=bool if method == "__call__" and ufunc.nout == 1 and "equal" in ufunc.__name__ else float)

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        return True

    def astype(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def max(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return 0.0


class LyingArrays(lstm_ref.LSTM):
    """All-zero results, as an ndarray subclass whose arithmetic says they match."""

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, (h, c) = super().__call__(input, hx, dropout_masks=dropout_masks)
        if isinstance(out, lstm_ref.PackedSequence):
            return out, (h, c)
        lie = [np.zeros_like(a).view(_Zeros) for a in (out, h, c)]
        return lie[0], (lie[1], lie[2])


def _patch_the_suite() -> None:
    """What a module imported by an implementation can do to the process it is imported in."""
    import conformance.compare as compare

    compare.compare = lambda *args, **kwargs: compare.Agreement()
    compare.check_form = lambda what, actual, expected, *a, **k: actual


class PatchesTheSuite(lstm_ref.LSTM):
    """Patches conformance.compare at import, then returns zeros."""

    _patch_the_suite()

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, (h, c) = super().__call__(input, hx, dropout_masks=dropout_masks)
        if isinstance(out, lstm_ref.PackedSequence):
            return out, (h, c)
        return np.zeros_like(out), (np.zeros_like(h), np.zeros_like(c))


class ReturnsAGenerator(lstm_ref.LSTM):
    """Right numbers, wrong type: a generator unpacks like (output, (h_n, c_n))."""

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        out, state = super().__call__(input, hx, dropout_masks=dropout_masks)
        return (value for value in (out, state))


class _Unprintable(ValueError):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


class RaisesUnprintable(lstm_ref.LSTM):
    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        raise _Unprintable


class _Custom(BaseException):
    pass


class RaisesKeyboardInterrupt(_OnComplex):
    def misbehave(self) -> None:
        raise KeyboardInterrupt


class RaisesBaseException(_OnComplex):
    def misbehave(self) -> None:
        raise _Custom("custom BaseException")


class ExitsUnderAForkedChild(_OnComplex):
    """Forks a child that keeps the worker's pipe open, then exits: not a hang."""

    def misbehave(self) -> None:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        os._exit(4)


class NoVjpCannotBeBuilt:
    """No vjp, and construction fails for bidirectional models: the gradients row is skipped."""

    def __init__(self, **config: Any) -> None:
        if config.get("bidirectional"):
            raise ValueError("bidirectional is not built here")
        self.m = lstm_ref.LSTM(**config)

    def state_dict(self) -> Any:
        return self.m.state_dict()

    def load_state_dict(self, sd: Any) -> None:
        self.m.load_state_dict(sd)

    def train(self, mode: bool = True) -> Any:
        self.m.train(mode)
        return self

    def eval(self) -> Any:
        return self.train(False)

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        return self.m(input, hx, dropout_masks=dropout_masks)
