"""Benchmark of the procedural mini-Cityscapes: samples written per minute, and where the time goes.

Example:
    python -c "from bench.bench_synth import run; print(run(quick=True))"
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from cityscapes_tools.synth import generate_dataset, paint, sample_scene

__all__ = ["run"]


def run(quick: bool) -> dict[str, float]:
    """Samples/min at 256x512 (photo + 3 label PNGs written) with 1 and 2 workers; scene and paint ms."""
    n = 24 if quick else 160
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        for workers in (1, 2):
            info = generate_dataset(
                Path(tmp) / f"w{workers}", train=n, val=0, height=256, width=512, seed=0, workers=workers
            )
            out[f"synth_samples_per_min_256x512_w{workers}"] = round(n / info["seconds"] * 60.0, 1)
    reps = 10 if quick else 40
    scenes = []
    t0 = time.perf_counter()
    for i in range(reps):
        scenes.append(sample_scene(np.random.default_rng([0, i]), 256, 512))
    t1 = time.perf_counter()
    for i, (label, instance) in enumerate(scenes):
        paint(label, instance, seed=i)
    t2 = time.perf_counter()
    out["synth_scene_ms_256x512"] = round((t1 - t0) / reps * 1000.0, 2)
    out["synth_paint_ms_256x512"] = round((t2 - t1) / reps * 1000.0, 2)
    return out


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True))
