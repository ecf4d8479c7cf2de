"""What reaches the terminal while a command runs: journeysim's own messages, and progress.

:func:`quiet_terminal` (around every verb, in :func:`journeysim.cli.main.main`) keeps out what a
user cannot act on: the banners and warnings of the libraries underneath (ArviZ's migration
notice, PyTensor's BLAS notice, numpy's RuntimeWarnings from a division by a zero spend) and
their logging below ERROR. journeysim's own warnings print as one line (``warning: ...``) without
the source line Python shows by default. ``JOURNEYSIM_LIBRARY_WARNINGS=1`` lets the libraries'
through again, for debugging.

:class:`Heartbeat` shows that a long step (compiling, sampling) is alive: on a terminal one line
rewritten in place; into a log file (stderr not a tty) a plain line every ``every`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator

__all__ = ['quiet_terminal', 'Heartbeat', 'LIBRARY_LOGGERS']

#: Loggers of libraries whose INFO/WARNING records are not for a journeysim user.
LIBRARY_LOGGERS = ("pytensor", "pymc", "arviz", "numba", "nutpie", "distributed", "h5netcdf", "matplotlib")


def _show_own_warning(message, category, filename, lineno, file=None, line=None):
    """One line per warning: ``warning: <message>`` (no file name, no source line)."""
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=file or sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_terminal() -> Iterator[None]:
    """Library warnings and notices off, journeysim's warnings on one line; restored on exit."""
    from journeysim.errors import JourneysimWarning

    if os.environ.get("JOURNEYSIM_LIBRARY_WARNINGS"):
        yield
        return
    saved = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (every library's warning, banner or notice ...)
        warnings.simplefilter("default", JourneysimWarning)  # (... but journeysim's own)
        warnings.showwarning = _show_own_warning
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)


class Heartbeat:
    """Elapsed time of a long step, on stderr, from a background thread.

    >>> with Heartbeat("compiling", stream=None) as hb:
    ...     hb.phase("sampling")
    """

    def __init__(self, label: str, stream=sys.stderr, every: float | None = None, prefix: str = "   "):
        self.label = label
        self.stream = stream
        self.prefix = prefix
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.every = every if every is not None else (1.0 if self.tty else 15.0)

    def __enter__(self) -> Heartbeat:
        self._t0 = self._tp = time.perf_counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._muted = False
        self._thread = threading.Thread(target=self._beat, daemon=True)
        if self.stream is not None:
            self._thread.start()
        return self

    def _write(self, text: str, *, final: bool = False) -> None:
        if self.stream is None:
            return
        with self._lock:
            if self.tty:
                self.stream.write("\r" + text.ljust(72) + ("\n" if final else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _line(self) -> str:
        now = time.perf_counter()
        return f"{self.prefix}{self.label} ... {now - self._tp:.0f} s (total {now - self._t0:.0f} s)"

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            if not self._muted:
                self._write(self._line())

    def phase(self, label: str, *, mute: bool = False) -> None:
        """Start the next step (its time counted from now); ``mute``: another display takes over."""
        now = time.perf_counter()
        self._write(f"{self.prefix}{self.label}: done in {now - self._tp:.0f} s", final=True)
        self.label, self._tp, self._muted = label, now, mute
        if not mute and not self.tty:
            self._write(f"{self.prefix}{label} ...")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if not self._muted and exc[0] is None:
            self._write(f"{self.prefix}{self.label}: done in {time.perf_counter() - self._tp:.0f} s", final=True)
        elif self.tty and not self._muted and self.stream is not None:
            self._write("", final=True)


@contextlib.contextmanager
def fit_progress(sampler: str, chains: int, draws: int, tune: int, *, quiet: bool, stream=None) -> Iterator[bool]:
    """Progress of a NUTS fit: compiling, then sampling; yields whether the sampler shows its own bar.

    The sampler's bar only on a terminal; into a log file, plain lines. The end of compiling is
    seen by wrapping :func:`journeysim.inference.sampling.compile_nutpie` while the fit runs.
    """
    import journeysim.inference.sampling as sampling

    stream = sys.stderr if stream is None else stream
    if quiet:
        yield False
        return
    hb = Heartbeat("building and compiling the model", stream=stream)
    own_bar = hb.tty and sampler == "nutpie"
    original = sampling.compile_nutpie

    def compile_then_sample(model):
        compiled = original(model)
        hb.phase(f"sampling {chains} chains x ({tune} tuning + {draws} draws)", mute=own_bar)
        return compiled

    def extend(chains, more, tune, ess, divergences, target_accept):
        from journeysim.inference.posterior import ESS_PER_CHAIN

        why = []
        if ess < ESS_PER_CHAIN * chains:
            why.append(f"{ess:,.0f} effective draws, short of {ESS_PER_CHAIN * chains:,}")
        if divergences:
            why.append(f"{divergences} divergence{'s' if divergences > 1 else ''}")
        hb.phase(f"{' and '.join(why)}: sampling again, {chains} chains x ({tune} tuning + {more:,} draws)"
                 f", target acceptance {target_accept:g}", mute=own_bar)

    announce = sampling.announce_extension
    sampling.compile_nutpie, sampling.announce_extension = compile_then_sample, extend
    try:
        with hb:
            if sampler != "nutpie":
                hb.label = f"compiling and sampling {chains} chains x ({tune} tuning + {draws} draws)"
            yield own_bar
    finally:
        sampling.compile_nutpie, sampling.announce_extension = original, announce
