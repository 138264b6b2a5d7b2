"""Everything that touches torch: the live oracle and the ``--impl torch`` adapter.

Importing this module does not import torch; the functions do, so the suite runs (fixtures
only) where torch is not installed.

``expected_from_torch(case)`` is the one function that makes expected arrays: the fixture
writer (``lstm-conformance regen``) stores its result, the live oracle compares against it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

import lstm_ref

from .cases import Case

TORCH_DTYPES = ("float32", "float64", "complex64", "complex128")

# Extra arrays per case: each producer gets (case, arrays-so-far, torch module, torch inputs)
# and returns more arrays to store. The gradient checks register one that adds ``grad_*``
# arrays and the upstream gradients ``dout_*`` it used (see README, "Fixture format").
ArrayProducer = Callable[[Case, dict[str, np.ndarray], Any, dict[str, Any]], dict[str, np.ndarray]]
ARRAY_PRODUCERS: list[ArrayProducer] = []


def register_array_producer(producer: ArrayProducer) -> ArrayProducer:
    ARRAY_PRODUCERS.append(producer)
    return producer


def torch_available() -> str | None:
    """None when torch imports, else the reason it does not."""
    try:
        import torch  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"torch is not importable ({type(exc).__name__}: {exc})"
    return None


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread while the suite runs it: these problems are tiny, and on a
    busy machine a second thread makes a 1000-step run 10-100x slower. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _tdtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def _np(t: Any) -> np.ndarray:
    return t.detach().resolve_conj().cpu().numpy().copy()


def _tensor(a: Any) -> Any:
    import torch

    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.array(a, copy=True))
    return a


def mask_shape(case: Case, arrays: dict[str, np.ndarray], features: int) -> tuple[int, ...]:
    """torch's dropout mask shape, time-major (semantics doc section 5)."""
    if case.packed:
        return (int(arrays["packed_data"].shape[0]), features)
    if case.form == "unbatched":
        return (case.steps, 1, features)
    return (case.steps, case.batch, features)


def _single_layer(module: Any, layer: int) -> Any:
    """A one-layer torch.nn.LSTM with the weights of ``layer`` of ``module``."""
    import torch

    d = 2 if module.bidirectional else 1
    h_out = module.proj_size or module.hidden_size
    features = module.input_size if layer == 0 else d * h_out
    w0 = next(iter(module.parameters()))
    single = torch.nn.LSTM(
        features,
        module.hidden_size,
        num_layers=1,
        bias=module.bias,
        batch_first=module.batch_first,
        bidirectional=module.bidirectional,
        proj_size=module.proj_size,
        dtype=w0.dtype,
    )
    sd = {k.replace(f"_l{layer}", "_l0"): v for k, v in module.state_dict().items() if f"_l{layer}" in k}
    single.load_state_dict(sd)
    return single.eval()


def run_layers(module: Any, x: Any, hx: Any, noise: Sequence[Any] | None) -> tuple[Any, Any, Any, list[Any]]:
    """torch.nn.LSTM layer by layer (single-layer modules with copied weights), multiplying
    the input of layer l+1 by ``noise[l]`` (time-major, torch's dropout noise ``mask/(1-p)``).

    Returns (output, h_n, c_n, per-layer outputs before dropout)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    d = 2 if module.bidirectional else 1
    unbatched = not isinstance(x, PackedSequence) and x.dim() == 2
    layer_input, hs, cs, outs = x, [], [], []
    for layer in range(int(module.num_layers)):
        single = _single_layer(module, layer)
        hx_l = (
            None if hx is None else (hx[0][layer * d : (layer + 1) * d], hx[1][layer * d : (layer + 1) * d])
        )
        out, (h, c) = single(layer_input, hx_l)
        outs.append(out)
        hs.append(h)
        cs.append(c)
        layer_input = out
        if noise is not None and layer < int(module.num_layers) - 1:
            n = noise[layer]
            if isinstance(out, PackedSequence):
                layer_input = PackedSequence(
                    out.data * n, out.batch_sizes, out.sorted_indices, out.unsorted_indices
                )
            elif unbatched:
                layer_input = out * n.reshape(out.shape) if n.dim() else out * n
            elif module.batch_first:
                layer_input = out * (n.transpose(0, 1) if n.dim() else n)
            else:
                layer_input = out * n
    dim = 0
    return outs[-1], torch.cat(hs, dim), torch.cat(cs, dim), outs


def _layer_out_np(out: Any) -> np.ndarray:
    from torch.nn.utils.rnn import PackedSequence

    return _np(out.data if isinstance(out, PackedSequence) else out)


def expected_from_torch(case: Case) -> dict[str, np.ndarray]:
    """Inputs and torch's outputs for ``case`` (the content of one fixture file)."""
    import warnings

    with warnings.catch_warnings(), one_thread():
        # "LSTM with projections is not supported with oneDNN", "dropout ... num_layers=1"
        warnings.simplefilter("ignore", UserWarning)
        return _expected_from_torch(case)


