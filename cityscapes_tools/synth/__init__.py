"""Procedural mini-Cityscapes: the embedded default dataset, in the genuine Cityscapes layout.

Two parts, usable apart: :func:`sample_scene` lays out a street scene as label + instance maps, and
:func:`paint` turns any Cityscapes label + instance map into a photo (so it also serves as an
oracle renderer for composed maps). :func:`generate_dataset` writes many samples in parallel.
See docs/mini-cityscapes.md.

Example:
    >>> import numpy as np
    >>> from cityscapes_tools.synth import paint, sample_scene
    >>> label, instance = sample_scene(np.random.default_rng(0), 64, 128)
    >>> paint(label, instance, seed=0).shape
    (64, 128, 3)
"""

from .generate import SynthConfig, generate_dataset, make_sample, preview, sample_key
from .painter import paint
from .scene import TARGET_SHARES, sample_scene

__all__ = [
    "SynthConfig",
    "TARGET_SHARES",
    "generate_dataset",
    "make_sample",
    "paint",
    "preview",
    "sample_key",
    "sample_scene",
]
