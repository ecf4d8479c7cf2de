"""Run every example notebook in ``notebooks/`` at its small size and check no cell fails.

The first cell tagged ``parameters`` is replaced by ``SIZE = "small"``; the kernel runs at the
repository root. The notebooks must be committed without outputs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = ["01_quickstart.ipynb", "02_calibrate.ipynb", "03_plan_budget.ipynb", "04_extend.ipynb",
             "05_attribution.ipynb"]
#: Seconds allowed per cell (02 compiles and samples a PyMC model in one cell).
CELL_TIMEOUT = 600


def _kernel_name() -> str:
    """``python3``, registered for this interpreter if no kernelspec provides it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:  # pragma: no cover - depends on the environment
        import sys

        from ipykernel.kernelspec import install

        install(user=False, prefix=sys.prefix)
    return "python3"


def _with_small_size(nb):
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            assert "SIZE" in cell.source, "the parameters cell must set SIZE"
            cell.source = 'SIZE = "small"'
            return nb
    raise AssertionError("no code cell tagged 'parameters'")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name):
    path = NB_DIR / name
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), f"{name} is committed with outputs"
    nb = _with_small_size(nb)
    client = nbclient.NotebookClient(nb, kernel_name=_kernel_name(), timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(ROOT)}})
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error
    seconds = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    print(f"{name}: {seconds:.1f} s")


def test_notebooks_are_current():
    """The committed notebooks are exactly what ``notebooks/build.py`` generates."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_build", NB_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(build.NOTEBOOKS) == NOTEBOOKS
    for name, cells in build.NOTEBOOKS.items():
        expected = build.notebook(cells)
        actual = nbformat.read(NB_DIR / name, as_version=4)
        assert [(c.cell_type, c.source) for c in actual.cells] == [(c.cell_type, c.source) for c in expected.cells], name
