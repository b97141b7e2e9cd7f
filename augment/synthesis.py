"""Synthetic faces for a plan, kept only when they pass the quality filter: the part of ``rebalance`` that
``compare`` shares. A noise run draws candidates from noise, a transfer run re-draws real training faces
(``gan.translate``); both pass the same filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.checks import Rule, at_least, below_one, check_rules
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import make_progress
from augment.core.resize import resize_images
from augment.plan import ClassPlan
from gan.config import DEFAULT_CHECKPOINT
from gan.translate import Candidates, NoiseSampler, TransferSampler

Sampler = NoiseSampler | TransferSampler


@dataclass
class QualityFilter:
    """Drop samples the real-only judge does not call their class, and near-copies of training faces.
    A field with ``help`` metadata is a ``rebalance`` option (``augment.cli.options``)."""

    # 0 switches the judge filter off. Set it low: a judge gives few real faces of its hardest classes a high
    # probability, so a high threshold rejects samples that real faces would not pass either.
    min_prob: float = field(
        default=0.2, metadata={"help": "Keep samples the judge gives ≥ this probability for their class (0 = off)."}
    )
    drop_near_copies: bool = field(
        default=True,
        metadata={
            "help": "Drop samples that are near-copies of training faces.",
            "option": "--drop-near-copies/--keep-near-copies",
        },
    )
    near_copy_quantile: float = 0.01
    near_copy_reference: int = 1000  # training faces drawn for the train-to-train near-copy threshold
    max_tries: int = 30  # candidates per wanted image before giving up
    # Usefulness gate: a class whose CAS ratio (gan-eval) is below this gets no synthetic faces; 0 = off, since
    # whether a class's samples help the classifier is compare's to show, not CAS's.
    min_cas: float = field(
        default=0.0,
        metadata={
            "help": "Give no synthetic faces to a class whose CAS ratio is below R: the recall, on real validation "
            "faces, of a classifier trained on its samples over that of one trained on as many real faces (read "
            "from gan-eval's output, or measured); 0 = off."
        },
    )

    def __post_init__(self) -> None:
        """A filter that exists is one synthesis can run with (checked before anything is generated)."""
        check_rules(self, _QUALITY_RULES)


_QUALITY_RULES: tuple[Rule, ...] = (
    ("min_prob", below_one, "use a judge probability from 0 (filter off) up to (not including) 1, e.g. 0.3"),
    ("near_copy_quantile", below_one, "use a quantile from 0 up to (not including) 1, e.g. 0.01"),
    ("near_copy_reference", at_least(2), "use at least 2 training faces"),
    ("max_tries", at_least(1), "use at least 1 candidate per wanted image"),
    ("min_cas", at_least(0), "use a CAS ratio of 0 (gate off) or more, e.g. 0.5"),
)


# What the filter drops, counted apart; the last two only for a transfer run's translated faces.
DROPPED = ("dropped_by_judge", "dropped_near_copies", "dropped_source_expression", "dropped_unchanged")
TRANSFER_ONLY = DROPPED[2:]


@dataclass
class _Screen:
    """What a candidate must pass: the judge's probability for its class, no near-copy of training and,
    for a translated face, a judge that no longer sees its source class."""

    judge: tuple[Any, dict[str, Any]] | None
    quality: QualityFilter
    threshold: float
    device: str

    def __call__(self, cand: Candidates, name: str, bank: np.ndarray) -> tuple[np.ndarray, dict[str, int], np.ndarray]:
        """Which candidates pass, the numbers dropped (by the judge, as keeping their source's expression,
        as near-copies), and the judge's probability of ``name`` per candidate (empty with the judge off)."""
        keep = np.ones(len(cand.images), dtype=bool)
        dropped = dict.fromkeys(DROPPED, 0)
        probs = np.zeros(0)
        if self.judge is not None and self.quality.min_prob > 0:
            probs, stays = self._judge(cand, name)
            ok = probs >= self.quality.min_prob
            dropped["dropped_by_judge"] = int((~ok).sum())
            dropped["dropped_source_expression"] = int((ok & stays).sum())
            keep &= ok & ~stays
        if self.quality.drop_near_copies and keep.any():
            copy, unchanged = self._near_copies(cand, bank, keep)
            dropped["dropped_near_copies"] = int(copy.sum())
            dropped["dropped_unchanged"] = int((unchanged & ~copy).sum())
            keep &= ~copy & ~unchanged
        return keep, dropped, probs

    def _judge(self, cand: Candidates, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The judge's probability of ``name``, and whether it still calls each face its source's class."""
        from classifier.judge import judge_probabilities

        if cand.source_classes is None:
            return judge_probabilities(self.judge, cand.images, [name], self.device)[:, 0], np.zeros(
                len(cand.images), bool
            )
        known = list(self.judge[1]["classes"])
        full = judge_probabilities(self.judge, cand.images, known, self.device)
        seen = np.array(known)[full.argmax(1)]
        return full[:, known.index(name)], seen == np.array(cand.source_classes)

    def _near_copies(self, cand: Candidates, bank: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which kept candidates are closer than the threshold to a training face of their class, and which
        (translated faces) to their own source: left unchanged."""
        from gan.metrics import near_copies, nearest_distances

        copy = np.zeros(len(cand.images), dtype=bool)
        unchanged = np.zeros(len(cand.images), dtype=bool)
        rows = np.flatnonzero(keep)
        if len(bank):
            copy[rows] = near_copies(nearest_distances(cand.images[rows], bank)[0], self.threshold)
        if cand.source_images is not None:
            diff = cand.images[rows].astype(np.float32) - cand.source_images[rows].astype(np.float32)
            unchanged[rows] = near_copies(np.sqrt((diff**2).mean(axis=(1, 2, 3))), self.threshold)
        return copy, unchanged


def train_near_copy_threshold(train: np.ndarray, quality: QualityFilter) -> float:
    """The near-copy threshold rebalance filters with: train-to-train, training data only (a fixed
    draw of ``quality.near_copy_reference`` training faces, each against the others)."""
    from gan.metrics import near_copy_threshold

    if len(train) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train), size=min(quality.near_copy_reference, len(train)), replace=False)
    return near_copy_threshold(train[pick], train, quality.near_copy_quantile, own_rows=pick)


