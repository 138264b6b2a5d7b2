"""Conformance suite: checks an LSTM implementation against torch.nn.LSTM.

Where things are, by role (each folder builds on those listed before it, and on ``lstm_ref``):

* ``contract/``: what is checked: the cases (``cases.py``), the tolerances, the comparison,
  the default selection.
* ``checks/``: one function per check, bound into the table's rows (``rows.py``), and how the
  suite drives an implementation (``harness.py``) and locates a failure (``localize.py``).
* ``oracles/``: what the checks compare against: the golden fixtures (and ``regen``,
  ``torch-diff``) and live torch.
* ``run/``: running the checks: worker processes, the implementation behind a pipe, ``--impl``,
  exec ports, the report, baselines and shards.
* ``tools/``: commands built on runs: ``matrix``, ``docgen``, ``explore``, ``export``,
  ``torch_versions``.
* ``adapters/``: real runtimes behind ``--impl NAME``.

The public faces stay at the top: ``api.py`` (the contract an implementation meets),
``toolkit.py`` (for adapter writers), ``cli.py`` (``lstm-conformance``), ``pytest_plugin.py``
and ``test_conformance.py`` (``pytest --pyargs conformance``).

Where the arrows point back up: checks name a worker's values by ``run/remote.py``'s
``type_name``; ``checks/gradients.py`` and ``checks/rows.py`` take torch's side of the gradients
from ``oracles/torch_oracle.py``; ``checks/errors.py`` asks ``run/torch_adapter.py`` for the
exception types torch raises.
"""
