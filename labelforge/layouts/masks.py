"""Mask files -> label ids: greyscale or palette PNGs, values mapped through the label space.

A mask stores one value per pixel: its grey level, or its palette index in a palette PNG (Pascal
VOC). Palette PNGs are read as indices, not colours: the PNG header is rewritten to say "greyscale"
(the palette and its transparency dropped), so the fast codec hands back the index bytes as they
are stored. The label space decides which values are valid and which id each stands for
(``ClassDef.value``); a value that no class stores raises one line naming the file, the value and,
for a palette PNG, the palette colour.

For a label space whose ids are stored as they are and number 0..N-1 (Cityscapes), reading is
:func:`cityscapes_tools.io.read_label` itself: the same checks, messages and speed as before.

Example:
    >>> from labelforge.labelspace import get_label_space
    >>> codec = MaskCodec.build(get_label_space("voc"))
    >>> codec.plain, int(codec.lut[255]), codec.describe_valid()
    (False, 21, '0..20, 255')
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cityscapes_tools import io as csio
from cityscapes_tools.errors import DatasetFormatError

from ..labelspace import LabelSpace

__all__ = ["MaskCodec", "read_mask_values", "mask_palette", "palette_png", "histogram", "value_histogram"]

_INVALID = 255  # ids stop at 254, so 255 in the value table marks a value no class stores


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk of PNG bytes (the signature already checked)."""
    out, i = [], 8
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        out.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + n]))
        i += 12 + n
    return out


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _as_grey(data: bytes) -> bytes:
    """The same PNG with colour type 3 (palette) changed to 0 (grey): its pixels become the indices."""
    out = [data[:8]]
    for kind, payload in _chunks(data):
        if kind == b"IHDR":
            payload = payload[:9] + b"\x00" + payload[10:]
        elif kind in (b"PLTE", b"tRNS", b"bKGD", b"hIST", b"sBIT"):  # palette-bound chunks
            continue
        out.append(_chunk(kind, payload))
    return b"".join(out)


