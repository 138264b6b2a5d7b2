"""``--impl exec:COMMAND``: an implementation in any language, behind a command.

The adapter speaks protocols 1 and 2 of ``docs/exec-protocol.md``: for every request it makes a
temporary directory, writes ``request.json`` and the arrays as ``.npy`` files (little-endian,
C order) and reads back ``response.json``, the output ``.npy`` files or ``error.json``.
Protocol 1 runs ``COMMAND REQUEST_DIR`` once per request; a protocol-2 command that declares
``persistent`` runs once as ``COMMAND --exec-persistent`` and is handed one request directory
per line on its stdin, answering each with the same line on its stdout; protocol 2 also has
``trace`` (gates per step, for localisation) and ``vjp`` (the ``gradients`` row).

It computes nothing of the LSTM: it only converts Python values to files and back, so the
suite's checks see the command's own results. Every command runs in its own process group,
killed with everything it started when it hangs, crashes or the run ends (see ``_Reaper``).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

PROTOCOL = 2  # the newest protocol this suite speaks
PROTOCOLS = (1, 2)
EXPORT_PROTOCOL = 1  # `lstm-conformance export` writes forward requests, the same in 1 and 2
PERSISTENT_FLAG = "--exec-persistent"
OPTIONAL_OPS = ("trace", "vjp")  # protocol 2, where the capabilities answer lists them in "ops"
TRACED = ("i", "f", "g", "o", "c", "h")
DEFAULT_TIMEOUT_S = 60.0
# Constructor parameters of lstm_ref.LSTM's API, in positional order.
CTOR_PARAMS = (
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "dropout",
    "bidirectional",
    "proj_size",
    "dtype",
    "seed",
)
CTOR_DEFAULTS: dict[str, Any] = {
    "num_layers": 1,
    "bias": True,
    "batch_first": False,
    "dropout": 0.0,
    "bidirectional": False,
    "proj_size": 0,
    "dtype": "float32",
    "seed": None,
}


class ExecCommandFailed(Exception):
    """The command crashed, timed out, or broke the protocol (never mistaken for an error
    the implementation raised on purpose: those come as ``error.json``)."""


# -- writing requests ------------------------------------------------------------------------------


def _json_value(name: str, value: Any) -> Any:
    """A constructor argument as JSON; dtype as its NumPy name. Other non-JSON values are
    refused with TypeError here, as torch refuses every such argument the suite tries."""
    if name == "dtype" and not isinstance(value, str | bool | int | float) and value is not None:
        try:
            return np.dtype(value).name
        except TypeError:
            pass
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise TypeError(
        f"{name}={value!r} ({type(value).__module__}.{type(value).__name__}) cannot be sent "
        f"over the exec protocol (JSON bool, int, float, str or null only)"
    )


def write_npy(path: Path, value: Any) -> None:
    """Little-endian, C-order ``.npy`` (format 1.0 when the header fits), never pickled."""
    a = np.asarray(value)
    if a.dtype.kind not in "biufc":
        raise TypeError(f"{path.name}: arrays of dtype {a.dtype} cannot be sent over the exec protocol")
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    with open(path, "wb") as f:
        np.lib.format.write_array(f, a, allow_pickle=False)


def write_request(
    directory: Path, request: dict[str, Any], arrays: Mapping[str, Any], protocol: int = EXPORT_PROTOCOL
) -> None:
    """``request.json`` (one key per line: ``json.dumps(indent=1)``) plus ``NAME.npy`` per array."""
    for name, value in arrays.items():
        write_npy(directory / f"{name}.npy", value)
    text = json.dumps({"protocol": protocol, **request}, indent=1) + "\n"
    (directory / "request.json").write_text(text)


def forward_request(
    config: Mapping[str, Any],
    weights: Mapping[str, Any],
    input: Any,
    hx: Any,
    dropout_masks: Sequence[Any] | None,
    training: bool,
    op: str = "forward",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request.json's fields, {array name: value}) of one forward call (or a ``trace`` or
    ``vjp`` request, which carry the same fields), in the protocol's layout.

    Shared by the adapter and ``lstm-conformance export`` so both write the same files."""
    arrays: dict[str, Any] = {}
    req: dict[str, Any] = {"op": op, "config": dict(config), "training": bool(training)}
    req["weights"] = {name: f"{name}.npy" for name in weights}
    arrays.update(weights)
    # a PackedSequence (lstm_ref's or torch's): a 4-tuple with .data and .batch_sizes
    packed = hasattr(input, "batch_sizes") and hasattr(input, "data") and isinstance(input, tuple)
    req["packed"] = packed
    if packed:
        arrays["input"] = input.data
        req["input"] = "input.npy"
        for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
            value = getattr(input, field)
            req[field] = None if value is None else f"{field}.npy"
            if value is not None:
                arrays[field] = value
    elif input is None:
        req["input"] = None
    else:
        arrays["input"] = input
        req["input"] = "input.npy"
    # hx as the caller gave it: null, one array ("hx.npy"), or a list with one file (or null)
    # per element -- so a command can raise torch's error for each malformed hx
    if hx is None:
        req["hx"] = None
    elif isinstance(hx, np.ndarray):
        req["hx"] = "hx.npy"
        arrays["hx"] = hx
    else:
        names: list[str | None] = []
        for k, state in enumerate(hx):
            names.append(None if state is None else f"hx_{k}.npy")
            if state is not None:
                arrays[f"hx_{k}"] = state
        req["hx"] = names
    if dropout_masks is None:
        req["dropout_masks"] = None
    else:
        req["dropout_masks"] = [f"mask_{k}.npy" for k in range(len(dropout_masks))]
        arrays.update({f"mask_{k}": m for k, m in enumerate(dropout_masks)})
    return req, arrays


