"""Task runner: `nox -s tests`, `nox -s lint`, `nox -s bench`, `nox -s regen`."""

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """pytest-benchmark timings, then the interleaved summary (bench-results/summary.{md,json}).

    Arguments after `--` go to the summary, e.g. `nox -s bench -- --configs tiny,medium`.
    """
    session.install("-e", ".[bench]")
    Path("bench-results").mkdir(exist_ok=True)
    session.run(
        "python", "-m", "pytest", "benchmarks", "-p", "no:cacheprovider",
        "--benchmark-columns=median,iqr,rounds", "--benchmark-sort=name",
        "--benchmark-json=bench-results/pytest-benchmark.json",
    )  # fmt: skip
    session.run("python", "-m", "benchmarks.summary", "--out", "bench-results", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("-e", ".", "ruff", "mypy")
    session.run("ruff", "check", "lstm_ref")
    session.run("ruff", "format", "--check", "lstm_ref")
    session.run("mypy", "lstm_ref")
