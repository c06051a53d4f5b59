"""The sample-quality metrics: closed forms, unbiasedness, limits, and their plumbing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assignment4 import evaluation
from assignment4.errors import RunError

# --- Fréchet distance ------------------------------------------------------------------------


def _closed_form_diagonal(mu1, var1, mu2, var2) -> float:
    """FD of two Gaussians with diagonal covariances, worked out by hand:
    |mu1 - mu2|^2 + sum(var1 + var2 - 2 sqrt(var1 var2)) = |mu1 - mu2|^2 + sum((sd1 - sd2)^2).
    """
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))


def test_frechet_distance_of_identical_features_is_zero():
    a = np.random.default_rng(0).standard_normal((2000, 16)) * 3 + 1
    # Tolerance: round-off of an eigen-decomposition of a 16x16 float64 matrix of trace ~150.
    assert evaluation.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert evaluation.frechet_distance(a, a.copy()) >= 0.0


def test_frechet_distance_from_moments_matches_the_closed_form_exactly():
    mu1, var1 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 4.0, 0.25])
    mu2, var2 = np.array([1.0, 1.0, 0.0]), np.array([9.0, 1.0, 0.25])
    # By hand: |mu1-mu2|^2 = 1 + 0 + 4 = 5; sum (sd1-sd2)^2 = (1-3)^2 + (2-1)^2 + 0 = 5.
    expected = _closed_form_diagonal(mu1, var1, mu2, var2)
    assert expected == 10.0
    got = evaluation.frechet_distance_from_moments(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_from_moments_is_rotation_invariant_for_full_covariances():
    rng = np.random.default_rng(1)
    mu1, var1 = rng.normal(size=6), rng.uniform(0.1, 3.0, 6)
    mu2, var2 = rng.normal(size=6), rng.uniform(0.1, 3.0, 6)
    q, _ = np.linalg.qr(
        rng.normal(size=(6, 6))
    )  # a random rotation: covariances no longer diagonal
    got = evaluation.frechet_distance_from_moments(
        q @ mu1, q @ np.diag(var1) @ q.T, q @ mu2, q @ np.diag(var2) @ q.T
    )
    assert got == pytest.approx(_closed_form_diagonal(mu1, var1, mu2, var2), rel=1e-9)


def test_frechet_distance_survives_singular_covariances():
    rng = np.random.default_rng(2)
    a = np.zeros((500, 8))
    a[:, :3] = rng.normal(size=(500, 3))  # rank 3 of 8: sqrtm-based code returns NaN or complex
    b = a + 1.0
    d = evaluation.frechet_distance(a, b)
    assert np.isfinite(d)
    assert d == pytest.approx(8.0, rel=1e-9)  # a pure shift by 1 in 8 dimensions


def test_frechet_distance_of_large_gaussian_samples_is_close_to_the_closed_form():
    rng = np.random.default_rng(3)
    d, n = 8, 100_000
    mu1, var1 = np.zeros(d), np.linspace(0.5, 2.0, d)
    mu2, var2 = np.full(d, 0.5), np.linspace(2.0, 0.5, d)
    a = mu1 + rng.standard_normal((n, d)) * np.sqrt(var1)
    b = mu2 + rng.standard_normal((n, d)) * np.sqrt(var2)
    expected = _closed_form_diagonal(mu1, var1, mu2, var2)  # = 2 + 1.19... = 3.19...
    # Sampling error of the moments at n = 1e5 is ~1e-2 here; 2% leaves room, 10% would not
    # catch a missing factor or a dropped trace term.
    assert evaluation.frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="widths"):
        evaluation.frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))


# --- KID --------------------------------------------------------------------------------------


def test_mmd2_unbiased_matches_the_definition_term_by_term():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert evaluation.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_of_identical_feature_sets_is_about_zero():
    a = np.random.default_rng(5).standard_normal((1000, 16))
    shifted = evaluation.kid(a, a + 0.5, subsets=20, subset_size=500)
    same = evaluation.kid(a, a, subsets=20, subset_size=500)
    # Subsets drawn from one pool share points, which biases the value slightly negative
    # (about -0.016 here); 3% of the value for a 0.5 shift (~1.0) is the tolerance.
    assert abs(same) < 0.03 * shifted
    assert shifted > 0.5


def test_kid_is_unbiased_for_two_samples_of_one_distribution_and_positive_when_shifted():
    rng = np.random.default_rng(6)
    trials = 200
    same = np.array(
        [
            evaluation.kid(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), subsets=1)
            for _ in range(trials)
        ]
    )
    stderr = same.std() / np.sqrt(trials)
    # Unbiased: the mean over trials is 0 within 4 standard errors, though single values
    # are often negative (a biased MMD^2 would be positive every time).
    assert abs(same.mean()) < 4 * stderr
    assert (same < 0).any()
    shifted = np.array(
        [
            evaluation.kid(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.3, subsets=1)
            for _ in range(50)
        ]
    )
    assert shifted.mean() > 20 * stderr
    assert shifted.mean() > 10 * shifted.std() / np.sqrt(50)


def test_kid_returns_std_and_is_reproducible():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(400, 4)) + 0.2
    mean, std = evaluation.kid(a, b, subsets=20, subset_size=100, return_std=True)
    assert std > 0
    assert mean == evaluation.kid(a, b, subsets=20, subset_size=100)


# --- classifier Inception Score ----------------------------------------------------------------


def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes():
    probs = np.eye(10)[np.arange(1000) % 10]
    assert evaluation.classifier_inception_score(probs) == pytest.approx(10.0, rel=1e-9)


def test_inception_score_of_identical_predictions_is_one():
    p = np.random.default_rng(8).dirichlet(np.ones(10))
    assert evaluation.classifier_inception_score(np.tile(p, (1000, 1))) == pytest.approx(1.0)
    # Confident but always the same class: still 1 (no diversity).
    assert evaluation.classifier_inception_score(np.eye(10)[np.zeros(1000, int)]) == pytest.approx(
        1.0
    )


def test_inception_score_of_uniform_predictions_is_one_and_mixed_is_between():
    assert evaluation.classifier_inception_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)
    probs = np.random.default_rng(9).dirichlet(np.full(10, 0.3), size=1000)
    score, std = evaluation.classifier_inception_score(probs, return_std=True)
    assert 1.0 < score < 10.0
    assert std > 0


# --- plumbing --------------------------------------------------------------------------------


def test_features_rejects_images_that_are_not_uint8_in_the_data_set_layout():
    with pytest.raises(ValueError, match="uint8"):
        evaluation.features("mnist", np.zeros((4, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        evaluation.features("mnist", np.zeros((4, 32, 32, 3), np.uint8))


def test_sample_metrics_on_mnist_real_images_match_the_floor_and_noise_is_far(tmp_path):
    from assignment4 import data

    (x_train, _), _ = data.load("mnist")
    n = 300  # small, so that the KID subsets (n x n kernels) stay fast
    # Another random draw than the floor's, from the same distribution.
    real = x_train[np.random.default_rng(1).choice(len(x_train), n, replace=False)]
    noise = np.random.default_rng(10).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    m_real = evaluation.sample_metrics(evaluation.reference("mnist"), real, cache_dir=tmp_path)
    m_noise = evaluation.sample_metrics(evaluation.reference("mnist"), noise, cache_dir=tmp_path)
    assert set(evaluation.METRIC_KEYS) <= set(m_real)
    assert m_real["n_samples"] == n
    assert m_real["classifier_test_accuracy"] >= 0.99
    # Real images land near the real-vs-real floor (five draws of 300 gave 0.5-1.4x of it);
    # uniform noise lands orders of magnitude beyond it.
    assert m_real["fd"] < 3 * m_real["fd_real"]
    assert m_noise["fd"] > 100 * m_noise["fd_real"]
    assert m_noise["kid"] > 100 * abs(m_noise["kid_real"])
    assert m_real["classifier_is"] > 7.0
    assert m_noise["classifier_is"] < 2.0
    # The floor went to the disk cache, keyed by data set, n, seed and weights hash.
    cached = json.loads((tmp_path / evaluation.REAL_FLOOR_FILE).read_text())
    (key,) = cached
    assert key.startswith(f"mnist/n={n}/seed=0/weights=")
    assert cached[key]["fd_real"] == pytest.approx(m_real["fd_real"])


def test_real_floor_reads_its_disk_cache(tmp_path):
    evaluation._REAL_FLOOR.clear()
    first = evaluation.real_floor(evaluation.reference("mnist"), 200, cache_dir=tmp_path)
    path = tmp_path / evaluation.REAL_FLOOR_FILE
    stored = json.loads(path.read_text())
    (key,) = stored
    stored[key]["fd_real"] = -1.0  # a marker: only a cache hit can return it
    path.write_text(json.dumps(stored))
    evaluation._REAL_FLOOR.clear()
    assert evaluation.real_floor(evaluation.reference("mnist"), 200, tmp_path)["fd_real"] == -1.0
    assert first["fd_real"] > 0
    evaluation._REAL_FLOOR.clear()


def test_evaluate_run_without_a_run_names_the_path_and_the_command(tmp_path):
    with pytest.raises(RunError) as info:
        evaluation.evaluate_run("vae_mnist_z2", "smoke", runs=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "vae_mnist_z2" / "smoke") in message
    assert "python -m assignment4 run vae_mnist_z2 --profile smoke" in message
    (tmp_path / "vae_mnist_z2" / "smoke").mkdir(parents=True)
    with pytest.raises(RunError, match="model.keras"):
        evaluation.evaluate_run("vae_mnist_z2", "smoke", runs=tmp_path)


def test_format_metrics_table_says_these_are_not_inception_numbers():
    rows = [
        {
            "id": "vae_mnist_z2",
            "fd": 12.3456,
            "kid": 0.01234,
            "n_samples": 10000,
            "test_elbo": -140.2,
        },
        {"id": "gan_mnist", "fd": 3.2, "fd_real": 0.5},
    ]
    table = evaluation.format_metrics_table(rows)
    lines = table.splitlines()
    assert "NOT Inception" in lines[0]
    assert len(lines) == 5  # title, header, rule, two rows
    assert "vae_mnist_z2" in lines[3] and "12.35" in lines[3] and "-140.20" in lines[3]
    assert "gan_mnist" in lines[4] and " - " in lines[4]  # missing values print as '-'


# --- collapse diagnostics --------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_test_probs():
    """The committed classifier's softmax on the real MNIST test set, and the labels."""
    from assignment4 import data

    _, (x_test, y_test) = data.load("mnist")
    _, probs = evaluation.features("mnist", x_test[:2000])
    return probs, y_test[:2000]


