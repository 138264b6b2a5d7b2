"""This repository's pytest setup: the conformance plugin, also where lstm-ref is not installed
(or installed before it had the ``pytest11`` entry point), and the plugin's old option names.

The plugin (conformance/pytest_plugin.py) is registered at most once: by its entry point when
this checkout is pip-installed, else here. Registering it twice is an error in pytest.
"""

from __future__ import annotations

import argparse

import pytest

from conformance import pytest_plugin


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if not pluginmanager.has_plugin(pytest_plugin.MARKER) and not pluginmanager.is_registered(pytest_plugin):
        pluginmanager.register(pytest_plugin, pytest_plugin.MARKER)  # its pytest_addoption runs now
    # The names this repository used before the options were namespaced; same destinations.
    group = parser.getgroup("lstm-conformance")
    old = argparse.SUPPRESS  # the plugin's option sets the default
    group.addoption("--impl", dest="lstm_impl", default=old, help="old name of --lstm-impl")
    group.addoption(
        "--full", dest="lstm_full", action="store_true", default=old, help="old name of --lstm-full"
    )
    group.addoption(
        "--conformance-oracle", dest="lstm_oracle", choices=pytest_plugin.ORACLES, default=old,
        help="old name of --lstm-oracle",
    )  # fmt: skip
