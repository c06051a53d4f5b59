"""Eager PyTorch CPU training loops: the speed yardstick for the Keras models.

The project aims to train at least as fast as an equivalent, plainly
written eager PyTorch loop. This file is that loop, for five of the report's experiments,
with the architectures and optimizers of the report (README, "The nine experiments") and batch size 128:

    vae_mnist_z128   MLP VAE, BCE-with-logits summed over pixels + KL, Adam 1e-3
    gan_mnist        MLP GAN, BCE from logits, non-saturating G loss, Adam 2e-4 (beta1 0.5)
    wgan_mnist       same G, linear critic, 5 critic steps per G step, clip 0.01, RMSprop 5e-5
    convvae_cifar10  conv VAE, z=512, squared error summed + KL, batch norm, Adam 1e-3
    dcgan_cifar10    DCGAN with batch norm, BCE from logits, Adam 2e-4 (beta1 0.5)

The loop is what a competent PyTorch user writes: `nn.Module` networks, one optimizer per
network, `loss.backward()` and `opt.step()`; images held in memory as uint8 tensors
(NCHW), each batch gathered by indexing a shuffled permutation and scaled to float on the
fly. No `torch.compile`, no DataLoader workers.

Measurement mirrors `python -m assignment4 bench`: per experiment, a warm-up of a few
steps, then one timed pass over N training images (default: one epoch, the last batch
keeping the remainder as Keras' `fit` does). Reported: images per second (for the WGAN,
images the critic sees), the number of threads and the torch version.

Usage:
    python benchmarks/torch_reference.py [ids...] [--images N] [--json FILE] [--threads T]

Torch is not a dependency of the `assignment4` package; run this from its own virtual
environment (see benchmarks/README.md). It reads the data with numpy only.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
BATCH_SIZE = 128
WARMUP_STEPS = 20
LEAK = 0.2  # LeakyReLU(0.2) throughout the report
GAN_LATENT_DIM = 128  # the report's "G: z128-..."; the DCGAN uses the same width
N_CRITIC = 5
CLIP_VALUE = 0.01


# --- Data ------------------------------------------------------------------------------------


def load_images(dataset: str) -> torch.Tensor:
    """Training images of `dataset` ('mnist' or 'cifar10') as a uint8 NCHW tensor in memory."""
    with np.load(DATA_DIR / f"{dataset}.npz") as arrays:
        x = arrays["x_train"]
    if x.ndim == 3:  # MNIST (N, 28, 28) -> (N, 1, 28, 28)
        x = x[:, None]
    else:  # CIFAR-10 (N, 32, 32, 3) -> (N, 3, 32, 32), once, so batches are contiguous
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return torch.from_numpy(x)


def scale_batch(images: torch.Tensor, scale: str) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] ('unit', VAEs) or [-1, 1] ('symmetric', GANs)."""
    x = images.float()
    return x.div_(255.0) if scale == "unit" else x.div_(127.5).sub_(1.0)


def shuffled_order(n_data: int, n_images: int, generator: torch.Generator) -> torch.Tensor:
    """`n_images` indices: fresh permutations of `range(n_data)`, one after another."""
    epochs = math.ceil(n_images / n_data)
    return torch.cat([torch.randperm(n_data, generator=generator) for _ in range(epochs)])[
        :n_images
    ]


# --- Networks --------------------------------------------------------------------------------


