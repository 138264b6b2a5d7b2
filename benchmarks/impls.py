"""What the benchmarks run: the configurations, and one adapter per implementation.

Shared by the pytest-benchmark file (``test_lstm.py``) and the summary script
(``summary.py``) so both time exactly the same calls.

Every adapter is built from one seeded ``torch.nn.LSTM`` so all implementations
hold the same weights and see the same input; ``check`` compares each one's
output with torch's, so a benchmark never times a wrong answer.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# torch is a test/bench dependency of the project, never of lstm_ref.
import torch

import lstm_ref

HAVE_ONNX = importlib.util.find_spec("onnx") is not None
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None


@dataclass(frozen=True)
class Config:
    id: str
    steps: int  # L
    batch: int  # N
    input_size: int  # I
    hidden_size: int  # H
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: int = 0
    huge: bool = False  # skipped in smoke mode (--benchmark-disable) unless BENCH_SMOKE_ALL=1

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def h_out(self) -> int:
        return self.proj_size or self.hidden_size

    def forward_flops(self) -> float:
        """Matrix-multiply FLOPs of one forward pass.

        2*L*N*4H*(I+H) per layer and direction (the input and recurrent
        products); with a projection the recurrent product is 4H x P and the
        projection itself adds 2*L*N*H*P.  Layers after the first see D*H_out
        input features.  Elementwise work is not counted.
        """
        total = 0.0
        features = self.input_size
        h, p = self.hidden_size, self.h_out
        for _ in range(self.num_layers):
            per_direction = 2 * self.steps * self.batch * 4 * h * (features + p)
            if self.proj_size:
                per_direction += 2 * self.steps * self.batch * h * p
            total += self.directions * per_direction
            features = self.directions * p
        return float(total)

    def describe(self) -> str:
        extra = []
        if self.num_layers > 1:
            extra.append(f"{self.num_layers} layers")
        if self.bidirectional:
            extra.append("bidirectional")
        if self.proj_size:
            extra.append(f"proj {self.proj_size}")
        base = f"L{self.steps} N{self.batch} I{self.input_size} H{self.hidden_size}"
        return base + (f" ({', '.join(extra)})" if extra else "")


CONFIGS: tuple[Config, ...] = (
    Config("tiny", 5, 1, 4, 3),
    Config("small", 100, 1, 32, 64),
    Config("medium", 100, 32, 128, 256),
    Config("large", 50, 64, 512, 1024, huge=True),
    Config("long", 2000, 8, 64, 128),
    Config("medium-bi2", 100, 32, 128, 256, num_layers=2, bidirectional=True),
    Config("medium-proj", 100, 32, 128, 256, proj_size=128),
)
CONFIG_BY_ID = {c.id: c for c in CONFIGS}

IMPLEMENTATIONS = ("lstm_ref", "torch", "onnx-reference", "onnxruntime")
MODES = ("forward", "forward+backward")

# FLOPs of forward+backward, as a multiple of the forward's: the backward does
# two products per forward product (grad wrt inputs and wrt weights).
BACKWARD_FLOP_FACTOR = 3.0


def bench_threads() -> int:
    """Threads for numpy's BLAS, torch and onnxruntime alike (env BENCH_THREADS, default 1).

    Default 1: with 2 threads on a 2-core machine that also runs other work, torch's
    OpenMP pool and OpenBLAS's pool spin-wait for each other and timings swing 10x
    from run to run; one thread gives stable ratios.  BENCH_THREADS=2 (or more) to compare.
    """
    return int(os.environ.get("BENCH_THREADS", "1"))


def set_threads(threads: int) -> Any:
    """Pin numpy's BLAS and torch to ``threads``; returns the threadpoolctl limiter (keep it alive)."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    return threadpool_limits(limits=threads)


class Unavailable(Exception):
    """This implementation cannot run this configuration/mode (reason in the message)."""


