"""Reading and writing the PNG files of the Cityscapes layout, with format checks.

Every reader raises :class:`~cityscapes_tools.errors.DatasetFormatError` naming the file when it is
missing, truncated, undecodable, or of the wrong dtype / channel count, so callers never get a
silent ``None`` from OpenCV.

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

__all__ = ["read_png", "read_label", "read_instance", "read_image", "encode_png", "write_png", "atomic_write_bytes"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# mkstemp creates 0600 files; written outputs should get the usual mode (0666 less the umask).
_UMASK = os.umask(0)
os.umask(_UMASK)


def read_png(path: str | Path) -> np.ndarray:
    """Decode a PNG exactly as stored (no colour conversion, 16-bit kept)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetFormatError(path, "file not found") from None
    except OSError as exc:
        raise DatasetFormatError(path, f"cannot read file ({exc.strerror})") from None
    if not data.startswith(_PNG_MAGIC):
        raise DatasetFormatError(path, "not a PNG file")
    # A truncated PNG may still half-decode in libpng; the IEND chunk closes every complete file.
    if b"IEND" not in data[-16:]:
        raise DatasetFormatError(path, "truncated PNG (no IEND chunk)")
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DatasetFormatError(path, "corrupt PNG (cannot decode)")
    return arr


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
    """Read a ``*_leftImg8bit.png`` photo as (H, W, 3) uint8 RGB."""
    arr = read_png(path)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        raise DatasetFormatError(path, f"photo must have 3 channels, found {channels}")
    if arr.dtype != np.uint8:
        raise DatasetFormatError(path, f"photo must be 8-bit, found {arr.dtype}")
    return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def encode_png(arr: np.ndarray, rgb: bool = False, level: int = 1) -> bytes:
    """PNG bytes of ``arr``; ``rgb=True`` for (H, W, 3) RGB arrays (OpenCV stores BGR)."""
    if rgb:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:  # pragma: no cover - OpenCV only fails here on unsupported dtypes
        raise ValueError(f"cannot encode array of dtype {arr.dtype} and shape {arr.shape} as PNG")
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_png(path: str | Path, arr: np.ndarray, rgb: bool = False) -> None:
    """Atomically write ``arr`` as a PNG (a reader never sees a half-written file)."""
    atomic_write_bytes(path, encode_png(arr, rgb=rgb))
