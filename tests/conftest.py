"""Test session setup.

torch runs single-threaded: on this small CI box oneDNN's thread pool oversubscribes the
cores and makes each float32 LSTM call take ~0.4 s instead of ~1 ms.  CPU results are
identical across thread counts (docs/semantics.md section 6).
"""

from __future__ import annotations

import os

# One worker per conformance run the tests start (unless a test asks for --jobs): pytest-xdist
# already runs one test per core, and a second worker per run only adds its start-up.
os.environ.setdefault("LSTM_CONFORMANCE_JOBS", "1")

try:
    import torch
except ImportError:  # the torch-free tests still run
    torch = None

if torch is not None:
    torch.set_num_threads(1)
