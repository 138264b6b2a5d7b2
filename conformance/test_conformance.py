"""The conformance suite under pytest: one test per case (and per suite check), same registry
as the `lstm-conformance` CLI.

    python -m pytest conformance --impl MODULE:ATTR [--full] [--conformance-oracle fixtures]
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from conformance import runner
from conformance.cases import FACTORS, Case
from conformance.impls import load_impl
from conformance.oracles import TorchOracle, make_oracles
from conformance.torch_oracle import torch_available


def _jobs(config: Any) -> list[runner.Job]:
    impl = load_impl(config.getoption("--impl"))
    oracles = make_oracles(config.getoption("--conformance-oracle"))
    return runner.jobs_for(impl, oracles, full=config.getoption("--full"))


def pytest_generate_tests(metafunc: Any) -> None:
    if "job" in metafunc.fixturenames:
        jobs = _jobs(metafunc.config)
        metafunc.parametrize("job", jobs, ids=[j.id for j in jobs])


def _assert_results(results: list[runner.Result]) -> None:
    failures = [r for r in results if r.status == "fail"]
    if failures:
        pytest.fail(
            "\n\n".join(f"{r.check} vs {r.oracle}: {r.message}\n  rerun: {r.rerun}" for r in failures),
            pytrace=False,
        )
    if results and all(r.status == "skip" for r in results):
        pytest.skip("; ".join(sorted({r.message for r in results})))


def test_conformance(job: runner.Job) -> None:
    _assert_results(job.run())


# -- random configurations against live torch (hypothesis, derandomized) -------------------------


@st.composite
def random_case(draw: Any) -> Case:
    hidden = draw(st.integers(1, 6))
    opts = {name: draw(st.sampled_from(values)) for name, values in FACTORS.items()}
    opts["proj_size"] = draw(st.integers(0, hidden - 1))
    packed = opts["form"].startswith("packed")
    return Case(
        **opts,
        input_size=draw(st.integers(1, 5)),
        hidden_size=hidden,
        steps=6 if packed else draw(st.integers(1, 8)),
        batch=draw(st.integers(0 if opts["form"] == "batched" else 1, 4)),
        name="hypothesis",
        tags=("random",),
    )


@pytest.mark.skipif(torch_available() is not None, reason=f"live-torch oracle: {torch_available()}")
@settings(derandomize=True, max_examples=12, deadline=None, database=None)
@given(case=random_case())
def test_random_configs_against_torch(case: Case, pytestconfig: Any) -> None:
    impl = load_impl(pytestconfig.getoption("--impl"))
    job = runner.case_job(impl, case, [TorchOracle()])
    results = job.run()
    note(f"case: {case}")
    failures = [r for r in results if r.status == "fail"]
    assert not failures, "\n".join(f"{r.check}: {r.message}" for r in failures) + f"\ncase: {case}"