# -- nothing left behind -------------------------------------------------------------------------

_REAPER = r"""
import os, shutil, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, dirs = set(), set()
for line in sys.stdin:
    kind, _, value = line.rstrip("\n").partition(" ")
    if kind == "+pg": groups.add(int(value))
    elif kind == "-pg": groups.discard(int(value))
    elif kind == "+dir": dirs.add(value)
for group in groups:
    try: os.killpg(group, signal.SIGKILL)
    except OSError: pass
for d in dirs: shutil.rmtree(d, ignore_errors=True)
"""


def _memory_tmp() -> str | None:
    """Linux's /dev/shm (a tmpfs) where it is writable and TMPDIR is not set: a request writes and
    reads a handful of small files, and creating a file on a disk filesystem can cost more than
    the command's whole answer (measured in docs/exec-protocol.md)."""
    if os.environ.get("TMPDIR") is None and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return None


class _Reaper:
    """A small companion process that outlives this one: it is told every command's process
    group and the request directories' root, and when this process ends -- however it ends,
    SIGKILL on ``--timeout`` or Ctrl-C included -- its stdin reaches EOF and it kills those
    groups and removes the directories."""

    def __init__(self) -> None:
        self.pipe: IO[str] | None = None
        self.root: Path | None = None

    def tell(self, line: str) -> None:
        if self.pipe is None:
            # holding none of this process's files open (nobody waits on the reaper), and in a
            # session of its own: a worker is killed with its whole process group
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _REAPER],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            self.pipe = proc.stdin
        assert self.pipe is not None
        with contextlib.suppress(OSError, ValueError):
            self.pipe.write(line + "\n")
            self.pipe.flush()

    def request_root(self) -> Path:
        """This process's directory for request directories (removed at exit, or by the reaper)."""
        if self.root is None or not self.root.is_dir():
            self.root = Path(tempfile.mkdtemp(prefix=f"lstm-exec-{os.getpid()}-", dir=_memory_tmp()))
            self.tell(f"+dir {self.root}")
            atexit.register(shutil.rmtree, self.root, True)
        return self.root

    def spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """``argv`` in a new session (its own process group), which the reaper is told of."""
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.tell(f"+pg {proc.pid}")
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> int | None:
        """Kill ``proc``'s process group (whatever it left running), reap it; its exit status."""
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self.tell(f"-pg {proc.pid}")
        return code


REAPER = _Reaper()


# -- running the command ------------------------------------------------------------------------


def _exception(error: Any) -> Exception:
    """error.json -> the builtin exception it names (ExecCommandFailed for anything else)."""
    if not isinstance(error, dict) or not isinstance(error.get("type"), str):
        return ExecCommandFailed(f"error.json is not {{'type': ..., 'message': ...}}: {error!r}")
    cls = getattr(builtins, error["type"], None)
    message = str(error.get("message", ""))
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(message)
    return ExecCommandFailed(f"error.json names {error['type']!r}, not a Python builtin exception: {message}")


def _how(code: int | None) -> str:
    if code is None:
        return "did not exit"
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _tail(stream: IO[bytes]) -> str:
    """The end of a command's stderr (a temporary file), as one line."""
    with contextlib.suppress(OSError):
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - 2000))
        text = stream.read().decode(errors="replace").strip()[-500:]
        return f"; stderr: {text}" if text else ""
    return ""


