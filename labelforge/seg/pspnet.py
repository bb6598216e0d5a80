"""PSPNet (Zhao et al., 2017) on a dilated torchvision ResNet.

The model reads top-down: a dilated ResNet backbone (output stride 8) gives layer3 and layer4
features; the pyramid pooling module pools layer4 into 1x1, 2x2, 3x3 and 6x6 bins, reduces each to a
quarter of the channels, upsamples them back and concatenates them with layer4; a 3x3 fusion conv
(512 channels), dropout 0.1 and a 1x1 classifier give the logits; an auxiliary FCN head on layer3
adds a deep-supervision loss (weight 0.4) during training. Logits are upsampled bilinearly to the
input size, so every consumer sees ``{"out": (B, C, H, W), "aux": (B, C, H, W)}``.

Backbone weights come only from a local file (a torchvision ResNet state dict); nothing is
downloaded.

Example:
    >>> import torch
    >>> from labelforge.seg.pspnet import pspnet
    >>> model = pspnet(backbone="resnet18", num_classes=19).eval()
    >>> model(torch.zeros(1, 3, 64, 64))["out"].shape
    torch.Size([1, 19, 64, 64])
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..errors import InputError, LabelforgeError
from .backbones import DEPTHS, OUTPUT_STRIDES, parse_backbone

__all__ = ["BACKBONES", "DilatedResNet", "PyramidPooling", "PSPHead", "AuxHead", "PSPNet", "pspnet", "seg_loss"]

# name -> (block, blocks per stage), as torchvision builds them
_RESNETS: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}
BACKBONES = DEPTHS
AUX_WEIGHT = 0.4


def _dilate_basic_layer(layer: nn.Sequential, dilation: int) -> None:
    """Turn a BasicBlock stage's stride 2 into dilation ``dilation`` (torchvision refuses to).

    As in the dilated Bottleneck, the first 3x3 conv of the stage keeps the dilation of the stage
    before it (``dilation // 2``) so the receptive field grows without gridding.
    """
    for i, block in enumerate(layer):
        assert isinstance(block, BasicBlock)
        first = dilation // 2 if i == 0 else dilation
        block.conv1.stride, block.conv1.dilation, block.conv1.padding = (1, 1), (first, first), (first, first)
        block.conv2.dilation, block.conv2.padding = (dilation, dilation), (dilation, dilation)
        block.stride = 1
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def _dilate_bottleneck_layer(layer: nn.Sequential, dilation: int) -> None:
    """The Bottleneck counterpart of :func:`_dilate_basic_layer` (its stride and 3x3 sit on ``conv2``)."""
    for i, block in enumerate(layer):
        assert isinstance(block, Bottleneck)
        first = dilation // 2 if i == 0 else dilation
        block.conv2.stride, block.conv2.dilation, block.conv2.padding = (1, 1), (first, first), (first, first)
        block.stride = 1
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def _narrow_resnet(name: str, width: float) -> nn.Module:
    """A torchvision-style ResNet (same blocks, strides and init) with every channel count times ``width``.

    torchvision builds only the published widths, so the stages are assembled here from its public
    block classes; ``stem`` / ``layer1..4`` mirror its attribute names.
    """
    block, depths = _RESNETS[name]
    stem = max(8, round(64 * width))
    net = nn.Module()
    net.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
    net.bn1, net.relu, net.maxpool = nn.BatchNorm2d(stem), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
    cin = stem
    for k, (base, blocks) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
        planes, stride = max(8, round(base * width)), 1 if k == 0 else 2
        down = None
        if stride != 1 or cin != planes * block.expansion:
            down = nn.Sequential(
                resnet.conv1x1(cin, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers = [block(cin, planes, stride, down)]
        cin = planes * block.expansion
        layers += [block(cin, planes) for _ in range(1, blocks)]
        setattr(net, f"layer{k + 1}", nn.Sequential(*layers))
    for m in net.modules():  # torchvision's initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return net


class DilatedResNet(nn.Module):
    """A torchvision ResNet whose last stages are dilated: features at 1/8 (layer3/layer4 dilated 2, 4) or 1/16.

    ``width`` multiplies every channel count (1.0: the published network, built by torchvision
    itself, so its weights and initialisation are exactly torchvision's).
    """

    def __init__(self, name: str = "resnet50", *, width: float = 1.0, output_stride: int = 8) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise LabelforgeError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
        if output_stride not in OUTPUT_STRIDES:
            raise LabelforgeError(
                f"output stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, not {output_stride}"
            )
        if not 0 < width <= 4:
            raise LabelforgeError(f"width must lie in (0, 4], not {width}")
        block = _RESNETS[name][0]
        if width == 1.0:
            dilate = [False, output_stride == 8, True] if block is Bottleneck else None
            net = getattr(resnet, name)(weights=None, replace_stride_with_dilation=dilate)
        else:
            net = _narrow_resnet(name, width)
        dilate_layer = _dilate_basic_layer if block is BasicBlock else _dilate_bottleneck_layer
        if block is BasicBlock or width != 1.0:  # torchvision dilated the published Bottleneck nets itself
            if output_stride == 8:
                dilate_layer(net.layer3, 2)
                dilate_layer(net.layer4, 4)
            else:
                dilate_layer(net.layer4, 2)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.layer3_channels = self.layer3[-1].conv1.in_channels
        self.out_channels = self.layer4[-1].conv1.in_channels
        self.output_stride = output_stride

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.layer2(self.layer1(self.stem(x)))
        c3 = self.layer3(x)
        return c3, self.layer4(c3)

    def load_torchvision_state(self, path: str | Path) -> None:
        """Load a torchvision ResNet state dict (the ``fc`` weights are ignored)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "backbone weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a file that is not a checkpoint
            raise InputError(path, f"cannot read backbone weights ({type(exc).__name__})") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        # torchvision names conv1/bn1 at the top level; here they live in self.stem.
        rename = {"conv1.": "stem.0.", "bn1.": "stem.1."}
        mapped = {}
        for k, v in state.items():
            if k.startswith("fc."):
                continue
            for old, new in rename.items():
                if k.startswith(old):
                    k = new + k[len(old) :]
            mapped[k] = v
        try:
            missing, unexpected = self.load_state_dict(mapped, strict=False)
        except RuntimeError as exc:  # shape mismatches: another ResNet depth
            first = str(exc).strip().splitlines()[-1].strip()
            raise InputError(path, f"not a matching ResNet state dict ({first})") from None
        if missing or unexpected:
            bad = (missing or unexpected)[0]
            raise InputError(
                path, f"not a matching ResNet state dict ({len(missing)} missing, {len(unexpected)} unexpected: {bad})"
            )


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class PyramidPooling(nn.Module):
    """Pool into ``bins`` grids, reduce each to ``cin // len(bins)`` channels, upsample, concat with the input."""

    def __init__(self, cin: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        reduced = cin // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), *_conv_bn_relu(cin, reduced, 1)) for b in bins
        )
        self.out_channels = cin + reduced * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(s(x), size=size, mode="bilinear", align_corners=False) for s in self.stages]
        return torch.cat([x, *pooled], dim=1)  # (B, 2 * cin, h, w)


class PSPHead(nn.Module):
    """Pyramid pooling, 3x3 fusion conv (``channels``: 512 as published), dropout 0.1, 1x1 classifier."""

    def __init__(self, cin: int, num_classes: int, channels: int = 512) -> None:
        super().__init__()
        self.ppm = PyramidPooling(cin)
        self.fuse = _conv_bn_relu(self.ppm.out_channels, channels, 3)
        self.drop = nn.Dropout2d(0.1)
        self.cls = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.drop(self.fuse(self.ppm(x))))


