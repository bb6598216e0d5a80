"""labelforge: rebalance a segmentation dataset's rare classes with composed, GAN-rendered samples."""

__version__ = "0.1.0"
