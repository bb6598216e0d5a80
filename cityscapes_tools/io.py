"""Reading and writing the image files of a dataset, with format checks, through the fastest codec.

Every reader raises :class:`~cityscapes_tools.errors.DatasetFormatError` naming the file when it is
missing, truncated, undecodable, or of the wrong dtype / channel count, so callers never get a
silent ``None`` from a decoder.

Decoding goes through ``imagecodecs`` (libpng / libjpeg-turbo) where it is installed and OpenCV
otherwise. Both give the same arrays for every PNG and JPEG the fast path takes (greyscale, RGB and
RGBA PNGs of 8 or 16 bits without a transparency chunk; RGB JPEGs); other kinds (grey+alpha PNGs,
palette PNGs expanded to colour, PNGs with tRNS, CMYK or greyscale JPEGs) always go through OpenCV.
Colour arrays are RGB(A) in file order whichever codec decoded them. ``imagecodecs`` decodes a
1024x2048 Cityscapes map ~1.2-1.5x faster than ``cv2.imdecode`` (docs/benchmarks.md). Encoding stays
with OpenCV: it was no faster there, and keeping it keeps every written file byte-identical to
earlier versions.

``CITYSCAPES_TOOLS_CODEC=cv2`` in the environment (or :func:`set_codec`) forces OpenCV.

Example:
    >>> from cityscapes_tools.io import read_label  # doctest: +SKIP
    >>> read_label("gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png").dtype  # doctest: +SKIP
    dtype('uint8')
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetFormatError
from .labels import NUM_IDS

__all__ = [
    "CODECS",
    "codec",
    "set_codec",
    "read_bytes",
    "decode_png",
    "decode_jpeg",
    "png_header",
    "read_png",
    "read_label",
    "read_instance",
    "read_image",
    "encode_png",
    "encode_jpeg",
    "write_png",
    "atomic_write_bytes",
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
CODECS = ("auto", "imagecodecs", "cv2")
# PNG colour types whose imagecodecs arrays equal OpenCV's (up to RGB order): grey, RGB, RGBA.
_FAST_PNG_TYPES = (0, 2, 6)
# mkstemp creates 0600 files; written outputs should get the usual mode (0666 less the umask).
_UMASK = os.umask(0)
os.umask(_UMASK)

try:
    import imagecodecs as _ic
except ImportError:  # pragma: no cover - exercised by set_codec("cv2") in the tests
    _ic = None

_codec = "cv2"


def set_codec(name: str) -> str:
    """Choose the decoder (``auto``: imagecodecs when installed, else cv2); returns the one now in use."""
    global _codec
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; valid: {', '.join(CODECS)}")
    if name == "imagecodecs" and _ic is None:
        raise ValueError("codec 'imagecodecs' asked for, but the imagecodecs package is not installed")
    _codec = "imagecodecs" if name != "cv2" and _ic is not None else "cv2"
    return _codec


def codec() -> str:
    """The decoder in use: ``imagecodecs`` or ``cv2``."""
    return _codec


set_codec(os.environ.get("CITYSCAPES_TOOLS_CODEC", "auto") or "auto")


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a missing or unreadable file raises DatasetFormatError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise DatasetFormatError(path, "is a directory, not an image file") from None
    except OSError as exc:
        raise DatasetFormatError(path, f"cannot read file ({exc.strerror})") from None


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk (data must start with it)."""
    return (
        int.from_bytes(data[16:20], "big"),
        int.from_bytes(data[20:24], "big"),
        data[24],
        data[25],
    )


def _cv2_decode(data: bytes, flags: int) -> np.ndarray | None:
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if arr is not None and arr.ndim == 3:  # OpenCV's BGR(A) -> file order
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return arr


def _fast_png(data: bytes) -> bool:
    """Whether imagecodecs gives OpenCV's array for this PNG: grey, RGB or RGBA without a tRNS chunk
    (imagecodecs adds an alpha channel for it, OpenCV does not). Only the chunks before the first IDAT
    are looked at."""
    if len(data) < 33 or data[25] not in _FAST_PNG_TYPES:
        return False
    i = 8
    while i + 8 <= len(data):
        kind = data[i + 4 : i + 8]
        if kind == b"IDAT":
            return True
        if kind == b"tRNS":
            return False
        i += 12 + int.from_bytes(data[i : i + 4], "big")
    return False