def mask_palette(data: bytes) -> np.ndarray | None:
    """(n, 3) uint8 palette of palette-PNG bytes, None for other PNGs."""
    if len(data) < 26 or data[25] != 3:
        return None
    for kind, payload in _chunks(data):
        if kind == b"PLTE":
            return np.frombuffer(payload[: len(payload) // 3 * 3], np.uint8).reshape(-1, 3)
    return None


def palette_png(grey_png: bytes, palette: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG turned into a palette PNG with ``palette`` ((256, 3) uint8): same indices."""
    out = [grey_png[:8]]
    for kind, payload in _chunks(grey_png):
        if kind == b"IHDR":
            if payload[8] != 8 or payload[9] != 0:
                raise ValueError("palette_png needs an 8-bit greyscale PNG")
            out.append(_chunk(kind, payload[:9] + b"\x03" + payload[10:]))
            out.append(_chunk(b"PLTE", np.ascontiguousarray(palette, np.uint8).tobytes()))
        else:
            out.append(_chunk(kind, payload))
    return b"".join(out)


def _decode_values(data: bytes, path: Path) -> np.ndarray:
    if not data.startswith(csio.PNG_MAGIC):
        raise DatasetFormatError(path, "mask is not a PNG file")
    depth, ctype = data[24], data[25]
    if ctype == 3:
        data = _as_grey(data)
    elif ctype != 0:
        kind = {2: "RGB", 4: "grey + alpha", 6: "RGBA"}.get(ctype, f"colour type {ctype}")
        raise DatasetFormatError(
            path, f"mask is an {kind} PNG; masks must be single-channel or palette PNGs of class values"
        )
    arr = csio.decode_png(data, path)
    if depth < 8 and arr.size and int(arr.max()) > (1 << depth) - 1:
        arr = arr // (255 // ((1 << depth) - 1))  # decoders that scale 1/2/4-bit grey up to 0..255
    if arr.dtype != np.uint8:
        top = int(arr.max()) if arr.size else 0
        if top > 255:
            raise DatasetFormatError(path, f"mask value {top} does not fit 8 bits (masks hold values 0..255)")
        arr = arr.astype(np.uint8)
    return arr


def read_mask_values(path: str | Path) -> np.ndarray:
    """(H, W) uint8 values of a mask file: grey levels, or palette indices of a palette PNG."""
    path = Path(path)
    return _decode_values(csio.read_bytes(path), path)


def histogram(arr: np.ndarray, bins: int) -> np.ndarray:
    """Exact (bins,) int64 histogram of a non-negative integer map whose values are all below ``bins``."""
    if arr.size < (1 << 24) and arr.ndim == 2 and arr.dtype in (np.uint8, np.uint16):
        # calcHist counts in float32 (exact up to 2**24 per bin) and is ~2.5x faster than np.bincount,
        # which widens the map to int64 first.
        hist = cv2.calcHist([np.ascontiguousarray(arr)], [0], None, [bins], [0, bins])
        return hist.reshape(bins).astype(np.int64)
    return np.bincount(arr.reshape(-1), minlength=bins)[:bins].astype(np.int64)


def value_histogram(arr: np.ndarray) -> np.ndarray:
    """(256,) int64 pixels per value of an (H, W) uint8 map."""
    return histogram(arr, 256)


def _spans(values: np.ndarray) -> str:
    """'0..20, 255' for the sorted values given."""
    parts, start = [], None
    vals = values.tolist()
    for i, v in enumerate(vals):
        if start is None:
            start = v
        if i + 1 == len(vals) or vals[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}..{v}")
            start = None
    return ", ".join(parts)


@dataclass(frozen=True)
class MaskCodec:
    """How mask files become label ids of one label space (small and picklable: workers get a copy)."""

    name: str  # the label space's
    table: bytes  # 256 entries: stored value -> label id, 255 where no class stores the value
    num_ids: int

    @classmethod
    def build(cls, ls: LabelSpace) -> MaskCodec:
        return cls(name=ls.name, table=ls.value_to_id.tobytes(), num_ids=ls.num_ids)

    @property
    def lut(self) -> np.ndarray:
        return np.frombuffer(self.table, np.uint8)

    @property
    def valid(self) -> np.ndarray:
        """(256,) bool: the values a mask may hold."""
        return self.lut != _INVALID

    @property
    def plain(self) -> bool:
        """Values are the ids themselves and cover 0..num_ids-1: Cityscapes' reading applies."""
        return self.table[: self.num_ids] == bytes(range(self.num_ids)) and not self.valid[self.num_ids :].any()

    def describe_valid(self) -> str:
        return _spans(np.flatnonzero(self.valid))

    def check(self, hist: np.ndarray, path: Path, data: bytes | None = None) -> None:
        """Raise naming ``path`` when the value histogram ``hist`` holds a value no class stores."""
        bad = np.flatnonzero((hist > 0) & ~self.valid)
        if not bad.size:
            return
        v = int(bad[0])
        pal = mask_palette(data if data is not None else csio.read_bytes(path))
        what = f"mask value {v}"
        if pal is not None:
            colour = ", ".join(map(str, pal[v])) if v < len(pal) else "none"
            what = f"palette index {v} (colour {colour})"
        raise DatasetFormatError(
            path, f"{what} is not in label space {self.name!r} (values it knows: {self.describe_valid()})"
        )

    def read(self, path: str | Path) -> np.ndarray:
        """(H, W) uint8 label ids of a mask file, every value checked."""
        if self.plain:
            return csio.read_label(path, num_ids=self.num_ids)
        path = Path(path)
        data = csio.read_bytes(path)
        values = _decode_values(data, path)
        self.check(value_histogram(values), path, data)
        return cv2.LUT(values, self.lut)

    def id_histogram(self, path: str | Path) -> tuple[np.ndarray, tuple[int, int]]:
        """(256,) pixels per label id of a mask file, and its (H, W): the values are counted and checked
        once, then the 256 bins are moved to their ids (no per-pixel mapping)."""
        path = Path(path)
        data = csio.read_bytes(path)
        values = _decode_values(data, path)
        hist = value_histogram(values)
        self.check(hist, path, data)
        out = np.zeros(256, np.int64)
        np.add.at(out, self.lut[self.valid], hist[self.valid])
        return out, (values.shape[0], values.shape[1])
