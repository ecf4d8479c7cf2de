"""The journey: a directed graph of stages, and the built-in templates.

A journey is a graph, not a line: people forget, lapse and come back. Edges are written
``"src->dst"`` everywhere a user names them (scenario files, plans, Python).

>>> j = template("default")
>>> j.stages
('unaware', 'aware', 'considering', 'purchased', 'loyal', 'advocate')
>>> j.edge_index("aware->considering")
2
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from journeysim.errors import InputError, did_you_mean

__all__ = ['Journey', 'template', 'TEMPLATES', 'edge_name', 'parse_edge']


def edge_name(src: str, dst: str) -> str:
    """The canonical name of an edge, ``"src->dst"``."""
    return f"{src}->{dst}"


def parse_edge(name: str, where: str | None = None) -> tuple[str, str]:
    """Split ``"src->dst"`` (spaces allowed around the arrow) into its two stage names."""
    parts = [p.strip() for p in str(name).split("->")]
    if len(parts) != 2 or not all(parts):
        raise InputError(f"'{name}' is not a transition; write it as 'from_stage->to_stage'", where)
    return parts[0], parts[1]


@dataclass(frozen=True)
class Journey:
    """Stages and allowed transitions of a customer journey.

    Parameters
    ----------
    stages
        Stage names, in funnel order (the first is where people start when they know nothing).
    edges
        Allowed transitions as ``(src, dst)`` pairs of stage names.
    purchase_stages
        Stages whose entry is a purchase (default: a stage named ``purchased``, or the last stage).
    """

    stages: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    purchase_stages: tuple[str, ...] = ()
    _index: dict = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self):
        if len(set(self.stages)) != len(self.stages):
            raise InputError("stage names must be distinct", "journey.stages")
        if len(self.stages) < 2:
            raise InputError("a journey needs at least two stages", "journey.stages")
        for src, dst in self.edges:
            for s in (src, dst):
                if s not in self.stages:
                    raise InputError(
                        f"transition '{edge_name(src, dst)}' names unknown stage '{s}'"
                        + did_you_mean(s, self.stages),
                        "journey.transitions",
                    )
            if src == dst:
                raise InputError(f"transition '{edge_name(src, dst)}' goes nowhere", "journey.transitions")
        if len(set(self.edges)) != len(self.edges):
            raise InputError("a transition is listed twice", "journey.transitions")
        purchase = self.purchase_stages
        if not purchase:
            purchase = ("purchased",) if "purchased" in self.stages else (self.stages[-1],)
            object.__setattr__(self, "purchase_stages", purchase)
        for s in purchase:
            if s not in self.stages:
                raise InputError(f"unknown stage '{s}'" + did_you_mean(s, self.stages), "journey.purchase_stages")
        object.__setattr__(self, "_index", {edge_name(*e): i for i, e in enumerate(self.edges)})

    # -- sizes and names -------------------------------------------------------------------
    @property
    def n_stages(self) -> int:
        return len(self.stages)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def edge_names(self) -> tuple[str, ...]:
        return tuple(edge_name(*e) for e in self.edges)

    def stage_index(self, name: str, where: str | None = None) -> int:
        """Position of a stage, with a did-you-mean error for an unknown name."""
        try:
            return self.stages.index(name)
        except ValueError:
            raise InputError(f"unknown stage '{name}'" + did_you_mean(name, self.stages), where) from None

    def edge_index(self, name: str, where: str | None = None) -> int:
        """Position of a transition named ``"src->dst"``."""
        src, dst = parse_edge(name, where)
        key = edge_name(src, dst)
        if key not in self._index:
            for s in (src, dst):
                if s not in self.stages:
                    raise InputError(
                        f"transition '{key}' names unknown stage '{s}'" + did_you_mean(s, self.stages), where
                    )
            raise InputError(
                f"'{key}' is not a transition of this journey" + did_you_mean(key, self._index), where
            )
        return self._index[key]

    # -- matrices used by the dynamics -----------------------------------------------------
    @property
    def src(self) -> np.ndarray:
        """Source stage index of each edge, shape ``(E,)``."""
        return np.array([self.stages.index(s) for s, _ in self.edges], dtype=np.intp)

    @property
    def dst(self) -> np.ndarray:
        """Destination stage index of each edge, shape ``(E,)``."""
        return np.array([self.stages.index(d) for _, d in self.edges], dtype=np.intp)

    @property
    def src_matrix(self) -> np.ndarray:
        """Incidence matrix ``(E, S)`` with a one at each edge's source."""
        m = np.zeros((self.n_edges, self.n_stages))
        m[np.arange(self.n_edges), self.src] = 1.0
        return m

    @property
    def dst_matrix(self) -> np.ndarray:
        """Incidence matrix ``(E, S)`` with a one at each edge's destination."""
        m = np.zeros((self.n_edges, self.n_stages))
        m[np.arange(self.n_edges), self.dst] = 1.0
        return m

    @property
    def purchase_mask(self) -> np.ndarray:
        """Boolean ``(S,)``: entering this stage is a purchase."""
        return np.array([s in self.purchase_stages for s in self.stages])

    @property
    def purchase_edges(self) -> np.ndarray:
        """Boolean ``(E,)``: taking this transition is a purchase."""
        return self.purchase_mask[self.dst]


def _j(stages: str, edges: str, purchase: tuple[str, ...] = ()) -> Journey:
    return Journey(
        tuple(stages.split()),
        tuple(parse_edge(e) for e in edges.split()),
        purchase,
    )


#: Built-in journeys, usable by name in a scenario (``journey: default``).
TEMPLATES: dict[str, Journey] = {
    # awareness to advocacy with forgetting, lapse, dissatisfaction and repurchase loops
    "default": _j(
        "unaware aware considering purchased loyal advocate",
        "unaware->aware aware->unaware aware->considering considering->aware considering->purchased "
        "purchased->loyal purchased->aware purchased->unaware loyal->purchased loyal->aware "
        "loyal->advocate advocate->loyal advocate->purchased",
    ),
    # a short AIDA-like funnel: attention, interest, action
    "funnel3": _j(
        "unaware interested customer",
        "unaware->interested interested->unaware interested->customer customer->interested",
        ("customer",),
    ),
    # subscription: trial, subscribe, churn, win-back
    "subscription": _j(
        "unaware aware trial subscribed churned advocate",
        "unaware->aware aware->unaware aware->trial trial->aware trial->subscribed "
        "subscribed->churned subscribed->advocate advocate->subscribed advocate->churned "
        "churned->aware churned->subscribed",
        ("subscribed",),
    ),
    # the eight stages of the French parcours client, with usage and evaluation
    "extended": _j(
        "unaware aware considering deciding purchased using evaluating loyal advocate",
        "unaware->aware aware->unaware aware->considering considering->aware considering->deciding "
        "deciding->considering deciding->purchased purchased->using using->evaluating "
        "evaluating->loyal evaluating->aware loyal->purchased loyal->advocate loyal->aware "
        "advocate->loyal advocate->purchased",
    ),
    # two-state Bass diffusion: potential adopters and adopters
    "bass": _j("potential adopter", "potential->adopter", ("adopter",)),
}


def template(name: str, where: str | None = None) -> Journey:
    """A built-in journey by name (``default``, ``funnel3``, ``subscription``, ``extended``, ``bass``)."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise InputError(
            f"unknown journey template '{name}'" + did_you_mean(name, TEMPLATES)
            + f"; templates: {', '.join(TEMPLATES)}",
            where,
        ) from None
