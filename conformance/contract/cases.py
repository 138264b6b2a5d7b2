"""Every conformance case, declared once, as data.

A :class:`Case` is one configuration of the option matrix (or a named probe or edge case).
Its id is derived from its options, so the same case has the same id in the pairwise default
run, in ``--full`` and in ``fixtures/manifest.json``; its seed is derived from the id.

Inputs and weights are made here with NumPy (deterministic for a given seed); the oracle
(fixtures or live torch) records them with the expected outputs, so an implementation is
always fed exactly the arrays the oracle saw.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from lstm_ref import layout

# -- the option matrix -----------------------------------------------------------------------

FACTORS: dict[str, tuple[Any, ...]] = {
    "num_layers": (1, 2, 3),
    "bidirectional": (False, True),
    "batch_first": (False, True),
    "proj_size": (0, 3),
    "bias": (True, False),
    "form": ("batched", "unbatched", "packed_sorted", "packed_unsorted"),
    "hx": (False, True),
    "dtype": ("float32", "float64", "complex64", "complex128"),
    "mode": ("eval", "train"),
}

DTYPE_SHORT = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128"}
DEFAULT_DROPOUT = 0.4
# Packed batches: ties, a length-1 sequence and a full-length one (L = 6).
PACKED_LENGTHS = {"packed_sorted": (6, 4, 4, 1), "packed_unsorted": (4, 6, 1, 4)}
# Weight matrices with more input features than this are scaled by sqrt(16 / fan-in).
FAN_IN_UNSCALED = 16


@dataclass(frozen=True)
class Case:
    """One forward-pass case. ``mode="train"`` replays torch's dropout masks when 0 < p < 1."""

    num_layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    proj_size: int = 0
    bias: bool = True
    form: str = "batched"  # batched | unbatched | packed_sorted | packed_unsorted
    hx: bool = False
    dtype: str = "float64"
    mode: str = "eval"  # eval | train
    dropout: float | None = None  # None: DEFAULT_DROPOUT when num_layers > 1, else 0
    input_size: int = 4
    hidden_size: int = 5
    steps: int = 6
    batch: int = 4
    probe: str = ""  # named weight pattern, see PROBES
    edge: str = ""  # named input pattern, see EDGES
    name: str = ""  # overrides the derived id (named cases)
    tags: tuple[str, ...] = field(default=(), compare=False)  # extra table rows

    # -- identity --------------------------------------------------------------------------
    @property
    def id(self) -> str:
        if self.name:
            return self.name
        parts = [f"L{self.num_layers}", "bi" if self.bidirectional else "uni"]
        if self.batch_first:
            parts.append("bf")
        if self.proj_size:
            parts.append(f"p{self.proj_size}")
        if not self.bias:
            parts.append("nobias")
        parts += [self.form, "hx" if self.hx else "nohx", DTYPE_SHORT[self.dtype], self.mode]
        return "-".join(parts)

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode()) & 0x7FFFFFFF

    @property
    def p(self) -> float:
        if self.dropout is not None:
            return self.dropout
        return DEFAULT_DROPOUT if self.num_layers > 1 else 0.0

    @property
    def packed(self) -> bool:
        return self.form.startswith("packed")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def h_out(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def replays_masks(self) -> bool:
        """Train mode with a random dropout draw between layers (torch's masks are replayed)."""
        return self.mode == "train" and 0 < self.p < 1 and self.num_layers > 1

    @property
    def batch_size(self) -> int:
        if self.form == "unbatched":
            return 1
        if self.packed:
            return len(self.lengths)
        return self.batch

    @property
    def lengths(self) -> tuple[int, ...]:
        """A packed case's sequence lengths: PACKED_LENGTHS at 6 steps; else ``batch``
        sequences from ``steps`` down to 1 with one tie (unsorted: neighbours swapped)."""
        if self.steps == 6 or not self.packed:
            return PACKED_LENGTHS.get(self.form, ())
        n, top = max(self.batch, 1), self.steps
        down = [top - (b * (top - 1)) // max(n - 1, 1) for b in range(n)]
        if n >= 4:
            down[2] = down[1]  # a tie
        if self.form == "packed_unsorted":
            for b in range(0, n - 1, 2):
                down[b], down[b + 1] = down[b + 1], down[b]
        return tuple(down)

    @property
    def stores_outputs_only(self) -> bool:
        """Size cases: their fixtures hold the expected outputs only; inputs and weights are
        regenerated from the seed and checked against a hash (docs/fixtures.md)."""
        return "sizes" in self.tags

    def config(self) -> dict[str, Any]:
        """Constructor keywords of lstm_ref.LSTM's API (dtype as a NumPy dtype)."""
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dropout": self.p,
            "bidirectional": self.bidirectional,
            "proj_size": self.proj_size,
            "dtype": np.dtype(self.dtype),
        }

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = list(self.tags)
        return d

    def features(self) -> tuple[str, ...]:
        """The conformance-table rows a forward check of this case counts towards."""
        rows = ["whole_sequence", self.dtype]
        if self.form != "batched":
            rows.append(self.form)
        for flag, row in (
            (self.batch_first, "batch_first"),
            (self.bidirectional, "bidirectional"),
            (self.num_layers > 1, "multi_layer"),
            (self.proj_size > 0, "proj_size"),
            (not self.bias, "no_bias"),
            (self.hx, "hx_given"),
        ):
            if flag:
                rows.append(row)
        if self.mode == "train" and self.num_layers > 1 and self.p > 0:
            rows.append("dropout_replay" if self.replays_masks else "dropout_p0_p1")
        if self.mode == "train" and self.num_layers > 1 and self.p == 0:
            rows.append("dropout_p0_p1")
        if self.mode == "eval" and self.num_layers > 1 and self.p > 0:
            rows.append("dropout_eval")
        if self.probe:
            rows.append("probes")
        rows += list(self.tags)
        return tuple(dict.fromkeys(rows))

    # -- data --------------------------------------------------------------------------------
    def make_data(self) -> dict[str, np.ndarray]:
        """Weights (``w.<name>`` in torch's order), input and (h0, c0), from the case's seed.

        ``x`` is the padded time-major input for packed forms (with ``lengths``), else the input
        in the layout the module expects (batch-first or not, unbatched 2-D).
        """
        rng = np.random.default_rng(self.seed)
        dt = np.dtype(self.dtype)
        data: dict[str, np.ndarray] = {}
        for name, shape in param_shapes(self).items():
            data["w." + name] = _draw(rng, shape, dt, low=-0.7, high=0.7)
            if len(shape) == 2 and shape[1] > FAN_IN_UNSCALED:
                # wide layers: scaled by fan-in (as torch's own init) so the gates stay out of
                # saturation, where a wrong unit would hide (docs/rows.md, "Tolerances")
                data["w." + name] *= np.sqrt(FAN_IN_UNSCALED / shape[1])
        if self.probe:
            PROBES[self.probe](self, data)
        steps, batch = self.steps, self.batch_size
        if self.form == "unbatched":
            x = _draw(rng, (steps, self.input_size), dt)
        elif self.packed:
            data["lengths"] = np.asarray(self.lengths, dtype=np.int64)
            x = _draw(rng, (steps, batch, self.input_size), dt)
            for b, n in enumerate(data["lengths"]):
                x[n:, b] = 1e3  # padding: never part of the packed data
        else:
            x = _draw(rng, (steps, batch, self.input_size), dt)
            if self.batch_first:
                x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
        if self.edge:
            x = EDGES[self.edge](self, x)
        data["x"] = x
        if self.hx:
            layers_dirs = self.num_layers * self.num_directions
            lead = (layers_dirs,) if self.form == "unbatched" else (layers_dirs, batch)
            data["h0"] = _draw(rng, (*lead, self.h_out), dt, scale=0.5)
            data["c0"] = _draw(rng, (*lead, self.hidden_size), dt, scale=0.5)
        return data


def _draw(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    dt: np.dtype,
    low: float | None = None,
    high: float | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    def real() -> np.ndarray:
        if low is not None and high is not None:
            return rng.uniform(low, high, size=shape)
        return rng.standard_normal(shape) * scale

    if dt.kind == "c":
        # complex sigmoid/tanh have poles (docs/semantics.md section 6) and |sigmoid| can exceed 1,
        # so states can grow: parts scaled by 0.35 keep every case of the full product
        # well-conditioned (at 0.5, one complex64 case in 512 reached |out| ~ 7 and torch and a
        # 64-bit evaluation disagreed by 1e-4 there)
        return (0.35 * real() + 0.35j * real()).astype(dt)
    return real().astype(dt)


def param_shapes(case: Case) -> dict[str, tuple[int, ...]]:
    """torch's parameter names, registration order and shapes for this case's configuration."""
    return layout.param_shapes(
        case.input_size, case.hidden_size, case.num_layers, case.bidirectional, case.bias, case.proj_size
    )


# -- probes: weight patterns that isolate one gate, one bias, one direction, one layer --------

GATES = layout.GATES


def _gate_probe(gate: str) -> Any:
    """Only gate ``gate`` has (random) weights; the other three see a distinct constant bias.

    A swapped gate order or a transposed block moves the only informative block elsewhere.
    """
    keep = GATES.index(gate)
    constants = {"i": 0.8, "f": 1.3, "g": 0.6, "o": -0.4}

    def apply(case: Case, data: dict[str, np.ndarray]) -> None:
        h = case.hidden_size
        for key in [k for k in data if k.startswith(("w.weight_ih", "w.weight_hh", "w.bias_ih"))]:
            w = data[key]
            for k, name in enumerate(GATES):
                if k == keep:
                    continue
                if key.startswith("w.bias_ih"):
                    w[k * h : (k + 1) * h] = constants[name]
                else:
                    w[k * h : (k + 1) * h] = 0
        for key in [k for k in data if k.startswith("w.bias_hh")]:
            w = data[key]
            for k in range(4):
                if k != keep:
                    w[k * h : (k + 1) * h] = 0

    return apply


def _bias_probe(which: str) -> Any:
    """Zero every bias vector except ``bias_<which>`` (a dropped or swapped bias shows)."""

    def apply(case: Case, data: dict[str, np.ndarray]) -> None:
        other = "hh" if which == "ih" else "ih"
        for key in [k for k in data if k.startswith(f"w.bias_{other}")]:
            data[key][:] = 0
            data[key.replace(other, which)] *= 3  # large enough to matter

    return apply


def _direction_probe(direction: int) -> Any:
    """Zero every weight of the other direction: its output is exactly 0 (g = tanh(0))."""

    def apply(case: Case, data: dict[str, np.ndarray]) -> None:
        for key in data:
            if key.startswith("w.") and key.endswith("_reverse") != (direction == 0):
                data[key][:] = 0

    return apply


def _recurrent_layer_probe(layer: int) -> Any:
    """Only layer ``layer`` has a recurrent weight (weight_hh); others are feed-forward."""

    def apply(case: Case, data: dict[str, np.ndarray]) -> None:
        for key in data:
            if key.startswith("w.weight_hh_l") and not key.startswith(f"w.weight_hh_l{layer}"):
                data[key][:] = 0
            elif key.startswith(f"w.weight_hh_l{layer}"):
                data[key] *= 2

    return apply


PROBES: dict[str, Any] = {
    **{f"gate_{g}": _gate_probe(g) for g in GATES},
    "bias_ih_only": _bias_probe("ih"),
    "bias_hh_only": _bias_probe("hh"),
    "forward_direction_only": _direction_probe(0),
    "reverse_direction_only": _direction_probe(1),
    "recurrent_layer0_only": _recurrent_layer_probe(0),
    "recurrent_layer1_only": _recurrent_layer_probe(1),
}


# -- edges: input patterns at the numerical edges ----------------------------------------------


def _saturate(case: Case, x: np.ndarray) -> np.ndarray:
    return x * 1e3


def _nan_inf(case: Case, x: np.ndarray) -> np.ndarray:
    x = x.copy()
    # one NaN in batch element 0 at step 2, one +inf in element 1 at step 4 (time-major input)
    x[2, 0, 1] = np.nan
    x[4, 1, 0] = np.inf
    return x


EDGES: dict[str, Any] = {"saturated": _saturate, "nan_inf": _nan_inf}


# -- the default and full case lists ------------------------------------------------------------


def pairwise(factors: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """A small greedy all-pairs covering array: every pair of values of every two factors
    appears in at least one row. Deterministic (ties go to the first value)."""
    names = list(factors)
    uncovered = {
        (a, va, b, vb)
        for a, b in itertools.combinations(range(len(names)), 2)
        for va in range(len(factors[names[a]]))
        for vb in range(len(factors[names[b]]))
    }
    rows: list[dict[str, Any]] = []
    while uncovered:
        a, va, b, vb = min(uncovered)
        row: dict[int, int] = {a: va, b: vb}
        for f in range(len(names)):
            if f in row:
                continue
            best, best_gain = 0, -1
            for v in range(len(factors[names[f]])):
                gain = sum(
                    ((min(f, g), v if f < g else row[g], max(f, g), row[g] if f < g else v) in uncovered)
                    for g in row
                )
                if gain > best_gain:
                    best, best_gain = v, gain
            row[f] = best
        for f, g in itertools.combinations(sorted(row), 2):
            uncovered.discard((f, row[f], g, row[g]))
        rows.append({names[f]: factors[names[f]][v] for f, v in sorted(row.items())})
    return rows


@functools.cache
def _default_pairs() -> tuple[dict[str, Any], ...]:
    return tuple(pairwise(FACTORS))  # half a second: made once per process


def matrix_cases(full: bool = False) -> list[Case]:
    combos = (
        [dict(zip(FACTORS, values, strict=True)) for values in itertools.product(*FACTORS.values())]
        if full
        else _default_pairs()
    )
    return [Case(**c) for c in combos]


def named_cases() -> list[Case]:
    """Probes, dropout corner cases and numerical edges, on top of the option matrix.

    (Long because it is data: one declared case per entry.)"""
    cases: list[Case] = []
    for probe in ("gate_i", "gate_f", "gate_g", "gate_o", "bias_ih_only", "bias_hh_only"):
        cases.append(Case(name=f"probe-{probe}", probe=probe, hx=True, batch=2))
    for probe in ("forward_direction_only", "reverse_direction_only"):
        cases.append(Case(name=f"probe-{probe}", probe=probe, bidirectional=True, batch=2))
    for probe in ("recurrent_layer0_only", "recurrent_layer1_only"):
        cases.append(Case(name=f"probe-{probe}", probe=probe, num_layers=2, batch=2))
    cases += [
        # one isolated gate in float32 on torch's oneDNN path too
        Case(name="probe-gate_f-f32", probe="gate_f", dtype="float32", batch=2),
        # dropout: eval is the identity, p = 0 and p = 1 are deterministic, replay in f32 and packed
        Case(name="dropout-p0-train", num_layers=2, mode="train", dropout=0.0),
        Case(name="dropout-p1-train", num_layers=3, mode="train", dropout=1.0, bidirectional=True),
        Case(name="dropout-replay-f32-bf", num_layers=3, mode="train", dtype="float32", batch_first=True),
        Case(
            name="dropout-replay-packed-bi",
            num_layers=2,
            mode="train",
            form="packed_unsorted",
            bidirectional=True,
            dropout=0.6,
        ),
        Case(name="dropout-complex-raises", num_layers=2, mode="train", dtype="complex128"),
        # interactions that all-pairs covers only once: packed + hx order, deep bidirectional stacks
        Case(
            name="mix-packed_unsorted-hx-bi-L2-proj",
            form="packed_unsorted",
            hx=True,
            bidirectional=True,
            num_layers=2,
            proj_size=3,
        ),
        Case(
            name="mix-packed_sorted-hx-bf-f32-train",
            form="packed_sorted",
            hx=True,
            batch_first=True,
            num_layers=2,
            mode="train",
            dtype="float32",
        ),
        Case(
            name="mix-bi-L3-proj-hx-bf",
            bidirectional=True,
            num_layers=3,
            proj_size=2,
            hx=True,
            batch_first=True,
        ),
        # numerical edges
        Case(name="edge-long-1000", steps=1000, batch=2, num_layers=2, hx=True, tags=("edge_long",)),
        Case(name="edge-long-1000-f32", steps=1000, batch=2, dtype="float32", tags=("edge_long",)),
        Case(name="edge-saturated", edge="saturated", hx=True, bidirectional=True, tags=("edge_saturated",)),
        Case(name="edge-saturated-f32", edge="saturated", dtype="float32", tags=("edge_saturated",)),
        Case(name="edge-nan-inf", edge="nan_inf", num_layers=2, bidirectional=True, tags=("edge_nan_inf",)),
        Case(name="edge-batch0", batch=0, num_layers=2, bidirectional=True, tags=("edge_batch0",)),
        Case(name="edge-batch0-hx", batch=0, hx=True, proj_size=2, tags=("edge_batch0",)),
        Case(name="edge-one-step", steps=1, num_layers=2, hx=True),
        Case(name="edge-complex128-proj", dtype="complex128", proj_size=2, bidirectional=True, hx=True),
    ]
    cases += size_cases()
    return cases + float32_twins(cases)


def size_cases() -> list[Case]:
    """Sizes on both sides of the widths kernels block by (4/8/16 SIMD lanes, 32/64/128 GEMM
    and GPU tiles, 64/128-step chunks): exact multiples and one past them, input smaller,
    equal and larger than hidden, a batched batch of one (why these: docs/rows.md, "Sizes").
    All eval mode (their fixtures store outputs only, and a mask needs torch's RNG)."""

    def size(name: str, **options: Any) -> Case:
        return Case(name=f"size-{name}", tags=("sizes",), **options)

    return [
        # exact multiples of every lane and tile width: the full-block paths alone
        size("h32-i32-b16", hidden_size=32, input_size=32, batch=16, steps=5, hx=True),
        # one past a block everywhere: H 32+1, I 16+1 (I < H), batch 8+1
        size("h33-i17-b9-bf", hidden_size=33, input_size=17, batch=9, steps=5, batch_first=True),
        # I > H: H a whole 64-tile, I 128+1, batch 16+1; bidirectional without bias
        size(
            "h64-i129-b17-bi-nobias",
            hidden_size=64,
            input_size=129,
            batch=17,
            steps=2,
            bidirectional=True,
            bias=False,
        ),
        # H 128+1 projected to 31 (layer 1 reads 2 * 31 = 62 features), two bidirectional layers
        size(
            "h129-p31-i20-L2-bi",
            hidden_size=129,
            proj_size=31,
            input_size=20,
            num_layers=2,
            bidirectional=True,
            batch=3,
            steps=4,
            hx=True,
        ),
        # a batched batch of one (matrix-vector kernels), projection to a whole 16
        size(
            "b1-h33-p16-i40-L2",
            hidden_size=33,
            proj_size=16,
            input_size=40,
            batch=1,
            steps=7,
            num_layers=2,
            hx=True,
        ),
        # 130 = 128 + 2 = 2 * 64 + 2 steps: chunked sequence kernels, two layers, batch-first
        size(
            "t130-h8-i8-L2-bf",
            steps=130,
            hidden_size=8,
            input_size=8,
            batch=2,
            num_layers=2,
            hx=True,
            batch_first=True,
        ),
        # packed, both directions, lengths 67 (64 + 3) down to 1: each reverse pass starts at its own end
        size(
            "t67-h9-i9-packed-bi",
            steps=67,
            form="packed_unsorted",
            bidirectional=True,
            hidden_size=9,
            input_size=9,
            batch=5,
        ),
    ]


def float32_twins(cases: list[Case]) -> list[Case]:
    """A float32 copy of every float64 named case that has none yet, so that an implementation
    supporting float32 alone can earn every row but the 64-bit dtype rows (probes, dropout
    p = 0 / 1, NaN/Inf, batch 0, ...)."""
    names = {case.name for case in cases}
    twins = [
        replace(case, dtype="float32", name=f"{case.name}-f32") for case in cases if case.dtype == "float64"
    ]
    return [twin for twin in twins if twin.name not in names]


def all_cases(full: bool = False) -> list[Case]:
    """The run's cases, without duplicates (named cases after the matrix)."""
    seen: dict[str, Case] = {}
    for case in matrix_cases(full) + named_cases():
        seen.setdefault(case.id, case)
    return list(seen.values())


def random_cases(count: int, seed: int = 20240601) -> list[Case]:
    """Random configurations (sizes included) for the live-torch oracle; seeded, so stable."""
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        hidden = int(rng.integers(1, 7))
        opts = {name: values[int(rng.integers(len(values)))] for name, values in FACTORS.items()}
        opts["proj_size"] = int(rng.integers(0, hidden))
        cases.append(
            Case(
                **opts,
                input_size=int(rng.integers(1, 6)),
                hidden_size=hidden,
                steps=int(rng.integers(1, 9)) if not opts["form"].startswith("packed") else 6,
                batch=int(rng.integers(1, 5)),
                name=f"random-{k}",
                tags=("random",),
            )
        )
    return cases
