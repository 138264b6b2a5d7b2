"""docs/torch-versions.md: nn.LSTM's behaviour across torch versions, one column per version.

``python -m conformance.tools.torch_versions --column`` (what ``nox -s torch_versions`` runs once per
torch version, in a venv with that torch) compares live torch with the fixtures
(``torch-diff``), keeps the result as that version's column in docs/torch-versions.json, and
rewrites the page's generated block from every column kept.  A row is a behaviour that differs
between the versions; each names its standalone reproduction (docs/repro/, torch only), and the
command exits 1 when a row has none.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ..oracles.fixtures import FixtureStore
from ..oracles.torch_diff import Diff, compare, fixtures_side, forward_errors, live_side, release

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "torch-versions.md"
DATA = ROOT / "docs" / "torch-versions.json"
BEGIN, END = "<!-- generated:torch-versions -->", "<!-- /generated:torch-versions -->"

# The standalone reproduction of each behaviour that changes between versions (docs/repro/).
CTOR = "torch_lstm_ctor_checks.py"
REPROS = {
    "errors:ctor-input_size-0": CTOR,
    "errors:ctor-bias-int": CTOR,
    "errors:ctor-batch_first-int": CTOR,
    "errors:ctor-input_size-np-int64": CTOR,
    "complex-dropout": "torch_lstm_complex_dropout.py",
    "dropout-stream": "torch_lstm_dropout_stream.py",
}
# what each error case passes to nn.LSTM (on top of input_size=3, hidden_size=4)
WHAT = {
    "ctor-input_size-0": "`input_size=0`",
    "ctor-bias-int": "`bias=1`",
    "ctor-batch_first-int": "`batch_first=1`",
    "ctor-input_size-np-int64": "`input_size=np.int64(3)`",
}


def column(diff: Diff) -> dict[str, Any]:
    """One torch version's behaviour: its exception types, the exceptions of forward cases, a
    fingerprint of its dropout masks, and how its values compare with the fixtures'."""
    masks = hashlib.sha256()
    for case_id in sorted(diff.new.cases):
        if any(name.startswith("mask_") for name in diff.new.cases[case_id]["arrays"]):
            arrays = diff.new.load(case_id)
            for name in sorted(k for k in arrays if k.startswith("mask_")):
                masks.update(arrays[name].tobytes())
    return {
        "torch": diff.new.torch,
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "errors": {k: v for k, v in diff.new.errors.items() if not k.endswith("-f32")},
        "errors_f32_same": all(
            diff.new.errors.get(k + "-f32", v) == v
            for k, v in diff.new.errors.items()
            if not k.endswith("-f32")
        ),
        "forward_errors": forward_errors(diff.new),
        "masks": masks.hexdigest()[:12],
        "vs_fixtures": {
            "fixtures_torch": diff.old.torch,
            "changes": diff.changes,
            "beyond": sorted(diff.beyond),
            "within": len(diff.within),
            "cases": len(diff.new.cases),
        },
    }


def _cell(value: str) -> str:
    return "accepts" if value == "none" else f"raises {value}"


def rows(columns: list[dict[str, Any]]) -> list[tuple[str, list[str], str]]:
    """(behaviour, one cell per column, reproduction) for each behaviour that differs."""
    out: list[tuple[str, list[str], str]] = []
    ids = sorted({k for c in columns for k in c["errors"]})
    for error_id in ids:
        cells = [_cell(c["errors"].get(error_id, "-")) for c in columns]
        if len(set(cells)) > 1:
            what = WHAT.get(error_id, f"error case `{error_id}`")
            out.append((f"`nn.LSTM({what[1:-1]})`", cells, REPROS.get(f"errors:{error_id}", "")))
    forward = sorted({k for c in columns for k in c["forward_errors"]})
    cells = [" / ".join(sorted({c["forward_errors"].get(k, "returns") for k in forward})) for c in columns]
    if forward and len(set(cells)) > 1:
        label = f"complex nn.LSTM, dropout between layers, training mode ({len(forward)} cases)"
        out.append((label, cells, REPROS["complex-dropout"]))
    streams: dict[str, str] = {}
    cells = [streams.setdefault(c["masks"], "ABCDEFGH"[len(streams)]) for c in columns]
    if len(set(cells)) > 1:
        cells = [f"stream {s} (`{c['masks'][:8]}`)" for s, c in zip(cells, columns, strict=True)]
        out.append(("dropout keep-masks drawn from the same seed", cells, REPROS["dropout-stream"]))
    return out


