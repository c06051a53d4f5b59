"""build_report on fake run folders in tmp_path: links, captions, missing runs, metrics, claims."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from stand_ins import Exp

from assignment4.reporting import figures, report
from assignment4.reporting import runs as runs_lib

EXPS = [
    Exp("vae_mnist_z128", 1, 1, "mnist", "vae", "MLP VAE, z=128", 128),
    Exp("vae_mnist_z2", 2, 1, "mnist", "vae", "MLP VAE, z=2", 2),
    Exp("gan_mnist", 3, 2, "mnist", "gan", "MLP GAN", 128),
    Exp("wgan_mnist", 4, 2, "mnist", "wgan", "MLP WGAN", 128),
    Exp("dcwgan_mnist", 5, 2, "mnist", "wgan", "DC-WGAN", 128),
    Exp("convvae_cifar10", 6, 3, "cifar10", "vae", "Conv VAE, z=512", 512),
    Exp("vae_cifar10", 7, 3, "cifar10", "vae", "MLP VAE, z=512", 512),
    Exp("dcgan_cifar10", 8, 4, "cifar10", "gan", "DCGAN", 128),
    Exp("dcwgan_cifar10", 9, 4, "cifar10", "wgan", "DC-WGAN", 128),
]
BY_ID = {e.id: e for e in EXPS}
REGISTRY = SimpleNamespace(EXPERIMENT_IDS=[e.id for e in EXPS], get=BY_ID.__getitem__)


def history(family: str, n: int) -> dict[str, list[float]]:
    e = np.arange(1, n + 1, dtype=float)
    if family == "vae":  # loss 200 -> 100 over 5 epochs, KL 10 -> 30
        loss = 200 - 25 * (e - 1)
        kl = 10 + 5 * (e - 1)
        h = {"loss": loss, "reconstruction": loss - kl, "kl": kl}
        h |= {"val_loss": loss + 4, "val_reconstruction": loss - kl + 3, "val_kl": kl + 1}
    elif family == "gan":
        d = 1.0 + 0.1 * (e - 1)
        h = {"d_loss": d, "g_loss": 1.0 + 0 * e, "js_estimate": np.log(2) - d / 2}
    else:
        h = {"critic_loss": -2.0 / e, "g_loss": 0.5 + 0 * e, "em_estimate": 2.0 / e}
    return {k: [float(x) for x in v] for k, v in h.items()}


def write_run(
    runs: Path, exp_id: str, n: int, planned: int | None = None, metrics=None, profile="quick"
) -> Path:
    run_dir = runs / exp_id / profile
    run_dir.mkdir(parents=True)
    (run_dir / "history.json").write_text(json.dumps(history(BY_ID[exp_id].family, n)))
    run = {
        "id": exp_id,
        "profile": profile,
        "epochs": n,
        "epochs_planned": planned or n,
        "train_size": 6000,
        "test_size": 1000,
        "seed": 0,
        "batch_size": 128,
        "versions": {"keras": "3.x", "tensorflow": "2.x"},
        "strategy": "default",
        "replicas": 1,
        "wall_time_s": 61.0,
        "status": "complete" if n == (planned or n) else "running",
        "finished_at": "2025-01-01T00:00:00",
        "weights_fingerprint": weights_of(exp_id, n),
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    if metrics is not None:  # scored the final model, unless the metrics say otherwise
        bound = {"epoch": n, "weights_fingerprint": weights_of(exp_id, n)}
        (run_dir / "metrics.json").write_text(json.dumps(bound | metrics))
    return run_dir


def weights_of(exp_id: str, epoch: int) -> str:
    """A stand-in weights fingerprint of one run's model at one epoch."""
    return f"{exp_id}@{epoch}"


