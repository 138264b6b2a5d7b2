"""torch.nn.LSTM's naming and layout conventions, in one place.

Everything here is a fact about torch, not about how lstm_ref computes: parameter names and
their registration order, parameter shapes, the order of the four gate blocks inside a weight,
and how dropout scales the values it keeps.  lstm_ref and the conformance suite both use it.
(See docs/semantics.md, "Parameters" and "Dropout".)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

# torch stacks the four gate blocks of every weight and bias in this order, each H rows tall.
GATES = ("i", "f", "g", "o")


def gate_rows(gate: str, hidden_size: int) -> slice:
    """The rows of gate ``gate`` ("i", "f", "g" or "o") in a (4H, ...) weight or (4H,) bias."""
    position = GATES.index(gate)
    return slice(position * hidden_size, (position + 1) * hidden_size)


def param_suffix(layer: int, direction: int) -> str:
    """``_l{layer}``, plus ``_reverse`` for the reverse direction: ``weight_ih_l1_reverse``."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def param_names(
    num_layers: int = 1, bidirectional: bool = False, bias: bool = True, proj_size: int = 0
) -> list[str]:
    """Every parameter name in torch's registration (and ``state_dict``) order."""
    names = []
    for layer in range(num_layers):
        for direction in range(2 if bidirectional else 1):
            suffix = param_suffix(layer, direction)
            names += ["weight_ih" + suffix, "weight_hh" + suffix]
            if bias:
                names += ["bias_ih" + suffix, "bias_hh" + suffix]
            if proj_size:
                names.append("weight_hr" + suffix)
    return names


def param_shapes(
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    bias: bool = True,
    proj_size: int = 0,
) -> dict[str, tuple[int, ...]]:
    """torch.nn.LSTM's parameters: name -> shape, in registration order.

    Layer 0 reads ``input_size`` features; layer k > 0 reads both directions of layer k-1's
    output, ``D * H_out`` features, where ``H_out`` is ``proj_size`` when projecting.
    """
    gates, h_out, d = 4 * hidden_size, proj_size or hidden_size, 2 if bidirectional else 1
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(num_layers):
        features = input_size if layer == 0 else d * h_out
        for direction in range(d):
            suffix = param_suffix(layer, direction)
            shapes["weight_ih" + suffix] = (gates, features)
            shapes["weight_hh" + suffix] = (gates, h_out)
            if bias:
                shapes["bias_ih" + suffix] = (gates,)
                shapes["bias_hh" + suffix] = (gates,)
            if proj_size:
                shapes["weight_hr" + suffix] = (proj_size, hidden_size)
    assert list(shapes) == param_names(num_layers, bidirectional, bias, proj_size)
    return shapes


def cell_param_shapes(input_size: int, hidden_size: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    """torch.nn.LSTMCell's parameters (no layer suffix): name -> shape, in registration order."""
    gates = 4 * hidden_size
    shapes: dict[str, tuple[int, ...]] = {"weight_ih": (gates, input_size), "weight_hh": (gates, hidden_size)}
    if bias:
        shapes.update(bias_ih=(gates,), bias_hh=(gates,))
    return shapes


def dropout_scale(p: float, dtype: DTypeLike) -> np.generic:
    """The factor torch multiplies kept values by, ``1 / (1 - p)``, computed in ``dtype`` as
    torch computes it (``bernoulli(1 - p).div_(1 - p)``), so replayed masks match bit for bit."""
    dt: Any = np.dtype(dtype).type
    scale: np.generic = dt(1) / dt(1 - p)  # 1 - p in Python's double, then rounded, as torch
    return scale


def dropout_noise(keep: np.ndarray, p: float, dtype: DTypeLike) -> np.ndarray:
    """A keep-mask (nonzero = kept) as the multiplier torch applies: ``keep / (1 - p)``."""
    dt = np.dtype(dtype)
    noise: np.ndarray = (np.asarray(keep) != 0).astype(dt) * dropout_scale(p, dt)
    return noise
