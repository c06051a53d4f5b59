"""Light stand-ins shared by the plot and report tests (no TensorFlow needed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exp:
    """A stand-in for an `experiments.Experiment`: only the attributes plots and report read."""

    id: str
    figure: int
    table: int
    dataset: str
    family: str
    title: str
    latent_dim: int = 2
    quick_epochs: int = 2
