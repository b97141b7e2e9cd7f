"""The grid of runs: which are finished (and still mean what they meant), which to train, where (here,
one per GPU of --gpus, or under torchrun), and the time left."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from augment.compare.budgets import budget_train_config
from augment.compare.conditions import ConditionSpec, condition, condition_spec, describe
from augment.compare.data import Comparison, condition_data
from augment.compare.scoring import score_run, throughput
from augment.compare.spec import CompareSpec
from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console

RunKey = tuple[str, str, int]  # model, condition, seed
_WHERE_KEYS = ("device", "workers", "amp", "checkpoint_every")  # where and how fast a run trained, not what


def grid(spec: CompareSpec) -> list[RunKey]:
    return [(m, c, s) for m in spec.models for c in spec.conditions for s in range(spec.seeds)]


def finished_runs(cmp: Comparison, runs: list[RunKey]) -> tuple[dict[RunKey, dict[str, Any]], list[RunKey]]:
    """Results of runs an earlier call finished (kept, never trained again), and the runs still to do."""
    done, todo = {}, []
    for key in runs:
        result_file = cmp.run_dir(key) / "result.json"
        if result_file.exists():
            done[key] = json.loads(result_file.read_text())
            _check_condition(cmp, key, done[key])
            _check_config(cmp, key, done[key])
        else:
            todo.append(key)
    return done, todo


def _check_condition(cmp: Comparison, key: RunKey, result: dict[str, Any]) -> None:
    """A finished run is kept only if its condition still means what it meant (--max-ratio, --synthetic-weight
    and --refit-epochs change what gan-cap, gan-w and the refit conditions train)."""
    now = asdict(condition_spec(key[1], cmp.spec))
    if "recipe" in result and result["recipe"] != now:
        was = describe(key[1], ConditionSpec(**result["recipe"]))
        raise UserError(
            f"{cmp.run_dir(key)} was trained as {was}, but {key[1]} now means {describe(key[1], ConditionSpec(**now))} "
            "(--max-ratio, --synthetic-weight or --refit-epochs changed); use a new --out"
        )


def _check_config(cmp: Comparison, key: RunKey, result: dict[str, Any]) -> None:
    """A finished run is kept only if it was trained as a run of this grid would be now (a budget whose
    images seen changed, for one, makes it another experiment)."""
    if "config" not in result:
        return
    cs = condition_spec(key[1], cmp.spec)
    now = budget_train_config(key[0], cmp.budget, key[2], cs, cmp.device, len(cmp.data.train)).to_dict()
    old = result["config"]
    diff = [k for k, v in now.items() if k not in _WHERE_KEYS and k in old and old[k] != v]
    if diff:
        detail = ", ".join(f"{k} {old[k]!r}, now {now[k]!r}" for k in diff[:3])
        raise UserError(f"{cmp.run_dir(key)} was trained with other settings ({detail}); delete it or use a new --out")


@dataclass
class RunClock:
    """The seconds of finished runs per model (this call's, and those earlier calls recorded), and an estimate
    of the time the runs left will take: each model's mean duration × its runs left, over ``parallel`` GPUs.
    Models train at very different speeds, so a model with no finished run is named, not guessed."""

    seconds: dict[str, list[float]]
    left: dict[str, int]
    parallel: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_grid(cls, done: dict[RunKey, dict[str, Any]], todo: list[RunKey], parallel: int) -> RunClock:
        seconds: dict[str, list[float]] = {}
        for (model, _, _), r in done.items():
            if r.get("seconds"):
                seconds.setdefault(model, []).append(float(r["seconds"]))
        return cls(seconds, dict(Counter(key[0] for key in todo)), parallel)

    def finished(self, model: str, seconds: float) -> None:
        with self.lock:
            self.seconds.setdefault(model, []).append(seconds)
            self.left[model] = self.left.get(model, 0) - 1

    def line(self) -> str | None:
        with self.lock:
            left = {m: n for m, n in self.left.items() if n > 0}
            known = {m: float(np.mean(self.seconds[m])) for m in left if self.seconds.get(m)}
            if not known:
                return None
            total = sum(known[m] * left[m] for m in known) / self.parallel
            parts = ", ".join(f"{left[m]} {m} run(s) × {s:.0f} s" for m, s in known.items())
            gpus = f" over {self.parallel} GPUs" if self.parallel > 1 else ""
            unknown = [m for m in left if m not in known]
            more = f"; and {', '.join(unknown)}, with no finished run yet" if unknown else ""
            return f"time left: about {_duration(total)} ({parts}{gpus}){more}"


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 1:
        return f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def one_run(cmp: Comparison, key: RunKey, slot: int | None) -> dict[str, Any]:
    """Train one model × condition × seed (here, on GPU ``slot`` of --gpus, or under torchrun) and score it."""
    model, cond, seed = key
    t0 = time.time()
    run_dir = cmp.run_dir(key)
    cs = condition_spec(cond, cmp.spec)
    part = condition_data(cmp.data, cmp.pools.get(condition(cond).pool), cs, seed)
    cfg = budget_train_config(model, cmp.budget, seed, cs, cmp.device, len(cmp.data.train))
    eval_device = cmp.device
    if slot is not None or cmp.spec.nproc > 1:
        train_subprocess(part, run_dir, cfg, cmp.spec, slot)
        eval_device = f"cuda:{slot}" if slot is not None else cmp.device
    else:
        from classifier.train import train_classifier

        train_classifier(part, run_dir, cfg, progress=cmp.progress)
    result = score_run(run_dir, cmp.data.test, model, cond, seed, eval_device, part)
    result.update(recipe=asdict(cs), config=cfg.to_dict(), limit=cmp.spec.limit, seconds=round(time.time() - t0, 1))
    result.update(throughput(run_dir, cfg.epoch_samples, part))
    write_json(run_dir / "result.json", result)
    return result


def run_grid(
    cmp: Comparison, todo: list[RunKey], finished: int, total: int, clock: RunClock
) -> dict[RunKey, dict[str, Any]]:
    """The runs still to do: side by side over --gpus, or one after another; the time left printed as runs
    finish."""
    results: dict[RunKey, dict[str, Any]] = {}
    if cmp.spec.gpus:
        free: queue.Queue[int] = queue.Queue()
        for gpu in cmp.spec.gpus:
            free.put(gpu)
        with ThreadPoolExecutor(len(cmp.spec.gpus)) as pool_exec:
            for key, result in pool_exec.map(partial(_on_free_gpu, cmp, free, clock), todo):
                results[key] = result
        return results
    for i, key in enumerate(todo):
        if cmp.progress:
            left = clock.line()
            console.print(
                f"[bold]run {finished + i + 1}/{total}[/bold]: {key[0]} · {key[1]} · seed {key[2]}"
                + (f" ({left})" if left else "")
            )
        results[key] = one_run(cmp, key, None)
        clock.finished(key[0], results[key]["seconds"])
    return results


def _on_free_gpu(
    cmp: Comparison, free: queue.Queue[int], clock: RunClock, key: RunKey
) -> tuple[RunKey, dict[str, Any]]:
    gpu = free.get()
    try:
        if cmp.progress:
            console.print(f"GPU {gpu}: {key[0]} · {key[1]} · seed {key[2]}")
        result = one_run(cmp, key, gpu)
        clock.finished(key[0], result["seconds"])
        left = clock.line()
        if cmp.progress and left:
            console.print(f"GPU {gpu} finished {key[0]} · {key[1]} · seed {key[2]}; {left}")
        return key, result
    finally:
        free.put(gpu)


def child_visible_gpu(gpu: int, visible: str | None) -> str:
    """CUDA_VISIBLE_DEVICES for a child run on ``--gpus`` entry ``gpu``, which counts this process's
    visible GPUs (the same numbering as its cuda:N), not the machine's."""
    if not visible or not visible.strip():
        return str(gpu)
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if not 0 <= gpu < len(ids):
        raise UserError(f"--gpus {gpu}: only {len(ids)} GPU(s) are visible here (CUDA_VISIBLE_DEVICES={visible})")
    return ids[gpu]


def child_config(cfg: Any, gpu: int | None) -> Any:
    """The TrainConfig a run handed to another process trains with: every field as given, but a CUDA device
    is plain "cuda", never this process's "cuda:0" (under torchrun each rank takes its LOCAL_RANK's GPU;
    on a --gpus entry the child sees only that GPU)."""
    cuda = gpu is not None or cfg.device.startswith("cuda")
    return replace(cfg, device="cuda" if cuda else cfg.device)


def train_subprocess(part: FaceDataset, run_dir: Path, cfg: Any, spec: CompareSpec, gpu: int | None) -> None:
    """Hand one run to its own process: one GPU of --gpus, or torchrun over --nproc processes. The child
    reads its data and its whole TrainConfig from files (``augment train --config``, read by
    ``classifier.config.read_train_config``)."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cache = run_dir.parent / f".{run_dir.name}.data.npz"
    config = run_dir.parent / f".{run_dir.name}.config.json"
    part.save(cache)
    write_json(config, child_config(cfg, gpu).to_dict())
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = child_visible_gpu(gpu, os.environ.get("CUDA_VISIBLE_DEVICES"))
    args = ["augment", "train", str(cache), "--out", str(run_dir), "--config", str(config)]
    if spec.nproc > 1:
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={spec.nproc}"]
        cmd = [sys.executable, *launcher, "-m", *args]
    else:
        cmd = [sys.executable, "-m", *args]
    proc = subprocess.run(cmd, env=env)
    cache.unlink(missing_ok=True)
    config.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise UserError(f"training run {run_dir} failed (exit {proc.returncode}); rerun compare to resume")