class MLPVAE(nn.Module):
    """Encoder 784-512-256-(mean, log-var), decoder z-256-512-784 logits; ReLU."""

    def __init__(self, image_shape: tuple[int, ...] = (1, 28, 28), latent_dim: int = 128):
        super().__init__()
        self.image_shape = image_shape
        pixels = math.prod(image_shape)
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(pixels, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU()
        )
        self.z_mean = nn.Linear(256, latent_dim)
        self.z_log_var = nn.Linear(256, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU()
        )
        self.logits = nn.Linear(512, pixels)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.z_mean(h), self.z_log_var(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits(self.decoder(z)).view(-1, *self.image_shape)


class ConvVAE(nn.Module):
    """The report's conv VAE: Conv 32/64/128 4x4 s2 BN-LReLU; Dense 4x4x128, ConvT 128/64/32."""

    def __init__(self, channels: int = 3, latent_dim: int = 512):
        super().__init__()
        blocks, c_in = [], channels
        for f in (32, 64, 128):  # 32 -> 16 -> 8 -> 4
            blocks += [nn.Conv2d(c_in, f, 4, 2, 1, bias=False), nn.BatchNorm2d(f)]
            blocks += [nn.LeakyReLU(LEAK)]
            c_in = f
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        self.z_mean = nn.Linear(128 * 4 * 4, latent_dim)
        self.z_log_var = nn.Linear(128 * 4 * 4, latent_dim)
        self.project = nn.Linear(latent_dim, 128 * 4 * 4)
        blocks, c_in = [], 128
        for f in (128, 64, 32):  # 4 -> 8 -> 16 -> 32
            blocks += [nn.ConvTranspose2d(c_in, f, 4, 2, 1, bias=False), nn.BatchNorm2d(f)]
            blocks += [nn.ReLU()]
            c_in = f
        self.decoder = nn.Sequential(*blocks, nn.Conv2d(32, channels, 3, 1, 1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.z_mean(h), self.z_log_var(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.project(z).view(-1, 128, 4, 4))


class MLPGenerator(nn.Module):
    """z128-256-512-1024-784 tanh, LeakyReLU between."""

    def __init__(self, latent_dim: int = GAN_LATENT_DIM, image_shape=(1, 28, 28)):
        super().__init__()
        self.image_shape = image_shape
        layers, width = [], latent_dim
        for units in (256, 512, 1024):
            layers += [nn.Linear(width, units), nn.LeakyReLU(LEAK)]
            width = units
        self.net = nn.Sequential(*layers, nn.Linear(width, math.prod(image_shape)), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    """784-1024-512-256-1, LeakyReLU + Dropout between; one logit (or critic value) out."""

    def __init__(self, image_shape=(1, 28, 28), dropout: float = 0.3):
        super().__init__()
        layers, width = [nn.Flatten()], math.prod(image_shape)
        for units in (1024, 512, 256):
            layers += [nn.Linear(width, units), nn.LeakyReLU(LEAK)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = units
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvGenerator(nn.Module):
    """Dense 4x4x256-BN-ReLU, ConvT 128/64 4x4 s2 BN-ReLU, ConvT 3 4x4 s2 tanh."""

    def __init__(self, latent_dim: int = GAN_LATENT_DIM, channels: int = 3):
        super().__init__()
        # As in the Keras model: batch norm on the Dense output, before the reshape.
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 256 * 4 * 4, bias=False), nn.BatchNorm1d(256 * 4 * 4), nn.ReLU()
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False),  # 4 -> 8
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),  # 8 -> 16
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, channels, 4, 2, 1),  # 16 -> 32
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(-1, 256, 4, 4))


class ConvDiscriminator(nn.Module):
    """Conv 64 4x4 s2-LReLU, Conv 128/256 4x4 s2 BN-LReLU, Dense 1 (a logit)."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1),  # 32 -> 16
            nn.LeakyReLU(LEAK),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),  # 16 -> 8
            nn.BatchNorm2d(128),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(128, 256, 4, 2, 1, bias=False),  # 8 -> 4
            nn.BatchNorm2d(256),
            nn.LeakyReLU(LEAK),
            nn.Flatten(),
            nn.Linear(256 * 4 * 4, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --- Training steps --------------------------------------------------------------------------


class VAETrainer:
    """One Adam step on the negative ELBO (per image, averaged over the batch)."""

    scale = "unit"

    def __init__(self, model: nn.Module, reconstruction: str):
        self.model = model.train()
        self.reconstruction = reconstruction
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = x.shape[0]
        mean, log_var = self.model.encode(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        logits = self.model.decode_logits(z)
        if self.reconstruction == "bce":
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
        else:
            rec = F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / batch
        kl = -0.5 * torch.sum(1.0 + log_var - mean.square() - log_var.exp()) / batch
        loss = rec + kl
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), "reconstruction": rec.detach(), "kl": kl.detach()}


class GANTrainer:
    """One discriminator step and one (non-saturating) generator step per real batch."""

    scale = "symmetric"

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        self.generator = generator.train()
        self.discriminator = discriminator.train()
        self.g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = torch.randn(x.shape[0], GAN_LATENT_DIM)
        fake = self.generator(z)

        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()

        # The generator step reuses `fake` (as the PyTorch DCGAN example does) and skips the
        # discriminator's weight gradients, which it does not need.
        self.discriminator.requires_grad_(False)
        fake_logits = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()
        self.discriminator.requires_grad_(True)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


class WGANTrainer:
    """One critic step per real batch; a generator step after every `n_critic` of them."""

    scale = "symmetric"

    def __init__(self, generator: nn.Module, critic: nn.Module, n_critic=N_CRITIC):
        self.generator = generator.train()
        self.critic = critic.train()
        self.n_critic = n_critic
        self.g_optimizer = torch.optim.RMSprop(generator.parameters(), lr=5e-5)
        self.c_optimizer = torch.optim.RMSprop(critic.parameters(), lr=5e-5)
        self.critic_steps = 0
        self.g_loss: torch.Tensor | None = None  # none until the first generator step

    def step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = x.shape[0]
        with torch.no_grad():
            fake = self.generator(torch.randn(batch, GAN_LATENT_DIM))
        c_loss = self.critic(fake).mean() - self.critic(x).mean()
        self.c_optimizer.zero_grad()
        c_loss.backward()
        self.c_optimizer.step()
        with torch.no_grad():  # weight clipping after every critic update
            for p in self.critic.parameters():
                p.clamp_(-CLIP_VALUE, CLIP_VALUE)
        self.critic_steps += 1

        if self.critic_steps % self.n_critic == 0:
            self.critic.requires_grad_(False)
            g_loss = -self.critic(self.generator(torch.randn(batch, GAN_LATENT_DIM))).mean()
            self.g_optimizer.zero_grad()
            g_loss.backward()
            self.g_optimizer.step()
            self.critic.requires_grad_(True)
            self.g_loss = g_loss.detach()
        losses = {"c_loss": c_loss.detach()}
        if self.g_loss is not None:
            losses["g_loss"] = self.g_loss
        return losses


EXPERIMENTS: dict[str, tuple[str, Callable[[], object]]] = {
    "vae_mnist_z128": ("mnist", lambda: VAETrainer(MLPVAE((1, 28, 28), 128), "bce")),
    "gan_mnist": ("mnist", lambda: GANTrainer(MLPGenerator(), MLPDiscriminator())),
    "wgan_mnist": ("mnist", lambda: WGANTrainer(MLPGenerator(), MLPDiscriminator())),
    "convvae_cifar10": ("cifar10", lambda: VAETrainer(ConvVAE(3, 512), "mse")),
    "dcgan_cifar10": ("cifar10", lambda: GANTrainer(ConvGenerator(), ConvDiscriminator())),
}


def check_shapes() -> None:
    """Assert that every network maps to and from the data sets' image shapes."""
    with torch.no_grad():
        z = torch.randn(2, GAN_LATENT_DIM)
        assert MLPGenerator().eval()(z).shape == (2, 1, 28, 28)
        assert ConvGenerator().eval()(z).shape == (2, 3, 32, 32)
        assert ConvDiscriminator().eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 1)
        assert MLPDiscriminator().eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 1)
        vae = ConvVAE().eval()
        mean, _ = vae.encode(torch.zeros(2, 3, 32, 32))
        assert mean.shape == (2, 512)
        assert vae.decode_logits(mean).shape == (2, 3, 32, 32)
        assert MLPVAE().eval().decode_logits(torch.zeros(2, 128)).shape == (2, 1, 28, 28)


