"""Benchmark summary with interleaved blocks: steady-state ratio to torch eager, first-call time.

    python -m benchmarks.summary                      # everything installed, writes bench-results/
    python -m benchmarks.summary --configs tiny,medium --modes forward --blocks 5
    python -m benchmarks.summary --impls torch,lstm_ref,onnxruntime --first-call inline

Implementations (``--impls``, default all; torch is always added, ratios need it): torch
eager, every shipped adapter (conformance.adapters.REGISTRY) that can run here, lstm_ref,
torch-adapter (``--impl torch``: torch behind the NumPy plug-in API) and onnx-reference.
One that cannot run a configuration (library missing, feature declared unsupported, answer
far from torch's) is listed with the reason instead of timed.

Method (why the numbers are comparable within one run):
  * one thread count for torch, numpy's BLAS (threadpoolctl), XLA and onnxruntime;
  * each implementation is built and loaded with the same seeded torch weights; its first
    answer is checked against torch's before anything is timed;
  * steady state: every case is warmed up, then timed in *interleaved blocks*: each round
    runs a block of back-to-back calls of every implementation in turn (the order rotates
    each round), so slow drifts of a noisy machine hit all of them alike; a block's time /
    its number of calls is one sample; the median over rounds is reported; ratios are to
    torch eager's median in the same configuration and mode;
  * first call (``--first-call process``, the default): build (construct + load_state_dict +
    eval) and the first call, each timed once in a fresh Python process per implementation,
    configuration and mode (imports excluded), so no cache of an earlier case (jax's jit
    cache, dynamo's code cache, oneDNN primitives) helps; ``inline`` reports the same two
    times from the summary's own process instead (cheaper, but caches may help);
  * the machine's matrix-multiply peak is the best rate of a float32 2048^3 matmul
    (numpy's BLAS and torch's MKL) sampled throughout the same run.
GFLOP/s counts matrix-multiply FLOPs only: 2*L*N*4H*(I+H) per layer and direction for
the forward, three times that for forward+backward (see Config.forward_flops).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.impls import (
    BACKWARD_FLOP_FACTOR,
    CONFIG_BY_ID,
    CONFIGS,
    IMPLEMENTATIONS,
    MODES,
    Case,
    Config,
    Unavailable,
    bench_threads,
    check_available,
    error_vs_torch,
    first_call_in_process,
    first_call_timeout,
    make_case,
    reset_compiler_caches,
    sanity_reason,
    set_threads,
)

# lstm_ref's targets: median time / torch's median time, same run, same threads.
TARGETS: dict[tuple[str, str], float] = {
    ("large", "forward"): 1.0,
    ("medium", "forward"): 1.3,
    ("small", "forward"): 2.0,
    ("long", "forward"): 2.0,
    ("tiny", "forward"): 0.6,
    ("large", "forward+backward"): 1.2,
    ("medium", "forward+backward"): 1.5,
}
# lstm_ref must be at least this many times faster than onnx's ReferenceEvaluator (forward).
ONNX_REFERENCE_SPEEDUP = {"small": 5.0, "medium": 5.0}


@dataclass
class Row:
    config: str
    mode: str
    impl: str
    median_s: float | None = None
    samples_s: list[float] = field(default_factory=list)
    calls_per_block: int = 0
    ratio_to_torch: float | None = None
    gflops: float | None = None
    fraction_of_peak: float | None = None
    max_abs_error: float | None = None
    unavailable: str | None = None
    build_s: float | None = None  # construct + load_state_dict + eval (see first_call_from)
    first_call_s: float | None = None  # the first call after building
    first_call_from: str | None = None  # "process" (a fresh one) or "inline" (this one)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_peak(size: int = 2048, repeats: int = 3) -> list[float]:
    """GFLOP/s samples of a float32 (size x size) @ (size x size), numpy's BLAS and torch's."""
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
    samples = []
    for product in (lambda: np.matmul(a, b, out=out), lambda: torch.mm(ta, tb, out=tout)):
        product()  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            samples.append(2.0 * size**3 / (time.perf_counter() - start) / 1e9)
    return samples


def time_interleaved(cases: list[Case], blocks: int, block_time: float) -> list[tuple[list[float], int]]:
    """Warm up, then ``blocks`` rounds; each round times one block of calls per case."""
    calls = []
    for case in cases:
        case.run()  # warm-up (the checked first call came before)
        start = time.perf_counter()
        case.run()
        single = time.perf_counter() - start
        calls.append(max(1, round(block_time / max(single, 1e-7))))
    samples: list[list[float]] = [[] for _ in cases]
    for round_ in range(blocks):
        for k in range(len(cases)):
            index = (k + round_) % len(cases)  # rotate who goes first
            run, n = cases[index].run, calls[index]
            start = time.perf_counter()
            for _ in range(n):
                run()
            samples[index].append((time.perf_counter() - start) / n)
    return list(zip(samples, calls, strict=True))


def build_and_check(row: Row, config: Config, mode: str) -> Case | None:
    """Build the case and make its first call (both timed, inline), check it against torch;
    None (and ``row.unavailable`` says why) when it cannot be timed."""
    try:
        case = make_case(row.impl, config, mode)
        start = time.perf_counter()
        result = case.run()
        if row.first_call_from is None:  # not measured in a fresh process
            row.build_s, row.first_call_s = case.build_s, time.perf_counter() - start
            row.first_call_from = "inline"
        if row.impl == "torch":
            return case
        row.max_abs_error = error_vs_torch(case, result)
        row.unavailable = sanity_reason(case, row.max_abs_error)
    except Unavailable as exc:
        row.unavailable = str(exc)
    except Exception as exc:  # an adapter that fails on something it did not declare
        row.unavailable = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if row.unavailable:
        print(f"  {row.impl}: {row.unavailable}", file=sys.stderr, flush=True)
        return None
    return case


def measure_first_call(impl: str, config_id: str, mode: str) -> dict[str, Any]:
    """The child's side: imports first (untimed: plugin_factory imports the adapter), then time."""
    from benchmarks.impls import plugin_factory

    config = CONFIG_BY_ID[config_id]
    if impl not in ("torch", "onnx-reference"):
        plugin_factory(impl)
    try:
        case = make_case(impl, config, mode)
    except Unavailable as exc:  # known only once built (a factory that is not a class)
        return {"error": str(exc)}
    start = time.perf_counter()
    case.run()
    return {"build_s": case.build_s, "first_call_s": time.perf_counter() - start}


