"""Backbone names: a torchvision ResNet depth, optionally narrowed and with a coarser output stride.

A name is ``resnet{18,34,50,101}`` optionally followed by ``-w{WIDTH}`` (every channel count of
the backbone and the PSP heads times WIDTH) and ``-os{8,16}`` (output stride; 8 as published).
``resnet18`` is the published ResNet-18 at output stride 8; ``resnet18-w0.5-os16`` has half its
channels and dilates only layer4, so it costs about 1/13 of the FLOPs (the ``fast`` preset's
model). The name is all a run records, so ``run.json`` and a checkpoint name the architecture.
This module imports no torch: the config checks names before a run starts.

Example:
    >>> parse_backbone("resnet18-w0.5-os16")
    BackboneSpec(depth='resnet18', width=0.5, output_stride=16)
    >>> parse_backbone("resnet50").output_stride
    8
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import LabelforgeError

__all__ = ["DEPTHS", "OUTPUT_STRIDES", "BackboneSpec", "parse_backbone"]

DEPTHS = ("resnet18", "resnet34", "resnet50", "resnet101")
OUTPUT_STRIDES = (8, 16)
_NAME = re.compile(r"(?P<depth>resnet\d+)(?:-w(?P<width>\d+(?:\.\d+)?))?(?:-os(?P<os>\d+))?")
_GRAMMAR = "resnet18, resnet34, resnet50, resnet101, each optionally with -wWIDTH and -os{8,16} (resnet18-w0.5-os16)"


@dataclass(frozen=True)
class BackboneSpec:
    """The parts of a backbone name."""

    depth: str
    width: float = 1.0
    output_stride: int = 8


def parse_backbone(name: str) -> BackboneSpec:
    """Split a backbone name into depth, width and output stride; a bad name raises with the grammar."""
    m = _NAME.fullmatch(name)
    if m is None or m["depth"] not in DEPTHS:
        raise LabelforgeError(f"unknown backbone {name!r}; valid: {_GRAMMAR}")
    width = float(m["width"]) if m["width"] else 1.0
    stride = int(m["os"]) if m["os"] else 8
    if not 0 < width <= 4:
        raise LabelforgeError(f"backbone {name!r}: width must lie in (0, 4]")
    if stride not in OUTPUT_STRIDES:
        raise LabelforgeError(f"backbone {name!r}: output stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}")
    return BackboneSpec(m["depth"], width, stride)
