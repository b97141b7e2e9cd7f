"""Classifier commands: train, evaluate, predict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from augment.cli.data import load_data
from augment.cli.options import DEVICE, Alias, DataArg, DeviceOpt, FormatOpt, field_options, with_options
from augment.cli.render import err, out, print_evaluation, print_faces, print_predictions, warn
from augment.core.errors import UserError
from classifier.config import TrainConfig

TRAIN = field_options(TrainConfig)
# the options of train that say what to train on, not how (--config gives every other one)
NOT_SETTINGS = ("data", "run_dir", "fmt", "config")
RunArg = Annotated[Path, typer.Argument(help="An 'augment train' run folder.")]


@with_options(Alias("--refit-head", "--refit-epochs", "refit_head_epochs", int), settings=TRAIN)
def train_cmd(
    ctx: typer.Context,
    data: DataArg,
    run_dir: Annotated[Path, typer.Option("--out", help="Run folder; rerun with the same folder to resume.")],
    *,
    settings: dict,
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
    if config is not None:
        _train_and_report(data, fmt, run_dir, _train_config_file(ctx, config))
        return
    cfg = TrainConfig(**settings)
    cfg.validate()  # before the data is read: a bad option costs no loading time
    _train_and_report(data, fmt, run_dir, cfg)


def _train_config_file(ctx: typer.Context, path: Path) -> TrainConfig:
    """``train --config FILE``: the file gives every setting, so another training option given with it is
    refused (DATA, --out and --format say what to train on, not how)."""
    from classifier.config import read_train_config

    sources = {p.name: ctx.get_parameter_source(p.name) for p in ctx.command.params}
    given = [
        "/".join(p.opts + p.secondary_opts)
        for p in ctx.command.params
        if p.name not in NOT_SETTINGS and getattr(sources[p.name], "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")
    ]
    if given:
        raise UserError(f"--config {path} gives every training setting; drop {', '.join(given)}")
    cfg = read_train_config(path)
    try:
        cfg.validate()
    except UserError as e:
        raise UserError(f"--config {path}: {e}") from e
    return cfg


def _train_and_report(data: Path, fmt: str, run_dir: Path, cfg: TrainConfig) -> None:
    from classifier.train import train_classifier

    summary = train_classifier(load_data(data, fmt), run_dir, cfg)
    best = summary.get("best_val") or {}
    if best and summary.get("rank", 0) == 0:
        out.print(
            f"best epoch {best['epoch']}: val accuracy {best['val_acc']:.3f}, val macro-F1 "
            f"{best['val_macro_f1']:.3f}; model {run_dir}/model.pt, curves {run_dir}/curves.png"
        )


def evaluate_cmd(
    run_dir: RunArg,
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
    device: DeviceOpt = DEVICE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Accuracy, macro-F1 and per-class precision/recall/F1, with a confusion-matrix PNG.

    DATA may be another dataset than the model's (e.g. a CK+ tree for a FER2013 model): classes the
    model does not know are dropped and counted, classes DATA lacks are left out of macro-F1.
    """
    from augment.core.runtime import pick_device
    from classifier.evaluate import evaluate_run

    ds = load_data(data, fmt)
    m = evaluate_run(run_dir, ds, split=split, out_dir=out_dir, device=pick_device(device))
    if as_json:
        print(json.dumps(m, indent=2))
        return
    print_evaluation(m, run_dir, out_dir)


def predict_cmd(
    run_dir: RunArg,
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
    device: DeviceOpt = DEVICE,
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
        print_faces(results, annotate)
    else:
        print_predictions(results)
    if failed:
        raise UserError(f"{len(failed)} of {len(files)} image(s) could not be read (listed above)", exit_code=1)
