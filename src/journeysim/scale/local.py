"""Executors on this machine: in the calling process, or over a pool of local worker processes."""

from __future__ import annotations

import collections
import functools
import pickle
import threading
from collections.abc import Callable
from typing import Any

from journeysim._util.cpu import default_workers
from journeysim.errors import InputError
from journeysim.scale.base import Progress, ProgressBar, WorkerLostError, _Base, _note_task

__all__ = ['InProcessExecutor', 'LocalExecutor']



# ---------------------------------------------------------------------------------------------
# in this process


class InProcessExecutor(_Base):
    """Runs tasks one after the other in this process (no pickling, no start-up cost)."""

    workers = 1

    def imap(self, fn, tasks, *, progress: Progress = None, desc: str | None = None):
        """Yield ``(index, fn(task))`` in input order."""
        tasks = list(tasks)
        bar = ProgressBar(progress, len(tasks), desc)
        try:
            for i, t in enumerate(tasks):
                try:
                    r = fn(t)
                except Exception as exc:
                    raise _note_task(exc, i, len(tasks))
                bar.update()
                yield i, r
        finally:
            bar.close()

    def __repr__(self) -> str:
        return "InProcessExecutor()"


# ---------------------------------------------------------------------------------------------
# local worker processes


def _dump_fn(fn: Callable) -> bytes:
    """Serialise a function once per job: by reference when importable, by value otherwise."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle comes with PyMC and Dask
        cloudpickle = None
    try:
        return cloudpickle.dumps(fn) if cloudpickle is not None else pickle.dumps(fn)
    except Exception as exc:
        raise InputError(f"cannot send {fn!r} to worker processes ({exc}); use a top-level function",
                         "executor") from None


@functools.lru_cache(maxsize=16)
def _load_fn(payload: bytes) -> Callable:
    return pickle.loads(payload)


def _call(payload: bytes, task: Any) -> Any:
    """Run in a worker process: the job's function applied to one task."""
    return _load_fn(payload)(task)


class LocalExecutor(_Base):
    """A pool of worker processes on this machine (``concurrent.futures.ProcessPoolExecutor``).

    Parameters
    ----------
    workers
        Number of worker processes; default: the cores this process may use.
    start_method
        ``"spawn"`` (default; as on macOS and Windows), ``"forkserver"`` or ``"fork"``.
    max_restarts
        How many times per job a pool whose worker died is restarted (its unfinished tasks are
        resubmitted) before :class:`WorkerLostError` is raised.

    Notes
    -----
    The pool starts on first use and stays up (warm) until :meth:`close`; a job of a single task
    runs in this process instead. At most ``2 * workers`` tasks are in flight at once, so a job of
    a million tasks does not pickle a million tasks up front.
    """

    def __init__(self, workers: int | None = None, *, start_method: str = "spawn", max_restarts: int = 3):
        self._workers = workers
        self.start_method = start_method
        self.max_restarts = max_restarts
        self._pool = None
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        return int(self._workers) if self._workers else default_workers()

    def _ensure_pool(self):
        with self._lock:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context(self.start_method))
            return self._pool

    def _discard_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker processes (a later job starts new ones)."""
        self._discard_pool()

    def imap(self, fn, tasks, *, progress: Progress = None, desc: str | None = None):
        """Yield ``(index, fn(task))`` as tasks finish, restarting the pool if a worker dies."""
        tasks = list(tasks)
        n = len(tasks)
        if n <= 1:
            yield from InProcessExecutor().imap(fn, tasks, progress=progress, desc=desc)
            return
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        payload = _dump_fn(fn)
        bar = ProgressBar(progress, n, desc)
        todo = collections.deque(range(n))
        inflight: dict = {}
        window = 2 * self.workers
        restarts = 0
        try:
            while todo or inflight:
                pool = self._ensure_pool()
                try:
                    while todo and len(inflight) < window:
                        i = todo[0]
                        inflight[pool.submit(_call, payload, tasks[i])] = i
                        todo.popleft()
                except BrokenProcessPool:
                    pass  # a worker died while submitting: handled below like any other breakage
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED) if inflight else (set(), set())
                lost = []
                for f in done:
                    i = inflight.pop(f)
                    exc = f.exception()
                    if isinstance(exc, BrokenProcessPool):
                        lost.append(i)
                    elif exc is not None:
                        raise _note_task(exc, i, n)
                    else:
                        bar.update()
                        yield i, f.result()
                if lost or (not done and not inflight and todo):
                    # The pool is broken: every task still in flight is lost with it.
                    for f, i in list(inflight.items()):
                        if f.done() and f.exception() is None:
                            bar.update()
                            yield i, f.result()
                        else:
                            lost.append(i)
                    inflight.clear()
                    self._discard_pool()
                    restarts += 1
                    if restarts > self.max_restarts:
                        hint = ""
                        if bar.done == 0 and self.start_method != "fork":
                            hint = ("; if this runs from a script, guard its entry point with "
                                    "`if __name__ == \"__main__\":` (worker processes import the script)")
                        raise WorkerLostError(
                            f"a worker process died {restarts} times (killed, out of memory, or a crash in "
                            f"compiled code); {bar.done} of {n} tasks finished{hint}")
                    todo.extendleft(sorted(lost, reverse=True))
        finally:
            for f in inflight:
                f.cancel()
            bar.close()

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"
