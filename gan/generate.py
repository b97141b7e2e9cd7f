"""Write generator samples as class folders of PNGs with a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.errors import UserError
from augment.core.labels import resolve_classes
from augment.core.manifest import MANIFEST, synthetic_name, synthetic_row, write_manifest, write_png
from augment.core.progress import make_progress
from gan.config import DEFAULT_CHECKPOINT
from gan.sample import generate_images, load_generator


def sampling_seed(seed: int, label: int) -> int:
    """The seed ``generate_images`` gets for the generator's class ``label`` in a run with ``--seed seed``
    (``generate`` and ``rebalance`` alike); the manifest records it as the file's ``seed``."""
    return seed * 1000 + label


def generate_to_folder(
    run_dir: Path,
    out_dir: Path,
    per_class: int,
    classes: str | list[str] | None = None,
    seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
    checkpoint: str = DEFAULT_CHECKPOINT,
) -> dict[str, Any]:
    """``out_dir/<class>/syn_<class>_<i>.png`` plus ``manifest.csv``; deterministic per seed and checkpoint
    (``best``: the run's best on validation, falling back to the last; or ``last``).

    Image i of a class depends only on (seed, class, i), so a rerun after an interruption
    rewrites the same files and a larger ``per_class`` extends the set.
    """
    if per_class < 1:
        raise UserError("--per-class must be at least 1")
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite and not manifest.exists():
        raise UserError(f"{out_dir} is not empty; choose a new --out folder or pass --overwrite")
    g, meta = load_generator(run_dir, device=device, checkpoint=checkpoint)
    chosen = resolve_classes(classes, meta["classes"], owner="the generator")
    rows: list[dict[str, Any]] = []
    with make_progress() as prog:
        task = prog.add_task("generating", total=per_class * len(chosen))
        for name in chosen:
            rows += _write_class(
                g, meta, run_dir, out_dir, name, per_class, seed, device, lambda n: prog.advance(task, n)
            )
    write_manifest(out_dir, rows)
    summary = {
        "out": str(out_dir),
        "per_class": per_class,
        "classes": chosen,
        "images": len(rows),
        "generator_run": str(run_dir),
        "checkpoint": meta["checkpoint"],
        "checkpoint_step": meta["step"],
        "checkpoint_note": meta["note"],
        "seed": seed,
    }
    write_json(out_dir / "generate.json", summary)
    return summary


def _write_class(
    g: Any,
    meta: dict[str, Any],
    run_dir: Path,
    out_dir: Path,
    name: str,
    per_class: int,
    seed: int,
    device: str,
    advance: Callable[[int], Any],
) -> list[dict[str, Any]]:
    """``out_dir/<name>/syn_<name>_<i>.png`` for noise indices 0..per_class-1, and their manifest rows."""
    label = meta["classes"].index(name)
    class_seed = sampling_seed(seed, label)
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    rows = []
    for start in range(0, per_class, 256):
        n = min(256, per_class - start)
        imgs = generate_images(g, np.full(n, label), seed=class_seed, device=device, offset=start)
        for k in range(n):
            rel = f"{name}/{synthetic_name(name, start + k)}"
            write_png(out_dir / rel, imgs[k])
            rows.append(synthetic_row(rel, name, "train", run_dir, meta["step"], class_seed, start + k))
        advance(n)
    return rows
