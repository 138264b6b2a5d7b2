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
