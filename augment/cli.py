"""The ``augment`` command line: thin wrappers over functions a notebook can call too."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from augment.compare import CONDITION_HELP, DEFAULT_CONDITIONS, DEFAULT_MODELS, CompareSpec, budget_help
from augment.core.errors import UserError
from augment.demo import run_demo
from augment.demo_faces import write_demo_dataset
from augment.plan import plan_rebalance
from augment.rebalance import QualityFilter, run_rebalance
from classifier.config import TrainConfig
from gan.config import (
    DEFAULT_CHECKPOINT,
    EVAL_CAS_SEEDS,
    EVAL_PER_CLASS,
    RECIPES,
    GanConfig,
    check_checkpoint,
    recipe_config,
)


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


# --------------------------------------------------------------------------- defaults
# Each default is defined once, in a config dataclass or in the signature of the function a command calls;
# the options below read it from there, and typer shows it in --help.
def _defaults(func: Any) -> SimpleNamespace:
    """The parameter defaults of a function or dataclass, as attributes (for dataclasses with required fields
    and for functions; none of these imports torch, so --help stays fast)."""
    params = inspect.signature(func).parameters.values()
    return SimpleNamespace(**{p.name: p.default for p in params if p.default is not inspect.Parameter.empty})


_TRAIN = TrainConfig()
_GAN = GanConfig()
_QUALITY = QualityFilter()
_COMPARE = _defaults(CompareSpec)
_PLAN = _defaults(plan_rebalance)
_REBALANCE = _defaults(run_rebalance)
_DEMO = _defaults(run_demo)
_DEMO_DATA = _defaults(write_demo_dataset)


def _show_value(value: Any) -> str:
    """A default as --help writes it: on/off for switches, '' for an empty string."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else "''"


def _recipe_help(text: str, name: str) -> str:
    """Help of a gan-train option that stays None so the recipe decides: 'TEXT (default: X; classic: Y).'"""
    default = getattr(recipe_config(_GAN.recipe), name)
    shown = [_show_value(default)]
    shown += [f"{r}: {_show_value(v)}" for r in RECIPES if (v := getattr(recipe_config(r), name)) != default]
    return f"{text} (default: {'; '.join(shown)})."


def _load(
    data: Path, fmt: str, size: int | None, channels: int | None, classes: str | None, warn_unreadable: bool = True
):
    """The dataset at DATA; files that could not be read are skipped with one warning line (exit 0)."""
    from augment.core.readers import load_dataset, unreadable_warning

    ds = load_dataset(data, format=fmt, size=size, channels=channels, classes=classes)
    if warn_unreadable and (note := unreadable_warning(ds)):
        warn(note)
    return ds


def warn(text: str) -> None:
    """One ``warning:`` line on stderr; the command goes on (and exits 0 unless something else fails)."""
    err.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True)


def _class_names(classes: str | None) -> list[str]:
    """``--classes happy,sad`` of train and gan-train as canonical names ([] = every class)."""
    from augment.core.labels import parse_class_spec

    try:
        spec = parse_class_spec(classes)
    except ValueError as e:
        raise UserError(str(e)) from e
    return sorted(spec.keep) if spec else []


# --------------------------------------------------------------------------- data
@app.command("demo-data")
def demo_data_cmd(
    out_dir: Annotated[Path, typer.Argument(help="New folder to write the demo dataset into.")],
    counts: Annotated[
        str | None,
        typer.Option(help="Train images per class, e.g. 'happy=600,disgust=36' (others default)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same faces.")] = _DEMO_DATA.seed,
    size: Annotated[int, typer.Option(help="Image size in pixels.")] = _DEMO_DATA.size,
    test_fraction: Annotated[
        float, typer.Option(help="Test images per class, as a share of train.")
    ] = _DEMO_DATA.test_fraction,
) -> None:
    """Write procedural demo faces (8 classes, FER2013-like imbalance) as train/test class folders."""
    from augment.demo_faces import DEFAULT_COUNTS, parse_counts

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


