"""Another torch than the fixtures': `torch-diff` and `regen --check` list each change once,
grouped by cause, with advice for the direction of the change; a run flags, not fails, an
implementation on cases where the two oracles disagree, naming both with their versions.

The other torch is simulated by fixture sets edited as it would have made them
(tests/other_torch.py): other exception types, other dropout masks, drifted values."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import cli
from conformance.oracles import fixtures, regen
from conformance.oracles.disagreements import Witness, name_oracle, reconcile
from conformance.oracles.torch_diff import CaseChange, direction, release, unsupported_torch
from conformance.run.runner import Result
from tests.other_torch import other_masks, other_torch, raises, shifted
from tests.suite_helpers import needs_torch

REPO = fixtures.FIXTURES_DIR
CTOR = ("ctor-input_size-0", "ctor-bias-int", "ctor-batch_first-int", "ctor-input_size-np-int64")
COMPLEX_DROPOUT = (
    "L2-uni-bf-p3-batched-nohx-c128-train",
    "L3-uni-unbatched-nohx-c128-train",
    "dropout-complex-raises",
)
MASKED = ("dropout-replay-f32-bf", "dropout-replay-packed-bi")


def one_ulp(name: str) -> Any:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = np.nextafter(arrays[name], np.asarray(np.inf, arrays[name].dtype))

    return edit


@pytest.fixture(scope="module")
def older(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures as torch 2.10.0 would have made them: the four constructor checks absent
    (float64 and float32 copies), complex dropout raising RuntimeError, other masks in two
    cases, one value beyond the drift tolerance and one within it."""
    return other_torch(
        tmp_path_factory.mktemp("older") / "fixtures",
        "2.10.0+cu128",
        errors={f"{c}{s}": "none" for c in CTOR for s in ("", "-f32")},
        edits={
            **{c: raises("RuntimeError") for c in COMPLEX_DROPOUT},
            **dict.fromkeys(MASKED, other_masks),
            "probe-gate_i": shifted("h_n", 1e-3),
            "L1-uni-batched-nohx-f32-eval": one_ulp("h_n"),
        },
    )


def torch_diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["torch-diff", *args])
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, captured.out