def _expected_from_torch(case: Case) -> dict[str, np.ndarray]:
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    arrays = case.make_data()
    dtype = _tdtype(case.dtype)
    module = torch.nn.LSTM(**{**case.config(), "dtype": dtype})
    module.load_state_dict(
        {k[2:]: torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("w.")}
    )
    module.train(case.mode == "train")
    x = torch.from_numpy(arrays["x"].copy())
    if case.packed:
        packed = pack_padded_sequence(
            x, torch.from_numpy(arrays["lengths"]), enforce_sorted=case.form == "packed_sorted"
        )
        arrays["packed_data"] = _np(packed.data)
        arrays["batch_sizes"] = _np(packed.batch_sizes)
        if packed.sorted_indices is not None:
            arrays["sorted_indices"] = _np(packed.sorted_indices)
            arrays["unsorted_indices"] = _np(packed.unsorted_indices)
        x = packed
    hx = (torch.from_numpy(arrays["h0"]), torch.from_numpy(arrays["c0"])) if case.hx else None
    with torch.no_grad():
        torch.manual_seed(case.seed)
        try:
            out, (h_n, c_n) = module(x, hx)
        except Exception as exc:
            arrays["error"] = np.array(type(exc).__name__)
            return arrays
        noise = None
        if case.replays_masks:
            torch.manual_seed(case.seed)
            features = case.num_directions * case.h_out
            shape = mask_shape(case, arrays, features)
            masks = [
                torch.empty(shape, dtype=dtype).bernoulli_(1 - case.p) for _ in range(case.num_layers - 1)
            ]
            noise = [m.div(1 - case.p) for m in masks]
            for k, m in enumerate(masks):
                keep = _np(m) != 0
                arrays[f"mask_{k}"] = keep.reshape(case.steps, features) if case.form == "unbatched" else keep
        elif case.mode == "train" and case.p == 1 and case.num_layers > 1:
            noise = [torch.zeros((), dtype=dtype)] * (case.num_layers - 1)
        arrays["output"] = _layer_out_np(out)
        arrays["h_n"] = _np(h_n)
        arrays["c_n"] = _np(c_n)
        if case.num_layers > 1:
            _, _, _, outs = run_layers(module, x, hx, noise)
            for k, o in enumerate(outs[:-1]):
                arrays[f"layer_{k}_output"] = _layer_out_np(o)
        if stepwise_applies(case):
            steps_out, state = [], hx
            time_axis = 1 if case.batch_first and case.form == "batched" else 0
            for t in range(case.steps):
                o, state = module(x.narrow(time_axis, t, 1), state)
                steps_out.append(o)
            arrays["stepwise_output"] = _np(torch.cat(steps_out, time_axis))
            arrays["stepwise_h_n"] = _np(state[0])
            arrays["stepwise_c_n"] = _np(state[1])
        for producer in ARRAY_PRODUCERS:
            arrays.update(producer(case, arrays, module, {"input": x, "hx": hx}))
    return arrays