def _make_screen(
    judge: tuple[Any, dict[str, Any]] | None,
    quality: QualityFilter,
    wanted: list[ClassPlan],
    train: FaceDataset,
    g: Any,
    device: str,
) -> _Screen:
    """The filter of a synthesis, checked before anything is generated: a judge that knows every
    wanted class when the filter needs one, and the train-to-train near-copy threshold."""
    from classifier.judge import judge_columns

    if quality.min_prob > 0:
        if judge is None:
            raise UserError("the quality filter needs a judge classifier; pass one or switch the filter off")
        fix = "pass a judge trained on these classes or switch the filter off"
        judge_columns(judge[1], [p.name for p in wanted], fix=fix)
    threshold = 0.0
    if quality.drop_near_copies and wanted:
        threshold = train_near_copy_threshold(resize_images(train.images, g.size, g.channels), quality)
    return _Screen(judge, quality, threshold, device)


EARLY_TRIES = 1000  # candidates seen before a class whose pass rate cannot fill it is given up early


def _fill_class(
    p: ClassPlan, sampler: Sampler, bank: np.ndarray, screen: _Screen, advance: Callable[[int], Any]
) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """``p.add`` accepted faces of one class, their FaceDataset sources, and the counts of the report.

    Candidates come in the sampler's fixed order (noise index, or place in the source order, 0, 1, ...),
    so the accepted set is the same on every rerun. A class that cannot be filled within ``max_tries``
    candidates per wanted image stops with the pass rate, as soon as that rate shows it.
    """
    accepted: list[np.ndarray] = []
    sources: list[str] = []
    probs: list[np.ndarray] = []
    counts = dict.fromkeys(DROPPED, 0)
    tried = 0
    while len(accepted) < p.add:
        _check_fill_rate(p, len(accepted), tried, screen.quality, probs)
        n = int(min(1024, max(64, 1.5 * (p.add - len(accepted)))))
        cand = sampler.draw(p.name, n, tried)
        keep, dropped, own = screen(cand, p.name, bank)
        taken = np.flatnonzero(keep)[: p.add - len(accepted)]
        accepted += list(cand.images[taken])
        sources += [cand.sources[i] for i in taken]
        probs.append(own)
        tried += n
        counts = {k: v + dropped[k] for k, v in counts.items()}
        advance(len(taken))
    g = sampler.g
    arr = np.stack(accepted) if accepted else np.zeros((0, g.channels, g.size, g.size), np.uint8)
    if sampler.recipe != "transfer":
        counts = {k: v for k, v in counts.items() if k not in TRANSFER_ONLY}
    return arr, sources, {"added": len(arr), "generated": tried, **counts}


