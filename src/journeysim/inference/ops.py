"""The twin over a whole history as one compiled kernel, with its hand-derived gradient (PyTensor Ops).

:func:`journeysim.twin.step.twin_step` is THE definition of the twin's equations (one definition of the
dynamics). This module is a compiled implementation of exactly that function, looped over the
steps of a history the way :func:`journeysim.inference.likelihood.build_model`'s ``pytensor.scan`` loops it,
and nothing else: it adds no equation. ``tests/twin/test_kernel.py`` verifies it against
``twin_step`` (forward: numpy ``twin_step`` looped; gradients: ``pytensor.grad`` through the scan,
and finite differences). :func:`_step_forward_ws` mirrors ``twin_step``'s statements in the same
order, each under a comment quoting the statement it implements, so a reader can check it line by
line; :func:`_step_backward` runs the same statements in reverse (reverse-mode adjoints).

Why: inside ``scan`` one step is a few dozen PyTensor ops on arrays of a few dozen numbers, so the
time goes to per-op overhead. Here the whole forward sweep is one numba loop, and the reverse
sweep another one that recomputes each step's intermediates from the stored state ``X_{t-1}``
(the states are outputs anyway) instead of storing them. Within a step the kernels save work
without changing the equations (the numbers agree to rounding; the tests reach every shortcut):
quantities of a source state row are computed once for the edge rows leaving it, and divisions
by them become products with reciprocals; the hazard coefficients ``B`` are rebuilt only when
the event multipliers change (weekly), and the gradients of ``base`` and ``beta`` are summed
over the steps of a week before the multipliers are applied; sums over memory sources skip the
sources whose ``B`` terms are all zero; state rows with no people and no memory move nothing.
The timings, against scan's, are in ``experiments/RESULTS.md`` (``experiments/bench_twin_kernel.py``).

Layout (as :class:`journeysim.twin.state.TwinMatrices`): state rows ``r = (h, p, s)``, edge rows
``(h, p, e)``; the dense 0/1 matrices are replaced by index arrays (:class:`KernelStructure`):
each edge row's source and destination state row, its ``p * E + e`` output column, whether it is a
new or a repeat purchase, and the edge rows leaving each state row (CSR).

Non-smooth operations take PyTensor's gradient convention: ``maximum(x, y)`` / ``minimum(x, y)``
send the gradient to ``x`` when the output equals ``x`` (ties go to the first argument), else to
``y``; ``clip(x, lo, hi)`` sends it to ``x`` when ``lo <= x <= hi``, to ``hi`` when ``x > hi``.

Compiled with numba when it is importable (``JOURNEYSIM_NO_NUMBA=1`` or a missing numba runs the
same code as plain Python: correct, but far too slow for sampling). :class:`TwinScan` registers a
numba implementation with PyTensor's numba backend (nutpie's ``backend="numba"``), so compiled
models call the kernels directly, not through object mode. The data inputs (touches, the channel
effects' event multipliers) have no gradient: asking for one is an error (``grad_not_implemented``),
not a silent zero. The base hazards' multipliers ``em`` have a gradient: demand terms
(:mod:`journeysim.model.demand`) are learned through them.
"""

from __future__ import annotations

import os

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from journeysim._util.numba import HAVE_NUMBA
from journeysim.twin._kernel.backward import twin_scan_backward
from journeysim.twin._kernel.forward import twin_scan_forward
from journeysim.twin._kernel.layout import (
    KernelStructure,
    kernel_structure,
    struct_args,
)

__all__ = ['TwinScan', 'TwinScanGrad', 'twin_scan']


# ---------------------------------------------------------------------------------------------
# PyTensor Ops

_NDIM = (2, 3, 3, 2, 2, 2, 1, 1, 1, 0)  # touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate
_NAMES = ("touches", "em", "cm", "X0", "base", "beta", "carryover", "fhalf", "cap", "wom_rate")


