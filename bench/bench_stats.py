"""Benchmark of ``labelforge stats``: counting throughput against the bare ``cv2.imdecode`` of the same maps.

Builds a set of full-size (1024x2048) label and instance maps (the real Cityscapes PNGs of
shared/cityscapes-samples, byte for byte, when present; always also procedural street scenes), then
times, in the same run and on the same files, (a) ``compute_stats`` through the fast codec
(imagecodecs), (b) ``compute_stats`` through OpenCV (what stats did before the codec layer), and (c)
nothing but ``cv2.imdecode`` of the PNGs that stats reads. The ratio of map throughputs (a)/(c) is
the figure that matters (goal >= 1.25: stats reads faster than bare OpenCV can decode); (b)/(c) is
the old figure (0.86-0.89). The three are interleaved and each figure is the best of a few repeats,
because the machine is shared.

Example:
    python -m bench.run --quick --only stats
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from cityscapes_tools.instances import encode_instance

__all__ = ["run", "make_maps"]

H, W = 1024, 2048


def make_maps(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A plausible street-scene (label, instance) pair: sky, skyline, vegetation, road, objects, ego car."""
    lab = np.full((H, W), 23, np.uint8)  # sky
    inst = np.zeros((H, W), np.int32)
    # skyline of buildings with random roof heights, walls and fences in front of some
    x = 0
    while x < W:
        w = int(rng.integers(80, 300))
        top = int(rng.integers(60, 420))
        lab[top:560, x : x + w] = rng.choice([11, 11, 11, 12, 21])
        x += w
    for _ in range(int(rng.integers(2, 6))):  # trees: irregular polygons
        cx, cy = int(rng.integers(0, W)), int(rng.integers(150, 500))
        ang = np.sort(rng.uniform(0, 2 * np.pi, 14))
        rad = rng.uniform(60, 180, 14)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(lab, [pts], 21)
    # road and sidewalks in perspective, terrain at the far sides
    cv2.fillPoly(lab, [np.array([[0, 1024], [0, 700], [900, 540], [1150, 540], [2048, 700], [2048, 1024]])], 8)
    cv2.fillPoly(lab, [np.array([[250, 1024], [920, 545], [1130, 545], [1800, 1024]])], 7)
    cv2.fillPoly(lab, [np.array([[0, 700], [0, 640], [600, 560], [700, 560]])], 22)
    cv2.line(lab, (930, 600), (1010, 1024), 13, 3)  # lane-side fence
    # poles, signs and lights
    for _ in range(int(rng.integers(4, 12))):
        px, top = int(rng.integers(0, W)), int(rng.integers(150, 400))
        cv2.rectangle(lab, (px, top), (px + int(rng.integers(4, 14)), int(rng.integers(560, 760))), 17, -1)
        cv2.rectangle(lab, (px - 10, top), (px + 20, top + 30), int(rng.choice([19, 20])), -1)
    # instances: cars, people, bicycles, with id*1000+k; later ones occlude earlier ones
    inst[:] = lab
    for cls, n, size in ((26, int(rng.integers(3, 14)), (120, 70)), (24, int(rng.integers(0, 8)), (25, 70))):
        for k in range(n):
            w, h = (np.array(size) * rng.uniform(0.5, 2.5)).astype(int)
            x0, y0 = int(rng.integers(0, W - w)), int(rng.integers(480, 900))
            pts = np.array([[x0, y0 + h], [x0, y0 + h // 3], [x0 + w // 5, y0], [x0 + 4 * w // 5, y0],
                            [x0 + w, y0 + h // 3], [x0 + w, y0 + h]])  # fmt: skip
            cv2.fillPoly(lab, [pts], cls)
            cv2.fillPoly(inst, [pts], encode_instance(cls, k))
    lab[940:] = 1  # ego vehicle
    inst[940:] = 1
    lab[:, :6] = lab[:, -6:] = 3  # out of roi
    inst[:, :6] = inst[:, -6:] = 3
    return lab, inst


REAL = Path(__file__).resolve().parents[2] / "shared" / "cityscapes-samples"


def _write_synthetic(root: Path, n: int, seed: int = 0) -> list[Path]:
    from cityscapes_tools.writer import write_sample

    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        lab, inst = make_maps(rng)
        p = write_sample(root, "train", f"bench_{i // 100:06d}_{i:06d}", label=lab, instance=inst, color=False)
        files += [p.label, p.instance]
    return files


def _copy_real(root: Path, n: int) -> list[Path]:
    """n samples made of the real Cityscapes PNGs, byte for byte (as distributed, repeated under new keys)."""
    labels = sorted((REAL / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))
    files = []
    for i in range(n):
        src = labels[i % len(labels)]
        dst = root / "gtFine" / "train" / "bench" / f"bench_{i // 100:06d}_{i:06d}_gtFine_labelIds.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
        inst = dst.with_name(dst.name.replace("labelIds", "instanceIds"))
        inst.write_bytes(Path(str(src).replace("labelIds", "instanceIds")).read_bytes())
        files += [dst, inst]
    return files


def _decode(paths: Sequence[Path]) -> int:
    for p in paths:
        cv2.imdecode(np.frombuffer(Path(p).read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    return len(paths)


def _decode_parallel(paths: Sequence[Path], workers: int) -> None:
    # The same pool set-up and chunking as the stats reader, so only the counting differs.
    ctx = multiprocessing.get_context("forkserver")
    size = max(1, min(16, len(paths) // (workers * 8) or 1))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        list(pool.map(_decode, chunks))


def _clock(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU is this process's only (one-process measurements)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _measure(root: Path, files: list[Path], repeats: int, workers: int, parallel: bool) -> dict[str, float]:
    from cityscapes_tools import io as csio
    from labelforge.stats import StatsConfig, compute_stats

    n = len(files) // 2
    labels = files[0::2]
    _decode(files)  # page cache warm for everybody
    out: dict[str, float] = {}

    def stats(instances: bool, j: int, codec: str = "auto") -> Callable[[], object]:
        def go() -> object:
            before = csio.codec()
            csio.set_codec(codec)
            try:
                return compute_stats(StatsConfig(sources=(root,), instances=instances, workers=j))
            finally:
                csio.set_codec(before)

        return go

    # one process: label maps only, then label + instance maps (the default when a dataset has instanceIds);
    # bare cv2 decode, stats through imagecodecs and stats through cv2 interleaved, so noise hits all alike.
    # Wall time as before, and the process's CPU time, which other agents' load on the cores disturbs less.
    for suffix, instances, dec_files in (("", False, labels), ("_with_instances", True, files)):
        runs: dict[str, list[tuple[float, float]]] = {"dec": [], "st": [], "cv": []}
        for _ in range(repeats):
            runs["dec"].append(_clock(lambda f=dec_files: _decode(f)))
            runs["st"].append(_clock(stats(instances, 1)))
            runs["cv"].append(_clock(stats(instances, 1, "cv2")))
        wall = {k: min(t[0] for t in v) for k, v in runs.items()}
        cpu = {k: min(t[1] for t in v) for k, v in runs.items()}
        out[f"decode{suffix}_maps_per_s"] = n / wall["dec"]
        out[f"stats{suffix}_maps_per_s"] = n / wall["st"]
        ratio = "stats_vs_decode_throughput_ratio" if not suffix else "stats_vs_decode_with_instances_ratio"
        out[ratio] = wall["dec"] / wall["st"]
        out[f"{ratio}_cpu"] = cpu["dec"] / cpu["st"]
        out[f"stats_cv2_codec_vs_decode{suffix}_ratio"] = wall["dec"] / wall["cv"]
        out[f"stats_cv2_codec_vs_decode{suffix}_ratio_cpu"] = cpu["dec"] / cpu["cv"]
    out["decode_label_ms_per_map"] = 1e3 / out["decode_maps_per_s"]

    # all cores, worker processes (the CLI default), label + instance maps; pool start-up included in both
    if parallel and workers > 1:
        t_dec, t_st = [], []
        for _ in range(repeats):
            t_dec.append(_best(lambda: _decode_parallel(files, workers), 1))
            t_st.append(_best(stats(True, workers), 1))
        out["decode_parallel_maps_per_s"] = n / min(t_dec)
        out["stats_parallel_maps_per_s"] = n / min(t_st)
        out["stats_vs_decode_parallel_ratio"] = min(t_dec) / min(t_st)
    return out


def run(quick: bool) -> dict[str, float]:
    from labelforge.stats.count import count_instances, count_label

    n = 16 if quick else 48
    repeats = 3 if quick else 5
    workers = os.cpu_count() or 1
    real = (REAL / "gtFine" / "train").is_dir()
    cv2.setNumThreads(1)  # decoding is single-threaded; keep the histogram so too, for a fair ratio
    out: dict[str, float] = {"maps": n, "height_px": H, "width_px": W, "workers": workers, "real_maps": float(real)}
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as tmp:
        # Headline figures: real Cityscapes PNGs when they are present, else the synthetic maps.
        if real:
            files = _copy_real(Path(tmp) / "real", n)
            out.update(_measure(Path(tmp) / "real", files, repeats, workers, parallel=True))
        synth = _write_synthetic(Path(tmp) / "synth", n)
        figures = _measure(Path(tmp) / "synth", synth, repeats, workers, parallel=not real)
        out.update(figures if not real else {f"synthetic_{k}": v for k, v in figures.items()})
        files = files if real else synth

        # the counting alone, per map, on maps already decoded
        lab = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(files[1]), cv2.IMREAD_UNCHANGED)
        per = 20
        out["count_label_ms_per_map"] = 1e3 * _best(lambda: [count_label(lab, "x") for _ in range(per)], repeats) / per
        out["count_instances_ms_per_map"] = (
            1e3 * _best(lambda: [count_instances(inst, "x") for _ in range(per)], repeats) / per
        )
        out["np_bincount_label_ms_per_map"] = (
            1e3 * _best(lambda: [np.bincount(lab.ravel(), minlength=256) for _ in range(per)], repeats) / per
        )
        out["label_png_kib"] = sum(p.stat().st_size for p in files[0::2]) / n / 1024
    return {k: round(float(v), 4) for k, v in out.items()}


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
