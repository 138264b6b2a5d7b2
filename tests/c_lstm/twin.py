"""The Python twin of lstm.c built as a protocol-1 command (``-DEXEC_V1``), one layer and one
direction of it: the same float32/float64 LSTM equations in NumPy, forward only (no trace, no
vjp), and, as ``SwappedGates``, the same broken variant as ``-DSWAP_GATES``.

tests/test_exec_impl.py runs it through the suite beside the C program on one-layer cases: the
conformance table and the failure messages of the two must agree.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

UNSUPPORTED: dict[str, str] = {
    "bidirectional": "one direction only",
    "multi_layer": "one layer only",
    "proj_size": "no projection (LSTMP)",
    "complex": "float32 and float64 only",
    "packed": "no PackedSequence input",
    "dropout": "one layer: no dropout between layers",
    "gradients": "forward only (no vjp)",
    "cell": "no separate LSTMCell",
    "errors": "checks input rank/size and hx shapes only; Python-level argument types and "
    "hx structure are not checked",
}


class OneLayer:
    conformance_unsupported: ClassVar[dict[str, str]] = UNSUPPORTED
    gate_order = (0, 1, 2, 3)  # rows of torch's i, f, g, o blocks used as i, f, g, o

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
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.proj_size, self.dtype = proj_size, np.dtype(dtype)
        self.params = {k: np.zeros(s, self.dtype) for k, s in self._shapes().items()}

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        d, h, h_out = 2 if self.bidirectional else 1, self.hidden_size, self.proj_size or self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            for k in range(d):
                sfx = f"_l{layer}" + ("_reverse" if k else "")
                shapes["weight_ih" + sfx] = (4 * h, self.input_size if layer == 0 else d * h_out)
                shapes["weight_hh" + sfx] = (4 * h, h_out)
                if self.bias:
                    shapes["bias_ih" + sfx] = shapes["bias_hh" + sfx] = (4 * h,)
                if self.proj_size:
                    shapes["weight_hr" + sfx] = (self.proj_size, h)
        return shapes

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, sd: dict[str, np.ndarray]) -> None:
        shapes = self._shapes()
        if set(sd) != set(shapes) or any(np.shape(sd[k]) != s for k, s in shapes.items()):
            raise RuntimeError("state_dict names or shapes differ")
        self.params = {k: np.array(sd[k], self.dtype) for k in shapes}

    def train(self, mode: bool = True) -> OneLayer:
        return self

    def eval(self) -> OneLayer:
        return self

    def __call__(self, x: Any, hx: Any = None) -> Any:
        if self.num_layers != 1 or self.bidirectional or self.proj_size or self.dtype.kind != "f":
            raise NotImplementedError("one-layer unidirectional float LSTM only")
        x = np.asarray(x)
        batched = x.ndim == 3
        if x.ndim not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {x.ndim}D instead")
        if x.dtype != self.dtype:
            raise ValueError("input dtype does not match the model's")
        if x.shape[-1] != self.input_size:
            raise RuntimeError("input.size(-1) must be equal to input_size")
        xs = x[:, None] if not batched else np.swapaxes(x, 0, 1) if self.batch_first else x
        steps, n, h = xs.shape[0], xs.shape[1], self.hidden_size
        if steps == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        if hx is None:
            h_t, c_t = np.zeros((n, h), self.dtype), np.zeros((n, h), self.dtype)
        else:
            h_t, c_t = (np.asarray(a).reshape(n, h).astype(self.dtype) for a in hx)
        p = self.params
        rows = [slice(k * h, (k + 1) * h) for k in self.gate_order]
        out = np.empty((steps, n, h), self.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(steps):
                z = xs[t] @ p["weight_ih_l0"].T + h_t @ p["weight_hh_l0"].T
                if self.bias:
                    z = z + p["bias_ih_l0"] + p["bias_hh_l0"]
                i, f, g, o = (z[:, r] for r in rows)
                one = self.dtype.type(1)
                c_t = one / (one + np.exp(-f)) * c_t + one / (one + np.exp(-i)) * np.tanh(g)
                h_t = one / (one + np.exp(-o)) * np.tanh(c_t)
                out[t] = h_t
        if not batched:
            return out[:, 0], (h_t[None, 0], c_t[None, 0])
        if self.batch_first:
            out = np.swapaxes(out, 0, 1)
        return out, (h_t[None], c_t[None])


class SwappedGates(OneLayer):
    """Reads torch's f and g blocks the other way round (as lstm.c built with -DSWAP_GATES)."""

    gate_order = (0, 2, 1, 3)
