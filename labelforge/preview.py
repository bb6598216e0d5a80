"""Preview grids: rows of same-height images with captions, written as one PNG (OpenCV only).

Example:
    >>> import numpy as np
    >>> from labelforge.preview import make_grid
    >>> a = np.zeros((32, 64, 3), np.uint8)
    >>> make_grid([[a, a], [a, a]], captions=[["label", "photo"], ["", ""]]).shape
    (92, 132, 3)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cityscapes_tools.io import write_png

__all__ = ["make_grid", "save_grid", "outline"]

_PAD = 4
_CAPTION_H = 12


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)
    return img


def make_grid(
    rows: list[list[np.ndarray]], captions: list[list[str]] | None = None, cell_width: int | None = None
) -> np.ndarray:
    """Tile RGB (or grey) images into one RGB image; every cell is resized to the first image's size
    (or to ``cell_width`` keeping its aspect). A caption strip is drawn above each cell when given.
    """
    first = rows[0][0]
    h, w = first.shape[:2]
    if cell_width is not None:
        h, w = max(1, round(h * cell_width / w)), cell_width
    ncols = max(len(r) for r in rows)
    cap_h = _CAPTION_H if captions else 0
    cell_h, cell_w = h + cap_h, w
    grid = np.full((len(rows) * (cell_h + _PAD) - _PAD, ncols * (cell_w + _PAD) - _PAD, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            y, x = r * (cell_h + _PAD), c * (cell_w + _PAD)
            grid[y + cap_h : y + cap_h + h, x : x + w] = _fit(img, h, w)
            text = captions[r][c] if captions and r < len(captions) and c < len(captions[r]) else ""
            if text:
                cv2.putText(
                    grid, text, (x + 1, y + cap_h - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA
                )
    return grid


def save_grid(
    path: str | Path,
    rows: list[list[np.ndarray]],
    captions: list[list[str]] | None = None,
    cell_width: int | None = None,
) -> Path:
    """Write :func:`make_grid` atomically as a PNG and return its path."""
    write_png(path, make_grid(rows, captions, cell_width), rgb=True)
    return Path(path)


def outline(img: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy of RGB ``img`` with the boundary of boolean ``mask`` drawn in ``color``."""
    out = img.copy()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, color, 1)
    return out