class _Server:
    """One ``COMMAND --exec-persistent`` process: a request directory per stdin line, the same
    line back on stdout when the answer is written."""

    def __init__(self, argv: list[str], text: str) -> None:
        self.text = text
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the server
        self.proc = REAPER.spawn(
            [*argv, PERSISTENT_FLAG], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr
        )
        self.pending = b""

    def alive(self) -> bool:
        return not _has_exited(self.proc)

    def close(self) -> int | None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        code = REAPER.kill(self.proc)
        self.stderr.close()
        return code

    def request(self, directory: Path, op: str, timeout: float) -> None:
        """Hand over one request directory and wait for its acknowledgement; on a crash, a hang
        or a wrong answer the server is killed (and the next request starts a new one)."""
        line = str(directory).encode() + b"\n"
        self.stderr.seek(0)
        self.stderr.truncate()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: reading the answer finds EOF and names the exit status
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                stderr = _tail(self.stderr)
                self.close()
                raise ExecCommandFailed(
                    f"exec {self.text!r} (persistent): {op} request ran past {timeout:g} s; "
                    f"the command was killed and is restarted for the next request{stderr}"
                )
            chunk = os.read(fd, 65536)
            if not chunk:
                stderr = _tail(self.stderr)
                code = self.close()
                raise ExecCommandFailed(
                    f"exec {self.text!r} (persistent): {op} request failed ({_how(code)}) before "
                    f"acknowledging it; the command is restarted for the next request{stderr}"
                )
            self.pending += chunk
        answer, _, self.pending = self.pending.partition(b"\n")
        if answer != line[:-1]:
            stderr = _tail(self.stderr)
            self.close()
            raise ExecCommandFailed(
                f"exec {self.text!r} (persistent): {op} request answered {answer[:200]!r} on stdout, "
                f"expected the request directory (stdout carries only acknowledgements; print "
                f"anything else to stderr){stderr}"
            )


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``proc`` has exited, without reaping it: until it is reaped its pid, which is its
    process group's id, cannot be reused, so killing the group cannot hit another one."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except (AttributeError, ChildProcessError):
        return proc.poll() is not None


def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``proc`` to exit (not reaping it, see _has_exited): on a
    pidfd where there is one (``Popen.wait`` with a timeout polls, sleeping up to 50 ms at a
    time: more than a whole request)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _empty(directory: Path) -> None:
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


