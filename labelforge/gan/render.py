"""Render label shards into image shards with a trained generator (pix2pixHD or OASIS) or the oracle.

The pipeline keeps the device busy: DataLoader workers read and resize label maps (uint8, NEAREST)
into pinned memory; the device builds the one-hot input, runs the generator under
``inference_mode`` and autocast (CUDA), and converts to uint8 itself; a background thread compresses
and writes the shards, so compute never waits on disk. Batches never straddle a shard, so a resumed
or multi-process run forms exactly the batches of a single uninterrupted one.

Under ``torchrun`` rank r renders input shards ``[r*n/W, (r+1)*n/W)`` into files of the same names;
rank 0 writes the final manifest after a barrier.

The checkpoint's format tag names its architecture (:mod:`labelforge.gan.archs`), whose loader builds
the renderer. A stochastic renderer (OASIS, the oracle painter) can give ``renders_per_map`` K photos of
every map: output sample ``i*K + k`` is map ``i``'s ``k``-th render, keyed ``<key>-k<k>`` when K > 1,
with its noise ``(seed, k)`` in the provenance. ``composite`` keeps the base map's real photo outside
the pasted regions (:mod:`labelforge.gan.composite`).

Example:
    >>> from labelforge.gan.config import RenderConfig  # doctest: +SKIP
    >>> from labelforge.gan.render import render_shards  # doctest: +SKIP
    >>> r = render_shards("out/compose", "out/render", RenderConfig(), generator="runs/gen")  # doctest: +SKIP
    >>> r.total, r.rendered  # doctest: +SKIP
    (300, 300)
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._lock import output_lock
from .._runtime import all_reduce_sum, amp_dtype, autocast, barrier, distributed, to_host_async
from ..errors import InputError, LabelforgeError
from ..labelspace import LabelSpace
from ..progress import NullProgress, Progress
from ..shards import EncodedSample, ShardSet, ShardWriter
from .checkpoint import checkpoint_arch, checkpoint_path, load_checkpoint, pix2pixhd_from_checkpoint
from .composite import open_composite_source
from .config import RenderConfig
from .inputs import make_input, to_uint8_hwc
from .render_batches import RenderBatches, rank_slice, render_key, shard_batches

__all__ = [
    "RenderResult",
    "render_shards",
    "GeneratorRenderer",
    "RenderBatches",
    "pix2pixhd_renderer",
    "rank_slice",
    "shard_batches",
    "render_key",
]


@dataclass(frozen=True)
class RenderResult:
    out: Path
    total: int  # samples in the output
    rendered: int  # samples rendered now by all processes (0 when everything was already done)
    height: int
    width: int
    seconds: float
    preview: Path | None
    is_main: bool = True  # False in the other ranks of a torchrun job (the CLI prints only rank 0's result)


class GeneratorRenderer:
    """A pix2pixHD generator on its device: (B, H, W) uint8 labels + int32 instances -> (B, H, W, 3) uint8
    images. It draws no noise, so ``index`` and ``k`` (the OASIS renderer's) are accepted and ignored."""

    def __init__(self, model: torch.nn.Module, num_ids: int, device: torch.device, cfg: RenderConfig) -> None:
        self.num_ids, self.device = num_ids, device
        self.dtype = amp_dtype(device, cfg.amp_dtype)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = model.to(device).eval().requires_grad_(False).to(memory_format=self.memory_format)
        self.model = torch.compile(model) if cfg.compile else model

    @torch.inference_mode()
    def render(
        self, label: torch.Tensor, instance: torch.Tensor, index: torch.Tensor | None = None, k: int = 0
    ) -> torch.Tensor:
        """The (B, H, W, 3) uint8 images on the device; on a GPU this returns as soon as the work is queued."""
        nb = self.device.type == "cuda"  # pinned host memory copies asynchronously to a GPU
        label = label.to(self.device, non_blocking=nb)
        instance = instance.to(self.device, non_blocking=nb)
        inp = make_input(label, instance, self.num_ids).contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.dtype):
            out = self.model(inp)
        return to_uint8_hwc(out)

    def submit(
        self, label: torch.Tensor, instance: torch.Tensor, index: torch.Tensor | None = None, k: int = 0
    ) -> Callable[[], np.ndarray]:
        """Start rendering a batch; the returned function waits for it and gives the uint8 images.

        On a GPU this returns as soon as the work is queued, so the caller can hand the previous
        batch to the writer while the device computes; on the CPU the work is done on return.
        """
        return to_host_async(self.render(label, instance, index, k))

    def __call__(self, label: torch.Tensor, instance: torch.Tensor) -> np.ndarray:
        """(B, H, W) labels + instances -> (B, H, W, 3) uint8 images, synchronously."""
        return self.submit(label, instance)()