@app.command("inspect")
def inspect_cmd(
    data: DataArg,
    fmt: FormatOpt = "auto",
    classes: ClassesOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Write a class-distribution bar chart PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
) -> None:
    """Counts per class and split, imbalance ratio, exact duplicates and unreadable files."""
    from augment.inspection import inspect_dataset, plot_distribution

    ds = _load(data, fmt, None, None, classes, warn_unreadable=False)  # the report lists the unreadable files
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
    # a split holding synthetic images gets a real and a synthetic column after its total
    cols = [(split, split, "counts") for split in splits]
    for split in (s for s in splits if sum(report["synthetic_counts"][s].values())):
        at = cols.index((split, split, "counts")) + 1
        cols[at:at] = [(f"{split} real", split, "real_counts"), (f"{split} synthetic", split, "synthetic_counts")]
    table.add_column("class")
    for header, _, _ in cols:
        table.add_column(header, justify="right")
    for c in report["classes"]:
        table.add_row(c, *(f"{report[key][split][c]:,}" for _, split, key in cols))
    table.add_section()
    table.add_row("[bold]total", *(f"[bold]{sum(report[key][split].values()):,}" for _, split, key in cols))
    ratios = {s: f"{r:.1f}" if (r := report["imbalance_ratio"][s]) is not None else "∞ (empty class)" for s in splits}
    table.add_row("imbalance (max/min)", *(ratios[split] if key == "counts" else "" for _, split, key in cols))
    out.print(table)
    out.print(f"synthetic images: {report['synthetic']:,}" + ("" if report["synthetic"] else " (all real)"))
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
_OVERWRITE_HELP = (
    "Replace another run's output: remove the files its manifest lists. "
    "A folder holding files no manifest lists is refused."
)
DeviceOpt = Annotated[str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")]
CheckpointOpt = Annotated[
    str,
    typer.Option(
        help="best (the generator best on the validation split; the last one when the run has no best.pt) or last."
    ),
]


@app.command("gan-train")
def gan_train_cmd(
    data: DataArg,
    run_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerun with the same folder to resume.")],
    recipe: Annotated[
        str, typer.Option(help="full (ours) or classic (textbook cDCGAN); options below override.")
    ] = _GAN.recipe,
    steps: Annotated[int | None, typer.Option(help=_recipe_help("Generator steps to train to", "steps"))] = None,
    epochs: Annotated[float | None, typer.Option(help="Instead of --steps: passes over the training images.")] = None,
    batch_size: Annotated[int | None, typer.Option(help=_recipe_help("Global batch size", "batch_size"))] = None,
    lr_g: Annotated[float | None, typer.Option(help=_recipe_help("Generator learning rate", "lr_g"))] = None,
    lr_d: Annotated[float | None, typer.Option(help=_recipe_help("Discriminator learning rate", "lr_d"))] = None,
    size: Annotated[
        int | None, typer.Option(help=f"Image size: 32, 48, 64, 96 or 128 (default: {_GAN.size}, or the cache's).")
    ] = None,
    channels: Annotated[
        int | None, typer.Option(help=f"1 (grayscale) or 3 (RGB) (default: {_GAN.channels}, or the cache's).")
    ] = None,
    classes: ClassesOpt = None,
    g_width: Annotated[int | None, typer.Option(help=_recipe_help("Generator base width", "g_width"))] = None,
    d_width: Annotated[int | None, typer.Option(help=_recipe_help("Discriminator base width", "d_width"))] = None,
    loss: Annotated[str | None, typer.Option(help=_recipe_help("hinge or bce", "loss"))] = None,
    conditioning: Annotated[
        str | None, typer.Option(help=_recipe_help("projection or concat (label maps)", "conditioning"))
    ] = None,
    spectral_norm: Annotated[
        bool | None,
        typer.Option("--spectral-norm/--no-spectral-norm", help=_recipe_help("Spectral norm in D", "spectral_norm")),
    ] = None,
    cond_bn: Annotated[
        bool | None, typer.Option("--cond-bn/--no-cond-bn", help=_recipe_help("Class-conditional BN in G", "cond_bn"))
    ] = None,
    diffaugment: Annotated[
        str | None,
        typer.Option(help=_recipe_help("DiffAugment policy, e.g. 'color,translation,cutout'; '' = off", "diffaugment")),
    ] = None,
    color_p: Annotated[
        float | None,
        typer.Option(
            help=_recipe_help("Share of faces DiffAugment's colour ops touch (below ~0.8: no leak)", "color_p")
        ),
    ] = None,
    ada_target: Annotated[
        float | None,
        typer.Option(
            help=_recipe_help("Adapt --color-p to keep E[sign D(real)] at this (ADA: 0.6; 0 = off)", "ada_target")
        ),
    ] = None,
    lecam_weight: Annotated[
        float | None, typer.Option(help=_recipe_help("LeCam regularisation of D (0 = off; e.g. 0.3)", "lecam_weight"))
    ] = None,
    cond_ramp: Annotated[
        int | None,
        typer.Option(help=_recipe_help("Ramp D's class terms in over N steps (transitional; 0 = off)", "cond_ramp")),
    ] = None,
    ms_weight: Annotated[
        float | None,
        typer.Option(
            help=_recipe_help("Mode seeking: pairs of noises of one class drawn apart (0 = off)", "ms_weight")
        ),
    ] = None,
    exposure_norm: Annotated[
        bool | None,
        typer.Option(
            "--exposure-norm/--no-exposure-norm",
            help=_recipe_help("G learns faces of one exposure; samples take real faces' (per class)", "exposure_norm"),
        ),
    ] = None,
    balanced: Annotated[
        bool | None,
        typer.Option("--balanced/--natural", help=_recipe_help("Class-balanced real batches", "balanced")),
    ] = None,
    aux_weight: Annotated[
        float | None, typer.Option(help=_recipe_help("Weight of an AC-GAN class loss (0 = off)", "aux_weight"))
    ] = None,
    ema: Annotated[
        float | None, typer.Option(help=_recipe_help("EMA decay of the sampling generator (0 = off)", "ema"))
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = _GAN.seed,
    device: DeviceOpt = _GAN.device,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA.")] = _GAN.amp,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps.")] = _GAN.sample_every,
    checkpoint_every: Annotated[int, typer.Option(help="Write a checkpoint every N steps.")] = _GAN.checkpoint_every,
    log_every: Annotated[
        int, typer.Option(help="Log losses and images/s to metrics.jsonl every N steps.")
    ] = _GAN.log_every,
    max_minutes: Annotated[
        float, typer.Option(help="Stop (and checkpoint) after this many minutes; 0 = no limit.")
    ] = _GAN.max_minutes,
    val_fraction: Annotated[
        float,
        typer.Option(
            help="Share of train held out as the validation split the generator never sees (if DATA has none)."
        ),
    ] = _GAN.val_fraction,
    select_every: Annotated[
        int,
        typer.Option(
            help="Score the generator on the validation split every N steps and keep the best as best.pt (0 = off)."
        ),
    ] = _GAN.select_every,
    select_per_class: Annotated[
        int, typer.Option(help="Samples per class scored at each selection.")
    ] = _GAN.select_per_class,
    judge: Annotated[
        Path | None,
        typer.Option(
            help="An 'augment train' run that scores selection (default: train the grading judge in RUN_DIR)."
        ),
    ] = None,
    fmt: FormatOpt = "auto",
) -> None:
    """Train the conditional GAN on every class at once (resumes from RUN_DIR's checkpoint).

    It trains on train minus a validation split; every --select-every steps it scores the EMA generator
    there and keeps the best one as best.pt beside checkpoint.pt (scores in metrics.jsonl and selection.png)."""
    from gan.config import recipe_config, steps_for_epochs
    from gan.train import train_gan

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
        color_p=color_p,
        ada_target=ada_target,
        lecam_weight=lecam_weight,
        cond_ramp=cond_ramp,
        ms_weight=ms_weight,
        exposure_norm=exposure_norm,
        balanced=balanced,
        aux_weight=aux_weight,
        ema=ema,
        size=size or _GAN.size,
        channels=channels or _GAN.channels,
        classes=_class_names(classes),
        seed=seed,
        device=device,
        amp=amp,
        sample_every=sample_every,
        checkpoint_every=checkpoint_every,
        log_every=log_every,
        max_minutes=max_minutes,
        val_fraction=val_fraction,
        select_every=select_every,
        select_per_class=select_per_class,
        judge=str(judge or ""),
    )
    cfg.validate()  # before the data is read: a bad option costs no loading time
    ds = _load(data, fmt, size, channels, None)
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


