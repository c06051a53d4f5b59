"""assignment4: VAE, GAN and WGAN on MNIST and CIFAR-10 with Keras 3 (TensorFlow backend).

`from assignment4 import experiments` is the entry point; see README.md.
"""

import os as _os

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