def test_real_test_images_of_one_digit_are_flagged_as_mode_collapse(mnist_test_probs):
    probs, labels = mnist_test_probs
    ones = evaluation.mode_collapse(probs[labels == 1])
    assert ones["mode_collapse"] is True
    assert ones["class_histogram"][1] > 0.98 and ones["min_class_fraction"] == 0.0
    text = ones["mode_collapse_text"]
    assert text.startswith("mode collapse: 9 of 10 classes get under 2% of the samples")
    assert "classifier IS 1.0" in text and "the most frequent class, 1" in text


def test_the_balanced_test_set_is_not_flagged(mnist_test_probs):
    probs, _ = mnist_test_probs
    verdict = evaluation.mode_collapse(probs)
    assert verdict["mode_collapse"] is False
    assert verdict["min_class_fraction"] > 0.08
    assert sum(verdict["class_histogram"]) == pytest.approx(1.0, abs=1e-3)
    assert verdict["mode_collapse_text"].startswith("no mode collapse: every class gets")


def test_two_digits_only_are_flagged_by_the_missing_classes(mnist_test_probs):
    probs, labels = mnist_test_probs
    verdict = evaluation.mode_collapse(probs[(labels == 3) | (labels == 7)])
    assert verdict["mode_collapse"] is True
    assert "8 of 10 classes" in verdict["mode_collapse_text"]
    assert "classifier IS" not in verdict["mode_collapse_text"]  # IS is about 2: not the reason


