"""`lstm-conformance matrix` and the committed docs/compatibility.{md,json}.

The page is only as good as its findings: every FAIL cell must be explained by a finding with a
reproduction script that exists, and the generated table must be what its JSON says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.adapters import unavailable
from conformance.tools import matrix
from tests.suite_helpers import ROOT, needs_torch, run_cli

PAGE = ROOT / "docs" / "compatibility.md"


def committed_columns() -> tuple[list[matrix.Column], dict[str, str]]:
    payload = json.loads(PAGE.with_suffix(".json").read_text())
    columns = [matrix.Column(**c) for c in payload.pop("columns")]
    return columns, payload


def test_every_fail_on_the_committed_page_has_a_finding_with_a_reproduction() -> None:
    columns, _ = committed_columns()
    assert matrix.unexplained_failures(columns, PAGE.read_text()) == []


def test_the_committed_table_is_what_its_json_says() -> None:
    columns, meta = committed_columns()
    block = matrix.BLOCK.search(PAGE.read_text())
    assert block is not None
    assert block.group(2) == matrix.render(columns, meta)


def test_every_reproduction_script_is_cited_by_a_finding() -> None:
    # torch's own changes between versions are cited by docs/torch-versions.md
    page = PAGE.read_text() + (ROOT / "docs" / "torch-versions.md").read_text()
    for script in (ROOT / "docs" / "repro").glob("*.py"):
        assert f"](repro/{script.name})" in page, f"{script.name} is cited by no finding"


def test_a_fail_needs_a_finding_naming_its_row_and_an_existing_script(tmp_path: Path) -> None:
    column = matrix.Column("keras", cells={"float64": {"status": "FAIL", "detail": "forward: off"}})
    (tmp_path / "docs" / "repro").mkdir(parents=True)
    finding = "### keras: computes float64 in float32\n\nRows: `float64`\nReproduction: [r](repro/k.py)\n"
    assert matrix.unexplained_failures([column], finding, tmp_path) == ["keras · float64"]  # no script
    (tmp_path / "docs" / "repro" / "k.py").write_text("")
    assert matrix.unexplained_failures([column], finding, tmp_path) == []
    other_row = finding.replace("`float64`", "`float32`")
    assert matrix.unexplained_failures([column], other_row, tmp_path) == ["keras · float64"]


@needs_torch
def test_cells_of_a_broken_implementation_carry_the_first_message(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = run_cli(
        "--impl", "tests.broken_impls:WrongGateOrder", "--case", "L1-uni-batched-nohx-f64-eval",
        "--report", str(report), "--quiet", "--jobs", "1", "--oracle", "fixtures",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = matrix.cells_from_report(json.loads(report.read_text()))
    assert cells["whole_sequence"]["status"] == "FAIL"
    assert cells["whole_sequence"]["detail"].startswith("forward [L1-uni-batched-nohx-f64-eval]")
    assert cells["float64"]["status"] == "FAIL"


def test_a_row_subset_is_judged_by_a_second_run_with_its_cases_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as torch-compile's compiled backward: declared in the column's run, judged in the second
    name = "tests.broken_gradient_impls:C0GradDroppedBehindSwitch"
    subset = matrix.RowSubset("gradients", "L2-*", (("BACKWARD_SWITCH", "1"),), "the backward on L2-* only")
    monkeypatch.setitem(matrix.ROW_SUBSETS, name, subset)
    monkeypatch.setattr(matrix, "_why_not", lambda _: "")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the runs' directory is tmp_path
    real_run, calls = matrix._run, []

    def narrowed(name: str, args: list[str], *rest: Any) -> Any:  # the column's run on one case
        calls.append(args)
        one_case = [] if "--case" in args else ["--case", "L1-uni-batched-nohx-f64-eval"]
        return real_run(name, [*args, *one_case, "--oracle", "fixtures"], *rest)  # torch: not needed

    monkeypatch.setattr(matrix, "_run", narrowed)
    column = matrix.run_one(name, 1, 300, tmp_path)
    assert calls[1][-2:] == ["--case", "L2-*"]
    assert column.cells is not None and column.verdict == "FAIL"
    cell = column.cells["gradients"]
    assert cell["status"] == "FAIL", cell
    assert cell["detail"].startswith("gradients [L2-") and cell["detail"].endswith(
        "(the backward on L2-* only)"
    )
    assert "gradient of 'c0' diverges" in cell["detail"]
    assert column.cells["whole_sequence"]["status"] == "pass"


@needs_torch
def test_matrix_command_writes_the_page_and_names_what_it_could_not_run(tmp_path: Path) -> None:
    if unavailable("torch-cuda") is None:
        pytest.skip("this machine has CUDA: torch-cuda would run")
    page = tmp_path / "docs" / "compatibility.md"
    page.parent.mkdir()
    page.write_text("intro\n<!-- generated:matrix -->\nold\n<!-- /generated:matrix -->\n## Findings\n")
    proc = run_cli("matrix", "--impls", "lstm_ref,torch-cuda", "--page", str(page), "--jobs", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("## Findings\n") and "old" not in text
    assert "| `whole_sequence` | pass |" in text and "| `gradients` | pass |" in text
    assert "Not run here: torch-cuda (no CUDA device here" in text
    payload = json.loads(page.with_suffix(".json").read_text())
    lstm_ref, cuda = payload["columns"]
    assert lstm_ref["verdict"] == "PASS" and lstm_ref["cells"]["errors"]["status"] == "pass"
    assert cuda["cells"] is None and "CUDA" in cuda["not_run"]


@needs_torch
def test_a_partial_run_keeps_the_other_columns_of_the_page(tmp_path: Path) -> None:
    if unavailable("torch-cuda") is None:
        pytest.skip("this machine has CUDA: torch-cuda would run")
    page = tmp_path / "docs" / "compatibility.md"
    page.parent.mkdir()
    page.write_text("<!-- generated:matrix -->\n<!-- /generated:matrix -->\n")
    keras = {"status": "FAIL", "detail": "forward: off"}
    earlier = matrix.Column("keras", "keras 3", "FAIL", 300.0, cells={"float64": keras}, date="2026-01-02")
    page.with_suffix(".json").write_text(json.dumps({"columns": [vars(earlier)]}))
    proc = run_cli("matrix", "--impls", "torch-cuda", "--page", str(page))
    # keras' FAIL has no finding on this page: exit 1, and the column is still there
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL without a finding on the page: keras · float64" in proc.stderr
    names = [c["name"] for c in json.loads(page.with_suffix(".json").read_text())["columns"]]
    assert names == ["torch-cuda", "keras"]  # in the matrix's column order
    text = page.read_text()
    assert "on 2026-01-02:" in text and "| `float64` | **FAIL [" in text
