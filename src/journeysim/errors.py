"""Error and warning types shared by every part of journeysim.

Every problem with user input (a scenario, a plan, a CSV, a path table) is raised as an
:class:`InputError`, whose message names *where* the problem is (a file, a key path such as
``channels.tv.cpm``, a CSV row and column) and *what* is wrong. The command line prints these
messages without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["JourneysimError", "InputError", "JourneysimWarning", "ConvergenceError", "did_you_mean"]


class JourneysimError(Exception):
    """Base class of every error journeysim raises on purpose."""


class InputError(JourneysimError, ValueError):
    """Bad user input: the message says where and what.

    Parameters
    ----------
    message
        What is wrong.
    where
        Where it is wrong: a file name, a key path (``channels.tv.cpm``), ``row 12, column spend_tv``.
    """

    def __init__(self, message: str, where: str | None = None):
        self.where = where
        self.problem = message
        super().__init__(f"{where}: {message}" if where else message)


class ConvergenceError(JourneysimError):
    """A fit did not converge and the caller did not accept that."""


class JourneysimWarning(UserWarning):
    """Warnings journeysim emits itself (the test suite turns them into errors)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``.

    >>> did_you_mean("cmp", ["cpm", "cpc"])
    " (did you mean 'cpm'?)"
    """
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
