"""The OASIS generator: SPADE residual blocks from a small latent up to the image, conditioned on
the label map and a noise vector at every scale.

Top-down: the label input (one-hot of the label ids, plus the instance boundary map when the
config asks for it) is concatenated with the noise, broadcast over every pixel (OASIS's "3D
noise": a ``z_dim`` vector per image, or a full ``(z_dim, H, W)`` tensor for local control).
That conditioning map, resized nearest, feeds a 3x3 conv at the latent size ``H / 2**(n-1)``
and every SPADE norm. Between blocks the features are upsampled x2 by nearest neighbour (no
transposed convolution, hence no checkerboard); a LeakyReLU, a 3x3 conv to RGB and tanh end it.

Example:
    >>> import torch
    >>> from labelforge.gan.oasis.config import get_oasis_preset
    >>> from labelforge.gan.oasis.generator import OasisGenerator
    >>> cfg, _ = get_oasis_preset("tiny")
    >>> g = OasisGenerator(cfg, label_nc=35)
    >>> g(torch.zeros(1, 35, 64, 128), torch.zeros(1, 16)).shape
    torch.Size([1, 3, 64, 128])
"""

from __future__ import annotations

import torch
from torch import nn

from ..inputs import make_input, one_hot
from .config import OasisConfig
from .layers import SPADE, conv, resize_nearest

__all__ = ["SpadeResBlock", "OasisGenerator", "label_input", "expand_noise"]


class SpadeResBlock(nn.Module):
    """``shortcut(x) + conv1(act(SPADE(conv0(act(SPADE(x))))))``; the shortcut is SPADE + 1x1 conv
    when the width changes. The convs are spectrally normalised, as OASIS's generator blocks."""

    def __init__(self, fin: int, fout: int, cfg: OasisConfig, label_nc: int) -> None:
        super().__init__()
        mid, sn, init = min(fin, fout), cfg.spectral_norm, cfg.init
        cond = label_nc + cfg.z_dim
        self.norm_0 = SPADE(fin, cond, cfg.spade_hidden, cfg.spade_ks, init)
        self.conv_0 = conv(fin, mid, 3, sn=sn, init=init)
        self.norm_1 = SPADE(mid, cond, cfg.spade_hidden, cfg.spade_ks, init)
        self.conv_1 = conv(mid, fout, 3, sn=sn, init=init)
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, cond, cfg.spade_hidden, cfg.spade_ks, init)
            self.conv_s = conv(fin, fout, 1, sn=sn, bias=False, init=init)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        skip = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(self.act(self.norm_0(x, seg)))
        dx = self.conv_1(self.act(self.norm_1(dx, seg)))
        return skip + dx


def expand_noise(noise: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """(B, z) -> (B, z, H, W) broadcast view; a (B, z, H, W) tensor passes through (resized if needed)."""
    if noise.dim() == 2:
        return noise[:, :, None, None].expand(-1, -1, *size)
    return resize_nearest(noise, size)


class OasisGenerator(nn.Module):
    """``forward(label_input, noise)``: (B, label_nc, H, W) + (B, z_dim) -> (B, 3, H, W) in [-1, 1]."""

    def __init__(self, cfg: OasisConfig, label_nc: int) -> None:
        super().__init__()
        self.cfg, self.label_nc = cfg, label_nc
        widths = cfg.g_channels  # latent first, e.g. 1024, 1024, 1024, 512, 256, 128, 64 for Cityscapes
        self.fc = conv(label_nc + cfg.z_dim, widths[0], 3, init=cfg.init)
        self.body = nn.ModuleList(
            SpadeResBlock(a, b, cfg, label_nc) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.act = nn.LeakyReLU(0.2)
        self.conv_img = conv(widths[-1], cfg.output_nc, 3, init=cfg.init)

    def latent_size(self, h: int, w: int) -> tuple[int, int]:
        f = 2 ** (len(self.body) - 1)
        return h // f, w // f

    def forward(self, label: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        h, w = label.shape[-2:]
        seg = label
        if self.cfg.z_dim:
            seg = torch.cat([label, expand_noise(noise.to(label.dtype), (h, w))], 1)  # (B, label_nc + z, H, W)
        # The conditioning map at each scale, resized once and shared by that scale's SPADE norms.
        n = len(self.body)
        scales = {(h >> k, w >> k): resize_nearest(seg, (h >> k, w >> k)) for k in range(n)}
        x = self.fc(scales[self.latent_size(h, w)])
        for i, block in enumerate(self.body):
            x = block(x, scales[(x.shape[-2], x.shape[-1])])
            if i < n - 1:
                x = self.up(x)
        return torch.tanh(self.conv_img(self.act(x)))


def label_input(
    label: torch.Tensor, instance: torch.Tensor | None, num_ids: int, boundaries: bool, dtype: torch.dtype
) -> torch.Tensor:
    """(B, H, W) ids (+ instances) -> the generator's label channels: one-hot, plus the boundary map
    (from the instance ids, or the label ids without instances) when ``boundaries``."""
    if boundaries:
        return make_input(label, instance, num_ids, dtype)
    return one_hot(label, num_ids, dtype)
