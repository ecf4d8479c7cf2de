"""The fused likelihood (journeysim._twin_kernel) against the one definition of the twin.

``TwinScan`` runs ``twin_step`` over a history as one compiled loop, and ``TwinScanGrad`` its
hand-derived reverse sweep. Both must agree with the reference: the forward pass with numpy
``twin_step`` looped (rtol 1e-10), the gradients with PyTensor's own gradient through
``pytensor.scan`` of ``twin_step`` (rtol 1e-6), on every example structure, over short horizons
(the equations are the same at every step, so three weeks exercise them all; the events of the
retail example are switched on for the whole slice). The model built with ``fused=True`` must give
the logp and gradient of the one built with ``fused=False``.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from journeysim import calibrate as cal
from journeysim._twin_kernel import kernel_structure, twin_scan, twin_scan_forward, _struct_args
from journeysim.data import read_observed
from journeysim.scenario import load_scenario
from journeysim.twin import TwinMatrices, TwinState, twin_step
from journeysim.dynamics import Params

from conftest import SCENARIOS

STEPS = 21


def _inputs(name, steps=STEPS, unsaturated=False):
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    data = read_observed(SCENARIOS / "data" / f"{name}_observed.csv", sc)
    touches, em, cm, _ = cal.observed_inputs(sc, data)
    rng = np.random.default_rng(7)
    # events on, and varied, for every step: multipliers between 0.7 and 1.3
    em = np.broadcast_to(1.0 + 0.3 * rng.uniform(-1, 1, em.shape[1:]), (steps,) + em.shape[1:]).copy()
    cm = np.broadcast_to(1.0 + 0.3 * rng.uniform(-1, 1, cm.shape[1:]), (steps,) + cm.shape[1:]).copy()
    touches = touches[:steps]
    p = sc.params
    fhalf = np.asarray(p.fhalf, float).copy()
    if unsaturated:
        fhalf[0] = np.inf
    params = Params(np.asarray(p.base, float), np.asarray(p.beta, float), np.asarray(p.carryover, float), fhalf,
                    np.asarray(p.wom_rate, float), np.asarray(p.initial, float))
    st = sc.structure
    X0 = cal.initial_X(np, params.initial, st)
    # give the start some memory, so that every term of the step is exercised from step one
    K = st.n_sources
    N = X0[:, :1]
    a = 0.05 + 0.1 * rng.uniform(size=(X0.shape[0], K))
    X0[:, 1:1 + K] = N * a
    X0[:, 1 + K:] = N * (a * a * 1.5)
    return sc, touches, em, cm, X0, params


@pytest.mark.parametrize("name", ["retail", "subscription", "funnel3"])
def test_forward_equals_twin_step(name):
    sc, touches, em, cm, X0, p = _inputs(name)
    st = sc.structure
    mats = TwinMatrices.build(st)
    ks = kernel_structure(st, mats)
    Xs, flows, new, rep, refs = twin_scan_forward(touches, em, cm, X0, p.base, p.beta, p.carryover, p.fhalf,
                                                  float(p.wom_rate), float(st.dt), *_struct_args(ks))
    state = TwinState(X0)
    for t in range(touches.shape[0]):
        state, out = twin_step(np, state, touches[t], p, st, em[t], cm[t], st.dt, mats)
        np.testing.assert_allclose(Xs[t], state.X, rtol=1e-10, atol=1e-8, err_msg=f"state, step {t}")
        np.testing.assert_allclose(flows[t], out["flow"], rtol=1e-10, atol=1e-10, err_msg=f"flow, step {t}")
        np.testing.assert_allclose(new[t], out["new"], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(rep[t], out["repeat"], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(refs[t], out["referrals"], rtol=1e-10)


def _grads(sc, touches, em, cm, X0, p, weights, fused):
    st = sc.structure
    mats = TwinMatrices.build(st)
    ins = [pt.as_tensor(np.asarray(v, float)).type() for v in (X0, p.base, p.beta, p.carryover, p.fhalf, p.wom_rate)]
    X0_, base_, beta_, carry_, fhalf_, wom_ = ins
    if fused:
        outs = twin_scan(pt.as_tensor(touches), pt.as_tensor(em), pt.as_tensor(cm), X0_, base_, beta_, carry_,
                         fhalf_, wom_, structure=st, mats=mats)
    else:
        init = pt.as_tensor(np.asarray(p.initial, float))

        def step(tc, e_m, c_m, X, b, be, c, f, w):
            s, out = twin_step(pt, TwinState(X), tc, Params(b, be, c, f, w, init), st, e_m, c_m, st.dt, mats)
            return s.X, out["flow"], out["new"], out["repeat"], out["referrals"]

        outs, _ = pytensor.scan(step, sequences=[pt.as_tensor(touches), pt.as_tensor(em), pt.as_tensor(cm)],
                                outputs_info=[X0_, None, None, None, None],
                                non_sequences=[base_, beta_, carry_, fhalf_, wom_])
    # a random linear functional of every output (Xs scaled down: its entries are large)
    loss = sum((o * w).sum() for o, w in zip(outs, weights))
    f = pytensor.function(ins, [loss, *pytensor.grad(loss, ins)])
    return f(X0, p.base, p.beta, p.carryover, p.fhalf, np.asarray(p.wom_rate, float))


@pytest.mark.parametrize("name, unsaturated", [("retail", False), ("subscription", True), ("funnel3", False)])
def test_gradients_equal_pytensor_through_scan(name, unsaturated):
    sc, touches, em, cm, X0, p = _inputs(name, steps=14, unsaturated=unsaturated)
    st = sc.structure
    ks = kernel_structure(st)
    shapes = [o.shape for o in twin_scan_forward(touches, em, cm, X0, p.base, p.beta, p.carryover, p.fhalf,
                                                 float(p.wom_rate), float(st.dt), *_struct_args(ks))]
    rng = np.random.default_rng(3)
    weights = [rng.normal(size=s) * (1e-3 if i == 0 else 1.0) for i, s in enumerate(shapes)]
    ref = _grads(sc, touches, em, cm, X0, p, weights, fused=False)
    got = _grads(sc, touches, em, cm, X0, p, weights, fused=True)
    names = ["loss", "X0", "base", "beta", "carryover", "fhalf", "wom_rate"]
    for n, a, b in zip(names, ref, got):
        a, b = np.asarray(a), np.asarray(b)
        assert np.all(np.isfinite(b)), n
        scale = max(np.abs(a).max(), 1e-300)
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9 * scale, err_msg=n)
    if unsaturated:  # an unsaturated channel (fhalf = inf) has no saturation gradient, and no NaN
        assert got[5][0] == 0.0


def test_fused_model_equals_scan_model():
    """The PyMC model with the fused Op has the scan model's log density and gradient (shop example,
    39 observed weeks)."""
    sc = load_scenario(SCENARIOS / "shop.yaml")
    data = read_observed(SCENARIOS / "data" / "shop_observed.csv", sc)
    models = [cal.build_model(sc, data, fused=f) for f in (False, True)]
    point = models[0].initial_point()
    vals = []
    for m in models:
        logp = m.compile_logp()(point)
        dlogp = m.compile_dlogp()(point)
        vals.append((logp, dlogp))
    assert np.isfinite(vals[0][0])
    np.testing.assert_allclose(vals[1][0], vals[0][0], rtol=1e-9)
    np.testing.assert_allclose(vals[1][1], vals[0][1], rtol=1e-6, atol=1e-8 * np.abs(vals[0][1]).max())
