"""The implementation under test runs in worker processes; the checks, the oracles and the
table stay here.

A worker imports the implementation once and then only answers requests: build a model, load
its weights, call it (``remote.py``).  Every check runs in this process, in a thread per busy
worker, against :class:`~conformance.run.remote.Remote` stand-ins of the implementation's objects,
so the verdict is computed where the implementation cannot reach it.  Whatever the
implementation does to its own process -- a signal, ``sys.exit``, ``os._exit``, a hang past the
timeout, a forked child keeping the pipe open -- costs only the job it hit: that job gets a
failure saying what happened and in which check, the worker (and everything in its process
group) is killed and replaced, and the run goes on.  ``fresh=True`` (``--isolate case``) gives
every job a new worker, so no verdict depends on what ran before it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..contract.tolerances import declared_tolerances
from .impls import Impl
from .remote import (
    CELL,
    FACTORY,
    Objects,
    ProtocolError,
    Remote,
    WorkerLost,
    answer,
    dumps,
    loads,
    reply_value,
)
from .runner import Job, Payload, Result, crash_result, execute, suite_item_of


def _context() -> Any:
    """Never a fork of this process: it may hold torch's threads, and a worker must start clean.
    On Linux, a fork server (a clean process that has imported NumPy and this module, and
    nothing of the implementation) starts each worker in milliseconds; a spawned one pays half a
    second of imports, which a run that starts a fresh worker per failing case pays many times.
    Each worker takes the parent's environment, sys.path and directory as they are when it starts
    (:func:`_as_parent`), as a spawned one does."""
    # Linux only: on macOS a fork of a process that has loaded Accelerate is not safe
    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["conformance.run.workers"])
        return context
    return multiprocessing.get_context("spawn")


CONTEXT = _context()
SOCKET_DIR_AT_MOST = 60  # bytes: the fork server's socket path adds ~35 to it, and AF_UNIX allows 107


def _fork_server_socket_fits() -> None:
    """The fork server listens on a socket in a directory multiprocessing makes under TMPDIR;
    a long TMPDIR (a deep CI workspace) overflows AF_UNIX's path limit and Python 3.11 does not
    fall back. Then that one directory goes under the system's temp directory instead."""
    from multiprocessing import util

    if len(os.fsencode(tempfile.gettempdir())) <= SOCKET_DIR_AT_MOST:
        return
    short = next((d for d in ("/tmp", "/var/tmp", "/dev/shm") if os.access(d, os.W_OK | os.X_OK)), None)
    saved, tempfile.tempdir = tempfile.tempdir, short or tempfile.tempdir
    try:
        util.get_temp_dir()  # made once, remembered for the process and removed at its exit
    finally:
        tempfile.tempdir = saved


POLL_S = 0.25  # how often a waiting request looks whether its worker is still there


@dataclass
class ImplInfo:
    """What the parent learns about the implementation (it never imports it itself)."""

    unsupported: dict[str, str]
    tolerances: dict[str, Any]
    version: str  # the implementation's own version (provenance)
    has_cell: bool = False


# -- the worker process ----------------------------------------------------------------------


def _exit_with_parent() -> None:
    """A worker whose parent died (killed, or os._exit'ed by pytest-timeout) exits too, even
    while the implementation hangs."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _lstm_ref_trace(target: Any, name: str) -> Any:
    """lstm_ref's own internals for ``conformance_trace`` on an lstm_ref.LSTM (localize.py)."""
    import lstm_ref

    if name != "conformance_trace" or not isinstance(target, lstm_ref.LSTM):
        raise AttributeError(name)
    from ..checks.localize import INTERNALS

    def trace(x: Any, hx: Any) -> Any:
        recorded = lstm_ref.trace(target, x, hx)
        return {(d.layer, d.direction): {n: getattr(d, n) for n in INTERNALS} for d in recorded.directions}

    return trace


def _parent_state() -> tuple[dict[str, str], list[str], str]:
    return dict(os.environ), list(sys.path), os.getcwd()


def _as_parent(state: tuple[dict[str, str], list[str], str]) -> None:
    """The parent's environment, sys.path and directory of now (the fork server's are those of
    when it started)."""
    environ, path, cwd = state
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    with contextlib.suppress(OSError):
        os.chdir(cwd)


