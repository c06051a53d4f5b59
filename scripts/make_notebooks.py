"""Write notebooks/*.ipynb from the templates in this file and the experiment registry.

    python scripts/make_notebooks.py           # write every notebook, run its checked cells
    python scripts/make_notebooks.py --check   # exit 1 if a notebook differs from its template

The notebooks are thin: a parameters cell, calls into `assignment4`, figures. They are
committed without outputs, except the cells marked `# NBVAL_CHECK_OUTPUT` (architecture
tables, data set shapes): their stored output is what `pytest --nbval-lax notebooks`
compares a fresh run against, so this script executes them (and only the cells before them,
which train nothing) and stores the real output. Edit the templates here, never the
notebooks by hand, and run this script again.
"""

from __future__ import annotations

import argparse
import copy
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT"
IGNORE = "# NBVAL_IGNORE_OUTPUT"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# The sub-networks of each model family, as the models name them (DESIGN.md section 8).
NETWORKS = {
    "vae": ("encoder", "decoder"),
    "gan": ("generator", "discriminator"),
    "wgan": ("generator", "critic"),
}

# The model of each experiment in the report's words; the numbers come from the registry.
ABOUT = {
    "vae_mnist_z128": (
        "An MLP variational autoencoder with a 128-dimensional latent space: encoder "
        "784-512-256-(mean, log-variance), decoder z-256-512-784 with a sigmoid output, ReLU "
        "between. Loss: binary cross-entropy summed over pixels plus the KL divergence."
    ),
    "vae_mnist_z2": (
        "The same MLP VAE with a two-dimensional latent space, which can be drawn: the "
        "notebook also shows the test set's latent means coloured by digit and the digits "
        "decoded on a grid of the latent plane."
    ),
    "gan_mnist": (
        "An MLP GAN: generator z128-256-512-1024-784 with tanh output and LeakyReLU(0.2) "
        "between; discriminator 784-1024-512-256-1 with LeakyReLU(0.2) and Dropout(0.3), "
        "sigmoid last (folded into the loss, computed from logits). Binary cross-entropy "
        "with the non-saturating generator loss."
    ),
    "wgan_mnist": (
        "An MLP Wasserstein GAN: the GAN's generator, and its discriminator without the "
        "sigmoid as the critic. Weight clipping, several critic steps per generator step."
    ),
    "dcwgan_mnist": (
        "A deep convolutional WGAN: transposed-convolution generator with batch norm, "
        "convolutional critic, with the sigmoid on the critic's output as the report has it."
    ),
    "convvae_cifar10": (
        "A convolutional VAE with a 512-dimensional latent space: three stride-2 convolutions "
        "with batch norm and LeakyReLU in the encoder, three stride-2 transposed convolutions "
        "in the decoder. Loss: squared error summed over pixels plus the KL divergence."
    ),
    "vae_cifar10": (
        "An MLP VAE with a 512-dimensional latent space: encoder 3072-1024-512-(mean, "
        "log-variance), decoder z-512-1024-3072 with a sigmoid output. Loss: squared error "
        "summed over pixels plus the KL divergence."
    ),
    "dcgan_cifar10": (
        "A DCGAN: transposed-convolution generator with batch norm and tanh output; "
        "convolutional discriminator with batch norm and LeakyReLU, sigmoid last."
    ),
    "dcwgan_cifar10": (
        "The DCGAN's networks trained as a WGAN: linear critic, weight clipping, several "
        "critic steps per generator step."
    ),
}


# ----------------------------------------------------------------------------- templates
# Cell sources, written as they appear in the notebooks. `$NAME` marks a substitution.

PARAMETERS = """
$STDLIB
from pathlib import Path

$IMPORTS

# Parameters, from the environment: e.g. `ASSIGNMENT4_PROFILE=quick jupyter lab`.
PROFILE = os.environ.get("ASSIGNMENT4_PROFILE", "full")  # full | quick | smoke
REPO = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
RUNS = REPO / os.environ.get("ASSIGNMENT4_RUNS", "runs")  # relative to the repository
FIGURES = REPO / os.environ.get("ASSIGNMENT4_FIGURES", "figures")
$NAMES
"""

EXPERIMENT_NAMES = """
EXP_ID = "$EXP_ID"
N_EVAL = 200 if PROFILE == "smoke" else 10_000  # generated images the metrics cell scores

exp = experiments.get(EXP_ID)
print(f"{EXP_ID}: profile {PROFILE!r}, {exp.epochs(PROFILE)} epochs; runs: {RUNS}")
print(f"devices: {training.devices()}")  # starts TensorFlow's runtime here, with its logs
"""

