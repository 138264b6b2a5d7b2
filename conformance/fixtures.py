"""Golden fixtures: one deterministic ``.npz`` per case plus ``manifest.json``.

Writing is byte-for-byte reproducible (sorted members, fixed zip timestamps, no pickles) and
atomic (temp file, fsync, ``os.replace``). Reading verifies each file's sha256 against the
manifest; a missing or corrupted file is a :class:`FixtureError` naming the file, never a skip.
:meth:`FixtureStore.verify` checks a whole directory once (for problems that affect every case).

``regen`` holds an flock on ``.regen.lock`` in the fixtures directory (non-blocking: a second regen
of the same directory fails at once) and removes temp files an interrupted regen left behind.
``regen --check`` compares every file on disk with the manifest and with what live torch makes now.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import io
import json
import os
import platform
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TextIO

if sys.platform != "win32":
    import fcntl

import numpy as np

from .cases import Case

FORMAT = 2  # 2: 32-bit cases carry exact_* (64-bit) expected arrays
MANIFEST = "manifest.json"
PACKAGED = "_golden"  # the fixtures inside an installed wheel: pyproject.toml maps fixtures/ there


def _default_dir() -> Path:
    """$LSTM_CONFORMANCE_FIXTURES; else the fixtures an installed wheel or sdist carries
    (``conformance/_golden``, found with importlib.resources); else the checkout's top-level
    ``fixtures/`` (a source tree or an editable install, where ``regen`` writes)."""
    if os.environ.get("LSTM_CONFORMANCE_FIXTURES"):
        return Path(os.environ["LSTM_CONFORMANCE_FIXTURES"])
    packaged = importlib.resources.files(__package__ or "conformance") / PACKAGED
    if isinstance(packaged, Path) and (packaged / MANIFEST).is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "fixtures"


FIXTURES_DIR = _default_dir()
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
REGEN_COMMAND = "lstm-conformance regen"
LOCK_FILE = ".regen.lock"  # flock'ed by regen; never a fixture (listed in .gitignore)
TEMP_GLOB = ".*.tmp"  # atomic_write's temp files: "." + name + random + ".tmp"
_ENTRY_KEYS = ("case", "file", "sha256", "arrays")


class FixtureError(RuntimeError):
    """A fixture file is missing, corrupted, or does not match its manifest entry."""


class _ManifestError(FixtureError):
    """The manifest itself is missing, unreadable or malformed: every case is affected."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class Problem(NamedTuple):
    """One finding of :meth:`FixtureStore.audit`.

    ``kind`` is ``"directory"`` or ``"manifest"`` (the whole directory is unusable: every case is
    affected), or ``"missing"``, ``"corrupt"``, ``"extra"`` (one file)."""

    kind: str
    path: Path
    detail: str

    @property
    def whole_directory(self) -> bool:
        return self.kind in ("directory", "manifest")

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


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
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
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


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _read_manifest(path: Path) -> dict[str, Any]:
    """The parsed manifest, its shape checked; a :class:`_ManifestError` naming it otherwise."""
    hint = f"run `{REGEN_COMMAND}`"
    if not path.is_file():
        raise _ManifestError(path, f"fixture manifest is missing ({hint})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _ManifestError(path, f"unreadable manifest ({_why(exc)})") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _ManifestError(path, f"unreadable manifest: not JSON ({exc}; {hint})") from exc
    if not isinstance(manifest, dict):
        raise _ManifestError(path, f"malformed manifest: not a JSON object ({hint})")
    if manifest.get("format") != FORMAT:
        raise _ManifestError(path, f"format {manifest.get('format')!r}, this suite reads {FORMAT}")
    cases = manifest.get("cases")
    if not isinstance(cases, dict):
        raise _ManifestError(path, f"malformed manifest: no 'cases' object ({hint})")
    for case_id, entry in cases.items():
        if not isinstance(entry, dict) or any(k not in entry for k in _ENTRY_KEYS):
            raise _ManifestError(
                path, f"malformed manifest: entry {case_id!r} lacks one of {', '.join(_ENTRY_KEYS)} ({hint})"
            )
        if entry["file"] != case_file(case_id):  # also keeps every read inside the directory
            raise _ManifestError(
                path,
                f"malformed manifest: entry {case_id!r} points at {entry['file']!r}, "
                f"not {case_file(case_id)!r} ({hint})",
            )
    for key in ("errors", "versions"):
        if not isinstance(manifest.get(key, {}), dict):
            raise _ManifestError(path, f"malformed manifest: {key!r} is not an object ({hint})")
    return manifest


def _blob_problem(blob: bytes, entry: dict[str, Any], where: str, arrays: bool = True) -> str | None:
    """What is wrong with a fixture file's bytes given its manifest entry, or None. With
    ``arrays=False`` a file whose sha256 matches is not unpacked (what regen wrote, byte for byte)."""
    if sha256(blob) != entry["sha256"]:
        detail = f"sha256 does not match {MANIFEST} (corrupted or edited fixture)"
        try:
            read_npz_bytes(blob, where)
        except FixtureError as exc:
            detail += f"; {str(exc).removeprefix(where + ': ')}"
        return detail
    if not arrays:
        return None
    try:
        found = read_npz_bytes(blob, where)
    except FixtureError as exc:
        return str(exc).removeprefix(where + ": ")
    listed = {k: [list(v.shape), str(v.dtype)] for k, v in found.items()}
    if listed != entry["arrays"]:
        return f"arrays differ from those listed in {MANIFEST}"
    return None


class FixtureStore:
    """Read access to a fixtures directory, verifying hashes and case definitions."""

    def __init__(self, directory: Path = FIXTURES_DIR) -> None:
        self.directory = Path(directory)
        self._manifest: dict[str, Any] | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            self._manifest = _read_manifest(self.directory / MANIFEST)
        return self._manifest

    def has(self, case_id: str) -> bool:
        return case_id in self.manifest["cases"]

    def error_types(self) -> dict[str, str]:
        return dict(self.manifest.get("errors", {}))

    def provenance(self) -> dict[str, str]:
        """What generated the fixtures: the manifest's ``versions`` (torch, numpy, python,
        machine) and ``generated_by``. Raises :class:`FixtureError` if the manifest is unusable."""
        found = {str(k): str(v) for k, v in self.manifest.get("versions", {}).items()}
        if "generated_by" in self.manifest:
            found["generated_by"] = str(self.manifest["generated_by"])
        return found

    def audit(self) -> list[Problem]:
        """Check the whole directory once, without torch: the directory exists and is not empty,
        the manifest reads and has this suite's format, every listed file is present with the
        right sha256, and cases/ holds no .npz the manifest does not list. (:meth:`load` also
        checks each file's arrays against the manifest.)

        A problem that makes every case unusable (``Problem.whole_directory``) is returned alone;
        otherwise one :class:`Problem` per bad file, sorted by path. [] when all is sound."""
        d = self.directory
        if not d.exists():
            return [Problem("directory", d, "fixtures directory does not exist (check --fixtures)")]
        if not d.is_dir():
            return [Problem("directory", d, "not a directory (check --fixtures)")]
        try:
            manifest = self.manifest
        except _ManifestError as exc:
            try:
                empty = not exc.path.exists() and not any((d / "cases").glob("*.npz"))
            except OSError:
                empty = False
            if empty:
                return [
                    Problem(
                        "directory",
                        d,
                        f"fixtures directory is empty (no {MANIFEST}, no cases/*.npz; "
                        f"check --fixtures, or run `{REGEN_COMMAND}` to create it)",
                    )
                ]
            return [Problem("manifest", exc.path, exc.detail)]
        problems: list[Problem] = []
        listed: set[Path] = set()
        for case_id, entry in manifest["cases"].items():
            path = d / entry["file"]
            listed.add(path)
            try:
                blob = path.read_bytes()
            except FileNotFoundError:
                problems.append(Problem("missing", path, f"missing (listed in {MANIFEST} for {case_id!r})"))
                continue
            except OSError as exc:
                problems.append(Problem("corrupt", path, f"unreadable ({_why(exc)})"))
                continue
            detail = _blob_problem(blob, entry, str(path), arrays=False)
            if detail:
                problems.append(Problem("corrupt", path, detail))
        try:
            on_disk = sorted((d / "cases").glob("*.npz"))
        except OSError as exc:
            on_disk = []
            problems.append(Problem("directory", d / "cases", f"cannot list ({_why(exc)})"))
        for path in on_disk:
            if path not in listed:
                problems.append(
                    Problem("extra", path, f"not listed in {MANIFEST} (stray file or removed case)")
                )
        return sorted(problems, key=lambda p: str(p.path))

    def verify(self) -> list[str]:
        """:meth:`audit` as one line per problem ("<path>: <what>"); [] when all is sound. A
        missing directory or unusable manifest is a single line, so callers can report it once."""
        return [str(p) for p in self.audit()]

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
        detail = _blob_problem(blob, entry, str(path))
        if detail:
            raise FixtureError(f"{path}: {detail}")
        return read_npz_bytes(blob, str(path))


def _array_drift(case_id: str, old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> list[str]:
    """Per array: added/removed, dtype or shape change, or max abs drift within/beyond tolerance."""
    from .tolerances import drift_tolerance

    problems: list[str] = []
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
        problems.extend(_array_drift(case_id, old, new))
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
        raise _RegenFailure(f"cannot write fixtures directory {directory} ({_why(exc)})") from exc
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
            raise _RegenFailure(f"cannot lock {path} ({_why(exc)})") from exc
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
            raise _RegenFailure(f"cannot write fixtures directory {folder} ({_why(exc)})") from exc


def _torch_of(found: dict[str, str]) -> str:
    return found.get("torch", "unknown")


def _write_fixtures(directory: Path, out: TextIO) -> int:
    from .cases import all_cases
    from .errors import torch_error_types

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _RegenFailure(f"cannot create fixtures directory {directory} ({_why(exc)})") from exc
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
        manifest, files = build(all_cases(), torch_error_types())
        try:
            write(directory, files)
        except OSError as exc:
            raise _RegenFailure(
                f"could not write {getattr(exc, 'filename', None) or directory} ({_why(exc)}); "
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


def _check_fixtures(directory: Path, out: TextIO) -> int:
    from .cases import all_cases
    from .errors import torch_error_types

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
        manifest, files = build(all_cases(), torch_error_types())
        lines, counts = _compare_on_disk(store, found, manifest, files)
        temps = leftover_temp_files(directory)
    for line in lines:
        print(line, file=out)
    for path in temps:
        print(
            f"note: {path} is a temp file left by an interrupted regen (the next regen removes it)", file=out
        )
    if counts:
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        print(
            f"{sum(counts.values())} bad fixture file(s) in {directory} ({summary}): the fixtures do not "
            f"match live torch; `{REGEN_COMMAND}` rewrites them",
            file=out,
        )
        return 1
    print(f"fixtures match live torch: {len(manifest['cases'])} cases, byte for byte", file=out)
    return 0


def _compare_on_disk(
    store: FixtureStore, found: list[Problem], manifest: dict[str, Any], files: dict[str, bytes]
) -> tuple[list[str], Counter[str]]:
    """Report lines (one per bad file: MISSING, CORRUPT, EXTRA, STALE; DRIFT lines per array
    under it) comparing the files on disk with freshly generated ones, and counts per kind."""
    d = store.directory
    lines: list[str] = []
    counts: Counter[str] = Counter()

    def bad(kind: str, path: Path, detail: str) -> None:
        lines.append(f"{kind.upper()} {path}: {detail}")
        counts[kind] += 1

    for p in found:
        bad(p.kind, p.path, p.detail)
    named = {p.path for p in found}
    old_cases = store.manifest["cases"]
    new_cases = manifest["cases"]
    for case_id in sorted(set(old_cases) - set(new_cases)):
        if d / old_cases[case_id]["file"] not in named:
            bad("stale", d / old_cases[case_id]["file"], f"{case_id!r} is in {MANIFEST} but no longer a case")
    for case_id in sorted(set(new_cases) - set(old_cases)):
        if d / new_cases[case_id]["file"] not in named:
            bad(
                "stale",
                d / new_cases[case_id]["file"],
                f"new case {case_id!r}, not in the committed fixtures",
            )
    old_errors = store.error_types()
    new_errors: dict[str, str] = manifest["errors"]
    error_drift = [
        f"errors/{k}: committed {old_errors.get(k)}, torch now raises {new_errors.get(k)}"
        for k in sorted(set(old_errors) | set(new_errors))
        if old_errors.get(k) != new_errors.get(k)
    ]
    if error_drift:
        bad("stale", d / MANIFEST, f"{len(error_drift)} error type(s) differ from live torch")
        lines.extend("DRIFT " + line for line in error_drift)
    for case_id, entry in new_cases.items():
        if case_id not in old_cases:
            continue
        path = d / entry["file"]
        try:
            blob = path.read_bytes()
        except OSError:  # named above as missing or corrupt
            continue
        fresh = files[entry["file"]]
        if blob == fresh and _normal(old_cases[case_id]) == _normal(entry):
            continue
        try:
            old_arrays = read_npz_bytes(blob, str(path))
        except FixtureError:  # named above as corrupt
            continue
        drifts = _array_drift(case_id, old_arrays, read_npz_bytes(fresh, entry["file"]))
        if path not in named:
            bad(
                "stale",
                path,
                "differs from what live torch makes now"
                + ("" if drifts else f" (same arrays; the file's bytes or its {MANIFEST} entry differ)"),
            )
        lines.extend("DRIFT " + line for line in drifts)
    return lines, counts


def main_regen(
    check: bool, directory: Path = FIXTURES_DIR, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``lstm-conformance regen [--check]``: 0 when done / matching, 1 when --check finds bad or
    stale files, 2 (one line on ``err``, no traceback) when it cannot run at all."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        return _check_fixtures(Path(directory), out) if check else _write_fixtures(Path(directory), out)
    except _RegenFailure as exc:
        print(f"lstm-conformance regen: {str(exc).replace(chr(10), ' ')}", file=err)
        return 2
