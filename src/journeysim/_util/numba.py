"""The one numba setup: whether numba is used, and the compiler flags of every compiled kernel.

numba is used when it is importable (it is installed with PyTensor) and ``JOURNEYSIM_NO_NUMBA`` is
not set; otherwise :func:`njit` returns the function unchanged and the same code runs as plain
Python (correct, far too slow for sampling). ``JOURNEYSIM_NO_FUSED=1`` keeps numba for planning but
builds the likelihood with PyTensor's ``scan`` (:func:`journeysim.inference.ops.use_fused`).

Floating-point semantics (:data:`FLAGS`): IEEE, except that ``a * b + c`` may be contracted into
one fused multiply-add. Sums are not reassociated: with ``reassoc`` (and ``arcp``, ``nsz``) the
kernels gave results differing in the last bits depending on whether the model was compiled afresh
or loaded from the caches, and a seed no longer fixed the draws; without them the draws are
bit-identical either way (README, "Reproducibility"), for a few per cent of speed.
``error_model="numpy"``: ``x / 0`` gives inf or nan as in numpy, not an exception.

The twin's step runs under exactly these flags wherever it is compiled: in the likelihood
(:mod:`journeysim.inference.ops`) and in the planning batch (:mod:`journeysim.twin._kernel.batch`),
so a forecast and a fit see the same numbers. The agent engine's kernels
(:mod:`journeysim.engine._kernels`) pass ``contract=False``: their numpy fallbacks are the reference
and must agree bit for bit, which a fused multiply-add would break.
"""

from __future__ import annotations

import os

__all__ = ["HAVE_NUMBA", "FLAGS", "njit", "use_numba"]

FLAGS = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})

try:
    if os.environ.get("JOURNEYSIM_NO_NUMBA"):
        raise ImportError
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised with JOURNEYSIM_NO_NUMBA
    numba = None
    HAVE_NUMBA = False


def njit(f=None, *, inline: bool = False, contract: bool = True):
    """Compile ``f`` with :data:`FLAGS` (``@njit`` or ``@njit(inline=True)``); identity without numba.

    ``inline=True`` inlines the function into its callers (numba's ``inline="always"``);
    ``contract=False`` forbids fused multiply-adds (strict IEEE, as numpy).
    """
    if not HAVE_NUMBA:
        return (lambda g: g) if f is None else f
    flags = dict(FLAGS, inline="always" if inline else "never")
    if not contract:
        flags.pop("fastmath")
    if f is None:
        return lambda g: numba.njit(**flags)(g)
    return numba.njit(**flags)(f)


def use_numba(requested: bool | None) -> bool:
    """``requested``, or numba when it is available (``None``)."""
    return HAVE_NUMBA if requested is None else bool(requested)
