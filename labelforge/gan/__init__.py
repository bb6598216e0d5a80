"""Label-to-image generator (pix2pixHD built in): networks, losses, training and batch rendering of shards.

Modules: ``config`` (frozen configs), ``presets`` (tiny / 512p / 1024p), ``networks``, ``inputs``
(one-hot + boundary map on the device), ``losses``, ``data`` (image/label pairs of a dataset root),
``train`` (the architecture-free epoch loop and the trainer protocol), ``pix2pixhd`` (pix2pixHD's
trainer), ``checkpoint``, ``render``, ``flops``. Importing this package loads nothing heavy; the
modules that need torch import it themselves.

Example:
    >>> from labelforge.gan.presets import get_preset  # doctest: +SKIP
    >>> from labelforge.gan.train import train_generator  # doctest: +SKIP
    >>> train_generator("data/mini", "runs/gen", *get_preset("tiny"))  # doctest: +SKIP
"""

__all__: list[str] = []
