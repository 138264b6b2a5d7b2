"""The conformance suite as a pytest plugin, registered by the ``pytest11`` entry point
``lstm_conformance`` (pyproject.toml), so it is there in any project that installs lstm-ref:

    pytest --pyargs conformance --lstm-impl MODULE:ATTR [--lstm-full] [--lstm-oracle fixtures]

or, from a test file of your own (docs/plugin.md)::

    from conformance.pytest_plugin import conformance_suite

    test_my_lstm = conformance_suite("mypkg.lstm:MyLSTM")

The implementation runs in worker processes, as under the CLI (conformance/run/workers.py): a
crash, an exit, a hang past ``--lstm-timeout`` or an import error fails the test it happened
in, naming what happened; the comparisons run in the pytest process, which never imports the
implementation. One worker per pytest process (so per pytest-xdist worker), reused by its tests.

The options are namespaced (``--lstm-*``) so they cannot clash with other plugins; this
repository's root conftest.py also accepts its old names (``--impl``, ``--full``,
``--conformance-oracle``). Loading the plugin imports nothing heavy: numpy, torch and the
suite are imported only when a test asks for a case.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .run import runner

MARKER = "lstm_conformance"
DEFAULT_IMPL = "lstm_ref:LSTM"  # == conformance.run.impls.DEFAULT_IMPL (not imported: it pulls numpy in)
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
        "--lstm-expect",
        dest="lstm_expect",
        type=Path,
        default=None,
        metavar="FILE",
        help="a baseline (TOML or JSON, as lstm-conformance --expect): the failures it lists are xfail",
    )
    group.addoption(
        "--lstm-timeout",
        dest="lstm_timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="a case (or suite check) running longer fails as hung (default %(default)g)",
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


_EXPECTATIONS: list[Any] = []  # --lstm-expect's entries (conformance.run.expect.Expectation)
DEFAULT_TIMEOUT_S = 600.0  # == conformance.cli.DEFAULT_TIMEOUT_S
_timeout = DEFAULT_TIMEOUT_S
_pools: dict[str, tuple[Any, str]] = {}  # spec -> (its Pool, or None and why it cannot import)
_oracles: dict[str, list[Any]] = {}  # spec -> the oracles its jobs were made with (disagreements)
_jobs: dict[str, list[Any]] = {}  # spec -> its jobs (a per-oracle suite check's siblings)


def pytest_configure(config: pytest.Config) -> None:
    global _timeout
    timeout = config.getoption("lstm_timeout", DEFAULT_TIMEOUT_S)
    if not (isinstance(timeout, float) and math.isfinite(timeout) and timeout > 0):
        raise pytest.UsageError(f"--lstm-timeout must be a positive number of seconds, got {timeout}")
    _timeout = timeout
    path = config.getoption("lstm_expect", None)
    if path is not None:
        from .run.expect import ExpectError, load

        try:
            _EXPECTATIONS[:] = load(path)
        except ExpectError as exc:
            raise pytest.UsageError(f"--lstm-expect {exc}") from None
    config.addinivalue_line(
        "markers",
        f"{MARKER}(impl=None, full=None, oracle=None, fixtures=None): one test per conformance "
        "case and suite check, through the test's `job` argument (conformance.pytest_plugin)",
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    for pool, _ in _pools.values():
        if pool is not None:
            pool.close()
    _pools.clear()


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
    from .oracles.sources import make_oracles
    from .run import runner
    from .run.impls import Impl, spec_problem

    kwargs = dict(marker.kwargs) if marker else {}
    impl = kwargs.get("impl")
    spec = _impl_spec(impl) if impl is not None else config.getoption("lstm_impl")
    oracle = kwargs.get("oracle") or config.getoption("lstm_oracle")
    full = kwargs.get("full")
    full = bool(config.getoption("lstm_full") if full is None else full)
    fixtures = kwargs.get("fixtures") or config.getoption("lstm_fixtures")
    problem = spec_problem(spec)
    if problem:  # the syntax only: importing is the workers' business
        raise pytest.UsageError(problem)
    extra = (f" --fixtures {fixtures}" if fixtures else "") + (" --full" if full else "")
    oracles = _oracles[spec] = make_oracles(oracle, Path(fixtures) if fixtures else None)
    # the selection is made for what the implementation declares (as the CLI makes it), so its
    # worker starts now; one that cannot start fails each test with why (run_job)
    pool, _ = _worker_pool(spec, extra)
    impl = pool.impl if pool is not None and pool.impl is not None else None
    jobs = _jobs[spec] = runner.jobs_for(impl or Impl(spec, _not_here, rerun_extra=extra), oracles, full=full)
    return jobs


def _not_here(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the implementation runs in worker processes, not in the pytest process")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``lstm_conformance`` that take a ``job`` get one test per case."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or "job" not in metafunc.fixturenames:
        return
    jobs = suite_jobs(metafunc.config, marker)
    metafunc.parametrize("job", jobs, ids=[j.id for j in jobs])


def _flag_disagreements(spec: str, results: list[runner.Result]) -> None:
    """Where the fixtures' torch and live torch disagree, an implementation agreeing with either
    is flagged, not failed, and each message names its oracle's torch (as the CLI does)."""
    oracles = _oracles.get(spec)
    if not oracles or not any(r.status == "fail" for r in results):
        return
    from .oracles.disagreements import reconcile
    from .oracles.sources import TorchOracle, witness_of

    for o in oracles:  # error items are tests of their own: both oracles' types, once
        if isinstance(o, TorchOracle) and not o.skip_reason:
            o.error_types()
    reconcile(results, witness_of(oracles), spec)


