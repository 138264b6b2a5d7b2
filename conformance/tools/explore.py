"""``lstm-conformance explore``: a property-based search over the whole option space, sizes
up to a few hundred, for a configuration the implementation gets wrong.

Hypothesis draws configurations (options the implementation does not declare unsupported,
input/hidden/projection sizes, steps and batch); each is run through a worker process like
every case of a normal run (``workers.Worker``: a crash or a hang fails the example, it does
not end the search) with every per-case check, against live torch -- or, without torch,
against lstm_ref evaluated in 64 bits as the exact answer (labelled ``lstm_ref-f64``).  A
failure is shrunk by Hypothesis, then by a sweep that tries every smaller value of each size,
to the smallest configuration that still fails; it is printed as a case spec (JSON) with the
one command that replays it (``lstm-conformance --impl X --case-spec FILE.json``), and written
to ``--report``.  docs/rows.md, "Exploring".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..checks.harness import Arrays
from ..contract.cases import FACTORS, Case
from ..contract.selection import supported
from ..run.runner import Job, Payload, Result, case_job

SPEC_FORMAT = "lstm-conformance case spec 1"
WORK_CAP = 3e7  # multiply-adds of one forward: steps are cut to stay under it (a few ms to 0.1 s)
SMALL = {"hidden_size": 6, "input_size": 5, "steps": 8, "batch": 4}  # when `sizes` is declared
SWEEP_AT_MOST = 400  # runs of the final size sweep


# -- oracles --------------------------------------------------------------------------------------


class ReferenceOracle:
    """Without torch: lstm_ref in float64/complex128 on the case's inputs is the exact answer
    (for 32-bit cases, stored as ``exact_*`` as the torch oracle does)."""

    name = "lstm_ref-f64"
    skip_reason: str | None = None

    def applies(self, case: Case) -> bool:
        return True

    def expected(self, case: Case) -> Arrays:
        import lstm_ref

        from ..checks.harness import model_input, oracle_weights
        from ..oracles.compact import regenerate_inputs
        from ..oracles.torch_oracle import EXACT_DTYPES, EXACT_PREFIX, mask_shape

        arrays = regenerate_inputs(case)
        masks = None
        if case.replays_masks:
            rng = np.random.default_rng(case.seed)
            shape = mask_shape(case, arrays, case.num_directions * case.h_out)
            for k in range(case.num_layers - 1):
                keep = rng.random(shape) >= case.p
                arrays[f"mask_{k}"] = keep.reshape(case.steps, -1) if case.form == "unbatched" else keep
            masks = [arrays[f"mask_{k}"] for k in range(case.num_layers - 1)]  # as the suite passes them
        wide = np.dtype(EXACT_DTYPES.get(case.dtype, case.dtype))
        model = lstm_ref.LSTM(**{**case.config(), "dtype": wide}, seed=0)
        model.load_state_dict({k: v.astype(wide) for k, v in oracle_weights(arrays).items()})
        model.train(case.mode == "train")
        x = model_input(case, arrays)
        x = x._replace(data=x.data.astype(wide)) if case.packed else x.astype(wide)
        hx = None if "h0" not in arrays else (arrays["h0"].astype(wide), arrays["c0"].astype(wide))
        prefix = EXACT_PREFIX if case.dtype in EXACT_DTYPES else ""
        try:
            out, (h_n, c_n) = model(x, hx, dropout_masks=masks)
        except Exception as exc:  # torch raises the same (complex dropout in training)
            arrays["error"] = np.array(type(exc).__name__)
            return arrays
        data = out[0] if case.packed else out
        arrays.update({prefix + "output": data, prefix + "h_n": h_n, prefix + "c_n": c_n})
        return arrays

    def error_types(self) -> dict[str, str]:
        return {}


def live_oracle() -> Any:
    """The torch oracle without gradients (explore compares forwards), else the reference."""
    from ..oracles.torch_oracle import torch_available

    if torch_available() is not None:
        return ReferenceOracle()

    class ForwardTorch:
        name, skip_reason = "torch", None

        def applies(self, case: Case) -> bool:
            return True

        def expected(self, case: Case) -> Arrays:
            from ..oracles.torch_oracle import expected_from_torch

            return expected_from_torch(case)

        def error_types(self) -> dict[str, str]:
            return {}

    return ForwardTorch()


def spec_oracle() -> Any:
    """A --case-spec replay: live torch with every array (gradients too), else the reference."""
    from ..oracles.sources import TorchOracle
    from ..oracles.torch_oracle import torch_available

    return TorchOracle() if torch_available() is None else ReferenceOracle()


def oracle_label(oracle: Any) -> str:
    if oracle.name == "torch":
        import torch

        return f"live torch {torch.__version__}"
    return "lstm_ref in 64 bits as the exact answer (torch is not installed)"


# -- case specs -----------------------------------------------------------------------------------


def write_spec(path: Path, case: Case, extra: dict[str, Any]) -> None:
    from ..oracles.fixtures import atomic_write

    body = {"format": SPEC_FORMAT, "case": case.to_json(), **extra}
    atomic_write(path, (json.dumps(body, indent=1) + "\n").encode())


def read_spec(path: Path) -> Case:
    """A case spec (``explore``'s, or a bare case dict); ValueError says what is wrong."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"--case-spec {path}: unreadable ({exc})") from exc
    data = body.get("case", body) if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ValueError(f"--case-spec {path}: not a case spec (a JSON object with 'case')")
    known = set(Case.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"--case-spec {path}: unknown field(s) {', '.join(unknown)}")
    try:
        return Case(**{**data, "tags": tuple(data.get("tags", ()))})
    except TypeError as exc:
        raise ValueError(f"--case-spec {path}: {exc}") from exc


# -- drawing configurations -----------------------------------------------------------------------


def explored_case(options: dict[str, Any]) -> Case:
    """A case named by all its options and sizes (its seed, hence its data, follows the name)."""
    case = Case(**options)
    sizes = f"I{case.input_size}-H{case.hidden_size}-T{case.steps}-B{case.batch}"
    return replace(case, name=f"explore-{case.id}-{sizes}")


def _fit_work(options: dict[str, Any]) -> dict[str, Any]:
    """Fewer steps (then a smaller batch) until one forward stays under WORK_CAP."""
    d = 2 if options["bidirectional"] else 1
    h, out = options["hidden_size"], options["proj_size"] or options["hidden_size"]
    per_row = options["num_layers"] * d * 4 * h * (max(options["input_size"], d * out) + out)
    batch = 1 if options["form"] == "unbatched" else options["batch"]
    steps = max(1, min(options["steps"], int(WORK_CAP // max(per_row * batch, 1))))
    return {**options, "steps": steps}


def case_strategy(unsupported: dict[str, str], max_size: int) -> Any:
    """Hypothesis strategy of explored cases within what the implementation supports."""
    from hypothesis import assume
    from hypothesis import strategies as st

    small = "sizes" in unsupported
    cap = {k: (v if small else max_size) for k, v in SMALL.items()}

    def allowed(row: str, values: tuple[Any, ...]) -> list[Any]:
        return [values[0]] if row in unsupported else list(values)

    @st.composite
    def draw_case(draw: Any) -> Case:
        options: dict[str, Any] = {
            "num_layers": draw(st.integers(1, 1 if "multi_layer" in unsupported else 3)),
            "bidirectional": draw(st.sampled_from(allowed("bidirectional", (False, True)))),
            "batch_first": draw(st.sampled_from(allowed("batch_first", (False, True)))),
            "bias": draw(st.sampled_from(allowed("no_bias", (True, False)))),
            "form": draw(
                st.sampled_from([f for f in FACTORS["form"] if f == "batched" or f not in unsupported])
            ),
            "hx": draw(st.sampled_from(allowed("hx_given", (False, True)))),
            "dtype": draw(
                st.sampled_from([t for t in FACTORS["dtype"] if t not in unsupported] or ["float64"])
            ),
            "mode": draw(st.sampled_from(FACTORS["mode"])),
            "hidden_size": draw(st.integers(1, cap["hidden_size"])),
            "input_size": draw(st.integers(1, cap["input_size"])),
            "steps": draw(st.integers(1, cap["steps"])),
            "batch": draw(st.integers(1, min(cap["batch"], 64))),
        }
        proj_ok = "proj_size" not in unsupported and options["hidden_size"] > 1
        options["proj_size"] = draw(st.integers(0, options["hidden_size"] - 1)) if proj_ok else 0
        case = explored_case(_fit_work(options))
        assume(supported(case, unsupported))
        return case

    return draw_case()


# -- running one example in a worker -------------------------------------------------------------


class WorkerRunner:
    """One worker process (a ``workers.Pool`` of one), kept between examples; the pool replaces
    it after a crash or a hang, which fails that example only."""

    def __init__(self, spec: str, timeout: float) -> None:
        from ..run.workers import Pool

        self.pool = Pool(spec, "", 1, timeout, fresh=False)

    def start(self) -> tuple[Any, str]:
        return self.pool.start()

    def run(self, job: Job, payload: Payload) -> list[Result]:
        return self.pool.run([job], lambda _: payload, lambda *_: None, keep=True).results

    def close(self) -> None:
        self.pool.close()


# -- the search -----------------------------------------------------------------------------------


class _OutOfTime(BaseException):
    """Ends the search when --seconds is spent (a BaseException: Hypothesis does not shrink it)."""


@dataclass
class Outcome:
    examples: int = 0
    runs: int = 0  # examples plus shrinking runs
    failing: Case | None = None
    failures: list[Result] = field(default_factory=list)
    out_of_time: bool = False


class Explorer:
    def __init__(self, spec: str, unsupported: dict[str, str], runner: WorkerRunner, oracle: Any) -> None:
        from ..run.impls import Impl

        self.impl = Impl(spec, _not_here, unsupported)
        self.runner, self.oracle, self.outcome = runner, oracle, Outcome()

    def failures(self, case: Case) -> list[Result]:
        self.outcome.runs += 1
        job = case_job(self.impl, case, [self.oracle])
        return [r for r in self.runner.run(job, job.prepare()) if r.status == "fail"]

    def search(self, examples: int, seconds: float | None, seed: int, max_size: int) -> Outcome:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hypothesis_seed

        stop_at = None if seconds is None else time.monotonic() + seconds

        @hypothesis_seed(seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=False,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case_strategy(self.impl.unsupported, max_size))
        def example(case: Case) -> None:
            if stop_at is not None and time.monotonic() > stop_at and self.outcome.failing is None:
                raise _OutOfTime
            self.outcome.examples += self.outcome.failing is None
            failed = self.failures(case)
            if failed:
                self.outcome.failing, self.outcome.failures = case, failed
                raise AssertionError(failed[0].message)

        try:
            example()
        except _OutOfTime:
            self.outcome.out_of_time = True
        except AssertionError:
            pass  # the failing example is in self.outcome (the last failing run is the shrunk one)
        if self.outcome.failing is not None:
            self.sweep()
        return self.outcome

    def sweep(self) -> None:
        """Every smaller value of each size, smallest first: a kernel's threshold is not
        monotone (33 fails, 64 passes, 65 fails), which Hypothesis's shrinker may step over."""
        runs = 0
        changed = True
        while changed and runs < SWEEP_AT_MOST:
            changed = False
            case = self.outcome.failing
            assert case is not None
            for name, low in (
                ("num_layers", 1),
                ("hidden_size", 1),
                ("proj_size", 0),
                ("input_size", 1),
                ("steps", 1),
                ("batch", 1),
            ):
                for value in range(low, getattr(case, name)):
                    options = {**_options(case), name: value}
                    if options["proj_size"] >= options["hidden_size"]:
                        continue
                    runs += 1
                    trial = explored_case(options)
                    failed = self.failures(trial)
                    if failed:
                        self.outcome.failing, self.outcome.failures = trial, failed
                        case, changed = trial, True
                        break
                    if runs >= SWEEP_AT_MOST:
                        return


def _options(case: Case) -> dict[str, Any]:
    return {k: v for k, v in asdict(case).items() if k not in ("name", "tags")}


def _not_here(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the implementation runs in a worker process")


# -- the command ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lstm-conformance explore",
        description="Search the whole option space, sizes up to --max-size, for a configuration "
        "the implementation gets wrong (Hypothesis); a failure is shrunk to the smallest one that "
        "still fails and printed with the command that replays it. Exit 1 when one is found.",
    )
    p.add_argument("--impl", default="lstm_ref:LSTM", help="as for lstm-conformance (default: %(default)s)")
    p.add_argument("--examples", type=int, default=100, help="configurations to try (default %(default)s)")
    p.add_argument("--seconds", type=float, help="also stop drawing after this many seconds")
    p.add_argument("--seed", type=int, help="Hypothesis seed (default: a random one, printed)")
    p.add_argument("--max-size", type=int, default=300, help="largest size drawn (default %(default)s)")
    p.add_argument(
        "--spec-out",
        type=Path,
        help="where to write a failing case spec (default: ./lstm-explore-seed<SEED>.json)",
    )
    p.add_argument("--report", metavar="PATH.json", type=Path, help="write the outcome as JSON")
    p.add_argument("--timeout", type=float, default=120.0, help="per example, seconds (default %(default)g)")
    return p


def main_explore(argv: list[str], out: Any = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    for name in ("examples", "max_size"):
        if getattr(args, name) < 1:
            print(f"lstm-conformance explore: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        print("lstm-conformance explore needs hypothesis (pip install lstm-ref[test])", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little") >> 1
    t0 = time.perf_counter()
    oracle = live_oracle()
    budget = f"{args.examples} examples" + (f" or {args.seconds:g} s" if args.seconds else "")
    print(
        f"lstm-conformance explore: {args.impl}, seed {seed}, {budget}, sizes up to {args.max_size}", file=out
    )
    print(f"  oracle: {oracle_label(oracle)}", file=out, flush=True)
    runner = WorkerRunner(args.impl, args.timeout)
    info, problem = runner.start()
    if info is None:
        print(f"FAIL: {problem}", file=out)
        _report(args, seed, oracle, None, Outcome(), time.perf_counter() - t0, "", problem)
        return 1
    if info.unsupported:
        print(f"  declared unsupported (not drawn): {', '.join(info.unsupported)}", file=out)
    try:
        outcome = Explorer(args.impl, info.unsupported, runner, oracle).search(
            args.examples, args.seconds, seed, args.max_size
        )
    finally:
        runner.close()
    elapsed = time.perf_counter() - t0
    if outcome.failing is None:
        why = " (time budget spent)" if outcome.out_of_time else ""
        print(f"no failure in {outcome.examples} examples{why}, seed {seed}, {elapsed:.1f} s", file=out)
        _report(args, seed, oracle, info, outcome, elapsed, "")
        return 0
    spec_path = args.spec_out or Path(f"lstm-explore-seed{seed}.json")
    replay = f"lstm-conformance --impl {args.impl} --case-spec {spec_path}"
    write_spec(spec_path, outcome.failing, {"impl": args.impl, "seed": seed, "replay": replay})
    print(
        f"FAIL after {outcome.examples} examples ({outcome.runs} runs with shrinking, {elapsed:.1f} s); "
        "the smallest failing configuration:",
        file=out,
    )
    print("  " + json.dumps(_options(outcome.failing)), file=out)
    for r in outcome.failures[:3]:
        print(f"  {r.check} vs {r.oracle}: {r.message.splitlines()[0]}", file=out)
    print(f"case spec: {spec_path}\nreplay: {replay}", file=out)
    _report(args, seed, oracle, info, outcome, elapsed, replay)
    return 1


def _report(
    args: argparse.Namespace,
    seed: int,
    oracle: Any,
    info: Any,
    outcome: Outcome,
    elapsed: float,
    replay: str,
    problem: str = "",
) -> None:
    if not args.report:
        return
    from ..oracles.fixtures import atomic_write

    body = {
        "command": "explore",
        "impl": args.impl,
        "seed": seed,
        "oracle": oracle.name,
        "oracle_label": oracle_label(oracle),
        "budget": {"examples": args.examples, "seconds": args.seconds, "max_size": args.max_size},
        "declared_unsupported": dict(info.unsupported) if info else {},
        "examples": outcome.examples,
        "runs": outcome.runs,
        "elapsed_s": round(elapsed, 3),
        "found": outcome.failing is not None or bool(problem),
        "problem": problem,
        "case": outcome.failing.to_json() if outcome.failing else None,
        "failures": [asdict(r) for r in outcome.failures],
        "replay": replay,
    }
    atomic_write(args.report, (json.dumps(body, indent=1) + "\n").encode())
