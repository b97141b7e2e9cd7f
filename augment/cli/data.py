"""Data commands: demo-data, prepare, inspect; and how every command reads DATA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from augment.cli.options import ChannelsOpt, ClassesOpt, DataArg, FormatOpt, SizeOpt, signature_options, with_options
from augment.cli.render import out, print_inspect, warn
from augment.core.errors import UserError
from augment.demo_faces import write_demo_dataset


def load_data(
    data: Path,
    fmt: str,
    size: int | None = None,
    channels: int | None = None,
    classes: str | None = None,
    warn_unreadable: bool = True,
) -> Any:
    """The dataset at DATA; files that could not be read are skipped with one warning line (exit 0)."""
    from augment.core.readers import load_dataset, unreadable_warning

    ds = load_dataset(data, format=fmt, size=size, channels=channels, classes=classes)
    if warn_unreadable and (note := unreadable_warning(ds)):
        warn(note)
    return ds


DEMO_DATA = signature_options(
    write_demo_dataset,
    {
        "seed": "Random seed; the same seed gives the same faces.",
        "size": "Image size in pixels.",
        "test_fraction": "Test images per class, as a share of train.",
    },
)


@with_options(settings=DEMO_DATA)
def demo_data_cmd(
    out_dir: Annotated[Path, typer.Argument(help="New folder to write the demo dataset into.")],
    counts: Annotated[
        str | None,
        typer.Option(help="Train images per class, e.g. 'happy=600,disgust=36' (others default)."),
    ] = None,
    *,
    settings: dict,
) -> None:
    """Write procedural demo faces (8 classes, FER2013-like imbalance) as train/test class folders."""
    from augment.demo_faces import DEFAULT_COUNTS, parse_counts

    try:
        chosen = {**DEFAULT_COUNTS, **parse_counts(counts)} if counts else None
    except ValueError as e:
        raise UserError(str(e)) from e
    try:
        written = write_demo_dataset(out_dir, counts=chosen, **settings)
    except FileExistsError as e:
        raise UserError(str(e)) from e
    total = sum(sum(v.values()) for v in written.values())
    out.print(
        f"wrote {total} demo faces to {out_dir} ({', '.join(f'{s} {sum(v.values())}' for s, v in written.items())})"
    )


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
    ds = load_data(data, fmt, size, channels, classes)
    ds.save(out_file, packed=packed)
    mb = out_file.stat().st_size / 2**20
    out.print(
        f"cached {len(ds)} images {tuple(ds.images.shape[1:])} of {len(ds.classes)} classes to {out_file} ({mb:.1f} MB)"
    )


def inspect_cmd(
    data: DataArg,
    fmt: FormatOpt = "auto",
    classes: ClassesOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Write a class-distribution bar chart PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
) -> None:
    """Counts per class and split, imbalance ratio, exact duplicates and unreadable files."""
    from augment.inspection import inspect_dataset, plot_distribution

    ds = load_data(data, fmt, classes=classes, warn_unreadable=False)  # the report lists the unreadable files
    report = inspect_dataset(ds)
    if plot is not None:
        plot_distribution(report, plot)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print_inspect(report)
    if plot is not None:
        out.print(f"class-distribution chart: {plot}")
