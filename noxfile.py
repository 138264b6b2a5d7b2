"""Task runner: `nox -s tests`, `nox -s lint`, `nox -s bench`, `nox -s regen`."""

import nox

nox.options.sessions = ["tests", "lint"]
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("-e", ".", "ruff", "mypy")
    session.run("ruff", "check", "lstm_ref")
    session.run("ruff", "format", "--check", "lstm_ref")
    session.run("mypy", "lstm_ref")
