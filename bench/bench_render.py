"""Render throughput and pipeline overhead of ``labelforge render``; generator FLOPs per preset.

``render_overhead_ratio`` = wall time of the whole render call (open shards, load the checkpoint,
read batches, one-hot on the device, uint8 conversion, background shard writing, manifest) divided
by the bare generator forward passes over the same batches on the same device, inputs prebuilt;
the median over several render/bare pairs run back to back (``..._spread``: max - min of them).
Goal: <= 1.10 with the tiny preset on the CPU. It is measured with in-process loading (workers 0)
and with one loader process (``..._workers1``): on a 2-core CPU a loader process takes cores
from the generator, on a GPU machine it keeps the device fed. With CUDA present, ``run`` also measures the 512p
GlobalGenerator at 512x1024 in bf16 (eager / channels_last / torch.compile) against its FLOP count.
``render_writer_512x1024_*`` is the background writer's own ceiling at the 512p output size, the
limit a GPU render meets once the device outruns the CPU side.

Example:
    python -m bench.run --only render --quick
    python -m bench.bench_render --gpu-only --compile   # images/s at 512x1024 on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cityscapes_tools.instances import encode_instance
from labelforge.gan.checkpoint import save_checkpoint
from labelforge.gan.config import GeneratorConfig, RenderConfig
from labelforge.gan.flops import generator_flops, preset_flops
from labelforge.gan.inputs import make_input
from labelforge.gan.networks import build_generator
from labelforge.gan.presets import get_preset
from labelforge.gan.render import RenderBatches, render_shards, shard_batches
from labelforge.labelspace import get_label_space
from labelforge.shards import ShardSet, ShardWriter

__all__ = ["run", "gpu_figures"]


def _label_shards(out: Path, n: int, h: int, w: int, spp: int) -> Path:
    """Street-like label maps (sky, buildings, road, a few cars) so compression sees real structure."""
    ls = get_label_space("cityscapes")
    rng = np.random.default_rng(0)
    with ShardWriter(out, label_space=ls, method="bench", config={}, seed=0, total=n, height=h, width=w,
                     samples_per_shard=spp) as wr:  # fmt: skip
        for i in range(n):
            label = np.full((h, w), 23, np.uint8)
            hz = int(h * rng.uniform(0.35, 0.55))
            label[int(h * 0.15) : hz] = 11
            label[hz:] = 7
            inst = label.astype(np.int32)
            for k in range(3):
                y, x = int(rng.integers(hz, h - h // 6)), int(rng.integers(0, w - w // 6))
                label[y : y + h // 6, x : x + w // 6] = 26
                inst[y : y + h // 6, x : x + w // 6] = encode_instance(26, k)
            wr.write(i, key=f"bench_000000_{i:06d}", label=label, instance=inst, provenance={"i": i})
    return out


def _bare_inputs(shards: Path, size: tuple[int, int], batch: int) -> list[torch.Tensor]:
    """The generator inputs of render's batches, built beforehand so only the forward passes are timed."""
    ss = ShardSet(shards)
    batches = RenderBatches(ss, shard_batches(list(range(len(ss))), int(ss.manifest["samples_per_shard"]), batch), size)
    return [make_input(b["label"], b["instance"], ss.label_space.num_ids) for b in batches]


