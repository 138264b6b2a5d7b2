"""Optional extension modules of the suite, imported before any run or regeneration.

An extension module (e.g. ``conformance/gradients.py``) may, at import time:

* ``torch_oracle.register_array_producer(fn)`` -- add arrays to every fixture case (``grad_*``
  for torch's gradients, ``dout_*`` for the upstream gradients used), and
* append a ``checks.CaseCheck`` to ``checks.CASE_CHECKS`` and describe its table row in
  ``runner.FEATURES`` -- so the CLI, the pytest entry and the table pick it up.

A listed module that does not exist is ignored; one that exists and fails to import is an error.
"""

from __future__ import annotations

import importlib
import importlib.util

EXTENSION_MODULES = ("conformance.gradients",)
_loaded = False


def load_extensions() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in EXTENSION_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
