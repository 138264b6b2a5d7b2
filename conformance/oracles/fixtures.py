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

import hashlib
import importlib.resources
import io
import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..contract.cases import Case

FORMAT = 2  # 2: 32-bit cases carry exact_* (64-bit) expected arrays
MANIFEST = "manifest.json"
PACKAGED = "_golden"  # the fixtures inside an installed wheel: pyproject.toml maps fixtures/ there


def _default_dir() -> Path:
    """$LSTM_CONFORMANCE_FIXTURES; else the fixtures an installed wheel or sdist carries
    (``conformance/_golden``, found with importlib.resources); else the checkout's top-level
    ``fixtures/`` (a source tree or an editable install, where ``regen`` writes)."""
    if os.environ.get("LSTM_CONFORMANCE_FIXTURES"):
        return Path(os.environ["LSTM_CONFORMANCE_FIXTURES"])
    packaged = importlib.resources.files("conformance") / PACKAGED
    if isinstance(packaged, Path) and (packaged / MANIFEST).is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "fixtures"


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


# verified sha256 -> the file's arrays: a process that runs the suite more than once (the tests,
# a pytest session) unpacks each fixture once; every load gets copies of its own
_UNPACKED: dict[str, dict[str, np.ndarray]] = {}


def _unpacked(blob: bytes, sha256: str, where: str) -> dict[str, np.ndarray]:
    """read_npz_bytes of a blob whose hash was checked against ``sha256``, remembered by it."""
    arrays = _UNPACKED.get(sha256)
    if arrays is None:
        arrays = _UNPACKED[sha256] = read_npz_bytes(blob, where)
    return {name: value.copy() for name, value in arrays.items()}


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


MANIFEST_MAX_BYTES = 64 << 20


def read_bounded(path: Path, limit: int) -> bytes:
    """A regular file's bytes, at most ``limit`` of them: a FIFO, a device (a symlink to
    /dev/zero) or a file larger than its manifest entry allows is a FixtureError, never an
    endless read. OSError (FileNotFoundError, ...) as ``open`` raises it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FixtureError(f"{path}: not a regular file (a device, FIFO or socket); fixtures are files")
        if info.st_size > limit:
            raise FixtureError(
                f"{path}: {info.st_size} bytes, more than the {limit} its manifest entry allows"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise FixtureError(f"{path}: grew past the {limit} bytes its manifest entry allows while read")
        return data
    finally:
        os.close(fd)


def size_bound(entry: dict[str, Any]) -> int:
    """The most bytes a fixture file can have given its manifest entry's arrays (their data,
    headers, and deflate's worst case), or a fixed cap when the entry cannot say."""
    try:
        arrays = entry["arrays"].values()
        data = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize for shape, dtype in arrays)
        return int(data * 1.01) + 1024 * (len(arrays) + 1) + 4096
    except (AttributeError, TypeError, ValueError):
        return MANIFEST_MAX_BYTES


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def case_file(case_id: str) -> str:
    return f"cases/{case_id}.npz"


def why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _read_manifest(path: Path) -> dict[str, Any]:
    """The parsed manifest, its shape checked; a :class:`_ManifestError` naming it otherwise."""
    hint = f"run `{REGEN_COMMAND}`"
    try:
        manifest = json.loads(read_bounded(path, MANIFEST_MAX_BYTES).decode("utf-8"))
    except FileNotFoundError as exc:
        raise _ManifestError(path, f"fixture manifest is missing ({hint})") from exc
    except FixtureError as exc:
        raise _ManifestError(path, str(exc).removeprefix(f"{path}: ")) from exc
    except OSError as exc:
        raise _ManifestError(path, f"unreadable manifest ({why(exc)})") from exc
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


def _blob_problem(blob: bytes, entry: dict[str, Any], where: str) -> str | None:
    """What is wrong with a fixture file's bytes given its manifest entry (its sha256), or None:
    a file whose hash matches is what regen wrote, byte for byte, and is not unpacked here."""
    if sha256(blob) == entry["sha256"]:
        return None
    detail = f"sha256 does not match {MANIFEST} (corrupted or edited fixture)"
    try:
        read_npz_bytes(blob, where)
    except FixtureError as exc:
        detail += f"; {str(exc).removeprefix(where + ': ')}"
    return detail


def _listing_problem(found: dict[str, np.ndarray], entry: dict[str, Any]) -> str | None:
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
        whole = self._directory_problem()
        if whole is not None:
            return [whole]
        problems: list[Problem] = []
        for case_id, entry in self.manifest["cases"].items():
            problem = self._file_problem(case_id, entry)
            if problem is not None:
                problems.append(problem)
        return sorted(problems + self._extra_files(), key=lambda p: str(p.path))

    def _directory_problem(self) -> Problem | None:
        """A missing, non-directory or empty fixtures directory, or an unusable manifest."""
        d = self.directory
        if not d.exists():
            return Problem("directory", d, "fixtures directory does not exist (check --fixtures)")
        if not d.is_dir():
            return Problem("directory", d, "not a directory (check --fixtures)")
        try:
            _ = self.manifest  # reads and checks it once
        except _ManifestError as exc:
            try:
                empty = not exc.path.exists() and not any((d / "cases").glob("*.npz"))
            except OSError:
                empty = False
            if empty:
                detail = (
                    f"fixtures directory is empty (no {MANIFEST}, no cases/*.npz; "
                    f"check --fixtures, or run `{REGEN_COMMAND}` to create it)"
                )
                return Problem("directory", d, detail)
            return Problem("manifest", exc.path, exc.detail)
        return None

    def _file_problem(self, case_id: str, entry: dict[str, Any]) -> Problem | None:
        path = self.directory / entry["file"]
        try:
            blob = read_bounded(path, size_bound(entry))
        except FileNotFoundError:
            return Problem("missing", path, f"missing (listed in {MANIFEST} for {case_id!r})")
        except FixtureError as exc:
            return Problem("corrupt", path, str(exc).removeprefix(f"{path}: "))
        except OSError as exc:
            return Problem("corrupt", path, f"unreadable ({why(exc)})")
        detail = _blob_problem(blob, entry, str(path))
        return None if detail is None else Problem("corrupt", path, detail)

    def _extra_files(self) -> list[Problem]:
        """.npz files in cases/ that the manifest does not list."""
        listed = {self.directory / entry["file"] for entry in self.manifest["cases"].values()}
        try:
            on_disk = sorted((self.directory / "cases").glob("*.npz"))
        except OSError as exc:
            return [Problem("directory", self.directory / "cases", f"cannot list ({why(exc)})")]
        detail = f"not listed in {MANIFEST} (stray file or removed case)"
        return [Problem("extra", path, detail) for path in on_disk if path not in listed]

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
            blob = read_bounded(path, size_bound(entry))
        except OSError as exc:
            raise FixtureError(f"{path}: fixture file missing or unreadable ({exc.strerror})") from exc
        detail = _blob_problem(blob, entry, str(path))
        found = {} if detail else _unpacked(blob, entry["sha256"], str(path))  # checked, returned
        detail = detail or _listing_problem(found, entry)
        if detail:
            raise FixtureError(f"{path}: {detail}")
        if "inputs_sha256" in entry:  # a size case: outputs only, inputs from the seed
            from .compact import with_inputs

            return with_inputs(case, found, str(entry["inputs_sha256"]), str(path))
        return found
