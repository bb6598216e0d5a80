"""OASIS training step, EMA generator and rendering, in the shape of the generator harness's trainer.

One iteration (``OasisTrainer.step``):

1. the generator renders the batch from its label input and noise drawn from ``(seed, step, rank)``;
2. the discriminator segments the fake, the real and the LabelMix image in one pass (it has no
   normalisation layer, so batching them changes nothing) and steps on
   ``fake N+1 loss + class-balanced real N+1 loss + lambda_labelmix * LabelMix``;
3. with the discriminator frozen, the generator steps on the class-balanced N+1 loss of its image
   read as the real classes;
4. the EMA copy of the generator moves towards the new weights (rendering uses the EMA copy).

OASIS updates G first and renders again under ``no_grad`` for the D step; stepping D first on the
detached image (the pix2pix order) needs one generator forward per iteration instead of two.

Example:
    >>> import torch
    >>> from labelforge.gan.oasis.config import get_oasis_preset
    >>> from labelforge.gan.oasis.trainer import OasisTrainer
    >>> from labelforge.labelspace import get_label_space
    >>> arch, train = get_oasis_preset("tiny")
    >>> t = OasisTrainer(arch, train, get_label_space(), torch.device("cpu"), world=1)  # doctest: +SKIP
    >>> t.step(batch)  # doctest: +SKIP
    {'G_adv': 3.5, 'D_fake': 3.5, 'D_real': 3.6, 'D_LM': 0.0, 'L1': 0.5}
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..._runtime import amp_dtype, autocast, to_host_async
from ...errors import InputError, LabelforgeError
from ...labelspace import LabelSpace
from ..archs import OASIS_FORMAT
from ..config import TrainConfig, config_from_dict
from ..data import collate
from ..inputs import to_uint8_hwc, to_unit_range
from .config import OasisConfig
from .discriminator import OasisDiscriminator
from .generator import OasisGenerator, label_input
from .losses import class_weights, labelmix_loss, labelmix_mask, n1_loss
from .noise import labelmix_bits, render_noise, train_noise

if TYPE_CHECKING:
    from ..config import RenderConfig

__all__ = [
    "OasisTrainer",
    "OasisRenderer",
    "build_oasis_generator",
    "generator_from_state",
    "oasis_renderer",
    "LOSS_KEYS",
]

LOSS_KEYS = ("G_adv", "D_fake", "D_real", "D_LM", "L1")


def build_oasis_generator(cfg: OasisConfig, num_ids: int) -> OasisGenerator:
    """The generator ``cfg`` describes for a label space with ``num_ids`` ids."""
    return OasisGenerator(cfg, cfg.input_nc(num_ids))


def generator_from_state(cfg: OasisConfig, num_ids: int, state: dict[str, torch.Tensor]) -> OasisGenerator:
    """A generator in eval mode with the weights of ``state`` (the EMA weights, for rendering)."""
    g = build_oasis_generator(cfg, num_ids)
    g.load_state_dict(state)
    return g.eval().requires_grad_(False)


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` over the parameters, then one power iteration of
    every spectral norm on the EMA weights, so its singular-value estimates follow its own weights
    (OASIS gets the same by running the EMA net in train mode before it renders)."""
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm.detach(), 1.0 - decay)
    ema.train()
    for m in ema.modules():
        if hasattr(m, "parametrizations") and "weight" in m.parametrizations:
            _ = m.weight  # in train mode, reading the weight runs the power iteration and stores u, v
    ema.eval()


