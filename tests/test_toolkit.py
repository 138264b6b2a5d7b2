"""conformance.toolkit, the public adapter toolkit: its conversions against independent
oracles (torch's packing, explicit loops), and the example adapter of docs/adapters.md, taken
from the page and run through the real CLI, so the page cannot rot."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstm_ref
from conformance import api, toolkit
from tests.suite_helpers import ROOT, needs_torch

EXAMPLE = re.compile(
    r"<!-- example:toolkit-adapter -->\n```python\n(.*?)```\n<!-- /example:toolkit-adapter -->", re.S
)


def test_gate_order_moves_whole_blocks_and_back() -> None:
    h = 2
    w = np.repeat(np.arange(4), h)[:, None] * np.ones((1, 3))  # block k holds k: i=0, f=1, g=2, o=3
    assert list(toolkit.to_library_gates(w, "icfo")[::h, 0]) == [0, 2, 1, 3]  # TensorFlow's BlockLSTM
    assert list(toolkit.to_library_gates(w, "igfo")[::h, 0]) == [0, 2, 1, 3]  # Haiku's
    assert list(toolkit.to_library_gates(w.T, "ofig", axis=1)[0, ::h]) == [3, 1, 0, 2]
    for order in ("ifco", "igfo", "oigf"):
        np.testing.assert_array_equal(
            toolkit.from_library_gates(toolkit.to_library_gates(w, order), order), w
        )
    with pytest.raises(ValueError, match="not a permutation"):
        toolkit.to_library_gates(w, "iffo")


def test_reverse_within_lengths_and_last_at_lengths() -> None:
    lengths = np.array([3, 5, 1])
    x = np.arange(5 * 3).reshape(5, 3) * 1.0
    got = toolkit.reverse_within_lengths(x, lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(got[:n, b], x[:n, b][::-1])
        np.testing.assert_array_equal(got[n:, b], x[n:, b])  # padding stays in place
    np.testing.assert_array_equal(
        toolkit.last_at_lengths(x, lengths), [x[n - 1, b] for b, n in enumerate(lengths)]
    )
    np.testing.assert_array_equal(toolkit.reverse_within_lengths(x, None), x[::-1])


@needs_torch
def test_form_pads_and_repacks_as_torch_does() -> None:
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    padded = np.random.default_rng(0).standard_normal((4, 3, 2))
    lengths = np.array([2, 4, 1])
    tp = pack_padded_sequence(torch.from_numpy(padded), torch.from_numpy(lengths), enforce_sorted=False)
    packed = lstm_ref.PackedSequence(*(None if f is None else f.numpy() for f in tp))
    form = toolkit.Form(packed, batch_first=False)
    got, got_lengths = form.padded(packed)
    np.testing.assert_array_equal(got_lengths, lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(got[:n, b], padded[:n, b])
    repacked = form.output(got)
    np.testing.assert_array_equal(repacked.data, tp.data.numpy())
    np.testing.assert_array_equal(repacked.batch_sizes, tp.batch_sizes.numpy())
    unbatched = toolkit.Form(padded[:, 0], batch_first=False)
    assert unbatched.padded(padded[:, 0])[0].shape == (4, 1, 2)
    batch_first = toolkit.Form(padded, batch_first=True)
    np.testing.assert_array_equal(batch_first.output(batch_first.padded(padded)[0]), padded)


def test_api_exports_the_toolkit() -> None:
    assert api.toolkit is toolkit
    assert (
        toolkit.library_versions("numpy", "no-such-distribution")
        == f"numpy {np.__version__}, no-such-distribution absent"
    )


@needs_torch
def test_the_example_adapter_of_adapters_md_passes(tmp_path: Path) -> None:
    """The page's adapter, as a user saves it: every row that runs passes (two layers, both
    directions, projections, packed input, complex), and its conformance_version is reported."""
    blocks = EXAMPLE.findall((ROOT / "docs" / "adapters.md").read_text())
    assert len(blocks) == 1
    (tmp_path / "example_adapter.py").write_text(blocks[0])
    report = tmp_path / "report.json"
    cmd = [
        sys.executable,
        "-m",
        "conformance",
        "--impl",
        "example_adapter:OneLayerLSTM",
        "--oracle",
        "fixtures",
    ]
    cmd += ["--case", "L2-*", "--jobs", "1", "--quiet", "--report", str(report)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    rows = {row["feature"]: row["status"] for row in data["table"]}
    for row in ("bidirectional", "multi_layer", "proj_size", "packed_unsorted", "complex128", "hx_given"):
        assert rows[row] == "pass", (row, rows[row])
    assert data["provenance"]["impl_version"].startswith("torch ")
