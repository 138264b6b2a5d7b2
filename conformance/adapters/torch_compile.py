"""``--impl torch-compile``: ``torch.compile`` of torch.nn.LSTM with Inductor on CPU.

Dynamo skips RNN modules unless ``torch._dynamo.config.allow_rnn`` is set, and by default falls
back to eager torch after an error, so a plain ``torch.compile(lstm)`` would test eager torch.
This adapter sets ``allow_rnn``, compiles with ``fullgraph=True`` (a graph break raises) and a
backend that wraps Inductor's ``compile_fx`` and counts every call of the compiled graph: each
call it answers must have run compiled code, else it raises ``NotCompiledError``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from . import require, versions

require("torch-compile", "torch")

import torch  # noqa: E402
import torch._dynamo  # noqa: E402

from ..torch_adapter import TorchForward  # noqa: E402

torch._dynamo.config.allow_rnn = True
# every model is compiled anew (new weights, modes and shapes): no limit on recompilations
torch._dynamo.config.recompile_limit = 1_000_000
torch._dynamo.config.accumulated_recompile_limit = 1_000_000

# CONFORMANCE_TORCH_COMPILE_BACKEND=eager compiles with dynamo only (no graph is counted: the
# adapter must then refuse to answer; the tests use it to prove that the check works)
BACKEND_ENV = "CONFORMANCE_TORCH_COMPILE_BACKEND"


class NotCompiledError(RuntimeError):
    """A call answered without running compiled code (dynamo skipped or fell back to eager)."""


class CountingInductor:
    """A torch.compile backend: Inductor's compile_fx, counting calls of the compiled graphs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, gm: Any, example_inputs: Any) -> Any:
        if os.environ.get(BACKEND_ENV) == "eager":
            return gm.forward  # dynamo's graph run as Python, uncounted
        from torch._inductor.compile_fx import compile_fx

        compiled: Any = compile_fx(gm, example_inputs)

        def run(*args: Any) -> Any:
            self.calls += 1
            return compiled(*args)

        return run


class TorchCompileLSTM(TorchForward):
    """torch.compile(nn.LSTM, fullgraph=True) with Inductor; refuses to answer a call that did
    not run a compiled graph.  No vjp: Inductor compiling the backward of the unrolled 1000-step
    cases takes over 10 minutes on 2 cores (docs/adapters.md)."""

    conformance_version: ClassVar[str] = versions("torch")
    conformance_unsupported: ClassVar[dict[str, str]] = {
        "dropout_masks": "a compiled nn.LSTM draws its own dropout masks inside the graph; "
        "there is no way to pass given masks to it",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backend = CountingInductor()
        self.compiled = torch.compile(self.module, backend=self.backend, fullgraph=True)

    def _run_module(self, x: Any, hx: Any) -> Any:
        before = self.backend.calls
        result = self.compiled(x, hx)
        if self.backend.calls == before:
            raise NotCompiledError("torch.compile answered without running a compiled graph")
        return result
