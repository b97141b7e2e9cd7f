"""``run_compare``: the whole comparison, from the report folder's check to REPORT.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.compare.conditions import GAN_POOL, TRANSFER_POOL
from augment.compare.data import Comparison, prepare_data
from augment.compare.identity import check_report_dir, identity
from augment.compare.pool import synthetic_pool
from augment.compare.scheduler import RunClock, finished_runs, grid, run_grid
from augment.compare.scoring import gather_results
from augment.compare.spec import CompareSpec, validate_spec
from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset
from augment.core.progress import console


def run_compare(
    data: FaceDataset,
    generator_run: str | Path | None,
    report_dir: str | Path,
    spec: CompareSpec,
    progress: bool = True,
    transfer_run: str | Path | None = None,
) -> dict[str, Any]:
    """The whole comparison: every model × condition × seed trained (or kept from an earlier call), then
    results.json and REPORT.md. Rerunning with the same settings resumes. Without a generator only the
    real-only conditions run; a later call with one adds the GAN conditions to the same folder, and one with
    an expression-transfer run (``transfer_run``) the transfer conditions."""
    from augment.core.runtime import pick_device
    from augment.report import write_report

    validate_spec(spec, generator_run, transfer_run)
    device = pick_device(spec.device)
    report_dir = Path(report_dir)
    ident = identity(data, generator_run, spec, transfer_run)
    prepared = prepare_data(data, spec)  # before anything is written: it refuses a --limit the data cannot meet
    report_dir.mkdir(parents=True, exist_ok=True)
    check_report_dir(report_dir, ident)
    pools, reports = {}, {}
    for name, run in ((GAN_POOL, generator_run), (TRANSFER_POOL, transfer_run)):
        pools[name], reports[name] = synthetic_pool(report_dir, prepared, run, spec, device, progress, name)
    cmp = Comparison(report_dir, spec, device, prepared, pools, progress)
    runs = grid(spec)
    done, todo = finished_runs(cmp, runs)
    if progress and done:
        console.print(f"{len(done)} of {len(runs)} runs already finished; keeping them")
    clock = RunClock.for_grid(done, todo, max(1, len(spec.gpus)))
    done.update(run_grid(cmp, todo, len(done), len(runs), clock))
    summary = gather_results(
        cmp, {GAN_POOL: generator_run, TRANSFER_POOL: transfer_run}, reports, [done[k] for k in runs]
    )
    write_json(report_dir / "results.json", summary)
    write_report(report_dir, summary, pools)
    return summary
