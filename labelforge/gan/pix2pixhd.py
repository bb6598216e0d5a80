"""pix2pixHD's training step: the trainer class :func:`labelforge.gan.train.train_generator` runs by default.

One iteration, as pix2pixHD: the generator renders the batch; the discriminators score
(input, fake) and (input, real) in one pass; the generator steps on LSGAN + feature matching
(+ VGG); the discriminators step on the LSGAN loss of that pass. Under ``torchrun`` both networks
are wrapped in DDP. The class has the shape of :class:`labelforge.gan.train.GeneratorTrainer`.

Example:
    >>> from labelforge.gan.pix2pixhd import Pix2PixHDTrainer  # doctest: +SKIP
    >>> t = Pix2PixHDTrainer(gen_cfg, train_cfg, label_space, torch.device("cpu"), world=1)  # doctest: +SKIP
    >>> t.step(batch)["G_GAN"]  # doctest: +SKIP
    0.98
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .._runtime import amp_dtype, autocast
from ..errors import LabelforgeError
from ..labelspace import LabelSpace
from .checkpoint import FORMAT, pix2pixhd_state
from .config import GeneratorConfig, TrainConfig
from .data import collate
from .inputs import make_input, to_uint8_hwc, to_unit_range
from .losses import VGGLoss, feature_matching_loss, load_vgg19_features, lsgan_loss
from .networks import build_discriminator, build_generator

__all__ = ["Pix2PixHDTrainer", "LOSSES"]

LOSSES = ("G_GAN", "G_feat", "G_VGG", "D_real", "D_fake", "L1")


class Pix2PixHDTrainer:
    """The generator, the multiscale discriminators, their optimizers and one training step."""

    ARCH: ClassVar[str] = "pix2pixhd"
    FORMAT: ClassVar[str] = FORMAT

    @classmethod
    def check(cls, gen_cfg: GeneratorConfig, train_cfg: TrainConfig) -> None:
        if not isinstance(gen_cfg, GeneratorConfig):
            raise LabelforgeError(f"pix2pixHD trains a GeneratorConfig, not a {type(gen_cfg).__name__}")

    def __init__(
        self,
        gen_cfg: GeneratorConfig,
        train_cfg: TrainConfig,
        label_space: LabelSpace,
        device: torch.device,
        world: int,
    ) -> None:
        cfg = train_cfg
        self.cfg, self.ls, self.device = cfg, label_space, device
        self.input_nc = gen_cfg.input_nc(label_space.num_ids)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        self.g = build_generator(gen_cfg, label_space.num_ids).to(device)
        self.d = build_discriminator(gen_cfg, label_space.num_ids).to(device)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr, betas=betas)
        self.dtype = amp_dtype(device, cfg.amp_dtype)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.vgg = VGGLoss(load_vgg19_features(cfg.vgg_weights)).to(device) if cfg.vgg_weights else None
        self.g_run: nn.Module = self.g
        self.d_run: nn.Module = self.d
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_run = nn.parallel.DistributedDataParallel(self.g, device_ids=ids)
            self.d_run = nn.parallel.DistributedDataParallel(self.d, device_ids=ids)

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def step(self, batch: dict[str, Any]) -> dict[str, float]:
        dev, nb = self.device, self.device.type == "cuda"
        label = batch["label"].to(dev, non_blocking=nb)
        inst = batch["instance"].to(dev, non_blocking=nb)
        real = to_unit_range(batch["image"].to(dev, non_blocking=nb))
        inp = make_input(label, inst, self.ls.num_ids)
        b = inp.shape[0]
        with autocast(dev, self.dtype):
            fake = self.g_run(inp)
            # Fake and real in one pass: instance norm keeps samples independent, and DDP sees one forward.
            pairs = torch.cat([torch.cat([inp, fake.detach()], 1), torch.cat([inp, real], 1)], 0)  # (2B, C+3, H, W)
            pred = self.d_run(pairs)
        pred_fake_d = [[f[:b] for f in feats] for feats in pred]
        pred_real = [[f[b:] for f in feats] for feats in pred]

        # Generator step. The discriminator is frozen so this backward leaves its gradients (and DDP
        # hooks) alone; it runs unwrapped because its parameters take no part in this update.
        self.d.requires_grad_(False)
        with autocast(dev, self.dtype):
            pred_fake_g = self.d(torch.cat([inp, fake], 1))
            g_gan = lsgan_loss(pred_fake_g, target_real=True)
            g_feat = feature_matching_loss(pred_fake_g, pred_real, self.cfg.lambda_feat)
            g_vgg = self.vgg(fake, real) * self.cfg.lambda_feat if self.vgg is not None else torch.zeros((), device=dev)
        loss_g = g_gan + g_feat + g_vgg
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        self.d.requires_grad_(True)

        d_real = lsgan_loss(pred_real, target_real=True)
        d_fake = lsgan_loss(pred_fake_d, target_real=False)
        loss_d = 0.5 * (d_real + d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        # Pixel L1 to the photo: not optimised, a readable sign that the generator learns the scene.
        l1 = (fake.detach().float() - real).abs().mean()
        vals = torch.stack([g_gan, g_feat, g_vgg, d_real, d_fake, l1]).detach().float().cpu()  # one sync per step
        return dict(zip(LOSSES, vals.tolist(), strict=True))

    @staticmethod
    def progress_fields(losses: dict[str, float]) -> dict[str, float]:
        return {
            "G": losses["G_GAN"] + losses["G_feat"] + losses["G_VGG"],
            "D": losses["D_real"] + losses["D_fake"],
            "L1": losses["L1"],
        }

    @torch.no_grad()
    def render(self, items: list[dict[str, Any]]) -> np.ndarray:
        batch = collate(items)
        inp = make_input(batch["label"].to(self.device), batch["instance"].to(self.device), self.ls.num_ids)
        with autocast(self.device, self.dtype):
            fake = self.g(inp)
        return to_uint8_hwc(fake).cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        optimizers = {"optimizer_g": self.opt_g, "optimizer_d": self.opt_d, "scaler": self.scaler}
        return pix2pixhd_state(self.g, self.d, optimizers, self.input_nc)

    def load_state_dict(self, ck: dict[str, Any]) -> None:
        self.g.load_state_dict(ck["generator"])
        self.d.load_state_dict(ck["discriminator"])
        self.opt_g.load_state_dict(ck["optimizer_g"])
        self.opt_d.load_state_dict(ck["optimizer_d"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
