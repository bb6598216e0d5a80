"""Render label shards into image shards with a trained generator (or the mini-Cityscapes oracle).

The pipeline keeps the device busy: DataLoader workers read and resize label maps (uint8, NEAREST)
into pinned memory; the device builds the one-hot input, runs the generator under
``inference_mode`` and autocast (CUDA), and converts to uint8 itself; a background thread compresses
and writes the shards, so compute never waits on disk. Batches never straddle a shard, so a resumed
or multi-process run forms exactly the batches of a single uninterrupted one.

Under ``torchrun`` rank r renders input shards ``[r*n/W, (r+1)*n/W)`` into files of the same names;
rank 0 writes the final manifest after a barrier.

Example:
    >>> from labelforge.gan.config import RenderConfig  # doctest: +SKIP
    >>> from labelforge.gan.render import render_shards  # doctest: +SKIP
    >>> r = render_shards("out/compose", "out/render", RenderConfig(), generator="runs/gen")  # doctest: +SKIP
    >>> r.total, r.rendered  # doctest: +SKIP
    (300, 300)
"""

from __future__ import annotations

import bisect
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

from .._runtime import all_reduce_sum, amp_dtype, autocast, barrier, distributed, to_host_async
from ..errors import InputError, LabelforgeError
from ..progress import NullProgress, Progress
from ..shards import EncodedSample, ShardSet, ShardWriter
from .checkpoint import checkpoint_path, load_generator
from .config import RenderConfig
from .data import resize_label
from .inputs import make_input, to_uint8_hwc

__all__ = ["RenderResult", "render_shards", "GeneratorRenderer", "RenderBatches", "rank_slice", "shard_batches"]


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


