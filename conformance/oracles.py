"""The two oracles a run compares against: the golden fixtures (made by torch, stored) and
live torch (when installed).  Both give, per case, the same arrays (docs/fixtures.md)."""

from __future__ import annotations

from pathlib import Path

from .cases import Case
from .fixtures import FixtureStore
from .harness import Arrays
from .rows import array_producers
from .selection import fixture_ids


class FixtureOracle:
    name = "fixtures"

    def __init__(self, store: FixtureStore, covered: set[str]) -> None:
        self.store, self.covered = store, covered
        self.skip_reason: str | None = None

    def applies(self, case: Case) -> bool:
        return case.id in self.covered

    def expected(self, case: Case) -> Arrays:
        return self.store.load(case)

    def error_types(self) -> dict[str, str]:
        return self.store.error_types()


class TorchOracle:
    name = "torch"

    def __init__(self) -> None:
        from .torch_oracle import torch_available

        self.skip_reason = torch_available()
        self._errors: dict[str, str] | None = None

    def applies(self, case: Case) -> bool:
        return True

    def expected(self, case: Case) -> Arrays:
        from .torch_oracle import expected_from_torch

        return expected_from_torch(case, array_producers())

    def error_types(self) -> dict[str, str]:
        if self._errors is None:
            from .errors import torch_error_types

            self._errors = torch_error_types()
        return self._errors


Oracle = FixtureOracle | TorchOracle


def make_oracles(which: str = "both", fixtures_dir: Path | None = None) -> list[Oracle]:
    oracles: list[Oracle] = []
    if which in ("both", "fixtures"):
        store = FixtureStore(fixtures_dir) if fixtures_dir else FixtureStore()
        oracles.append(FixtureOracle(store, fixture_ids()))
    if which in ("both", "torch"):
        oracles.append(TorchOracle())
    return oracles
