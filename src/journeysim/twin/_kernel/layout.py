"""The twin's structure as index arrays for the compiled kernels (replacing the dense 0/1 matrices)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ['KernelStructure', 'kernel_structure']


class KernelStructure(NamedTuple):
    """Index arrays of a structure (from :class:`~journeysim.twin.state.TwinMatrices`), for the kernels.

    ``srow, drow (R_E,)`` source and destination state row of each edge row; ``pe (R_E,)`` its
    column ``p * E + e`` of the per-step flows; ``pidx, eidx (R_E,)`` its persona and edge;
    ``kind (R_E,)`` 1 new purchase, 2 repeat purchase, 0 other; ``optr (R + 1,)``, ``oidx (R_E,)``
    the edge rows leaving each state row; ``targ (R, K)`` targeting weights; ``womf (R,)``
    recommendation intensity; ``aff (K, P)`` affinity; ``C`` channels (``K = C + 1``). Index
    arrays are ``uint64`` (``kind`` is ``int64``).
    """

    srow: np.ndarray
    drow: np.ndarray
    pe: np.ndarray
    pidx: np.ndarray
    eidx: np.ndarray
    kind: np.ndarray
    optr: np.ndarray
    oidx: np.ndarray
    targ: np.ndarray
    womf: np.ndarray
    aff: np.ndarray
    C: int

    def key(self) -> tuple:
        """A hashable, exact description (Op property): ints, and floats as ``float.hex`` strings."""
        out = []
        for name, v in self._asdict().items():
            if isinstance(v, np.ndarray):
                flat = v.ravel().tolist()
                out.append((name, v.shape, tuple(float(x).hex() for x in flat) if v.dtype.kind == "f"
                            else tuple(int(x) for x in flat)))
            else:
                out.append((name, int(v)))
        return tuple(out)

    @classmethod
    def from_key(cls, key: tuple) -> KernelStructure:
        vals = {}
        for item in key:
            if len(item) == 2:
                vals[item[0]] = item[1]
                continue
            name, shape, flat = item
            if flat and isinstance(flat[0], str):
                vals[name] = np.array([float.fromhex(x) for x in flat], np.float64).reshape(shape)
            else:
                vals[name] = np.array(flat, np.int64 if name == "kind" else np.uint64).reshape(shape)
        return cls(**vals)


def kernel_structure(structure, mats=None) -> KernelStructure:
    """The kernels' index arrays, read off :class:`~journeysim.twin.state.TwinMatrices` (one layout)."""
    from journeysim.twin.state import TwinMatrices

    m = mats if mats is not None else TwinMatrices.build(structure)
    R, RE = m.src.shape[1], m.src.shape[0]
    srow = np.argmax(m.src, axis=1)
    dst = m.move + m.src.T  # (R, R_E) destination 0/1
    drow = np.argmax(dst, axis=0)
    pe = np.argmax(m.edge_out, axis=0)
    kind = np.zeros(RE, np.int64)
    kind[m.new_sel.sum(axis=0) > 0] = 1
    kind[m.repeat_sel.sum(axis=0) > 0] = 2
    order = np.argsort(srow, kind="stable")
    optr = np.zeros(R + 1, np.int64)
    np.add.at(optr, srow + 1, 1)
    optr = np.cumsum(optr)
    u = np.uint64  # (unsigned indices: the compiled code skips the check for negative ones)
    return KernelStructure(
        srow=srow.astype(u), drow=drow.astype(u), pe=pe.astype(u), pidx=(pe // m.E).astype(u),
        eidx=(pe % m.E).astype(u), kind=kind, optr=optr.astype(u), oidx=order.astype(u),
        targ=np.ascontiguousarray(m.targeting, dtype=np.float64), womf=np.ascontiguousarray(m.wom_from, np.float64),
        aff=np.ascontiguousarray(np.asarray(structure.affinity, float)), C=len(structure.channels))


def struct_args(ks: KernelStructure) -> tuple:
    return (ks.srow, ks.drow, ks.pe, ks.pidx, ks.eidx, ks.kind, ks.optr, ks.oidx, ks.targ, ks.womf, ks.aff)
