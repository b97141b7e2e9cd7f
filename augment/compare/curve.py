"""``compare --curve``: the low-data curve. One comparison per point N, each keeping N real training faces of
the limited classes (``--limit-classes``; ``all``: no limit), in OUT/n<N>/ and OUT/all/; then OUT/curve.png
and OUT/REPORT.md (augment.curve_report). Every point is a normal resumable comparison, so a rerun of the same
command keeps every finished run and continues where it stopped. A point's GAN conditions need a generator
trained on that point's data (``gan-train --limit``), given per point with ``--generators``; its transfer
conditions an expression-transfer run trained on that data, given per point with ``--transfers``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from augment.compare.conditions import TRANSFER_POOL, condition, condition_spec
from augment.compare.identity import identity, refuse_report_dir
from augment.compare.spec import CompareSpec, validate_spec
from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.identity import FolderIdentity, refuse_foreign
from augment.core.limits import check_limit
from augment.core.progress import console
from augment.core.splits import carve_train_val
from gan.config import GanConfig

ALL = "all"  # the point without a limit: every real training face
CURVE = FolderIdentity("curve.json", {"data": "DATA", "limit_classes": "--limit-classes"})
RESULTS = "curve_results.json"


@dataclass(frozen=True)
class CurvePoint:
    """One comparison of the curve: its folder name, N (None: all faces), its spec, its noise generator and
    its expression-transfer run."""

    name: str
    n: int | None
    spec: CompareSpec
    generator: Path | None
    transfer: Path | None = None


def point_name(n: int | None) -> str:
    return ALL if n is None else f"n{n}"


def parse_curve(text: str) -> list[int | None]:
    """``--curve 25,100,all`` → [25, 100, None], smallest first, ``all`` last."""
    points: list[int | None] = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part == ALL:
            value = None
        elif part.isdigit() and int(part) > 0:
            value = int(part)
        else:
            raise UserError(f"--curve {part}: give numbers of real faces above 0, or all (e.g. 25,100,all)")
        if value not in points:
            points.append(value)
    if not points:
        raise UserError("--curve: give at least one point, e.g. 25,100,all")
    return sorted(points, key=lambda n: (n is None, n or 0))


def parse_generators(text: str | None, points: list[int | None], option: str = "--generators") -> dict[str, Path]:
    """``--generators 25=RUN,100=RUN,all=RUN`` (a point as 25, n25 or all; ``--transfers`` alike) → point
    name → run."""
    names = {point_name(n) for n in points}
    out: dict[str, Path] = {}
    for part in (p.strip() for p in (text or "").split(",") if p.strip()):
        key, eq, path = part.partition("=")
        key = key.strip().lower()
        name = key if key == ALL or key.startswith("n") else f"n{key}"
        if not eq or not path.strip():
            raise UserError(f"{option} {part}: write POINT=RUN, e.g. 25=runs/gan-n25")
        if name not in names:
            raise UserError(f"{option} {part}: {key} is not a point of --curve ({', '.join(sorted(names))})")
        out[name] = Path(path.strip())
    return out


def curve_points(
    spec: CompareSpec,
    classes: list[str],
    points: list[int | None],
    generators: dict[str, Path],
    transfers: dict[str, Path] | None = None,
) -> list[CurvePoint]:
    """Each point's comparison; one line when a point with GAN (or transfer) conditions has no such run."""
    transfers = transfers or {}
    if not classes:
        raise UserError("--curve needs --limit-classes: the classes to keep N real training faces of")
    if spec.limit:
        raise UserError("--curve sets the limit of each point: use --limit-classes with --curve, not --limit")
    synthetic = [c for c in spec.conditions if condition_spec(c, spec).synthetic]
    needs = {
        "--generators": ([c for c in synthetic if condition(c).pool != TRANSFER_POOL], generators, "GAN faces"),
        "--transfers": ([c for c in synthetic if condition(c).pool == TRANSFER_POOL], transfers, "transfer faces"),
    }
    out = []
    for n in points:
        name = point_name(n)
        for option, (users, runs, what) in needs.items():
            if users and name not in runs:
                recipe = " --recipe transfer" if option == "--transfers" else ""
                raise UserError(
                    f"--conditions {users[0]} uses {what}: give point {name} a run trained on its data "
                    f"({option} {name}=RUN, from gan-train{recipe} {'--limit ...' if n else 'without --limit'})"
                )
        limit = {c: n for c in classes} if n is not None else {}
        out.append(CurvePoint(name, n, replace(spec, limit=limit), generators.get(name), transfers.get(name)))
    return out


def check_curve(data: FaceDataset, out_dir: Path, points: list[CurvePoint], classes: list[str]) -> None:
    """Everything a curve can be refused for, before anything is written: each point's settings, its
    generator's recorded limit, its limit against the real train counts and its folder's identity."""
    counts = carve_train_val(data.subset(~data.synthetic), GanConfig.val_fraction).counts("train")
    unknown = [c for c in classes if c not in counts]
    if unknown:
        raise UserError(f"--limit-classes {unknown[0]}: the data has no class {unknown[0]} ({', '.join(counts)})")
    for p in points:
        validate_spec(p.spec, p.generator, p.transfer)
        check_limit(p.spec.limit, counts, option="--curve")
        ident = identity(data, p.generator, p.spec, p.transfer)
        refuse_report_dir(out_dir / p.name, ident)
    old = CURVE.read(out_dir)
    if old is None:
        refuse_foreign(out_dir, "low-data curve")
    else:
        diff = CURVE.describe(old, _curve_identity(data, classes), ["data", "limit_classes"])
        if diff:
            raise UserError(f"{out_dir} holds a curve with other settings ({diff}); use a new --out")


def _curve_identity(data: FaceDataset, classes: list[str]) -> dict[str, Any]:
    return {"data": data.name, "limit_classes": classes}


def run_curve(
    data: FaceDataset,
    out_dir: str | Path,
    spec: CompareSpec,
    classes: list[str],
    points: list[int | None],
    generators: dict[str, Path] | None = None,
    progress: bool = True,
    transfers: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """The whole curve: every point's comparison (finished runs kept), then curve_results.json, curve.png and
    REPORT.md. Rerunning the same call resumes it."""
    from augment.compare.run import run_compare
    from augment.curve_report import curve_rows, write_curve_report

    out_dir = Path(out_dir)
    plan = curve_points(spec, classes, points, generators or {}, transfers)
    check_curve(data, out_dir, plan, classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    CURVE.write(out_dir, _curve_identity(data, classes))
    summaries = {}
    for i, p in enumerate(plan):
        if progress:
            console.rule(f"curve point {i + 1}/{len(plan)}: {p.name} ({_point_text(p, classes)})")
        summaries[p.name] = run_compare(data, p.generator, out_dir / p.name, p.spec, progress, p.transfer)
    result = {
        "data": data.name,
        "limit_classes": classes,
        "points": [
            {
                "name": p.name,
                "n": p.n,
                "limit": p.spec.limit,
                "generator": _text(p.generator),
                "transfer": _text(p.transfer),
            }
            for p in plan
        ],
        "rows": curve_rows(summaries, plan, classes),
    }
    write_json(out_dir / RESULTS, result)
    write_curve_report(out_dir, result)
    return result


def _point_text(p: CurvePoint, classes: list[str]) -> str:
    return f"{p.n} real training faces of {', '.join(classes)}" if p.n is not None else "every real training face"


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None
