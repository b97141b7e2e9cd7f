"""Best-checkpoint selection: the generator scored on the validation split, best.pt kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from augment.core.atomic import append_jsonl, read_jsonl, save_torch
from augment.core.dataset import FaceDataset
from augment.core.progress import console
from augment.core.rundir import load_checkpoint
from augment.core.runtime import barrier
from gan.config import GanConfig
from gan.plots import plot_selection
from gan.sample import BEST
from gan.state import GanState, generator_kwargs
from gan.validation import score_generator


def selection_due(cfg: GanConfig, step: int) -> bool:
    """Every ``select_every`` steps, and at the last step, so the end of training is always a candidate
    (a run shorter than ``select_every`` steps selects nothing). A run later extended with a larger
    ``--steps`` keeps the score of its old last step: its best.pt may differ from an uninterrupted run's."""
    if cfg.select_every <= 0 or step <= 0 or cfg.select_every > cfg.steps:
        return False
    return step % cfg.select_every == 0 or step == cfg.steps


def prepare_selection(st: GanState, data: FaceDataset, val: FaceDataset, progress: bool) -> None:
    """When the run will reach a selection step: the validation split, the judge (every rank loads or
    trains it: a judge trained here trains on all ranks of a torchrun job) and the best score so far."""
    cfg = st.cfg
    if cfg.select_every <= 0 or cfg.select_every > cfg.steps or st.step >= cfg.steps:
        return
    if len(val) == 0:
        if st.dist.main and progress:
            console.print(f"{data.name}: no validation faces of the GAN's classes; best-checkpoint selection is off")
        return
    st.val = val
    st.judge = _grading_judge(st, data, progress)
    barrier(st.dist)
    if (st.run_dir / BEST).exists():
        st.best_score = float(load_checkpoint(st.run_dir / BEST)["selection"]["score"])


def _grading_judge(st: GanState, data: FaceDataset, progress: bool) -> Any:
    """The run's grading judge: ``--judge``, else the one trained (once) into RUN/judge-grading on the real
    training images; every rank loads or trains it (a judge trained here trains on all ranks of a torchrun job)."""
    from classifier.inference import load_classifier
    from classifier.judge import get_judge, judge_columns

    if st.cfg.judge:
        judge = load_classifier(st.cfg.judge, device=st.device)
    else:
        judge = get_judge(data, st.run_dir, None, st.device, progress and st.dist.main, kind="grading")
    judge_columns(judge[1], st.classes, fix="pass a judge trained on the generator's classes")
    return judge


def prepare_guide(st: GanState, data: FaceDataset, progress: bool) -> None:
    """A transfer run with --guide-weight: the guide classifier (--guide, else a fer-cnn trained once into
    RUN/judge-guide), frozen; its loss on G's translations, classed as their target, tells G what each
    expression looks like from the first step, which D's class head learns only slowly. It is never the
    judge that scores selection."""
    cfg = st.cfg
    if cfg.guide_weight <= 0 or st.step >= cfg.steps:
        return
    from classifier.inference import load_classifier
    from classifier.judge import get_judge, judge_columns

    if cfg.guide:
        st.guide = load_classifier(cfg.guide, device=st.device)
    else:
        st.guide = get_judge(data, st.run_dir, None, st.device, progress and st.dist.main, kind="guide")
    judge_columns(st.guide[1], st.classes, fix="pass a --guide trained on the generator's classes")
    st.guide[0].eval()
    for p in st.guide[0].parameters():
        p.requires_grad_(False)
    st.guide_columns = torch.tensor(judge_columns(st.guide[1], st.classes), device=st.device)
    barrier(st.dist)


def save_best(st: GanState, scores: dict[str, Any]) -> None:
    """best.pt: the sampling generator of this step (EMA when on) and its selection scores."""
    sampler = st.g_ema if st.g_ema is not None else st.g
    state = {
        "step": st.step,
        "g_ema": sampler.state_dict(),
        "classes": st.classes,
        "generator_kwargs": generator_kwargs(st.cfg, len(st.classes)),
        "config": st.config,
        "selection": scores,
    }
    save_torch(st.run_dir / BEST, state)


def select_step(st: GanState) -> None:
    """Score the sampling generator on the validation split (rank 0), log it to metrics.jsonl and
    selection.png, and keep it as best.pt when it beats the best so far."""
    if st.dist.main and st.judge is not None and st.val is not None:
        from classifier.judge import judge_dir_of

        sampler = st.g_ema if st.g_ema is not None else st.g
        was_training = sampler.training
        cfg = st.cfg
        scores = score_generator(
            sampler, st.judge, st.val, st.classes, cfg.select_per_class, cfg.select_seed, st.device
        )
        sampler.train(was_training)
        best = scores["score"] > st.best_score
        if best:
            st.best_score = scores["score"]
            save_best(st, scores)
        judge = judge_dir_of(st.run_dir, Path(cfg.judge) if cfg.judge else None, "grading")
        record = {"step": st.step, "selection": scores, "best": best, "judge": str(judge)}
        append_jsonl(st.run_dir / "metrics.jsonl", record)
        plot_selection(read_jsonl(st.run_dir / "metrics.jsonl"), st.run_dir / "selection.png")
    barrier(st.dist)
