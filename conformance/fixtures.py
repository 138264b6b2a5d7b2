"""Golden fixtures: one deterministic ``.npz`` per case plus ``manifest.json``.

Writing is byte-for-byte reproducible (sorted members, fixed zip timestamps, no pickles) and
atomic (temp file + ``os.replace``). Reading verifies each file's sha256 against the manifest;
a missing or corrupted file is a :class:`FixtureError` naming the file, never a skip.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .cases import Case

FORMAT = 2  # 2: 32-bit cases carry exact_* (64-bit) expected arrays


def _default_dir() -> Path:
    """$LSTM_CONFORMANCE_FIXTURES, else the repository's fixtures/ (editable install or source
    tree), else ./fixtures."""
    if os.environ.get("LSTM_CONFORMANCE_FIXTURES"):
        return Path(os.environ["LSTM_CONFORMANCE_FIXTURES"])
    beside = Path(__file__).resolve().parent.parent / "fixtures"
    return (
        beside
        if (beside / "manifest.json").is_file() or not (Path.cwd() / "fixtures").is_dir()
        else Path.cwd() / "fixtures"
    )


FIXTURES_DIR = _default_dir()
MANIFEST = "manifest.json"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
REGEN_COMMAND = "lstm-conformance regen"


class FixtureError(RuntimeError):
    """A fixture file is missing, corrupted, or does not match its manifest entry."""


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive (np.load-compatible) with deterministic bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in arrays:  # insertion order is meaningful (w.* in torch's order)
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=9)
    return buffer.getvalue()


def read_npz_bytes(blob: bytes, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except Exception as exc:
        raise FixtureError(f"{where}: not a readable .npz ({type(exc).__name__}: {exc})") from exc


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def case_file(case_id: str) -> str:
    return f"cases/{case_id}.npz"


def versions() -> dict[str, str]:
    import torch

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def build(cases: Iterable[Case], error_types: dict[str, str]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Generate every fixture in memory: (manifest, {relative path: bytes})."""
    from .rows import array_producers
    from .torch_oracle import expected_from_torch

    producers = array_producers()
    files: dict[str, bytes] = {}
    entries: dict[str, Any] = {}
    for case in cases:
        arrays = expected_from_torch(case, producers)
        blob = npz_bytes(arrays)
        rel = case_file(case.id)
        files[rel] = blob
        entries[case.id] = {
            "case": case.to_json(),
            "seed": case.seed,
            "dtype": case.dtype,
            "file": rel,
            "sha256": sha256(blob),
            "arrays": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
        }
    manifest = {
        "format": FORMAT,
        "generated_by": REGEN_COMMAND,
        "versions": versions(),
        "note": "Arrays: w.<param> weights in torch order; x input (padded time-major if packed); "
        "h0/c0; lengths, packed_data, batch_sizes, sorted/unsorted_indices; mask_<k> dropout keep "
        "masks (time-major, bool); output (packed: data), h_n, c_n; layer_<k>_output; "
        "stepwise_*; error (exception type name); grad_*/dout_* reserved for gradients.",
        "errors": error_types,
        "cases": entries,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=1) + "\n").encode()
    return manifest, files


def write(directory: Path, files: dict[str, bytes]) -> None:
    for rel, blob in files.items():
        if rel != MANIFEST:
            atomic_write(directory / rel, blob)
    atomic_write(directory / MANIFEST, files[MANIFEST])  # last: points at complete files
    keep = {directory / rel for rel in files}
    for stale in (directory / "cases").glob("*.npz"):
        if stale not in keep:
            stale.unlink()


