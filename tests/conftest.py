"""Test session setup.

torch runs single-threaded: on this small CI box oneDNN's thread pool oversubscribes the
cores and makes each float32 LSTM call take ~0.4 s instead of ~1 ms.  CPU results are
identical across thread counts (docs/semantics.md section 6).
"""

from __future__ import annotations

import os
import sys

import pytest

# Python caches bytecode for this run and the ~300 processes it starts: where the environment sets
# PYTHONDONTWRITEBYTECODE (as some CI images do), every one of them compiled lstm_ref and
# conformance again, and each pytest among them re-rewrote their asserts (~2 s a process).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# One worker per conformance run the tests start (unless a test asks for --jobs): pytest-xdist
# already runs one test per core, and a second worker per run only adds its start-up.
os.environ.setdefault("LSTM_CONFORMANCE_JOBS", "1")

try:
    import torch
except ImportError:  # the torch-free tests still run
    torch = None

if torch is not None:
    torch.set_num_threads(1)


# The slowest modules first (each one's tests, in file order, measured at 20-150 s on 2 cores):
# pytest-xdist's --dist loadscope hands modules to its workers in collection order, so the long
# ones start at once instead of leaving a core idle while the last of them runs.
SLOWEST_FIRST = (
    "test_installed",
    "test_adapters_torch",
    "test_conformance_selftest",
    "test_exec_impl",
    "test_robustness",
    "test_isolation",
    "test_sizes",
    "test_fairness",
    "test_conformance_gradients",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist would reorder the modules by their number of tests, putting the slowest last
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
