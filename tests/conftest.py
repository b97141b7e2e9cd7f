"""Shared fixtures: tiny dataset layouts built in tmp folders, and a small demo-face dataset.

Builders are plain functions (import them with ``from tests.conftest import make_folder_tree``)
so a test can build several layouts; ``demo_dir`` / ``demo_ds`` are session-scoped so the GAN,
classifier and rebalance tests share one small rendered dataset, and ``tiny_gan_run`` /
``tiny_judge_run`` share one tiny generator and one tiny judge trained on it. The config helpers
(``tiny_gan_config``, ``tiny_classifier_config``) and ``run_cli`` are plain functions too;
``tests/distributed_worker.py`` imports them under torchrun (the repo root is on PYTHONPATH).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Train images per class for the shared demo dataset: two minority classes, like the real demo.
DEMO_COUNTS: dict[str, int] = {
    "neutral": 24,
    "happy": 24,
    "sad": 24,
    "surprise": 24,
    "fear": 24,
    "disgust": 6,
    "angry": 24,
    "contempt": 6,
}
DEMO_SIZE = 48
DEMO_TEST_FRACTION = 0.2
TINY_GAN_STEPS = 10  # steps of the shared ``tiny_gan_run``


# --------------------------------------------------------------------------- images
def random_image(rng: np.random.Generator, size: int = 16, channels: int = 1) -> np.ndarray:
    """Noise image (H, W) or (H, W, 3) uint8; two calls practically never collide."""
    shape = (size, size) if channels == 1 else (size, size, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def write_image(path: Path, array: np.ndarray) -> Path:
    """Write an (H, W) or (H, W, 3) uint8 array as PNG/JPG (format from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(array, dtype=np.uint8))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.convert("RGB" if img.mode == "RGB" else "L").save(path, quality=95)
    else:
        img.save(path)
    return path


def write_corrupt(path: Path, nbytes: int = 200, seed: int = 0) -> Path:
    """Random bytes under an image name: readers must skip it, not crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes())
    return path


def make_folder_tree(
    root: Path,
    layout: dict[str, int | Sequence[str]],
    *,
    size: int = 16,
    channels: int = 1,
    ext: str = "png",
    seed: int = 0,
) -> Path:
    """Write a class-folder tree under ``root``.

    ``layout`` maps a folder (relative, e.g. ``"train/happy"`` or ``"anger"``) to either a
    number of images (named ``img_000.<ext>``...) or a list of file names to write. Every
    image is distinct noise, so the tree has no duplicates unless a test plants them.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for folder, spec in layout.items():
        names = [f"img_{i:03d}.{ext}" for i in range(spec)] if isinstance(spec, int) else list(spec)
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_image(root / folder / name, random_image(rng, size, channels))
    return root


def fer_pixels(rng: np.random.Generator) -> str:
    return " ".join(map(str, rng.integers(0, 256, 48 * 48).tolist()))