@app.command("generate")
def generate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A gan-train run folder.")],
    per_class: Annotated[int, typer.Option(help="Images to write per class.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write class folders and manifest.csv into.")],
    classes: Annotated[str | None, typer.Option(help="Only these classes, e.g. 'disgust,fear'.")] = None,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same images.")] = 0,
    device: DeviceOpt = _GAN.device,
    overwrite: Annotated[bool, typer.Option(help=_OVERWRITE_HELP)] = False,
    checkpoint: CheckpointOpt = DEFAULT_CHECKPOINT,
) -> None:
    """Write synthetic faces as PNGs in class folders, with a manifest of run, step and seed."""
    from augment.core.runtime import pick_device
    from gan.generate import generate_to_folder

    check_checkpoint(checkpoint)
    summary = generate_to_folder(run_dir, out_dir, per_class, classes, seed, pick_device(device), overwrite, checkpoint)
    if summary["checkpoint_note"]:
        out.print(f"[yellow]note:[/yellow] {escape(summary['checkpoint_note'])}", highlight=False, soft_wrap=True)
    out.print(
        f"wrote {summary['images']} images of {', '.join(summary['classes'])} to {out_dir} "
        f"({summary['checkpoint']} checkpoint, step {summary['checkpoint_step']}); manifest: {out_dir}/manifest.csv"
    )


