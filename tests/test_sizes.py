"""Sizes, coverage after declarations, and explore: the real CLI against LSTMs broken only at
some sizes (tests/size_broken_impls.py), against lstm_ref, and against a declaring port."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.checks.rows import expand_declarations
from conformance.contract.cases import all_cases
from conformance.contract.selection import FIXTURED_DECLARATIONS, default_cases, fixture_ids, uncovered
from tests.size_broken_impls import SIZE_BROKEN
from tests.suite_helpers import ROOT, needs_torch, run_cli, run_in_process


def _table(report: Path) -> dict[str, dict[str, object]]:
    return {row["feature"]: row for row in json.loads(report.read_text())["table"]}


@pytest.mark.parametrize("name", sorted(SIZE_BROKEN))
def test_size_cases_fail_each_size_bug(name: str) -> None:
    """The default run's size cases (fixtures alone: no torch needed) fail every kind (in this
    process; the CLI's exit and report for one of them below)."""
    table, _ = run_in_process(f"tests.size_broken_impls:{name}", pattern="size-*")
    for row in SIZE_BROKEN[name]:
        assert table[row].status == "FAIL", (row, table[row])


def test_a_size_bug_fails_the_cli_run(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    spec = "tests.size_broken_impls:HiddenTailOff"
    proc = run_cli(
        "--impl", spec, "--case", "size-*", "--oracle", "fixtures", "--report", str(out), "--quiet"
    )
    assert proc.returncode == 1 and "-> FAIL" in proc.stdout, proc.stdout + proc.stderr
    assert _table(out)["sizes"]["status"] == "FAIL"


def test_lstm_ref_passes_the_size_cases(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = run_cli("--case", "size-*", "--report", str(report), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sizes = _table(report)["sizes"]
    assert sizes["status"] == "pass" and sizes["failed"] == 0 and int(str(sizes["passed"])) >= 28
    # the fixtures' torch is live torch here: the oracles agree on what a size fixture holds
    assert json.loads(report.read_text()).get("oracle_disagreements", []) == [], proc.stdout[-3000:]


def test_size_cases_in_the_default_run_and_full() -> None:
    default = {c.id for c in default_cases()}
    sized = {c.id for c in all_cases(full=True) if "sizes" in c.tags}
    assert len(sized) == 14 and sized <= default
    assert {c.dtype for c in all_cases() if "sizes" in c.tags} == {"float32", "float64"}


# -- coverage after declarations ------------------------------------------------------------------


@pytest.mark.parametrize(
    "declared",
    [
        {},
        {"complex": 1},
        {"complex": 1, "float64": 1, "proj_size": 1, "dropout": 1},
        {"packed": 1, "bidirectional": 1},
        {"float32": 1, "no_bias": 1, "multi_layer": 1},
        {"unbatched": 1, "hx_given": 1, "batch_first": 1, "complex64": 1},
    ],
)
def test_the_default_run_covers_what_is_supported(declared: dict[str, int]) -> None:
    """Every supported pair and form x direction x dtype triple is in a supported case; with
    torch for any declarations, without it for those the fixtures hold."""
    unsupported = expand_declarations(declared)
    assert uncovered(unsupported, default_cases(unsupported, with_torch=True)) == 0
    if not declared or tuple(unsupported) in FIXTURED_DECLARATIONS:
        without_torch = default_cases(unsupported, with_torch=False)
        assert uncovered(unsupported, without_torch) == 0
        assert {c.id for c in without_torch} <= fixture_ids()


@pytest.mark.parametrize("oracle", ["both", "fixtures"])
def test_list_shows_the_selection_for_a_declaring_implementation(oracle: str) -> None:
    """complex + float64 + proj_size + dropout declared: float32 packed bidirectional cases and
    bias=False cases are still selected (with or without live torch)."""
    proc = run_cli("--impl", "tests.size_broken_impls:FusedFloat32", "--list", "--oracle", oracle)
    assert proc.returncode == 0, proc.stderr
    ids = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith(("L1-", "L2-", "L3-"))]
    runnable = [i for i in ids if i.endswith("-f32-eval") or ("-f32-train" in i and i.startswith("L1-"))]
    assert any(re.search(r"-bi-.*packed_sorted-.*-f32-", i) for i in runnable), ids
    assert any(re.search(r"-bi-.*packed_unsorted-.*-f32-", i) for i in runnable), ids
    assert any("-nobias-" in i and "-p3-" not in i for i in runnable), ids
    assert "declares unsupported: complex64, complex128, float64, proj_size" in proc.stdout
    assert "form x direction x dtype triple is covered" in proc.stdout


def test_pytest_selects_what_the_cli_lists_for_a_declaring_implementation() -> None:
    """Under pytest the selection is made for the implementation's declarations too: the same
    cases as the CLI's --list (the plugin asks its worker what is declared before collecting)."""
    impl, oracle = "tests.size_broken_impls:FusedFloat32", "fixtures"
    listed = run_cli("--impl", impl, "--list", "--oracle", oracle).stdout.splitlines()
    cases = {line.split()[0] for line in listed if re.match(r"[A-Za-z]\S*-\S+ ", line)}
    cases = {c for c in cases if not c.startswith("errors:")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance", "--collect-only",
         "-q", "--lstm-impl", impl, "--lstm-oracle", oracle],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    collected = set(re.findall(r"test_conformance\[([^\]]+)\]", proc.stdout))
    assert cases and cases <= collected, sorted(cases - collected)
    assert any(re.search(r"-bi-.*packed_sorted-.*-f32-", c) for c in collected)


# -- explore -------------------------------------------------------------------------------------


@needs_torch
def test_explore_shrinks_the_hidden_tail_to_33_and_the_replay_fails(tmp_path: Path) -> None:
    spec, report = tmp_path / "case.json", tmp_path / "explore.json"
    proc = run_cli(
        "explore",
        "--impl",
        "tests.size_broken_impls:HiddenTailOff",
        "--seed",
        "0",
        "--examples",
        "200",
        "--spec-out",
        str(spec),
        "--report",
        str(report),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "seed 0" in proc.stdout
    case = json.loads(spec.read_text())["case"]
    assert case["hidden_size"] == 33, case  # the first size past the last full block of 32
    assert (case["num_layers"], case["steps"], case["batch"], case["input_size"]) == (1, 1, 1, 1)
    data = json.loads(report.read_text())
    assert data["found"] and data["case"] == case and data["seed"] == 0
    replay = next(
        line.split("replay: ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("replay: ")
    )
    argv = shlex.split(replay)
    assert argv[:1] == ["lstm-conformance"]
    again = run_cli(*argv[1:], "--quiet")
    assert again.returncode == 1 and "-> FAIL" in again.stdout, again.stdout + again.stderr
    assert "unit 32" in again.stdout


def test_explore_finds_nothing_in_lstm_ref_without_torch(tmp_path: Path) -> None:
    """Without torch the exact answer is lstm_ref in 64 bits, and the output says so."""
    report = tmp_path / "explore.json"
    proc = run_cli(
        "explore",
        "--seed",
        "3",
        "--examples",
        "8",
        "--max-size",
        "40",
        "--report",
        str(report),
        "--spec-out",
        str(tmp_path / "case.json"),
        block_torch=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lstm_ref in 64 bits as the exact answer (torch is not installed)" in proc.stdout
    assert "no failure in 8 examples" in proc.stdout
    data = json.loads(report.read_text())
    assert data["oracle"] == "lstm_ref-f64" and data["examples"] == 8 and not data["found"]


def test_explore_respects_declarations() -> None:
    from hypothesis import given, settings

    from conformance.tools.explore import case_strategy

    unsupported = expand_declarations({"complex": 1, "float64": 1, "proj_size": 1, "dropout": 1, "packed": 1})

    @settings(max_examples=40, database=None, derandomize=True, deadline=None)
    @given(case_strategy(unsupported, 300))
    def drawn(case: object) -> None:
        assert not set(case.features()) & set(unsupported)  # type: ignore[attr-defined]

    drawn()


def test_case_spec_errors_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"case": {"hidden_sise": 3}}')
    proc = run_cli("--case-spec", str(bad))
    assert proc.returncode == 2 and "unknown field(s) hidden_sise" in proc.stderr


def test_fixtures_stay_within_their_budget() -> None:
    """docs/fixtures.md's budget: each size case's file under 70 KB, fixtures/cases under 2.6 MB."""
    files = {p.name: p.stat().st_size for p in (ROOT / "fixtures" / "cases").glob("*.npz")}
    sized = {name: n for name, n in files.items() if name.startswith("size-")}
    assert len(sized) == 14 and max(sized.values()) < 70_000, sized
    assert sum(files.values()) < 2_600_000


def test_the_table_says_when_declarations_removed_a_rows_last_case() -> None:
    from conformance.run.impls import Impl
    from conformance.run.report import table
    from conformance.run.runner import Result

    impl = Impl("x:Y", print, {"multi_layer": "single layer only"})
    skipped = Result(
        "forward", "L2-case", "fixtures", ("whole_sequence", "multi_layer", "dropout_eval"), "skip"
    )
    passed = Result("forward", "L1-case", "fixtures", ("whole_sequence",), "pass")
    rows = {row.feature: row for row in table([skipped, passed], impl)}
    assert rows["dropout_eval"].status == "skipped"
    assert "declaring multi_layer removed this row's last case" in rows["dropout_eval"].notes
    assert "some cases need multi_layer (declared unsupported)" in rows["whole_sequence"].notes
