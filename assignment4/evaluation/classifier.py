"""Small CNN classifiers for MNIST and CIFAR-10, the feature extractors of `evaluation`.

Each network is a VGG-style stack (Conv-BN-ReLU pairs, max pooling), global average
pooling, a 128-d ReLU layer named `features` and a softmax named `probabilities`. The
first layer rescales uint8 pixel values, so callers feed the data set's own arrays
(cast to float32), in its own layout: (N, 28, 28) for MNIST, (N, 32, 32, 3) for CIFAR-10.

The trained weights live in `assignment4/weights/` (with `classifiers.json`: measured
test accuracy, epochs, seed, wall time). `python -m assignment4 train-classifiers`
retrains them.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assignment4 import data, fileio
from assignment4.errors import ConfigError, RunError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
RECORD_FILE = "classifiers.json"
FEATURE_LAYER = "features"
OUTPUT_LAYER = "probabilities"
ACCURACY_TARGETS = {"mnist": 0.99, "cifar10": 0.80}


@dataclass(frozen=True)
class ClassifierSpec:
    """The few numbers that define one classifier and its training.

    Attributes:
        widths: channels of each conv block; each block halves the resolution.
        convs_per_block: Conv-BN-ReLU layers per block.
        feature_dim: width of the penultimate `features` layer.
        dropout: dropout rate before the softmax.
        epochs: default number of training epochs.
        batch_size: training batch size.
        learning_rate: peak learning rate of the warm-up + cosine schedule.
        weight_decay: AdamW's decoupled weight decay.
        warmup_fraction: part of the steps spent warming the learning rate up.
        augment: random flips and translations of the training images.
    """

    widths: tuple[int, ...]
    convs_per_block: int
    feature_dim: int = 128
    dropout: float = 0.2
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.15
    augment: bool = False


SPECS = {
    "mnist": ClassifierSpec(widths=(32, 64), convs_per_block=2, epochs=3),
    "cifar10": ClassifierSpec(
        widths=(32, 64, 128), convs_per_block=2, epochs=18, augment=True, dropout=0.2
    ),
}


def classifier_spec(dataset_name: str) -> ClassifierSpec:
    """The `ClassifierSpec` of 'mnist' or 'cifar10'."""
    if dataset_name not in SPECS:
        raise ConfigError(
            f"No classifier for data set {dataset_name!r}: choose one of {', '.join(SPECS)}."
        )
    return SPECS[dataset_name]


def weights_path(dataset_name: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """Where the weights of one classifier are stored."""
    return Path(weights_dir or WEIGHTS_DIR) / f"{dataset_name}_classifier.weights.h5"


def build(dataset_name: str, spec: ClassifierSpec | None = None):
    """An untrained classifier for `dataset_name`, as a functional Keras model.

    Args:
        dataset_name: 'mnist' or 'cifar10'.
        spec: the architecture; the registered `SPECS[dataset_name]` by default.

    Returns:
        A model mapping float32 pixel values in [0, 255], in the data set's layout, to
        10 class probabilities; its layer `features` is the penultimate representation.
    """
    import keras
    from keras import layers

    spec = spec or classifier_spec(dataset_name)
    ds = data.spec(dataset_name)
    inputs = keras.Input(shape=ds.image_shape, name="images")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if len(ds.image_shape) == 2:  # MNIST comes without a channel axis
        x = layers.Reshape((*ds.image_shape, 1), name="add_channel")(x)
    for b, width in enumerate(spec.widths):
        for c in range(spec.convs_per_block):
            # The bias would be cancelled by the batch norm that follows.
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{b}_{c}")(x)
            x = layers.BatchNormalization(name=f"bn{b}_{c}")(x)
            x = layers.ReLU(name=f"relu{b}_{c}")(x)
        x = layers.MaxPooling2D(name=f"pool{b}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    features = layers.Dense(spec.feature_dim, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(spec.dropout, name="dropout")(features)
    outputs = layers.Dense(ds.num_classes, activation="softmax", name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name=f"{dataset_name}_classifier")


def _build_with_policy(dataset_name: str, policy: str, spec: ClassifierSpec | None = None):
    """`build` under the dtype policy `policy`, whatever the process-wide policy is."""
    from assignment4.models import precision

    with precision.policy(policy):
        return build(dataset_name, spec)


def _augmenter(seed: int):
    """Random horizontal flips and shifts of up to 4 pixels, for CIFAR-10's training images."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            # Reflection keeps the shifted border looking like the image, unlike zeros.
            layers.RandomTranslation(0.125, 0.125, fill_mode="reflect", seed=seed + 1),
        ],
        name="augment",
    )