def decode_png(data: bytes, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode PNG bytes exactly as stored (16-bit kept; colour in RGB(A) order); ``path`` names errors."""
    if not data.startswith(PNG_MAGIC):
        raise DatasetFormatError(path, "not a PNG file")
    # A truncated PNG may still half-decode in libpng; the IEND chunk closes every complete file.
    if b"IEND" not in data[-16:]:
        raise DatasetFormatError(path, "truncated PNG (no IEND chunk)")
    if _codec == "imagecodecs" and _fast_png(data):
        try:
            arr = _ic.png_decode(data)
        except Exception:  # imagecodecs raises its own RuntimeError subclasses
            raise DatasetFormatError(path, "corrupt PNG (cannot decode)") from None
    else:
        arr = _cv2_decode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DatasetFormatError(path, "corrupt PNG (cannot decode)")
    return arr


def decode_jpeg(data: bytes, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode JPEG bytes to (H, W, 3) uint8 RGB, in the stored pixel grid (EXIF orientation is not
    applied: masks are drawn on the stored grid)."""
    if not data.startswith(JPEG_MAGIC):
        raise DatasetFormatError(path, "not a JPEG file")
    if b"\xff\xd9" not in data[-1024:]:
        raise DatasetFormatError(path, "truncated JPEG (no end-of-image marker)")
    if _codec == "imagecodecs":
        try:
            arr = _ic.jpeg8_decode(data)
        except Exception:
            raise DatasetFormatError(path, "corrupt JPEG (cannot decode)") from None
        if arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8:
            return arr
    # Greyscale and CMYK JPEGs (and the cv2 codec): OpenCV converts them to colour.
    arr = _cv2_decode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None:
        raise DatasetFormatError(path, "corrupt JPEG (cannot decode)")
    return arr


def read_png(path: str | Path) -> np.ndarray:
    """Decode a PNG file exactly as stored (no colour conversion: RGB(A) order, 16-bit kept)."""
    return decode_png(read_bytes(path), path)


def read_label(path: str | Path, num_ids: int = NUM_IDS, check_values: bool = True) -> np.ndarray:
    """Read a ``*_labelIds.png``: (H, W) uint8 with values below ``num_ids``."""
    arr = read_png(path)
    if arr.ndim != 2:
        raise DatasetFormatError(path, f"label map must have 1 channel, found {arr.shape[2]}")
    if arr.dtype != np.uint8:
        raise DatasetFormatError(path, f"label map must be 8-bit, found {arr.dtype}")
    if check_values:
        top = int(arr.max())
        if top >= num_ids:
            raise DatasetFormatError(path, f"label id {top} outside the label table (0..{num_ids - 1})")
    return arr


def read_instance(path: str | Path) -> np.ndarray:
    """Read a ``*_instanceIds.png``: (H, W) int32 (stored as uint16: id*1000+k or a plain id)."""
    arr = read_png(path)
    if arr.ndim != 2:
        raise DatasetFormatError(path, f"instance map must have 1 channel, found {arr.shape[2]}")
    if arr.dtype not in (np.uint16, np.uint8):
        raise DatasetFormatError(path, f"instance map must be 16-bit, found {arr.dtype}")
    return arr.astype(np.int32)


def read_image(path: str | Path) -> np.ndarray:
    """Read a photo, PNG (``*_leftImg8bit.png``) or JPEG, as (H, W, 3) uint8 RGB (a PNG's alpha is dropped)."""
    data = read_bytes(path)
    if data.startswith(JPEG_MAGIC):
        return decode_jpeg(data, path)
    if not data.startswith(PNG_MAGIC):
        raise DatasetFormatError(path, "photo is neither a PNG nor a JPEG file")
    arr = decode_png(data, path)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        raise DatasetFormatError(path, f"photo must have 3 channels, found {channels}")
    if arr.dtype != np.uint8:
        raise DatasetFormatError(path, f"photo must be 8-bit, found {arr.dtype}")
    return np.ascontiguousarray(arr[..., :3]) if arr.shape[2] == 4 else arr


def encode_png(arr: np.ndarray, rgb: bool = False, level: int = 1) -> bytes:
    """PNG bytes of ``arr``; ``rgb=True`` for (H, W, 3) RGB arrays (OpenCV stores BGR)."""
    if rgb:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:  # pragma: no cover - OpenCV only fails here on unsupported dtypes
        raise ValueError(f"cannot encode array of dtype {arr.dtype} and shape {arr.shape} as PNG")
    return buf.tobytes()


def encode_jpeg(arr: np.ndarray, quality: int = 95) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB array."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover
        raise ValueError(f"cannot encode array of dtype {arr.dtype} and shape {arr.shape} as JPEG")
    return buf.tobytes()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write (a full disk) names no file; the caller's is the one to name
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_png(path: str | Path, arr: np.ndarray, rgb: bool = False) -> None:
    """Atomically write ``arr`` as a PNG (a reader never sees a half-written file)."""
    atomic_write_bytes(path, encode_png(arr, rgb=rgb))