ARCHITECTURE = """
# NBVAL_CHECK_OUTPUT
networks.reset_layer_names()  # the same layer names, so the same table, on every run
model = exp.build()
for network in ($NETWORKS):
    print(networks.layer_table(network))
print(f"{exp.id}: {model.count_params():,} parameters in all")
"""

TRAIN = """
# NBVAL_IGNORE_OUTPUT
run_dir = experiments.run(EXP_ID, profile=PROFILE, runs=RUNS)
"""

CURVES = """
history = fileio.read_json(run_dir / "history.json")
provenance = fileio.read_json(run_dir / "run.json")
display(plots.figure_a(history, exp, provenance), plots.figure_b(history, exp, provenance))
plots.save_figures(exp, run_dir, FIGURES)
"""

SAMPLES = """
model = training.load_run_model(EXP_ID, PROFILE, RUNS)
plots.sample_table(
    [(f"{exp.id}\\n{provenance['epochs']} epochs", model.sample(64, seed=0))],
    f"{exp.title}: 64 samples, profile '{PROFILE}'",
    cols=8,
    lines=8,
)
"""

PROGRESSION = """
plots.progression_figure(run_dir)
"""

LATENT_MAPS = """
# Test-set latent means coloured by digit, and digits decoded over the latent plane.
from IPython.display import Image

display(*(Image(filename=path) for path in plots.save_latent_maps(exp, model, FIGURES)))
"""

METRICS = """
# NBVAL_IGNORE_OUTPUT
metrics = evaluation.evaluate_run(EXP_ID, PROFILE, runs=RUNS, n=N_EVAL)
print(evaluation.format_metrics_table([{"id": EXP_ID, **metrics}]))
"""

DATA_IMPORTS = """
from assignment4 import data, plots

DATASETS = ("mnist", "cifar10")
summaries = {name: data.summary(name) for name in DATASETS}
for s in summaries.values():
    print(f"{s['name']}: {s['path']}")
"""

DATA_SHAPES = """
# NBVAL_CHECK_OUTPUT
for s in summaries.values():
    print(f"{s['name']}: train {s['x_train']}, labels {s['y_train']}")
    print(f"  test {s['x_test']}, labels {s['y_test']}")
    print(f"  train images per class: {s['train_class_counts']}")
    print(f"  test images per class:  {s['test_class_counts']}")
"""

DATA_GRIDS = """
plots.data_preview(DATASETS)
"""

DATA_COUNTS = """
plots.class_counts_figure(list(summaries.values()))
"""

REPORT_BUILD = """
# NBVAL_IGNORE_OUTPUT
paths = report.build_figures(RUNS, PROFILE, FIGURES)
print(f"Wrote {len(paths)} figures and tables to {FIGURES}")
report_path = report.build_report(RUNS, PROFILE, FIGURES, REPORT)
print(f"Report written to {report_path}")
"""

REPORT_TABLES = """
for path in paths:
    if path.name.startswith("table"):
        display(Image(filename=path))
"""

REPORT_MARKDOWN = """
Markdown(report_path.read_text(encoding="utf-8"))
"""


# ----------------------------------------------------------------------------- cells


def fill(template: str, **values: str) -> str:
    """The template with each `$NAME` replaced by values[NAME]."""
    for key, value in values.items():
        template = template.replace(f"${key}", value)
    if "$" in template.replace("$ASSIGNMENT4_DATA", ""):
        raise ValueError(f"unfilled substitution in:\n{template}")
    return template


def md(cell_id: str, text: str):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"), id=cell_id)


def code(cell_id: str, text: str, tags: tuple[str, ...] = ()):
    cell = new_code_cell(text.strip("\n"), id=cell_id)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nb


def parameters(imports: str, names: str, stdlib: tuple[str, ...] = ()) -> str:
    """The parameters cell: imports, then the profile and the folders from the environment."""
    stdlib_lines = "\n".join(sorted(("import os", *stdlib)))
    return fill(PARAMETERS, STDLIB=stdlib_lines, IMPORTS=imports.strip("\n"), NAMES=names)


# ----------------------------------------------------------------------------- 00: data


def data_notebook() -> nbformat.NotebookNode:
    return notebook(
        [
            md(
                "title",
                """
                # The data sets: MNIST and CIFAR-10

                Where the two data sets were found (`assignment4.data` looks in `data_dir`, then
                `$ASSIGNMENT4_DATA`, then `<repo>/data`, and downloads what is missing), their
                shapes, a few images of every class and the class counts. Same as
                `python -m assignment4 data`.
                """,
            ),
            code("imports", DATA_IMPORTS, tags=("parameters",)),
            code("shapes", DATA_SHAPES),
            md("grids-title", "## Ten training images of every class, one class per row"),
            code("grids", DATA_GRIDS),
            md("counts-title", "## Images per class"),
            code("counts", DATA_COUNTS),
        ]
    )


