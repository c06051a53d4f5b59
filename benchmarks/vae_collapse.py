"""Why the MLP VAE on CIFAR-10 collapsed: the same training with one thing changed at a time.

    python benchmarks/vae_collapse.py [variants...] [--epochs 2] [--id vae_cifar10] [--seed 0]

Variants (default: all):
    registry      the project's model: posterior heads initialised to zero (q(z|x) = prior)
    glorot_heads  Keras' default Glorot heads, as before the fix
    torch_init    Glorot heads replaced by PyTorch's default init (every Dense layer:
                  kernel and bias uniform in +-1/sqrt(fan_in))
    keras_adam    Glorot heads, Keras' own Adam instead of the project's fused one

For each it prints the loss terms of one test batch before training, the train and test
reconstruction and KL per epoch, and the share of "dead" ReLU units after training (units
that output 0 for every image of a test batch) in the encoder's and decoder's hidden layers.
"""

from __future__ import annotations

import argparse
import json

import assignment4  # noqa: F401  (first: oneDNN and log settings precede TensorFlow)

# isort: split
import keras
import numpy as np

from assignment4 import experiments

VARIANTS = ("registry", "glorot_heads", "torch_init", "keras_adam")


def _reinit(layer, rng, kind: str) -> None:
    kernel, bias = layer.get_weights()
    if kind == "glorot":
        limit = np.sqrt(6.0 / sum(kernel.shape))
        kernel = rng.uniform(-limit, limit, kernel.shape)
        bias = np.zeros_like(bias)
    else:  # PyTorch's nn.Linear default
        bound = 1.0 / np.sqrt(kernel.shape[0])
        kernel = rng.uniform(-bound, bound, kernel.shape)
        bias = rng.uniform(-bound, bound, bias.shape)
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])


def dead_relu_share(network, inputs) -> list[float]:
    """Share of each ReLU Dense layer's units that output 0 for every input."""
    relu = [
        layer.output
        for layer in network.layers
        if isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.relu
    ]
    if not relu:  # convolutional networks: their ReLUs follow batch norm, not a Dense layer
        return []
    outputs = keras.Model(network.inputs, relu)(inputs)
    return [round(float(np.mean(np.asarray(a).max(axis=0) <= 0)), 3) for a in outputs]


def probe(exp_id: str, variant: str, epochs: int, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    exp = experiments.get(exp_id)
    train, test = exp.datasets("full", seed=seed)
    model = exp.build(seed=seed)
    rng = np.random.default_rng(seed)
    if variant != "registry":
        heads = [model.encoder.get_layer(n) for n in ("z_mean", "z_log_var")]
        for layer in heads:
            _reinit(layer, rng, "glorot")
    if variant == "torch_init":
        for net in (model.encoder, model.decoder):
            for layer in net.layers:
                if isinstance(layer, keras.layers.Dense):
                    _reinit(layer, rng, "torch")
    if variant == "keras_adam":
        lr = exp.optimizers["optimizer"]["config"]["learning_rate"]
        model.compile(optimizer=keras.optimizers.Adam(lr), steps_per_execution=8)
    x = next(iter(test))
    before = {k: round(float(v), 3) for k, v in model.compute_losses(x).items()}
    history = model.fit(train, epochs=epochs, validation_data=test, verbose=0, shuffle=False)
    mean, _ = model.encode(x)
    return {
        "variant": variant,
        "before_training": before,
        **{
            k: [round(v, 3) for v in history.history[k]]
            for k in ("reconstruction", "kl", "val_reconstruction", "val_kl")
        },
        "dead_relu_encoder": dead_relu_share(model.encoder, x),
        "dead_relu_decoder": dead_relu_share(model.decoder, mean),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", metavar="variant", help=", ".join(VARIANTS))
    parser.add_argument("--id", default="vae_cifar10")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}: choose from {VARIANTS}")
    for variant in args.variants or VARIANTS:
        print(json.dumps(probe(args.id, variant, args.epochs, args.seed)), flush=True)


if __name__ == "__main__":
    main()
