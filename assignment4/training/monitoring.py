"""Watching a run: TensorBoard logs, the projected wall time and the ETA.

    runs/<id>/<profile>/tensorboard/    every history metric per epoch, every sample grid

`tensorboard --logdir runs` shows all runs side by side. The TensorBoard logs are rebuilt from
`history.json` and `samples/` whenever a run starts or resumes, then extended epoch by epoch,
so a resumed or extended run continues the same curves with one point per epoch (step = the
epoch number, counted from 1).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

from assignment4.fileio import read_json
from assignment4.training import profiles

TENSORBOARD_DIR = "tensorboard"
# Above this projection, the `full` profile on a CPU gets the advice to choose `quick`.
CPU_FULL_ADVICE_S = 3600.0


# --- TensorBoard ------------------------------------------------------------------------------


def _metadata(plugin: str, data_class: int):
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=data_class,
    )


# TensorFlow 2.21 implements `tf.summary.scalar` / `image` only when the tensorboard package is
# installed. These write the same records with TensorFlow's own `tf.summary.write`, so a run
# logs without it (it is needed to view the logs): a scalar is a float32 tensor for the
# "scalars" plugin; an image is [width, height, PNG bytes] as strings for the "images" plugin.


def write_scalar(name: str, value: float, step: int) -> None:
    """Log one scalar to the default summary writer, as `tf.summary.scalar` does."""
    from tensorflow.core.framework import summary_pb2

    tf.summary.write(
        name,
        tf.constant(float(value), tf.float32),
        step=step,
        metadata=_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR),
    )


def write_png(name: str, png_path: Path, step: int) -> None:
    """Log a PNG file as an image to the default summary writer, as `tf.summary.image` does."""
    from PIL import Image
    from tensorflow.core.framework import summary_pb2

    with Image.open(png_path) as image:
        width, height = image.size
    tensor = tf.constant([str(width), str(height), Path(png_path).read_bytes()], tf.string)
    tf.summary.write(
        name,
        tensor,
        step=step,
        metadata=_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE),
    )


class TensorBoardLog(keras.callbacks.Callback):
    """Epoch-level TensorBoard logs of a run, kept equal to its `history.json` and `samples/`.

    Place it after the callbacks that write `history.json` and the sample grids: at the end
    of each epoch it logs that epoch's metrics (step = epoch number) and the epoch's grid if
    one was written. At the first epoch of a `fit` (a fresh start, a resume or an extension)
    it rewrites the folder from the run's files up to the epoch training starts from, so an
    epoch trained twice (killed before its backup) appears once.
    """

    def __init__(self, run_folder: Path):
        super().__init__()
        self.run_folder = Path(run_folder)
        self.log_dir = self.run_folder / TENSORBOARD_DIR
        self._writer = None

    def _history(self) -> dict:
        path = self.run_folder / "history.json"
        return read_json(path) if path.exists() else {}

    def _grid(self, epoch_number: int) -> Path | None:
        path = self.run_folder / "samples" / f"epoch_{epoch_number:03d}.png"
        return path if path.exists() else None

    def _write_epoch(self, epoch_number: int, values: dict) -> None:
        with self._writer.as_default(step=epoch_number):
            for name, value in sorted(values.items()):
                write_scalar(name, value, epoch_number)
            grid = self._grid(epoch_number)
            if grid is not None:
                write_png("samples", grid, epoch_number)

    def on_train_begin(self, logs=None):
        self._writer = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._writer is not None:
            return
        # First epoch of this fit: `epoch` epochs are finished. Rebuild their curves.
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self._writer = tf.summary.create_file_writer(str(self.log_dir))
        history = self._history()
        for k in range(epoch):
            values = {
                name: series[k]
                for name, series in history.items()
                if k < len(series) and series[k] is not None
            }
            self._write_epoch(k + 1, values)
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        history = self._history()
        values = {
            name: series[epoch]
            for name, series in history.items()
            if epoch < len(series) and series[epoch] is not None
        }
        values.update({k: float(v) for k, v in (logs or {}).items()})
        self._write_epoch(epoch + 1, values)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_scalars(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """The scalars of a TensorBoard folder: name -> sorted [(step, value)], duplicates kept."""
    from tensorflow.core.util import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    scalar = float(tf.make_ndarray(value.tensor))
                    out.setdefault(value.tag, []).append((int(event.step), scalar))
    return {k: sorted(v) for k, v in out.items()}


def read_image_steps(log_dir: str | os.PathLike, tag: str = "samples") -> list[int]:
    """The steps at which a TensorBoard folder holds an image under `tag`."""
    from tensorflow.core.util import event_pb2

    steps = []
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            if any(v.tag == tag for v in event.summary.value):
                steps.append(int(event.step))
    return sorted(steps)


# --- projected wall time and ETA --------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 05 min', '2 d 4 h'."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours, rest = divmod(round(minutes), 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _clock(seconds_from_now: float) -> str:
    when = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=seconds_from_now)
    return when.strftime("%a %H:%M UTC")


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


@dataclasses.dataclass
class Projection:
    """The projected wall time of a run from a measured step time.

    Attributes:
        exp_id, profile: the run.
        epochs: epochs still to train; steps_per_epoch: training steps per epoch.
        seconds_per_step: measured; seconds: the projection for `epochs` epochs.
        quick_seconds: the same projection for the `quick` profile's epochs.
        cpu_only: no GPU visible.
    """

    exp_id: str
    profile: str
    epochs: int
    steps_per_epoch: int
    seconds_per_step: float
    seconds: float
    quick_seconds: float | None
    cpu_only: bool

    @property
    def advise_quick(self) -> bool:
        """`full` on a CPU-only machine that would take longer than `CPU_FULL_ADVICE_S`."""
        return self.cpu_only and self.profile == "full" and self.seconds > CPU_FULL_ADVICE_S

    def text(self) -> str:
        """The projection in words, with the advice to choose `quick` where it applies."""
        line = (
            f"Projected: {self.epochs} epoch(s) x {self.steps_per_epoch} steps at "
            f"{self.seconds_per_step * 1000:.0f} ms/step = about {format_duration(self.seconds)}"
            f" (done around {_clock(self.seconds)})."
        )
        if self.advise_quick:
            quick = (
                f" (about {format_duration(self.quick_seconds)})"
                if self.quick_seconds is not None
                else ""
            )
            line += (
                f"\nThis is the 'full' profile on a CPU without a GPU. For every figure in less "
                f"time, stop now (Ctrl-C; finished epochs are kept) and choose the 'quick' "
                f"profile{quick}: `--profile quick` on the command line, "
                f"ASSIGNMENT4_PROFILE=quick in the environment, or PROFILE = 'quick' in a "
                f"notebook's parameters cell."
            )
        return line


def project(
    exp, profile: str, seconds_per_step: float, epochs: int, steps_per_epoch: int
) -> Projection:
    """A `Projection` of `epochs` epochs of `exp` at `seconds_per_step`."""
    quick = exp.epochs("quick") * steps_per_epoch * seconds_per_step
    return Projection(
        exp_id=exp.id,
        profile=profile,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        seconds_per_step=seconds_per_step,
        seconds=epochs * steps_per_epoch * seconds_per_step,
        quick_seconds=quick if profile == "full" else None,
        cpu_only=not has_gpu(),
    )


class StepTimer(keras.callbacks.Callback):
    """Times training steps after the first call (which includes tracing and compiling).

    Keras calls `on_train_batch_end` once per `steps_per_execution` steps, with the index of
    the step; the rate is (time between the first and the last call) / (steps between them).
    It measures only the first `measure` calls of a `fit`, then does nothing.
    """

    async_safe = True  # records times only: Keras may call it from its callback thread

    def __init__(self, measure: int = 4, on_measured=None):
        super().__init__()
        self.measure, self.on_measured = measure, on_measured
        self.marks: list[tuple[float, int]] = []
        self.seconds_per_step: float | None = None

    def on_train_begin(self, logs=None):
        self.marks, self.seconds_per_step = [], None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds_per_step is not None:
            return
        self.marks.append((time.perf_counter(), batch))
        if len(self.marks) > self.measure:
            self._finish()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds_per_step is None and len(self.marks) >= 2:
            self._finish()
        self.marks = [] if self.seconds_per_step is None else self.marks

    def _finish(self):
        (t0, b0), (t1, b1) = self.marks[0], self.marks[-1]
        if b1 > b0:
            self.seconds_per_step = (t1 - t0) / (b1 - b0)
            if self.on_measured is not None:
                self.on_measured(self.seconds_per_step)


class Progress(keras.callbacks.Callback):
    """Prints the projected wall time of the whole run, then the run's ETA after each epoch.

    The projection comes from the step time measured over the first steps of this `fit` (or,
    when an epoch has fewer steps than that, from the first epoch). After each epoch the ETA
    uses the mean time of the epochs finished in this process, validation included. Lines
    due at the end of an epoch are printed when the next one begins, after Keras' epoch line.
    """

    async_safe = True  # times steps and prints; touches no model state

    def __init__(self, exp, profile: str, epochs: int, steps_per_epoch: int | None, log=print):
        super().__init__()
        self.exp, self.profile, self.planned = exp, profile, epochs
        self.steps_per_epoch, self.log = steps_per_epoch, log
        self.timer = StepTimer(on_measured=self._measured)
        self.projection: Projection | None = None
        self._epoch_seconds: list[float] = []
        self._pending: list[str] = []
        self._in_epoch = False

    def _say(self, line: str) -> None:
        if self._in_epoch:
            self.log(line)
        else:
            self._pending.append(line)

    def set_model(self, model):
        super().set_model(model)
        self.timer.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.steps_per_epoch = (params or {}).get("steps") or self.steps_per_epoch

    def on_train_begin(self, logs=None):
        self.timer.on_train_begin(logs)
        self._first_epoch = None
        self._epoch_seconds, self._pending = [], []
        self.projection = None

    def on_epoch_begin(self, epoch, logs=None):
        for line in self._pending:
            self.log(line)
        self._pending = []
        if self._first_epoch is None:
            self._first_epoch = epoch
        self._t0 = time.perf_counter()
        self._in_epoch = True

    def on_train_batch_end(self, batch, logs=None):
        self.timer.on_train_batch_end(batch, logs)

    def _measured(self, seconds_per_step: float) -> None:
        if self.projection is not None or not self.steps_per_epoch:
            return
        left = self.planned - (self._first_epoch or 0)
        self.projection = project(
            self.exp, self.profile, seconds_per_step, left, int(self.steps_per_epoch)
        )
        self._say(self.projection.text())

    def on_epoch_end(self, epoch, logs=None):
        self._in_epoch = False
        self._epoch_seconds.append(time.perf_counter() - self._t0)
        if self.projection is None and self.steps_per_epoch:
            self.timer.on_epoch_end(epoch, logs)
            if self.projection is None:  # one call per epoch: the epoch's time is the measure
                self._measured(self._epoch_seconds[-1] / self.steps_per_epoch)
        done, left = epoch + 1, self.planned - (epoch + 1)
        if left <= 0:
            return
        # The first epoch of a process carries the tracing; drop it once there are others.
        times = self._epoch_seconds[1:] or self._epoch_seconds
        per_epoch = sum(times) / len(times)
        eta = per_epoch * left
        self._say(
            f"ETA: epoch {done}/{self.planned} done, {format_duration(per_epoch)} per epoch, "
            f"{left} to go: about {format_duration(eta)} (done around {_clock(eta)})."
        )


def measure_seconds_per_step(exp, profile: str, steps: int = 5, data_dir=None) -> float:
    """Train a fresh model of `exp` for `steps` + 1 execution calls and time the steps.

    The first call (tracing and compiling) is not counted. Nothing is saved.
    """
    profile = profiles.profile(profile).name
    model = exp.build(seed=0)
    train, _ = exp.datasets(profile, seed=0, data_dir=data_dir)
    calls = steps + 1
    timer = StepTimer(measure=calls)
    per_call = max(1, int(model.steps_per_execution or 1))
    batches = train.repeat().take(calls * per_call)
    model.fit(batches, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    if timer.seconds_per_step is None or not math.isfinite(timer.seconds_per_step):
        raise RuntimeError(f"could not time the training steps of {exp.id}")
    return timer.seconds_per_step


def projected_time(
    exp,
    profile: str | None = None,
    epochs: int | None = None,
    seconds_per_step: float | None = None,
    data_dir=None,
) -> Projection:
    """The projected wall time of training `exp` under `profile`, from a measured step time.

    Without `seconds_per_step`, it is measured here on a fresh model (a few seconds to a
    minute: the first step traces and compiles). `print(projected_time(...).text())` gives
    the projection in words, with the advice to choose 'quick' when 'full' would take hours
    on a CPU.

    Args:
        exp: an `experiments.Experiment`, e.g. `experiments.get("vae_mnist_z2")`.
        profile: 'full', 'quick', 'smoke' (None: $ASSIGNMENT4_PROFILE, else 'full').
        epochs: override the profile's epochs.
        seconds_per_step: a known step time, skipping the measurement.
    """
    prof = profiles.profile(profile).name
    n_epochs = exp.epochs(prof) if epochs is None else int(epochs)
    n_train, _ = exp.data_sizes(prof, data_dir=data_dir)
    steps = max(1, math.ceil(n_train / exp.images_per_step))
    if seconds_per_step is None:
        seconds_per_step = measure_seconds_per_step(exp, prof, data_dir=data_dir)
    return project(exp, prof, seconds_per_step, n_epochs, steps)
