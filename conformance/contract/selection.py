"""The default selection, computed over the space the implementation supports.

The pairwise covering array of ``cases.pairwise`` is made over the whole option matrix; an
implementation that declares features (``conformance_unsupported``) loses every case that
carries one of them, and with those cases the combinations of what it does support.  So the
default run is the pairwise set and the named cases, plus a *completion*: matrix cases, among
those the implementation supports, chosen greedily until every pair of supported option values
and every supported triple of the most bug-prone factors (form x direction x dtype) appears in
a supported case.  The completion is a pure function of the declarations (ties go to the first
case in product order), so a selection is the same on every run and machine.

The fixtures hold the completions of the declaration sets in ``FIXTURED_DECLARATIONS`` (and of
none), so those selections run without torch too; without torch, the completion of any other
set is chosen among the cases the fixtures hold (docs/rows.md, "Coverage after declarations").
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Collection

import numpy as np

from .cases import FACTORS, Case, all_cases, matrix_cases

TRIPLE = ("form", "bidirectional", "dtype")  # covered three-way, not only pairwise

# Declaration sets (rows, aliases expanded) whose completions the fixtures hold: complex +
# float64 + proj_size + dropout, the common one of fused float32 runtimes (OpenVINO,
# TensorFlow's fused op, quantized runtimes). Each set costs about 12 small fixture files
# (200 KB); any other set is completed from the fixtures' cases when torch is absent.
FIXTURED_DECLARATIONS: tuple[tuple[str, ...], ...] = (
    (
        "complex64",
        "complex128",
        "float64",
        "proj_size",
        "dropout_replay",
        "dropout_p0_p1",
        "dropout_statistics",
    ),
)


def supported(case: Case, unsupported: Collection[str]) -> bool:
    """No row the case counts towards is declared unsupported (else every check of it skips)."""
    return not any(feature in unsupported for feature in case.features())


@functools.cache
def _product() -> tuple[tuple[Case, ...], np.ndarray]:
    """Every matrix case (product order) and, per case, the ids of the option-value pairs and
    form x direction x dtype triple it covers."""
    names = list(FACTORS)
    combos = list(itertools.product(*(range(len(v)) for v in FACTORS.values())))
    cases = tuple(Case(**{n: FACTORS[n][i] for n, i in zip(names, combo, strict=True)}) for combo in combos)
    index = np.asarray(combos)
    columns, offset = [], 0
    for a, b in itertools.combinations(range(len(names)), 2):
        nb = len(FACTORS[names[b]])
        columns.append(offset + index[:, a] * nb + index[:, b])
        offset += len(FACTORS[names[a]]) * nb
    f, d, t = (names.index(n) for n in TRIPLE)
    nd, nt = len(FACTORS[names[d]]), len(FACTORS[names[t]])
    columns.append(offset + (index[:, f] * nd + index[:, d]) * nt + index[:, t])
    return cases, np.stack(columns, axis=1)


@functools.cache
def _base_ids() -> frozenset[str]:
    return frozenset(case.id for case in matrix_cases())


def _completion(unsupported: frozenset[str], available: frozenset[str] | None) -> tuple[Case, ...]:
    cases, ids = _product()
    ok = np.array([supported(c, unsupported) and (available is None or c.id in available) for c in cases])
    in_base = np.array([c.id in _base_ids() for c in cases])
    uncovered = np.zeros(int(ids.max()) + 1, dtype=bool)
    uncovered[ids[ok].ravel()] = True
    uncovered[ids[ok & in_base].ravel()] = False
    picked: list[Case] = []
    while uncovered.any():
        gain = np.where(ok, uncovered[ids].sum(axis=1), 0)
        best = int(np.argmax(gain))
        if gain[best] == 0:
            break
        picked.append(cases[best])
        uncovered[ids[best]] = False
    return tuple(picked)


def completion(unsupported: Collection[str], available: Collection[str] | None = None) -> list[Case]:
    """The matrix cases added to the default run for an implementation declaring
    ``unsupported``; ``available`` (case ids) limits the choice (to the fixtures' cases, when
    no live torch can judge others)."""
    frozen = None if available is None else frozenset(available)
    return list(_cached_completion(frozenset(unsupported), frozen))


@functools.cache
def _cached_completion(unsupported: frozenset[str], available: frozenset[str] | None) -> tuple[Case, ...]:
    return _completion(unsupported, available)


def _merge(*groups: list[Case]) -> list[Case]:
    seen: dict[str, Case] = {}
    for case in itertools.chain(*groups):
        seen.setdefault(case.id, case)
    return list(seen.values())


@functools.cache
def _fixture_cases() -> tuple[Case, ...]:
    extra = [completion(set(declared)) for declared in ((), *FIXTURED_DECLARATIONS)]
    return tuple(_merge(all_cases(full=False), *extra))


def fixture_cases() -> list[Case]:
    """What ``lstm-conformance regen`` stores: the default cases and the completions of no
    declarations and of every set in ``FIXTURED_DECLARATIONS``."""
    return list(_fixture_cases())


def fixture_ids() -> set[str]:
    return {case.id for case in _fixture_cases()}


def default_cases(unsupported: Collection[str] = (), with_torch: bool = True) -> list[Case]:
    """The default run for an implementation declaring ``unsupported``: the pairwise set and the
    named cases, then the completion (among the fixtures' cases when there is no live torch)."""
    available = None if with_torch else fixture_ids()
    return _merge(all_cases(full=False), completion(unsupported, available))


def uncovered(unsupported: Collection[str], cases: list[Case]) -> int:
    """How many supported pairs/triples no supported case of ``cases`` covers (0 with torch)."""
    product, ids = _product()
    where = {c.id: i for i, c in enumerate(product)}
    ok = np.array([supported(c, unsupported) for c in product])
    need = np.zeros(int(ids.max()) + 1, dtype=bool)
    need[ids[ok].ravel()] = True
    for case in cases:
        if case.id in where and supported(case, unsupported):
            need[ids[where[case.id]]] = False
    return int(need.sum())
