"""Keras dtype policies for training: mixed bfloat16 where the hardware computes it natively.

Under Keras' `mixed_bfloat16` policy the layers compute in bfloat16 while weights, optimizer
state and the losses stay float32. On CPUs with AVX-512 BF16 (or AMX) and on GPUs of compute
capability 8.0 or newer that is faster; elsewhere bfloat16 is emulated and slower, so the
registry's `precision="auto"` picks it only where it is native:

    from assignment4.models import precision
    precision.resolve("auto")        # 'mixed_bfloat16' or 'float32', for this machine
    with precision.policy("mixed_bfloat16"):
        model = build()              # layers made here keep the policy
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

from assignment4.errors import ConfigError

PRECISIONS = ("float32", "mixed_bfloat16", "auto")


@functools.lru_cache(maxsize=1)
def native_bfloat16() -> str | None:
    """Where this machine computes bfloat16 natively ('GPU ...' / 'CPU ...'), or None.

    With GPUs visible, all of them must be of compute capability 8.0 or newer (a T4 is 7.5);
    without, the CPU must report AVX-512 BF16 or AMX BF16 (Linux' /proc/cpuinfo).
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [
            tf.config.experimental.get_device_details(g).get("compute_capability") for g in gpus
        ]
        if all(c is not None and tuple(c) >= (8, 0) for c in capabilities):
            return f"GPU of compute capability {'.'.join(map(str, min(capabilities)))}"
        return None
    cpuinfo = Path("/proc/cpuinfo")
    flags = set()
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"CPU with {' and '.join(found)}" if found else None


def check(name: str, what: str = "precision") -> str:
    """`name` if it is one of PRECISIONS; a ConfigError listing them otherwise."""
    if name not in PRECISIONS:
        raise ConfigError(f"Unknown {what} {name!r}: use one of {', '.join(PRECISIONS)}.")
    return name


def resolve(name: str) -> str:
    """The Keras dtype policy for `name` on this machine: 'auto' becomes 'mixed_bfloat16'
    where bfloat16 is native (`native_bfloat16`) and 'float32' elsewhere."""
    if check(name) != "auto":
        return name
    return "mixed_bfloat16" if native_bfloat16() else "float32"


@contextlib.contextmanager
def policy(name: str):
    """Keras' global dtype policy set to `name` inside the block, restored after it."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