def first_call_first(row: Row, config: Config, mode: str, args: argparse.Namespace) -> bool:
    """Whether the case may be built here: it can run (cheap checks), and with
    ``--first-call process`` its build + first call in a fresh process finished in time."""
    try:
        check_available(row.impl, config, mode)
    except Unavailable as exc:
        row.unavailable = str(exc)
        return False
    if args.first_call != "process":
        return True
    cold = first_call_in_process(row.impl, config.id, mode, args.threads, args.first_call_timeout)
    if "error" in cold:
        row.unavailable = cold["error"]
        print(f"  {row.impl}: {row.unavailable}", file=sys.stderr, flush=True)
        return False
    row.build_s, row.first_call_s, row.first_call_from = cold["build_s"], cold["first_call_s"], "process"
    return True


def bench_config(
    config: Config, mode: str, impls: list[str], args: argparse.Namespace, peak: float
) -> list[Row]:
    reset_compiler_caches()  # the cases of earlier configurations are not run again
    rows = [Row(config.id, mode, impl) for impl in impls]
    built = [
        (row, build_and_check(row, config, mode)) for row in rows if first_call_first(row, config, mode, args)
    ]
    cases = [case for _, case in built if case is not None]
    measured = dict(
        zip((c.impl for c in cases), time_interleaved(cases, args.blocks, args.block_time), strict=True)
    )
    flops = config.forward_flops() * (1.0 if mode == "forward" else BACKWARD_FLOP_FACTOR)
    torch_median = statistics.median(measured["torch"][0]) if "torch" in measured else None
    for row in rows:
        if row.impl not in measured:
            continue
        row.samples_s, row.calls_per_block = measured[row.impl]
        row.median_s = statistics.median(row.samples_s)
        if torch_median:
            row.ratio_to_torch = row.median_s / torch_median
        row.gflops = flops / row.median_s / 1e9
        row.fraction_of_peak = row.gflops / peak
    return rows


def _fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def target_lines(rows: list[Row]) -> list[str]:
    by_key = {(r.config, r.mode, r.impl): r for r in rows}
    lines = []
    for (config, mode), limit in TARGETS.items():
        row = by_key.get((config, mode, "lstm_ref"))
        if row is None or row.ratio_to_torch is None:
            continue
        verdict = "met" if row.ratio_to_torch <= limit else "MISSED"
        lines.append(f"| {config} {mode} | ≤ {limit:.2f} x torch | {row.ratio_to_torch:.2f} | {verdict} |")
    for config, factor in ONNX_REFERENCE_SPEEDUP.items():
        ours = by_key.get((config, "forward", "lstm_ref"))
        theirs = by_key.get((config, "forward", "onnx-reference"))
        if ours is None or theirs is None or ours.median_s is None or theirs.median_s is None:
            continue
        speedup = theirs.median_s / ours.median_s
        verdict = "met" if speedup >= factor else "MISSED"
        lines.append(
            f"| {config} forward | ≥ {factor:.0f}x faster than onnx-reference | {speedup:.2f}x | {verdict} |"
        )
    if not lines:
        return []
    return ["| lstm_ref target | wanted | measured | |", "|---|---|---|---|", *lines]


