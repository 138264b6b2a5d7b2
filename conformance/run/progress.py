"""Progress of a run: a bar on a terminal (tqdm, when installed), else a plain line every few
seconds, so a CI log shows a slow implementation is still moving."""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any, TextIO

PLAIN_EVERY_S = 5.0
ESTIMATE_AFTER = 5  # jobs (and a tenth of them) done before a time left is shown


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total, self.done, self.failing = total, 0, 0
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()
        self.enabled = enabled
        self.bar: Any = None
        if enabled and self.stream.isatty():
            try:
                tqdm = importlib.import_module("tqdm").tqdm
                self.bar = tqdm(total=total, unit="job", file=self.stream, leave=False, dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, failed: bool) -> None:
        self.done += 1
        self.failing += failed
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.failing} failing", refresh=False)
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= PLAIN_EVERY_S or self.done == self.total:
            self.last = now
            elapsed = now - self.start
            # no estimate from the first few jobs: they carry the start-up (imports, compiles)
            estimating = self.done < max(ESTIMATE_AFTER, self.total // 10) and self.done < self.total
            left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
            print(
                f"progress: {self.done}/{self.total} jobs, {self.failing} failing, "
                f"{elapsed:.0f} s elapsed, "
                + ("estimating time left" if estimating else f"~{left:.0f} s left"),
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
