"""Sample quality, per class: Fréchet distance, classification by a real-only judge, memorisation.

FID proper needs the FID Inception weights on disk (never downloaded here). Without
them the Fréchet distance is computed in the feature space of a classifier trained on
the real training images and reported under that name, never as "FID".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.errors import UserError


def _fid_weights_file() -> str:
    """The FID Inception weights' file name in the torch hub cache: pytorch-fid's own, from its URL."""
    from pytorch_fid.inception import FID_WEIGHTS_URL

    return FID_WEIGHTS_URL.rsplit("/", 1)[-1]


FID_WEIGHTS_FILE = _fid_weights_file()


# ----------------------------------------------------------------------------- features
def hub_inception_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def find_inception_weights(path: str | Path | None) -> Path | None:
    """The user's file, else the torch hub cache copy, else None (no download, ever)."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"--inception-weights {p}: no such file")
        return p
    hub = hub_inception_path()
    return hub if hub.is_file() else None


@contextlib.contextmanager
def _local_weights(path: Path) -> Iterator[None]:
    """Make pytorch-fid read its weights from ``path`` instead of its URL."""
    import pytorch_fid.inception as inc

    original = inc.load_state_dict_from_url

    def load(*_args: Any, **_kwargs: Any) -> dict[str, torch.Tensor]:
        return torch.load(path, map_location="cpu", weights_only=True)

    inc.load_state_dict_from_url = load
    try:
        yield
    finally:
        inc.load_state_dict_from_url = original


def inception_features(images: np.ndarray, weights: Path, device: str = "cpu", batch: int = 100) -> np.ndarray:
    """2048-d pool features of the FID Inception network, as pytorch-fid computes them."""
    from pytorch_fid.inception import InceptionV3

    with _local_weights(weights):
        try:
            model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
        except Exception as err:  # noqa: BLE001
            raise UserError(f"{weights}: not the FID Inception weights ({type(err).__name__})") from err
    feats = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).float().div(255).to(device)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            feats.append(model(x)[0].squeeze(-1).squeeze(-1).cpu().numpy())
    return np.concatenate(feats).astype(np.float64)


def classifier_features(
    model: torch.nn.Module, images: np.ndarray, device: str = "cpu", batch: int = 512
) -> np.ndarray:
    from classifier.data import to_input

    model.eval()
    feats = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            feats.append(model.features(to_input(torch.from_numpy(images[i : i + batch])).to(device)).float().cpu())
    return torch.cat(feats).numpy().astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's statistics and Fréchet distance between two feature sets."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(calculate_frechet_distance(mu1, s1, mu2, s2))


# ----------------------------------------------------------------------------- memorisation
EXACT_DUPLICATE = 0.5  # RMS distance (0-255) at or under which two faces count as the same image


