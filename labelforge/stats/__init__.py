"""Class-frequency statistics of datasets and shard dirs (the paper's Section 3.1 and Fig. 3).

``labelforge stats`` in library form: :func:`run_stats` counts, per class of the label space and per
source (dataset split or shard dir), how often the class appears and how many pixels it covers,
correlates appearance with per-class IoU, and recommends the classes to augment. No module here
imports torch or matplotlib at module level (the figure imports matplotlib when drawn).

Example:
    >>> from pathlib import Path
    >>> from labelforge.stats import StatsConfig, run_stats  # doctest: +SKIP
    >>> res = run_stats(StatsConfig(sources=(Path("data/mini"),)))  # doctest: +SKIP
    >>> res.recommendation.args  # doctest: +SKIP
    '--class train --class bus'
"""

from .api import StatsConfig, compute_stats, run_stats
from .correlate import pearson, rankdata, spearman
from .count import Counts, MapJob, count_instances, count_jobs, count_label, count_map
from .iou import IouTable, load_iou
from .output import STATS_CSV, STATS_JSON, STATS_PNG, stats_csv, stats_dict, write_outputs
from .recommend import Recommendation, Thresholds, class_args, decide
from .result import STATS_SCHEMA, ClassSource, ClassStats, Correlation, SourceStats, StatsResult, summarize
from .sources import Source, resolve_sources, shard_counts

__all__ = [
    "STATS_CSV",
    "STATS_JSON",
    "STATS_PNG",
    "STATS_SCHEMA",
    "ClassSource",
    "ClassStats",
    "Correlation",
    "Counts",
    "IouTable",
    "MapJob",
    "Recommendation",
    "Source",
    "SourceStats",
    "StatsConfig",
    "StatsResult",
    "Thresholds",
    "class_args",
    "compute_stats",
    "count_instances",
    "count_jobs",
    "count_label",
    "count_map",
    "decide",
    "load_iou",
    "pearson",
    "rankdata",
    "resolve_sources",
    "run_stats",
    "shard_counts",
    "spearman",
    "stats_csv",
    "stats_dict",
    "summarize",
    "write_outputs",
]
