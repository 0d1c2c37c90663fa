"""The lecture, runnable: every notebook in examples/ runs from top to bottom.

Each notebook checks its own claims with ``assert`` (a finite difference that agrees, a
loss that falls), so executing it is the test: any error in any cell fails it.
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

import stoichnet

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LECTURE = [
    "01_neuron_and_layer.ipynb",
    "02_cost_and_gradient_descent.ipynb",
    "03_backpropagation.ipynb",
    "04_minibatches_and_epochs.ipynb",
    "05_the_knobs.ipynb",
    "06_elemnet_vs_forest.ipynb",
    "07_convolution_and_dropout.ipynb",
]
NEEDS_DATA = {"06_elemnet_vs_forest.ipynb", "07_convolution_and_dropout.ipynb"}
CELL_TIMEOUT_S = 120


class ThisInterpreterKernel(AsyncKernelManager):
    """Starts ipykernel's own "python3" kernel, which runs ``sys.executable``: an
    installed kernel.json (the venv's says ``"python"``) runs whichever ``python`` comes
    first on PATH, perhaps one without stoichnet or with another copy of it."""

    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self):
        return KernelSpecManager(kernel_dirs=[])


def test_examples_lists_the_lecture_in_order():
    numbered = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.ipynb"))
    assert numbered == LECTURE


@pytest.mark.parametrize("name", LECTURE)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code cells"
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("name", LECTURE)
def test_notebook_runs(name, request):
    if name in NEEDS_DATA:
        request.getfixturevalue("data_dir")  # fails, saying how to set STOICHNET_DATA
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    # the kernel must be this interpreter with this stoichnet (a relative PYTHONPATH=src
    # would not find it from examples/): the notebook then tests the code under test
    package = str(Path(stoichnet.__file__).resolve().parent)
    check = (f"import sys\nassert sys.executable == {sys.executable!r}, sys.executable\n"
             "from pathlib import Path\nimport stoichnet\n"
             f"assert str(Path(stoichnet.__file__).resolve().parent) == {package!r}, "
             "stoichnet.__file__")
    nb.cells.insert(0, nbformat.v4.new_code_cell(check))
    src = str(Path(package).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [src, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])}
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        kernel_manager_class=ThisInterpreterKernel,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute(env=env)  # raises CellExecutionError, with the cell and its traceback