class Command:
    """``COMMAND``: one process per request (``COMMAND REQUEST_DIR``), or one persistent process
    once the command has declared protocol 2 and ``persistent`` (``use_protocol``)."""

    def __init__(self, command: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.text = command
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("exec: empty command")
        self.timeout = timeout
        self.protocol = 1
        self.persistent = False
        self.server: _Server | None = None
        self.directory: Path | None = None

    def use_protocol(self, protocol: int, persistent: bool) -> None:
        self.protocol, self.persistent = protocol, persistent and protocol >= 2
        if self.persistent:
            atexit.register(self.close)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def __call__(
        self, request: dict[str, Any], arrays: Mapping[str, Any], want: Sequence[str] = ()
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Run one request: (response.json or {}, {name: array} for each ``want``ed NAME.npy).
        Raises the exception of error.json, or ExecCommandFailed."""
        op = request.get("op", "?")
        directory = self._empty_directory()
        try:
            write_request(directory, request, arrays, self.protocol)
            stderr = self._serve(directory, op) if self.persistent else self._run_once(directory, op)
            response = self._read_json(directory / "response.json", op)
            names = [*want, *response.get("parameters", [])]
            return response, {name: self._read_npy(directory / f"{name}.npy", op, stderr) for name in names}
        finally:
            _empty(directory)

    def _empty_directory(self) -> Path:
        """The request directory: one per command, emptied for every request (creating and
        removing a directory per request costs more than the request on some filesystems)."""
        if self.directory is None or not self.directory.is_dir():
            self.directory = Path(tempfile.mkdtemp(prefix="request-", dir=REAPER.request_root()))
        _empty(self.directory)
        return self.directory

    def _serve(self, directory: Path, op: str) -> str:
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.server.close()
            try:
                self.server = _Server(self.argv, self.text)
            except OSError as exc:
                raise ExecCommandFailed(f"exec {self.text!r}: cannot run: {exc}") from None
        self.server.request(directory, op, self.timeout)
        self._raise_reported_error(directory, op, 0, "")
        return ""

    def _run_once(self, directory: Path, op: str) -> str:
        with tempfile.TemporaryFile() as err:
            try:
                proc = REAPER.spawn(
                    [*self.argv, str(directory)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            except OSError as exc:
                raise ExecCommandFailed(f"exec {self.text!r}: cannot run: {exc}") from None
            if not _exited(proc, self.timeout):
                REAPER.kill(proc)
                raise ExecCommandFailed(
                    f"exec {self.text!r}: {op} request ran past {self.timeout:g} s"
                ) from None
            code = REAPER.kill(proc)  # anything it left running in its group goes with it
            stderr = _tail(err)
        self._raise_reported_error(directory, op, code or 0, stderr)
        return stderr

    def _raise_reported_error(self, directory: Path, op: str, returncode: int, stderr: str) -> None:
        """The exception of error.json, whatever the exit status; or a failure that names the
        exit status or signal when the command failed without one."""
        error_file = directory / "error.json"
        if error_file.is_file():
            raise _exception(self._read_json(error_file, op))
        if returncode != 0:
            raise ExecCommandFailed(
                f"exec {self.text!r}: {op} request failed ({_how(returncode)}) without error.json{stderr}"
            )

    def _read_json(self, path: Path, op: str) -> dict[str, Any]:
        if not path.is_file():
            return {}
        try:
            value = json.loads(path.read_text())
        except ValueError as exc:
            raise ExecCommandFailed(f"exec {self.text!r}: {op}: unreadable {path.name} ({exc})") from None
        return value if isinstance(value, dict) else {}

    def _read_npy(self, path: Path, op: str, stderr: str) -> np.ndarray:
        if not path.is_file():
            raise ExecCommandFailed(
                f"exec {self.text!r}: {op} request succeeded but wrote no {path.name}{stderr}"
            )
        try:
            array: np.ndarray = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ExecCommandFailed(f"exec {self.text!r}: {op}: unreadable {path.name} ({exc})") from None
        return array


# -- the factory -------------------------------------------------------------------------------------


class ExecLSTM:
    """lstm_ref.LSTM's API (as the suite drives it) over an exec command; see make_exec_factory."""

    command: Command
    conformance_unsupported: dict[str, str] = {}  # noqa: RUF012 -- replaced per factory

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(CTOR_PARAMS):
            raise TypeError(f"LSTM takes at most {len(CTOR_PARAMS)} positional arguments")
        for name, value in zip(CTOR_PARAMS, args, strict=False):
            if name in kwargs:
                raise TypeError(f"LSTM got multiple values for argument {name!r}")
            kwargs[name] = value
        # defaults filled in, unknown keywords passed on: the command decides what to reject
        given = {**CTOR_DEFAULTS, **kwargs}
        self.config = {name: _json_value(name, value) for name, value in given.items()}
        self.training = True
        response, params = self.command({"op": "construct", "config": self.config}, {})
        order = response.get("parameters", [])
        self._params: dict[str, np.ndarray] = {name: params[name] for name in order}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        arrays = {name: np.asarray(value) for name, value in state_dict.items()}
        request = {
            "op": "load_state_dict",
            "config": self.config,
            "weights": {name: f"{name}.npy" for name in arrays},
        }
        response, params = self.command(request, arrays)
        if "parameters" in response:  # the command's own copy (e.g. converted to its dtype)
            self._params = {name: params[name] for name in response["parameters"]}
        else:
            self._params = {name: value.copy() for name, value in arrays.items()}

    def train(self, mode: bool = True) -> ExecLSTM:
        self.training = bool(mode)
        return self

    def eval(self) -> ExecLSTM:
        return self.train(False)

    def __call__(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        return self.forward(input, hx, dropout_masks=dropout_masks)

    def _request(
        self, op: str, input: Any, hx: Any, dropout_masks: Sequence[Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return forward_request(self.config, self._params, input, hx, dropout_masks, self.training, op)

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        request, arrays = self._request("forward", input, hx, dropout_masks)
        packed = bool(request["packed"])
        want = ["output", "h_n", "c_n"]
        if packed:
            want.append("output_batch_sizes")
            want += [f"output_{f}" for f in ("sorted_indices", "unsorted_indices") if request[f]]
        _, out = self.command(request, arrays, want)
        if packed:
            import lstm_ref

            output: Any = lstm_ref.PackedSequence(
                out["output"],
                out["output_batch_sizes"],
                out.get("output_sorted_indices"),
                out.get("output_unsorted_indices"),
            )
        else:
            output = out["output"]
        return output, (out["h_n"], out["c_n"])

    def _directions(self) -> list[tuple[int, int]]:
        layers = int(self.config.get("num_layers") or 1)
        return [(k, d) for k in range(layers) for d in range(2 if self.config.get("bidirectional") else 1)]


class _TraceOp(ExecLSTM):
    """Protocol 2's ``trace``: conformance.api.SupportsTrace over the command."""

    def conformance_trace(self, input: Any, hx: Any = None) -> dict[tuple[int, int], dict[str, np.ndarray]]:
        request, arrays = self._request("trace", input, hx, None)
        pairs = self._directions()
        want = [f"trace_l{k}_d{d}_{name}" for k, d in pairs for name in TRACED]
        _, out = self.command(request, arrays, want)
        return {(k, d): {name: out[f"trace_l{k}_d{d}_{name}"] for name in TRACED} for k, d in pairs}


class _VJPOp(ExecLSTM):
    """Protocol 2's ``vjp``: conformance.api.SupportsVJP over the command."""

    def vjp(
        self,
        input: Any,
        hx: Any,
        grad_output: Any,
        grad_h_n: Any,
        grad_c_n: Any,
        *,
        dropout_masks: Sequence[Any] | None = None,
    ) -> dict[str, np.ndarray]:
        request, arrays = self._request("vjp", input, hx, dropout_masks)
        for name, value in (("grad_output", grad_output), ("grad_h_n", grad_h_n), ("grad_c_n", grad_c_n)):
            request[name] = f"{name}.npy"
            arrays[name] = value
        names = ["input", "h0", "c0", *self._params]
        _, out = self.command(request, arrays, [f"grad_{name}" for name in names])
        return {name: out[f"grad_{name}"] for name in names}


OP_CLASSES: dict[str, type[ExecLSTM]] = {"trace": _TraceOp, "vjp": _VJPOp}


class Capabilities:
    """What the ``capabilities`` request answered."""

    def __init__(self, command: Command, response: dict[str, Any]) -> None:
        text = command.text
        protocol = response.get("protocol")
        if protocol not in PROTOCOLS or type(protocol) is not int:
            raise ExecCommandFailed(
                f"exec {text!r}: capabilities answered protocol {protocol!r}, "
                f"this suite speaks {' and '.join(map(str, PROTOCOLS))}"
            )
        self.protocol: int = protocol
        unsupported = response.get("unsupported", {})
        if not isinstance(unsupported, dict):
            raise ExecCommandFailed(f"exec {text!r}: 'unsupported' must be an object, got {unsupported!r}")
        self.unsupported = {str(k): str(v) for k, v in unsupported.items()}
        v2 = self.protocol >= 2
        self.persistent = v2 and response.get("persistent") is True
        ops = response.get("ops", []) if v2 else []
        if not isinstance(ops, list) or any(op not in OPTIONAL_OPS for op in ops):
            raise ExecCommandFailed(
                f"exec {text!r}: 'ops' must list some of {list(OPTIONAL_OPS)}, got {ops!r}"
            )
        self.ops: list[str] = ops
        self.version = str(response["version"]) if v2 and response.get("version") is not None else ""

    def describe(self) -> str:
        """For the report's header: the declared version and how the command is driven."""
        how = f"exec protocol {self.protocol}" + (", persistent" if self.persistent else "")
        how += "".join(f", {op}" for op in self.ops)
        return f"{self.version} ({how})" if self.version else f"({how})"


def capabilities(command: Command) -> Capabilities:
    """The command's declarations; asked with ``protocol`` 1 (as every version-1 command
    expects) and ``protocols`` naming every version this suite speaks."""
    response, _ = command({"op": "capabilities", "protocols": list(PROTOCOLS)}, {})
    return Capabilities(command, response)


def make_exec_factory(command: str, timeout: float = DEFAULT_TIMEOUT_S) -> type[ExecLSTM]:
    """A factory class for ``--impl exec:COMMAND``; asks the command for its capabilities once.
    A command that cannot answer them is a SystemExit naming the problem (as a bad --impl)."""
    cmd = Command(command, timeout)
    try:
        declared = capabilities(cmd)
    except Exception as exc:
        raise SystemExit(f"--impl exec:{command}: capabilities request failed: {exc}") from exc
    cmd.use_protocol(declared.protocol, declared.persistent)
    name = "Exec_" + "".join(c if c.isalnum() else "_" for c in Path(cmd.argv[0]).name)
    bases = tuple(OP_CLASSES[op] for op in dict.fromkeys(declared.ops)) or (ExecLSTM,)
    attributes = {
        "command": cmd,
        "conformance_unsupported": declared.unsupported,
        "conformance_version": declared.describe(),
    }
    return type(name, bases, attributes)
