"""The ``augment`` command line: thin wrappers over functions a notebook can call too."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from augment.compare import budget_help
from augment.core.errors import UserError


class _Interrupted(Exception):
    """Ctrl-C, carried past typer (which turns KeyboardInterrupt into a silent exit 130) to ``main``."""


class _Commands(TyperGroup):
    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # a run's RunInterrupted says where it stopped
            raise _Interrupted(str(e) or "interrupted; rerun the same command to resume where it stopped") from e


app = typer.Typer(
    cls=_Commands,
    name="augment",
    help="GAN data augmentation and rebalancing for facial expression recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

DataArg = Annotated[Path, typer.Argument(help="Dataset folder, CSV file, or an 'augment prepare' cache file.")]
FormatOpt = Annotated[
    str,
    typer.Option("--format", help="Force a layout: auto, cache, fer2013-csv, folders, rafdb, affectnet, ckplus."),
]
SizeOpt = Annotated[int | None, typer.Option(help="Resize images to SIZE×SIZE (default 48, or the cache's).")]
ChannelsOpt = Annotated[int | None, typer.Option(help="1 (grayscale) or 3 (RGB); default 1, or the cache's.")]
ClassesOpt = Annotated[
    str | None,
    typer.Option(help="Limit classes ('happy,sad') or map folder names ('joyful=happy,other=').", show_default=False),
]


def _load(data: Path, fmt: str, size: int | None, channels: int | None, classes: str | None):
    from augment.core.readers import load_dataset

    return load_dataset(data, format=fmt, size=size, channels=channels, classes=classes)


# --------------------------------------------------------------------------- data
@app.command("demo-data")
def demo_data_cmd(
    out_dir: Annotated[Path, typer.Argument(help="New folder to write the demo dataset into.")],
    counts: Annotated[
        str | None,
        typer.Option(help="Train images per class, e.g. 'happy=600,disgust=36' (others default)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same faces.")] = 0,
    size: Annotated[int, typer.Option(help="Image size in pixels.")] = 48,
    test_fraction: Annotated[float, typer.Option(help="Test images per class, as a share of train.")] = 0.2,
) -> None:
    """Write procedural demo faces (8 classes, FER2013-like imbalance) as train/test class folders."""
    from augment.demo_faces import DEFAULT_COUNTS, parse_counts, write_demo_dataset

    try:
        chosen = {**DEFAULT_COUNTS, **parse_counts(counts)} if counts else None
    except ValueError as e:
        raise UserError(str(e)) from e
    try:
        written = write_demo_dataset(out_dir, counts=chosen, seed=seed, test_fraction=test_fraction, size=size)
    except FileExistsError as e:
        raise UserError(str(e)) from e
    total = sum(sum(v.values()) for v in written.values())
    out.print(
        f"wrote {total} demo faces to {out_dir} ({', '.join(f'{s} {sum(v.values())}' for s, v in written.items())})"
    )


@app.command("prepare")
def prepare_cmd(
    data: DataArg,
    out_file: Annotated[Path, typer.Option("--out", help="Cache file to write (.npz).")],
    fmt: FormatOpt = "auto",
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    classes: ClassesOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing cache file.")] = False,
    packed: Annotated[
        bool, typer.Option(help="Store encoded image bytes (smaller, e.g. to carry to a GPU machine; slower to load).")
    ] = False,
) -> None:
    """Decode a dataset once into a single cache file that every command accepts as DATA."""
    if out_file.suffix.lower() != ".npz":
        raise UserError(f"{out_file}: the cache file name must end in .npz")
    if out_file.is_dir():
        raise UserError(f"{out_file} is a folder; --out must name a .npz file")
    if out_file.exists() and not overwrite:
        raise UserError(f"{out_file} exists; choose another name or pass --overwrite")
    ds = _load(data, fmt, size, channels, classes)
    ds.save(out_file, packed=packed)
    mb = out_file.stat().st_size / 2**20
    out.print(
        f"cached {len(ds)} images {tuple(ds.images.shape[1:])} of {len(ds.classes)} classes to {out_file} ({mb:.1f} MB)"
    )
    if ds.skipped:
        out.print(f"[yellow]skipped {len(ds.skipped)} unreadable file(s); 'augment inspect' lists them[/yellow]")


@app.command("inspect")
def inspect_cmd(
    data: DataArg,
    fmt: FormatOpt = "auto",
    classes: ClassesOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Write a class-distribution bar chart PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
) -> None:
    """Counts per class and split, imbalance ratio, exact duplicates and unreadable files."""
    from augment.inspect import inspect_dataset, plot_distribution

    ds = _load(data, fmt, None, None, classes)
    report = inspect_dataset(ds)
    if plot is not None:
        plot_distribution(report, plot)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print_inspect(report)
    if plot is not None:
        out.print(f"class-distribution chart: {plot}")


def print_inspect(report: dict) -> None:
    splits = list(report["counts"])
    table = Table(
        title=f"{report['dataset']}  ({report['images']} images, {'×'.join(map(str, report['image_shape']))})"
    )
    table.add_column("class")
    for s in splits:
        table.add_column(s, justify="right")
    for c in report["classes"]:
        table.add_row(c, *(f"{report['counts'][s][c]:,}" for s in splits))
    table.add_section()
    table.add_row("[bold]total", *(f"[bold]{report['totals'][s]:,}" for s in splits))
    table.add_row(
        "imbalance (max/min)",
        *(f"{r:.1f}" if (r := report["imbalance_ratio"][s]) is not None else "∞ (empty class)" for s in splits),
    )
    out.print(table)
    dup = report["duplicates"]
    lines = []
    for s, d in dup["within_split"].items():
        lines.append(
            f"  within {s}: {d['redundant_copies']:,} redundant copies "
            f"({d['images_in_duplicate_groups']:,} images in {d['groups']:,} groups of identical pixels)"
        )
    for k, v in dup["across_splits"].items():
        b, a = k.split("_in_")
        lines.append(f"  across: {v:,} {b} images are identical to a {a} image")
    out.print("[bold]exact duplicates[/bold] (hash of decoded pixels)")
    out.print("\n".join(lines) or "  none")
    if report["dropped"]:
        out.print("dropped labels: " + ", ".join(f"{k} {v:,}" for k, v in report["dropped"].items()))
    if report["subjects"]:
        out.print(f"subjects: {report['subjects']}")
    bad = report["unreadable"]
    out.print(f"[bold]unreadable files[/bold]: {len(bad)}")
    for item in bad[:50]:
        out.print(f"  {item['path']}: {item['reason']}")
    if len(bad) > 50:
        out.print(f"  … and {len(bad) - 50} more (--json lists all)")


# --------------------------------------------------------------------------- GAN
DeviceOpt = Annotated[str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")]


@app.command("gan-train")
def gan_train_cmd(
    data: DataArg,
    run_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerun with the same folder to resume.")],
    recipe: Annotated[
        str, typer.Option(help="full (ours) or classic (textbook cDCGAN); options below override.")
    ] = "full",
    steps: Annotated[int | None, typer.Option(help="Generator steps to train to (default 6000).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Instead of --steps: passes over the training images.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch size (default 64).")] = None,
    lr_g: Annotated[float | None, typer.Option(help="Generator learning rate (default 2e-4).")] = None,
    lr_d: Annotated[float | None, typer.Option(help="Discriminator learning rate (default 2e-4).")] = None,
    size: Annotated[int | None, typer.Option(help="Image size: 32, 48, 64, 96 or 128 (default 48).")] = None,
    channels: Annotated[int | None, typer.Option(help="1 (grayscale) or 3 (RGB) (default 1).")] = None,
    classes: ClassesOpt = None,
    g_width: Annotated[int | None, typer.Option(help="Generator base width.")] = None,
    d_width: Annotated[int | None, typer.Option(help="Discriminator base width.")] = None,
    loss: Annotated[str | None, typer.Option(help="hinge or bce.")] = None,
    conditioning: Annotated[str | None, typer.Option(help="projection or concat (label maps).")] = None,
    spectral_norm: Annotated[bool | None, typer.Option("--spectral-norm/--no-spectral-norm")] = None,
    cond_bn: Annotated[bool | None, typer.Option("--cond-bn/--no-cond-bn", help="Class-conditional BN in G.")] = None,
    diffaugment: Annotated[
        str | None, typer.Option(help="DiffAugment policy, e.g. 'color,translation,cutout'; '' = off.")
    ] = None,
    balanced: Annotated[bool | None, typer.Option("--balanced/--natural", help="Class-balanced real batches.")] = None,
    aux_weight: Annotated[float | None, typer.Option(help="Weight of an AC-GAN class loss (0 = off).")] = None,
    ema: Annotated[float | None, typer.Option(help="EMA decay of the sampling generator (0 = off).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: DeviceOpt = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA.")] = True,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps.")] = 500,
    checkpoint_every: Annotated[int, typer.Option(help="Write a checkpoint every N steps.")] = 250,
    log_every: Annotated[int, typer.Option(help="Log losses and images/s to metrics.jsonl every N steps.")] = 25,
    max_minutes: Annotated[
        float, typer.Option(help="Stop (and checkpoint) after this many minutes; 0 = no limit.")
    ] = 0.0,
    fmt: FormatOpt = "auto",
) -> None:
    """Train the conditional GAN on every class at once (resumes from RUN_DIR's checkpoint)."""
    from gan.config import recipe_config
    from gan.train import train_gan

    ds = _load(data, fmt, size, channels, None)
    try:
        cfg = recipe_config(
            recipe,
            steps=steps,
            batch_size=batch_size,
            lr_g=lr_g,
            lr_d=lr_d,
            g_width=g_width,
            d_width=d_width,
            loss=loss,
            conditioning=conditioning,
            spectral_norm=spectral_norm,
            cond_bn=cond_bn,
            diffaugment=diffaugment,
            balanced=balanced,
            aux_weight=aux_weight,
            ema=ema,
        )
    except (ValueError, TypeError) as e:
        raise UserError(str(e)) from e
    cfg.size, cfg.channels = ds.size, ds.channels
    cfg.seed, cfg.device, cfg.amp = seed, device, amp
    cfg.sample_every, cfg.checkpoint_every, cfg.max_minutes = sample_every, checkpoint_every, max_minutes
    cfg.log_every = log_every
    if classes:
        from augment.core.labels import parse_class_spec

        cfg.classes = sorted((parse_class_spec(classes) or None).keep)  # type: ignore[union-attr]
    if epochs is not None:
        n_train = int((ds.splits == "train").sum()) or len(ds)
        cfg.steps = max(1, round(epochs * n_train / cfg.batch_size))
    _check_gan_options(cfg)
    summary = train_gan(ds, run_dir, cfg)
    if summary.get("rank", 0) == 0:
        rate = summary.get("images_per_s")
        out.print(
            f"trained to step {summary['step']}"
            + (f" at {rate:,.0f} images/s" if rate else "")
            + f"; samples in {run_dir}/samples, checkpoint {run_dir}/checkpoint.pt"
        )


def _check_gan_options(cfg) -> None:
    if cfg.size not in (32, 48, 64, 96, 128):
        raise UserError(f"--size {cfg.size}: the GAN supports 32, 48, 64, 96 and 128")
    if cfg.loss not in ("hinge", "bce"):
        raise UserError(f"--loss {cfg.loss}: use hinge or bce")
    if cfg.conditioning not in ("projection", "concat"):
        raise UserError(f"--conditioning {cfg.conditioning}: use projection or concat")
    if cfg.steps < 1 or cfg.batch_size < 2:
        raise UserError("--steps must be ≥ 1 and --batch-size ≥ 2")
    from gan.diffaugment import diff_augment

    try:
        import torch

        diff_augment(torch.zeros(1, 1, 8, 8), cfg.diffaugment)
    except ValueError as e:
        raise UserError(f"--diffaugment: {e}") from e


@app.command("generate")
def generate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A gan-train run folder.")],
    per_class: Annotated[int, typer.Option(help="Images to write per class.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write class folders and manifest.csv into.")],
    classes: Annotated[str | None, typer.Option(help="Only these classes, e.g. 'disgust,fear'.")] = None,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same images.")] = 0,
    device: DeviceOpt = "auto",
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty folder.")] = False,
) -> None:
    """Write synthetic faces as PNGs in class folders, with a manifest of run, step and seed."""
    from augment.core.runtime import pick_device
    from gan.generate import generate_to_folder

    summary = generate_to_folder(run_dir, out_dir, per_class, classes, seed, pick_device(device), overwrite)
    out.print(
        f"wrote {summary['images']} images of {', '.join(summary['classes'])} to {out_dir} "
        f"(checkpoint step {summary['checkpoint_step']}); manifest: {out_dir}/manifest.csv"
    )