class AuxHead(nn.Module):
    """FCN head on layer3: 3x3 conv (``channels``: 256 as published), dropout 0.1, 1x1 classifier."""

    def __init__(self, cin: int, num_classes: int, channels: int = 256) -> None:
        super().__init__()
        self.conv = _conv_bn_relu(cin, channels, 3)
        self.drop = nn.Dropout2d(0.1)
        self.cls = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.drop(self.conv(x)))


class PSPNet(nn.Module):
    """Dilated ResNet + PSP head (+ aux head). ``forward`` returns logits at the input resolution.

    ``width`` scales the backbone's and the heads' channels alike (fusion conv ``512 * width``, aux
    conv ``256 * width``); 1.0 with output stride 8 is the published PSPNet.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        num_classes: int = 19,
        aux: bool = True,
        *,
        width: float = 1.0,
        output_stride: int = 8,
    ) -> None:
        super().__init__()
        self.backbone = DilatedResNet(backbone, width=width, output_stride=output_stride)
        self.head = PSPHead(self.backbone.out_channels, num_classes, channels=max(8, round(512 * width)))
        self.aux_head = (
            AuxHead(self.backbone.layer3_channels, num_classes, channels=max(8, round(256 * width))) if aux else None
        )
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        c3, c4 = self.backbone(x)
        out = {"out": F.interpolate(self.head(c4), size=size, mode="bilinear", align_corners=False)}
        if self.training and self.aux_head is not None:
            out["aux"] = F.interpolate(self.aux_head(c3), size=size, mode="bilinear", align_corners=False)
        return out

    def param_groups(self, lr: float) -> list[dict]:
        """SGD groups: the pretrained-style backbone at ``lr``, the freshly initialised heads at ``10 * lr``."""
        heads = [p for m in (self.head, self.aux_head) if m is not None for p in m.parameters()]
        return [
            {"params": list(self.backbone.parameters()), "lr": lr, "lr_scale": 1.0},
            {"params": heads, "lr": 10 * lr, "lr_scale": 10.0},
        ]


def pspnet(
    *,
    backbone: str = "resnet50",
    num_classes: int = 19,
    backbone_weights: str | Path | None = None,
    aux: bool = True,
) -> PSPNet:
    """Build PSPNet; ``backbone_weights`` is a local torchvision ResNet state dict (random init if None).

    ``backbone`` is a name of :mod:`labelforge.seg.backbones`: ``resnet18-w0.5-os16`` is the cheap
    model a CPU demo needs (the ``fast`` preset); torchvision's published weights fit only width 1.

    Example:
        >>> model = pspnet(backbone="resnet18-w0.5-os16", num_classes=19)
    """
    spec = parse_backbone(backbone)
    model = PSPNet(spec.depth, num_classes, aux, width=spec.width, output_stride=spec.output_stride)
    if backbone_weights is not None:
        model.backbone.load_torchvision_state(backbone_weights)
    return model


def _ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    # Mean over valid pixels; a crop that holds only ignore pixels gives 0, not NaN.
    total = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum")
    return total / (target != ignore_index).sum().clamp(min=1)


def seg_loss(outputs: dict[str, torch.Tensor], target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Cross-entropy on ``out`` plus ``AUX_WEIGHT`` times cross-entropy on ``aux`` (when present)."""
    loss = _ce(outputs["out"], target, ignore_index)
    if "aux" in outputs:
        loss = loss + AUX_WEIGHT * _ce(outputs["aux"], target, ignore_index)
    return loss
