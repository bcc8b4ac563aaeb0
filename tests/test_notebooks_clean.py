"""Committed notebooks carry no outputs, so the repository stays small and diffs stay readable.

Strip outputs before committing, e.g.::

    jupyter nbconvert --clear-output --inplace notebooks/*.ipynb
"""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    for expected in (
        "01_quick_start.ipynb",
        "02_scenarios.ipynb",
        "03_sensitivity.ipynb",
        "04_your_municipality.ipynb",
    ):
        assert expected in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs or execution counts"
    assert path.stat().st_size < 100_000, f"{path.name} is unexpectedly large"