def _values(c: dict[str, Any]) -> str:
    v = c["vs_fixtures"]
    if v["beyond"]:
        return f"{len(v['beyond'])} case(s) beyond the drift tolerance"
    if v["within"]:
        return f"equal within the drift tolerance ({v['within']} of {v['cases']} cases not byte-identical)"
    return "byte-identical"


def render(columns: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The generated block, and the behaviours that change without a reproduction."""
    columns = sorted(columns, key=lambda c: release(c["torch"]))
    head = "| behaviour | " + " | ".join(c["torch"] for c in columns) + " | reproduction |"
    lines = [
        "Made by `nox -s torch_versions` (each column: that torch in its own venv, `python -m "
        "conformance.tools.torch_versions --column`, compared with the fixtures' torch "
        f"{columns[0]['vs_fixtures']['fixtures_torch'] if columns else '-'}); dates: "
        + "; ".join(f"{c['torch']} {c['date']}" for c in columns)
        + ".",
        "",
        head,
        "|---" * (len(columns) + 2) + "|",
    ]
    missing = []
    changing = rows(columns)
    for behaviour, cells, repro in changing:
        link = f"[{repro}](repro/{repro})" if repro else "**none**"
        if not repro:
            missing.append(behaviour)
        lines.append(f"| {behaviour} | " + " | ".join(cells) + f" | {link} |")
    n_errors = len({k for c in columns for k in c["errors"]})
    n_changed = sum(1 for b, _, _ in changing if b.startswith("`nn.LSTM("))
    same = "same in every version" + (
        "" if all(c["errors_f32_same"] for c in columns) else " (float32 copies differ somewhere)"
    )
    lines.append(
        f"| the other {n_errors - n_changed} error cases' exception types | "
        + " | ".join(same for _ in columns)
        + " | |"
    )
    lines.append(
        "| values against the fixtures' (drift tolerance of `regen --check`; cases with other masks aside) | "
        + " | ".join(_values(c) for c in columns)
        + " | |"
    )
    lines.append(
        "| `lstm-conformance torch-diff` (changes against the fixtures) | "
        + " | ".join(str(c["vs_fixtures"]["changes"]) for c in columns)
        + " | |"
    )
    return "\n".join(lines), missing


def write(columns: dict[str, dict[str, Any]], page: Path = PAGE, data: Path = DATA) -> list[str]:
    data.write_text(json.dumps(columns, indent=1, sort_keys=True) + "\n")
    block, missing = render(list(columns.values()))
    text = page.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    page.write_text(text[:start] + "\n" + block + "\n" + text[end:])
    return missing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.tools.torch_versions", description=__doc__)
    p.add_argument("--column", action="store_true", help="add (or replace) live torch's column first")
    args = p.parse_args(argv)
    columns: dict[str, dict[str, Any]] = json.loads(DATA.read_text()) if DATA.exists() else {}
    if args.column:
        from ..oracles.torch_oracle import torch_available

        reason = torch_available()
        if reason:
            print(f"torch_versions: {reason}", file=sys.stderr)
            return 2
        diff = compare(fixtures_side(FixtureStore()), live_side())
        columns[diff.new.torch] = column(diff)
        print(f"torch {diff.new.torch}: {diff.changes} change(s) against the fixtures")
    missing = write(columns)
    print(f"wrote {PAGE} ({len(columns)} torch versions: {', '.join(sorted(columns, key=release))})")
    for behaviour in missing:
        print(f"no reproduction in docs/repro/ for: {behaviour}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