def rank_slice(n: int, rank: int, world: int) -> range:
    """Contiguous share of ``n`` shards for ``rank``: ``[rank*n//world, (rank+1)*n//world)``."""
    return range(rank * n // world, (rank + 1) * n // world)


def shard_batches(indices: list[int], samples_per_shard: int, batch_size: int) -> list[list[int]]:
    """Split sorted global ``indices`` into batches of at most ``batch_size`` that stay within one shard."""
    out: list[list[int]] = []
    for i in indices:
        if out and len(out[-1]) < batch_size and out[-1][-1] // samples_per_shard == i // samples_per_shard:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _oracle_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class RenderBatches(torch.utils.data.Dataset):
    """Item ``k``: the samples of ``batches[k]`` (consecutive rows of one shard) at the output size.

    A batch is read as one slice per HDF5 dataset, about 7x less CPU per sample than reading samples
    one by one through :class:`~labelforge.shards.torchdata.ShardDataset`, which matters where workers
    share cores with the generator. Files are opened lazily in each worker process, never before a
    fork. With ``oracle`` the worker also paints each photo, seeded by ``(seed, index)``.
    """

    def __init__(
        self, shards: ShardSet, batches: list[list[int]], size: tuple[int, int], oracle: bool = False, seed: int = 0
    ) -> None:
        self.shards = shards  # pickles without its HDF5 handles; each worker opens its own
        self.starts = [int(e["first_index"]) for e in shards.shards]
        self.batches, self.size, self.oracle, self.seed = batches, size, oracle, seed
        self._meta: tuple[int, dict[str, Any]] | None = None  # (shard, its keys/provenance/index)

    def __len__(self) -> int:
        return len(self.batches)

    def _shard_meta(self, j: int) -> dict[str, Any]:
        """Keys, provenance and index of all of shard ``j``'s rows: string datasets are read once per
        shard rather than once per batch (they cost as much to read as the label maps)."""
        if self._meta is None or self._meta[0] != j:
            count = int(self.shards.shards[j]["count"])
            self._meta = (j, self.shards.read_rows(j, 0, count, ("key", "provenance", "index")))
        return self._meta[1]

    def __getitem__(self, k: int) -> dict[str, Any]:
        idx = self.batches[k]
        j = bisect.bisect_right(self.starts, idx[0]) - 1
        r0, r1 = idx[0] - self.starts[j], idx[-1] - self.starts[j] + 1
        meta = self._shard_meta(j)
        rows = self.shards.read_rows(j, r0, r1, ("label", "instance"))
        labels, instances = rows["label"], rows["instance"].astype(np.int32, copy=False)
        if labels.shape[1:] != self.size:  # nearest resize to the generator's resolution
            labels = np.stack([resize_label(a, self.size) for a in labels])
            instances = np.stack([resize_label(a, self.size) for a in instances])
        index = meta["index"][r0:r1]
        if index.tolist() != idx:
            path = self.shards.path / self.shards.shards[j]["file"]
            raise InputError(path, f"rows {r0}..{r1 - 1} do not hold samples {idx[0]}..{idx[-1]}")
        batch: dict[str, Any] = {
            "label": torch.from_numpy(labels),  # (B, H, W) uint8
            "instance": torch.from_numpy(instances),  # (B, H, W) int32
            "index": torch.from_numpy(index),
            "key": meta["key"][r0:r1],
            "provenance": meta["provenance"][r0:r1],  # stored JSON, passed on verbatim
        }
        if self.oracle:
            from cityscapes_tools.synth.painter import paint

            photos = [
                paint(a, b, _oracle_seed(self.seed, int(i))) for a, b, i in zip(labels, instances, index, strict=True)
            ]
            batch["image"] = torch.from_numpy(np.stack(photos))  # (B, H, W, 3) uint8
        return batch


class GeneratorRenderer:
    """A generator on its device: (B, H, W) uint8 labels + int32 instances -> (B, H, W, 3) uint8 images."""

    def __init__(self, model: torch.nn.Module, num_ids: int, device: torch.device, cfg: RenderConfig) -> None:
        self.num_ids, self.device = num_ids, device
        self.dtype = amp_dtype(device, cfg.amp_dtype)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = model.to(device).eval().requires_grad_(False).to(memory_format=self.memory_format)
        self.model = torch.compile(model) if cfg.compile else model

    @torch.inference_mode()
    def submit(self, label: torch.Tensor, instance: torch.Tensor) -> Callable[[], np.ndarray]:
        """Start rendering a batch; the returned function waits for it and gives the uint8 images.

        On a GPU this returns as soon as the work is queued, so the caller can hand the previous
        batch to the writer while the device computes; on the CPU the work is done on return.
        """
        nb = self.device.type == "cuda"  # pinned host memory copies asynchronously to a GPU
        label = label.to(self.device, non_blocking=nb)
        instance = instance.to(self.device, non_blocking=nb)
        inp = make_input(label, instance, self.num_ids).contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.dtype):
            out = self.model(inp)
        return to_host_async(to_uint8_hwc(out))

    def __call__(self, label: torch.Tensor, instance: torch.Tensor) -> np.ndarray:
        """(B, H, W) labels + instances -> (B, H, W, 3) uint8 images, synchronously."""
        return self.submit(label, instance)()


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


def _check_generator(ck: dict[str, Any], ss: ShardSet, path: Path) -> None:
    ls = ss.label_space
    want = ls.num_ids + 1
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


def _renderer(
    generator: str | Path | None, ss: ShardSet, device: torch.device, cfg: RenderConfig
) -> tuple[GeneratorRenderer | None, tuple[int, int], dict[str, Any]]:
    """The renderer (None: the oracle), the output size and what the output config records of it.

    Only what decides the pixels is recorded, so a resume may change batch size or workers.
    """
    if generator is None:
        info = {"renderer": "oracle", "painter": "cityscapes_tools.synth.painter.paint", "precision": "uint8"}
        size = (ss.height, ss.width)
        renderer = None
    else:
        ck_path = checkpoint_path(generator)
        model, ck = load_generator(ck_path)
        _check_generator(ck, ss, ck_path)
        size = (int(ck["size"][0]), int(ck["size"][1]))
        renderer = GeneratorRenderer(model, ss.label_space.num_ids, device, cfg)
        info = {
            "renderer": "pix2pixhd",
            "generator": str(ck_path.resolve()),
            "generator_epoch": int(ck["epoch"]),
            "generator_step": int(ck["step"]),
            "generator_config": ck["generator_config"],
            # What the generator was trained on: train-eval refuses a generator that saw its val photos.
            "generator_data": {
                "root": (ck.get("data") or {}).get("root"),  # None: a checkpoint older than this record
                "split": ck["train_config"].get("split"),
            },
            "precision": str(renderer.dtype or torch.float32).removeprefix("torch."),
        }
    info |= {
        "height": size[0],
        "width": size[1],
        "seed": cfg.seed,
        "compress_images": cfg.compress_images,
        "labelspace_fingerprint": ss.label_space.fingerprint,
    }
    return renderer, size, info


