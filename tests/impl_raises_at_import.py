"""An implementation module that cannot even be imported (tests/test_isolation.py)."""

raise RuntimeError("this module fails at import, as a broken build would")