# ----------------------------------------------------------------------------- 01-09


def _optimizer_text(exp) -> str:
    parts = []
    for name, spec in exp.optimizers.items():
        cfg = ", ".join(f"{k} {v:g}" for k, v in spec["config"].items())
        parts.append(f"`{name}`: {spec['class_name'].split('>')[-1]} ({cfg})")
    return "; ".join(parts)


def _title_markdown(exp) -> str:
    from assignment4 import plots, report

    what_a, what_b = (plots.PANELS[exp.family][p][0] for p in ("a", "b"))
    extra = ""
    if "n_critic" in exp.model:
        extra = (
            f" Critic steps per generator step: {exp.model['n_critic']}; weight clipping at "
            f"±{exp.model['clip_value']}."
        )
    return f"""
        # Figure {exp.figure} and Table {exp.table}: {exp.title} on {plots.dataset_name(exp)}

        Experiment `{exp.id}` of the course report. {ABOUT[exp.id]}

        - **Figure {exp.figure}a**: {what_a}; **Figure {exp.figure}b**: {what_b};
          one point per epoch.
        - **Table {exp.table}**: samples of the final model (here 64; the table shows one row).
        - Batch {exp.batch_size}, latent size {exp.latent_dim}; {_optimizer_text(exp)}.{extra}
        - Profile: `ASSIGNMENT4_PROFILE` = `full` (the report's 200 epochs, the default),
          `quick` or `smoke`; the parameters cell prints the epochs it trains.

        **The report observed:** {report.REPORT_OBSERVED.get(exp.id, "")}

        Same as `python -m assignment4 run {exp.id} --profile PROFILE`: training reuses a
        finished run of the profile, or resumes a killed one from its last finished epoch.
    """


def experiment_notebook(exp) -> nbformat.NotebookNode:
    latent_map = exp.family == "vae" and exp.latent_dim == 2
    imports = """
from IPython.display import display

from assignment4 import evaluation, experiments, fileio, networks, plots, training
"""
    networks = ", ".join(f"model.{n}" for n in NETWORKS[exp.family])
    figure_files = f"`fig{exp.figure}a_{exp.id}.png` and `fig{exp.figure}b_{exp.id}.png`"
    cells = [
        md("title", _title_markdown(exp)),
        code(
            "parameters",
            parameters(imports, fill(EXPERIMENT_NAMES, EXP_ID=exp.id)),
            tags=("parameters",),
        ),
        md("architecture-title", "## The networks\n\nName, type, output shape and parameters."),
        code("architecture", fill(ARCHITECTURE, NETWORKS=networks)),
        md("train-title", "## Training"),
        code("train", TRAIN),
        md(
            "figures-title",
            f"## Figure {exp.figure}a and {exp.figure}b\n\nDrawn from `history.json` and "
            f"`run.json`, and saved to `FIGURES` as {figure_files}.",
        ),
        code("figures", CURVES),
        md("samples-title", f"## Samples of the final model (Table {exp.table})"),
        code("samples", SAMPLES),
        md(
            "progression-title",
            "## The same latent points during training\n\n"
            "`samples/epoch_NNN.png`: every grid decodes the same fixed noise.",
        ),
        code("progression", PROGRESSION),
    ]
    if latent_map:
        cells += [
            md(
                "latent-title",
                "## Figure 2: the latent plane\n\n"
                "The test set's latent means, coloured by digit, and the digits decoded on a "
                "20x20 grid of normal quantiles; saved as `fig2_latent_scatter.png` and "
                "`fig2_manifold.png`.",
            ),
            code("latent-maps", LATENT_MAPS),
        ]
    cells += [
        md(
            "metrics-title",
            "## Sample quality (beyond the report)\n\n"
            "Classifier-feature Fréchet and kernel distances and a classifier Inception "
            "Score, written to `metrics.json`; same as `python -m assignment4 evaluate`. "
            "Not Inception FID: the features are those of the project's own small "
            "classifier (`assignment4/weights/`), so compare numbers within this project only.",
        ),
        code("metrics", METRICS),
    ]
    return notebook(cells)


# ----------------------------------------------------------------------------- 10: report


def report_notebook() -> nbformat.NotebookNode:
    imports = (
        "from IPython.display import Image, Markdown, display\n\nfrom assignment4 import report"
    )
    names = 'REPORT = REPO / os.environ.get("ASSIGNMENT4_REPORT", "report")'
    return notebook(
        [
            md(
                "title",
                """
                # The report: all figures and tables of one profile

                Redraws Figures 1-9 (a and b) from every run of the profile found under `RUNS`,
                samples the saved models for Tables 1-4, and writes `report/report.md`, which
                says for every figure which profile and how many epochs made it. Runs that are
                missing become a sentence naming the command that makes them. Same as
                `python -m assignment4 report --profile PROFILE`; nothing here trains.
                """,
            ),
            code("parameters", parameters(imports, names), tags=("parameters",)),
            code("build", REPORT_BUILD),
            md("tables-title", "## Tables 1-4: samples, one row per model"),
            code("tables", REPORT_TABLES),
            md("report-title", "## report.md"),
            code("report", REPORT_MARKDOWN),
        ]
    )


