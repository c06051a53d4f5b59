"""Image grids as uint8 arrays and PNG files: the runs' sample grids and the report's tables.

No matplotlib here: the runner writes its sample grids with these two functions alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from assignment4.fileio import atomic_path


def image_grid(images_uint8: np.ndarray, rows: int, cols: int, gap: int = 2) -> np.ndarray:
    """Tile images into one uint8 image, row by row, with `gap` white pixels between tiles.

    Args:
        images_uint8: (N, H, W), (N, H, W, 1) or (N, H, W, 3) uint8; the first rows*cols are
            used, missing tiles stay white.
    Returns:
        (rows*H + (rows-1)*gap, cols*W + (cols-1)*gap[, 3]) uint8.
    """
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8:
        raise ValueError(f"image_grid expects uint8 images, got {images.dtype}")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(f"expected (N, H, W) or (N, H, W, 3) images, got shape {images.shape}")
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be positive, got {rows}x{cols}")
    h, w = images.shape[1:3]
    shape = (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap) + images.shape[3:]
    grid = np.full(shape, 255, dtype=np.uint8)
    for k, image in enumerate(images[: rows * cols]):
        r, c = divmod(k, cols)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return grid


def save_png(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"save_png expects uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return Path(path)
