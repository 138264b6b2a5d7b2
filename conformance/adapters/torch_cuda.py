"""``--impl torch-cuda``: torch.nn.LSTM on a CUDA device (cuDNN), the ``--impl torch`` adapter
with the module and every tensor on ``cuda``; results come back as CPU NumPy arrays.

Stops with one line (SystemExit) where CUDA is absent, before any case runs.
"""

from __future__ import annotations

from typing import ClassVar

from . import require, unavailable, versions

require("torch-cuda", "torch")

from ..run.torch_adapter import TorchLSTM  # noqa: E402

_reason = unavailable("torch-cuda")
if _reason:
    raise SystemExit(f"--impl torch-cuda: {_reason}")


class TorchCudaLSTM(TorchLSTM):
    """torch.nn.LSTM on ``cuda`` (cuDNN where it applies), masks and gradients as ``--impl torch``."""

    device: ClassVar[str] = "cuda"
    conformance_version: ClassVar[str] = versions("torch")
