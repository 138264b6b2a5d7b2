"""``lstm-conformance torch-diff``: what changed in ``torch.nn.LSTM`` between the torch that made
the fixtures and another one (live torch, or a second fixtures directory), each change counted
once and grouped by its cause (docs/torch-versions.md):

- exception types: per error case (its float32 copy with it), and per forward case that raises;
- the dropout random stream: the same seed draws other keep-masks, detected at the ``mask_<k>``
  arrays; every other array of those cases then differs too, as a consequence, and is counted
  under this one change;
- values beyond the drift tolerance: per case, with the drift of each array;
- values within the drift tolerance (another build's or CPU's rounding): one line, not a change.

``regen --check`` prints the same groups (:func:`change_lines`).  The advice depends on the
direction: a newer torch may be adopted (``regen``, or a second fixtures set); an older one must
not overwrite the fixtures, and is checked against with ``--oracle torch`` instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .fixtures import FIXTURES_DIR, REGEN_COMMAND, FixtureError, FixtureStore, read_npz_bytes

Arrays = dict[str, np.ndarray]

# Below this, torch is no oracle (the oldest torch docs/torch-versions.md was made with; the test
# extra asks for torch>=2.6 too).
MIN_TORCH = (2, 6)


def release(version: str) -> tuple[int, ...]:
    """``"2.10.0+cu128"`` -> ``(2, 10, 0)`` (the local build and any pre-release tag ignored)."""
    found = re.match(r"(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in found.group(1).split(".")) if found else ()


def unsupported_torch(version: str) -> str | None:
    """Why this torch cannot be an oracle (older than the supported range), or None."""
    if release(version) and release(version)[:2] < MIN_TORCH:
        low = ".".join(map(str, MIN_TORCH))
        return (
            f"torch {version} is older than the oldest supported torch ({low}; docs/torch-versions.md): "
            f"install torch>={low}, or check against the fixtures only (--oracle fixtures)"
        )
    return None


@dataclass
class Side:
    """One oracle's answers for every case: a fixtures directory, or torch run now."""

    label: str  # "fixtures (torch 2.13.0+cpu)" or "live torch 2.10.0+cu128"
    torch: str  # the full torch.__version__
    errors: dict[str, str]  # error case id -> exception type name ("none": accepted)
    cases: dict[str, Any]  # case id -> manifest entry
    load: Callable[[str], Arrays]  # case id -> its arrays


def fixtures_label(torch: str) -> str:
    return f"fixtures (torch {torch})"


def live_label(torch: str) -> str:
    return f"live torch {torch}"


def fixtures_side(store: FixtureStore) -> Side:
    """The committed fixtures (their files are read as they are; ``regen --check`` and the run
    verify hashes separately)."""
    torch = store.provenance().get("torch", "unknown")

    def load(case_id: str) -> Arrays:
        path = store.directory / store.manifest["cases"][case_id]["file"]
        try:
            return read_npz_bytes(path.read_bytes(), str(path))
        except OSError as exc:
            raise FixtureError(f"{path}: unreadable ({exc.strerror})") from exc

    return Side(fixtures_label(torch), torch, store.error_types(), store.manifest["cases"], load)


def built_side(manifest: dict[str, Any], files: dict[str, bytes]) -> Side:
    """What :func:`conformance.oracles.regen.build` made in memory (by live torch)."""
    torch = str(manifest["versions"]["torch"])
    cases = manifest["cases"]
    return Side(
        live_label(torch),
        torch,
        dict(manifest["errors"]),
        cases,
        lambda case_id: read_npz_bytes(files[cases[case_id]["file"]], cases[case_id]["file"]),
    )


def live_side() -> Side:
    from ..checks.errors import torch_error_types
    from ..contract.cases import all_cases
    from .regen import build

    return built_side(*build(all_cases(), torch_error_types()))


# -- the changes ----------------------------------------------------------------------------------


def said(label: str, error: str) -> str:
    """``fixtures (torch 2.13.0+cpu) raise ValueError`` / ``live torch 2.10.0 accepts``."""
    plural = label.startswith("fixtures")
    if error == "none":
        return f"{label} {'accept' if plural else 'accepts'}"
    if error == "values":
        return f"{label} {'return' if plural else 'returns'} values"
    return f"{label} {'raise' if plural else 'raises'} {error}"


