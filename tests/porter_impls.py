"""LSTMs written the way a porter writes them, from torch.nn.LSTM's documentation: plain NumPy,
one loop per layer and direction, nothing taken from lstm_ref (only its PackedSequence type,
which is the suite's plug-in contract).  tests/test_fairness.py drives each through the real
CLI to prove the suite is fair to correct ports and still precise about wrong ones.

PorterLSTM: computes in the model's dtype, validates its arguments with torch's exception types,
draws its own dropout masks (or replays the suite's), supports everything but PackedSequence,
LSTMCell and gradients, and declares those.  The variants below change one thing each, as a
different port would.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import numpy as np

import lstm_ref


def sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))  # type: ignore[no-any-return]


class PorterLSTM:
    conformance_unsupported: ClassVar[dict[str, str]] = {
        "packed": "this port takes padded batches only",
        "cell": "no LSTMCell in this port",
    }
    DTYPES: ClassVar[tuple[str, ...]] = ("float32", "float64", "complex64", "complex128")

    def reject(self, torch_type: type[Exception], message: str) -> None:
        raise torch_type(message)

    # -- construction ------------------------------------------------------------------------
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        self._validate(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size, dtype)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, int(num_layers)
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.directions, self.proj_size, self.dtype = 2 if bidirectional else 1, proj_size, np.dtype(dtype)
        self.training = True
        self.rng = np.random.default_rng(seed)
        bound = 1 / math.sqrt(hidden_size)
        self.params = {
            name: self.rng.uniform(-bound, bound, shape).astype(self.dtype)
            for name, shape in self._shapes().items()
        }

    def _validate(self, input_size: Any, hidden_size: Any, num_layers: Any, bias: Any, batch_first: Any,
                  dropout: Any, proj_size: Any, dtype: Any) -> None:  # fmt: skip
        if dropout is None or isinstance(dropout, bool) or not 0 <= float(dropout) <= 1:
            self.reject(TypeError if dropout is None else ValueError, f"bad dropout {dropout!r}")
        for name, flag in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(flag, bool):
                self.reject(TypeError, f"{name} must be a bool")
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if type(size) is not int:
                self.reject(TypeError, f"{name} must be an int")
            if size <= 0:
                self.reject(ValueError, f"{name} must be positive")
        if not isinstance(num_layers, numbers.Integral):
            self.reject(TypeError, "num_layers must be an int")
        if num_layers <= 0:
            self.reject(ValueError, "num_layers must be positive")
        if type(proj_size) is not int:
            self.reject(TypeError, "proj_size must be an int")
        if not 0 <= proj_size < hidden_size:
            self.reject(ValueError, "proj_size must be in [0, hidden_size)")
        if np.dtype(dtype).kind not in "fc":
            self.reject(RuntimeError, f"dtype {dtype} is not floating point")
        if np.dtype(dtype).name not in self.DTYPES:
            self.reject(TypeError, f"this port computes in {', '.join(self.DTYPES)} only")

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        h, h_out = self.hidden_size, self.proj_size or self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            for d in range(self.directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes["weight_ih" + sfx] = (
                    4 * h,
                    self.input_size if layer == 0 else self.directions * h_out,
                )
                shapes["weight_hh" + sfx] = (4 * h, h_out)
                if self.bias:
                    shapes["bias_ih" + sfx] = shapes["bias_hh" + sfx] = (4 * h,)
                if self.proj_size:
                    shapes["weight_hr" + sfx] = (self.proj_size, h)
        return shapes

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self.params.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        shapes = self._shapes()
        if set(state_dict) != set(shapes):
            raise RuntimeError(f"state_dict keys differ: {sorted(set(state_dict) ^ set(shapes))}")
        for name, shape in shapes.items():
            if np.shape(state_dict[name]) != shape:
                raise RuntimeError(f"{name}: shape {np.shape(state_dict[name])}, expected {shape}")
        self.params = {name: np.array(state_dict[name], dtype=self.dtype) for name in shapes}

    def train(self, mode: bool = True) -> PorterLSTM:
        self.training = mode
        return self

    def eval(self) -> PorterLSTM:
        return self.train(False)

    # -- the call -------------------------------------------------------------------------------
    def __call__(self, input: Any, hx: Any = None, dropout_masks: Any = None) -> Any:
        if isinstance(input, lstm_ref.PackedSequence):
            raise NotImplementedError("PackedSequence input")
        x = np.asarray(input)
        if x.ndim not in (2, 3):
            self.reject(ValueError, f"expected 2-D or 3-D input, got {x.ndim}-D")
        if x.shape[-1] != self.input_size:
            self.reject(RuntimeError, f"input size {x.shape[-1]}, expected {self.input_size}")
        if x.dtype != self.dtype:
            self.reject(ValueError, f"input dtype {x.dtype}, model dtype {self.dtype}")
        batched = x.ndim == 3
        x = x if batched else x[:, None]
        x = np.swapaxes(x, 0, 1) if batched and self.batch_first else x
        if x.shape[0] == 0:
            self.reject(RuntimeError, "empty sequence")
        h0, c0 = self._initial_state(hx, batched, x.shape[1])
        out, h_n, c_n = self.forward(x, h0, c0, dropout_masks)
        out = out.astype(self.dtype)
        if not batched:
            return out[:, 0], (h_n[:, 0].astype(self.dtype), c_n[:, 0].astype(self.dtype))
        out = np.swapaxes(out, 0, 1) if self.batch_first else out
        return out, (h_n.astype(self.dtype), c_n.astype(self.dtype))

    def _initial_state(self, hx: Any, batched: bool, batch: int) -> tuple[np.ndarray, np.ndarray]:
        lead, h_out = self.num_layers * self.directions, self.proj_size or self.hidden_size
        if hx is None:
            return np.zeros((lead, batch, h_out), self.dtype), np.zeros(
                (lead, batch, self.hidden_size), self.dtype
            )
        if isinstance(hx, np.ndarray) or len(hx) < 2:
            self.reject(IndexError, "hx must be a pair (h0, c0)")
        if len(hx) > 2:
            self.reject(RuntimeError, "hx must be a pair (h0, c0)")
        if hx[1] is None:
            self.reject(AttributeError, "c0 is None")
        h0, c0 = np.asarray(hx[0]), np.asarray(hx[1])
        want = 3 if batched else 2
        if h0.ndim != want or c0.ndim != want:
            self.reject(RuntimeError, f"hx must be {want}-D for this input")
        h0, c0 = (h0, c0) if batched else (h0[:, None], c0[:, None])
        if h0.shape != (lead, batch, h_out) or c0.shape != (lead, batch, self.hidden_size):
            self.reject(RuntimeError, f"hx shapes {h0.shape}, {c0.shape}")
        if h0.dtype != self.dtype or not np.can_cast(c0.dtype, self.dtype, "safe"):
            self.reject(RuntimeError, "hx dtype does not match the weights")
        return h0, c0.astype(self.dtype)

    def compute_dtype(self) -> np.dtype:
        return self.dtype

    def forward(self, x: np.ndarray, h0: np.ndarray, c0: np.ndarray, masks: Any) -> tuple[Any, Any, Any]:
        """x (L, N, F) time-major; the stack of layers and directions."""
        cd = self.compute_dtype()
        layer_input, hs, cs = x.astype(cd), [], []
        for layer in range(self.num_layers):
            outputs = []
            for d in range(self.directions):
                k = layer * self.directions + d
                out, h, c = self.direction(layer_input, h0[k].astype(cd), c0[k].astype(cd), layer, d)
                outputs.append(out)
                hs.append(h)
                cs.append(c)
            layer_input = np.concatenate(outputs, axis=-1)
            if layer < self.num_layers - 1:
                layer_input = self._dropout(layer_input, layer, masks)
        return layer_input, np.stack(hs), np.stack(cs)

    def _dropout(self, values: np.ndarray, layer: int, masks: Any) -> np.ndarray:
        p = self.dropout
        if not self.training or p == 0:
            return values
        if p == 1:
            return values * 0
        keep = (
            self.rng.random(values.shape) >= p
            if masks is None
            else np.asarray(masks[layer]).reshape(values.shape)
        )
        return values * keep / (1 - p)

    def gates(self, z: np.ndarray) -> tuple[np.ndarray, ...]:
        zi, zf, zg, zo = np.split(z, 4, axis=-1)
        return sigmoid(zi), sigmoid(zf), np.tanh(zg), sigmoid(zo)

    def direction(
        self, x: np.ndarray, h: np.ndarray, c: np.ndarray, layer: int, d: int
    ) -> tuple[Any, Any, Any]:
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        p = {name[: -len(sfx)]: v.astype(x.dtype) for name, v in self.params.items() if name.endswith(sfx)}
        steps = range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])
        out = np.zeros((x.shape[0], x.shape[1], h.shape[-1]), x.dtype)
        for t in steps:
            z = x[t] @ p["weight_ih"].T + h @ p["weight_hh"].T
            if self.bias:
                z = z + p["bias_ih"] + p["bias_hh"]
            i, f, g, o = self.gates(z)
            c = f * c + i * g
            h = o * np.tanh(c)
            if self.proj_size:
                h = h @ p["weight_hr"].T
            self.record(layer, d, t, i, f, g, o, c, h)
            out[t] = h
        return out, h, c

    def record(self, *step: Any) -> None:
        """Where a port that offers a trace keeps its internals (see TracedWrongForgetGate)."""


class WideAccumulator(PorterLSTM):
    """Computes in 64 bits whatever the model's dtype and rounds only the results: more accurate
    than torch's float32 (2.8e-6 from the exact answer on saturated inputs)."""

    def compute_dtype(self) -> np.dtype:
        return np.dtype(np.complex128 if self.dtype.kind == "c" else np.float64)


