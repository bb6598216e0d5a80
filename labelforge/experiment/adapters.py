"""One small adapter per library call: a stage's (params, runtime, input folders) -> the library's config.

This is the only module of the experiment package that knows the library functions' signatures
(``generate_dataset``, ``run_stats``, ``train_generator``, ``run_compose``, ``render_shards``,
``run_filter``, ``train_eval``, ``measure_quality``, the experiment report). When one of them
changes, its adapter here is the one place to follow it. Every adapter imports its library lazily
(torch stays out of dry runs) and returns a small JSON-able summary that goes into the stage's
``stage.json``.

Example:
    >>> from labelforge.experiment.adapters import ADAPTERS
    >>> sorted(ADAPTERS)
    ['compose', 'filter', 'quality', 'render', 'report', 'stats', 'synth', 'train-eval', 'train-generator']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..progress import Progress

__all__ = ["ADAPTERS", "Adapter"]

Adapter = Callable[[dict[str, Any], dict[str, Any], dict[str, Path], Path, bool, Progress], dict[str, Any]]


def _workers(n: int | None) -> int:
    return n if n else (os.cpu_count() or 1)


def synth(params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress) -> dict:
    from cityscapes_tools.synth.generate import generate_dataset, preview

    from ..outputs import mark_finished, prepare_output

    prepare_output(out, resume=resume)
    with progress.task("synth", total=params["train"] + params["val"]) as bar:
        info = generate_dataset(
            out, **params, workers=_workers(runtime.get("workers")), progress_callback=bar.advance, resume=resume
        )
    preview(out, out / "preview.png")
    mark_finished(out, {"command": "synth", "config": info["config"], "counts": info["counts"]})
    return {"counts": info["counts"]}


def stats(params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress) -> dict:
    from ..stats.api import StatsConfig, run_stats

    cfg = StatsConfig(
        sources=(inputs["root"],),
        splits=tuple(params["splits"]),
        label_space=params["label_space"],
        layout=params.get("layout", "auto"),
        workers=_workers(runtime.get("workers")),
        out=out,
        overwrite=True,  # a one-shot command: an interrupted one is simply redone
    )
    res = run_stats(cfg, progress)
    return {"recommended": list(res.recommendation.classes)}


def train_generator(
    params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress
) -> dict:
    from ..gan.archs import get_arch
    from ..gan.config import TrainConfig
    from ..gan.train import train_generator as run

    arch = get_arch(params.get("arch", "pix2pixhd"))
    gen_cfg = arch.config_from_dict(params["generator"])
    fields = {k: v for k, v in runtime.items() if k in ("device", "workers", "amp_dtype", "log_every")}
    cfg = TrainConfig(**params["train"], **fields)
    root: Any = inputs["root"]
    if "layout" in params:  # an open dataset stands where the root path did
        from ..dataset import open_dataset

        root = open_dataset(root, params["label_space"], params["layout"])
    res = run(
        root,
        out,
        gen_cfg,
        cfg,
        label_space=params["label_space"],
        resume=resume,
        progress=progress,
        trainer=arch.trainer(),
    )
    return {"epochs": res.epochs, "steps": res.steps, "losses": res.losses}


def compose(params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress) -> dict:
    from ..compose import ComposeConfig, run_compose

    values = dict(params)
    values["classes"] = tuple(values["classes"])
    if "protect" in values:
        values["protect"] = tuple(values["protect"])
    # The segment index is cached inside the experiment folder unless the plan names a cache.
    cache = runtime.get("cache_dir") or out.parent.parent / "cache"
    cfg = ComposeConfig(
        root=inputs["root"],
        out=out,
        **values,
        workers=_workers(runtime.get("workers")),
        preview=runtime.get("preview", 6),
        cache_dir=Path(cache),
        resume=resume,
    )
    res = run_compose(cfg, progress)
    return {"samples": res.samples, "skipped": res.skipped, "classes": res.classes}


def render(params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress) -> dict:
    from ..gan.config import RenderConfig
    from ..gan.render import render_shards

    cfg = RenderConfig(
        **params, **{k: v for k, v in runtime.items() if k != "preview"}, preview=runtime.get("preview", 6)
    )
    res = render_shards(inputs["shards"], out, cfg, generator=inputs.get("generator"), resume=resume, progress=progress)
    return {"rendered": res.rendered, "total": res.total, "size": [res.height, res.width]}


def train_eval(
    params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress
) -> dict:
    from ..seg.presets import config_from_dict
    from ..seg.train import train_eval as run

    values = {k: v for k, v in {**params, **runtime}.items() if k != "processes"}
    values.update(root=str(inputs["root"]), out=str(out), supp=[str(inputs["supp"])] if "supp" in inputs else [])
    metrics = run(config_from_dict(values), resume=resume, progress=progress)
    return {"miou": metrics["miou"]}


def filter_shards(
    params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress
) -> dict:
    from ..quality.filter import FilterConfig, run_filter

    cfg = FilterConfig(
        shards=str(inputs["shards"]),
        segmenter=str(inputs["segmenter"]),
        out=str(out),
        **params,
        **runtime,
        cache_dir=str(out.parent.parent / "cache"),  # the judge's class means, shared by the plan's filters
    )
    res = run_filter(cfg, resume=resume, progress=progress)
    return {"dropped": res.dropped, "pixels": res.pixels, "class_loss_cached": res.class_loss_cached}


def quality(params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress) -> dict:
    from ..quality.run import QualityConfig, measure_quality

    cfg = QualityConfig(
        shards=str(inputs["shards"]), segmenter=str(inputs["segmenter"]), out=str(out), **params, **runtime
    )
    # a one-shot command: an interrupted one is simply measured again
    res = measure_quality(cfg, overwrite=True, progress=progress)
    c = res.consistency
    return {"augmented_miou": c["augmented_miou"], "rest_miou": c["rest_miou"], "fd": res.feature_distance["value"]}


def report(params: dict, runtime: dict, inputs: dict[str, Path], out: Path, resume: bool, progress: Progress) -> dict:
    from ..report.experiment import write_experiment_report

    res = write_experiment_report(params, inputs, out, progress=progress)
    return {"files": [p.name for p in res.files]}


ADAPTERS: dict[str, Adapter] = {
    "synth": synth,
    "stats": stats,
    "train-generator": train_generator,
    "compose": compose,
    "render": render,
    "filter": filter_shards,
    "train-eval": train_eval,
    "quality": quality,
    "report": report,
}
