"""The filtered synthetic pools of a comparison (the noise generator's, the transfer run's): each made once,
shared by every condition and seed that draws from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augment.compare.conditions import GAN_POOL, condition, condition_spec
from augment.compare.data import CompareData
from augment.compare.spec import CompareSpec
from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset


def synthetic_pool(
    report_dir: Path,
    data: CompareData,
    generator_run: str | Path | None,
    spec: CompareSpec,
    device: str,
    progress: bool,
    pool: str = GAN_POOL,
) -> tuple[FaceDataset | None, dict[str, Any]]:
    """The filtered synthetic pool ``pool`` of ``generator_run`` (GAN_POOL: a noise run; TRANSFER_POOL: a
    transfer run, whose sources are the comparison's real train part), made once and reused by every
    condition and seed that draws from it (and by reruns)."""
    from augment.synthesis import QualityFilter, synthesize
    from classifier.judge import get_judge

    users = [c for c in spec.conditions if condition_spec(c, spec).synthetic and condition(c).pool == pool]
    if generator_run is None or not users:
        return None, {}
    stem = "synthetic" if pool == GAN_POOL else pool
    pool_path, report_path = report_dir / f"{stem}.npz", report_dir / f"{stem}.json"
    if pool_path.exists() and report_path.exists():
        return FaceDataset.load(pool_path), json.loads(report_path.read_text())
    judge = None
    if spec.min_prob > 0:
        judge = get_judge(data.trainval, Path(generator_run), spec.judge, device, progress)
    quality = QualityFilter(min_prob=spec.min_prob, drop_near_copies=spec.drop_near_copies)
    faces, synth_report = synthesize(
        data.plan, generator_run, data.train, judge, quality, 0, device, progress, spec.checkpoint
    )
    faces.save(pool_path)
    write_json(report_path, synth_report)
    return faces, synth_report
