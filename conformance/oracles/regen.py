"""``lstm-conformance regen [--check]``: write the golden fixtures from live torch, or check the
files on disk against what live torch makes now.

Writing is byte-for-byte reproducible (sorted members, fixed zip timestamps, no pickles) and
atomic (temp file + ``os.replace``, the manifest last), under a lock so that two regens of one
directory cannot interleave.  ``--check`` names every missing, corrupt, extra or stale file and
the drift of every array (docs/fixtures.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..contract.cases import Case
from .compact import HASH_KEY, outputs_only
from .fixtures import (
    FIXTURES_DIR,
    FORMAT,
    LOCK_FILE,
    MANIFEST,
    REGEN_COMMAND,
    TEMP_GLOB,
    FixtureError,
    FixtureStore,
    Problem,
    atomic_write,
    case_file,
    npz_bytes,
    read_npz_bytes,
    sha256,
    why,
)


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
    from ..checks.rows import array_producers
    from .torch_oracle import expected_from_torch

    producers = array_producers()
    files: dict[str, bytes] = {}
    entries: dict[str, Any] = {}
    for case in cases:
        arrays = expected_from_torch(case, producers)
        extra: dict[str, str] = {}
        if case.stores_outputs_only:  # size cases: outputs only, inputs regenerated (compact.py)
            arrays, extra[HASH_KEY] = outputs_only(case, arrays)
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
            **extra,
        }
    manifest = {
        "format": FORMAT,
        "generated_by": REGEN_COMMAND,
        "versions": versions(),
        "note": "Arrays: w.<param> weights in torch order; x input (padded time-major if packed); "
        "h0/c0; lengths, packed_data, batch_sizes, sorted/unsorted_indices; mask_<k> dropout keep "
        "masks (time-major, bool); output (packed: data), h_n, c_n; layer_<k>_output; "
        "stepwise_*; error (exception type name); grad_*/dout_* reserved for gradients. "
        "Entries with inputs_sha256 (size cases) store outputs only: inputs and weights are "
        "regenerated from the seed and must hash to it.",
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


def _array_drift(
    case_id: str, old: dict[str, np.ndarray], new: dict[str, np.ndarray]
) -> list[tuple[str, bool]]:
    """Per array that differs: (report line, beyond tolerance?).  Added/removed arrays and dtype
    or shape changes are always beyond; values within the drift tolerance are the rounding of
    another CPU or BLAS (torch's float32 kernels differ between AVX2 and AVX-512, say)."""
    problems: list[tuple[str, bool]] = []
    for name in sorted(set(old) | set(new)):
        if name not in new or name not in old:
            problems.append((f"{case_id}/{name}: {'removed' if name not in new else 'added'}", True))
            continue
        a, b = old[name], new[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append((f"{case_id}/{name}: {a.dtype}{list(a.shape)} -> {b.dtype}{list(b.shape)}", True))
        elif a.dtype.kind not in "fc":
            if not np.array_equal(a, b):
                problems.append((f"{case_id}/{name}: values changed", True))
        elif not np.array_equal(a, b, equal_nan=True):
            problems.append(_float_drift(f"{case_id}/{name}", a, b, gradient=name.startswith("grad_")))
    return problems


def _float_drift(label: str, old: np.ndarray, new: np.ndarray, gradient: bool) -> tuple[str, bool]:
    """Forward arrays elementwise (DRIFT); gradients relative to the tensor's scale, as the
    gradients row judges them (a long sum's rounding is absolute, not per entry)."""
    from ..contract.tolerances import conformance_gradient_tolerance, drift_tolerance

    a, b = old.astype(np.complex128), new.astype(np.complex128)
    same_nonfinite = (np.isnan(a) & np.isnan(b)) | (a == b)  # NaN meets NaN, inf meets inf
    diff = np.where(same_nonfinite, 0.0, np.abs(a - b))  # NaN where only one side is NaN
    worst = float(np.max(diff, initial=0.0)) if not np.isnan(diff).any() else float("nan")
    if gradient:
        tol = conformance_gradient_tolerance(old.dtype)
        scale = float(np.max(np.abs(np.where(np.isfinite(b), b, 0)), initial=0.0))
        beyond = not worst <= tol.atol + tol.rtol * scale
        rule = f"gradient drift tolerance rtol={tol.rtol:g} (of max {scale:.3g}) atol={tol.atol:g}"
    else:
        tol = drift_tolerance(old.dtype)
        beyond = bool(np.any(~(diff <= tol.atol + tol.rtol * np.abs(np.where(np.isnan(a), 0, a)))))
        rule = f"drift tolerance rtol={tol.rtol:g} atol={tol.atol:g}"
    return f"{label}: max abs drift {worst:.3e} ({'beyond' if beyond else 'within'} {rule})", beyond


def drift(committed: FixtureStore, manifest: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    """Differences between committed fixtures and freshly generated ones, per case and array
    (by manifest hash: files on disk are checked by :func:`main_regen` ``check=True``)."""
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
        problems.extend(line for line, _ in _array_drift(case_id, old, new))
    return problems


# -- regen -----------------------------------------------------------------------------------------


class _RegenFailure(Exception):
    """regen cannot run at all: a one-line message on stderr and exit status 2."""


@contextlib.contextmanager
def _regen_lock(directory: Path, exclusive: bool) -> Iterator[None]:
    """flock ``directory/.regen.lock`` without blocking: exclusive for regen, shared for --check
    (skipped when there is no lock file yet, so --check works in a read-only directory)."""
    if sys.platform == "win32":  # no flock; regens there are not serialized
        yield
        return
    path = directory / LOCK_FILE
    try:
        if exclusive:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield
        return
    except OSError as exc:
        if not exclusive:  # an unreadable lock file does not stop a read-only check
            yield
            return
        raise _RegenFailure(f"cannot write fixtures directory {directory} ({why(exc)})") from exc
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(errors="replace").strip() if path.is_file() else ""
            raise _RegenFailure(
                f"another `{REGEN_COMMAND}` is using {directory} right now "
                f"({path} is locked{' by pid ' + holder if holder.isdigit() else ''}); "
                "wait for it to finish and run this again"
            ) from None
        except OSError as exc:
            raise _RegenFailure(f"cannot lock {path} ({why(exc)})") from exc
        if exclusive:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def leftover_temp_files(directory: Path) -> list[Path]:
    """Temp files of :func:`atomic_write` left by a regen that was killed while writing."""
    found: list[Path] = []
    for folder in (directory, directory / "cases"):
        with contextlib.suppress(OSError):
            found.extend(p for p in folder.glob(TEMP_GLOB) if p.is_file())
    return sorted(found)


def _ensure_writable(directory: Path) -> None:
    """Fail before the (slow) regeneration if the directory or cases/ cannot be written."""
    for folder in (directory, directory / "cases"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder, prefix=".probe", suffix=".tmp"):
                pass
        except OSError as exc:
            raise _RegenFailure(f"cannot write fixtures directory {folder} ({why(exc)})") from exc


def _torch_of(found: dict[str, str]) -> str:
    return found.get("torch", "unknown")


def _write_fixtures(directory: Path, out: TextIO) -> int:
    from ..checks.errors import torch_error_types
    from ..contract.selection import fixture_cases

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _RegenFailure(f"cannot create fixtures directory {directory} ({why(exc)})") from exc
    with _regen_lock(directory, exclusive=True):
        _ensure_writable(directory)
        removed = leftover_temp_files(directory)
        for path in removed:
            path.unlink(missing_ok=True)
        try:
            previous = f"the previous ones by torch {_torch_of(FixtureStore(directory).provenance())}"
        except FixtureError:
            gone = not (directory / MANIFEST).exists()
            previous = "no previous fixtures" if gone else f"the previous {MANIFEST} was unusable (replaced)"
        manifest, files = build(fixture_cases(), torch_error_types())
        try:
            write(directory, files)
        except OSError as exc:
            raise _RegenFailure(
                f"could not write {getattr(exc, 'filename', None) or directory} ({why(exc)}); "
                f"the fixtures in {directory} may be half rewritten: run `{REGEN_COMMAND}` again"
            ) from exc
    total = sum(len(b) for b in files.values())
    print(f"wrote {len(files) - 1} case files + {MANIFEST} to {directory} ({total / 1e6:.2f} MB)", file=out)
    print(f"torch {_torch_of(manifest['versions'])} made these fixtures; {previous}", file=out)
    if removed:
        names = ", ".join(str(p.relative_to(directory)) for p in removed)
        print(f"removed {len(removed)} temp file(s) left by an interrupted regen: {names}", file=out)
    return 0


def _normal(entry: dict[str, Any]) -> Any:
    return json.loads(json.dumps(entry))


def _check_fixtures(directory: Path, out: TextIO, exact: bool = False) -> int:
    from ..checks.errors import torch_error_types
    from ..contract.selection import fixture_cases

    store = FixtureStore(directory)
    with _regen_lock(directory, exclusive=False):
        found = store.audit()
        for p in found:
            if p.whole_directory:
                raise _RegenFailure(str(p))
        made_by = store.provenance()
        live = versions()
        print(
            f"torch: fixtures made by torch {_torch_of(made_by)} (numpy {made_by.get('numpy', 'unknown')}, "
            f"python {made_by.get('python', 'unknown')}); live torch {live['torch']}",
            file=out,
        )
        if _torch_of(made_by) != live["torch"]:
            print(
                f"torch versions differ: the fixtures were made by torch {_torch_of(made_by)}, live torch "
                f"is {live['torch']}; differences below may come from the version change",
                file=out,
            )
        manifest, files = build(fixture_cases(), torch_error_types())
        findings = _compare_on_disk(store, found, manifest, files, exact)
        findings.lines += _grouped_changes(store, found, manifest, files, exact, findings)
        temps = leftover_temp_files(directory)
    for path in temps:
        findings.lines.append(
            f"note: {path} is a temp file left by an interrupted regen (the next regen removes it)"
        )
    return _verdict(findings, len(manifest["cases"]), directory, out)


def _grouped_changes(
    store: FixtureStore,
    found: list[Problem],
    manifest: dict[str, Any],
    files: dict[str, bytes],
    exact: bool,
    findings: _Findings,
) -> list[str]:
    """What changed in torch, grouped by cause and each change counted once (as ``torch-diff``
    prints it), with advice for the direction of the change; files named already as missing or
    corrupt are left out.  Sets ``findings.advice`` for the last line."""
    from .torch_diff import advice, built_side, change_lines, compare, direction, fixtures_side

    unreadable = {p.path for p in found}
    old = fixtures_side(store)
    old.cases = {k: v for k, v in old.cases.items() if store.directory / v["file"] not in unreadable}
    diff = compare(old, built_side(manifest, files))
    findings.direction = direction(diff.old.torch, diff.new.torch)
    if not diff.changes and not (exact and diff.within):
        return []
    lines = change_lines(diff, exact)
    return lines + ["advice: " + line for line in advice(diff, store.directory)] if diff.changes else lines


def _verdict(findings: _Findings, n: int, directory: Path, out: TextIO) -> int:
    """Print the findings and the last line; 1 when any file is bad."""
    for line in findings.lines:
        print(line, file=out)
    if findings.counts:
        summary = ", ".join(f"{k} {kind}" for kind, k in sorted(findings.counts.items()))
        rewrite = (
            f"do not `{REGEN_COMMAND}` with this older torch (see the advice above)"
            if findings.direction == "older"
            else f"`{REGEN_COMMAND}` rewrites them"
        )
        print(
            f"{sum(findings.counts.values())} bad fixture file(s) in {directory} ({summary}): the fixtures "
            f"do not match live torch; {rewrite}",
            file=out,
        )
        return 1
    if not findings.rounding:
        print(f"fixtures match live torch: {n} cases, byte for byte", file=out)
        return 0
    named = "; ".join(p.name for p in findings.rounding[:3]) + (", ..." if len(findings.rounding) > 3 else "")
    print(
        f"fixtures match live torch: {n} cases, {n - len(findings.rounding)} byte for byte and "
        f"{len(findings.rounding)} within the drift tolerance ({named}): this machine's torch rounds "
        "them differently from the one that made them (another CPU or BLAS); --exact requires byte identity",
        file=out,
    )
    return 0


class _Findings:
    """Report lines (one per bad file: MISSING, CORRUPT, EXTRA, STALE, with DRIFT lines per array
    under it) and counts per kind."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts: Counter[str] = Counter()
        self.rounding: list[Path] = []  # files within the drift tolerance: not bad
        self.direction = "same"  # live torch against the fixtures' torch: newer, older or same

    def bad(self, kind: str, path: Path, detail: str) -> None:
        self.lines.append(f"{kind.upper()} {path}: {detail}")
        self.counts[kind] += 1


def _compare_on_disk(
    store: FixtureStore, found: list[Problem], manifest: dict[str, Any], files: dict[str, bytes], exact: bool
) -> _Findings:
    """The files on disk against freshly generated ones: report lines, counts per kind, and the
    files that differ only within the drift tolerance."""
    findings = _Findings()
    for p in found:
        findings.bad(p.kind, p.path, p.detail)
    named = {p.path for p in found}
    _case_set_changes(store, manifest, named, findings)
    _error_type_changes(store, manifest, findings)
    for case_id, entry in manifest["cases"].items():
        if case_id in store.manifest["cases"]:
            _file_changes(store, case_id, entry, files[entry["file"]], named, findings, exact)
    return findings


def _case_set_changes(
    store: FixtureStore, manifest: dict[str, Any], named: set[Path], findings: _Findings
) -> None:
    """Cases gone from the suite, and cases the committed fixtures lack."""
    d, old_cases, new_cases = store.directory, store.manifest["cases"], manifest["cases"]
    for case_id in sorted(set(old_cases) - set(new_cases)):
        if d / old_cases[case_id]["file"] not in named:
            findings.bad(
                "stale", d / old_cases[case_id]["file"], f"{case_id!r} is in {MANIFEST} but no longer a case"
            )
    for case_id in sorted(set(new_cases) - set(old_cases)):
        if d / new_cases[case_id]["file"] not in named:
            findings.bad(
                "stale",
                d / new_cases[case_id]["file"],
                f"new case {case_id!r}, not in the committed fixtures",
            )


def _error_type_changes(store: FixtureStore, manifest: dict[str, Any], findings: _Findings) -> None:
    old_errors, new_errors = store.error_types(), manifest["errors"]
    drift = [
        f"errors/{k}: committed {old_errors.get(k)}, torch now raises {new_errors.get(k)}"
        for k in sorted(set(old_errors) | set(new_errors))
        if old_errors.get(k) != new_errors.get(k)
    ]
    if drift:  # which ones, grouped by error case, in the report of the changes
        findings.bad(
            "stale", store.directory / MANIFEST, f"{len(drift)} error type(s) differ from live torch"
        )


def _file_changes(
    store: FixtureStore,
    case_id: str,
    entry: dict[str, Any],
    fresh: bytes,
    named: set[Path],
    findings: _Findings,
    exact: bool,
) -> None:
    """One case file on disk against the fresh one: STALE with its array drift if it differs
    beyond the drift tolerance (or in its arrays' names, shapes, dtypes or its definition);
    ROUNDING, not a problem, if every array is within it (the rounding of another CPU)."""
    path = store.directory / entry["file"]
    try:
        blob = path.read_bytes()
    except OSError:  # named already as missing or corrupt
        return
    committed = store.manifest["cases"][case_id]
    if blob == fresh and _normal(committed) == _normal(entry):
        return
    try:
        old_arrays = read_npz_bytes(blob, str(path))
    except FixtureError:  # named already as corrupt
        return
    drifts = _array_drift(case_id, old_arrays, read_npz_bytes(fresh, entry["file"]))
    same_definition = _normal(_without_hash(committed)) == _normal(_without_hash(entry))
    if path not in named and (exact or not same_definition or any(beyond for _, beyond in drifts)):
        same = "" if drifts else f" (same arrays; the file's bytes or its {MANIFEST} entry differ)"
        findings.bad("stale", path, "differs from what live torch makes now" + same)
    elif path not in named:
        findings.rounding.append(path)


def _without_hash(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "sha256"}


def main_regen(
    check: bool,
    directory: Path = FIXTURES_DIR,
    out: TextIO | None = None,
    err: TextIO | None = None,
    exact: bool = False,
) -> int:
    """``lstm-conformance regen [--check]``: 0 when done / matching, 1 when --check finds bad or
    stale files, 2 (one line on ``err``, no traceback) when it cannot run at all."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        return (
            _check_fixtures(Path(directory), out, exact) if check else _write_fixtures(Path(directory), out)
        )
    except _RegenFailure as exc:
        print(f"lstm-conformance regen: {str(exc).replace(chr(10), ' ')}", file=err)
        return 2
