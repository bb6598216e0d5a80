"""Speed of both generator architectures (``train-generator --arch pix2pixhd|oasis``), set against
the machine's own measured matrix-multiply rate.

Figures (CPU, the ``tiny`` preset of each architecture at its 64x128 training size, batch 4):

* ``matmul_fp32_gflop_per_s`` — a 1024x1024 fp32 matmul on this machine with all its threads: the
  physical ceiling the other figures are compared with.
* ``{arch}_tiny_train_images_per_s`` — training images/s through the architecture's real trainer
  (``step``: generator and discriminator forward and backward, optimizer updates), on batches
  prebuilt in memory; ``..._train_gflop_per_s`` the FLOPs it did per second (forward + backward,
  counted by ``torch.utils.flop_counter`` on the same step) and ``..._train_of_matmul`` its share of
  the matmul rate.
* ``{arch}_tiny_render_images_per_s`` — forward passes of the generator alone (what ``render`` runs),
  with ``..._render_of_matmul`` likewise.

With CUDA: ``{arch}_{preset}_bf16_512x1024_images_per_s`` — bf16 forward passes at 512x1024 of the
pix2pixHD 512p generator and the OASIS ``cityscapes`` generator, with their TFLOP/s, and the
device's bf16 matmul rate (``matmul_bf16_tflop_per_s``) to compare against.

Example:
    python -m bench.run --only generators --quick
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from labelforge.labelspace import get_label_space

__all__ = ["run", "matmul_flop_per_s"]


def _trainer(arch: str, preset: str, device: torch.device):  # noqa: ANN202 - either trainer
    """The architecture's real trainer for ``preset`` and its training config."""
    if arch == "oasis":
        from labelforge.gan.oasis.config import get_oasis_preset
        from labelforge.gan.oasis.trainer import OasisTrainer

        gen_cfg, train_cfg = get_oasis_preset(preset)
        return OasisTrainer(gen_cfg, train_cfg, get_label_space(), device, 1), train_cfg
    from labelforge.gan.pix2pixhd import Pix2PixHDTrainer
    from labelforge.gan.presets import get_preset

    gen_cfg, train_cfg = get_preset(preset)
    return Pix2PixHDTrainer(gen_cfg, train_cfg, get_label_space(), device, 1), train_cfg


def matmul_flop_per_s(device: torch.device, dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """FLOP/s of repeated n x n matmuls: the best this device does on dense arithmetic."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # best of short bursts: the neighbours' load only slows one down
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0))
    return best


def _flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _batch(batch: int, h: int, w: int, num_ids: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    small = torch.randint(0, num_ids, (batch, h // 8, w // 8), generator=g, dtype=torch.uint8)
    label = small.repeat_interleave(8, 1).repeat_interleave(8, 2)  # blocks, like regions of a map
    image = torch.randint(0, 256, (batch, h, w, 3), generator=g, dtype=torch.uint8)
    return {"label": label, "instance": label.to(torch.int32), "image": image, "index": torch.arange(batch)}


def _items(data: dict[str, torch.Tensor]) -> list[dict[str, object]]:
    """The batch as the items a PairDataset yields (numpy arrays), which ``trainer.render`` takes."""
    n = len(data["index"])
    return [{"label": data["label"][i].numpy(), "instance": data["instance"][i].numpy(), "index": i} for i in range(n)]


def _timed(fn: Callable[[], object], iters: int) -> float:
    """Seconds of one call, the best of ``iters`` after two warm-up calls (first-call allocations, and
    the neighbours' load on a shared machine only ever slows a call down)."""
    fn()
    fn()
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _tiny_cpu(arch_name: str, peak: float, quick: bool) -> dict[str, float]:
    ls = get_label_space()
    trainer, train_cfg = _trainer(arch_name, "tiny", torch.device("cpu"))
    h, w, batch = train_cfg.height, train_cfg.width, 4
    data = _batch(batch, h, w, ls.num_ids)
    iters = 3 if quick else 10
    step_s = _timed(lambda: trainer.step(data), iters)
    step_flops = _flops(lambda: trainer.step(data)) / batch
    items = _items(data)
    render_s = _timed(lambda: trainer.render(items), iters * 2)
    with torch.no_grad():
        render_flops = _flops(lambda: trainer.render(items)) / batch
    out = {
        f"{arch_name}_tiny_train_images_per_s": batch / step_s,
        f"{arch_name}_tiny_train_gflop_per_image": step_flops / 1e9,
        f"{arch_name}_tiny_render_images_per_s": batch / render_s,
        f"{arch_name}_tiny_render_gflop_per_image": render_flops / 1e9,
    }
    out[f"{arch_name}_tiny_train_gflop_per_s"] = out[f"{arch_name}_tiny_train_images_per_s"] * step_flops / 1e9
    out[f"{arch_name}_tiny_train_of_matmul"] = out[f"{arch_name}_tiny_train_gflop_per_s"] * 1e9 / peak
    out[f"{arch_name}_tiny_render_of_matmul"] = out[f"{arch_name}_tiny_render_images_per_s"] * render_flops / peak
    return out


def gpu_figures(quick: bool) -> dict[str, float]:
    """bf16 forward images/s at 512x1024 of pix2pixHD 512p and OASIS ``cityscapes`` on the first GPU."""
    dev = torch.device("cuda")
    ls = get_label_space()
    out = {"matmul_bf16_tflop_per_s": matmul_flop_per_s(dev, torch.bfloat16, n=8192) / 1e12}
    h, w, batch, iters = 512, 1024, 4, 5 if quick else 20
    for arch_name, preset in (("pix2pixhd", "512p"), ("oasis", "cityscapes")):
        trainer, _ = _trainer(arch_name, preset, dev)
        data = _batch(batch, h, w, ls.num_ids)
        items = _items(data)
        trainer.dtype = torch.bfloat16  # render's autocast dtype, as `render --amp-dtype bf16`
        flops = _flops(lambda: trainer.render(items[:1]))  # noqa: B023 - called at once
        sec = _timed(lambda: trainer.render(items), iters)  # noqa: B023
        key = f"{arch_name}_{preset}_bf16_512x1024"
        out[f"{key}_images_per_s"] = batch / sec
        out[f"{key}_tflop_per_s"] = batch / sec * flops / 1e12

        torch.cuda.empty_cache()
    return out


def run(quick: bool = False) -> dict[str, float]:
    torch.manual_seed(0)
    peak = matmul_flop_per_s(torch.device("cpu"), torch.float32)
    out: dict[str, float] = {"matmul_fp32_gflop_per_s": peak / 1e9, "cpu_threads": float(torch.get_num_threads())}
    for arch_name in ("pix2pixhd", "oasis"):
        out.update(_tiny_cpu(arch_name, peak, quick))
    if torch.cuda.is_available():
        out.update(gpu_figures(quick))
    return out