# --- Measurement -----------------------------------------------------------------------------


def train_pass(
    trainer,
    images: torch.Tensor,
    n_images: int,
    generator: torch.Generator,
    log_every: int = 0,
) -> dict[str, torch.Tensor]:
    """Train on `n_images` shuffled images in batches of 128; return the last step's losses."""
    order = shuffled_order(len(images), n_images, generator)
    losses: dict[str, torch.Tensor] = {}
    for step, start in enumerate(range(0, n_images, BATCH_SIZE), 1):
        x = scale_batch(images[order[start : start + BATCH_SIZE]], trainer.scale)
        losses = trainer.step(x)
        if log_every and step % log_every == 0:
            print(f"  step {step}: {format_losses(losses)}", flush=True)
    return losses


def format_losses(losses: dict[str, torch.Tensor]) -> str:
    """`name=value` pairs for a progress line."""
    return " ".join(f"{k}={v.item():.4g}" for k, v in losses.items())


def benchmark(exp_id: str, n_images: int | None, warmup: int, log_every: int = 0) -> dict:
    """Warm up, then time one pass over `n_images` (default: the whole training set)."""
    dataset, make_trainer = EXPERIMENTS[exp_id]
    images = load_images(dataset)
    n_images = len(images) if n_images is None else n_images
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    trainer = make_trainer()

    if warmup:
        train_pass(trainer, images, warmup * BATCH_SIZE, generator)
    start = time.perf_counter()
    losses = train_pass(trainer, images, n_images, generator, log_every)
    seconds = time.perf_counter() - start

    final = {k: v.item() for k, v in losses.items()}
    finite = all(math.isfinite(v) for v in final.values())
    return {
        "id": exp_id,
        "images_per_second": n_images / seconds,
        "images_timed": n_images,
        "seconds": seconds,
        "final_losses": final,
        "losses_finite": finite,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "ids", nargs="*", help=f"experiments (default: all): {', '.join(EXPERIMENTS)}"
    )
    parser.add_argument(
        "--images", type=int, default=None, help="images to time (default: one full epoch)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(T)")
    parser.add_argument("--warmup", type=int, default=WARMUP_STEPS, help="untimed steps first")
    parser.add_argument(
        "--log-every", type=int, default=0, help="print losses every K timed steps (0: never)"
    )
    args = parser.parse_args(argv)
    unknown = [i for i in args.ids if i not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    if args.images is not None and args.images <= 0:
        parser.error("--images must be positive")
    if args.warmup < 0:
        parser.error("--warmup must be zero or positive")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    check_shapes()
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} threads, {platform.processor() or platform.machine()}"
    )
    results = []
    for exp_id in args.ids or list(EXPERIMENTS):
        result = benchmark(exp_id, args.images, args.warmup, args.log_every)
        results.append(result)
        print(
            f"{exp_id:16s} {result['images_per_second']:9.1f} images/s"
            f"  ({result['images_timed']} images in {result['seconds']:.1f} s;"
            f" last step {' '.join(f'{k}={v:.4g}' for k, v in result['final_losses'].items())})",
            flush=True,
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"torch_version": torch.__version__, "threads": threads, "results": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(r["losses_finite"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