def write_checkpoint(run_dir: Path, epoch: int, metrics: dict | None = None) -> None:
    """A checkpoint's weights and side file (with its fingerprint), and metrics that scored it."""
    exp_id, folder = run_dir.parent.name, run_dir / "checkpoints"
    folder.mkdir(exist_ok=True)
    (folder / f"epoch_{epoch:03d}.weights.h5").write_bytes(b"stand-in")
    side = {"epoch": epoch, "seed_states": [], "weights_fingerprint": weights_of(exp_id, epoch)}
    (folder / f"epoch_{epoch:03d}.json").write_text(json.dumps(side))
    if metrics is not None:
        bound = {"epoch": epoch, "weights_fingerprint": weights_of(exp_id, epoch)}
        (run_dir / f"metrics_epoch_{epoch:03d}.json").write_text(json.dumps(bound | metrics))


def links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


@pytest.fixture
def built(tmp_path):
    """A runs folder with three of the nine runs; the report built from it."""
    runs = tmp_path / "runs"
    write_run(runs, "vae_mnist_z128", 5)
    write_run(runs, "gan_mnist", 1)
    write_run(runs, "wgan_mnist", 3, planned=10)
    path = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    )
    return tmp_path, path, path.read_text()


def test_report_embeds_every_figure_with_relative_links(built):
    tmp_path, path, text = built
    assert path == tmp_path / "report" / "report.md"
    expected = [
        "../figures/fig1a_vae_mnist_z128.png",
        "../figures/fig1b_vae_mnist_z128.png",
        "../figures/fig3a_gan_mnist.png",
        "../figures/fig3b_gan_mnist.png",
        "../figures/fig4a_wgan_mnist.png",
        "../figures/fig4b_wgan_mnist.png",
    ]
    assert links(text) == expected  # no tables: their models are missing
    for link in expected:
        assert (path.parent / link).resolve().is_file()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(
        Path(link).name for link in expected
    )


def test_captions_state_profile_and_epochs(built):
    _, _, text = built
    captions = [line for line in text.splitlines() if line.startswith("*Figure")]
    assert len(captions) == 6
    assert all("Profile `quick`" in c for c in captions)
    assert sum("5 epochs;" in c for c in captions) == 2
    assert sum("1 epoch;" in c for c in captions) == 2
    assert sum("3 epochs of 10 planned (stopped; `run` resumes it)" in c for c in captions) == 2


def test_sections_follow_the_course_report(built):
    _, _, text = built
    headings = [line for line in text.splitlines() if line.startswith(("## ", "### "))]
    order = ["## 1 ", "### 1.1 ", "### 1.2 ", "## 2 ", "### 2.1 ", "### 2.2 ", "### 2.3 "]
    positions = [next(i for i, h in enumerate(headings) if h.startswith(o)) for o in order]
    assert positions == sorted(positions)
    section_1_1 = text.split("### 1.1")[1].split("### 1.2")[0]
    assert section_1_1.index("Figure 1:") < section_1_1.index("Figure 2:")
    assert "Table 1" in section_1_1
    assert "Table 2" in text.split("### 2.1")[1].split("### 2.2")[0]


def test_missing_runs_name_the_command(built, tmp_path):
    _, _, text = built
    runs = (tmp_path / "runs").as_posix()
    for exp_id in ["vae_mnist_z2", "dcwgan_mnist", "convvae_cifar10", "dcgan_cifar10"]:
        assert (
            f"run it with `python -m assignment4 run {exp_id} --profile quick --runs {runs}`"
            in (text)
        )
    assert "Runs found: 3 of 9." in text
    assert "Table 1 is not drawn: there is no `model.keras` for `vae_mnist_z128`" in text


def test_our_run_shows_numbers_from_history(built):
    _, _, text = built
    vae = text.split("Figure 1: MLP VAE, z=128")[1].split("Figure 2:")[0]
    assert "The report observed:" in vae
    shows = vae.split("**Our run shows**")[1]
    assert "training loss fell from 200 (epoch 1) to 100 (epoch 5, -50.0%)" in shows
    assert "test loss fell from 204 (epoch 1) to 104 (epoch 5" in shows
    assert "lowest at the last epoch" in shows
    assert "training KL rose from 10 (epoch 1) to 30 (epoch 5" in shows
    gan = text.split("Figure 3: MLP GAN")[1].split("Figure 4:")[0]
    assert "JS estimate was 0.1931 after its only epoch" in gan
    wgan = text.split("Figure 4: MLP WGAN")[1]
    assert "EM estimate fell from 2 (epoch 1) to 0.6667 (epoch 3" in wgan
    assert "it fell in 2 of 2 epoch-to-epoch steps" in wgan


