"""The implementation under test runs in worker processes; the oracles and the table stay here.

A worker imports the implementation once, then takes jobs (a case, or a suite check) with the
oracle's arrays already made by the parent, and streams back its results one check at a time.
Whatever the implementation does to its process -- a signal, ``sys.exit``, ``os._exit``, a hang
past the timeout -- costs only the job it hit: that job gets a failure saying what happened and
in which check, the worker is replaced, and the run goes on.  ``fresh=True`` (``--isolate case``)
gives every job a new worker, so no verdict depends on what ran before it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .runner import Job, Payload, Result, crash_result, execute, suite_item_of

# spawn, not fork: the parent may hold torch's threads, and a worker must start clean
CONTEXT = multiprocessing.get_context("spawn")


@dataclass
class ImplInfo:
    """What the parent needs to know about the implementation (it never imports it itself)."""

    unsupported: dict[str, str]
    tolerances: dict[str, Any]
    version: str  # the implementation's own version (provenance)


def _worker_main(conn: Any, spec: str, rerun_extra: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from .impls import load_impl
    from .provenance import implementation_version

    try:
        impl = load_impl(spec)
    except BaseException as exc:  # SystemExit from load_impl, or anything the module raises
        conn.send(("import_error", f"{type(exc).__name__}: {exc}"))
        return
    impl.rerun_extra = rerun_extra
    version = implementation_version(spec, impl.factory)
    conn.send(("ready", ImplInfo(impl.unsupported, impl.tolerances, version)))
    while True:
        message = conn.recv()
        if message is None:
            return
        task, payload = message
        for item in execute(impl, task, payload):
            conn.send(("check", item) if isinstance(item, str) else ("result", item))
        conn.send(("done", None))


def describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    hint = " (sys.exit or os._exit inside the implementation?)" if code in (0, 1, 2, 3) else ""
    return f"exited with code {code}{hint}"


class Worker:
    def __init__(self, spec: str, rerun_extra: str) -> None:
        self.conn, child = CONTEXT.Pipe()
        self.process = CONTEXT.Process(target=_worker_main, args=(child, spec, rerun_extra), daemon=True)
        self.process.start()
        child.close()
        self.job: tuple[int, Job] | None = None
        self.payload: Payload = None  # the job's, kept to resume a suite check after a crash
        self.deadline = 0.0
        self.check = ""  # the check being run, for the crash message

    def handshake(self, timeout: float) -> tuple[ImplInfo | None, str]:
        """(info, "") once the implementation imported, or (None, what went wrong)."""
        if not self.conn.poll(timeout):
            self.kill()
            return None, f"the implementation did not import within {timeout:g} s"
        try:
            kind, value = self.conn.recv()
        except EOFError:
            self.process.join(5)
            return (
                None,
                f"importing the implementation: the worker process {describe_exit(self.process.exitcode)}",
            )
        if kind == "import_error":
            self.process.join(5)
            return None, str(value)
        return value, ""

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.conn.send(None)
        self.process.join(2)
        self.kill()


@dataclass
class PoolRun:
    results: list[Result] = field(default_factory=list)
    interrupted: bool = False
    import_error: str = ""


class Pool:
    """``size`` workers running ``jobs``; ``payload`` makes a job's oracle arrays (here, in the
    parent); ``on_done(job, results)`` is told of every finished job (for progress)."""

    def __init__(self, spec: str, rerun_extra: str, size: int, timeout: float, fresh: bool) -> None:
        self.spec, self.rerun_extra = spec, rerun_extra
        self.size, self.timeout, self.fresh = max(1, size), timeout, fresh
        self.idle: list[Worker] = []
        self.busy: list[Worker] = []
        self.resumed: deque[tuple[int, Job, Payload]] = deque()

    def start(self) -> tuple[ImplInfo | None, str]:
        """One worker, to learn the implementation's declarations (or why it cannot import)."""
        worker = Worker(self.spec, self.rerun_extra)
        info, problem = worker.handshake(max(self.timeout, 60.0))
        if info is not None:
            self.idle.append(worker)
        return info, problem

    def _worker(self) -> Worker:
        if self.idle:
            return self.idle.pop()
        worker = Worker(self.spec, self.rerun_extra)
        _, problem = worker.handshake(max(self.timeout, 60.0))
        if problem:
            raise RuntimeError(problem)
        return worker

    def run(
        self, jobs: list[Job], payload: Callable[[Job], Payload], on_done: Callable[[Job, list[Result]], None]
    ) -> PoolRun:
        pending = deque(enumerate(jobs))
        prepared: deque[tuple[int, Job, Payload]] = deque()  # oracle work done ahead, while workers run
        self.resumed = prepared  # a suite check a worker crashed in goes on after that item
        by_job: dict[int, list[Result]] = {}
        outcome = PoolRun()
        try:
            while pending or prepared or self.busy:
                while (pending or prepared) and len(self.busy) < self.size:
                    if not prepared:
                        index, job = pending.popleft()
                        prepared.append((index, job, payload(job)))
                    index, job, data = prepared.popleft()
                    by_job.setdefault(index, [])
                    self._send(index, job, data, by_job, on_done)
                if pending and len(prepared) < self.size and not self._any_ready():
                    index, job = pending.popleft()
                    prepared.append((index, job, payload(job)))
                    continue
                self._collect(by_job, on_done)
        except KeyboardInterrupt:
            outcome.interrupted = True
        finally:
            for worker in self.busy + self.idle:
                worker.kill()
            self.busy, self.idle = [], []
        outcome.results = [result for index in sorted(by_job) for result in by_job[index]]
        return outcome

    def _send(
        self,
        index: int,
        job: Job,
        data: Payload,
        by_job: dict[int, list[Result]],
        on_done: Callable[[Job, list[Result]], None],
    ) -> None:
        try:
            worker = self._worker()
        except RuntimeError as exc:  # a replacement worker could not import the implementation
            by_job[index].append(crash_result(job.task, "", str(exc), self.rerun_extra, job.spec))
            on_done(job, by_job[index])
            return
        worker.job, worker.check, worker.payload = (index, job), "", data
        worker.deadline = time.monotonic() + self.timeout
        worker.conn.send((job.task, data))
        self.busy.append(worker)

    def _finish(
        self, worker: Worker, on_done: Callable[[Job, list[Result]], None], results: list[Result]
    ) -> None:
        self.busy.remove(worker)
        assert worker.job is not None
        on_done(worker.job[1], results)
        worker.job = None
        if self.fresh:
            worker.stop()
        else:
            self.idle.append(worker)

    def _fail(self, worker: Worker, by_job: dict[int, list[Result]], what: str, on_done: Any) -> None:
        """The worker died or hung: a failure of the case, or of the suite item it was in (the
        suite check's remaining items then go on in a fresh worker)."""
        assert worker.job is not None
        index, job = worker.job
        item = suite_item_of(job.task, worker.check)
        crash = crash_result(job.task, worker.check, what, self.rerun_extra, job.spec, item)
        by_job[index].append(crash)
        self.busy.remove(worker)
        worker.kill()
        if item and "timed out" not in what:
            task = dataclasses.replace(job.task, resume_after=item)
            self.resumed.appendleft((index, dataclasses.replace(job, task=task), worker.payload))
            return
        if item:  # a hang is not resumed: every later item could wait as long
            crash.message += "; the rest of this suite check's items did not run"
        on_done(job, by_job[index])

    def _any_ready(self) -> bool:
        return bool(multiprocessing.connection.wait([w.conn for w in self.busy], timeout=0))

    def _collect(self, by_job: dict[int, list[Result]], on_done: Callable[[Job, list[Result]], None]) -> None:
        now = time.monotonic()
        wait = max(0.0, min(w.deadline for w in self.busy) - now) if self.busy else 0.0
        ready = multiprocessing.connection.wait([w.conn for w in self.busy], timeout=min(wait, 1.0))
        for worker in [w for w in self.busy if w.conn in ready]:
            assert worker.job is not None
            index = worker.job[0]
            try:
                while worker.conn.poll():
                    kind, value = worker.conn.recv()
                    if kind == "check":
                        worker.check = value
                    elif kind == "result":
                        by_job[index].append(value)
                    else:  # done
                        self._finish(worker, on_done, by_job[index])
                        break
            except (EOFError, OSError):
                worker.process.join(5)
                self._fail(
                    worker, by_job, f"the worker process {describe_exit(worker.process.exitcode)}", on_done
                )
        for worker in [w for w in self.busy if time.monotonic() > w.deadline]:
            self._fail(worker, by_job, f"timed out after {self.timeout:g} s (--timeout)", on_done)


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