def use_fused(fused: bool | None = None) -> bool:
    """Whether :func:`journeysim.inference.likelihood.build_model` uses :class:`TwinScan` instead of ``scan``.

    ``None``: when numba is importable and the environment variable ``JOURNEYSIM_NO_FUSED`` is not set.
    """
    if fused is None:
        return HAVE_NUMBA and not os.environ.get("JOURNEYSIM_NO_FUSED")
    return bool(fused)


def _f64(x):
    return np.ascontiguousarray(x, dtype=np.float64)


def _check_inputs(op, args):
    out = []
    for name, nd, x in zip(_NAMES, _NDIM, args):
        x = pt.as_tensor_variable(x)
        if x.dtype != "float64":
            x = pt.cast(x, "float64")
        if x.ndim != nd:
            raise TypeError(f"{type(op).__name__}: {name} must have {nd} dimensions, not {x.ndim}")
        out.append(x)
    return out


class TwinScan(Op):
    """``twin_step`` over a history (:func:`twin_scan_forward`) as one Op.

    Inputs ``touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate``; outputs ``Xs, flows,
    new, repeat, referrals``. Properties: ``key`` (the structure, :meth:`KernelStructure.key`) and
    ``dt``, ``subs`` (the memory steps of each of a week's steps,
    :attr:`~journeysim.model.dynamics.Structure.substeps`). Gradients with respect to ``em``, ``X0`` and the parameters come from
    :class:`TwinScanGrad`; ``touches, cm`` (data) have none (``grad_not_implemented``: an error if
    ever asked for).
    """

    __props__ = ("key", "dt", "subs")

    def __init__(self, key: tuple, dt: float, subs: tuple = (1,)):
        self.key = key
        self.dt = float(dt)
        self.subs = tuple(int(n) for n in subs)
        self.ks = KernelStructure.from_key(key)

    def __str__(self):
        R, K = self.ks.targ.shape
        return f"{type(self).__name__}{{R={R}, R_E={self.ks.srow.shape[0]}, K={K}, dt={self.dt:g}, subs={self.subs}}}"

    def _out_shapes(self, T):
        R, K = self.ks.targ.shape
        P = self.ks.aff.shape[1]
        PE = int(self.ks.pe.max()) + 1 if self.ks.pe.size else 0
        return [(T, R, 1 + 2 * K), (T, PE), (T, P), (T, P), (T,)]

    def make_node(self, *args):
        inputs = _check_inputs(self, args)
        shapes = self._out_shapes(inputs[0].type.shape[0])
        return Apply(self, inputs, [pt.tensor(dtype="float64", shape=s) for s in shapes])

    def perform(self, node, inputs, output_storage):
        touches, em, cm, X0, base, beta, carry, fhalf, cap, wom = inputs
        res = twin_scan_forward(_f64(touches), _f64(em), _f64(cm), _f64(X0), _f64(base), _f64(beta),
                                _f64(carry), _f64(fhalf), _f64(cap), float(wom), self.dt,
                                np.asarray(self.subs, np.int64), *struct_args(self.ks))
        for store, v in zip(output_storage, res):
            store[0] = v

    def infer_shape(self, fgraph, node, shapes):
        return self._out_shapes(shapes[0][0])

    def L_op(self, inputs, outputs, output_grads):
        gouts = [o.zeros_like() if isinstance(g.type, DisconnectedType) else g for o, g in zip(outputs, output_grads)]
        grads = TwinScanGrad(self.key, self.dt, self.subs)(*inputs, outputs[0], *gouts)
        return [grad_not_implemented(self, 0, inputs[0], "touches are data: no gradient"), grads[7],
                grad_not_implemented(self, 2, inputs[2], "channel event multipliers are data: no gradient")] \
            + list(grads[:7])


