"""OASIS (Schönfeld, Sushko et al., ICLR 2021): a SPADE generator trained against a segmenting discriminator.

Modules: ``config`` (OasisConfig and the ``tiny`` / ``cityscapes`` presets), ``layers`` (initialised
convs, SPADE), ``generator``, ``discriminator``, ``losses`` (class-balanced N+1 cross-entropy,
LabelMix), ``noise`` (deterministic noise from seeds), ``trainer`` (the training step, the EMA
generator, rendering). Importing this package loads nothing heavy. See docs/generator.md.

Example:
    >>> from labelforge.gan.oasis.config import get_oasis_preset
    >>> arch, train = get_oasis_preset("tiny")
    >>> arch.size_multiple
    32
"""

__all__: list[str] = []
