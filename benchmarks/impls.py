"""What the benchmarks run: the configurations, and one case per implementation.

Shared by the pytest-benchmark file (``test_lstm.py``) and the summary script
(``summary.py``) so both time exactly the same calls.

Implementations:

* ``torch``: torch.nn.LSTM eager, tensors in and out (the baseline every ratio is to);
* every shipped adapter of ``conformance.adapters.REGISTRY`` (``torch-compile``, ``onnxruntime``,
  ``flax``, ``keras``, ...), plus ``lstm_ref`` and ``torch-adapter`` (``--impl torch``), all
  through the plug-in API: built by keywords, ``load_state_dict`` with torch's weights as NumPy
  arrays, ``eval()``, then ``model(x)`` (NumPy in, NumPy out: the adapter's conversions are
  part of what is timed) or ``model.vjp(...)`` for forward+backward;
* ``onnx-reference``: onnx's ReferenceEvaluator (NumPy) on a hand-built one-node-per-layer ONNX
  graph: the operator's reference semantics in NumPy, lstm_ref's natural peer.

Every implementation gets the weights of one seeded ``torch.nn.LSTM`` per configuration and
the same input; its first answer is checked against torch's before anything is timed.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# torch is a test/bench dependency of the project, never of lstm_ref.
import torch

from conformance.adapters import REGISTRY, unavailable

HAVE_ONNX = importlib.util.find_spec("onnx") is not None
ROOT = Path(__file__).absolute().parent.parent  # not resolve(): a symlinked checkout stays itself


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

    def rows_needed(self, mode: str) -> tuple[str, ...]:
        """The conformance rows (docs/rows.md) an implementation must support to run this."""
        rows = ["whole_sequence", "float32"]
        rows += ["multi_layer"] if self.num_layers > 1 else []
        rows += ["bidirectional"] if self.bidirectional else []
        rows += ["proj_size"] if self.proj_size else []
        rows += ["edge_long"] if self.steps >= 1000 else []
        rows += ["gradients"] if mode != "forward" else []
        return tuple(rows)


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

# The plug-in API implementations that are not registry adapters: name -> --impl spec.
PLUGIN_IMPLS = {"lstm_ref": "lstm_ref", "torch-adapter": "torch"}
ADAPTER_NAMES: tuple[str, ...] = tuple(REGISTRY)
IMPLEMENTATIONS: tuple[str, ...] = ("torch", *ADAPTER_NAMES, "lstm_ref", "torch-adapter", "onnx-reference")
MODES = ("forward", "forward+backward")

# FLOPs of forward+backward, as a multiple of the forward's: the backward does
# two products per forward product (grad wrt inputs and wrt weights).
BACKWARD_FLOP_FACTOR = 3.0

# An answer further than this from torch's (max |difference| / max(1, max |torch|)) is wrong,
# not imprecise: that column is skipped.  Loose on purpose: torch-quantized (int8 weights)
# must pass; a wrong gate order or a missing bias is off by O(0.1-1).
SANITY_BOUND = 0.05


def bench_threads() -> int:
    """Threads for every library (env BENCH_THREADS, default 1).

    Default 1: with 2 threads on a 2-core machine that also runs other work, torch's
    OpenMP pool and OpenBLAS's pool spin-wait for each other and timings swing 10x
    from run to run; one thread gives stable ratios.  BENCH_THREADS=2 (or more) to compare.
    """
    return int(os.environ.get("BENCH_THREADS", "1"))


def configure_xla(threads: int) -> None:
    """XLA's CPU thread pool (flax, keras on jax): read once, when jax initialises its backend,
    so this must run before jax is imported; a jax already imported keeps its pool."""
    os.environ.setdefault("KERAS_BACKEND", "jax")  # the keras adapter runs keras on jax
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" in flags:  # set by the user, or by an earlier call
        return
    if "jax" in sys.modules:
        print(
            "benchmarks: jax was imported before the thread settings; XLA_FLAGS not applied", file=sys.stderr
        )
        return
    if threads == 1:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    else:
        flags += f" intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = flags.strip()


def configure_onnxruntime(threads: int) -> None:
    """onnxruntime's sessions are built inside the adapter, so the thread count is given as
    the default of every ``SessionOptions`` (intra-op ``threads``, inter-op 1, no spinning:
    idle workers spin by default and steal the cores from whatever runs next; they made torch
    10x slower in interleaved timing on 2 cores).  What the adapter sets itself wins."""
    if importlib.util.find_spec("onnxruntime") is None:
        return
    import onnxruntime as ort

    base = getattr(ort.SessionOptions, "_bench_base", ort.SessionOptions)

    class BenchSessionOptions(base):  # type: ignore[misc, valid-type]
        _bench_base = base

        def __init__(self) -> None:
            super().__init__()
            self.intra_op_num_threads = threads
            self.inter_op_num_threads = 1
            self.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.add_session_config_entry("session.inter_op.allow_spinning", "0")

    ort.SessionOptions = BenchSessionOptions
    session = getattr(ort.InferenceSession, "_bench_base", ort.InferenceSession)

    class BenchInferenceSession(session):  # type: ignore[misc, valid-type]
        _bench_base = session

        def __init__(self, path_or_bytes: Any, sess_options: Any = None, *args: Any, **kwargs: Any) -> None:
            super().__init__(path_or_bytes, sess_options or BenchSessionOptions(), *args, **kwargs)

    ort.InferenceSession = BenchInferenceSession


def configure_openvino(threads: int) -> None:
    """The openvino adapter compiles with OpenVINO's defaults (every core); here its inference
    threads are pinned like the other libraries' (only valid calls are timed, where the thread
    count changes nothing but the speed)."""
    if importlib.util.find_spec("openvino") is None:
        return
    from conformance.adapters import openvino as openvino_adapter

    openvino_adapter.COMPILE_CONFIG["INFERENCE_NUM_THREADS"] = threads


def set_threads(threads: int) -> Any:
    """Pin torch, numpy's BLAS (threadpoolctl), XLA and onnxruntime to ``threads``; returns
    the threadpoolctl limiter (keep it alive: ``with set_threads(n): ...``)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    configure_xla(threads)
    configure_onnxruntime(threads)
    configure_openvino(threads)
    # TensorFlow reads these when it starts its thread pools (the tensorflow adapter, keras on it)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    torch.set_num_threads(threads)
    return threadpool_limits(limits=threads)


