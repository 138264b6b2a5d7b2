"""``--impl exec:COMMAND``: an implementation in any language, behind a command.

The adapter speaks protocol 1 of ``docs/exec-protocol.md``: for every request it makes a
temporary directory, writes ``request.json`` and the arrays as ``.npy`` files (little-endian,
C order), runs ``COMMAND REQUEST_DIR`` and reads back ``response.json``, the output ``.npy``
files or ``error.json``. It computes nothing of the LSTM: it only converts Python values to
files and back, so the suite's checks see the command's own results.
"""

from __future__ import annotations

import builtins
import json
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOL = 1
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


def write_request(directory: Path, request: dict[str, Any], arrays: Mapping[str, Any]) -> None:
    """``request.json`` (one key per line: ``json.dumps(indent=1)``) plus ``NAME.npy`` per array."""
    for name, value in arrays.items():
        write_npy(directory / f"{name}.npy", value)
    (directory / "request.json").write_text(json.dumps({"protocol": PROTOCOL, **request}, indent=1) + "\n")


def forward_request(
    config: Mapping[str, Any],
    weights: Mapping[str, Any],
    input: Any,
    hx: Any,
    dropout_masks: Sequence[Any] | None,
    training: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request.json's fields, {array name: value}) of one forward call, in protocol 1's layout.

    Shared by the adapter and ``lstm-conformance export`` so both write the same files."""
    arrays: dict[str, Any] = {}
    req: dict[str, Any] = {"op": "forward", "config": dict(config), "training": bool(training)}
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


class Command:
    """``COMMAND REQUEST_DIR``, one process per request, in a fresh temporary directory."""

    def __init__(self, command: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.text = command
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("exec: empty command")
        self.timeout = timeout

    def __call__(
        self, request: dict[str, Any], arrays: Mapping[str, Any], want: Sequence[str] = ()
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Run one request: (response.json or {}, {name: array} for each ``want``ed NAME.npy).
        Raises the exception of error.json, or ExecCommandFailed."""
        op = request.get("op", "?")
        with tempfile.TemporaryDirectory(prefix=f"lstm-exec-{op}-") as tmp:
            directory = Path(tmp)
            write_request(directory, request, arrays)
            try:
                proc = subprocess.run(
                    [*self.argv, str(directory)], capture_output=True, timeout=self.timeout, check=False
                )
            except FileNotFoundError as exc:
                raise ExecCommandFailed(f"exec {self.text!r}: cannot run: {exc}") from None
            except subprocess.TimeoutExpired:
                raise ExecCommandFailed(
                    f"exec {self.text!r}: {op} request ran past {self.timeout:g} s"
                ) from None
            stderr = proc.stderr.decode(errors="replace").strip()[-500:]
            self._raise_reported_error(directory, op, proc.returncode, stderr)
            response = self._read_json(directory / "response.json", op)
            names = [*want, *response.get("parameters", [])]
            return response, {name: self._read_npy(directory / f"{name}.npy", op, stderr) for name in names}

    def _raise_reported_error(self, directory: Path, op: str, returncode: int, stderr: str) -> None:
        """The exception of error.json, whatever the exit status; or a failure that names the
        exit status or signal when the command failed without one."""
        error_file = directory / "error.json"
        if error_file.is_file():
            raise _exception(self._read_json(error_file, op))
        if returncode != 0:
            how = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
            raise ExecCommandFailed(
                f"exec {self.text!r}: {op} request failed ({how}) without error.json"
                + (f"; stderr: {stderr}" if stderr else "")
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
                f"exec {self.text!r}: {op} request exited 0 but wrote no {path.name}"
                + (f"; stderr: {stderr}" if stderr else "")
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

    def forward(self, input: Any, hx: Any = None, *, dropout_masks: Sequence[Any] | None = None) -> Any:
        request, arrays = forward_request(self.config, self._params, input, hx, dropout_masks, self.training)
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


def capabilities(command: Command) -> dict[str, str]:
    """The command's declarations: ``{"unsupported": {row or alias: reason}}``."""
    response, _ = command({"op": "capabilities"}, {})
    if response.get("protocol") != PROTOCOL:
        raise ExecCommandFailed(
            f"exec {command.text!r}: capabilities answered protocol {response.get('protocol')!r}, "
            f"this suite speaks {PROTOCOL}"
        )
    unsupported = response.get("unsupported", {})
    if not isinstance(unsupported, dict):
        raise ExecCommandFailed(
            f"exec {command.text!r}: 'unsupported' must be an object, got {unsupported!r}"
        )
    return {str(k): str(v) for k, v in unsupported.items()}


def make_exec_factory(command: str, timeout: float = DEFAULT_TIMEOUT_S) -> type[ExecLSTM]:
    """A factory class for ``--impl exec:COMMAND``; asks the command for its capabilities once.
    A command that cannot answer them is a SystemExit naming the problem (as a bad --impl)."""
    cmd = Command(command, timeout)
    try:
        declared = capabilities(cmd)
    except Exception as exc:
        raise SystemExit(f"--impl exec:{command}: capabilities request failed: {exc}") from exc
    name = "Exec_" + "".join(c if c.isalnum() else "_" for c in Path(cmd.argv[0]).name)
    return type(name, (ExecLSTM,), {"command": cmd, "conformance_unsupported": declared})
