"""OASIS: network shapes and parameter counts against hand counts, the class-balanced N+1 loss and
LabelMix on hand-built tensors, deterministic noise, and a few training steps that run, repeat
exactly and resume exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from _gan_data import (
    make_pair_root,
    one_torch_thread,  # noqa: F401 - an autouse fixture
)

from labelforge.errors import LabelforgeError
from labelforge.gan.data import PairDataset, collate
from labelforge.gan.oasis.config import OasisConfig, get_oasis_preset
from labelforge.gan.oasis.discriminator import OasisDiscriminator
from labelforge.gan.oasis.generator import OasisGenerator
from labelforge.gan.oasis.losses import class_weights, labelmix_loss, labelmix_mask, n1_loss, n1_target
from labelforge.gan.oasis.noise import labelmix_bits, render_noise, train_noise
from labelforge.gan.oasis.trainer import OasisRenderer, OasisTrainer, generator_from_state
from labelforge.labelspace import get_label_space

LS = get_label_space()
NUM_IDS = 34  # Cityscapes label ids 0..33
# A small architecture for the training tests: 3 blocks, so sizes are multiples of 8; the tiny
# preset's PyTorch init, with which the discriminator learns within a few steps.
SMALL = OasisConfig(channels_g=4, channels_d=4, num_res_blocks=3, z_dim=4, spade_hidden=8, init="torch")


def conv(k: int, cin: int, cout: int, bias: bool = True) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def spade(c: int, label_nc: int, hidden: int, ks: int) -> int:
    return conv(ks, label_nc, hidden) + 2 * conv(ks, hidden, c)  # shared conv, gamma, beta


def g_params(cfg: OasisConfig, label_nc: int) -> int:
    """Hand count from OASIS's generator: fc, SPADE residual blocks, conv_img (instance norm has none)."""
    cond = label_nc + cfg.z_dim
    mults = (16, 16, 16, 8, 4, 2, 1)[-(cfg.num_res_blocks + 1) :]
    w = [m * cfg.channels_g for m in mults]
    n = conv(3, cond, w[0]) + conv(3, w[-1], 3)
    for fin, fout in zip(w[:-1], w[1:], strict=True):
        mid = min(fin, fout)
        n += spade(fin, cond, cfg.spade_hidden, cfg.spade_ks) + conv(3, fin, mid)
        n += spade(mid, cond, cfg.spade_hidden, cfg.spade_ks) + conv(3, mid, fout)
        if fin != fout:
            n += spade(fin, cond, cfg.spade_hidden, cfg.spade_ks) + conv(1, fin, fout, bias=False)
    return n


def d_params(cfg: OasisConfig, num_ids: int) -> int:
    """Hand count from OASIS's U-Net discriminator: two 3x3 convs per block, 1x1 shortcut where widths differ."""

    def block(fin: int, fout: int) -> int:
        return conv(3, fin, fout) + conv(3, fout, fout) + (conv(1, fin, fout) if fin != fout else 0)

    n_blocks = cfg.num_res_blocks
    ch = [3] + [m * cfg.channels_d for m in (2, 2, 4, 4, 8, 8)[:n_blocks]]
    n = sum(block(ch[i], ch[i + 1]) for i in range(n_blocks))
    n += block(ch[n_blocks], ch[n_blocks - 1])
    n += sum(block(2 * ch[n_blocks - i], ch[n_blocks - i - 1]) for i in range(1, n_blocks - 1))
    n += block(2 * ch[1], cfg.channels_d) + conv(1, cfg.channels_d, num_ids + 1)
    return n


def params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("preset", "g_count", "d_count"), [("tiny", 2_494_835, 181_059), ("cityscapes", 71_107_523, 22_251_299)]
)
def test_parameter_counts_match_hand_counts(preset: str, g_count: int, d_count: int) -> None:
    cfg, _ = get_oasis_preset(preset)
    label_nc = cfg.input_nc(NUM_IDS)  # 34 one-hot channels + the boundary map
    with torch.device("meta"):
        g, d = OasisGenerator(cfg, label_nc), OasisDiscriminator(cfg, NUM_IDS)
    assert params(g) == g_params(cfg, label_nc) == g_count
    assert params(d) == d_params(cfg, NUM_IDS) == d_count


def test_output_shapes_and_ranges() -> None:
    cfg, _ = get_oasis_preset("tiny")
    torch.manual_seed(0)
    g, d = OasisGenerator(cfg, 35).eval(), OasisDiscriminator(cfg, NUM_IDS).eval()
    label = torch.zeros(2, 35, 64, 64)
    label[:, 7, 32:] = 1  # road below, the rest without a class
    with torch.no_grad():
        img = g(label, torch.randn(2, cfg.z_dim))
        img3d = g(label, torch.randn(2, cfg.z_dim, 64, 64))  # a spatial noise tensor works as well
        logits = d(img)
    assert img.shape == img3d.shape == (2, 3, 64, 64)
    assert img.abs().max() <= 1
    assert logits.shape == (2, NUM_IDS + 1, 64, 64)


