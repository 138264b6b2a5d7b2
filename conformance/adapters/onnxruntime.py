"""``--impl onnxruntime``: torch.nn.LSTM exported with ``torch.onnx.export`` and run by onnxruntime.

The model the suite builds is a real torch.nn.LSTM (so bad constructor arguments meet torch's
own checks); at the first call after construction or ``load_state_dict`` it is exported with
the TorchScript-based exporter (``dynamo=False``; docs/adapters.md says why not
the dynamo one), with the sequence length and the batch dynamic, and the InferenceSession
(CPUExecutionProvider) is cached per input form: batched or unbatched, packed, hx given or not.
The recurrence is onnxruntime's ONNX ``LSTM`` kernel; this module only moves arrays.

PackedSequence: torch.onnx cannot take a PackedSequence as a graph input, but it exports
``pack_padded_sequence``/``pad_packed_sequence`` around the LSTM as the ONNX LSTM's
``sequence_lens``. So packed input is unpacked (in its sorted order) to padded + lengths, the
exported model takes both, and its padded output is packed again with lstm_ref's helpers.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np

from . import require, versions

require("onnxruntime", "torch", "onnx", "onnxruntime")

import onnxruntime  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import lstm_ref  # noqa: E402
from lstm_ref.packing import packed_lengths  # noqa: E402

from ..oracles.torch_oracle import one_thread  # noqa: E402
from ..run.torch_adapter import TorchModuleState, new_torch_lstm  # noqa: E402

# what the exporter / onnxruntime say, verbatim where they say it (docs/adapters.md)
PROJ_REASON = (
    "torch.onnx.export: 'Unsupported: ONNX export of operator LSTM, LSTMs with projections' "
    "(ONNX's LSTM operator has no projection, proj_size)"
)
DOUBLE_REASON = "onnxruntime CPU LSTM kernel: 'LSTM operator does not support double yet'"
COMPLEX_REASON = (
    "torch.onnx.export: 'ScalarType ComplexFloat/ComplexDouble is an unexpected tensor scalar type' "
    "(ONNX's LSTM operator takes float16/float/double only)"
)
DROPOUT_REASON = (
    "torch.onnx.export: 'Unsupported: ONNX export of operator RNN/GRU/LSTM, dropout in training "
    "mode'; the exported inference graph has no dropout"
)
GRADIENTS_REASON = (
    "onnxruntime's InferenceSession runs inference only: an exported LSTM has no backward pass "
    "(training needs the separate onnxruntime-training build and a training graph)"
)

_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # one session per model, weights, form
_CACHE_SIZE = 32


class _Packed(torch.nn.Module):
    """The LSTM fed ``pack_padded_sequence(x, lengths)`` (sorted, time-major), output padded
    again: what torch.onnx exports as the ONNX LSTM's ``sequence_lens``."""

    def __init__(self, lstm: torch.nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x: Any, lengths: Any, *hx: Any) -> Any:
        packed = pack_padded_sequence(x, lengths, enforce_sorted=True)
        out, (h_n, c_n) = self.lstm(packed, (hx[0], hx[1]) if hx else None)
        return pad_packed_sequence(out)[0], h_n, c_n


def _session_options() -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # tiny problems on a shared machine (as torch_oracle.one_thread)
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # errors come back as exceptions; keep the worker's stderr quiet
    return options


def _pair(hx: Any) -> tuple[Any, Any]:
    """torch's ``(h0, c0)`` convention as two graph inputs: indexed as torch.nn.LSTM indexes it
    (a single array or a 1-tuple raises IndexError there too). ONNX has no tuple: a third
    state cannot be fed anywhere, so it is refused as torch refuses it."""
    h0, c0 = hx[0], hx[1]
    if len(hx) != 2:
        raise RuntimeError(f"hx must be the pair (h0, c0), got {len(hx)} states")
    return h0, c0


def _feed(value: Any) -> Any:
    """An ndarray as onnxruntime takes it (C-contiguous; dtype and shape untouched, so that
    onnxruntime judges them); anything else is passed on as it is."""
    return np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value


