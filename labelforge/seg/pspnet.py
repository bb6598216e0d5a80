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
from torchvision.models.resnet import BasicBlock

from ..errors import InputError, LabelforgeError

__all__ = ["BACKBONES", "DilatedResNet", "PyramidPooling", "PSPHead", "AuxHead", "PSPNet", "pspnet", "seg_loss"]

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
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


class DilatedResNet(nn.Module):
    """A torchvision ResNet whose layer3/layer4 are dilated (2, 4): features at 1/8 of the input."""

    def __init__(self, name: str = "resnet50") -> None:
        super().__init__()
        if name not in BACKBONES:
            raise LabelforgeError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
        builder = getattr(resnet, name)
        if name in ("resnet18", "resnet34"):
            net = builder(weights=None)
            _dilate_basic_layer(net.layer3, 2)
            _dilate_basic_layer(net.layer4, 4)
        else:
            net = builder(weights=None, replace_stride_with_dilation=[False, True, True])
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 1 if name in ("resnet18", "resnet34") else 4
        self.layer3_channels = 256 * expansion
        self.out_channels = 512 * expansion

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
    """Pyramid pooling, 3x3 fusion conv (512), dropout 0.1, 1x1 classifier."""

    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        self.ppm = PyramidPooling(cin)
        self.fuse = _conv_bn_relu(self.ppm.out_channels, 512, 3)
        self.drop = nn.Dropout2d(0.1)
        self.cls = nn.Conv2d(512, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.drop(self.fuse(self.ppm(x))))


class AuxHead(nn.Module):
    """FCN head on layer3: 3x3 conv (256), dropout 0.1, 1x1 classifier."""

    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        self.conv = _conv_bn_relu(cin, 256, 3)
        self.drop = nn.Dropout2d(0.1)
        self.cls = nn.Conv2d(256, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.drop(self.conv(x)))


class PSPNet(nn.Module):
    """Dilated ResNet + PSP head (+ aux head). ``forward`` returns logits at the input resolution."""

    def __init__(self, backbone: str = "resnet50", num_classes: int = 19, aux: bool = True) -> None:
        super().__init__()
        self.backbone = DilatedResNet(backbone)
        self.head = PSPHead(self.backbone.out_channels, num_classes)
        self.aux_head = AuxHead(self.backbone.layer3_channels, num_classes) if aux else None
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
    *, backbone: str = "resnet50", num_classes: int = 19, backbone_weights: str | Path | None = None, aux: bool = True
) -> PSPNet:
    """Build PSPNet; ``backbone_weights`` is a local torchvision ResNet state dict (random init if None).

    Example:
        >>> model = pspnet(backbone="resnet18", num_classes=19)
    """
    model = PSPNet(backbone=backbone, num_classes=num_classes, aux=aux)
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
