"""What the notebooks do, read from their cells; they are the source, edited in Jupyter.

nbval executes them (`pytest --nbval-lax notebooks`, see notebooks/conftest.py). These checks
look at what nbval cannot: which calls each notebook makes, in which cells, with which nbval
markers, and what it stores. They read the code of the cells, not their wording, and take
seconds: only the Colab cell and one parameters cell are executed here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from assignment4 import experiments, models

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
MODEL = {
    exp_id: f"{i:02d}_{exp_id}.ipynb" for i, exp_id in enumerate(experiments.EXPERIMENT_IDS, 1)
}
CHECK, IGNORE = "# NBVAL_CHECK_OUTPUT", "# NBVAL_IGNORE_OUTPUT"
MAX_TEXT_OUTPUT = 4_000  # characters of stored text per cell
MAX_FILE = 40_000  # bytes per notebook

# What a reader of each model family came for; the notebook shows their source.
SHOWN = {
    "vae": {"VAE.train_step", "VAE.compute_losses", "kl_divergence"},
    "gan": {"GAN.train_step", "discriminator_loss", "generator_loss"},
    "wgan": {"WGAN.train_step", "critic_loss", "generator_loss", "em_estimate"},
}
RECONSTRUCTION_LOSS = {"bce": "bce_from_logits", "mse": "squared_error"}


def _read(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    return nb


def _code_cells(name: str) -> list:
    return [c for c in _read(name).cells if c.cell_type == "code"]


def _tree(cell) -> ast.Module:
    """The cell's code as Python (IPython magics translated first)."""
    return ast.parse(TransformerManager().transform_cell(cell.source))


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _calls(code) -> list[ast.Call]:
    """Every call in a cell (or in a node of its syntax tree)."""
    tree = code if isinstance(code, ast.AST) else _tree(code)
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _called(code) -> set[str]:
    """Dotted names of every function a cell calls, e.g. {'experiments.run', 'display'}."""
    return {name for call in _calls(code) if (name := _dotted(call.func))}


def _cell_calling(name: str, function: str):
    cells = [c for c in _code_cells(name) if function in _called(c)]
    assert cells, f"notebooks/{name}: no cell calls {function}(...)"
    return cells[0]


def _marker(cell) -> str:
    return cell.source.lstrip().split("\n", 1)[0].strip()


def _assigned_constant(cell, target: str):
    for node in ast.walk(_tree(cell)):
        assigned = isinstance(node, ast.Assign) and [_dotted(t) for t in node.targets] == [target]
        if assigned and isinstance(node.value, ast.Constant):
            return node.value.value
    return None


def _reads_environment(cell, target: str, variable: str) -> bool:
    """Whether the cell assigns `target = ... os.environ.get(variable, ...) ...`."""
    for node in ast.walk(_tree(cell)):
        if isinstance(node, ast.Assign) and [_dotted(t) for t in node.targets] == [target]:
            for call in (n for n in ast.walk(node.value) if isinstance(n, ast.Call)):
                arg = call.args[0] if call.args else None
                if (
                    _dotted(call.func) == "os.environ.get"
                    and getattr(arg, "value", None) == variable
                ):
                    return True
    return False


def _parameters_cell(name: str):
    cell = _code_cells(name)[1]
    assert "parameters" in cell.metadata.get("tags", []), (
        f"notebooks/{name}: the cell after the Colab cell must be the parameters cell, tagged "
        "'parameters'"
    )
    return cell


# ----------------------------------------------------------------------------- all notebooks


def test_one_notebook_per_experiment_in_registry_order():
    assert ALL == ["00_data.ipynb", *MODEL.values(), f"{len(MODEL) + 1:02d}_report.ipynb"]


@pytest.mark.parametrize("name", ALL)
def test_cells_are_python_and_outputs_are_small(name):
    assert (NOTEBOOKS / name).stat().st_size < MAX_FILE, f"notebooks/{name}: clear its outputs"
    for cell in _code_cells(name):
        where = f"notebooks/{name}, cell {cell.get('id')!r}"
        try:
            _tree(cell)
        except SyntaxError as e:
            pytest.fail(f"{where}: not valid Python ({e})")
        kinds = [(o.output_type, o.get("name")) for o in cell.outputs]
        if _marker(cell) == CHECK:
            # nbval compares only cells that were run, and only stdout is the same everywhere.
            assert cell.execution_count is not None, f"{where}: checked cell stored without a run"
            assert kinds and set(kinds) == {("stream", "stdout")}, (
                f"{where}: a checked cell must store its printed output only, got {kinds}; run "
                "the cells above it in a fresh kernel and save"
            )
        else:
            assert all(kind == "stream" for kind, _ in kinds), (
                f"{where}: stores {kinds}; clear its outputs (images, tables, errors) before "
                "committing"
            )
        text = sum(len(o.get("text", "")) for o in cell.outputs)
        assert text <= MAX_TEXT_OUTPUT, f"{where}: {text} characters of stored output; clear it"


