"""Never lose a run: extend instead of delete, checkpoints, one writer, damaged files, SIGTERM."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assignment4 import artifacts, evaluation, experiments, training
from assignment4.__main__ import main
from assignment4.errors import RunError
from assignment4.fileio import write_json
from assignment4.training.runstate import RunConflict, checkpoint_epochs

REPO = Path(__file__).resolve().parent.parent
EXP = "vae_mnist_z2"
STEPS = 5  # smoke: 640 images in batches of 128


def only_the_device_line(out: str) -> bool:
    """A refused command prints nothing on stdout but the start-up line naming the devices."""
    lines = out.splitlines()
    return len(lines) <= 1 and all(line.startswith("TensorFlow ") for line in lines)


def read(path):
    return json.loads(Path(path).read_text())


def copy_run(smoke_runs, dest, exp_id=EXP):
    shutil.copytree(smoke_runs / exp_id, dest / exp_id)
    return dest / exp_id / "smoke"


def stamps(folder):
    """Every file of a run folder with its modification time and size."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_main(capsys, *argv):
    try:
        rc = main(list(argv))
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the package catches it."""


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory):
    """A runs root with vae_mnist_z2 (smoke) killed after epoch 2 of 3: backup of epoch 2."""
    root = tmp_path_factory.mktemp("unfinished")
    original = training.StopOnSignal.on_epoch_end

    def die_after_second_epoch(self, epoch, logs=None):
        if epoch == 1:
            raise Killed

    training.StopOnSignal.on_epoch_end = die_after_second_epoch
    try:
        with pytest.raises(Killed):
            training.run_experiment(
                experiments.get(EXP), profile="smoke", runs=root, epochs=3, verbose=0
            )
    finally:
        training.StopOnSignal.on_epoch_end = original
    folder = root / EXP / "smoke"
    assert read(folder / "backup" / "training_metadata.json")["epoch"] == 2
    (root / EXP / "smoke.lock").unlink(missing_ok=True)  # Killed released it; a kill would not
    return root


def copy_unfinished(unfinished, dest):
    shutil.copytree(unfinished / EXP, dest / EXP)
    return dest / EXP / "smoke"


# --- 1. nothing deleted without --restart --------------------------------------------------------


def test_more_epochs_continue_a_finished_run_from_its_final_state(smoke_runs, tmp_path, capsys):
    folder = copy_run(smoke_runs, tmp_path)
    before = read(folder / "history.json")
    grid_2 = (folder / "samples" / "epoch_002.png").read_bytes()
    training.run_experiment(experiments.get(EXP), profile="smoke", runs=tmp_path, epochs=3)
    out = capsys.readouterr().out
    assert "Extending vae_mnist_z2 (smoke) from epoch 2 to 3" in out, out
    assert "Training vae_mnist_z2" not in out
    history = read(folder / "history.json")
    assert {k: len(v) for k, v in history.items()} == dict.fromkeys(history, 3)
    assert history["loss"][:2] == before["loss"]  # the first two epochs are kept as they were
    assert (folder / "samples" / "epoch_002.png").read_bytes() == grid_2
    assert (folder / "samples" / "epoch_003.png").exists()
    assert checkpoint_epochs(folder) == [1, 2, 3]
    model = artifacts.load_run_model(EXP, "smoke", tmp_path)
    assert int(model.optimizer.iterations) == 3 * STEPS  # the optimizer went on, not restarted
    # the sampling noise went on too: its counter is 3 epochs' worth, not 1
    counter = [read(folder / "checkpoints" / f"epoch_00{e}.json")["seed_states"][0][1]
               for e in (1, 3)]  # fmt: skip
    assert counter[1] == 3 * counter[0] > 0
    info = read(folder / "run.json")
    assert (info["status"], info["epochs"], info["epochs_planned"]) == ("complete", 3, 3)
    assert info["attempts"] == 2 and not (folder / "backup").exists()


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--epochs", "1"], "already has 2 epochs, more than the 1 asked for"),
        (["--seed", "1"], "was trained with seed 0, this call asks for 1"),
    ],
)
def test_fewer_epochs_or_another_seed_exit_2_and_leave_the_run_untouched(
    smoke_runs, tmp_path, capsys, argv, says
):
    folder = copy_run(smoke_runs, tmp_path)
    before = stamps(folder)
    rc, out, err = run_main(
        capsys, "run", EXP, "--profile", "smoke", "--runs", str(tmp_path), *argv
    )
    assert rc == 2 and only_the_device_line(out)
    assert err.count("\n") == 1 and says in err and "--restart" in err and str(folder) in err
    assert stamps(folder) == before
    with pytest.raises(RunConflict, match="--restart"):  # the notebooks' entry point too
        experiments.run(EXP, profile="smoke", runs=tmp_path, seed=int(argv[1]) if
                        argv[0] == "--seed" else 0, epochs=1 if argv[0] == "--epochs" else None,
                        verbose=0)  # fmt: skip
    assert stamps(folder) == before


# --- 2. checkpoints -------------------------------------------------------------------------------


def test_sample_and_evaluate_an_earlier_epoch_from_its_checkpoint(smoke_runs, tmp_path, capsys):
    runs = str(smoke_runs)
    assert checkpoint_epochs(smoke_runs / EXP / "smoke") == [1, 2]
    paths = {e: tmp_path / f"e{e}.npy" for e in (1, 2)}
    for epoch, path in paths.items():
        rc, out, err = run_main(capsys, "sample", EXP, "--profile", "smoke", "--runs", runs,
                                "-n", "16", "--out", str(path), "--epoch", str(epoch))  # fmt: skip
        assert rc == 0 and f"of epoch {epoch}" in out, err
    final = tmp_path / "final.npy"
    assert run_main(capsys, "sample", EXP, "--profile", "smoke", "--runs", runs, "-n", "16",
                    "--out", str(final))[0] == 0  # fmt: skip
    # the last checkpoint is the final model; epoch 1 is another one
    np.testing.assert_array_equal(np.load(paths[2]), np.load(final))
    assert not np.array_equal(np.load(paths[1]), np.load(final))

    rc, _, err = run_main(capsys, "sample", EXP, "--profile", "smoke", "--runs", runs, "-n", "4",
                          "--out", str(final), "--epoch", "7")  # fmt: skip
    assert rc == 2 and "no checkpoint of epoch 7 (checkpoints: 1, 2)" in err

    folder = copy_run(smoke_runs, tmp_path / "runs")
    metrics = evaluation.evaluate_run(EXP, "smoke", runs=tmp_path / "runs", n=200, epoch=1)
    assert read(folder / "metrics_epoch_001.json")["epoch"] == 1 and "fd" in metrics
    assert not (folder / "metrics.json").exists()


def test_sample_defaults_to_seed_0(smoke_runs, tmp_path, capsys):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    for path in (a, b):
        assert run_main(capsys, "sample", EXP, "--profile", "smoke", "--runs", str(smoke_runs),
                        "-n", "8", "--out", str(path))[0] == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(a), np.load(b))


# --- 3 and 5. one writer; SIGTERM -----------------------------------------------------------------


def test_sigterm_stops_cleanly_a_second_writer_is_refused_and_the_run_resumes(
    tmp_path, child_env, capsys
):
    runs = tmp_path / "runs"
    folder = runs / EXP / "smoke"
    command = [sys.executable, "-m", "assignment4", "run", EXP, "--profile", "smoke"]
    command += ["--epochs", "40", "--runs", str(runs)]
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        first = subprocess.Popen(command, cwd=REPO, env=child_env, stdout=out,
                                 stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        meta = folder / "backup" / "training_metadata.json"
        while not (meta.exists() and read(meta)["epoch"] >= 1):
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        rc, _, err = run_main(capsys, "run", EXP, "--profile", "smoke", "--epochs", "40",
                              "--runs", str(runs))  # fmt: skip
        assert rc == 2 and f"is being trained by process {first.pid}" in err, err
        assert err.count("\n") == 1
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    output = log.read_text()
    assert first.returncode == 128 + signal.SIGTERM, output
    assert "Stopped by SIGTERM. Finished epochs are saved; run the same command" in output
    assert "Traceback" not in output
    assert not (runs / EXP / "smoke.lock").exists()
    stopped_at = read(folder / "backup" / "training_metadata.json")["epoch"]
    assert 1 <= stopped_at < 40

    rc, out, err = run_main(capsys, "run", EXP, "--profile", "smoke", "--epochs", "40",
                            "--runs", str(runs))  # fmt: skip
    assert rc == 0, err
    assert f"Resuming vae_mnist_z2 (smoke) after epoch {stopped_at}/40" in out
    history = read(folder / "history.json")
    assert {k: len(v) for k, v in history.items()} == dict.fromkeys(history, 40)


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(smoke_runs, tmp_path, capsys):
    folder = copy_run(smoke_runs, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / EXP / "smoke.lock"
    lock.write_text(json.dumps({"pid": dead.pid}))
    rc, out, _ = run_main(capsys, "run", EXP, "--profile", "smoke", "--runs", str(tmp_path))
    assert rc == 0
    assert f"Note: taking over {lock}, left by process {dead.pid}, which is no longer" in out
    assert "already complete" in out and not lock.exists() and folder.exists()


def test_a_lock_of_a_live_process_refuses_the_run(smoke_runs, tmp_path, capsys):
    copy_run(smoke_runs, tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / EXP / "smoke.lock"
        lock.write_text(json.dumps({"pid": live.pid}))
        rc, out, err = run_main(capsys, "run", EXP, "--profile", "smoke", "--runs", str(tmp_path))
    finally:
        live.kill()
        live.wait()
    assert rc == 2 and only_the_device_line(out) and err.count("\n") == 1
    assert f"is being trained by process {live.pid} (" in err and "time.sleep" in err
    assert lock.exists()  # not ours to remove


def test_status_tells_a_stopped_run_from_one_that_is_training(smoke_runs, tmp_path, capsys):
    folder = copy_run(smoke_runs, tmp_path)
    info = read(folder / "run.json")
    write_json(info | {"status": "running", "epochs": 1}, folder / "run.json")
    lock = tmp_path / EXP / "smoke.lock"

    def state():
        rc, out, _ = run_main(capsys, "status", "--profile", "smoke", "--runs", str(tmp_path))
        assert rc == 0
        return next(line.split()[1] for line in out.splitlines() if line.startswith(EXP))

    assert state() == "stopped"  # Ctrl-C or a crash: run.json says running, no process does
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid}))
    assert state() == "stopped"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": live.pid}))
        assert state() == "running"
    finally:
        live.kill()
        live.wait()


# --- 4. damaged files ---------------------------------------------------------------------------


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garble(path):
    path.write_text('{"epoch": 2, "weights"')


@pytest.mark.parametrize(
    "damage, target, says, advice",
    [
        (truncate, "backup/epoch_0002.weights.h5", "is damaged", "to resume from the checkpoint"),
        (garble, "backup/training_metadata.json", "could not be read as JSON",
         "to resume from the checkpoint of epoch 2"),
        (garble, "history.json", "could not be read as JSON", "--restart"),
        (garble, "run.json", "could not be read as JSON", "--restart"),
    ],
)  # fmt: skip
def test_a_damaged_run_file_gets_one_line_and_exit_2(
    unfinished, tmp_path, capsys, damage, target, says, advice
):
    folder = copy_unfinished(unfinished, tmp_path)
    damage(folder / target)
    before = stamps(folder)
    rc, out, err = run_main(capsys, "run", EXP, "--profile", "smoke", "--epochs", "3",
                            "--runs", str(tmp_path))  # fmt: skip
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {folder / target} ") and says in err and advice in err, err
    assert stamps(folder) == before  # nothing else lost
    if target.startswith("backup/"):  # the advice works: resume from the last checkpoint
        shutil.rmtree(folder / "backup")
        rc, out, err = run_main(capsys, "run", EXP, "--profile", "smoke", "--epochs", "3",
                                "--runs", str(tmp_path))  # fmt: skip
        assert rc == 0 and "Resuming vae_mnist_z2 (smoke) after epoch 2/3" in out, err


def test_a_damaged_checkpoint_or_model_gets_one_line_and_exit_2(smoke_runs, tmp_path, capsys):
    folder = copy_run(smoke_runs, tmp_path)
    truncate(folder / "checkpoints" / "epoch_001.weights.h5")
    rc, _, err = run_main(capsys, "sample", EXP, "--profile", "smoke", "--runs", str(tmp_path),
                          "-n", "4", "--out", str(tmp_path / "s.npy"), "--epoch", "1")  # fmt: skip
    assert rc == 2 and err.count("\n") == 1
    assert f"{folder / 'checkpoints' / 'epoch_001.weights.h5'} is damaged" in err
    assert "Use another epoch (2)" in err

    truncate(folder / "model.keras")
    rc, _, err = run_main(capsys, "sample", EXP, "--profile", "smoke", "--runs", str(tmp_path),
                          "-n", "4", "--out", str(tmp_path / "s.npy"))  # fmt: skip
    assert rc == 2 and err.count("\n") == 1
    assert f"{folder / 'model.keras'} is damaged" in err
    assert "use a checkpoint with --epoch 2" in err and "--restart" in err


def test_a_write_that_fails_half_way_keeps_the_previous_file(unfinished, tmp_path, monkeypatch,
                                                             capsys):  # fmt: skip
    folder = copy_unfinished(unfinished, tmp_path)
    history = (folder / "history.json").read_bytes()
    write_text = pathlib.Path.write_text

    def disk_full(self, text, *args, **kwargs):
        if self.name.startswith(".history.json."):
            write_text(self, text[: len(text) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", disk_full)
    rc, _, err = run_main(capsys, "run", EXP, "--profile", "smoke", "--epochs", "3",
                          "--runs", str(tmp_path))  # fmt: skip
    assert rc == 2 and err.count("\n") == 1
    assert f"Could not write {folder / 'history.json'} (No space left on device); the " \
           "previous history.json is intact" in err  # fmt: skip
    assert (folder / "history.json").read_bytes() == history
    assert not list(folder.glob(".history.json.*"))  # no half-written temporary left
    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    rc, _, err = run_main(capsys, "run", EXP, "--profile", "smoke", "--epochs", "3",
                            "--runs", str(tmp_path))  # fmt: skip
    assert rc == 0, err
    assert {k: len(v) for k, v in read(folder / "history.json").items()} == dict.fromkeys(
        read(folder / "history.json"), 3
    )


def test_load_run_model_epoch_of_a_missing_run_names_the_command(tmp_path):
    with pytest.raises(RunError, match="Train it first: python -m assignment4 run gan_mnist"):
        artifacts.load_run_model("gan_mnist", "smoke", tmp_path, epoch=1)


# --- 6. deterministic outputs ---------------------------------------------------------------------


def test_report_draws_each_figure_once_the_same_pixels_and_nothing_with_no_figures(
    smoke_runs, tmp_path, capsys, monkeypatch
):
    from PIL import Image

    from assignment4.reporting import plots

    drawn = []
    for name in ("save_figures", "save_table", "save_latent_maps"):
        original = getattr(plots, name)

        def counted(*args, _original=original, **kwargs):
            paths = _original(*args, **kwargs)
            drawn.extend([paths] if isinstance(paths, Path) else paths)
            return paths

        monkeypatch.setattr(plots, name, counted)

    def report(figures, *flags):
        argv = ["report", "--profile", "smoke", "--runs", str(smoke_runs), "--figures"]
        rc, out, err = run_main(capsys, *argv, str(figures), "--report", str(tmp_path / "r"),
                                *flags)  # fmt: skip
        assert rc == 0, err
        return out

    report(tmp_path / "a")
    assert drawn and len(drawn) == len(set(drawn))  # each figure drawn once
    assert {"table1.png", "table2.png"} <= {p.name for p in drawn}
    first = list(drawn)
    drawn.clear()
    report(tmp_path / "b")
    for name in ("table1.png", "table2.png"):
        pixels = [np.asarray(Image.open(tmp_path / d / name)) for d in ("a", "b")]
        np.testing.assert_array_equal(*pixels)
    assert len(drawn) == len(first)
    drawn.clear()
    out = report(tmp_path / "c", "--no-figures")
    assert drawn == [] and not (tmp_path / "c").exists() and "redrawn" not in out
