"""The generated blocks of README.md and docs/*.md, made from a real run of the CLI.

    python -m conformance.tools.docgen           rewrite the generated blocks that are stale
    python -m conformance.tools.docgen --check   list the stale blocks and exit 1 (nothing written)

A generated block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``.
Its content comes from running ``lstm-conformance`` through its public entry,
``conformance.cli.main``: what it prints, its ``--report`` JSON and its ``--markdown`` table.
The only other sources are the row descriptions and the declaration aliases
(``conformance/checks/rows.py``), the tolerances
(``conformance/contract/tolerances.py``), the fixture manifest, and the broken implementations of
the self-test (``tests/broken_impls.py``, ``tests/broken_gradient_impls.py``).

What legitimately varies between runs or machines is masked when blocks are compared: the
elapsed time and every measured decimal number (errors, ratios, the values printed in a
failure).  Tolerances printed as ``rtol=...``/``atol=...``, every integer (counts) and every
word are compared exactly.  A block whose masked text is unchanged is left as it is, so a
rewrite on another machine does not churn the files.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.cases import matrix_cases

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = ("README.md", "docs/rows.md", "docs/plugin.md", "docs/fixtures.md", "docs/selftest.md")

# The failure shown in the docs: a broken implementation, one case, the fixture oracle only.
FAILURE_IMPL = "tests.broken_impls:WrongGateOrder"
FAILURE_CASE = "L2-bi-packed_sorted-hx-c64-eval"
FAILURE_ARGV = ["--impl", FAILURE_IMPL, "--case", FAILURE_CASE, "--oracle", "fixtures"]
README_HEAD_ROWS, README_TAIL_ROWS = 4, 2

BLOCK = re.compile(
    r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S
)
# A measured decimal number: not a tolerance (``rtol=1.3e-06``), not part of a word or an integer.
MEASURED = re.compile(r"(?<![\w.=])(?<!tol=)[-+]?(?:\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)")
ELAPSED = re.compile(r"\bin \S+ s\b")


def _module(name: str) -> Any:
    """Import ``name`` at run time.  The suite's internals are typed loosely on purpose: this
    module reads only what it documents and stays checkable on its own (mypy --strict)."""
    return importlib.import_module(name)


@dataclass
class Run:
    """One run of the CLI: its exit code, what it printed and its JSON report (if any)."""

    rc: int
    stdout: str
    report: dict[str, Any]
    markdown: str


@contextlib.contextmanager
def _in_root() -> Iterator[None]:
    """Run from the repository root, so ``tests.broken_impls`` imports as with ``python -m``."""
    before = os.getcwd()
    os.chdir(ROOT)
    added = str(ROOT) not in sys.path
    if added:
        sys.path.insert(0, str(ROOT))
    try:
        yield
    finally:
        os.chdir(before)
        if added:
            sys.path.remove(str(ROOT))


def run_cli(argv: list[str], report: bool = True) -> Run:
    """``lstm-conformance ARGV`` through ``conformance.cli.main``, output captured."""
    cli = _module("conformance.cli")

    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--report", f"{tmp}/r.json", "--markdown", f"{tmp}/r.md"] if report else []
        out = io.StringIO()
        with _in_root(), contextlib.redirect_stdout(out):
            rc = cli.main([*argv, *extra])
        data = json.loads(Path(tmp, "r.json").read_text()) if report else {}
        markdown = Path(tmp, "r.md").read_text() if report else ""
    return Run(rc, _machine_free(out.getvalue(), extra), data, _machine_free(markdown, extra))


def _machine_free(text: str, extra: list[str]) -> str:
    """The provenance lines without what differs between machines and runs: the platform
    string and the temporary report paths this generator adds."""
    return text.replace(" " + " ".join(extra), "").replace(platform.platform(), "<platform>")


# -- the blocks --------------------------------------------------------------------------------------


def _fence(text: str, lang: str = "text") -> str:
    body = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return f"```{lang}\n{body}\n```\n"


def _table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A Markdown table; ``align`` has one character per column, ``-`` left, ``:`` right."""
    rule = ["--:" if a == ":" else "---" for a in (align or "-" * len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _summary_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if " checks over " in line)


def sample_output(run: Run) -> str:
    return _fence("$ lstm-conformance\n" + run.stdout.strip())


PROVENANCE_LINES = ("  implementation:", "  torch (live):", "  numpy ", "  command:", "  note:")


def readme_sample(run: Run) -> str:
    """The default run's output, with the middle rows of the table left out."""
    lines = run.stdout.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("feature "))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    body = lines[start + 1 : end]
    if len(body) > README_HEAD_ROWS + README_TAIL_ROWS:
        left_out = len(body) - README_HEAD_ROWS - README_TAIL_ROWS
        body = [*body[:README_HEAD_ROWS], f"... ({left_out} more rows)", *body[-README_TAIL_ROWS:]]
    header = [line for line in lines[:start] if not line.startswith(PROVENANCE_LINES)]
    shown = [*header, lines[start], *body, "", _summary_line(run.stdout)]
    return _fence("$ lstm-conformance\n" + "\n".join(shown))


