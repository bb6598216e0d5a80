"""Device, mixed precision and torch.distributed plumbing shared by the generator and the segmenter.

The only device-specific branches of the package live here: which device ``auto`` means, whether
autocast is on (CUDA only) and which process-group backend ``torchrun`` gets (nccl on CUDA, gloo
on the CPU). Everything else runs the same code on CPU and GPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import LabelforgeError

__all__ = [
    "DistInfo",
    "dist_info",
    "resolve_device",
    "autocast",
    "amp_dtype",
    "distributed",
    "per_process_batch",
    "barrier",
    "all_reduce_sum",
    "to_host_async",
]


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


def dist_info() -> DistInfo:
    """Rank and world size as ``torchrun`` sets them in the environment (1 process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's GPU when CUDA is present, else the CPU; ``cuda`` -> ``cuda:LOCAL_RANK``."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LabelforgeError(f"device {spec!r} requested but CUDA is not available; use --device cpu")
        return torch.device(spec if ":" in spec else f"cuda:{local_rank}")
    if spec != "cpu":
        raise LabelforgeError(f"unknown device {spec!r}; valid: auto, cpu, cuda, cuda:N")
    return torch.device("cpu")


def amp_dtype(device: torch.device, name: str) -> torch.dtype | None:
    """The autocast dtype: bf16/fp16 on CUDA, none on the CPU (fp32 is faster there than emulated bf16)."""
    if device.type != "cuda" or name == "none":
        return None
    return torch.bfloat16 if name == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _init_process_group(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, device_id=device if device.type == "cuda" else None)


@contextlib.contextmanager
def distributed(device_spec: str) -> Iterator[tuple[DistInfo, torch.device]]:
    """Join the ``torchrun`` process group (NCCL on GPUs, gloo on the CPU) for the duration of the block.

    Outside torchrun (or when the group already exists) this only resolves the device.
    """
    info = dist_info()
    device = resolve_device(device_spec, info.local_rank)
    if not info.enabled or torch.distributed.is_initialized():
        yield info, device
        return
    _init_process_group(device)
    try:
        yield info, device
    finally:
        torch.distributed.destroy_process_group()


def per_process_batch(batch_size: int, world: int) -> int:
    """This process's share of a global batch; every command's ``--batch-size`` is global."""
    if batch_size % world:
        raise LabelforgeError(
            f"--batch-size {batch_size} is not divisible by the {world} torchrun processes"
            " (the batch size is global: give a multiple of the process count)"
        )
    return batch_size // world


def barrier() -> None:
    """Wait for every process of the group (a no-op in a single process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Sum a few scalars over all processes, in float64 (a no-op in a single process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [float(v) for v in values]
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()


def to_host_async(t: torch.Tensor) -> Callable[[], np.ndarray]:
    """Start copying ``t`` to host memory; the returned function waits for the copy and gives the array.

    A GPU tensor goes into pinned memory with a non-blocking copy and an event to wait on, so the
    caller may queue more device work first. A CPU tensor is already there.
    """
    if t.device.type != "cuda":
        return t.numpy
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    done = torch.cuda.Event()
    done.record()

    def wait() -> np.ndarray:
        done.synchronize()
        return host.numpy()

    return wait
