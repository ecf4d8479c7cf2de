"""The package's layers: imports go one way, down; no circles; heavy libraries stay in their layer.

Floors, lowest first: ``errors``; ``_util``; ``model``; ``io``;
``engine`` and ``twin``; ``scale`` executors; ``inference``; ``planning``, ``paths`` and ``scale`` sweeps;
``plots``; ``cli``. A module imports its own package and packages on lower floors only. Imports
inside functions count, and so do modules named in ``importlib`` strings.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "journeysim"

FLOORS = {
    "errors": 0, "_util": 0.5,
    "model": 1,
    "io": 2,
    "engine": 3, "twin": 3,
    "scale.executor": 4,
    "inference": 5,
    "planning": 6, "paths": 6, "scale.sweeps": 6, "builder": 6,
    "plots": 7,
    "cli": 8,
}
#: Third-party packages allowed only in some layers (prefix of the importing module's unit).
ONLY_IN = {
    "pymc": ("inference",),
    "pytensor": ("inference",),
    "nutpie": ("inference",),
    "matplotlib": ("plots",),
    "simpy": ("engine",),
}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(["journeysim", *parts])] = p
    return mods


MODULES = _modules()


def _unit(module: str) -> str | None:
    """The layer unit of a module: ``journeysim.scale.sweeps`` -> ``scale.sweeps``, ``journeysim.twin.run`` -> ``twin``."""
    parts = module.split(".")[1:]
    if not parts:
        return None  # the top-level package: lazy re-exports only
    if parts[0] == "scale":
        # sweeps (and their grids) sit above inference; the executors below it
        return "scale.sweeps" if parts[1:2] in (["sweeps"], ["grid"]) else "scale.executor"
    return parts[0]


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, int]]:
    """(imported name, line) for every import in a module, function-level ones included."""
    path = MODULES[module]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((full if full in MODULES else node.module, node.lineno))
        elif isinstance(node, ast.Import):
            out.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value and node.value in MODULES:
            out.append((node.value, node.lineno))
    return out


def _edges() -> dict[str, set[str]]:
    edges = {m: set() for m in MODULES}
    for m in MODULES:
        for name, _ in _imports(m):
            if name.startswith("journeysim"):
                t = _resolve(name)
                if t and t != m and not (MODULES[m].name == "__init__.py" and t.startswith(m)):
                    edges[m].add(t)
    return edges


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return comps


def test_every_module_has_a_floor():
    units = {_unit(m) for m in MODULES} - {None}
    assert units <= set(FLOORS), f"modules outside the layer table: {sorted(units - set(FLOORS))}"


def test_no_import_circles():
    circles = _circles(_edges())
    assert len(circles) == 0, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_imports_go_down():
    wrong = []
    for m, targets in _edges().items():
        um = _unit(m)
        if um is None:
            continue
        for t in targets:
            ut = _unit(t)
            if ut is None:
                wrong.append(f"{m} imports the top-level package")
            elif ut != um and FLOORS[ut] >= FLOORS[um]:
                wrong.append(f"{m} (floor {FLOORS[um]}) imports {t} (floor {FLOORS[ut]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_private_names_across_packages():
    wrong = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("journeysim"):
                owner = _resolve(node.module)
                for a in node.names:
                    if a.name.startswith("_") and _unit(owner) != _unit(m):
                        wrong.append(f"{m}: {node.module}.{a.name}")
    assert not wrong, "\n".join(wrong)


def test_heavy_libraries_stay_in_their_layer():
    wrong = []
    for m in MODULES:
        um = _unit(m) or ""
        for name, line in _imports(m):
            top = name.split(".")[0]
            if top in ONLY_IN and not um.startswith(ONLY_IN[top]):
                wrong.append(f"{MODULES[m].relative_to(SRC.parent)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_compiled_twin_kernel_imports_only_its_state_dynamics_and_numba():
    allowed = {"journeysim.twin.state", "journeysim.model.dynamics", "journeysim._util.numba", "journeysim._util.cpu"}
    for m, targets in _edges().items():
        if m.startswith("journeysim.twin._kernel"):
            outside = {t for t in targets if not t.startswith("journeysim.twin._kernel")} - allowed
            assert not outside, f"{m} imports {sorted(outside)}"


def test_plots_and_cli_are_imported_only_from_above():
    for m, targets in _edges().items():
        for t in targets:
            if t.startswith("journeysim.cli"):
                assert m.startswith("journeysim.cli"), f"{m} imports the CLI ({t})"
            if t.startswith("journeysim.plots"):
                assert m.startswith(("journeysim.cli", "journeysim.plots")), f"{m} imports plotting ({t})"


@pytest.mark.parametrize("code", [
    "import journeysim.twin.run, journeysim.planning.forecasting, journeysim.engine.simulation",
    "from journeysim.cli.main import build_parser; build_parser()",
])
def test_importing_the_twin_planning_or_the_cli_parser_does_not_import_pytensor(code):
    probe = f"import sys; {code}; print(sorted(m for m in ('pytensor', 'pymc', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
