"""The report's figures, sample tables and latent maps, drawn into tmp_path from synthetic runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from PIL import Image
from stand_ins import Exp

from assignment4.errors import RunError
from assignment4.reporting import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


VAE = Exp("vae_mnist_z128", 1, 1, "mnist", "vae", "MLP VAE, z=128", 128)
GAN = Exp("gan_mnist", 3, 2, "mnist", "gan", "MLP GAN")
WGAN = Exp("dcwgan_cifar10", 9, 4, "cifar10", "wgan", "DC-WGAN")


def history(family: str, n: int) -> dict[str, list[float]]:
    """A plausible history.json of n epochs."""
    e = np.arange(1, n + 1, dtype=float)
    if family == "vae":
        h = {"loss": 100 + 80 / e, "val_loss": 103 + 80 / e, "kl": 20 - 5 / e, "val_kl": 19 - 5 / e}
        h["reconstruction"] = h["loss"] - h["kl"]
        h["val_reconstruction"] = h["val_loss"] - h["val_kl"]
    elif family == "gan":
        d = 1.2 + 0.05 * np.sin(e)
        h = {"d_loss": d, "g_loss": 0.9 + 0.1 * np.cos(e), "js_estimate": math.log(2) - d / 2}
    else:
        h = {"critic_loss": -1 / e, "g_loss": 0.3 + 0 * e, "em_estimate": 1 / e}
    return {k: [float(x) for x in v] for k, v in h.items()} | {"epoch_seconds": [1.0] * n}


def write_run(run_dir: Path, family: str, n: int, profile: str = "quick", planned=None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "history.json").write_text(json.dumps(history(family, n)))
    run = {"profile": profile, "epochs": n, "epochs_planned": planned or n, "status": "complete"}
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


def assert_png(path: Path, min_size=(300, 200)) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
    assert path.stat().st_size > 5_000
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("exp", [VAE, GAN, WGAN], ids=lambda e: e.family)
@pytest.mark.parametrize("n", [1, 2, 12])
def test_save_figures_writes_both_named_pngs(tmp_path, exp, n):
    run_dir = write_run(tmp_path / "runs" / exp.id / "quick", exp.family, n)
    paths = plots.save_figures(exp, run_dir, tmp_path / "figures")
    assert [p.name for p in paths] == [
        f"fig{exp.figure}a_{exp.id}.png",
        f"fig{exp.figure}b_{exp.id}.png",
    ]
    for path in paths:
        assert_png(path)


@pytest.mark.parametrize(
    "exp, panel, labels",
    [
        (VAE, "a", ["train", "test"]),
        (VAE, "b", ["train", "test"]),
        (GAN, "a", ["discriminator loss", "generator loss"]),
        (GAN, "b", ["JS estimate = log 2 - d_loss / 2", "log 2 (upper bound)"]),
        (WGAN, "a", ["critic loss", "generator loss"]),
        (WGAN, "b", ["EM estimate = mean C(x) - mean C(G(z))"]),
    ],
)
def test_figure_axes_legend_and_title(exp, panel, labels):
    provenance = {"profile": "quick", "epochs": 3, "epochs_planned": 10, "status": "running"}
    draw = plots.figure_a if panel == "a" else plots.figure_b
    fig = draw(history(exp.family, 3), exp, provenance)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    title = ax.get_title()
    assert exp.id in title and exp.title in title and f"Figure {exp.figure}{panel}" in title
    assert "'quick'" in title and "3 of 10 epochs" in title and "running" in title
    curves = [line for line in ax.get_lines() if line.get_label() in labels]
    assert list(curves[0].get_xdata()) == [1, 2, 3]  # epochs count from 1


def test_gan_js_figure_marks_log2_bound():
    fig = plots.figure_b(history("gan", 4), GAN, None)
    (ax,) = fig.axes
    (bound,) = [line for line in ax.get_lines() if "upper bound" in line.get_label()]
    assert bound.get_linestyle() == "--"
    assert np.allclose(bound.get_ydata(), math.log(2))
    assert ax.get_ylim()[1] > math.log(2) and ax.get_ylim()[0] <= 0


def test_single_epoch_point_is_visible():
    fig = plots.figure_a(history("vae", 1), VAE, {"profile": "smoke", "epochs": 1})
    (ax,) = fig.axes
    line = ax.get_lines()[0]
    assert line.get_marker() == "o" and len(line.get_xdata()) == 1
    low, high = ax.get_xlim()
    assert low < 1 < high
    assert "1 epoch" in ax.get_title() and "epochs" not in ax.get_title()


def test_history_without_the_metrics_names_the_problem():
    with pytest.raises(RunError, match="d_loss"):
        plots.figure_a({"loss": [1.0]}, GAN, None)


def test_nan_in_history_still_draws(tmp_path):
    h = history("wgan", 4)
    h["em_estimate"][2] = None  # fileio writes NaN as null
    fig = plots.figure_b(h, WGAN, None)
    assert plots.save_figure(fig, tmp_path / "f.png").exists()


def tiles(n: int, h: int, w: int, channels: int | None = None) -> np.ndarray:
    """n distinct images whose pixel (i, j) of image k is 10*k + i*w + j (+ channel)."""
    x = (10 * np.arange(n)[:, None, None] + np.arange(h * w).reshape(h, w)).astype(np.uint8)
    if channels:
        x = np.stack([x + c for c in range(channels)], axis=-1).astype(np.uint8)
    return x


@pytest.mark.parametrize("channels", [None, 3])
def test_image_grid_places_each_tile_and_white_gaps(channels):
    h, w, gap = 3, 4, 2
    images = tiles(5, h, w, channels)
    grid = plots.image_grid(images, rows=2, cols=3, gap=gap)
    assert grid.dtype == np.uint8
    assert grid.shape[:2] == (2 * h + gap, 3 * w + 2 * gap)
    assert grid.shape[2:] == ((3,) if channels else ())
    for k in range(5):
        r, c = divmod(k, 3)
        top, left = r * (h + gap), c * (w + gap)
        np.testing.assert_array_equal(grid[top : top + h, left : left + w], images[k])
    assert (grid[h : h + gap] == 255).all()  # gap between the rows
    assert (grid[:, w : w + gap] == 255).all()  # gap between columns 0 and 1
    assert (grid[h + gap :, 2 * (w + gap) :] == 255).all()  # the sixth tile is empty


def test_image_grid_squeezes_one_channel_and_rejects_floats():
    images = tiles(4, 2, 2)[..., None]
    assert plots.image_grid(images, 2, 2, gap=1).shape == (5, 5)
    with pytest.raises(ValueError, match="uint8"):
        plots.image_grid(images.astype(np.float32), 2, 2)


def test_save_png_round_trips(tmp_path):
    image = plots.image_grid(tiles(6, 5, 5, 3), 2, 3)
    path = plots.save_png(image, tmp_path / "sub" / "grid.png")
    with Image.open(path) as read:
        np.testing.assert_array_equal(np.asarray(read), image)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temp file left


@pytest.mark.parametrize("n", [1, 2, 7, 20])
def test_latent_grid_points_symmetric_and_monotone(n):
    points = plots.latent_grid_points(n)
    assert points.shape == (n * n, 2)
    grid = points.reshape(n, n, 2)
    q = grid[0, :, 0]
    np.testing.assert_array_equal(q, -q[::-1])  # symmetric around 0
    assert (np.diff(q) > 0).all()  # z[0] grows along a row
    assert (np.diff(grid[:, 0, 1]) < 0).all()  # z[1] falls down a column (top row is largest)
    assert (grid[:, :, 0] == q).all() and (grid[:, :, 1] == q[::-1, None]).all()
    if n > 1:
        assert q[0] == pytest.approx(NormalDist().inv_cdf(0.05))
    if n % 2:
        assert q[n // 2] == 0


def test_sample_table_one_row_per_model(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        ("real images", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)),
        ("MLP VAE, z=128", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)),
        ("MLP VAE, z=2", rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)),
    ]
    fig = plots.sample_table(rows, "Table 1: samples")
    assert len(fig.axes) == 3
    texts = [t.get_text() for t in fig.texts]
    assert all(label in texts for label, _ in rows) and "Table 1: samples" in texts
    path = plots.save_table(1, rows, tmp_path, title="Table 1: samples, profile 'smoke'")
    assert path.name == "table1.png"
    assert_png(path)
    rgb = [("DCGAN", rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8))]
    assert_png(plots.save_table(4, rgb, tmp_path), min_size=(300, 100))


def test_latent_scatter_and_manifold_grid(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    fig = plots.latent_scatter(rng.normal(size=(500, 2)), labels, title="VAE z=2")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(i) for i in range(10)]
    assert_png(plots.save_figure(fig, tmp_path / "scatter.png"))

    n = 5
    decoded = rng.integers(0, 256, (n * n, 28, 28), dtype=np.uint8)
    fig = plots.manifold_grid(decoded, n)
    (ax,) = fig.axes
    assert ax.get_images()[0].get_array().shape == (n * 28, n * 28)
    assert ax.get_xlabel() == "z[0]" and ax.get_ylabel() == "z[1]"
    assert_png(plots.save_figure(fig, tmp_path / "manifold.png"))
    with pytest.raises(ValueError, match="25"):
        plots.manifold_grid(decoded[:-1], n)


def test_progression_figure_shows_first_and_last_grid(tmp_path):
    samples = tmp_path / "run" / "samples"
    samples.mkdir(parents=True)
    for epoch in range(1, 8):
        grid = np.full((10, 10), epoch * 30, dtype=np.uint8)
        plots.save_png(grid, samples / f"epoch_{epoch:03d}.png")
    fig = plots.progression_figure(tmp_path / "run", n=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["epoch 001", "epoch 004", "epoch 007"]
    assert fig.axes[-1].get_images()[0].get_array().max() == 7 * 30
    all_grids = plots.progression_figure(tmp_path / "run", n=20)
    assert [ax.get_title() for ax in all_grids.axes] == [f"epoch {e:03d}" for e in range(1, 8)]
    (samples.parent.parent / "empty" / "samples").mkdir(parents=True)
    with pytest.raises(RunError, match="no sample grids"):
        plots.progression_figure(tmp_path / "empty")


def test_class_counts_figure_one_panel_per_data_set():
    summaries = [
        {"name": "mnist", "train_class_counts": list(range(10, 20)), "test_class_counts": [5] * 10},
        {"name": "cifar10", "train_class_counts": [5000] * 10, "test_class_counts": [1000] * 10},
    ]
    fig = plots.class_counts_figure(summaries)
    assert [ax.get_title() for ax in fig.axes] == ["MNIST", "CIFAR-10"]
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights == list(range(10, 20)) + [5] * 10
    assert "airplane" in [t.get_text() for t in fig.axes[1].get_xticklabels()]
