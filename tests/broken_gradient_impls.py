"""Deliberately broken backward passes: lstm_ref.LSTM with a correct forward and exactly one
thing wrong in ``vjp`` each (classic BPTT mistakes).

tests/test_conformance_gradients.py asserts the conformance suite fails every one of them on
the ``gradients`` row (and only there), naming the tensor that diverges.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

import lstm_ref
from tests.broken_impls import Wrapped


class _VjpPatch(lstm_ref.LSTM):
    """Runs the correct vjp, then breaks its result with ``_break``."""

    def vjp(
        self,
        input: Any,
        hx: Any,
        grad_output: Any,
        grad_h_n: Any = None,
        grad_c_n: Any = None,
        *,
        dropout_masks: Any = None,
    ) -> dict[str, np.ndarray]:
        grads = super().vjp(input, hx, grad_output, grad_h_n, grad_c_n, dropout_masks=dropout_masks)
        return self._break(grads, input)

    def _break(self, grads: dict[str, np.ndarray], input: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError


class DroppedC0Grad(_VjpPatch):
    """Returns zeros for the c0 gradient (the cell state's gradient not carried to t = 0)."""

    def _break(self, grads: dict[str, np.ndarray], input: Any) -> dict[str, np.ndarray]:
        return {**grads, "c0": np.zeros_like(grads["c0"])}


class C0GradDroppedBehindSwitch(DroppedC0Grad):
    """DroppedC0Grad whose backward is declared unsupported unless $BACKWARD_SWITCH is 1, as
    torch-compile's adapter does with its compiled backward (the matrix's row subsets)."""

    conformance_unsupported: ClassVar[dict[str, str]] = (
        {} if os.environ.get("BACKWARD_SWITCH") == "1" else {"gradients": "switched off"}
    )


class WeightGradOffByOnePermille(_VjpPatch):
    """weight_ih_l0's gradient 0.1 % too large (e.g. a scale applied twice somewhere)."""

    def _break(self, grads: dict[str, np.ndarray], input: Any) -> dict[str, np.ndarray]:
        return {**grads, "weight_ih_l0": grads["weight_ih_l0"] * self.dtype.type(1.001)}


class BiasHHGradZeroed(_VjpPatch):
    """bias_hh gets no gradient (only bias_ih is treated as a parameter of the pre-activation)."""

    def _break(self, grads: dict[str, np.ndarray], input: Any) -> dict[str, np.ndarray]:
        return {k: (np.zeros_like(v) if k.startswith("bias_hh") else v) for k, v in grads.items()}


class BatchFirstInputGradReshaped(_VjpPatch):
    """batch_first: the time-major input gradient is reshaped (not transposed) to (N, L, F)."""

    def _break(self, grads: dict[str, np.ndarray], input: Any) -> dict[str, np.ndarray]:
        g = grads["input"]
        if self.batch_first and g.ndim == 3:
            g = np.ascontiguousarray(np.swapaxes(g, 0, 1)).reshape(g.shape)
        return {**grads, "input": g}


class ReverseWeightGradsSwapped(_VjpPatch):
    """Bidirectional: each layer's forward and reverse parameter gradients are swapped."""

    def _break(self, grads: dict[str, np.ndarray], input: Any) -> dict[str, np.ndarray]:
        out = dict(grads)
        for name in grads:
            if name.endswith("_reverse"):
                forward = name[: -len("_reverse")]
                out[name], out[forward] = grads[forward], grads[name]
        return out


class IgnoresGradHn(lstm_ref.LSTM):
    """The backward sweep starts from zero instead of grad_h_n (only grad_output is used)."""

    def vjp(
        self,
        input: Any,
        hx: Any,
        grad_output: Any,
        grad_h_n: Any = None,
        grad_c_n: Any = None,
        *,
        dropout_masks: Any = None,
    ) -> dict[str, np.ndarray]:
        return super().vjp(input, hx, grad_output, None, grad_c_n, dropout_masks=dropout_masks)


# A correct forward-only implementation (no vjp method): gradients are "not supported".
NoVjp = Wrapped


class GradientsDeclaredUnsupported(DroppedC0Grad):
    """Broken backward, but declared: the gradients row is skipped with the reason, not failed."""

    conformance_unsupported: ClassVar[dict[str, str]] = {"gradients": "backward not validated yet"}


# name -> the gradient tensor the failure message must name (in some failing case)
BROKEN: dict[str, str] = {
    "DroppedC0Grad": "'c0'",
    "WeightGradOffByOnePermille": "'weight_ih_l0'",
    "BiasHHGradZeroed": "'bias_hh_l0'",
    "BatchFirstInputGradReshaped": "'input'",
    "ReverseWeightGradsSwapped": "'weight_ih_l0'",
    "IgnoresGradHn": "'input'",
}