def stepwise_applies(case: Case) -> bool:
    """Stepwise == whole sequence holds for unidirectional dense input without a random draw."""
    return (
        not case.bidirectional
        and not case.packed
        and not case.replays_masks
        and case.batch_size > 0
        and case.steps <= 50  # a 1000-step stepwise run adds seconds and no coverage
        and not (
            case.dtype.startswith("complex") and case.mode == "train" and case.num_layers > 1 and case.p > 0
        )
    )


# -- the --impl torch adapter ----------------------------------------------------------------


def _to_torch_input(value: Any) -> Any:
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(value, lstm_ref.PackedSequence):
        return PackedSequence(*(None if v is None else _tensor(np.asarray(v)) for v in value))
    return _tensor(value)


def _to_torch_hx(hx: Any) -> Any:
    if isinstance(hx, (tuple, list)):
        return type(hx)(_tensor(v) for v in hx)
    return _tensor(hx)


class TorchLSTM:
    """torch.nn.LSTM behind lstm_ref.LSTM's NumPy API (``--impl torch``).

    ``dropout_masks`` are honoured by running torch layer by layer (single-layer modules with
    the same weights) and multiplying the masks, scaled by 1/(1-p), onto the layer inputs.
    """

    conformance_unsupported: ClassVar[dict[str, str]] = {}

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
        import torch

        try:
            tdtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
        except TypeError as exc:
            raise TypeError(f"dtype {dtype!r} has no torch equivalent") from exc
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.module = torch.nn.LSTM(
                input_size,
                hidden_size,
                num_layers=num_layers,
                bias=bias,
                batch_first=batch_first,
                dropout=dropout,
                bidirectional=bidirectional,
                proj_size=proj_size,
                dtype=tdtype,
            )
        self.dtype = np.dtype(dtype)

    @property
    def training(self) -> bool:
        return bool(self.module.training)

    def train(self, mode: bool = True) -> TorchLSTM:
        self.module.train(mode)
        return self

    def eval(self) -> TorchLSTM:
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: _np(v) for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        import torch

        self.module.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in state_dict.items()})

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        import torch
        from torch.nn.utils.rnn import PackedSequence

        m = self.module
        x = _to_torch_input(input)
        t_hx = None if hx is None else _to_torch_hx(hx)
        with torch.no_grad(), one_thread():
            p, layers = float(m.dropout), int(m.num_layers)
            if dropout_masks is not None and m.training and 0 < p < 1 and layers > 1:
                if torch.is_complex(next(m.parameters())):
                    raise NotImplementedError('"bernoulli_scalar_cpu_" not implemented for complex dtypes')
                if len(dropout_masks) != layers - 1:
                    raise ValueError(f"expected {layers - 1} dropout masks, got {len(dropout_masks)}")
                wdtype = next(m.parameters()).dtype
                noise = [torch.from_numpy(np.asarray(k) != 0).to(wdtype).div_(1 - p) for k in dropout_masks]
                # masks are time-major; run_layers lays them out like each layer's output
                out, h_n, c_n, _ = run_layers(m, x, t_hx, noise)
            else:
                out, (h_n, c_n) = m(x, t_hx)
        if isinstance(out, PackedSequence):
            fields = (out.data, out.batch_sizes, out.sorted_indices, out.unsorted_indices)
            return lstm_ref.PackedSequence(*(None if f is None else _np(f) for f in fields)), (
                _np(h_n),
                _np(c_n),
            )
        return _np(out), (_np(h_n), _np(c_n))


class TorchLSTMCell:
    """torch.nn.LSTMCell behind lstm_ref.LSTMCell's NumPy API (the cell of ``--impl torch``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        import torch

        tdtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
        self.module = torch.nn.LSTMCell(input_size, hidden_size, bias=bias, dtype=tdtype)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: _np(v) for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        import torch

        self.module.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in state_dict.items()})

    def __call__(self, input: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.no_grad(), one_thread():
            h, c = self.module(_tensor(input), None if hx is None else _to_torch_hx(hx))
        return _np(h), _np(c)