@dataclass
class Case:
    """One implementation, one configuration, one mode: ``run()`` is what is timed."""

    impl: str
    config: Config
    mode: str
    run: Callable[[], Any]
    # what to compare across implementations: forward -> the output sequence (L, N, D*H_out),
    # forward+backward -> the gradient wrt the input (L, N, I)
    result: Callable[[Any], np.ndarray]


def make_torch_model(config: Config, seed: int = 0) -> torch.nn.LSTM:
    torch.manual_seed(seed)
    return torch.nn.LSTM(
        config.input_size,
        config.hidden_size,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        proj_size=config.proj_size,
        dtype=torch.float32,
    ).eval()


def make_input(config: Config, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((config.steps, config.batch, config.input_size)).astype(np.float32)


def _grad_outputs(config: Config, seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers_dirs = config.num_layers * config.directions
    g_out = rng.standard_normal((config.steps, config.batch, config.directions * config.h_out))
    g_h = rng.standard_normal((layers_dirs, config.batch, config.h_out))
    g_c = rng.standard_normal((layers_dirs, config.batch, config.hidden_size))
    return g_out.astype(np.float32), g_h.astype(np.float32), g_c.astype(np.float32)


# --- torch -----------------------------------------------------------------------------------


def _torch_case(config: Config, mode: str, model: torch.nn.LSTM, x: np.ndarray) -> Case:
    xt = torch.from_numpy(x)
    if mode == "forward":

        def run() -> Any:
            with torch.no_grad():
                return model(xt)

    else:
        params = list(model.parameters())
        x_req = xt.clone().requires_grad_(True)
        grads = tuple(torch.from_numpy(g) for g in _grad_outputs(config))

        def run() -> Any:
            out, (h, c) = model(x_req)
            return torch.autograd.grad((out, h, c), (x_req, *params), grads)

    # forward: the output sequence; forward+backward: the gradient wrt the input
    return Case("torch", config, mode, run, lambda r: r[0].detach().numpy())


# --- lstm_ref --------------------------------------------------------------------------------


def _lstm_ref_case(config: Config, mode: str, model: torch.nn.LSTM, x: np.ndarray) -> Case:
    ref = lstm_ref.LSTM.from_torch(model)
    if mode == "forward":
        return Case("lstm_ref", config, mode, lambda: ref(x), lambda r: np.asarray(r[0]))
    if not hasattr(ref, "vjp"):
        raise Unavailable("lstm_ref has no gradients (LSTM.vjp)")
    g_out, g_h, g_c = _grad_outputs(config)
    # vjp runs the forward itself, then the backward: forward+backward is what is timed.
    return Case("lstm_ref", config, mode, lambda: ref.vjp(x, None, g_out, g_h, g_c), lambda r: r["input"])


# --- ONNX (reference evaluator and onnxruntime) ----------------------------------------------

# torch's gate blocks are i, f, g, o; ONNX's are i, o, f, c (c = torch's g).
TORCH_TO_ONNX_GATES = (0, 3, 1, 2)


def _onnx_gates(w: np.ndarray) -> np.ndarray:
    blocks = np.split(w, 4, axis=0)
    return np.concatenate([blocks[k] for k in TORCH_TO_ONNX_GATES], axis=0)


def onnx_model(config: Config, model: torch.nn.LSTM) -> Any:
    """A hand-built ONNX graph equivalent to ``model``: one LSTM node per layer.

    Between layers, Y (L, D, N, H) is transposed to (L, N, D, H) and reshaped to
    (L, N, D*H), torch's layer input.  ONNX's LSTM has no projection.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if config.proj_size:
        raise Unavailable("ONNX LSTM has no proj_size")
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    h = config.hidden_size
    d = config.directions
    nodes, inits = [], []
    layer_input = "X"
    for layer in range(config.num_layers):
        sfx = [f"_l{layer}", f"_l{layer}_reverse"][:d]
        w = np.stack([_onnx_gates(sd["weight_ih" + s]) for s in sfx])
        r = np.stack([_onnx_gates(sd["weight_hh" + s]) for s in sfx])
        b = np.stack(
            [np.concatenate([_onnx_gates(sd["bias_ih" + s]), _onnx_gates(sd["bias_hh" + s])]) for s in sfx]
        )
        for name, arr in (("W", w), ("R", r), ("B", b)):
            inits.append(numpy_helper.from_array(arr.astype(np.float32), f"{name}{layer}"))
        last = layer == config.num_layers - 1
        y = f"Y{layer}"
        nodes.append(
            helper.make_node(
                "LSTM",
                [layer_input, f"W{layer}", f"R{layer}", f"B{layer}"],
                [y, "Y_h" if last else f"Y_h{layer}", "Y_c" if last else f"Y_c{layer}"],
                hidden_size=h,
                direction="bidirectional" if d == 2 else "forward",
            )
        )
        nodes.append(helper.make_node("Transpose", [y], [f"{y}_t"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"{y}_t", "LND"], ["Y" if last else f"X{layer + 1}"]))
        layer_input = f"X{layer + 1}"
    inits.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "LND"))
    f32 = TensorProto.FLOAT
    lnd = (config.steps, config.batch)
    graph = helper.make_graph(
        nodes,
        f"lstm_{config.id}",
        [helper.make_tensor_value_info("X", f32, [*lnd, config.input_size])],
        [
            helper.make_tensor_value_info("Y", f32, [*lnd, d * h]),
            helper.make_tensor_value_info("Y_h", f32, [d, config.batch, h]),
            helper.make_tensor_value_info("Y_c", f32, [d, config.batch, h]),
        ],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8  # readable by older onnxruntime releases too
    onnx.checker.check_model(m)
    return m


def _onnx_reference_case(config: Config, mode: str, model: torch.nn.LSTM, x: np.ndarray) -> Case:
    if not HAVE_ONNX:
        raise Unavailable("onnx is not installed (pip install -e '.[bench]')")
    if mode != "forward":
        raise Unavailable("no gradients")
    from onnx.reference import ReferenceEvaluator

    sess = ReferenceEvaluator(onnx_model(config, model))
    return Case("onnx-reference", config, mode, lambda: sess.run(None, {"X": x}), lambda r: r[0])


def _onnxruntime_case(config: Config, mode: str, model: torch.nn.LSTM, x: np.ndarray) -> Case:
    if not (HAVE_ONNX and HAVE_ORT):
        raise Unavailable("onnx/onnxruntime are not installed (pip install -e '.[bench]')")
    if mode != "forward":
        raise Unavailable("no gradients")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = bench_threads()
    options.inter_op_num_threads = 1
    # Idle onnxruntime workers spin by default, stealing the cores from whatever runs next
    # (they made torch 10x slower in interleaved timing on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(
        onnx_model(config, model).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return Case("onnxruntime", config, mode, lambda: sess.run(None, {"X": x}), lambda r: r[0])


_FACTORIES = {
    "lstm_ref": _lstm_ref_case,
    "torch": _torch_case,
    "onnx-reference": _onnx_reference_case,
    "onnxruntime": _onnxruntime_case,
}


def make_case(impl: str, config: Config, mode: str) -> Case:
    """Build one case; raises Unavailable when impl cannot do config/mode here."""
    return _FACTORIES[impl](config, mode, make_torch_model(config), make_input(config))


def check(case: Case, result: Any = None) -> float:
    """Max |result - torch's result| (float32: ~1e-6 expected); runs ``case`` unless given its result."""
    torch_case = make_case("torch", case.config, case.mode)
    reference = torch_case.result(torch_case.run()).astype(np.float64)
    got = case.result(case.run() if result is None else result)
    return float(np.max(np.abs(np.asarray(got, dtype=np.float64) - reference)))