class NoProjection(PorterLSTM):
    """Has no LSTMP: raises NotImplementedError for proj_size > 0, and says so."""

    conformance_unsupported: ClassVar[dict[str, str]] = {
        **PorterLSTM.conformance_unsupported,
        "proj_size": "no projection in this port",
    }

    def __init__(self, *args: Any, proj_size: int = 0, **kwargs: Any) -> None:
        if proj_size:
            raise NotImplementedError("proj_size")
        super().__init__(*args, proj_size=proj_size, **kwargs)


class Float32Only(PorterLSTM):
    """An accelerator-style port: float32 only."""

    conformance_unsupported: ClassVar[dict[str, str]] = {
        **PorterLSTM.conformance_unsupported,
        "float64": "the target has no double",
        "complex": "the target has no complex numbers",
    }
    DTYPES: ClassVar[tuple[str, ...]] = ("float32",)


class ValueErrorsEverywhere(PorterLSTM):
    """Rejects exactly what torch rejects, but always with ValueError."""

    def reject(self, torch_type: type[Exception], message: str) -> None:
        raise ValueError(message)


class TracedWrongForgetGate(PorterLSTM):
    """Uses tanh for the forget gate (a real porting slip) and offers the suite's trace hook,
    so the suite can name the gate."""

    def gates(self, z: np.ndarray) -> tuple[np.ndarray, ...]:
        i, _, g, o = super().gates(z)
        return i, np.tanh(np.split(z, 4, axis=-1)[1]), g, o

    def record(self, layer: int, d: int, t: int, *internals: np.ndarray) -> None:
        trace = self._trace.setdefault((layer, d), {n: [None] * self._steps for n in "ifgoch"})
        for name, value in zip("ifgoch", internals, strict=True):
            trace[name][t] = value

    def conformance_trace(self, input: Any, hx: Any = None) -> dict[tuple[int, int], dict[str, np.ndarray]]:
        """(layer, direction) -> i, f, g, o, c, h per step, time-major (docs/plugin.md)."""
        x = np.asarray(input)
        self(input, hx)
        squeeze = x.ndim == 2
        return {
            key: {n: np.stack(v)[:, 0] if squeeze else np.stack(v) for n, v in arrays.items()}
            for key, arrays in self._trace.items()
        }

    def __call__(self, input: Any, hx: Any = None, dropout_masks: Any = None) -> Any:
        x = np.asarray(input)
        self._steps = x.shape[1] if (x.ndim == 3 and self.batch_first) else x.shape[0] if x.ndim else 0
        self._trace: dict[tuple[int, int], dict[str, list[Any]]] = {}
        return super().__call__(input, hx, dropout_masks)


class NoisyOutputs(PorterLSTM):
    """A lossy runtime (think quantized): outputs rounded to a grid of 1/256, so within 2e-3 of
    the truth and exactly 0 where the truth is tinier than that, and it says so."""

    conformance_tolerance: ClassVar[dict[str, tuple[float, float]]] = {
        "float32": (0.0, 2e-2),  # 2e-3 on outputs and states; carried states can grow it a little
        "float64": (0.0, 2e-2),
        "complex64": (0.0, 2e-2),
        "complex128": (0.0, 2e-2),
    }

    def __call__(self, input: Any, hx: Any = None, dropout_masks: Any = None) -> Any:
        out, (h_n, c_n) = super().__call__(input, hx, dropout_masks)

        def noisy(a: np.ndarray) -> np.ndarray:
            return np.round(a * 256) / 256

        return noisy(out), (noisy(h_n), noisy(c_n))


class NoisyOutputsUndeclared(NoisyOutputs):
    conformance_tolerance: ClassVar[dict[str, tuple[float, float]]] = {}
