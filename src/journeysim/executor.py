"""Where many independent runs execute: in this process, in local worker processes, or on Dask.

Every part of journeysim that runs many independent tasks (sweeps, forecasts over posterior
draws, plan comparisons, agent checks of an optimised plan, ABC calibration) hands them to an
:class:`Executor`. All executors have the same two methods:

- ``map(fn, tasks, progress=...)``: ``[fn(t) for t in tasks]``, results in input order;
- ``imap(fn, tasks, progress=...)``: ``(index, result)`` pairs as tasks finish (completion order),
  so a caller can store each result the moment it exists.

``fn`` must be a picklable top-level function (lambdas and functions defined in ``__main__`` or a
notebook also work when cloudpickle is installed, as it is with PyMC and Dask); tasks and results
must be picklable. An executor never changes a result: a task's random numbers must derive from
the task itself (its seed, replication, draw index), never from which worker runs it or when, so
the three executors give bit-identical results.

=========================  ==========================  ==========================================
spec                       executor                    use
=========================  ==========================  ==========================================
``"inline"``               :class:`InProcessExecutor`  tiny jobs, debugging (one task at a time)
``"local"``                :class:`LocalExecutor`      worker processes, one per core (default)
``"local:N"``              :class:`LocalExecutor`      N worker processes
``"dask"``, ``"dask:N"``   :class:`DaskExecutor`       a Dask LocalCluster of N worker processes
``"tcp://HOST:PORT"``      :class:`DaskExecutor`       a running Dask scheduler (any cluster)
=========================  ==========================  ==========================================

:func:`get_executor` turns a spec (or ``None``: the default) into an executor; executors made
from a spec are shared and kept warm, so repeated calls reuse the same worker processes.
:func:`set_default` changes the default for the whole program, as ``--scheduler`` does on the
command line; so does the environment variable ``JOURNEYSIM_EXECUTOR``.

A worker process that dies (killed, out of memory) does not lose the job: a local pool is
restarted and the unfinished tasks are resubmitted (up to ``max_restarts`` times); Dask moves the
lost tasks to the surviving workers itself.

Local worker processes are started with ``spawn`` (the same on Linux, macOS and Windows, and safe
with threads in the parent). A *script* that uses them must therefore guard its entry point with
``if __name__ == "__main__":``.

>>> ex = get_executor("inline")
>>> ex.map(abs, [-3, 1, -2])
[3, 1, 2]
"""

from __future__ import annotations

import atexit
import collections
import functools
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from journeysim.errors import InputError, JourneysimError, did_you_mean

__all__ = [
    "Executor",
    "InProcessExecutor",
    "LocalExecutor",
    "DaskExecutor",
    "WorkerLostError",
    "get_executor",
    "set_default",
    "get_default",
    "default_workers",
    "INLINE_BELOW_SECONDS",
]

#: With no executor chosen, a job the caller estimates below this many seconds of work runs in
#: this process: starting a worker process (imports, compiled kernels) costs about two seconds.
INLINE_BELOW_SECONDS = 3.0

#: Environment variable holding the default executor spec.
ENV_VAR = "JOURNEYSIM_EXECUTOR"

Progress = bool | Callable[[int, int], Any] | None


class WorkerLostError(JourneysimError):
    """Worker processes kept dying: the job was abandoned after the allowed restarts."""


def default_workers() -> int:
    """Cores this process may use (``os.sched_getaffinity`` where available, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


class Executor(Protocol):
    """What every executor offers (see the module docstring)."""

    @property
    def workers(self) -> int: ...

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, progress: Progress = None,
            desc: str | None = None) -> list[Any]: ...

    def imap(self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, progress: Progress = None,
             desc: str | None = None) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# shared machinery


class _Progress:
    """Progress of a job: a tqdm bar (``True``), a callback ``f(done, total)``, or nothing."""

    def __init__(self, progress: Progress, total: int, desc: str | None, initial: int = 0):
        self.total = total
        self.done = initial
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True and total > initial:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc or "tasks", unit="task", file=sys.stderr,
                            leave=False)

    def update(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _note_task(exc: BaseException, index: int, total: int) -> BaseException:
    """Mark an exception raised by a task with the task's index (attribute and traceback note)."""
    try:
        exc.task_index = index  # type: ignore[attr-defined]
        exc.add_note(f"(raised by task {index} of {total})")
    except (AttributeError, TypeError):  # pragma: no cover - exotic exception types
        pass
    return exc