@app.command("gan-eval")
def gan_eval_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A gan-train run folder.")],
    data: DataArg,
    judge: Annotated[
        Path | None, typer.Option(help="An 'augment train' run to judge samples (default: train one on DATA).")
    ] = None,
    per_class: Annotated[int, typer.Option(help="Samples per class to score.")] = 200,
    inception_weights: Annotated[
        Path | None, typer.Option(help="Local FID Inception weights (pt_inception-2015-12-05-6726825d.pth).")
    ] = None,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = "auto",
) -> None:
    """Per-class Fréchet distance, judge-classifier assignment and memorisation of samples."""
    from augment.core.runtime import pick_device
    from gan.evaluate import evaluate_gan

    ds = _load(data, fmt, None, None, None)
    r = evaluate_gan(
        run_dir,
        ds,
        judge_dir=judge,
        per_class=per_class,
        inception_weights=inception_weights,
        device=pick_device(device),
    )
    j, fd, mem = r["judge"], r["frechet"], r["memorisation"]
    table = Table(title=f"{run_dir} at step {r['checkpoint_step']} ({per_class} samples per class)")
    table.add_column("class")
    table.add_column("judge: samples → class", justify="right")
    table.add_column("judge: real test recall", justify="right")
    table.add_column("Fréchet", justify="right")
    table.add_column("near-copies", justify="right")
    for c in j["sample_assignment"]:
        table.add_row(
            c,
            f"{j['sample_assignment'][c]:.2f}",
            f"{j['real_test_recall'].get(c, 0):.2f}",
            f"{fd['per_class'][c]:.1f}",
            str(mem["per_class"].get(c, {}).get("near_copies", 0)),
        )
    out.print(table)
    out.print(f"chance = {j['chance']:.2f}; Fréchet space: {fd['space']}")
    out.print(f"pictures: {run_dir}/eval/judge.png, {run_dir}/eval/nearest.png; numbers: {run_dir}/eval/metrics.json")