def test_a_vae_histogram_reads_as_classes_under_represented_never_as_mode_collapse(
    mnist_test_probs,
):
    """The same skewed histogram: mode collapse for a GAN, a class imbalance for a VAE."""
    probs, labels = mnist_test_probs
    skewed = probs[(labels == 3) | (labels == 7)]
    gan = evaluation.mode_collapse(skewed, family="gan")
    vae = evaluation.mode_collapse(skewed, family="vae")
    assert gan["mode_collapse"] is True and gan["mode_collapse_text"].startswith("mode collapse")
    assert vae["classes_under_represented"] is True and "mode_collapse" not in vae
    assert vae["class_balance_text"].startswith("classes under-represented in the samples: 8 of")
    balanced = evaluation.mode_collapse(probs, family="vae")["class_balance_text"]
    for text in (vae["class_balance_text"], balanced):
        assert "mode collapse" not in text.lower()
    # an older VAE file that called it mode collapse is said anew from its numbers
    old = gan | {"classifier_is": evaluation.classifier_inception_score(skewed)}
    assert "mode collapse" not in evaluation.diagnosis(old, "vae").lower()


def test_fd_and_kid_come_with_their_spread():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(600, 8)), rng.normal(0.3, 1.0, size=(600, 8))
    fd_std = evaluation.frechet_distance_std(a, b)
    assert 0 < fd_std < evaluation.frechet_distance(a, b)
    assert fd_std == evaluation.frechet_distance_std(a, b)  # seeded: reproducible
    row = {"fd": 1.25, "fd_std": 0.05, "kid": 0.0123, "kid_std": 0.002}
    table = evaluation.format_metrics_table([row])
    assert "1.250 ± 0.050" in table and "0.0123 ± 0.0020" in table