def reset_compiler_caches() -> None:
    """Forget torch.compile's compiled code before building new cases.  Dynamo caches per code
    object (nn.LSTM.forward for every instance) and falls back to eager (one warning) after 8
    recompiles; and after one shape change it compiles shape-generic code.  Without a reset
    the later configurations' torch-compile column would time something else."""
    if "torch._dynamo" in sys.modules:
        torch._dynamo.reset()


class Unavailable(Exception):
    """This implementation cannot run this configuration/mode here (reason in the message)."""


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
    build_s: float = 0.0  # construct + load_state_dict + eval (or building the session)


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


@functools.cache
def torch_weights(config: Config) -> dict[str, np.ndarray]:
    """The seeded torch.nn.LSTM's state_dict as NumPy arrays (what every implementation loads)."""
    return {k: v.detach().numpy().copy() for k, v in make_torch_model(config).state_dict().items()}


@functools.cache
def make_input(config: Config, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((config.steps, config.batch, config.input_size)).astype(np.float32)


@functools.cache
def grad_outputs(config: Config, seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers_dirs = config.num_layers * config.directions
    g_out = rng.standard_normal((config.steps, config.batch, config.directions * config.h_out))
    g_h = rng.standard_normal((layers_dirs, config.batch, config.h_out))
    g_c = rng.standard_normal((layers_dirs, config.batch, config.hidden_size))
    return g_out.astype(np.float32), g_h.astype(np.float32), g_c.astype(np.float32)


# --- torch eager: the baseline ---------------------------------------------------------------


def _torch_case(config: Config, mode: str) -> Case:
    start = time.perf_counter()
    model = make_torch_model(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in torch_weights(config).items()})
    build_s = time.perf_counter() - start
    xt = torch.from_numpy(make_input(config))
    if mode == "forward":

        def run() -> Any:
            with torch.no_grad():
                return model(xt)

    else:
        params = list(model.parameters())
        x_req = xt.clone().requires_grad_(True)
        grads = tuple(torch.from_numpy(g) for g in grad_outputs(config))

        def run() -> Any:
            out, (h, c) = model(x_req)
            return torch.autograd.grad((out, h, c), (x_req, *params), grads)

    # forward: the output sequence; forward+backward: the gradient wrt the input
    return Case("torch", config, mode, run, lambda r: r[0].detach().numpy(), build_s)


# --- the plug-in API: shipped adapters, lstm_ref, --impl torch --------------------------------


def plugin_factory(impl: str) -> tuple[Any, dict[str, str]]:
    """The factory and its declarations (row -> reason) of a plug-in API implementation."""
    from conformance.run.impls import load_impl

    if impl in REGISTRY:
        reason = unavailable(impl)
        if reason:
            raise Unavailable(reason)
    try:
        loaded = load_impl(PLUGIN_IMPLS.get(impl, impl))
    except SystemExit as exc:  # require(): the extra is missing; import_object: not importable
        raise Unavailable(str(exc)) from None
    return loaded.factory, loaded.unsupported


def _plugin_factory_for(impl: str, config: Config, mode: str) -> Any:
    """The factory, once its declarations allow config/mode (else Unavailable)."""
    factory, unsupported = plugin_factory(impl)
    for row in config.rows_needed(mode):
        if row in unsupported:
            raise Unavailable(f"declares {row} unsupported: {unsupported[row]}")
    if mode != "forward" and isinstance(factory, type) and not hasattr(factory, "vjp"):
        raise Unavailable(f"{impl} has no vjp (no gradients through the plug-in API)")
    return factory


def check_available(impl: str, config: Config, mode: str) -> None:
    """Raise Unavailable if impl cannot run config/mode here, without building anything."""
    if impl == "onnx-reference":
        if not HAVE_ONNX:
            raise Unavailable("onnx is not installed: pip install 'lstm-ref[onnx]'")
        if mode != "forward":
            raise Unavailable("onnx's ReferenceEvaluator has no gradients")
        if config.proj_size:
            raise Unavailable("ONNX's LSTM operator has no projection (proj_size)")
    elif impl in REGISTRY or impl in PLUGIN_IMPLS:
        _plugin_factory_for(impl, config, mode)
    elif impl != "torch":
        raise ValueError(f"unknown implementation {impl!r}; known: {', '.join(IMPLEMENTATIONS)}")


def _plugin_case(impl: str, config: Config, mode: str) -> Case:
    factory = _plugin_factory_for(impl, config, mode)
    start = time.perf_counter()
    model = factory(
        input_size=config.input_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=config.bidirectional,
        proj_size=config.proj_size,
        dtype=np.float32,
        seed=0,
    )
    model.load_state_dict({k: v.copy() for k, v in torch_weights(config).items()})
    model.eval()
    build_s = time.perf_counter() - start
    x = make_input(config)
    if mode == "forward":
        return Case(impl, config, mode, lambda: model(x), lambda r: np.asarray(r[0]), build_s)
    if not hasattr(model, "vjp"):
        raise Unavailable(f"{impl} has no vjp (no gradients through the plug-in API)")
    g_out, g_h, g_c = grad_outputs(config)
    # vjp runs the forward itself, then the backward: forward+backward is what is timed.
    return Case(
        impl, config, mode, lambda: model.vjp(x, None, g_out, g_h, g_c), lambda r: r["input"], build_s
    )


# --- onnx's ReferenceEvaluator on a hand-built graph -----------------------------------------

# torch's gate blocks are i, f, g, o; ONNX's are i, o, f, c (c = torch's g).
TORCH_TO_ONNX_GATES = (0, 3, 1, 2)


def _onnx_gates(w: np.ndarray) -> np.ndarray:
    blocks = np.split(w, 4, axis=0)
    return np.concatenate([blocks[k] for k in TORCH_TO_ONNX_GATES], axis=0)


def _onnx_layer(config: Config, layer: int, layer_input: str) -> tuple[list[Any], list[Any]]:
    """One layer's LSTM node, its W/R/B initialisers, and Y (L, D, N, H) -> (L, N, D*H)."""
    from onnx import helper, numpy_helper

    sd = torch_weights(config)
    sfx = [f"_l{layer}", f"_l{layer}_reverse"][: config.directions]
    w = np.stack([_onnx_gates(sd["weight_ih" + s]) for s in sfx])
    r = np.stack([_onnx_gates(sd["weight_hh" + s]) for s in sfx])
    b = np.stack(
        [np.concatenate([_onnx_gates(sd["bias_ih" + s]), _onnx_gates(sd["bias_hh" + s])]) for s in sfx]
    )
    inits = [
        numpy_helper.from_array(a.astype(np.float32), f"{n}{layer}")
        for n, a in (("W", w), ("R", r), ("B", b))
    ]
    last = layer == config.num_layers - 1
    y = f"Y{layer}"
    nodes = [
        helper.make_node(
            "LSTM",
            [layer_input, f"W{layer}", f"R{layer}", f"B{layer}"],
            [y, "Y_h" if last else f"Y_h{layer}", "Y_c" if last else f"Y_c{layer}"],
            hidden_size=config.hidden_size,
            direction="bidirectional" if config.bidirectional else "forward",
        ),
        helper.make_node("Transpose", [y], [f"{y}_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", [f"{y}_t", "LND"], ["Y" if last else f"X{layer + 1}"]),
    ]
    return nodes, inits


def onnx_model(config: Config) -> Any:
    """A hand-built ONNX graph with torch's weights: one LSTM node per layer (no projection)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if config.proj_size:
        raise Unavailable("ONNX's LSTM operator has no projection (proj_size)")
    nodes, inits = [], [numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "LND")]
    for layer in range(config.num_layers):
        layer_nodes, layer_inits = _onnx_layer(config, layer, "X" if layer == 0 else f"X{layer}")
        nodes += layer_nodes
        inits += layer_inits
    f32, d, h = TensorProto.FLOAT, config.directions, config.hidden_size
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
    onnx.checker.check_model(m)
    return m


def _onnx_reference_case(config: Config, mode: str) -> Case:
    check_available("onnx-reference", config, mode)
    from onnx.reference import ReferenceEvaluator

    start = time.perf_counter()
    sess = ReferenceEvaluator(onnx_model(config))
    build_s = time.perf_counter() - start
    x = make_input(config)
    return Case("onnx-reference", config, mode, lambda: sess.run(None, {"X": x}), lambda r: r[0], build_s)


def make_case(impl: str, config: Config, mode: str) -> Case:
    """Build one case (timed into ``build_s``); raises Unavailable when impl cannot run
    config/mode here (library missing, feature declared unsupported, no gradients)."""
    check_available(impl, config, mode)
    if impl == "torch":
        return _torch_case(config, mode)
    if impl == "onnx-reference":
        return _onnx_reference_case(config, mode)
    return _plugin_case(impl, config, mode)


def first_call_in_process(impl: str, config: str, mode: str, threads: int, timeout: float) -> dict[str, Any]:
    """Build + first call of one case in a fresh interpreter (``summary --measure-first-call``):
    ``{"build_s", "first_call_s"}``, or ``{"error"}`` (``"timed_out": True`` past ``timeout``:
    the child and what it started, e.g. Inductor's compile workers, are killed)."""
    command = [sys.executable, "-m", "benchmarks.summary", "--threads", str(threads)]
    command += ["--measure-first-call", impl, config, mode]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        start_new_session=True,  # its own process group, killed as one
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        why = f"build + first call took over {timeout:.0f} s in a fresh process (BENCH_FIRST_CALL_TIMEOUT): not timed"
        return {"error": why, "timed_out": True}
    lines = stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"first-call process exited {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def first_call_timeout() -> float:
    """Seconds a case's build + first call may take (env BENCH_FIRST_CALL_TIMEOUT, default 120):
    torch.compile unrolls the recurrence, and its backward for 100 steps took 7 minutes here."""
    return float(os.environ.get("BENCH_FIRST_CALL_TIMEOUT", "120"))


@functools.cache
def torch_reference(config: Config, mode: str) -> np.ndarray:
    case = _torch_case(config, mode)
    return case.result(case.run()).astype(np.float64)


def error_vs_torch(case: Case, result: Any = None) -> float:
    """Max |result - torch's result| (float32: ~1e-6 expected); runs ``case`` unless given its result."""
    reference = torch_reference(case.config, case.mode)
    got = np.asarray(case.result(case.run() if result is None else result), dtype=np.float64)
    if got.shape != reference.shape:
        raise AssertionError(f"{case.impl}: result shape {got.shape}, torch's {reference.shape}")
    return float(np.max(np.abs(got - reference)))


def sanity_reason(case: Case, error: float) -> str | None:
    """Why ``case``'s answer is too far from torch's to be timed (None: close enough)."""
    scale = max(1.0, float(np.max(np.abs(torch_reference(case.config, case.mode)))))
    if not np.isfinite(error) or error > SANITY_BOUND * scale:
        return f"answer differs from torch by {error:.3g} (bound {SANITY_BOUND * scale:.3g}): not timed"
    return None


check = error_vs_torch  # the name test_lstm.py used
