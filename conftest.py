"""Registers the conformance suite's pytest options (--impl, --full, --conformance-oracle),
so they exist whichever paths pytest is given."""

pytest_plugins = ["conformance.pytest_plugin"]
