"""``--impl torchscript``: ``torch.jit.script`` of torch.nn.LSTM (and of nn.LSTMCell for the cell).

The scripted nn.LSTM has no ``forward`` of its own: TorchScript compiles the two overloads of
nn.LSTM.forward as ``forward__0`` (a tensor) and ``forward__1`` (a PackedSequence), and a
scripted caller picks one by the argument's type; the adapter does the same.  The scripted
module shares nn.LSTM's parameters, so loading weights into nn.LSTM loads them into it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import require, versions

require("torchscript", "torch")

import torch  # noqa: E402
from torch.nn.utils.rnn import PackedSequence  # noqa: E402

from ..run.torch_adapter import TorchLSTM, TorchLSTMCell  # noqa: E402


def _scripted_call(scripted: Any, x: Any, hx: Any) -> Any:
    """The overload a scripted caller would pick: forward__1 for packed input, else forward__0.
    TorchScript returns a PackedSequence as its own named tuple: made torch's again (layout)."""
    if not isinstance(x, PackedSequence):
        return scripted.forward__0(x, hx)
    out, state = scripted.forward__1(x, hx)
    return PackedSequence(*out), state


class TorchScriptLSTMCell(TorchLSTMCell):
    """torch.jit.script of torch.nn.LSTMCell."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scripted = torch.jit.script(self.module)

    def _run(self, x: Any, hx: Any) -> Any:
        return self.scripted(x, hx)


class TorchScriptLSTM(TorchLSTM):
    """torch.jit.script of torch.nn.LSTM; dropout masks are replayed by scripted one-layer
    modules (sharing the parameters), gradients are torch.autograd's through the scripted call."""

    conformance_version: ClassVar[str] = versions("torch")
    conformance_cell: ClassVar[Any] = TorchScriptLSTMCell

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scripted = torch.jit.script(self.module)

    def train(self, mode: bool = True) -> TorchScriptLSTM:
        super().train(mode)
        self.scripted.train(mode)
        return self

    def _run_module(self, x: Any, hx: Any) -> Any:
        return _scripted_call(self.scripted, x, hx)

    def _run_layer(self, single: Any) -> Any:
        # single_layer() swaps in the shared parameters after construction; eager nn.LSTM
        # refreshes _flat_weights on its next call, a scripted one keeps what it was made with
        single._init_flat_weights()
        scripted = torch.jit.script(single)
        return lambda x, hx: _scripted_call(scripted, x, hx)