def _other_oracles(job: runner.Job, results: list[runner.Result]) -> list[runner.Result]:
    """A per-oracle suite check (``errors[fixtures]``, one test) with failing items: those items
    run against the other oracles too, so that where the fixtures' torch and live torch disagree
    the items are judged by both answers, as the CLI's run (which has every job) judges them."""
    failing = frozenset(r.case for r in results if r.status == "fail")
    task = job.task
    if not failing or task.oracle in ("", "self"):  # a case's job has every oracle; "self": none
        return []
    siblings = [
        j for j in _jobs.get(job.spec, []) if j.task.suite == task.suite and j.task.oracle != task.oracle
    ]
    return [r for j in siblings for r in run_job(replace(j, task=replace(j.task, items=failing)))]


def check_job(job: runner.Job) -> None:
    """Run one job: fail with every failing check (and how to rerun it); skip, with the reasons,
    when every check was skipped."""
    results = run_job(job)
    _flag_disagreements(job.spec, results + _other_oracles(job, results))
    if _EXPECTATIONS:
        from .run.expect import EXPECTED, apply, for_impl

        apply(results, for_impl(_EXPECTATIONS, job.spec))
    failures = [r for r in results if r.status == "fail"]
    if failures:
        pytest.fail(
            "\n\n".join(f"{r.check} vs {r.oracle}: {r.message}\n  rerun: {r.rerun}" for r in failures),
            pytrace=False,
        )
    if _EXPECTATIONS and any(r.status == EXPECTED for r in results):
        pytest.xfail("; ".join(sorted({r.message.splitlines()[0] for r in results if r.status == EXPECTED})))
    if results and all(r.status == "skip" for r in results):
        pytest.skip("; ".join(sorted({r.message for r in results})))


def _worker_pool(spec: str, rerun_extra: str) -> tuple[Any, str]:
    """This pytest process's worker for ``spec`` (started on first use), or None and why not."""
    from .run.workers import Pool

    if spec not in _pools:
        pool = Pool(spec, rerun_extra, 1, _timeout, fresh=False)
        info, problem = pool.start()
        _pools[spec] = (pool if info is not None else None, problem)
    return _pools[spec]


def run_job(job: runner.Job) -> list[runner.Result]:
    """The job's results, its implementation run in this pytest process's worker (started on
    first use, replaced after a crash); the checks run here."""
    pool, problem = _worker_pool(job.spec, job.impl.rerun_extra if job.impl else "")
    if pool is None:
        pytest.fail(f"{job.spec}: the implementation cannot be used: {problem}", pytrace=False)
    run = pool.run([job], lambda j: j.prepare(), lambda j, done: None, keep=True)
    if run.interrupted:
        raise KeyboardInterrupt
    results: list[runner.Result] = run.results
    return results


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
