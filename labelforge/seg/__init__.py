"""Segmentation: PSPNet training and evaluation (``labelforge train-eval``), metrics (``evaluate``, ``report``).

Submodules import torch; this package file does not, so ``labelforge --help`` stays fast.
"""
