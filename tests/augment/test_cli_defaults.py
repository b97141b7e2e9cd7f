"""Every CLI default is defined once: in a config dataclass, or in the signature of the function a command calls.

The checks iterate over each command's options, so an option added later with a retyped default that drifts
from its config fails here without anyone having to list it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path
from typing import Any

import typer

from augment import cli
from augment.compare import CompareSpec
from augment.demo import run_demo
from augment.demo_faces import write_demo_dataset
from augment.plan import plan_rebalance
from augment.rebalance import QualityFilter, run_rebalance
from classifier.config import TrainConfig
from gan.config import RECIPES, GanConfig, recipe_config
from gan.evaluate import evaluate_gan
from gan.generate import generate_to_folder

ROOT = Path(__file__).resolve().parents[2]

# Where each command's defaults are defined (a dataclass or a function).
SOURCES: dict[str, list[Any]] = {
    "demo-data": [write_demo_dataset],
    "train": [TrainConfig],
    "gan-train": [GanConfig],
    "generate": [generate_to_folder],
    "gan-eval": [evaluate_gan],
    "rebalance": [QualityFilter, plan_rebalance, run_rebalance],
    "compare": [CompareSpec, QualityFilter],
    "demo": [run_demo],
}
# CLI option -> the source's parameter where the names differ; None: same name, different meaning.
RENAMED: dict[tuple[str, str], str | None] = {
    ("rebalance", "out_format"): "fmt",
    ("rebalance", "fmt"): None,  # --data-format (the input layout), not run_rebalance's output format
    # these functions take a device the CLI has already resolved from --device auto with pick_device
    ("generate", "device"): None,
    ("gan-eval", "device"): None,
    ("rebalance", "device"): None,
}
EMPTY = (None, "", [])  # an option left None means "none" for these field defaults


def source_defaults(source: Any) -> dict[str, Any]:
    """name -> default of every parameter of a function or dataclass that has one (factories called)."""
    out = {}
    for p in inspect.signature(source).parameters.values():
        if p.default is inspect.Parameter.empty:
            continue
        out[p.name] = p.default
    for f in dataclasses.fields(source) if dataclasses.is_dataclass(source) else ():
        if f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def recipe_text(name: str, default: Any) -> list[str]:
    """What gan-train's help must say for an option the recipe fills: the default and each recipe that differs."""
    parts = [f"default: {cli._show_value(default)}"]
    for recipe in RECIPES:
        value = getattr(recipe_config(recipe), name)
        if value != default:
            parts.append(f"{recipe}: {cli._show_value(value)}")
    return parts


def drift(command_name: str, command: Any, sources: list[Any], recipes: bool = False) -> tuple[list[str], set[str]]:
    """(problems, options checked): each option named like a source parameter must have that default."""
    problems, checked = [], set()
    for param in command.params:
        if param.required or param.name == "help":
            continue
        name = RENAMED.get((command_name, param.name), param.name)
        for source in sources:
            defaults = source_defaults(source)
            if name is None or name not in defaults:
                continue
            want, got = defaults[name], param.default
            checked.add(param.name)
            if got is None and want not in EMPTY:
                # left None so the recipe (gan-train) decides: the help must state the default instead
                expected = recipe_text(name, want) if recipes else [f"default: {cli._show_value(want)}"]
                missing = [t for t in expected if t not in (param.help or "")]
                if missing:
                    problems.append(f"{command_name} --{param.name}: help {param.help!r} lacks {missing}")
            elif got is not None and got != want:
                problems.append(f"{command_name} --{param.name}: default {got!r}, but {source.__name__} says {want!r}")
    return problems, checked


def cli_command(name: str) -> Any:
    return typer.main.get_command(cli.app).commands[name]


def test_every_option_takes_its_default_from_its_config():
    problems, checked = [], {}
    for name, sources in SOURCES.items():
        found, checked[name] = drift(name, cli_command(name), sources, recipes=name == "gan-train")
        problems += found
    assert problems == []
    # the check is not vacuous: it saw the options that carry the config's defaults
    train_fields = {"epochs", "batch_size", "lr", "weight_decay", "patience", "val_fraction", "max_minutes"}
    assert train_fields <= checked["train"] and len(checked["train"]) >= 20
    gan_fields = {"steps", "batch_size", "lr_g", "g_width", "ema", "sample_every", "checkpoint_every", "log_every"}
    assert gan_fields <= checked["gan-train"] and len(checked["gan-train"]) >= 20
    assert {"min_prob", "drop_near_copies", "target", "fraction", "out_format", "seed"} <= checked["rebalance"]
    assert {"min_prob", "target", "nproc", "device", "budget"} <= checked["compare"]
    assert {"per_class"} <= checked["gan-eval"] and {"seed", "overwrite"} <= checked["generate"]
    assert {"gan_steps", "seeds", "device"} <= checked["demo"] and {"seed", "size"} <= checked["demo-data"]


def test_the_check_catches_a_drifted_default_and_a_stale_help():
    app = typer.Typer()

    @app.command()
    def train(lr: float = 0.5, epochs: int = TrainConfig().epochs) -> None:
        """A retyped learning rate that drifted."""

    @app.command()
    def gan(steps: int | None = typer.Option(None, help="Generator steps (default 6000).")) -> None:
        """A hand-written help that is not the generated one."""

    group = typer.main.get_command(app)
    problems, checked = drift("train", group.commands["train"], [TrainConfig])
    assert checked == {"lr", "epochs"}
    assert len(problems) == 1 and "--lr" in problems[0] and "0.001" in problems[0]
    problems, _ = drift("gan", group.commands["gan"], [GanConfig], recipes=True)
    assert len(problems) == 1 and "default: 6000" in problems[0]


def test_gan_train_help_states_each_recipe_default():
    help_of = {p.name: p.help or "" for p in cli_command("gan-train").params}
    assert "(default: 32; classic: 64)." in help_of["g_width"]
    assert "(default: on; classic: off)." in help_of["spectral_norm"]
    assert "(default: 6000)." in help_of["steps"]
    assert f"default: {GanConfig().size}" in help_of["size"]


def test_compare_min_prob_is_the_quality_filter_default():
    spec = CompareSpec(models=["simple-cnn"], conditions=["baseline"], seeds=1)
    assert spec.min_prob == QualityFilter().min_prob
    params = {p.name: p.default for p in cli_command("compare").params}
    assert params["min_prob"] == QualityFilter().min_prob


def _literal_min_prob_defaults(path: Path) -> list[tuple[int, float]]:
    """(line, value) of every numeric literal given to something called min_prob: defaults, assignments,
    dataclass fields and keyword arguments."""
    found = []

    def note(name: str | None, value: ast.AST | None) -> None:
        if name == "min_prob" and isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
            found.append((value.lineno, float(value.value)))

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = a.posonlyargs + a.args
            for arg, default in zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True):
                note(arg.arg, default)
            for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
                note(arg.arg, default)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            note(node.target.id, node.value)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                note(getattr(target, "id", getattr(target, "attr", None)), node.value)
        elif isinstance(node, ast.keyword):
            note(node.arg, node.value)
    return found


def test_the_min_prob_default_is_written_once():
    nonzero = []
    for package in ("augment", "gan", "classifier", "scripts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            nonzero += [(rel, line, v) for line, v in _literal_min_prob_defaults(path) if v != 0]
    assert len(nonzero) == 1, nonzero  # 0 (filter off) is a choice, not a copy of the default
    rel, line, value = nonzero[0]
    assert rel == "augment/rebalance.py" and value == QualityFilter().min_prob
    assert "min_prob" in (ROOT / rel).read_text().splitlines()[line - 1]
