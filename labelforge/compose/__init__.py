"""Compose new label maps in which rare classes appear more often (Liu et al., Sections 2.2 and 3.2).

``segments`` extracts and caches the donor segments of a split, ``placement`` decides where a segment
may go, ``methods`` is the registry of methods (overlay, multi, reconstruct, identity: what each
pastes onto what), ``sample`` composes one sample (optionally with copy-paste photos), ``base`` draws
or derives reconstruct bases, ``run`` writes whole runs into shards.
See docs/compose.md.

Example:
    >>> from labelforge.compose import ComposeConfig, run_compose  # doctest: +SKIP
    >>> run_compose(ComposeConfig(root="data/mini", out="out/wall", classes=("wall",), count=10))  # doctest: +SKIP
"""

from .methods import ComposeMethod, create_method, method_names, register_method
from .run import ComposeConfig, ComposePlan, ComposeResult, plan_compose, run_compose, supplement_count, write_preview
from .sample import ComposeContext, ComposedSample, compose_sample, sample_key
from .segments import SegmentIndex, default_cache_dir, load_segment_index

__all__ = [
    "ComposeConfig",
    "ComposeContext",
    "ComposeMethod",
    "ComposePlan",
    "ComposeResult",
    "ComposedSample",
    "SegmentIndex",
    "compose_sample",
    "create_method",
    "default_cache_dir",
    "load_segment_index",
    "method_names",
    "plan_compose",
    "register_method",
    "run_compose",
    "sample_key",
    "supplement_count",
    "write_preview",
]