class _Base:
    """``map`` on top of ``imap``; context-manager protocol."""

    def imap(self, fn, tasks, *, progress: Progress = None, desc: str | None = None):  # pragma: no cover
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], *, progress: Progress = None,
            desc: str | None = None) -> list[Any]:
        """``[fn(t) for t in tasks]`` computed by this executor, in input order."""
        tasks = list(tasks)
        out: list[Any] = [None] * len(tasks)
        for i, r in self.imap(fn, tasks, progress=progress, desc=desc):
            out[i] = r
        return out

    def close(self) -> None:
        """Release workers (the executor starts new ones if used again)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# in this process


class InProcessExecutor(_Base):
    """Runs tasks one after the other in this process (no pickling, no start-up cost)."""

    workers = 1

    def imap(self, fn, tasks, *, progress: Progress = None, desc: str | None = None):
        """Yield ``(index, fn(task))`` in input order."""
        tasks = list(tasks)
        bar = _Progress(progress, len(tasks), desc)
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
        bar = _Progress(progress, n, desc)
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


# ---------------------------------------------------------------------------------------------
# Dask


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise InputError("running on a Dask cluster needs dask.distributed: pip install 'journeysim[dask]'",
                         "--scheduler") from None
    return distributed


class _Box:
    """Opaque wrapper so that Dask does not look inside a task (a tuple could read as a task graph)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __getstate__(self):
        return self.value

    def __setstate__(self, value):
        self.value = value


def _call_boxed(fn: Callable, box: _Box) -> Any:
    return fn(box.value)


