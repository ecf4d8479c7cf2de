"""What every executor is: the protocol, the shared base class, progress reporting and the lost-worker error."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from journeysim.errors import JourneysimError

__all__ = ['Executor', 'WorkerLostError', 'INLINE_BELOW_SECONDS']



#: With no executor chosen, a job the caller estimates below this many seconds of work runs in
#: this process: starting a worker process (imports, compiled kernels) costs about two seconds.
INLINE_BELOW_SECONDS = 3.0

Progress = bool | Callable[[int, int], Any] | None


class WorkerLostError(JourneysimError):
    """Worker processes kept dying: the job was abandoned after the allowed restarts."""


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


class ProgressBar:
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
