"""pix2pixHD architecture: parameter counts computed by hand from the published layer shapes,
output shapes of generators and discriminators, and the FLOP count per forward pass.
"""

from __future__ import annotations

import pytest
import torch
from _gan_data import one_torch_thread  # noqa: F401 - an autouse fixture

from labelforge.gan.config import GeneratorConfig
from labelforge.gan.networks import (
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    build_discriminator,
    build_generator,
)
from labelforge.gan.presets import get_preset

# Input channels for Cityscapes: one-hot of label ids 0..33 (34) + 1 instance boundary channel.
# (The original code one-hots 35 channels, ids 0..34, so its first conv has 36 inputs.)
CS_INPUT_NC = 35


def conv(k: int, cin: int, cout: int) -> int:
    """Weights + bias of a k x k (transposed) convolution."""
    return k * k * cin * cout + cout


def params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def global_params(input_nc: int, ngf: int = 64, nd: int = 4, nb: int = 9, out: int = 3, head: bool = True) -> int:
    n = conv(7, input_nc, ngf)
    n += sum(conv(3, ngf * 2**i, ngf * 2 ** (i + 1)) for i in range(nd))
    n += nb * 2 * conv(3, ngf * 2**nd, ngf * 2**nd)  # two 3x3 convs per residual block
    n += sum(conv(3, ngf * 2**i, ngf * 2 ** (i - 1)) for i in range(nd, 0, -1))
    return n + (conv(7, ngf, out) if head else 0)  # instance norm is affine=False: no parameters


def test_global_generator_published_parameter_count():
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        g = GlobalGenerator(CS_INPUT_NC)  # ngf 64, 4 downsamplings, 9 blocks
        g36 = GlobalGenerator(36)
    assert params(g) == global_params(CS_INPUT_NC) == 182_543_619
    # With the original code's 36 input channels it is 64 * 7 * 7 weights more.
    assert params(g36) == 182_543_619 + 49 * 64


def test_local_enhancer_published_parameter_count():
    # 1024p: ngf 32, so the global generator inside has 64 filters and loses its last conv.
    with torch.device("meta"):
        le = LocalEnhancer(CS_INPUT_NC, ngf=32, n_local_enhancers=1, n_blocks_local=3)
    stage = conv(7, CS_INPUT_NC, 32) + conv(3, 32, 64) + 3 * 2 * conv(3, 64, 64) + conv(3, 64, 32) + conv(7, 32, 3)
    assert params(le) == global_params(CS_INPUT_NC, ngf=64, head=False) + stage


def test_multiscale_discriminator_published_parameter_count():
    with torch.device("meta"):
        d = build_discriminator(GeneratorConfig(), num_ids=34)  # sees label input (35) + image (3)
    one = conv(4, 38, 64) + conv(4, 64, 128) + conv(4, 128, 256) + conv(4, 256, 512) + conv(4, 512, 1)
    assert len(d.nets) == 2 and params(d) == 2 * one


def test_generator_layers_are_the_published_kinds():
    g = GlobalGenerator(CS_INPUT_NC, ngf=8, n_downsample=2, n_blocks=1)
    kinds = {type(m).__name__ for m in g.modules()}
    assert {"ReflectionPad2d", "InstanceNorm2d", "ReLU", "Tanh", "ConvTranspose2d"} <= kinds
    assert "BatchNorm2d" not in kinds
    assert all(not m.affine for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d))


def test_generator_output_shape_and_range():
    gen, _ = get_preset("tiny")
    g = build_generator(gen, num_ids=34)
    y = g(torch.randn(2, 35, 32, 64) * 3)
    assert y.shape == (2, 3, 32, 64)
    assert y.abs().max() <= 1.0


def test_local_enhancer_output_shape():
    cfg = GeneratorConfig(ngf=4, n_downsample=2, n_blocks=1, n_local_enhancers=1, n_blocks_local=1)
    g = build_generator(cfg, num_ids=34)
    assert isinstance(g, LocalEnhancer) and cfg.size_multiple == 8
    assert g(torch.zeros(1, 35, 32, 64)).shape == (1, 3, 32, 64)


def test_discriminator_feature_shapes():
    # 4x4 kernels, padding 2: stride 2 maps n -> n // 2 + 1, stride 1 maps n -> n + 1.
    d = MultiscaleDiscriminator(input_nc=38, ndf=4, n_layers=2, num_d=2)
    out = d(torch.zeros(1, 38, 32, 64))
    shapes = [[tuple(f.shape[1:]) for f in feats] for feats in out]
    assert shapes == [
        [(4, 17, 33), (8, 9, 17), (16, 10, 18), (1, 11, 19)],
        [(4, 9, 17), (8, 5, 9), (16, 6, 10), (1, 7, 11)],  # second scale sees the input pooled to 16x32
    ]


@pytest.mark.parametrize("size", [(512, 1024), (64, 128)])
def test_flops_match_the_analytic_conv_count(size):
    from labelforge.gan.flops import generator_flops

    h, w = size
    macs = 49 * 35 * 64 * h * w  # c7s1-64 at full resolution
    for i in range(4):  # down: stride-2 conv to (h / 2^(i+1), w / 2^(i+1))
        macs += 9 * 64 * 2**i * 64 * 2 ** (i + 1) * (h >> (i + 1)) * (w >> (i + 1))
    macs += 18 * 9 * 1024 * 1024 * (h >> 4) * (w >> 4)  # residual blocks at 1/16
    for i in range(4, 0, -1):  # transposed convs: MACs counted over their input positions
        macs += 9 * 64 * 2**i * 64 * 2 ** (i - 1) * (h >> i) * (w >> i)
    macs += 49 * 64 * 3 * h * w
    flops = generator_flops(GeneratorConfig(), num_ids=34, height=h, width=w)
    assert flops == 2 * macs
    if size == (512, 1024):
        assert abs(flops / 1e12 - 0.98) < 0.01  # the figure quoted for pix2pixHD at 512x1024


def _convs(net: torch.nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


def test_builders_initialise_as_pix2pixhd_and_repeat_for_a_seed():
    gen, _ = get_preset("tiny")
    torch.manual_seed(0)
    g, d = build_generator(gen, num_ids=34), build_discriminator(gen, num_ids=34)
    for net in (g, d):
        for w in _convs(net):
            if w.numel() >= 4096:  # enough draws for the sample std to sit within 5% of 0.02
                assert 0.019 < w.std().item() < 0.021, tuple(w.shape)
                assert abs(w.mean().item()) < 0.002
                # A normal's tail: PyTorch's default (uniform within +-1/sqrt(fan_in)) never passes 3 sigma.
                assert w.abs().max().item() > 3 * 0.02
    # The draws follow torch's global generator: the trainer's seed gives the same networks every run.
    torch.manual_seed(0)
    g2, d2 = build_generator(gen, num_ids=34), build_discriminator(gen, num_ids=34)
    for a, b in ((g, g2), (d, d2)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    torch.manual_seed(1)
    assert not torch.equal(_convs(build_generator(gen, num_ids=34))[0], _convs(g)[0])


def test_init_weights_sets_affine_norms_to_one_and_zero():
    from labelforge.gan.networks import init_weights

    torch.manual_seed(0)
    net = init_weights(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(4096)))
    bn = net[1]
    assert 0.019 < bn.weight.std().item() < 0.021 and abs(bn.weight.mean().item() - 1.0) < 0.002
    assert torch.count_nonzero(bn.bias).item() == 0
