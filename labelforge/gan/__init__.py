"""pix2pixHD label-to-image generator: networks, losses, training and batch rendering of shards.

Modules: ``config`` (frozen configs), ``presets`` (tiny / 512p / 1024p), ``networks``, ``inputs``
(one-hot + boundary map on the device), ``losses``, ``data`` (image/label pairs of a dataset root),
``train``, ``checkpoint``, ``render``, ``flops``. Importing this package loads nothing heavy; the
modules that need torch import it themselves.

Example:
    >>> from labelforge.gan.presets import get_preset  # doctest: +SKIP
    >>> from labelforge.gan.train import train_generator  # doctest: +SKIP
    >>> train_generator("data/mini", "runs/gen", *get_preset("tiny"))  # doctest: +SKIP
"""

__all__: list[str] = []
