"""assignment4: VAE, GAN and WGAN on MNIST and CIFAR-10 with Keras 3 (TensorFlow backend).

`from assignment4 import experiments` is the entry point; see README.md.
"""

import os as _os
import platform as _platform
import sys as _sys

from assignment4 import startup as _startup

# Quiet TensorFlow's C++ log lines (INFO, WARNING and ERROR) unless the user set the level;
# `python -m assignment4 --verbose` sets it to 0. The lines TensorFlow writes while its
# libraries load ignore the variable; `startup` filters those by the same level.
_os.environ.setdefault(_startup.LEVEL_ENV, _startup.DEFAULT_LEVEL)
_startup.install()
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow turns its oneDNN CPU kernels on by itself only on x86 CPUs with AVX-512 neural
# network extensions (Cascade Lake and newer); elsewhere it runs Eigen's kernels, which train
# convolutions slower (docs/speed.md has the measurements). The variable must be set before
# TensorFlow loads, so here; `TF_ENABLE_ONEDNN_OPTS=0` in the environment still turns it off.
if _platform.machine().lower() in ("x86_64", "amd64"):
    if "tensorflow" in _sys.modules and "TF_ENABLE_ONEDNN_OPTS" not in _os.environ:
        from tensorflow.python.util import _pywrap_util_port

        if not _pywrap_util_port.IsMklEnabled():
            import warnings

            warnings.warn(
                "TensorFlow was imported before assignment4, so it runs without its oneDNN "
                "CPU kernels (on CPUs without AVX-512 that trains convolutions markedly "
                "slower). Import assignment4 before keras/tensorflow, or set "
                "TF_ENABLE_ONEDNN_OPTS=1 before Python starts.",
                stacklevel=2,
            )
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