def _render_batches(
    loader: Any, renderer: GeneratorRenderer | None, writer: ShardWriter, task: Any, encoders: int = 1
) -> None:
    """Render each batch and hand the one before it to the writer thread (one batch in flight)."""
    bg = _BackgroundWriter(writer, encoders)
    pending: tuple[dict[str, Any], Callable[[], np.ndarray]] | None = None
    try:
        for batch in loader:
            if renderer is None:
                result = batch.pop("image").numpy  # the oracle painted it in the loader
            else:
                result = renderer.submit(batch["label"], batch["instance"])
            if pending is not None:  # batch k goes to the writer while the device renders k + 1
                bg.put(pending[0], pending[1]())
                task.advance(len(pending[0]["key"]))
            pending = (batch, result)
        if pending is not None:
            bg.put(pending[0], pending[1]())
            task.advance(len(pending[0]["key"]))
            pending = None
    finally:
        if pending is not None and bg.error is None:  # rendered before a failure: keep it
            bg.put(pending[0], pending[1]())
        bg.close()  # on failure too: batches already rendered still complete their shards


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
    painter instead. Run under ``torchrun --nproc-per-node N`` to split the shards over N processes.
    """
    t0 = time.perf_counter()
    if (generator is None) != cfg.oracle:
        raise LabelforgeError("give either a generator checkpoint or the oracle renderer, not both or neither")
    ss = ShardSet(shards)
    with distributed(cfg.device) as (info, device):
        renderer, (height, width), info_render = _renderer(generator, ss, device, cfg)
        info_render |= {"input": str(Path(shards).resolve())}
        spp = int(ss.manifest["samples_per_shard"])
        n_shards = -(-len(ss) // spp)
        writer_args = dict(
            label_space=ss.label_space,
            method=ss.method,
            config={**ss.config, "render": info_render},
            seed=ss.seed,
            total=len(ss),
            height=height,
            width=width,
            samples_per_shard=spp,
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
        todo = writer.pending()
        batches = RenderBatches(ss, shard_batches(todo, spp, cfg.batch_size), (height, width), cfg.oracle, cfg.seed)
        loader = torch.utils.data.DataLoader(
            batches,
            batch_size=None,
            shuffle=False,
            num_workers=_loader_workers(cfg, device),
            pin_memory=device.type == "cuda",
        )
        bar = (progress or NullProgress()) if info.is_main else NullProgress()
        preview = None
        with writer, bar.task("render", total=len(todo)) as task:
            _render_batches(loader, renderer, writer, task, _encoders(cfg, device))
            barrier()
            if info.is_main and cfg.preview:
                writer.collect()
                preview = _write_preview(Path(out), cfg.preview)
        # Also a barrier: rank 0 has finished the manifest when this returns.
        rendered = int(all_reduce_sum([len(todo)], device)[0])
        return RenderResult(
            Path(out), len(ss), rendered, height, width, time.perf_counter() - t0, preview, info.is_main
        )


def _write_preview(out: Path, k: int) -> Path:
    from ..preview import save_grid

    ss = ShardSet(out, require_complete=False)
    rows, caps = [], []
    for i in range(min(k, len(ss))):
        s = ss[i]
        rows.append([ss.label_space.palette[s["label"]], s["image"]])
        caps.append(["composed label" if i == 0 else "", "rendered" if i == 0 else ""])
    ss.close()
    return save_grid(out / "preview.png", rows, caps, cell_width=min(max(ss.width, 256), 512))