class OasisTrainer:
    """Generator, discriminator, EMA generator, their optimizers and one training step, in the shape of
    :class:`labelforge.gan.train.GeneratorTrainer`: ``check``, ``set_lr``, ``step(batch) -> losses``,
    ``progress_fields``, ``render(items, k)``, ``state_dict()`` and ``load_state_dict(checkpoint)``.
    """

    ARCH: ClassVar[str] = "oasis"
    FORMAT: ClassVar[str] = OASIS_FORMAT

    @classmethod
    def check(cls, gen_cfg: OasisConfig, train_cfg: TrainConfig) -> None:
        if not isinstance(gen_cfg, OasisConfig):
            raise LabelforgeError(f"OASIS trains an OasisConfig, not a {type(gen_cfg).__name__}")
        if train_cfg.vgg_weights:
            raise LabelforgeError("--vgg-weights: OASIS trains without a VGG loss (its discriminator segments)")

    def __init__(self, gen_cfg: OasisConfig, cfg: TrainConfig, ls: LabelSpace, device: torch.device, world: int):
        self.arch, self.cfg, self.ls, self.device = gen_cfg, cfg, ls, device
        self.rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        self.g = build_oasis_generator(gen_cfg, ls.num_ids).to(device)
        self.d = OasisDiscriminator(gen_cfg, ls.num_ids).to(device)
        self.ema = copy.deepcopy(self.g).eval().requires_grad_(False)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr * gen_cfg.lr_d_scale, betas=betas)
        self.dtype = amp_dtype(device, cfg.amp_dtype)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.steps = 0  # iterations done; seeds the training noise and LabelMix bits
        self.g_run: nn.Module = self.g
        self.d_run: nn.Module = self.d
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_run = nn.parallel.DistributedDataParallel(self.g, device_ids=ids)
            self.d_run = nn.parallel.DistributedDataParallel(self.d, device_ids=ids)

    def set_lr(self, lr: float) -> None:
        for opt, scale in ((self.opt_g, 1.0), (self.opt_d, self.arch.lr_d_scale)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    def _label_input(self, label: torch.Tensor, inst: torch.Tensor | None) -> torch.Tensor:
        return label_input(label, inst, self.ls.num_ids, self.arch.instance_boundaries, torch.float32)

    def step(self, batch: dict[str, Any]) -> dict[str, float]:
        dev, nb, arch = self.device, self.device.type == "cuda", self.arch
        label = batch["label"].to(dev, non_blocking=nb)
        inst = batch["instance"].to(dev, non_blocking=nb)
        real = to_unit_range(batch["image"].to(dev, non_blocking=nb))
        b = label.shape[0]
        inp = self._label_input(label, inst)
        z = train_noise(self.cfg.seed, self.steps, self.rank, b, arch.z_dim).to(dev, non_blocking=nb)
        weights = class_weights(label, self.ls.num_ids, arch.dontcare_ids) if arch.class_balance else None
        with autocast(dev, self.dtype):
            fake = self.g_run(inp, z)

        # Discriminator step: fake, real and LabelMix image in one pass.
        mask = labelmix_mask(label, labelmix_bits(self.cfg.seed, self.steps, self.rank, self.ls.num_ids))
        images = [fake.detach().float(), real]
        if arch.labelmix:
            images.append(mask * real + (1 - mask) * fake.detach().float())
        with autocast(dev, self.dtype):
            out = self.d_run(torch.cat(images, 0))  # (2B or 3B, N+1, H, W)
        d_fake = n1_loss(out[:b], label, real=False)
        d_real = n1_loss(out[b : 2 * b], label, real=True, weights=weights)
        d_lm = (
            labelmix_loss(mask, out[2 * b :], out[:b], out[b : 2 * b]) if arch.labelmix else torch.zeros((), device=dev)
        )
        loss_d = d_fake + d_real + arch.lambda_labelmix * d_lm
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)

        # Generator step against the updated, frozen discriminator (unwrapped: no DDP hooks to fire).
        self.d.requires_grad_(False)
        with autocast(dev, self.dtype):
            g_adv = n1_loss(self.d(fake), label, real=True, weights=weights)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(g_adv).backward()
        self.scaler.step(self.opt_g)
        self.d.requires_grad_(True)
        self.scaler.update()

        self.steps += 1
        _ema_update(self.ema, self.g, self.ema_decay(self.steps))
        l1 = (fake.detach().float() - real).abs().mean()  # monitored, not optimised
        vals = torch.stack([g_adv, d_fake, d_real, d_lm, l1]).detach().float().cpu()  # one sync per step
        return dict(zip(LOSS_KEYS, vals.tolist(), strict=True))

    def ema_decay(self, step: int) -> float:
        """OASIS's constant decay, or with warm-up ``min(decay, (1 + t) / (10 + t))``."""
        d = self.arch.ema_decay
        return min(d, (1 + step) / (10 + step)) if self.arch.ema_warmup else d

    @torch.no_grad()
    def render(self, items: list[dict[str, Any]], k: int = 0) -> np.ndarray:
        """(B, H, W, 3) uint8 renders of ``items`` (PairDataset items) by the EMA generator, with the
        noise of ``(seed, item index, k)``."""
        batch = collate(items)
        renderer = OasisRenderer(self.ema, self.arch, self.ls.num_ids, self.device, self.cfg.seed, self.dtype)
        return renderer(batch["label"], batch["instance"], batch["index"], k)

    @staticmethod
    def progress_fields(losses: dict[str, float]) -> dict[str, float]:
        return {"G": losses["G_adv"], "D": losses["D_fake"] + losses["D_real"], "L1": losses["L1"]}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's entries: networks (``ema`` is what ``render`` uses), optimizers, input channels."""
        return {
            "arch": self.ARCH,
            "generator": self.g.state_dict(),
            "discriminator": self.d.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "input_nc": self.arch.input_nc(self.ls.num_ids),
        }

    def load_state_dict(self, ck: dict[str, Any]) -> None:
        """Restore every entry of :meth:`state_dict` and the step counter (``ck["step"]``) that seeds the noise."""
        self.g.load_state_dict(ck["generator"])
        self.d.load_state_dict(ck["discriminator"])
        self.ema.load_state_dict(ck["ema"])
        self.opt_g.load_state_dict(ck["optimizer_g"])
        self.opt_d.load_state_dict(ck["optimizer_d"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.steps = int(ck["step"])


class OasisRenderer:
    """A generator on its device: (B, H, W) uint8 labels + int32 instances + sample indices -> (B, H, W, 3)
    uint8 images, with the noise of ``(seed, index, k)``. The OASIS side of the pix2pixHD
    :class:`~labelforge.gan.render.GeneratorRenderer`: same ``submit``, same options."""

    def __init__(
        self,
        model: OasisGenerator,
        cfg: OasisConfig,
        num_ids: int,
        device: torch.device,
        seed: int = 0,
        dtype: torch.dtype | None = None,
        *,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(device).eval().requires_grad_(False).to(memory_format=self.memory_format)
        self.model = torch.compile(model) if compile else model
        self.cfg, self.num_ids, self.device, self.seed, self.dtype = cfg, num_ids, device, seed, dtype

    @torch.inference_mode()
    def render(
        self, label: torch.Tensor, instance: torch.Tensor | None, index: torch.Tensor, k: int = 0
    ) -> torch.Tensor:
        """The (B, H, W, 3) uint8 images on the device, noise from ``(seed, index[i], k)``."""
        nb = self.device.type == "cuda"
        label = label.to(self.device, non_blocking=nb)
        instance = None if instance is None else instance.to(self.device, non_blocking=nb)
        inp = label_input(label, instance, self.num_ids, self.cfg.instance_boundaries, torch.float32)
        inp = inp.contiguous(memory_format=self.memory_format)
        z = render_noise(self.seed, index, k, self.cfg.z_dim).to(self.device, non_blocking=nb)
        with autocast(self.device, self.dtype):
            out = self.model(inp, z)
        return to_uint8_hwc(out)

    def submit(
        self, label: torch.Tensor, instance: torch.Tensor | None, index: torch.Tensor, k: int = 0
    ) -> Callable[[], np.ndarray]:
        """Start rendering a batch; the returned function waits for it and gives the uint8 images."""
        return to_host_async(self.render(label, instance, index, k))

    def __call__(
        self, label: torch.Tensor, instance: torch.Tensor | None, index: torch.Tensor, k: int = 0
    ) -> np.ndarray:
        return self.submit(label, instance, index, k)()


def oasis_renderer(
    ck: dict[str, Any], label_space: LabelSpace, device: torch.device, cfg: RenderConfig, path: Path
) -> OasisRenderer:
    """The renderer of an OASIS checkpoint (``render``): its EMA generator, noise from ``(cfg.seed, index, k)``."""
    arch = config_from_dict(OasisConfig, ck["generator_config"])
    try:
        model = generator_from_state(arch, label_space.num_ids, ck["ema"])
    except (KeyError, RuntimeError):
        raise InputError(path, "EMA generator weights missing or not fitting the recorded architecture") from None
    dtype = amp_dtype(device, cfg.amp_dtype)
    return OasisRenderer(
        model,
        arch,
        label_space.num_ids,
        device,
        cfg.seed,
        dtype,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
    )