def test_generator_upsamples_by_nearest_neighbour_and_uses_spectral_norm_where_oasis_does() -> None:
    cfg, _ = get_oasis_preset("tiny")
    with torch.device("meta"):
        g, d = OasisGenerator(cfg, 35), OasisDiscriminator(cfg, NUM_IDS)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert {m.mode for m in g.modules() if isinstance(m, torch.nn.Upsample)} == {"nearest"}

    def sn(net: torch.nn.Module) -> tuple[int, int]:
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        return sum(hasattr(m, "parametrizations") for m in convs), len(convs)

    # Generator: the residual blocks' convs (2 per block + the 1x1 shortcuts of the 4 width changes);
    # not the first conv, the SPADE convs or the image conv. Discriminator: every conv but the classifier.
    assert sn(g) == (5 * 2 + 4, 14 + 14 * 3 + 2)
    n_sn, n_convs = sn(d)
    assert n_sn == n_convs - 1


def test_initialisation_is_oasis_xavier_normal_with_gain_002() -> None:
    cfg, _ = get_oasis_preset("cityscapes")
    torch.manual_seed(0)
    g = OasisGenerator(replace(cfg, num_res_blocks=2, channels_g=16), 35)
    w = g.fc.weight  # 3x3, 35 + 64 noise -> 64 channels; not spectrally normalised
    fan_in, fan_out = 99 * 9, 64 * 9
    assert w.std().item() == pytest.approx(0.02 * math.sqrt(2 / (fan_in + fan_out)), rel=0.03)
    assert all((m.bias == 0).all() for m in g.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None)


def test_config_checks_and_size_multiple() -> None:
    assert get_oasis_preset("cityscapes")[0].size_multiple == 64
    with pytest.raises(LabelforgeError, match="num_res_blocks"):
        OasisConfig(num_res_blocks=7)
    with pytest.raises(LabelforgeError, match="valid: tiny, cityscapes"):
        get_oasis_preset("huge")


# -- losses on hand-built tensors ------------------------------------------------------------------


def test_class_weights_balance_present_classes_and_ignore_dontcare() -> None:
    # 1 image, 2x3: class 1 on 3 pixels, class 2 on 2, the don't-care class 0 on 1. Two classes are
    # present, 6 pixels in all: weight 6 / (2 * count) = 1 for class 1, 1.5 for class 2, 0 for class 0.
    label = torch.tensor([[[1, 1, 1], [2, 2, 0]]])
    w = class_weights(label, num_ids=3, dontcare=(0,))
    assert w.tolist() == [[[1.0, 1.0, 1.0], [1.5, 1.5, 0.0]]]
    # Without don't-care ids class 0 counts: 6 / (3 * count).
    assert class_weights(label, num_ids=3).flatten().tolist() == pytest.approx([2 / 3] * 3 + [1.0, 1.0, 2.0])
    # An id outside the label space weighs 0 and is not a class.
    assert class_weights(torch.tensor([[[1, 9]]]), num_ids=3).tolist() == [[[2.0, 0.0]]]


def test_n1_targets_and_loss_values() -> None:
    label = torch.tensor([[[0, 1]]])  # 1x2 pixels, ids 0 and 1, 2 ids -> 3 output channels
    assert n1_target(label, 2, real=True).tolist() == [[[1, 2]]]
    assert n1_target(label, 2, real=False).tolist() == [[[0, 0]]]
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]])  # (1, 3, 1, 2)
    # pixel 0 logits (2, 0, 0), pixel 1 logits (0, 1, 0)
    lse0, lse1 = math.log(math.exp(2) + 2), math.log(math.exp(1) + 2)
    fake = ((lse0 - 2) + (lse1 - 0)) / 2  # target class 0 for both pixels
    real = ((lse0 - 0) + (lse1 - 0)) / 2  # targets 1 (logit 0) and 2 (logit 0)
    assert n1_loss(logits, label, real=False).item() == pytest.approx(fake, abs=1e-6)
    assert n1_loss(logits, label, real=True).item() == pytest.approx(real, abs=1e-6)
    w = torch.tensor([[[0.5, 1.5]]])
    assert n1_loss(logits, label, real=True, weights=w).item() == pytest.approx((0.5 * lse0 + 1.5 * lse1) / 2)
    # The fake loss ignores the weights: every pixel is class 0 alike.
    assert n1_loss(logits, label, real=False, weights=w).item() == pytest.approx(fake, abs=1e-6)


def test_labelmix_mask_and_loss_values() -> None:
    label = torch.tensor([[[0, 1], [2, 9]]])  # id 9 is outside the 3-id table
    mask = labelmix_mask(label, torch.tensor([1.0, 0.0, 1.0]))
    assert mask.tolist() == [[[[1.0, 0.0], [1.0, 0.0]]]]
    d_real = torch.full((1, 2, 2, 2), 2.0)
    d_fake = torch.zeros(1, 2, 2, 2)
    # The consistent mix is 2 where the mask is 1 and 0 elsewhere; d_mixed is 1 everywhere: every error is 1.
    assert labelmix_loss(mask, torch.ones(1, 2, 2, 2), d_fake, d_real).item() == pytest.approx(1.0)
    consistent = mask * d_real + (1 - mask) * d_fake
    assert labelmix_loss(mask, consistent, d_fake, d_real).item() == 0.0


