"""Options derived from config fields reach the config unchanged, and the old option names still work for one
release, with a warning."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from augment.cli.options import Alias, field_options, signature_options, with_options
from classifier.config import TrainConfig
from gan.config import GanConfig, recipe_config
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")


# --------------------------------------------------------------------------- the mechanism
@dataclasses.dataclass
class Toy:
    rate: float = dataclasses.field(default=0.5, metadata={"help": "A rate."})
    quiet: bool = dataclasses.field(default=False, metadata={"help": "Say less.", "option": "--quiet/--loud"})
    judge: str = dataclasses.field(default="", metadata={"help": "A run.", "kind": "path"})
    classes: list[str] = dataclasses.field(default_factory=list, metadata={"help": "Classes.", "kind": "classes"})
    hidden: int = 3  # no help: no option


def toy_function(n: int, scale: float = 2.0, name: str = "x") -> None:
    """Only its signature is read."""


def toy_app(seen: dict[str, Any]) -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command()
    @with_options(Alias("--old-scale", "--scale", "scale", float), toy=field_options(Toy), fn=signature_options(
        toy_function, {"scale": "Scale.", "name": "Name."}
    ))  # fmt: skip
    def run(first: int, *, toy: dict, fn: dict, last: str = "end") -> None:
        seen.update(first=first, toy=toy, fn=fn, last=last)

    return app


def test_with_options_places_the_groups_and_hands_over_their_values():
    seen: dict[str, Any] = {}
    app = toy_app(seen)
    command = typer.main.get_command(app)
    assert [p.name for p in command.params] == [
        "first", "rate", "quiet", "judge", "classes", "scale", "name", "last", "old_scale_alias",
    ]  # fmt: skip
    assert {p.name: p.default for p in command.params if not p.required} == {
        "rate": 0.5, "quiet": False, "judge": None, "classes": None, "scale": 2.0, "name": "x", "last": "end",
        "old_scale_alias": None,
    }  # fmt: skip
    result = CliRunner().invoke(app, ["7", "--loud", "--judge", "runs/j", "--classes", "sad,happy", "--scale", "3"])
    assert result.exit_code == 0, result.output
    assert seen == {
        "first": 7,
        "toy": {"rate": 0.5, "quiet": False, "judge": str(Path("runs/j")), "classes": ["happy", "sad"]},
        "fn": {"scale": 3.0, "name": "x"},
        "last": "end",
    }
    assert CliRunner().invoke(app, ["7"]).exit_code == 0
    assert Toy(**seen["toy"]) == Toy()  # nothing given: the dataclass's defaults


def test_an_old_name_sets_the_new_option_and_warns():
    seen: dict[str, Any] = {}
    result = CliRunner().invoke(toy_app(seen), ["1", "--old-scale", "5"])
    assert result.exit_code == 0, result.output
    assert seen["fn"]["scale"] == 5.0
    assert result.stderr.strip() == "warning: --old-scale is now --scale"


# --------------------------------------------------------------------------- train and gan-train
def changed(cls: type, f: dataclasses.Field, tmp_path: Path) -> tuple[list[str], Any]:
    """Command-line words that set field ``f`` to a value other than its default, and that value."""
    meta, default = f.metadata, getattr(cls(), f.name)
    name = "--" + f.name.replace("_", "-")
    flag = (meta.get("option") or f"{name}/--no-{name[2:]}").split("/")
    if meta.get("kind") == "path":
        return [flag[0], str(tmp_path / f.name)], str(tmp_path / f.name)
    if meta.get("kind") == "classes":
        return [flag[0], "sad,happy"], ["happy", "sad"]
    if meta.get("kind") == "limit":
        return [flag[0], "fear=30,Disgust=20"], {"fear": 30, "disgust": 20}
    if f.name == "recipe":
        return [flag[0], "classic"], "classic"
    if isinstance(default, bool):
        return [flag[1] if default else flag[0]], not default
    if isinstance(default, (int, float)):
        return [flag[0], str(default + 3)], default + 3
    return [flag[0], f"not-{default}"], f"not-{default}"


def every_option(cls: type, tmp_path: Path) -> tuple[list[str], dict[str, Any]]:
    words, values = [], {}
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            more, values[f.name] = changed(cls, f, tmp_path)
            words += more
    return words, values


@pytest.fixture
def trained(monkeypatch) -> list[TrainConfig]:
    """train without training: the config train_cmd makes (validation off, so that any value passes)."""
    seen: list[TrainConfig] = []
    monkeypatch.setattr(TrainConfig, "validate", lambda self: None)
    monkeypatch.setattr("augment.cli.classifier._train_and_report", lambda data, fmt, run_dir, cfg: seen.append(cfg))
    return seen


def test_every_train_option_reaches_its_field(capsys, tmp_path, trained):
    words, values = every_option(TrainConfig, tmp_path)
    assert len(values) >= 25
    code, _, err = run_cli(capsys, "train", tmp_path / "data", "--out", tmp_path / "run", *words)
    assert code == 0, err
    assert trained == [TrainConfig(**values)]
    code, _, err = run_cli(capsys, "train", tmp_path / "data", "--out", tmp_path / "run")
    assert code == 0 and trained[-1] == TrainConfig()


def test_every_gan_train_option_reaches_its_field(capsys, tmp_path, monkeypatch):
    seen: list[GanConfig] = []
    monkeypatch.setattr(GanConfig, "validate", lambda self: None)
    monkeypatch.setattr("gan.train.train_gan", lambda ds, run_dir, cfg: seen.append(cfg) or {"rank": 1})
    shape: dict[str, Any] = {}

    def load(data, fmt, size=None, channels=None):
        shape.update(size=size, channels=channels)
        return SimpleNamespace(size=size or 48, channels=channels or 1, splits=np.array(["train"] * 10))

    monkeypatch.setattr("augment.cli.gan.load_data", load)
    words, values = every_option(GanConfig, tmp_path)
    assert len(values) >= 35
    code, _, err = run_cli(capsys, "gan-train", tmp_path / "data", "--out", tmp_path / "run", *words)
    assert code == 0, err
    given = {k: v for k, v in values.items() if k != "recipe"}
    assert seen == [recipe_config("classic", **given)] and shape == {
        "size": values["size"],
        "channels": values["channels"],
    }
    assert seen[0] == GanConfig(**values, beta1=0.5, beta2=0.999, minibatch_std=False, d_batchnorm=True, flip=False)
    # options not given: the recipe's values, and DATA's shape (the cache's, or 48 × 48 grey)
    code, _, err = run_cli(capsys, "gan-train", tmp_path / "data", "--out", tmp_path / "run", "--recipe", "classic")
    assert code == 0, err
    assert seen[-1] == recipe_config("classic") and shape == {"size": None, "channels": None}


# --------------------------------------------------------------------------- renamed options
def test_out_format_and_its_old_name(capsys, tmp_path):
    args = ["rebalance", tmp_path / "data", "--generator", tmp_path / "gan", "--out", tmp_path / "out", "--dry-run"]
    code, _, err = run_cli(capsys, *args, "--out-format", "parquet")
    assert_one_line_error(code, err, "parquet", "folders or fer2013-csv")
    code, _, err = run_cli(capsys, *args, "--format", "parquet")
    warning, error = err.strip().splitlines()
    assert code == 2 and warning == "warning: --format is now --out-format"
    assert error.startswith("error:") and "parquet" in error
    assert not (tmp_path / "out").exists()


def test_refit_epochs_and_its_old_name(capsys, tmp_path, trained):
    args = ["train", tmp_path / "data", "--out", tmp_path / "run"]
    code, _, err = run_cli(capsys, *args, "--refit-epochs", "2")
    assert code == 0 and err == "" and trained[-1].refit_head_epochs == 2
    code, _, err = run_cli(capsys, *args, "--refit-head", "3")
    assert code == 0 and err.strip() == "warning: --refit-head is now --refit-epochs"
    assert trained[-1].refit_head_epochs == 3
    config = tmp_path / "cfg.json"
    config.write_text("{}")
    code, _, err = run_cli(capsys, *args, "--config", config, "--refit-head", "1")
    assert code == 2 and err.strip().splitlines()[-1].endswith("drop --refit-head")


def test_a_negative_refit_is_refused_under_either_name(capsys, tmp_path):
    args = ["train", tmp_path / "data", "--out", tmp_path / "run"]
    code, _, err = run_cli(capsys, *args, "--refit-epochs", "-1")
    assert_one_line_error(code, err, "--refit-epochs -1", "0 (no refit) or more")
    code, _, err = run_cli(capsys, *args, "--refit-head", "-1")
    assert code == 2 and err.strip().splitlines() == [
        "warning: --refit-head is now --refit-epochs",
        "error: --refit-epochs -1: use 0 (no refit) or more epochs",
    ]
    assert not (tmp_path / "run").exists()


def test_old_names_are_hidden(capsys):
    for command, old, new in (("rebalance", "--format", "--out-format"), ("train", "--refit-head", "--refit-epochs")):
        code, out, _ = run_cli(capsys, command, "--help")
        assert code == 0 and new in out and f"{old} " not in out
