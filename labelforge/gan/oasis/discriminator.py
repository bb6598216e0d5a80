"""The OASIS discriminator: a U-Net of residual blocks that segments an image into N+1 classes.

Channel 0 of its output means "fake"; channel ``1 + id`` means "real pixel of label id ``id``".
It sees the image alone (no label map at its input): the label enters through the loss, which
asks it to segment real images correctly and to call every pixel of a generated image fake.

Encoder: ``num_res_blocks`` residual blocks, each halving the resolution (average pooling);
decoder: as many blocks, each doubling it (nearest upsampling), every one after the first fed
with the encoder features of its scale concatenated to the decoder's; a 1x1 conv gives the
logits at the input resolution. All convs but that last one are spectrally normalised; there is
no normalisation layer, so samples never interact.

Example:
    >>> import torch
    >>> from labelforge.gan.oasis.config import get_oasis_preset
    >>> from labelforge.gan.oasis.discriminator import OasisDiscriminator
    >>> cfg, _ = get_oasis_preset("tiny")
    >>> OasisDiscriminator(cfg, num_ids=34)(torch.zeros(1, 3, 64, 128)).shape
    torch.Size([1, 35, 64, 128])
"""

from __future__ import annotations

import torch
from torch import nn

from .config import OasisConfig
from .layers import conv

__all__ = ["DResBlock", "OasisDiscriminator"]


class DResBlock(nn.Module):
    """OASIS's ``residual_block_D``: two 3x3 convs (each after a LeakyReLU, except the first conv of
    the very first block) and a 1x1 shortcut conv where the width changes; ``down`` average-pools the
    result by 2, ``up`` upsamples the block input by 2 before its first conv and in the shortcut.
    """

    def __init__(
        self, fin: int, fout: int, *, sn: bool, init: str, down: bool = False, up: bool = False, first: bool = False
    ) -> None:
        super().__init__()
        self.down, self.up, self.first = down, up, first
        head: list[nn.Module] = [] if first else [nn.LeakyReLU(0.2)]
        if up:
            head.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.conv1 = nn.Sequential(*head, conv(fin, fout, 3, sn=sn, init=init))
        self.conv2 = nn.Sequential(nn.LeakyReLU(0.2), conv(fout, fout, 3, sn=sn, init=init))
        self.conv_s = conv(fin, fout, 1, sn=sn, init=init) if fin != fout else None
        self.pool = nn.AvgPool2d(2) if down else None
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest") if up else None

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample is not None:
            x = self.upsample(x)
        if self.first and self.pool is not None:  # the first block pools the image before its 1x1 conv
            x = self.pool(x)
        if self.conv_s is not None:
            x = self.conv_s(x)
        if not self.first and self.pool is not None:
            x = self.pool(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.conv2(self.conv1(x))
        if self.pool is not None:
            dx = self.pool(dx)
        return self.shortcut(x) + dx


class OasisDiscriminator(nn.Module):
    """``forward(image)``: (B, 3, H, W) -> (B, num_ids + 1, H, W) logits (channel 0: fake)."""

    def __init__(self, cfg: OasisConfig, num_ids: int) -> None:
        super().__init__()
        n, kw = cfg.num_res_blocks, {"sn": cfg.spectral_norm, "init": cfg.init}
        ch = [cfg.output_nc, *cfg.d_channels]  # e.g. 3, 128, 128, 256, 256, 512, 512 for Cityscapes
        self.down = nn.ModuleList(DResBlock(ch[i], ch[i + 1], down=True, first=i == 0, **kw) for i in range(n))
        ups = [DResBlock(ch[n], ch[n - 1], up=True, **kw)]
        ups += [DResBlock(2 * ch[n - i], ch[n - i - 1], up=True, **kw) for i in range(1, n - 1)]
        ups.append(DResBlock(2 * ch[1], cfg.channels_d, up=True, **kw))
        self.up = nn.ModuleList(ups)
        self.classify = conv(cfg.channels_d, num_ids + 1, 1, init=cfg.init)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = []
        x = image
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](x)
        for i, block in enumerate(self.up[1:], start=1):
            x = block(torch.cat([skips[-i - 1], x], 1))  # (B, 2 * width, h, w): encoder features of this scale
        return self.classify(x)
