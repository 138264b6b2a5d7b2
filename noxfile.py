"""Task runner: `nox -s tests`, `nox -s lint`, `nox -s conformance`, `nox -s regen`, `nox -s bench`."""

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
PYTHON = "3.11"
LINTERS = ("ruff==0.17.6", "mypy==2.4.1")  # pinned: new releases add rules


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """The conformance table; arguments after `--` go to lstm-conformance (e.g. `--impl torch`)."""
    session.install("-e", ".[test]")
    session.run("lstm-conformance", *session.posargs)


@nox.session(python=PYTHON)
def regen(session: nox.Session) -> None:
    """Rewrite fixtures/ from live torch (pinned by the test extra), then verify it is byte-stable."""
    session.install("-e", ".[test]")
    session.run("lstm-conformance", "regen")
    session.run("lstm-conformance", "regen", "--check", "--exact")


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
    # mypy on conformance/ reads the types of torch, pytest and hypothesis: the test extra
    session.install("-e", ".[test]", *LINTERS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "conformance", "lstm_ref")