def pix2pixhd_renderer(
    ck: dict[str, Any], label_space: LabelSpace, device: torch.device, cfg: RenderConfig, path: Path
) -> GeneratorRenderer:
    """The renderer of a pix2pixHD checkpoint (the architecture registry's loader)."""
    return GeneratorRenderer(pix2pixhd_from_checkpoint(ck, path), label_space.num_ids, device, cfg)


class _BackgroundWriter:
    """Writes batches into a ShardWriter from a thread; the queue is short so memory stays bounded.

    Encoding a sample (deflate, class counts) is most of a write's CPU and runs without the GIL, so
    with ``encoders > 1`` a thread pool encodes each batch as soon as it is handed over while this
    thread stores finished samples in order: at 512x1024 one thread stores ~140 images/s but
    encodes only ~180, less than a GPU renders. With one encoder (CPU runs, whose cores the
    generator already fills) the writer thread encodes inline.
    """

    def __init__(self, writer: ShardWriter, encoders: int = 1, depth: int = 4) -> None:
        self.writer = writer
        self.q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.pool = ThreadPoolExecutor(encoders, thread_name_prefix="shard-encode") if encoders > 1 else None
        self.thread = threading.Thread(target=self._run, name="shard-writer", daemon=True)
        self.thread.start()

    def _encode(self, batch: dict[str, Any], images: np.ndarray, j: int) -> EncodedSample:
        return self.writer.encode(batch["label"][j].numpy(), batch["instance"][j].numpy(), images[j])

    def _run(self) -> None:
        while (job := self.q.get()) is not None:
            if self.error is not None:
                continue  # drain after a failure so the producer never blocks
            try:
                batch, images, futures = job
                for j, idx in enumerate(batch["index"].tolist()):
                    enc = futures[j].result() if futures else self._encode(batch, images, j)
                    self.writer.write(idx, key=batch["key"][j], provenance=batch["provenance"][j], encoded=enc)
            except BaseException as exc:  # re-raised in the main thread by put()/close()
                self.error = exc

    def put(self, batch: dict[str, Any], images: np.ndarray) -> None:
        self._check()
        futures = [self.pool.submit(self._encode, batch, images, j) for j in range(len(images))] if self.pool else None
        self.q.put((batch, images, futures))

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.pool is not None:
            self.pool.shutdown()
        self._check()

    def _check(self) -> None:
        if self.error is not None:
            raise self.error


def _loader_workers(cfg: RenderConfig, device: torch.device) -> int:
    """Loader processes: ``cfg.workers``, or by default one per core for the oracle (its painter runs
    in the loader, so they are the renderers), none for a generator on the CPU (they would take its
    cores) and 2 beside a GPU."""
    if cfg.workers is not None:
        return cfg.workers
    if cfg.oracle:
        return os.cpu_count() or 1
    return 0 if device.type == "cpu" else 2


