"""Shipped adapters: real LSTM implementations behind the plug-in API, selectable by short name
(``--impl NAME``).  Each adapter lives in its own module here and only converts layouts and
calls its library; the recurrence is always the library's (docs/plugin.md, docs/compatibility.md).

An adapter class may carry ``conformance_version``: the versions of the libraries that did the
work (e.g. ``"torch 2.13.0+cpu, onnxruntime 1.31.1"``, made by ``versions``, the toolkit's
``library_versions``), shown in the provenance and the matrix.
"""

from __future__ import annotations

import importlib
import os

# short name -> (MODULE:ATTR, the extra that installs its libraries, the modules it imports)
REGISTRY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "torch-compile": ("conformance.adapters.torch_compile:TorchCompileLSTM", "test", ("torch",)),
    "torch-decomp": ("conformance.adapters.torch_decomp:TorchDecompLSTM", "test", ("torch",)),
    "torchscript": ("conformance.adapters.torchscript:TorchScriptLSTM", "test", ("torch",)),
    "torch-quantized": ("conformance.adapters.torch_quantized:TorchQuantizedLSTM", "test", ("torch",)),
    "torch-cuda": ("conformance.adapters.torch_cuda:TorchCudaLSTM", "test", ("torch",)),
    "onnxruntime": (
        "conformance.adapters.onnxruntime:OnnxRuntimeLSTM",
        "onnx",
        ("torch", "onnx", "onnxruntime", "onnxscript"),
    ),
    "keras": ("conformance.adapters.keras:KerasLSTM", "keras", ("keras", "jax")),
    "flax": ("conformance.adapters.flax:FlaxLSTM", "jax", ("jax", "flax")),
    "haiku": ("conformance.adapters.haiku:HaikuLSTM", "haiku", ("jax", "haiku")),
    "tensorflow": ("conformance.adapters.tensorflow:TensorFlowLSTM", "tensorflow", ("tensorflow",)),
    "openvino": ("conformance.adapters.openvino:OpenVinoLSTM", "openvino", ("torch", "openvino")),
    "paddle": ("conformance.adapters.paddle:PaddleLSTM", "paddle", ("paddle",)),
}
ADAPTERS: dict[str, str] = {name: entry[0] for name, entry in REGISTRY.items()}


def keras_backend() -> str:
    """The backend Keras will run on: ``KERAS_BACKEND`` (the keras adapter's default is jax)."""
    return os.environ.get("KERAS_BACKEND", "jax")


def _needs(adapter: str) -> tuple[str, tuple[str, ...]]:
    """The extra and the modules ``--impl adapter`` needs (for keras: keras and its backend)."""
    _, extra, modules = REGISTRY[adapter]
    if adapter == "keras" and keras_backend() != "jax":
        backend = keras_backend()
        return ("tensorflow" if backend == "tensorflow" else extra), ("keras", backend)
    return extra, modules


def unavailable(adapter: str) -> str | None:
    """Why ``--impl adapter`` cannot run here (a library missing, no CUDA device), or None.
    Looks the modules up without importing them (cheap), except torch for CUDA."""
    import importlib.util

    extra, modules = _needs(adapter)
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        return f"needs {', '.join(missing)}: pip install 'lstm-ref[{extra}]'"
    if adapter == "torch-cuda":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device here (torch.cuda.is_available() is False)"
    return None


def require(adapter: str, *modules: str) -> None:
    """Import ``modules`` or stop with one line naming the extra that installs them."""
    extra = _needs(adapter)[0]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SystemExit(
                f"--impl {adapter} needs {module} ({exc}); install it with: pip install 'lstm-ref[{extra}]'"
            ) from None


def versions(*distributions: str) -> str:
    """``"torch 2.13.0+cpu, onnxruntime 1.31.1"`` for the installed distributions named
    (conformance.toolkit.library_versions, the public name)."""
    from ..toolkit import library_versions

    return library_versions(*distributions)
