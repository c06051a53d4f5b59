"""Sample-quality metrics, collapse diagnostics, and the feature classifiers with their
committed weights."""

from assignment4.evaluation.scoring import *
from assignment4.evaluation.scoring import _REAL_FLOOR  # noqa: F401