def _encoders(cfg: RenderConfig, device: torch.device) -> int:
    """Encoder threads: ``cfg.encoders``, or by default one on the CPU (the generator already uses every
    core) and up to 8, half the cores, beside a GPU."""
    if cfg.encoders > 0:
        return cfg.encoders
    return 1 if device.type == "cpu" else max(1, min(8, (os.cpu_count() or 1) // 2))


def _check_generator(ck: dict[str, Any], gen_cfg: Any, ss: ShardSet, path: Path) -> None:
    ls = ss.label_space
    want = gen_cfg.input_nc(ls.num_ids)
    if int(ck["input_nc"]) != want:
        raise InputError(
            path,
            f"generator takes {ck['input_nc']} input channels but the shards' label space {ls.name!r} gives {want}"
            f" ({ls.num_ids} ids + boundary map)",
        )
    if ck["label_space_fingerprint"] != ls.fingerprint:
        raise InputError(
            path,
            f"generator was trained for label space {ck['label_space']['name']!r} ({ck['label_space_fingerprint']})"
            f" but the shards use {ls.name!r} ({ls.fingerprint})",
        )


@dataclass
class _Renderer:
    """What renders a run's batches: a generator (None: the oracle painter, which paints in the loader),
    the output size and what the output config records of it."""

    model: Any  # GeneratorRenderer | OasisRenderer | None
    size: tuple[int, int]
    info: dict[str, Any]
    stochastic: bool  # draws noise: a map's renders differ, and their provenance records the noise


def _renderer(generator: str | Path | None, ss: ShardSet, device: torch.device, cfg: RenderConfig) -> _Renderer:
    """The renderer of ``generator`` (its architecture from the checkpoint's format tag), or the oracle.

    Only what decides the pixels is recorded, so a resume may change batch size or workers.
    """
    if generator is None:
        info = {"renderer": "oracle", "painter": "cityscapes_tools.synth.painter.paint", "precision": "uint8"}
        out = _Renderer(None, (ss.height, ss.width), info, stochastic=True)
    else:
        ck_path = checkpoint_path(generator)
        ck = load_checkpoint(ck_path)
        arch = checkpoint_arch(ck)
        _check_generator(ck, arch.config_from_dict(ck["generator_config"]), ss, ck_path)
        if cfg.renders_per_map > 1 and not arch.stochastic:
            raise InputError(
                ck_path,
                f"--renders-per-map {cfg.renders_per_map}: a {arch.name} generator draws no noise, so every render of"
                " a map would be the same photo; use an OASIS generator (or --oracle)",
            )
        model = arch.renderer_loader()(ck, ss.label_space, device, cfg, ck_path)
        info = {
            "renderer": arch.name,
            "generator": str(ck_path.resolve()),
            "generator_epoch": int(ck["epoch"]),
            "generator_step": int(ck["step"]),
            "generator_config": ck["generator_config"],
            # What the generator was trained on: train-eval refuses a generator that saw its val photos.
            "generator_data": {
                "root": (ck.get("data") or {}).get("root"),  # None: a checkpoint older than this record
                "split": ck["train_config"].get("split"),
            },
            "precision": str(model.dtype or torch.float32).removeprefix("torch."),
        }
        out = _Renderer(model, (int(ck["size"][0]), int(ck["size"][1])), info, arch.stochastic)
    out.info |= {
        "height": out.size[0],
        "width": out.size[1],
        "seed": cfg.seed,
        "compress_images": cfg.compress_images,
        "labelspace_fingerprint": ss.label_space.fingerprint,
        "renders_per_map": cfg.renders_per_map,
    }
    return out


def _render_batch(batch: dict[str, Any], r: _Renderer, renders: int, device: torch.device) -> torch.Tensor:
    """(B * K, H, W, 3) uint8 renders of a batch, map i's k-th at row i*K + k, composited when the batch
    carries base photos (on the renderer's device; the oracle's photos stay on the CPU)."""
    outs = []
    for k in range(renders):
        if r.model is None:
            img = batch["image"][:, k]  # the oracle painted it in the loader
        else:
            img = r.model.render(batch["label"], batch["instance"], batch["index"], k)
        if "alpha" in batch:
            nb = img.device.type == "cuda"
            alpha = batch["alpha"].to(img.device, non_blocking=nb).unsqueeze(-1)  # (B, H, W, 1)
            base = batch["base_image"].to(img.device, non_blocking=nb).float()
            # Exact where alpha is 0 (the base photo's pixels) and where it is 1 (the render's).
            img = (alpha * img.float() + (1 - alpha) * base).round_().to(torch.uint8)
        outs.append(img)
    return outs[0] if renders == 1 else torch.stack(outs, 1).flatten(0, 1)


def _expand(batch: dict[str, Any], renders: int, noise_seed: int | None) -> dict[str, Any]:
    """The writer's view of a batch of K renders per map: output indices, keys, maps repeated, and the
    provenance extended by each render's noise (``noise_seed`` None: a renderer without noise)."""
    if renders == 1 and noise_seed is None:
        return batch
    index = batch["index"].tolist()
    provenance = []
    for p in batch["provenance"]:
        for k in range(renders):
            if noise_seed is None:
                provenance.append(p)
            else:
                provenance.append(json.dumps({**json.loads(p or "{}"), "noise": {"seed": noise_seed, "k": k}}))
    return {
        "index": torch.tensor([i * renders + k for i in index for k in range(renders)]),
        "key": [render_key(key, k, renders) for key in batch["key"] for k in range(renders)],
        "provenance": provenance,
        "label": batch["label"].repeat_interleave(renders, 0),
        "instance": batch["instance"].repeat_interleave(renders, 0),
    }


def _render_batches(
    loader: Any, r: _Renderer, cfg: RenderConfig, writer: ShardWriter, task: Any, device: torch.device, encoders: int
) -> None:
    """Render each batch and hand the one before it to the writer thread (one batch in flight)."""
    bg = _BackgroundWriter(writer, encoders)
    renders = cfg.renders_per_map
    # Noise is recorded per sample for generators that draw it, and for the oracle's extra renders.
    noise_seed = cfg.seed if (r.stochastic and (r.model is not None or renders > 1)) else None
    pending: tuple[dict[str, Any], Callable[[], np.ndarray]] | None = None
    try:
        for batch in loader:
            result = to_host_async(_render_batch(batch, r, renders, device))
            if pending is not None:  # batch k goes to the writer while the device renders k + 1
                bg.put(pending[0], pending[1]())
                task.advance(len(pending[0]["key"]))
            pending = (_expand(batch, renders, noise_seed), result)
        if pending is not None:
            bg.put(pending[0], pending[1]())
            task.advance(len(pending[0]["key"]))
            pending = None
    finally:
        if pending is not None and bg.error is None:  # rendered before a failure: keep it
            bg.put(pending[0], pending[1]())
        bg.close()  # on failure too: batches already rendered still complete their shards


def _check_oracle_space(ss: ShardSet) -> None:
    """The oracle painter knows the Cityscapes ids only: on maps of another label space it would paint
    every class in the colours of whatever Cityscapes class shares its id."""
    from ..labelspace import get_label_space

    if ss.label_space.fingerprint != get_label_space("cityscapes").fingerprint:
        raise InputError(
            ss.path / "manifest.json",
            f"--oracle paints the mini-Cityscapes' Cityscapes label space; these maps use label space"
            f" {ss.label_space.name!r}: render them with a trained generator",
        )


def render_shards(
    shards: str | Path,
    out: str | Path,
    cfg: RenderConfig,
    *,
    generator: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> RenderResult:
    """Render every label map of ``shards`` into ``out`` (one output shard per input shard).

    ``generator`` is a run dir or checkpoint file; ``cfg.oracle`` paints with the mini-Cityscapes
    painter instead. ``cfg.renders_per_map`` K gives K photos per map (output shards hold K times the
    samples); ``cfg.composite`` keeps the base photos outside the pasted regions. Run under
    ``torchrun --nproc-per-node N`` to split the shards over N processes.
    """
    t0 = time.perf_counter()
    if (generator is None) != cfg.oracle:
        raise LabelforgeError("give either a generator checkpoint or the oracle renderer, not both or neither")
    ss = ShardSet(shards)
    if cfg.oracle:
        _check_oracle_space(ss)
    composite = open_composite_source(ss, cfg.composite_dilate, cfg.composite_feather) if cfg.composite else None
    renders = cfg.renders_per_map
    with output_lock(out, "render"), distributed(cfg.device) as (info, device):
        r = _renderer(generator, ss, device, cfg)
        r.info |= {"input": str(Path(shards).resolve()), "composite": composite and composite.record()}
        spp = int(ss.manifest["samples_per_shard"])
        n_shards = -(-len(ss) // spp)
        writer_args = dict(
            label_space=ss.label_space,
            method=ss.method,
            config={**ss.config, "render": r.info},
            seed=ss.seed,
            total=len(ss) * renders,
            height=r.size[0],
            width=r.size[1],
            samples_per_shard=spp * renders,  # output shard j holds the renders of input shard j
            with_image=True,
            deflate_images=cfg.compress_images,
            resume=resume,
            overwrite=overwrite,
            shard_ids=rank_slice(n_shards, info.rank, info.world),
        )
        # Rank 0 prepares (or clears) the folder before the other ranks look into it.
        writer = ShardWriter(out, is_main=True, **writer_args) if info.is_main else None
        barrier()
        writer = writer or ShardWriter(out, is_main=False, **writer_args)
        todo = sorted({j // renders for j in writer.pending()})  # the maps whose renders are missing
        batches = RenderBatches(
            ss, shard_batches(todo, spp, cfg.batch_size), r.size, cfg.oracle, cfg.seed, renders, composite
        )
        loader = torch.utils.data.DataLoader(
            batches,
            batch_size=None,
            shuffle=False,
            num_workers=_loader_workers(cfg, device),
            pin_memory=device.type == "cuda",
        )
        bar = (progress or NullProgress()) if info.is_main else NullProgress()
        preview = None
        with writer, bar.task("render", total=len(todo) * renders) as task:
            _render_batches(loader, r, cfg, writer, task, device, _encoders(cfg, device))
            barrier()
            if info.is_main and cfg.preview:
                writer.collect()
                preview = _write_preview(Path(out), cfg.preview, renders)
        # Also a barrier: rank 0 has finished the manifest when this returns.
        rendered = int(all_reduce_sum([len(todo) * renders], device)[0])
        return RenderResult(Path(out), len(ss) * renders, rendered, r.size[0], r.size[1], time.perf_counter() - t0,
                            preview, info.is_main)  # fmt: skip


def _write_preview(out: Path, n: int, renders: int = 1) -> Path:
    """``preview.png``: the first ``n`` maps, each as its composed label beside its renders (at most 4)."""
    from ..preview import save_grid

    ss = ShardSet(out, require_complete=False, verify=False)  # just written
    shown = min(renders, 4)
    rows, caps = [], []
    for i in range(min(n, len(ss) // renders)):
        first = ss[i * renders]
        rows.append([ss.label_space.palette[first["label"]], first["image"]])
        rows[-1] += [ss[i * renders + k]["image"] for k in range(1, shown)]
        head = ["composed label", "rendered"] if renders == 1 else ["composed label"] + [f"k={k}" for k in range(shown)]
        caps.append(head if i == 0 else [""] * len(head))
    ss.close()
    return save_grid(out / "preview.png", rows, caps, cell_width=min(max(ss.width, 256), 512))
