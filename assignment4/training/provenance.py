"""What every run records about where it ran: package versions, devices and kernels, the
time, and the process's peak memory."""

from __future__ import annotations

import datetime as _dt
import os
import platform

import keras
import numpy as np
import psutil
import tensorflow as tf

import assignment4


def versions() -> dict:
    """Package versions recorded in every artifact."""
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "assignment4": assignment4.__version__,
    }


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels (see assignment4/__init__.py)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def devices() -> list[str]:
    gpus = tf.config.list_logical_devices("GPU")
    kernels = ", oneDNN kernels" if onednn_enabled() else ", Eigen kernels"
    return [d.name for d in gpus] or [f"CPU ({os.cpu_count()} cores{kernels})"]


def device_line() -> str:
    """One line: TensorFlow and Keras versions, the devices and kernels that will be used.

    Physical devices only: the runtime is not started, so logical devices can still be set.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in gpus]  # fmt: skip
        where = f"{len(gpus)} GPU(s): {', '.join(names)} (cuDNN kernels)"
    else:
        kernels = "oneDNN" if onednn_enabled() else "Eigen"
        where = f"CPU ({os.cpu_count()} cores, {kernels} kernels), no GPU visible"
    return f"TensorFlow {tf.__version__}, Keras {keras.__version__} on {where}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (psutil: Linux, macOS, Windows).

    Where the system keeps no peak (macOS), the current resident memory is the lower bound.
    """
    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)  # Windows
    if peak is None:
        try:
            with open("/proc/self/status") as status:  # Linux: VmHWM, the high-water mark
                line = next(s for s in status if s.startswith("VmHWM:"))
            peak = int(line.split()[1]) * 1024
        except (OSError, StopIteration, ValueError):
            peak = info.rss
    return round(peak / 2**20, 1)


def now() -> str:
    """The current UTC time, to the second, in ISO format."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