def test_active_units_count_the_latent_dimensions_above_the_threshold():
    verdict = evaluation.active_units(np.array([0.0, 0.005, 0.02, 3.1]))
    assert verdict["active_units"] == 2 and verdict["latent_dim"] == 4
    assert verdict["posterior_collapse"] is False
    assert verdict["active_units_text"].startswith("2 of 4 latent units active")
    collapsed = evaluation.active_units(np.full(8, 1e-4))
    assert collapsed["posterior_collapse"] is True
    assert collapsed["active_units_text"].startswith("posterior collapse: none of the 8")


def test_latent_unit_kl_of_a_trained_vae_matches_the_models_own_kl(smoke_runs):
    """Summed over dimensions, the per-unit KL is the test KL that the model itself logs."""
    from assignment4 import artifacts, data

    model = artifacts.load_run_model("vae_mnist_z2", "smoke", smoke_runs)
    _, (x_test, _) = data.load("mnist")
    x = (x_test[:500].astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    unit_kl = evaluation.latent_unit_kl(model, x, batch_size=200)
    assert unit_kl.shape == (2,) and np.all(unit_kl >= 0)
    logged = model.evaluate(x, batch_size=500, verbose=0, return_dict=True)["kl"]
    assert unit_kl.sum() == pytest.approx(logged, rel=1e-3)


def test_evaluate_writes_the_diagnostics_in_words(smoke_runs, tmp_path, capsys):
    import shutil

    from assignment4.__main__ import main

    shutil.copytree(smoke_runs / "vae_mnist_z2", tmp_path / "vae_mnist_z2")
    rc = main(["evaluate", "vae_mnist_z2", "--profile", "smoke", "--runs", str(tmp_path)]
              + ["-n", "200"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "vae_mnist_z2" / "smoke" / "metrics.json").read_text())
    assert len(metrics["class_histogram"]) == 10
    assert isinstance(metrics["classes_under_represented"], bool)  # a VAE: no mode collapse
    assert metrics["latent_dim"] == 2 and 0 <= metrics["active_units"] <= 2
    assert "latent units" in metrics["active_units_text"]
    assert "class" in metrics["class_balance_text"] and "mode_collapse_text" not in metrics
    assert "Collapse diagnostics:" in out and metrics["class_balance_text"] in out
    header = next(line for line in out.splitlines() if line.startswith("run "))
    assert "min class" in header and "active z" in header and "collapse" in header
    assert f"{metrics['active_units']}/2" in out


def test_evaluate_scores_the_trained_generator_beside_the_average(
    smoke_runs, tmp_path, capsys, monkeypatch
):
    """A GAN that samples from a generator average: --trained-generator scores G itself into
    its own file, and a GAN without an average is told that it has none."""
    import dataclasses
    import shutil

    from assignment4 import experiments
    from assignment4.__main__ import main

    exp = experiments.get("gan_mnist")
    with_average = dataclasses.replace(exp, model={**exp.model, "generator_ema": 0.9})
    monkeypatch.setitem(experiments.EXPERIMENTS, "gan_mnist", with_average)
    runs = ["--profile", "smoke", "--runs", str(tmp_path)]
    assert main(["run", "gan_mnist", *runs]) == 0
    assert main(["evaluate", "gan_mnist", *runs, "-n", "200"]) == 0
    assert main(["evaluate", "gan_mnist", *runs, "-n", "200", "--trained-generator"]) == 0
    folder = tmp_path / "gan_mnist" / "smoke"
    average = json.loads((folder / "metrics.json").read_text())
    trained = json.loads((folder / "metrics_trained_generator.json").read_text())
    assert (average["generator"], trained["generator"]) == ("EMA 0.9", "trained")
    assert average["fd"] != trained["fd"]  # two different networks drew the samples

    shutil.copytree(smoke_runs / "wgan_mnist", tmp_path / "wgan_mnist")
    capsys.readouterr()
    assert main(["evaluate", "wgan_mnist", *runs, "-n", "200", "--trained-generator"]) != 0
    assert "has no generator average" in capsys.readouterr().err


def test_extending_a_scored_run_retires_its_metrics_from_the_report(smoke_runs, tmp_path, capsys):
    """Score a run, extend it by one epoch, rebuild the report: the old numbers are kept as
    their epoch's and never shown as the extended model's; `status` says it is not scored."""
    import shutil

    from assignment4 import experiments
    from assignment4.__main__ import main
    from assignment4.reporting import report
    from assignment4.reporting import runs as runs_lib

    shutil.copytree(smoke_runs / "wgan_mnist", tmp_path / "wgan_mnist")
    folder = tmp_path / "wgan_mnist" / "smoke"
    runs = ["--profile", "smoke", "--runs", str(tmp_path)]
    done = json.loads((folder / "run.json").read_text())["epochs"]
    assert main(["evaluate", "wgan_mnist", *runs, "-n", "200"]) == 0
    scored = json.loads((folder / "metrics.json").read_text())
    assert main(["status", *runs]) == 0
    assert f"FD {scored['fd']:.4g}" in capsys.readouterr().out

    assert main(["run", "wgan_mnist", *runs, "--epochs", str(done + 1)]) == 0
    retired = folder / f"metrics_epoch_{done:03d}.json"
    assert not (folder / "metrics.json").exists() and retired.exists()
    assert json.loads(retired.read_text()) == scored  # kept as it was, under its epoch
    run_info = json.loads((folder / "run.json").read_text())
    side = json.loads((folder / "checkpoints" / f"epoch_{done:03d}.json").read_text())
    assert scored["epoch"] == done and scored["weights_fingerprint"] == side["weights_fingerprint"]
    assert run_info["epochs"] == done + 1
    assert run_info["weights_fingerprint"] not in (None, scored["weights_fingerprint"])

    # an old-style metrics.json (no fingerprint) beside the extended model is not its either
    stale = {k: v for k, v in scored.items() if k not in ("epoch", "weights_fingerprint")}
    (folder / "metrics.json").write_text(json.dumps(stale))
    text = report.build_report(
        tmp_path, "smoke", tmp_path / "figures", tmp_path / "report", tables=False
    ).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `wgan_mnist`"))
    assert "not scored" in row and report.fmt(scored["fd"]) not in row
    assert "Not scored: `wgan_mnist`" in text
    capsys.readouterr()
    assert main(["status", *runs]) == 0
    status_row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("wgan_mnist"))
    assert "not scored" in status_row and f"FD {scored['fd']:.4g}" not in status_row
    # the retired numbers are a point of the quality curve, at their own epoch
    info = runs_lib.load_run(experiments.get("wgan_mnist"), tmp_path, "smoke")
    assert [p[0] for p in runs_lib.quality_points(info)] == [done]
