"""``--impl openvino``: torch.nn.LSTM converted with ``openvino.convert_model`` and run by
OpenVINO's CPU plugin.

The model the suite builds is a real torch.nn.LSTM (so bad constructor arguments meet torch's
own checks); at the first call after construction or ``load_state_dict`` it is converted (the
PyTorch frontend traces the module with an example input; sequence length and batch come out
dynamic) and compiled for the CPU, once per weights and input form: batched (``batch_first``
is in the traced graph), unbatched (the graph's own 2-D handling), packed, each with or
without ``(h0, c0)``. The recurrence is OpenVINO's (its LSTMSequence); this module only moves
arrays. Compiled with ``INFERENCE_PRECISION_HINT=f32``: the CPU plugin's default on a CPU with
bfloat16 instructions is bf16 (docs/compatibility.md), which would make the column depend on
the machine.

PackedSequence: not a traceable input, so (as for onnxruntime) the module is wrapped in
``pack_padded_sequence``/``pad_packed_sequence`` with the lengths as a second input; packed input
is unpacked (in its sorted order) to padded + lengths and the output packed again.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from . import require, versions

require("openvino", "torch", "openvino")

import openvino  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import lstm_ref  # noqa: E402
from lstm_ref.packing import packed_lengths  # noqa: E402

from ..oracles.torch_oracle import one_thread  # noqa: E402
from ..run.torch_adapter import TorchModuleState, new_torch_lstm  # noqa: E402

# what OpenVINO says or does, verbatim where it says it (docs/adapters.md)
PROJ_REASON = (
    "openvino.convert_model: 'Model wasn't fully converted' (aten::lstm with proj_size: its "
    "LSTMSequence has no projection)"
)
COMPLEX_REASON = (
    "openvino.convert_model: 'Incorrect input parameters provided. Expected tuple with input name, "
    "input type or input shape. Got unknown object: ...Complex' (no complex LSTM)"
)
DROPOUT_REASON = (
    "openvino.convert_model puts the module in eval mode before tracing it (pt_module.eval()): "
    "a converted model has no dropout"
)
GRADIENTS_REASON = "OpenVINO is an inference runtime: a compiled model has no backward pass (no autograd)"
# OpenVINO's defaults but for the precision; not INFERENCE_NUM_THREADS=1, which changes what is
# accepted (inputs of the wrong size return empty arrays: docs/compatibility.md)
COMPILE_CONFIG: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}

_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # one compiled model per weights and form
_CACHE_SIZE = 32
_CORE: list[Any] = []


class _Packed(torch.nn.Module):
    """The LSTM fed ``pack_padded_sequence(x, lengths)`` (sorted, time-major), output padded
    again: a packed call as a traceable graph."""

    def __init__(self, lstm: torch.nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x: Any, lengths: Any, *hx: Any) -> Any:
        packed = pack_padded_sequence(x, lengths, enforce_sorted=True)
        out, (h_n, c_n) = self.lstm(packed, (hx[0], hx[1]) if hx else None)
        return pad_packed_sequence(out)[0], h_n, c_n


def _core() -> Any:
    if not _CORE:
        _CORE.append(openvino.Core())
    return _CORE[0]


def _pair(hx: Any) -> tuple[Any, Any]:
    """torch's ``(h0, c0)`` as two inputs, indexed as torch.nn.LSTM indexes it; a third state
    has no input to go to and is refused as torch refuses it."""
    h0, c0 = hx[0], hx[1]
    if len(hx) != 2:
        raise RuntimeError(f"hx must be the pair (h0, c0), got {len(hx)} states")
    return h0, c0


def _feed(value: Any) -> Any:
    return np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value


class OpenVinoLSTM(TorchModuleState):
    """torch.nn.LSTM -> openvino.convert_model -> compiled for CPU, behind lstm_ref.LSTM's NumPy
    API. No ``vjp``: OpenVINO runs inference only (declared)."""

    conformance_version: ClassVar[str] = versions("torch", "openvino")
    conformance_unsupported: ClassVar[dict[str, str]] = {
        "proj_size": PROJ_REASON,
        "complex": COMPLEX_REASON,
        "dropout": DROPOUT_REASON,
        "gradients": GRADIENTS_REASON,
    }

    def __init__(
        self,
        input_size: Any,
        hidden_size: Any,
        num_layers: Any = 1,
        bias: Any = True,
        batch_first: Any = False,
        dropout: Any = 0.0,
        bidirectional: Any = False,
        proj_size: Any = 0,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        self.config = (
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
        )
        self.module = new_torch_lstm(self.config, dtype, seed)
        self.dtype = np.dtype(dtype)
        self._weights_changed()

    def _weights_changed(self) -> None:
        digest = hashlib.sha256()
        for name, value in self.module.state_dict().items():
            digest.update(name.encode() + value.detach().numpy().tobytes())
        self._key = (self.config, str(self.dtype), digest.hexdigest())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._weights_changed()

    def _example(self, form: str, with_hx: bool) -> tuple[Any, ...]:
        """Example inputs for the trace (shapes only matter; L and N come out dynamic)."""
        m: Any = self.module
        steps, batch = 3, 2
        layers, dtype = m.num_layers * (2 if m.bidirectional else 1), m.weight_ih_l0.dtype
        h_out = m.proj_size or m.hidden_size
        state: tuple[tuple[int, ...], ...] = (layers, h_out), (layers, m.hidden_size)
        if form == "unbatched":
            x: tuple[Any, ...] = (torch.zeros(steps, m.input_size, dtype=dtype),)
        elif form == "packed":
            x = (torch.zeros(steps, batch, m.input_size, dtype=dtype), torch.tensor([steps, steps - 1]))
        else:
            shape = (batch, steps) if m.batch_first else (steps, batch)
            x = (torch.zeros(*shape, m.input_size, dtype=dtype),)
        if not with_hx:
            return x
        if form != "unbatched":
            state = (layers, batch, h_out), (layers, batch, m.hidden_size)
        hx = tuple(torch.zeros(s, dtype=dtype) for s in state)
        return (*x, *hx) if form == "packed" else (*x, hx)

    def compiled(self, form: str, with_hx: bool) -> Any:
        """The cached compiled model of this module, weights and input form."""
        key = (*self._key, form, with_hx)
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        was_training = self.module.training  # convert_model sets eval mode and leaves it so
        model = _Packed(self.module) if form == "packed" else self.module
        try:
            with warnings.catch_warnings(), one_thread():
                warnings.simplefilter("ignore")
                converted = openvino.convert_model(
                    model, example_input=self._example(form, with_hx), share_weights=False
                )
        finally:
            self.module.train(was_training)
        compiled = _core().compile_model(converted, "CPU", COMPILE_CONFIG)
        _CACHE[key] = compiled
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return compiled

    def _check_mode(self) -> None:
        m = self.module
        if m.training and float(m.dropout) > 0 and int(m.num_layers) > 1:
            raise NotImplementedError(DROPOUT_REASON)

    def _run(self, form: str, inputs: list[Any]) -> list[np.ndarray]:
        with_hx = len(inputs) > (2 if form == "packed" else 1)
        result = self.compiled(form, with_hx)([_feed(v) for v in inputs])
        return [np.asarray(result[i]) for i in range(3)]

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        self._check_mode()
        if isinstance(input, lstm_ref.PackedSequence):
            return self._call_packed(input, hx)
        form = "unbatched" if isinstance(input, np.ndarray) and input.ndim == 2 else "batched"
        inputs = [input, *([] if hx is None else _pair(hx))]
        out, h_n, c_n = self._run(form, inputs)
        return out, (h_n, c_n)

    def _call_packed(self, input: lstm_ref.PackedSequence, hx: Any) -> Any:
        """Unpack (sorted order) to padded + lengths, run, pack the output again; hx and h_n
        are permuted between the caller's order and the sorted one, as torch does."""
        data, batch_sizes, sorted_indices, unsorted_indices = input
        batch_sizes = np.asarray(batch_sizes)
        padded, _ = lstm_ref.pad_packed_sequence(lstm_ref.PackedSequence(np.asarray(data), batch_sizes))
        lengths = packed_lengths(batch_sizes)
        inputs = [padded, lengths]
        if hx is not None:
            h0, c0 = _pair(hx)
            if sorted_indices is not None:
                h0, c0 = np.asarray(h0)[:, sorted_indices], np.asarray(c0)[:, sorted_indices]
            inputs += [h0, c0]
        out, h_n, c_n = self._run("packed", inputs)
        repacked = lstm_ref.pack_padded_sequence(out, lengths, enforce_sorted=True).data
        if unsorted_indices is not None:
            h_n, c_n = h_n[:, unsorted_indices], c_n[:, unsorted_indices]
        return lstm_ref.PackedSequence(repacked, batch_sizes, sorted_indices, unsorted_indices), (h_n, c_n)
