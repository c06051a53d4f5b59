"""The three profiles: how much of an experiment to run ('full', 'quick', 'smoke').

`experiments` reads them for its epochs and data plans; the runner reads
them from here, below the registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from assignment4.errors import ConfigError

PROFILE_ENV = "ASSIGNMENT4_PROFILE"


@dataclass(frozen=True)
class Profile:
    """How much of an experiment to run.

    Args:
        name: 'full', 'quick' or 'smoke'.
        epochs: default epochs (an experiment may set its own for this profile).
        train_size / test_size: use only the first N images (None: all).
        sample_every: write a sample grid every this many epochs (and after the last).
    """

    name: str
    epochs: int
    train_size: int | None
    test_size: int | None
    sample_every: int
    description: str


PROFILES = {
    "full": Profile("full", 200, None, None, 10, "the report's settings: 200 epochs, all data"),
    "quick": Profile("quick", 10, None, None, 5, "every figure on a 2-core CPU, 10-30 min each"),
    "smoke": Profile("smoke", 2, 640, 256, 1, "tests and notebook checks: seconds each"),
}


def profile(name: str | None = None) -> Profile:
    """The named profile; `None` means $ASSIGNMENT4_PROFILE, else 'full'."""
    name = name or os.environ.get(PROFILE_ENV) or "full"
    if name not in PROFILES:
        raise ConfigError(f"Unknown profile {name!r}: choose one of {', '.join(PROFILES)}.")
    return PROFILES[name]
