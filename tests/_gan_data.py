"""Tiny hand-built inputs for the generator tests (no tests here): a dataset root with photos and
label shards, both small enough that a CPU trains and renders them in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, CAR, PERSON = 23, 11, 7, 8, 21, 26, 24


def scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A street-like (label uint8, instance int32) pair: sky, buildings, road, sidewalk, cars, people."""
    label = np.full((h, w), SKY, np.uint8)
    horizon = int(h * rng.uniform(0.35, 0.55))
    for x0 in range(0, w, w // 4):
        top = int(h * rng.uniform(0.05, 0.3))
        label[top:horizon, x0 : x0 + w // 4] = BUILDING if rng.random() < 0.7 else VEGETATION
    label[horizon:] = ROAD
    label[horizon : horizon + max(2, h // 10)] = SIDEWALK
    inst = label.astype(np.int32)
    for k in range(int(rng.integers(1, 4))):
        ch, cw = h // 5, w // 6
        y = int(rng.integers(horizon, h - ch))
        x = int(rng.integers(0, w - cw))
        cls = CAR if k % 2 == 0 else PERSON
        label[y : y + ch, x : x + cw] = cls
        inst[y : y + ch, x : x + cw] = cls * 1000 + k
    return label, inst


def photo(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Class colours with a vertical shade and noise: enough structure for a generator to learn."""
    from labelforge.labelspace import get_label_space

    pal = get_label_space("cityscapes").palette.astype(np.float32)
    h = label.shape[0]
    shade = np.linspace(1.1, 0.8, h, dtype=np.float32)[:, None, None]
    img = pal[label] * shade + rng.normal(0, 6, (*label.shape, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_pair_root(root: Path, n: int = 6, h: int = 32, w: int = 64, seed: int = 0) -> Path:
    """A Cityscapes-layout root with ``n`` train samples (photo, labelIds, instanceIds)."""
    from cityscapes_tools.writer import write_sample

    rng = np.random.default_rng(seed)
    for i in range(n):
        label, inst = scene(rng, h, w)
        write_sample(root, "train", f"tiny_000000_{i:06d}", label=label, instance=inst, image=photo(label, rng))
    return root


def make_label_shards(
    out: Path, n: int = 10, spp: int = 4, h: int = 32, w: int = 64, seed: int = 0, label_space=None
) -> Path:
    """A finished label shard dir of ``n`` scenes, ``spp`` samples per shard, with provenance."""
    from labelforge.labelspace import get_label_space
    from labelforge.shards import ShardWriter

    ls = label_space or get_label_space("cityscapes")
    rng = np.random.default_rng(seed)
    with ShardWriter(
        out,
        label_space=ls,
        method="overlay",
        config={"classes": ["car"]},
        seed=seed,
        total=n,
        height=h,
        width=w,
        samples_per_shard=spp,
    ) as wr:
        for i in range(wr.start_index, n):
            label, inst = scene(rng, h, w)
            wr.write(
                i,
                key=f"lfoverlay_000000_{i:06d}",
                label=label,
                instance=inst,
                provenance={"base": f"tiny_000000_{i % 3:06d}", "segments": [{"class": "car", "i": i}]},
            )
    return out


def make_checkpoint(path: Path, size: tuple[int, int] = (32, 64), label_space=None, seed: int = 0) -> Path:
    """An untrained tiny generator saved as a checkpoint: renders varied images, costs no training."""
    from dataclasses import replace

    import torch

    from labelforge.gan.checkpoint import save_checkpoint
    from labelforge.gan.networks import build_generator
    from labelforge.gan.presets import get_preset
    from labelforge.labelspace import get_label_space

    ls = label_space or get_label_space("cityscapes")
    gen, cfg = get_preset("tiny")
    cfg = replace(cfg, height=size[0], width=size[1])
    torch.manual_seed(seed)
    g = build_generator(gen, ls.num_ids)
    path.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(
        path / "generator.pt",
        generator=g,
        discriminator=None,
        optimizers={},
        epoch=0,
        step=0,
        gen_cfg=gen,
        train_cfg=cfg,
        label_space=ls,
    )


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and with other jobs on the same two cores
    OpenMP's thread barriers stall them many times over; one thread keeps these tests steady.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# A small OASIS for tests: 3 blocks (sizes multiples of 8), PyTorch's init, 4-d noise.
SMALL_OASIS = dict(channels_g=4, channels_d=4, num_res_blocks=3, z_dim=4, spade_hidden=8, init="torch")


def make_oasis_checkpoint(path: Path, size: tuple[int, int] = (32, 64), seed: int = 0) -> Path:
    """An untrained small OASIS saved as a training run would save it (harness header + trainer state)."""
    from dataclasses import replace

    import torch

    from labelforge._rundir import write_checkpoint
    from labelforge.gan.checkpoint import generator_spec
    from labelforge.gan.oasis.config import OasisConfig, get_oasis_preset
    from labelforge.gan.oasis.trainer import OasisTrainer
    from labelforge.labelspace import get_label_space

    ls = get_label_space("cityscapes")
    arch = OasisConfig(**SMALL_OASIS)
    cfg = replace(get_oasis_preset("tiny")[1], height=size[0], width=size[1], seed=seed)
    t = OasisTrainer(arch, cfg, ls, torch.device("cpu"), world=1)
    spec = generator_spec(arch, cfg, ls, sampler={}, fmt=OasisTrainer.FORMAT)
    path.mkdir(parents=True, exist_ok=True)
    return write_checkpoint(path / "generator.pt", {**spec.header(0, 0), **t.state_dict(), "size": list(size)})