def disagreement(old: str, old_error: str, new: str, new_error: str) -> str:
    """One oracle's answer against the other's, both named with their versions."""
    return f"{said(old, old_error)}; {said(new, new_error)}"


@dataclass
class ExceptionChange:
    """One error case (and its dtype copies), or forward cases with the same change."""

    name: str  # the error case's base id, or the forward cases' ids
    ids: list[str]  # every id it covers (errors:<id> for error cases)
    old: str
    new: str
    forward: bool = False  # a forward case (its "error" array), not an error case


@dataclass
class ArrayDrift:
    case: str
    array: str
    line: str  # "max abs drift 1.0e-06 (beyond drift tolerance ...)", or "values changed", ...
    beyond: bool


@dataclass
class Diff:
    old: Side
    new: Side
    exceptions: list[ExceptionChange] = field(default_factory=list)
    mask_cases: list[str] = field(default_factory=list)  # other keep-masks from the same seed
    knock_on: list[ArrayDrift] = field(default_factory=list)  # other arrays of those cases
    beyond: dict[str, list[ArrayDrift]] = field(default_factory=dict)  # case -> its drift
    within: dict[str, list[ArrayDrift]] = field(default_factory=dict)  # rounding only
    not_compared: list[str] = field(default_factory=list)  # on one side only, or redefined

    @property
    def changes(self) -> int:
        """Behaviour changes, each counted once (the dropout stream is one, whatever it touches)."""
        return len(self.exceptions) + bool(self.mask_cases) + len(self.beyond)


def _base_id(error_id: str) -> str:
    return error_id.removesuffix("-f32")


def _exception_changes(old: Side, new: Side) -> list[ExceptionChange]:
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for error_id in sorted(set(old.errors) & set(new.errors)):
        if old.errors[error_id] != new.errors[error_id]:
            key = (_base_id(error_id), old.errors[error_id], new.errors[error_id])
            grouped.setdefault(key, []).append(f"errors:{error_id}")
    return [ExceptionChange(name, ids, a, b) for (name, a, b), ids in grouped.items()]


def _error_of(arrays: Arrays) -> str:
    return str(arrays["error"]) if "error" in arrays else "values"


@dataclass(frozen=True)
class CaseChange:
    """How one case's arrays differ between two sides: ``exception`` (what each raises, or
    ``values``), ``masks`` (other dropout keep-masks; ``drifts`` holds the knock-on), ``beyond``
    or ``within`` the drift tolerance."""

    kind: str
    drifts: tuple[ArrayDrift, ...] = ()
    old: str = ""
    new: str = ""


def case_change(case_id: str, before: Arrays, after: Arrays) -> CaseChange | None:
    """The change of one case between two sides' arrays, or None when they are equal."""
    from .regen import _array_drift

    if _error_of(before) != _error_of(after):
        return CaseChange("exception", old=_error_of(before), new=_error_of(after))
    drifts = tuple(
        ArrayDrift(case_id, line.split(": ", 1)[0].split("/", 1)[1], line.split(": ", 1)[1], beyond)
        for line, beyond in _array_drift(case_id, before, after)
    )
    if not drifts:
        return None
    if any(d.array.startswith("mask_") for d in drifts):
        return CaseChange("masks", tuple(d for d in drifts if not d.array.startswith("mask_")))
    return CaseChange("beyond" if any(d.beyond for d in drifts) else "within", drifts)


def compare(old: Side, new: Side) -> Diff:
    """Every difference between two sides, grouped by cause (see the module's docstring)."""
    diff = Diff(old, new, exceptions=_exception_changes(old, new))
    forward: dict[tuple[str, str], list[str]] = {}
    for case_id in sorted(set(old.cases) | set(new.cases)):
        a, b = old.cases.get(case_id), new.cases.get(case_id)
        if a is None or b is None or json.dumps(a["case"]) != json.dumps(b["case"]):
            diff.not_compared.append(case_id)
            continue
        if a["sha256"] == b["sha256"]:
            continue
        change = case_change(case_id, old.load(case_id), new.load(case_id))
        if change is None:
            continue
        if change.kind == "exception":
            forward.setdefault((change.old, change.new), []).append(case_id)
        elif change.kind == "masks":
            diff.mask_cases.append(case_id)
            diff.knock_on += change.drifts
        elif change.kind == "beyond":
            diff.beyond[case_id] = list(change.drifts)
        else:
            diff.within[case_id] = list(change.drifts)
    diff.exceptions += [
        ExceptionChange(", ".join(ids), ids, a, b, forward=True) for (a, b), ids in forward.items()
    ]
    return diff


