"""``generate``: class folders of PNGs with a manifest, deterministic per seed, class selection, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from augment.core.errors import UserError
from augment.core.labels import resolve_classes
from augment.core.manifest import MANIFEST_FIELDS
from gan.generate import generate_to_folder
from gan.sample import sampling_seed
from tests.conftest import TINY_GAN_STEPS as STEPS
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")


def read_manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == MANIFEST_FIELDS
        return list(reader)


def pngs(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))


def test_writes_per_class_files_and_manifest(tiny_gan_run, demo_ds, tmp_path):
    out = tmp_path / "syn"
    summary = generate_to_folder(tiny_gan_run, out, per_class=3, seed=7)
    classes = demo_ds.classes
    assert summary["classes"] == classes and summary["images"] == 3 * len(classes)
    assert summary["checkpoint_step"] == STEPS
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(classes)
    for c in classes:
        assert sorted(p.name for p in (out / c).iterdir()) == [f"syn_{c}_{i:06d}.png" for i in range(3)]

    rows = read_manifest(out)
    assert sorted(r["path"] for r in rows) == pngs(out)  # one row per file, no more
    for r in rows:
        assert (out / r["path"]).is_file()
        assert r["label"] == Path(r["path"]).parent.name
        assert (r["split"], r["source"]) == ("train", "synthetic")
        assert int(r["checkpoint_step"]) == STEPS
        assert int(r["seed"]) == sampling_seed(7, classes.index(r["label"]))  # what generate_images got
        assert Path(r["generator_run"]) == tiny_gan_run.resolve()
        assert Path(r["path"]).name == f"syn_{r['label']}_{int(r['index']):06d}.png"
        assert r["origin"] == ""
        with Image.open(out / r["path"]) as im:
            assert im.size == (demo_ds.size, demo_ds.size) and im.mode == "L"
    meta = json.loads((out / "generate.json").read_text())
    assert meta["seed"] == 7 and meta["per_class"] == 3 and meta["images"] == len(rows)
    assert meta["checkpoint"] == "last" and "no best.pt" in meta["checkpoint_note"]  # the run has no best.pt


def test_deterministic_per_seed_and_rerun_does_not_duplicate(tiny_gan_run, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_to_folder(tiny_gan_run, a, per_class=2, classes="disgust,fear", seed=1)
    generate_to_folder(tiny_gan_run, b, per_class=2, classes="disgust,fear", seed=1)
    generate_to_folder(tiny_gan_run, c, per_class=2, classes="disgust,fear", seed=2)
    files = pngs(a)
    assert files == pngs(b) == pngs(c)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    # Within a set, images differ from each other and between classes.
    assert len({(a / f).read_bytes() for f in files}) == len(files)

    before = {f: (a / f).read_bytes() for f in files}
    generate_to_folder(tiny_gan_run, a, per_class=2, classes="disgust,fear", seed=1)  # rerun, same folder
    assert pngs(a) == files
    assert {f: (a / f).read_bytes() for f in files} == before
    assert len(read_manifest(a)) == len(files)
    # Another count is another run: refused, naming the option, the folder unchanged.
    with pytest.raises(UserError, match="--per-class was 2, now 3"):
        generate_to_folder(tiny_gan_run, a, per_class=3, classes="disgust,fear", seed=1)
    assert {f: (a / f).read_bytes() for f in pngs(a)} == before
    # With overwrite a larger set holds the old images first: image i depends on (seed, class, i) only.
    generate_to_folder(tiny_gan_run, a, per_class=3, classes="disgust,fear", seed=1, overwrite=True)
    assert {f: (a / f).read_bytes() for f in files} == before
    assert len(read_manifest(a)) == 6 == len(pngs(a))


def test_manifest_seed_and_index_reproduce_the_file(tiny_gan_run, tmp_path):
    import numpy as np

    from gan.sample import generate_images, load_generator

    out = tmp_path / "o"
    generate_to_folder(tiny_gan_run, out, per_class=2, classes="fear", seed=5)
    row = read_manifest(out)[1]
    g, meta = load_generator(Path(row["generator_run"]))
    assert int(row["checkpoint_step"]) == meta["step"] and int(row["index"]) == 1
    label = np.array([meta["classes"].index(row["label"])])
    face = generate_images(g, label, seed=int(row["seed"]), offset=int(row["index"]))[0]
    with Image.open(out / row["path"]) as im:
        assert np.array_equal(np.asarray(im), face[0])
    again = tmp_path / "again"
    generate_to_folder(tiny_gan_run, again, per_class=2, classes=row["label"], seed=5)
    assert (again / row["path"]).read_bytes() == (out / row["path"]).read_bytes()
    # Each image depends on (seed, class, index) only: the same file whatever else is generated with it.
    mixed = tmp_path / "mixed"
    generate_to_folder(tiny_gan_run, mixed, per_class=3, classes="disgust,fear", seed=5)
    assert (mixed / row["path"]).read_bytes() == (out / row["path"]).read_bytes()


def test_classes_restrict_and_unknown_class_fails(tiny_gan_run, tmp_path):
    out = tmp_path / "o"
    summary = generate_to_folder(tiny_gan_run, out, per_class=2, classes="disgust,fear")
    assert summary["classes"] == ["disgust", "fear"]
    assert {r["label"] for r in read_manifest(out)} == {"disgust", "fear"}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["disgust", "fear"]
    with pytest.raises(UserError, match="unicorn"):
        generate_to_folder(tiny_gan_run, tmp_path / "x", per_class=1, classes="fear,unicorn")
    assert resolve_classes(" Fear , fear,disgust", ["fear", "disgust"]) == ["fear", "disgust"]
    with pytest.raises(UserError, match="at least 1"):
        generate_to_folder(tiny_gan_run, tmp_path / "y", per_class=0)


def test_refuses_foreign_folder_and_missing_run(tiny_gan_run, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    for overwrite in (False, True):  # a user's own file is never mixed into (or deleted with) an output
        with pytest.raises(UserError, match=r"1 file\(s\) that no manifest.csv lists \(notes.txt\)"):
            generate_to_folder(tiny_gan_run, busy, per_class=1, overwrite=overwrite)
        assert [p.name for p in busy.iterdir()] == ["notes.txt"] and (busy / "notes.txt").read_text() == "mine"
    with pytest.raises(UserError, match="no GAN checkpoint"):
        generate_to_folder(tmp_path / "norun", tmp_path / "z", per_class=1)


def test_cli_generate(tiny_gan_run, demo_ds, tmp_path, capsys):
    out = tmp_path / "cli"
    code, stdout, err = run_cli(
        capsys,
        "generate",
        tiny_gan_run,
        "--per-class",
        2,
        "--out",
        out,
        "--classes",
        "disgust,fear",
        "--seed",
        3,
        "--device",
        "cpu",
    )
    assert code == 0, err
    text = " ".join(stdout.split())  # rich wraps long lines
    assert "wrote 4 images" in text and f"last checkpoint, step {STEPS}" in text
    assert pngs(out) == [f"{c}/syn_{c}_{i:06d}.png" for c in ("disgust", "fear") for i in range(2)]
    assert {r["seed"] for r in read_manifest(out)} == {
        str(sampling_seed(3, demo_ds.classes.index(c))) for c in ("disgust", "fear")
    }
    # Same as the Python API with the same seed.
    api = tmp_path / "api"
    generate_to_folder(tiny_gan_run, api, per_class=2, classes="disgust,fear", seed=3)
    assert all((out / f).read_bytes() == (api / f).read_bytes() for f in pngs(out))

    code, _, err = run_cli(
        capsys, "generate", tiny_gan_run, "--per-class", 1, "--out", tmp_path / "e", "--classes", "dragon"
    )
    assert_one_line_error(code, err, "dragon")
