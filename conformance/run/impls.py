"""Which implementation is under test: ``--impl MODULE:ATTR`` (or ``torch``, ``lstm_ref``)
resolved to its factory, its declarations and its LSTMCell (docs/plugin.md)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapters import ADAPTERS
from ..checks.rows import ALIASES, ROW_NAMES, expand_declarations
from ..contract.tolerances import Tolerance, declared_tolerances

DEFAULT_IMPL = "lstm_ref:LSTM"
TORCH_ADAPTER = "conformance.run.torch_adapter:TorchLSTM"
IMPL_ALIASES = {"torch": TORCH_ADAPTER, "lstm_ref": DEFAULT_IMPL}


@dataclass
class Impl:
    spec: str
    factory: Callable[..., Any]
    unsupported: dict[str, str] = field(default_factory=dict)  # row -> reason
    cell: Callable[..., Any] | None = None  # an LSTMCell with lstm_ref.LSTMCell's API, if any
    tolerances: dict[str, Tolerance] = field(default_factory=dict)  # dtype -> declared tolerance
    rerun_extra: str = ""  # options every rerun line carries (--fixtures, --full, --timeout, ...)


def import_object(spec: str, what: str) -> Any:
    """``MODULE:ATTR`` -> the object; SystemExit with a one-line reason if it cannot be had."""
    module_name, attr = spec.split(":", 1)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m`: modules in the current directory import
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"{what} {spec!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"{what} {spec!r}: {module_name!r} has no attribute {attr!r}") from None
    return obj


def _cell_for(spec: str, factory: Any) -> Any:
    """The implementation's LSTMCell: its ``conformance_cell`` attribute (a class or a
    MODULE:ATTR string); lstm_ref.LSTMCell for lstm_ref.LSTM and its subclasses; torch's for torch."""
    cell = getattr(factory, "conformance_cell", None)
    if isinstance(cell, str):
        return import_object(cell, "conformance_cell")
    if cell is not None:
        return cell
    if spec == "torch":
        from .torch_adapter import TorchLSTMCell

        return TorchLSTMCell
    import lstm_ref

    if isinstance(factory, type) and issubclass(factory, lstm_ref.LSTM):
        return lstm_ref.LSTMCell
    return None


def spec_problem(spec: str) -> str | None:
    """What is wrong with an ``--impl`` value's syntax (checked before anything runs), or None."""
    target = IMPL_ALIASES.get(spec) or ADAPTERS.get(spec) or spec
    names = ", ".join(sorted([*IMPL_ALIASES, *ADAPTERS]))
    expected = f"expected MODULE:ATTR (e.g. lstm_ref:LSTM), exec:COMMAND, or one of: {names}"
    if target.startswith("exec:"):
        return (
            None if target[len("exec:") :].strip() else f"--impl {spec!r}: exec: needs a command; {expected}"
        )
    module, _, attr = target.partition(":")
    if not all(part.isidentifier() for part in [*module.split("."), *attr.split(".")]):
        return f"--impl {spec!r}: {expected}"
    return None


def load_impl(spec: str) -> Impl:
    """``MODULE:ATTR`` (or an alias: ``torch``, ``lstm_ref``) -> the factory and its declarations."""
    target = IMPL_ALIASES.get(spec) or ADAPTERS.get(spec) or spec
    problem = spec_problem(spec)
    if problem:
        raise SystemExit(problem)
    if spec.startswith("exec:"):  # a command speaking docs/exec-protocol.md
        from .exec_impl import make_exec_factory

        factory: Any = make_exec_factory(spec[len("exec:") :])
    else:
        factory = import_object(target, "--impl")
    if target == TORCH_ADAPTER:
        from ..oracles.torch_oracle import torch_available

        reason = torch_available()
        if reason:
            raise SystemExit(f"--impl torch: {reason}")
    try:
        unsupported = expand_declarations(dict(getattr(factory, "conformance_unsupported", {}) or {}))
    except KeyError as exc:
        raise SystemExit(
            f"{spec}: conformance_unsupported names unknown feature {exc.args[0]!r}; "
            f"known: {', '.join([*ROW_NAMES, *ALIASES])}"
        ) from None
    try:
        tolerances = declared_tolerances(getattr(factory, "conformance_tolerance", None))
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"{spec}: {exc}") from None
    return Impl(spec, factory, unsupported, _cell_for(spec, factory), tolerances)
