"""nutpie's compiled logp and expand functions, cached on disk like the rest of the model.

nutpie samples a numba model through two C callbacks (``numba.cfunc``) wrapped around PyTensor's
compiled logp-and-gradient and expand functions. PyTensor caches its compiled functions (keyed by
the graph: its Ops, their properties and its constants), but nutpie's callbacks are closures that
numba cannot cache, and compiling a callback links the whole compiled graph into it again: LLVM
optimises and generates the machine code of every kernel once more (14 s of the retail example's
30 s warm compile, ``experiments/RESULTS.md``). Here the callbacks are the same code, written as
PyTensor-style generated functions that carry PyTensor's key of the graph they call (with the
number of parameters), so numba caches them in PyTensor's cache directory: a fit of a model
compiled before (same structure, same data) loads them instead of building them.

The callbacks do exactly what nutpie's do (``nutpie.compile_pymc._make_c_logp_func`` and
``_make_c_expand_func``; same signatures and return codes). Models with shared variables (nutpie
passes their data at run time), graphs PyTensor cannot cache, and another nutpie's internals fall
back to nutpie's own callbacks: slower to compile, the same numbers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["compile_pymc_cached"]

#: Version of the callbacks' source in their cache key (raise it when the source changes).
_CACHE_VERSION = 1

_LOGP_SRC = """
def journeysim_nutpie_logp(dim, x_, out_, logp_, user_data_):
    if dim != n_dim:
        return -1
    try:
        x = carray(x_, (n_dim,))
        out = carray(out_, (n_dim,))
        logp = carray(logp_, ())
        logp_val, grad = inner(x)
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND_SRC = """
def journeysim_nutpie_expand(dim, expanded, x_, out_, user_data_):
    if dim != n_dim:
        return -1
    if expanded != n_expanded:
        return -1
    try:
        x = carray(x_, (n_dim,))
        out = carray(out_, (n_expanded,))
        (values,) = inner(x)
        out[...] = values
    except Exception:
        return -2
    return 0
"""


class _Fallback(Exception):
    """This model's callbacks cannot be cached: compile them nutpie's way."""


def _graph_key(fn) -> str:
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    key = CACHED_SRC_FUNCTIONS.get(getattr(fn, "py_func", None))
    if key is None:
        raise _Fallback
    return key


def _callback(src: str, name: str, key: str, env: dict):
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    env = dict(env, np=np, carray=numba.carray, __name__=__name__)  # (numba rebuilds a cached environment from its module)
    return compile_numba_function_src(src, name, env, cache_key=f"{name}_v{_CACHE_VERSION}_{key}")


def compile_pymc_cached(model):
    """``nutpie.compile_pymc_model(model, backend="numba")`` with callbacks numba caches."""
    import nutpie
    import nutpie.compile_pymc as ncp

    original = getattr(ncp, "_make_c_logp_func", None), getattr(ncp, "_make_c_expand_func", None)
    if None in original or model.data_vars:  # (data variables are shared: known before nutpie builds the graph)
        return nutpie.compile_pymc_model(model, backend="numba")

    def make_logp(n_dim, logp_fn, user_data, shared_logp, shared_data):
        if shared_logp:
            raise _Fallback
        key = f"{n_dim}_{_graph_key(logp_fn)}"
        return _callback(_LOGP_SRC, "journeysim_nutpie_logp", key, dict(n_dim=n_dim, inner=logp_fn)), \
            original[0](n_dim, logp_fn, user_data, shared_logp, shared_data)[1]

    def make_expand(n_dim, n_expanded, expand_fn, user_data, shared_vars, shared_data):
        if shared_vars:
            raise _Fallback
        key = f"{n_dim}_{n_expanded}_{_graph_key(expand_fn)}"
        env = dict(n_dim=n_dim, n_expanded=n_expanded, inner=expand_fn)
        return _callback(_EXPAND_SRC, "journeysim_nutpie_expand", key, env), \
            original[1](n_dim, n_expanded, expand_fn, user_data, shared_vars, shared_data)[1]

    # (the patch lasts for this call only; compiling runs in the caller's thread, not in the samplers')
    ncp._make_c_logp_func, ncp._make_c_expand_func = make_logp, make_expand
    try:
        return nutpie.compile_pymc_model(model, backend="numba", cache=True)
    except _Fallback:  # (other shared variables, or a graph PyTensor cannot cache: the graph is built again)
        pass
    finally:
        ncp._make_c_logp_func, ncp._make_c_expand_func = original
    return nutpie.compile_pymc_model(model, backend="numba")
