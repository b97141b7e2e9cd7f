"""Where and how a run executes: device, seeds, distributed ranks, and the record of it."""

from __future__ import annotations

import atexit
import hashlib
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from augment.core.errors import UserError

PACKAGES = ("augment", "torch", "torchvision", "numpy", "pillow", "pytorch-fid", "typer", "matplotlib")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_record(config: dict[str, Any]) -> dict[str, Any]:
    """What to save next to a run's outputs so it can be reproduced."""
    import torch

    return {
        "config": config,
        "versions": package_versions(),
        "command": " ".join(sys.argv),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }


def pick_device(name: str = "auto") -> str:
    """auto: cuda, then mps, then cpu. Under torchrun each rank takes its local GPU."""
    import torch

    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
        if name == "cuda":
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    elif name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: Apple MPS is not available here; use --device cpu or auto")
    elif name not in ("cpu", "mps"):
        raise UserError(f"--device {name}: use auto, cpu, cuda, cuda:N or mps")
    return name


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_generator(seed: int, step: int, stream: int = 0) -> Any:
    """A torch Generator fixed by (seed, step, stream): the same draws on every rank,
    in every process count, before and after a resume."""
    import torch

    key = hashlib.blake2b(f"{seed}:{step}:{stream}".encode(), digest_size=8).digest()
    g = torch.Generator()
    g.manual_seed(int.from_bytes(key, "little") & (2**63 - 1))
    return g


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=10)
    h.update(str(images.shape).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


@dataclass
class Dist:
    """This process's place in a torchrun job (world 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: str) -> Dist:
    """Join the torchrun job if there is one: NCCL on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            import torch

            # Each rank's current device must be its own GPU: barriers and the .cuda() of our small
            # collectives use it, and NCCL refuses two ranks on one GPU.
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend=backend)
    d = Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))
    atexit.register(shutdown_distributed, d)
    return d


def barrier(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


def shutdown_distributed(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_ranks_mean(d: Dist, value: Any) -> float:
    """The mean of a scalar torch tensor over every rank (the value itself outside a torchrun job)."""
    if not d.enabled:
        return float(value)
    import torch.distributed as dist

    t = value.detach().float().reshape(1).clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / d.world


def any_rank(d: Dist, flag: bool) -> bool:
    """True on every rank if it is true on any: ranks must take the same branch (stop, save)."""
    if not d.enabled:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def from_rank0(d: Dist, value: float) -> float:
    """Rank 0's value on every rank, so decisions (model selection, early stopping) agree."""
    if not d.enabled:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, 0)
    return float(t.item())


def sync_buffers(d: Dist, module: Any) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank before evaluating or saving."""
    if not d.enabled:
        return
    import torch.distributed as dist

    for b in module.buffers():
        dist.broadcast(b.data, 0)


def count_parameters(module: Any) -> int:
    """Number of trainable parameters, for logs and model-size comparisons (spectral-norm ``u``/``v``
    are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_digest(*modules: Any) -> str:
    """A short hash of every parameter: equal digests mean bit-identical weights (e.g. across ranks)."""
    h = hashlib.blake2b(digest_size=8)
    for m in modules:
        for p in m.parameters():
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()