def _check_fill_rate(p: ClassPlan, accepted: int, tried: int, quality: QualityFilter, probs: list[np.ndarray]) -> None:
    """One line, before more is generated, when a class cannot be filled: its tries are spent, or after
    ``EARLY_TRIES`` candidates even twice its pass rate so far would spend them (a class passing well
    under 1% would otherwise take hours to fail)."""
    limit = quality.max_tries * p.add
    rate = accepted / tried if tried else 1.0
    hopeless = tried >= EARLY_TRIES and tried + (p.add - accepted) / max(2 * rate, 1e-12) > limit
    if tried < limit and not hopeless:
        return
    hint = _min_prob_hint(np.concatenate(probs) if probs else np.zeros(0), quality)
    raise UserError(
        f"{p.name}: only {accepted} of {p.add} samples passed the quality filter after {tried} tries "
        f"({rate:.1%}; the limit is {quality.max_tries} tries per wanted image); "
        f"{hint or 'lower --min-prob'} or train the generator longer"
    )


def _min_prob_hint(probs: np.ndarray, quality: QualityFilter) -> str:
    """The highest of a few lower --min-prob values whose pass rate on the candidates seen would fill the
    class within half its tries ('' when none would, or the judge filter is off)."""
    for t in (0.25, 0.2, 0.15, 0.1, 0.05):
        share = float((probs >= t).mean()) if len(probs) else 0.0
        if t < quality.min_prob and share * quality.max_tries >= 2:
            return f"--min-prob {t} would pass {share:.0%} of them"
    return ""


def synthesize(
    plan: list[ClassPlan],
    generator_run: str | Path,
    train: FaceDataset,
    judge: tuple[Any, dict[str, Any]] | None,
    quality: QualityFilter,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    checkpoint: str = DEFAULT_CHECKPOINT,
    sampler: tuple[Sampler, dict[str, Any]] | None = None,
    source_classes: list[str] | None = None,
) -> tuple[FaceDataset, dict[str, Any]]:
    """Synthetic train images per ``plan``, in ``train``'s class space and image shape; each image's source
    names what reproduces it (``augment.core.manifest``).

    ``train`` holds real training faces only: what is kept is decided on them (the judge, trained on real
    images, and near-copies under the train-to-train threshold), and a transfer run translates them
    (from ``source_classes``, default every class but the target). ``sampler`` is
    ``gan.translate.load_sampler``'s for ``generator_run`` when the caller has loaded it already.
    """
    from gan.translate import load_sampler

    smp, meta = sampler or load_sampler(generator_run, train, seed, device, checkpoint, source_classes)
    wanted = [p for p in plan if p.add > 0]
    _check_classes(wanted, smp, generator_run)
    report: dict[str, Any] = {
        "generator_run": str(generator_run),
        "recipe": meta["recipe"],
        "checkpoint": meta["checkpoint"],
        "checkpoint_step": meta["step"],
        "seed": seed,
        "min_prob": quality.min_prob if judge else None,
        "per_class": {},
    }
    screen = _make_screen(judge, quality, wanted, train, smp.g, device)
    if quality.drop_near_copies and wanted:
        report.update(near_copy_threshold=screen.threshold, near_copy_reference="train-to-train")
    images, labels, sources = [], [], []
    with make_progress() as prog:
        task = prog.add_task("synthesizing", total=sum(p.add for p in wanted)) if progress else None
        for p in wanted:
            own = train.images[train.labels == train.classes.index(p.name)]
            bank = resize_images(own, smp.g.size, smp.g.channels)
            arr, srcs, report["per_class"][p.name] = _fill_class(
                p, smp, bank, screen, lambda n: task is not None and prog.advance(task, n)
            )
            images.append(resize_images(arr, train.size, train.channels))
            labels += [train.classes.index(p.name)] * len(arr)
            sources += srcs
    return _synthetic_dataset(train, images, labels, sources, f"synthetic from {generator_run}"), report


def _check_classes(wanted: list[ClassPlan], sampler: Sampler, generator_run: str | Path) -> None:
    """Before anything is made: the generator knows every wanted class, and a transfer run has sources."""
    for p in wanted:
        if p.name not in sampler.classes:
            raise UserError(f"the generator in {generator_run} cannot make '{p.name}'")
        if isinstance(sampler, TransferSampler):
            sampler.check(p.name)


def _synthetic_dataset(
    train: FaceDataset, images: list[np.ndarray], labels: list[int], sources: list[str], name: str
) -> FaceDataset:
    n = len(labels)
    return FaceDataset(
        images=np.concatenate(images) if images else np.zeros((0, *train.images.shape[1:]), np.uint8),
        labels=np.array(labels, dtype=np.int64),
        splits=np.full(n, "train"),
        sources=np.array(sources, dtype=str),
        subjects=np.full(n, "", dtype=str),
        classes=list(train.classes),
        synthetic=np.ones(n, dtype=bool),
        name=name,
    )
