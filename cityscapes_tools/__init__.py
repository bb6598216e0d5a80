"""Cityscapes dataset tools: the label table, the on-disk layout, and a procedural mini-Cityscapes.

Depends on numpy and OpenCV only, so it is usable without labelforge and without torch.
"""

from .errors import CityscapesError, DatasetFormatError
from .instances import decode_instance, encode_instance, is_instance
from .labels import EVAL_LABELS, IGNORE_INDEX, LABELS, Label
from .layout import SamplePaths, list_samples, list_splits

__all__ = [
    "CityscapesError",
    "DatasetFormatError",
    "EVAL_LABELS",
    "IGNORE_INDEX",
    "LABELS",
    "Label",
    "SamplePaths",
    "decode_instance",
    "encode_instance",
    "is_instance",
    "list_samples",
    "list_splits",
]
