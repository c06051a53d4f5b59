"""The hyper-parameters that the report leaves open, said in one line: the figure captions'
settings and the notebooks' summary of an experiment.

    captions.experiment_settings(experiments.get("gan_mnist"))   # from the registry
    captions.run_settings(run_info)                             # from a run's run.json
"""

from __future__ import annotations

# which network each optimizer of a registry entry trains ('' for a VAE's single one)
_OPTIMIZER_OF = {
    "optimizer": "",
    "d_optimizer": "discriminator",
    "critic_optimizer": "critic",
    "g_optimizer": "generator",
}


def settings_text(*, model: dict, optimizers: dict, batch_size: int, precision: str) -> str:
    """'batch 128; encoder 512-256, decoder 256-512; Adam(lr 0.001)' and so on.

    Args:
        model: the model's keyword arguments (network specs, n_critic, ...), as the registry
            holds them.
        optimizers: optimizer name -> Keras optimizer config.
        batch_size: images per (critic) update.
        precision: 'float32', 'mixed_bfloat16' or the registry's 'auto'.
    """
    parts = [f"batch {batch_size}"]
    nets = [(k, v) for k, v in model.items() if isinstance(v, dict) and "type" in v]
    parts.append(", ".join(f"{name} {_network_text(spec)}" for name, spec in nets))
    by_config: dict[str, list[str]] = {}
    for name, config in optimizers.items():
        by_config.setdefault(_optimizer_text(config), []).append(_OPTIMIZER_OF[name])
    parts.extend(
        f"{' and '.join(names)}: {text}" if all(names) else text
        for text, names in by_config.items()
    )
    if "n_critic" in model:
        parts.append(f"n_critic {model['n_critic']}, clip {model['clip_value']:g}")
    if model.get("generator_ema") is not None:
        parts.append(f"samples from a generator EMA {model['generator_ema']:g}")
    if precision == "mixed_bfloat16":
        parts.append("bfloat16 compute (mixed precision)")
    elif precision == "auto":
        parts.append("bfloat16 compute where the hardware has it")
    return "; ".join(parts)


def experiment_settings(exp, precision: str | None = None) -> str:
    """The settings of a registry entry; `precision` names the dtype policy a run used
    (the registry's own value, maybe 'auto', when None)."""
    return settings_text(
        model=exp.model,
        optimizers=exp.optimizers,
        batch_size=exp.batch_size,
        precision=precision or exp.precision,
    )


def run_settings(info: dict) -> str:
    """The settings a run recorded in its run.json ('' when it recorded none): its model and
    optimizers as trained, or the text that runs from before they were recorded kept."""
    if isinstance(info.get("model"), dict) and isinstance(info.get("optimizers"), dict):
        return settings_text(
            model=info["model"],
            optimizers=info["optimizers"],
            batch_size=info.get("batch_size", 128),
            precision=info.get("precision", "float32"),
        )
    return info.get("settings") or ""


def _network_text(spec: dict) -> str:
    """Widths of a network spec: '784-512-256', '7x7x128-64-32 (5x5)'."""
    if "units" in spec:
        return "-".join(map(str, spec["units"]))
    widths = "-".join(map(str, spec["filters"]))
    if "base" in spec:
        widths = "x".join(map(str, spec["base"])) + "-" + widths
    k = spec.get("kernel_size", 4)
    return f"{widths} ({k}x{k})"


def _optimizer_text(config: dict) -> str:
    """'Adam(lr 0.0002, beta_1 0.5)' from a Keras optimizer config."""
    name = config["class_name"].split(">")[-1]
    args = ", ".join(
        f"{'lr' if k == 'learning_rate' else k} {v:g}" for k, v in config["config"].items()
    )
    return f"{name}({args})"
