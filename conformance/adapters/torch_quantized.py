"""``--impl torch-quantized``: torch's dynamic int8 quantization of nn.LSTM and nn.LSTMCell,
``torch.ao.quantization.quantize_dynamic(..., {nn.LSTM}, dtype=torch.qint8)``.

The float nn.LSTM holds the weights (state_dict with torch's names); every load quantizes it
anew (weights to int8 per tensor, activations quantized dynamically per call).  quantize_dynamic
only swaps submodules, so the LSTM is quantized inside a one-entry ModuleDict.  Lossy by design:
the adapter declares its tolerance (docs/adapters.md gives the measurements).
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import require, versions

require("torch-quantized", "torch")

import torch  # noqa: E402

from ..run.torch_adapter import TorchForward, TorchLSTMCell  # noqa: E402


def quantize(module: Any) -> Any:
    """``module`` (an nn.LSTM or nn.LSTMCell) quantized dynamically to int8 weights."""
    holder = torch.nn.ModuleDict({"m": module})
    quantization: Any = torch.ao.quantization
    quantized = quantization.quantize_dynamic(holder, {type(module)}, dtype=torch.qint8)
    return quantized["m"].train(module.training)


class TorchQuantizedLSTMCell(TorchLSTMCell):
    """torch.ao.nn.quantized.dynamic.LSTMCell, quantized from nn.LSTMCell at each load."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.quantized = quantize(self.module)

    def _run(self, x: Any, hx: Any) -> Any:
        return self.quantized(x, hx)


class TorchQuantizedLSTM(TorchForward):
    """torch.ao.nn.quantized.dynamic.LSTM; dropout masks are replayed by quantized one-layer
    modules.  No vjp: the quantized module has no backward (declared)."""

    conformance_version: ClassVar[str] = versions("torch")
    conformance_cell: ClassVar[Any] = TorchQuantizedLSTMCell
    conformance_unsupported: ClassVar[dict[str, str]] = {
        "float64": "quantized dynamic LSTM computes in float32 ('expected scalar type Float but found Double')",
        "complex": "quantized dynamic LSTM computes in float32 ('expected scalar type Float but found ComplexFloat')",
        "proj_size": "quantized dynamic LSTM has no projections (quantize_dynamic: 'The number of rows in the "
        "packB should be equal to K')",
        "no_bias": "quantized dynamic LSTM requires biases (quantize_dynamic: 'mod.bias must be True')",
        "unbatched": "quantized dynamic LSTM takes 3-D input only ('input must have 3 dimensions, got 2')",
        "gradients": "quantized dynamic LSTM has no backward pass ('aten::quantized_lstm: an autograd kernel "
        "was not registered'; the input gets no gradient, and the packed int8 weights are not Parameters)",
    }
    conformance_tolerance: ClassVar[dict[str, tuple[float, float]]] = {"float32": (0.0, 0.05)}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.quantized = quantize(self.module)

    def train(self, mode: bool = True) -> TorchQuantizedLSTM:
        super().train(mode)
        self.quantized.train(mode)
        return self

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.quantized = quantize(self.module)

    def _run_module(self, x: Any, hx: Any) -> Any:
        return self.quantized(x, hx)

    def _run_layer(self, single: Any) -> Any:
        single._init_flat_weights()  # the swapped-in shared parameters, before quantizing them
        return quantize(single)