def numpy_blas() -> str:
    """numpy's BLAS and the kernel it runs, e.g. "openblas 0.3.30 (SkylakeX)": OPENBLAS_CORETYPE
    can force an older kernel (Haswell runs half as fast as SkylakeX on an AVX-512 machine),
    which changes every NumPy column's ratio."""
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return (
        ", ".join(f"{i['internal_api']} {i['version']} ({i.get('architecture', '?')})" for i in blas) or "?"
    )


def _header(meta: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    return (
        f"Machine: {meta['cpu']}, {meta['cores']} cores; numpy's BLAS: {meta.get('numpy_blas', '?')}; "
        f"{meta['threads']} thread(s) for torch, numpy BLAS, "
        f"XLA and onnxruntime. {versions}. Peak: {meta['peak_gflops']:.1f} GFLOP/s (best float32 {meta['peak_size']}³ "
        f"matmul, numpy or torch, sampled throughout the run; median sample "
        f"{statistics.median(meta['peak_samples_gflops']):.1f}). {meta['blocks']} interleaved rounds of "
        f"~{meta['block_time_s']} s blocks; {meta['date_utc']} UTC."
    )


def ratio_table(rows: list[Row], impls: list[str], configs: list[str]) -> list[str]:
    by_key = {(r.config, r.mode, r.impl): r for r in rows}
    out = [
        "Steady state: median time / torch eager's median, same run (lower is faster; "
        "- = not timed, see Skipped):",
        "",
        "| config | mode | " + " | ".join(impls) + " |",
        "|---|---|" + "---:|" * len(impls),
    ]
    for config in configs:
        for mode in MODES:
            cells = [by_key.get((config, mode, i)) for i in impls]
            if not any(c and c.median_s for c in cells):
                continue
            text = [f"{c.ratio_to_torch:.2f}" if c and c.ratio_to_torch is not None else "-" for c in cells]
            out.append(f"| {config} | {mode} | " + " | ".join(text) + " |")
    return out


def detail_table(rows: list[Row], impls: list[str], configs: list[str]) -> list[str]:
    by_key = {(r.config, r.mode, r.impl): r for r in rows}
    out = [
        "| config | shape | mode | implementation | median ms | x torch | GFLOP/s | % of peak | max abs err |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for config in configs:
        for mode in MODES:
            for impl in impls:
                r = by_key.get((config, mode, impl))
                if r is None or r.median_s is None:
                    continue
                ratio = "-" if r.ratio_to_torch is None else f"{r.ratio_to_torch:.2f}"
                err = "-" if r.max_abs_error is None else f"{r.max_abs_error:.1e}"
                out.append(
                    f"| {config} | {CONFIG_BY_ID[config].describe()} | {mode} | {impl} | "
                    f"{_fmt_ms(r.median_s)} | {ratio} | {r.gflops:.2f} | "
                    f"{100 * (r.fraction_of_peak or 0):.1f} | {err} |"
                )
    return out


def first_call_table(rows: list[Row], impls: list[str], configs: list[str]) -> list[str]:
    by_key = {(r.config, r.mode, r.impl): r for r in rows}
    where = {r.first_call_from for r in rows if r.median_s is not None} - {None}
    out = [
        "First call (" + ", ".join(sorted(str(w) for w in where)) + "): build = construct + load_state_dict "
        "+ eval, first = the first call after it (compile, export, jit tracing included), "
        "each timed once; steady = the median above.",
        "",
        "| config | mode | implementation | build ms | first call ms | steady ms | first / steady |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for config in configs:
        for mode in MODES:
            for impl in impls:
                r = by_key.get((config, mode, impl))
                if r is None or r.median_s is None:
                    continue
                factor = f"{r.first_call_s / r.median_s:.0f}" if r.first_call_s is not None else "-"
                out.append(
                    f"| {config} | {mode} | {impl} | {_fmt_ms(r.build_s)} | {_fmt_ms(r.first_call_s)} | "
                    f"{_fmt_ms(r.median_s)} | {factor} |"
                )
    return out


def skipped_lines(rows: list[Row]) -> list[str]:
    """One line per implementation and reason, with the cases it covers."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r.unavailable:
            grouped.setdefault((r.impl, r.unavailable), []).append(f"{r.config} {r.mode}")
    if not grouped:
        return []
    out = ["Skipped (not timed):", ""]
    for (impl, reason), cases in grouped.items():
        out.append(f"- **{impl}** ({', '.join(cases)}): {reason}")
    return out


def markdown(meta: dict[str, Any], rows: list[Row]) -> str:
    impls = [i for i in IMPLEMENTATIONS if any(r.impl == i and r.median_s for r in rows)]
    configs = list(dict.fromkeys(r.config for r in rows))
    out = [_header(meta), "", *ratio_table(rows, impls, configs), ""]
    out += [*detail_table(rows, impls, configs), "", *first_call_table(rows, impls, configs)]
    for section in (skipped_lines(rows), target_lines(rows)):
        if section:
            out += ["", *section]
    return "\n".join(out) + "\n"


def library_versions() -> dict[str, str | None]:
    import importlib.metadata

    found: dict[str, str | None] = {"numpy": np.__version__}
    for dist in ("torch", "onnx", "onnxruntime", "onnxscript", "jax", "jaxlib", "flax", "keras"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = None
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.summary", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(c.id for c in CONFIGS), help="default: all")
    parser.add_argument("--modes", default=",".join(MODES), help="default: forward,forward+backward")
    parser.add_argument(
        "--impls", default=",".join(IMPLEMENTATIONS), help="default: all; torch is always added"
    )
    parser.add_argument("--blocks", type=int, default=7, help="interleaved rounds per case (default 7)")
    parser.add_argument("--block-time", type=float, default=0.15, help="seconds per block (default 0.15)")
    parser.add_argument("--threads", type=int, default=bench_threads(), help="default: BENCH_THREADS or 1")
    parser.add_argument(
        "--first-call",
        choices=("process", "inline"),
        default="process",
        help="where build + first call are timed: a fresh process per case (default) or this one",
    )
    parser.add_argument(
        "--first-call-timeout",
        type=float,
        default=first_call_timeout(),
        help="seconds a case's build + first call may take in its fresh process, else the case is "
        "skipped (default: BENCH_FIRST_CALL_TIMEOUT or 120)",
    )
    parser.add_argument("--peak-size", type=int, default=2048, help="matmul size of the peak (default 2048)")
    parser.add_argument("--out", default="bench-results", help="directory for summary.md and summary.json")
    parser.add_argument(
        "--measure-first-call", nargs=3, metavar=("IMPL", "CONFIG", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.impls.split(",")) - set(IMPLEMENTATIONS))
    if unknown:
        parser.error(f"unknown --impls {', '.join(unknown)}; known: {', '.join(IMPLEMENTATIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["BENCH_THREADS"] = str(args.threads)
    import warnings

    warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
    if args.measure_first_call:
        with set_threads(args.threads):
            print(json.dumps(measure_first_call(*args.measure_first_call)))
        return 0
    impls = [i for i in IMPLEMENTATIONS if i in args.impls.split(",") or i == "torch"]  # ratios need torch
    configs = [CONFIG_BY_ID[c] for c in args.configs.split(",")]
    with set_threads(args.threads):
        # The peak is the best sgemm rate seen; sampled between configurations too,
        # because on a shared machine any one sample may be slowed down.
        peak_samples = measure_peak(args.peak_size)
        rows: list[Row] = []
        for config in configs:
            for mode in args.modes.split(","):
                print(f"{config.id} {mode} ...", file=sys.stderr, flush=True)
                rows += bench_config(config, mode, impls, args, max(peak_samples))
            peak_samples += measure_peak(args.peak_size, repeats=1)
    write(args, rows, peak_samples)
    return 0


def write(args: argparse.Namespace, rows: list[Row], peak_samples: list[float]) -> None:
    peak = max(peak_samples)
    for row in rows:  # re-express against the peak over the whole run
        if row.gflops is not None:
            row.fraction_of_peak = row.gflops / peak
    meta: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "numpy_blas": numpy_blas(),
        "threads": args.threads,
        "python": platform.python_version(),
        "versions": library_versions(),
        "peak_gflops": peak,
        "peak_samples_gflops": peak_samples,
        "peak_size": args.peak_size,
        "blocks": args.blocks,
        "block_time_s": args.block_time,
        "first_call": args.first_call,
        "first_call_timeout_s": args.first_call_timeout,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    text = markdown(meta, rows)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(
        json.dumps({"meta": meta, "results": [r.__dict__ for r in rows]}, indent=2) + "\n"
    )
    print(f"wrote {out / 'summary.md'} and {out / 'summary.json'}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
