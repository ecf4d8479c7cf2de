"""A compiled model that numba can cache: the digamma of the negative binomial's gradient
(:mod:`journeysim.inference.special`) and nutpie's callbacks (:mod:`journeysim.inference.nutpie_cache`).

Both replace code whose numbers must not change: digamma is checked against SciPy (relative error
at most 2e-15 on positive arguments, where the likelihood uses it; 1e-12 on negative ones, where
SciPy itself is the less accurate of the two near the poles), the callbacks against PyTensor's own
logp and gradient to rounding.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from journeysim.inference.special import digamma

scipy_special = pytest.importorskip("scipy.special")


def test_digamma_agrees_with_scipy_over_twenty_decades():
    xs = np.logspace(-20, 20, 2001)
    ours = np.array([digamma(float(x)) for x in xs])
    ref = scipy_special.digamma(xs)
    assert np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))) < 2e-15
    neg = np.linspace(-40.25, -0.01, 3001)
    ours = np.array([digamma(float(x)) for x in neg])
    ref = scipy_special.digamma(neg)
    assert np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))) < 1e-12


def test_digamma_special_values_are_scipys():
    special = [0.0, -0.0, -1.0, -7.0, np.inf, -np.inf, np.nan]
    ours = np.array([digamma(x) for x in special])
    np.testing.assert_array_equal(ours, scipy_special.digamma(np.array(special)))


def _negative_binomial_model():
    import pymc as pm

    y = np.array([3, 7, 1, 0, 12, 5, 4, 9])
    with pm.Model() as model:
        mu = pm.LogNormal("mu", 1.0, 1.0)
        alpha = pm.Gamma("alpha", 2.0, 0.5)
        pm.NegativeBinomial("y", mu=mu, alpha=alpha, observed=y)
    return model


def _call_logp(compiled, x):
    """logp and gradient through nutpie's C callback (as nutpie calls it)."""
    cfunc = compiled.compiled_logp_func
    n = len(x)
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad = np.empty(n)
    logp = np.empty(())
    dbl = ctypes.POINTER(ctypes.c_double)
    code = cfunc.ctypes(n, x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl), logp.ctypes.data_as(dbl), None)
    assert code == 0
    return float(logp), grad


def test_callbacks_are_cached_and_give_pytensors_logp_and_gradient():
    """The model's logp holds ``psi`` (the negative binomial's gradient) and so could not be cached
    before; compiled twice, the second compile loads both callbacks from the cache, and the callback
    gives PyTensor's logp and gradient."""
    from journeysim.inference.sampling import compile_nutpie

    model = _negative_binomial_model()
    first = compile_nutpie(model)
    again = compile_nutpie(_negative_binomial_model())
    assert first.compiled_logp_func.__name__ == "journeysim_nutpie_logp"
    assert again.compiled_logp_func.cache_hits == 1 and again.compiled_expand_func.cache_hits == 1
    from pytensor.compile.mode import Mode

    python = Mode(linker="py")  # (SciPy's digamma; PyTensor's C one differs from it by 1e-9)
    logp_fn = model.compile_logp(jacobian=True, mode=python)
    dlogp_fn = model.compile_dlogp(jacobian=True, mode=python)
    point = model.initial_point()
    for shift in (0.0, 0.7, -1.3):
        values = {k: v + shift for k, v in point.items()}
        x = np.concatenate([np.atleast_1d(values[v.name]) for v in model.value_vars])
        logp, grad = _call_logp(again, x)
        assert logp == pytest.approx(float(logp_fn(values)), rel=1e-12)
        np.testing.assert_allclose(grad, dlogp_fn(values), rtol=1e-12)


def test_a_model_with_shared_data_falls_back_to_nutpies_callbacks_and_still_swaps_data():
    """nutpie passes shared variables' data at run time, which the cached callbacks do not: such a
    model (SBC's ``observed_as_data``) gets nutpie's own callbacks, and ``with_data`` still works."""
    import nutpie
    import pymc as pm

    from journeysim.inference.sampling import compile_nutpie

    with pm.Model() as model:
        y = pm.Data("y", np.array([3.0, 7.0, 1.0, 0.0]))
        mu = pm.LogNormal("mu", 1.0, 1.0)
        pm.Poisson("obs", mu=mu, observed=y)
    compiled = compile_nutpie(model)
    assert compiled.compiled_logp_func.__name__ != "journeysim_nutpie_logp"
    idata = nutpie.sample(compiled.with_data(y=np.array([30.0, 31.0, 29.0, 30.0])), draws=200, tune=200,
                          chains=1, seed=1, progress_bar=False)
    assert 25 < float(idata.posterior["mu"].mean()) < 35
