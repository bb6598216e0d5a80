"""A trained train-eval segmenter, loaded once, used to segment and embed photos.

:func:`load_segmenter` is the one place that knows how a train-eval run dir stores its model
(``run.json`` for the configuration, ``checkpoint.pt`` for the weights), so a change of that format
touches this function alone.

Photos are prepared as train-eval's validation does: resized to the run's input size with
bilinear interpolation, ImageNet-normalised. :meth:`Segmenter.predict` returns the train-id
prediction at the size the caller scores at (class probabilities upsampled bilinearly, as
train-eval evaluates at the ground truth's size) and the global-average-pooled features of the
backbone's last stage, which the feature distance uses when no Inception weights are given.

Example:
    >>> from labelforge.quality.segmenter import load_segmenter  # doctest: +SKIP
    >>> seg = load_segmenter("runs/base", device="cpu")  # doctest: +SKIP
    >>> pred, feats = seg.predict(images, out_size=(128, 256))  # doctest: +SKIP
    >>> pred.shape, feats.shape  # doctest: +SKIP
    ((8, 128, 256), (8, 512))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..labelspace import LabelSpace, get_label_space
from ..outputs import is_finished

__all__ = ["Segmenter", "load_segmenter", "resize_photos"]


def resize_photos(images: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, h, w, 3) uint8, bilinear as train-eval's validation (None: unchanged)."""
    if size is None or images.shape[1:3] == tuple(size):
        return images
    return np.stack([cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for im in images])


@dataclass
class Segmenter:
    """A PSPNet in eval mode with what the run says about it."""

    model: torch.nn.Module
    label_space: LabelSpace
    size: tuple[int, int] | None  # the run's input size (None: native)
    backbone: str
    root: Path  # the dataset it was trained on
    run: Path
    epoch: int
    device: torch.device

    @property
    def feature_name(self) -> str:
        return f"{self.backbone} last stage, global average pool"

    @torch.no_grad()
    def predict(self, images: np.ndarray, out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(B, H, W, 3) uint8 photos -> ((B, *out_size) uint8 train ids, (B, C) float64 backbone features)."""
        from ..seg.data import normalize

        x = torch.from_numpy(np.ascontiguousarray(resize_photos(images, self.size).transpose(0, 3, 1, 2)))
        x = normalize(x.to(self.device))
        feats: list[torch.Tensor] = []
        hook = self.model.backbone.register_forward_hook(lambda _m, _i, out: feats.append(out[-1]))
        try:
            logits = self.model(x)["out"].float()
        finally:
            hook.remove()
        if logits.shape[-2:] != tuple(out_size):
            logits = F.interpolate(logits, size=tuple(out_size), mode="bilinear", align_corners=False)
        pred = logits.argmax(1).to(torch.uint8).cpu().numpy()
        pooled = feats[0].float().mean(dim=(2, 3)).double().cpu().numpy()  # (B, C)
        return pred, pooled

    @torch.no_grad()
    def embed(self, images: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, C) float64 backbone features (the same preparation as ``predict``)."""
        from ..seg.data import normalize

        x = torch.from_numpy(np.ascontiguousarray(resize_photos(images, self.size).transpose(0, 3, 1, 2)))
        c4 = self.model.backbone(normalize(x.to(self.device)))[-1]
        return c4.float().mean(dim=(2, 3)).double().cpu().numpy()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path.parent, "not a train-eval run dir (no run.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read run.json ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or "backbone" not in obj:
        raise InputError(path, "not a train-eval run.json (no backbone)")
    return obj


def load_segmenter(run: str | Path, device: torch.device | str = "cpu") -> Segmenter:
    """The finished train-eval run ``run`` as a :class:`Segmenter` on ``device``; InputError names a bad file."""
    from ..seg.pspnet import pspnet

    run = Path(run)
    if not run.is_dir():
        raise InputError(run, "segmenter run dir not found")
    config = _read_json(run / "run.json")
    if not is_finished(run):
        raise InputError(run, "segmenter run is unfinished (no _SUCCESS); finish it with train-eval --resume")
    ck_path = run / "checkpoint.pt"
    try:
        state = torch.load(ck_path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(ck_path, "segmenter checkpoint not found") from None
    except Exception as exc:  # a truncated or foreign file: torch raises many types
        raise InputError(ck_path, f"cannot read segmenter checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(ck_path, "not a labelforge PSPNet checkpoint (no model weights)")
    ls = get_label_space(config.get("label_space", "cityscapes"))
    saved = state.get("labelspace_fingerprint")
    if saved is not None and saved != ls.fingerprint:
        raise InputError(ck_path, f"checkpoint was trained for another label space ({saved}, not {ls.fingerprint})")
    model = pspnet(backbone=config["backbone"], num_classes=ls.num_classes)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise InputError(ck_path, "segmenter weights do not fit the architecture its run.json names") from None
    dev = torch.device(device)
    size = config.get("size")
    return Segmenter(
        model=model.to(dev).eval(),
        label_space=ls,
        size=None if size is None else (int(size[0]), int(size[1])),
        backbone=str(config["backbone"]),
        root=Path(config["root"]),
        run=run,
        epoch=int(state.get("epoch", 0)),
        device=dev,
    )
