"""OASIS losses: the (N+1)-class cross-entropy with class balancing, and the LabelMix regulariser.

The discriminator segments into ``num_ids + 1`` classes, channel 0 being "fake":

* discriminator: every pixel of a generated image should be class 0 (plain mean cross-entropy);
  every pixel of a real image its label id + 1, weighted by the class-balancing map;
* generator: the pixels of its image should read as their label id + 1, with the same weights.

Class balancing (OASIS's ``get_class_balancing``): a pixel of class ``c`` weighs
``B*H*W / (n_present * count_c)``, counted over the batch, where ``n_present`` is the number of
classes present; the weights of the present pixels then average to 1 and every present class
carries the same total. Don't-care ids (Cityscapes' "unlabeled") and ids outside the label space
weigh 0 and do not count as present. The mean is taken over all pixels, as OASIS does.

LabelMix: a binary mask that is 1 on the pixels of a random half of the classes mixes a real and
a generated image; the discriminator's logits for the mix must equal the same mix of its logits for
the two images (mean squared error), which makes it look at content rather than at the boundary
between regions.

Example:
    >>> import torch
    >>> from labelforge.gan.oasis.losses import class_weights
    >>> class_weights(torch.tensor([[[1, 1], [1, 2]]]), num_ids=3).tolist()
    [[[0.6666666865348206, 0.6666666865348206], [0.6666666865348206, 2.0]]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["class_weights", "n1_target", "n1_loss", "labelmix_mask", "labelmix_loss"]


def class_weights(label: torch.Tensor, num_ids: int, dontcare: tuple[int, ...] = ()) -> torch.Tensor:
    """(B, H, W) label ids -> (B, H, W) float weights: ``B*H*W / (n_present * count)`` of the pixel's class."""
    lab = label.long()
    valid = lab < num_ids
    counts = torch.bincount(lab[valid], minlength=num_ids).float()
    ignored = [i for i in dontcare if 0 <= i < num_ids]
    if ignored:
        counts[ignored] = 0.0
    present = counts > 0
    coef = torch.zeros_like(counts)
    coef[present] = lab.numel() / (present.sum() * counts[present])
    return torch.where(valid, coef[lab.clamp(max=num_ids - 1)], torch.zeros((), device=lab.device))


def n1_target(label: torch.Tensor, num_ids: int, real: bool) -> torch.Tensor:
    """The (N+1)-class target: label id + 1 for real pixels (0 for ids outside the table), 0 for fake ones."""
    lab = label.long()
    if not real:
        return torch.zeros_like(lab)
    return torch.where(lab < num_ids, lab + 1, torch.zeros_like(lab))


def n1_loss(
    logits: torch.Tensor, label: torch.Tensor, *, real: bool, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over all pixels of the (N+1)-class cross-entropy; ``weights`` (class balancing) apply to
    the real targets only, as in OASIS (the fake class needs no balancing: it is every pixel)."""
    num_ids = logits.shape[1] - 1
    ce = F.cross_entropy(logits.float(), n1_target(label, num_ids, real), reduction="none")  # (B, H, W)
    if real and weights is not None:
        ce = ce * weights
    return ce.mean()


def labelmix_mask(label: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """(B, H, W) ids + (num_ids,) 0/1 class bits -> (B, 1, H, W) float mask; ids outside the table take 0."""
    lab = label.long()
    valid = lab < bits.numel()
    mask = torch.where(valid, bits.to(lab.device)[lab.clamp(max=bits.numel() - 1)], torch.zeros((), device=lab.device))
    return mask.unsqueeze(1).float()


def labelmix_loss(
    mask: torch.Tensor, d_mixed: torch.Tensor, d_fake: torch.Tensor, d_real: torch.Tensor
) -> torch.Tensor:
    """MSE between the logits of the mixed image and the mask's mix of the real and fake logits."""
    target = mask * d_real.float() + (1 - mask) * d_fake.float()
    return F.mse_loss(d_mixed.float(), target)