def failure_sample(run: Run) -> str:
    """The first failure the CLI prints for the broken implementation, as printed."""
    lines = run.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("FAIL "))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("  rerun: "))
    command = "$ lstm-conformance " + " ".join(FAILURE_ARGV)
    return _fence(command + "\n...\n" + "\n".join(lines[start : end + 1]))


def _descriptions() -> dict[str, str]:
    from ..checks.rows import DESCRIPTIONS

    return dict(DESCRIPTIONS)


def rows_table(run: Run) -> str:
    desc = _descriptions()
    rows = []
    for row in run.report["table"]:
        name = row["feature"]
        what = desc.get(name) or "; ".join(row["notes"]) or "-"
        rows.append([f"`{name}`", what.replace("|", "\\|"), str(row["passed"]), str(row["skipped"])])
    return _table(["row", "what it checks", "checks passed", "skipped"], rows, "--::")


def _list_ids(full: bool) -> list[str]:
    """The case ids --list prints (not its comment lines, nor its suite items: error cases and
    suite-level checks)."""
    from ..checks.rows import suite_checks

    suite = tuple(check.name for check in suite_checks())
    out = run_cli(["--list", *(["--full"] if full else [])], report=False).stdout.splitlines()
    ids = [line.split()[0] for line in out[:-1] if line.strip() and not line.startswith("#")]
    return [i for i in ids if not i.startswith((*suite, "errors:"))]


def counts(run: Run) -> str:
    ids, full_ids = _list_ids(False), _list_ids(True)
    matrix = [i for i in ids if re.match(r"L\d+-(uni|bi)-", i)]
    rand = [i for i in ids if re.fullmatch(r"random-\d+", i)]
    named = [i for i in ids if i not in matrix and i not in rand]
    groups: dict[str, int] = {}
    for i in named:
        groups[i.split("-")[0]] = groups.get(i.split("-")[0], 0) + 1
    full_matrix = [i for i in full_ids if re.match(r"L\d+-(uni|bi)-", i)]
    manifest = json.loads((ROOT / "fixtures" / "manifest.json").read_text())
    n = run.report["counts"]
    summary = _summary_line(run.stdout)
    m = re.search(r"over (\d+) cases", summary)
    stats_note = (
        " counts the suite-level `dropout_statistics` check as one more case"
        if m and int(m.group(1)) == len(ids) + 1
        else ""
    )
    lines = [
        f"- The default run (`lstm-conformance`, torch installed) selects {len(ids)} cases: "
        f"{len(matrix)} matrix cases ({len(matrix_cases())} pairwise, {len(matrix) - len(matrix_cases())} "
        "completing every form x direction x dtype triple), "
        f"{len(named)} named cases "
        f"({', '.join(f'{v} {k}' for k, v in groups.items())}) and {len(rand)} random ones.",
        f"- It runs {sum(n.values())} checks: {n['pass']} passed, {n['fail']} failed, {n['skip']} skipped. "
        f"The summary line{stats_note}:",
        f"  `{ELAPSED.sub('in … s', summary)}`.",
        f"- `--full` selects {len(full_ids)} cases: the whole matrix ({len(full_matrix)} cases), "
        "the same named cases and the random ones.",
        f"- `fixtures/manifest.json` holds {len(manifest['cases'])} cases (the default run less the random "
        f"ones, plus {len(manifest['cases']) - len(ids) + groups.get('random', 0)} that complete the selection of an "
        "implementation declaring complex, float64, proj_size and dropout) and torch's exception type for "
        f"{len(manifest['errors'])} error cases.",
    ]
    return "\n".join(lines) + "\n"


