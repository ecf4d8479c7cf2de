"""Parameter names: which entry of :class:`~journeysim.model.dynamics.Params` a name such as
``effect.search.consider->buy`` or ``carryover.tv`` stands for, and how values are put there.

One naming for everything that varies parameters: the priors of a calibration
(:mod:`journeysim.inference.priors` adds distributions to these names) and the axes of a sweep
(:mod:`journeysim.scale.sweeps`). No distributions here.

========================  =========================================  ===========================
name                      meaning                                    value
========================  =========================================  ===========================
``effect.<ch>.<a->b>``    effect of channel ``ch``'s memory on edge  replaces the scenario's
``rate.<a->b>``           base rate of an edge                       multiplies it
``carryover.<ch>``        daily carry-over of ``ch``'s memory        replaces it (in (0, 1))
``saturation.<ch>``       weekly frequency at half effectiveness     replaces it
``cap.<ch>``              most touches a targeted person receives    replaces it
                          a week (a demand-capped channel)
``wom.rate``              recommendations per advocate per day       replaces it
``initial.<stage>``       initial share of a stage                   multiplies it (renormalised)
``demand.<term>``         a demand coefficient (``season.sin1``,     replaces it
                          ``trend``, ``control.<column>``)
========================  =========================================  ===========================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeysim.errors import InputError, did_you_mean

__all__ = ["KINDS", "PARAMETER_FORMS", "ParameterSet", "resolve_parameter", "parameter_set"]

KINDS = ("effect", "rate", "carryover", "saturation", "cap", "wom", "initial", "demand")
PARAMETER_FORMS = ("effect.<channel>.<a->b>", "rate.<a->b>", "carryover.<channel>", "saturation.<channel>",
                   "cap.<channel>", "wom.rate", "initial.<stage>", "demand.<term>")


def resolve_parameter(scenario, name: str, where: str) -> tuple[str, tuple[int, ...]]:
    """``(kind, target)`` of a parameter name: the kind of :data:`KINDS` and the indices of its entry.

    An unknown kind, channel, edge or stage is an :class:`~journeysim.InputError` at ``where``.
    """
    st = scenario.structure
    sources = st.channels + ("word_of_mouth",)
    kind, _, rest = name.partition(".")
    if kind == "effect":
        src, _, edge = rest.partition(".")
        if src not in sources:
            raise InputError(f"unknown channel '{src}'" + did_you_mean(src, sources), where)
        return kind, (sources.index(src), scenario.journey.edge_index(edge, where))
    if kind == "rate":
        return kind, (scenario.journey.edge_index(rest, where),)
    if kind in ("carryover", "saturation", "cap"):
        if rest not in sources or (kind in ("saturation", "cap") and rest == "word_of_mouth"):
            raise InputError(f"unknown channel '{rest}'" + did_you_mean(rest, sources), where)
        return kind, (sources.index(rest),)
    if kind == "wom" and rest == "rate":
        return "wom", ()
    if kind == "initial":
        return kind, (scenario.journey.stage_index(rest, where),)
    if kind == "demand":
        d = st.demand
        names = d.names if d is not None else ()
        if name not in names:
            known = ", ".join(names) if names else "none: the scenario has no demand: section"
            raise InputError(f"unknown demand term '{name}'" + did_you_mean(name, names) + f"; its terms are {known}",
                             where)
        return kind, (names.index(name),)
    raise InputError(f"unknown parameter '{name}'" + did_you_mean(kind, KINDS)
                     + f"; parameters are {', '.join(PARAMETER_FORMS)}", where)


def _bcast(xp, v, ndim):
    """Append ``ndim`` trailing axes to a scalar-or-batch value."""
    if xp is np:
        v = np.asarray(v, float)
        return v.reshape(v.shape + (1,) * ndim)
    for _ in range(ndim):
        v = xp.expand_dims(v, -1)
    return v


@dataclass(frozen=True)
class ParameterSet:
    """Named parameters of a scenario and where their values go (``kinds``/``targets`` aligned with ``names``)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]  # one of KINDS
    targets: tuple[tuple[int, ...], ...]  # indices into the Params array of that kind

    def __len__(self) -> int:
        return len(self.names)

    def to_params(self, xp, values, base_params):
        """Params with the named entries replaced by ``values`` (a sequence of scalars or batch arrays).

        Written with arithmetic only (one-hot masks), so it works for numpy and pytensor alike.
        """
        from journeysim.model.dynamics import Params

        p = base_params
        base = np.asarray(p.base, float)
        beta = np.asarray(p.beta, float)
        carry = np.asarray(p.carryover, float)
        fhalf = np.asarray(p.fhalf, float)
        init = np.asarray(p.initial, float)
        dem = np.asarray(p.demand, float)
        out_dem = dem
        capv = np.full(fhalf.shape, np.inf) if p.cap is None else np.asarray(p.cap, float)
        out_cap = capv
        out_base, out_beta, out_carry, out_fhalf = base, beta, carry, fhalf
        wom = p.wom_rate
        init_mult = None
        for v, kind, tgt in zip(values, self.kinds, self.targets):
            if kind == "effect":
                mask = np.zeros_like(beta)
                mask[tgt] = 1.0
                out_beta = out_beta * (1 - mask) + _bcast(xp, v, mask.ndim) * mask
            elif kind == "rate":
                mask = np.zeros(base.shape)
                mask[:, tgt[0]] = 1.0
                out_base = out_base * (1 - mask + _bcast(xp, v, mask.ndim) * mask)
            elif kind == "carryover":
                mask = np.zeros_like(carry)
                mask[tgt] = 1.0
                out_carry = out_carry * (1 - mask) + _bcast(xp, v, 1) * mask
            elif kind == "saturation":
                mask = np.zeros_like(fhalf)
                mask[tgt] = 1.0
                out_fhalf = xp.where(mask > 0, _bcast(xp, v, 1), out_fhalf)
            elif kind == "wom":
                wom = v
            elif kind == "cap":
                mask = np.zeros_like(capv)
                mask[tgt] = 1.0
                out_cap = xp.where(mask > 0, _bcast(xp, v, 1), out_cap)
            elif kind == "demand":
                mask = np.zeros_like(dem)
                mask[tgt] = 1.0
                out_dem = out_dem * (1 - mask) + _bcast(xp, v, 1) * mask
            elif kind == "initial":
                mask = np.zeros(init.shape)
                mask[:, tgt[0]] = 1.0
                m = 1 - mask + _bcast(xp, v, mask.ndim) * mask
                init_mult = m if init_mult is None else init_mult * m
        if init_mult is not None:
            raw = init * init_mult
            init = raw / raw.sum(axis=-1, keepdims=True)
        return Params(base=out_base, beta=out_beta, carryover=out_carry, fhalf=out_fhalf, wom_rate=wom, initial=init,
                      demand=out_dem, cap=out_cap)

    def values_of(self, params) -> np.ndarray:
        """The named entries of a :class:`Params` (inverse of :meth:`to_params`, for scenario values)."""
        out = []
        for kind, tgt in zip(self.kinds, self.targets):
            if kind == "effect":
                out.append(float(np.asarray(params.beta)[tgt]))
            elif kind == "carryover":
                out.append(float(np.asarray(params.carryover)[tgt]))
            elif kind == "saturation":
                out.append(float(np.asarray(params.fhalf)[tgt]))
            elif kind == "cap":
                out.append(float(np.asarray(params.cap)[tgt]))
            elif kind == "wom":
                out.append(float(params.wom_rate))
            elif kind == "demand":
                out.append(float(np.asarray(params.demand)[tgt]))
            else:  # multipliers
                out.append(1.0)
        return np.array(out)


def parameter_set(scenario, names, where: str) -> ParameterSet:
    """Resolve ``names`` against a scenario (errors at ``where: <name>``)."""
    kinds, targets = [], []
    for n in names:
        kind, tgt = resolve_parameter(scenario, n, f"{where}: {n}")
        kinds.append(kind)
        targets.append(tgt)
    return ParameterSet(tuple(names), tuple(kinds), tuple(targets))
