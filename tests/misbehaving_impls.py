"""Implementations that attack the run itself (tests/test_isolation.py): a run must still write
its table and reports, name what happened, and exit non-zero."""

from __future__ import annotations

import ctypes
import os
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


class OsExitOnComplex(_OnComplex):
    def misbehave(self) -> None:
        os._exit(3)


# a file the hanging worker creates first, where the environment names one: a test that
# interrupts the run waits for it instead of guessing how long the earlier cases take
HANG_MARKER_ENV = "LSTM_TEST_HANG_MARKER"


class HangsOnComplex(_OnComplex):
    def misbehave(self) -> None:
        marker = os.environ.get(HANG_MARKER_ENV)
        if marker:
            open(marker, "x").close()
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


# -- issue 16 (tests/test_robustness.py) ----------------------------------------------------


class OsExitZeroOnComplex(_OnComplex):
    """Exit 0 from inside a call: under pytest this once ended the session green with nothing run."""

    def misbehave(self) -> None:
        os._exit(0)


class ExitsUnderAForkedChild(_OnComplex):
    """Forks a child that keeps the worker's pipe open, then exits: an exit, not a hang. The
    child's pid goes to $MISBEHAVING_PID_FILE, for the test to see it was killed."""

    def misbehave(self) -> None:
        child = os.fork()
        if child == 0:
            time.sleep(600)
            os._exit(0)
        if os.environ.get("MISBEHAVING_PID_FILE"):
            with open(os.environ["MISBEHAVING_PID_FILE"], "a") as f:
                f.write(f"{child}\n")
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


_FIRST_PROCESS = False
if os.environ.get("MISBEHAVING_MARKER_DIR"):  # the first process to import this module is "first"
    try:
        os.close(os.open(os.path.join(os.environ["MISBEHAVING_MARKER_DIR"], "first"), os.O_CREAT | os.O_EXCL))
        _FIRST_PROCESS = True
    except FileExistsError:
        pass


class FailsThenHangsAlone(lstm_ref.LSTM):
    """Off by 1e-3 in the first worker process; hangs in any later one (a failure rerun alone
    in a fresh process), after creating the file "rerun": Ctrl-C then lands in the rerun-alone
    phase."""

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        if not _FIRST_PROCESS:
            open(os.path.join(os.environ["MISBEHAVING_MARKER_DIR"], "rerun"), "w").close()
            time.sleep(600)
        out, (h, c) = super().__call__(input, hx, dropout_masks=dropout_masks)
        if isinstance(out, lstm_ref.PackedSequence):
            return out, (h, c)
        return out + 1e-3, (h, c)


class TouchesItsInput(lstm_ref.LSTM):
    """float64: writes into its input array after the call; float32: takes only C-contiguous,
    writeable input. Both must show through the worker, as in one process."""

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Any = None) -> Any:
        contiguous = isinstance(input, np.ndarray) and input.flags.c_contiguous and input.flags.writeable
        if np.dtype(self.dtype) == np.float32 and not contiguous:
            raise ValueError("only C-contiguous, writeable input here")
        result = super().__call__(input, hx, dropout_masks=dropout_masks)
        if isinstance(input, np.ndarray) and np.dtype(self.dtype) == np.float64:
            input[...] = 0
        return result
