"""Compiling many kernels side by side: a few worker processes, each running jobs one at a time.

A model's first call can need dozens of new kernels (ResNet-50: 42 on llvm, ~80 ms of LLVM each), and a compiler
binding may hold a process-wide lock (llvmlite serialises every LLVM call), so threads cannot share the work:
processes can. Workers are plain `python -m tg.core.workers` subprocesses fed through their pipes, not
`multiprocessing` (which re-imports the user's main script in each child, and runs it again when that script has
no `if __name__ == "__main__"` guard). A job names a module-level function by module and name; its arguments and
result travel pickled between this process and the workers it started. A worker that dies fails its job with
`WorkerLost`, and the caller compiles in-process instead.
"""
from __future__ import annotations

import atexit
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import IO, Any, Optional

from . import config

HEADER = struct.Struct("<Q")  # each message: its length, then its pickle
MAX_LOSSES = 3  # workers lost in a row after which the pool gives up (they cannot start or keep crashing here)


class WorkerLost(RuntimeError):
    """A compile worker exited before it answered: the job should be run in this process instead."""


def _send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        raise EOFError("the other side closed the pipe")
    (size,) = HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the pipe mid-message")
    return pickle.loads(data)


class Workers:
    """`count` worker processes (started on first use) and one feeding thread per worker."""

    def __init__(self, count: int):
        self.count = count
        self.jobs: queue.Queue[Optional[tuple[Future[Any], tuple[str, str, tuple[Any, ...]]]]] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()
        self.losses = 0  # workers lost in a row
        self.pid = os.getpid()  # a forked child has none of this pool's threads: it makes its own
        self.broken = False

    def submit(self, module: str, function: str, args: tuple[Any, ...]) -> Future[Any]:
        """Run module.function(*args) in a worker; the future holds its result or the exception it raised."""
        with self.lock:
            if not self.threads:
                self.threads = [threading.Thread(target=self._feed, name=f"tg-compile-{i}", daemon=True)
                                for i in range(self.count)]
                for t in self.threads:
                    t.start()
        future: Future[Any] = Future()
        self.jobs.put((future, (module, function, args)))
        return future

    def _start(self) -> subprocess.Popen[bytes]:
        # the worker imports what this process imports: its module search path goes along
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = subprocess.Popen([sys.executable, "-m", "tg.core.workers"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, env=env)
        with self.lock:
            self.processes.append(process)
        return process

    def _try_start(self) -> Optional[subprocess.Popen[bytes]]:
        """A new worker, or None (and the pool given up) where processes cannot be started here."""
        try:
            return self._start()
        except OSError:
            self.broken = True
            return None

    def _feed(self) -> None:
        process = self._try_start()
        while True:
            item = self.jobs.get()
            if item is None:  # shutdown
                break
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue
            if process is None:  # the pool gave up: every job goes back to its caller
                future.set_exception(WorkerLost("tg: compile workers cannot run in this environment"))
                continue
            assert process.stdin is not None and process.stdout is not None
            try:
                _send(process.stdin, job)
                ok, value = _receive(process.stdout)
            except (OSError, EOFError) as e:  # the caller compiles this one itself; a new worker takes the next
                future.set_exception(WorkerLost(f"tg: compile worker {process.pid} exited ({e})"))
                self._stop(process)
                self.losses += 1
                self.broken = self.broken or self.losses >= MAX_LOSSES  # they keep crashing here
                process = None if self.broken else self._try_start()
                continue
            self.losses = 0
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if process is not None:
            self._stop(process)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        try:
            if process.stdin is not None:
                process.stdin.close()  # the worker's loop ends at end of input
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        """Stop the workers (at exit; queued jobs not yet taken are cancelled)."""
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join(timeout=10)
        while True:
            try:
                item = self.jobs.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()


_pool: Optional[Workers] = None
_pool_lock = threading.Lock()


def pool() -> Optional[Workers]:
    """The process's compile workers (TG_COMPILE_WORKERS of them, default: one per core), or None when that is
    fewer than two: one process compiling alone gains nothing from a worker."""
    global _pool
    count = config.compile_workers()
    if count < 2:
        return None
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = Workers(count)
            atexit.register(_pool.close)
        return None if _pool.broken else _pool


def running() -> bool:
    """Whether this process's compile workers have been started."""
    return _pool is not None and _pool.pid == os.getpid() and bool(_pool.threads) and not _pool.broken


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """A worker's loop: read a job, run it, send back (True, result) or (False, the exception it raised)."""
    while True:
        try:
            module, function, args = _receive(stdin)
        except EOFError:
            return
        try:
            result: tuple[bool, Any] = (True, getattr(importlib.import_module(module), function)(*args))
        except Exception as e:  # sent back to be raised where the job was submitted
            result = (False, e)
        try:
            _send(stdout, result)
        except Exception as e:  # an exception (or result) that does not pickle: its text goes instead
            _send(stdout, (False, RuntimeError(f"{type(e).__name__}: {e}")))


def main() -> None:
    # the protocol gets its own copy of stdout; what a job prints (Python or C code) goes to stderr instead
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, protocol)


if __name__ == "__main__":
    main()