# --------------------------------------------------------------------------- classifiers
@app.command("train")
def train_cmd(
    ctx: typer.Context,
    data: DataArg,
    run_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerun with the same folder to resume.")],
    model: Annotated[str, typer.Option(help="resemotenet, resnet18, simple-deep-cnn or simple-cnn.")] = "simple-cnn",
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Global batch size.")] = 64,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd.")] = "adamw",
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 1e-4,
    schedule: Annotated[str, typer.Option(help="cosine, plateau or none.")] = "cosine",
    size: Annotated[int, typer.Option(help="Input size; 0 = the model's default (64 ResEmoteNet, else 48).")] = 0,
    width: Annotated[float, typer.Option(help="Width multiplier (ResEmoteNet at 1.0 has 80M parameters).")] = 1.0,
    small_stem: Annotated[bool, typer.Option(help="ResNet18: 3×3 stem without max-pool for small faces.")] = False,
    pretrained: Annotated[Path | None, typer.Option(help="ResNet18: local ImageNet weights file.")] = None,
    class_weighted: Annotated[bool, typer.Option(help="Class-weighted cross-entropy (inverse frequency).")] = False,
    balanced_sampler: Annotated[bool, typer.Option(help="Draw each class equally often.")] = False,
    focal_gamma: Annotated[float, typer.Option(help="Focal loss with this gamma (0 = cross-entropy).")] = 0.0,
    erasing: Annotated[bool, typer.Option(help="Random erasing augmentation.")] = False,
    patience: Annotated[int, typer.Option(help="Early stop after N epochs without a better val score (0 = off).")] = 8,
    select_metric: Annotated[
        str, typer.Option(help="Validation metric for model selection: macro_f1 or accuracy.")
    ] = "macro_f1",
    epoch_samples: Annotated[int, typer.Option(help="Images per epoch (0 = all); shorter epochs for CPU budgets.")] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of train held out when DATA has no val split.")] = 0.1,
    classes: ClassesOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: DeviceOpt = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA.")] = True,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes for augmentation.")] = 0,
    max_minutes: Annotated[
        float, typer.Option(help="Stop (and checkpoint) after this many minutes; 0 = no limit.")
    ] = 0.0,
    fmt: FormatOpt = "auto",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A JSON file of training settings (TrainConfig fields; compare writes one per child run). "
            "It gives every setting: any other training option given with it is an error; unset fields "
            "take the defaults.",
        ),
    ] = None,
) -> None:
    """Train a FER classifier; model selection and early stopping use validation only."""
    from classifier.config import TrainConfig

    if config is not None:
        _train_and_report(data, fmt, run_dir, _train_config_file(ctx, config))
        return
    _check_model(model, pretrained)
    keep: list[str] = []
    if classes:
        from augment.core.labels import parse_class_spec

        keep = sorted(parse_class_spec(classes).keep)  # type: ignore[union-attr]
    cfg = TrainConfig(
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        schedule=schedule,
        size=size,
        width=width,
        small_stem=small_stem,
        pretrained=str(pretrained or ""),
        class_weighted=class_weighted,
        balanced_sampler=balanced_sampler,
        focal_gamma=focal_gamma,
        erasing=erasing,
        patience=patience,
        select_metric=select_metric,
        epoch_samples=epoch_samples,
        val_fraction=val_fraction,
        classes=keep,
        seed=seed,
        device=device,
        amp=amp,
        workers=workers,
        max_minutes=max_minutes,
    )
    _train_and_report(data, fmt, run_dir, cfg)


