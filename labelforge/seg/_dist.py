"""torch.distributed plumbing for train-eval: process group from torchrun's environment, device choice."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import LabelforgeError

__all__ = ["DistInfo", "resolve_device", "init_distributed", "barrier", "all_reduce_sum", "shutdown"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist() -> DistInfo:
    """Rank and world size as torchrun sets them (one process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's GPU when CUDA is usable, else CPU; ``cuda`` -> ``cuda:LOCAL_RANK``."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LabelforgeError(f"--device {spec}: CUDA is not available on this machine")
        return torch.device(f"cuda:{local_rank}" if spec == "cuda" else spec)
    if spec != "cpu":
        raise LabelforgeError(f"--device must be auto, cpu, cuda or cuda:N (got {spec!r})")
    return torch.device("cpu")


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Join torchrun's process group: NCCL on GPUs, gloo on CPU."""
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Sum a few scalars over all processes (float64)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
