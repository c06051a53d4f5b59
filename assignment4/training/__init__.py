"""Running one experiment: the runner in phases, its callbacks, resume and run state,
distribution over several devices or machines, monitoring, provenance and the profiles.

    runner        run_experiment: resolve, prepare, record, fit, finish
    callbacks     NaN guard, history, sample grids, stopping on a signal
    runstate      checkpoints, the backup of the last epoch, seed states, the writer's lock
    resume        where a run continues from, and what it may not change
    distribution  tf.distribute strategies, TF_CONFIG, each worker's folder
    monitoring    TensorBoard, the projected time and the ETA
    provenance    versions, devices, peak memory
    fingerprint   which weights a metrics file scored
    profiles      full, quick, smoke
"""

import importlib

# name -> the module that defines it; loaded on first use, so that `training.profiles` (which
# the command line reads before TensorFlow may load) does not pull in Keras
_EXPORTS = {
    "Interrupted": "callbacks",
    "StopOnSignal": "callbacks",
    "STRATEGIES": "distribution",
    "projected_time": "monitoring",
    "device_line": "provenance",
    "devices": "provenance",
    "peak_rss_mb": "provenance",
    "versions": "provenance",
    "run_dir": "runner",
    "run_experiment": "runner",
    "RunConflict": "runstate",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