def markdown_sample(run: Run) -> str:
    lines = run.markdown.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|---"))
    return _fence("\n".join([*lines[: start + 4], "..."]), "markdown")


def tolerances_table(_: Run) -> str:
    t = _module("conformance.contract.tolerances")

    forward: dict[str, Any] = t.FORWARD
    conf: dict[str, Any] = getattr(t, "CONFORMANCE_GRADIENT", t.GRADIENT)
    plain: dict[str, Any] = t.GRADIENT
    rows = [
        [
            dtype,
            f"{forward[dtype].rtol:g}",
            f"{forward[dtype].atol:g}",
            f"{conf[dtype].rtol:g}",
            f"{conf[dtype].atol:g}",
            f"{plain[dtype].rtol:g}",
            f"{plain[dtype].atol:g}",
        ]
        for dtype in forward
    ]
    header = [
        "dtype",
        "`FORWARD` rtol",
        "atol",
        "`CONFORMANCE_GRADIENT` rtol",
        "atol",
        "`GRADIENT` rtol",
        "atol",
    ]
    sigmas = f"\n`DROPOUT_RATE_SIGMAS` = {t.DROPOUT_RATE_SIGMAS:g}; `DRIFT` is "
    sigmas += "`FORWARD`.\n" if t.DRIFT is t.FORWARD else "its own table (see the file).\n"
    return _table(header, rows, "-::::::") + sigmas


def aliases(_: Run) -> str:
    from ..checks.rows import ALIASES as table

    rows = [[f"`{k}`", ", ".join(f"`{r}`" for r in v)] for k, v in table.items()]
    return _table(["key", "rows it stands for"], rows)


def _doc(obj: Any) -> str:
    return " ".join((obj.__doc__ or "").split()).replace("|", "\\|")


def broken_impls(_: Run) -> str:
    with _in_root():
        b = _module("tests.broken_impls")

    rows = [
        [f"`{name}`", _doc(getattr(b, name)), ", ".join(f"`{r}`" for r in rows)]
        for name, rows in b.BROKEN.items()
    ]
    return _table(["class", "what is wrong", "must fail (at least)"], rows)


def broken_gradient_impls(_: Run) -> str:
    with _in_root():
        b = _module("tests.broken_gradient_impls")

    rows = [[f"`{name}`", _doc(getattr(b, name)), f"`{tensor}`"] for name, tensor in b.BROKEN.items()]
    return _table(["class", "what is wrong", "the message names"], rows)


# name -> (the run it needs: "default" or "failure", the generator)
GENERATORS: dict[str, tuple[str, Callable[[Run], str]]] = {
    "readme-sample": ("default", readme_sample),
    "sample-output": ("default", sample_output),
    "rows": ("default", rows_table),
    "counts": ("default", counts),
    "markdown-sample": ("default", markdown_sample),
    "failure-sample": ("failure", failure_sample),
    "tolerances": ("default", tolerances_table),
    "aliases": ("default", aliases),
    "broken-impls": ("default", broken_impls),
    "broken-gradient-impls": ("default", broken_gradient_impls),
}


# -- compare and rewrite -----------------------------------------------------------------------------