@app.command("gan-eval")
def gan_eval_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A gan-train run folder.")],
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
        Path | None, typer.Option(help="Local FID Inception weights (pt_inception-2015-12-05-6726825d.pth).")
    ] = None,
    checkpoint: CheckpointOpt = DEFAULT_CHECKPOINT,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = _GAN.device,
) -> None:
    """Per class: CAS (classifier trained on samples vs on real faces, tested on real validation faces),
    judge assignment and sample confusion matrix, precision/recall, KID, Fréchet distance, memorisation."""
    from augment.core.runtime import pick_device
    from gan.evaluate import check_cas_seeds, check_per_class, evaluate_gan

    check_checkpoint(checkpoint)
    check_per_class(per_class)
    check_cas_seeds(cas_seeds)
    ds = _load(data, fmt, None, None, None)
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
    for note in r["notes"]:
        out.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)
    _print_gan_eval(r, run_dir)


def _cas_line(c: dict | None) -> str:
    if not c:
        return "CAS macro-F1: not measured (no validation faces)"
    each = ", ".join(f"{f:.3f}" for f in c["synthetic_macro_f1"])
    sd = f" ± {c['sd']:.3f} (sd)" if c["sd"] is not None else ""
    return (
        f"CAS macro-F1 over {len(c['seeds'])} sample seed(s): {c['mean']:.3f}{sd} ({each}); "
        f"real-trained {c['real_macro_f1']:.3f}"
    )


