"""Same thread count for torch, numpy's BLAS, XLA and onnxruntime for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.impls import bench_threads, reset_compiler_caches, set_threads


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads() -> Iterator[int]:
    threads = bench_threads()
    with set_threads(threads):
        yield threads


@pytest.fixture(autouse=True)
def _fresh_compiler_caches() -> None:
    """Each benchmark compiles its own model (dynamo's recompile limit would turn torch-compile
    into eager after 8 cases)."""
    reset_compiler_caches()


def pytest_report_header(config: pytest.Config) -> str:
    return f"lstm benchmarks: {bench_threads()} thread(s) for torch / numpy BLAS / XLA / onnxruntime (BENCH_THREADS)"