def normalise(text: str) -> str:
    """What is compared: elapsed time and measured decimals masked, whitespace runs collapsed."""
    text = ELAPSED.sub("in # s", text)
    text = MEASURED.sub("#", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def row_headings(doc: str) -> set[str]:
    """The row names in backticks on the ``###`` headings of docs/rows.md's row reference."""
    section = doc.split("## Every row", 1)[-1].split("\n## ", 1)[0]
    return {
        n for line in section.splitlines() if line.startswith("### ") for n in re.findall(r"`(\w+)`", line)
    }


def generate() -> tuple[dict[str, str], list[str]]:
    """Every block's fresh content, and the problems found on the way."""
    reason = _module("conformance.oracles.torch_oracle").torch_available()
    if reason:
        raise SystemExit(
            f"conformance.tools.docgen needs torch (the sample run uses the live oracle): {reason}"
        )
    runs = {"default": run_cli([]), "failure": run_cli(FAILURE_ARGV)}
    problems = []
    default = runs["default"].report
    not_passing = [row["feature"] for row in default.get("table", []) if row["status"] != "pass"]
    if runs["default"].rc != 0 or not_passing or default.get("oracles") != {"fixtures": "on", "torch": "on"}:
        problems.append(
            "the default run (lstm_ref) did not pass every row with both oracles: the sample output "
            f"would show it (exit {runs['default'].rc}, rows not passing: {not_passing}, oracles: "
            f"{default.get('oracles')})"
        )
    if runs["failure"].rc != 1 or "FAIL " not in runs["failure"].stdout:
        problems.append(f"{FAILURE_IMPL} did not fail case {FAILURE_CASE}: pick another failure sample")
    fresh = {name: gen(runs[which]) for name, (which, gen) in GENERATORS.items()}
    rows_doc = (ROOT / "docs" / "rows.md").read_text()
    table_rows = {row["feature"] for row in runs["default"].report["table"]}
    documented = row_headings(rows_doc)
    for name in sorted(table_rows - documented):
        problems.append(f"docs/rows.md: row `{name}` has no ### section under '## Every row'")
    for name in sorted(documented - table_rows):
        problems.append(f"docs/rows.md: ### section for `{name}`, which is not a row of the table")
    return fresh, problems


def update(check: bool) -> tuple[list[str], list[str]]:
    """Compare (and unless ``check``, rewrite) every generated block: (stale blocks, other problems)."""
    fresh, problems = generate()
    stale: list[str] = []
    seen: set[str] = set()
    for rel in DOC_FILES:
        path = ROOT / rel
        text = path.read_text()

        def replace(m: re.Match[str], rel: str = rel) -> str:
            name, body = m.group("name"), m.group("body")
            seen.add(name)
            if name not in fresh:
                problems.append(f"{rel}: unknown generated block {name!r}")
                return m.group(0)
            if normalise(body) == normalise(fresh[name]):
                return m.group(0)
            stale.append(f"{rel}: block {name!r}")
            return m.group(1) + fresh[name] + m.group(4)

        new = BLOCK.sub(replace, text)
        if not check and new != text:
            path.write_text(new)
    for name in sorted(set(fresh) - seen):
        problems.append(f"generated block {name!r} is used in none of {', '.join(DOC_FILES)}")
    return stale, problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m conformance.tools.docgen",
        description="Rewrite the generated blocks of README.md and docs/*.md from a real run.",
    )
    p.add_argument("--check", action="store_true", help="list stale blocks and exit 1; write nothing")
    args = p.parse_args(argv)
    stale, problems = update(args.check)
    if stale:
        print(
            "conformance.tools.docgen: " + ("stale blocks:" if args.check else "rewrote stale blocks:"),
            *stale,
            sep="\n  ",
        )
    if problems:
        print("conformance.tools.docgen: to fix by hand:", *problems, sep="\n  ")
    if not stale and not problems:
        print("conformance.tools.docgen: every generated block is current")
    return 1 if problems or (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