def test_without_metrics_the_report_says_how_to_make_them(built):
    _, _, text = built
    assert "No `metrics.json` for profile `quick` yet" in text
    assert "python -m assignment4 evaluate all --profile quick" in text
    assert "three claims" not in text


def metrics(fd, kid, elbo=None, dataset_offset=0.0, fd_std=0.5, kid_std=0.002):
    m = {
        "fd": fd,
        "fd_std": fd_std,
        "kid": kid,
        "kid_std": kid_std,
        "classifier_is": 5.0,
        "fd_real": 1.5 + dataset_offset,
        "kid_real": 0.001,
        "classifier_is_real": 9.8,
        "classifier_test_accuracy": 0.991,
        "n_samples": 1000,
    }
    return m if elbo is None else m | {"test_elbo": elbo}


def test_metrics_table_and_claims(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "vae_mnist_z128", 2, metrics=metrics(10.0, 0.01, elbo=-95.0))
    write_run(runs, "vae_mnist_z2", 2, metrics=metrics(30.0, 0.03, elbo=-140.0))
    write_run(runs, "wgan_mnist", 2, metrics=metrics(20.0, 0.02))
    write_run(runs, "dcwgan_mnist", 2, metrics=metrics(25.0, 0.01))  # worse FD, better KID
    write_run(runs, "vae_cifar10", 2)  # no metrics: the third claim cannot be checked
    text = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    ).read_text()
    assert "**not** Inception FID" in text
    assert (
        "| `vae_mnist_z128` | MNIST | quick | 2 | 1000 | 10.00 ± 0.50 | 0.0100 ± 0.0020 | 5 | -95 |"
        in text
    )
    assert "| real vs real | MNIST | - | - | - | 1.5 | 0.001 | 9.8 | - |" in text
    assert "MNIST 99.10%" in text
    assert "Not evaluated yet: `vae_cifar10`" in text
    claims = text.split("## 4 The report's three claims")[1]
    lines = [line for line in claims.splitlines() if line.startswith("- **")]
    assert len(lines) == 3
    assert "FD 10.00 ± 0.50 (`vae_mnist_z128`) vs 30.00 ± 0.50 (`vae_mnist_z2`)" in lines[0]
    assert lines[0].endswith("**Supported**.")
    assert "favouring `wgan_mnist`" in lines[1] and "favouring `dcwgan_mnist`" in lines[1]
    assert lines[1].endswith("**Not supported**.")
    assert "Collapse diagnostics" not in text  # the metrics carry none
    assert "no scored metrics.json for `convvae_cifar10`, `vae_cifar10`" in lines[2]
    assert lines[2].endswith("**Not checked**.")


