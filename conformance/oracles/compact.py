"""Fixtures of size cases: expected outputs only.

A size case's weights and inputs are megabytes at the sizes that matter (a 129-wide layer has
66k weights) but are a pure function of the case's seed (``Case.make_data``), so its fixture
stores only what torch computed -- the exact (64-bit) output, h_n, c_n and per-layer outputs,
without gradients, stepwise runs or torch's own 32-bit result (live torch checks those) -- plus, in the manifest, the sha256 of the inputs torch saw.  Reading the fixture
regenerates the inputs with NumPy and checks that hash (32-bit cases store the exact answer
rounded to 32 bits, see NARROW), so a NumPy whose random streams changed
is a ``FixtureError`` naming the cause, never a silent comparison against other inputs
(docs/fixtures.md, "Size cases").
"""

from __future__ import annotations

import hashlib

import numpy as np

from lstm_ref.packing import pack_padded_sequence

from ..contract.cases import Case

INPUTS = ("x", "h0", "c0", "lengths", "packed_data", "batch_sizes", "sorted_indices", "unsorted_indices")
HASH_KEY = "inputs_sha256"  # the manifest entry's field
# 32-bit size cases store their exact (64-bit) answer rounded to 32 bits: an error of at most
# 2^-24 relative (6e-8 on values below 1), under 1% of FORWARD's float32 atol, for half the bytes
NARROW = {"float32": "float32", "complex64": "complex64"}
WIDE = {"float32": "float64", "complex64": "complex128"}


def is_input(name: str) -> bool:
    return name.startswith("w.") or name in INPUTS


def regenerate_inputs(case: Case) -> dict[str, np.ndarray]:
    """Weights and inputs as the torch oracle records them, packing included (in NumPy)."""
    arrays = case.make_data()
    if case.packed:
        packed = pack_padded_sequence(
            arrays["x"], arrays["lengths"], enforce_sorted=case.form == "packed_sorted"
        )
        arrays["packed_data"] = packed.data
        arrays["batch_sizes"] = np.asarray(packed.batch_sizes, dtype=np.int64)
        if packed.sorted_indices is not None and packed.unsorted_indices is not None:
            arrays["sorted_indices"] = np.asarray(packed.sorted_indices, dtype=np.int64)
            arrays["unsorted_indices"] = np.asarray(packed.unsorted_indices, dtype=np.int64)
    return arrays


def inputs_hash(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every input array's name, dtype, shape and bytes (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(k for k in arrays if is_input(k)):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def outputs_only(case: Case, arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """What a size case's fixture stores, and the hash of its inputs.  The regenerated inputs
    must be the ones torch saw (else the fixture could never be read back)."""
    again = regenerate_inputs(case)
    theirs = {k: v for k, v in arrays.items() if is_input(k)}
    if set(again) != set(theirs) or any(
        again[k].dtype != v.dtype or not np.array_equal(again[k], v) for k, v in theirs.items()
    ):
        raise RuntimeError(f"{case.id}: inputs regenerated in NumPy differ from those the torch oracle used")
    exact = {k for k in arrays if k.startswith("exact_")}
    stored = {
        k: v
        for k, v in arrays.items()
        if not is_input(k)
        and not k.startswith(("dout_", "grad_", "stepwise_", "exact_stepwise_"))
        and "exact_" + k not in exact  # 32-bit: the exact answer is what is judged
    }
    if case.dtype in NARROW:  # the exact answer rounded to 32 bits: within 2^-24 relative
        stored = {k: v.astype(NARROW[case.dtype]) if k.startswith("exact_") else v for k, v in stored.items()}
    return stored, inputs_hash(theirs)


def with_inputs(
    case: Case, stored: dict[str, np.ndarray], expected_hash: str, where: str
) -> dict[str, np.ndarray]:
    """The stored outputs with the inputs regenerated from the seed, checked against the hash."""
    from .fixtures import REGEN_COMMAND, FixtureError

    inputs = regenerate_inputs(case)
    if inputs_hash(inputs) != expected_hash:
        raise FixtureError(
            f"{where}: the inputs regenerated from the case's seed differ from those torch saw "
            f"({HASH_KEY} mismatch: NumPy's random streams changed since `{REGEN_COMMAND}`, numpy "
            f"{np.__version__} now); run `{REGEN_COMMAND}`"
        )
    if case.dtype in WIDE:  # compared as the oracle's exact arrays always are: in 64 bits
        stored = {k: v.astype(WIDE[case.dtype]) if k.startswith("exact_") else v for k, v in stored.items()}
    return {**inputs, **stored}


def as_stored(case: Case, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Live torch's arrays for a size case as its fixture holds them (outputs only, 32-bit exact
    answers rounded as stored), so the two oracles are compared on what both have."""
    stored, _ = outputs_only(case, arrays)
    if case.dtype in WIDE:
        stored = {k: v.astype(WIDE[case.dtype]) if k.startswith("exact_") else v for k, v in stored.items()}
    return {**{k: v for k, v in arrays.items() if is_input(k)}, **stored}
