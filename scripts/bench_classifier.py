"""Classifier throughput: training and inference images/s per model at 48 and 64 px.

    python scripts/bench_classifier.py [--models all] [--sizes 48,64] [--batch 64] [--iters 10]

Training is forward + backward + AdamW step on random faces; inference is batched forward without
gradients. ResEmoteNet is timed at width 1.0 (as published) and 0.25 (what CPU budgets use). The
augmentation path (torchvision v2, per sample) is timed separately. On a GPU every figure is also
taken with bf16 autocast on and off.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from classifier.models import MODEL_NAMES, build_model

VARIANTS = [
    ("simple-cnn", {}),
    ("simple-deep-cnn", {}),
    ("resnet18", {}),
    ("resnet18", {"small_stem": True}),
    ("resemotenet", {"width": 0.25}),
    ("resemotenet", {"width": 1.0}),
]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(name: str, kw: dict, size: int, batch: int, iters: int, device: str, amp: bool) -> tuple[float, float]:
    model = build_model(name, num_classes=7, in_channels=1, image_size=size, **kw).to(device)
    if device.startswith("cuda"):
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 1, size, size, device=device)
    y = torch.randint(0, 7, (batch,), device=device)
    ac = torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.startswith("cuda"))
    model.train()
    for i in range(iters + 2):
        if i == 2:
            _sync(device)
            t0 = time.perf_counter()
        with ac:
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    train = iters * batch / (time.perf_counter() - t0)
    model.eval()
    xb = torch.randn(4 * batch, 1, size, size, device=device)
    with torch.no_grad():
        for i in range(iters + 2):
            if i == 2:
                _sync(device)
                t0 = time.perf_counter()
            with ac:
                model(xb)
    _sync(device)
    infer = iters * 4 * batch / (time.perf_counter() - t0)
    return train, infer


def bench_augmentation(size: int, batch: int, iters: int) -> float:
    """Seconds per batch for the training augmentation (per-sample v2 transforms)."""
    from classifier.data import AugmentedBatches, train_transform

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1024, 1, size, size), dtype=np.uint8)
    ds = AugmentedBatches(images, np.zeros(1024, dtype=np.int64), train_transform())
    t0 = time.perf_counter()
    for i in range(iters):
        ds[(i, list(range(i * batch % 900, i * batch % 900 + batch)))]
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="all", help=f"comma list of {', '.join(MODEL_NAMES)} or all")
    ap.add_argument("--sizes", default="48,64")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=8)
    args = ap.parse_args()
    wanted = MODEL_NAMES if args.models == "all" else args.models.split(",")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"{'device':6} {'size':>4} {'model':32} {'train img/s':>12} {'infer img/s':>12}")
    for device in devices:
        for amp in [False, True] if device == "cuda" else [False]:
            for size in (int(s) for s in args.sizes.split(",")):
                for name, kw in VARIANTS:
                    if name not in wanted:
                        continue
                    label = name + "".join(f" {k}={v}" for k, v in kw.items()) + (" bf16" if amp else "")
                    iters = max(2, args.iters // 4) if kw.get("width") == 1.0 or kw.get("small_stem") else args.iters
                    if device == "cuda":
                        iters *= 5
                    tr, inf = bench(name, kw, size, args.batch, iters, device, amp)
                    print(f"{device:6} {size:4d} {label:32} {tr:12.1f} {inf:12.1f}", flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        t = bench_augmentation(size, args.batch, 20)
        print(f"augmentation (flip + affine, per sample) at {size} px: {1000 * t:.1f} ms per batch of {args.batch}")


if __name__ == "__main__":
    main()
