"""Fréchet distance between two sets of image features, and the Inception v3 feature extractor.

FID (Heusel et al. 2017) is the Fréchet distance between Gaussians fitted to Inception v3 pool
features of real and generated images:
``|mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr((C1^1/2 C2 C1^1/2)^1/2)``. The matrix square roots are
taken by symmetric eigendecomposition (both matrices are positive semi-definite), in float64, so no
scipy is needed and tiny negative eigenvalues from rounding are clipped instead of turning complex.

Inception weights come only from a local file: a ``state_dict`` of torchvision's ``inception_v3``
(ImageNet weights). FID from them is comparable between runs of this tool, not with numbers computed
with the TF-Inception port that pytorch-fid and the papers use.

Example:
    >>> import numpy as np
    >>> from labelforge.quality.frechet import FeatureStats, frechet_distance
    >>> a, b = FeatureStats(), FeatureStats()
    >>> a.add(np.array([[0.0, 0.0], [2.0, 0.0]])); b.add(np.array([[1.0, 3.0], [3.0, 3.0]]))
    >>> round(frechet_distance(a, b), 6)  # same covariance, means 1 and 3 apart: 1 + 9
    10.0
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ["FeatureStats", "frechet_distance", "InceptionFeatures"]


class FeatureStats:
    """Running sums of (N, D) features: mean and unbiased covariance without keeping the features."""

    def __init__(self) -> None:
        self.n = 0
        self.sum: np.ndarray | None = None
        self.outer: np.ndarray | None = None

    def add(self, feats: np.ndarray) -> None:
        f = np.asarray(feats, np.float64)
        if self.sum is None:
            self.sum, self.outer = np.zeros(f.shape[1]), np.zeros((f.shape[1], f.shape[1]))
        self.n += len(f)
        self.sum += f.sum(0)
        self.outer += f.T @ f

    @property
    def dims(self) -> int:
        return 0 if self.sum is None else len(self.sum)

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2 or self.sum is None or self.outer is None:
            raise ValueError("a covariance needs at least two feature vectors")
        mu = self.sum / self.n
        cov = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, (cov + cov.T) / 2


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """The Fréchet distance between the Gaussians fitted to ``a`` and ``b``."""
    mu1, c1 = a.mean_cov()
    mu2, c2 = b.mean_cov()
    s1 = _sqrt_psd(c1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ c2 @ s1), 0, None)).sum()  # tr((C1^1/2 C2 C1^1/2)^1/2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * cross)


class InceptionFeatures:
    """torchvision's Inception v3 with local weights: (B, H, W, 3) uint8 -> (B, 2048) pool features."""

    def __init__(self, weights: str | Path, device: torch.device) -> None:
        from torchvision.models import inception_v3

        path = Path(weights)
        if not path.is_file():
            raise InputError(path, "Inception weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: torch raises many types
            raise InputError(path, f"cannot read Inception weights ({type(exc).__name__})") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise InputError(path, "not a state dict of torchvision's inception_v3")
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}  # unused by the features
        # transform_input: the ImageNet weights expect torchvision's re-scaling of normalised input.
        net = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=True)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()[:120]
            raise InputError(path, f"not a state dict of torchvision's inception_v3 ({first})") from None
        net.fc = torch.nn.Identity()
        self.net, self.device = net.to(device).eval(), device
        self.path = path

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        from ..seg.data import normalize

        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(self.device)
        x = F.interpolate(normalize(x), size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x).double().cpu().numpy()