# -- direction and advice -------------------------------------------------------------------------


def direction(old: str, new: str) -> str:
    """``newer``, ``older`` or ``same`` (one release, maybe another build): ``new`` against ``old``."""
    a, b = release(old), release(new)
    return "newer" if b > a else "older" if b < a else "same"


def advice(diff: Diff, fixtures_dir: Path, live: bool = True) -> list[str]:
    """What to do about the changes, in the direction of the change."""
    old, new = diff.old.torch, diff.new.torch
    which = "live torch" if live else "torch"
    under = "" if live else f" under torch {new}"
    keep = f"{fixtures_dir}-torch-{release(new) and '.'.join(map(str, release(new)))}"
    both = (
        f"or keep both sets: `{REGEN_COMMAND} --fixtures {keep}` writes torch {new}'s beside them, and "
        f"`lstm-conformance --fixtures {keep}` checks against it"
    )
    way = direction(old, new)
    if way == "newer":
        return [
            f"{which} {new} is newer than the torch that made the fixtures ({old}): to adopt its "
            f"behaviour, `{REGEN_COMMAND}`{under} rewrites {fixtures_dir} from it, {both}; to keep checking "
            f"against torch {old}'s behaviour, run `lstm-conformance --oracle fixtures`",
        ]
    if way == "older":
        return [
            f"{which} {new} is older than the torch that made the fixtures ({old}): do not run "
            f"`{REGEN_COMMAND}` into {fixtures_dir} (it would overwrite torch {old}'s behaviour with "
            f"torch {new}'s); to check against torch {new}'s behaviour, run `lstm-conformance "
            f"--oracle torch` (live torch only), {both}",
        ]
    return [
        f"{which} {new} is the same torch release as the one that made the fixtures ({old}), another "
        f"build: `{REGEN_COMMAND}`{under} rewrites {fixtures_dir} from this build, {both}",
    ]


# -- report ---------------------------------------------------------------------------------------


def _names(ids: list[str], at_most: int = 4) -> str:
    return ", ".join(ids[:at_most]) + (f", ... ({len(ids)} in all)" if len(ids) > at_most else "")


def _copies(change: ExceptionChange) -> str:
    if change.forward:
        return ""
    dtypes = ["float32" if i.endswith("-f32") else "float64" for i in change.ids]
    return f" ({' and '.join(dtypes)})" if len(dtypes) > 1 else ""


def change_lines(diff: Diff, exact: bool = False) -> list[str]:
    """The changes, grouped by cause and each counted once; with ``exact`` the rounding within
    the drift tolerance is listed per array too."""
    old, new = diff.old, diff.new
    lines = [f"{diff.changes} behaviour change(s) between {old.label} and {new.label}, each counted once:"]
    if diff.exceptions:
        lines.append(f"  exception types ({len(diff.exceptions)}):")
        for change in diff.exceptions:
            what = "forward case(s) " if change.forward else "error case "
            lines.append(
                f"    {what}{change.name}{_copies(change)}: {disagreement(old.label, change.old, new.label, change.new)}"
            )
    if diff.mask_cases:
        knock = len({d.case for d in diff.knock_on})
        lines.append(
            "  dropout random stream (1): the same seed draws other dropout keep-masks in "
            f"{len(diff.mask_cases)} case(s) ({_names(diff.mask_cases)}); as a consequence "
            f"{len(diff.knock_on)} other array(s) of {knock} of them differ (outputs, states and "
            "gradients computed with the other masks), counted under this change"
        )
    if diff.beyond:
        lines.append(f"  values beyond the drift tolerance ({len(diff.beyond)} case(s)):")
        for drifts in diff.beyond.values():
            lines += [f"DRIFT {d.case}/{d.array}: {d.line}" for d in drifts]
    if diff.within:
        lines.append(
            f"  values within the drift tolerance: {len(diff.within)} case(s) ({_names(list(diff.within))}), "
            "the rounding of another build or CPU, not a change"
        )
        if exact:
            lines += [f"DRIFT {d.case}/{d.array}: {d.line}" for ds in diff.within.values() for d in ds]
    if diff.not_compared:
        lines.append(
            f"  not compared: {len(diff.not_compared)} case(s) defined differently or on one side only "
            f"({_names(diff.not_compared)}): a change of the suite, not of torch"
        )
    if not diff.changes:
        lines[0] = f"no behaviour change between {old.label} and {new.label}"
    return lines