def _worker_main(conn: Any, spec: str, state: tuple[dict[str, str], list[str], str]) -> None:
    _as_parent(state)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # a group of its own: whatever the implementation forks is killed with it
    _exit_with_parent()
    from .impls import load_impl
    from .provenance import implementation_version
    from .remote import _type_name, raised, safe_str

    try:
        impl = load_impl(spec)
    except BaseException as exc:
        conn.send_bytes(dumps(("import_error", f"{_type_name(exc)}: {safe_str(exc)}")))
        return
    objects = Objects()
    objects.add(impl.factory, FACTORY)
    if impl.cell is not None:
        objects.add(impl.cell, CELL)
    tolerances = {dtype: (tol.rtol, tol.atol) for dtype, tol in impl.tolerances.items()}
    version = implementation_version(spec, impl.factory)
    conn.send_bytes(dumps(("ready", impl.unsupported, tolerances, version, impl.cell is not None)))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        if request[0] == "release":  # the job is over: its models may go
            objects.release()
            reply: Any = ("ok", None, [])
        else:
            reply = answer(request, objects, _lstm_ref_trace)
        try:
            blob = dumps(reply)
        except BaseException as exc:
            blob = dumps(raised(exc))
        conn.send_bytes(blob)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    hint = " (os._exit inside the implementation?)" if code in (0, 1, 2, 3) else ""
    return f"exited with code {code}{hint}"


# -- the parent's side of one worker ----------------------------------------------------------