@pytest.mark.parametrize("name", ALL)
def test_first_cell_sets_up_colab_only_inside_colab(name):
    first = _read(name).cells[0]
    assert first.cell_type == "code", f"notebooks/{name}: the first cell must be the Colab cell"
    assert first.source == _read(ALL[0]).cells[0].source, (
        f"notebooks/{name}: its Colab cell differs from the one in {ALL[0]}; keep them the same"
    )
    body = _tree(first).body
    guarded = [n for n in body if isinstance(n, ast.If)]
    assert len(guarded) == 1 and ast.unparse(guarded[0].test) == "'google.colab' in sys.modules"
    unguarded = [n for n in body if not isinstance(n, (ast.If, ast.Import))]
    assert not unguarded, f"notebooks/{name}: the Colab cell does work outside its `if`"
    inside = _called(guarded[0])
    assert {"drive.mount", "subprocess.run", "os.environ.setdefault", "os.chdir"} <= inside


_RUN_CELL = r"""
import contextlib, io, json, os, sys
source = sys.stdin.read()
state = lambda: (dict(os.environ), os.getcwd(), list(sys.path))
before, modules = state(), set(sys.modules)
out = io.StringIO()
with contextlib.redirect_stdout(out):
    exec(compile(source, "colab cell", "exec"), {"__name__": "__main__"})
print(json.dumps({"output": out.getvalue(), "unchanged": state() == before,
                  "new_modules": sorted(set(sys.modules) - modules)}))
"""


def _run_python(program: str, stdin: str, env: dict | None = None, timeout: int = 120):
    """Run `program` in a fresh Python in notebooks/, with `stdin` as its standard input."""
    return subprocess.run(
        [sys.executable, "-c", program],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        cwd=NOTEBOOKS,
        env=env,
        timeout=timeout,
    )