def report(diff: Diff, fixtures_dir: Path, live: bool = True) -> list[str]:
    way = direction(diff.old.torch, diff.new.torch)
    head = f"torch-diff: {diff.old.label} in {fixtures_dir} against {diff.new.label}"
    if way != "same":
        head += f" ({way})"
    lines = [head, *change_lines(diff)]
    if diff.changes:
        lines += ["advice: " + line for line in advice(diff, fixtures_dir, live)]
    return lines


def as_json(diff: Diff) -> dict[str, Any]:
    return {
        "fixtures_torch": diff.old.torch,
        "torch": diff.new.torch,
        "direction": direction(diff.old.torch, diff.new.torch),
        "changes": diff.changes,
        "exceptions": [
            {"name": c.name, "ids": c.ids, "old": c.old, "new": c.new, "forward": c.forward}
            for c in diff.exceptions
        ],
        "dropout_stream": {"cases": diff.mask_cases, "knock_on_arrays": len(diff.knock_on)},
        "beyond": {k: [d.array for d in v] for k, v in diff.beyond.items()},
        "within": sorted(diff.within),
        "not_compared": diff.not_compared,
    }


def forward_errors(side: Side) -> dict[str, str]:
    """Forward cases that raise on this side: case id -> "raises <type>"."""
    return {
        case_id: "raises " + _error_of(side.load(case_id))
        for case_id, entry in side.cases.items()
        if "error" in entry["arrays"]
    }


# -- command line ---------------------------------------------------------------------------------


def main_torch_diff(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """0: no change; 1: changes (listed); 2: cannot run (one line on stderr)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    p = argparse.ArgumentParser(
        prog="lstm-conformance torch-diff",
        description="What changed in torch.nn.LSTM between the torch that made the fixtures and live "
        "torch (or the torch of a second fixtures directory, --against): exception types, the dropout "
        "random stream, values; each change once, with advice for the direction of the change. "
        "Exit 0 when nothing changed, 1 when something did, 2 when it cannot run.",
    )
    p.add_argument(
        "--fixtures", type=Path, default=FIXTURES_DIR, help="fixtures directory (default: %(default)s)"
    )
    p.add_argument(
        "--against", type=Path, metavar="DIR", help="compare with another fixtures directory, not live torch"
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the changes as JSON")
    args = p.parse_args(argv)
    try:
        old = fixtures_side(_sound(args.fixtures))
        if args.against is not None:
            new = fixtures_side(_sound(args.against))
        else:
            reason = _live_problem()
            if reason:
                print(f"lstm-conformance torch-diff: {reason}", file=err)
                return 2
            new = live_side()
        diff = compare(old, new)
    except FixtureError as exc:
        print(f"lstm-conformance torch-diff: {str(exc).splitlines()[0]}", file=err)
        return 2
    for line in report(diff, args.fixtures, live=args.against is None):
        print(line, file=out)
    if args.json:
        args.json.write_text(json.dumps(as_json(diff), indent=1) + "\n")
    return 1 if diff.changes else 0


def _sound(directory: Path) -> FixtureStore:
    """A store whose directory and manifest are usable (FixtureError otherwise)."""
    store = FixtureStore(directory)
    whole = [p for p in store.audit() if p.whole_directory]
    if whole:
        raise FixtureError(str(whole[0]))
    return store


def _live_problem() -> str | None:
    from .torch_oracle import torch_available

    return torch_available()
