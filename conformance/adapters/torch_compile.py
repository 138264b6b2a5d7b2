"""``--impl torch-compile``: ``torch.compile`` of torch.nn.LSTM with Inductor on CPU.

Dynamo skips RNN modules unless ``torch._dynamo.config.allow_rnn`` is set, and by default falls
back to eager torch after an error, so a plain ``torch.compile(lstm)`` would test eager torch.
This adapter sets ``allow_rnn``, compiles with ``fullgraph=True`` (a graph break raises) and a
backend that wraps Inductor's ``compile_fx`` and counts every call of the compiled graph: each
call it answers must have run compiled code, else it raises ``NotCompiledError``.

The backward (``vjp``) is ``torch.autograd.grad`` through the compiled module's output: AOT
Autograd traces the joint graph and Inductor compiles the backward graph (``compile_fx``'s
``inner_compile`` with ``is_backward=True``), whose calls are counted the same way; a ``vjp``
that ran no compiled backward graph raises ``NotCompiledError``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from . import require, versions

require("torch-compile", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch._dynamo  # noqa: E402
import torch._functorch.config  # noqa: E402

from ..run.torch_adapter import TorchLSTM  # noqa: E402

torch._dynamo.config.allow_rnn = True
# every model is compiled anew (new weights, modes and shapes): no limit on recompilations
torch._dynamo.config.recompile_limit = 1_000_000
torch._dynamo.config.accumulated_recompile_limit = 1_000_000
# a hit in AOT Autograd's cache loads a compiled backward without calling inner_compile, which
# is where the backward's calls are counted (Inductor's own FX graph cache still applies)
torch._functorch.config.enable_autograd_cache = False

# The compiled backward is checked (the `gradients` row) only with
# CONFORMANCE_TORCH_COMPILE_BACKWARD=1: with requires_grad the decomposition unrolls every
# step, and Inductor compiling each case's forward and backward multiplies the run's time
# (docs/adapters.md has the measurements).
BACKWARD_ENV = "CONFORMANCE_TORCH_COMPILE_BACKWARD"
BACKWARD_OFF = (
    "the compiled backward is checked only with CONFORMANCE_TORCH_COMPILE_BACKWARD=1, to keep the "
    "default run's time: Inductor compiles one more forward and a backward graph per case, each "
    "unrolled over every time step (docs/adapters.md)"
)

# CONFORMANCE_TORCH_COMPILE_BACKEND=eager compiles with dynamo only (no graph is counted: the
# adapter must then refuse to answer; the tests use it to prove that the check works)
BACKEND_ENV = "CONFORMANCE_TORCH_COMPILE_BACKEND"


class NotCompiledError(RuntimeError):
    """A call answered without running compiled code (dynamo skipped or fell back to eager)."""


class CountingInductor:
    """A torch.compile backend: Inductor's compile_fx, counting calls of the compiled graphs
    (``calls``) and of the compiled backward graphs (``backward_calls``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.backward_calls = 0

    def __call__(self, gm: Any, example_inputs: Any) -> Any:
        if os.environ.get(BACKEND_ENV) == "eager":
            return gm.forward  # dynamo's graph run as Python, uncounted
        from torch._inductor.compile_fx import compile_fx

        compiled: Any = compile_fx(gm, example_inputs, inner_compile=self._inner_compile)

        def run(*args: Any) -> Any:
            self.calls += 1
            return compiled(*args)

        return run

    def _inner_compile(self, gm: Any, example_inputs: Any, **kwargs: Any) -> Any:
        """Inductor's compile_fx_inner; a backward graph's compiled code counts its calls."""
        from torch._inductor.compile_fx import compile_fx_inner

        code: Any = compile_fx_inner(gm, example_inputs, **kwargs)
        if kwargs.get("is_backward"):
            code.__class__ = _counting(type(code))
            code.conformance_counter = self
        return code


_COUNTING: dict[type, type] = {}


def _counting(output_code: type) -> type:
    """A subclass of Inductor's compiled-graph class whose calls count (AOT Autograd keeps the
    object it was given, so the class is swapped rather than the object wrapped)."""

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.conformance_counter.backward_calls += 1
        return output_code.__call__(self, *args, **kwargs)

    if output_code not in _COUNTING:
        _COUNTING[output_code] = type(
            f"Counting{output_code.__name__}", (output_code,), {"__call__": __call__}
        )
    return _COUNTING[output_code]


class TorchCompileLSTM(TorchLSTM):
    """torch.compile(nn.LSTM, fullgraph=True) with Inductor; refuses to answer a call (or a
    vjp) that did not run a compiled graph (a compiled backward graph)."""

    conformance_version: ClassVar[str] = versions("torch")
    conformance_unsupported: ClassVar[dict[str, str]] = {
        "dropout_masks": "a compiled nn.LSTM draws its own dropout masks inside the graph; "
        "there is no way to pass given masks to it",
        **({} if os.environ.get(BACKWARD_ENV) == "1" else {"gradients": BACKWARD_OFF}),
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

    def vjp(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """torch.autograd.grad through the compiled module (TorchLSTM.vjp over ``_run_module``)."""
        before = self.backend.backward_calls
        grads = super().vjp(*args, **kwargs)
        if self.backend.backward_calls == before:
            raise NotCompiledError("torch.compile's backward ran without a compiled backward graph")
        return grads
