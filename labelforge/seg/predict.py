"""Validation inference: whole-image or sliding-window prediction, optional flip, one confusion matrix.

Each image is predicted at the training input size (``size``), its class probabilities are
upsampled bilinearly to the ground truth's native size and the argmax is scored there, so the
figures follow the official Cityscapes definition (every labelled pixel of the split counts once).
Under torchrun each process scores its own slice of the split and the matrices are summed.

``--save-predictions`` writes ``predictions/{city}/{city}_{seq:06}_{frame:06}_pred_labelIds.png``:
uint8 Cityscapes labelIds (train ids mapped back through the label space), named by the ground
truth's key so cityscapesScripts and ``labelforge evaluate`` can score them.

Example:
    >>> from labelforge.seg.predict import prediction_path
    >>> prediction_path("run/predictions", "aachen", "aachen_000000_000019").name
    'aachen_000000_000019_pred_labelIds.png'
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from cityscapes_tools.io import write_png

from ..labelspace import LabelSpace
from ..progress import Progress
from .data import ValData, normalize
from .metrics import ConfusionMatrix

__all__ = ["PRED_SUFFIX", "prediction_path", "predict_probs", "evaluate_split", "autocast_for"]

PRED_SUFFIX = "_pred_labelIds.png"


def prediction_path(pred_dir: str | Path, city: str, key: str) -> Path:
    return Path(pred_dir) / city / f"{key}{PRED_SUFFIX}"


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on CPU (CPU bf16 is slower than fp32 on most machines)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _forward_probs(model: nn.Module, x: torch.Tensor, flip: bool) -> torch.Tensor:
    with autocast_for(x.device):
        probs = model(x)["out"].float().softmax(1)
        if flip:
            probs = probs + model(x.flip(-1))["out"].float().softmax(1).flip(-1)
    return probs


def _slide(model: nn.Module, x: torch.Tensor, crop: tuple[int, int], flip: bool, num_classes: int) -> torch.Tensor:
    """Average the probabilities of overlapping windows (stride 2/3 of the window, as in PSPNet)."""
    _, _, h, w = x.shape
    ch, cw = crop
    ph, pw = max(ch - h, 0), max(cw - w, 0)
    x = F.pad(x, (0, pw, 0, ph))  # zero is the mean colour after normalisation
    hp, wp = x.shape[-2:]
    sh, sw = math.ceil(ch * 2 / 3), math.ceil(cw * 2 / 3)
    ys = sorted({min(i * sh, hp - ch) for i in range(math.ceil(max(hp - ch, 0) / sh) + 1)})
    xs = sorted({min(j * sw, wp - cw) for j in range(math.ceil(max(wp - cw, 0) / sw) + 1)})
    probs = torch.zeros(x.shape[0], num_classes, hp, wp, device=x.device)
    count = torch.zeros(1, 1, hp, wp, device=x.device)
    for y0 in ys:
        for x0 in xs:
            probs[:, :, y0 : y0 + ch, x0 : x0 + cw] += _forward_probs(model, x[:, :, y0 : y0 + ch, x0 : x0 + cw], flip)
            count[:, :, y0 : y0 + ch, x0 : x0 + cw] += 1
    return (probs / count)[:, :, :h, :w]


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mode: str = "whole",
    crop: tuple[int, int] = (512, 512),
    flip: bool = False,
    num_classes: int = 19,
) -> torch.Tensor:
    """(B, 3, H, W) uint8 images -> (B, C, H, W) class probabilities (summed over flips when ``flip``)."""
    x = normalize(images)
    if mode == "slide":
        return _slide(model, x, crop, flip, num_classes)
    return _forward_probs(model, x, flip)


@torch.no_grad()
def evaluate_split(
    model: nn.Module,
    data: ValData,
    ls: LabelSpace,
    *,
    device: torch.device,
    mode: str = "whole",
    crop: tuple[int, int] = (512, 512),
    flip: bool = False,
    workers: int = 0,
    rank: int = 0,
    world: int = 1,
    pred_dir: Path | None = None,
    progress: Progress | None = None,
) -> ConfusionMatrix:
    """Score ``data`` (this process's slice ``rank::world``); the caller all-reduces the matrix."""
    model.eval()
    cm = ConfusionMatrix(num_classes=ls.num_classes, ignore_index=ls.ignore_index)
    subset = torch.utils.data.Subset(data, range(rank, len(data), world))
    loader = DataLoader(
        subset,
        batch_size=1,  # val images may differ in size; one at a time keeps the native-size scoring simple
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )
    task = (progress or Progress()).task("eval", total=len(subset))
    lut = torch.from_numpy(ls.train_id_to_id)
    with task:
        for item in loader:
            image = item["image"].to(device, non_blocking=True)
            gt = item["label"].to(device, non_blocking=True)
            probs = predict_probs(model, image, mode=mode, crop=crop, flip=flip, num_classes=ls.num_classes)
            if probs.shape[-2:] != gt.shape[-2:]:
                probs = F.interpolate(probs, size=gt.shape[-2:], mode="bilinear", align_corners=False)
            pred = probs.argmax(1)  # (1, H, W) train ids
            cm.update(gt, pred)
            if pred_dir is not None:
                ids = lut[pred[0].cpu()].numpy()
                write_png(prediction_path(pred_dir, item["city"][0], item["key"][0]), ids)
            task.advance(1)
    return cm