class DaskExecutor(_Base):
    """Tasks run on a Dask ``distributed`` cluster.

    Parameters
    ----------
    address
        Address of a running scheduler (``tcp://10.0.0.5:8786``). ``None``: start a
        ``LocalCluster`` of ``n_workers`` single-threaded worker processes on this machine.
    client
        An existing ``distributed.Client`` to use instead (not closed by :meth:`close`).
    n_workers
        Worker processes of the local cluster (default: the cores this process may use).
    timeout
        Seconds to wait for the scheduler when connecting.

    Notes
    -----
    If a worker dies, the scheduler reruns its tasks on other workers (a task is abandoned only
    after it killed several workers, ``distributed.scheduler.allowed-failures``); the results are
    the same because each task's random numbers derive from the task.
    """

    def __init__(self, address: str | None = None, *, client=None, n_workers: int | None = None,
                 timeout: float = 10.0):
        self.address = address
        self.n_workers = n_workers
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._cluster = None
        self._lock = threading.Lock()

    @property
    def client(self):
        """The ``distributed.Client`` (connecting, or starting the local cluster, on first use)."""
        with self._lock:
            if self._client is None:
                distributed = _import_distributed()
                if self.address is None:
                    self._cluster = distributed.LocalCluster(
                        n_workers=self.n_workers or default_workers(), threads_per_worker=1, processes=True,
                        dashboard_address=":0")
                    self._client = distributed.Client(self._cluster)
                else:
                    try:
                        self._client = distributed.Client(self.address, timeout=self.timeout)
                    except (OSError, TimeoutError) as exc:
                        raise JourneysimError(f"cannot reach the Dask scheduler at {self.address} within "
                                              f"{self.timeout:g} s: {exc}") from None
            return self._client

    @property
    def workers(self) -> int:
        """Threads across the cluster's workers now (tasks that can run at once)."""
        info = self.client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    def imap(self, fn, tasks, *, progress: Progress = None, desc: str | None = None):
        """Yield ``(index, fn(task))`` as tasks finish on the cluster."""
        tasks = list(tasks)
        n = len(tasks)
        if n == 0:
            return
        distributed = _import_distributed()
        client = self.client
        bar = _Progress(progress, n, desc)
        futures = client.map(_call_boxed, [fn] * n, [_Box(t) for t in tasks], pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        pending = {f.key: f for f in futures}  # a result is released from the cluster once taken
        completed = distributed.as_completed(futures)
        del futures
        try:
            for f in completed:
                i = index[f.key]
                try:
                    r = f.result()
                except distributed.KilledWorker as exc:
                    raise WorkerLostError(f"task {i} of {n} was lost with its worker several times "
                                          f"(it may crash or exhaust memory): {exc}") from None
                except Exception as exc:
                    raise _note_task(exc, i, n)
                del pending[f.key]
                del f
                bar.update()
                yield i, r
        finally:
            if pending:
                client.cancel(list(pending.values()))
            bar.close()

    def close(self) -> None:
        """Close the client and local cluster this executor started (not a client it was given)."""
        with self._lock:
            client, cluster = self._client, self._cluster
            if self._owns_client:
                self._client = None
            self._cluster = None
        if self._owns_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __repr__(self) -> str:
        if self.address:
            return f"DaskExecutor(address={self.address!r})"
        if not self._owns_client:
            return "DaskExecutor(client=...)"
        return f"DaskExecutor(n_workers={self.n_workers or default_workers()})"


# ---------------------------------------------------------------------------------------------
# specs and the default

_SPECS = ("inline", "local", "local:N", "dask", "dask:N", "tcp://HOST:PORT")
_DASK_SCHEMES = ("tcp://", "tls://", "ucx://", "ws://", "wss://", "inproc://")
_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()
_default: Any = None


def _count(spec: str, kind: str, where: str) -> int | None:
    rest = spec[len(kind):]
    if not rest:
        return None
    try:
        n = int(rest[1:]) if rest.startswith(":") else None
    except ValueError:
        n = None
    if n is None or n <= 0:
        raise InputError(f"'{spec}': write {kind}:N with N a whole number of worker processes > 0", where)
    return n


def _canonical(spec: str, where: str) -> str:
    s = spec.strip()
    low = s.lower()
    if low in ("inline", "local", "dask"):
        return low
    for kind in ("local", "dask"):
        if low.startswith(kind + ":"):
            return f"{kind}:{_count(low, kind, where)}"
    if low.startswith(_DASK_SCHEMES):
        return s
    raise InputError(f"unknown executor '{spec}'" + did_you_mean(s.split(":")[0], ("inline", "local", "dask"))
                     + f"; use one of {', '.join(_SPECS)}", where)


def _make(spec: str) -> Any:
    if spec == "inline":
        return InProcessExecutor()
    kind, _, n = spec.partition(":")
    if kind == "local":
        return LocalExecutor(int(n) if n else None)
    if kind == "dask" and not spec.startswith(_DASK_SCHEMES):
        return DaskExecutor(None, n_workers=int(n) if n else None)
    return DaskExecutor(spec)


def _is_executor(obj) -> bool:
    # Looks at the type only: evaluating a property such as ``workers`` could connect to a cluster.
    return isinstance(obj, _Base) or all(callable(getattr(type(obj), m, None)) for m in ("map", "imap", "close"))


def _is_client(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "distributed" and type(obj).__name__ == "Client"


def get_executor(spec: Any = None, *, work_seconds: float | None = None, where: str = "executor") -> Any:
    """The executor for ``spec``.

    Parameters
    ----------
    spec
        ``None`` (the default: :func:`set_default`, else ``$JOURNEYSIM_EXECUTOR``, else ``"local"``),
        a spec string (see the module docstring), an executor (returned as is) or a
        ``distributed.Client``.
    work_seconds
        The caller's estimate of the job's total work. With no executor chosen anywhere, a job
        under :data:`INLINE_BELOW_SECONDS` runs in this process.
    where
        Names the source of ``spec`` in error messages (``--scheduler``).

    Executors made from spec strings are shared: the same spec returns the same (warm) executor.
    """
    if spec is None:
        spec = _default
        if spec is None:
            env = os.environ.get(ENV_VAR)
            if env:
                spec, where = env, ENV_VAR
            else:
                spec = "inline" if work_seconds is not None and work_seconds < INLINE_BELOW_SECONDS else "local"
    if isinstance(spec, str):
        key = _canonical(spec, where)
        with _shared_lock:
            ex = _shared.get(key)
            if ex is None:
                ex = _shared[key] = _make(key)
        return ex
    if _is_client(spec):
        return DaskExecutor(client=spec)
    if _is_executor(spec):
        return spec
    raise InputError(f"{spec!r} is not an executor; use one of {', '.join(_SPECS)}", where)


def set_default(spec: Any) -> None:
    """Make ``spec`` the executor used when none is given (``None`` restores the built-in choice).

    >>> set_default("inline")
    >>> get_executor()
    InProcessExecutor()
    >>> set_default(None)
    """
    global _default
    if isinstance(spec, str):
        _canonical(spec, "set_default")
    elif spec is not None and not (_is_client(spec) or _is_executor(spec)):
        raise InputError(f"{spec!r} is not an executor; use one of {', '.join(_SPECS)}", "set_default")
    _default = spec


def get_default() -> Any:
    """The spec given to :func:`set_default` (``None`` if none)."""
    return _default


@atexit.register
def _close_shared() -> None:
    with _shared_lock:
        items = list(_shared.values())
        _shared.clear()
    for ex in items:
        try:
            ex.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