def test_torch_diff_counts_each_change_once_grouped_by_cause(
    older: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = torch_diff(capsys, "--fixtures", str(REPO), "--against", str(older))
    assert code == 1, out
    # 4 error cases + complex dropout + the dropout stream + one value beyond the tolerance
    assert (
        "7 behaviour change(s) between fixtures (torch 2.13.0+cpu) and fixtures (torch 2.10.0+cu128)" in out
    )
    for case in CTOR:  # each error case once, both dtype copies on its line, types by name
        lines = [line for line in out.splitlines() if f"error case {case} " in line]
        assert len(lines) == 1 and "(float64 and float32)" in lines[0], out
        assert lines[0].endswith("; fixtures (torch 2.10.0+cu128) accept")
    complex_lines = [line for line in out.splitlines() if "dropout-complex-raises" in line]
    assert len(complex_lines) == 1 and all(c in complex_lines[0] for c in COMPLEX_DROPOUT)
    assert complex_lines[0].endswith(
        "fixtures (torch 2.13.0+cpu) raise NotImplementedError; fixtures (torch 2.10.0+cu128) raise RuntimeError"
    )
    stream = [line for line in out.splitlines() if "dropout random stream (1)" in line]
    assert len(stream) == 1 and "in 2 case(s)" in stream[0] and "as a consequence" in stream[0]
    drift = [line for line in out.splitlines() if line.startswith("DRIFT ")]
    assert [d.split(":")[0] for d in drift] == ["DRIFT probe-gate_i/h_n"]  # not the masks' knock-on
    within = [line for line in out.splitlines() if "values within the drift tolerance" in line]
    assert len(within) == 1 and "L1-uni-batched-nohx-f32-eval" in within[0]
    assert "<U" not in out  # exception names, never NumPy string dtypes


def test_torch_diff_advice_follows_the_direction(older: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, down = torch_diff(capsys, "--fixtures", str(REPO), "--against", str(older))
    advice = [line for line in down.splitlines() if line.startswith("advice: ")]
    assert (
        len(advice) == 1 and "torch 2.10.0+cu128 is older than the torch that made the fixtures" in advice[0]
    )
    assert (
        "do not run `lstm-conformance regen`" in advice[0]
        and "`lstm-conformance --oracle torch`" in advice[0]
    )
    assert "rewrites" not in advice[0]
    _, up = torch_diff(capsys, "--fixtures", str(older), "--against", str(REPO))
    advice = [line for line in up.splitlines() if line.startswith("advice: ")]
    assert len(advice) == 1 and "torch 2.13.0+cpu is newer than the torch that made the fixtures" in advice[0]
    assert f"`lstm-conformance regen` under torch 2.13.0+cpu rewrites {older} from it" in advice[0]
    assert "keep both sets" in advice[0] and "--oracle fixtures" in advice[0]


def test_torch_diff_of_one_set_against_itself_says_no_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = torch_diff(capsys, "--against", str(REPO), "--json", str(tmp_path / "d.json"))
    assert code == 0 and "no behaviour change between" in out and "advice" not in out
    assert json.loads((tmp_path / "d.json").read_text())["changes"] == 0


def test_torch_diff_cannot_run_on_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["torch-diff", "--against", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "fixtures directory does not exist" in err


@pytest.mark.parametrize(
    ("old", "new", "way"),
    [("2.13.0+cpu", "2.6.0+cu124", "older"), ("2.9.1", "2.10.0", "newer"), ("2.13.0+cpu", "2.13.0", "same")],
)
def test_direction_compares_releases_not_strings(old: str, new: str, way: str) -> None:
    assert direction(old, new) == way


def test_torch_older_than_the_supported_range_is_refused_with_the_reason() -> None:
    assert release("2.5.1+cu121") == (2, 5, 1)
    assert "older than the oldest supported torch (2.6" in str(unsupported_torch("2.5.1+cu121"))
    assert unsupported_torch("2.6.0+cu124") is None and unsupported_torch("3.0.0") is None


# -- a run: flagged, not failed --------------------------------------------------------------------


def witness() -> Witness:
    w = Witness(labels={"fixtures": "fixtures (torch 2.13.0+cpu)", "torch": "live torch 2.10.0+cu128"})
    w.saw_error_types({"ctor-bias-int": "TypeError"}, {"ctor-bias-int": "none"})
    w.changes["c"] = CaseChange("exception", old="NotImplementedError", new="RuntimeError")
    return w


def result(check: str, case: str, oracle: str, status: str, message: str = "") -> Result:
    return Result(check, case, oracle, (check,), status, message=message)


def test_a_failure_message_names_its_oracle_with_its_version() -> None:
    message = "error case x: raised nothing; torch raises ValueError at construction"
    assert name_oracle(message, "fixtures (torch 2.13.0+cpu)").endswith(
        "; fixtures (torch 2.13.0+cpu) raise ValueError at construction"
    )
    assert name_oracle(
        "error case x: raised TypeError; torch accepts it", "live torch 2.10.0+cu128"
    ).endswith("; live torch 2.10.0+cu128 accepts it")


def test_agreeing_with_either_oracle_is_flagged_and_with_neither_fails() -> None:
    agrees = [
        result("errors", "errors:ctor-bias-int", "fixtures", "pass"),
        result(
            "errors",
            "errors:ctor-bias-int",
            "torch",
            "fail",
            "raised TypeError at construction; torch accepts it",
        ),
    ]
    neither = [
        result("forward", "c", "fixtures", "fail", "raised ValueError: x; torch raises NotImplementedError"),
        result("forward", "c", "torch", "fail", "raised ValueError: x; torch raises RuntimeError"),
    ]
    lines = reconcile(agrees + neither, witness(), "mine")
    assert [r.status for r in agrees] == ["pass", "pass"]
    assert agrees[1].message.startswith(
        "flagged, not failed: the oracles disagree (fixtures (torch 2.13.0+cpu) "
    )
    assert [r.status for r in neither] == ["fail", "fail"]
    assert neither[1].message.endswith("; live torch 2.10.0+cu128 raises RuntimeError")
    assert lines == [
        "errors:ctor-bias-int: fixtures (torch 2.13.0+cpu) raise TypeError; live torch 2.10.0+cu128 accepts; "
        "mine agrees with fixtures (torch 2.13.0+cpu) (flagged, not failed)",
        "c: fixtures (torch 2.13.0+cpu) raise NotImplementedError; live torch 2.10.0+cu128 raises RuntimeError; "
        "mine agrees with neither oracle (failed)",
    ]


def test_a_random_case_is_flagged_by_the_same_change_on_the_fixtures_cases() -> None:
    w = witness()
    w.saw("torch", "random-4", {"error": np.array("RuntimeError")})  # no fixture: live torch alone
    r = result(
        "forward", "random-4", "torch", "fail", "raised NotImplementedError: no; torch raises RuntimeError"
    )
    lines = reconcile([r], w, "mine")
    assert r.status == "pass" and r.message.startswith("flagged, not failed")
    assert lines[-1].startswith("random-4 (live torch only): live torch 2.10.0+cu128 raises RuntimeError; ")
    assert lines[-1].endswith("mine raises NotImplementedError (flagged, not failed)")


@needs_torch
def test_lstm_ref_is_never_failed_for_a_disagreement(tmp_path: Path) -> None:
    """The real CLI, once, with fixtures as a newer torch would make them: other exception types
    (an error case, a forward case) and other values (beyond the drift tolerance)."""
    from conformance.run.provenance import live_torch

    fx = other_torch(
        tmp_path / "fixtures",
        "2.99.0+cpu",
        errors={"ctor-bias-int": "none", "ctor-input_size-0": "none"},
        edits={"dropout-complex-raises": raises("RuntimeError"), "probe-bias_ih_only": shifted("h_n", 1e-3)},
    )
    report = tmp_path / "r.json"
    args = [
        "--fixtures",
        str(fx),
        "--case",
        "[dpe]*-[bci]*",
        "--isolate",
        "none",
        "--quiet",
        "--report",
        str(report),
    ]
    assert cli.main(args) == 0
    data = json.loads(report.read_text())
    live = f"live torch {live_torch()}"
    assert data["passed"] and data["counts"]["fail"] == 0
    assert data["provenance"]["torch_live"] == live_torch() and "+" in live_torch()  # the full version
    said = {line.split(": ")[0]: line for line in data["oracle_disagreements"]}
    assert sorted(said) == [
        "dropout-complex-raises",
        "errors:ctor-bias-int",
        "errors:ctor-input_size-0",
        "probe-bias_ih_only",
    ]
    assert said["errors:ctor-input_size-0"] == (
        f"errors:ctor-input_size-0: fixtures (torch 2.99.0+cpu) accept; {live} raises ValueError; "
        f"lstm_ref:LSTM agrees with {live} (flagged, not failed)"
    )
    assert said["dropout-complex-raises"].startswith(
        f"dropout-complex-raises: fixtures (torch 2.99.0+cpu) raise RuntimeError; {live} raises NotImplementedError"
    )
    assert "compute other values (h_n beyond the drift tolerance)" in said["probe-bias_ih_only"]
    flagged = [r for r in data["results"] if r["message"].startswith("flagged, not failed")]
    assert {r["case"] for r in flagged} == set(said) and all(r["oracle"] == "fixtures" for r in flagged)
    rows = {row["feature"]: row for row in data["table"]}
    assert rows["errors"]["notes"][0] == "2 case(s) flagged, not failed: the oracles disagree"
    # run in two shards and merged, the same disagreements, each case's line once
    shards = [tmp_path / f"s{k}.json" for k in (1, 2)]
    for k, path in enumerate(shards, 1):
        assert cli.main([*args[:-1], str(path), "--shard", f"{k}/2"]) == 0
    merged = tmp_path / "merged.json"
    assert cli.main(["merge", *map(str, shards), "--report", str(merged)]) == 0
    joined = json.loads(merged.read_text())
    assert sorted(joined["oracle_disagreements"]) == sorted(data["oracle_disagreements"])
    assert joined["counts"] == data["counts"]
    # the pytest path judges cases the same way, error items too (one test per oracle: a failing
    # item is also run against the other oracle, where the disagreement shows)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs", "conformance",
         "--lstm-fixtures", str(fx), "-k", "dropout-complex-raises or probe-bias_ih_only or errors"],
        cwd=REPO.parent, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    # three cases, errors[fixtures] and errors[torch]
    assert re.search(r"\b5 passed", proc.stdout), proc.stdout[-2000:]


@needs_torch
def test_regen_check_groups_the_changes_and_never_advises_overwriting_newer_fixtures(
    older: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The committed fixtures from a newer torch (2.99) than live torch: `regen --check` names the
    stale files, then the changes grouped as torch-diff groups them, and advises against `regen`.
    (The regeneration is served from the repository's fixtures: only the report is under test.)"""
    newer = other_torch(
        tmp_path / "fixtures",
        "2.99.0",
        errors={f"{c}{s}": "none" for c in CTOR for s in ("", "-f32")},
        edits={**{c: raises("RuntimeError") for c in COMPLEX_DROPOUT}, **dict.fromkeys(MASKED, other_masks)},
    )
    manifest = json.loads((REPO / fixtures.MANIFEST).read_text())
    files = {entry["file"]: (REPO / entry["file"]).read_bytes() for entry in manifest["cases"].values()}
    files[fixtures.MANIFEST] = (REPO / fixtures.MANIFEST).read_bytes()
    monkeypatch.setattr(regen, "build", lambda cases, errors: (json.loads(json.dumps(manifest)), files))
    monkeypatch.setattr(regen, "versions", lambda: {**manifest["versions"], "torch": "2.13.0+cpu"})
    code = cli.main(["regen", "--check", "--fixtures", str(newer)])
    out = capsys.readouterr().out
    assert code == 1
    stale = [line for line in out.splitlines() if line.startswith("STALE ")]
    assert len(stale) == 1 + len(COMPLEX_DROPOUT) + len(MASKED)  # the manifest (error types) and the files
    assert "4 behaviour change(s)" not in out and "6 behaviour change(s)" in out  # 4 + complex + stream
    assert not [
        line for line in out.splitlines() if line.startswith("DRIFT ")
    ]  # the masks' knock-on is grouped
    assert (
        "<U" not in out
        and "error case ctor-bias-int (float64 and float32): fixtures (torch 2.99.0) accept" in out
    )
    assert "do not run `lstm-conformance regen`" in out
    assert out.splitlines()[-1].endswith(
        "do not `lstm-conformance regen` with this older torch (see the advice above)"
    )


@needs_torch
def test_a_torch_below_the_supported_range_is_no_oracle(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from conformance.oracles.torch_oracle import torch_available

    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    assert "torch 2.5.1+cpu is older than the oldest supported torch (2.6" in str(torch_available())
    assert cli.main(["torch-diff"]) == 2
    assert "older than the oldest supported torch" in capsys.readouterr().err


def test_the_torch_versions_page_is_what_its_json_says_with_a_reproduction_per_change() -> None:
    from conformance.tools import torch_versions

    columns = json.loads(torch_versions.DATA.read_text())
    assert len(columns) >= 4
    block, missing = torch_versions.render(list(columns.values()))
    page = torch_versions.PAGE.read_text()
    assert f"{torch_versions.BEGIN}\n{block}\n{torch_versions.END}" in page
    assert missing == []
    for _, _, repro in torch_versions.rows(list(columns.values())):
        assert (torch_versions.PAGE.parent / "repro" / repro).is_file()