def _train_pipeline(x, y, spec: ClassifierSpec, seed: int):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y.reshape(-1).astype("int32")))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(spec.batch_size)
    ds = ds.map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE)
    if spec.augment:
        augment = _augmenter(seed)
        # One sequential map: the seeded random layers then give the same images every run.
        ds = ds.map(lambda a, b: (augment(a, training=True), b))
    return ds.prefetch(tf.data.AUTOTUNE)


def accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Fraction of `images` (uint8, data set layout) that `model` classifies as `labels`."""
    probs = model.predict(images.astype("float32"), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probs, axis=1) == labels.reshape(-1)))


def train(
    dataset_name: str,
    epochs: int | None = None,
    seed: int = 0,
    *,
    out_dir: str | os.PathLike | None = None,
    precision: str = "mixed_bfloat16",
    limit: int | None = None,
    verbose: int = 1,
) -> dict:
    """Train one classifier from scratch, save its weights and record its test accuracy.

    Args:
        dataset_name: 'mnist' or 'cifar10'.
        epochs: passes over the training set; the spec's default when None.
        seed: seeds the initial weights, the data order and the augmentation.
        out_dir: folder for the weights and `classifiers.json`; the package's `weights/`
            by default.
        precision: Keras dtype policy for training: 'mixed_bfloat16' (about twice as fast
            on CPUs with AVX512-BF16 and on recent GPUs) or 'float32'. The stored weights
            are float32 either way.
        limit: train on the first `limit` images only (timing runs; the test set stays full).
        verbose: Keras' progress bar (1), one line per epoch (2) or silence (0).

    Returns:
        The record written to `classifiers.json` for this data set.
    """
    import keras

    spec = classifier_spec(dataset_name)
    epochs = epochs or spec.epochs
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = data.load(dataset_name)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    model = _compiled(
        dataset_name, precision, spec, epochs * math.ceil(len(x_train) / spec.batch_size)
    )
    print(f"Training the {dataset_name} classifier: {model.count_params():,} parameters, "
          f"{len(x_train)} images, {epochs} epochs, seed {seed}, {precision}.", flush=True)  # fmt: skip
    start = time.perf_counter()
    history = model.fit(
        _train_pipeline(x_train, y_train, spec, seed), epochs=epochs, verbose=verbose
    )
    wall = time.perf_counter() - start

    trained = {
        "train_accuracy_last_epoch": round(float(history.history["accuracy"][-1]), 4),
        **_provenance(epochs, seed, precision, len(x_train), wall, model),
    }
    return _save_and_record(dataset_name, model, (x_test, y_test), out_dir, trained)


def _save_and_record(dataset_name: str, model, test, out_dir, trained: dict) -> dict:
    """Evaluate a trained classifier in float32, exactly as `load_classifier` will use its
    weights, save them, and record the result in classifiers.json."""
    spec = classifier_spec(dataset_name)
    final = _build_with_policy(dataset_name, "float32", spec)
    final.set_weights(model.get_weights())
    test_accuracy = accuracy(final, *test)
    path = weights_path(dataset_name, Path(out_dir or WEIGHTS_DIR))
    _save_weights_atomic(final, path)
    target = ACCURACY_TARGETS[dataset_name]
    record = {
        "dataset": dataset_name,
        "test_accuracy": round(test_accuracy, 4),
        "target_accuracy": target,
        **trained,
        "weights_file": path.name,
        "weights_bytes": path.stat().st_size,
        "spec": asdict(spec),
    }
    _update_record(path.parent / RECORD_FILE, dataset_name, record)
    _CACHE.pop(dataset_name, None)
    minutes = trained["train_wall_time_s"] / 60
    print(f"{dataset_name}: test accuracy {test_accuracy:.4f} (target {target}), "
          f"{minutes:.1f} min of training; weights in {path}", flush=True)  # fmt: skip
    return record


def _provenance(epochs: int, seed: int, precision: str, n_train: int, wall: float, model) -> dict:
    """How a classifier was trained, for its record in classifiers.json."""
    import keras

    return {
        "epochs": epochs,
        "seed": seed,
        "precision": precision,
        "train_images": n_train,
        "train_wall_time_s": round(wall, 1),
        "parameters": model.count_params(),
        "keras": keras.__version__,
    }


def _compiled(dataset_name: str, precision: str, spec, steps: int):
    """The classifier under `precision`, compiled with AdamW on a warm-up + cosine schedule."""
    import keras

    model = _build_with_policy(dataset_name, precision, spec)
    warmup = int(spec.warmup_fraction * steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=spec.learning_rate / 10,
        decay_steps=steps - warmup,
        warmup_target=spec.learning_rate,
        warmup_steps=warmup,
        alpha=0.01,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=spec.weight_decay),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _save_weights_atomic(model, path: Path) -> None:
    # Keras insists on the .weights.h5 suffix, so the temporary name keeps it.
    with fileio.atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def _update_record(path: Path, dataset_name: str, record: dict) -> None:
    records = fileio.read_json(path) if path.exists() else {}
    records[dataset_name] = record
    fileio.write_json(records, path)


def load_record(weights_dir: str | os.PathLike | None = None) -> dict:
    """The contents of `classifiers.json`: per data set, how its classifier was trained."""
    path = Path(weights_dir or WEIGHTS_DIR) / RECORD_FILE
    return json.loads(path.read_text()) if path.exists() else {}


_CACHE: dict[str, object] = {}
_FEATURE_CACHE: dict[str, object] = {}


def load_classifier(dataset_name: str):
    """The committed classifier of `dataset_name`, float32, loaded once per process.

    Raises:
        RunError: the weights file is missing; the message says how to train it.
    """
    if dataset_name not in _CACHE:
        path = weights_path(dataset_name)
        if not path.exists():
            raise RunError(
                f"The {dataset_name} classifier's weights {path} are missing. Train them with "
                f"`python -m assignment4 train-classifiers --datasets {dataset_name}`."
            )
        model = _build_with_policy(dataset_name, "float32")
        model.load_weights(path)
        _CACHE[dataset_name] = model
    return _CACHE[dataset_name]


def feature_and_probability_model(dataset_name: str):
    """A model mapping images (float32 in [0, 255]) to (128-d features, class probabilities)."""
    import keras

    model = load_classifier(dataset_name)
    cached = _FEATURE_CACHE.get(dataset_name)
    if cached is None or cached[0] is not model:
        both = keras.Model(
            model.inputs,
            [model.get_layer(FEATURE_LAYER).output, model.get_layer(OUTPUT_LAYER).output],
            name=f"{dataset_name}_features_and_probabilities",
        )
        _FEATURE_CACHE[dataset_name] = (model, both)
    return _FEATURE_CACHE[dataset_name][1]


def main_train(argv: list[str] | None = None) -> list[dict]:
    """Command-line entry, as `python -m assignment4.classifier [--datasets mnist cifar10] ...`.

    `python -m assignment4 train-classifiers` takes the same `--datasets`, `--epochs`, `--seed`.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m assignment4.classifier", description="Retrain the evaluation classifiers."
    )
    parser.add_argument("--datasets", nargs="+", choices=list(SPECS), default=list(SPECS))
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=None, help="default: the package's weights/")
    parser.add_argument(
        "--precision", choices=["mixed_bfloat16", "float32"], default="mixed_bfloat16"
    )
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1)
    args = parser.parse_args(argv)
    return [
        train(n, args.epochs, args.seed, args.out_dir, args.precision, args.limit, args.verbose)
        for n in args.datasets
    ]


if __name__ == "__main__":
    main_train()