class TwinScanGrad(Op):
    """Gradients of :class:`TwinScan` (:func:`twin_scan_backward`) with respect to ``X0, base, beta,
    carryover, fhalf, cap, wom_rate`` and the base hazards' multipliers ``em`` (demand terms learn
    through them).

    Inputs: the ten inputs of :class:`TwinScan`, its output ``Xs``, and the cotangents of its five
    outputs. No second derivatives.
    """

    __props__ = ("key", "dt", "subs")

    def __init__(self, key: tuple, dt: float, subs: tuple = (1,)):
        self.key = key
        self.dt = float(dt)
        self.subs = tuple(int(n) for n in subs)
        self.ks = KernelStructure.from_key(key)

    __str__ = TwinScan.__str__

    def make_node(self, *args):
        inputs = _check_inputs(self, args[:10])
        rest = [pt.as_tensor_variable(x) for x in args[10:]]
        rest = [x if x.dtype == "float64" else pt.cast(x, "float64") for x in rest]
        return Apply(self, inputs + rest, [x.type() for x in inputs[3:]] + [inputs[1].type()])

    def perform(self, node, inputs, output_storage):
        touches, em, cm, X0, base, beta, carry, fhalf, cap, wom, Xs, gXs, gfl, gnew, grep, gref = inputs
        res = twin_scan_backward(_f64(touches), _f64(em), _f64(cm), _f64(X0), _f64(base), _f64(beta),
                                 _f64(carry), _f64(fhalf), _f64(cap), float(wom), self.dt,
                                 np.asarray(self.subs, np.int64), *struct_args(self.ks),
                                 _f64(Xs), _f64(gXs), _f64(gfl), _f64(gnew), _f64(grep), _f64(gref))
        for store, v in zip(output_storage[:6], res[:6]):
            store[0] = v
        output_storage[6][0] = np.asarray(res[6], dtype=np.float64)
        output_storage[7][0] = res[7]

    def infer_shape(self, fgraph, node, shapes):
        return [tuple(s) for s in shapes[3:10]] + [tuple(shapes[1])]

    def L_op(self, inputs, outputs, output_grads):
        return [grad_not_implemented(self, i, x, "second derivatives of the twin") for i, x in enumerate(inputs)]


def twin_scan(touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate, *, structure, mats=None, dt=None,
              subs=None):
    """Drop-in for the ``pytensor.scan`` of ``twin_step`` in :func:`journeysim.inference.likelihood.build_model`.

    Returns the pytensor variables ``Xs (T, R, 1 + 2K)``, ``flows (T, P*E)``, ``new (T, P)``,
    ``repeat (T, P)``, ``referrals (T,)``.
    """
    ks = kernel_structure(structure, mats)
    op = TwinScan(ks.key(), structure.dt if dt is None else dt, structure.substeps if subs is None else subs)
    return tuple(op(touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate))


# ---------------------------------------------------------------------------------------------
# PyTensor's numba backend (nutpie backend="numba"): call the kernels from compiled code


def _source_version() -> int:
    """A number that changes with this file and the kernels' files: part of PyTensor's cache key of the
    compiled Ops, which contain the kernels' code (without it, an edited kernel could be served from
    PyTensor's cache)."""
    import hashlib
    from pathlib import Path

    from journeysim.twin._kernel import layout

    h = hashlib.sha256()
    for path in [Path(__file__), *sorted(Path(layout.__file__).parent.glob("*.py"))]:
        h.update(path.read_bytes())
    return int(h.hexdigest()[:12], 16)


_SOURCE_VERSION = _source_version()


