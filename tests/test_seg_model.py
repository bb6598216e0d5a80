"""PSPNet model, loss, transforms, the mixing sampler, the epoch plan and sliding-window inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18

from labelforge.errors import InputError, LabelforgeError
from labelforge.seg.backbones import BackboneSpec, parse_backbone
from labelforge.seg.data import MixSampler, PairTransform, epoch_length
from labelforge.seg.predict import predict_probs
from labelforge.seg.presets import resolve_config
from labelforge.seg.pspnet import AUX_WEIGHT, pspnet, seg_loss
from labelforge.seg.schedule import plan_epochs, poly_factor


@pytest.mark.parametrize(("name", "c3", "c4"), [("resnet18", 256, 512), ("resnet50", 1024, 2048)])
def test_backbone_is_dilated_to_output_stride_8(name: str, c3: int, c4: int) -> None:
    model = pspnet(backbone=name, num_classes=19).eval()
    with torch.no_grad():
        f3, f4 = model.backbone(torch.zeros(1, 3, 64, 96))
    assert f3.shape == (1, c3, 8, 12)  # 1/8 of the input, not 1/16
    assert f4.shape == (1, c4, 8, 12)  # 1/8 of the input, not 1/32


def test_basic_block_backbone_dilation_pattern() -> None:
    bb = pspnet(backbone="resnet18").backbone
    # first block of a stage keeps the previous dilation, the rest take the stage's
    assert [(b.conv1.dilation[0], b.conv2.dilation[0]) for b in bb.layer3] == [(1, 2), (2, 2)]
    assert [(b.conv1.dilation[0], b.conv2.dilation[0]) for b in bb.layer4] == [(2, 4), (4, 4)]
    assert all(b.conv1.stride == (1, 1) and b.downsample[0].stride == (1, 1) for b in (bb.layer3[0], bb.layer4[0]))
    assert bb.layer2[0].conv1.stride == (2, 2)


def test_width_1_is_torchvisions_resnet_weight_for_weight() -> None:
    # The tiny and paper models must not change: width 1 builds the backbone through torchvision itself.
    torch.manual_seed(3)
    ours = pspnet(backbone="resnet18", num_classes=19).backbone.state_dict()
    torch.manual_seed(3)
    ref = {k: v for k, v in resnet18(weights=None).state_dict().items() if not k.startswith("fc.")}
    ref = {k.replace("conv1.", "stem.0.", 1) if k.startswith("conv1.") else k: v for k, v in ref.items()}
    ref = {k.replace("bn1.", "stem.1.", 1) if k.startswith("bn1.") else k: v for k, v in ref.items()}
    assert ours.keys() == ref.keys() and all(torch.equal(ours[k], ref[k]) for k in ref)
    assert sum(p.numel() for p in pspnet(backbone="resnet18", num_classes=19).parameters()) == 16_764_262


def test_half_width_parameter_count_by_hand() -> None:
    # ResNet-18 at width 0.5: stem 32, stages 32/64/128/256 channels (BasicBlock: two 3x3 convs + BN,
    # a 1x1 conv + BN shortcut where the shape changes).
    stem = 3 * 32 * 49 + 2 * 32
    layer1 = 2 * (2 * 32 * 32 * 9 + 4 * 32)
    layer2 = (32 * 64 * 9 + 64 * 64 * 9 + 4 * 64 + 32 * 64 + 2 * 64) + (2 * 64 * 64 * 9 + 4 * 64)
    layer3 = (64 * 128 * 9 + 128 * 128 * 9 + 4 * 128 + 64 * 128 + 2 * 128) + (2 * 128 * 128 * 9 + 4 * 128)
    layer4 = (128 * 256 * 9 + 256 * 256 * 9 + 4 * 256 + 128 * 256 + 2 * 256) + (2 * 256 * 256 * 9 + 4 * 256)
    ppm = 4 * (256 * 64 + 2 * 64)  # four bins, each 1x1 conv to 256 / 4 + BN
    fuse = 512 * 256 * 9 + 2 * 256  # 3x3 fusion conv: 512 * width channels
    aux = 128 * 128 * 9 + 2 * 128 + 128 * 19 + 19  # aux conv: 256 * width channels
    total = stem + layer1 + layer2 + layer3 + layer4 + ppm + fuse + 256 * 19 + 19 + aux
    for name in ("resnet18-w0.5", "resnet18-w0.5-os16"):  # the output stride changes no weight
        model = pspnet(backbone=name, num_classes=19)
        assert sum(p.numel() for p in model.parameters()) == total == 4_200_134
        assert model.head.fuse[0].out_channels == 256 and model.aux_head.conv[0].out_channels == 128


def test_output_stride_16_dilates_layer4_only() -> None:
    model = pspnet(backbone="resnet18-w0.5-os16", num_classes=19).eval()
    with torch.no_grad():
        f3, f4 = model.backbone(torch.zeros(1, 3, 64, 96))
        out = model(torch.zeros(1, 3, 64, 96))["out"]
    assert f3.shape == (1, 128, 4, 6) and f4.shape == (1, 256, 4, 6)  # 1/16 of the input
    assert out.shape == (1, 19, 64, 96)
    bb = model.backbone
    assert bb.layer3[0].conv1.stride == (2, 2) and all(b.conv2.dilation == (1, 1) for b in bb.layer3)
    assert [(b.conv1.dilation[0], b.conv2.dilation[0]) for b in bb.layer4] == [(1, 2), (2, 2)]
    r50 = pspnet(backbone="resnet50-os16").backbone
    assert [b.conv2.dilation[0] for b in r50.layer4] == [1, 2, 2] and r50.layer3[0].conv2.stride == (2, 2)


def test_backbone_names() -> None:
    assert parse_backbone("resnet18") == BackboneSpec("resnet18", 1.0, 8)
    assert parse_backbone("resnet34-w0.25-os16") == BackboneSpec("resnet34", 0.25, 16)
    for bad, match in [("resnet19", "valid: resnet18"), ("resnet18-os32", "output stride"), ("resnet18-w0", "width")]:
        with pytest.raises(LabelforgeError, match=match):
            parse_backbone(bad)
    with pytest.raises(LabelforgeError, match="valid: resnet18"):
        resolve_config("tiny", root="r", out="o", backbone="resnet18-half")  # refused before a run dir exists


def test_outputs_at_input_size_with_aux_in_training_only() -> None:
    model = pspnet(backbone="resnet18", num_classes=5)
    out = model(torch.randn(2, 3, 64, 64))
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (2, 5, 64, 64)
    seg_loss(out, torch.randint(0, 5, (2, 64, 64))).backward()
    assert model.aux_head.cls.weight.grad is not None and model.head.cls.weight.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 70, 90))  # not a multiple of 8: still upsampled to the input size
    assert set(out) == {"out"} and out["out"].shape == (1, 5, 70, 90)
    assert set(pspnet(backbone="resnet18", aux=False)(torch.randn(2, 3, 64, 64))) == {"out"}


def test_ppm_bins_and_head_channels() -> None:
    head = pspnet(backbone="resnet18").head
    assert [s[0].output_size for s in head.ppm.stages] == [1, 2, 3, 6]
    assert [s[1].out_channels for s in head.ppm.stages] == [128] * 4  # 512 / 4 each
    assert head.fuse[0].in_channels == 1024 and head.fuse[0].out_channels == 512 and head.fuse[0].kernel_size == (3, 3)
    assert head.drop.p == 0.1


def test_loss_is_main_plus_0_4_aux_and_ignores_255() -> None:
    target = torch.tensor([[[0, 1], [255, 2]]])
    out = torch.randn(1, 3, 2, 2)
    aux = torch.randn(1, 3, 2, 2)
    main_ce = F.cross_entropy(out, target, ignore_index=255)
    aux_ce = F.cross_entropy(aux, target, ignore_index=255)
    assert AUX_WEIGHT == 0.4
    assert torch.allclose(seg_loss({"out": out, "aux": aux}, target), main_ce + 0.4 * aux_ce)
    assert torch.allclose(seg_loss({"out": out}, target), main_ce)
    assert seg_loss({"out": out, "aux": aux}, torch.full((1, 2, 2), 255)).item() == 0.0  # not NaN


def test_head_lr_is_ten_times_backbone_lr() -> None:
    model = pspnet(backbone="resnet18")
    groups = model.param_groups(0.01)
    assert [g["lr"] for g in groups] == [0.01, 0.1]
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())


def test_backbone_weights_from_local_file(tmp_path) -> None:
    ref = resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    model = pspnet(backbone="resnet18", backbone_weights=path)
    assert torch.equal(model.backbone.stem[0].weight, ref.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    with pytest.raises(InputError, match="not a matching ResNet"):
        pspnet(backbone="resnet50", backbone_weights=path)
    with pytest.raises(InputError, match="not found"):
        pspnet(backbone="resnet18", backbone_weights=tmp_path / "missing.pth")
    with pytest.raises(LabelforgeError, match="valid: resnet18"):
        pspnet(backbone="vgg16")


def test_transform_pads_labels_with_255_and_image_with_mean() -> None:
    image = np.full((4, 6, 3), 9, np.uint8)
    label = np.arange(24, dtype=np.uint8).reshape(4, 6)
    img, lab = PairTransform(size=None, crop=(6, 8), aug="none")(image, label, np.random.default_rng(0))
    assert lab.shape == (6, 8) and img.shape == (6, 8, 3)
    assert (lab[:4, :6] == label).all() and (lab[4:] == 255).all() and (lab[:, 6:] == 255).all()
    assert (img[:4, :6] == 9).all() and tuple(img[5, 7]) == (124, 116, 104)


def test_traditional_aug_keeps_label_values_and_crop_size() -> None:
    rng = np.random.default_rng(1)
    label = rng.choice(np.array([0, 3, 7], np.uint8), size=(32, 48))
    image = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    t = PairTransform(size=(40, 60), crop=(24, 24), aug="traditional")
    for seed in range(8):
        img, lab = t(image, label, np.random.default_rng(seed))
        assert img.shape == (24, 24, 3) and lab.shape == (24, 24)
        assert set(np.unique(lab)) <= {0, 3, 7, 255}  # nearest resampling: no blended label values
    a = t(image, label, np.random.default_rng(5))
    b = t(image, label, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_mix_sampler_draws_the_exact_share_and_splits_over_processes() -> None:
    s = MixSampler(n_orig=10, n_supp=3, seed=4)
    s.set_epoch(2, ratio=0.3, length=20)
    idx = [i for i, _ in s]
    assert sum(i >= 10 for i in idx) == 6 and len(idx) == 20
    # each source is cycled through whole permutations: 14 originals of 10 = every one once, 4 twice
    assert sorted(np.bincount([i for i in idx if i < 10], minlength=10).tolist()) == [1] * 6 + [2] * 4
    assert np.bincount([i - 10 for i in idx if i >= 10]).tolist() == [2, 2, 2]
    halves = [MixSampler(10, 3, seed=4, rank=r, world=2) for r in (0, 1)]
    for h in halves:
        h.set_epoch(2, ratio=0.3, length=20)
    pairs = list(s)
    assert list(halves[0]) == pairs[0::2] and list(halves[1]) == pairs[1::2]
    s.set_epoch(3, ratio=0.3, length=20)
    assert list(s) != pairs  # a new epoch, a new order


def test_epoch_length_keeps_originals_once() -> None:
    assert epoch_length(30, 100, None) == 130
    assert epoch_length(30, 100, 0.5) == 60
    assert epoch_length(30, 100, 0.0) == 30
    assert epoch_length(30, 100, 1.0) == 100


def test_plans_for_both_schedules() -> None:
    mixed = resolve_config("tiny", root="r", out="o", supp=["s"], supp_ratio=0.5, batch_size=4, iters=7)
    plan = plan_epochs(mixed, n_orig=8, n_supp=20)  # 16 samples / 4 = 4 steps per epoch
    assert [(e.phase, e.iters, e.phase_offset, e.phase_iters) for e in plan] == [
        ("mixed", 4, 0, 7),
        ("mixed", 3, 4, 7),
    ]
    pf = resolve_config("tiny", root="r", out="o", supp=["s"], schedule="pretrain-finetune", batch_size=4, epochs=4)
    plan = plan_epochs(pf, n_orig=8, n_supp=20, world=2)
    assert [(e.phase, e.ratio, e.iters) for e in plan] == [
        ("pretrain", 1.0, 5),
        ("pretrain", 1.0, 5),
        ("finetune", 0.0, 2),
        ("finetune", 0.0, 2),
    ]
    with pytest.raises(LabelforgeError, match="not divisible"):
        plan_epochs(pf, n_orig=8, n_supp=20, world=3)
    with pytest.raises(LabelforgeError, match="needs at least one --supp"):
        resolve_config("tiny", root="r", out="o", schedule="pretrain-finetune")
    paper = resolve_config("paper", root="r", out="o")
    assert (paper.backbone, paper.size, paper.crop, paper.batch_size, paper.eval_mode) == (
        "resnet50",
        None,
        (713, 713),
        16,
        "slide",
    )
    assert resolve_config("tiny", root="r", out="o", epochs=3).iters is None
    assert poly_factor(0, 10, 0.9) == 1.0 and poly_factor(10, 10, 0.9) == 0.0
    assert poly_factor(5, 10, 0.9) == pytest.approx(0.5**0.9)


class _PixelModel(torch.nn.Module):
    """A per-pixel (1x1) classifier: sliding windows must reproduce its whole-image output exactly."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


def test_slide_and_flip_match_whole_image_for_a_per_pixel_model() -> None:
    model = _PixelModel().eval()
    images = torch.randint(0, 255, (1, 3, 37, 53), dtype=torch.uint8)
    whole = predict_probs(model, images, mode="whole", num_classes=4)
    slide = predict_probs(model, images, mode="slide", crop=(16, 24), num_classes=4)
    assert torch.allclose(whole, slide, atol=1e-6)
    padded = predict_probs(model, images, mode="slide", crop=(64, 64), num_classes=4)  # window larger than image
    assert torch.allclose(whole, padded, atol=1e-6)
    flipped = predict_probs(model, images, mode="whole", flip=True, num_classes=4)
    assert torch.allclose(flipped, 2 * whole, atol=1e-6)