class FixtureStore:
    """Read access to a fixtures directory, verifying hashes and case definitions."""

    def __init__(self, directory: Path = FIXTURES_DIR) -> None:
        self.directory = Path(directory)
        self._manifest: dict[str, Any] | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            path = self.directory / MANIFEST
            if not path.is_file():
                raise FixtureError(f"{path}: fixture manifest is missing (run `{REGEN_COMMAND}`)")
            try:
                manifest = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise FixtureError(f"{path}: unreadable manifest ({exc})") from exc
            if manifest.get("format") != FORMAT:
                raise FixtureError(f"{path}: format {manifest.get('format')!r}, this suite reads {FORMAT}")
            self._manifest = manifest
        return self._manifest

    def has(self, case_id: str) -> bool:
        return case_id in self.manifest["cases"]

    def error_types(self) -> dict[str, str]:
        return dict(self.manifest.get("errors", {}))

    def load(self, case: Case) -> dict[str, np.ndarray]:
        entry = self.manifest["cases"].get(case.id)
        path = self.directory / case_file(case.id)
        if entry is None:
            raise FixtureError(
                f"{path}: case {case.id!r} is missing from {self.directory / MANIFEST} "
                f"(run `{REGEN_COMMAND}`)"
            )
        if entry["case"] != case.to_json():
            raise FixtureError(
                f"{path}: made from a different definition of case {case.id!r} than the suite's "
                f"(run `{REGEN_COMMAND}`)"
            )
        path = self.directory / entry["file"]
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise FixtureError(f"{path}: fixture file missing or unreadable ({exc.strerror})") from exc
        if sha256(blob) != entry["sha256"]:
            raise FixtureError(f"{path}: sha256 does not match {MANIFEST} (corrupted or edited fixture)")
        arrays = read_npz_bytes(blob, str(path))
        listed = {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()}
        if listed != entry["arrays"]:
            raise FixtureError(f"{path}: arrays differ from those listed in {MANIFEST}")
        return arrays


def drift(committed: FixtureStore, manifest: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    """Differences between committed fixtures and freshly generated ones, per case and array."""
    from .tolerances import drift_tolerance

    problems: list[str] = []
    old_cases = committed.manifest["cases"]
    new_cases = manifest["cases"]
    for case_id in sorted(set(old_cases) - set(new_cases)):
        problems.append(f"{case_id}: in the committed fixtures but no longer a case")
    for case_id in sorted(set(new_cases) - set(old_cases)):
        problems.append(f"{case_id}: new case, not in the committed fixtures")
    for k, (new_type) in manifest["errors"].items():
        old_type = committed.error_types().get(k)
        if old_type != new_type:
            problems.append(f"errors/{k}: committed {old_type}, torch now raises {new_type}")
    for case_id, entry in new_cases.items():
        if case_id not in old_cases:
            continue
        if old_cases[case_id]["sha256"] == entry["sha256"]:
            continue
        path = committed.directory / old_cases[case_id]["file"]
        try:
            old = read_npz_bytes(path.read_bytes(), str(path))
        except OSError as exc:
            problems.append(f"{case_id}: {path} unreadable ({exc.strerror})")
            continue
        new = read_npz_bytes(files[entry["file"]], entry["file"])
        for name in sorted(set(old) | set(new)):
            if name not in new or name not in old:
                problems.append(f"{case_id}/{name}: {'removed' if name not in new else 'added'}")
                continue
            a, b = old[name], new[name]
            if a.shape != b.shape or a.dtype != b.dtype:
                problems.append(f"{case_id}/{name}: {a.dtype}{list(a.shape)} -> {b.dtype}{list(b.shape)}")
                continue
            same = np.array_equal(a, b, equal_nan=True) if a.dtype.kind in "fc" else np.array_equal(a, b)
            if same:
                continue
            if a.dtype.kind in "fc":
                tol = drift_tolerance(a.dtype)
                with np.errstate(invalid="ignore"):
                    diff = np.abs(a.astype(np.complex128) - b.astype(np.complex128))
                    diff = np.where(np.isnan(diff) & np.isnan(a) & np.isnan(b), 0, diff)
                    worst = float(np.nanmax(diff)) if diff.size else 0.0
                    bound = tol.atol + tol.rtol * np.abs(a)
                    beyond = bool(np.any(~(diff <= bound)))
                problems.append(
                    f"{case_id}/{name}: max abs drift {worst:.3e} "
                    f"({'beyond' if beyond else 'within'} drift tolerance rtol={tol.rtol:g} atol={tol.atol:g})"
                )
            else:
                problems.append(f"{case_id}/{name}: values changed")
    return problems


def main_regen(check: bool, directory: Path = FIXTURES_DIR, out: Any = sys.stdout) -> int:
    from .cases import all_cases
    from .errors import torch_error_types

    manifest, files = build(all_cases(), torch_error_types())
    if not check:
        write(directory, files)
        total = sum(len(b) for b in files.values())
        print(
            f"wrote {len(files) - 1} case files + {MANIFEST} to {directory} ({total / 1e6:.2f} MB)", file=out
        )
        return 0
    problems = drift(FixtureStore(directory), manifest, files)
    for line in problems:
        print("DRIFT " + line, file=out)
    if problems:
        print(f"{len(problems)} difference(s) between committed fixtures and live torch", file=out)
        return 1
    print(f"fixtures match live torch: {len(manifest['cases'])} cases, byte for byte", file=out)
    return 0
