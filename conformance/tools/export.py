"""``lstm-conformance export DIR``: every default case as files, for test runners without Python.

Each case becomes ``DIR/cases/<case id>/`` holding exactly what ``--impl exec:COMMAND`` would
hand the command for that case's whole-sequence call (``request.json`` plus ``.npy`` files,
protocol 1 of docs/exec-protocol.md), plus the expected answer: ``expected_output.npy``
(packed: the data), ``expected_h_n.npy``, ``expected_c_n.npy``, or for a case where torch
raises, the exception type in ``expected.json``. ``DIR/index.json`` lists every case with
its table rows, files and tolerance. Read from the fixtures (no torch needed).

The export is built in a temporary sibling directory and renamed into place, so DIR is either
absent, the previous complete export, or the new complete one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..checks.harness import model_hx, model_input, model_masks, oracle_weights
from ..contract.cases import Case, all_cases
from ..contract.tolerances import forward_tolerance
from ..oracles.fixtures import FIXTURES_DIR, FixtureStore
from ..oracles.torch_oracle import with_exact_expectations
from ..run.exec_impl import EXPORT_PROTOCOL, forward_request, write_npy, write_request

INDEX = "index.json"
FORMAT = 1


def _config(case: Case) -> dict[str, Any]:
    config: dict[str, Any] = {**case.config(), "dtype": case.dtype, "seed": 0}
    return config


def export_case(case: Case, exp: dict[str, np.ndarray], directory: Path) -> dict[str, Any]:
    """Write one case directory; its index entry (paths relative to the export root)."""
    directory.mkdir(parents=True)
    masks = model_masks(case, exp)
    request, arrays = forward_request(
        _config(case),
        oracle_weights(exp),
        model_input(case, exp),
        model_hx(exp),
        masks,
        case.mode == "train",
    )
    write_request(directory, request, arrays)
    tol = forward_tolerance(case.dtype)
    expected: dict[str, Any] = {"error": None, "files": {}}
    if "error" in exp:
        expected["error"] = str(exp["error"])
    else:
        expected_values = with_exact_expectations(exp)  # 32-bit cases: the exact (64-bit) answer
        for name in ("output", "h_n", "c_n"):
            write_npy(directory / f"expected_{name}.npy", expected_values[name])
            expected["files"][name] = f"expected_{name}.npy"
    expected["tolerance"] = {"rtol": tol.rtol, "atol": tol.atol}
    (directory / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    rel = f"cases/{case.id}"
    return {
        "id": case.id,
        "dir": rel,
        "features": list(case.features()),
        "dtype": case.dtype,
        "config": request["config"],
        "training": request["training"],
        "packed": request["packed"],
        "request": f"{rel}/request.json",
        "inputs": sorted(f"{rel}/{name}.npy" for name in arrays),
        "expected_error": expected["error"],
        "expected": {k: f"{rel}/{v}" for k, v in expected["files"].items()},
        "tolerance": expected["tolerance"],
    }


def export(target: Path, fixtures_dir: Path = FIXTURES_DIR) -> int:
    """Write the export to ``target`` (replacing a previous export there); the case count."""
    store = FixtureStore(fixtures_dir)
    target = target.resolve()
    if target.exists() and not (target / INDEX).is_file() and any(target.iterdir()):
        raise SystemExit(f"{target}: exists, is not empty and holds no {INDEX}; not overwriting it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        entries = []
        for case in all_cases(full=False):
            if store.has(case.id):
                entries.append(export_case(case, store.load(case), staging / "cases" / case.id))
        index = {
            "format": FORMAT,
            "protocol": EXPORT_PROTOCOL,
            "generated_by": "lstm-conformance export",
            "fixtures": store.manifest.get("versions", {}),
            "comparison": "pass where |actual - expected| <= atol + rtol * |expected| elementwise; "
            "NaN must meet NaN and infinities must be equal (torch.testing.assert_close)",
            "cases": entries,
        }
        (staging / INDEX).write_text(json.dumps(index, indent=1) + "\n")
        os.chmod(staging, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(entries)


def main_export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lstm-conformance export",
        description="Write every default case (inputs, weights, expected outputs, tolerance) as "
        "exec-protocol request directories plus index.json, for test runners without Python.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument(
        "--fixtures", type=Path, default=FIXTURES_DIR, help="fixtures directory (default: %(default)s)"
    )
    args = p.parse_args(argv)
    n = export(args.dir, args.fixtures)
    print(f"exported {n} cases to {args.dir} (index: {args.dir / INDEX})", file=sys.stdout)
    return 0
