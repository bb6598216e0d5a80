"""Speed of the metrics core and of ``labelforge evaluate``.

Figures: confusion-matrix updates in megapixels/s (numpy, torch on CPU, torch on CUDA when there is
one), evaluate's samples/s on Cityscapes-sized maps, and evaluate's time over the time of merely
decoding the same ground-truth and prediction PNGs (the goal is close to 1: decoding dominates).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from cityscapes_tools.io import read_png, write_png
from cityscapes_tools.writer import write_sample
from labelforge.evaluate import EvaluateConfig, evaluate_predictions
from labelforge.seg.metrics import ConfusionMatrix

__all__ = ["run"]

IDS = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33], np.uint8)


def _blocky(rng: np.random.Generator, h: int, w: int, values: np.ndarray) -> np.ndarray:
    """A label map of 32x32 blocks (compresses like a real one, unlike per-pixel noise)."""
    small = rng.choice(values, size=(h // 32, w // 32))
    return np.kron(small, np.ones((32, 32), np.uint8)).astype(np.uint8)


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def run(quick: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    h, w = (256, 512) if quick else (1024, 2048)
    gt = rng.integers(0, 19, size=(h, w), dtype=np.uint8)
    gt[rng.random((h, w)) < 0.1] = 255
    pred = rng.integers(0, 19, size=(h, w)).astype(np.int64)
    mpix = h * w / 1e6
    repeat = 3 if quick else 10
    out: dict[str, float] = {}
    cm = ConfusionMatrix(19)
    out["confusion_numpy_mpix_per_s"] = mpix / _time(lambda: cm.update(gt, pred), repeat)
    try:
        import torch

        tg, tp = torch.from_numpy(gt), torch.from_numpy(pred)
        out["confusion_torch_cpu_mpix_per_s"] = mpix / _time(lambda: cm.update(tg, tp), repeat)
        if torch.cuda.is_available():
            cg, cp = tg.cuda(), tp.cuda()

            def on_gpu() -> None:
                cm.update(cg, cp)
                torch.cuda.synchronize()

            out["confusion_torch_cuda_mpix_per_s"] = mpix / _time(on_gpu, repeat * 10)
    except ImportError:
        pass

    n = 4 if quick else 16
    with tempfile.TemporaryDirectory() as tmp:
        root, preds = Path(tmp) / "data", Path(tmp) / "preds"
        keys = [f"bench_000000_{i:06d}" for i in range(n)]
        files = []
        for k in keys:
            label = _blocky(rng, h, w, IDS)
            noisy = label.copy()
            noisy[rng.random((h, w)) < 0.05] = 7
            p = write_sample(root, "val", k, label=label, color=False)
            write_png(preds / f"{k}_pred_labelIds.png", noisy)
            files += [p.label, preds / f"{k}_pred_labelIds.png"]

        def decode_only() -> None:
            for f in files:
                read_png(f)

        t_decode = _time(decode_only, 1)
        counter = iter(range(100))

        def evaluate() -> None:
            cfg = EvaluateConfig(pred_dir=preds, root=root, out=Path(tmp) / f"e{next(counter)}", workers=1)
            evaluate_predictions(cfg)

        t_eval = _time(evaluate, 1)
    out["evaluate_samples_per_s_1_worker"] = n / t_eval
    out["evaluate_vs_decode_ratio"] = t_eval / t_decode
    return {k: round(v, 3) for k, v in out.items()}
