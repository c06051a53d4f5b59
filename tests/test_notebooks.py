"""The committed notebooks are what scripts/make_notebooks.py makes, and stay thin and small.

Executing them is nbval's job (`pytest --nbval-lax notebooks`, see notebooks/conftest.py);
these checks are static and take a second.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

from assignment4 import experiments

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_notebooks", REPO / "scripts/make_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()
EXPECTED = GENERATOR.build_all()


def test_one_notebook_per_experiment_in_registry_order():
    names = sorted(EXPECTED)
    assert names[0] == "00_data.ipynb" and names[-1] == "10_report.ipynb"
    assert [n[3:-6] for n in names[1:-1]] == experiments.EXPERIMENT_IDS
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_matches_its_template(name):
    problems = GENERATOR.differences(NOTEBOOKS / name, EXPECTED[name])
    assert not problems, "; ".join(problems) + ". Run: python scripts/make_notebooks.py"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_checked_cells_store_stdout_only(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if GENERATOR.is_checked(cell):
            assert cell.execution_count is not None, "nbval skips checked cells never run"
            assert [(o.output_type, o.get("name")) for o in cell.outputs] == [("stream", "stdout")]
    assert (NOTEBOOKS / name).stat().st_size < 30_000


@pytest.mark.parametrize("exp_id", experiments.EXPERIMENT_IDS)
def test_experiment_notebook_reads_parameters_from_environment(exp_id):
    name = f"{experiments.EXPERIMENT_IDS.index(exp_id) + 1:02d}_{exp_id}.ipynb"
    source = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells)
    for variable in ("ASSIGNMENT4_PROFILE", "ASSIGNMENT4_RUNS", "ASSIGNMENT4_FIGURES"):
        assert f'os.environ.get("{variable}"' in source
    assert f'EXP_ID = "{exp_id}"' in source
    assert "experiments.run(EXP_ID, profile=PROFILE, runs=RUNS)" in source
