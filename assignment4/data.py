"""MNIST and CIFAR-10: find, validate and cache the arrays; build tf.data pipelines, and an
experiment's training and test pipelines under a profile (`DataPlan`).

Images stay uint8 in memory and are scaled one batch at a time, so a pipeline costs
one copy of the data set, not four.
"""

from __future__ import annotations

import functools
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assignment4.errors import DatasetError
from assignment4.fileio import atomic_path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"
ENV_VAR = "ASSIGNMENT4_DATA"
KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class DatasetSpec:
    """What a valid file of one data set looks like."""

    name: str
    image_shape: tuple[int, ...]  # one image, as keras.datasets returns it
    label_shape: tuple[int, ...]  # one label: () for MNIST, (1,) for CIFAR-10
    n_train: int
    n_test: int
    num_classes: int = 10

    @property
    def channels(self) -> int:
        return self.image_shape[2] if len(self.image_shape) == 3 else 1

    @property
    def filename(self) -> str:
        return f"{self.name}.npz"


SPECS = {
    "mnist": DatasetSpec("mnist", (28, 28), (), 60000, 10000),
    "cifar10": DatasetSpec("cifar10", (32, 32, 3), (1,), 50000, 10000),
}

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "cifar10": [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ],
}  # fmt: skip


def spec(name: str) -> DatasetSpec:
    """The `DatasetSpec` of `name` ('mnist' or 'cifar10')."""
    if name not in SPECS:
        raise DatasetError(f"Unknown data set {name!r}: choose one of {', '.join(SPECS)}.")
    return SPECS[name]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder to read from: the argument, then $ASSIGNMENT4_DATA, then <repo>/data."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_DATA_DIR


