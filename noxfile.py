"""Task runner: `nox -s tests`, `lint`, `conformance`, `regen`, `bench`, `adapter`, `matrix`."""

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
PYTHON = "3.11"
LINTERS = ("ruff==0.17.6", "mypy==2.4.1")  # pinned: new releases add rules
# nn.LSTM's behaviour per torch version (docs/torch-versions.md): the oldest supported, one between,
# the fixtures' own (the ci extra's pin) and the newest tested
TORCH_VERSIONS = ("2.6.0", "2.10.0", "2.13.0", "2.14.1")
# the adapters whose libraries are not in the test extra: name -> the extra that installs them
ADAPTER_EXTRAS = {
    "onnxruntime": "onnx",
    "keras": "keras",
    "flax": "jax",
    "haiku": "haiku",
    "tensorflow": "tensorflow",
    "openvino": "openvino",
    "paddle": "paddle",
}


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[ci]")  # the test extra with torch pinned to the fixtures' own
    session.run("python", "-m", "pytest", *(session.posargs or ["-n", "auto", "--dist", "loadscope"]))


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """The conformance table; arguments after `--` go to lstm-conformance (e.g. `--impl torch`)."""
    session.install("-e", ".[ci]")
    session.run("lstm-conformance", *session.posargs)


@nox.session(python=PYTHON)
def regen(session: nox.Session) -> None:
    """Rewrite fixtures/ from live torch (pinned by the test extra), then verify it is byte-stable."""
    session.install("-e", ".[ci]")
    session.run("lstm-conformance", "regen")
    session.run("lstm-conformance", "regen", "--check", "--exact")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """pytest-benchmark timings, then the interleaved summary (bench-results/summary.{md,json}).

    Arguments after `--` go to the summary, e.g. `nox -s bench -- --configs tiny,medium`.
    """
    session.install("-e", ".[bench,ci]")
    Path("bench-results").mkdir(exist_ok=True)
    session.run(
        "python", "-m", "pytest", "benchmarks", "-p", "no:cacheprovider",
        "--benchmark-columns=median,iqr,rounds", "--benchmark-sort=name",
        "--benchmark-json=bench-results/pytest-benchmark.json",
    )  # fmt: skip
    session.run("python", "-m", "benchmarks.summary", "--out", "bench-results", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("name", list(ADAPTER_EXTRAS))
def adapter(session: nox.Session, name: str) -> None:
    """One adapter with its library (CPU build): its tests, which drive the real CLI
    (`nox -s "adapter(name='keras')"`; the torch-family adapters are tested by `nox -s tests`)."""
    session.install("-e", f".[{ADAPTER_EXTRAS[name]},ci]")
    session.run("python", "-m", "pytest", f"tests/test_adapter_{name}.py", "-p", "no:cacheprovider")


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    """Every adapter's library installed, then docs/compatibility.{md,json} regenerated; fails
    when a FAIL cell has no finding with a reproduction on the page."""
    session.install("-e", ".[adapters,ci]")
    session.run("lstm-conformance", "matrix", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("torch", list(TORCH_VERSIONS))
def torch_versions(session: nox.Session, torch: str) -> None:
    """nn.LSTM under one torch against the fixtures (`lstm-conformance torch-diff`), kept as that
    version's column of docs/torch-versions.md, which is then rewritten from every column
    (`nox -s torch_versions` runs all four; versions other than 2.13.0 and 2.14.1 are CUDA
    wheels from PyPI, several GB each, that run on CPU)."""
    session.install("-e", ".[test]", f"torch=={torch}")
    session.run("python", "-m", "conformance.tools.torch_versions", "--column", success_codes=[0])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    # mypy on conformance/ reads the types of torch, pytest and hypothesis: the test extra
    session.install("-e", ".[ci]", *LINTERS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "conformance", "lstm_ref")
