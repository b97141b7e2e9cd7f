"""Write generator samples as class folders of PNGs with a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset, data_digest
from augment.core.errors import UserError
from augment.core.labels import resolve_classes
from augment.core.manifest import (
    check_output,
    claim_output,
    parse_source_face,
    parse_synthetic_source,
    summary_name,
    synthetic_name,
    synthetic_row,
    write_manifest,
    write_png,
)
from augment.core.progress import make_progress
from gan.config import DEFAULT_CHECKPOINT, TRANSFER
from gan.sample import read_generator
from gan.translate import TransferSampler, load_sampler, with_validation

# What the user typed for the settings of a generate folder that have no option of their name (the
# others are --<key>: --checkpoint, --classes, --per-class, --seed); a rerun that changes one names it.
OPTION_NAMES = {
    "generator_run": "RUN_DIR",
    "checkpoint_step": "RUN_DIR's checkpoint step",
    "sources_files": "--sources' files",
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
    sources: FaceDataset | None = None,
    source_classes: list[str] | None = None,
) -> dict[str, Any]:
    """``out_dir/<class>/syn_<class>_<i>.png`` plus ``manifest.csv``; deterministic per seed and checkpoint
    (``best``: the run's best on validation, falling back to the last; or ``last``).

    Image i of a class depends only on (seed, class, i): a noise run's noise index i, or a transfer run's
    i-th source face (``gan.translate.spread``) among the real train faces of ``sources`` (of
    ``source_classes``; default every class but the target), which a transfer run needs and a noise run
    refuses. The folder follows ``augment.core.manifest.check_output``: a rerun of the same command
    finishes an interrupted one (writing only the missing files); other settings are refused unless
    ``overwrite``, which removes exactly the files the old manifest lists.
    """
    if per_class < 1:
        raise UserError("--per-class must be at least 1")
    out_dir = Path(out_dir)
    sampler, meta = _sampler(run_dir, sources, seed, device, checkpoint, source_classes)
    chosen = resolve_classes(classes, meta["classes"], owner="the generator")
    options = {
        "generator_run": str(Path(run_dir).resolve()),
        "checkpoint": meta["checkpoint"],
        "checkpoint_step": meta["step"],
        "classes": chosen,
        "per_class": per_class,
        "seed": seed,
    }
    if isinstance(sampler, TransferSampler):  # absent for a noise run, so older folders keep their identity
        real = sampler.pool
        chosen_sources = sorted(source_classes) if source_classes else None  # a set: any order names the same sources
        options.update(sources=real.name, sources_files=data_digest(real), source_classes=chosen_sources)
        for name in chosen:
            sampler.check(name)
    claim = check_output(out_dir, "generate", options, overwrite, OPTION_NAMES)
    claim_output(claim)
    rows = [_row(name, src, run_dir, meta["step"]) for name in chosen for src in sampler.provenance(name, per_class, 0)]
    write_manifest(out_dir, rows)  # what the folder will hold; generate.json says when it does
    with make_progress() as prog:
        task = prog.add_task("generating", total=per_class * len(chosen))
        for name in chosen:
            _write_class(sampler, out_dir, name, per_class, lambda n: prog.advance(task, n))
    summary = {
        "out": str(out_dir),
        "recipe": meta["recipe"],
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


def _sampler(
    run_dir: Path,
    sources: FaceDataset | None,
    seed: int,
    device: str,
    checkpoint: str,
    source_classes: list[str] | None,
) -> tuple[Any, dict[str, Any]]:
    """The run's sampler; a transfer run without ``sources`` and a noise run with them are refused."""
    _, meta = read_generator(Path(run_dir), checkpoint)
    transfer = meta["recipe"] == TRANSFER
    if transfer and sources is None:
        raise UserError(f"{run_dir} is a --recipe transfer run, which re-draws real faces: pass --sources DATA")
    if not transfer and sources is not None:
        raise UserError(f"--sources: {run_dir} is a {meta['recipe']}-recipe run, which draws from noise; drop it")
    pool = with_validation(sources).split("train") if transfer else None
    if transfer and len(pool) == 0:
        raise UserError(f"--sources {sources.name}: no real train faces to translate")
    return load_sampler(run_dir, pool, seed, device, checkpoint, source_classes)


def _row(name: str, source: str, run_dir: Path, step: int) -> dict[str, Any]:
    _, seed, index = parse_synthetic_source(source)
    path = f"{name}/{synthetic_name(name, index)}"
    return synthetic_row(path, name, "train", run_dir, step, seed, index, *parse_source_face(source))


def _write_class(sampler: Any, out_dir: Path, name: str, per_class: int, advance: Callable[[int], Any]) -> None:
    """``out_dir/<name>/syn_<name>_<i>.png`` for candidates 0..per_class-1; a batch whose files all exist (a
    finished part of an interrupted run; writes are atomic) is not drawn again."""
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    for start in range(0, per_class, 256):
        n = min(256, per_class - start)
        paths = [out_dir / name / synthetic_name(name, start + k) for k in range(n)]
        if not all(p.is_file() for p in paths):
            for path, img in zip(paths, sampler.draw(name, n, start).images, strict=True):
                write_png(path, img)
        advance(n)
