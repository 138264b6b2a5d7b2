"""pytest options for the conformance suite (registered by the repository's root conftest.py).

python -m pytest conformance --impl MODULE:ATTR [--full] [--conformance-oracle fixtures]
"""

from __future__ import annotations

from typing import Any

from .impls import DEFAULT_IMPL


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("lstm-conformance")
    group.addoption(
        "--impl",
        default=DEFAULT_IMPL,
        help="implementation under test, MODULE:ATTR or 'torch' (default: %(default)s)",
    )
    group.addoption("--full", action="store_true", help="the whole option product instead of all pairs")
    group.addoption(
        "--conformance-oracle",
        choices=("both", "fixtures", "torch"),
        default="both",
        help="which oracle(s) the conformance suite compares against (default: both)",
    )
