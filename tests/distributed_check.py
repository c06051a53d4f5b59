"""One train step under MirroredStrategy (2 logical CPUs) vs one step on one device.

Run as a script (TensorFlow's logical devices must be configured before anything else
touches the runtime): python tests/distributed_check.py OUT.json
For VAE, GAN and WGAN it records the largest weight difference, both sets of logged losses,
the largest critic weight on each replica after clipping, how far the generator average
moved and how far its replicas differ, and every noise draw of three steps on both replicas.
tests/test_distribute.py asserts on the JSON.
"""

import dataclasses
import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np

from assignment4 import experiments

REPLICAS = 2
PER_REPLICA = 16  # images per replica per (critic) step


def constant_noise(shape):
    # The same value in every row: which rows a replica holds cannot change the noise, so
    # single- and multi-replica steps see the same z and the same eps.
    return tf.fill(shape, 0.3)


def experiment(exp_id):
    exp = experiments.get(exp_id)
    # Plain SGD: Adam and RMSprop are nearly invariant to the gradients' scale, so with them a
    # missing 1/replicas factor would go unnoticed; with SGD it doubles every update.
    sgd = {"class_name": "SGD", "config": {"learning_rate": 0.05}}
    # float32: the check compares one device with two replicas to 1e-5, tighter than bfloat16
    exp = dataclasses.replace(
        exp, optimizers={name: sgd for name in exp.optimizers}, precision="float32"
    )
    if exp.family in ("gan", "wgan"):
        # Dropout masks are random per replica: leave them out here. A generator average
        # (decay 0.5, so that one step moves it visibly) is updated across replicas too.
        net = "discriminator" if exp.family == "gan" else "critic"
        model = {**exp.model, net: {**exp.model[net], "dropout": 0.0}, "generator_ema": 0.5}
        exp = dataclasses.replace(exp, model=model)
    return exp


def batches(exp, rng):
    """Per-replica batches, and the single-device batch that holds the same critic batches."""
    n_critic = exp.model.get("n_critic", 1)
    per_replica = rng.uniform(
        0, 1, (REPLICAS, n_critic * PER_REPLICA, *exp.data_spec.image_shape)
    ).astype("float32")
    if exp.data_spec.channels == 1 and len(exp.data_spec.image_shape) == 2:
        per_replica = per_replica[..., None]
    if exp.scale == "symmetric":
        per_replica = per_replica * 2 - 1
    # Critic step i on replica r uses slice i of that replica's batch; on one device, slice i
    # of the whole batch must hold the same images: interleave the replicas slice by slice.
    shape = per_replica.shape[2:]
    single = (
        per_replica.reshape(REPLICAS, n_critic, PER_REPLICA, *shape)
        .transpose(1, 0, 2, *range(3, 3 + len(shape)))
        .reshape(REPLICAS * n_critic * PER_REPLICA, *shape)
    )
    return per_replica, single


def step(exp, strategy, data, weights):
    model = exp.build(strategy=strategy, seed=0, jit_compile=False)
    model.set_weights(weights)
    model.normal = constant_noise
    if strategy is None:
        logs = tf.function(model.train_step)(tf.constant(data))
    else:
        parts = tf.constant(data)
        values = strategy.experimental_distribute_values_from_function(
            lambda ctx: parts[ctx.replica_id_in_sync_group]
        )
        logs = tf.function(lambda v: strategy.run(model.train_step, args=(v,)))(values)
        logs = {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}
    logs = {m.name: float(m.result()) for m in model.metrics}
    return model, logs


def critic_max_per_replica(model, strategy):
    out = []
    for v in model.critic.trainable_variables:
        values = strategy.experimental_local_results(getattr(v, "value", v))
        out.append([float(tf.reduce_max(tf.abs(x))) for x in values])
    return np.max(np.array(out), axis=0).tolist()


def average_row(model, strategy, weights_before):
    """How far the generator and its average moved in the step (largest change of a weight),
    and the largest gap between the average's replicas."""
    row = {"generator_moved": 0.0, "average_moved": 0.0, "average_replica_gap": 0.0}
    nets = {id(v): "generator" for v in model.generator.weights}
    nets.update({id(v): "average" for v in model.generator_average.weights})
    for v, before in zip(model.weights, weights_before, strict=True):
        net = nets.get(id(v))
        if net is None:
            continue
        a, b = strategy.experimental_local_results(getattr(v, "value", v))
        row[f"{net}_moved"] = max(row[f"{net}_moved"], float(np.abs(a.numpy() - before).max()))
        if net == "average":
            gap = float(np.abs(a.numpy() - b.numpy()).max())
            row["average_replica_gap"] = max(row["average_replica_gap"], gap)
    return row