# ----------------------------------------------------------------------------- all


def build_all() -> dict[str, nbformat.NotebookNode]:
    """File name -> notebook, without outputs."""
    from assignment4 import experiments

    notebooks = {"00_data.ipynb": data_notebook()}
    for i, exp_id in enumerate(experiments.EXPERIMENT_IDS, start=1):
        notebooks[f"{i:02d}_{exp_id}.ipynb"] = experiment_notebook(experiments.get(exp_id))
    notebooks[f"{len(experiments.EXPERIMENT_IDS) + 1:02d}_report.ipynb"] = report_notebook()
    return notebooks


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK)


def execute_checked_cells(nb: nbformat.NotebookNode, name: str) -> None:
    """Run the cells up to the last checked one in a fresh kernel; keep the checked outputs.

    Only stdout may appear there: nbval would compare anything else, and stderr (warnings,
    TensorFlow logs) is not stable from one machine to the next.
    """
    from nbclient import NotebookClient

    last = max((i for i, c in enumerate(nb.cells) if is_checked(c)), default=None)
    if last is None:
        return
    head = copy.deepcopy(nb)
    head.cells = head.cells[: last + 1]
    resources = {"metadata": {"path": str(NOTEBOOKS)}}
    NotebookClient(head, timeout=600, kernel_name=KERNELSPEC["name"], resources=resources).execute()
    for cell, ran in zip(nb.cells, head.cells):
        if not is_checked(cell):
            continue
        bad = [o for o in ran.outputs if not (o.output_type == "stream" and o.name == "stdout")]
        if bad:
            raise RuntimeError(f"{name}, cell {cell.id}: output other than stdout: {bad}")
        text = "".join(o.text for o in ran.outputs)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        cell.execution_count = ran.execution_count


def reuse_checked_outputs(nb: nbformat.NotebookNode, path: Path) -> bool:
    """Copy the stored outputs of checked cells from `path` if every one of them is unchanged."""
    if not path.exists():
        return False
    stored = {c.id: c for c in nbformat.read(path, as_version=4).cells if is_checked(c)}
    checked = [c for c in nb.cells if is_checked(c)]
    if any(c.id not in stored or stored[c.id].source != c.source or not stored[c.id].outputs
           for c in checked):  # fmt: skip
        return False
    for cell in checked:
        cell.outputs = stored[cell.id].outputs
        cell.execution_count = stored[cell.id].execution_count
    return True


def stripped(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without any output or execution count (what the templates produce)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def differences(path: Path, expected: nbformat.NotebookNode) -> list[str]:
    """Why the notebook at `path` is not what the template makes (empty if it is)."""
    if not path.exists():
        return [f"{path.name} is missing"]
    found = nbformat.read(path, as_version=4)
    problems = []
    if stripped(found) != stripped(expected):
        problems.append(f"{path.name} differs from its template")
    for cell in found.cells:
        if cell.cell_type != "code":
            continue
        if is_checked(cell) and not cell.outputs:
            problems.append(f"{path.name}, cell {cell.id}: checked cell without stored output")
        if not is_checked(cell) and (cell.outputs or cell.execution_count is not None):
            problems.append(f"{path.name}, cell {cell.id}: output should be stripped")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; write nothing")
    parser.add_argument(
        "--keep-outputs",
        action="store_true",
        help="reuse the stored output of a checked cell whose source is unchanged (fast, for "
        "edits of other cells; nbval still compares it with a fresh run)",
    )
    parser.add_argument("names", nargs="*", help="only these notebooks (file names)")
    args = parser.parse_args(argv)
    notebooks = build_all()
    if args.names:
        notebooks = {k: v for k, v in notebooks.items() if k in args.names}
    if args.check:
        problems = [p for name, nb in notebooks.items() for p in differences(NOTEBOOKS / name, nb)]
        print("\n".join(problems) or f"{len(notebooks)} notebooks match their templates")
        return 1 if problems else 0
    NOTEBOOKS.mkdir(exist_ok=True)
    for name, nb in notebooks.items():
        if not (args.keep_outputs and reuse_checked_outputs(nb, NOTEBOOKS / name)):
            execute_checked_cells(nb, name)
        nbformat.validate(nb)
        nbformat.write(nb, NOTEBOOKS / name)
        print(f"wrote {NOTEBOOKS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