def _bare_forward_s(model: torch.nn.Module, inputs: list[torch.Tensor]) -> float:
    """Seconds of the generator forward passes alone."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        for x in inputs:
            model(x)
        return time.perf_counter() - t0


def run(quick: bool = True) -> dict[str, float]:
    """CPU figures with the tiny preset, FLOPs per preset, and GPU figures when CUDA is present."""
    from labelforge.compose.run import ComposeConfig

    gen, cfg = get_preset("tiny")
    h, w = cfg.height, cfg.width
    n, batch, reps = (128, 8, 5) if quick else (512, 8, 7)
    spp = ComposeConfig.samples_per_shard  # shards as compose writes them by default
    ls = get_label_space("cityscapes")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        shards = _label_shards(tmp_p / "shards", n, h, w, spp=spp)
        torch.manual_seed(0)
        model = build_generator(gen, ls.num_ids)
        ck = save_checkpoint(tmp_p / "gen.pt", generator=model, discriminator=None, optimizers={}, epoch=0, step=0,
                             gen_cfg=gen, train_cfg=cfg, label_space=ls)  # fmt: skip
        inputs = _bare_inputs(shards, (h, w), batch)
        model.eval()
        _bare_forward_s(model, inputs[:2])  # warm-up (allocator, kernels)
        # In-process loading (workers 0) and one loader process (workers 1), each timed right next to
        # a bare pass, and the ratio of each pair kept: the machines are shared and their speed drifts
        # by 10-20% over seconds, which a ratio of neighbours cancels and a median of them ignores.
        times: dict[str, list[float]] = {"w0": [], "w1": [], "bare": []}
        ratios: dict[str, list[float]] = {"w0": [], "w1": []}
        for wk in (0, 1):  # all workers-0 pairs first: a loader process's start-up stays out of them
            for r in range(reps):
                rcfg = RenderConfig(batch_size=batch, device="cpu", workers=wk, preview=0)
                t0 = time.perf_counter()
                render_shards(shards, tmp_p / f"out{r}-{wk}", rcfg, generator=ck)
                times[f"w{wk}"].append(time.perf_counter() - t0)
                times["bare"].append(_bare_forward_s(model, inputs))
                ratios[f"w{wk}"].append(times[f"w{wk}"][-1] / times["bare"][-1])
    figures["render_tiny_cpu_images_per_s"] = n / min(times["w0"])
    figures["render_tiny_cpu_workers1_images_per_s"] = n / min(times["w1"])
    figures["render_tiny_cpu_bare_forward_images_per_s"] = n / min(times["bare"])
    figures["render_overhead_ratio"] = statistics.median(ratios["w0"])
    figures["render_overhead_ratio_workers1"] = statistics.median(ratios["w1"])
    figures["render_overhead_ratio_spread"] = max(ratios["w0"]) - min(ratios["w0"])
    for name, flops in preset_flops(ls.num_ids).items():
        figures[f"generator_{name}_gflop_per_image"] = flops / 1e9
    figures.update(writer_figures(quick))
    if torch.cuda.is_available():
        figures.update(gpu_figures(quick))
    return figures


def writer_figures(quick: bool = True) -> dict[str, float]:
    """images/s that render's background writer stores at 512x1024 (the 512p output), with one encoder
    thread and with one per core, raw and deflated photos: the ceiling a GPU render runs into.

    Mini-Cityscapes scenes and painted photos, so deflate sees real structure; batches of 8 go in as
    fast as the writer takes them, and the clock stops when the last shard and manifest are on disk.
    """
    import os

    from cityscapes_tools.synth.generate import make_sample
    from labelforge.gan.render import _BackgroundWriter

    ls = get_label_space("cityscapes")
    h, w, batch = 512, 1024, 8
    n = 64 if quick else 128
    scenes = [make_sample(0, "train", i, h, w) for i in range(batch)]
    labels = torch.from_numpy(np.stack([s[0] for s in scenes]))
    instances = torch.from_numpy(np.stack([s[1] for s in scenes]).astype(np.int32))
    images = np.stack([s[2] for s in scenes])
    cores = os.cpu_count() or 1
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for deflate in (False, True):
            for enc in sorted({1, cores}):
                wr = ShardWriter(Path(tmp) / f"w{deflate}{enc}", label_space=ls, method="bench", config={}, seed=0,
                                 total=n, height=h, width=w, samples_per_shard=64, with_image=True,
                                 deflate_images=deflate)  # fmt: skip
                t0 = time.perf_counter()
                with wr:
                    bg = _BackgroundWriter(wr, enc)
                    for b in range(n // batch):
                        idx = torch.arange(b * batch, (b + 1) * batch)
                        bg.put({"label": labels, "instance": instances, "index": idx,
                                "key": [f"bench_000000_{i:06d}" for i in idx.tolist()],
                                "provenance": ["{}"] * batch}, images)  # fmt: skip
                    bg.close()
                name = f"render_writer_512x1024_{'deflated' if deflate else 'raw'}_encoders{enc}_images_per_s"
                out[name] = n / (time.perf_counter() - t0)
    return out


GPU_VARIANTS = ("eager", "channels_last", "compile", "compile_channels_last")


def gpu_figures(quick: bool = True, variants: tuple[str, ...] = GPU_VARIANTS) -> dict[str, float]:
    """images/s of the 512p GlobalGenerator at 512x1024 in bf16 on the first GPU, per variant, and the
    achieved TFLOP/s (FLOPs per image x images/s) to set against the device's peak.
    """
    from labelforge._runtime import autocast

    dev = torch.device("cuda")
    gcfg = GeneratorConfig()
    h, w, batch = 512, 1024, 4
    iters = 5 if quick else 20
    flops = generator_flops(gcfg, 34, h, w)
    out: dict[str, float] = {"generator_512p_gpu_batch": float(batch)}
    for variant in variants:
        torch.manual_seed(0)
        net = build_generator(gcfg, 34).to(dev).eval().requires_grad_(False)
        fmt = torch.channels_last if "channels_last" in variant else torch.contiguous_format
        net = net.to(memory_format=fmt)
        if "compile" in variant:
            net = torch.compile(net)
        label = torch.randint(0, 34, (batch, h, w), dtype=torch.uint8, device=dev)
        x = make_input(label, label.to(torch.int32), 34).contiguous(memory_format=fmt)
        with torch.inference_mode(), autocast(dev, torch.bfloat16):
            for _ in range(3):
                net(x)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(iters):
                net(x)
            torch.cuda.synchronize()
        ips = batch * iters / (time.perf_counter() - t0)
        out[f"generator_512p_bf16_{variant}_images_per_s"] = ips
        out[f"generator_512p_bf16_{variant}_tflop_per_s"] = ips * flops / 1e12
        del net
        torch.cuda.empty_cache()
    return out


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples and repetitions")
    ap.add_argument("--gpu-only", action="store_true", help="only the 512x1024 GPU figures")
    ap.add_argument("--compile", action="store_true", help="with --gpu-only: include the torch.compile variants")
    args = ap.parse_args(argv)
    if args.gpu_only:
        if not torch.cuda.is_available():
            print("no CUDA device", file=sys.stderr)
            return 1
        variants = ("eager", "channels_last") + (("compile", "compile_channels_last") if args.compile else ())
        figures = gpu_figures(args.quick, variants)
    else:
        figures = run(args.quick)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
