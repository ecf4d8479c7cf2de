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
import os
import threading
from typing import Any

from journeysim.errors import InputError, did_you_mean
from journeysim.scale.base import INLINE_BELOW_SECONDS, Executor, WorkerLostError, _Base
from journeysim.scale.dask_backend import DaskExecutor
from journeysim.scale.local import InProcessExecutor, LocalExecutor

__all__ = ['Executor', 'InProcessExecutor', 'LocalExecutor', 'DaskExecutor', 'WorkerLostError', 'get_executor',
           'set_default', 'get_default', 'INLINE_BELOW_SECONDS']

#: Environment variable holding the default executor spec.
ENV_VAR = "JOURNEYSIM_EXECUTOR"


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
