"""Tests of the fused twin kernels (journeysim.inference.ops) against the one definition of the twin.

``twin_scan_forward`` must reproduce numpy :func:`journeysim.twin.step.twin_step` looped (rtol 1e-10,
with an absolute floor of 1e-12 of each output column's scale for entries that cancel to about
zero); ``TwinScanGrad`` (the hand-derived reverse sweep) must reproduce finite differences on every
example structure and, behind the ``slow`` marker (PyTensor takes minutes to compile it), PyTensor's
own gradient through ``pytensor.scan`` of ``twin_step`` (rtol 1e-6); and
``build_model(fused=True)`` must have the log density and gradient of ``fused=False``.

The cases are built to reach every branch of the kernels: the initial state carries exposure
memory (every term of the step is non-zero from the first step), the event multipliers change
every week of the slice (the kernels rebuild the hazard coefficients only when they change, and
sum their gradients by week), the retail example has unsaturated channels (``fhalf = inf``) and
rows that stay empty (no people, no memory: skipped by the kernels), and the gradient is taken of
a random linear functional of all five outputs.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from conftest import SCENARIOS

from journeysim.inference.inputs import observed_inputs
from journeysim.inference.likelihood import build_model
from journeysim.inference.ops import TwinScan, TwinScanGrad, twin_scan
from journeysim.io.observed import read_observed
from journeysim.model.dynamics import Params
from journeysim.model.scenario import load_scenario
from journeysim.twin._kernel.backward import twin_scan_backward
from journeysim.twin._kernel.forward import twin_scan_forward
from journeysim.twin._kernel.layout import kernel_structure, struct_args
from journeysim.twin.state import TwinMatrices, TwinState, initial_X
from journeysim.twin.step import twin_step

PARAMS = ("X0", "base", "beta", "carryover", "fhalf", "cap", "wom_rate")


def _case(name: str, steps: int, seed: int = 0, populate: bool = False, capped: bool = False):
    """Scenario, per-step inputs over ``steps`` steps (event multipliers redrawn each week), initial
    state with memory, and the scenario's parameters (``populate``: people in every state row)."""
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    data = read_observed(SCENARIOS / "data" / f"{name}_observed.csv", sc)
    touches, em, cm, per_week = observed_inputs(sc, data)
    rng = np.random.default_rng(seed)
    weeks = -(-steps // per_week)
    em = np.repeat(rng.uniform(0.7, 1.3, (weeks,) + em.shape[1:]), per_week, axis=0)[:steps]
    cm = np.repeat(rng.uniform(0.7, 1.3, (weeks,) + cm.shape[1:]), per_week, axis=0)[:steps]
    st = sc.structure
    p = sc.params
    params = Params(*(np.asarray(v, float).copy() for v in p.as_dict().values()))
    X0 = initial_X(np, params.initial, st)
    if populate:
        X0[:, 0] = rng.uniform(0.5, 1.5, X0.shape[0]) * X0[:, 0].mean()
    K = st.n_sources
    a = rng.uniform(0.05, 0.15, (X0.shape[0], K))
    X0[:, 1:1 + K] = X0[:, :1] * a
    X0[:, 1 + K:] = X0[:, :1] * a * a * rng.uniform(1.2, 2.0, a.shape)  # spread: Q > A^2 / N
    if capped:  # every paid channel demand-capped near its weekly frequency (x = 7 p0 / cap from 0.5 to 2)
        targeted = X0[:, 0] @ kernel_structure(st).targ  # (K,)
        freq = 7.0 * touches[0] / np.maximum(targeted[:-1], 1e-12)
        cap = params.cap.copy()
        cap[:-1] = np.where(touches[0] > 0, freq / rng.uniform(0.5, 2.0, freq.shape), np.inf)
        params = params.replace(cap=cap)
    return sc, touches[:steps], em, cm, X0, params


def _forward(sc, touches, em, cm, X0, p):
    ks = kernel_structure(sc.structure)
    return twin_scan_forward(touches, em, cm, X0, p.base, p.beta, p.carryover, p.fhalf, p.cap, float(p.wom_rate),
                             float(sc.structure.dt), _subs(sc), *struct_args(ks))


def _subs(sc):
    return np.asarray(sc.structure.substeps, np.int64)


@pytest.mark.parametrize("name", ["retail", "funnel3", "subscription"])
def test_forward_equals_twin_step(name):
    sc, touches, em, cm, X0, p = _case(name, steps=21)
    st = sc.structure
    mats = TwinMatrices.build(st)
    Xs, flows, new, rep, refs = _forward(sc, touches, em, cm, X0, p)
    state = TwinState(X0)
    ref = {"X": [], "flow": [], "new": [], "repeat": [], "referrals": []}
    subs = st.substeps
    for t in range(touches.shape[0]):
        state, out = twin_step(np, state, touches[t], p, st, em[t], cm[t], st.dt, mats, subs[t % len(subs)])
        ref["X"].append(state.X)
        for k in ("flow", "new", "repeat", "referrals"):
            ref[k].append(out[k])
    for got, key in zip((Xs, flows, new, rep, refs), ref):
        want = np.array(ref[key])
        scale = np.abs(want).max(axis=tuple(range(want.ndim - 1)) if want.ndim > 1 else None)  # per column
        excess = np.abs(got - want) / (1e-10 * np.abs(want) + 1e-12 * np.maximum(scale, 1e-300))
        worst = np.unravel_index(np.argmax(excess), excess.shape)
        assert excess[worst] <= 1.0, f"{key}{tuple(map(int, worst))}: {got[worst]!r} vs twin_step {want[worst]!r}"


def _scan_outputs(sc, touches, em, cm, ins):
    """PyTensor's own graph of ``twin_step``: ``scan`` over weeks, each of its steps (``substeps``) in turn."""
    st = sc.structure
    mats = TwinMatrices.build(st)
    subs = st.substeps
    n = len(subs)

    def week(tc, e_m, c_m, X, b, be, c, f, cp, w):
        outs = []
        for i, sub in enumerate(subs):
            s, out = twin_step(pt, TwinState(X), tc[i], Params(b, be, c, f, w, None, cap=cp), st, e_m[i], c_m[i],
                               st.dt, mats, sub)
            X = s.X
            outs.append((X, out["flow"], out["new"], out["repeat"], out["referrals"]))
        return (X,) + tuple(pt.stack(z) for z in zip(*outs))

    def weeks(x):
        x = pt.as_tensor(x)
        return x.reshape((x.shape[0] // n, n, *(x.shape[i] for i in range(1, x.ndim))), ndim=x.ndim + 1)

    outs = pytensor.scan(week, sequences=[weeks(touches), weeks(em), weeks(cm)],
                         outputs_info=[ins[0], None, None, None, None, None], non_sequences=ins[1:],
                         return_updates=False)
    return [o.reshape((o.shape[0] * n, *(o.shape[i] for i in range(2, o.ndim))), ndim=o.ndim - 1) for o in outs[1:]]


def _fused_outputs(sc, touches, em, cm, ins):
    return twin_scan(pt.as_tensor(touches), pt.as_tensor(em), pt.as_tensor(cm), *ins, structure=sc.structure)


def _values(X0, p):
    return [X0, p.base, p.beta, p.carryover, p.fhalf, p.cap, np.asarray(p.wom_rate, float)]


@pytest.mark.slow  # (PyTensor compiles the scan's gradient for minutes; the default run checks finite differences)
@pytest.mark.parametrize("name", ["retail", "subscription", "funnel3"])
def test_gradients_equal_pytensor_through_scan(name):
    """14 steps (a change of event multipliers at step 7) of each example structure; in retail,
    channels search and store and word of mouth are unsaturated (fhalf = inf): their fhalf gradient
    must be 0, and nothing NaN."""
    sc, touches, em, cm, X0, p = _case(name, steps=14, seed=1)
    assert np.isinf(p.fhalf).any() or name != "retail"
    vals = _values(X0, p)
    ins = [pt.as_tensor(v).type(name) for v, name in zip(vals, PARAMS)]
    outs_fwd = _forward(sc, touches, em, cm, X0, p)
    rng = np.random.default_rng(2)
    # a random linear functional of all five outputs, each scaled to order one
    weights = [rng.normal(size=o.shape) / max(np.abs(o).max(), 1e-300) for o in outs_fwd]
    got = ref = None
    for fused in (False, True):
        outs = (_fused_outputs if fused else _scan_outputs)(sc, touches, em, cm, ins)
        loss = sum((o * w).sum() for o, w in zip(outs, weights))
        res = pytensor.function(ins, [loss, *pytensor.grad(loss, ins)])(*vals)
        got, ref = (res, ref) if fused else (got, res)
    for name, a, b in zip(("loss",) + PARAMS, ref, got):
        a, b = np.asarray(a), np.asarray(b)
        assert np.all(np.isfinite(b)), name
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-10 * max(np.abs(a).max(), 1e-300), err_msg=name)
    g_fhalf = np.asarray(got[1 + PARAMS.index("fhalf")])
    assert np.all(g_fhalf[np.isinf(p.fhalf)] == 0.0)
    if np.isfinite(p.fhalf).any():
        assert np.any(g_fhalf[np.isfinite(p.fhalf)] != 0.0)  # (0 for a channel without touches in the slice)


def test_gradient_of_the_base_multipliers_equals_finite_differences():
    """Demand terms learn through the base hazards' multipliers ``em``: the kernel's gradient with
    respect to each step's ``em`` equals central differences of the forward sweep (tested against
    ``twin_step`` above), also where ``em`` is the same in every step (one flush of the weekly sums:
    the per-step gradient must still be each step's). Relative error at most 1e-5 of the largest."""
    for em_kind in ("weekly", "flat"):
        sc, touches, em, cm, X0, p = _case("retail", steps=14, seed=6)
        if em_kind == "flat":
            em = np.ones_like(em)
        fwd = _forward(sc, touches, em, cm, X0, p)
        rng = np.random.default_rng(7)
        weights = [rng.normal(size=o.shape) / max(np.abs(o).max(), 1e-300) for o in fwd]

        def loss(em_):
            return sum((np.asarray(o) * w).sum() for o, w in zip(_forward(sc, touches, em_, cm, X0, p), weights))

        ks = kernel_structure(sc.structure)
        got = twin_scan_backward(touches, em, cm, X0, p.base, p.beta, p.carryover, p.fhalf, p.cap, float(p.wom_rate),
                                 float(sc.structure.dt), _subs(sc), *struct_args(ks), fwd[0], *weights)[-1]
        want = np.zeros_like(em)
        for idx in np.ndindex(em.shape):
            h = 1e-6 * em[idx]
            up, down = em.copy(), em.copy()
            up[idx] += h
            down[idx] -= h
            want[idx] = (loss(up) - loss(down)) / (2 * h)
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max(), err_msg=em_kind)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["retail", "funnel3"])
def test_gradients_with_demand_caps_equal_pytensor_through_scan(name):
    """Demand-capped channels (the cap binding: 7 p0 / cap from 0.5 to 2): outputs and gradients,
    the caps' included, equal PyTensor's through scan of twin_step."""
    sc, touches, em, cm, X0, p = _case(name, steps=14, seed=8, capped=True)
    assert np.isfinite(p.cap).any()
    vals = _values(X0, p)
    ins = [pt.as_tensor(v).type(name) for v, name in zip(vals, PARAMS)]
    outs_fwd = _forward(sc, touches, em, cm, X0, p)
    rng = np.random.default_rng(9)
    weights = [rng.normal(size=o.shape) / max(np.abs(o).max(), 1e-300) for o in outs_fwd]
    res = []
    for outputs in (_scan_outputs, _fused_outputs):
        outs = outputs(sc, touches, em, cm, ins)
        loss = sum((o * w).sum() for o, w in zip(outs, weights))
        res.append(pytensor.function(ins, [loss, *pytensor.grad(loss, ins)])(*vals))
    for name_, a, b in zip(("loss",) + PARAMS, *res):
        a, b = np.asarray(a), np.asarray(b)
        assert np.all(np.isfinite(b)), name_
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-10 * max(np.abs(a).max(), 1e-300), err_msg=name_)
    g_cap = np.asarray(res[1][1 + PARAMS.index("cap")])
    assert np.all(g_cap[np.isfinite(p.cap)] != 0.0) and np.all(g_cap[np.isinf(p.cap)] == 0.0)