def test_colab_cell_outside_colab_changes_nothing_and_says_at_most_one_line():
    source = _read(ALL[0]).cells[0].source  # the same in every notebook (checked above)
    done = _run_python(_RUN_CELL, source, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["unchanged"], "the Colab cell changed the environment, the folder or sys.path"
    assert len(result["output"].splitlines()) <= 1, result["output"]
    assert result["new_modules"] == [], result["new_modules"]
    assert done.stderr == ""


@pytest.mark.parametrize("name", ALL)
def test_parameters_cell_reads_the_environment(name):
    cell = _parameters_cell(name)
    if name == "00_data.ipynb":  # no profile: it shows the data sets
        assert "data.summary" in _called(cell)
        return
    for target, variable in (("PROFILE", "ASSIGNMENT4_PROFILE"), ("RUNS", "ASSIGNMENT4_RUNS")):
        assert _reads_environment(cell, target, variable), (
            f"notebooks/{name}: the parameters cell must set {target} from ${variable}"
        )


@pytest.mark.parametrize("name", ALL)
def test_assignment4_is_imported_before_tensorflow(name):
    # `import assignment4` sets TensorFlow's CPU options, which count only before it loads.
    order = []
    for cell in _code_cells(name):
        for node in ast.walk(_tree(cell)):
            if isinstance(node, ast.Import):
                order += [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                order.append(node.module.split(".")[0])
    assert "assignment4" in order, f"notebooks/{name} never imports assignment4"
    first = order.index("assignment4")
    late = [m for m in order[:first] if m in ("tensorflow", "keras", "matplotlib")]
    assert not late, f"notebooks/{name} imports {late} before assignment4"


# ----------------------------------------------------------------------------- 01-09


@pytest.mark.parametrize("exp_id", list(MODEL))
def test_model_notebook_trains_and_shows_its_own_experiment(exp_id):
    name = MODEL[exp_id]
    assert _assigned_constant(_parameters_cell(name), "EXP_ID") == exp_id
    train = _cell_calling(name, "experiments.run")
    run_call = next(c for c in _calls(train) if _dotted(c.func) == "experiments.run")
    assert [_dotted(a) for a in run_call.args[:1]] == ["EXP_ID"]
    assert _marker(train) == IGNORE, f"notebooks/{name}: the training cell needs {IGNORE}"
    assert _marker(_cell_calling(name, "evaluation.evaluate_run")) == IGNORE

    architecture = _cell_calling(name, "networks.layer_table")
    assert _marker(architecture) == CHECK, f"notebooks/{name}: the architecture cell needs {CHECK}"

    figures = _cell_calling(name, "plots.figure_a")
    displayed = {
        _dotted(arg.func)
        for call in _calls(figures)
        if _dotted(call.func) == "display"
        for arg in call.args
        if isinstance(arg, ast.Call)
    }
    assert {"plots.figure_a", "plots.figure_b"} <= displayed, f"notebooks/{name}: {displayed}"
    assert "plots.save_figures" in _called(figures)
    for function in ("plots.sample_table", "plots.progression_figure"):
        _cell_calling(name, function)
    if experiments.get(exp_id).latent_dim == 2:
        _cell_calling(name, "plots.save_latent_maps")


@pytest.mark.parametrize("exp_id", list(MODEL))
def test_model_notebook_shows_train_step_and_losses_from_the_package(exp_id):
    name, exp = MODEL[exp_id], experiments.get(exp_id)
    cell = _cell_calling(name, "inspect.getsource")
    assert _called(cell) & {"Code", "Markdown"}, f"notebooks/{name}: render the source as code"
    shown = set()
    for node in ast.walk(_tree(cell)):
        if isinstance(node, ast.Assign) and [_dotted(t) for t in node.targets] == ["shown"]:
            shown = {_dotted(e) for e in node.value.elts}
    module = models.FAMILIES[exp.family].__module__
    prefix = module.rsplit(".", 1)[1] + "."
    names = {s.removeprefix(prefix) for s in shown if s}
    wanted = set(SHOWN[exp.family])
    if exp.family == "vae":
        wanted.add(RECONSTRUCTION_LOSS[exp.model.get("reconstruction", "bce")])
    assert wanted <= names, f"notebooks/{name} shows {sorted(names)}, not {sorted(wanted - names)}"
    for dotted in names:  # each one exists in the package and has source to show
        obj = importlib.import_module(module)
        for part in dotted.split("."):
            obj = getattr(obj, part)
        assert inspect.getsource(obj)


def test_parameters_cell_on_a_cpu_says_what_full_takes_and_how_to_choose_quick():
    cell = _parameters_cell(MODEL["dcgan_cifar10"])
    program = (
        "import os, sys\n"
        "source = sys.stdin.read()\n"
        "for profile in ('full', 'quick'):\n"
        "    os.environ['ASSIGNMENT4_PROFILE'] = profile\n"
        "    print(f'=== {profile}', flush=True)\n"
        "    exec(compile(source, 'parameters cell', 'exec'), {})\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    done = _run_python(program, cell.source, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    full, quick = done.stdout.split("=== quick")
    epochs = experiments.get("dcgan_cifar10").epochs
    assert f"{epochs('full')} epochs" in full and f"({epochs('quick')} epochs)" in full, full
    assert "ASSIGNMENT4_PROFILE=quick" in full, full
    assert "ASSIGNMENT4_PROFILE=quick" not in quick, quick


# ----------------------------------------------------------------------------- 00 and 10


def test_data_notebook_shows_shapes_images_and_counts():
    name = "00_data.ipynb"
    shapes = [c for c in _code_cells(name) if _marker(c) == CHECK]
    assert len(shapes) == 1 and "data.summary" in _called(_parameters_cell(name))
    assert {"mnist", "cifar10"} <= {
        line.split(":")[0] for line in shapes[0].outputs[0].text.split("\n")
    }
    for function in ("plots.data_preview", "plots.class_counts_figure"):
        _cell_calling(name, function)


def test_report_notebook_builds_the_report_of_its_profile():
    name = ALL[-1]
    assert _reads_environment(_parameters_cell(name), "REPORT", "ASSIGNMENT4_REPORT")
    build = _cell_calling(name, "report.build_report")
    assert _marker(build) == IGNORE and "report.build_figures" in _called(build)
    assert not any("experiments.run" in _called(c) for c in _code_cells(name)), "it trains"
