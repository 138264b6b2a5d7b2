"""pytest-benchmark: implementations x configurations x {forward, forward+backward}.

    python -m pytest benchmarks                       # timings, grouped per configuration
    python -m pytest benchmarks --benchmark-disable   # smoke: every case runs once, checked
                                                      # against torch; "large" is skipped

Each benchmark is grouped by configuration id, so pytest-benchmark's table
compares the implementations of one configuration with each other.  pytest-benchmark
runs the benchmarks one after another; for ratios measured in interleaved blocks
(and GFLOP/s, fraction of peak) use ``python -m benchmarks.summary``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from benchmarks.impls import CONFIGS, IMPLEMENTATIONS, MODES, Unavailable, check, make_case

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")

CASES = [
    pytest.param(impl, config, mode, id=f"{config.id}-{impl}-{mode}")
    for config in CONFIGS
    for mode in MODES
    for impl in IMPLEMENTATIONS
]

# Max |output - torch| (or |input gradient - torch|), float32, over up to 2000 steps.
ATOL = 1e-4


@pytest.mark.parametrize(("impl", "config", "mode"), CASES)
def test_lstm(benchmark: Any, impl: str, config: Any, mode: str) -> None:
    if benchmark.disabled and config.huge and not os.environ.get("BENCH_SMOKE_ALL"):
        pytest.skip("huge configuration: skipped in smoke mode (BENCH_SMOKE_ALL=1 runs it)")
    try:
        case = make_case(impl, config, mode)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = config.id
    benchmark.name = f"{impl} {mode}"
    benchmark.extra_info.update(
        config=config.describe(),
        gflop=config.forward_flops() * (1 if mode == "forward" else 3) / 1e9,
    )
    if not benchmark.disabled:
        case.run()  # warm-up (first-call allocations, torch's autograd/oneDNN setup)
    result = benchmark(case.run)  # with --benchmark-disable: one call, untimed
    assert np.all(np.isfinite(case.result(result)))
    if benchmark.disabled and impl != "torch":
        # Smoke mode: also check the answer against torch (output, or input gradient).
        error = check(case, result)
        assert error < ATOL, f"{impl} {mode} differs from torch by {error:.3g}"