def test_disconnected_outputs_get_zero_cotangents():
    """A loss of some outputs only (the others' cotangents are disconnected) gives the kernel's
    gradient with explicit zero cotangents for the others."""
    sc, touches, em, cm, X0, p = _case("funnel3", steps=10, seed=3)
    vals = _values(X0, p)
    ins = [pt.as_tensor(v).type(name) for v, name in zip(vals, PARAMS)]
    outs = _fused_outputs(sc, touches, em, cm, ins)
    loss = outs[1].sum() + 1e-3 * outs[3].sum()  # flows and repeat purchases only
    got = pytensor.function(ins, pytensor.grad(loss, ins))(*vals)
    fwd = _forward(sc, touches, em, cm, X0, p)
    cot = [np.zeros_like(fwd[0]), np.ones_like(fwd[1]), np.zeros_like(fwd[2]), np.full_like(fwd[3], 1e-3),
           np.zeros_like(fwd[4])]
    ks = kernel_structure(sc.structure)
    want = twin_scan_backward(touches, em, cm, X0, p.base, p.beta, p.carryover, p.fhalf, p.cap, float(p.wom_rate),
                              float(sc.structure.dt), _subs(sc), *struct_args(ks), fwd[0], *cot)
    for name, a, b in zip(PARAMS, want, got):
        np.testing.assert_allclose(b, a, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", ["retail", "subscription", "funnel3"])
def test_gradient_by_finite_differences(name):
    """verify_grad on a small case: 9 steps of each example structure (multipliers change every week,
    people in every state row, every fhalf and cap finite so that it can be perturbed: the paid
    channels' caps binding, word of mouth's far away), inputs scaled to order one; the steps of 3 and
    4 days alternate on these daily scenarios."""
    sc, touches, em, cm, X0, p = _case(name, steps=9, seed=4, populate=True, capped=True)
    p = p.replace(fhalf=np.where(np.isinf(p.fhalf), 8.0, p.fhalf), wom_rate=np.asarray(0.05),
                  cap=np.where(np.isinf(p.cap), 1e6, p.cap))
    fwd = _forward(sc, touches, em, cm, X0, p)
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=o.shape) / max(np.abs(o).max(), 1e-300) for o in fwd]
    scales = [np.maximum(np.abs(v), 1e-3) for v in _values(X0, p)]

    def loss(*unit):
        ins = [u * s for u, s in zip(unit, scales)]
        outs = _fused_outputs(sc, touches, em, cm, ins)
        return sum((o * w).sum() for o, w in zip(outs, weights))

    unit_vals = [v / s for v, s in zip(_values(X0, p), scales)]
    # (one-sided differences of step 1e-7: truncation errors of order 1e-6 on gradients of order one)
    pytensor.gradient.verify_grad(loss, unit_vals, rng=np.random.default_rng(6), eps=1e-7, abs_tol=1e-5,
                                  rel_tol=1e-4)


