"""The Dask executor: tasks on a ``distributed`` cluster (optional dependency ``journeysim[dask]``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from journeysim._util.cpu import default_workers
from journeysim.errors import InputError, JourneysimError
from journeysim.scale.base import Progress, ProgressBar, WorkerLostError, _Base, _note_task

__all__ = ['DaskExecutor']



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
        bar = ProgressBar(progress, n, desc)
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
