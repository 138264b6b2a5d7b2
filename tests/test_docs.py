"""The documentation stays true: generated blocks are current, the README is a short front
door, and every relative link in README.md and docs/*.md points to a file that exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.suite_helpers import ROOT, needs_torch

README_MAX_LINES = 150
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@needs_torch
def test_generated_blocks_are_current() -> None:
    """Counts, row lists, tolerances and sample output match a real run of the CLI. That run is
    also the project's test that lstm_ref passes its default run, every row, with both oracles:
    docgen fails otherwise."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.tools.docgen", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        "the docs have drifted from the code; run `python -m conformance.tools.docgen` and review the diff\n"
        + proc.stdout
        + proc.stderr[-3000:]
    )


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move reference material to docs/"


def test_readme_quickstart_has_two_commands() -> None:
    """What .ci/run reads: exactly two command lines between the quickstart markers."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- quickstart:begin -->", 1)[1].split("<!-- quickstart:end -->", 1)[0]
    commands = [line for line in block.splitlines() if re.match(r"(python|pip|lstm-conformance)", line)]
    assert len(commands) == 2, commands


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links to missing files: {broken}"


def _error_tables() -> list[tuple[str, str, list[str]]]:
    """(row text, the type the row says torch raises, its error case ids) for every row of the
    error tables in docs/semantics.md (sections 7 and 8: the rows whose last column names cases)."""
    rows = []
    for line in (ROOT / "docs" / "semantics.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"(`[a-z0-9_-]+`(, )?)+", cells[2]):
            continue
        said = "none" if cells[1] == "accepted" else cells[1].strip("`")
        rows.append((line, said, re.findall(r"`([a-z0-9_-]+)`", cells[2])))
    return rows


def test_semantics_error_tables_agree_with_torch() -> None:
    """Every row of semantics.md's error tables says what torch raised when it made the fixtures
    (both dtypes' cases), and every error case of the suite has its row."""
    import json

    torch_said = json.loads((ROOT / "fixtures" / "manifest.json").read_text())["errors"]
    rows = _error_tables()
    assert len(rows) > 20, "the error tables of docs/semantics.md were not found"
    wrong = [
        f"{case}: the doc says {said}, torch raised {torch_said.get(variant)} ({variant})"
        for line, said, cases in rows
        for case in cases
        for variant in (case, case + "-f32")
        if variant in torch_said and torch_said[variant] != said
    ]
    listed = {case for _, _, cases in rows for case in cases}
    unknown = sorted(listed - set(torch_said))
    missing = sorted({c for c in torch_said if not c.endswith("-f32")} - listed)
    assert not wrong, "docs/semantics.md disagrees with torch:\n" + "\n".join(wrong)
    assert not unknown, f"docs/semantics.md names error cases the fixtures do not have: {unknown}"
    assert not missing, f"error cases with no row in docs/semantics.md's tables: {missing}"
