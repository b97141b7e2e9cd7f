"""Faces from a generator run, one interface for both families: a noise run draws them, a transfer run
re-draws real training faces with the target class's expression.

A *sampler* gives the candidates of one class in a fixed order: candidate ``i`` of class ``label`` depends
only on (run, checkpoint, seed, label, i), so a rerun, or asking for more, gives the same faces.

The transfer sampler's sources are the real faces it is given: the caller passes the real train split
(``rebalance``) or the comparison's training part (``compare``), never validation or test, and the
sampler refuses synthetic faces and other splits. By default a target's sources are the faces of every
other class. **The spreading rule**: the sources of one target class are drawn as seeded permutations of
its eligible faces, one after the other, so a source is used again only once every eligible face has
been used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.manifest import synthetic_source, transfer_source
from augment.core.resize import resize_images
from gan.config import DEFAULT_CHECKPOINT, TRANSFER, GanConfig
from gan.sample import _to_uint8, generate_images, generator_weights, noise_generator, read_generator, sampling_seed

SPREAD_STREAM = 5  # the rng stream of the source permutations (keyed with the seed, the label and the round)


def load_translator(
    run_dir: Path, device: str = "cpu", checkpoint: str = DEFAULT_CHECKPOINT
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The (EMA) generator of a ``--recipe transfer`` run; a noise run is refused in one line."""
    state, meta = read_generator(run_dir, checkpoint)
    if meta["recipe"] != TRANSFER:
        raise UserError(
            f"{run_dir}: a {meta['recipe']}-recipe run draws faces from noise; this needs a --recipe transfer run"
        )
    return _translator(state, device), meta


def _translator(state: dict[str, Any], device: str) -> torch.nn.Module:
    from gan.transfer_models import TransferGenerator

    g = TransferGenerator(**{k: v for k, v in state["generator_kwargs"].items() if k != "recipe"})
    g.load_state_dict(generator_weights(state))
    return g.to(device).eval()


