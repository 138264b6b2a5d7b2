"""Shipped adapters: real LSTM implementations behind the plug-in API, selectable by short name
(``--impl NAME``).  Each adapter lives in its own module here and only converts layouts and
calls its library; the recurrence is always the library's (docs/plugin.md, docs/compatibility.md).

An adapter class may carry ``conformance_version``: the versions of the libraries that did the
work (e.g. ``"torch 2.13.0+cpu, onnxruntime 1.31.1"``), shown in the provenance and the matrix.
"""

from __future__ import annotations

import importlib

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
}
ADAPTERS: dict[str, str] = {name: entry[0] for name, entry in REGISTRY.items()}


def unavailable(adapter: str) -> str | None:
    """Why ``--impl adapter`` cannot run here (a library missing, no CUDA device), or None.
    Looks the modules up without importing them (cheap), except torch for CUDA."""
    import importlib.util

    _, extra, modules = REGISTRY[adapter]
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
    extra = REGISTRY[adapter][1]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SystemExit(
                f"--impl {adapter} needs {module} ({exc}); install it with: pip install 'lstm-ref[{extra}]'"
            ) from None


def versions(*distributions: str) -> str:
    """``"torch 2.13.0+cpu, onnxruntime 1.31.1"`` for the installed distributions named."""
    import importlib.metadata

    from ..provenance import live_torch

    found = []
    for dist in distributions:
        if dist == "torch":  # torch.__version__ in full, as everywhere ("2.10.0+cu128")
            found.append(f"torch {live_torch()}")
            continue
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} absent")
    return ", ".join(found)