# -- noise -----------------------------------------------------------------------------------------


def test_render_noise_depends_on_seed_index_and_k_only() -> None:
    a = render_noise(3, [10, 11, 12], k=0, z_dim=8)
    assert torch.equal(a[1:], render_noise(3, torch.tensor([11, 12]), k=0, z_dim=8))  # batch composition
    assert not torch.equal(a[0], render_noise(3, [10], k=1, z_dim=8)[0])  # another render of the map
    assert not torch.equal(a[0], render_noise(4, [10], k=0, z_dim=8)[0])  # another seed
    assert a.dtype == torch.float32 and abs(a.mean().item()) < 1
    assert torch.equal(train_noise(0, 5, 0, 2, 8), train_noise(0, 5, 0, 2, 8))
    assert not torch.equal(train_noise(0, 5, 0, 2, 8), train_noise(0, 5, 1, 2, 8))  # ranks differ
    assert set(labelmix_bits(0, 0, 0, 34).tolist()) == {0.0, 1.0}


# -- training --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> PairDataset:
    root = make_pair_root(tmp_path_factory.mktemp("oasis") / "root", n=4, h=32, w=64)
    return PairDataset(root, (32, 64), LS)


def _trainer(seed: int = 0, arch: OasisConfig = SMALL) -> OasisTrainer:
    _, train = get_oasis_preset("tiny")
    return OasisTrainer(arch, replace(train, height=32, width=64, seed=seed), LS, torch.device("cpu"), world=1)


def _batches(ds: PairDataset, n: int) -> list[dict]:
    return [collate([ds[(2 * i) % len(ds)], ds[(2 * i + 1) % len(ds)]]) for i in range(n)]


def test_training_steps_are_finite_deterministic_and_resume_exactly(pairs: PairDataset) -> None:
    batches = _batches(pairs, 4)
    a = _trainer()
    losses_a = [a.step(b) for b in batches]
    assert all(math.isfinite(v) for row in losses_a for v in row.values())
    assert set(losses_a[0]) == {"G_adv", "D_fake", "D_real", "D_LM", "L1"}
    # With OASIS's initialisation (gain 0.02) the logits begin near zero: every N+1 loss at log(N + 1).
    first = _trainer(arch=replace(SMALL, init="oasis")).step(batches[0])
    for k in ("G_adv", "D_fake", "D_real"):
        assert first[k] == pytest.approx(math.log(NUM_IDS + 1), abs=0.01)

    b = _trainer()
    assert [b.step(x) for x in batches] == losses_a  # same seed, same numbers

    # A trainer restored after two steps continues exactly like the uninterrupted one.
    c = _trainer()
    for x in batches[:2]:
        c.step(x)
    ck = {**c.state_dict(), "step": 2}
    d = _trainer(seed=0)
    d.load_state_dict(ck)
    assert [d.step(x) for x in batches[2:]] == losses_a[2:]
    for p, q in zip(d.ema.parameters(), a.ema.parameters(), strict=True):
        assert torch.equal(p, q)


def test_the_discriminator_learns_the_fake_class_within_steps_with_the_tiny_init(pairs: PairDataset) -> None:
    batches = _batches(pairs, 16)
    t = _trainer()
    rows = [t.step(b) for b in batches]
    assert rows[-1]["D_fake"] < 0.7 * rows[0]["D_fake"]
    # With OASIS's gain-0.02 initialisation the same 16 steps leave it where it began (docs/generator.md).
    oasis = _trainer(arch=replace(SMALL, init="oasis"))
    last = [oasis.step(b) for b in batches][-1]
    assert last["D_fake"] > 0.95 * math.log(NUM_IDS + 1)


def test_renders_are_reproducible_differ_per_k_and_ignore_the_batch(pairs: PairDataset) -> None:
    t = _trainer()
    for b in _batches(pairs, 2):
        t.step(b)
    items = [pairs[0], pairs[1], pairs[2]]
    r0 = t.render(items)
    assert r0.shape == (3, 32, 64, 3) and r0.dtype == np.uint8
    assert np.array_equal(r0, t.render(items))
    assert np.array_equal(r0[2:], t.render(items[2:]))  # instance norm: no sample depends on its batch
    assert not np.array_equal(r0, t.render(items, k=1))  # another noise, another photo


def test_a_generator_rebuilt_from_the_saved_ema_weights_renders_the_same(pairs: PairDataset) -> None:
    t = _trainer()
    t.step(_batches(pairs, 1)[0])
    g = generator_from_state(SMALL, LS.num_ids, t.ema.state_dict())
    batch = collate([pairs[1], pairs[3]])
    out = OasisRenderer(g, SMALL, LS.num_ids, torch.device("cpu"), seed=0)(
        batch["label"], batch["instance"], batch["index"], k=2
    )
    assert np.array_equal(out, t.render([pairs[1], pairs[3]], k=2))
