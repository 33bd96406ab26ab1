"""The one generator interface every backend implements.

The seam is StyleGAN's: ``mapping`` turns z (and a class label c) into per-layer latents ``ws``
``[N, num_ws, w_dim]``; ``synthesis`` turns ``ws`` into images ``[N, 3, H, W]`` in about [-1, 1]. Everything
downstream (timeline, edits, renderer, projector) works on ``ws`` alone, so any backend that fills this contract
plugs in. Shapes are checked where tensors cross the seam, so a wrong latent fails with a message, not deep inside
a convolution.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Mapping, TypeVar

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from morphstudio.errors import CheckpointError, ModelError
from morphstudio.formats import PRECISION_DTYPES, SYNTHESIS_NOISE_MODES
from morphstudio.generators.config import stored_values
from morphstudio.latent import LatentSpace

if TYPE_CHECKING:
    from morphstudio.generators.config import GeneratorConfig

NoiseMode = Literal[SYNTHESIS_NOISE_MODES]
NOISE_MODES: tuple[str, ...] = SYNTHESIS_NOISE_MODES
#: A config implying up to this many times the values a file holds gets the shape check's per-tensor message;
#: beyond it the parameter-count check refuses it before anything is built.
NEAR_MISS = 4
_PRECISION_NAMES = {getattr(torch, dtype): name for name, dtype in PRECISION_DTYPES.items()}


@dataclass(frozen=True)
class LayerInfo:
    """Which latent drives which part of the network.

    Attributes:
        w_index: Index into the ``num_ws`` axis of ``ws``.
        resolution: Spatial size of the feature map this latent modulates.
        name: Layer name as in the official checkpoint, e.g. ``b16.conv0`` or ``L3_52_1024``.
        channels: Number of feature channels the latent modulates (0 when not meaningful).
        detail: The finest detail the layer can produce, in image pixels, when that differs from ``resolution``
            (0: the same). StyleGAN3 layers sample at 16+ px but are band-limited: the first ones carry only
            4 px worth of content, and layer groups (coarse / middle / fine) must follow the content.
    """

    w_index: int
    resolution: int
    name: str
    channels: int = 0
    detail: int = 0

    @property
    def scale(self) -> int:
        """The content scale that layer groups use: ``detail`` if set, else ``resolution``."""
        return self.detail or self.resolution


class Generator(nn.Module, ABC):
    """Base class of all generator backends.

    Subclasses set the attributes below in ``__init__``, register a ``w_avg`` buffer ``[w_dim]`` and implement
    :meth:`_mapping`, :meth:`_synthesis` and :meth:`layers`. The public :meth:`mapping` / :meth:`synthesis`
    wrappers do the shape checks and truncation so backends cannot disagree on them. Backends built from
    checkpoints also set :attr:`config_class` (their :class:`~morphstudio.generators.config.GeneratorConfig`) and
    implement :meth:`_from_config_state`; :meth:`from_state` checks the config before anything is built.

    Precision is part of the interface: :attr:`PRECISIONS` lists the compute dtypes a backend runs natively,
    :meth:`set_precision` chooses one of them (others are a :class:`ModelError`), :attr:`precision` reports it.

    Attributes:
        family: ``"stylegan2"``, ``"stylegan3"`` or ``"dcgan"``.
        z_dim, w_dim, c_dim: Latent, intermediate-latent and label sizes (``c_dim`` 0 if unconditional).
        num_ws: Number of per-layer latents ``synthesis`` takes.
        resolution: Output images are ``resolution`` x ``resolution``.
        img_channels: Colour channels of the output (3).
        init_kwargs: Constructor arguments, JSON-serialisable, so the model rebuilds without pickled code.
    """

    family: str
    z_dim: int
    w_dim: int
    c_dim: int
    num_ws: int
    resolution: int
    img_channels: int = 3
    init_kwargs: dict[str, Any]
    w_avg: torch.Tensor
    #: The backend's config dataclass (backends that load checkpoints set it).
    config_class: ClassVar[type[GeneratorConfig]]
    #: Compute dtypes :meth:`set_precision` accepts; a backend adds the reduced precisions it implements.
    PRECISIONS: ClassVar[tuple[torch.dtype, ...]] = (torch.float32,)

    def __init__(self) -> None:
        super().__init__()
        self._precision: torch.dtype = torch.float32

    # --- construction from checkpoints --------------------------------------------------------------------------

    @classmethod
    def from_state(cls, init_kwargs: Mapping[str, Any], state: Mapping[str, torch.Tensor],
                   source: str | Path | None = None, *, adopt: bool = False) -> Generator:
        """Build from stored constructor kwargs and load the checkpoint's tensors (official names).

        The kwargs become a checked config first (unknown keys, types and sane ranges; see
        :mod:`morphstudio.generators.config`), and the parameter count that config implies is compared with the
        values ``state`` holds -- all before any module is built, so a few hostile numbers in a file cannot make
        the constructor allocate gigabytes. Then every tensor's name and shape is checked.

        Args:
            init_kwargs: The constructor's arguments as stored in the checkpoint.
            state: ``{official name: tensor}``.
            source: The file, for messages.
            adopt: The generator may take ``state``'s tensors as its own instead of copying them (for tensors
                nobody else holds, as a checkpoint reader's fresh ones; a backend that cannot copies anyway).

        Raises:
            CheckpointError: Bad or out-of-range kwargs, a config larger than the file, or a tensor missing,
                unexpected or of the wrong shape (one line naming the file and the key or tensor).
            ModelError: A setting this backend does not implement.
        """
        config = cls.config_class.from_kwargs(init_kwargs, source)
        refuse_oversized(config, state, source)
        return cls._from_config_state(config, state, source, adopt=adopt)

    @classmethod
    def _from_config_state(cls, config: Any, state: Mapping[str, torch.Tensor],
                           source: str | Path | None, *, adopt: bool = False) -> Generator:
        """Build for a checked ``config`` and load ``state`` (every name and shape checked; ``adopt``: see
        :meth:`from_state`)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a checkpoint")

    # --- precision ----------------------------------------------------------------------------------------------

    @property
    def precision(self) -> torch.dtype:
        """The compute precision chosen with :meth:`set_precision` (fp32 unless changed)."""
        return self._precision

    def supports_precision(self, dtype: torch.dtype) -> bool:
        """Whether this backend runs ``dtype`` natively (callers run anything else under autocast)."""
        return dtype in self.PRECISIONS

    def set_precision(self, dtype: torch.dtype) -> None:
        """Choose the compute precision (one of :attr:`PRECISIONS`); weights and output images stay float32.

        Raises:
            ModelError: A dtype this backend does not run.
        """
        if dtype not in self.PRECISIONS:
            names = ", ".join(_PRECISION_NAMES.get(d, str(d)) for d in self.PRECISIONS)
            raise ModelError(f"the {self.family} backend runs in {names}, not {_PRECISION_NAMES.get(dtype, dtype)}")
        self._apply_precision(dtype)
        self._precision = dtype

    def _apply_precision(self, dtype: torch.dtype) -> None:
        """What a backend does when its precision changes (nothing for fp32-only backends)."""

    # --- what backends implement ------------------------------------------------------------------------------

    @abstractmethod
    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Map ``z [N, z_dim]`` (and ``c [N, c_dim]``) to untruncated ``ws [N, num_ws, w_dim]``."""

    @abstractmethod
    def _synthesis(
        self, ws: torch.Tensor, noise_mode: NoiseMode, noise: dict[str, torch.Tensor] | None
    ) -> torch.Tensor:
        """Render ``ws [N, num_ws, w_dim]`` to images ``[N, img_channels, resolution, resolution]``."""

    @abstractmethod
    def layers(self) -> list[LayerInfo]:
        """One entry per (layer, latent) pair, in network order. Several layers may share a ``w_index``."""

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        """Per-layer noise inputs ``{layer name: (H, W)}``; empty for backends without noise inputs."""
        return {}

    # --- the public, checked interface ----------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def default_c(self, n: int) -> torch.Tensor | None:
        """Class labels for ``n`` samples when a caller gives none: class 0 one-hot ``[n, c_dim]`` on the model's
        device for conditional models, ``None`` for unconditional ones."""
        if self.c_dim <= 0:
            return None
        c = torch.zeros(n, self.c_dim, device=self.device)
        c[:, 0] = 1
        return c

    @property
    def family_config(self) -> dict[str, Any]:
        """``{"family", "init_kwargs"}``: enough to rebuild this generator from its state dict."""
        return {"family": self.family, "init_kwargs": self.init_kwargs}

    def mapping(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        psi: float = 1.0,
        cutoff: int | None = None,
    ) -> torch.Tensor:
        """Map z to per-layer latents, truncated toward ``w_avg`` by ``psi`` on the first ``cutoff`` layers.

        Args:
            z: ``[N, z_dim]`` normal samples.
            c: ``[N, c_dim]`` one-hot labels for conditional models; ``None`` otherwise.
            psi: Truncation: 1 leaves ws alone, 0 collapses them to ``w_avg``.
            cutoff: Truncate only ``ws[:, :cutoff]``; ``None`` truncates all.

        Returns:
            ``ws [N, num_ws, w_dim]``.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ModelError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if self.c_dim > 0:
            if c is None:
                raise ModelError(f"this model is conditional (c_dim={self.c_dim}): a class label c is required")
            if c.ndim != 2 or c.shape != (z.shape[0], self.c_dim):
                raise ModelError(f"c must have shape [{z.shape[0]}, {self.c_dim}], got {list(c.shape)}")
        ws = self._mapping(z.to(self.device, torch.float32), None if c is None else c.to(self.device, torch.float32))
        return truncate(ws, self.w_avg, psi, cutoff)

    def synthesis(
        self,
        ws: torch.Tensor,
        noise_mode: NoiseMode = "const",
        noise: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Render per-layer latents to images in about [-1, 1].

        Args:
            ws: ``[N, num_ws, w_dim]``.
            noise_mode: ``const`` (the checkpoint's stored noise), ``random`` (fresh per call) or ``none``.
            noise: Optional per-layer noise overriding ``noise_mode``: ``{layer name: [N, 1, H, W]}`` with names
                and sizes from :meth:`noise_shapes`.

        Returns:
            ``[N, img_channels, resolution, resolution]`` float.
        """
        self.check_ws(ws)
        if noise_mode not in NOISE_MODES:
            raise ModelError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        img = self._synthesis(ws.to(self.device), noise_mode, noise)
        expected = (ws.shape[0], self.img_channels, self.resolution, self.resolution)
        if tuple(img.shape) != expected:  # a backend bug, not a user error
            raise AssertionError(f"{type(self).__name__} produced {tuple(img.shape)}, expected {expected}")
        return img

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        psi: float = 1.0,
        cutoff: int | None = None,
        noise_mode: NoiseMode = "const",
    ) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, psi=psi, cutoff=cutoff), noise_mode=noise_mode)

    def check_ws(self, ws: torch.Tensor) -> None:
        """Raise :class:`ModelError` unless ``ws`` is ``[N, num_ws, w_dim]``."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ModelError(
                f"latents must have shape [N, {self.num_ws}, {self.w_dim}] for this {self.family} model, "
                f"got {list(ws.shape)}"
            )

    def latent_space(self) -> LatentSpace:
        """A numpy-only description of this model's latent space, for the (torch-free) timeline."""
        layers = self.layers()
        res_per_w: list[int] = []
        for i in range(self.num_ws):
            sizes = [layer.scale for layer in layers if layer.w_index == i]
            res_per_w.append(max(sizes) if sizes else self.resolution)

        def map_z(z: np.ndarray, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
            with torch.no_grad():
                zt = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device)
                c = self.default_c(zt.shape[0])  # class 0 unless a scene says otherwise
                return self.mapping(zt, c, psi=psi, cutoff=cutoff).float().cpu().numpy()

        return LatentSpace(
            family=self.family,
            z_dim=self.z_dim,
            w_dim=self.w_dim,
            num_ws=self.num_ws,
            w_avg=self.w_avg.detach().float().cpu().numpy().copy(),
            resolutions=tuple(res_per_w),
            map_z=map_z,
        )


class StyleGANBase(Generator):
    """A generator whose official checkpoints hold two sub-networks named ``mapping`` and ``synthesis``.

    Those names are also the interface's public methods, so the sub-networks are registered directly in
    ``_modules`` (``add_module`` refuses names that exist as class attributes) and reached through
    :attr:`mapping_network` / :attr:`synthesis_network`. ``state_dict()`` keys stay the official ones.

    Both StyleGAN backends keep the official mixed precision: :meth:`set_precision` picks the compute dtype of the
    layers the official code runs in fp16; weights stay fp32 and images are float32.
    """

    PRECISIONS: ClassVar[tuple[torch.dtype, ...]] = (torch.float32, torch.float16, torch.bfloat16)

    def _set_networks(self, mapping: nn.Module, synthesis: nn.Module) -> None:
        self._modules["mapping"] = mapping
        self._modules["synthesis"] = synthesis

    @property
    def mapping_network(self) -> Any:
        """The official ``mapping`` sub-network."""
        return self._modules["mapping"]

    @property
    def synthesis_network(self) -> Any:
        """The official ``synthesis`` sub-network."""
        return self._modules["synthesis"]

    @property
    def w_avg(self) -> torch.Tensor:  # type: ignore[override]
        """The tracked mean latent, stored as the official ``mapping.w_avg`` buffer."""
        return self.mapping_network.w_avg

    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.mapping_network(z, c)


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """Pull ``ws`` toward ``w_avg`` by ``psi`` (``w_avg + psi * (w - w_avg)``) on the first ``cutoff`` layers."""
    if psi == 1:
        return ws
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    out = ws.clone()
    out[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return out


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` float in [-1, 1] -> ``[N, H, W, C]`` uint8, on the tensor's own device.

    Uses the official rounding (``x * 127.5 + 128`` then truncation), so results equal NVIDIA's uint8 images.
    """
    return (img.permute(0, 2, 3, 1).float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


M = TypeVar("M", bound=nn.Module)


def refuse_oversized(config: Any, state: Mapping[str, Any], source: str | Path | None) -> None:
    """Raise :class:`CheckpointError` when ``config`` describes far more values than ``state`` holds.

    Checked by formula before anything is built, so a few hostile numbers in a file cannot make a constructor
    allocate gigabytes. A near miss (settings a little off for these weights) passes: the shape check, which also
    runs before any storage is allocated, names the tensor that does not fit.
    """
    try:
        config.check_fits(state, source)
    except CheckpointError:
        if config.param_count() > NEAR_MISS * stored_values(state):
            raise


class _NoRandomInit(TorchFunctionMode):
    """Random initialisers give uninitialised memory (``torch.empty``: nothing written, so large ones are never
    even paged in when the checkpoint's tensors replace them) and in-place random fills do nothing, while
    everything else runs as usual."""

    FACTORIES = frozenset({torch.randn, torch.rand, torch.randn_like, torch.rand_like})
    FILLS = frozenset({torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.bernoulli_, torch.Tensor.random_,
                       torch.Tensor.exponential_, torch.Tensor.cauchy_, torch.Tensor.log_normal_,
                       torch.Tensor.geometric_})

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in self.FILLS:
            return args[0]
        if func in (torch.randn_like, torch.rand_like):
            return torch.empty_like(args[0], dtype=kwargs.get("dtype"))
        if func in self.FACTORIES:
            return torch.empty(*args, dtype=kwargs.get("dtype"), device=kwargs.get("device"))
        return func(*args, **kwargs)


def build_for_loading(make: Callable[[], M]) -> M:
    """Build a network whose every tensor a checkpoint is about to overwrite: no random draws, RNG untouched.

    Built on the CPU with its random initialisers left uninitialised (every tensor is then overwritten or
    replaced by the checkpoint's; zero-filling them was 0.07 s of a 0.45 s load). Not on the meta device: the first arithmetic
    on a meta tensor runs through torch's Python decompositions and imports ``torch._dynamo`` (2.2 s of a 2.4 s
    build of a 256 px StyleGAN2 on a 2-core CPU); and not with real initialisers either (drawing 25 M normal
    values was half of a 0.7 s load). Callers bound the size first (:meth:`Generator.from_state` checks the config
    against the file) and check afterwards that the checkpoint provides every tensor.
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad(), _NoRandomInit():
        return make()


def state_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every tensor in ``module.state_dict()`` (what :func:`check_state` expects)."""
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_state(expected: Mapping[str, tuple], state: Mapping[str, Any], source: str | Path | None,
                what: str = "generator") -> None:
    """Raise :class:`CheckpointError` unless ``state`` has exactly the ``expected`` names and shapes.

    Args:
        expected: ``{name: shape}`` the network needs.
        state: ``{name: tensor}`` from the file (already renamed to official names).
        source: The file, for the message.
        what: What the network is, for the message.

    Raises:
        CheckpointError: Names the first offending tensor and both shapes.
    """
    def shape_of(v: Any) -> tuple:
        return tuple(getattr(v, "shape", ()))

    for key, shape in expected.items():
        if key not in state:
            raise CheckpointError(source, f"tensor '{key}' is missing: a {what} with these settings needs shape "
                                  f"{list(shape)} (file has {len(state)} tensors)")
        got = shape_of(state[key])
        if not isinstance(state[key], torch.Tensor):
            raise CheckpointError(source, f"'{key}' is a {type(state[key]).__name__}, not a tensor")
        if got != tuple(shape):
            raise CheckpointError(source, f"tensor '{key}' has shape {list(got)} but a {what} with these settings "
                                  f"needs {list(shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(source, f"unexpected tensor '{extra[0]}' with shape {list(shape_of(state[extra[0]]))}: "
                              f"not part of a {what} with these settings"
                              + (f" ({len(extra) - 1} more unexpected)" if len(extra) > 1 else ""))