class OnnxRuntimeLSTM(TorchModuleState):
    """torch.nn.LSTM -> torch.onnx.export (TorchScript exporter) -> onnxruntime, behind
    lstm_ref.LSTM's NumPy API. No ``vjp``: an inference session has no gradients (declared)."""

    conformance_version: ClassVar[str] = versions("torch", "onnx", "onnxruntime")
    conformance_unsupported: ClassVar[dict[str, str]] = {
        "proj_size": PROJ_REASON,
        "float64": DOUBLE_REASON,
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
        """Forget the sessions: the next call exports the model with its new weights."""
        digest = hashlib.sha256()
        for name, value in self.module.state_dict().items():
            digest.update(name.encode() + value.detach().numpy().tobytes())
        self._key = (self.config, str(self.dtype), digest.hexdigest())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._weights_changed()

    def _example(self, form: str, with_hx: bool) -> tuple[Any, ...]:
        """Example inputs for the export (shapes only matter; L and N are dynamic axes)."""
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
        return (*x, tuple(torch.zeros(s, dtype=dtype) for s in state))

    def _export(self, form: str, with_hx: bool) -> bytes:
        """torch.onnx.export (TorchScript-based) of the module, in eval mode, L and N dynamic."""
        names = ["x", "lengths"] if form == "packed" else ["x"]
        names += ["h0", "c0"] if with_hx else []
        dense = {0: "a", 1: "b"} if form != "unbatched" else {0: "L"}
        state = {} if form == "unbatched" else {1: "N"}
        axes = {"x": dense, "lengths": {0: "N"}, "h0": state, "c0": state, "out": dense}
        axes |= {"h_n": state, "c_n": state}
        model = _Packed(self.module) if form == "packed" else self.module
        example = self._example(form, with_hx)
        if form == "packed" and with_hx:
            example = (*example[:2], *example[2])
        buffer, export = io.BytesIO(), cast(Any, torch.onnx.export)  # (stubs: f is a path)
        with warnings.catch_warnings(), one_thread():
            warnings.simplefilter("ignore")
            export(
                model,
                example,
                buffer,
                dynamo=False,
                input_names=names,
                output_names=["out", "h_n", "c_n"],
                dynamic_axes={k: v for k, v in axes.items() if k in names or k in ("out", "h_n", "c_n")},
            )
        return buffer.getvalue()

    def session(self, form: str, with_hx: bool) -> Any:
        """The cached InferenceSession of this model, weights and input form (exported once)."""
        key = (*self._key, form, with_hx)
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        was_training = self.module.training
        try:
            self.module.eval()  # the exporter's default (TrainingMode.EVAL) does the same
            model = self._export(form, with_hx)
        finally:
            self.module.train(was_training)
        sess = onnxruntime.InferenceSession(model, _session_options(), providers=["CPUExecutionProvider"])
        _CACHE[key] = sess
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return sess

    def _check_mode(self) -> None:
        m = self.module
        if m.training and float(m.dropout) > 0 and int(m.num_layers) > 1:
            raise NotImplementedError(DROPOUT_REASON)

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        self._check_mode()
        if isinstance(input, lstm_ref.PackedSequence):
            return self._call_packed(input, hx)
        form = "unbatched" if isinstance(input, np.ndarray) and input.ndim == 2 else "batched"
        feeds = {"x": _feed(input)}
        if hx is not None:
            h0, c0 = _pair(hx)
            feeds |= {"h0": _feed(h0), "c0": _feed(c0)}
        out, h_n, c_n = self.session(form, hx is not None).run(None, feeds)
        return out, (h_n, c_n)

    def _call_packed(self, input: lstm_ref.PackedSequence, hx: Any) -> Any:
        """Unpack (sorted order) to padded + lengths, run, pack the output again; hx and h_n
        are permuted between the caller's order and the sorted one, as torch does."""
        data, batch_sizes, sorted_indices, unsorted_indices = input
        batch_sizes = np.asarray(batch_sizes)
        padded, _ = lstm_ref.pad_packed_sequence(lstm_ref.PackedSequence(np.asarray(data), batch_sizes))
        lengths = packed_lengths(batch_sizes)
        feeds = {"x": _feed(padded), "lengths": lengths}
        if hx is not None:
            h0, c0 = _pair(hx)
            if sorted_indices is not None:
                h0, c0 = np.asarray(h0)[:, sorted_indices], np.asarray(c0)[:, sorted_indices]
            feeds |= {"h0": _feed(h0), "c0": _feed(c0)}
        out, h_n, c_n = self.session("packed", hx is not None).run(None, feeds)
        repacked = lstm_ref.pack_padded_sequence(out, lengths, enforce_sorted=True).data
        if unsorted_indices is not None:
            h_n, c_n = h_n[:, unsorted_indices], c_n[:, unsorted_indices]
        return lstm_ref.PackedSequence(repacked, batch_sizes, sorted_indices, unsorted_indices), (h_n, c_n)
