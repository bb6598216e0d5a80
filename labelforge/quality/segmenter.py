"""A trained train-eval segmenter, loaded once, used to segment and embed photos.

:func:`load_segmenter` is the one place that knows how a train-eval run dir stores its model
(``checkpoint.pt``, self-describing: configuration, label space and weights), so a change of that
format touches this function alone.

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

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..labelspace import LabelSpace
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
    layout: str = "auto"  # the dataset's layout, as the run opened it
    supp: tuple[str, ...] = ()  # supplementary shard dirs it trained on (none: real photos only)

    @property
    def feature_name(self) -> str:
        return f"{self.backbone} last stage, global average pool"

    def _forward(self, images: np.ndarray, out_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, *out_size) float32 class scores and the backbone's last stage of the photos."""
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
        return logits, feats[0]

    @torch.no_grad()
    def logits(self, images: np.ndarray, out_size: tuple[int, int]) -> torch.Tensor:
        """(B, H, W, 3) uint8 photos -> (B, K, *out_size) float32 class scores on the segmenter's device
        (the per-pixel loss the filter thresholds is taken from them)."""
        return self._forward(images, out_size)[0]

    @torch.no_grad()
    def predict(self, images: np.ndarray, out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(B, H, W, 3) uint8 photos -> ((B, *out_size) uint8 train ids, (B, C) float64 backbone features)."""
        logits, c4 = self._forward(images, out_size)
        pred = logits.argmax(1).to(torch.uint8).cpu().numpy()
        pooled = c4.float().mean(dim=(2, 3)).double().cpu().numpy()  # (B, C)
        return pred, pooled

    @torch.no_grad()
    def embed(self, images: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, C) float64 backbone features (the same preparation as ``predict``)."""
        from ..seg.data import normalize

        x = torch.from_numpy(np.ascontiguousarray(resize_photos(images, self.size).transpose(0, 3, 1, 2)))
        c4 = self.model.backbone(normalize(x.to(self.device)))[-1]
        return c4.float().mean(dim=(2, 3)).double().cpu().numpy()


def load_segmenter(run: str | Path, device: torch.device | str = "cpu") -> Segmenter:
    """The finished train-eval run ``run`` as a :class:`Segmenter` on ``device``; InputError names a bad file.

    The run's checkpoint describes itself (the run-dir harness): its ``config`` names the backbone,
    input size and dataset, its ``label_space`` the class table, so run.json is not needed.
    """
    from .._rundir import read_checkpoint
    from ..seg.pspnet import pspnet
    from ..seg.train import CHECKPOINT, CHECKPOINT_FORMAT

    run = Path(run)
    if not run.is_dir():
        raise InputError(run, "segmenter run dir not found")
    if not is_finished(run):
        raise InputError(run, "segmenter run is unfinished (no _SUCCESS); finish it with train-eval --resume")
    ck_path = run / CHECKPOINT
    state = read_checkpoint(ck_path, CHECKPOINT_FORMAT, what="segmenter checkpoint")
    try:
        config = state["config"]
        ls = LabelSpace.from_dict(state["label_space"])
        model = pspnet(backbone=config["backbone"], num_classes=ls.num_classes)
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise InputError(ck_path, "segmenter checkpoint does not hold the model its config describes") from None
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
        layout=str(config.get("layout") or "auto"),
        supp=tuple(str(p) for p in config.get("supp") or ()),
    )
