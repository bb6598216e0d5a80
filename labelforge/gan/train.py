"""Train the pix2pixHD generator on a dataset root's image/label pairs.

One iteration, as pix2pixHD: the generator renders the batch; the discriminators score
(input, fake) and (input, real) in one pass; the generator steps on LSGAN + feature matching
(+ VGG); the discriminators step on the LSGAN loss of that pass. Under ``torchrun`` both networks
are wrapped in DDP and a DistributedSampler splits every epoch; rank 0 alone writes files.

Outputs in the run dir: ``generator.pt`` (latest epoch, atomic), ``log.jsonl`` (one JSON line per
``log_every`` steps and per epoch), ``samples/epoch-XXX.png`` (label colour | real | generated),
``run.json`` (resolved configs) and ``_SUCCESS`` when every epoch is done.

Example:
    >>> from labelforge.gan.presets import get_preset  # doctest: +SKIP
    >>> from labelforge.gan.train import train_generator  # doctest: +SKIP
    >>> gen, cfg = get_preset("tiny")  # doctest: +SKIP
    >>> train_generator("data/mini", "runs/gen", gen, cfg).epochs  # doctest: +SKIP
    10
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from .._runtime import amp_dtype, autocast, barrier, distributed
from ..errors import InputError, LabelforgeError
from ..labelspace import LabelSpace, get_label_space
from ..outputs import SUCCESS, atomic_write_json, mark_finished, prepare_output
from ..progress import NullProgress, Progress
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .config import GeneratorConfig, TrainConfig, config_from_dict
from .data import PairDataset, collate
from .inputs import make_input, to_uint8_hwc, to_unit_range
from .losses import VGGLoss, feature_matching_loss, load_vgg19_features, lsgan_loss
from .networks import build_discriminator, build_generator

__all__ = ["TrainResult", "train_generator", "RESUME_KEEPS"]

# On --resume these runtime settings come from the new call; every other TrainConfig field, the
# architecture and the label space come from the checkpoint, unless the caller names the field in
# ``explicit`` (the size excepted: a run cannot change resolution half way).
RESUME_KEEPS = ("device", "workers", "amp_dtype")


@dataclass(frozen=True)
class TrainResult:
    out: Path
    epochs: int  # epochs finished in total
    start_epoch: int  # epochs already done when this call began (> 0 when resumed)
    steps: int
    losses: dict[str, float] = field(default_factory=dict)  # means over the last epoch
    seconds: float = 0.0
    is_main: bool = True  # False in the other ranks of a torchrun job


class _Trainer:
    """The two networks, their optimizers and one training step."""

    def __init__(self, gen_cfg: GeneratorConfig, cfg: TrainConfig, ls: LabelSpace, device: torch.device, world: int):
        self.cfg, self.ls, self.device = cfg, ls, device
        torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        self.g = build_generator(gen_cfg, ls.num_ids).to(device)
        self.d = build_discriminator(gen_cfg, ls.num_ids).to(device)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr, betas=betas)
        self.dtype = amp_dtype(device, cfg.amp_dtype)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.vgg = VGGLoss(load_vgg19_features(cfg.vgg_weights)).to(device) if cfg.vgg_weights else None
        self.g_run: nn.Module = self.g
        self.d_run: nn.Module = self.d
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_run = nn.parallel.DistributedDataParallel(self.g, device_ids=ids)
            self.d_run = nn.parallel.DistributedDataParallel(self.d, device_ids=ids)

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def step(self, batch: dict[str, Any]) -> dict[str, float]:
        dev, nb = self.device, self.device.type == "cuda"
        label = batch["label"].to(dev, non_blocking=nb)
        inst = batch["instance"].to(dev, non_blocking=nb)
        real = to_unit_range(batch["image"].to(dev, non_blocking=nb))
        inp = make_input(label, inst, self.ls.num_ids)
        b = inp.shape[0]
        with autocast(dev, self.dtype):
            fake = self.g_run(inp)
            # Fake and real in one pass: instance norm keeps samples independent, and DDP sees one forward.
            pairs = torch.cat([torch.cat([inp, fake.detach()], 1), torch.cat([inp, real], 1)], 0)  # (2B, C+3, H, W)
            pred = self.d_run(pairs)
        pred_fake_d = [[f[:b] for f in feats] for feats in pred]
        pred_real = [[f[b:] for f in feats] for feats in pred]

        # Generator step. The discriminator is frozen so this backward leaves its gradients (and DDP
        # hooks) alone; it runs unwrapped because its parameters take no part in this update.
        self.d.requires_grad_(False)
        with autocast(dev, self.dtype):
            pred_fake_g = self.d(torch.cat([inp, fake], 1))
            g_gan = lsgan_loss(pred_fake_g, target_real=True)
            g_feat = feature_matching_loss(pred_fake_g, pred_real, self.cfg.lambda_feat)
            g_vgg = self.vgg(fake, real) * self.cfg.lambda_feat if self.vgg is not None else torch.zeros((), device=dev)
        loss_g = g_gan + g_feat + g_vgg
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        self.d.requires_grad_(True)

        d_real = lsgan_loss(pred_real, target_real=True)
        d_fake = lsgan_loss(pred_fake_d, target_real=False)
        loss_d = 0.5 * (d_real + d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        # Pixel L1 to the photo: not optimised, a readable sign that the generator learns the scene.
        l1 = (fake.detach().float() - real).abs().mean()
        vals = torch.stack([g_gan, g_feat, g_vgg, d_real, d_fake, l1]).detach().float().cpu()  # one sync per step
        return dict(zip(("G_GAN", "G_feat", "G_VGG", "D_real", "D_fake", "L1"), vals.tolist(), strict=True))

    @torch.no_grad()
    def render(self, items: list[dict[str, Any]]) -> np.ndarray:
        batch = collate(items)
        inp = make_input(batch["label"].to(self.device), batch["instance"].to(self.device), self.ls.num_ids)
        with autocast(self.device, self.dtype):
            fake = self.g(inp)
        return to_uint8_hwc(fake).cpu().numpy()

    def state(self) -> dict[str, Any]:
        return {"optimizer_g": self.opt_g, "optimizer_d": self.opt_d, "scaler": self.scaler}

    def load(self, ck: dict[str, Any]) -> None:
        self.g.load_state_dict(ck["generator"])
        self.d.load_state_dict(ck["discriminator"])
        self.opt_g.load_state_dict(ck["optimizer_g"])
        self.opt_d.load_state_dict(ck["optimizer_d"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])


def _resolve_resume(
    ck: dict[str, Any],
    path: Path,
    gen_cfg: GeneratorConfig,
    cfg: TrainConfig,
    explicit: frozenset[str],
    ls: LabelSpace,
) -> tuple[GeneratorConfig, TrainConfig]:
    """The saved architecture and schedule, with the runtime settings and explicit options of this call."""
    if ck["label_space_fingerprint"] != ls.fingerprint:
        raise InputError(
            path,
            f"checkpoint was trained for label space {ck['label_space']['name']!r} "
            f"({ck['label_space_fingerprint']}), not {ls.name!r} ({ls.fingerprint})",
        )
    saved_gen = config_from_dict(GeneratorConfig, ck["generator_config"])
    saved = config_from_dict(TrainConfig, ck["train_config"])
    for name in ("height", "width"):
        if name in explicit and getattr(cfg, name) != getattr(saved, name):
            raise InputError(
                path, f"cannot resume at another size: the checkpoint was trained at {saved.height}x{saved.width}"
            )
    keep = {k: getattr(cfg, k) for k in RESUME_KEEPS + tuple(explicit - {"height", "width"})}
    return saved_gen, replace(saved, **keep)


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Drop log lines of an epoch that a kill interrupted; it is trained again."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("epoch", 0) <= epochs_done]
    path.write_text("".join(ln + "\n" for ln in keep))


def _sample_grid(trainer: _Trainer, ds: PairDataset, n: int, path: Path) -> None:
    from ..preview import save_grid

    items = [ds[i] for i in range(min(n, len(ds)))]
    fakes = trainer.render(items)
    rows = [[trainer.ls.palette[it["label"]], it["image"], f] for it, f in zip(items, fakes, strict=True)]
    captions = [["label", "real", "generated"]] + [["", "", ""]] * (len(rows) - 1)
    save_grid(path, rows, captions)


def train_generator(
    root: str | Path,
    out: str | Path,
    gen_cfg: GeneratorConfig,
    cfg: TrainConfig,
    *,
    label_space: str | LabelSpace = "cityscapes",
    resume: bool = False,
    overwrite: bool = False,
    explicit: frozenset[str] = frozenset(),
    progress: Progress | None = None,
) -> TrainResult:
    """Train (or, with ``resume``, continue training) a generator; returns what was done.

    ``explicit`` names the TrainConfig fields the user set; on resume they override the saved ones.
    Run it under ``torchrun --nproc-per-node N`` for data-parallel training.
    """
    t0 = time.perf_counter()
    with distributed(cfg.device) as (info, device):
        out = Path(out)
        ls = label_space if isinstance(label_space, LabelSpace) else get_label_space(label_space)
        ck_path = out / CHECKPOINT_NAME
        ck = load_checkpoint(ck_path) if resume and not overwrite and ck_path.exists() else None
        if ck is not None:
            gen_cfg, cfg = _resolve_resume(ck, ck_path, gen_cfg, cfg, explicit, ls)
        # Every input is checked before the run dir is touched: bad input leaves no files behind.
        m = gen_cfg.size_multiple
        if cfg.height % m or cfg.width % m:
            raise LabelforgeError(f"size {cfg.height}x{cfg.width} must be a multiple of {m} for this architecture")
        size = (cfg.height, cfg.width)
        ds = PairDataset(root, size, ls, cfg.split, flip=cfg.flip, seed=cfg.seed)
        grid_ds = PairDataset(root, size, ls, cfg.split, flip=False)
        trainer = _Trainer(gen_cfg, cfg, ls, device, info.world)
        start, step = 0, 0
        if ck is not None:
            trainer.load(ck)
            start, step = int(ck["epoch"]), int(ck["step"])
        if info.is_main:
            prepare_output(out, overwrite=overwrite, resume=resume)
        barrier()
        if info.is_main:
            (out / SUCCESS).unlink(missing_ok=True)  # more epochs asked of a finished run
            (out / "samples").mkdir(exist_ok=True)
            _truncate_log(out / "log.jsonl", start)
            atomic_write_json(out / "run.json", _run_info(root, gen_cfg, cfg, ls, info.world, device, start))
        sampler = torch.utils.data.DistributedSampler(
            ds, num_replicas=info.world, rank=info.rank, shuffle=True, seed=cfg.seed
        )
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.workers,
            collate_fn=collate,
            pin_memory=device.type == "cuda",
        )
        bar = (progress or NullProgress()) if info.is_main else NullProgress()
        losses: dict[str, float] = {}
        with (
            bar.task("train generator", total=(cfg.epochs - start) * len(loader)) as task,
            open(out / "log.jsonl", "a") if info.is_main else _nullfile() as log,
        ):
            for epoch in range(start, cfg.epochs):
                lr = cfg.lr_at(epoch)
                trainer.set_lr(lr)
                sampler.set_epoch(epoch)
                ds.set_epoch(epoch)
                sums: dict[str, float] = {}
                for batch in loader:
                    vals = trainer.step(batch)
                    step += 1
                    for k, v in vals.items():
                        sums[k] = sums.get(k, 0.0) + v
                    if step % cfg.log_every == 0 or step == 1:
                        log.write(
                            json.dumps({"event": "step", "epoch": epoch + 1, "step": step, "lr": lr, **vals}) + "\n"
                        )
                        log.flush()
                    task.advance(
                        1,
                        epoch=epoch + 1,
                        G=vals["G_GAN"] + vals["G_feat"] + vals["G_VGG"],
                        D=vals["D_real"] + vals["D_fake"],
                        L1=vals["L1"],
                    )
                losses = _epoch_means(sums, len(loader), device)
                if info.is_main:
                    log.write(
                        json.dumps({"event": "epoch", "epoch": epoch + 1, "step": step, "lr": lr, **losses}) + "\n"
                    )
                    log.flush()
                    _sample_grid(trainer, grid_ds, cfg.num_samples, out / "samples" / f"epoch-{epoch + 1:03d}.png")
                    save_checkpoint(
                        ck_path,
                        generator=trainer.g,
                        discriminator=trainer.d,
                        optimizers=trainer.state(),
                        epoch=epoch + 1,
                        step=step,
                        gen_cfg=gen_cfg,
                        train_cfg=cfg,
                        label_space=ls,
                        root=root,
                    )
                barrier()
        result = TrainResult(out, cfg.epochs, start, step, losses, time.perf_counter() - t0, info.is_main)
        if info.is_main:
            mark_finished(out, {"epochs": cfg.epochs, "steps": step, "losses": losses, "version": __version__})
        barrier()
        return result


def _epoch_means(sums: dict[str, float], n: int, device: torch.device) -> dict[str, float]:
    keys = sorted(sums)
    t = torch.tensor([sums[k] for k in keys] + [float(n)], dtype=torch.float64, device=device)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return {k: float(v) for k, v in zip(keys, (t[:-1] / t[-1]).tolist(), strict=True)}


class _nullfile:
    def __enter__(self) -> _nullfile:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _run_info(
    root: str | Path,
    gen_cfg: GeneratorConfig,
    cfg: TrainConfig,
    ls: LabelSpace,
    world: int,
    device: torch.device,
    start: int,
) -> dict[str, Any]:
    return {
        "command": "train-generator",
        "root": str(root),
        "generator_config": asdict(gen_cfg),
        "train_config": asdict(cfg),
        "label_space": ls.name,
        "label_space_fingerprint": ls.fingerprint,
        "input_nc": gen_cfg.input_nc(ls.num_ids),
        "world_size": world,
        "device": str(device),
        "resumed_at_epoch": start,
        "labelforge_version": __version__,
        "torch_version": torch.__version__,
    }
