"""The callbacks of a run, in the order the runner gives them to `fit`: a guard against
non-finite losses, the history and run.json after every epoch, sample grids, and stopping
cleanly on a signal. (Checkpoints and the backup are in `runstate`.)"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from pathlib import Path

import keras
import numpy as np

from assignment4.errors import RunError
from assignment4.fileio import read_json, write_json
from assignment4.images import image_grid, save_png

SAMPLE_GRID = (8, 8)


def fixed_noise(latent_dim: int, seed: int, n: int = SAMPLE_GRID[0] * SAMPLE_GRID[1]):
    """The latent points of every sample grid of a run: the same on every resume."""
    return np.random.default_rng([seed, 2024]).standard_normal((n, latent_dim)).astype("float32")


class NaNGuard(keras.callbacks.Callback):
    """Stop at the end of an epoch whose losses are not finite, before anything is saved."""

    def on_epoch_end(self, epoch, logs=None):
        bad = {k: v for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            names = ", ".join(f"{k}={v}" for k, v in bad.items())
            raise NonFiniteLoss(epoch + 1, names)


class NonFiniteLoss(RunError):
    def __init__(self, epoch: int, names: str):
        self.epoch = epoch
        super().__init__(f"non-finite loss at epoch {epoch} ({names})")


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: the epoch's logs into history.json, the progress into run.json.

    History is indexed by epoch: after a resume, an epoch that is trained again replaces
    its old entry instead of being appended twice.
    """

    def __init__(self, folder: Path, info: dict):
        super().__init__()
        self.folder = folder
        self.info = info
        self.history_path = folder / "history.json"
        self._prior_wall = float(info.get("wall_time_s", 0.0))
        self._t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        history = read_json(self.history_path) if self.history_path.exists() else {}
        entries = {k: float(v) for k, v in (logs or {}).items()}
        entries["epoch_seconds"] = time.perf_counter() - self._epoch_t0
        for key, value in entries.items():
            history[key] = list(history.get(key, []))[:epoch] + [value]
        write_json(history, self.history_path)
        self.info.update(epochs=epoch + 1, wall_time_s=self.wall_time())
        write_json(self.info, self.folder / "run.json")

    def wall_time(self) -> float:
        return round(self._prior_wall + time.perf_counter() - self._t0, 2)


class SampleGrid(keras.callbacks.Callback):
    """Every `every` epochs (and after the first and last), a grid from fixed latent points."""

    def __init__(self, folder: Path, z: np.ndarray, every: int, epochs: int):
        super().__init__()
        self.folder, self.z, self.every, self.epochs = folder, z, max(1, every), epochs

    def due(self, done: int) -> bool:
        """Whether the epoch numbered `done` (from 1) gets a grid (and a checkpoint)."""
        return done == 1 or done % self.every == 0 or done == self.epochs

    def on_epoch_end(self, epoch, logs=None):
        if self.due(epoch + 1):
            save_sample_grid(self.model, self.z, self.folder / f"epoch_{epoch + 1:03d}.png")


def save_sample_grid(model, z: np.ndarray, path: Path) -> Path:
    return save_png(image_grid(model.generate(z), *SAMPLE_GRID), path)


class StopOnSignal(keras.callbacks.Callback):
    """SIGTERM (and Ctrl-C) stop training at the next batch end, after that step's writes.

    The first signal sets a flag that `on_train_batch_end` / `on_epoch_end` (this callback
    runs last) turn into `Interrupted`; a second Ctrl-C interrupts at once.
    """

    def __init__(self):
        super().__init__()
        self.signal_name = None

    def installed(self):
        @contextlib.contextmanager
        def handlers():
            if threading.current_thread() is not threading.main_thread():
                yield  # signal handlers can only be set from the main thread
                return

            def handle(signum, frame):
                if self.signal_name is not None and signum == signal.SIGINT:
                    raise Interrupted(self.signal_name)
                self.signal_name = signal.Signals(signum).name

            old = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

        return handlers()

    def _check(self):
        if self.signal_name is not None:
            raise Interrupted(self.signal_name)

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal at a clean point; `signal_name` says which."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name
