"""A latent encoder: a small torchvision ResNet that guesses the latent of a face in one forward pass.

It is trained on pairs the generator makes itself (random z -> latent -> image), so it needs no dataset and
nothing is downloaded (``weights=None``: random init). The network predicts the latent as an offset from
``w_avg`` in units of the latents' per-dimension spread, which keeps its outputs near unit scale for any model.
A guess from it starts the projector close to the answer, so far fewer optimisation steps are needed; the live
mode (a later issue) can use it alone.

Saved as ``NAME.safetensors`` (weights, fp16 by default, plus the ``w_avg`` / ``w_std`` buffers) next to
``NAME.json`` (architecture, model fingerprint, resolution, latent space, training steps, loss curve).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from morphstudio.errors import EncoderModelError
from morphstudio.faces.cache import model_identity
from morphstudio.faces.project import latent_stats, to_tensor_images
from morphstudio.files import atomic_path
from morphstudio.rendering.plan import torch_threads

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
EncoderSpace = Literal["w", "w+", "z"]


class SlimResNet(ResNet):
    """torchvision's ResNet (BasicBlock) with every stage's width scaled by ``width / 64``.

    torchvision hard-codes widths 64-128-256-512; a 64 px face needs far less, and a quarter-to-half width
    ResNet-18 is a few MB. Built from torchvision's own blocks and ``_make_layer``.
    """

    def __init__(self, out_dim: int, width: int = 32, layers: tuple[int, ...] = (2, 2, 2, 2),
                 small_input: bool = True) -> None:
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64  # BasicBlock insists on this value; widths come from `planes` below
        # At 64 px the ImageNet stem (7x7 stride 2 + max-pool, 4x down) throws away too much of the face: a
        # 3x3 stride-2 stem without the pool keeps 32x32 features at a quarter of a stride-1 stem's cost.
        if small_input:
            self.conv1 = nn.Conv2d(3, width, 3, 2, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(BasicBlock, width, layers[0])
        self.layer2 = self._make_layer(BasicBlock, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8, out_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)
        nn.init.normal_(self.fc.weight, std=0.01)


@dataclass
class EncoderConfig:
    """What an encoder is and what it was trained on (saved as the JSON next to the weights).

    Attributes:
        arch: ``"slim-resnet18"`` (torchvision BasicBlock ResNet, stage widths ``width * (1, 2, 4, 8)``).
        width: Stem width (64 = torchvision's ResNet-18).
        input_res: Images are resized to this before the network.
        space: ``w`` (one latent), ``w+`` (one per layer) or ``z`` (DCGAN, where w is z).
        num_ws, w_dim: The generator's latent shape.
        model_fingerprint: :func:`morphstudio.faces.cache.model_identity` of the generator it was trained for.
        model_name: Human-readable source of that generator (e.g. ``builtin:dcgan-faces64``).
        model_config: Its ``family`` and ``init_kwargs`` (a fallback match when the fingerprint differs, e.g. the
            same model loaded in half precision).
        resolution: The generator's resolution.
        steps, batch_size, lr: Training settings.
        loss: What was minimised.
        loss_curve: ``[[step, loss], ...]`` averages over logging windows.
        seconds: Training wall time.
        augment: Augmentations used.
    """

    arch: str = "slim-resnet18"
    width: int = 32
    input_res: int = 64
    space: str = "w"
    num_ws: int = 1
    w_dim: int = 512
    model_fingerprint: str = ""
    model_name: str = ""
    model_config: dict[str, Any] = field(default_factory=dict)
    resolution: int = 64
    steps: int = 0
    batch_size: int = 32
    lr: float = 2e-3
    loss: str = "mse(normalised latent offset) + 0.5 * mse(image of prediction)"
    loss_curve: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0
    augment: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def out_ws(self) -> int:
        return self.num_ws if self.space == "w+" else 1


class LatentEncoder(nn.Module):
    """Image -> latent ``ws [N, num_ws, w_dim]`` (broadcast over layers unless the space is ``w+``)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.net = SlimResNet(config.out_ws * config.w_dim, width=config.width, small_input=config.input_res <= 128)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))
        self.register_buffer("w_std", torch.ones(config.w_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [N, 3, H, W]`` in [-1, 1] (any size) -> ``ws [N, num_ws, w_dim]``."""
        x = images.to(self.w_avg.device, torch.float32)
        if x.shape[-1] != self.config.input_res or x.shape[-2] != self.config.input_res:
            x = F.interpolate(x, size=(self.config.input_res,) * 2, mode="bilinear", align_corners=False,
                              antialias=True)
        off = self.net(x).view(x.shape[0], self.config.out_ws, self.config.w_dim)
        ws = self.w_avg + off * self.w_std
        if ws.shape[1] != self.config.num_ws:
            ws = ws.expand(-1, self.config.num_ws, -1)
        return ws

    def encode_uint8(self, images: np.ndarray) -> np.ndarray:
        """``[N, H, W, 3]`` uint8 -> ``[N, num_ws, w_dim]`` float32 numpy."""
        x = to_tensor_images(images, self.w_avg.device)
        with torch.no_grad():
            return self.eval()(x).cpu().numpy().astype(np.float32)

    def check_fits(self, generator: Any, where: str = "encoder") -> None:
        """Raise :class:`EncoderModelError` unless this encoder's latent shape matches ``generator``."""
        if (self.config.num_ws, self.config.w_dim) != (generator.num_ws, generator.w_dim):
            raise EncoderModelError(
                f"{where}: trained for latents [{self.config.num_ws}, {self.config.w_dim}] "
                f"({self.config.model_name or 'another model'}), but this model needs [{generator.num_ws}, "
                f"{generator.w_dim}]", hint="train one with `morphstudio encoder train --model MODEL`, or pass "
                                           "--encoder none")
        fp = self.config.model_fingerprint
        if fp and fp != model_identity(generator):
            log.warning("%s was trained for a different model (%s); using it anyway as the projector's starting "
                        "point", where, self.config.model_name or fp[:12])


# --- training ------------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Encoder training settings (defaults fit ~15 minutes on two CPU cores for a 64 px model).

    Attributes:
        steps: Optimiser steps.
        batch_size: Pairs per step, generated fresh each step.
        lr: Peak AdamW learning rate (cosine decay after a short warm-up).
        width: Encoder stem width.
        input_res: Encoder input size (``None`` = the generator's resolution, at most 128); 32 px quarters the
            cost of a 64 px model's encoder and still holds the face's layout.
        space: Latent space to predict; ``None`` = ``z`` for DCGAN, ``w`` for StyleGAN.
        image_loss: Weight of the image-space loss (render the prediction, compare to the input).
        shift: Largest random shift, in pixels at the generator's resolution.
        jitter: Strength of brightness/contrast/saturation jitter.
        flip: Horizontal flips; off by default because the latent of a flipped face is not known.
        psi: Truncation of the training latents (1 = the full distribution).
        seed: Seed of latents and augmentation.
        log_every: Steps per loss-curve point.
        threads: torch CPU threads (``None`` leaves torch's default).
        pool_size: Pairs kept in memory; each step trains on a batch drawn from the pool (generating a 64 px
            face costs about as much as the encoder's own training step, so pairs are reused). 0 = all fresh.
        fresh_per_step: Pool entries replaced by newly generated pairs every step (keep it a sizeable fraction
            of ``batch_size``: a slowly refreshed pool is memorised and the encoder stops generalising).
        init_from: Start from this saved encoder's weights (same architecture) instead of random init.
        max_seconds: Stop after this much wall time (the learning-rate schedule then follows elapsed time
            instead of steps, so a time-boxed run still decays properly); ``None`` = run all ``steps``.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    width: int = 32
    input_res: int | None = None
    space: str | None = None
    image_loss: float = 0.0
    shift: int = 2
    jitter: float = 0.08
    flip: bool = False
    psi: float = 1.0
    seed: int = 0
    log_every: int = 50
    threads: int | None = None
    max_seconds: float | None = None
    pool_size: int = 4096
    fresh_per_step: int = 16
    init_from: str | None = None


def _family_config(generator: Any) -> dict[str, Any]:
    """:attr:`Generator.family_config` as plain JSON values (how the encoder's config stores it)."""
    return json.loads(json.dumps(generator.family_config, default=str))


def _make_pairs(generator: Any, n: int, psi: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` fresh (image [n, 3, H, W], ws [n, num_ws, w_dim]) pairs from random z."""
    with torch.no_grad():
        z = torch.randn(n, generator.z_dim, generator=g).to(generator.device)
        ws = generator.mapping(z, generator.default_c(n), psi=psi)
        return generator.synthesis(ws, noise_mode="const").float(), ws.float()


def _augment(img: torch.Tensor, cfg: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """Small shifts (edge-replicated) and colour jitter, so the encoder tolerates imperfect photo crops."""
    n = img.shape[0]
    if cfg.shift > 0:
        s = cfg.shift
        padded = F.pad(img, (s, s, s, s), mode="replicate")
        dx = torch.randint(0, 2 * s + 1, (n,), generator=g)
        dy = torch.randint(0, 2 * s + 1, (n,), generator=g)
        h, w = img.shape[-2:]
        img = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if cfg.jitter > 0:
        j = cfg.jitter
        b = (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * j
        c = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * j
        s_ = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * j
        gray = img.mean(1, keepdim=True)
        img = gray + (img - gray) * s_
        mean = img.mean((1, 2, 3), keepdim=True)
        img = (img - mean) * c + mean + b
    if cfg.flip:
        flip = torch.rand(n, generator=g) < 0.5
        img = torch.where(flip[:, None, None, None], img.flip(-1), img)
    return img.clamp(-1, 1)


def train_encoder(
    generator: Any,
    cfg: TrainConfig | None = None,
    *,
    model_name: str = "",
    progress: Callable[[int, float], None] | None = None,
) -> LatentEncoder:
    """Train an encoder on pairs the generator makes on the fly.

    Args:
        generator: A :class:`morphstudio.generators.base.Generator`.
        cfg: Training settings (default :class:`TrainConfig`).
        model_name: Recorded in the config (e.g. ``builtin:dcgan-faces64``).
        progress: Called as ``progress(step, mean_loss)`` at every loss-curve point.

    Returns:
        The trained encoder (eval mode, on the generator's device).
    """
    cfg = cfg or TrainConfig()
    # cfg.threads holds for this call only: the caller's torch thread count is restored however training ends.
    with torch_threads(cfg.threads):
        return _train(generator, cfg, model_name, progress)


def _train(generator: Any, cfg: TrainConfig, model_name: str,
           progress: Callable[[int, float], None] | None) -> LatentEncoder:
    device = generator.device
    space = cfg.space or ("z" if generator.family == "dcgan" else "w")
    if space not in ("w", "w+", "z"):
        raise EncoderModelError(f"encoder space must be w, w+ or z, got {space!r}")
    if space == "z" and generator.family != "dcgan":
        raise EncoderModelError("space 'z' is only meaningful for DCGAN models (whose w is z); use w or w+")
    w_avg, w_std, _ = latent_stats(generator)
    ecfg = EncoderConfig(
        width=cfg.width, input_res=cfg.input_res or min(generator.resolution, 128), space=space, num_ws=generator.num_ws,
        w_dim=generator.w_dim, model_fingerprint=model_identity(generator), model_name=model_name,
        model_config=_family_config(generator),
        resolution=generator.resolution, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
        loss=f"mse(normalised latent offset) + {cfg.image_loss} * mse(image of prediction)",
        augment={"shift_px": cfg.shift, "colour_jitter": cfg.jitter, "flip": cfg.flip, "psi": cfg.psi},
    )
    enc = LatentEncoder(ecfg).to(device)
    if cfg.init_from:
        start = load_encoder(cfg.init_from)
        if asdict(start.config)["width"] != cfg.width or start.config.out_ws != ecfg.out_ws:
            raise EncoderModelError(f"{cfg.init_from}: cannot continue from an encoder of another shape")
        enc.net.load_state_dict(start.net.state_dict())
        ecfg.loss = f"{ecfg.loss}; continued from {Path(cfg.init_from).name} ({start.config.steps} steps)"
    enc.w_avg.copy_(w_avg.to(device))
    enc.w_std.copy_(w_std.to(device))
    opt = torch.optim.AdamW(enc.net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    warm = max(1, cfg.steps // 50)

    def lr_at(step: int, frac: float) -> float:
        # Warm-up over the first 2% (of steps, or of the time budget), then cosine decay to 2% of the peak.
        if frac < 0.02:
            return cfg.lr * max(frac / 0.02, (step + 1) / warm if step < warm else 1.0, 0.05)
        return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - 0.02) / 0.98))))

    g = torch.Generator().manual_seed(cfg.seed)
    pool: tuple[torch.Tensor, torch.Tensor] | None = None
    # A short run does not need (or have time for) a big pool.
    pool_n = min(cfg.pool_size, max(cfg.batch_size, cfg.steps * cfg.batch_size // 2))
    if cfg.pool_size > 0:
        chunks = [_make_pairs(generator, min(256, pool_n - i), cfg.psi, g) for i in range(0, pool_n, 256)]
        pool = (torch.cat([c[0].cpu() for c in chunks]), torch.cat([c[1].cpu() for c in chunks]))
    t0 = time.perf_counter()
    window: list[float] = []
    curve: list[list[float]] = []
    enc.train()
    done = 0
    for step in range(cfg.steps):
        frac = step / max(1, cfg.steps)
        if cfg.max_seconds:
            frac = max(frac, (time.perf_counter() - t0) / cfg.max_seconds)
            if frac >= 1.0:
                break
        with torch.no_grad():
            # Images are augmented on the CPU (the augmentation draws from the CPU generator ``g``); only the
            # augmented batch, the latents and (for the image loss) the clean images go to the device.
            if pool is None:
                target_img, ws = _make_pairs(generator, cfg.batch_size, cfg.psi, g)
                img_cpu = target_img.cpu()
            else:
                if cfg.fresh_per_step > 0:
                    new_img, new_ws = _make_pairs(generator, cfg.fresh_per_step, cfg.psi, g)
                    slots = torch.randint(0, pool[0].shape[0], (cfg.fresh_per_step,), generator=g)
                    pool[0][slots], pool[1][slots] = new_img.cpu(), new_ws.cpu()
                pick = torch.randint(0, pool[0].shape[0], (cfg.batch_size,), generator=g)
                img_cpu, ws = pool[0][pick], pool[1][pick].to(device)
                target_img = img_cpu.to(device) if cfg.image_loss > 0 else None
            x = _augment(img_cpu, cfg, g).to(device)
        pred = enc(x)
        target_ws = ws if space == "w+" else ws[:, :1].expand_as(ws)
        loss = ((pred - target_ws) / enc.w_std).pow(2).mean()
        if cfg.image_loss > 0:
            # The image term teaches which latent directions matter visually; the generator's weights stay frozen.
            rec = generator.synthesis(pred, noise_mode="const")
            loss = loss + cfg.image_loss * (rec - target_img).pow(2).mean() / 0.1
        for group in opt.param_groups:
            group["lr"] = lr_at(step, frac)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = step + 1
        window.append(loss.item())
        if done % cfg.log_every == 0 or done == cfg.steps:
            mean = float(np.mean(window))
            curve.append([done, round(mean, 5)])
            window.clear()
            if progress is not None:
                progress(done, mean)
    if window:
        curve.append([done, round(float(np.mean(window)), 5)])
    ecfg.loss_curve = curve
    ecfg.steps = done
    ecfg.seconds = round(time.perf_counter() - t0, 1)
    return enc.eval()


# --- saving and loading --------------------------------------------------------------------------------------


def save_encoder(enc: LatentEncoder, path: str | Path, *, half: bool = True) -> tuple[Path, Path]:
    """Write ``PATH.safetensors`` + ``PATH.json`` (``path`` may name either, or a stem).

    Args:
        enc: The encoder.
        path: Output file or stem.
        half: Store weights as fp16 (half the size; the outputs change by far less than the projector refines).

    Returns:
        The two paths written.
    """
    from safetensors.torch import save_file

    stem = Path(path)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in enc.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point() and not k.startswith(("w_avg", "w_std")):
            v = v.half()
        state[k] = v
    st_path, js_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    meta = asdict(enc.config)
    curve = meta.pop("loss_curve")
    # The loss curve on one line: a readable config instead of a thousand lines of numbers.
    text = json.dumps(meta, indent=1)[:-2] + ',\n "loss_curve": ' + json.dumps(curve) + "\n}\n"
    with atomic_path(st_path) as tmp_st, atomic_path(js_path) as tmp_js:
        save_file(state, str(tmp_st), metadata={"format": "morphstudio-encoder", "version": str(FORMAT_VERSION)})
        tmp_js.write_text(text)
    return st_path, js_path


def load_encoder(path: str | Path, device: str | torch.device | None = None) -> LatentEncoder:
    """Load an encoder saved by :func:`save_encoder` (``path``: the .safetensors, the .json or their stem).

    Raises:
        EncoderModelError: Files missing, unreadable or inconsistent.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    stem = Path(path)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    st_path, js_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for p in (st_path, js_path):
        if not p.is_file():
            raise EncoderModelError(f"{p}: encoder file not found (an encoder is a .safetensors with a .json beside it)")
    try:
        raw = json.loads(js_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EncoderModelError(f"{js_path}: not a readable encoder config ({exc})") from None
    known = set(EncoderConfig.__dataclass_fields__)
    cfg = EncoderConfig(**{k: v for k, v in raw.items() if k in known})
    if cfg.format_version > FORMAT_VERSION:
        raise EncoderModelError(f"{js_path}: encoder format {cfg.format_version} is newer than this morphstudio "
                                f"understands ({FORMAT_VERSION})")
    try:
        state = load_file(str(st_path))
    except (SafetensorError, OSError) as exc:
        raise EncoderModelError(f"{st_path}: cannot read encoder weights ({exc})") from None
    enc = LatentEncoder(cfg)
    try:
        enc.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0:2]
        raise EncoderModelError(f"{st_path}: weights do not match its config: {' '.join(first)}") from None
    if device is not None:
        enc = enc.to(device)
    return enc.eval().requires_grad_(False)


def builtin_encoder_path(generator: Any) -> Path | None:
    """The shipped encoder trained for ``generator`` (matched by model fingerprint), if there is one."""
    if not BUILTIN_DIR.is_dir():
        return None
    fp = model_identity(generator)
    fam = _family_config(generator)
    fallback = None
    for js in sorted(BUILTIN_DIR.glob("*.json")):
        try:
            cfg = json.loads(js.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not js.with_suffix(".safetensors").is_file():
            continue
        if cfg.get("model_fingerprint") == fp:
            return js.with_suffix("")
        if fallback is None and cfg.get("model_config") == fam:
            fallback = js.with_suffix("")
    return fallback


def resolve_encoder(spec: str | Path | None, generator: Any) -> LatentEncoder | None:
    """``None``/``"auto"`` -> the shipped encoder for this model if any; ``"none"`` -> no encoder; else a path."""
    if spec is not None and str(spec).lower() == "none":
        return None
    if spec is None or str(spec).lower() == "auto":
        path = builtin_encoder_path(generator)
        if path is None:
            return None
        enc = load_encoder(path, device=generator.device)
    else:
        enc = load_encoder(spec, device=generator.device)
    enc.check_fits(generator, where=str(spec or "builtin encoder"))
    return enc