def _print_gan_eval(r: dict, run_dir: Path) -> None:
    j, cas = r["judge"], r["cas"] or {"per_class": {}}
    table = Table(
        title=f"{run_dir}, {r['checkpoint']} checkpoint at step {r['checkpoint_step']} "
        f"({r['samples_per_class']} samples per class)"
    )
    for col in ("class", "assign", "CAS", "real", "ratio", "prec", "recall", "KID", "FD"):
        table.add_column(col, justify="left" if col == "class" else "right")

    def num(v: float | None, fmt: str = ".2f") -> str:
        return "–" if v is None else format(v, fmt)

    for c, u in r["usefulness"].items():
        k = cas["per_class"].get(c, {})
        table.add_row(
            c,
            num(u["assignment"]),
            num(k.get("synthetic_recall")),
            num(k.get("real_recall")),
            num(u["cas_ratio"]),
            num(u["precision"]),
            num(u["recall"]),
            num(r["kid"]["per_class"][c], ".1e"),
            num(r["frechet"]["per_class"][c], ".1f"),
        )
    out.print(table)
    spread = Table(title="exposure and spread: samples against real training faces of the class")
    for col in ("class", "brightness sd", "real", "ratio", "pairwise", "real", "ratio"):
        spread.add_column(col, justify="left" if col == "class" else "right")
    for c, v in r["spread"]["per_class"].items():
        keys = ("brightness_std", "real_brightness_std", "brightness_ratio", "pairwise", "real_pairwise")
        spread.add_row(c, *(num(v[k], ".1f") for k in keys), num(v["pairwise_ratio"]))
    out.print(spread)
    weighting = "class-weighted" if j["leans_to_small_classes"] else "no class weights, no balanced sampling"
    lines = (
        f"assign: share of samples the judge {j['run']} ({weighting}) puts in their class (chance {j['chance']:.2f})",
        "CAS / real: recall on the real validation faces of a classifier trained on the samples / on as many "
        "real training faces; ratio = CAS / real, the class's usefulness",
        "prec, recall: precision and recall (Kynkäänniemi 2019) against the validation faces; KID (Bińkowski 2018) "
        "in the judge's features; FD: " + r["frechet"]["space"],
        "brightness sd: standard deviation of each face's mean brightness (0-255; banding: ratio above 1); "
        "pairwise: mean RMS pixel distance between two faces of the class (collapse: ratio near 0)",
        _cas_line(r["cas_over_seeds"]),
        f"near-copies of training faces: {r['memorisation']['near_copies']} (per class in metrics.json)",
        f"pictures: {run_dir}/eval/usefulness.png, confusion.png, judge.png, nearest.png; "
        f"numbers: {run_dir}/eval/metrics.json",
    )
    for line in lines:
        out.print(escape(line), highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- classifiers
@app.command("train")
def train_cmd(
    ctx: typer.Context,
    data: DataArg,
    run_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerun with the same folder to resume.")],
    model: Annotated[
        str, typer.Option(help="resemotenet, resnet18, simple-deep-cnn, simple-cnn or fer-cnn (the CPU budget's).")
    ] = _TRAIN.model,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = _TRAIN.epochs,
    batch_size: Annotated[int, typer.Option(help="Global batch size.")] = _TRAIN.batch_size,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd.")] = _TRAIN.optimizer,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = _TRAIN.lr,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = _TRAIN.weight_decay,
    schedule: Annotated[str, typer.Option(help="cosine, onecycle (peaks at --lr), plateau or none.")] = _TRAIN.schedule,
    size: Annotated[
        int, typer.Option(help="Input size; 0 = the model's default (64 ResEmoteNet, else 48).")
    ] = _TRAIN.size,
    width: Annotated[
        float, typer.Option(help="Width multiplier (ResEmoteNet at 1.0 has 80M parameters).")
    ] = _TRAIN.width,
    small_stem: Annotated[
        bool, typer.Option(help="ResNet18: 3×3 stem without max-pool for small faces.")
    ] = _TRAIN.small_stem,
    pretrained: Annotated[Path | None, typer.Option(help="ResNet18: local ImageNet weights file.")] = None,
    class_weighted: Annotated[
        bool, typer.Option(help="Class-weighted cross-entropy (inverse frequency).")
    ] = _TRAIN.class_weighted,
    balanced_sampler: Annotated[bool, typer.Option(help="Draw each class equally often.")] = _TRAIN.balanced_sampler,
    focal_gamma: Annotated[
        float, typer.Option(help="Focal loss with this gamma (0 = cross-entropy).")
    ] = _TRAIN.focal_gamma,
    synthetic_weight: Annotated[
        float, typer.Option(help="Multiply each synthetic face's loss by this (1 = like a real face, 0 = ignore).")
    ] = _TRAIN.synthetic_weight,
    refit_head_epochs: Annotated[
        int,
        typer.Option(
            "--refit-head",
            help="Then re-fit the final layer for N epochs on class-balanced real faces, the body frozen (0 = off).",
        ),
    ] = _TRAIN.refit_head_epochs,
    erasing: Annotated[bool, typer.Option(help="Random erasing augmentation.")] = _TRAIN.erasing,
    patience: Annotated[
        int, typer.Option(help="Early stop after N epochs without a better val score (0 = off).")
    ] = _TRAIN.patience,
    select_metric: Annotated[
        str, typer.Option(help="Validation metric for model selection: macro_f1 or accuracy.")
    ] = _TRAIN.select_metric,
    epoch_samples: Annotated[
        int, typer.Option(help="Images per epoch (0 = all); shorter epochs for CPU budgets.")
    ] = _TRAIN.epoch_samples,
    val_fraction: Annotated[
        float, typer.Option(help="Share of train held out when DATA has no val split.")
    ] = _TRAIN.val_fraction,
    classes: ClassesOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = _TRAIN.seed,
    device: DeviceOpt = _TRAIN.device,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA.")] = _TRAIN.amp,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes for augmentation.")] = _TRAIN.workers,
    max_minutes: Annotated[
        float, typer.Option(help="Stop (and checkpoint) after this many minutes; 0 = no limit.")
    ] = _TRAIN.max_minutes,
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
        synthetic_weight=synthetic_weight,
        refit_head_epochs=refit_head_epochs,
        erasing=erasing,
        patience=patience,
        select_metric=select_metric,
        epoch_samples=epoch_samples,
        val_fraction=val_fraction,
        classes=_class_names(classes),
        seed=seed,
        device=device,
        amp=amp,
        workers=workers,
        max_minutes=max_minutes,
    )
    cfg.validate()  # before the data is read: a bad option costs no loading time
    _train_and_report(data, fmt, run_dir, cfg)


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
        cfg.validate()
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
    data: Annotated[
        Path, typer.Argument(help="Dataset to test on: the training one, or another (scored on the shared classes).")
    ],
    split: Annotated[
        str | None,
        typer.Option(help="train, val, test or all (default: test, or all when DATA has one split only)."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write metrics.json and confusion.png.")
    ] = None,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Accuracy, macro-F1 and per-class precision/recall/F1, with a confusion-matrix PNG.

    DATA may be another dataset than the model's (e.g. a CK+ tree for a FER2013 model): classes the
    model does not know are dropped and counted, classes DATA lacks are left out of macro-F1.
    """
    from augment.core.runtime import pick_device
    from classifier.evaluate import evaluate_run

    ds = _load(data, fmt, None, None, None)
    m = evaluate_run(run_dir, ds, split=split, out_dir=out_dir, device=pick_device(device))
    if as_json:
        print(json.dumps(m, indent=2))
        return
    for note in m["notes"]:
        out.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    table = Table(
        title=f"{run_dir} on {m['split']} ({m['n']} images): accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
    )
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for c, v in m["per_class"].items():
        if c in m["absent_classes"]:
            table.add_row(c, "", "", "[dim]not in data[/dim]", "0")
            continue
        table.add_row(c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
    out.print(table)
    where = out_dir or Path(run_dir) / f"eval_{m['split']}"
    out.print(f"confusion matrix: {where}/confusion.png, metrics: {where}/metrics.json")


@app.command("predict")
def predict_cmd(
    run_dir: Annotated[Path, typer.Argument(help="An 'augment train' run folder.")],
    images: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, folders or globs: cropped faces, or photos with --detect.", show_default=False
        ),
    ],
    detect: Annotated[
        bool, typer.Option(help="Find the faces in photos first (OpenCV; pip install 'augment[detect]').")
    ] = False,
    annotate: Annotated[
        Path | None, typer.Option(help="With --detect: write each photo with its boxes and labels into this folder.")
    ] = None,
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """Top class and class probabilities per image (a cropped face), or per face found in photos with --detect.

    Files that cannot be read are listed and skipped; the exit status is then 1.
    """
    from augment.core.runtime import pick_device
    from classifier.inference import PROGRESS_FROM, list_images

    if annotate is not None and not detect:
        raise UserError("--annotate draws the faces --detect finds; add --detect")
    if annotate is not None and annotate.exists() and not annotate.is_dir():
        raise UserError(f"--annotate {annotate}: a file is there; give a folder")
    files = list_images(images)
    long_list = len(files) >= PROGRESS_FROM
    if detect:
        from classifier.detect import FaceDetector, predict_photos

        detector = FaceDetector()
        results, failed = predict_photos(run_dir, files, detector, pick_device(device), annotate, long_list)
    else:
        from classifier.evaluate import predict_files

        results, failed = predict_files(run_dir, files, device=pick_device(device), progress=long_list)
    for path, why in failed:
        err.print(f"{escape(path)}: cannot read image ({escape(why)}); skipped", highlight=False, soft_wrap=True)
    for r in results:
        if r.get("warning"):
            warn(f"{r['path']}: {r['warning']}")
    if as_json:
        for r in results:
            print(json.dumps(r))
    elif detect:
        _print_faces(results, annotate)
    else:
        _print_predictions(results)
    if failed:
        raise UserError(f"{len(failed)} of {len(files)} image(s) could not be read (listed above)", exit_code=1)


def _print_predictions(results: list[dict]) -> None:
    """A table on a terminal; tab-separated lines with whole paths when piped or redirected."""
    classes = list(results[0]["probabilities"]) if results else []
    if not out.is_terminal:
        print("\t".join(["image", "top", *classes]))
        for r in results:
            print("\t".join([r["path"], r["top"], *(f"{r['probabilities'][c]:.2f}" for c in classes)]))
        return
    table = Table()
    table.add_column("image", overflow="fold")
    table.add_column("top")
    for c in classes:
        table.add_column(c, justify="right")
    for r in results:
        table.add_row(r["path"], r["top"], *(f"{r['probabilities'][c]:.2f}" for c in classes))
    out.print(table)


def _print_faces(results: list[dict], annotate: Path | None) -> None:
    """One line per face: photo, box, top class, then the other classes by probability."""
    for r in results:
        if not r["faces"]:
            out.print(f"{escape(r['path'])}  [yellow]no face found[/yellow]", highlight=False, soft_wrap=True)
        for f in r["faces"]:
            others = sorted(((p, c) for c, p in f["probabilities"].items() if c != f["top"]), reverse=True)
            box = ",".join(map(str, f["box"]))
            out.print(
                f"{escape(r['path'])}  box {box}  [bold]{f['top']} {f['probability']:.2f}[/bold]"
                f"  ({', '.join(f'{c} {p:.2f}' for p, c in others)})",
                highlight=False,
                soft_wrap=True,
            )
    faces = sum(len(r["faces"]) for r in results)
    empty = sum(not r["faces"] for r in results)
    out.print(
        f"{faces} face(s) in {len(results)} photo(s)"
        + (f"; no face found in {empty}" if empty else "")
        + (f"; annotated photos in {escape(str(annotate))}" if annotate is not None and faces else ""),
        highlight=False,
    )


# --------------------------------------------------------------------------- rebalance / compare
@app.command("rebalance")
def rebalance_cmd(
    data: DataArg,
    generator: Annotated[Path, typer.Option(help="A gan-train run folder.")],
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the rebalanced dataset.")],
    target: Annotated[str, typer.Option(help="max, median, N, or class=N,... per-class targets.")] = _PLAN.target,
    classes: Annotated[
        str | None, typer.Option(help="Only these classes get synthetic images, e.g. 'disgust,fear'.")
    ] = None,
    fraction: Annotated[float, typer.Option(help="Fill only this share of each class's shortfall.")] = _PLAN.fraction,
    max_ratio: Annotated[
        float,
        typer.Option(help="At most R × a class's real count of synthetic faces, on top of the target (0 = no cap)."),
    ] = _PLAN.max_ratio,
    min_prob: Annotated[
        float, typer.Option(help="Keep samples the judge gives ≥ this probability for their class (0 = off).")
    ] = _QUALITY.min_prob,
    drop_near_copies: Annotated[
        bool, typer.Option("--drop-near-copies/--keep-near-copies")
    ] = _QUALITY.drop_near_copies,
    judge: Annotated[
        Path | None,
        typer.Option(help="An 'augment train' run used as the judge (default: the generator's, or train one)."),
    ] = None,
    out_format: Annotated[
        str, typer.Option("--format", help="Output layout: folders (ImageFolder) or fer2013-csv.")
    ] = _REBALANCE.fmt,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic samples.")] = _REBALANCE.seed,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and stop.")] = False,
    overwrite: Annotated[bool, typer.Option(help=_OVERWRITE_HELP)] = _REBALANCE.overwrite,
    fmt: Annotated[str, typer.Option("--data-format", help="Force the input layout (see inspect --format).")] = "auto",
    device: DeviceOpt = _GAN.device,
    min_cas: Annotated[
        float,
        typer.Option(
            help="Give no synthetic faces to a class whose CAS ratio is below R: the recall, on real validation "
            "faces, of a classifier trained on its samples over that of one trained on as many real faces (read "
            "from gan-eval's output, or measured). Off (0) by default: on FER2013 the ratio ranked disgust lowest "
            "(0.14; every other class 0.25 or more), so a gate would only withhold the samples of the class "
            "rebalancing is for; 0.25 does that."
        ),
    ] = _QUALITY.min_cas,
    checkpoint: CheckpointOpt = _REBALANCE.checkpoint,
) -> None:
    """Add synthetic faces to the minority classes and write a rebalanced dataset plus manifest."""
    from augment.core.labels import resolve_classes
    from augment.core.runtime import pick_device
    from augment.plan import plan_rebalance
    from augment.rebalance import QualityFilter, check_options, check_rebalance_out, run_rebalance
    from gan.sample import load_generator

    check_checkpoint(checkpoint)
    check_options(out_format, judge)  # --dry-run checks the options too
    quality = QualityFilter(min_prob=min_prob, drop_near_copies=drop_near_copies, min_cas=min_cas)
    ds = _load(data, fmt, None, None, None)
    if not ds.has_split("train"):
        raise UserError(f"{data}: no train split to rebalance")
    _, meta = load_generator(generator, checkpoint=checkpoint)
    if meta["note"]:
        out.print(f"[yellow]note:[/yellow] {escape(meta['note'])}", highlight=False, soft_wrap=True)
    chosen = resolve_classes(classes, ds.classes) if classes else None
    plan = plan_rebalance(ds.counts("train"), target, chosen, fraction, meta["classes"], max_ratio)
    cap = f", at most {max_ratio:g} × real" if max_ratio else ""
    table = Table(title=f"rebalance plan (train split; target {target}, fraction {fraction:g}{cap})")
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
    # OUT is refused here, before a judge is trained (run_rebalance checks it again)
    check_rebalance_out(
        ds, generator, meta["step"], out_dir, plan, quality, seed, out_format, overwrite, meta["checkpoint"]
    )
    judge_model = None
    if min_prob > 0:
        from classifier.judge import get_judge

        judge_model = get_judge(ds, Path(generator), judge, dev)
    summary = run_rebalance(
        ds, generator, out_dir, plan, judge_model, quality, seed, out_format, overwrite, dev, checkpoint=checkpoint
    )
    for c, r in summary["synthesis"]["per_class"].items():
        if r.get("skipped"):
            out.print(escape(r["skipped"]), highlight=False, soft_wrap=True)
            continue
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
    report_dir: Annotated[Path, typer.Option("--out", help="Report folder; rerun to resume (finished runs are kept).")],
    generator: Annotated[
        Path | None,
        typer.Option(
            help="A gan-train run folder: the GAN conditions need one. Without it the default --conditions shrink to "
            "the real-only ones (listing a GAN condition is refused), and a later call with a generator adds the GAN "
            "conditions to the same --out."
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: resemotenet, resnet18, simple-deep-cnn, simple-cnn, fer-cnn (default: the "
            f"budget's; cpu: fer-cnn; others: {','.join(DEFAULT_MODELS)}).",
            show_default=False,
        ),
    ] = None,
    conditions: Annotated[str, typer.Option(help="Comma-separated: " + CONDITION_HELP)] = ",".join(DEFAULT_CONDITIONS),
    sweep: Annotated[bool, typer.Option(help="Also run gan25 and gan50 (25/50% of the shortfall).")] = False,
    seeds: Annotated[int, typer.Option(help="Seeds per model and condition (paired across conditions).")] = 3,
    max_ratio: Annotated[
        float, typer.Option(help="gan-cap: at most R × a class's real count of synthetic faces.")
    ] = _COMPARE.max_ratio,
    synthetic_weight: Annotated[
        float, typer.Option(help="gan-w: each synthetic face's loss is multiplied by W.")
    ] = _COMPARE.synthetic_weight,
    refit_epochs: Annotated[
        int, typer.Option(help="gan-refit, refit: epochs re-fitting the head on class-balanced real faces.")
    ] = _COMPARE.refit_epochs,
    eval_split: Annotated[
        str,
        typer.Option(
            help="Score on 'test' (the final grid) or 'val' (screening: the real validation split; test is never "
            "used, and the report folder is a screening one)."
        ),
    ] = _COMPARE.eval_split,
    budget: Annotated[str, typer.Option(help=budget_help())] = _COMPARE.budget,
    target: Annotated[str, typer.Option(help="Rebalance target: max, median, N, or class=N,...")] = _COMPARE.target,
    classes: Annotated[str | None, typer.Option(help="Only these classes get synthetic images / duplicates.")] = None,
    min_prob: Annotated[
        float, typer.Option(help="Quality filter: judge probability for the class (0 = off).")
    ] = _QUALITY.min_prob,
    judge: Annotated[
        Path | None,
        typer.Option(help="Classifier run for the quality filter (default: the generator's, or train one)."),
    ] = None,
    gpus: Annotated[str | None, typer.Option(help="Spread independent runs over these GPUs, e.g. '0,1,2,3'.")] = None,
    nproc: Annotated[int, typer.Option(help="Hand each run to torchrun with this many processes.")] = _COMPARE.nproc,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = _COMPARE.device,
    checkpoint: CheckpointOpt = _COMPARE.checkpoint,
) -> None:
    """Train classifiers with and without synthetic data (and classical fixes); test on real images."""
    from augment.compare import CompareSpec, budget_models, real_only, run_compare
    from augment.core.labels import resolve_classes

    check_checkpoint(checkpoint)
    ds = _load(data, fmt, None, None, None)
    cond_list = [c.strip() for c in conditions.split(",") if c.strip()]
    if generator is None and conditions == ",".join(DEFAULT_CONDITIONS):
        cond_list = real_only(cond_list)
        out.print(f"no --generator: running the real-only conditions ({', '.join(cond_list)})")
    if sweep:
        cond_list += [c for c in ("gan25", "gan50") if c not in cond_list]
    if "baseline" not in cond_list:
        cond_list.insert(0, "baseline")
    try:
        gpu_list = [int(g) for g in gpus.split(",")] if gpus else []
    except ValueError as e:
        raise UserError(f"--gpus {gpus}: give GPU numbers like 0,1") from e
    spec = CompareSpec(
        models=[m.strip() for m in models.split(",") if m.strip()] if models else budget_models(budget),
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
        checkpoint=checkpoint,
        max_ratio=max_ratio,
        synthetic_weight=synthetic_weight,
        refit_epochs=refit_epochs,
        eval_split=eval_split,
    )
    summary = run_compare(ds, generator, report_dir, spec)
    out.print(f"report: {report_dir}/REPORT.md ({len(summary['runs'])} runs); numbers: {report_dir}/results.json")


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.")] = Path("demo-out"),
    gan_steps: Annotated[int, typer.Option(help="GAN training steps.")] = _DEMO.gan_steps,
    seeds: Annotated[int, typer.Option(help="Seeds per condition in the comparison.")] = _DEMO.seeds,
    device: DeviceOpt = _DEMO.device,
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
