"""Projection: find the latent whose image matches a target face, by gradient descent through the generator.

The recipe follows StyleGAN2's projector (Karras et al. 2020, appendix D): Adam on the latent with a learning
rate that ramps up briefly and down with a cosine; Gaussian noise added to the latent early on (ramped to zero)
so the search explores before it settles; per-layer noise maps optimised too, renormalised every step and held
to white noise by a multi-scale autocorrelation penalty. On top of that:

- W (one latent broadcast to all layers, stays in the model's distribution) or W+ (one per layer: matches more,
  morphs less well — a warning is printed when the result lies far from ``w_avg``);
- losses: perceptual (see :mod:`morphstudio.faces.losses`) + pixel L2, both weighted up inside the face mask,
  + distance to ``w_avg`` + the noise regulariser;
- DCGAN (z-space) latents are kept in the Gaussian shell of radius ~sqrt(z_dim), where the model was trained;
- an encoder's guess as the starting point (fewer steps, smaller exploration noise);
- several images optimised as one batch; early stop when the loss plateaus; snapshots for a progress video.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from morphstudio.errors import ProjectionError
from morphstudio.faces import losses as L
from morphstudio.generators.base import to_uint8
from morphstudio.latent import sample_latent_stats

log = logging.getLogger(__name__)


@dataclass
class ProjectConfig:
    """Projection settings (StyleGAN2's projector values unless noted).

    Attributes:
        space: ``w`` (one latent for all layers) or ``w+`` (one per layer).
        steps: Most optimisation steps; ``None`` = 1000 from ``w_avg``, 300 from an encoder's guess.
        lr: Peak learning rate, in units of the latents' per-dimension spread.
        lr_rampup, lr_rampdown: Fractions of the steps spent ramping the learning rate up / down (cosine).
        w_noise: Initial exploration noise on the latent, in units of its per-dimension spread
            (0.05 from ``w_avg``; a quarter of that from an encoder's guess, which is already close).
        w_noise_ramp: Fraction of the steps over which that noise decays to zero (quadratically).
        perceptual: ``auto``, ``lpips``, ``disc``, ``msssim`` or ``none`` (see :func:`losses.perceptual_loss`).
        perceptual_weight: Weight of the perceptual term.
        pixel_weight: Weight of the pixel L2 term (images in [-1, 1]).
        face_weight: Loss weight inside the face mask (1 outside); only used when a mask is given.
        w_avg_weight: Weight of the squared (normalised) distance to ``w_avg``.
        noise_reg_weight: Weight of the noise-map regulariser (1e5 as StyleGAN2).
        optimise_noise: Optimise the generator's noise maps (models with noise inputs only).
        z_shell: For z-space models, keep ``|z|`` within ``sqrt(z_dim) +- 3`` standard deviations of a chi variable.
        patience: Early stop when the best loss has not improved by ``min_delta`` (relative) for this many steps
            (counted only after the exploration noise has died out); 0 disables early stopping.
        min_delta: Relative improvement that counts as progress.
        snapshot_every: Keep the current image every this many steps (0 = none) for a progress video.
        seed: Seed of the exploration noise and initial noise maps.
    """

    space: str = "w+"
    steps: int | None = None
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    w_noise: float | None = None
    w_noise_ramp: float = 0.75
    perceptual: str = "auto"
    perceptual_weight: float = 1.0
    pixel_weight: float = 1.0
    face_weight: float = 2.0
    w_avg_weight: float = 0.0
    noise_reg_weight: float = 1e5
    optimise_noise: bool = True
    z_shell: bool = True
    patience: int = 100
    min_delta: float = 1e-3
    snapshot_every: int = 0
    seed: int = 0

    def settings(self) -> dict[str, Any]:
        """JSON-able dict of every field (saved with results, part of cache keys)."""
        return asdict(self)


@dataclass
class ProjectionResult:
    """What a projection produced.

    Attributes:
        ws: ``[N, num_ws, w_dim]`` float32 best latents.
        images: ``[N, H, W, 3]`` uint8 images of ``ws`` (with the optimised noise).
        noise: Optimised noise maps ``{name: [N, 1, H, W]}`` (empty for models without noise inputs).
        losses: Total loss per step (batch mean).
        best_loss: Per-image best total loss.
        steps: Steps actually run.
        seconds: Wall time of the optimisation.
        stopped_early: True when the plateau rule ended it.
        init: ``"encoder"`` or ``"w_avg"``.
        perceptual: Name of the perceptual term used.
        distance: Per-image distance of ``ws`` from ``w_avg`` in units of the typical distance of mapped random z.
        snapshots: ``[(step, [N, H, W, 3] uint8)]`` when requested.
        settings: The config used, as a dict.
    """

    ws: np.ndarray
    images: np.ndarray
    noise: dict[str, np.ndarray]
    losses: list[float]
    best_loss: np.ndarray
    steps: int
    seconds: float
    stopped_early: bool
    init: str
    perceptual: str
    distance: np.ndarray
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


# Latents farther than this (in typical distances of mapped random z) are flagged: morphs between them break.
FAR_FROM_AVG = 1.5


def default_step_count(has_encoder: bool) -> int:
    """Steps when none are given: 1000 from ``w_avg``, 300 from an encoder's guess (already close)."""
    return 300 if has_encoder else 1000


LATENT_STATS_SAMPLES = 4096  # the projector's (and the encoder's) count and seed: part of their results
LATENT_STATS_SEED = 123


def latent_stats(generator: Any, samples: int = LATENT_STATS_SAMPLES,
                 seed: int = LATENT_STATS_SEED) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Per-dimension spread of mapped random latents around ``w_avg``, and their typical distance from it.

    Returns:
        ``(w_avg [w_dim], w_std [w_dim], typical_distance)`` where ``typical_distance`` is the mean Euclidean
        distance of a mapped random z from ``w_avg`` (the unit the projector's "far from w_avg" warning uses).
    """

    def sample(n: int, s: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(s)  # drawn on the CPU: the same latents on every device
        with torch.no_grad():
            z = torch.randn(n, generator.z_dim, generator=g).to(generator.device)
            return generator.mapping(z, generator.default_c(n))[:, 0].float()

    stats = sample_latent_stats(sample, samples=samples, seed=seed, center=generator.w_avg.detach().float(),
                                row_norm=lambda d: d.norm(dim=-1))
    return stats.center.cpu(), stats.spread.clamp_min(1e-6).cpu(), stats.typical_distance


def to_tensor_images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """``[N, H, W, 3]`` (or ``[H, W, 3]``) uint8 -> ``[N, 3, H, W]`` float in [-1, 1] on ``device``."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    return torch.from_numpy(np.array(arr, dtype=np.uint8)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


def _randn_on(shape: torch.Size, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """CPU-seeded normal noise on ``device`` (the same numbers on every device); to CUDA by an async copy from
    pinned memory, so the optimisation loop does not wait on it."""
    if device.type == "cuda":
        return torch.randn(shape, generator=gen, pin_memory=True).to(device, non_blocking=True)
    return torch.randn(shape, generator=gen).to(device)


class Projector:
    """Projects images into one generator's latent space (reuse it for several calls: stats are computed once).

    Args:
        generator: A :class:`morphstudio.generators.base.Generator`.
        config: Projection settings.
        encoder: Optional :class:`morphstudio.faces.encoder.LatentEncoder` for the starting point.
        vgg_path: VGG16 weights for the LPIPS-like loss (never downloaded).
        warn: Receives user-facing warnings (default: logging).
    """

    def __init__(self, generator: Any, config: ProjectConfig | None = None, *, encoder: Any = None,
                 vgg_path: str | None = None, warn: Callable[[str], None] | None = None) -> None:
        self.G = generator
        self.cfg = config or ProjectConfig()
        if self.cfg.space not in ("w", "w+"):
            raise ProjectionError(f"space must be 'w' or 'w+', got {self.cfg.space!r}")
        self.encoder = encoder
        self.warn = warn or log.warning
        self.device = generator.device
        self.w_avg, self.w_std, self.typical_distance = (
            t.to(self.device) if isinstance(t, torch.Tensor) else t for t in latent_stats(generator))
        self.perceptual, self.perceptual_name = L.perceptual_loss(
            self.cfg.perceptual, vgg_path=vgg_path, generator=generator, warn=self.warn)
        if self.perceptual is not None:
            self.perceptual = self.perceptual.to(self.device)
        self.z_space = generator.family == "dcgan"

    # --- helpers ----------------------------------------------------------------------------------------------

    def default_steps(self) -> int:
        """The most steps :meth:`project` runs."""
        return self.cfg.steps if self.cfg.steps is not None else default_step_count(self.encoder is not None)

    def initial_ws(self, target: torch.Tensor) -> tuple[torch.Tensor, str]:
        """Starting latents ``[N, num_ws or 1, w_dim]``: the encoder's guess or ``w_avg``."""
        n = target.shape[0]
        if self.encoder is not None:
            with torch.no_grad():
                ws = self.encoder(target).float()
            init = "encoder"
        else:
            ws = self.w_avg.expand(n, self.G.num_ws, -1).clone()
            init = "w_avg"
        if self.cfg.space == "w":
            ws = ws.mean(1, keepdim=True)
        return ws.detach(), init

    def _shell(self, w: torch.Tensor) -> None:
        """Project z-space latents back into the shell where ``|z|`` of N(0, I) samples lie (in place)."""
        d = w.shape[-1]
        r0 = math.sqrt(d - 0.5)  # mean of a chi distribution with d degrees of freedom, very nearly
        lo, hi = r0 - 3 * 0.7071, r0 + 3 * 0.7071
        norm = w.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        w.mul_(norm.clamp(lo, hi) / norm)

    def distance_from_avg(self, ws: torch.Tensor) -> torch.Tensor:
        """Per-image mean over layers of ``|w - w_avg|``, in typical distances of mapped random z."""
        return (ws - self.w_avg).norm(dim=-1).mean(-1) / max(self.typical_distance, 1e-8)

    # --- the optimisation -------------------------------------------------------------------------------------

    def project(
        self,
        targets: np.ndarray,
        masks: np.ndarray | None = None,
        *,
        init_ws: np.ndarray | None = None,
        callback: Callable[[int, float, torch.Tensor], None] | None = None,
    ) -> ProjectionResult:
        """Project a batch of images.

        Args:
            targets: ``[N, H, W, 3]`` (or ``[H, W, 3]``) uint8 at the generator's resolution.
            masks: Optional ``[N, H, W]`` face masks in [0, 1] (weights the losses inside the face).
            init_ws: Optional starting latents ``[N, num_ws, w_dim]`` (overrides encoder / ``w_avg``).
            callback: ``callback(step, loss, ws)`` after every step (benchmarks, progress bars).

        Returns:
            The best latents found and everything about how they were found.
        """
        G, cfg = self.G, self.cfg
        target = to_tensor_images(targets, self.device)
        n = target.shape[0]
        if target.shape[-1] != G.resolution or target.shape[-2] != G.resolution:
            raise ProjectionError(f"target images must be {G.resolution}x{G.resolution} for this model, got "
                                  f"{target.shape[-1]}x{target.shape[-2]} (align them, or pass --size)")
        weight = None
        if masks is not None:
            m = torch.from_numpy(np.asarray(masks, dtype=np.float32)).to(self.device)
            weight = L.mask_weights(m.reshape(n, 1, *m.shape[-2:]), cfg.face_weight)
        if init_ws is not None:
            w0 = torch.as_tensor(np.asarray(init_ws, dtype=np.float32), device=self.device).reshape(n, -1, G.w_dim)
            init = "given"
            if cfg.space == "w":
                w0 = w0.mean(1, keepdim=True)
            elif w0.shape[1] == 1:
                w0 = w0.expand(n, G.num_ws, G.w_dim).clone()
        else:
            w0, init = self.initial_ws(target)
        steps = self.default_steps()
        noise_scale = cfg.w_noise if cfg.w_noise is not None else (0.0125 if init != "w_avg" else 0.05)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

        w_opt = w0.clone().requires_grad_(True)
        noise_bufs: dict[str, torch.Tensor] = {}
        if cfg.optimise_noise:
            for name, (h, w) in G.noise_shapes().items():
                noise_bufs[name] = torch.randn(n, 1, h, w, generator=gen).to(self.device).requires_grad_(True)
        groups = [{"params": [w_opt]}]
        if noise_bufs:
            groups.append({"params": list(noise_bufs.values())})
        opt = torch.optim.Adam(groups, betas=(0.9, 0.999), lr=cfg.lr)
        # Adam's step is ~lr per coordinate whatever the gradient scale: scale the latent's rate by its spread
        # (noise maps are unit variance and keep the plain rate).
        w_scale = self.w_std.mean().item()

        best = torch.full((n,), float("inf"), device=self.device)
        best_ws = w0.clone()
        history: list[float] = []
        snapshots: list[tuple[int, np.ndarray]] = []
        stall, best_total, stopped = 0, float("inf"), False
        t0 = time.perf_counter()
        step = 0
        for step in range(steps):
            t = step / max(steps, 1)
            ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown) if cfg.lr_rampdown > 0 else 1.0
            ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
            ramp = ramp * (min(1.0, t / cfg.lr_rampup) if cfg.lr_rampup > 0 else 1.0)
            opt.param_groups[0]["lr"] = cfg.lr * ramp * w_scale
            if noise_bufs:
                opt.param_groups[1]["lr"] = cfg.lr * ramp
            noise_strength = noise_scale * max(0.0, 1.0 - t / cfg.w_noise_ramp) ** 2 if cfg.w_noise_ramp > 0 else 0.0

            ws = w_opt
            if noise_strength > 0:
                ws = ws + _randn_on(w_opt.shape, gen, self.device) * self.w_std * noise_strength
            if ws.shape[1] != G.num_ws:
                ws = ws.expand(n, G.num_ws, G.w_dim)
            img = G.synthesis(ws, noise=noise_bufs or None)
            per_image = cfg.pixel_weight * L.pixel_l2(img, target, weight)
            if self.perceptual is not None and cfg.perceptual_weight > 0:
                per_image = per_image + cfg.perceptual_weight * self.perceptual(img, target, weight)
            if cfg.w_avg_weight > 0:
                per_image = per_image + cfg.w_avg_weight * ((w_opt - self.w_avg) / self.w_std).pow(2).mean((1, 2))
            total = per_image
            if noise_bufs and cfg.noise_reg_weight > 0:
                total = total + cfg.noise_reg_weight * L.noise_regulariser(list(noise_bufs.values()))
            with torch.no_grad():
                # The loss was measured at the pre-step latent; it only describes that latent once the
                # exploration noise is gone.
                if noise_strength == 0:
                    cur = per_image.detach()
                    better = cur < best
                    best = torch.where(better, cur, best)
                    best_ws = torch.where(better[:, None, None], w_opt.detach(), best_ws)
            opt.zero_grad(set_to_none=True)
            total.sum().backward()
            opt.step()
            with torch.no_grad():
                for buf in noise_bufs.values():  # keep them zero-mean, unit-variance
                    buf.sub_(buf.mean((2, 3), keepdim=True))
                    buf.div_(buf.pow(2).mean((2, 3), keepdim=True).sqrt().clamp_min(1e-8))
                if self.z_space and cfg.z_shell:
                    self._shell(w_opt)
            mean_loss = float(per_image.detach().mean())
            history.append(mean_loss)
            if callback is not None:
                callback(step, mean_loss, w_opt.detach())
            if cfg.snapshot_every and (step % cfg.snapshot_every == 0 or step == steps - 1):
                snapshots.append((step, to_uint8(img.detach()).cpu().numpy()))
            # Early stop on plateau, once exploration noise is gone.
            if cfg.patience > 0 and noise_strength == 0:
                if mean_loss < best_total * (1 - cfg.min_delta):
                    best_total, stall = mean_loss, 0
                else:
                    stall += 1
                    if stall >= cfg.patience:
                        stopped = True
                        break
        seconds = time.perf_counter() - t0
        # Images with no improvement recorded (e.g. too few steps for the noise to die) keep their last latent.
        never = ~torch.isfinite(best)
        best_ws = torch.where(never[:, None, None], w_opt.detach(), best_ws)
        with torch.no_grad():
            ws_final = best_ws if best_ws.shape[1] == G.num_ws else best_ws.expand(n, G.num_ws, G.w_dim)
            img = G.synthesis(ws_final, noise=noise_bufs or None)
            final = cfg.pixel_weight * L.pixel_l2(img, target, weight)
            if self.perceptual is not None and cfg.perceptual_weight > 0:
                final = final + cfg.perceptual_weight * self.perceptual(img, target, weight)
            dist = self.distance_from_avg(ws_final)
        ws_np = ws_final.float().cpu().numpy().astype(np.float32)
        far = (dist > FAR_FROM_AVG).nonzero().flatten().tolist()
        if far and cfg.space == "w+":
            for i in far:
                self.warn(f"image {i}: the W+ latent lies {float(dist[i]):.1f}x the typical distance from w_avg "
                          "(random faces lie at 1.0); morphs to and from it may break — try --space w or more "
                          "w_avg weight")
        return ProjectionResult(
            ws=ws_np, images=to_uint8(img).cpu().numpy(), noise={k: v.detach().cpu().numpy() for k, v in noise_bufs.items()},
            losses=history, best_loss=final.cpu().numpy(), steps=step + 1, seconds=seconds, stopped_early=stopped,
            init=init, perceptual=self.perceptual_name, distance=dist.cpu().numpy(), snapshots=snapshots,
            settings=cfg.settings(),
        )