class Worker:
    """One worker process, and the parent's end of its pipe (:meth:`request`)."""

    def __init__(self, spec: str) -> None:
        if CONTEXT.get_start_method() == "forkserver":
            _fork_server_socket_fits()
        self.conn, child = CONTEXT.Pipe()
        self.process = CONTEXT.Process(target=_worker_main, args=(child, spec, _parent_state()), daemon=True)
        self.process.start()
        child.close()
        self.lost = ""  # set once the worker is killed: why every later request fails
        self.has_cell = False
        self.job: tuple[int, Job] | None = None
        self.token = 0  # which job the events of its thread belong to
        self.jobs_sent = 0
        self.payload: Payload = None  # the job's, kept to resume a suite check after a crash
        self.deadline = 0.0
        self.check = ""  # the check being run, for the crash message
        self.thread: threading.Thread | None = None

    def _wait(self, timeout: float | None) -> bool:
        """True when a message is there to read; WorkerLost when the process is gone."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.lost:
                raise WorkerLost(self.lost)
            step = POLL_S if end is None else max(0.0, min(POLL_S, end - time.monotonic()))
            try:
                ready = multiprocessing.connection.wait([self.conn, self.process.sentinel], step)
                if self.conn in ready or (ready and self.conn.poll()):
                    return True
            except (OSError, ValueError):
                raise WorkerLost(self.lost or self._exited()) from None
            # exited, or a child it forked holds the pipe (and the sentinel) open: ask the process
            if ready or self.process.exitcode is not None:
                raise WorkerLost(self.lost or self._exited())
            if end is not None and time.monotonic() >= end:
                return False

    def _exited(self) -> str:
        self.process.join(5)
        return f"the worker process {describe_exit(self.process.exitcode)}"

    def _receive(self) -> Any:
        try:
            blob = self.conn.recv_bytes()
        except (EOFError, OSError):
            raise WorkerLost(self.lost or self._exited()) from None
        try:
            return loads(blob)
        except Exception as exc:
            raise ProtocolError(f"the worker sent something that is not plain data ({exc})") from None

    def request(self, message: tuple[Any, ...], sent: list[Any] | None = None) -> Any:
        """Send a request and wait for its answer (the implementation's exception raised here);
        ``sent``: its argument arrays, which get what the call wrote into them."""
        if self.lost:
            raise WorkerLost(self.lost)
        try:
            self.conn.send(message)
        except (OSError, ValueError):
            raise WorkerLost(self.lost or self._exited()) from None
        self._wait(None)
        return reply_value(self._receive(), self, sent)

    def handshake(self, timeout: float) -> tuple[ImplInfo | None, str]:
        """(info, "") once the implementation imported, or (None, what went wrong)."""
        try:
            if not self._wait(timeout):
                self.kill("")
                return None, f"the implementation did not import within {timeout:g} s"
            message = self._receive()
        except WorkerLost as lost:
            self.kill("")
            return None, f"importing the implementation: {lost.what}"
        except ProtocolError as exc:
            self.kill("")
            return None, f"importing the implementation: {exc}"
        except BaseException:  # Ctrl-C while it imports
            self.kill("")
            raise
        if type(message) is tuple and len(message) == 2 and message[0] == "import_error":
            self.process.join(5)
            self.kill("")
            return None, str(message[1])
        try:
            _, unsupported, tolerances, version, has_cell = message
            info = ImplInfo(
                {str(k): str(v) for k, v in unsupported.items()},
                declared_tolerances(tolerances),
                str(version),
                bool(has_cell),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            self.kill("")
            return None, f"importing the implementation: the worker's first message is malformed ({exc})"
        self.has_cell = info.has_cell
        return info, ""

    def bind(self, impl: Impl) -> Impl:
        """``impl`` with its factory and cell in this worker."""
        cell = Remote(self, CELL, "cell") if self.has_cell else None
        return dataclasses.replace(impl, factory=Remote(self, FACTORY, "factory"), cell=cell)

    def kill(self, why: str) -> None:
        """Kill the worker and everything in its process group; later requests fail with ``why``."""
        self.lost = self.lost or why or "the worker was stopped"
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(5)  # it sees `lost` within POLL_S
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(2)
        self.kill("")


def _run_job(
    worker: Worker, impl: Impl, token: int, job: Job, data: Payload, events: queue.Queue[Any]
) -> None:
    """A job's checks, here, against the worker's objects: each result, then done (or lost)."""
    try:
        for item in execute(impl, job.task, data):
            if isinstance(item, str):
                worker.check = item
            else:
                events.put(("result", worker, token, item))
        worker.request(("release", 0))
        events.put(("done", worker, token, None))
    except WorkerLost as lost:
        events.put(("lost", worker, token, lost.what))
    except BaseException:
        events.put(("lost", worker, token, "the suite itself failed: " + traceback.format_exc(limit=-3)))


@dataclass
class PoolRun:
    results: list[Result] = field(default_factory=list)
    interrupted: bool = False
    import_error: str = ""
    completed: set[str] = field(default_factory=set)  # ids of the jobs that ran to their end
    after_others: set[str] = field(default_factory=set)  # ids of jobs a worker ran after another job


_tokens = itertools.count(1)


class Pool:
    """``size`` workers running ``jobs``; ``payload`` makes a job's oracle arrays (here, in the
    parent); ``on_done(job, results)`` is told of every finished job (for progress)."""

    def __init__(self, spec: str, rerun_extra: str, size: int, timeout: float, fresh: bool) -> None:
        self.spec, self.rerun_extra = spec, rerun_extra
        self.size, self.timeout, self.fresh = max(1, size), timeout, fresh
        self.idle: list[Worker] = []
        self.busy: list[Worker] = []
        self.resumed: deque[tuple[int, Job, Payload]] = deque()
        self.after_others: set[str] = set()  # this run's jobs that a worker ran after another
        self.events: queue.Queue[Any] = queue.Queue()
        self.impl: Impl | None = None

    def start(self) -> tuple[ImplInfo | None, str]:
        """One worker, to learn the implementation's declarations (or why it cannot import)."""
        worker = Worker(self.spec)
        info, problem = worker.handshake(max(self.timeout, 60.0))
        if info is not None:
            self.idle.append(worker)
            self.impl = Impl(self.spec, _not_here, info.unsupported, None, info.tolerances, self.rerun_extra)
        return info, problem

    def _worker(self) -> Worker:
        if self.idle:
            return self.idle.pop()
        worker = Worker(self.spec)
        _, problem = worker.handshake(max(self.timeout, 60.0))
        if problem:
            raise RuntimeError(problem)
        return worker

    def close(self) -> None:
        for worker in self.busy + self.idle:
            worker.kill("")
        self.busy, self.idle = [], []

    def run(
        self,
        jobs: list[Job],
        payload: Callable[[Job], Payload],
        on_done: Callable[[Job, list[Result]], None],
        keep: bool = False,
    ) -> PoolRun:
        """Every job; ``keep``: the idle workers stay for the next run (pytest)."""
        pending = deque(enumerate(jobs))
        prepared: deque[tuple[int, Job, Payload]] = deque()  # oracle work done ahead, while workers run
        self.resumed = prepared  # a suite check a worker crashed in goes on after that item
        by_job: dict[int, list[Result]] = {}
        outcome = PoolRun()
        self.after_others = outcome.after_others

        def done(job: Job, results: list[Result]) -> None:
            outcome.completed.add(job.id)
            on_done(job, results)

        try:
            while pending or prepared or self.busy:
                while (pending or prepared) and len(self.busy) < self.size:
                    if not prepared:
                        index, job = pending.popleft()
                        prepared.append((index, job, payload(job)))
                    index, job, data = prepared.popleft()
                    by_job.setdefault(index, [])
                    self._send(index, job, data, by_job, done)
                if pending and len(prepared) < self.size and self.events.empty():
                    index, job = pending.popleft()
                    prepared.append((index, job, payload(job)))
                    continue
                self._collect(by_job, done)
        except KeyboardInterrupt:
            outcome.interrupted = True
        finally:
            for worker in self.busy:
                worker.kill("the run was interrupted")
            self.busy = []
            if not keep or outcome.interrupted:
                self.close()
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
        assert self.impl is not None, "Pool.start first"
        worker.job, worker.check, worker.payload = (index, job), "", data
        if worker.jobs_sent:
            self.after_others.add(job.id)
        worker.jobs_sent += 1
        worker.token = next(_tokens)
        worker.deadline = time.monotonic() + self.timeout
        worker.thread = threading.Thread(
            target=_run_job,
            args=(worker, worker.bind(self.impl), worker.token, job, data, self.events),
            name=f"lstm-conformance job {job.id}",
            daemon=True,
        )
        self.busy.append(worker)
        worker.thread.start()

    def _finish(
        self, worker: Worker, on_done: Callable[[Job, list[Result]], None], results: list[Result]
    ) -> None:
        self.busy.remove(worker)
        assert worker.job is not None
        job = worker.job[1]
        worker.job = None
        if worker.thread is not None:
            worker.thread.join()
        if self.fresh:
            worker.stop()
        else:
            self.idle.append(worker)
        on_done(job, results)

    def _fail(self, worker: Worker, by_job: dict[int, list[Result]], what: str, on_done: Any) -> None:
        """The worker died or hung: a failure of the case, or of the suite item it was in (the
        suite check's remaining items then go on in a fresh worker)."""
        assert worker.job is not None
        index, job = worker.job
        item = suite_item_of(job.task, worker.check)
        crash = crash_result(job.task, worker.check, what, self.rerun_extra, job.spec, item)
        by_job[index].append(crash)
        self.busy.remove(worker)
        worker.kill(what)
        if item and "timed out" not in what and not what.startswith("the suite itself"):
            task = dataclasses.replace(job.task, resume_after=item)
            self.resumed.appendleft((index, dataclasses.replace(job, task=task), worker.payload))
            return
        if item:  # a hang is not resumed: every later item could wait as long
            crash.message += "; the rest of this suite check's items did not run"
        on_done(job, by_job[index])

    def _collect(self, by_job: dict[int, list[Result]], on_done: Callable[[Job, list[Result]], None]) -> None:
        if self.busy:
            wait = max(0.0, min(w.deadline for w in self.busy) - time.monotonic())
            with contextlib.suppress(queue.Empty):
                self._handle(self.events.get(timeout=min(wait, 1.0)), by_job, on_done)
                while True:
                    self._handle(self.events.get_nowait(), by_job, on_done)
        for worker in [w for w in self.busy if time.monotonic() > w.deadline]:
            self._fail(worker, by_job, f"timed out after {self.timeout:g} s (--timeout)", on_done)

    def _handle(
        self, event: tuple[str, Worker, int, Any], by_job: dict[int, list[Result]], on_done: Any
    ) -> None:
        kind, worker, token, value = event
        if worker not in self.busy or worker.token != token or worker.job is None:
            return  # from a job already failed (timed out): too late to count
        index = worker.job[0]
        if kind == "result":
            by_job[index].append(value)
        elif kind == "done":
            self._finish(worker, on_done, by_job[index])
        else:
            self._fail(worker, by_job, value, on_done)


def _not_here(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the implementation runs in worker processes, not in the parent")


JOBS_ENV = "LSTM_CONFORMANCE_JOBS"


def jobs_env_problem() -> str | None:
    """What is wrong with $LSTM_CONFORMANCE_JOBS (not a number of workers, 1 or more), or None."""
    given = os.environ.get(JOBS_ENV, "").strip()
    if not given:
        return None
    try:
        if int(given) >= 1:
            return None
    except ValueError:
        pass
    return f"{JOBS_ENV}={given!r}: a number of worker processes, 1 or more"


def default_jobs() -> int:
    """Workers when --jobs is not given: $LSTM_CONFORMANCE_JOBS (a CI job that runs several
    suites side by side sets it; the CLI refuses a bad value before anything runs), else one per
    core this process may run on."""
    problem = jobs_env_problem()
    if problem:
        raise SystemExit(problem)
    given = os.environ.get(JOBS_ENV, "").strip()
    if given:
        return int(given)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