def test_quality_along_runs_from_scored_checkpoints(tmp_path):
    runs = tmp_path / "runs"
    gan = write_run(runs, "gan_mnist", 10, metrics=metrics(3.0, 0.01) | {"classifier_is": 7.0})
    for epoch, score, fd in ((5, 6.0, 6.0), (2, 4.0, 9.0)):
        write_checkpoint(gan, epoch, metrics(fd, 0.02) | {"classifier_is": score})
    # the trained generator's score beside a generator average's is not a point of the curve
    (gan / "metrics_epoch_005_trained_generator.json").write_text(json.dumps(metrics(1.0, 0.1)))
    write_run(runs, "wgan_mnist", 3, metrics=metrics(20.0, 0.02))  # its end only: one point
    info = runs_lib.load_run(BY_ID["gan_mnist"], runs, "quick")
    assert runs_lib.quality_points(info) == [(2, 4.0, 9.0), (5, 6.0, 6.0), (10, 7.0, 3.0)]
    figures, out = tmp_path / "figures", tmp_path / "report"
    text = report.build_report(runs, "quick", figures, out, registry=REGISTRY).read_text()
    assert (figures / "quality_along_runs.png").stat().st_size > 10_000
    section = text.split(report.TEXT["metrics_heading"])[1]
    assert "](../figures/quality_along_runs.png)" in section
    assert "Runs: `gan_mnist` (3), `wgan_mnist` (1)." in section
    assert "`python -m assignment4 evaluate ID --profile quick --runs " in section
    # linked again without redrawing; gone when no run has two scored epochs
    again = report.build_report(runs, "quick", figures, out, make_figures=False, registry=REGISTRY)
    assert "quality_along_runs.png" in again.read_text()
    for path in gan.glob("metrics_epoch_*.json"):
        path.unlink()
    (figures / "quality_along_runs.png").unlink()
    text = report.build_report(runs, "quick", figures, out, registry=REGISTRY).read_text()
    assert (
        "quality_along_runs.png" not in text and not (figures / "quality_along_runs.png").exists()
    )


@pytest.mark.parametrize("better, worse", [(-90.0, -120.0), (90.0, 120.0)])
def test_elbo_claim_reads_either_sign_convention(better, worse):
    claim = report.Claim("a beats b", "a", "b", ("test_elbo",))
    verdict, detail = report.claim_verdict(
        claim, {"a": {"test_elbo": better}, "b": {"test_elbo": worse}}
    )
    assert verdict == "supported" and "favouring `a`" in detail


def test_tables_drawn_from_models_with_real_row(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run_dir = write_run(runs, "vae_mnist_z128", 2)
    (run_dir / "model.keras").write_bytes(b"stand-in")
    rng = np.random.default_rng(0)
    sampled, loaded = [], []

    def sample_model(path, n):
        sampled.append(path)
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)

    def real_images(dataset, n, data_dir=None):
        loaded.append(dataset)
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)

    monkeypatch.setattr(figures, "sample_model", sample_model)
    monkeypatch.setattr(figures, "real_images", real_images)
    path = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    )
    text = path.read_text()
    assert sampled == [run_dir / "model.keras"] and loaded == ["mnist"]
    assert "../figures/table1.png" in links(text)
    assert (tmp_path / "figures" / "table1.png").stat().st_size > 5_000
    caption = next(line for line in text.splitlines() if line.startswith("*Table 1"))
    assert "profile `quick`" in caption and "real test images" in caption
    assert "MLP VAE, z=128 (`vae_mnist_z128`, 2 epochs)" in caption
    assert "Table 1 is drawn without `model.keras` for `vae_mnist_z2`" in text
    assert "table2.png" not in text


def test_linking_existing_figures_without_redrawing(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "gan_mnist", 2)
    figures, out = tmp_path / "figures", tmp_path / "out" / "report"
    paths = report.build_figures(runs, "quick", figures, registry=REGISTRY)
    assert [p.name for p in paths] == ["fig3a_gan_mnist.png", "fig3b_gan_mnist.png"]
    (figures / "fig1a_vae_mnist_z128.png").write_bytes(b"stale, from another profile")
    text = report.build_report(runs, "quick", figures, out, make_figures=False, registry=REGISTRY)
    text = text.read_text()
    assert links(text) == ["../../figures/fig3a_gan_mnist.png", "../../figures/fig3b_gan_mnist.png"]


def test_broken_history_is_reported_not_raised(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "gan_mnist" / "quick"
    run_dir.mkdir(parents=True)
    (run_dir / "history.json").write_text("{not json")
    text = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    ).read_text()
    assert "could not be read as JSON" in text
    assert "run it with `python -m assignment4 run gan_mnist --profile quick" in text


