"""The Cityscapes instance-id encoding of ``*_instanceIds.png``, written in one place.

A pixel of the ``k``-th instance (``k`` from 0) of a label id holds ``label_id * 1000 + k``; every
other pixel (stuff, and crowd regions of instance classes) holds its plain label id, which is below
1000. So values from 1000 up name one instance each and give their label id back by integer
division (cityscapesScripts, ``helpers/labels.py`` and ``json2instanceImg.py``).

Example:
    >>> import numpy as np
    >>> from cityscapes_tools.instances import decode_instance, encode_instance, is_instance
    >>> encode_instance(26, 3)
    26003
    >>> ids = np.array([7, 26000, 26003, 24001])
    >>> label_ids, k = decode_instance(ids)
    >>> label_ids.tolist(), k.tolist(), is_instance(ids).tolist()
    ([7, 26, 26, 24], [-1, 0, 3, 1], [False, True, True, True])
"""

from __future__ import annotations

import numpy as np

__all__ = ["INSTANCE_OFFSET", "decode_instance", "encode_instance", "is_instance"]

INSTANCE_OFFSET = 1000  # instance ids are label_id * INSTANCE_OFFSET + k; plain label ids stay below it


def encode_instance(label_id: int | np.ndarray, k: int | np.ndarray) -> int | np.ndarray:
    """The instance id of the ``k``-th instance (from 0) of ``label_id``: ``label_id * 1000 + k``.

    Works elementwise on arrays; ``k`` must stay below 1000 for the id to decode back.
    """
    return label_id * INSTANCE_OFFSET + k


def is_instance(ids: int | np.ndarray) -> bool | np.ndarray:
    """Whether each value names one instance (>= 1000) rather than holding a plain label id."""
    return ids >= INSTANCE_OFFSET


def decode_instance(ids: int | np.ndarray) -> tuple[int, int] | tuple[np.ndarray, np.ndarray]:
    """(label id, k) of each instance-map value: ``label_id * 1000 + k`` gives ``(label_id, k)``, a plain
    label id ``v`` (below 1000) gives ``(v, -1)``. A scalar gives Python ints; signed arrays keep their
    dtype, unsigned ones (a uint16 PNG as stored) are widened to int64 so that ``k`` can be -1.
    """
    if np.ndim(ids) == 0:
        v = int(ids)
        return (v // INSTANCE_OFFSET, v % INSTANCE_OFFSET) if v >= INSTANCE_OFFSET else (v, -1)
    ids = np.asarray(ids)
    if ids.dtype.kind == "u":
        ids = ids.astype(np.int64)
    label_id, k = np.divmod(ids, INSTANCE_OFFSET)
    plain = ids < INSTANCE_OFFSET
    return np.where(plain, ids, label_id), np.where(plain, -1, k)
