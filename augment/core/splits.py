"""A validation split when a dataset has none: stratified, deterministic, leak-free."""

from __future__ import annotations

import numpy as np

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError


def leak_groups(subjects: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """A group id per image; images of one subject or with identical pixels share a group.

    Groups are the connected components of "same subject" and "same pixels", so a duplicate
    that appears under two subjects joins them. Ids are numbered in order of first appearance.
    """
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i in range(n):
        keys = [("h", str(hashes[i]))]
        if subjects[i]:
            keys.append(("s", str(subjects[i])))
        for key in keys:
            j = first.setdefault(key, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, first_pos, inverse = np.unique(roots, return_index=True, return_inverse=True)
    # renumber by first appearance so ids do not depend on np.unique's sort of roots
    order = np.argsort(first_pos, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)]


def ensure_val_split(ds: FaceDataset, fraction: float = 0.1, seed: int = 0) -> FaceDataset:
    """Move about ``fraction`` of each class of train into val, unless val already exists.

    Groups never straddle the split: a subject (CK+) and a set of pixel-identical images
    (FER2013 has them) go wholly to one side. Groups are visited in a seeded shuffle and
    taken while they bring the per-class val counts closer to their targets, so the split is
    roughly stratified even when a group (a subject) holds several classes. Every class with
    at least two train images gets at least one val image if its groups allow it, and keeps
    at least one train image. Synthetic images always stay in train.
    """
    if ds.has_split("val") or fraction <= 0:
        return ds
    if not fraction < 1:
        raise UserError(f"validation fraction must be between 0 and 1, not {fraction}")
    train_idx = np.flatnonzero((ds.splits == "train") & ~ds.synthetic)
    if len(train_idx) < 2:
        return ds
    groups = leak_groups(ds.subjects[train_idx], ds.subset(train_idx).pixel_hashes())
    labels = ds.labels[train_idx]
    n_groups, n_classes = int(groups.max()) + 1, ds.num_classes
    per_group = np.zeros((n_groups, n_classes), dtype=np.int64)
    np.add.at(per_group, (groups, labels), 1)
    per_class = per_group.sum(0)
    target = [float(max(1.0, fraction * n)) if n >= 2 else 0.0 for n in per_class.tolist()]
    cap = [max(0, n - 1) for n in per_class.tolist()]  # always leave one image in train
    # sparse rows: [(class, count), ...] per group, as Python ints for a fast greedy loop
    rows, cols = np.nonzero(per_group)
    members: list[list[tuple[int, int]]] = [[] for _ in range(n_groups)]
    for g, c, k in zip(rows.tolist(), cols.tolist(), per_group[rows, cols].tolist(), strict=True):
        members[g].append((c, k))

    taken = [0] * n_classes
    chosen = np.zeros(n_groups, dtype=bool)
    rng = np.random.default_rng(seed)
    for g in rng.permutation(n_groups).tolist():
        gain = 0.0
        ok = True
        for c, k in members[g]:
            if taken[c] + k > cap[c]:
                ok = False
                break
            gain += abs(target[c] - taken[c]) - abs(target[c] - taken[c] - k)
        if not ok or gain <= 1e-9:
            continue
        chosen[g] = True
        for c, k in members[g]:
            taken[c] += k
        if all(t - v <= 0.5 for t, v in zip(target, taken, strict=True)):
            break  # no single image could bring any class closer to its target
    val_mask = np.zeros(len(ds), dtype=bool)
    val_mask[train_idx[chosen[groups]]] = True
    out = ds.subset(np.arange(len(ds)))
    out.splits = np.where(val_mask, "val", out.splits).astype("<U5")
    return out


def carve_train_val(data: FaceDataset, val_fraction: float, keep_synthetic: bool = False) -> FaceDataset:
    """The one carve of the real train split: ``data`` without its test split, with a validation split
    carved from the real train faces when it has none (``ensure_val_split``, seed 0).

    Synthetic faces are left out here unless ``keep_synthetic`` (a classifier may train on them); they are
    never carved into validation. Every command that holds out validation faces calls this, so a
    generator, its judge and a comparison hold out the same faces."""
    keep = data.splits != "test"
    if not keep_synthetic:
        keep &= ~data.synthetic
    return ensure_val_split(data.subset(keep), val_fraction, seed=0)
