"""pix2pixHD losses: LSGAN, discriminator feature matching, VGG19 perceptual (from a local file).

Feature matching weighs the L1 of each of a discriminator's ``n_layers + 1`` intermediate layers by
``4 / (n_layers + 1)`` and each discriminator by ``1 / num_d``, times ``lambda_feat`` (the final
patch scores are not matched); the VGG loss weighs relu1_1..relu5_1 by 1/32, 1/16, 1/8,
1/4, 1, times ``lambda_feat`` -- both as the published code. Unlike it, images are mapped to
ImageNet statistics before VGG, which is what the weights were trained on.

Example:
    >>> import torch
    >>> from labelforge.gan.losses import lsgan_loss
    >>> lsgan_loss([[torch.ones(1, 1, 2, 2)]], target_real=True).item()
    0.0
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

__all__ = ["lsgan_loss", "feature_matching_loss", "VGGLoss", "load_vgg19_features"]


def lsgan_loss(preds: list[list[torch.Tensor]], target_real: bool) -> torch.Tensor:
    """Sum over discriminators of the mean squared distance of the patch scores to 1 (real) or 0."""
    total = preds[0][-1].new_zeros((), dtype=torch.float32)
    for feats in preds:
        score = feats[-1].float()
        total = total + F.mse_loss(score, torch.full_like(score, 1.0 if target_real else 0.0))
    return total


def feature_matching_loss(
    fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]], lambda_feat: float
) -> torch.Tensor:
    """L1 between discriminator features of fake and (detached) real inputs, every layer but the last.

    Each discriminator returns ``n_layers + 2`` outputs: ``n_layers + 1`` intermediate layers, then
    the patch scores. pix2pixHD weighs each intermediate layer by ``4 / (n_layers + 1)``, so a
    discriminator's weights sum to 4 whatever its depth.
    """
    num_d = len(fake)
    total = fake[0][0].new_zeros((), dtype=torch.float32)
    for f_feats, r_feats in zip(fake, real, strict=True):
        n_matched = len(f_feats) - 1  # n_layers + 1: every output but the patch scores
        w = 4.0 / n_matched / num_d
        for f, r in zip(f_feats[:-1], r_feats[:-1], strict=True):
            total = total + w * F.l1_loss(f.float(), r.detach().float())
    return total * lambda_feat


# Indices of torchvision's vgg19().features where the slices end: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
_VGG_CUTS = (2, 7, 12, 21, 30)
_VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def load_vgg19_features(path: str | Path) -> nn.Sequential:
    """torchvision's VGG19 ``features`` up to relu5_1 with weights from a local file.

    The file is a ``torch.save``d state dict of ``torchvision.models.vgg19`` (keys ``features.N.*``)
    or of its ``features`` alone (keys ``N.*``). Nothing is downloaded.
    """
    from torchvision.models.vgg import cfgs, make_layers

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "VGG19 weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is the user's input problem
        raise InputError(path, f"cannot read VGG19 weights ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise InputError(path, "VGG19 weights must be a state dict")
    feats = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
    # Only the conv stack: building the whole vgg19 would also initialise 120M unused classifier weights.
    net = make_layers(cfgs["E"], batch_norm=False)[: _VGG_CUTS[-1]]
    wanted = net.state_dict()
    missing = [k for k in wanted if k not in feats]
    if missing:
        raise InputError(path, f"not VGG19 weights: missing {missing[0]}")
    try:
        net.load_state_dict({k: feats[k] for k in wanted})
    except RuntimeError:
        raise InputError(path, "not VGG19 weights: tensor shapes differ from torchvision's vgg19") from None
    return net


class VGGLoss(nn.Module):
    """Weighted L1 between VGG19 activations of generated and real images in [-1, 1]."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        starts = (0, *_VGG_CUTS[:-1])
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, _VGG_CUTS, strict=True))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGLoss:
        return super().train(False)  # a fixed feature extractor, whatever the caller's mode

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x = ((torch.cat([fake, real]) + 1) / 2 - self.mean) / self.std  # (2B, 3, H, W), one pass for both
        total = fake.new_zeros((), dtype=torch.float32)
        for w, sl in zip(_VGG_WEIGHTS, self.slices, strict=True):
            x = sl(x)
            f, r = x.float().chunk(2)
            total = total + w * F.l1_loss(f, r.detach())
        return total
