"""A small, independent NumPy LSTM (not lstm_ref): what a user's own implementation looks like to
the installed suite (tests/test_installed.py copies this file into a directory outside the
checkout). It declares what it leaves out, so every row it claims must pass."""

from typing import ClassVar

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class TinyLSTM:
    conformance_unsupported: ClassVar[dict[str, str]] = {
        "packed": "no PackedSequence in this small example",
        "dropout": "no dropout in this small example",
        "errors": "does not validate its arguments",
        "error_types": "does not validate its arguments",
    }
    gates = "ifgo"  # torch's order of the four blocks of weight_ih / weight_hh

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        dtype=np.float32,
        seed=None,
    ):
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.proj_size = bias, batch_first, proj_size
        self.directions = 2 if bidirectional else 1
        self.dtype = np.dtype(dtype)
        self.training = True
        rng = np.random.default_rng(seed)
        bound = hidden_size**-0.5
        self.params = {k: rng.uniform(-bound, bound, s).astype(self.dtype) for k, s in self._shapes().items()}

    def _shapes(self):
        h, h_out, shapes = self.hidden_size, self.proj_size or self.hidden_size, {}
        for layer in range(self.num_layers):
            for d in range(self.directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                width = self.input_size if layer == 0 else self.directions * h_out
                shapes["weight_ih" + sfx] = (4 * h, width)
                shapes["weight_hh" + sfx] = (4 * h, h_out)
                if self.bias:
                    shapes["bias_ih" + sfx] = shapes["bias_hh" + sfx] = (4 * h,)
                if self.proj_size:
                    shapes["weight_hr" + sfx] = (self.proj_size, h)
        return shapes

    def state_dict(self):
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state_dict):
        shapes = self._shapes()
        if set(state_dict) != set(shapes) or any(np.shape(state_dict[k]) != s for k, s in shapes.items()):
            raise RuntimeError("state_dict does not match the model's parameters")
        self.params = {k: np.array(state_dict[k], dtype=self.dtype) for k in shapes}

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, input, hx=None, *, dropout_masks=None):
        wide = np.complex128 if self.dtype.kind == "c" else np.float64
        x = np.asarray(input).astype(wide)
        unbatched = x.ndim == 2
        x = x[:, None] if unbatched else x.transpose(1, 0, 2) if self.batch_first else x
        steps, n = x.shape[:2]
        h, h_out, stack = (
            self.hidden_size,
            self.proj_size or self.hidden_size,
            self.num_layers * self.directions,
        )
        if hx is None:
            h0, c0 = np.zeros((stack, n, h_out), wide), np.zeros((stack, n, h), wide)
        else:
            h0, c0 = (np.asarray(a).astype(wide) for a in hx)
            h0, c0 = (h0[:, None], c0[:, None]) if unbatched else (h0, c0)
        h_n, c_n = [], []
        with np.errstate(all="ignore"):
            for layer in range(self.num_layers):
                outputs = []
                for d in range(self.directions):
                    sfx = f"_l{layer}" + ("_reverse" if d else "")
                    p = {k[: -len(sfx)]: v.astype(wide) for k, v in self.params.items() if k.endswith(sfx)}
                    b = p["bias_ih"] + p["bias_hh"] if self.bias else 0
                    hs, cs = h0[layer * self.directions + d], c0[layer * self.directions + d]
                    out = np.zeros((steps, n, h_out), wide)
                    for t in reversed(range(steps)) if d else range(steps):
                        z = x[t] @ p["weight_ih"].T + hs @ p["weight_hh"].T + b
                        blocks = dict(zip(self.gates, np.split(z, 4, axis=-1), strict=True))
                        cs = _sigmoid(blocks["f"]) * cs + _sigmoid(blocks["i"]) * np.tanh(blocks["g"])
                        hs = _sigmoid(blocks["o"]) * np.tanh(cs)
                        hs = hs @ p["weight_hr"].T if self.proj_size else hs
                        out[t] = hs
                    outputs.append(out)
                    h_n.append(hs)
                    c_n.append(cs)
                x = np.concatenate(outputs, axis=-1)
        h_n, c_n = np.stack(h_n).astype(self.dtype), np.stack(c_n).astype(self.dtype)
        output = x.astype(self.dtype)
        if unbatched:
            return output[:, 0], (h_n[:, 0], c_n[:, 0])
        return (output.transpose(1, 0, 2) if self.batch_first else output), (h_n, c_n)


class SwappedGates(TinyLSTM):
    """The same, with the forget and input gates swapped: the installed suite must fail it."""

    gates = "figo"
