"""GAN training throughput: our recipe vs the classic PyTorch DCGAN example, and the data path's share.

    python scripts/bench_gan.py [--data DIR_OR_CACHE] [--steps 30] [--sizes 48,64]
    OMP_NUM_THREADS=1 python scripts/bench_gan.py --transfer --steps 50 --sizes 48 --threads 1

Without --data it writes demo faces to a temp folder. --transfer times only the full (noise) and the
transfer recipe, in generator iterations/s and images/s (one real batch per D step), after a warm-up.

The reference loop is the PyTorch examples
DCGAN (unconditional, ngf = ndf = 64, BCE, Adam 2e-4/0.5) adapted to the size, fed by a standard
DataLoader over image files (ImageFolder). On a GPU it also times bf16 autocast on and off.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2


# ----------------------------------------------------------------------------- reference DCGAN
class RefG(nn.Module):
    def __init__(self, size: int, nz: int = 100, ngf: int = 64, nc: int = 1) -> None:
        super().__init__()
        s0 = size // 16  # 4 for 64, 3 for 48
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, s0, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class RefD(nn.Module):
    def __init__(self, size: int, ndf: int = 64, nc: int = 1) -> None:
        super().__init__()
        s0 = size // 16
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, s0, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def bench_reference(folder: Path, size: int, steps: int, batch: int, device: str, amp: bool) -> float:
    tf = v2.Compose(
        [
            v2.Grayscale(),
            v2.Resize(size),
            v2.CenterCrop(size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5], [0.5]),
        ]
    )
    ds = datasets.ImageFolder(str(folder), transform=tf)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=2, drop_last=True, persistent_workers=True)
    g, d = RefG(size).to(device), RefD(size).to(device)
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ac = torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.startswith("cuda"))
    it = iter(loader)
    done, t0 = 0, 0.0
    while done < steps + 3:
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, _ = next(it)
        if done == 3:
            _sync(device)
            t0 = time.perf_counter()
        x = x.to(device)
        z = torch.randn(batch, 100, 1, 1, device=device)
        with ac:
            fake = g(z)
            ld = bce(d(x).float(), torch.ones(batch, device=device)) + bce(
                d(fake.detach()).float(), torch.zeros(batch, device=device)
            )
        od.zero_grad()
        ld.backward()
        od.step()
        with ac:
            lg = bce(d(fake).float(), torch.ones(batch, device=device))
        og.zero_grad()
        lg.backward()
        og.step()
        done += 1
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- ours
def bench_ours(data, size: int, steps: int, batch: int, device: str, amp: bool, recipe: str) -> dict[str, float]:
    from augment.core.resize import resize_dataset
    from gan.config import recipe_config
    from gan.train import train_gan

    ds = resize_dataset(data, size, 1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = recipe_config(
            recipe,
            steps=3,
            batch_size=batch,
            device=device,
            amp=amp,
            sample_every=10**9,
            checkpoint_every=10**9,
            log_every=10**9,
        )
        cfg.size, cfg.channels = size, 1
        train_gan(ds, Path(tmp) / "warm", cfg, progress=False)  # warm-up: allocator, kernels
        cfg.steps = steps
        r = train_gan(ds, Path(tmp) / "run", cfg, progress=False)
    return {"images_per_s": r["images_per_s"]}


def bench_data_path(data, size: int, steps: int, batch: int) -> float:
    """Seconds per step spent assembling real batches (index, convert, flip) in our loop."""
    from augment.core.resize import resize_dataset
    from augment.core.runtime import step_generator
    from gan.state import BatchPlan
    from gan.steps import _flip, _to_float

    ds = resize_dataset(data.split("train"), size, 1)
    images = torch.from_numpy(ds.images)
    plan = BatchPlan(ds.labels, ds.num_classes, batch, 0, True)
    t0 = time.perf_counter()
    for s in range(steps):
        x = _to_float(images[plan.indices(s)])
        x = _flip(x, step_generator(0, s, 3)).contiguous(memory_format=torch.channels_last)
        plan.fake_labels(s)
    return (time.perf_counter() - t0) / steps


def bench_transfer(data, devices: list[str], args: argparse.Namespace) -> None:
    """Generator iterations/s and images/s of the noise (full) and the transfer recipe."""
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, {args.steps} steps")
    print(f"{'device':7} {'size':>4} {'recipe':10} {'it/s':>7} {'images/s':>9}")
    for device in devices:
        for size in (int(s) for s in args.sizes.split(",")):
            for recipe in ("full", "transfer"):
                r = bench_ours(data, size, args.steps, args.batch, device, device == "cuda", recipe)
                rate = r["images_per_s"]
                print(f"{device:7} {size:4d} {recipe:10} {rate / args.batch:7.2f} {rate:9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="dataset folder or cache (default: demo faces)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--sizes", default="48,64")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--transfer", action="store_true", help="time the full and transfer recipes only")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import os

    os.environ.setdefault("AUGMENT_QUIET", "1")
    from augment.core.readers import load_dataset
    from augment.demo_faces import write_demo_dataset

    tmp = tempfile.TemporaryDirectory()
    if args.data is None:
        folder = Path(tmp.name) / "demo"
        write_demo_dataset(folder, seed=0)
        data = load_dataset(folder)
        image_folder = folder / "train"
    else:
        data = load_dataset(args.data)
        image_folder = args.data / "train" if (args.data / "train").is_dir() else None
        if image_folder is None:
            from augment.writer import write_tree

            folder = Path(tmp.name) / "files"
            write_tree(data.split("train"), folder, progress=False)
            image_folder = folder / "train"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.transfer:
        bench_transfer(data, devices, args)
        tmp.cleanup()
        return
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, data {data.name} ({len(data)} images)")
    print(f"{'device':7} {'size':>4} {'loop':38} {'images/s':>9}")
    for device in devices:
        amps = [False, True] if device == "cuda" else [False]
        for size in (int(s) for s in args.sizes.split(",")):
            for amp in amps:
                tag = " bf16" if amp else ""
                ours = bench_ours(data, size, args.steps, args.batch, device, amp, "full")
                print(f"{device:7} {size:4d} {'augment full recipe' + tag:38} {ours['images_per_s']:9.1f}")
                classic = bench_ours(data, size, args.steps, args.batch, device, amp, "classic")
                print(
                    f"{device:7} {size:4d} {'augment classic recipe (cDCGAN)' + tag:38} {classic['images_per_s']:9.1f}"
                )
                ref = bench_reference(image_folder, size, args.steps, args.batch, device, amp)
                print(f"{device:7} {size:4d} {'PyTorch DCGAN example + DataLoader' + tag:38} {ref:9.1f}")
            if device == "cpu":
                t_data = bench_data_path(data, size, args.steps, args.batch)
                t_step = args.batch / ours["images_per_s"]
                print(
                    f"{device:7} {size:4d} data path: {1000 * t_data:.2f} ms of a {1000 * t_step:.0f} ms step "
                    f"({100 * t_data / t_step:.1f}%)"
                )
    tmp.cleanup()


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
