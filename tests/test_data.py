"""data.load: shapes, lookup order, every bad-file message, download and cache; pipelines."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from assignment4 import data
from assignment4.errors import Assignment4Error, DatasetError

DATA = Path(__file__).resolve().parent.parent / "data"  # <repo>/data
MNIST_FILE = DATA / "mnist.npz"


def assert_names_file_and_hint(message: str, path) -> None:
    """The promised message: it names the file and says how to get a good one."""
    assert str(path) in message
    assert re.search(r"put (a valid )?mnist\.npz", message), message


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def no_download(monkeypatch, calls=None):
    """Make the Keras download fail as it does offline, without touching the network."""

    def offline():
        if calls is not None:
            calls.append(1)
        raise OSError("Temporary failure in name resolution (test: no network)")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)


# --- real files -------------------------------------------------------------------------


def test_load_mnist_gives_uint8_in_keras_layout():
    (x_train, y_train), (x_test, y_test) = data.load("mnist")
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    assert x_train.max() == 255 and x_train.min() == 0
    assert set(np.unique(y_test)) == set(range(10))


def test_load_cifar10_gives_uint8_in_keras_layout(cifar10):
    (x_train, y_train), (x_test, y_test) = cifar10  # data.load("cifar10"), loaded once
    assert x_train.shape == (50000, 32, 32, 3) and y_train.shape == (50000, 1)
    assert x_test.shape == (10000, 32, 32, 3) and y_test.shape == (10000, 1)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    assert np.bincount(y_train.ravel()).tolist() == [5000] * 10


def test_unknown_data_set_is_a_dataset_error():
    with pytest.raises(DatasetError, match="mnist, cifar10"):
        data.load("fashion_mnist")


def test_summary_counts_every_image():
    s = data.summary("mnist")
    assert s["x_train"] == (60000, 28, 28)
    assert sum(s["train_class_counts"]) == 60000 and sum(s["test_class_counts"]) == 10000
    assert s["train_class_counts"][1] == 6742  # MNIST's most frequent digit


# --- lookup order -----------------------------------------------------------------------


def test_explicit_data_dir_beats_environment(tmp_path, monkeypatch):
    explicit, env_dir = tmp_path / "explicit", tmp_path / "env"
    explicit.mkdir(), env_dir.mkdir()
    shutil.copy(MNIST_FILE, explicit / "mnist.npz")
    (env_dir / "mnist.npz").write_bytes(b"not an npz")  # would fail if it were read
    monkeypatch.setenv(data.ENV_VAR, str(env_dir))
    (x_train, _), _ = data.load("mnist", data_dir=explicit)
    assert x_train.shape == (60000, 28, 28)
    assert data.locate("mnist", explicit) == explicit / "mnist.npz"


def test_environment_beats_default(tmp_path, monkeypatch):
    (tmp_path / "mnist.npz").write_bytes(b"not an npz")  # the default (repo) file is valid
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(DatasetError) as e:
        data.load("mnist")
    assert_names_file_and_hint(str(e.value), tmp_path / "mnist.npz")


def test_environment_file_is_used_as_is(tmp_path, monkeypatch, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    marked = x_train.copy()
    marked[0, 0, 0] = 77  # MNIST's corner pixels are all 0
    write_npz(tmp_path / "mnist.npz", x_train=marked, y_train=y_train, x_test=x_test, y_test=y_test)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    (x, _), _ = data.load("mnist")
    assert x[0, 0, 0] == 77
    assert data.locate("mnist") == tmp_path / "mnist.npz"


def test_default_is_the_repository_data_folder(monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, "")  # empty counts as unset
    assert data.resolve_data_dir() == DATA
    assert data.locate("cifar10") == DATA / "cifar10.npz"
    (x_train, _), _ = data.load("mnist")
    assert x_train.shape == (60000, 28, 28)


# --- bad data: one test per case, each with the promised message --------------------------


def test_missing_file_offline_says_where_to_put_one(tmp_path, monkeypatch):
    no_download(monkeypatch)
    with pytest.raises(DatasetError) as e:
        data.load("mnist", data_dir=tmp_path)
    message = str(e.value)
    assert_names_file_and_hint(message, tmp_path / "mnist.npz")
    assert "OSError" in message and data.ENV_VAR in message
    assert not (tmp_path / "mnist.npz").exists()


def test_truncated_file(tmp_path, monkeypatch):
    no_download(monkeypatch)
    raw = MNIST_FILE.read_bytes()
    path = tmp_path / "mnist.npz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError) as e:
        data.load("mnist", data_dir=tmp_path)
    assert_names_file_and_hint(str(e.value), path)
    assert "truncated or corrupt" in str(e.value)


def test_missing_keys(tmp_path, mnist):
    (x_train, y_train), _ = mnist
    path = write_npz(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train)
    with pytest.raises(DatasetError) as e:
        data.load("mnist", data_dir=tmp_path)
    assert_names_file_and_hint(str(e.value), path)
    assert "x_test, y_test" in str(e.value)


def test_wrong_shape(tmp_path, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    path = write_npz(
        tmp_path / "mnist.npz", x_train=x_train[:10], y_train=y_train, x_test=x_test, y_test=y_test
    )
    with pytest.raises(DatasetError) as e:
        data.load("mnist", data_dir=tmp_path)
    assert_names_file_and_hint(str(e.value), path)
    assert "x_train has shape (10, 28, 28), expected (60000, 28, 28)" in str(e.value)


def test_wrong_dtype(tmp_path, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    path = write_npz(
        tmp_path / "mnist.npz",
        x_train=x_train,
        y_train=y_train.astype(np.int64),
        x_test=x_test,
        y_test=y_test,
    )
    with pytest.raises(DatasetError) as e:
        data.load("mnist", data_dir=tmp_path)
    assert_names_file_and_hint(str(e.value), path)
    assert "y_train has dtype int64, expected uint8" in str(e.value)


def test_labels_out_of_range(tmp_path, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    bad = y_test.copy()
    bad[123] = 10
    path = write_npz(
        tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=bad
    )
    with pytest.raises(DatasetError) as e:
        data.load("mnist", data_dir=tmp_path)
    assert_names_file_and_hint(str(e.value), path)
    assert "y_test holds labels from 0 to 10" in str(e.value)


def test_pickled_arrays_are_refused_with_a_message(tmp_path):
    objects = np.empty(3, dtype=object)
    path = write_npz(tmp_path / "mnist.npz", x_train=objects, y_train=objects, x_test=objects,
                     y_test=objects)  # fmt: skip
    with pytest.raises(DatasetError) as e:
        data.load("mnist", data_dir=tmp_path)
    assert_names_file_and_hint(str(e.value), path)


# --- download and cache -----------------------------------------------------------------


def test_download_is_saved_atomically_then_read_from_disk(tmp_path, monkeypatch, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    calls = []

    def downloaded():
        calls.append(1)
        # keras.datasets returns these dtypes; the loader stores uint8
        return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))

    monkeypatch.setattr(keras.datasets.mnist, "load_data", downloaded)
    folder = tmp_path / "cache"
    (a, b), _ = data.load("mnist", data_dir=folder)
    assert calls == [1]
    assert [p.name for p in folder.iterdir()] == ["mnist.npz"]  # no temporary file left
    np.testing.assert_array_equal(a, x_train)
    assert b.dtype == np.uint8

    no_download(monkeypatch, calls)  # a second load must not download again
    (a2, b2), (c2, d2) = data.load("mnist", data_dir=folder)
    assert calls == [1]
    for got, want in ((a2, x_train), (b2, y_train), (c2, x_test), (d2, y_test)):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    with np.load(folder / "mnist.npz", allow_pickle=False) as f:
        assert sorted(f.files) == sorted(data.KEYS)


def test_a_download_that_fails_while_saving_leaves_no_file(tmp_path, monkeypatch, mnist):
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: mnist)

    def disk_full(file, **arrays):
        with open(file, "wb") as f:
            f.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises((OSError, Assignment4Error)):
        data.load("mnist", data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither a half file nor a temporary one


# --- pipelines --------------------------------------------------------------------------


def corner_images(n: int = 10, shape=(28, 28)) -> np.ndarray:
    """Black images with a white top-left pixel."""
    x = np.zeros((n, *shape), np.uint8)
    x[:, 0, 0] = 255
    return x


@pytest.mark.parametrize("scale, low, high", [("unit", 0.0, 1.0), ("symmetric", -1.0, 1.0)])
def test_pipeline_scales_exactly_and_adds_the_channel_axis(scale, low, high):
    batch = next(iter(data.pipeline(corner_images(), batch_size=4, scale=scale, shuffle=False)))
    x = np.asarray(batch)
    assert x.dtype == np.float32 and x.shape == (4, 28, 28, 1)
    assert np.all(x[:, 0, 0, 0] == high)
    assert np.all(x[:, 1:, :, :] == low) and np.all(x[:, 0, 1:, :] == low)


def test_pipeline_keeps_color_images_as_they_are():
    x = corner_images(3, (32, 32, 3))
    (batch,) = list(data.pipeline(x, batch_size=8, scale="symmetric", shuffle=False))
    assert batch.shape == (3, 32, 32, 3)
    assert np.all(np.asarray(batch)[:, 0, 0, :] == 1.0) and np.asarray(batch)[:, 5].max() == -1.0


def numbered(n: int) -> np.ndarray:
    """Image i is filled with the value i, so the order of a pipeline can be read back."""
    return np.repeat(np.arange(n, dtype=np.uint8), 28 * 28).reshape(n, 28, 28)


def order(ds) -> list[int]:
    return [round(float(v) * 255) for b in ds for v in np.asarray(b)[:, 0, 0, 0]]


def test_pipeline_keeps_the_last_partial_batch():
    ds = data.pipeline(numbered(10), batch_size=4)
    assert [int(b.shape[0]) for b in ds] == [4, 4, 2]
    assert sorted(order(ds)) == list(range(10))  # every image once: nothing dropped


def test_pipeline_shuffles_reproducibly_by_seed():
    images = numbered(60)
    a, b = data.pipeline(images, 16, seed=3), data.pipeline(images, 16, seed=3)
    first_a, first_b = order(a), order(b)
    assert first_a == first_b
    assert first_a != list(range(60))  # it does shuffle
    second_a, second_b = order(a), order(b)
    assert second_a != first_a and second_a == second_b  # a new order each epoch, still seeded
    assert order(data.pipeline(images, 16, seed=4)) != first_b
    assert order(data.pipeline(images, 16, shuffle=False)) == list(range(60))


def test_pipeline_limit_takes_the_first_images():
    ds = data.pipeline(numbered(50), batch_size=8, limit=7)
    assert sorted(order(ds)) == list(range(7))
    with pytest.raises(ValueError):
        data.pipeline(numbered(5), limit=0)


def test_pipeline_rejects_unknown_scale():
    with pytest.raises(ValueError, match="unit"):
        data.pipeline(numbered(5), scale="zero_one")