def test_real_registry_fits_the_report(tmp_path):
    experiments = pytest.importorskip("assignment4.experiments")
    exps = [experiments.get(i) for i in experiments.EXPERIMENT_IDS]
    assert sorted(e.figure for e in exps) == list(range(1, 10))
    for exp in exps:
        assert exp.family in ("vae", "gan", "wgan") and exp.dataset in ("mnist", "cifar10")
        assert isinstance(exp.title, str) and exp.table in (1, 2, 3, 4)
    text = report.build_report(
        tmp_path / "runs", "smoke", tmp_path / "figures", tmp_path / "report"
    ).read_text()
    assert "Runs found: 0 of 9." in text
    assert text.count("run it with `python -m assignment4 run") == 9


def test_the_report_says_mode_and_posterior_collapse_in_words(tmp_path):
    runs = tmp_path / "runs"
    collapsed = metrics(80.0, 0.5) | {
        "mode_collapse": True,
        "mode_collapse_text": "mode collapse: 9 of 10 classes get under 2% of the samples.",
    }
    vae = metrics(10.0, 0.01, elbo=-95.0) | {
        "mode_collapse": False,
        "mode_collapse_text": "no mode collapse: every class gets at least 7.0% of the samples.",
        "active_units": 0,
        "latent_dim": 2,
        "active_units_text": "posterior collapse: none of the 2 latent units is active.",
    }
    write_run(runs, "dcwgan_mnist", 2, metrics=collapsed)
    write_run(runs, "vae_mnist_z2", 2, metrics=vae)
    text = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    ).read_text()
    assert "Collapse diagnostics:" in text
    assert "- `dcwgan_mnist`: mode collapse: 9 of 10 classes get under 2%" in text
    assert (
        "- `vae_mnist_z2`: no mode collapse: every class gets at least 7.0% of the samples. "
        "posterior collapse: none of the 2 latent units is active." in text
    )


def test_a_gap_within_the_spread_is_not_separable(tmp_path):
    claim = report.Claim("a beats b", "a", "b", ("fd", "kid"))
    close = {"fd": 10.0, "fd_std": 2.0, "kid": 0.010, "kid_std": 0.001}
    far = {"fd": 30.0, "fd_std": 2.0, "kid": 0.030, "kid_std": 0.001}
    verdict, detail = report.claim_verdict(claim, {"a": close, "b": close | {"fd": 12.0}})
    assert verdict == "not separable at this budget"
    assert (
        "FD 10.0 ± 2.0 (`a`) vs 12.0 ± 2.0 (`b`): the gap 2.0 ± 2.8 is within its spread" in detail
    )
    verdict, detail = report.claim_verdict(claim, {"a": close, "b": far})
    assert verdict == "supported"
    # the gap is given with its spread, to the digits the spread supports
    assert "favouring `a` by 20.0 ± 2.8;" in detail
    assert detail.endswith("favouring `a` by 0.0200 ± 0.0014")
    assert report.claim_verdict(claim, {"a": far, "b": close})[0] == "not supported"
    # without a recorded spread an FD gap of a few percent cannot decide either
    bare = {"a": {"fd": 10.0, "kid": 0.01}, "b": {"fd": 10.5, "kid": 0.02}}
    assert report.claim_verdict(claim, bare)[0] == "not separable at this budget"
    runs = tmp_path / "runs"
    write_run(runs, "wgan_mnist", 2, metrics=metrics(20.0, 0.02, fd_std=3.0, kid_std=0.01))
    write_run(runs, "dcwgan_mnist", 2, metrics=metrics(18.0, 0.015, fd_std=3.0, kid_std=0.01))
    text = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    ).read_text()
    line = next(line for line in text.splitlines() if "DC-WGAN beats WGAN" in line)
    assert line.endswith("**Not separable at this budget**.")
    assert "by more than the spread of the gap" in text  # the rule, stated


