"""``labelforge quality``: segmentation consistency and feature distance of rendered photos.

Modules: ``segmenter`` (the one loader of a train-eval run, segment + embed photos), ``frechet``
(Fréchet distance, Inception v3 from a local file), ``run`` (QualityConfig, measure_quality,
quality.json). Importing this package loads nothing heavy. See docs/quality.md.
"""

__all__: list[str] = []
