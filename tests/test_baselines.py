"""Known-failure baselines (--expect, baseline) and sharded runs (--shard, merge), through the
real CLI as a CI job would drive it: one run per scenario, reports shared by the assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import cli
from conformance.oracles.sources import make_oracles
from conformance.run import expect, shards
from conformance.run.impls import Impl
from conformance.run.runner import Result, jobs_for
from tests.suite_helpers import ROOT, run_cli

WRONG = "tests.broken_impls:WrongErrorType"  # raises ValueError where torch raises RuntimeError
CASES = "errors:input-size-mismatch*"  # the two error cases it gets wrong, and nothing else
FAILING = {"errors:input-size-mismatch", "errors:input-size-mismatch-unbatched"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on the fixtures, in-process mode (what differs here is judged after the run)."""
    return run_cli(*args, "--oracle", "fixtures", "--isolate", "none", "--quiet")


def verdict(out: str) -> str:
    """The summary line's verdict, less the note every --isolate none run carries."""
    return out.strip().splitlines()[-1].rsplit(" -> ", 1)[1].split(" (--isolate none:")[0]


def _table(report: Path) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in json.loads(report.read_text())["table"]}


# -- --expect and baseline ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A failing run's report, and the baseline `lstm-conformance baseline` writes from it."""
    d = tmp_path_factory.mktemp("expect")
    proc = _run("--impl", WRONG, "--case", CASES, "--report", str(d / "r.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    proc = run_cli("baseline", "--report", str(d / "r.json"))
    assert proc.returncode == 0, proc.stderr
    (d / "baseline.toml").write_text(proc.stdout)
    return d / "baseline.toml"


def test_baseline_lists_each_failing_check_with_a_reason(baseline: Path) -> None:
    entries = expect.load(baseline)
    assert {e.case for e in entries} == FAILING
    assert {e.check for e in entries} == {"error_types"}
    assert all(e.reason.startswith("baseline: error case input-size-mismatch") for e in entries)


def test_a_known_failure_is_expected_and_the_run_passes(baseline: Path, tmp_path: Path) -> None:
    proc = _run(
        "--impl", WRONG, "--case", CASES, "--expect", str(baseline), "--report", str(tmp_path / "r.json")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verdict(proc.stdout) == "PASS (2 expected failures)"
    assert ", 0 failed, 0 skipped, 2 expected in " in proc.stdout
    row = _table(tmp_path / "r.json")["error_types"]
    assert (row["status"], row["failed"], row["expected"]) == ("expected", 0, 2)
    assert row["notes"] == ["2 expected failures (--expect)"]
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {r["case"] for r in results if r["status"] == "expected"} == FAILING


def test_a_new_failure_still_fails(baseline: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.json"  # JSON works too; lists only one of the two failures
    one.write_text(json.dumps({"expect": [{"case": "errors:input-size-mismatch", "reason": "known"}]}))
    proc = _run("--impl", WRONG, "--case", CASES, "--expect", str(one))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL error_types [errors:input-size-mismatch-unbatched]" in proc.stdout
    assert verdict(proc.stdout) == "FAIL (1 expected failure)"


def test_a_fixed_bug_makes_its_entry_stale(baseline: Path) -> None:
    proc = _run("--impl", "lstm_ref", "--case", CASES, "--expect", str(baseline), "--strict-expect")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("STALE expectation (case 'errors:input-size-mismatch") == 2
    assert verdict(proc.stdout) == "FAIL (2 stale expectations)"


def test_a_stale_entry_is_reported_without_failing_unless_strict(baseline: Path, capsys: Any) -> None:
    code = cli.main(["--case", CASES, "--expect", str(baseline), "--oracle", "fixtures", "--isolate", "none"])
    out = capsys.readouterr().out
    assert code == 0 and "STALE expectation" in out and verdict(out) == "PASS (2 stale expectations)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[expect]]\ncase = 'L1-*'\n", "every entry needs a reason"),
        ("[[expect]]\nrow = 'packing'\nreason = 'x'\n", "row 'packing' names no row"),
        ("[[expect]]\nreason = 'everything'\n", "give a case, a check or a row"),
        ("[[expect]]\ncases = 'L1-*'\nreason = 'x'\n", "unknown key 'cases'"),
        ("[[expect]\n", "not valid TOML"),
    ],
)
def test_a_bad_baseline_is_a_usage_error(text: str, message: str, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "b.toml"
    path.write_text(text)
    assert cli.main(["--expect", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_expectation_matches_on_every_field_it_gives() -> None:
    e = expect.Expectation("r", case="L2-*", rows=("dropout_*",), impl="keras")
    assert e.matches("L2-uni-f64", "forward", ("whole_sequence", "dropout_replay"))
    assert not e.matches("L1-uni-f64", "forward", ("dropout_replay",))  # case
    assert not e.matches("L2-uni-f64", "forward", ("whole_sequence",))  # row
    assert e.applies_to("keras") and not e.applies_to("flax")
    by_check = expect.Expectation("r", check="stepwise")
    assert by_check.matches("any", "stepwise", ()) and not by_check.matches("any", "forward", ())


def test_baseline_toml_round_trips_any_text() -> None:
    tomllib = pytest.importorskip("tomllib")
    reason = 'quote " backslash \\ newline \n tab \t del \x7f emoji \U0001f600 é'
    entries = [expect.Expectation(reason, case="errors:x[1]", check="forward", rows=("float32",))]
    parsed = tomllib.loads(expect.format_toml(entries, "header\nline two"))["expect"]
    assert expect.from_json(parsed) == entries


# -- --shard and merge -------------------------------------------------------------------------------


def test_the_split_is_deterministic_complete_and_even() -> None:
    impl = Impl("lstm_ref:LSTM", print)
    units = shards.units(jobs_for(impl, make_oracles("both"), full=True), impl)
    assert sum(bool(u.item) for u in units) > 100  # error cases are split too
    parts = shards.split(units, 4)
    assert parts == shards.split(units, 4)
    ids = [u.id for part in parts for u in part]
    assert sorted(ids) == sorted(u.id for u in units)  # every unit exactly once
    loads = [sum(u.cost for u in part) for part in parts]
    assert max(loads) - min(loads) <= max(u.cost for u in units)  # longest-first dealing


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default selection (fixtures) once whole and once in 4 shards."""
    d = tmp_path_factory.mktemp("shards")
    proc = _run("--report", str(d / "whole.json"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    (d / "whole.txt").write_text(proc.stdout)
    for k in range(1, 5):
        proc = _run("--shard", f"{k}/4", "--report", str(d / f"s{k}.json"))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
        assert f"; shard {k}/4 of them here)" in proc.stdout
    return d


def _shard_reports(d: Path) -> list[str]:
    return [str(d / f"s{k}.json") for k in range(1, 5)]


def test_merged_shards_give_the_unsharded_table_and_verdict(sharded: Path) -> None:
    merged = sharded / "merged.json"
    proc = run_cli(
        "merge", *_shard_reports(sharded), "--markdown", str(sharded / "m.md"), "--report", str(merged)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    whole = json.loads((sharded / "whole.json").read_text())
    joined = json.loads(merged.read_text())
    assert joined["table"] == whole["table"] and joined["counts"] == whole["counts"] and joined["passed"]

    def summary(text: str) -> str:  # the summary line less its time
        line = text.strip().splitlines()[-1]
        return line.split(" in ")[0] + " -> " + line.rsplit(" -> ", 1)[1]

    assert summary(proc.stdout) == summary((sharded / "whole.txt").read_text())
    assert verdict(proc.stdout) == "PASS" and "(--isolate none: unprotected" in proc.stdout  # as the shards
    assert "| whole_sequence | pass |" in (sharded / "m.md").read_text()
    ran = [len(json.loads(Path(p).read_text())["results"]) for p in _shard_reports(sharded)]
    assert all(ran) and sum(ran) == len(whole["results"])


def _merge(capsys: Any, *paths: str | Path) -> tuple[int, str]:
    code = shards.main_merge([str(p) for p in paths])
    return code, capsys.readouterr().err.strip()


def test_merge_refuses_what_is_not_every_shard_of_one_run(sharded: Path, capsys: Any) -> None:
    s1, s2, s3, s4 = _shard_reports(sharded)
    assert _merge(capsys, s1, s2, s3) == (2, "lstm-conformance merge: missing shard(s) 4/4")
    code, err = _merge(capsys, s1, s2, s3, s3, s4)
    assert code == 2 and err.endswith("shard 3/4 given twice: " + f"{s3} and {s3}")
    code, err = _merge(capsys, s1, s2, s3, sharded / "whole.json")
    assert code == 2 and err.endswith("whole.json: not a shard's report (run with --shard K/N)")
    for key, value in (("impl", "other:LSTM"), ("oracles", {"fixtures": "on", "torch": "on"})):
        other = json.loads(Path(s4).read_text())
        other[key] = value
        (sharded / "other.json").write_text(json.dumps(other))
        code, err = _merge(capsys, s1, s2, s3, sharded / "other.json")
        assert code == 2 and err.endswith(f"different {key}"), err
    crashed = {k: v for k, v in json.loads(Path(s4).read_text()).items() if k != "shard"}
    crashed["results"] = [{"status": "fail", "message": "ImportError: no mypkg"}]  # no split was made
    (sharded / "other.json").write_text(json.dumps(crashed))
    code, err = _merge(capsys, s1, s2, s3, sharded / "other.json")
    assert code == 2 and err.endswith("other.json: the shard did not run: ImportError: no mypkg")
    other = json.loads(Path(s4).read_text())
    other["shard"]["selection"] = "0" * 64  # e.g. run with another --case, or without torch
    (sharded / "other.json").write_text(json.dumps(other))
    code, err = _merge(capsys, s1, s2, s3, sharded / "other.json")
    assert code == 2 and err.endswith("different selections")


def test_stale_entries_are_judged_when_the_shards_are_merged(baseline: Path, tmp_path: Path) -> None:
    """A shard cannot call an entry stale (its failure may be in another shard); merge can."""
    known = [
        *expect.load(baseline),
        expect.Expectation("fixed since", "errors:input-size-mismatch", "errors"),
    ]
    path = tmp_path / "known.toml"
    path.write_text(expect.format_toml(known, "two failures and one stale entry"))
    reports = []
    for k in (1, 2):
        reports.append(str(tmp_path / f"s{k}.json"))
        proc = _run("--impl", WRONG, "--case", CASES, "--expect", str(path), "--strict-expect", "--shard", f"{k}/2",
                    "--report", reports[-1])  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "STALE" not in proc.stdout and "judged when the shards are merged" in proc.stdout
    proc = run_cli("merge", *reports, "--report", str(tmp_path / "merged.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "STALE expectation (case 'errors:input-size-mismatch', check 'errors'): fixed since" in proc.stdout
    assert verdict(proc.stdout) == "FAIL (2 expected failures, 1 stale expectation)"
    assert json.loads((tmp_path / "merged.json").read_text())["stale"] == [known[-1].to_json()]


def test_the_matrix_findings_are_expectations(tmp_path: Path) -> None:
    from conformance.tools import matrix

    (tmp_path / "docs" / "repro").mkdir(parents=True)
    (tmp_path / "docs" / "repro" / "k.py").write_text("")
    page = (
        "### keras: computes float64 in float32\n\nRows: `float64`, `stepwise`\nReproduction: [r](repro/k.py)\n"
        "### keras: shaped the adapter\n\nRows: none (`proj_size` is declared)\nReproduction: [r](repro/k.py)\n"
    )
    (finding,) = matrix.findings(page, tmp_path)
    assert finding == expect.Expectation(
        "computes float64 in float32", rows=("float64", "stepwise"), impl="keras", finding="docs/repro/k.py"
    )
    failing = matrix.Column("keras", cells={"float64": {"status": "FAIL", "detail": "forward [L1-x]: off"}})
    assert matrix.unexplained_failures([failing], page, tmp_path) == []
    fixed = matrix.Column("keras", cells={"float64": {"status": "pass", "detail": ""}})
    assert matrix.stale_findings([fixed], page, tmp_path) == [
        "keras: computes float64 in float32 (its rows pass now)"
    ]
    assert matrix.stale_findings([failing], page, tmp_path) == []


def test_a_result_about_a_whole_suite_check_is_kept_once() -> None:
    skipped = Result("errors", "errors:*", "torch", ("errors",), "skip", message="torch is not importable")
    reports = [
        {
            "shard": {"index": k},
            "results": [vars(skipped), vars(Result("forward", f"c{k}", "fixtures", (), "pass"))],
        }
        for k in (2, 1)
    ]
    merged = shards.merged_results(reports)
    assert [r.case for r in merged] == ["errors:*", "c1", "c2"]


@pytest.mark.parametrize("bad", ["0/4", "5/4", "2", "a/b"])
def test_a_bad_shard_is_a_usage_error(bad: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--shard", bad, "--list"])
    assert exit_.value.code == 2 and "--shard: expected K/N" in capsys.readouterr().err


def test_list_takes_no_shard(capsys: Any) -> None:  # it would list the whole selection as the shard's
    assert cli.main(["--list", "--shard", "1/2"]) == 2
    assert "--list takes no --shard" in capsys.readouterr().err


# -- the pytest plugin -------------------------------------------------------------------------------


def test_pytest_plugin_reports_expected_failures_as_xfail(baseline: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--pyargs", "conformance.test_conformance", "-p", "no:cacheprovider",
            "-q", "-rx", "--lstm-impl", WRONG, "--lstm-oracle", "fixtures", "--lstm-expect", str(baseline),
            "-k", "error_types",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert (
        "1 xfailed" in proc.stdout
        and "XFAIL" in proc.stdout
        and "expected (baseline: error case" in proc.stdout
    )