def test_a_vae_row_never_says_mode_collapse(tmp_path):
    runs = tmp_path / "runs"
    skewed = [0.0, 0.0, 0.0, 0.45, 0.0, 0.0, 0.0, 0.55, 0.0, 0.0]
    said_before = {  # as evaluate wrote it for every family
        "class_histogram": skewed,
        "min_class_fraction": 0.0,
        "mode_collapse": True,
        "mode_collapse_text": "mode collapse: 8 of 10 classes get under 2% of the samples.",
    }
    write_run(runs, "vae_mnist_z128", 2, metrics=metrics(30.0, 0.03, elbo=-95.0) | said_before)
    write_run(runs, "gan_mnist", 2, metrics=metrics(30.0, 0.03) | said_before)
    text = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    ).read_text()
    vae = next(line for line in text.splitlines() if line.startswith("- `vae_mnist_z128`:"))
    gan = next(line for line in text.splitlines() if line.startswith("- `gan_mnist`:"))
    assert "mode collapse" not in vae.lower()
    assert "classes under-represented in the samples: 8 of 10 classes" in vae
    assert gan.startswith("- `gan_mnist`: mode collapse: 8 of 10 classes")


def test_metrics_of_other_weights_are_not_scored(tmp_path):
    """metrics.json of an earlier epoch, of unknown weights, or of a run still going on."""
    runs = tmp_path / "runs"
    earlier = metrics(11.0, 0.011, elbo=-91.0) | {
        "epoch": 1,
        "weights_fingerprint": weights_of("vae_mnist_z128", 1),
    }
    write_run(runs, "vae_mnist_z128", 2, metrics=earlier)
    old_file = write_run(runs, "vae_mnist_z2", 2)
    (old_file / "metrics.json").write_text(json.dumps(metrics(33.0, 0.033, elbo=-133.0)))
    write_run(runs, "wgan_mnist", 2, planned=5, metrics=metrics(22.0, 0.022))
    text = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", registry=REGISTRY
    ).read_text()
    table = text.split(report.TEXT["metrics_heading"])[1].split("## 4")[0]
    for exp_id, fd in (("vae_mnist_z128", "11"), ("vae_mnist_z2", "33"), ("wgan_mnist", "22")):
        row = next(line for line in table.splitlines() if line.startswith(f"| `{exp_id}`"))
        assert row.count("not scored") >= 3 and f"| {fd}" not in row, row
    assert "Not scored: `vae_mnist_z128`, `vae_mnist_z2`, `wgan_mnist`" in table
    assert "three claims" not in text and "-91" not in text  # no verdict from other weights


def test_without_a_profile_the_report_shows_the_longest_finished_run_of_each(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "vae_mnist_z128", 200, metrics=metrics(5.0, 0.01, -95.0), profile="full")
    write_run(runs, "vae_mnist_z128", 80, metrics=metrics(7.0, 0.01, -98.0))
    write_run(runs, "vae_mnist_z2", 80, metrics=metrics(30.0, 0.02, -139.0))
    write_run(runs, "gan_mnist", 120, planned=200, profile="full")  # unfinished
    write_run(runs, "gan_mnist", 50, metrics=metrics(3.0, 0.01))
    text = report.build_report(
        runs, None, tmp_path / "figures", tmp_path / "report", tables=False, registry=REGISTRY
    ).read_text()
    assert text.splitlines()[0].endswith("(profile `full, quick`)")
    captions = [line for line in text.splitlines() if line.startswith("*Figure")]
    assert any(c.startswith("*Figure 1a") and "Profile `full`, 200 epochs" in c for c in captions)
    assert any(c.startswith("*Figure 2a") and "Profile `quick`, 80 epochs" in c for c in captions)
    assert any(c.startswith("*Figure 3a") and "Profile `quick`, 50 epochs" in c for c in captions)
    # a claim compares runs of one profile: z=128 is shown at full, z=2 at quick, so the claim
    # is checked at the quick setting of both (z=128's quick run: FD 7 against 30)
    claim = next(line for line in text.splitlines() if line.startswith("- **") and "z=" in line)
    assert "(at the quick setting of both: `vae_mnist_z128` is shown at `full`):" in claim
    assert "FD 7" in claim and "FD 5" not in claim and "**Supported**" in claim
    # without a quick setting of the full run (no quick run, no checkpoint there): not checked
    shutil.rmtree(runs / "vae_mnist_z128" / "quick")
    text = report.build_report(
        runs, None, tmp_path / "figures", tmp_path / "report", tables=False, registry=REGISTRY
    ).read_text()
    claim = next(line for line in text.splitlines() if line.startswith("- **") and "z=" in line)
    assert "a claim compares runs of one profile" in claim and "**Not checked**" in claim
    # asked for one profile, the report shows that profile's runs, and the claim compares them
    write_run(runs, "vae_mnist_z128", 80, metrics=metrics(7.0, 0.01, -98.0))
    quick = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", tables=False, registry=REGISTRY
    ).read_text()
    claim = next(line for line in quick.splitlines() if line.startswith("- **") and "z=" in line)
    assert "(profile `quick`):" in claim and "FD 7" in claim and "Not checked" not in claim