def nearest_distances(
    queries: np.ndarray, bank: np.ndarray, chunk: int = 512, own_rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """RMS pixel distance (0-255 scale) from each query to its nearest bank image, and its index.

    ``own_rows[i]``, when given, is query i's own row in ``bank``: it is not its own neighbour.
    """
    q = torch.from_numpy(queries.reshape(len(queries), -1)).float()
    b = torch.from_numpy(bank.reshape(len(bank), -1)).float()
    dims = q.shape[1]
    dist = np.empty(len(q))
    idx = np.empty(len(q), dtype=np.int64)
    for i in range(0, len(q), chunk):
        qc = q[i : i + chunk]
        d = torch.cdist(qc, b)
        if own_rows is not None:
            d[torch.arange(len(qc)), torch.from_numpy(np.asarray(own_rows[i : i + chunk]))] = float("inf")
        _, j = d.min(1)
        # cdist's matrix-product shortcut loses precision (an exact copy came out at ~0.06, not 0):
        # recompute the distance to the chosen neighbour directly.
        m = (qc - b[j]).pow(2).sum(1).sqrt()
        dist[i : i + chunk] = (m / dims**0.5).numpy()
        idx[i : i + chunk] = j.numpy()
    return dist, idx


def _threshold_of(reference_distances: np.ndarray, quantile: float) -> float:
    d = reference_distances[reference_distances > EXACT_DUPLICATE]
    return float(np.quantile(d, quantile)) if len(d) else 0.0


def near_copy_threshold(
    reference: np.ndarray, bank: np.ndarray, quantile: float, own_rows: np.ndarray | None = None
) -> float:
    """Distance under which a sample counts as a copy of a ``bank`` face: the ``quantile`` of the
    nearest-``bank`` distances of the real ``reference`` faces (exact duplicates ignored).

    The reference set is the caller's choice and must be named with the result: training faces
    against training (``own_rows``: their rows in ``bank``) where the threshold decides what is
    kept, test faces against training where it only reports.
    """
    if len(reference) == 0 or len(bank) == 0:
        return 0.0
    return _threshold_of(nearest_distances(reference, bank, own_rows=own_rows)[0], quantile)


def near_copies(distances: np.ndarray, threshold: float) -> np.ndarray:
    """Which nearest-neighbour distances mark a near-copy (closer than ``threshold``)."""
    return distances < threshold


def memorisation_report(
    samples: np.ndarray,
    sample_labels: np.ndarray,
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    classes: list[str],
    quantile: float = 0.01,
) -> dict[str, Any]:
    """Distances of samples to their nearest training image, against real test images'.

    An evaluation, so its reference is test-to-train: a sample counts as a near-copy when it is
    closer to a training image than all but ``quantile`` of real test images are (exact test/train
    duplicates excluded from the reference, since FER2013 has them).
    """
    s_dist, s_idx = nearest_distances(samples, train)
    t_dist, _ = nearest_distances(test, train)
    threshold = _threshold_of(t_dist, quantile)
    copies = near_copies(s_dist, threshold)
    per_class = {}
    for k, c in enumerate(classes):
        sm = sample_labels == k
        tm = (test_labels == k) & (t_dist > EXACT_DUPLICATE)
        if not sm.any():
            continue
        per_class[c] = {
            "samples": int(sm.sum()),
            "sample_nn_median": float(np.median(s_dist[sm])),
            "sample_nn_min": float(s_dist[sm].min()),
            "test_nn_median": float(np.median(t_dist[tm])) if tm.any() else None,
            "near_copies": int(copies[sm].sum()),
        }
    return {
        "distance": "RMS pixel difference, 0-255 scale, to the nearest training image",
        "reference": "test-to-train",
        "threshold": threshold,
        "threshold_rule": f"{quantile:.0%} quantile of real test-to-train distances (exact duplicates excluded)",
        "test_exact_duplicates_of_train": int((t_dist <= EXACT_DUPLICATE).sum()),
        "near_copies": int(sum(v["near_copies"] for v in per_class.values())),
        "per_class": per_class,
        "_sample_nn_index": s_idx,
        "_sample_nn_distance": s_dist,
    }


def save_nearest_neighbour_png(
    samples: np.ndarray,
    sample_labels: np.ndarray,
    nn_index: np.ndarray,
    nn_dist: np.ndarray,
    train: np.ndarray,
    classes: list[str],
    path: Path,
    per_class: int = 6,
) -> None:
    """Each class's closest samples (left) beside their nearest training image (right)."""
    from augment.core.pictures import labelled_grid

    rows = []
    for k in range(len(classes)):
        idx = np.flatnonzero(sample_labels == k)
        idx = idx[np.argsort(nn_dist[idx])][:per_class]
        pairs = [im for i in idx for im in (samples[i], train[nn_index[i]])]
        rows.append(np.stack(pairs) if pairs else samples[:0])
    labelled_grid(
        rows,
        classes,
        path,
        columns=2 * per_class,
        title="pairs: generated sample | its nearest training image (closest first)",
    )


# ----------------------------------------------------------------------------- judge scores
def judge_assignment(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Share of each class's samples that the judge assigns to that class."""
    pred = probs.argmax(1)
    return {c: float((pred[labels == k] == k).mean()) for k, c in enumerate(classes) if (labels == k).any()}


def sample_confusion(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of samples by intended class (rows) and judged class (columns), judged = the judge's argmax."""
    from classifier.metrics import confusion_matrix

    return confusion_matrix(labels, probs.argmax(1), num_classes)


# ----------------------------------------------------------------------------- diversity and fidelity
PR_NEIGHBOURS = 3  # k of the k-NN manifolds (Kynkäänniemi et al. 2019 use k = 3)
KID_SUBSET = 1000  # KID subset size (Bińkowski et al. 2018); smaller sets are used whole
KID_SUBSETS = 100  # subsets averaged when a set is larger than KID_SUBSET


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return torch.cdist(torch.from_numpy(a).double(), torch.from_numpy(b).double()).numpy()


def knn_radii(feats: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point: the radius of its ball in the manifold."""
    d = _pairwise(feats, feats)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_NEIGHBOURS) -> dict[str, float] | None:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real`` features.

    Each set's manifold is the union of balls around its points reaching their k-th nearest neighbour.
    Precision: share of fakes inside the real manifold (fidelity). Recall: share of reals inside the fake
    manifold (diversity; a generator collapsed to a few faces covers few real ones). None when either
    set has k points or fewer.
    """
    if len(real) <= k or len(fake) <= k:
        return None
    d = _pairwise(fake, real)  # (fakes, reals)
    precision = (d <= knn_radii(real, k)[None, :]).any(1).mean()
    recall = (d <= knn_radii(fake, k)[:, None]).any(0).mean()
    return {"precision": float(precision), "recall": float(recall)}


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with the polynomial kernel k(a, b) = (a·b / d + 1)³."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subset: int = KID_SUBSET, subsets: int = KID_SUBSETS, seed: int = 0
) -> float | None:
    """KID (Bińkowski et al. 2018) between two feature sets: the unbiased polynomial-kernel MMD², so its
    expectation is 0 for two draws of one distribution whatever the set sizes (unlike the Fréchet
    distance). Sets larger than ``subset`` are scored on ``subsets`` random subsets and averaged.
    None when a set has fewer than 2 points."""
    if len(a) < 2 or len(b) < 2:
        return None
    if len(a) <= subset and len(b) <= subset:
        return _mmd2_unbiased(a.astype(np.float64), b.astype(np.float64))
    rng = np.random.default_rng(seed)
    m = min(subset, len(a), len(b))
    scores = [
        _mmd2_unbiased(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(scores))


# ----------------------------------------------------------------------------- exposure and pixel spread
SPREAD_MAX = 500  # images per class the pairwise distance is measured on (all pairs of a seeded draw)


def mean_pairwise_distance(images: np.ndarray, seed: int = 0, limit: int = SPREAD_MAX) -> float | None:
    """Mean RMS pixel distance (0-255) between two different images of a set: near 0 for a generator that
    draws one face per class. None for fewer than 2 images."""
    if len(images) < 2:
        return None
    pick = np.random.default_rng(seed).permutation(len(images))[:limit]
    flat = images[pick].reshape(len(pick), -1).astype(np.float64)
    d = _pairwise(flat, flat) / np.sqrt(flat.shape[1])
    n = len(flat)
    return float(d.sum() / (n * (n - 1)))


def exposure_and_spread(
    samples: np.ndarray, labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray, classes: list[str]
) -> dict[str, dict[str, float | None]]:
    """Per class, samples beside real faces of the class: the standard deviation of each image's mean
    brightness (0-255; a generator whose noise sets the exposure spreads far wider than real faces) and the
    mean pairwise pixel distance (collapse shrinks it), with the sample/real ratio of each."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    out = {}
    for k, c in enumerate(classes):
        s, r = samples[labels == k], real[real_labels == k]
        s_std = float(s.reshape(len(s), -1).mean(1).std()) if len(s) > 1 else None
        r_std = float(r.reshape(len(r), -1).mean(1).std()) if len(r) > 1 else None
        s_pair, r_pair = mean_pairwise_distance(s), mean_pairwise_distance(r)
        out[c] = {
            "brightness_std": s_std,
            "real_brightness_std": r_std,
            "brightness_ratio": ratio(s_std, r_std),
            "pairwise": s_pair,
            "real_pairwise": r_pair,
            "pairwise_ratio": ratio(s_pair, r_pair),
        }
    return out
