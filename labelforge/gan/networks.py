"""pix2pixHD networks (Wang et al. 2018): global generator, local enhancer, multiscale PatchGAN.

Layer for layer as the published model: instance norm without affine parameters, reflection
padding, ReLU in the generator and LeakyReLU(0.2) in the discriminators, tanh output, and the
published initialisation (:func:`init_weights`: conv weights from N(0, 0.02)). The discriminators
see the generator input (label one-hot + boundary map) concatenated with an image and return the
features of every layer, which feature matching needs.

Example:
    >>> import torch
    >>> from labelforge.gan.networks import GlobalGenerator
    >>> g = GlobalGenerator(input_nc=35, ngf=8, n_downsample=2, n_blocks=1)
    >>> g(torch.zeros(1, 35, 32, 64)).shape
    torch.Size([1, 3, 32, 64])
"""

from __future__ import annotations

import torch
from torch import nn

from .config import GeneratorConfig

__all__ = [
    "ResnetBlock",
    "GlobalGenerator",
    "LocalEnhancer",
    "NLayerDiscriminator",
    "MultiscaleDiscriminator",
    "init_weights",
    "build_generator",
    "build_discriminator",
]


def _norm(channels: int) -> nn.Module:
    # pix2pixHD's "instance" norm: no affine weights and no running statistics, so train and eval agree.
    return nn.InstanceNorm2d(channels, affine=False)


def _conv7(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, kernel_size=7)]


def _down(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=2, padding=1), _norm(out_ch), nn.ReLU(True)]


def _up(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(in_ch, out_ch, kernel_size=3, stride=2, padding=1, output_padding=1),
        _norm(out_ch),
        nn.ReLU(True),
    ]


class ResnetBlock(nn.Module):
    """x + (pad, conv3, norm, relu, pad, conv3, norm)(x)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3),
            _norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3),
            _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class GlobalGenerator(nn.Module):
    """c7s1-ngf, ``n_downsample`` stride-2 convs, ``n_blocks`` residual blocks, as many transposed
    convs, c7s1-3 and tanh. ``features`` (without the last conv and tanh) is what a LocalEnhancer reuses.
    """

    def __init__(
        self, input_nc: int, output_nc: int = 3, ngf: int = 64, n_downsample: int = 4, n_blocks: int = 9
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv7(input_nc, ngf), _norm(ngf), nn.ReLU(True)]
        for i in range(n_downsample):
            layers += _down(ngf * 2**i, ngf * 2 ** (i + 1))
        layers += [ResnetBlock(ngf * 2**n_downsample) for _ in range(n_blocks)]
        for i in range(n_downsample, 0, -1):
            layers += _up(ngf * 2**i, ngf * 2 ** (i - 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(*_conv7(ngf, output_nc), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _LocalStage(nn.Module):
    """One enhancer stage: a front end on the full-resolution input, added to the coarser output."""

    def __init__(self, input_nc: int, ngf: int, n_blocks: int, output_nc: int | None) -> None:
        super().__init__()
        self.down = nn.Sequential(*_conv7(input_nc, ngf), _norm(ngf), nn.ReLU(True), *_down(ngf, ngf * 2))
        up: list[nn.Module] = [ResnetBlock(ngf * 2) for _ in range(n_blocks)]
        up += _up(ngf * 2, ngf)
        if output_nc is not None:  # only the finest stage ends in an image
            up += [*_conv7(ngf, output_nc), nn.Tanh()]
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x) + coarse)


class LocalEnhancer(nn.Module):
    """pix2pixHD's ``--netG local``: a global generator with ``ngf * 2**n_local`` filters runs on the
    input downsampled ``n_local`` times; each stage refines at twice the resolution with ``ngf * 2**k``.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int = 3,
        ngf: int = 32,
        n_downsample: int = 4,
        n_blocks: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
    ) -> None:
        super().__init__()
        self.n_local = n_local_enhancers
        self.global_net = GlobalGenerator(input_nc, output_nc, ngf * 2**n_local_enhancers, n_downsample, n_blocks)
        del self.global_net.head  # the global net's last conv is dropped; its features feed the first stage
        self.stages = nn.ModuleList(
            _LocalStage(
                input_nc,
                ngf * 2 ** (n_local_enhancers - n),
                n_blocks_local,
                output_nc if n == n_local_enhancers else None,
            )
            for n in range(1, n_local_enhancers + 1)
        )
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [x]
        for _ in range(self.n_local):
            pyramid.append(self.pool(pyramid[-1]))
        out = self.global_net.features(pyramid[-1])
        for n, stage in enumerate(self.stages, start=1):
            out = stage(pyramid[self.n_local - n], out)
        return out


class NLayerDiscriminator(nn.Module):
    """PatchGAN with 4x4 kernels and padding 2; returns the output of every layer group (last: the
    patch scores), since feature matching compares the intermediate ones.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        groups: list[list[nn.Module]] = [[nn.Conv2d(input_nc, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True)]]
        nf = ndf
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            groups.append([nn.Conv2d(prev, nf, 4, stride=2, padding=2), _norm(nf), nn.LeakyReLU(0.2, True)])
        prev, nf = nf, min(nf * 2, 512)
        groups.append([nn.Conv2d(prev, nf, 4, stride=1, padding=2), _norm(nf), nn.LeakyReLU(0.2, True)])
        groups.append([nn.Conv2d(nf, 1, 4, stride=1, padding=2)])
        self.groups = nn.ModuleList(nn.Sequential(*g) for g in groups)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for g in self.groups:
            x = g(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs; discriminator k sees the input average-pooled k times."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, num_d: int = 2) -> None:
        super().__init__()
        self.nets = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers) for _ in range(num_d))
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = self.pool(x)
            out.append(net(x))
        return out


def init_weights(net: nn.Module) -> nn.Module:
    """pix2pixHD's ``weights_init``: every (transposed) conv weight from N(0, 0.02), every affine norm
    weight from N(1, 0.02) with bias 0. Conv biases keep PyTorch's default, as in the published code.

    The draws come from torch's global generator in module order, so a seeded caller (the trainer
    seeds it with ``--seed``) always gets the same weights. Returns ``net``.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


def build_generator(cfg: GeneratorConfig, num_ids: int) -> nn.Module:
    """The generator ``cfg`` describes for a label space with ``num_ids`` ids, initialised as pix2pixHD."""
    input_nc = cfg.input_nc(num_ids)
    if cfg.n_local_enhancers == 0:
        net: nn.Module = GlobalGenerator(input_nc, cfg.output_nc, cfg.ngf, cfg.n_downsample, cfg.n_blocks)
    else:
        net = LocalEnhancer(
            input_nc, cfg.output_nc, cfg.ngf, cfg.n_downsample, cfg.n_blocks, cfg.n_local_enhancers, cfg.n_blocks_local
        )
    return init_weights(net)


def build_discriminator(cfg: GeneratorConfig, num_ids: int) -> MultiscaleDiscriminator:
    """Discriminators conditioned on the generator input (label + image channels), initialised as pix2pixHD."""
    d = MultiscaleDiscriminator(cfg.input_nc(num_ids) + cfg.output_nc, cfg.ndf, cfg.n_layers_d, cfg.num_d)
    init_weights(d)
    return d
