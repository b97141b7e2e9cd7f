"""GAN commands: gan-train, generate, gan-eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from augment.cli.data import load_data
from augment.cli.options import (
    DEVICE,
    OVERWRITE_HELP,
    CheckpointOpt,
    DataArg,
    DeviceOpt,
    FormatOpt,
    field_options,
    with_options,
)
from augment.cli.render import note, out, print_gan_eval
from augment.core.errors import UserError
from gan.config import DEFAULT_CHECKPOINT, EVAL_CAS_SEEDS, EVAL_PER_CLASS, GanConfig, check_checkpoint, recipe_config

# generate and gan-eval spell out their options: reading the defaults off generate_to_folder and evaluate_gan
# would import torch for --help (tests/augment/test_cli_options.py checks that they match)
GAN_TRAIN = field_options(GanConfig, lead=("recipe",))  # the recipe first: the options after it override it
RunArg = Annotated[Path, typer.Argument(help="A gan-train run folder.")]


@with_options(settings=GAN_TRAIN)
def gan_train_cmd(
    data: DataArg,
    run_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerun with the same folder to resume.")],
    epochs: Annotated[float | None, typer.Option(help="Instead of --steps: passes over the training images.")] = None,
    *,
    settings: dict,
    fmt: FormatOpt = "auto",
) -> None:
    """Train the conditional GAN on every class at once (resumes from RUN_DIR's checkpoint).

    It trains on train minus a validation split; every --select-every steps it scores the EMA generator
    there and keeps the best one as best.pt beside checkpoint.pt (scores in metrics.jsonl and selection.png)."""
    from gan.config import steps_for_epochs
    from gan.train import train_gan

    size, channels = settings["size"], settings["channels"]
    # None or 0: the config's default for the checks below, then the shape DATA is read at
    cfg = recipe_config(**{**settings, "size": size or None, "channels": channels or None})
    cfg.validate()  # before the data is read: a bad option costs no loading time
    ds = load_data(data, fmt, size, channels)
    cfg.size, cfg.channels = ds.size, ds.channels
    if epochs is not None:
        n_train = int((ds.splits == "train").sum()) or len(ds)
        cfg.steps = steps_for_epochs(epochs, n_train, cfg.batch_size)
    summary = train_gan(ds, run_dir, cfg)
    if summary.get("rank", 0) == 0:
        rate = summary.get("images_per_s")
        out.print(
            f"trained to step {summary['step']}"
            + (f" at {rate:,.0f} images/s" if rate else "")
            + f"; samples in {run_dir}/samples, checkpoint {run_dir}/checkpoint.pt"
        )


def generate_cmd(
    run_dir: RunArg,
    per_class: Annotated[int, typer.Option(help="Images to write per class.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write class folders and manifest.csv into.")],
    classes: Annotated[str | None, typer.Option(help="Only these classes, e.g. 'disgust,fear'.")] = None,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same images.")] = 0,
    device: DeviceOpt = DEVICE,
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
    checkpoint: CheckpointOpt = DEFAULT_CHECKPOINT,
    sources: Annotated[
        Path | None,
        typer.Option(help="A transfer run: the dataset whose real train faces it re-draws (a noise run takes none)."),
    ] = None,
    source_classes: Annotated[
        str | None,
        typer.Option(
            help="A transfer run: translate faces of these classes only (default: every class but the target)."
        ),
    ] = None,
    fmt: FormatOpt = "auto",
) -> None:
    """Write synthetic faces as PNGs in class folders, with a manifest of run, step, seed (and source face)."""
    from augment.core.labels import resolve_classes
    from augment.core.runtime import pick_device
    from gan.generate import generate_to_folder

    check_checkpoint(checkpoint)
    if source_classes and sources is None:
        raise UserError("--source-classes goes with --sources (a transfer run's source faces)")
    pool = load_data(sources, fmt) if sources is not None else None
    chosen = None
    if pool is not None and source_classes:
        chosen = resolve_classes(source_classes, pool.classes, "--sources", "--source-classes")
    summary = generate_to_folder(
        run_dir, out_dir, per_class, classes, seed, pick_device(device), overwrite, checkpoint, pool, chosen
    )
    if summary["checkpoint_note"]:
        note(summary["checkpoint_note"])
    out.print(
        f"wrote {summary['images']} images of {', '.join(summary['classes'])} to {out_dir} "
        f"({summary['checkpoint']} checkpoint, step {summary['checkpoint_step']}); manifest: {out_dir}/manifest.csv"
    )


def gan_eval_cmd(
    run_dir: RunArg,
    data: DataArg,
    judge: Annotated[
        Path | None,
        typer.Option(
            help="An 'augment train' run to grade samples (default: train one without class weights on DATA)."
        ),
    ] = None,
    per_class: Annotated[int, typer.Option(help="Samples per class to score.")] = EVAL_PER_CLASS,
    cas_seeds: Annotated[
        int, typer.Option(help="Sample seeds the CAS macro-F1 is given over (its mean and each seed's).")
    ] = EVAL_CAS_SEEDS,
    inception_weights: Annotated[
        Path | None,
        typer.Option(help="Local FID Inception weights (the pt_inception-*.pth file pytorch-fid downloads)."),
    ] = None,
    checkpoint: CheckpointOpt = DEFAULT_CHECKPOINT,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = DEVICE,
) -> None:
    """Per class: CAS (classifier trained on samples vs on real faces, tested on real validation faces),
    judge assignment and sample confusion matrix, precision/recall, KID, Fréchet distance, memorisation."""
    from augment.core.runtime import pick_device
    from gan.evaluate import check_cas_seeds, check_per_class, evaluate_gan

    check_checkpoint(checkpoint)
    check_per_class(per_class)
    check_cas_seeds(cas_seeds)
    ds = load_data(data, fmt)
    r = evaluate_gan(
        run_dir,
        ds,
        judge_dir=judge,
        per_class=per_class,
        inception_weights=inception_weights,
        device=pick_device(device),
        checkpoint=checkpoint,
        cas_seeds=cas_seeds,
    )
    for text in r["notes"]:
        note(text)
    print_gan_eval(r, run_dir)