def load(name: str, data_dir: str | os.PathLike | None = None):
    """Load a data set as uint8 arrays, shaped as `keras.datasets` returns them.

    Args:
        name: 'mnist' or 'cifar10'.
        data_dir: folder holding `<name>.npz`; see `resolve_data_dir` for the default.

    Returns:
        `(x_train, y_train), (x_test, y_test)`.

    Raises:
        DatasetError: the file is damaged or malformed, or it is missing and cannot be
            downloaded. The message names the file and says how to fix it.
    """
    ds = spec(name)
    folder = resolve_data_dir(data_dir)
    path = folder / ds.filename
    if not path.exists():
        arrays = _download(ds, folder)
        _validate(ds, arrays, path, source="the Keras download")
        _save_atomic(path, arrays)
    else:
        arrays = _read_npz(ds, path)
        _validate(ds, arrays, path, source=str(path))
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The path that `load(name, data_dir)` reads (or will write)."""
    return resolve_data_dir(data_dir) / spec(name).filename


def _fix_hint(ds: DatasetSpec, path: Path) -> str:
    return (
        f"Delete {path} and run `python -m assignment4 data` on a machine with internet access, "
        f"or put a valid {ds.filename} there (offline, inside the course workspace: "
        f"`python ../shared/datasets/prepare.py {path.parent}`)."
    )


def _read_npz(ds: DatasetSpec, path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise DatasetError(
                    f"{path} lacks the arrays {', '.join(missing)} (it has: "
                    f"{', '.join(f.files) or 'none'}). A data set file needs "
                    f"{', '.join(KEYS)}. {_fix_hint(ds, path)}"
                )
            return {k: f[k] for k in KEYS}
    except DatasetError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise DatasetError(
            f"{path} cannot be read as an .npz archive ({type(e).__name__}: {e}); it is probably "
            f"truncated or corrupt. {_fix_hint(ds, path)}"
        ) from None


def _validate(ds: DatasetSpec, arrays: dict[str, np.ndarray], path: Path, source: str) -> None:
    expected = {
        "x_train": (ds.n_train, *ds.image_shape),
        "y_train": (ds.n_train, *ds.label_shape),
        "x_test": (ds.n_test, *ds.image_shape),
        "y_test": (ds.n_test, *ds.label_shape),
    }
    hint = _fix_hint(ds, path)
    for key, shape in expected.items():
        a = arrays[key]
        if a.shape != shape:
            raise DatasetError(
                f"{source}: {key} has shape {a.shape}, expected {shape} for {ds.name}. {hint}"
            )
        if a.dtype != np.uint8:
            raise DatasetError(
                f"{source}: {key} has dtype {a.dtype}, expected uint8 for {ds.name}. {hint}"
            )
    for key in ("y_train", "y_test"):
        y = arrays[key]
        if y.size and (y.min() < 0 or y.max() >= ds.num_classes):
            raise DatasetError(
                f"{source}: {key} holds labels from {y.min()} to {y.max()}, outside 0..."
                f"{ds.num_classes - 1}. {hint}"
            )


def _download(ds: DatasetSpec, folder: Path) -> dict[str, np.ndarray]:
    import keras

    loader = getattr(keras.datasets, ds.name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as e:  # noqa: BLE001 - no network, proxy, half-written cache: all say the same
        raise DatasetError(
            f"{folder / ds.filename} does not exist and downloading {ds.name} through "
            f"keras.datasets failed ({type(e).__name__}: {str(e)[:200]}). On an offline machine, "
            f"put {ds.filename} (arrays {', '.join(KEYS)}, uint8) into {folder}, or point "
            f"${ENV_VAR} at a folder that has it; inside the course workspace run "
            f"`python ../shared/datasets/prepare.py {folder}`."
        ) from None
    return {
        "x_train": np.asarray(x_train, np.uint8),
        "y_train": np.asarray(y_train, np.uint8),
        "x_test": np.asarray(x_test, np.uint8),
        "y_test": np.asarray(y_test, np.uint8),
    }


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the npz beside its final name, then rename: readers never see half a file."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


# --- tf.data pipelines -------------------------------------------------------------------

SCALES = ("unit", "symmetric")  # [0, 1] for VAEs, [-1, 1] for tanh generators


def scale_images(x, scale: str):
    """uint8 images -> float32 in [0, 1] ('unit') or [-1, 1] ('symmetric'), with a channel axis."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if x.shape.rank == 3:  # (batch, 28, 28) -> (batch, 28, 28, 1)
        x = x[..., None]
    if scale == "unit":
        return x / 255.0
    if scale == "symmetric":
        return x / 127.5 - 1.0
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def pipeline(
    images: np.ndarray,
    batch_size: int = 128,
    scale: str = "unit",
    shuffle: bool = True,
    seed: int = 0,
    limit: int | None = None,
):
    """A `tf.data.Dataset` of scaled image batches from uint8 images held in memory.

    Args:
        images: uint8 array `(N, H, W)` or `(N, H, W, C)`.
        batch_size: images per batch; the last batch keeps the remainder (nothing is dropped).
        scale: 'unit' ([0, 1], VAEs) or 'symmetric' ([-1, 1], GANs).
        shuffle: reshuffle every epoch with a seeded order.
        seed: the shuffle seed.
        limit: use only the first `limit` images (a subset for quick runs and tests).
    """
    import tensorflow as tf

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        images = images[:limit]
    ds = tf.data.Dataset.from_tensor_slices(images)
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    # The cast and scale of a batch are tiny next to a training step: one background thread
    # (the prefetch's) keeps two batches ready. tf.data's autotuner stays off: with it on,
    # destroying an iterator (every fit() epoch, every evaluation) blocks the main thread
    # while it waits for the autotuner's thread (docs/speed.md).
    ds = ds.map(lambda x: scale_images(x, scale)).prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def summary(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Where a data set was found, its shapes and its class counts (for `assignment4 data`)."""
    (x_train, y_train), (x_test, y_test) = load(name, data_dir)
    return {
        "name": name,
        "path": str(locate(name, data_dir)),
        "x_train": x_train.shape,
        "y_train": y_train.shape,
        "x_test": x_test.shape,
        "y_test": y_test.shape,
        "train_class_counts": np.bincount(y_train.ravel(), minlength=10).tolist(),
        "test_class_counts": np.bincount(y_test.ravel(), minlength=10).tolist(),
    }


# --- an experiment's data under one profile ------------------------------------------------------


@dataclass(frozen=True)
class DataPlan:
    """What one experiment trains and tests on under one profile.

    Attributes:
        dataset: 'mnist' or 'cifar10'.
        scale: 'unit' ([0, 1], VAEs) or 'symmetric' ([-1, 1], tanh generators).
        batch_size: images per (critic) update.
        n_critic: critic updates per training step (1 for VAEs and GANs): a WGAN's training
            batches hold `n_critic * batch_size` images, one slice per critic update.
        train_size / test_size: images used (None: all of the split).
        name: names the experiment in warnings.
    """

    dataset: str
    scale: str
    batch_size: int
    n_critic: int = 1
    train_size: int | None = None
    test_size: int | None = None
    name: str = ""

    @property
    def images_per_step(self) -> int:
        return self.batch_size * self.n_critic


@functools.lru_cache(maxsize=4)
def load_cached(name: str, data_dir: str | os.PathLike | None = None):
    """`load`, cached per process (CIFAR-10 is 180 MB)."""
    return load(name, data_dir)


def sizes(plan: DataPlan) -> tuple[int, int]:
    """(training images, test images) that `datasets(plan)` uses."""
    ds = spec(plan.dataset)
    n_train = min(plan.train_size or ds.n_train, ds.n_train)
    rest = n_train % plan.images_per_step
    if 0 < rest < plan.n_critic:
        n_train -= rest
    return n_train, min(plan.test_size or ds.n_test, ds.n_test)


def datasets(plan: DataPlan, seed: int = 0, data_dir: str | os.PathLike | None = None):
    """(train, test) `tf.data` pipelines of scaled images: training batches of
    `plan.images_per_step` images, shuffled with `seed`; test batches of `plan.batch_size`."""
    (x_train, _), (x_test, _) = load_cached(plan.dataset, data_dir)
    x_train = _fit_critic_slices(x_train[: plan.train_size], plan)
    train = pipeline(x_train, plan.images_per_step, plan.scale, shuffle=True, seed=seed)
    test = pipeline(x_test, plan.batch_size, plan.scale, shuffle=False, limit=plan.test_size)
    return train, test


def _fit_critic_slices(x, plan: DataPlan):
    """Drop the few images that would leave a critic update with an empty batch (and say so)."""
    rest = len(x) % plan.images_per_step
    if 0 < rest < plan.n_critic:
        warnings.warn(
            f"{plan.name}: dropping the last {rest} training images; fewer than "
            f"n_critic={plan.n_critic} would leave a critic update without a batch.",
            stacklevel=3,
        )
        return x[: len(x) - rest]
    return x
