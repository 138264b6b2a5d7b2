"""Benchmark summary with interleaved blocks: median time, ratio to torch, GFLOP/s, % of peak.

    python -m benchmarks.summary                      # all configurations, writes bench-results/
    python -m benchmarks.summary --configs tiny,medium --modes forward --blocks 5

Method (why the numbers are comparable within one run):
  * one thread count for numpy's BLAS (threadpoolctl), torch and onnxruntime;
  * every case is warmed up, then timed in *interleaved blocks*: each round runs a
    block of back-to-back calls of every implementation in turn (the order rotates
    each round), so slow drifts of a noisy machine hit all of them alike;
  * a block's time / its number of calls is one sample; the median over rounds is
    reported; ratios are to torch's median in the same configuration and mode;
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
    check,
    make_case,
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
        case.run()  # first call: allocations, torch's autograd / oneDNN setup
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


def bench_config(
    config: Config, mode: str, impls: list[str], blocks: int, block_time: float, peak: float
) -> list[Row]:
    rows: list[Row] = []
    cases: list[Case] = []
    for impl in impls:
        row = Row(config.id, mode, impl)
        rows.append(row)
        try:
            case = make_case(impl, config, mode)
        except Unavailable as exc:
            row.unavailable = str(exc)
            continue
        if impl != "torch":
            row.max_abs_error = check(case)
        cases.append(case)
    measured = dict(zip((c.impl for c in cases), time_interleaved(cases, blocks, block_time), strict=True))
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


def markdown(meta: dict[str, Any], rows: list[Row]) -> str:
    impls = [i for i in IMPLEMENTATIONS if any(r.impl == i and r.median_s for r in rows)]
    out = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores; {meta['threads']} thread(s) for numpy BLAS, "
        f"torch and onnxruntime. numpy {meta['numpy']}, torch {meta['torch']}"
        + "".join(f", {k} {meta[k]}" for k in ("onnx", "onnxruntime") if meta.get(k))
        + f". Peak: {meta['peak_gflops']:.1f} GFLOP/s (best float32 2048³ matmul, numpy or torch, "
        f"sampled throughout the run; median sample {statistics.median(meta['peak_samples_gflops']):.1f}).",
        "",
        "Ratio of median times to torch eager CPU (torch = 1.00; lower is faster):",
        "",
        "| config | mode | " + " | ".join(impls) + " |",
        "|---|---|" + "---:|" * len(impls),
    ]
    by_key = {(r.config, r.mode, r.impl): r for r in rows}
    configs = list(dict.fromkeys(r.config for r in rows))
    for config in configs:
        for mode in MODES:
            cells = [by_key.get((config, mode, i)) for i in impls]
            if not any(c and c.median_s for c in cells):
                continue
            text = [f"{c.ratio_to_torch:.2f}" if c and c.ratio_to_torch is not None else "-" for c in cells]
            out.append(f"| {config} | {mode} | " + " | ".join(text) + " |")
    out += [
        "",
        "| config | shape | mode | implementation | median ms | x torch | GFLOP/s | % of peak |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for config in configs:
        for mode in MODES:
            for impl in impls:
                r = by_key.get((config, mode, impl))
                if r is None or r.median_s is None:
                    continue
                ratio = "-" if r.ratio_to_torch is None else f"{r.ratio_to_torch:.2f}"
                out.append(
                    f"| {config} | {CONFIG_BY_ID[config].describe()} | {mode} | {impl} | "
                    f"{_fmt_ms(r.median_s)} | {ratio} | {r.gflops:.2f} | {100 * (r.fraction_of_peak or 0):.1f} |"
                )
    targets = target_lines(rows)
    if targets:
        out += ["", *targets]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.summary", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(c.id for c in CONFIGS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--impls", default=",".join(IMPLEMENTATIONS))
    parser.add_argument("--blocks", type=int, default=7, help="interleaved rounds per case (default 7)")
    parser.add_argument("--block-time", type=float, default=0.15, help="seconds per block (default 0.15)")
    parser.add_argument("--threads", type=int, default=bench_threads(), help="default: BENCH_THREADS or 1")
    parser.add_argument("--out", default="bench-results", help="directory for summary.md and summary.json")
    args = parser.parse_args(argv)
    os.environ["BENCH_THREADS"] = str(args.threads)  # onnxruntime sessions read it
    impls = args.impls.split(",")
    if "torch" not in impls:
        impls.insert(0, "torch")  # ratios need it
    configs = [CONFIG_BY_ID[c] for c in args.configs.split(",")]
    modes = args.modes.split(",")

    import warnings

    warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
    import torch

    with set_threads(args.threads):
        # The peak is the best sgemm rate seen; sampled between configurations too,
        # because on a shared machine any one sample may be slowed down.
        peak_samples = measure_peak()
        rows: list[Row] = []
        for config in configs:
            for mode in modes:
                print(f"{config.id} {mode} ...", file=sys.stderr, flush=True)
                rows += bench_config(config, mode, impls, args.blocks, args.block_time, max(peak_samples))
            peak_samples += measure_peak(repeats=1)
    peak = max(peak_samples)
    for row in rows:  # re-express against the peak over the whole run
        if row.gflops is not None:
            row.fraction_of_peak = row.gflops / peak
    meta: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "peak_gflops": peak,
        "peak_samples_gflops": peak_samples,
        "blocks": args.blocks,
        "block_time_s": args.block_time,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    for name in ("onnx", "onnxruntime"):
        try:
            meta[name] = __import__(name).__version__
        except ImportError:
            meta[name] = None
    text = markdown(meta, rows)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(
        json.dumps({"meta": meta, "results": [r.__dict__ for r in rows]}, indent=2) + "\n"
    )
    print(f"wrote {out / 'summary.md'} and {out / 'summary.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
