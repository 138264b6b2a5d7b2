"""``--impl torch-decomp``: torch's own decomposition of ``aten.lstm`` (torch/_decomp), the code
that torch.export and the compilers run in place of the LSTM kernel.

nn.LSTM's Python forward runs as usual (its argument checks, unbatched input, zero states,
the hx permutation of packed input); only its ``_VF.lstm`` call is answered by
``torch._decomp.decomposition_table[aten.lstm.input]`` (``aten.lstm.data`` for packed input)
with nn.LSTM's flat weights, as tracing sees it.  The recurrence is the decomposition's.
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import require, versions

require("torch-decomp", "torch")

import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

from ..run.torch_adapter import TorchLSTM  # noqa: E402


class DecomposeLSTM(TorchFunctionMode):
    """While active, every ``torch._VF.lstm`` call runs torch's decomposition of aten.lstm."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is torch._VF.lstm:
            packed = len(args) > 1 and isinstance(args[1], torch.Tensor)  # (data, batch_sizes, hx, ...)
            overload = torch.ops.aten.lstm.data if packed else torch.ops.aten.lstm.input
            return torch._decomp.decomposition_table[overload](*args, **kwargs)
        return func(*args, **kwargs)


class TorchDecompLSTM(TorchLSTM):
    """nn.LSTM whose LSTM kernel is replaced by torch's decomposition of aten.lstm.

    Dropout masks are replayed layer by layer (one-layer modules, each decomposed); gradients
    are torch.autograd's through the decomposed graph.
    """

    conformance_version: ClassVar[str] = versions("torch")

    def _forward(self, x: Any, hx: Any, noise: list[Any] | None) -> tuple[Any, Any, Any]:
        with DecomposeLSTM():
            return super()._forward(x, hx, noise)
