"""A compiled digamma for PyTensor's numba backend, so that a compiled model can be cached.

The negative binomial's gradient holds ``psi`` (digamma, the derivative of ``gammaln``). PyTensor's
numba backend implements it by calling SciPy's Cython ``digamma`` through a function pointer, and a
function that calls a pointer cannot be cached by numba: one such node makes the whole logp graph
uncachable, and every fit then compiled it afresh (16-20 s of the retail example's compile,
``experiments/RESULTS.md``). :func:`digamma` is written out in numba instead, and registered for
PyTensor's ``Psi`` with a cache key, so a fit of a model already compiled (same structure and data)
loads the graph from PyTensor's cache.

Method: the recurrence ``psi(x) = psi(x + 1) - 1/x`` raises ``x`` to at least 10, where the
asymptotic series ``log x - 1/(2x) - sum_k B_2k / (2k x^2k)`` to ``k = 7`` is exact to rounding
(its first omitted term is below 1e-16 of the result); negative arguments use the reflection
``psi(x) = psi(1 - x) - pi / tan(pi x)``. The special values are SciPy's: ``inf`` at ``+inf``,
``-inf`` at ``+0`` and ``+inf`` at ``-0``, ``nan`` at negative integers, at ``-inf`` and at ``nan``
(``tests/inference/test_compile_cache.py`` compares them, and the values over twenty decades, to SciPy).
"""

from __future__ import annotations

import math

from journeysim._util.numba import HAVE_NUMBA, njit

__all__ = ["digamma"]

#: Version of this implementation in PyTensor's cache key (raise it when the numbers change).
_CACHE_VERSION = 1


@njit(contract=False)
def digamma(x: float) -> float:
    """psi(x) = d log Gamma(x) / dx for a real ``x`` (SciPy's values, to rounding)."""
    if math.isnan(x) or x == -math.inf:
        return math.nan
    if x == math.inf:
        return math.inf
    res = 0.0
    if x <= 0.0:
        if x == 0.0:
            return -math.inf if math.copysign(1.0, x) > 0 else math.inf
        if x == math.floor(x):
            return math.nan
        # reflection, with pi x reduced to (-pi/2, pi/2] so that tan keeps its precision
        r = x - math.floor(x + 0.5)
        res = -math.pi / math.tan(math.pi * r)
        x = 1.0 - x
    while x < 10.0:
        res -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (
        1.0 / 132 - f * (691.0 / 32760 - f * (1.0 / 12)))))))
    return res + math.log(x) - 0.5 / x - series


def _register():
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key
    from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key
    from pytensor.scalar.math import Psi

    @register_funcify_and_cache_key(Psi)
    def _numba_psi(op, node=None, **kwargs):
        kernel = digamma

        @numba_njit
        def psi(x):  # pragma: no cover - compiled
            return kernel(x)

        return psi, scalar_op_cache_key(op, journeysim_digamma=_CACHE_VERSION)


if HAVE_NUMBA:
    try:
        _register()
    except (ImportError, AttributeError):  # pragma: no cover - another PyTensor's numba dispatch API:
        pass  # its own psi is used (correct; the compiled model is then not cached)
