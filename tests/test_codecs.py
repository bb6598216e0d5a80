"""The fast codec (imagecodecs) returns exactly OpenCV's arrays; OpenCV stays the fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from cityscapes_tools import io as csio
from cityscapes_tools.errors import DatasetFormatError

pytest.importorskip("imagecodecs")


@pytest.fixture
def codec() -> Iterator[None]:
    before = csio.codec()
    yield
    csio.set_codec(before)


def _both(read, path: Path) -> tuple[np.ndarray, np.ndarray]:
    csio.set_codec("imagecodecs")
    fast = read(path)
    csio.set_codec("cv2")
    slow = read(path)
    return fast, slow


def test_real_cityscapes_files_decode_identically(cityscapes_samples: Path, codec: None) -> None:
    gt = sorted((cityscapes_samples / "gtFine").rglob("*.png"))
    photos = sorted((cityscapes_samples / "leftImg8bit").rglob("*.png"))[:2]
    assert gt and photos
    for path in gt:
        read = csio.read_label if "labelIds" in path.name else csio.read_instance
        fast, slow = _both(read, path)
        assert fast.dtype == slow.dtype and np.array_equal(fast, slow), path.name
        raw = csio.read_png(path)  # as stored: labelIds 8-bit, instanceIds 16-bit
        assert raw.dtype == (np.uint8 if "labelIds" in path.name else np.uint16)
    for path in photos:
        fast, slow = _both(csio.read_image, path)
        assert fast.shape == (1024, 2048, 3) and np.array_equal(fast, slow)


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(48, dtype=np.uint8).reshape(6, 8),
        (np.arange(48, dtype=np.uint16) * 1361).reshape(6, 8),
        np.arange(144, dtype=np.uint8).reshape(6, 8, 3),
        np.arange(192, dtype=np.uint8).reshape(6, 8, 4),
        np.stack([np.arange(48, dtype=np.uint8).reshape(6, 8)] * 2, -1),  # grey + alpha: the cv2 path
    ],
)
def test_png_kinds_agree_and_come_back_in_file_order(arr: np.ndarray, tmp_path: Path, codec: None) -> None:
    path = tmp_path / "x.png"
    bgr = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
    stored = cv2.cvtColor(arr, bgr[arr.shape[2]]) if arr.ndim == 3 and arr.shape[2] in bgr else arr
    if arr.ndim == 3 and arr.shape[2] == 2:  # OpenCV cannot write grey + alpha
        import imagecodecs

        path.write_bytes(imagecodecs.png_encode(arr))
    else:
        path.write_bytes(cv2.imencode(".png", stored)[1].tobytes())
    fast, slow = _both(csio.read_png, path)
    assert np.array_equal(fast, slow)
    if arr.ndim == 2 or arr.shape[2] != 2:
        assert np.array_equal(fast, arr)  # RGB(A) as written, not BGR


def test_jpeg_photo_decodes_identically_and_in_rgb(tmp_path: Path, codec: None) -> None:
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0] = 200  # red
    path = tmp_path / "p.jpg"
    path.write_bytes(cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1])
    fast, slow = _both(csio.read_image, path)
    assert fast.shape == (16, 24, 3) and np.array_equal(fast, slow)
    assert abs(int(fast[..., 0].mean()) - 200) < 4 and int(fast[..., 2].mean()) < 8
    grey = tmp_path / "g.jpg"
    grey.write_bytes(cv2.imencode(".jpg", rgb[..., 0])[1])
    fast, slow = _both(csio.read_image, grey)
    assert fast.shape == (16, 24, 3) and np.array_equal(fast, slow)


def test_broken_files_name_the_file_with_either_codec(tmp_path: Path, codec: None) -> None:
    good = cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes()
    cases = {
        "trunc.png": (good[: len(good) // 2], "truncated PNG"),
        "text.png": (b"hello", "not a PNG"),
        "photo.bmp": (b"BM....", "neither a PNG nor a JPEG"),
        "cut.jpg": (b"\xff\xd8\xff\xe0" + b"\0" * 50, "truncated JPEG"),
    }
    for name in ("imagecodecs", "cv2"):
        csio.set_codec(name)
        for fname, (data, problem) in cases.items():
            path = tmp_path / fname
            path.write_bytes(data)
            read = csio.read_png if fname.endswith(".png") else csio.read_image
            with pytest.raises(DatasetFormatError, match=problem) as err:
                read(path)
            assert str(err.value).startswith(str(path))


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="valid: auto, imagecodecs, cv2"):
        csio.set_codec("pillow")


def test_grey_png_with_transparency_goes_through_opencv_with_either_codec(tmp_path: Path, codec: None) -> None:
    import struct
    import zlib

    grey = cv2.imencode(".png", np.arange(48, dtype=np.uint8).reshape(6, 8))[1].tobytes()
    trns = b"tRNS" + b"\x00\x05"  # grey level 5 is transparent: imagecodecs would add an alpha channel
    chunk = struct.pack(">I", 2) + trns + struct.pack(">I", zlib.crc32(trns))
    path = tmp_path / "t.png"
    path.write_bytes(grey[:33] + chunk + grey[33:])  # right after IHDR
    fast, slow = _both(csio.read_png, path)
    assert fast.shape == slow.shape and np.array_equal(fast, slow)
