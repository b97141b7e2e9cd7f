"""Write generator samples as class folders of PNGs with a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.errors import UserError
from augment.core.labels import resolve_classes
from augment.core.manifest import (
    check_output,
    claim_output,
    summary_name,
    synthetic_name,
    synthetic_row,
    write_manifest,
    write_png,
)
from augment.core.progress import make_progress
from gan.config import DEFAULT_CHECKPOINT
from gan.sample import generate_images, load_generator, sampling_seed

# What the user typed for the settings of a generate folder that have no option of their name (the
# others are --<key>: --checkpoint, --classes, --per-class, --seed); a rerun that changes one names it.
OPTION_NAMES = {
    "generator_run": "RUN_DIR",
    "checkpoint_step": "RUN_DIR's checkpoint step",
}


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

    Image i of a class depends only on (seed, class, i). The folder follows
    ``augment.core.manifest.check_output``: a rerun of the same command finishes an interrupted
    one (writing only the missing files); other settings are refused unless ``overwrite``, which
    removes exactly the files the old manifest lists.
    """
    if per_class < 1:
        raise UserError("--per-class must be at least 1")
    out_dir = Path(out_dir)
    g, meta = load_generator(run_dir, device=device, checkpoint=checkpoint)
    chosen = resolve_classes(classes, meta["classes"], owner="the generator")
    options = {
        "generator_run": str(Path(run_dir).resolve()),
        "checkpoint": meta["checkpoint"],
        "checkpoint_step": meta["step"],
        "classes": chosen,
        "per_class": per_class,
        "seed": seed,
    }
    claim = check_output(out_dir, "generate", options, overwrite, OPTION_NAMES)
    claim_output(claim)
    rows = [
        synthetic_row(
            f"{name}/{synthetic_name(name, i)}",
            name,
            "train",
            run_dir,
            meta["step"],
            sampling_seed(seed, meta["classes"].index(name)),
            i,
        )
        for name in chosen
        for i in range(per_class)
    ]
    write_manifest(out_dir, rows)  # what the folder will hold; generate.json says when it does
    with make_progress() as prog:
        task = prog.add_task("generating", total=per_class * len(chosen))
        for name in chosen:
            _write_class(g, meta, out_dir, name, per_class, seed, device, lambda n: prog.advance(task, n))
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
        "resumed": claim.resume,
    }
    write_json(out_dir / summary_name("generate"), summary)
    return summary


def _write_class(
    g: Any,
    meta: dict[str, Any],
    out_dir: Path,
    name: str,
    per_class: int,
    seed: int,
    device: str,
    advance: Callable[[int], Any],
) -> None:
    """``out_dir/<name>/syn_<name>_<i>.png`` for noise indices 0..per_class-1; a batch whose files all
    exist (a finished part of an interrupted run; writes are atomic) is not generated again."""
    label = meta["classes"].index(name)
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    for start in range(0, per_class, 256):
        n = min(256, per_class - start)
        paths = [out_dir / name / synthetic_name(name, start + k) for k in range(n)]
        if not all(p.is_file() for p in paths):
            imgs = generate_images(g, np.full(n, label), seed=sampling_seed(seed, label), device=device, offset=start)
            for path, img in zip(paths, imgs, strict=True):
                write_png(path, img)
        advance(n)
