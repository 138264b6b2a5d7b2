"""The two oracles a run compares against: the golden fixtures (made by torch, stored) and
live torch (when installed).  Both give, per case, the same arrays (docs/fixtures.md)."""

from __future__ import annotations

from pathlib import Path

from ..checks.harness import Arrays
from ..checks.rows import array_producers
from ..contract.cases import Case
from ..contract.selection import fixture_ids
from .compact import as_stored
from .disagreements import Witness
from .fixtures import FixtureStore


class FixtureOracle:
    name = "fixtures"

    def __init__(self, store: FixtureStore, covered: set[str], witness: Witness | None = None) -> None:
        self.store, self.covered = store, covered
        self.skip_reason: str | None = None
        self.witness = witness  # sees both oracles' answers (disagreements.py)

    def applies(self, case: Case) -> bool:
        return case.id in self.covered

    def expected(self, case: Case) -> Arrays:
        arrays = self.store.load(case)
        if self.witness is not None:
            self.witness.saw(self.name, case.id, arrays)
        return arrays

    def error_types(self) -> dict[str, str]:
        return self.store.error_types()


class TorchOracle:
    name = "torch"

    def __init__(self, witness: Witness | None = None) -> None:
        from .torch_oracle import torch_available

        self.skip_reason = torch_available()
        self._errors: dict[str, str] | None = None
        self.witness = witness

    def applies(self, case: Case) -> bool:
        return True

    def expected(self, case: Case) -> Arrays:
        from .torch_oracle import expected_from_torch

        arrays = expected_from_torch(case, array_producers())
        if self.witness is not None:  # a size case's fixture holds less: compare what both hold
            self.witness.saw(
                self.name, case.id, as_stored(case, arrays) if case.stores_outputs_only else arrays
            )
        return arrays

    def error_types(self) -> dict[str, str]:
        if self._errors is None:
            from ..checks.errors import torch_error_types

            self._errors = torch_error_types()
        return self._errors


Oracle = FixtureOracle | TorchOracle


def make_oracles(which: str = "both", fixtures_dir: Path | None = None) -> list[Oracle]:
    """The oracles of a run; with both, they share a :class:`Witness` of where they disagree
    (``oracles[0].witness``), labelled once the run knows the versions (:func:`witness_of`)."""
    oracles: list[Oracle] = []
    witness = Witness() if which == "both" else None
    if which in ("both", "fixtures"):
        store = FixtureStore(fixtures_dir) if fixtures_dir else FixtureStore()
        oracles.append(FixtureOracle(store, fixture_ids(), witness))
    if which in ("both", "torch"):
        oracles.append(TorchOracle(witness))
    return oracles


def witness_of(oracles: list[Oracle]) -> Witness:
    """The run's witness, labelled with each oracle's torch version, and given both oracles'
    exception types when both ran the error cases."""
    from ..run.provenance import live_torch
    from .disagreements import oracle_labels

    fixtures = next((o for o in oracles if isinstance(o, FixtureOracle)), None)
    torch = next((o for o in oracles if isinstance(o, TorchOracle) and not o.skip_reason), None)
    witness = (fixtures.witness if fixtures else None) or Witness()
    witness.labels = oracle_labels(
        fixtures.store.provenance().get("torch", "unknown") if fixtures else None,
        live_torch() if torch else None,
    )
    if fixtures is not None and torch is not None and torch._errors is not None:
        witness.saw_error_types(fixtures.error_types(), torch._errors)  # the error cases ran on both
    return witness
