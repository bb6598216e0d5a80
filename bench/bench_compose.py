"""Benchmark of ``labelforge compose``: composed maps per second at 1024x2048, and shard read speed.

Data: as many distinct maps as samples composed (the 8 real Cityscapes samples of
shared/cityscapes-samples copied under several city names when present, else procedural street scenes
from bench_stats.make_maps), so base maps are decoded as often as on the full dataset. The segment
index is built once beforehand (the figures are for composing, not for the one-off scan).

Figures:
* ``compose_maps_per_s_1024x2048_w1`` / ``_w2``: multi-class overlay (wall, fence, pole, traffic light,
  person, car) into shards, end to end (compose + gzip + write), with 1 and 2 worker processes;
* ``shard_read_vs_png_decode_ratio``: time to read one composed label map from its shard over the time
  to decode the same map from a PNG (below 1: the shard is faster).

Example:
    python -m bench.run --quick --only compose
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

__all__ = ["run"]

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "cityscapes-samples"
CLASSES = ("wall", "fence", "pole", "traffic light", "person", "car")


def _dataset(tmp: Path, n: int) -> Path:
    """``n`` distinct-keyed 1024x2048 maps: the real samples repeated under several city names (so that,
    as on the full Cityscapes, consecutive samples rarely share a base map), else procedural scenes."""
    from cityscapes_tools.writer import write_sample

    root = tmp / "ds"
    if (SAMPLES / "gtFine" / "train").is_dir():
        real = sorted((SAMPLES / "gtFine" / "train").glob("*/*_gtFine_labelIds.png"))
        for i in range(n):
            src = real[i % len(real)]
            key = src.name.removesuffix("_gtFine_labelIds.png").split("_", 1)[1]
            city = "city" + "abcdefghijklmnop"[i // len(real)]
            dst = root / "gtFine" / "train" / city
            dst.mkdir(parents=True, exist_ok=True)
            for suffix in ("_gtFine_labelIds.png", "_gtFine_instanceIds.png"):
                shutil.copyfile(
                    src.with_name(src.name.replace("_gtFine_labelIds.png", suffix)), dst / f"{city}_{key}{suffix}"
                )
        return root
    from bench.bench_stats import make_maps

    rng = np.random.default_rng(0)
    for i in range(n):
        lab, inst = make_maps(rng)
        write_sample(root, "train", f"bench_000000_{i:06d}", label=lab, instance=inst, color=False)
    return root


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(quick: bool) -> dict[str, float]:
    from labelforge.compose import ComposeConfig, load_segment_index, run_compose
    from labelforge.dataset import open_dataset
    from labelforge.shards import ShardSet

    count = 16 if quick else 48
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = _dataset(tmp, count)
        cache = tmp / "cache"
        load_segment_index(open_dataset(root), "train", min_area=100, cache_dir=cache, workers=2)
        for w in (1, 2):
            cfg = ComposeConfig(
                root=root, out=tmp / f"w{w}", method="multi", classes=CLASSES, count=count, cache_dir=cache, workers=w
            )
            t = time.perf_counter()
            run_compose(cfg)
            out[f"compose_maps_per_s_1024x2048_w{w}"] = count / (time.perf_counter() - t)

        ss = ShardSet(tmp / "w1")
        n = min(len(ss), 8)
        pngs = [cv2.imencode(".png", ss[i]["label"])[1] for i in range(n)]
        f = ss._file(0)  # the label dataset alone, as the renderer reads it

        def read_shard() -> None:
            for i in range(n):
                f["label"][i]

        def decode_png() -> None:
            for buf in pngs:
                cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

        repeats = 3 if quick else 7
        t_shard, t_png = _best(read_shard, repeats), _best(decode_png, repeats)
        out["shard_label_read_ms"] = 1000 * t_shard / n
        out["png_label_decode_ms"] = 1000 * t_png / n
        out["shard_read_vs_png_decode_ratio"] = t_shard / t_png
        ss.close()
    return out


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True))
