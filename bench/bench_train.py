"""Speed of PSPNet training (``labelforge train-eval``).

Figures:

* ``train_tiny_cpu_images_per_s`` — training images/s with the tiny preset (ResNet-18, 128x256,
  batch 8, traditional augmentation) on CPU, fed by the real DataLoader (PNG decoding, augmentation,
  worker processes) from a 256x512 dataset of originals and an image shard dir.
* ``loader_overhead_ratio`` — time of the same training steps with the real DataLoader over their
  time on batches preloaded into memory (goal <= 1.10: the loader must not be the bottleneck).
* with CUDA only: ``train_r50_512x1024_bf16_images_per_s`` — PSPNet-R50, 512x1024 crops, bf16
  autocast, batch 8, preloaded batches; and ``..._tflops`` at ~2.3 TFLOP per training image.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cityscapes_tools.writer import write_sample
from labelforge.labelspace import get_label_space
from labelforge.seg.data import MixSampler, PairTransform, TrainData
from labelforge.seg.presets import resolve_config
from labelforge.seg.pspnet import pspnet
from labelforge.seg.sources import check_inputs
from labelforge.seg.train import train_loader, train_step
from labelforge.shards import ShardWriter

__all__ = ["run"]

TFLOP_PER_IMAGE_R50_512x1024 = 2.3


def _scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A street-like label map of 32x32 blocks and a noisy photo coloured by class (PNG-decodes like a real one)."""
    ls = get_label_space()
    ids = np.array([7, 8, 11, 17, 21, 23, 24, 26], np.uint8)
    small = rng.choice(ids, size=(h // 32, w // 32))
    lab = np.kron(small, np.ones((32, 32), np.uint8)).astype(np.uint8)
    img = np.clip(ls.palette[lab].astype(np.int16) + rng.integers(-30, 30, (h, w, 3)), 0, 255).astype(np.uint8)
    return lab, img


def _dataset(base: Path, n: int, h: int, w: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    root = base / "root"
    for split, count in (("train", n), ("val", 2)):
        for i in range(count):
            lab, img = _scene(rng, h, w)
            write_sample(root, split, f"bench_{i:06d}_000019", label=lab, image=img, color=False)
    shards = base / "supp"
    with ShardWriter(
        shards, label_space=get_label_space(), method="bench", config={"classes": []}, seed=0, total=n,
        height=h, width=w, samples_per_shard=16, with_image=True,
    ) as wr:  # fmt: skip
        for i in range(wr.start_index, n):
            lab, img = _scene(rng, h, w)
            wr.write(i, key=f"bsup_{i:06d}_000000", label=lab, instance=lab.astype(np.int32), provenance={}, image=img)
    return root, shards


def _timed_steps(model, opt, batches, device: torch.device) -> float:
    t0 = time.perf_counter()
    for b in batches:
        train_step(model, opt, b["image"], b["label"], device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _tiny_cpu(quick: bool) -> dict[str, float]:
    steps = 3 if quick else 10
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root, shards = _dataset(Path(tmp), 16 if quick else 40, 256, 512)
        cfg = resolve_config("tiny", root=root, out=Path(tmp) / "run", supp=[shards], supp_ratio=0.5, workers=2)
        inputs = check_inputs(cfg)
        data = TrainData(inputs.train, inputs.shards, inputs.label_space, PairTransform(cfg.size, cfg.crop, cfg.aug))
        sampler = MixSampler(data.n_orig, data.n_supp, cfg.seed)
        sampler.set_epoch(0, 0.5, (steps + 1) * cfg.batch_size)
        torch.manual_seed(0)
        model = pspnet(backbone=cfg.backbone, num_classes=inputs.label_space.num_classes)
        opt = torch.optim.SGD(model.param_groups(cfg.lr), lr=cfg.lr, momentum=0.9, weight_decay=1e-4)

        loader = train_loader(data, sampler, cfg, device)
        it = iter(loader)
        first = next(it)
        train_step(model, opt, first["image"], first["label"], device)  # warm-up: threads, allocator, workers
        t0 = time.perf_counter()
        for b in it:
            train_step(model, opt, b["image"], b["label"], device)
        real = time.perf_counter() - t0
        del it, loader  # the workers stop before the preloaded run, as they would not exist there

        preloaded = [data[k] for k in list(sampler)[cfg.batch_size :]]
        batches = [
            {
                "image": torch.stack([p["image"] for p in preloaded[i : i + cfg.batch_size]]),
                "label": torch.stack([p["label"] for p in preloaded[i : i + cfg.batch_size]]),
            }
            for i in range(0, len(preloaded), cfg.batch_size)
        ]
        mem = _timed_steps(model, opt, batches, device)
    return {
        "train_tiny_cpu_images_per_s": steps * cfg.batch_size / real,
        "train_tiny_cpu_preloaded_images_per_s": steps * cfg.batch_size / mem,
        "loader_overhead_ratio": real / mem,
    }


def _r50_cuda(quick: bool) -> dict[str, float]:
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    batch, steps = 8, (5 if quick else 20)
    model = pspnet(backbone="resnet50", num_classes=19).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.param_groups(0.01), lr=0.01, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    b = {
        "image": torch.randint(0, 255, (batch, 3, 512, 1024), dtype=torch.uint8, generator=g).to(device),
        "label": torch.randint(0, 19, (batch, 512, 1024), generator=g).to(device),
    }
    _timed_steps(model, opt, [b] * 3, device)  # warm-up: cudnn autotuning
    seconds = _timed_steps(model, opt, [b] * steps, device)
    ips = steps * batch / seconds
    return {
        "train_r50_512x1024_bf16_images_per_s": ips,
        "train_r50_512x1024_bf16_tflops": ips * TFLOP_PER_IMAGE_R50_512x1024,
    }


def run(quick: bool) -> dict[str, float]:
    out = _tiny_cpu(quick)
    if torch.cuda.is_available():
        out.update(_r50_cuda(quick))
    return out


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True))
