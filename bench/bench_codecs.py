"""The codec layer: per-file decode times by codec, and what the fast codec buys compose's index and evaluate.

On the real Cityscapes samples (shared/cityscapes-samples; procedural 1024x2048 maps where absent):

* ``{labelIds,instanceIds,photo}_{cv2,imagecodecs}_ms``: one decode, best of the repeats;
  ``*_speedup``: cv2 time over imagecodecs time (both give the same arrays; tests/test_codecs.py),
  ``*_speedup_cpu`` the same from the process's CPU time;
* ``index_build_{cv2,imagecodecs}_s``: compose's segment index (labelIds + instanceIds of every map,
  segments extracted), one process; ``index_speedup``;
* ``evaluate_{cv2,imagecodecs}_s``: ``labelforge evaluate`` of one prediction per map, one thread;
  ``evaluate_speedup``.

Both codecs run interleaved, repeat after repeat, and each figure is the best of its repeats: the
machine is shared, so only ratios measured within one run mean anything.

Example:
    python -m bench.run --quick --only codecs
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["run"]

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "cityscapes-samples"
CODECS = ("cv2", "imagecodecs")


def _with(codec: str, fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn`` decoding through ``codec``."""
    from cityscapes_tools import io as csio

    before = csio.codec()
    csio.set_codec(codec)
    try:
        w, c = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w, time.process_time() - c
    finally:
        csio.set_codec(before)


def _interleaved(fn: Callable[[], object], repeats: int) -> tuple[dict[str, float], float]:
    """Best wall time of each codec (the codecs alternating within every repeat), and the cv2/imagecodecs
    ratio of their best CPU times (less disturbed by other agents' load)."""
    wall = {c: float("inf") for c in CODECS}
    cpu = dict(wall)
    for _ in range(repeats):
        for c in CODECS:
            w, t = _with(c, fn)
            wall[c], cpu[c] = min(wall[c], w), min(cpu[c], t)
    return wall, cpu["cv2"] / cpu["imagecodecs"]


def _root(tmp: Path) -> Path:
    if (SAMPLES / "gtFine" / "train").is_dir():
        root = tmp / "real"
        shutil.copytree(SAMPLES, root)
        return root
    from bench.bench_stats import _write_synthetic

    _write_synthetic(tmp / "synth", 8)
    return tmp / "synth"


def run(quick: bool) -> dict[str, float]:
    from cityscapes_tools import io as csio
    from labelforge.compose.segments import build_segment_index
    from labelforge.dataset import open_dataset
    from labelforge.evaluate import EvaluateConfig, evaluate_predictions

    repeats = 3 if quick else 7
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-codecs-") as d:
        tmp = Path(d)
        root = _root(tmp)
        ds = open_dataset(root)
        samples = ds.samples("train")[: 4 if quick else None]
        kinds = {
            "labelIds": (csio.read_label, [s.label for s in samples]),
            "instanceIds": (csio.read_instance, [s.instance for s in samples if s.instance is not None]),
            "photo": (csio.read_image, [s.image for s in samples if s.image is not None][:2]),
        }
        for kind, (read, paths) in kinds.items():
            if not paths:
                continue
            best, cpu = _interleaved(lambda r=read, ps=paths: [r(p) for p in ps], repeats)
            for c in CODECS:
                out[f"{kind}_{c}_ms"] = 1e3 * best[c] / len(paths)
            out[f"{kind}_speedup"], out[f"{kind}_speedup_cpu"] = best["cv2"] / best["imagecodecs"], cpu

        best, cpu = _interleaved(lambda: build_segment_index(ds, samples, min_area=100, workers=1), repeats)
        out.update({f"index_build_{c}_s": best[c] for c in CODECS})
        out["index_speedup"], out["index_speedup_cpu"] = best["cv2"] / best["imagecodecs"], cpu

        preds = tmp / "preds"
        for s in samples:  # a smooth prediction, as a model gives: the map shifted by 3 px, sky read as road
            label = np.roll(ds.read_label(s), 3, axis=1)
            label[label == 23] = 7
            csio.write_png(preds / f"{s.key}_pred_labelIds.png", label)
        runs = iter(range(1000))

        def evaluate() -> None:
            out_dir = tmp / f"ev{next(runs)}"
            evaluate_predictions(
                EvaluateConfig(pred_dir=preds, root=root, out=out_dir, split="train", workers=1, allow_missing=True)
            )

        best, cpu = _interleaved(evaluate, repeats)
        out.update({f"evaluate_{c}_s": best[c] for c in CODECS})
        out["evaluate_speedup"], out["evaluate_speedup_cpu"] = best["cv2"] / best["imagecodecs"], cpu
    return {k: round(float(v), 4) for k, v in out.items()}


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
