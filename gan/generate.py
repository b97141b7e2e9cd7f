"""Write generator samples as class folders of PNGs with a manifest."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from augment.core.atomic import atomic_path, write_json
from augment.core.errors import UserError
from augment.core.labels import resolve_classes
from augment.core.progress import make_progress
from gan.sample import generate_images, load_generator

MANIFEST_FIELDS = ("path", "label", "split", "source", "generator_run", "checkpoint_step", "seed", "index")


def write_png(path: Path, image: np.ndarray) -> None:
    arr = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def generate_to_folder(
    run_dir: Path,
    out_dir: Path,
    per_class: int,
    classes: str | list[str] | None = None,
    seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
) -> dict[str, Any]:
    """``out_dir/<class>/syn_<class>_<i>.png`` plus ``manifest.csv``; deterministic per seed.

    Image i of a class depends only on (seed, class, i), so a rerun after an interruption
    rewrites the same files and a larger ``per_class`` extends the set.
    """
    if per_class < 1:
        raise UserError("--per-class must be at least 1")
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.csv"
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite and not manifest.exists():
        raise UserError(f"{out_dir} is not empty; choose a new --out folder or pass --overwrite")
    g, meta = load_generator(run_dir, device=device)
    chosen = resolve_classes(classes, meta["classes"], owner="the generator")
    rows = []
    with make_progress() as prog:
        task = prog.add_task("generating", total=per_class * len(chosen))
        for name in chosen:
            label = meta["classes"].index(name)
            class_seed = seed * 1000 + label
            folder = out_dir / name
            folder.mkdir(parents=True, exist_ok=True)
            for start in range(0, per_class, 256):
                n = min(256, per_class - start)
                imgs = generate_images(g, np.full(n, label), seed=class_seed, device=device, offset=start)
                for k in range(n):
                    i = start + k
                    rel = f"{name}/syn_{name}_{i:06d}.png"
                    write_png(out_dir / rel, imgs[k])
                    rows.append(
                        {
                            "path": rel,
                            "label": name,
                            "split": "train",
                            "source": "synthetic",
                            "generator_run": str(Path(run_dir).resolve()),
                            "checkpoint_step": meta["step"],
                            "seed": seed,  # what --seed reproduces this file with (not the per-class key)
                            "index": i,
                        }
                    )
                prog.advance(task, n)
    with atomic_path(manifest) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        w.writeheader()
        w.writerows(rows)
    summary = {
        "out": str(out_dir),
        "per_class": per_class,
        "classes": chosen,
        "images": len(rows),
        "generator_run": str(run_dir),
        "checkpoint_step": meta["step"],
        "seed": seed,
    }
    write_json(out_dir / "generate.json", summary)
    return summary