def _check_model(model: str, pretrained: Path | None) -> None:
    from classifier.models import MODEL_NAMES

    if model not in MODEL_NAMES:
        raise UserError(f"--model {model}: use one of {', '.join(MODEL_NAMES)}")
    if pretrained is not None and not pretrained.is_file():
        raise UserError(f"--pretrained {pretrained}: no such file")


def _train_config_file(ctx: typer.Context, path: Path):
    """``train --config FILE``: the file gives every setting, so another training option given with it is
    refused (DATA, --out and --format say what to train on, not how)."""
    from augment.compare import read_train_config

    sources = {p.name: ctx.get_parameter_source(p.name) for p in ctx.command.params}
    given = [
        "/".join(p.opts + p.secondary_opts)
        for p in ctx.command.params
        if p.name not in ("data", "run_dir", "fmt", "config")
        and getattr(sources[p.name], "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")
    ]
    if given:
        raise UserError(f"--config {path} gives every training setting; drop {', '.join(given)}")
    cfg = read_train_config(path)
    try:
        _check_model(cfg.model, Path(cfg.pretrained) if cfg.pretrained else None)
    except UserError as e:
        raise UserError(f"--config {path}: {e}") from e
    return cfg


def _train_and_report(data: Path, fmt: str, run_dir: Path, cfg) -> None:
    from classifier.train import train_classifier

    summary = train_classifier(_load(data, fmt, None, None, None), run_dir, cfg)
    best = summary.get("best_val") or {}
    if best and summary.get("rank", 0) == 0:
        out.print(
            f"best epoch {best['epoch']}: val accuracy {best['val_acc']:.3f}, val macro-F1 "
            f"{best['val_macro_f1']:.3f}; model {run_dir}/model.pt, curves {run_dir}/curves.png"
        )