def _register_numba():
    from pytensor.link.numba.dispatch.basic import (
        numba_njit,
        register_funcify_default_op_cache_key,
    )

    @register_funcify_default_op_cache_key(TwinScan)
    def _numba_twin_scan(op, node=None, **kwargs):
        srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff = struct_args(op.ks)
        dt = op.dt
        subs = np.asarray(op.subs, np.int64)
        fwd = twin_scan_forward

        @numba_njit
        def twin_scan_op(touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate):  # pragma: no cover
            # (C-contiguous types: PyTensor may type its arrays as any layout, and the kernels index
            # C arrays faster; no copy when the data are contiguous, as they are in practice)
            c = np.ascontiguousarray
            return fwd(c(touches), c(em), c(cm), c(X0), c(base), c(beta), c(carryover), c(fhalf), c(cap), wom_rate.item(),
                       dt, subs,
                       srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff)

        return twin_scan_op, _SOURCE_VERSION

    @register_funcify_default_op_cache_key(TwinScanGrad)
    def _numba_twin_scan_grad(op, node=None, **kwargs):
        srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff = struct_args(op.ks)
        dt = op.dt
        subs = np.asarray(op.subs, np.int64)
        bwd = twin_scan_backward

        @numba_njit
        def twin_scan_grad_op(touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate, Xs, gXs, gflows,
                              gnew, grep, grefs):  # pragma: no cover
            c = np.ascontiguousarray
            gX0, gbase, gbeta, gcarry, gfhalf, gcap, gw, gem = bwd(
                c(touches), c(em), c(cm), c(X0), c(base), c(beta), c(carryover), c(fhalf), c(cap), wom_rate.item(), dt, subs,
                srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                c(Xs), c(gXs), c(gflows), c(gnew), c(grep), c(grefs))
            gwr = np.empty(())
            gwr[()] = gw
            return gX0, gbase, gbeta, gcarry, gfhalf, gcap, gwr, gem

        return twin_scan_grad_op, _SOURCE_VERSION


def _register_merge_rewrite():
    """One reverse sweep per history, whichever way the gradient graph was built.

    PyMC's ``model.logp()`` clones the twin once per observed variable; ``pytensor.grad`` of that
    graph, not merged first, calls :meth:`TwinScan.L_op` once per clone and so makes one
    :class:`TwinScanGrad` per observation, each with part of the cotangents. Merging the forward
    clones leaves those reverse sweeps apart (their inputs differ): 4 sweeps for the retail
    example instead of one (``experiments/RESULTS.md``). nutpie and PyMC's samplers rewrite before taking the
    gradient and are not affected. The reverse sweep is linear in the cotangents, so the nodes
    sharing the same forward inputs are replaced by one node with the summed cotangents (the
    others by zeros: the gradients they fed are sums anyway).
    """
    from pytensor.compile import optdb
    from pytensor.graph.rewriting.basic import GraphRewriter

    class MergeTwinScanGrads(GraphRewriter):
        def apply(self, fgraph):
            groups: dict = {}
            for node in fgraph.toposort():
                if isinstance(node.op, TwinScanGrad):
                    groups.setdefault((node.op, tuple(node.inputs[:11])), []).append(node)
            for (op, ins), nodes in groups.items():
                if len(nodes) < 2:
                    continue
                cots = [pt.add(*[n.inputs[11 + i] for n in nodes]) for i in range(5)]
                merged = op(*ins, *cots)
                pairs = list(zip(nodes[0].outputs, merged))
                for n in nodes[1:]:
                    pairs += [(o, pt.zeros_like(o)) for o in n.outputs]
                fgraph.replace_all_validate(pairs, reason="merge_twin_scan_grads")

    optdb.register("journeysim_merge_twin_scan_grads", MergeTwinScanGrads(), "fast_run", "fast_compile",
                   position=1.5)  # (after merge1 and canonicalize: the forward clones are one node by then)


try:
    _register_merge_rewrite()
except (ImportError, AttributeError):  # pragma: no cover - another PyTensor's rewrite API: one sweep per clone
    pass

if HAVE_NUMBA:
    try:
        _register_numba()
    except (ImportError, AttributeError):  # pragma: no cover - another PyTensor's numba dispatch API:
        pass  # compiled models then call perform() (object mode): the same numbers, somewhat slower
