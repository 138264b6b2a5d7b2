"""The conformance suite as a pytest plugin, registered by the ``pytest11`` entry point
``lstm_conformance`` (pyproject.toml), so it is there in any project that installs lstm-ref:

    pytest --pyargs conformance --lstm-impl MODULE:ATTR [--lstm-full] [--lstm-oracle fixtures]

or, from a test file of your own (docs/plugin.md)::

    from conformance.pytest_plugin import conformance_suite

    test_my_lstm = conformance_suite("mypkg.lstm:MyLSTM")

The options are namespaced (``--lstm-*``) so they cannot clash with other plugins; this
repository's root conftest.py also accepts its old names (``--impl``, ``--full``,
``--conformance-oracle``). Loading the plugin imports nothing heavy: numpy, torch and the
suite are imported only when a test asks for a case.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from . import runner

MARKER = "lstm_conformance"
DEFAULT_IMPL = "lstm_ref:LSTM"  # == conformance.impls.DEFAULT_IMPL (not imported: it pulls numpy in)
ORACLES = ("both", "fixtures", "torch")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lstm-conformance", "LSTM conformance suite (lstm-ref)")
    group.addoption(
        "--lstm-impl",
        dest="lstm_impl",
        default=DEFAULT_IMPL,
        metavar="MODULE:ATTR",
        help="LSTM implementation under test: MODULE:ATTR, exec:COMMAND or 'torch' (default: %(default)s)",
    )
    group.addoption(
        "--lstm-full",
        dest="lstm_full",
        action="store_true",
        default=False,
        help="the whole option product instead of all pairs (cases beyond the fixtures need torch)",
    )
    group.addoption(
        "--lstm-oracle",
        dest="lstm_oracle",
        choices=ORACLES,
        default="both",
        help="compare against the golden fixtures, live torch, or both (default; torch is skipped when absent)",
    )
    group.addoption(
        "--lstm-fixtures",
        dest="lstm_fixtures",
        type=Path,
        default=None,
        metavar="DIR",
        help="fixtures directory (default: $LSTM_CONFORMANCE_FIXTURES, else the packaged fixtures)",
    )
    group.addoption(
        "--lstm-explore",
        dest="lstm_explore",
        type=int,
        default=0,
        metavar="N",
        help="also search N configurations for a failure (lstm-conformance explore; test_explore)",
    )
    group.addoption(
        "--lstm-explore-seed",
        dest="lstm_explore_seed",
        type=int,
        default=None,
        metavar="SEED",
        help="the search's Hypothesis seed (default: a random one, printed)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(impl=None, full=None, oracle=None, fixtures=None): one test per conformance "
        "case and suite check, through the test's `job` argument (conformance.pytest_plugin)",
    )


def _impl_spec(impl: object) -> str:
    """A MODULE:ATTR string, or a class/function (named by its module and qualified name)."""
    if isinstance(impl, str):
        return impl
    module, name = getattr(impl, "__module__", None), getattr(impl, "__qualname__", None)
    if not module or not name or "<locals>" in name:
        raise pytest.UsageError(
            f"lstm_conformance: impl must be 'MODULE:ATTR' or an importable class, got {impl!r}"
        )
    return f"{module}:{name}"


def suite_jobs(config: pytest.Config, marker: pytest.Mark | None = None) -> list[runner.Job]:
    """The jobs of one run: the marker's arguments, else the command line's options."""
    from . import runner
    from .impls import load_impl
    from .oracles import make_oracles

    kwargs = dict(marker.kwargs) if marker else {}
    impl = kwargs.get("impl")
    spec = _impl_spec(impl) if impl is not None else config.getoption("lstm_impl")
    oracle = kwargs.get("oracle") or config.getoption("lstm_oracle")
    full = kwargs.get("full")
    fixtures = kwargs.get("fixtures") or config.getoption("lstm_fixtures")
    try:
        loaded = load_impl(spec)
    except SystemExit as exc:  # load_impl's one-line reasons: a usage error, not a crash
        raise pytest.UsageError(str(exc)) from None
    oracles = make_oracles(oracle, Path(fixtures) if fixtures else None)
    return runner.jobs_for(
        loaded, oracles, full=bool(config.getoption("lstm_full") if full is None else full)
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``lstm_conformance`` that take a ``job`` get one test per case."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or "job" not in metafunc.fixturenames:
        return
    jobs = suite_jobs(metafunc.config, marker)
    metafunc.parametrize("job", jobs, ids=[j.id for j in jobs])


def check_job(job: runner.Job) -> None:
    """Run one job: fail with every failing check (and how to rerun it); skip, with the reasons,
    when every check was skipped."""
    results = job.run()
    failures = [r for r in results if r.status == "fail"]
    if failures:
        pytest.fail(
            "\n\n".join(f"{r.check} vs {r.oracle}: {r.message}\n  rerun: {r.rerun}" for r in failures),
            pytrace=False,
        )
    if results and all(r.status == "skip" for r in results):
        pytest.skip("; ".join(sorted({r.message for r in results})))


def conformance_suite(
    impl: str | type | Callable[..., Any] | None = None,
    *,
    full: bool | None = None,
    oracle: str | None = None,
    fixtures: str | os.PathLike[str] | None = None,
) -> Callable[[runner.Job], None]:
    """A test function that runs the suite on ``impl`` (MODULE:ATTR or the class itself), one
    test per case; assign it to a ``test_*`` name in a test module. Arguments left ``None``
    come from the command line (``--lstm-impl``, ``--lstm-full``, ``--lstm-oracle``,
    ``--lstm-fixtures``)."""
    if oracle is not None and oracle not in ORACLES:
        raise ValueError(f"oracle must be one of {ORACLES}, got {oracle!r}")

    def test_lstm_conformance(job: runner.Job) -> None:
        check_job(job)

    marked: Callable[[runner.Job], None] = pytest.mark.lstm_conformance(
        impl=impl, full=full, oracle=oracle, fixtures=fixtures
    )(test_lstm_conformance)
    return marked