def test_quick_against_full_from_quick_runs_or_the_full_runs_checkpoints(tmp_path):
    """Each full run against its quick setting; the claims at both settings."""
    runs = tmp_path / "runs"
    shares = {"class_histogram": [50, 150] + [100] * 8}
    z128 = write_run(runs, "vae_mnist_z128", 5, metrics=metrics(10.0, 0.01, -95.0), profile="full")
    write_checkpoint(z128, 2, metrics(40.0, 0.04, -120.0) | shares)  # the quick epochs
    write_run(runs, "vae_mnist_z2", 5, metrics=metrics(30.0, 0.03, -130.0), profile="full")
    write_run(runs, "vae_mnist_z2", 2, metrics=metrics(20.0, 0.02, -140.0))  # a quick run
    gan = write_run(runs, "gan_mnist", 5, metrics=metrics(3.0, 0.01), profile="full")
    write_checkpoint(gan, 2)  # kept, never scored
    write_run(runs, "wgan_mnist", 2, metrics=metrics(9.0, 0.01))  # shown at quick: no row
    write_run(runs, "dcwgan_mnist", 5, metrics=metrics(4.0, 0.01), profile="full")  # no ckpt
    text = report.build_report(
        runs, None, tmp_path / "figures", tmp_path / "report", tables=False, registry=REGISTRY
    ).read_text()
    section = text.split(report.TEXT["settings_heading"])[1].split("## 4")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert [r.split(" | ")[:3] for r in rows] == [
        ["| `vae_mnist_z128`", "full run at epoch 2", "2"],
        ["| `vae_mnist_z128`", "full run", "5"],
        ["| `vae_mnist_z2`", "quick run", "2"],
        ["| `vae_mnist_z2`", "full run", "5"],
        ["| `gan_mnist`", "full run at epoch 2", "2"],
        ["| `gan_mnist`", "full run", "5"],
        ["| `dcwgan_mnist`", "quick run", "2"],
        ["| `dcwgan_mnist`", "full run", "5"],
    ]
    assert "| 40.00 ± 0.50 | 0.0400 ± 0.0020 | -120 | 5.0%-15.0% |" in rows[0]
    assert "not scored (`python -m assignment4 evaluate gan_mnist --profile full" in rows[4]
    assert rows[4].split("`")[3].endswith(" --epoch 2")
    assert "not run (`python -m assignment4 run dcwgan_mnist --profile quick" in rows[6]
    # z=128 beats z=2 at full (FD 10 vs 30) but not at the quick setting (40 vs 20)
    claim = next(line for line in section.splitlines() if line.startswith("- **"))
    assert "quick setting Not supported, full Supported: **they differ**" in claim
    assert len([line for line in section.splitlines() if line.startswith("- **")]) == 1
    # the report of one profile has no such section
    quick = report.build_report(
        runs, "quick", tmp_path / "figures", tmp_path / "report", tables=False, registry=REGISTRY
    ).read_text()
    assert report.TEXT["settings_heading"] not in quick
