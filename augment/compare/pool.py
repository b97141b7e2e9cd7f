"""The filtered synthetic pool of a comparison: made once, shared by every GAN condition and seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augment.compare.conditions import condition_spec
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
) -> tuple[FaceDataset | None, dict[str, Any]]:
    """The filtered synthetic pool, made once and reused by every GAN condition and seed (and by reruns)."""
    from augment.synthesis import QualityFilter, synthesize
    from classifier.judge import get_judge

    if generator_run is None or not any(condition_spec(c, spec).synthetic for c in spec.conditions):
        return None, {}
    pool_path, report_path = report_dir / "synthetic.npz", report_dir / "synthetic.json"
    if pool_path.exists() and report_path.exists():
        return FaceDataset.load(pool_path), json.loads(report_path.read_text())
    judge = None
    if spec.min_prob > 0:
        judge = get_judge(data.trainval, Path(generator_run), spec.judge, device, progress)
    quality = QualityFilter(min_prob=spec.min_prob, drop_near_copies=spec.drop_near_copies)
    pool, synth_report = synthesize(
        data.plan, generator_run, data.train, judge, quality, 0, device, progress, spec.checkpoint
    )
    pool.save(pool_path)
    write_json(report_path, synth_report)
    return pool, synth_report