def make_fer_csv(
    path: Path,
    rows: Sequence[int | tuple],
    *,
    usage: bool = True,
    header: Sequence[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a FER2013-style CSV.

    ``rows`` are emotion codes (usage "Training") or tuples ``(emotion, usage)`` or
    ``(emotion, usage, pixels)`` where pixels is a string or a 48x48 array; values are
    written as given, so tests can plant bad emotions, usages or pixel counts. ``usage=False``
    writes the train.csv/test.csv variant (``emotion,pixels``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cols = list(header) if header is not None else (["emotion", "pixels", "Usage"] if usage else ["emotion", "pixels"])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in rows:
            row = row if isinstance(row, tuple) else (row, "Training")
            emotion, use = row[0], row[1] if len(row) > 1 else "Training"
            pixels = row[2] if len(row) > 2 else fer_pixels(rng)
            if isinstance(pixels, np.ndarray):
                pixels = " ".join(map(str, pixels.reshape(-1).tolist()))
            values = {"emotion": emotion, "pixels": pixels, "usage": use}
            w.writerow([values.get(c.lower(), "") for c in cols])
    return path


def make_rafdb(
    root: Path, entries: Sequence[tuple[str, int]], *, variant: str = "aligned", size: int = 16, seed: int = 0
) -> Path:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and ``Image/aligned`` or ``Image/original``.

    ``entries`` are (file name as listed, e.g. ``train_00001.jpg``, label code 1-7).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("".join(f"{n} {c}\n" for n, c in entries))
    for name, _ in entries:
        stem = Path(name).stem
        rel = f"aligned/{stem}_aligned.jpg" if variant == "aligned" else f"original/{name}"
        write_image(root / "Image" / rel, random_image(rng, size, 3))
    return root


CK_FOLDERS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def make_ckplus(root: Path, subjects: int = 6, per: int = 2) -> Path:
    """A CK+48-style tree: ``<emotion>/S1xx_<seq>_<frame>.png``; subject s skips emotion k when (s+k)%3==0."""
    layout = {}
    for k, folder in enumerate(CK_FOLDERS):
        names = []
        for s in range(subjects):
            if (s + k) % 3 == 0:  # not every subject shows every expression
                continue
            names += [f"S{100 + s:03d}_{k + 1:03d}_{j:08d}.png" for j in range(per)]
        layout[folder] = names
    return make_folder_tree(root, layout, size=12)


@contextmanager
def quiet_env() -> Iterator[None]:
    old = os.environ.get("AUGMENT_QUIET")
    os.environ["AUGMENT_QUIET"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("AUGMENT_QUIET", None)
        else:
            os.environ["AUGMENT_QUIET"] = old


# --------------------------------------------------------------------------- tiny runs and the CLI
def tiny_gan_config(ds, steps: int = TINY_GAN_STEPS, *, recipe: str = "full", **kw):
    """A tiny GAN config for ``ds``: 8-wide nets, batch 16, on the CPU, no samples or checkpoints
    before the end, a metrics line every 5 steps; ``kw`` overrides any of these."""
    from gan.config import recipe_config

    opts = {
        "g_width": 8,
        "d_width": 8,
        "batch_size": 16,
        "sample_every": 1000,
        "checkpoint_every": 1000,
        "log_every": 5,
        "device": "cpu",
        **kw,
    }
    cfg = recipe_config(recipe, steps=steps, **opts)
    cfg.size, cfg.channels = ds.size, ds.channels
    return cfg


def tiny_classifier_config(**kw):
    """A quarter-width simple CNN on the CPU; ``kw`` sets the rest (epochs, batch size, ...)."""
    from classifier.config import TrainConfig

    return TrainConfig(**{"model": "simple-cnn", "width": 0.25, "device": "cpu", **kw})


def run_cli(capsys: pytest.CaptureFixture[str], *args) -> tuple[int, str, str]:
    """Run ``augment ARGS`` in-process, quietly; (exit code, stdout, stderr)."""
    from augment.cli import main

    try:
        with quiet_env():
            main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """A user error: exit code 2 and one ``error:`` line on stderr naming every fragment, no traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True, scope="session")
def one_thread() -> Iterator[None]:
    """One intra-op torch thread for the whole session (session-scoped runs included): the nets
    are tiny and the test machine's cores are shared, so a second thread only adds contention."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No progress bars on stderr (they would clutter captured output)."""
    monkeypatch.setenv("AUGMENT_QUIET", "1")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo-face tree ``train|test/<class>/*.png`` (48 px, seed 0), written once per session.

    24 train faces per class, 6 for disgust and contempt; test has 20% of that (at least 1).
    Treat it as read-only: other tests share it.
    """
    from augment.demo_faces import write_demo_dataset

    out = tmp_path_factory.mktemp("demo") / "faces"
    write_demo_dataset(out, counts=DEMO_COUNTS, seed=0, test_fraction=DEMO_TEST_FRACTION, size=DEMO_SIZE)
    return out


@pytest.fixture(scope="session")
def demo_ds(demo_dir: Path):
    """``demo_dir`` loaded as a FaceDataset (48 px grayscale, splits train/test, 8 classes).

    Shared by the whole session: do not modify it in place (use ``ds.subset(...)`` for a copy).
    """
    from augment.core.readers import load_dataset

    with quiet_env():
        return load_dataset(demo_dir)


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``root`` with (size, mtime) for files: what "nothing changed" compares (a shared run
    must still show it at the end)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (-1, -1)
        for p in root.rglob("*")
    }


def _shared_run(run: Path) -> Iterator[Path]:
    """Hand out a session-shared run, then check that no test wrote into it."""
    before = tree_state(run)
    yield run
    assert tree_state(run) == before, f"a test wrote into the shared run {run}; copy it (shutil.copytree) first"


@pytest.fixture(scope="session")
def tiny_gan_run(demo_ds, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny generator trained once per session on ``demo_ds`` (``TINY_GAN_STEPS`` steps).

    Read-only (checked at the end of the session): other modules share it. A test that writes into
    a run (``gan-eval`` does) works on a ``shutil.copytree`` of it.
    """
    from gan.train import train_gan

    run = tmp_path_factory.mktemp("tiny_gan") / "run"
    with quiet_env():
        train_gan(demo_ds, run, tiny_gan_config(demo_ds), progress=False)
    yield from _shared_run(run)


@pytest.fixture(scope="session")
def tiny_transfer_run(demo_ds, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny expression-transfer generator (``--recipe transfer``) trained once per session on ``demo_ds``.
    Read-only, as above."""
    from gan.train import train_gan

    run = tmp_path_factory.mktemp("tiny_transfer") / "run"
    with quiet_env():
        cfg = tiny_gan_config(demo_ds, 3, recipe="transfer", res_blocks=1, guide_weight=0.0)
        train_gan(demo_ds, run, cfg, progress=False)
    yield from _shared_run(run)


@pytest.fixture(scope="session")
def tiny_judge_run(demo_ds, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A one-epoch tiny judge classifier trained once per session on ``demo_ds``. Read-only, as above."""
    from classifier.train import train_classifier

    run = tmp_path_factory.mktemp("tiny_judge") / "judge"
    with quiet_env():
        train_classifier(demo_ds, run, tiny_classifier_config(epochs=1), progress=False)
    yield from _shared_run(run)


@pytest.fixture
def empty_hub(monkeypatch, tmp_path) -> Path:
    """A torch hub cache with nothing in it: no test picks up (or fetches) real Inception weights, and
    gan-eval falls back to the judge's features."""
    import torch

    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub
