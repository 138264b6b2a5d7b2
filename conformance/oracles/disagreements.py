"""When the two oracles of a run disagree: a finding about torch, not about the implementation.

The fixtures record what the torch that made them did; live torch may be another version, which
raises other exceptions, draws other dropout masks or computes other values on a case.  An
implementation that agrees with either oracle on such a case is flagged, not failed; the run
names each case once, with what each oracle says and its version (``torch-diff`` lists the same
changes, grouped by cause).

:class:`Witness` sees both oracles' answers as the run asks for them (the arrays of each case,
the exception type of each error case); :func:`reconcile` then turns the failures against one
oracle on those cases into flagged passes when the implementation agrees with the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..checks.harness import Arrays
from .torch_diff import CaseChange, case_change, disagreement, fixtures_label, live_label, said

if TYPE_CHECKING:
    from ..run.report import TableRow
    from ..run.runner import Result

ORACLES = ("fixtures", "torch")
FLAGGED = "flagged, not failed"


@dataclass
class Witness:
    """Both oracles' answers per case, compared when both are in."""

    labels: dict[str, str] = field(default_factory=dict)  # oracle name -> "fixtures (torch X)", ...
    pending: dict[str, tuple[str, Arrays]] = field(default_factory=dict)
    changes: dict[str, CaseChange] = field(default_factory=dict)  # case id -> fixtures vs torch
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)  # error id -> (fixtures, torch)

    def label(self, oracle: str) -> str:
        return self.labels.get(oracle, oracle)

    def saw(self, oracle: str, case_id: str, arrays: Arrays) -> None:
        """One oracle's arrays for a case; compared with the other's once both are in."""
        other = self.pending.pop(case_id, None)
        if other is None or other[0] == oracle:
            self.pending[case_id] = (oracle, arrays)
            return
        first, second = sorted([other, (oracle, arrays)], key=lambda pair: pair[0])  # fixtures first
        change = case_change(case_id, first[1], second[1])
        if change is not None and change.kind != "within":  # rounding is no disagreement
            self.changes[case_id] = change

    def saw_error_types(self, fixtures: dict[str, str], torch: dict[str, str]) -> None:
        for error_id in sorted(set(fixtures) & set(torch)):
            if fixtures[error_id] != torch[error_id]:
                self.errors[f"errors:{error_id}"] = (fixtures[error_id], torch[error_id])

    @property
    def mask_cases(self) -> list[str]:
        """Cases where the oracles drew other dropout masks (each replayed against its own outputs)."""
        return [case_id for case_id, change in self.changes.items() if change.kind == "masks"]

    def by_analogy(self) -> dict[str, tuple[str, str]]:
        """Cases only live torch judged (random ones) that raise what live torch raises where the
        fixtures' torch raised something else on a case both judged: case id -> (what the fixtures'
        torch raised there, what live torch raises)."""
        changed = {c.new: c.old for c in self.changes.values() if c.kind == "exception" and c.old != "values"}
        return {
            case_id: (changed[error], error)
            for case_id, (oracle, arrays) in self.pending.items()
            if oracle == "torch" and (error := str(arrays.get("error", ""))) in changed
        }

    @property
    def cases(self) -> dict[str, str]:
        """Case id -> what each oracle says, named with its version, where they disagree."""
        fixtures, torch = self.label("fixtures"), self.label("torch")
        out = {case_id: disagreement(fixtures, a, torch, b) for case_id, (a, b) in self.errors.items()}
        for case_id, change in self.changes.items():
            if change.kind == "exception":
                out[case_id] = disagreement(fixtures, change.old, torch, change.new)
            elif change.kind == "beyond":
                names = [d.array for d in change.drifts]
                arrays = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                out[case_id] = (
                    f"{fixtures} and {torch} compute other values ({arrays} beyond the drift tolerance)"
                )
        return out


def oracle_labels(fixtures_torch: str | None, live_torch: str | None) -> dict[str, str]:
    labels = {}
    if fixtures_torch:
        labels["fixtures"] = fixtures_label(fixtures_torch)
    if live_torch:
        labels["torch"] = live_label(live_torch)
    return labels


def name_oracle(message: str, label: str) -> str:
    """A failure message's "torch raises X" / "torch accepts it" said by the oracle that judged
    it, with its version ("fixtures (torch 2.13.0+cpu) raise X", "live torch 2.10.0 accepts it")."""
    plural = label.startswith("fixtures")
    return message.replace("; torch raises ", f"; {label} {'raise' if plural else 'raises'} ").replace(
        "; torch accepts it", f"; {label} {'accept' if plural else 'accepts'} it"
    )


# the checks whose expectation is the oracle's answer (the others state torch's documented behaviour)
_ORACLE_CHECKS = ("errors", "error_types", "forward")


# the one line about the run as a whole rather than one case (its count and examples are the run's)
MASK_LINE = "dropout random stream"


def reconcile(results: list[Result], witness: Witness, impl: str) -> list[str]:
    """Name every result's oracle with its version, and flag, not fail, the implementation on a
    case where the oracles disagree and it agrees with one of them.  Returns one line per
    disagreeing case of the run (what each oracle says; how the implementation was judged)."""
    for r in results:
        if r.status == "fail" and r.check in _ORACLE_CHECKS and r.oracle in witness.labels:
            r.message = name_oracle(r.message, witness.label(r.oracle))
    cases = witness.cases
    groups: dict[str, dict[str, list[Result]]] = {}  # case -> check -> its results (one per oracle)
    for r in results:
        if r.case in cases and r.oracle in ORACLES:
            groups.setdefault(r.case, {}).setdefault(r.check, []).append(r)
    lines = []
    for case_id, by_check in groups.items():
        agreed = _agreed(by_check)
        for group in by_check.values():
            for r in group:
                if r.status == "fail" and agreed - {r.oracle}:
                    r.status, r.detail = "pass", r.message
                    r.max_abs = r.ratio = None  # against the other oracle: not an error of the implementation
                    r.message = f"{FLAGGED}: the oracles disagree ({cases[case_id]})"
        failed = any(r.status == "fail" for group in by_check.values() for r in group)
        lines.append(f"{case_id}: {cases[case_id]}; {_judged(agreed, failed, witness, impl)}")
    lines += _flag_by_analogy(results, witness, impl)
    masks = witness.mask_cases
    if masks:
        lines.append(
            f"{MASK_LINE}: {witness.label('fixtures')} and {witness.label('torch')} draw other "
            f"keep-masks from the same seed in {len(masks)} case(s) ({', '.join(masks[:3])}"
            f"{', ...' if len(masks) > 3 else ''}); each oracle's masks are replayed and judged against "
            "its own outputs"
        )
    return lines


def _flag_by_analogy(results: list[Result], witness: Witness, impl: str) -> list[str]:
    """A case only live torch judged, where live torch raises another exception than the fixtures'
    torch raised on cases of the same kind: an implementation that raises the fixtures' torch's
    exception there is flagged, not failed (the forward check's message starts "raised <type>:")."""
    lines = []
    examples = [case_id for case_id, c in witness.changes.items() if c.kind == "exception"]
    for case_id, (old, new) in witness.by_analogy().items():
        says = (
            f"{said(witness.label('torch'), new)}; {said(witness.label('fixtures'), old)} on cases of "
            f"this kind ({', '.join(examples[:2])}{', ...' if len(examples) > 2 else ''})"
        )
        failing = [r for r in results if r.case == case_id and r.status == "fail" and r.oracle == "torch"]
        for r in failing:
            if r.check == "forward" and r.message.startswith(f"raised {old}:"):
                r.status, r.detail, r.max_abs, r.ratio = "pass", r.message, None, None
                r.message = f"{FLAGGED}: the oracles disagree ({says})"
        if any(r.case == case_id for r in results):
            failed = any(r.case == case_id and r.status == "fail" for r in results)
            how = f"{impl} agrees with neither (failed)" if failed else f"{impl} raises {old} ({FLAGGED})"
            lines.append(f"{case_id} (live torch only): {says}; {how}")
    return lines


def _agreed(by_check: dict[str, list[Result]]) -> set[str]:
    """The oracles the implementation agrees with in every check that both judged (a check run
    against one oracle only, such as the layout checks, does not decide it)."""
    both = [group for group in by_check.values() if {r.oracle for r in group} == set(ORACLES)]
    if not both:
        return set()
    return set.intersection(*({r.oracle for r in group if r.status == "pass"} for group in both))


def _judged(agreed: set[str], failed: bool, witness: Witness, impl: str) -> str:
    if failed:
        return f"{impl} agrees with neither oracle (failed)"
    if len(agreed) == len(ORACLES):
        return f"{impl} agrees with both"
    if agreed:
        return f"{impl} agrees with {witness.label(next(iter(agreed)))} ({FLAGGED})"
    return f"{impl} agrees with each oracle where it was checked"


def flag_notes(rows: list[TableRow], results: list[Result]) -> None:
    """A note on each table row with flagged results: how many, and why."""
    flagged: dict[str, set[str]] = {}
    for r in results:
        if r.status == "pass" and r.message.startswith(FLAGGED):
            for feature in r.features:
                flagged.setdefault(feature, set()).add(r.case)
    for row in rows:
        if row.feature in flagged:
            row.notes.insert(0, f"{len(flagged[row.feature])} case(s) {FLAGGED}: the oracles disagree")
