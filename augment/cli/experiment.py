"""Experiment commands: rebalance, compare, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from augment.cli.data import load_data
from augment.cli.options import (
    DEVICE,
    OVERWRITE_HELP,
    Alias,
    CheckpointOpt,
    DataArg,
    DeviceOpt,
    FormatOpt,
    field_help,
    field_options,
    signature_options,
    with_options,
)
from augment.cli.render import note, out, print_plan, print_rebalanced
from augment.compare import CONDITION_HELP, DEFAULT_CONDITIONS, CompareSpec
from augment.compare.curve import parse_curve, parse_generators
from augment.core.errors import UserError
from augment.demo import run_demo
from augment.plan import plan_rebalance
from augment.rebalance import run_rebalance
from augment.synthesis import QualityFilter
from classifier.config import DEVICE_HELP
from gan.config import CHECKPOINT_HELP, check_checkpoint

PLAN = signature_options(
    plan_rebalance,
    {
        "target": "max, median, N, or class=N,... per-class targets.",
        "fraction": "Fill only this share of each class's shortfall.",
        "max_ratio": "At most R × a class's real count of synthetic faces, on top of the target (0 = no cap).",
    },
)
WRITE = signature_options(
    run_rebalance,
    {
        "fmt": "Output layout: folders (ImageFolder) or fer2013-csv.",
        "seed": "Seed of the synthetic samples.",
        "overwrite": OVERWRITE_HELP,
        "checkpoint": CHECKPOINT_HELP,
    },
    rename={"fmt": "out_format"},  # --format is the input layout everywhere else
)
# compare turns these fields into options itself: lists given comma-separated, and seeds (no default in the spec)
COMPARE = field_options(CompareSpec, leave=("models", "seeds", "classes", "gpus"))
DEMO = signature_options(
    run_demo,
    {"gan_steps": "GAN training steps.", "seeds": "Seeds per condition in the comparison.", "device": DEVICE_HELP},
)


@with_options(
    Alias("--format", "--out-format", "out_format", str), plan=PLAN, quality=field_options(QualityFilter), write=WRITE
)
def rebalance_cmd(
    data: DataArg,
    generator: Annotated[Path, typer.Option(help="A gan-train run folder.")],
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the rebalanced dataset.")],
    *,
    plan: dict,
    classes: Annotated[
        str | None, typer.Option(help="Only these classes get synthetic images, e.g. 'disgust,fear'.")
    ] = None,
    quality: dict,
    judge: Annotated[
        Path | None,
        typer.Option(help="An 'augment train' run used as the judge (default: the generator's, or train one)."),
    ] = None,
    write: dict,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and stop.")] = False,
    source_classes: Annotated[
        str | None,
        typer.Option(
            help="A transfer run: translate faces of these classes only (default: every class but the target)."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--data-format", help="Force the input layout (see inspect --format).")] = "auto",
    device: DeviceOpt = DEVICE,
) -> None:
    """Add synthetic faces to the minority classes and write a rebalanced dataset plus manifest."""
    from augment.core.labels import resolve_classes
    from augment.core.runtime import pick_device
    from augment.rebalance import check_options, check_rebalance_out
    from gan.config import TRANSFER
    from gan.translate import load_sampler, with_validation

    check_checkpoint(write["checkpoint"])
    check_options(write["fmt"], judge)  # --dry-run checks the options too, and only here
    screen = QualityFilter(**quality)
    ds = load_data(data, fmt)
    if not ds.has_split("train"):
        raise UserError(f"{data}: no train split to rebalance")
    dev = pick_device(device)
    sources = resolve_classes(source_classes, ds.classes, "the data", "--source-classes") if source_classes else None
    carved = with_validation(ds)  # a transfer run's sources: never a face validation holds out
    loaded = load_sampler(generator, carved.split("train"), write["seed"], dev, write["checkpoint"], sources)
    meta = loaded[1]
    if meta["recipe"] == TRANSFER:
        ds = carved
    if meta["note"]:
        note(meta["note"])
    chosen = resolve_classes(classes, ds.classes) if classes else None
    planned = plan_rebalance(ds.counts("train"), classes=chosen, available=meta["classes"], **plan)
    print_plan(planned, **plan)
    if dry_run:
        return
    # OUT is refused here, before a judge is trained, and run_rebalance takes the claim instead of checking again
    seed, out_format, overwrite = write["seed"], write["fmt"], write["overwrite"]
    claim = check_rebalance_out(
        ds, generator, meta["step"], out_dir, planned, screen, seed, out_format, overwrite, meta["checkpoint"], sources
    )
    judge_model = None
    if screen.min_prob > 0:
        from classifier.judge import get_judge

        judge_model = get_judge(ds, Path(generator), judge, dev)
    summary = run_rebalance(
        ds, generator, out_dir, planned, judge_model, screen, device=dev, sampler=loaded, claim=claim, **write
    )
    print_rebalanced(summary, out_dir)


# the low-data curve (augment.compare.curve): options of no CompareSpec field, since each point sets its own limit
CurveOpt = Annotated[
    str | None,
    typer.Option(
        help="The low-data curve: one comparison per N (e.g. '25,100,all') keeping N real training faces of "
        "--limit-classes, in OUT/n<N>/ and OUT/all/, then OUT/curve.png and OUT/REPORT.md.",
        show_default=False,
    ),
]
LimitClassesOpt = Annotated[
    str | None, typer.Option(help="With --curve: the classes limited to N, e.g. 'disgust,fear'.", show_default=False)
]
TransfersOpt = Annotated[
    str | None,
    typer.Option(
        help="With --curve: each point's expression-transfer run (gan-train --recipe transfer --limit), e.g. "
        "'25=RUN,100=RUN,all=RUN', for the transfer conditions.",
        show_default=False,
    ),
]
GeneratorsOpt = Annotated[
    str | None,
    typer.Option(
        help="With --curve: each point's generator, trained with gan-train --limit on that point's data, e.g. "
        "'25=RUN,100=RUN,all=RUN' (without: the real-only conditions).",
        show_default=False,
    ),
]


@with_options(settings=COMPARE)
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
    transfer: Annotated[
        Path | None,
        typer.Option(
            help="A gan-train --recipe transfer run: the transfer conditions need one (their faces are the "
            "comparison's real train faces of other classes, re-drawn with the class's expression)."
        ),
    ] = None,
    models: Annotated[str | None, typer.Option(help=field_help(CompareSpec, "models"), show_default=False)] = None,
    conditions: Annotated[str, typer.Option(help="Comma-separated: " + CONDITION_HELP)] = ",".join(DEFAULT_CONDITIONS),
    sweep: Annotated[bool, typer.Option(help="Also run gan25 and gan50 (25/50% of the shortfall).")] = False,
    seeds: Annotated[int, typer.Option(help=field_help(CompareSpec, "seeds"))] = 3,
    *,
    settings: dict,
    classes: Annotated[str | None, typer.Option(help=field_help(CompareSpec, "classes"))] = None,
    gpus: Annotated[str | None, typer.Option(help=field_help(CompareSpec, "gpus"))] = None,
    fmt: FormatOpt = "auto",
    device: DeviceOpt = CompareSpec.device,
    checkpoint: CheckpointOpt = CompareSpec.checkpoint,
    curve: CurveOpt = None,
    limit_classes: LimitClassesOpt = None,
    generators: GeneratorsOpt = None,
    transfers: TransfersOpt = None,
) -> None:
    """Train classifiers with and without synthetic data (and classical fixes); test on real images."""
    from augment.compare import budget_models, run_compare
    from augment.core.labels import resolve_classes

    check_checkpoint(checkpoint)
    curve_points = check_curve_options(curve, limit_classes, generators, generator, settings["limit"])
    if curve_points is None and transfers:
        raise UserError("--transfers goes with --curve (the low-data curve); for one comparison use --transfer")
    if curve_points is not None and transfer is not None:
        raise UserError("--curve takes a transfer run per point: use --transfers 25=RUN,...,all=RUN, not --transfer")
    ds = load_data(data, fmt)
    cond_list = [c.strip() for c in conditions.split(",") if c.strip()]
    no_generator = generator is None if curve_points is None else not generators
    no_transfer = transfer is None if curve_points is None else not transfers
    if conditions == ",".join(DEFAULT_CONDITIONS) and (no_generator or not no_transfer):
        cond_list = default_conditions(cond_list, no_generator, no_transfer, curve_points is not None)
    if sweep:
        cond_list += [c for c in ("gan25", "gan50") if c not in cond_list]
    if "baseline" not in cond_list:
        cond_list.insert(0, "baseline")
    try:
        gpu_list = [int(g) for g in gpus.split(",")] if gpus else []
    except ValueError as e:
        raise UserError(f"--gpus {gpus}: give GPU numbers like 0,1") from e
    spec = CompareSpec(
        models=[m.strip() for m in models.split(",") if m.strip()] if models else budget_models(settings["budget"]),
        conditions=cond_list,
        seeds=seeds,
        classes=resolve_classes(classes, ds.classes) if classes else None,
        gpus=gpu_list,
        device=device,
        checkpoint=checkpoint,
        **settings,
    )
    if curve_points is not None:
        runs = (parse_generators(generators, curve_points), parse_generators(transfers, curve_points, "--transfers"))
        curve_cmd(ds, report_dir, spec, resolve_classes(limit_classes, ds.classes), curve_points, *runs)
        return
    summary = run_compare(ds, generator, report_dir, spec, transfer_run=transfer)
    out.print(f"report: {report_dir}/REPORT.md ({len(summary['runs'])} runs); numbers: {report_dir}/results.json")


def default_conditions(conds: list[str], no_generator: bool, no_transfer: bool, curve: bool) -> list[str]:
    """The default conditions as the runs given allow: the GAN ones only with a generator, and ``transfer``
    added with a transfer run."""
    from augment.compare import real_only

    if no_generator:
        conds = real_only(conds)
    if not no_transfer:
        conds = [*conds, "transfer"]
    if no_generator:
        which = "--generator" if not curve else "--generators"
        kinds = "real-only" if no_transfer else "real-only and transfer"
        out.print(f"no {which}: running the {kinds} conditions ({', '.join(conds)})")
    return conds


def curve_cmd(
    ds: Any,
    report_dir: Path,
    spec: CompareSpec,
    limited: list[str],
    points: list[int | None],
    generators: dict[str, Path],
    transfers: dict[str, Path],
) -> None:
    """compare --curve: the low-data curve (augment.compare.curve.run_curve), then where its report is."""
    from augment.compare.curve import run_curve

    run_curve(ds, report_dir, spec, limited, points, generators, True, transfers)
    out.print(f"curve: {report_dir}/REPORT.md and {report_dir}/curve.png; numbers: {report_dir}/curve_results.json")


def check_curve_options(
    curve: str | None, limit_classes: str | None, generators: str | None, generator: Path | None, limit: dict
) -> list[int | None] | None:
    """--curve's points (None without --curve); one line for an option that does not go with the others."""
    if curve is None:
        for name, value in (("--limit-classes", limit_classes), ("--generators", generators)):
            if value:
                raise UserError(f"{name} goes with --curve (the low-data curve); for one comparison use --limit")
        return None
    if generator is not None:
        raise UserError("--curve takes a generator per point: use --generators 25=RUN,...,all=RUN, not --generator")
    if not limit_classes:
        raise UserError("--curve needs --limit-classes: the classes to keep N real training faces of")
    if limit:
        raise UserError("--curve sets the limit of each point: use --limit-classes with --curve, not --limit")
    points = parse_curve(curve)
    parse_generators(generators, points)
    return points


@with_options(settings=DEMO)
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.")] = Path("demo-out"),
    *,
    settings: dict,
) -> None:
    """The whole loop on the embedded demo faces: data → GAN → rebalance → compare → report."""
    r = run_demo(out_dir, **settings)
    out.rule("done")
    out.print(f"report:            {r['report']}")
    out.print(f"GAN samples:       {out_dir}/gan/samples/ (and losses.png)")
    out.print(f"GAN judge/nearest: {out_dir}/gan/eval/judge.png, {out_dir}/gan/eval/nearest.png")
    out.print(f"rebalanced data:   {out_dir}/rebalanced/ (manifest.csv marks synthetic files)")
    out.print(f"class chart:       {out_dir}/class_distribution.png")