@app.command("evaluate")
def evaluate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="An 'augment train' run folder.")],
    data: DataArg,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write metrics.json and confusion.png.")
    ] = None,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Accuracy, macro-F1 and per-class precision/recall/F1, with a confusion-matrix PNG."""
    from augment.core.runtime import pick_device
    from classifier.evaluate import evaluate_run

    ds = _load(data, fmt, None, None, None)
    m = evaluate_run(run_dir, ds, split=split, out_dir=out_dir, device=pick_device(device))
    if as_json:
        print(json.dumps(m, indent=2))
        return
    table = Table(
        title=f"{run_dir} on {split} ({m['n']} images): accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
    )
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for c, v in m["per_class"].items():
        table.add_row(c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
    out.print(table)
    where = out_dir or Path(run_dir) / f"eval_{split}"
    out.print(f"confusion matrix: {where}/confusion.png, metrics: {where}/metrics.json")


@app.command("predict")
def predict_cmd(
    run_dir: Annotated[Path, typer.Argument(help="An 'augment train' run folder.")],
    images: Annotated[list[Path], typer.Argument(help="Image files of CROPPED faces (no face detection is done).")],
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """Top class and class probabilities per image. Expects cropped, roughly centred faces."""
    from augment.core.runtime import pick_device
    from classifier.evaluate import predict_files

    results = predict_files(run_dir, images, device=pick_device(device))
    if as_json:
        for r in results:
            print(json.dumps(r))
        return
    classes = list(results[0]["probabilities"]) if results else []
    table = Table()
    table.add_column("image")
    table.add_column("top")
    for c in classes:
        table.add_column(c, justify="right")
    for r in results:
        table.add_row(r["path"], r["top"], *(f"{r['probabilities'][c]:.2f}" for c in classes))
    out.print(table)


# --------------------------------------------------------------------------- rebalance / compare
@app.command("rebalance")
def rebalance_cmd(
    data: DataArg,
    generator: Annotated[Path, typer.Option(help="A gan-train run folder.")],
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the rebalanced dataset.")],
    target: Annotated[str, typer.Option(help="max, median, N, or class=N,... per-class targets.")] = "max",
    classes: Annotated[
        str | None, typer.Option(help="Only these classes get synthetic images, e.g. 'disgust,fear'.")
    ] = None,
    fraction: Annotated[float, typer.Option(help="Fill only this share of each class's shortfall.")] = 1.0,
    min_prob: Annotated[
        float, typer.Option(help="Keep samples the judge gives ≥ this probability for their class (0 = off).")
    ] = 0.3,
    drop_near_copies: Annotated[bool, typer.Option("--drop-near-copies/--keep-near-copies")] = True,
    judge: Annotated[
        Path | None,
        typer.Option(help="An 'augment train' run used as the judge (default: the generator's, or train one)."),
    ] = None,
    out_format: Annotated[
        str, typer.Option("--format", help="Output layout: folders (ImageFolder) or fer2013-csv.")
    ] = "folders",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic samples.")] = 0,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and stop.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty --out.")] = False,
    fmt: Annotated[str, typer.Option("--data-format", help="Force the input layout (see inspect --format).")] = "auto",
    device: DeviceOpt = "auto",
) -> None:
    """Add synthetic faces to the minority classes and write a rebalanced dataset plus manifest."""
    from augment.core.labels import resolve_classes
    from augment.core.runtime import pick_device
    from augment.plan import plan_rebalance
    from augment.rebalance import QualityFilter, run_rebalance
    from gan.sample import load_generator

    ds = _load(data, fmt, None, None, None)
    if not ds.has_split("train"):
        raise UserError(f"{data}: no train split to rebalance")
    _, meta = load_generator(generator)
    chosen = resolve_classes(classes, ds.classes) if classes else None
    plan = plan_rebalance(ds.counts("train"), target, chosen, fraction, available=meta["classes"])
    table = Table(title=f"rebalance plan (train split; target {target}, fraction {fraction:g})")
    for col in ("class", "real", "synthetic", "final"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for p in plan:
        table.add_row(p.name, f"{p.real:,}", f"+{p.add:,}" if p.add else "0", f"{p.final:,}")
    table.add_section()
    table.add_row(
        "total", f"{sum(p.real for p in plan):,}", f"+{sum(p.add for p in plan):,}", f"{sum(p.final for p in plan):,}"
    )
    out.print(table)
    if dry_run:
        return
    dev = pick_device(device)
    quality = QualityFilter(min_prob=min_prob, drop_near_copies=drop_near_copies)
    judge_model = None
    if min_prob > 0:
        from classifier.judge import get_judge

        judge_model = get_judge(ds, Path(generator), judge, dev)
    summary = run_rebalance(ds, generator, out_dir, plan, judge_model, quality, seed, out_format, overwrite, dev)
    for c, r in summary["synthesis"]["per_class"].items():
        out.print(
            f"{c}: kept {r['added']:,} of {r['generated']:,} generated "
            f"(dropped {r['dropped_by_judge']:,} by the judge, {r['dropped_near_copies']:,} near-copies)"
        )
    out.print(
        f"wrote {summary['files']:,} files ({summary['synthetic_files']:,} synthetic) to {out_dir}; "
        f"manifest: {out_dir}/manifest.csv"
    )


@app.command("compare")
def compare_cmd(
    data: DataArg,
    generator: Annotated[Path, typer.Option(help="A gan-train run folder.")],
    report_dir: Annotated[Path, typer.Option("--out", help="Report folder; rerun to resume (finished runs are kept).")],
    models: Annotated[
        str, typer.Option(help="Comma-separated: resemotenet, resnet18, simple-deep-cnn, simple-cnn.")
    ] = "resnet18,resemotenet",
    conditions: Annotated[
        str, typer.Option(help="baseline, gan, oversample, weighted, gan+weighted, gan25, gan50.")
    ] = "baseline,gan,oversample,weighted",
    sweep: Annotated[bool, typer.Option(help="Also run gan25 and gan50 (25/50% of the shortfall).")] = False,
    seeds: Annotated[int, typer.Option(help="Seeds per model and condition (paired across conditions).")] = 3,
    budget: Annotated[str, typer.Option(help=budget_help())] = "cpu-small",
    target: Annotated[str, typer.Option(help="Rebalance target: max, median, N, or class=N,...")] = "max",
    classes: Annotated[str | None, typer.Option(help="Only these classes get synthetic images / duplicates.")] = None,
    min_prob: Annotated[float, typer.Option(help="Quality filter: judge probability for the class (0 = off).")] = 0.3,
    judge: Annotated[
        Path | None,
        typer.Option(help="Classifier run for the quality filter (default: the generator's, or train one)."),
    ] = None,
    gpus: Annotated[str | None, typer.Option(help="Spread independent runs over these GPUs, e.g. '0,1,2,3'.")] = None,
    nproc: Annotated[int, typer.Option(help="Hand each run to torchrun with this many processes.")] = 1,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = "auto",
) -> None:
    """Train classifiers with and without synthetic data (and classical fixes); test on real images."""
    from augment.compare import CompareSpec, run_compare
    from augment.core.labels import resolve_classes

    ds = _load(data, fmt, None, None, None)
    cond_list = [c.strip() for c in conditions.split(",") if c.strip()]
    if sweep:
        cond_list += [c for c in ("gan25", "gan50") if c not in cond_list]
    if "baseline" not in cond_list:
        cond_list.insert(0, "baseline")
    try:
        gpu_list = [int(g) for g in gpus.split(",")] if gpus else []
    except ValueError as e:
        raise UserError(f"--gpus {gpus}: give GPU numbers like 0,1") from e
    spec = CompareSpec(
        models=[m.strip() for m in models.split(",") if m.strip()],
        conditions=cond_list,
        seeds=seeds,
        budget=budget,
        target=target,
        classes=resolve_classes(classes, ds.classes) if classes else None,
        min_prob=min_prob,
        device=device,
        gpus=gpu_list,
        nproc=nproc,
        judge=judge,
    )
    summary = run_compare(ds, generator, report_dir, spec)
    out.print(f"report: {report_dir}/REPORT.md ({len(summary['runs'])} runs); numbers: {report_dir}/results.json")


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.")] = Path("demo-out"),
    gan_steps: Annotated[int, typer.Option(help="GAN training steps.")] = 900,
    seeds: Annotated[int, typer.Option(help="Seeds per condition in the comparison.")] = 2,
    device: DeviceOpt = "auto",
) -> None:
    """The whole loop on the embedded demo faces: data → GAN → rebalance → compare → report."""
    from augment.demo import run_demo

    r = run_demo(out_dir, gan_steps=gan_steps, seeds=seeds, device=device)
    out.rule("done")
    out.print(f"report:            {r['report']}")
    out.print(f"GAN samples:       {out_dir}/gan/samples/ (and losses.png)")
    out.print(f"GAN judge/nearest: {out_dir}/gan/eval/judge.png, {out_dir}/gan/eval/nearest.png")
    out.print(f"rebalanced data:   {out_dir}/rebalanced/ (manifest.csv marks synthetic files)")
    out.print(f"class chart:       {out_dir}/class_distribution.png")


# --------------------------------------------------------------------------- entry
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes become one line on stderr and a non-zero exit."""
    try:
        app(args=argv, prog_name="augment")
    except UserError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except _Interrupted as e:
        err.print(escape(str(e)), highlight=False, soft_wrap=True)
        sys.exit(130)
