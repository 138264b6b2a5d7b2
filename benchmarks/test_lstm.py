"""pytest-benchmark: implementations x configurations x {forward, forward+backward}.

    python -m pytest benchmarks                       # timings, grouped per configuration
    python -m pytest benchmarks --benchmark-disable   # smoke: every case runs once, checked
                                                      # against torch; "large" is skipped,
                                                      # shipped adapters run "tiny" forward only
    python -m pytest benchmarks -k "medium and (torch-compile or lstm_ref)"

Implementations: torch eager, every shipped adapter (conformance.adapters.REGISTRY; skipped
with the reason when its library is missing or it declares a feature of the configuration
unsupported), lstm_ref, torch-adapter and onnx-reference (see benchmarks/impls.py).  Each
benchmark is grouped by configuration id, so pytest-benchmark's table compares the
implementations of one configuration.  pytest-benchmark runs the benchmarks one after
another, and its warm-up call hides the first-call (compile) time; for ratios measured in
interleaved blocks and first-call times use ``python -m benchmarks.summary``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from benchmarks.impls import (
    ADAPTER_NAMES,
    CONFIGS,
    IMPLEMENTATIONS,
    MODES,
    Unavailable,
    bench_threads,
    check_available,
    error_vs_torch,
    first_call_in_process,
    first_call_timeout,
    make_case,
    sanity_reason,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),  # torch-quantized
]

CASES = [
    pytest.param(impl, config, mode, id=f"{config.id}-{impl}-{mode}")
    for config in CONFIGS
    for mode in MODES
    for impl in IMPLEMENTATIONS
]

# Max |output - torch| (or |input gradient - torch|), float32, over up to 2000 steps, for
# torch-adapter, lstm_ref and onnx-reference.  Shipped adapters are judged by the conformance
# suite; here they only have to pass the sanity bound (impls.SANITY_BOUND) to be timed.
ATOL = 1e-4


def _smoke_skip(config: Any, impl: str, mode: str) -> str | None:
    """Smoke mode stays well under a minute: torch.compile alone takes ~5 s to compile tiny's
    forward and ~15 s more for its backward on 2 cores, so adapters run tiny forward only."""
    if os.environ.get("BENCH_SMOKE_ALL"):
        return None
    if config.huge:
        return "huge configuration: skipped in smoke mode (BENCH_SMOKE_ALL=1 runs it)"
    if impl in ADAPTER_NAMES and (config.id != "tiny" or mode != "forward"):
        return "shipped adapters run only 'tiny' forward in smoke mode (BENCH_SMOKE_ALL=1 runs all)"
    return None


@pytest.mark.parametrize(("impl", "config", "mode"), CASES)
def test_lstm(benchmark: Any, impl: str, config: Any, mode: str) -> None:
    reason = _smoke_skip(config, impl, mode) if benchmark.disabled else None
    if reason:
        pytest.skip(reason)
    try:
        check_available(impl, config, mode)
        if impl in ADAPTER_NAMES and not benchmark.disabled:
            # a compile can take hours (torch.compile unrolls the recurrence): try it apart first
            cold = first_call_in_process(impl, config.id, mode, bench_threads(), first_call_timeout())
            if cold.get("timed_out"):
                pytest.skip(cold["error"])
        case = make_case(impl, config, mode)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = config.id
    benchmark.name = f"{impl} {mode}"
    benchmark.extra_info.update(
        config=config.describe(),
        gflop=config.forward_flops() * (1 if mode == "forward" else 3) / 1e9,
    )
    # The first call (compile, export, allocations) is the check against torch, untimed.
    first = case.run()
    assert np.all(np.isfinite(case.result(first)))
    if impl != "torch":
        error = error_vs_torch(case, first)
        if impl in ADAPTER_NAMES:
            wrong = sanity_reason(case, error)
            if wrong:
                pytest.skip(wrong)
        else:
            assert error < ATOL, f"{impl} {mode} differs from torch by {error:.3g}"
    result = benchmark(case.run)  # with --benchmark-disable: one more call, untimed
    assert np.all(np.isfinite(case.result(result)))