def spread(n: int, seed: int, label: int, count: int, offset: int = 0) -> np.ndarray:
    """Positions ``offset .. offset+count-1`` of a target's source order over ``n`` eligible faces: round
    ``r`` is a permutation seeded by (seed, label, r), so no face repeats until all ``n`` have been used."""
    if n < 1:
        raise ValueError("no eligible source faces")
    pos = np.arange(offset, offset + count)
    out = np.empty(count, dtype=np.int64)
    for r in np.unique(pos // n):
        perm = np.random.default_rng([seed, label, r, SPREAD_STREAM]).permutation(n)
        here = pos // n == r
        out[here] = perm[pos[here] % n]
    return out


@torch.no_grad()
def translate(g: torch.nn.Module, faces: np.ndarray, target: int, device: str = "cpu", batch: int = 256) -> np.ndarray:
    """uint8 faces (at G's size and channels) re-drawn as class index ``target`` of the generator."""
    g.eval()
    out = []
    for start in range(0, len(faces), batch):
        x = torch.from_numpy(faces[start : start + batch]).float().div(127.5).sub(1).to(device)
        out.append(_to_uint8(g(x, torch.full((len(x),), target, device=device))))
    if not out:
        return np.zeros((0, g.channels, g.size, g.size), dtype=np.uint8)
    return np.concatenate(out)


@dataclass
class Candidates:
    """One batch of a sampler: faces at the generator's size, the FaceDataset source of each, and for a
    transfer sampler the class name of each face's source (None for noise)."""

    images: np.ndarray
    sources: list[str]
    source_classes: list[str] | None = None
    source_images: np.ndarray | None = None  # the source faces at the generator's size (transfer)
    rows: np.ndarray | None = None  # the source faces' rows in the sampler's pool (transfer)


@dataclass
class NoiseSampler:
    """A noise run's candidates: ``gan.sample.generate_images`` at the class's sampling seed."""

    g: torch.nn.Module
    classes: list[str]
    seed: int = 0
    device: str = "cpu"
    recipe: str = "noise"

    def provenance(self, name: str, n: int, offset: int) -> list[str]:
        """The FaceDataset sources of candidates ``offset .. offset+n-1`` of ``name``, without drawing them."""
        s = sampling_seed(self.seed, self.classes.index(name))
        return [synthetic_source(name, s, offset + i) for i in range(n)]

    def draw(self, name: str, n: int, offset: int) -> Candidates:
        label = self.classes.index(name)
        s = sampling_seed(self.seed, label)
        images = generate_images(self.g, np.full(n, label), seed=s, device=self.device, offset=offset)
        return Candidates(images, self.provenance(name, n, offset))


@dataclass
class TransferSampler:
    """A transfer run's candidates: real faces of ``pool`` (real train faces only), spread, translated."""

    g: torch.nn.Module
    classes: list[str]  # the generator's classes
    pool: FaceDataset
    seed: int = 0
    device: str = "cpu"
    from_classes: list[str] | None = None  # the source classes (None: every class but the target)
    recipe: str = TRANSFER
    splits: tuple[str, ...] = ("train",)  # best-checkpoint selection alone scores translations of ("val",)
    _faces: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise UserError(f"--seed {self.seed}: a transfer run's source order needs a seed of 0 or more")
        bad = sorted(set(self.pool.splits.tolist()) - set(self.splits))
        if bad or self.pool.synthetic.any():
            raise ValueError(f"transfer sources must be real faces of the {'/'.join(self.splits)} split")
        self._faces = resize_images(self.pool.images, self.g.size, self.g.channels)
        unknown = [c for c in self.from_classes or [] if c not in self.pool.classes]
        if unknown:
            raise UserError(
                f"--source-classes {unknown[0]}: not a class of the data (it has {', '.join(self.pool.classes)})"
            )

    def eligible(self, name: str) -> np.ndarray:
        """The pool rows a target class may take its sources from (its own class only when named)."""
        names = np.array(self.pool.classes)[self.pool.labels]
        ok = np.isin(names, self.from_classes) if self.from_classes else names != name
        return np.flatnonzero(ok)

    def check(self, name: str) -> None:
        """One line when ``name`` has no source face to be translated from."""
        if len(self.eligible(name)) == 0:
            given = f" among --source-classes {','.join(self.from_classes)}" if self.from_classes else ""
            raise UserError(f"{name}: no real training face{given} to translate from; name other source classes")

    def rows(self, name: str, n: int, offset: int) -> np.ndarray:
        """The pool rows of candidates ``offset .. offset+n-1`` of ``name`` (the spreading rule)."""
        self.check(name)
        ok = self.eligible(name)
        return ok[spread(len(ok), self.seed, self.classes.index(name), n, offset)]

    def provenance(self, name: str, n: int, offset: int, rows: np.ndarray | None = None) -> list[str]:
        """The FaceDataset sources of candidates ``offset .. offset+n-1`` of ``name`` (their source faces),
        without translating them."""
        rows = self.rows(name, n, offset) if rows is None else rows
        return [
            transfer_source(name, self.seed, offset + i, self._class_of(r), str(self.pool.sources[r]))
            for i, r in enumerate(rows)
        ]

    def _class_of(self, row: int) -> str:
        return self.pool.classes[int(self.pool.labels[row])]

    def draw(self, name: str, n: int, offset: int) -> Candidates:
        rows = self.rows(name, n, offset)
        src = self._faces[rows]
        images = translate(self.g, src, self.classes.index(name), self.device)
        from_classes = [self._class_of(r) for r in rows]
        return Candidates(images, self.provenance(name, n, offset, rows), from_classes, src, rows)


def with_validation(data: FaceDataset) -> FaceDataset:
    """``data``'s real faces, with the validation split every command carves from train when it has none
    (``augment.core.splits``, seed 0, the default fraction). A transfer run's sources are the train faces of
    this: no person whose translation goes into a dataset's train split is held out as its validation."""
    from augment.core.splits import ensure_val_split

    return ensure_val_split(data.subset(~data.synthetic), GanConfig.val_fraction, seed=0)


def load_any_generator(
    run_dir: str | Path, device: str = "cpu", checkpoint: str = DEFAULT_CHECKPOINT
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The generator of a run of either family (``meta["recipe"]`` says which), for a command that serves both."""
    state, meta = read_generator(Path(run_dir), checkpoint)
    g = _translator(state, device) if meta["recipe"] == TRANSFER else noise_generator(state, device)
    return g, meta


def draw_per_class(
    g: torch.nn.Module, meta: dict[str, Any], pool: FaceDataset | None, per_class: int, seed: int, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray, Candidates | None]:
    """``per_class`` faces of every class of the generator, in class order, and their labels: a noise run's
    ``generate_images`` draw with ``seed``; a transfer run's first candidates of each class (sources from
    ``pool``, real train faces), with the candidates kept (their sources) for the transfer figures."""
    classes = meta["classes"]
    labels = np.repeat(np.arange(len(classes)), per_class)
    if meta["recipe"] != TRANSFER:
        return generate_images(g, labels, seed=seed, device=device), labels, None
    if pool is None:
        raise ValueError("a transfer run needs real source faces")
    sampler = TransferSampler(g, classes, pool, seed, device)
    parts = [sampler.draw(name, per_class, 0) for name in classes]
    joined = Candidates(
        np.concatenate([c.images for c in parts]),
        [s for c in parts for s in c.sources],
        [s for c in parts for s in c.source_classes or []],
        np.concatenate([c.source_images for c in parts]),
        np.concatenate([c.rows for c in parts]),
    )
    return joined.images, labels, joined


def load_sampler(
    run_dir: str | Path,
    pool: FaceDataset | None,
    seed: int = 0,
    device: str = "cpu",
    checkpoint: str = DEFAULT_CHECKPOINT,
    from_classes: list[str] | None = None,
) -> tuple[NoiseSampler | TransferSampler, dict[str, Any]]:
    """The sampler of any gan-train run and its meta (``gan.sample.load_generator``'s, with ``recipe``);
    a transfer run takes its sources from ``pool`` (real train faces)."""
    state, meta = read_generator(Path(run_dir), checkpoint)
    if meta["recipe"] != TRANSFER:
        if from_classes:
            raise UserError(f"--source-classes: {run_dir} is a noise run, which has no source faces; drop the option")
        return NoiseSampler(noise_generator(state, device), meta["classes"], seed, device, meta["recipe"]), meta
    if pool is None:
        raise ValueError("a transfer run needs real source faces")
    real = pool.subset((pool.splits == "train") & ~pool.synthetic)
    return TransferSampler(_translator(state, device), meta["classes"], real, seed, device, from_classes), meta
