"""The conformance suite under pytest: one test per case (and per suite check), same registry
as the `lstm-conformance` CLI. The options come from the ``lstm_conformance`` plugin
(conformance/pytest_plugin.py), registered by entry point wherever lstm-ref is installed:

    pytest --pyargs conformance --lstm-impl MODULE:ATTR [--lstm-full] [--lstm-oracle fixtures]

Nothing here needs this repository's tests/ or conftest.py. The random configurations against
live torch need torch and hypothesis (both in lstm-ref[test]); without them that test is
skipped with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.contract.cases import FACTORS, Case
from conformance.oracles.sources import TorchOracle
from conformance.oracles.torch_oracle import torch_available
from conformance.pytest_plugin import _not_here, check_job, run_job
from conformance.run import runner
from conformance.run.impls import Impl


@pytest.mark.lstm_conformance
def test_conformance(job: runner.Job) -> None:
    check_job(job)


# -- random configurations against live torch (hypothesis, derandomized) -------------------------


try:
    from hypothesis import given, note, settings
    from hypothesis import strategies as st

    HYPOTHESIS = True
except ImportError:  # lstm-ref[test] has it; a bare install may not
    HYPOTHESIS = False


def _random_case(draw: Any) -> Case:
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


def _random_configs_against_torch(case: Case, config: Any) -> None:
    if config.getoption("lstm_oracle") == "fixtures":
        pytest.skip("live-torch oracle: not selected (--lstm-oracle fixtures)")
    # asked here, not at collection: importing torch costs seconds a fixtures-only session skips
    reason = torch_available()
    if reason is not None:
        pytest.skip(f"live-torch oracle: {reason}")
    impl = Impl(config.getoption("lstm_impl"), _not_here)  # it runs in the plugin's worker
    job = runner.case_job(impl, case, [TorchOracle()])
    results = run_job(job)
    note(f"case: {case}")
    failures = [r for r in results if r.status == "fail"]
    assert not failures, "\n".join(f"{r.check}: {r.message}" for r in failures) + f"\ncase: {case}"


if HYPOTHESIS:

    @settings(derandomize=True, max_examples=12, deadline=None, database=None)
    @given(case=st.composite(_random_case)())
    def test_random_configs_against_torch(case: Case, pytestconfig: Any) -> None:
        _random_configs_against_torch(case, pytestconfig)

else:

    @pytest.mark.skip(
        reason="random configurations: hypothesis is not installed (pip install lstm-ref[test])"
    )
    def test_random_configs_against_torch() -> None:
        pass


# -- lstm-conformance explore under pytest (--lstm-explore N) -----------------------------------------


def test_explore(pytestconfig: Any) -> None:
    """The property-based search of `lstm-conformance explore`, N examples, through a worker."""
    import io

    from conformance.tools.explore import main_explore

    examples = pytestconfig.getoption("lstm_explore")
    if not examples:
        pytest.skip("explore: not requested (--lstm-explore N)")
    argv = ["--impl", pytestconfig.getoption("lstm_impl"), "--examples", str(examples)]
    seed = pytestconfig.getoption("lstm_explore_seed")
    argv += [] if seed is None else ["--seed", str(seed)]
    out = io.StringIO()
    if main_explore(argv, out=out) != 0:
        pytest.fail(out.getvalue(), pytrace=False)
    print(out.getvalue())