def noise_draws(strategy, exp_id, rng, steps=3):
    """Every noise draw of `steps` real train steps on both replicas (the VAE's
    reparameterisation noise, a GAN's or WGAN's latent points, n_critic + 1 draws a step for
    a WGAN): the first row of each, with the replica and step that drew it."""
    exp = experiment(exp_id)
    model = exp.build(strategy=strategy, seed=0, jit_compile=False)
    real_normal, draws = model.normal, []

    def recording(shape):
        z = real_normal(shape)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        draws.append((replica, z[0]))
        return z

    model.normal = recording
    parts = tf.constant(batches(exp, rng)[0])
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: parts[ctx.replica_id_in_sync_group]
    )

    @tf.function
    def one_step(v):
        draws.clear()
        strategy.run(model.train_step, args=(v,))
        # MirroredStrategy replicates in one graph: the draws of both replicas are here
        return [tf.cast(r, tf.int32) for r, _ in draws], [tf.cast(z, tf.float32) for _, z in draws]

    rows = []
    for step_index in range(steps):
        replicas, zs = one_step(values)
        rows += [(int(r), step_index, z.numpy()) for r, z in zip(replicas, zs)]
    return rows


def noise_row(strategy, exp_id, rng):
    """How many draws, on how many replicas, and the closest pair of draws (0: a repeat)."""
    rows = noise_draws(strategy, exp_id, rng)
    closest = min(
        float(np.abs(a[2][: min(len(a[2]), len(b[2]))] - b[2][: min(len(a[2]), len(b[2]))]).max())
        for i, a in enumerate(rows)
        for b in rows[i + 1 :]
    )
    return {
        "draws": len(rows),
        "replicas": sorted({r for r, _, _ in rows}),
        "steps": sorted({s for _, s, _ in rows}),
        "closest_pair": closest,
    }


def fused_adam_row(strategy, rng):
    """vae_mnist_z128 with the registry's (fused) Adam: replicas agree, and match one device."""
    exp = experiments.get("vae_mnist_z128")
    weights = exp.build(seed=1).get_weights()
    per_replica, single = batches(exp, rng)
    one, _ = step(exp, None, single, weights)
    many, _ = step(exp, strategy, per_replica, weights)
    replica_gap = max(
        float(np.abs(a.numpy() - b.numpy()).max())
        for v in many.trainable_variables
        for a, b in [strategy.experimental_local_results(getattr(v, "value", v))]
    )
    return {
        "optimizer": type(many.optimizer).__module__ + "." + type(many.optimizer).__name__,
        "replica_gap": replica_gap,
        "max_weight_diff": max(
            float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), many.get_weights())
        ),
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(weights, many.get_weights())),
    }


def main(out_path):
    rng = np.random.default_rng(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {"replicas": strategy.num_replicas_in_sync}
    for exp_id in ["vae_mnist_z128", "gan_mnist", "wgan_mnist"]:
        exp = experiment(exp_id)
        weights = exp.build(seed=1).get_weights()
        per_replica, single = batches(exp, rng)
        one, one_logs = step(exp, None, single, weights)
        many, many_logs = step(exp, strategy, per_replica, weights)
        diff = max(
            float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), many.get_weights())
        )
        scale = max(float(np.abs(a).max()) for a in one.get_weights())
        row = {
            "max_weight_diff": diff,
            "max_weight": scale,
            "single_logs": one_logs,
            "mirrored_logs": many_logs,
        }
        if exp.family in ("gan", "wgan"):
            row.update(average_row(many, strategy, weights))
        if exp.family == "wgan":
            row["critic_max_abs_per_replica"] = critic_max_per_replica(many, strategy)
            row["clip_value"] = exp.model["clip_value"]
        results[exp_id] = row
    results["adam"] = fused_adam_row(strategy, rng)
    results["noise"] = {
        exp_id: noise_row(strategy, exp_id, rng)
        for exp_id in ["vae_mnist_z128", "gan_mnist", "wgan_mnist"]
    }
    with open(out_path, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