def test_op_is_hashable_and_merges():
    sc = load_scenario(SCENARIOS / "funnel3.yaml")
    st = sc.structure
    a = TwinScan(kernel_structure(st).key(), st.dt, st.substeps)
    b = TwinScan(kernel_structure(st, TwinMatrices.build(st)).key(), float(st.dt), list(st.substeps))
    assert a == b and hash(a) == hash(b)
    assert a != TwinScan(kernel_structure(st).key(), st.dt, (1,))
    assert str(a) == "TwinScan{R=6, R_E=8, K=3, dt=1, subs=(3, 4)}"


def _funnel3_first_weeks(weeks: int):
    """The funnel3 example and the first ``weeks`` of its observed data."""
    sc = load_scenario(SCENARIOS / "funnel3.yaml")
    df = pd.read_csv(SCENARIOS / "data" / "funnel3_observed.csv")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "observed.csv")
        df.head(weeks).to_csv(path, index=False)
        return sc, read_observed(path, sc)


def test_fused_model_equals_scan_model():
    """build_model(fused=True) and fused=False: same logp and gradient at the initial point (funnel3,
    its first four observed weeks)."""
    sc, data = _funnel3_first_weeks(4)
    assert data.weeks == 4
    vals = []
    for fused in (False, True):
        model = build_model(sc, data, fused=fused)
        point = model.initial_point()
        vals.append((model.compile_logp()(point), model.compile_dlogp()(point)))
    (lp0, g0), (lp1, g1) = vals
    assert np.isfinite(lp0) and np.all(np.isfinite(g0))
    np.testing.assert_allclose(lp1, lp0, rtol=1e-10)
    np.testing.assert_allclose(g1, g0, rtol=1e-6, atol=1e-10 * np.abs(g0).max())


def test_one_reverse_sweep_whatever_builds_the_gradient():
    """``pytensor.grad`` of PyMC's unrewritten ``model.logp()`` (one twin clone per observed
    variable) still runs one reverse sweep, and gives the gradient PyMC's own ``compile_dlogp`` does."""
    import pytensor

    sc, data = _funnel3_first_weeks(4)
    assert len(data.observations) >= 2  # (so the unrewritten graph has several clones)
    model = build_model(sc, data, fused=True)
    wrt = model.value_vars
    raw = pytensor.function(wrt, pytensor.grad(model.logp(), wrt))
    sweeps = [n for n in raw.maker.fgraph.apply_nodes if isinstance(n.op, TwinScanGrad)]
    assert len(sweeps) == 1
    point = model.initial_point()
    g_raw = np.concatenate([np.ravel(g) for g in raw(*[point[v.name] for v in wrt])])
    g_pymc = model.compile_dlogp()(point)
    np.testing.assert_allclose(g_raw, g_pymc, rtol=1e-10, atol=1e-12 * np.abs(g_pymc).max())
