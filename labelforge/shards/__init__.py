"""HDF5 shards: the file format between compose, render and train-eval (docs/formats.md).

``ShardDataset`` (torch) lives in :mod:`labelforge.shards.torchdata` so this package imports without torch.
"""

from .encode import EncodedSample, encode_sample
from .manifest import MANIFEST_SCHEMA, SHARD_SCHEMA, read_manifest
from .reader import ShardSet
from .writer import ShardWriter

__all__ = [
    "EncodedSample",
    "encode_sample",
    "MANIFEST_SCHEMA",
    "SHARD_SCHEMA",
    "ShardSet",
    "ShardWriter",
    "read_manifest",
]
